# Reference parity against torchaudio (tests/test-parity.c): committed random-weight fixtures in
# tests/data/ref/ (tools/make_reference.py), so these are unit tests. scripts/parity-live.sh runs
# the same binary on freshly generated fixtures (test-parity --dir DIR).
mp_add_test_exe(test-parity LABEL unit TIMEOUT 30 test-parity.c)
