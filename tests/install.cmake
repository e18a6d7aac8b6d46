# `cmake --install` into a temporary prefix, then the examples built from it with pkg-config (strict C11),
# the installed binary finding its installed model, a moved tree, and the man page.
# The build's sanitizer flags are passed on: an instrumented library needs an instrumented program.
if(TARGET mp-cli)
  add_test(NAME install.prefix COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test-install.sh ${CMAKE_COMMAND}
           ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${MP_SAN})
  set_tests_properties(install.prefix PROPERTIES LABELS cli TIMEOUT 180 SKIP_RETURN_CODE 77)
endif()
