# `modelpool serve` over loopback with real clients (curl; the OpenAI SDK from npm, see tests/server-js).
if(MP_BUILD_SERVER AND TARGET mp-cli)
  foreach(case curl openai-sdk interleave)
    add_test(NAME server.${case} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-server.sh $<TARGET_FILE:mp-cli> ${case})
    set_tests_properties(server.${case} PROPERTIES LABELS server TIMEOUT 180 SKIP_RETURN_CODE 77)
  endforeach()
endif()

# The README's curl example with the embedded model's decoding defaults (tests/test-server-defaults.sh).
if(TARGET mp-cli AND MP_BUILD_SERVER)
  add_test(NAME server.model_defaults COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-server-defaults.sh $<TARGET_FILE:mp-cli>)
  set_tests_properties(server.model_defaults PROPERTIES LABELS server TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
