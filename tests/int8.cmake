# The int8 path (tests/test-int8.c): against PyTorch's quantize_dynamic (fixtures from
# tools/make_int8_reference.py) and against our fp32 (argmax agreement), memory and threads.
mp_add_test_exe(test-int8 test-int8.c)
foreach(c torch_base_like torch_digits torch_digits_fp32 agreement_digits agreement_random base_weights bad_dtype digits_transcript wer_digits threads prepack_avx2)
  mp_add_case(test-int8 ${c} unit 180)
endforeach()
