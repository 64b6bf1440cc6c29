/* SPDX-License-Identifier: MIT */
/*
 * suites.h - constructors of conf/'s Check suites (test_<module>.c defines
 * suite_conf_<module>, named "conf/<module>").
 */
#ifndef TH_CONF_SUITES_H
#define TH_CONF_SUITES_H

#include <check.h>

Suite *suite_conf_units(void);
Suite *suite_conf_load(void);
Suite *suite_conf_validate(void);
Suite *suite_conf_suggest(void);
Suite *suite_conf_equal(void);
Suite *suite_conf_patch(void);
Suite *suite_conf_index(void);

#endif /* TH_CONF_SUITES_H */
