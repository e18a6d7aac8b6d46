# discover.cmake - write the ctest cases of one test binary from its own `--list` (run by the build,
# cmake -P, after the binary is linked; see mp_add_test_exe in tests/CMakeLists.txt).
#   -DEXE=binary -DNAME=ctest-prefix -DPROPS=defaults+overrides.cmake -DOUT=cases.cmake -DWORKDIR=dir
# Every listed case becomes NAME.case with the default label and timeout, or those mp_add_case gave
# it; a case named by mp_add_case but not listed is registered too, so that it fails ("no such case")
# instead of vanishing.
include(${PROPS})
execute_process(COMMAND ${EXE} --list OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(text "# Generated from `${NAME} --list` by tests/discover.cmake; do not edit.\n")
set(listed "")
if(rc EQUAL 0)
  string(REGEX REPLACE "\n+$" "" out "${out}")
  string(REPLACE "\n" ";" listed "${out}")
else()
  # A binary without --list (its own main, not MP_TEST_MAIN): the build goes on, the suite fails
  # loudly in NAME.list, and only the cases mp_add_case named run.
  message(WARNING "${EXE} --list failed (${rc}): ${err}")
  string(APPEND text "add_test(${NAME}.list \"${EXE}\" \"--list\")\n"
         "set_tests_properties(${NAME}.list PROPERTIES LABELS \"unit\" TIMEOUT \"10\")\n")
endif()
set(all ${listed} ${MP_CASES})
list(REMOVE_DUPLICATES all)
foreach(case ${all})
  if(NOT case MATCHES "^[A-Za-z0-9_.-]+$")
    message(FATAL_ERROR "${NAME}: case name '${case}' has characters ctest names should not have")
  endif()
  set(label "${MP_DEFAULT_LABEL}")
  set(timeout "${MP_DEFAULT_TIMEOUT}")
  if(DEFINED MP_CASE_${case})
    list(GET MP_CASE_${case} 0 label)
    list(GET MP_CASE_${case} 1 timeout)
  endif()
  string(APPEND text "add_test(${NAME}.${case} \"${EXE}\" \"${case}\")\n"
         "set_tests_properties(${NAME}.${case} PROPERTIES LABELS \"${label}\" TIMEOUT \"${timeout}\" "
         "SKIP_RETURN_CODE \"77\" WORKING_DIRECTORY \"${WORKDIR}\")\n")
endforeach()
file(WRITE ${OUT}.tmp "${text}")
file(RENAME ${OUT}.tmp ${OUT})
