# The Python binding (python/modelpool, issue 14). mp_lease_forward, the C call behind
# model(input_values), is tested in C here (so the sanitizer builds cover it); the pytest suite in
# python/tests runs one file per ctest case against this build's libmodelpool.so and CLI.
mp_add_test_exe(test-lease-forward test-lease-forward.c)
foreach(c parity short_and_stats misuse)
  mp_add_case(test-lease-forward ${c} unit 60)
endforeach()

# Sizes and offsets of the public structs, compared with the ctypes declarations by test_abi.py.
add_executable(test-python-abi test-python-abi.c)
target_compile_options(test-python-abi PRIVATE ${MP_WARN})
target_include_directories(test-python-abi PRIVATE ${PROJECT_SOURCE_DIR}/include)

# An uninstrumented interpreter cannot load a sanitizer-built library, so the Python cases run in
# plain builds only (CI's README test command).
set(MP_PY_SANITIZED OFF)
if(MP_SANITIZE_ADDRESS OR MP_SANITIZE_UNDEFINED OR MP_SANITIZE_THREAD)
  set(MP_PY_SANITIZED ON)
endif()
set(MP_PY_HAVE_PYTEST OFF)
if(EXISTS /usr/bin/python3)
  execute_process(COMMAND /usr/bin/python3 -c "import pytest" RESULT_VARIABLE mp_py_rc OUTPUT_QUIET ERROR_QUIET)
  if(mp_py_rc EQUAL 0)
    set(MP_PY_HAVE_PYTEST ON)
  else()
    message(STATUS "python3-pytest not installed: the Python binding's tests are not registered "
                   "(bash scripts/install-deps.sh --test)")
  endif()
endif()

if(TARGET mp-cli AND MP_PY_HAVE_PYTEST AND NOT MP_PY_SANITIZED)
  set(MP_PY_ENV
      "MODELPOOL_LIBRARY=$<TARGET_FILE:modelpool>"
      "MODELPOOL_CLI=$<TARGET_FILE:mp-cli>"
      "MODELPOOL_ABI=$<TARGET_FILE:test-python-abi>"
      "PYTHONPATH=${PROJECT_SOURCE_DIR}/python"
      "PYTHONDONTWRITEBYTECODE=1")
  # case:timeout (s)
  foreach(spec design:120 parity:120 transcribe:120 inputs:120 stream:180 live:120 errors:60 gil:180 abi:30 install:300)
    string(REPLACE ":" ";" parts ${spec})
    list(GET parts 0 case)
    list(GET parts 1 timeout)
    add_test(NAME python.${case}
             COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs
                     ${PROJECT_SOURCE_DIR}/python/tests/test_${case}.py)
    set_tests_properties(python.${case} PROPERTIES LABELS cli TIMEOUT ${timeout} ENVIRONMENT "${MP_PY_ENV}")
  endforeach()
  # The original design's 30 GSM lines, from examples/ (short clips: a smoke run).
  add_test(NAME python.gsm_lines
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/examples/gsm_lines.py --lines 30 --pool 4 --check
                   --audio ${PROJECT_SOURCE_DIR}/tests/data/ref/inputs/in1.wav)
  set_tests_properties(python.gsm_lines PROPERTIES LABELS cli TIMEOUT 120 ENVIRONMENT "${MP_PY_ENV}")
endif()
