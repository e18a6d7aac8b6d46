# Forward pass (src/w2v2.c) and random architectures (src/model-arch.c): unit tests, no weights.
mp_add_test_exe(test-forward LABEL unit TIMEOUT 60 test-forward.c)
mp_add_case(test-forward ref_long unit 120)
mp_add_case(test-forward prepack_base unit 300)
