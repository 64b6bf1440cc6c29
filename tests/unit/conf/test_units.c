/* SPDX-License-Identifier: MIT */
/*
 * test_units.c - the strict scalar parsers of conf/units.c: durations, sizes,
 * percentages, integers, decimals, outcome names, addresses and tokens.
 */
#include <stdint.h>

#include <check.h>

#include "conf/conf.h"
#include "conf/internal.h"
#include "tests/unit/conf/suites.h"

#define MS 1000000LL
#define SEC 1000000000LL

START_TEST(test_units_duration_accepts_every_unit)
{
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        {"0", 0},
        {"0s", 0},
        {"0ms", 0},
        {"7ns", 7},
        {"250us", 250000},
        {"150ms", 150 * MS},
        {"8s", 8 * SEC},
        {"2m", 120 * SEC},
        {"1h", 3600 * SEC},
        {"1.5s", 1500 * MS},
        {"0.25ms", 250000},
        {"1.000000001s", SEC + 1},
        {"0010s", 10 * SEC},
        {"9223372036s", 9223372036 * SEC},
        {"9223372036854775807ns", INT64_MAX},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ns = -1;
        ck_assert_msg(cfg_parse_duration(ok[i].s, &ns) == 0, "%s", ok[i].s);
        ck_assert_msg(ns == ok[i].ns, "%s -> %lld", ok[i].s, (long long)ns);
    }
}

END_TEST

START_TEST(test_units_duration_rejects_bare_numbers_and_garbage)
{
    static const char *const bad[] = {
        "",
        "8",
        "00",
        "150",
        "s",
        "-1s",
        "+1s",
        " 8s",
        "8s ",
        "8 s",
        "8S",
        "8sec",
        "1d",
        "1.s",
        ".5s",
        "1..5s",
        "1.5.5s",
        "1e3ms",
        "1m30s",
        "0x10s",
        "1.0000000001s",
        "9223372037s",
        "9223372036854775808ns",
        "99999999999999999999999h",
        "2562048h",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 42;
        ck_assert_msg(cfg_parse_duration(bad[i], &ns) == -1, "'%s' accepted", bad[i]);
        ck_assert_msg(ns == 42, "'%s' wrote the output", bad[i]);
    }
    ck_assert_int_eq(cfg_parse_duration(NULL, &(int64_t){0}), -1);
}

END_TEST

START_TEST(test_units_size_accepts_binary_and_decimal_units)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"64KiB", 65536},
        {"1MiB", 1048576},
        {"1GiB", 1073741824},
        {"2TiB", 2ull << 40},
        {"10KB", 10000},
        {"3MB", 3000000},
        {"1GB", 1000000000},
        {"18446744073709551615", UINT64_MAX},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t b = 1;
        ck_assert_msg(cfg_parse_size(ok[i].s, &b) == 0, "%s", ok[i].s);
        ck_assert_msg(b == ok[i].bytes, "%s -> %llu", ok[i].s, (unsigned long long)b);
    }
}

END_TEST

START_TEST(test_units_size_rejects_lowercase_fractions_and_overflow)
{
    static const char *const bad[] = {
        "",
        "KiB",
        "64kib",
        "64kb",
        "64 KiB",
        "1.5MiB",
        "-1",
        "+1",
        "1K",
        "1Ki",
        "1KiBs",
        "0x10",
        "1e3",
        "18446744073709551616",
        "16777216TiB",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t b = 42;
        ck_assert_msg(cfg_parse_size(bad[i], &b) == -1, "'%s' accepted", bad[i]);
        ck_assert_msg(b == 42, "'%s' wrote the output", bad[i]);
    }
}

END_TEST

START_TEST(test_units_percent_requires_the_sign_and_stays_in_range)
{
    double r = -1;
    ck_assert_int_eq(cfg_parse_percent("0.5%", &r), 0);
    ck_assert_double_eq_tol(r, 0.005, 1e-12);
    ck_assert_int_eq(cfg_parse_percent("0%", &r), 0);
    ck_assert_double_eq(r, 0.0);
    ck_assert_int_eq(cfg_parse_percent("100%", &r), 0);
    ck_assert_double_eq(r, 1.0);
    ck_assert_int_eq(cfg_parse_percent("12.25%", &r), 0);
    ck_assert_double_eq_tol(r, 0.1225, 1e-12);

    static const char *const bad[] = {
        "0.5", "%", "50 %", "-1%", "+1%", "100.01%", "101%", ".5%", "5.%", "1e1%", "5%%", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = 42;
        ck_assert_msg(cfg_parse_percent(bad[i], &r) == -1, "'%s' accepted", bad[i]);
        ck_assert_msg(r == 42, "'%s' wrote the output", bad[i]);
    }
}

END_TEST

START_TEST(test_units_integers_and_decimals_are_plain_digits)
{
    uint64_t v = 0;
    ck_assert_int_eq(cfg__parse_uint("0", 10, &v), 0);
    ck_assert_int_eq(cfg__parse_uint("10", 10, &v), 0);
    ck_assert_uint_eq(v, 10);
    ck_assert_int_eq(cfg__parse_uint("11", 10, &v), -1);
    ck_assert_int_eq(cfg__parse_uint("18446744073709551615", UINT64_MAX, &v), 0);
    ck_assert(v == UINT64_MAX);
    ck_assert_int_eq(cfg__parse_uint("18446744073709551616", UINT64_MAX, &v), -1);
    ck_assert_int_eq(cfg__parse_uint("-1", UINT64_MAX, &v), -1);
    ck_assert_int_eq(cfg__parse_uint("1.0", UINT64_MAX, &v), -1);
    ck_assert_int_eq(cfg__parse_uint("", UINT64_MAX, &v), -1);
    ck_assert_int_eq(cfg__parse_uint(" 1", UINT64_MAX, &v), -1);

    double d = 0;
    ck_assert_int_eq(cfg__parse_number("6500", &d), 0);
    ck_assert_double_eq(d, 6500.0);
    ck_assert_int_eq(cfg__parse_number("0.25", &d), 0);
    ck_assert_double_eq(d, 0.25);
    ck_assert_int_eq(cfg__parse_number("1e3", &d), -1);
    ck_assert_int_eq(cfg__parse_number("-1", &d), -1);
    ck_assert_int_eq(cfg__parse_number(".5", &d), -1);
    ck_assert_int_eq(cfg__parse_number("5.", &d), -1);
    ck_assert_int_eq(cfg__parse_number("inf", &d), -1);
    ck_assert_int_eq(cfg__parse_number("nan", &d), -1);
}

END_TEST

START_TEST(test_units_outcome_names_map_to_bits)
{
    ck_assert_uint_eq(cfg__parse_outcome("5xx"), CFG_OUTCOME_5XX);
    ck_assert_uint_eq(cfg__parse_outcome("connect_failure"), CFG_OUTCOME_CONNECT_FAILURE);
    ck_assert_uint_eq(cfg__parse_outcome("timeout"), CFG_OUTCOME_TIMEOUT);
    ck_assert_uint_eq(cfg__parse_outcome("reset"), CFG_OUTCOME_RESET);
    ck_assert_uint_eq(cfg__parse_outcome("5XX"), 0);
    ck_assert_uint_eq(cfg__parse_outcome("4xx"), 0);
    ck_assert_uint_eq(cfg__parse_outcome(""), 0);
}

END_TEST

START_TEST(test_units_address_forms)
{
    /* numeric (listeners, admin), port 0 allowed */
    ck_assert_ptr_null(cfg__check_address("127.0.0.1:10000", true, true));
    ck_assert_ptr_null(cfg__check_address("0.0.0.0:0", true, true));
    ck_assert_ptr_null(cfg__check_address("[::1]:80", true, true));
    ck_assert_ptr_null(cfg__check_address("[::]:80", true, true));
    ck_assert_ptr_null(cfg__check_address("[fe80::1:2]:65535", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("localhost:80", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("::1:80", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("[::1]80", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("[::1:80", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("[1.2.3.4]:80", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("127.0.0.1", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("127.0.0.1:", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("127.0.0.1:65536", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("127.0.0.1:-1", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("127.0.0.1:http", true, true));
    ck_assert_ptr_nonnull(cfg__check_address(":80", true, true));
    ck_assert_ptr_nonnull(cfg__check_address("", true, true));
    /* endpoints: names allowed, port 0 not */
    ck_assert_ptr_null(cfg__check_address("orders-v1.default.svc:8080", false, false));
    ck_assert_ptr_null(cfg__check_address("localhost:1", false, false));
    ck_assert_ptr_null(cfg__check_address("10.0.0.1:8080", false, false));
    ck_assert_ptr_nonnull(cfg__check_address("localhost:0", false, false));
    ck_assert_ptr_nonnull(cfg__check_address("300.1.1.1:80", false, false));
    ck_assert_ptr_nonnull(cfg__check_address("a..b:80", false, false));
    ck_assert_ptr_nonnull(cfg__check_address(".a:80", false, false));
    ck_assert_ptr_nonnull(cfg__check_address("a b:80", false, false));
    ck_assert_ptr_nonnull(cfg__check_address("host/x:80", false, false));
}

END_TEST

START_TEST(test_units_token_is_rfc9110_tchar)
{
    ck_assert(cfg__is_token("x-canary"));
    ck_assert(cfg__is_token("GET"));
    ck_assert(cfg__is_token("X_A.b~!"));
    ck_assert(!cfg__is_token(""));
    ck_assert(!cfg__is_token("a b"));
    ck_assert(!cfg__is_token("a:b"));
    ck_assert(!cfg__is_token("a\"b"));
}

END_TEST

Suite *suite_conf_units(void)
{
    Suite *s = suite_create("conf/units");
    TCase *tc = tcase_create("durations");
    tcase_add_test(tc, test_units_duration_accepts_every_unit);
    tcase_add_test(tc, test_units_duration_rejects_bare_numbers_and_garbage);
    suite_add_tcase(s, tc);
    tc = tcase_create("sizes");
    tcase_add_test(tc, test_units_size_accepts_binary_and_decimal_units);
    tcase_add_test(tc, test_units_size_rejects_lowercase_fractions_and_overflow);
    suite_add_tcase(s, tc);
    tc = tcase_create("numbers");
    tcase_add_test(tc, test_units_percent_requires_the_sign_and_stays_in_range);
    tcase_add_test(tc, test_units_integers_and_decimals_are_plain_digits);
    tcase_add_test(tc, test_units_outcome_names_map_to_bits);
    suite_add_tcase(s, tc);
    tc = tcase_create("addresses");
    tcase_add_test(tc, test_units_address_forms);
    tcase_add_test(tc, test_units_token_is_rfc9110_tchar);
    suite_add_tcase(s, tc);
    return s;
}
