/* SPDX-License-Identifier: MIT */
/*
 * test_patch.c - cfg_set_weights (conf/patch.c): weights change in place in
 * block and flow style, quoted or not, present or absent; every other byte of
 * the document stays as it was (each test compares the whole output); only
 * the named route changes; problems name their path and line; the result
 * loads with the new weights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "conf/conf.h"
#include "tests/unit/conf/suites.h"

#define HEAD                                                                                       \
    "# remora config\n"                                                                            \
    "listeners:\n"                                                                                 \
    "  - name: main\n"                                                                             \
    "    address: 127.0.0.1:10000\n"                                                               \
    "    routes:\n"

#define CLUSTERS                                                                                   \
    "clusters:\n"                                                                                  \
    "  - { name: v1, endpoints: [127.0.0.1:8081] }  # stable\n"                                    \
    "  - { name: v2, endpoints: [127.0.0.1:8082] }\n"

#define W(name, weight) ((cfg_weight_t){(name), (weight)})

/* Patches `in` and compares the whole output with `want` (so no other byte may change). */
static void patch_eq(const char *in, const char *route, const cfg_weight_t *w, size_t n,
                     const char *want)
{
    char *out = NULL;
    size_t out_len = 0;
    cfg_errors_t errs = {0};
    int rc = cfg_set_weights(in, strlen(in), route, w, n, &out, &out_len, &errs);
    if (rc != 0) {
        cfg_errors_print(&errs, "<test>", stderr);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_uint_eq(out_len, strlen(out)); /* NUL-terminated, no embedded NUL */
    ck_assert_str_eq(out, want);
    free(out);
}

/* Patches `in` expecting exactly one problem; `*out` must stay untouched. */
static void patch_fails(const char *in, const char *route, const cfg_weight_t *w, size_t n,
                        const char *path, unsigned line, const char *message)
{
    char *sentinel = (char *)&sentinel, *out = sentinel;
    size_t out_len = 7;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_set_weights(in, strlen(in), route, w, n, &out, &out_len, &errs), -1);
    ck_assert_ptr_eq(out, sentinel);
    ck_assert_uint_eq(out_len, 7);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, path);
    ck_assert_uint_eq(errs.items[0].line, line);
    if (message != NULL) {
        ck_assert_str_eq(errs.items[0].message, message);
    }
    cfg_errors_destroy(&errs);
}

START_TEST(test_patch_block_style_keeps_comments_and_layout)
{
    const char *in = HEAD "      - name: orders   # the shop\n"
                          "        match: { path_prefix: / }\n"
                          "        backends:\n"
                          "          # stable first\n"
                          "          - name: stable\n"
                          "            cluster: v1   # old\n"
                          "            weight: 90    # most traffic\n"
                          "\n"
                          "          - name: canary\n"
                          "            weight:   10\n"
                          "            cluster: v2\n" CLUSTERS;
    const char *want = HEAD "      - name: orders   # the shop\n"
                            "        match: { path_prefix: / }\n"
                            "        backends:\n"
                            "          # stable first\n"
                            "          - name: stable\n"
                            "            cluster: v1   # old\n"
                            "            weight: 50    # most traffic\n"
                            "\n"
                            "          - name: canary\n"
                            "            weight:   150\n"
                            "            cluster: v2\n" CLUSTERS;
    cfg_weight_t w[] = {W("canary", 150), W("stable", 50)};
    patch_eq(in, "orders", w, 2, want);
}

END_TEST

START_TEST(test_patch_flow_style)
{
    const char *in = HEAD "      - { name: orders, match: { path_prefix: / },\n"
                          "          backends: [ { name: stable, cluster: v1, weight: 90 },\n"
                          "                      {name: canary,weight: 10,cluster: v2} ] }\n"
                          "      - name: other\n"
                          "        backends: [{name: stable, weight: 3}]\n" CLUSTERS;
    const char *want = HEAD "      - { name: orders, match: { path_prefix: / },\n"
                            "          backends: [ { name: stable, cluster: v1, weight: 0 },\n"
                            "                      {name: canary,weight: 100,cluster: v2} ] }\n"
                            "      - name: other\n"
                            "        backends: [{name: stable, weight: 3}]\n" CLUSTERS;
    cfg_weight_t w[] = {W("stable", 0), W("canary", 100)};
    patch_eq(in, "orders", w, 2, want);
}

END_TEST

START_TEST(test_patch_quoted_weights_stay_quoted)
{
    const char *in = HEAD "      - name: orders\n"
                          "        backends:\n"
                          "          - { name: stable, cluster: v1, weight: \"90\" }\n"
                          "          - name: canary\n"
                          "            weight: '10'\n"
                          "          - name: third\n"
                          "            weight: &w !!str \"5\"  # anchored and tagged\n";
    const char *want = HEAD "      - name: orders\n"
                            "        backends:\n"
                            "          - { name: stable, cluster: v1, weight: \"7\" }\n"
                            "          - name: canary\n"
                            "            weight: '1234'\n"
                            "          - name: third\n"
                            "            weight: &w !!str \"0\"  # anchored and tagged\n";
    cfg_weight_t w[] = {W("stable", 7), W("canary", 1234), W("third", 0)};
    patch_eq(in, "orders", w, 3, want);
}

END_TEST

START_TEST(test_patch_adds_a_missing_weight_in_block_style)
{
    /* The first key sits on the "- " line: the new key aligns with it, not with the dash. */
    const char *in = HEAD "      - name: orders\n"
                          "        backends:\n"
                          "          - name: stable\n"
                          "            cluster: v1   # comment stays on its line\n"
                          "          - cluster: v2\n"
                          "            name: canary\n"
                          "          -   name: odd\n"
                          "          - name: empty\n"
                          "            cluster:\n"
                          "          - name: nullweight\n"
                          "            weight:\n"
                          "        canary: { backend: canary, baseline: stable }\n"
                          "      - name: last\n"
                          "        backends:\n"
                          "          - name: eof\n"
                          "            cluster: v1";
    const char *want = HEAD "      - name: orders\n"
                            "        backends:\n"
                            "          - name: stable\n"
                            "            cluster: v1   # comment stays on its line\n"
                            "            weight: 1\n"
                            "          - cluster: v2\n"
                            "            name: canary\n"
                            "            weight: 2\n"
                            "          -   name: odd\n"
                            "              weight: 3\n"
                            "          - name: empty\n"
                            "            cluster:\n"
                            "            weight: 4\n"
                            "          - name: nullweight\n"
                            "            weight: 5\n"
                            "        canary: { backend: canary, baseline: stable }\n"
                            "      - name: last\n"
                            "        backends:\n"
                            "          - name: eof\n"
                            "            cluster: v1";
    cfg_weight_t w[] = {W("stable", 1), W("canary", 2), W("odd", 3), W("empty", 4),
                        W("nullweight", 5)};
    patch_eq(in, "orders", w, 5, want);
    cfg_weight_t eof[] = {W("eof", 6)};
    char *want_eof = NULL;
    ck_assert_int_ge(asprintf(&want_eof, "%s\n            weight: 6", in), 0);
    patch_eq(in, "last", eof, 1, want_eof);
    free(want_eof);
}

END_TEST

START_TEST(test_patch_adds_a_missing_weight_in_flow_style)
{
    const char *in = HEAD "      - name: orders\n"
                          "        backends: [ { name: stable, cluster: v1 },\n"
                          "                    { cluster: v2, name: canary }, {name: c},\n"
                          "                    { name: n, weight: } ]\n";
    const char *want = HEAD "      - name: orders\n"
                            "        backends: [ { name: stable, cluster: v1, weight: 90 },\n"
                            "                    { cluster: v2, name: canary, weight: 10 }, "
                            "{name: c, weight: 0},\n"
                            "                    { name: n, weight: 4 } ]\n";
    cfg_weight_t w[] = {W("stable", 90), W("canary", 10), W("c", 0), W("n", 4)};
    patch_eq(in, "orders", w, 4, want);
}

END_TEST

/*
 * An entry whose last key has an empty value: `cluster:,` would not parse
 * (libyaml refuses a plain scalar followed by ":," in a flow collection).
 */
START_TEST(test_patch_adds_a_weight_after_an_empty_flow_value)
{
    const char *in = HEAD "      - name: orders\n"
                          "        backends: [ { name: a, cluster: }, { name: b, \"cluster\": },\n"
                          "                    { name: c, cluster:  } ]\n";
    const char *want = HEAD "      - name: orders\n"
                            "        backends: [ { name: a, cluster: , weight: 1 }, "
                            "{ name: b, \"cluster\": , weight: 2 },\n"
                            "                    { name: c, cluster: , weight: 3  } ]\n";
    cfg_weight_t w[] = {W("a", 1), W("b", 2), W("c", 3)};
    patch_eq(in, "orders", w, 3, want);

    char *out = NULL;
    size_t out_len = 0;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_set_weights(in, strlen(in), "orders", w, 3, &out, &out_len, &errs), 0);
    cfg_config_t *cfg = NULL;
    ck_assert_int_eq(cfg_load_data(out, out_len, &cfg, &errs), -1); /* the clusters are empty */
    ck_assert_str_ne(errs.items[0].message, "");
    ck_assert_int_ne(strncmp(errs.items[0].message, "YAML syntax error", 17), 0);
    cfg_errors_destroy(&errs);
    free(out);
}

END_TEST

/* An empty value with an anchor or tag keeps them: the new key goes after, not in between. */
START_TEST(test_patch_adds_a_weight_after_a_decorated_empty_value)
{
    const char *in = HEAD "      - name: orders\n"
                          "        backends:\n"
                          "          - name: a\n"
                          "            cluster: &c\n"
                          "          - { name: b, cluster: !!str }\n"
                          "          - name: c\n"
                          "            cluster: &d !!str   # empty\n";
    const char *want = HEAD "      - name: orders\n"
                            "        backends:\n"
                            "          - name: a\n"
                            "            cluster: &c\n"
                            "            weight: 1\n"
                            "          - { name: b, cluster: !!str , weight: 2 }\n"
                            "          - name: c\n"
                            "            cluster: &d !!str   # empty\n"
                            "            weight: 3\n";
    cfg_weight_t w[] = {W("a", 1), W("b", 2), W("c", 3)};
    patch_eq(in, "orders", w, 3, want);
    patch_eq(want, "orders", w, 3, want); /* and setting them again changes nothing */
}

END_TEST

START_TEST(test_patch_changes_only_the_named_route)
{
    /* Same backend names in two routes of two listeners; `name` after `backends` too. */
    const char *in = "listeners:\n"
                     "  - name: a\n"
                     "    routes:\n"
                     "      - name: shop\n"
                     "        backends:\n"
                     "          - { name: stable, weight: 90 }\n"
                     "          - { name: canary, weight: 10 }\n"
                     "      - backends:\n"
                     "          - { name: stable, weight: 90 }\n"
                     "          - { name: canary, weight: 10 }\n"
                     "        name: orders\n"
                     "  - name: b\n"
                     "    routes:\n"
                     "      - name: search\n"
                     "        backends:\n"
                     "          - { name: stable, weight: 90 }\n"
                     "          - { name: canary, weight: 10 }\n";
    const char *want = "listeners:\n"
                       "  - name: a\n"
                       "    routes:\n"
                       "      - name: shop\n"
                       "        backends:\n"
                       "          - { name: stable, weight: 90 }\n"
                       "          - { name: canary, weight: 10 }\n"
                       "      - backends:\n"
                       "          - { name: stable, weight: 0 }\n"
                       "          - { name: canary, weight: 100 }\n"
                       "        name: orders\n"
                       "  - name: b\n"
                       "    routes:\n"
                       "      - name: search\n"
                       "        backends:\n"
                       "          - { name: stable, weight: 90 }\n"
                       "          - { name: canary, weight: 10 }\n";
    cfg_weight_t w[] = {W("stable", 0), W("canary", 100)};
    patch_eq(in, "orders", w, 2, want);
    /* Other places named like ours are not routes: a `name: orders` in a cluster is ignored. */
    cfg_weight_t none[] = {W("stable", 1)};
    patch_fails("clusters:\n  - name: orders\n    backends: [ { name: stable } ]\n", "orders", none,
                1, "", 0, "no route named \"orders\"");
}

END_TEST

START_TEST(test_patch_last_duplicate_wins_and_nothing_listed_copies)
{
    const char *in = HEAD "      - name: orders\n"
                          "        backends: [ { name: stable, weight: 90 } ]\n";
    const char *want = HEAD "      - name: orders\n"
                            "        backends: [ { name: stable, weight: 3 } ]\n";
    cfg_weight_t w[] = {W("stable", 1), W("stable", 3)};
    patch_eq(in, "orders", w, 2, want);
    patch_eq(in, "orders", NULL, 0, in);
}

END_TEST

START_TEST(test_patch_counts_characters_not_bytes)
{
    /* libyaml's marks count code points and skip a BOM; CRLF line ends are kept. */
    const char *in = "\xEF\xBB\xBF# caf\xC3\xA9 \xE2\x98\x95 \xF0\x9F\x90\x9F\r\n"
                     "listeners:\r\n"
                     "  - name: m\xC3\xA4in\r\n"
                     "    routes:\r\n"
                     "      - name: \"\xC3\xB6rders\"\r\n"
                     "        backends:\r\n"
                     "          - name: stable  # \xE2\x98\x95\r\n"
                     "            weight: 90\r\n"
                     "          - name: canary\r\n"
                     "            cluster: c\xC3\xA9\r\n"
                     "          - { name: x\xC3\xA9, cluster: c }\r\n";
    const char *want = "\xEF\xBB\xBF# caf\xC3\xA9 \xE2\x98\x95 \xF0\x9F\x90\x9F\r\n"
                       "listeners:\r\n"
                       "  - name: m\xC3\xA4in\r\n"
                       "    routes:\r\n"
                       "      - name: \"\xC3\xB6rders\"\r\n"
                       "        backends:\r\n"
                       "          - name: stable  # \xE2\x98\x95\r\n"
                       "            weight: 11\r\n"
                       "          - name: canary\r\n"
                       "            cluster: c\xC3\xA9\r\n"
                       "            weight: 22\r\n"
                       "          - { name: x\xC3\xA9, cluster: c, weight: 33 }\r\n";
    cfg_weight_t w[] = {W("stable", 11), W("canary", 22), W("x\xC3\xA9", 33)};
    patch_eq(in, "\xC3\xB6rders", w, 3, want);
}

END_TEST

START_TEST(test_patch_reports_unknown_route_and_backend)
{
    const char *in = HEAD "      - name: orders\n"
                          "        match: { path_prefix: / }\n"
                          "        backends:\n"
                          "          - { name: stable, cluster: v1, weight: 90 }\n"
                          "      - name: empty\n"
                          "        match: { path_prefix: /e }\n";
    cfg_weight_t w[] = {W("stable", 1)};
    patch_fails(in, "nope", w, 1, "", 0, "no route named \"nope\"");
    patch_fails(in, "nope", NULL, 0, "", 0, "no route named \"nope\"");
    cfg_weight_t bad[] = {W("stable", 1), W("canary", 2)};
    patch_fails(in, "orders", bad, 2, "listeners[0].routes[0].backends", 8,
                "no backend named \"canary\"");
    /* No backends at all: the problem is placed at the route. */
    patch_fails(in, "empty", w, 1, "listeners[0].routes[1].backends", 10,
                "no backend named \"stable\"");
    const char *coll = HEAD "      - name: orders\n"
                            "        backends:\n"
                            "          - name: stable\n"
                            "            weight: [1]\n";
    patch_fails(coll, "orders", w, 1, "listeners[0].routes[0].backends[0].weight", 9,
                "expected a scalar weight, got a collection");
}

END_TEST

START_TEST(test_patch_reports_yaml_syntax_errors)
{
    cfg_weight_t w[] = {W("stable", 1)};
    patch_fails("listeners: [\n  - a\n", "orders", w, 1, "", 2, NULL);
    const char *utf16 = "\xFF\xFEl\0i\0";
    char *out = NULL;
    size_t out_len = 0;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_set_weights(utf16, 6, "orders", w, 1, &out, &out_len, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_ptr_null(out);
    cfg_errors_destroy(&errs);
}

END_TEST

/* libyaml's scanner is quadratic in the flow nesting depth: the parse stops at level 65. */
START_TEST(test_patch_refuses_deep_nesting)
{
    enum { DEEP = 100000 };

    char *in = malloc(DEEP + 1);
    ck_assert_ptr_nonnull(in);
    memset(in, '[', DEEP);
    in[DEEP] = '\0';
    cfg_weight_t w[] = {W("stable", 1)};
    patch_fails(in, "orders", w, 1, "", 1,
                "YAML syntax error: collections nested deeper than 64 levels");
    free(in);
}

END_TEST

START_TEST(test_patch_result_loads_with_the_new_weights)
{
    const char *in = HEAD "      - name: orders\n"
                          "        match: { path_prefix: / }\n"
                          "        backends:\n"
                          "          - name: stable\n"
                          "            cluster: v1\n"
                          "            weight: \"90\"\n"
                          "          - { name: canary, cluster: v2 }\n"
                          "        canary: { backend: canary, baseline: stable }\n" CLUSTERS;
    cfg_weight_t w[] = {W("stable", 25), W("canary", 75)};
    char *out = NULL;
    size_t out_len = 0;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_set_weights(in, strlen(in), "orders", w, 2, &out, &out_len, &errs), 0);
    cfg_config_t *cfg = NULL;
    int rc = cfg_load_data(out, out_len, &cfg, &errs);
    if (rc != 0) {
        cfg_errors_print(&errs, "<patched>", stderr);
    }
    ck_assert_int_eq(rc, 0);
    const cfg_route_t *r = &cfg->listeners[0].routes[0];
    ck_assert_str_eq(r->backends[0].name, "stable");
    ck_assert_uint_eq(r->backends[0].weight, 25);
    ck_assert_str_eq(r->backends[1].name, "canary");
    ck_assert_uint_eq(r->backends[1].weight, 75);
    cfg_config_free(cfg);
    free(out);

    /* The embedded default too: move all traffic to its last backend. */
    const char *def = cfg_default_yaml();
    cfg_config_t *orig = NULL;
    ck_assert_int_eq(cfg_load_data(def, strlen(def), &orig, &errs), 0);
    const cfg_route_t *dr = &orig->listeners[0].routes[0];
    ck_assert_uint_eq(dr->backends_count, 2);
    cfg_weight_t all[] = {W(dr->backends[0].name, 0), W(dr->backends[1].name, 100)};
    ck_assert_int_eq(cfg_set_weights(def, strlen(def), dr->name, all, 2, &out, &out_len, &errs), 0);
    ck_assert_int_eq(cfg_load_data(out, out_len, &cfg, &errs), 0);
    ck_assert_uint_eq(cfg->listeners[0].routes[0].backends[0].weight, 0);
    ck_assert_uint_eq(cfg->listeners[0].routes[0].backends[1].weight, 100);
    /* Only the two weights' digits changed length. */
    size_t old_digits = strlen(dr->backends[0].weight_text) + strlen(dr->backends[1].weight_text);
    ck_assert_uint_eq(out_len, strlen(def) - old_digits + strlen("0") + strlen("100"));
    cfg_config_free(cfg);
    cfg_config_free(orig);
    free(out);
}

END_TEST

Suite *suite_conf_patch(void)
{
    Suite *s = suite_create("conf/patch");
    TCase *tc = tcase_create("weights");
    tcase_add_test(tc, test_patch_block_style_keeps_comments_and_layout);
    tcase_add_test(tc, test_patch_flow_style);
    tcase_add_test(tc, test_patch_quoted_weights_stay_quoted);
    tcase_add_test(tc, test_patch_adds_a_missing_weight_in_block_style);
    tcase_add_test(tc, test_patch_adds_a_missing_weight_in_flow_style);
    tcase_add_test(tc, test_patch_adds_a_weight_after_an_empty_flow_value);
    tcase_add_test(tc, test_patch_adds_a_weight_after_a_decorated_empty_value);
    tcase_add_test(tc, test_patch_changes_only_the_named_route);
    tcase_add_test(tc, test_patch_last_duplicate_wins_and_nothing_listed_copies);
    tcase_add_test(tc, test_patch_counts_characters_not_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("problems");
    tcase_add_test(tc, test_patch_reports_unknown_route_and_backend);
    tcase_add_test(tc, test_patch_reports_yaml_syntax_errors);
    tcase_add_test(tc, test_patch_refuses_deep_nesting);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, test_patch_result_loads_with_the_new_weights);
    suite_add_tcase(s, tc);
    return s;
}
