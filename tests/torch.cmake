# The pytorch_model.bin reader (src/engine/torch-*.c, pickle.c) over hand-built ZIPs and pickles.
mp_add_test_exe(test-torch test-torch.c)
foreach(c valid_f32 half_types os_system bad_opcodes recursive storage_errors zip_errors many_tensors rebuild_v1 narrowing)
  mp_add_case(test-torch ${c} unit 30)
endforeach()
# Whole model directories from tests/data/torch (tools/make_torch_fixtures.py): logits identical to
# the safetensors version of the same weights in tests/data/ref, and within parity of torchaudio's.
foreach(c dir_f32 dir_fp16 dir_sharded dir_legacy dir_language convert bad_dirs)
  mp_add_case(test-torch ${c} unit 60)
endforeach()
# The command line: `modelpool convert` of a legacy checkpoint, `info` naming the format read, and
# --language on a multilingual directory (an error listing the languages without it).
if(TARGET mp-cli)
  set(_t ${MP_TEST_DATA}/torch)
  add_test(NAME cli.convert COMMAND sh -c "out=$(mktemp -d) && \
'$<TARGET_FILE:mp-cli>' convert '${_t}/legacy' \"$out\" --dtype bf16 && \
'$<TARGET_FILE:mp-cli>' info --model \"$out\" --format json | grep -q '\"dtype\":\"BF16\".*\"weights_format\":\"safetensors\"' && \
'$<TARGET_FILE:mp-cli>' info --model '${_t}/legacy' | grep -q 'weights read: *pytorch legacy' && \
'$<TARGET_FILE:mp-cli>' info --model '${_t}/sharded' | grep -q 'weights read: *pytorch zip, 2 shards' && \
test -f \"$out/vocab.json\" && rm -rf \"$out\"")
  set_tests_properties(cli.convert PROPERTIES LABELS cli TIMEOUT 60)
  add_test(NAME cli.language COMMAND sh -c "\
'$<TARGET_FILE:mp-cli>' info --model '${_t}/multilang' --language vi | grep -q 'language vi' && \
test \"$('$<TARGET_FILE:mp-cli>' transcribe --language=vi --model '${_t}/multilang' '${MP_TEST_DATA}/ref/inputs/in0.wav')\" = \
  \"$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"inputs\"][0][\"text\"])' '${MP_TEST_DATA}/ref/utf8/reference.json')\" && \
! '$<TARGET_FILE:mp-cli>' info --model '${_t}/multilang' 2> /dev/null && \
'$<TARGET_FILE:mp-cli>' info --model '${_t}/multilang' 2>&1 | grep -q 'choose one with --language.*: en, vi'")
  set_tests_properties(cli.language PROPERTIES LABELS cli TIMEOUT 60)
endif()
# The reader against torch.load on views torch itself writes (needs Debian python3-torch; 77 without).
add_executable(torch-dump torch-dump.c)
target_compile_options(torch-dump PRIVATE ${MP_WARN})
target_link_libraries(torch-dump PRIVATE modelpool_static)
if(EXISTS /usr/bin/python3)
  add_test(NAME torch.views_vs_torch COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test-torch-views.py
           $<TARGET_FILE:torch-dump>)
  set_tests_properties(torch.views_vs_torch PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
