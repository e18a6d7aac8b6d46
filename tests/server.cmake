# `modelpool serve` over loopback with real clients (curl; the OpenAI SDK from npm, see tests/server-js).
if(MP_BUILD_SERVER AND TARGET mp-cli)
  mp_add_script_cases(PREFIX server SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/test-server.sh ARGS $<TARGET_FILE:mp-cli>
                      LABEL server TIMEOUT 180)
endif()
