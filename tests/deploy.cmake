# deploy/: haproxy.cfg, prometheus.yml + alerts.yml (with promtool's rule tests, and the metric names the
# alerts read checked against a running server and HAProxy), modelpool.service (systemd-analyze verify).
if(MP_BUILD_SERVER AND TARGET mp-cli)
  foreach(case haproxy prom systemd)
    add_test(NAME deploy.${case} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-deploy.sh $<TARGET_FILE:mp-cli>
             ${PROJECT_SOURCE_DIR} ${case})
    set_tests_properties(deploy.${case} PROPERTIES LABELS server TIMEOUT 60 SKIP_RETURN_CODE 77)
  endforeach()
endif()
