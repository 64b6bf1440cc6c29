/* SPDX-License-Identifier: MIT */
/*
 * suites.h - constructors of the integration suites (test_<name>.c defines
 * suite_integration_<name>, named "integration/<name>"). They start the real
 * remora and remora-echo: see tests/support/th_proc.h.
 */
#ifndef TH_INTEGRATION_SUITES_H
#define TH_INTEGRATION_SUITES_H

#include <check.h>

Suite *suite_integration_basic(void);
Suite *suite_integration_bodies(void);
Suite *suite_integration_malformed(void);
Suite *suite_integration_pool(void);
Suite *suite_integration_upstream(void);
Suite *suite_integration_drain(void);
Suite *suite_integration_filters(void);
Suite *suite_integration_admin(void);
Suite *suite_integration_reload(void);
Suite *suite_integration_reload_load(void);

#endif /* TH_INTEGRATION_SUITES_H */
