# CTC decoders: greedy, beam search, lexicon, hotwords, ARPA LM (tests/test-decode.c). No weights.
mp_add_test_exe(test-decode LABEL unit TIMEOUT 30 test-decode.c)
# the embedded model's decoding.json (skipped, 77, without the model)
mp_add_case(test-decode embedded_defaults model 120)
