/* SPDX-License-Identifier: MIT */
/*
 * main.c - the test_integration runner: adds every suite of suites.h and
 * runs them with CK_ENV (CK_RUN_SUITE selects one; ctest sets it per entry).
 */
#include <signal.h>
#include <stdlib.h>

#include <check.h>

#include "tests/integration/suites.h"

typedef Suite *suite_ctor_fn(void);

static suite_ctor_fn *const suite_ctors[] = {
    suite_integration_basic,       suite_integration_bodies,   suite_integration_malformed,
    suite_integration_pool,        suite_integration_upstream, suite_integration_drain,
    suite_integration_filters,     suite_integration_admin,    suite_integration_reload,
    suite_integration_reload_load,
};

int main(void)
{
    /* A peer closing mid-write must be an error return, not a dead test. */
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof(suite_ctors) / sizeof(suite_ctors[0]); i++) {
        srunner_add_suite(sr, suite_ctors[i]());
    }
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
