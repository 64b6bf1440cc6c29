/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - suite "runtime/stats": rt_stats_read counters of
 * runtime/stats.c (spawns, live and waiting Gs, procs, stacks) and the
 * JSON rendering rt_stats_json used by the admin API's GET /runtime.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

#define STATS_GS 1000

typedef struct stats_test {
    rt_stats_t before, parked, after;
    rt_chan_t *ch;
    rt_waitgroup_t arrived, finished;
    bool parked_seen, drained;
    int arrived_rc, finished_rc;
    char json[8192];
    int json_len;
} stats_test_t;

static void stats_g(void *arg)
{
    stats_test_t *t = arg;
    rt_wg_done(&t->arrived);
    (void)rt_chan_recv(t->ch, NULL, RT_FOREVER);
    rt_wg_done(&t->finished);
}

static void stats_main(void *arg)
{
    stats_test_t *t = arg;
    t->ch = rt_chan_new(1, 0);
    rt_stats_read(&t->before);
    rt_wg_add(&t->arrived, STATS_GS);
    rt_wg_add(&t->finished, STATS_GS);
    for (int i = 0; i < STATS_GS; i++) {
        th_go(stats_g, t);
    }
    rt_time_t deadline = rt_deadline_in(th_slack(10 * RT_SEC));
    t->arrived_rc = th_wg_wait_until(&t->arrived, deadline);
    t->parked_seen = th_wait_gs_waiting(t->before.gs_waiting + STATS_GS, deadline);
    rt_stats_read(&t->parked);
    t->json_len = rt_stats_json(&t->parked, t->json, sizeof(t->json));
    rt_chan_close(t->ch);
    t->finished_rc = th_wg_wait_until(&t->finished, deadline);
    t->drained = th_wait_gs_live_at_most(t->before.gs_live, deadline);
    rt_stats_read(&t->after);
    if (t->finished_rc == RT_OK) {
        rt_chan_free(t->ch);
    }
}

START_TEST(test_stats_counts_spawns_and_live_gs)
{
    stats_test_t t;
    memset(&t, 0, sizeof(t));
    th_rt_run(stats_main, &t, 2);
    ck_assert_int_eq(t.arrived_rc, RT_OK);
    ck_assert_int_eq(t.finished_rc, RT_OK);
    ck_assert_msg(t.parked_seen, "gs_waiting %llu never reached %llu + %d",
                  (unsigned long long)t.parked.gs_waiting, (unsigned long long)t.before.gs_waiting,
                  STATS_GS);
    ck_assert_uint_eq(t.parked.procs, 2);
    ck_assert_uint_ge(t.before.gs_live, 1); /* the main G */
    /* The helper Gs of th_wg_wait_until are spawns too: a few, not hundreds. */
    uint64_t spawned = t.parked.spawns - t.before.spawns;
    ck_assert_msg(spawned >= STATS_GS && spawned <= STATS_GS + 16, "spawns grew by %llu for %d Gs",
                  (unsigned long long)spawned, STATS_GS);
    ck_assert_msg(t.parked.gs_live >= t.before.gs_live + STATS_GS, "gs_live %llu -> %llu",
                  (unsigned long long)t.before.gs_live, (unsigned long long)t.parked.gs_live);
    ck_assert_uint_ge(t.parked.stacks, STATS_GS);
    ck_assert_uint_gt(t.parked.stack_bytes_mapped, 0);
    ck_assert_uint_ge(t.parked.parks, STATS_GS);
    ck_assert_msg(t.drained, "gs_live stayed at %llu after every G returned (was %llu before)",
                  (unsigned long long)t.after.gs_live, (unsigned long long)t.before.gs_live);
    ck_assert_uint_ge(t.after.spawns, t.parked.spawns);
    ck_assert_int_gt(t.json_len, 0);
    ck_assert_int_lt(t.json_len, (int)sizeof(t.json));
    ck_assert_ptr_nonnull(strstr(t.json, "\"spawns\""));
}

END_TEST

/* Returns the unsigned integer after "\"key\"" and a colon in `json`, or -1. */
static long long json_uint(const char *json, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\"%s\"", key);
    const char *p = strstr(json, pattern);
    if (p == NULL) {
        return -1;
    }
    p += strlen(pattern);
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p++ != ':') {
        return -1;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    return strtoll(p, NULL, 10);
}

/* Checks balanced braces/brackets outside strings, and no ",}" or ",]". */
static bool json_looks_valid(const char *s)
{
    int depth = 0;
    bool in_str = false;
    char last = 0;
    for (const char *p = s; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1] != '\0') {
                p++;
            } else if (*p == '"') {
                in_str = false;
            }
            continue;
        }
        if (isspace((unsigned char)*p)) {
            continue;
        }
        if (*p == '"') {
            in_str = true;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (last == ',' || --depth < 0) {
                return false;
            }
        }
        last = *p;
    }
    return depth == 0 && !in_str;
}

START_TEST(test_stats_json_is_valid_and_has_spawns)
{
    rt_stats_t s;
    memset(&s, 0, sizeof(s));
    s.spawns = 123456789;
    s.steals = 4242;
    s.gs_live = 77;
    s.procs = 2;
    s.runq_local[0] = 3;
    s.runq_local[1] = 5;
    char buf[8192];
    int n = rt_stats_json(&s, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, (int)sizeof(buf));
    ck_assert_uint_eq(strlen(buf), (size_t)n);
    const char *first = buf + strspn(buf, " \t\n");
    ck_assert_msg(*first == '{', "JSON does not start with an object: %.40s", buf);
    size_t end = strlen(buf);
    while (end > 0 && isspace((unsigned char)buf[end - 1])) {
        end--;
    }
    ck_assert_msg(end > 0 && buf[end - 1] == '}', "JSON does not end with '}': %s", buf);
    ck_assert_msg(json_looks_valid(buf), "malformed JSON: %s", buf);
    ck_assert_int_eq(json_uint(buf, "spawns"), 123456789);
    /* Every field is exported; their key names are the stats.c author's choice. */
    ck_assert_ptr_nonnull(strstr(buf, "4242"));
    ck_assert_ptr_nonnull(strstr(buf, "77"));

    /* snprintf semantics: the full length is returned, the output truncated and terminated. */
    char small[16];
    memset(small, 'x', sizeof(small));
    int m = rt_stats_json(&s, small, sizeof(small));
    ck_assert_int_eq(m, n);
    ck_assert_int_eq(small[sizeof(small) - 1], '\0');
    ck_assert_int_eq(strncmp(small, buf, sizeof(small) - 1), 0);
}

END_TEST

Suite *suite_runtime_stats(void)
{
    Suite *s = suite_create("runtime/stats");

    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, test_stats_counts_spawns_and_live_gs);
    tcase_add_test(tc, test_stats_json_is_valid_and_has_spawns);
    suite_add_tcase(s, tc);
    return s;
}
