/* SPDX-License-Identifier: MIT */
/*
 * test_select.c - suite "runtime/select": rt_select of runtime/select.c:
 * uniform random choice among ready cases, `default` (RT_NOWAIT) never
 * blocking, deadlines, mixed send/recv cases, NULL channels and close.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

/* ---- fairness ---- */

typedef struct fairness {
    int ncases; /* 2: two ready receives; 3: plus a ready send */
    long n;
    long counts[3];
    long bad_index, bad_result, bad_value, refill_errors;
} fairness_t;

static void fairness_main(void *arg)
{
    fairness_t *f = arg;
    rt_chan_t *ch[3];
    uint64_t next[2] = {0, 0};
    for (int i = 0; i < 3; i++) {
        ch[i] = rt_chan_new(sizeof(uint64_t), 1);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(rt_chan_send(ch[i], &next[i], RT_NOWAIT), RT_OK);
    }
    uint64_t in[2], out = 7;
    for (long k = 0; k < f->n; k++) {
        rt_case_t cases[3] = {
            {.ch = ch[0], .op = RT_CASE_RECV, .elem = &in[0]},
            {.ch = ch[1], .op = RT_CASE_RECV, .elem = &in[1]},
            {.ch = ch[2], .op = RT_CASE_SEND, .elem = &out},
        };
        int idx = rt_select(cases, (size_t)f->ncases, RT_FOREVER);
        if (idx < 0 || idx >= f->ncases) {
            f->bad_index++;
            continue;
        }
        f->counts[idx]++;
        if (cases[idx].result != RT_OK) {
            f->bad_result++;
        }
        if (idx < 2) {
            /* Each receive channel carries 0, 1, 2, ... in order: check and refill. */
            if (in[idx] != next[idx]) {
                f->bad_value++;
            }
            next[idx]++;
            if (rt_chan_send(ch[idx], &next[idx], RT_NOWAIT) != RT_OK) {
                f->refill_errors++;
            }
        } else if (rt_chan_recv(ch[2], NULL, RT_NOWAIT) != RT_OK) {
            f->refill_errors++; /* make room for the next send */
        }
    }
    for (int i = 0; i < 3; i++) {
        rt_chan_free(ch[i]);
    }
}

START_TEST(test_select_chooses_ready_cases_uniformly)
{
    fairness_t f;
    memset(&f, 0, sizeof(f));
    f.ncases = 2 + _i;
    f.n = th_scaled(100000);
    th_rt_run(fairness_main, &f, 1);
    ck_assert_int_eq(f.bad_index, 0);
    ck_assert_int_eq(f.bad_result, 0);
    ck_assert_int_eq(f.bad_value, 0);
    ck_assert_int_eq(f.refill_errors, 0);
    double expect = (double)f.n / f.ncases;
    for (int i = 0; i < f.ncases; i++) {
        double ratio = (double)f.counts[i] / expect;
        ck_assert_msg(ratio > 0.9 && ratio < 1.1,
                      "case %d chosen %ld of %ld times (ratio %.3f to uniform), RT_SEED=%llu", i,
                      f.counts[i], f.n, ratio, (unsigned long long)th_seed());
    }
}

END_TEST

/* ---- default and deadline ---- */

typedef struct nowait {
    long n;
    long eagain, other;
    rt_time_t elapsed;
    uint64_t parks;
} nowait_t;

static void nowait_main(void *arg)
{
    nowait_t *w = arg;
    rt_chan_t *unbuf = rt_chan_new(sizeof(int), 0);
    rt_chan_t *empty = rt_chan_new(sizeof(int), 4);
    int in = 0, out = 1;
    rt_stats_t before, after;
    rt_stats_read(&before);
    rt_time_t t0 = rt_now();
    for (long k = 0; k < w->n; k++) {
        rt_case_t cases[4] = {
            {.ch = unbuf, .op = RT_CASE_RECV, .elem = &in},
            {.ch = unbuf, .op = RT_CASE_SEND, .elem = &out},
            {.ch = empty, .op = RT_CASE_RECV, .elem = &in},
            {.ch = NULL, .op = RT_CASE_RECV, .elem = &in},
        };
        int rc = rt_select(cases, 4, RT_NOWAIT);
        if (rc == RT_EAGAIN) {
            w->eagain++;
        } else {
            w->other++;
        }
    }
    w->elapsed = rt_now() - t0;
    rt_stats_read(&after);
    w->parks = after.parks - before.parks;
    rt_chan_free(unbuf);
    rt_chan_free(empty);
}

START_TEST(test_select_default_never_blocks)
{
    nowait_t w;
    memset(&w, 0, sizeof(w));
    w.n = th_scaled(1000000);
    th_rt_run(nowait_main, &w, 2);
    ck_assert_int_eq(w.other, 0);
    ck_assert_int_eq(w.eagain, w.n);
    /* Even 5 us per call would finish 1M selects in 5 s; parking would not. */
    ck_assert_msg(w.elapsed < th_slack(5 * RT_SEC), "%ld non-blocking selects took %lld ms", w.n,
                  (long long)(w.elapsed / RT_MSEC));
    ck_assert_msg(w.parks < 16, "non-blocking selects parked %llu times",
                  (unsigned long long)w.parks);
}

END_TEST

#define SELECT_DEADLINE_NS (50 * RT_MSEC)

typedef struct sel_deadline {
    int rc, after_rc, null_nowait_rc, null_deadline_rc;
    rt_time_t elapsed, null_elapsed;
} sel_deadline_t;

static void sel_deadline_main(void *arg)
{
    sel_deadline_t *d = arg;
    rt_chan_t *a = rt_chan_new(sizeof(int), 0);
    rt_chan_t *b = rt_chan_new(sizeof(int), 0);
    int in = 0, out = 3;
    rt_case_t cases[2] = {
        {.ch = a, .op = RT_CASE_RECV, .elem = &in},
        {.ch = b, .op = RT_CASE_SEND, .elem = &out},
    };
    rt_time_t t0 = rt_now();
    d->rc = rt_select(cases, 2, t0 + SELECT_DEADLINE_NS);
    d->elapsed = rt_now() - t0;
    /* The timed-out send case must have been withdrawn from `b`. */
    d->after_rc = rt_chan_recv(b, &in, RT_NOWAIT);

    rt_case_t nulls[2] = {
        {.ch = NULL, .op = RT_CASE_RECV, .elem = &in},
        {.ch = NULL, .op = RT_CASE_SEND, .elem = &out},
    };
    d->null_nowait_rc = rt_select(nulls, 2, RT_NOWAIT);
    t0 = rt_now();
    d->null_deadline_rc = rt_select(nulls, 2, t0 + SELECT_DEADLINE_NS);
    d->null_elapsed = rt_now() - t0;
    rt_chan_free(a);
    rt_chan_free(b);
}

START_TEST(test_select_deadline_times_out)
{
    sel_deadline_t d;
    memset(&d, 0, sizeof(d));
    th_rt_run(sel_deadline_main, &d, 2);
    ck_assert_int_eq(d.rc, RT_ETIMEDOUT);
    ck_assert_int_eq(d.after_rc, RT_EAGAIN);
    ck_assert_int_eq(d.null_nowait_rc, RT_EAGAIN);
    ck_assert_int_eq(d.null_deadline_rc, RT_ETIMEDOUT);
    rt_time_t el[2] = {d.elapsed, d.null_elapsed};
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(el[i] >= SELECT_DEADLINE_NS, "select %d returned early: %lld ns", i,
                      (long long)el[i]);
        ck_assert_msg(el[i] < SELECT_DEADLINE_NS + th_slack(500 * RT_MSEC),
                      "select %d returned late: %lld ns", i, (long long)el[i]);
    }
}

END_TEST

/* ---- send and receive cases ---- */

typedef struct pingpong {
    long n;
    rt_chan_t *to_partner, *from_partner;
    rt_chan_t *done;
    long partner_bad, main_bad_index, main_bad_value, main_bad_result;
    int done_rc;
} pingpong_t;

static void pingpong_partner(void *arg)
{
    pingpong_t *p = arg;
    for (long i = 0; i < p->n; i++) {
        long v = -1;
        if (i % 2 == 0) {
            if (rt_chan_recv(p->to_partner, &v, RT_FOREVER) != RT_OK || v != i) {
                p->partner_bad++;
            }
        } else if (rt_chan_send(p->from_partner, &i, RT_FOREVER) != RT_OK) {
            p->partner_bad++;
        }
    }
    char token = 1;
    (void)rt_chan_send(p->done, &token, RT_NOWAIT);
}

static void pingpong_main(void *arg)
{
    pingpong_t *p = arg;
    p->to_partner = rt_chan_new(sizeof(long), 0);
    p->from_partner = rt_chan_new(sizeof(long), 0);
    p->done = rt_chan_new(1, 1);
    th_go(pingpong_partner, p);
    for (long i = 0; i < p->n; i++) {
        long out = i, in = -1;
        rt_case_t cases[2] = {
            {.ch = p->to_partner, .op = RT_CASE_SEND, .elem = &out},
            {.ch = p->from_partner, .op = RT_CASE_RECV, .elem = &in},
        };
        /* Even rounds the partner only receives, odd rounds it only sends. */
        int idx = rt_select(cases, 2, rt_deadline_in(th_slack(10 * RT_SEC)));
        if (idx != (int)(i % 2)) {
            p->main_bad_index++;
            if (idx < 0) {
                break;
            }
        } else if (cases[idx].result != RT_OK) {
            p->main_bad_result++;
        } else if (idx == 1 && in != i) {
            p->main_bad_value++;
        }
    }
    p->done_rc = rt_chan_recv(p->done, NULL, rt_deadline_in(th_slack(10 * RT_SEC)));
    if (p->done_rc == RT_OK) {
        rt_chan_free(p->to_partner);
        rt_chan_free(p->from_partner);
        rt_chan_free(p->done);
    }
}

START_TEST(test_select_send_and_recv_cases)
{
    pingpong_t p;
    memset(&p, 0, sizeof(p));
    p.n = th_scaled(20000);
    th_rt_run(pingpong_main, &p, 1 + _i);
    ck_assert_int_eq(p.main_bad_index, 0);
    ck_assert_int_eq(p.main_bad_result, 0);
    ck_assert_int_eq(p.main_bad_value, 0);
    ck_assert_int_eq(p.partner_bad, 0);
    ck_assert_int_eq(p.done_rc, RT_OK);
}

END_TEST

/* Many cases: the only one made ready is the one chosen. */
typedef struct wide {
    long rounds;
    rt_chan_t *ch[64];
    rt_chan_t *done;
    _Atomic long bad; /* written by both Gs */
    int done_rc;
} wide_t;

static void wide_sender(void *arg)
{
    wide_t *w = arg;
    uint64_t rng = th_rand_init(64);
    for (long r = 0; r < w->rounds; r++) {
        long which = (long)(th_rand(&rng) % 64);
        long v = r * 64 + which;
        if (rt_chan_send(w->ch[which], &v, RT_FOREVER) != RT_OK) {
            atomic_fetch_add(&w->bad, 1);
        }
    }
    char token = 1;
    (void)rt_chan_send(w->done, &token, RT_NOWAIT);
}

static void wide_main(void *arg)
{
    wide_t *w = arg;
    for (int i = 0; i < 64; i++) {
        w->ch[i] = rt_chan_new(sizeof(long), 0);
    }
    w->done = rt_chan_new(1, 1);
    th_go(wide_sender, w);
    long in = -1;
    rt_case_t cases[64];
    for (long r = 0; r < w->rounds; r++) {
        for (int i = 0; i < 64; i++) {
            cases[i] = (rt_case_t){.ch = w->ch[i], .op = RT_CASE_RECV, .elem = &in};
        }
        int idx = rt_select(cases, 64, rt_deadline_in(th_slack(10 * RT_SEC)));
        if (idx < 0) {
            atomic_fetch_add(&w->bad, 1);
            break;
        }
        if (cases[idx].result != RT_OK || in != r * 64 + idx) {
            atomic_fetch_add(&w->bad, 1);
        }
    }
    w->done_rc = rt_chan_recv(w->done, NULL, rt_deadline_in(th_slack(10 * RT_SEC)));
    if (w->done_rc == RT_OK) {
        for (int i = 0; i < 64; i++) {
            rt_chan_free(w->ch[i]);
        }
        rt_chan_free(w->done);
    }
}

START_TEST(test_select_64_cases_picks_the_ready_one)
{
    wide_t w;
    memset(&w, 0, sizeof(w));
    w.rounds = th_scaled(5000);
    th_rt_run(wide_main, &w, 2);
    ck_assert_int_eq(w.bad, 0);
    ck_assert_int_eq(w.done_rc, RT_OK);
}

END_TEST

/* ---- NULL channels and close ---- */

typedef struct nullcase {
    long n;
    long bad;
} nullcase_t;

static void nullcase_main(void *arg)
{
    nullcase_t *c = arg;
    rt_chan_t *ready = rt_chan_new(sizeof(long), 1);
    long in = -1, out = 5;
    for (long i = 0; i < c->n; i++) {
        if (rt_chan_send(ready, &i, RT_NOWAIT) != RT_OK) {
            c->bad++;
        }
        rt_case_t cases[3] = {
            {.ch = NULL, .op = RT_CASE_RECV, .elem = &in},
            {.ch = ready, .op = RT_CASE_RECV, .elem = &in},
            {.ch = NULL, .op = RT_CASE_SEND, .elem = &out},
        };
        int idx = rt_select(cases, 3, RT_NOWAIT);
        if (idx != 1 || cases[1].result != RT_OK || in != i) {
            c->bad++;
        }
    }
    rt_chan_free(ready);
}

START_TEST(test_select_null_channel_case_is_ignored)
{
    nullcase_t c = {.n = th_scaled(10000)};
    th_rt_run(nullcase_main, &c, 1);
    ck_assert_int_eq(c.bad, 0);
}

END_TEST

typedef struct sel_close {
    bool send_case;
    rt_chan_t *a, *b;
    rt_chan_t *result;
    bool parked_seen;
    int idx, case_result, result_rc;
    long elem;
} sel_close_t;

static void sel_close_waiter(void *arg)
{
    sel_close_t *c = arg;
    long in = 12345, out = 1;
    rt_case_t cases[2] = {
        {.ch = c->a, .op = RT_CASE_RECV, .elem = &in},
        {.ch = c->b,
         .op = c->send_case ? RT_CASE_SEND : RT_CASE_RECV,
         .elem = c->send_case ? (void *)&out : (void *)&in},
    };
    int idx = rt_select(cases, 2, RT_FOREVER);
    long res[3] = {idx, idx >= 0 ? cases[idx].result : 0, in};
    (void)rt_chan_send(c->result, res, RT_NOWAIT);
}

static void sel_close_main(void *arg)
{
    sel_close_t *c = arg;
    c->a = rt_chan_new(sizeof(long), 0);
    c->b = rt_chan_new(sizeof(long), 0);
    c->result = rt_chan_new(sizeof(long[3]), 1);
    rt_stats_t st;
    rt_stats_read(&st);
    th_go(sel_close_waiter, c);
    c->parked_seen = th_wait_gs_waiting(st.gs_waiting + 1, rt_deadline_in(th_slack(5 * RT_SEC)));
    rt_chan_close(c->b);
    long res[3] = {-1, -1, -1};
    c->result_rc = rt_chan_recv(c->result, res, rt_deadline_in(th_slack(5 * RT_SEC)));
    c->idx = (int)res[0];
    c->case_result = (int)res[1];
    c->elem = res[2];
    if (c->result_rc == RT_OK) {
        rt_chan_free(c->a);
        rt_chan_free(c->b);
        rt_chan_free(c->result);
    }
}

START_TEST(test_select_wakes_on_close)
{
    sel_close_t c;
    memset(&c, 0, sizeof(c));
    c.send_case = _i == 1;
    th_rt_run(sel_close_main, &c, 2);
    ck_assert_msg(c.parked_seen, "selecting G never seen parked");
    ck_assert_msg(c.result_rc == RT_OK, "select was not woken by close (rc %d)", c.result_rc);
    ck_assert_int_eq(c.idx, 1);
    ck_assert_int_eq(c.case_result, RT_ECLOSED);
    if (!c.send_case) {
        ck_assert_int_eq(c.elem, 0); /* receive from closed zeroes the element */
    }
}

END_TEST

Suite *suite_runtime_select(void)
{
    Suite *s = suite_create("runtime/select");

    TCase *tc = tcase_create("fairness");
    tcase_add_loop_test(tc, test_select_chooses_ready_cases_uniformly, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("default");
    tcase_add_test(tc, test_select_default_never_blocks);
    tcase_add_test(tc, test_select_deadline_times_out);
    suite_add_tcase(s, tc);

    tc = tcase_create("cases");
    tcase_add_loop_test(tc, test_select_send_and_recv_cases, 0, 2);
    tcase_add_test(tc, test_select_64_cases_picks_the_ready_one);
    tcase_add_test(tc, test_select_null_channel_case_is_ignored);
    tcase_add_loop_test(tc, test_select_wakes_on_close, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
