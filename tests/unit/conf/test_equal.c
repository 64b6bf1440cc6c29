/* SPDX-License-Identifier: MIT */
/*
 * test_equal.c - cfg_cluster_equal / cfg_filter_equal / cfg_canary_equal
 * (conf/equal.c): two loads of the same YAML are equal whatever the key order
 * and style; changing any one key makes exactly the object holding it unequal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "conf/conf.h"
#include "tests/unit/conf/suites.h"

static const char base_yaml[] =
    "listeners:\n"
    "  - name: main\n"
    "    address: 127.0.0.1:10000\n"
    "    routes:\n"
    "      - name: orders\n"
    "        match: { path_prefix: / }\n"
    "        filters:\n"
    "          - rate_limit: { rate: 100, burst: 200, key: client_ip }\n"
    "          - circuit_breaker: { threshold: 5, window: 20s, exceptions: [5xx] }\n"
    "          - fault:\n"
    "              delay: { percent: 10, duration: 20ms }\n"
    "              abort: { percent: 1, status: 503 }\n"
    "        backends:\n"
    "          - { name: stable, cluster: v1, weight: 90 }\n"
    "          - { name: canary, cluster: v2, weight: 10 }\n"
    "        canary:\n"
    "          backend: canary\n"
    "          baseline: stable\n"
    "          window: 30s\n"
    "          promote: { step: 10, interval: 60s }\n"
    "clusters:\n"
    "  - name: v1\n"
    "    endpoints: [127.0.0.1:8081, 127.0.0.1:8082]\n"
    "    max_pending: 100\n"
    "  - name: v2\n"
    "    endpoints: [127.0.0.1:8083]\n";

/* The same config: keys reordered, flow and block styles swapped, quoting and comments added. */
static const char reordered_yaml[] =
    "clusters:\n"
    "  - { max_pending: \"100\", endpoints: [127.0.0.1:8081, '127.0.0.1:8082'], name: v1 }\n"
    "  - endpoints:\n"
    "      - 127.0.0.1:8083   # the only one\n"
    "    name: v2\n"
    "listeners:\n"
    "  - address: 127.0.0.1:10000\n"
    "    name: main\n"
    "    routes:\n"
    "      - canary:\n"
    "          promote:\n"
    "            interval: 60s\n"
    "            step: 10\n"
    "          window: 30s\n"
    "          baseline: stable\n"
    "          backend: canary\n"
    "        backends:\n"
    "          - { cluster: v1, name: stable, weight: 90 }\n"
    "          - { weight: 10, name: canary, cluster: v2 }\n"
    "        filters:\n"
    "          - rate_limit:\n"
    "              key: client_ip\n"
    "              burst: 200\n"
    "              rate: 100\n"
    "          - circuit_breaker: { exceptions: [5xx], window: 20s, threshold: 5 }\n"
    "          - fault:\n"
    "              abort: { status: 503, percent: 1 }\n"
    "              delay: { duration: 20ms, percent: 10 }\n"
    "        match: { path_prefix: / }\n"
    "        name: orders\n";

static cfg_config_t *load(const char *yaml)
{
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    int rc = cfg_load_data(yaml, strlen(yaml), &cfg, &errs);
    if (rc != 0) {
        cfg_errors_print(&errs, "<test>", stderr);
    }
    ck_assert_int_eq(rc, 0);
    return cfg;
}

/* `base_yaml` with the one occurrence of `from` replaced by `to` (caller frees). */
static char *mutate(const char *from, const char *to)
{
    const char *at = strstr(base_yaml, from);
    ck_assert_msg(at != NULL, "'%s' not in the base config", from);
    ck_assert_msg(strstr(at + 1, from) == NULL, "'%s' is not unique", from);
    size_t head = (size_t)(at - base_yaml);
    size_t size = sizeof(base_yaml) - strlen(from) + strlen(to);
    char *s = malloc(size);
    snprintf(s, size, "%.*s%s%s", (int)head, base_yaml, to, at + strlen(from));
    return s;
}

static const cfg_route_t *route0(const cfg_config_t *cfg)
{
    return &cfg->listeners[0].routes[0];
}

enum {
    CLUSTER0 = 1 << 0,
    CLUSTER1 = 1 << 1,
    FILTER0 = 1 << 2,
    FILTER1 = 1 << 3,
    FILTER2 = 1 << 4,
    CANARY = 1 << 5,
};

/* Which of the compared objects differ between `a` and `b`, as a mask of the bits above. */
static unsigned differing(const cfg_config_t *a, const cfg_config_t *b)
{
    unsigned mask = 0;
    for (unsigned i = 0; i < 2; i++) {
        mask |= cfg_cluster_equal(&a->clusters[i], &b->clusters[i]) ? 0 : CLUSTER0 << i;
        /* Equality is symmetric. */
        ck_assert(cfg_cluster_equal(&a->clusters[i], &b->clusters[i]) ==
                  cfg_cluster_equal(&b->clusters[i], &a->clusters[i]));
    }
    for (unsigned i = 0; i < 3; i++) {
        const cfg_filter_t *fa = &route0(a)->filters[i], *fb = &route0(b)->filters[i];
        mask |= cfg_filter_equal(fa, fb) ? 0 : FILTER0 << i;
        ck_assert(cfg_filter_equal(fa, fb) == cfg_filter_equal(fb, fa));
    }
    mask |= cfg_canary_equal(route0(a)->canary, route0(b)->canary) ? 0 : CANARY;
    return mask;
}

START_TEST(test_equal_two_loads_of_the_same_yaml_are_equal)
{
    cfg_config_t *a = load(base_yaml), *b = load(base_yaml);
    ck_assert_uint_eq(differing(a, a), 0);
    ck_assert_uint_eq(differing(a, b), 0);
    cfg_config_free(a);
    cfg_config_free(b);
}

END_TEST

START_TEST(test_equal_ignores_key_order_style_and_quoting)
{
    cfg_config_t *a = load(base_yaml), *b = load(reordered_yaml);
    ck_assert_str_eq(b->clusters[0].name, "v1"); /* the reordered file still pairs up */
    ck_assert_uint_eq(differing(a, b), 0);
    cfg_config_free(a);
    cfg_config_free(b);
}

END_TEST

static const struct mutation {
    const char *from, *to;
    unsigned differs;
} mutations[] = {
    /* Keys that belong to none of the compared objects change nothing. */
    {"weight: 90", "weight: 80", 0},
    {"path_prefix: /", "path_prefix: /api", 0},
    {"name: orders", "name: shop", 0},
    /* clusters */
    {"127.0.0.1:8082]", "127.0.0.1:8084]", CLUSTER0},
    {", 127.0.0.1:8082]", "]", CLUSTER0},
    {"[127.0.0.1:8081, 127.0.0.1:8082]", "[127.0.0.1:8082, 127.0.0.1:8081]", CLUSTER0},
    {"max_pending: 100", "max_pending: 101", CLUSTER0},
    {"    max_pending: 100\n", "", CLUSTER0},
    {"[127.0.0.1:8083]", "[127.0.0.1:8083]\n    connect_timeout: 2s", CLUSTER1},
    /* filters */
    {"rate: 100", "rate: 101", FILTER0},
    {"burst: 200, ", "", FILTER0},
    {"key: client_ip", "key: route", FILTER0},
    {"threshold: 5", "threshold: 6", FILTER1},
    {"exceptions: [5xx]", "exceptions: [5xx, timeout]", FILTER1},
    {", exceptions: [5xx]", ", exceptions: []", FILTER1}, /* empty list vs absent */
    {", exceptions: [5xx]", "", FILTER1},
    {"status: 503", "status: 502", FILTER2},
    {"duration: 20ms", "duration: 21ms", FILTER2},
    {"delay: { percent: 10, duration: 20ms }", "delay: {}", FILTER2},
    /* the same value written differently counts as changed (conservative) */
    {"window: 20s", "window: 20000ms", FILTER1},
    /* canary */
    {"window: 30s", "window: 31s", CANARY},
    {"step: 10", "step: 20", CANARY},
    {"\n          promote: { step: 10, interval: 60s }", "", CANARY},
    {"baseline: stable", "baseline: stable\n          sticky: cookie:s", CANARY},
};

START_TEST(test_equal_changing_one_key_makes_its_object_unequal)
{
    const struct mutation *m = &mutations[_i];
    char *yaml = mutate(m->from, m->to);
    cfg_config_t *a = load(base_yaml), *b = load(yaml);
    ck_assert_msg(differing(a, b) == m->differs, "'%s' -> '%s': differs 0x%x, want 0x%x", m->from,
                  m->to, differing(a, b), m->differs);
    cfg_config_free(a);
    cfg_config_free(b);
    free(yaml);
}

END_TEST

START_TEST(test_equal_kinds_and_null)
{
    cfg_config_t *a = load(base_yaml);
    const cfg_route_t *r = route0(a);
    ck_assert(!cfg_filter_equal(&r->filters[0], &r->filters[1])); /* rate_limit vs breaker */
    ck_assert(!cfg_cluster_equal(&a->clusters[0], &a->clusters[1]));
    ck_assert(cfg_canary_equal(NULL, NULL));
    ck_assert(!cfg_canary_equal(r->canary, NULL));
    ck_assert(!cfg_canary_equal(NULL, r->canary));
    ck_assert(cfg_cluster_equal(NULL, NULL));
    ck_assert(!cfg_cluster_equal(&a->clusters[0], NULL));
    ck_assert(cfg_filter_equal(NULL, NULL));
    ck_assert(!cfg_filter_equal(NULL, &r->filters[0]));
    cfg_config_free(a);
}

END_TEST

Suite *suite_conf_equal(void)
{
    Suite *s = suite_create("conf/equal");
    TCase *tc = tcase_create("equal");
    tcase_add_test(tc, test_equal_two_loads_of_the_same_yaml_are_equal);
    tcase_add_test(tc, test_equal_ignores_key_order_style_and_quoting);
    tcase_add_test(tc, test_equal_kinds_and_null);
    suite_add_tcase(s, tc);
    tc = tcase_create("changes");
    tcase_add_loop_test(tc, test_equal_changing_one_key_makes_its_object_unequal, 0,
                        (int)(sizeof(mutations) / sizeof(mutations[0])));
    suite_add_tcase(s, tc);
    return s;
}
