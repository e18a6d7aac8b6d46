# Issue 4 end to end: every format of one utterance gives the clean WAV's transcript with the embedded model.
if(TARGET mp-cli)
  add_test(NAME formats.same_transcript COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-formats.sh $<TARGET_FILE:mp-cli>)
  set_tests_properties(formats.same_transcript PROPERTIES LABELS model TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
