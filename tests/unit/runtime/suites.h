/* SPDX-License-Identifier: MIT */
/*
 * suites.h - constructors of the runtime's Check suites, one per module
 * (test_<module>.c defines suite_runtime_<module>, named "runtime/<module>").
 */
#ifndef TH_RUNTIME_SUITES_H
#define TH_RUNTIME_SUITES_H

#include <check.h>

Suite *suite_runtime_chan(void);
Suite *suite_runtime_select(void);
Suite *suite_runtime_sched(void);
Suite *suite_runtime_time(void);
Suite *suite_runtime_net(void);
Suite *suite_runtime_stack(void);
Suite *suite_runtime_sync(void);
Suite *suite_runtime_stats(void);

#endif /* TH_RUNTIME_SUITES_H */
