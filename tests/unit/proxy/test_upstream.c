/* SPDX-License-Identifier: MIT */
/*
 * test_upstream.c - clusters whose endpoints are names: every address a name
 * resolves to becomes an endpoint, and the refresher follows the name as its
 * addresses change (a Kubernetes headless Service scaling), keeping the
 * endpoints (and their pools) that stayed; a lookup without an answer keeps
 * the name's last addresses, an answer without addresses drops them. A fake
 * resolver stands in for DNS, so the test controls what the name resolves to.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "proxy/proxy.h"
#include "tests/support/th.h"
#include "tests/unit/proxy/suites.h"

static _Atomic int dns_phase; /* 0: .1 and .2; 1: .2 and .3; 2: no answer; 3: no addresses */
static _Atomic int dns_queries;

static int fake_resolve(const char *host, const char *port, struct sockaddr_storage *out,
                        socklen_t *lens, unsigned max)
{
    atomic_fetch_add(&dns_queries, 1);
    if (strcmp(host, "svc.test") != 0 || max < 2) {
        return 0;
    }
    int phase = atomic_load(&dns_phase);
    if (phase >= 2) {
        return phase == 2 ? PX_RESOLVE_NO_ANSWER : 0;
    }
    const char *addrs[2][2] = {{"10.0.0.1", "10.0.0.2"}, {"10.0.0.2", "10.0.0.3"}};
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out[i];
        memset(&out[i], 0, sizeof(out[i]));
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)atoi(port));
        inet_pton(AF_INET, addrs[phase][i], &in->sin_addr);
        lens[i] = sizeof(*in);
    }
    return 2;
}

/* The endpoint of `cl` named `name` ("10.0.0.2:80"), or NULL. */
static px_endpoint_t *find_ep(px_cluster_t *cl, const char *name)
{
    for (unsigned i = 0; i < cl->neps; i++) {
        if (strcmp(cl->eps[i]->name, name) == 0) {
            return cl->eps[i];
        }
    }
    return NULL;
}

static void dns_main(void *arg)
{
    (void)arg;
    char *endpoints[] = {"svc.test:80", "127.0.0.1:9"};
    cfg_cluster_t cfg = {
        .name = "svc",
        .endpoints = endpoints,
        .endpoints_count = 2,
        .max_connections = 4,
        .max_pending = 4,
        .connect_timeout = RT_SEC,
        .dns_refresh = 20 * RT_MSEC,
    };
    px__set_resolver(fake_resolve);
    atomic_store(&dns_phase, 0);
    char err[128];
    px_cluster_t *cl = px_cluster_open(&cfg, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(cl);
    ck_assert(cl->has_names);
    ck_assert_uint_eq(cl->neps, 3);
    ck_assert_ptr_nonnull(find_ep(cl, "10.0.0.1:80"));
    px_endpoint_t *kept = find_ep(cl, "10.0.0.2:80");
    ck_assert_ptr_nonnull(kept);
    ck_assert_ptr_nonnull(find_ep(cl, "127.0.0.1:9"));

    /* Round-robin reaches every address. */
    int seen1 = 0, seen2 = 0, seen_ip = 0;
    for (int i = 0; i < 30; i++) {
        px_endpoint_t *ep = px_cluster_pick(cl, NULL);
        seen1 += strcmp(ep->name, "10.0.0.1:80") == 0;
        seen2 += strcmp(ep->name, "10.0.0.2:80") == 0;
        seen_ip += strcmp(ep->name, "127.0.0.1:9") == 0;
        px_endpoint_unref(ep);
    }
    ck_assert_msg(seen1 == 10 && seen2 == 10 && seen_ip == 10, "picks %d/%d/%d", seen1, seen2,
                  seen_ip);

    /* The name changes; the refresher picks it up within a few periods. */
    px_cluster_start(cl);
    int queries = atomic_load(&dns_queries);
    atomic_store(&dns_phase, 1);
    rt_time_t deadline = rt_deadline_in(th_slack(2 * RT_SEC));
    bool moved = false;
    while (!moved && rt_now() < deadline) {
        rt_sleep(5 * RT_MSEC);
        rt_mutex_lock(&cl->mu);
        moved = find_ep(cl, "10.0.0.3:80") != NULL;
        rt_mutex_unlock(&cl->mu);
    }
    ck_assert_msg(moved, "the refresher never saw the new address");
    ck_assert_int_gt(atomic_load(&dns_queries), queries);
    rt_mutex_lock(&cl->mu);
    ck_assert_uint_eq(cl->neps, 3);
    ck_assert_ptr_null(find_ep(cl, "10.0.0.1:80"));
    ck_assert_ptr_eq(find_ep(cl, "10.0.0.2:80"), kept); /* same endpoint, same pool */
    rt_mutex_unlock(&cl->mu);

    /* DNS stops answering (a timeout, SERVFAIL): the name keeps its addresses. */
    atomic_store(&dns_phase, 2);
    queries = atomic_load(&dns_queries);
    deadline = rt_deadline_in(th_slack(2 * RT_SEC));
    while (atomic_load(&dns_queries) < queries + 3 && rt_now() < deadline) {
        rt_sleep(5 * RT_MSEC);
    }
    ck_assert_int_ge(atomic_load(&dns_queries), queries + 3);
    rt_mutex_lock(&cl->mu);
    ck_assert_uint_eq(cl->neps, 3);
    ck_assert_ptr_eq(find_ep(cl, "10.0.0.2:80"), kept);
    ck_assert_ptr_nonnull(find_ep(cl, "10.0.0.3:80"));
    rt_mutex_unlock(&cl->mu);

    /* The answer is that the name has no addresses (no ready pods): they go. */
    atomic_store(&dns_phase, 3);
    deadline = rt_deadline_in(th_slack(2 * RT_SEC));
    unsigned neps = 3;
    while (neps != 1 && rt_now() < deadline) {
        rt_sleep(5 * RT_MSEC);
        rt_mutex_lock(&cl->mu);
        neps = cl->neps;
        rt_mutex_unlock(&cl->mu);
    }
    ck_assert_uint_eq(neps, 1);
    rt_mutex_lock(&cl->mu);
    ck_assert_ptr_nonnull(find_ep(cl, "127.0.0.1:9"));
    rt_mutex_unlock(&cl->mu);

    px_cluster_unuse(cl);          /* the last user: closes it */
    rt_sleep(3 * cfg.dns_refresh); /* the refresher sees `stop`, ends, and frees it */
    px__set_resolver(NULL);
}

START_TEST(test_upstream_names_resolve_to_every_address_and_follow_changes)
{
    th_rt_run(dns_main, NULL, 2);
}

END_TEST

START_TEST(test_upstream_rejects_bad_endpoint)
{
    char *endpoints[] = {"no-port-here"};
    cfg_cluster_t cfg = {.name = "bad", .endpoints = endpoints, .endpoints_count = 1};
    char err[128] = "";
    ck_assert_ptr_null(px_cluster_open(&cfg, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "bad endpoint 'no-port-here'"));
}

END_TEST

Suite *suite_proxy_upstream(void)
{
    Suite *s = suite_create("proxy/upstream");
    TCase *tc = tcase_create("dns");
    tcase_add_test(tc, test_upstream_names_resolve_to_every_address_and_follow_changes);
    tcase_add_test(tc, test_upstream_rejects_bad_endpoint);
    suite_add_tcase(s, tc);
    return s;
}
