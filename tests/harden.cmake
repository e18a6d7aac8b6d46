# Hardening, library side (tests/test-harden-lib.c): decoded audio charged to a memory budget before
# it is allocated, requests cancelled at the next chunk or while waiting for a worker.
mp_add_test_exe(test-harden-lib test-harden-lib.c)
target_link_libraries(test-harden-lib PRIVATE PkgConfig::SNDFILE Threads::Threads)
foreach(c budget_declared budget_growing cancel_stream cancel_waiting)
  mp_add_case(test-harden-lib ${c} unit 60)
endforeach()

# Hardening, server side (tests/test-harden.py, Python standard library): one case per item of the
# hardening issue, each with its own server. `budget` measures peak RSS, which sanitizers inflate: slow.
if(MP_BUILD_SERVER AND TARGET mp-cli)
  foreach(c noname slowloris budget slow_upload truncated duplicate cancel keepalive http auth stats accesslog)
    add_test(NAME server.harden.${c} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test-harden.py
             $<TARGET_FILE:mp-cli> ${c})
    set(labels server)
    if(c STREQUAL budget)
      set(labels "server;slow")
    endif()
    set_tests_properties(server.harden.${c} PROPERTIES LABELS "${labels}" TIMEOUT 240 SKIP_RETURN_CODE 77)
  endforeach()
endif()
