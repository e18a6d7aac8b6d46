# The programs in examples/ (the header's usage, and live transcription with partial results) run on the
# embedded model and agree with the CLI.
if(TARGET mp-cli AND TARGET example-transcribe AND TARGET example-live)
  add_test(NAME examples.run COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-examples.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(examples.run PROPERTIES LABELS model TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
