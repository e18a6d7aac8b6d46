# The `modelpool` command's contract, run against the committed torchaudio fixtures: one ctest case
# per case_* function of test-cli.py.
if(TARGET mp-cli AND EXISTS /usr/bin/python3)
  mp_add_script_cases(PREFIX cli SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/test-cli.py RUN /usr/bin/python3
                      ARGS $<TARGET_FILE:mp-cli> LABEL cli TIMEOUT 60)
endif()
