# Audio input, resampling, chunking and streams. Cases needing a model are labelled model.
mp_add_test_exe(test-audio LABEL unit TIMEOUT 60 test-audio.c)
# "tiny" random weights: no files needed, but a forward pass (a few seconds).
mp_add_case(test-audio stream_matches_whole unit 120)
mp_add_case(test-audio stream_partial unit 120)
mp_add_case(test-audio chunked_close_to_whole unit 120)
# The embedded model (models/digits): skipped (77) until it exists.
mp_add_case(test-audio silence_empty model 120)
mp_add_case(test-audio long_text_embedded model 120)
