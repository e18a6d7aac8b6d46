# Model loading (src/model.c): tiny HF directories written by the test itself, plus tests/data/ref/* when present.
mp_add_test_exe(test-loader LABEL unit TIMEOUT 10 test-loader.c)
mp_add_case(test-loader fuzz_header unit 60)
