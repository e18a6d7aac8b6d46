# Progress reporting of long inputs (mp_request_config.progress_fn).
mp_add_test_exe(test-progress test-progress.c)
foreach(case buffer stream)
  mp_add_case(test-progress ${case} unit 60)
endforeach()
