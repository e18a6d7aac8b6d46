# CTC decoders: greedy, beam search, lexicon, hotwords, ARPA LM (tests/test-decode.c). No weights.
mp_add_test_exe(test-decode LABEL unit TIMEOUT 30 test-decode.c)
