# Model loading (src/model.c): tiny HF directories written by the test itself, plus tests/data/ref/* when present.
mp_add_test_exe(test-loader test-loader.c)
foreach(c valid_f32 layer_norm_variant no_mmap misaligned_f32 f16 bf16 mixed_dtype weight_norm_namings hubert
          utf8_vocab preprocessor config_defaults lexicon_file invalid_args
          bad_truncated bad_header_len bad_offsets bad_dtype bad_shape missing_tensor extra_tensor bad_json bad_arch
          bad_activation bad_heads bad_fields bad_vocab bad_preprocessor missing_files ref_dirs)
  mp_add_case(test-loader ${c} unit 10)
endforeach()
mp_add_case(test-loader fuzz_header unit 60)
