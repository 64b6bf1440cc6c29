/* SPDX-License-Identifier: MIT */
/*
 * suites.h - constructors of the proxy's Check suites, one per module
 * (test_<module>.c defines suite_proxy_<module>, named "proxy/<module>").
 */
#ifndef TH_PROXY_SUITES_H
#define TH_PROXY_SUITES_H

#include <check.h>

Suite *suite_proxy_http1(void);
Suite *suite_proxy_headers(void);
Suite *suite_proxy_upstream(void);
Suite *suite_proxy_json(void);

#endif /* TH_PROXY_SUITES_H */
