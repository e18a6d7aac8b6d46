# The pytorch_model.bin reader (src/engine/torch-*.c, pickle.c) over hand-built ZIPs and pickles.
mp_add_test_exe(test-torch test-torch.c)
foreach(c valid_f32 half_types os_system bad_opcodes recursive storage_errors zip_errors)
  mp_add_case(test-torch ${c} unit 30)
endforeach()
