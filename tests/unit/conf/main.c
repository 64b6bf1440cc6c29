/* SPDX-License-Identifier: MIT */
/*
 * main.c - the test_conf runner: adds every suite of suites.h and runs them
 * with CK_ENV, so CK_RUN_SUITE / CK_VERBOSITY select and report.
 */
#include <stdlib.h>

#include <check.h>

#include "tests/unit/conf/suites.h"

typedef Suite *suite_ctor_fn(void);

static suite_ctor_fn *const suite_ctors[] = {
    suite_conf_units, suite_conf_load,  suite_conf_validate, suite_conf_suggest,
    suite_conf_equal, suite_conf_patch, suite_conf_index,
};

int main(void)
{
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof(suite_ctors) / sizeof(suite_ctors[0]); i++) {
        srunner_add_suite(sr, suite_ctors[i]());
    }
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
