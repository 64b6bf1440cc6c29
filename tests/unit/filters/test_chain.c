/* SPDX-License-Identifier: MIT */
/*
 * test_chain.c - the chain's contract: on_request in order until a reply,
 * on_response and on_complete in reverse over the filters that ran, and the
 * test_hooks filter's observable effects through the host interface.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "filters/filter.h"
#include "tests/unit/filters/suites.h"

/* A fake host: records the headers filters add. */
typedef struct fake_req {
    flt_ctx_t ctx; /* first: the chain hands back this pointer */
    char added_req[256];
    char added_resp[256];
} fake_req_t;

static const char *fake_header(flt_ctx_t *ctx, const char *name, size_t *len)
{
    (void)ctx, (void)name, (void)len;
    return NULL;
}

static int fake_add_req(flt_ctx_t *ctx, const char *name, const char *value)
{
    fake_req_t *r = (fake_req_t *)ctx;
    size_t n = strlen(r->added_req);
    snprintf(r->added_req + n, sizeof(r->added_req) - n, "%s=%s;", name, value);
    return 0;
}

static int fake_add_resp(flt_ctx_t *ctx, const char *name, const char *value)
{
    fake_req_t *r = (fake_req_t *)ctx;
    size_t n = strlen(r->added_resp);
    snprintf(r->added_resp + n, sizeof(r->added_resp) - n, "%s=%s;", name, value);
    return 0;
}

static const flt_host_t fake_host = {fake_header, fake_add_req, fake_add_resp};

static void fake_init(fake_req_t *r)
{
    memset(r, 0, sizeof(*r));
    r->ctx.host = &fake_host;
    r->ctx.route = "orders";
    r->ctx.method = "GET";
    r->ctx.path = "/";
    r->ctx.client_ip = "127.0.0.1";
}

static cfg_test_hooks_t hooks_cfg(const char *header, const char *log)
{
    return (cfg_test_hooks_t){.header = (char *)header, .log = (char *)log};
}

START_TEST(test_chain_empty_route_continues)
{
    cfg_route_t route = {.name = "r"};
    flt_chain_t *chain;
    char err[128];
    ck_assert_int_eq(flt_chain_new(&route, NULL, &chain, err, sizeof(err)), 0);
    fake_req_t r;
    fake_init(&r);
    flt_reply_t reply = {0};
    unsigned ran = 99;
    ck_assert_int_eq(flt_chain_on_request(chain, &r.ctx, &reply, &ran), FLT_CONTINUE);
    ck_assert_uint_eq(ran, 0);
    flt_chain_free(chain);
}

END_TEST

START_TEST(test_chain_runs_hooks_and_stops_at_a_reply)
{
    char log[] = "/tmp/remora-test-hooks-XXXXXX";
    int fd = mkstemp(log);
    ck_assert_int_ge(fd, 0);
    close(fd);
    cfg_test_hooks_t h1 = hooks_cfg("x-first", log), h2 = hooks_cfg("x-second", "");
    cfg_fault_t abort_all = {.abort_percent = 1.0, .abort_status = 503};
    cfg_test_hooks_t h3 = hooks_cfg("x-never", "");
    cfg_filter_t filters[] = {
        {.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &h1},
        {.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &h2},
        {.kind = CFG_FILTER_FAULT, .fault = &abort_all},
        {.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &h3},
    };
    cfg_route_t route = {.name = "orders", .filters = filters, .filters_count = 4};
    flt_chain_t *chain;
    char err[128];
    ck_assert_int_eq(flt_chain_new(&route, NULL, &chain, err, sizeof(err)), 0);

    fake_req_t r;
    fake_init(&r);
    flt_reply_t reply = {0};
    unsigned ran = 0;
    ck_assert_int_eq(flt_chain_on_request(chain, &r.ctx, &reply, &ran), FLT_REPLY);
    ck_assert_uint_eq(ran, 3);
    ck_assert_int_eq(reply.status, 503);
    ck_assert_str_eq(reply.reason, "fault_abort");
    ck_assert_str_eq(r.added_req, "x-first=on_request;x-second=on_request;");
    ck_assert_str_eq(r.added_resp, "x-first-seq=1;x-second-seq=1;");

    /* Reverse order, and only over the filters that ran: x-never stays silent. */
    flt_chain_on_response(chain, &r.ctx, 503, ran);
    ck_assert_str_eq(r.added_resp,
                     "x-first-seq=1;x-second-seq=1;x-second=on_response;x-first=on_response;");
    flt_complete_t done = {.backend = "canary",
                           .status = 503,
                           .outcome = FLT_OUTCOME_LOCAL,
                           .latency_ns = 1500 * RT_USEC};
    flt_chain_on_complete(chain, &r.ctx, &done, ran);
    flt_chain_free(chain);

    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    unlink(log);
    ck_assert_str_eq(line,
                     "route=orders backend=canary status=503 outcome=local latency_us=1500\n");
}

END_TEST

/* Runs one request through `chain` and returns the "x-a-seq" value it got. */
static int seq_of_request(flt_chain_t *chain)
{
    fake_req_t r;
    fake_init(&r);
    flt_reply_t reply = {0};
    unsigned ran = 0;
    ck_assert_int_eq(flt_chain_on_request(chain, &r.ctx, &reply, &ran), FLT_CONTINUE);
    const char *p = strstr(r.added_resp, "x-a-seq=");
    ck_assert_ptr_nonnull(p);
    return atoi(p + strlen("x-a-seq="));
}

START_TEST(test_chain_carries_state_of_unchanged_rules)
{
    cfg_test_hooks_t old_rule = hooks_cfg("x-a", ""), same_rule = hooks_cfg("x-a", "");
    cfg_fault_t no_fault = {.abort_status = 503};
    cfg_filter_t old_filters[] = {{.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &old_rule}};
    cfg_filter_t new_filters[] = {{.kind = CFG_FILTER_FAULT, .fault = &no_fault},
                                  {.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &same_rule}};
    cfg_route_t old_route = {.name = "r", .filters = old_filters, .filters_count = 1};
    cfg_route_t new_route = {.name = "r", .filters = new_filters, .filters_count = 2};
    flt_chain_t *old_chain, *new_chain, *changed_chain;
    char err[128];
    ck_assert_int_eq(flt_chain_new(&old_route, NULL, &old_chain, err, sizeof(err)), 0);
    ck_assert_int_eq(seq_of_request(old_chain), 1);
    ck_assert_int_eq(seq_of_request(old_chain), 2);

    /* Same kind, same position among its kind, same rule: the count goes on,
     * and both chains share it while the old one is still in use. */
    ck_assert_int_eq(flt_chain_new(&new_route, old_chain, &new_chain, err, sizeof(err)), 0);
    ck_assert_uint_eq(flt_chain_carried(new_chain), 1);
    ck_assert_int_eq(seq_of_request(new_chain), 3);
    ck_assert_int_eq(seq_of_request(old_chain), 4);
    flt_chain_free(old_chain);
    ck_assert_int_eq(seq_of_request(new_chain), 5);

    /* A changed rule starts over. */
    cfg_test_hooks_t changed_rule = hooks_cfg("x-a", "/dev/null");
    cfg_filter_t changed_filters[] = {{.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &changed_rule}};
    cfg_route_t changed_route = {.name = "r", .filters = changed_filters, .filters_count = 1};
    ck_assert_int_eq(flt_chain_new(&changed_route, new_chain, &changed_chain, err, sizeof(err)), 0);
    ck_assert_uint_eq(flt_chain_carried(changed_chain), 0);
    ck_assert_int_eq(seq_of_request(changed_chain), 1);
    flt_chain_free(new_chain);
    flt_chain_free(changed_chain);
}

END_TEST

START_TEST(test_chain_reports_unbuildable_filters)
{
    cfg_test_hooks_t bad = hooks_cfg("x", "/nonexistent-dir/remora/log");
    cfg_filter_t filters[] = {
        {.kind = CFG_FILTER_TEST_HOOKS, .test_hooks = &bad},
        {.kind = CFG_FILTER_RATE_LIMIT}, /* not built in yet */
    };
    cfg_route_t route = {.name = "r", .filters = filters, .filters_count = 1};
    flt_chain_t *chain = NULL;
    char err[128] = "";
    ck_assert_int_eq(flt_chain_new(&route, NULL, &chain, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot open /nonexistent-dir/remora/log"));
    route.filters = filters + 1;
    ck_assert_int_eq(flt_chain_new(&route, NULL, &chain, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "not built into"));
}

END_TEST

START_TEST(test_chain_outcome_names)
{
    ck_assert_str_eq(flt_outcome_name(FLT_OUTCOME_OK), "ok");
    ck_assert_str_eq(flt_outcome_name(FLT_OUTCOME_CONNECT_FAILURE), "connect_failure");
    ck_assert_str_eq(flt_outcome_name(FLT_OUTCOME_OVERLOADED), "overloaded");
    ck_assert_str_eq(flt_outcome_name((flt_outcome_t)42), "unknown");
}

END_TEST

Suite *suite_filters_chain(void)
{
    Suite *s = suite_create("filters/chain");
    TCase *tc = tcase_create("chain");
    tcase_add_test(tc, test_chain_empty_route_continues);
    tcase_add_test(tc, test_chain_runs_hooks_and_stops_at_a_reply);
    tcase_add_test(tc, test_chain_carries_state_of_unchanged_rules);
    tcase_add_test(tc, test_chain_reports_unbuildable_filters);
    tcase_add_test(tc, test_chain_outcome_names);
    suite_add_tcase(s, tc);
    return s;
}
