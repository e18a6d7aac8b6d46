# End to end: every format of one utterance gives the clean WAV's transcript with the embedded model.
if(TARGET mp-cli)
  add_test(NAME formats.same_transcript COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-formats.sh $<TARGET_FILE:mp-cli>)
  set_tests_properties(formats.same_transcript PROPERTIES LABELS model TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()

# The README's main job: the embedded model reads the bundled GSM sample right (with its word list).
if(TARGET mp-cli)
  add_test(NAME formats.bundled_sample
           COMMAND sh -c "test -f '${PROJECT_SOURCE_DIR}/models/digits/model.safetensors' || exit 77; \
out=$('$<TARGET_FILE:mp-cli>' transcribe --beam 16 '${PROJECT_SOURCE_DIR}/samples/phone-gsm.wav') || exit 1; \
echo \"got: $out\"; test \"$out\" = \"$(cat '${PROJECT_SOURCE_DIR}/samples/phone-gsm.txt')\"")
  set_tests_properties(formats.bundled_sample PROPERTIES LABELS model TIMEOUT 60 SKIP_RETURN_CODE 77)
endif()

# The README's command as written, no options: the model's decoding.json (beam 16 over its word
# list) gives the same digits.
if(TARGET mp-cli)
  add_test(NAME formats.readme_default
           COMMAND sh -c "test -f '${PROJECT_SOURCE_DIR}/models/digits/decoding.json' || exit 77; \
out=$('$<TARGET_FILE:mp-cli>' transcribe '${PROJECT_SOURCE_DIR}/samples/phone-gsm.wav') || exit 1; \
echo \"got: $out\"; test \"$out\" = \"$(cat '${PROJECT_SOURCE_DIR}/samples/phone-gsm.txt')\"")
  set_tests_properties(formats.readme_default PROPERTIES LABELS model TIMEOUT 60 SKIP_RETURN_CODE 77)
endif()
