# Progress reporting of long inputs (mp_request_config.progress_fn).
mp_add_test_exe(test-progress LABEL unit TIMEOUT 60 test-progress.c)
