# Reference parity against torchaudio (tests/test-parity.c): committed random-weight fixtures in
# tests/data/ref/ (tools/make_reference.py), so these are unit tests. scripts/parity-live.sh runs
# the same binary on freshly generated fixtures (test-parity --dir DIR).
mp_add_test_exe(test-parity test-parity.c)
foreach(c base_like large_like odd utf8 hubert fp16 bf16 wav_input transcribe)
  mp_add_case(test-parity ${c} unit 30)
endforeach()
