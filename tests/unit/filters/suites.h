/* SPDX-License-Identifier: MIT */
/*
 * suites.h - constructors of the filters' Check suites (test_<module>.c
 * defines suite_filters_<module>, named "filters/<module>").
 */
#ifndef TH_FILTERS_SUITES_H
#define TH_FILTERS_SUITES_H

#include <check.h>

Suite *suite_filters_chain(void);
Suite *suite_filters_fault(void);

#endif /* TH_FILTERS_SUITES_H */
