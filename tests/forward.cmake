# Forward pass (src/w2v2.c) and random architectures (src/model-arch.c): unit tests, no weights.
mp_add_test_exe(test-forward test-forward.c)
foreach(case frames ref_tiny ref_tiny_large ref_activations conv_depths block_size state_reuse two_threads
             random_models base_shape errors scratch_prediction)
  mp_add_case(test-forward ${case} unit 60)
endforeach()
mp_add_case(test-forward ref_long unit 120)
