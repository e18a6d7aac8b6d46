# `modelpool serve` over loopback with real clients (curl; the OpenAI SDK from npm, see tests/server-js).
if(MP_BUILD_SERVER AND TARGET mp-cli)
  mp_add_script_cases(PREFIX server SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/test-server.sh ARGS $<TARGET_FILE:mp-cli>
                      LABEL server TIMEOUT 180)
endif()

# The README's curl example with the embedded model's decoding defaults (tests/test-server-defaults.sh).
if(TARGET mp-cli AND MP_BUILD_SERVER)
  add_test(NAME server.model_defaults COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-server-defaults.sh $<TARGET_FILE:mp-cli>)
  set_tests_properties(server.model_defaults PROPERTIES LABELS server TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
