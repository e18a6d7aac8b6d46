# Live streams (mp_live, tests/test-live.c): unit cases on the "tiny" random model, model cases on the
# embedded digits model and samples/phone-gsm.wav (exit 77 without the model).
mp_add_test_exe(test-live test-live.c)
foreach(c pieces misuse bounded shared_workers offline_identity)
  mp_add_case(test-live ${c} unit 120)
endforeach()
foreach(c final_vs_offline two_utterances partial_growth decoding_options compute)
  mp_add_case(test-live ${c} model 120)
endforeach()
