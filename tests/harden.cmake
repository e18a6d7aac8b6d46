# Hardening, library side (tests/test-harden-lib.c): decoded audio charged to a memory budget before
# it is allocated, requests cancelled at the next chunk or while waiting for a worker.
mp_add_test_exe(test-harden-lib test-harden-lib.c)
target_link_libraries(test-harden-lib PRIVATE PkgConfig::SNDFILE Threads::Threads)
foreach(c budget_declared budget_growing cancel_stream cancel_waiting)
  mp_add_case(test-harden-lib ${c} unit 60)
endforeach()
