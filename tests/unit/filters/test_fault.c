/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c - the fault filter: abort and delay shares over many
 * requests (binomial bounds), and that a delay parks the G for its duration.
 */
#include <check.h>

#include "filters/filter.h"
#include "tests/support/th.h"
#include "tests/unit/filters/suites.h"

typedef struct fault_run {
    cfg_fault_t cfg;
    int requests;
    int aborted;
    rt_time_t elapsed;
} fault_run_t;

static void fault_main(void *arg)
{
    fault_run_t *t = arg;
    cfg_filter_t filter = {.kind = CFG_FILTER_FAULT, .fault = &t->cfg};
    cfg_route_t route = {.name = "r", .filters = &filter, .filters_count = 1};
    flt_chain_t *chain;
    char err[128];
    ck_assert_int_eq(flt_chain_new(&route, NULL, &chain, err, sizeof(err)), 0);
    flt_ctx_t ctx = {.route = "r"};
    rt_time_t start = rt_now();
    for (int i = 0; i < t->requests; i++) {
        flt_reply_t reply = {0};
        unsigned ran;
        if (flt_chain_on_request(chain, &ctx, &reply, &ran) == FLT_REPLY) {
            ck_assert_int_eq(reply.status, (int)t->cfg.abort_status);
            t->aborted++;
        }
    }
    t->elapsed = rt_now() - start;
    flt_chain_free(chain);
}

START_TEST(test_fault_aborts_its_share)
{
    /* 20% of 20,000: mean 4,000, sd 57; +-400 is 7 sd. */
    fault_run_t t = {.cfg = {.abort_percent = 0.2, .abort_status = 429}, .requests = 20000};
    th_rt_run(fault_main, &t, 1);
    ck_assert_msg(t.aborted > 3600 && t.aborted < 4400, "aborted %d of 20000", t.aborted);
}

END_TEST

START_TEST(test_fault_zero_percent_never_fires)
{
    fault_run_t t = {.cfg = {.abort_percent = 0, .delay_percent = 0, .delay_duration = RT_SEC},
                     .requests = 10000};
    th_rt_run(fault_main, &t, 1);
    ck_assert_int_eq(t.aborted, 0);
    ck_assert_msg(t.elapsed < RT_SEC, "a 0%% delay slept");
}

END_TEST

START_TEST(test_fault_delay_parks_the_request)
{
    fault_run_t t = {.cfg = {.delay_percent = 1.0, .delay_duration = 20 * RT_MSEC}, .requests = 5};
    th_rt_run(fault_main, &t, 1);
    ck_assert_int_eq(t.aborted, 0);
    ck_assert_msg(t.elapsed >= 100 * RT_MSEC && t.elapsed < th_slack(RT_SEC),
                  "5 delays of 20 ms took %.1f ms", (double)t.elapsed / RT_MSEC);
}

END_TEST

Suite *suite_filters_fault(void)
{
    Suite *s = suite_create("filters/fault");
    TCase *tc = tcase_create("fault");
    tcase_add_test(tc, test_fault_aborts_its_share);
    tcase_add_test(tc, test_fault_zero_percent_never_fires);
    tcase_add_test(tc, test_fault_delay_parks_the_request);
    suite_add_tcase(s, tc);
    return s;
}
