# SPDX-License-Identifier: MIT
# remora_add_check_suite(exe suite labels...): registers one Check suite of `exe`
# as its own CTest entry, selected through CK_RUN_SUITE (STYLE.md §III.12).
# "Checks: 0," fails the test, so a misspelled suite name cannot pass silently.

function(remora_add_check_suite exe suite)
  set(env "CK_RUN_SUITE=${suite}" "CK_DEFAULT_TIMEOUT=60")
  set(timeout 300)
  if(REMORA_SANITIZE)
    # Sanitized code runs several times slower; Check scales every test's
    # timeout and the tests scale their timing slack by the same factor.
    list(APPEND env "CK_TIMEOUT_MULTIPLIER=4")
    set(timeout 1200)
  endif()
  add_test(NAME ${suite} COMMAND ${exe})
  set_tests_properties(${suite} PROPERTIES
    ENVIRONMENT "${env}"
    LABELS "${ARGN}"
    TIMEOUT ${timeout}
    FAIL_REGULAR_EXPRESSION "Checks: 0,")
endfunction()
