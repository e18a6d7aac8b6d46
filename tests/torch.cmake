# The pytorch_model.bin reader (src/engine/torch-*.c, pickle.c) over hand-built ZIPs and pickles.
mp_add_test_exe(test-torch test-torch.c)
foreach(c valid_f32 half_types os_system bad_opcodes recursive storage_errors zip_errors)
  mp_add_case(test-torch ${c} unit 30)
endforeach()
# Whole model directories from tests/data/torch (tools/make_torch_fixtures.py): logits identical to
# the safetensors version of the same weights in tests/data/ref, and within parity of torchaudio's.
foreach(c dir_f32 dir_fp16 dir_sharded dir_legacy dir_language convert bad_dirs)
  mp_add_case(test-torch ${c} unit 60)
endforeach()
