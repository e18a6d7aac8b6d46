# Live streams (mp_live, tests/test-live.c): unit cases on the "tiny" random model, model cases on the
# embedded digits model and samples/phone-gsm.wav (exit 77 without the model).
mp_add_test_exe(test-live test-live.c)
foreach(c pieces misuse bounded shared_workers offline_identity flush_resampler feature_split_layer)
  mp_add_case(test-live ${c} unit 120)
endforeach()
foreach(c final_vs_offline two_utterances partial_growth decoding_options compute final_skip feature_split
        feature_cache)
  mp_add_case(test-live ${c} model 120)
endforeach()

# `modelpool serve` live calls through real protocol clients (tests/live/: a vosk WebSocket client on
# Debian python3-websockets, an AudioSocket client on plain sockets), embedded model.
if(MP_BUILD_SERVER AND TARGET mp-cli)
  foreach(case vosk audiosocket limits drain stuck_reader drain_attack)
    add_test(NAME server.live_${case} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test-live-server.py
             $<TARGET_FILE:mp-cli> ${case})
    set_tests_properties(server.live_${case} PROPERTIES LABELS server TIMEOUT 180 SKIP_RETURN_CODE 77)
  endforeach()
endif()
