# The `modelpool` command's contract, run against the committed torchaudio fixtures.
if(TARGET mp-cli AND EXISTS /usr/bin/python3)
  foreach(case text batch json dump_logits info usage stdin subtitles)
    add_test(NAME cli.${case} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test-cli.py $<TARGET_FILE:mp-cli> ${case})
    set_tests_properties(cli.${case} PROPERTIES LABELS cli TIMEOUT 60)
  endforeach()
endif()
