/* SPDX-License-Identifier: MIT */
/*
 * test_index.c - the string -> position hash index (conf/index.c) behind the
 * loader's lookups by YAML path and by name: the first position put under a
 * key is kept, absent keys are SIZE_MAX, and growing keeps every entry.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include "conf/internal.h"
#include "tests/unit/conf/suites.h"

START_TEST(test_index_first_position_wins)
{
    cfg__index_t ix = {0};
    ck_assert_uint_eq(cfg__index_get(&ix, "a"), SIZE_MAX); /* the zero value is empty */
    ck_assert_uint_eq(cfg__index_put(&ix, "a", 3), 3);
    ck_assert_uint_eq(cfg__index_put(&ix, "", 4), 4);
    ck_assert_uint_eq(cfg__index_put(&ix, "a", 5), 3);
    ck_assert_uint_eq(cfg__index_get(&ix, "a"), 3);
    ck_assert_uint_eq(cfg__index_get(&ix, ""), 4);
    ck_assert_uint_eq(cfg__index_get(&ix, "ab"), SIZE_MAX);
    ck_assert_uint_eq(ix.count, 2);
    cfg__index_destroy(&ix);
    ck_assert_ptr_null(ix.slots);
    ck_assert_uint_eq(cfg__index_get(&ix, "a"), SIZE_MAX);
    cfg__index_destroy(&ix); /* empty again: nothing to do */
}

END_TEST

START_TEST(test_index_grows_and_keeps_every_key)
{
    enum { N = 5000 };

    char(*keys)[16] = malloc(N * sizeof(*keys));
    ck_assert_ptr_nonnull(keys);
    cfg__index_t ix = {0};
    for (size_t i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
        ck_assert_uint_eq(cfg__index_put(&ix, keys[i], i), i);
        ck_assert_uint_ge(ix.cap, 2 * ix.count);
    }
    for (size_t i = 0; i < N; i++) {
        char probe[16];
        snprintf(probe, sizeof(probe), "k%zu", i); /* compared by value, not by pointer */
        ck_assert_uint_eq(cfg__index_get(&ix, probe), i);
    }
    ck_assert_uint_eq(cfg__index_get(&ix, "k5000"), SIZE_MAX);
    cfg__index_destroy(&ix);
    free(keys);
}

END_TEST

Suite *suite_conf_index(void)
{
    Suite *s = suite_create("conf/index");
    TCase *tc = tcase_create("index");
    tcase_add_test(tc, test_index_first_position_wins);
    tcase_add_test(tc, test_index_grows_and_keeps_every_key);
    suite_add_tcase(s, tc);
    return s;
}
