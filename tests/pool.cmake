# Pool: FIFO leases, timeouts, backpressure, shutdown, misuse, statistics (tests/test-pool.c).
# All unit: they use the "tiny" random model, no weight files. `stress` and `shutdown_race` are the
# ones CI also runs under ThreadSanitizer.
mp_add_test_exe(test-pool LABEL unit TIMEOUT 60 test-pool.c)

# `modelpool bench` end to end on the tiny model: every run in its own process, JSON with the names
# scripts read, no failed run.
if(TARGET mp-cli)
  add_test(NAME cli.bench_json COMMAND mp-cli bench --arch tiny --requests 6 --seconds 1 --workers 1,auto --copies
           --format json)
  set_tests_properties(cli.bench_json PROPERTIES LABELS cli TIMEOUT 60
    PASS_REGULAR_EXPRESSION "\"workers\".*\"copies\".*\"requests\": 6.*\"seconds\".*\"wall_s\".*\"audio_s_per_wall_s\".*\"avg_wait_s\".*\"max_wait_s\".*\"latency_p50_s\".*\"latency_p95_s\".*\"peak_rss_mb\".*\"errors\": 0.*\"workers\".*\"errors\": 0"
    FAIL_REGULAR_EXPRESSION "\"error\"")
  add_test(NAME cli.bench_usage COMMAND mp-cli bench --workers 0)
  set_tests_properties(cli.bench_usage PROPERTIES LABELS cli TIMEOUT 10 WILL_FAIL TRUE)
endif()
