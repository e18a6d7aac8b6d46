# CTC decoders: greedy, beam search, lexicon, hotwords, ARPA LM (tests/test-decode.c). No weights.
mp_add_test_exe(test-decode test-decode.c)
foreach(c greedy_semantics greedy_ties greedy_utf8 greedy_lower greedy_timestamps greedy_incremental
          request_defaults beam_exhaustive beam1_greedy beam_lexicon beam_lexicon_no_delim beam_hotwords lm_scores lm_flips
          malformed_files ref_python beam_oov pause_split decoding_defaults)
  mp_add_case(test-decode ${c} unit 30)
endforeach()
# the embedded model's decoding.json (skipped, 77, without the model)
mp_add_case(test-decode embedded_defaults model 120)
