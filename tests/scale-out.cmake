# Several `modelpool serve` behind the real HAProxy with deploy/haproxy.cfg: rolling restart and a crash
# under 30 concurrent clients (tests/test-scale-out.sh); the deploy/ files checked by their own tools.
if(MP_BUILD_SERVER AND TARGET mp-cli)
  add_test(NAME server.scale-out COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-scale-out.sh $<TARGET_FILE:mp-cli>
           ${PROJECT_SOURCE_DIR} 30)
  # ~35 s on a quiet machine; draining queued requests takes longer when the cores are shared
  set_tests_properties(server.scale-out PROPERTIES LABELS server TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
