/* SPDX-License-Identifier: MIT */
/*
 * test_suggest.c - "did you mean" (conf/suggest.c): the edit distance, and
 * the keys offered at a YAML path, found by walking the libcyaml schema.
 * The end-to-end messages are checked by the unknown_key*.yaml fixtures.
 */
#include <stddef.h>

#include <check.h>

#include "conf/internal.h"
#include "tests/unit/conf/suites.h"

START_TEST(test_suggest_distance_counts_edits_and_transpositions)
{
    ck_assert_uint_eq(cfg__edit_distance("timeout", "timeout"), 0);
    ck_assert_uint_eq(cfg__edit_distance("timout", "timeout"), 1);   /* deletion */
    ck_assert_uint_eq(cfg__edit_distance("timeoutt", "timeout"), 1); /* insertion */
    ck_assert_uint_eq(cfg__edit_distance("rrte", "rate"), 1);        /* substitution */
    ck_assert_uint_eq(cfg__edit_distance("rtae", "rate"), 1);        /* transposition */
    ck_assert_uint_eq(cfg__edit_distance("ab", "ba"), 1);
    ck_assert_uint_eq(cfg__edit_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(cfg__edit_distance("", "abc"), 3);
    ck_assert_uint_eq(cfg__edit_distance("abc", ""), 3);
}

END_TEST

START_TEST(test_suggest_follows_the_schema_along_the_path)
{
    static const struct {
        const char *parent, *key, *want;
    } cases[] = {
        {"", "listners", "listeners"},
        {"", "clusterz", "clusters"},
        {"", "drain_timeuot", "drain_timeout"},
        {"admin", "adress", "address"},
        {"listeners[0]", "idle_timout", "idle_timeout"},
        {"listeners[2].routes[13]", "timout", "timeout"},
        {"listeners[0].routes[0]", "Backends", "backends"},
        {"listeners[0].routes[0].match", "methdo", "method"},
        {"listeners[0].routes[0].match.headers[1]", "nmae", "name"},
        {"listeners[0].routes[0].retries", "attempt", "attempts"},
        {"listeners[0].routes[0].filters[0]", "rate_limt", "rate_limit"},
        {"listeners[0].routes[0].filters[3].rate_limit", "rat", "rate"},
        {"listeners[0].routes[0].filters[1].circuit_breaker", "treshold", "threshold"},
        {"listeners[0].routes[0].filters[0].fault.abort", "statsu", "status"},
        {"listeners[0].routes[0].backends[1]", "wieght", "weight"},
        {"listeners[0].routes[0].canary.promote", "stpe", "step"},
        {"clusters[4]", "endpoint", "endpoints"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = cfg__suggest_key(cases[i].parent, cases[i].key);
        ck_assert_msg(got != NULL, "%s: %s: no hint", cases[i].parent, cases[i].key);
        ck_assert_str_eq(got, cases[i].want);
    }
}

END_TEST

START_TEST(test_suggest_picks_the_closest_and_ties_by_schema_order)
{
    /* "pth" is 1 from path and 3 from host; "past" is 2 from both path and host. */
    ck_assert_str_eq(cfg__suggest_key("listeners[0].routes[0].match", "pth"), "path");
    ck_assert_str_eq(cfg__suggest_key("listeners[0].routes[0].match", "past"), "path");
    ck_assert_str_eq(cfg__suggest_key("listeners[0].routes[0].match", "hast"), "host");
    /* read_timeout is schema-first, but write_timeout is closer. */
    ck_assert_str_eq(cfg__suggest_key("listeners[0]", "writ_timeout"), "write_timeout");
}

END_TEST

START_TEST(test_suggest_offers_nothing_far_or_off_schema)
{
    ck_assert_ptr_null(cfg__suggest_key("listeners[0].routes[0]", "colour"));
    ck_assert_ptr_null(cfg__suggest_key("", "xyz"));
    /* Distance must be below the key's length: "o" is 1 from "on", "" 2 from it. */
    ck_assert_ptr_null(cfg__suggest_key("listeners[0].routes[0].retries", "o"));
    ck_assert_ptr_null(cfg__suggest_key("listeners[0].routes[0].retries", ""));
    ck_assert_str_eq(cfg__suggest_key("listeners[0].routes[0].retries", "of"), "on");
    /* Paths that are not a mapping of the schema. */
    ck_assert_ptr_null(cfg__suggest_key("listeners", "name"));
    ck_assert_ptr_null(cfg__suggest_key("listeners[0].nope", "name"));
    ck_assert_ptr_null(cfg__suggest_key("listeners[0].name", "name"));
    ck_assert_ptr_null(cfg__suggest_key("clusters[0].endpoints[0]", "name"));
    ck_assert_ptr_null(cfg__suggest_key("[0]", "name"));
}

END_TEST

Suite *suite_conf_suggest(void)
{
    Suite *s = suite_create("conf/suggest");
    TCase *tc = tcase_create("distance");
    tcase_add_test(tc, test_suggest_distance_counts_edits_and_transpositions);
    suite_add_tcase(s, tc);
    tc = tcase_create("keys");
    tcase_add_test(tc, test_suggest_follows_the_schema_along_the_path);
    tcase_add_test(tc, test_suggest_picks_the_closest_and_ties_by_schema_order);
    tcase_add_test(tc, test_suggest_offers_nothing_far_or_off_schema);
    suite_add_tcase(s, tc);
    return s;
}
