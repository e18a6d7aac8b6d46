# Pool: FIFO leases, timeouts, backpressure, shutdown, misuse, statistics (tests/test-pool.c).
# All unit: they use the "tiny" random model, no weight files. `stress` and `shutdown_race` are the
# ones CI also runs under ThreadSanitizer.
mp_add_test_exe(test-pool test-pool.c)
foreach(c stress fifo shutdown_race shutdown_wait timeout queue_full misuse lazy design scoped stuck
          inference scratch_limit threads)
  mp_add_case(test-pool ${c} unit 60)
endforeach()
