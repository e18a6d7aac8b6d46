# CTC decoders: greedy, beam search, lexicon, hotwords, ARPA LM (tests/test-decode.c). No weights.
mp_add_test_exe(test-decode test-decode.c)
foreach(c greedy_semantics greedy_ties greedy_utf8 greedy_lower greedy_timestamps greedy_incremental
          request_defaults)
  mp_add_case(test-decode ${c} unit 20)
endforeach()
