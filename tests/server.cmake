# `modelpool serve` over loopback with real clients (curl; the OpenAI SDK from npm, see tests/server-js).
if(MP_BUILD_SERVER AND TARGET mp-cli)
  foreach(case curl openai-sdk interleave)
    add_test(NAME server.${case} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-server.sh $<TARGET_FILE:mp-cli> ${case})
    set_tests_properties(server.${case} PROPERTIES LABELS server TIMEOUT 180 SKIP_RETURN_CODE 77)
  endforeach()
endif()
