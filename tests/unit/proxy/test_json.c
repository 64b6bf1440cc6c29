/* SPDX-License-Identifier: MIT */
/*
 * test_json.c - proxy/json: the string builder and JSON escaping the admin
 * API writes with, and the strict {"name": integer} parser behind PUT
 * /routes/NAME/weights: what it accepts, and that everything else is refused
 * with a message rather than guessed at.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "proxy/json.h"
#include "tests/unit/proxy/suites.h"

START_TEST(test_json_builder_grows_and_escapes)
{
    px_sb_t sb = {0};
    for (int i = 0; i < 1000; i++) {
        px_sb_printf(&sb, "%d,", i);
    }
    ck_assert_uint_eq(sb.len, strlen(sb.data));
    ck_assert(strncmp(sb.data, "0,1,2,", 6) == 0);
    ck_assert_ptr_nonnull(strstr(sb.data, "998,999,"));
    free(sb.data);

    px_sb_t esc = {0};
    px_sb_json_string(&esc, "a\"b\\c\nd\te");
    ck_assert_str_eq(esc.data, "\"a\\\"b\\\\c\\nd\\u0009e\"");
    free(esc.data);
}

END_TEST

static int parse(const char *text, px_json_weight_t *w, char *err)
{
    return px_json_parse_weights(text, strlen(text), w, 4, err, 128);
}

START_TEST(test_json_weights_accepted)
{
    px_json_weight_t w[4];
    char err[128];
    ck_assert_int_eq(parse(" { \"stable\" : 90,\n\"canary\":10 } ", w, err), 2);
    ck_assert_str_eq(w[0].name, "stable");
    ck_assert_uint_eq(w[0].value, 90);
    ck_assert_str_eq(w[1].name, "canary");
    ck_assert_uint_eq(w[1].value, 10);
    ck_assert_int_eq(parse("{\"a\":0}", w, err), 1);
    ck_assert_uint_eq(w[0].value, 0);
    ck_assert_int_eq(parse("{\"a\":4294967295}", w, err), 1);
    ck_assert_uint_eq(w[0].value, 4294967295u);
}

END_TEST

START_TEST(test_json_weights_refused)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{}",                                        /* nothing to change */
        "{\"a\":-1}",                                /* negative */
        "{\"a\":1.5}",                               /* not an integer */
        "{\"a\":1e2}",                               /* exponent */
        "{\"a\":\"10\"}",                            /* a string */
        "{\"a\":4294967296}",                        /* over uint32 */
        "{\"a\":01}",                                /* leading zero */
        "{\"a\":1,}",                                /* trailing comma */
        "{\"a\":1} x",                               /* trailing text */
        "{\"a\":1,\"a\":2}",                         /* a name twice */
        "{a:1}",                                     /* unquoted */
        "{\"\":1}",                                  /* empty name */
        "{\"a\\\"b\":1}",                            /* escapes are not backend names */
        "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1}", /* more than max */
        "{\"a\":1",                                  /* unterminated */
    };
    px_json_weight_t w[4];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        ck_assert_msg(parse(bad[i], w, err) == -1, "accepted: %s", bad[i]);
        ck_assert_msg(err[0] != '\0', "no message for: %s", bad[i]);
    }
}

END_TEST

Suite *suite_proxy_json(void)
{
    Suite *s = suite_create("proxy/json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_json_builder_grows_and_escapes);
    tcase_add_test(tc, test_json_weights_accepted);
    tcase_add_test(tc, test_json_weights_refused);
    suite_add_tcase(s, tc);
    return s;
}
