/* SPDX-License-Identifier: MIT */
/*
 * test_chan.c - suite "runtime/chan": channel send/recv/close semantics of
 * runtime/chan.c through rt.h: MPMC checksums over unbuffered and buffered
 * channels, close waking every waiter, draining, RT_NOWAIT and deadlines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

#define WAIT_NS (20 * RT_SEC)

/* ---- many producers, many consumers ---- */

typedef struct mpmc_shape {
    size_t cap;
    int producers;
    int consumers;
    int procs;
    long per_producer;
} mpmc_shape_t;

static const mpmc_shape_t mpmc_shapes[] = {
    {.cap = 0, .producers = 4, .consumers = 4, .procs = 2, .per_producer = 20000},
    {.cap = 0, .producers = 1, .consumers = 8, .procs = 2, .per_producer = 40000},
    {.cap = 0, .producers = 8, .consumers = 1, .procs = 1, .per_producer = 5000},
    {.cap = 1, .producers = 8, .consumers = 2, .procs = 2, .per_producer = 10000},
    {.cap = 16, .producers = 4, .consumers = 4, .procs = 2, .per_producer = 20000},
    {.cap = 1024, .producers = 3, .consumers = 5, .procs = 2, .per_producer = 30000},
};

typedef struct mpmc {
    mpmc_shape_t shape;
    uint64_t total;
    rt_chan_t *ch;
    rt_waitgroup_t producers_wg, consumers_wg;
    _Atomic int next_producer;
    _Atomic uint8_t *seen; /* seen[v - 1] counts receipts of value v */
    _Atomic uint64_t sum, xor, count;
    _Atomic uint64_t dups, out_of_range, send_errors, recv_errors, close_not_zeroed;
    int producers_wait_rc, consumers_wait_rc, close_rc;
} mpmc_t;

static void mpmc_producer(void *arg)
{
    mpmc_t *m = arg;
    uint64_t id = (uint64_t)atomic_fetch_add(&m->next_producer, 1);
    uint64_t per = (uint64_t)m->shape.per_producer;
    for (uint64_t i = 0; i < per; i++) {
        uint64_t v = id * per + i + 1; /* distinct and non-zero */
        if (rt_chan_send(m->ch, &v, RT_FOREVER) != RT_OK) {
            atomic_fetch_add(&m->send_errors, 1);
        }
    }
    rt_wg_done(&m->producers_wg);
}

static void mpmc_consumer(void *arg)
{
    mpmc_t *m = arg;
    uint64_t sum = 0, xor = 0, count = 0;
    for (;;) {
        uint64_t v = UINT64_MAX;
        int rc = rt_chan_recv(m->ch, &v, RT_FOREVER);
        if (rc == RT_ECLOSED) {
            if (v != 0) {
                atomic_fetch_add(&m->close_not_zeroed, 1);
            }
            break;
        }
        if (rc != RT_OK) {
            atomic_fetch_add(&m->recv_errors, 1);
            break;
        }
        if (v == 0 || v > m->total) {
            atomic_fetch_add(&m->out_of_range, 1);
            continue;
        }
        if (atomic_fetch_add(&m->seen[v - 1], 1) != 0) {
            atomic_fetch_add(&m->dups, 1);
        }
        sum += v;
        xor ^= v;
        count++;
    }
    atomic_fetch_add(&m->sum, sum);
    atomic_fetch_xor(&m->xor, xor);
    atomic_fetch_add(&m->count, count);
    rt_wg_done(&m->consumers_wg);
}

static void mpmc_main(void *arg)
{
    mpmc_t *m = arg;
    m->ch = rt_chan_new(sizeof(uint64_t), m->shape.cap);
    rt_wg_add(&m->consumers_wg, m->shape.consumers);
    rt_wg_add(&m->producers_wg, m->shape.producers);
    for (int i = 0; i < m->shape.consumers; i++) {
        th_go(mpmc_consumer, m);
    }
    for (int i = 0; i < m->shape.producers; i++) {
        th_go(mpmc_producer, m);
    }
    rt_time_t deadline = rt_deadline_in(th_slack(WAIT_NS));
    m->producers_wait_rc = th_wg_wait_until(&m->producers_wg, deadline);
    if (m->producers_wait_rc != RT_OK) {
        return; /* the test fails on the recorded rc */
    }
    m->close_rc = rt_chan_close(m->ch);
    m->consumers_wait_rc = th_wg_wait_until(&m->consumers_wg, deadline);
    if (m->consumers_wait_rc == RT_OK) {
        rt_chan_free(m->ch);
    }
}

START_TEST(test_chan_mpmc_nothing_lost_nothing_duplicated)
{
    mpmc_t m;
    memset(&m, 0, sizeof(m));
    m.shape = mpmc_shapes[_i];
    m.shape.per_producer = th_scaled(m.shape.per_producer);
    m.total = (uint64_t)m.shape.producers * (uint64_t)m.shape.per_producer;
    m.seen = calloc(m.total, sizeof(*m.seen));
    ck_assert_ptr_nonnull(m.seen);

    th_rt_run(mpmc_main, &m, m.shape.procs);

    ck_assert_msg(m.producers_wait_rc == RT_OK, "producers did not finish (cap %zu, %dx%d)",
                  m.shape.cap, m.shape.producers, m.shape.consumers);
    ck_assert_int_eq(m.close_rc, RT_OK);
    ck_assert_msg(m.consumers_wait_rc == RT_OK, "consumers did not see the close");
    ck_assert_uint_eq(m.send_errors, 0);
    ck_assert_uint_eq(m.recv_errors, 0);
    ck_assert_uint_eq(m.out_of_range, 0);
    ck_assert_uint_eq(m.dups, 0);
    ck_assert_uint_eq(m.close_not_zeroed, 0);
    ck_assert_uint_eq(m.count, m.total);
    uint64_t want_xor = 0, missing = 0, first_missing = 0;
    for (uint64_t v = 1; v <= m.total; v++) {
        want_xor ^= v;
        if (m.seen[v - 1] != 1 && missing++ == 0) {
            first_missing = v;
        }
    }
    ck_assert_msg(missing == 0, "%llu values not received exactly once (first: %llu)",
                  (unsigned long long)missing, (unsigned long long)first_missing);
    ck_assert_uint_eq(m.sum, m.total * (m.total + 1) / 2);
    ck_assert_uint_eq(m.xor, want_xor);
    free(m.seen);
}

END_TEST

/* ---- ordering ---- */

typedef struct fifo {
    size_t cap;
    long n;
    rt_chan_t *ch;
    rt_chan_t *done;
    long received, out_of_order, send_errors;
    int done_rc;
} fifo_t;

static void fifo_consumer(void *arg)
{
    fifo_t *f = arg;
    long v;
    while (rt_chan_recv(f->ch, &v, RT_FOREVER) == RT_OK) {
        if (v != f->received) {
            f->out_of_order++;
        }
        f->received++;
    }
    char token = 1;
    (void)rt_chan_send(f->done, &token, RT_NOWAIT);
}

static void fifo_main(void *arg)
{
    fifo_t *f = arg;
    f->ch = rt_chan_new(sizeof(long), f->cap);
    f->done = rt_chan_new(1, 1);
    th_go(fifo_consumer, f);
    for (long i = 0; i < f->n; i++) {
        if (rt_chan_send(f->ch, &i, RT_FOREVER) != RT_OK) {
            f->send_errors++;
        }
    }
    rt_chan_close(f->ch);
    f->done_rc = rt_chan_recv(f->done, NULL, rt_deadline_in(th_slack(WAIT_NS)));
    if (f->done_rc == RT_OK) {
        rt_chan_free(f->ch);
        rt_chan_free(f->done);
    }
}

START_TEST(test_chan_single_producer_order_is_fifo)
{
    static const size_t caps[] = {0, 1, 7, 256};
    fifo_t f;
    memset(&f, 0, sizeof(f));
    f.cap = caps[_i];
    f.n = th_scaled(50000);
    th_rt_run(fifo_main, &f, 2);
    ck_assert_int_eq(f.done_rc, RT_OK);
    ck_assert_int_eq(f.send_errors, 0);
    ck_assert_int_eq(f.received, f.n);
    ck_assert_int_eq(f.out_of_order, 0);
}

END_TEST

/* ---- close ---- */

#define CLOSE_WAITERS 8

typedef struct closing {
    size_t cap;
    bool senders; /* the waiters send (else they receive) */
    rt_chan_t *ch;
    rt_chan_t *results;
    bool parked_seen;
    int close_rc, second_close_rc;
    int rcs[CLOSE_WAITERS];
    uint64_t elems[CLOSE_WAITERS];
    int drained, drain_end_rc;
    int results_rc;
} closing_t;

typedef struct closing_result {
    int rc;
    uint64_t elem;
} closing_result_t;

static void closing_sender(void *arg)
{
    closing_t *c = arg;
    uint64_t v = 77;
    closing_result_t r = {.rc = rt_chan_send(c->ch, &v, RT_FOREVER), .elem = v};
    (void)rt_chan_send(c->results, &r, RT_NOWAIT); /* capacity CLOSE_WAITERS */
}

static void closing_receiver(void *arg)
{
    closing_t *c = arg;
    uint64_t v = UINT64_C(0xdeadbeefdeadbeef);
    closing_result_t r = {.rc = rt_chan_recv(c->ch, &v, RT_FOREVER)};
    r.elem = v;
    (void)rt_chan_send(c->results, &r, RT_NOWAIT);
}

static void closing_main(void *arg)
{
    closing_t *c = arg;
    c->ch = rt_chan_new(sizeof(uint64_t), c->cap);
    c->results = rt_chan_new(sizeof(closing_result_t), CLOSE_WAITERS);
    /* Fill the buffer so that senders have to wait. */
    for (size_t i = 0; c->senders && i < c->cap; i++) {
        uint64_t v = 1000 + i;
        ck_assert_int_eq(rt_chan_send(c->ch, &v, RT_NOWAIT), RT_OK);
    }
    rt_stats_t st;
    rt_stats_read(&st);
    for (int i = 0; i < CLOSE_WAITERS; i++) {
        th_go(c->senders ? closing_sender : closing_receiver, c);
    }
    c->parked_seen =
        th_wait_gs_waiting(st.gs_waiting + CLOSE_WAITERS, rt_deadline_in(th_slack(5 * RT_SEC)));
    c->close_rc = rt_chan_close(c->ch);
    c->second_close_rc = rt_chan_close(c->ch);
    rt_time_t deadline = rt_deadline_in(th_slack(10 * RT_SEC));
    for (int i = 0; i < CLOSE_WAITERS; i++) {
        closing_result_t r;
        c->results_rc = rt_chan_recv(c->results, &r, deadline);
        if (c->results_rc != RT_OK) {
            return;
        }
        c->rcs[i] = r.rc;
        c->elems[i] = r.elem;
    }
    /* Values buffered before the close are still delivered, then RT_ECLOSED. */
    uint64_t v;
    int rc;
    while ((rc = rt_chan_recv(c->ch, &v, RT_NOWAIT)) == RT_OK) {
        c->drained++;
    }
    c->drain_end_rc = rc;
    rt_chan_free(c->ch);
    rt_chan_free(c->results);
}

static void check_closing(const closing_t *c)
{
    ck_assert_msg(c->parked_seen, "the %d waiters were never all parked (gs_waiting)",
                  CLOSE_WAITERS);
    ck_assert_int_eq(c->close_rc, RT_OK);
    ck_assert_int_eq(c->second_close_rc, RT_ECLOSED);
    ck_assert_msg(c->results_rc == RT_OK, "a blocked waiter was not woken by close (rc %d)",
                  c->results_rc);
    for (int i = 0; i < CLOSE_WAITERS; i++) {
        ck_assert_int_eq(c->rcs[i], RT_ECLOSED);
        if (!c->senders) {
            ck_assert_uint_eq(c->elems[i], 0); /* receive on closed zeroes `elem` */
        }
    }
    ck_assert_int_eq(c->drain_end_rc, RT_ECLOSED);
}

START_TEST(test_chan_close_wakes_every_blocked_sender)
{
    static const size_t caps[] = {0, 2};
    closing_t c;
    memset(&c, 0, sizeof(c));
    c.cap = caps[_i];
    c.senders = true;
    th_rt_run(closing_main, &c, 2);
    check_closing(&c);
    ck_assert_int_eq(c.drained, (int)c.cap);
}

END_TEST

START_TEST(test_chan_close_wakes_every_blocked_receiver)
{
    static const size_t caps[] = {0, 2};
    closing_t c;
    memset(&c, 0, sizeof(c));
    c.cap = caps[_i];
    c.senders = false;
    th_rt_run(closing_main, &c, 2);
    check_closing(&c);
    ck_assert_int_eq(c.drained, 0);
}

END_TEST

typedef struct drain {
    int sent_rc[5];
    size_t len_after_close;
    int close_rc;
    int recv_rc[5];
    int values[5];
    int end_rc, end_rc2, end_value;
    size_t len_end;
} drain_t;

static void drain_main(void *arg)
{
    drain_t *d = arg;
    rt_chan_t *ch = rt_chan_new(sizeof(int), 8);
    for (int i = 0; i < 5; i++) {
        int v = 100 + i;
        d->sent_rc[i] = rt_chan_send(ch, &v, RT_NOWAIT);
    }
    d->close_rc = rt_chan_close(ch);
    d->len_after_close = rt_chan_len(ch);
    for (int i = 0; i < 5; i++) {
        d->recv_rc[i] = rt_chan_recv(ch, &d->values[i], RT_FOREVER);
    }
    d->end_value = -1;
    d->end_rc = rt_chan_recv(ch, &d->end_value, RT_FOREVER);
    d->end_rc2 = rt_chan_recv(ch, NULL, RT_NOWAIT);
    d->len_end = rt_chan_len(ch);
    rt_chan_free(ch);
}

START_TEST(test_chan_recv_drains_buffer_after_close)
{
    drain_t d;
    memset(&d, 0, sizeof(d));
    th_rt_run(drain_main, &d, 1);
    ck_assert_int_eq(d.close_rc, RT_OK);
    ck_assert_uint_eq(d.len_after_close, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(d.sent_rc[i], RT_OK);
        ck_assert_int_eq(d.recv_rc[i], RT_OK);
        ck_assert_int_eq(d.values[i], 100 + i);
    }
    ck_assert_int_eq(d.end_rc, RT_ECLOSED);
    ck_assert_int_eq(d.end_value, 0);
    ck_assert_int_eq(d.end_rc2, RT_ECLOSED);
    ck_assert_uint_eq(d.len_end, 0);
}

END_TEST

typedef struct send_closed {
    int rc_forever, rc_nowait, rc_deadline, len;
} send_closed_t;

static void send_closed_main(void *arg)
{
    send_closed_t *s = arg;
    static const size_t caps[] = {0, 4};
    for (size_t i = 0; i < 2; i++) {
        rt_chan_t *ch = rt_chan_new(sizeof(int), caps[i]);
        ck_assert_int_eq(rt_chan_close(ch), RT_OK);
        int v = 5;
        s[i].rc_forever = rt_chan_send(ch, &v, RT_FOREVER);
        s[i].rc_nowait = rt_chan_send(ch, &v, RT_NOWAIT);
        s[i].rc_deadline = rt_chan_send(ch, &v, rt_deadline_in(10 * RT_MSEC));
        s[i].len = (int)rt_chan_len(ch);
        rt_chan_free(ch);
    }
}

START_TEST(test_chan_send_on_closed_returns_eclosed)
{
    send_closed_t s[2];
    memset(s, 0, sizeof(s));
    th_rt_run(send_closed_main, s, 1);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(s[i].rc_forever, RT_ECLOSED);
        ck_assert_int_eq(s[i].rc_nowait, RT_ECLOSED);
        ck_assert_int_eq(s[i].rc_deadline, RT_ECLOSED);
        ck_assert_int_eq(s[i].len, 0);
    }
}

END_TEST

/* ---- RT_NOWAIT and deadlines ---- */

typedef struct try_ops {
    int unbuf_send, unbuf_recv, unbuf_recv_past;
    int buf_send[3], buf_recv[3];
    int buf_values[2];
    size_t buf_len_full, buf_cap;
    int rendezvous_rc;
    uint64_t rendezvous_value;
    int rendezvous_recv_rc;
    rt_time_t elapsed;
} try_ops_t;

typedef struct rendezvous {
    rt_chan_t *ch;
    rt_chan_t *done;
} rendezvous_t;

static void rendezvous_receiver(void *arg)
{
    rendezvous_t *r = arg;
    uint64_t v = 0;
    int rc = rt_chan_recv(r->ch, &v, RT_FOREVER);
    uint64_t out[2] = {(uint64_t)(int64_t)rc, v};
    (void)rt_chan_send(r->done, out, RT_NOWAIT);
}

static void try_ops_main(void *arg)
{
    try_ops_t *t = arg;
    rt_chan_t *unbuf = rt_chan_new(sizeof(uint64_t), 0);
    uint64_t v = 9;
    rt_time_t t0 = rt_now();
    t->unbuf_send = rt_chan_send(unbuf, &v, RT_NOWAIT);
    t->unbuf_recv = rt_chan_recv(unbuf, &v, RT_NOWAIT);
    t->unbuf_recv_past = rt_chan_recv(unbuf, &v, rt_now() - RT_MSEC);
    t->elapsed = rt_now() - t0;

    rt_chan_t *buf = rt_chan_new(sizeof(int), 2);
    t->buf_cap = rt_chan_cap(buf);
    for (int i = 0; i < 3; i++) {
        int x = 10 + i;
        t->buf_send[i] = rt_chan_send(buf, &x, RT_NOWAIT);
    }
    t->buf_len_full = rt_chan_len(buf);
    for (int i = 0; i < 3; i++) {
        int x = -1;
        t->buf_recv[i] = rt_chan_recv(buf, &x, RT_NOWAIT);
        if (i < 2) {
            t->buf_values[i] = x;
        }
    }
    rt_chan_free(buf);

    /* A try-send succeeds once a receiver waits on the rendezvous channel. */
    rendezvous_t r = {.ch = unbuf, .done = rt_chan_new(sizeof(uint64_t[2]), 1)};
    th_go(rendezvous_receiver, &r);
    rt_time_t deadline = rt_deadline_in(th_slack(5 * RT_SEC));
    uint64_t magic = 0x5eed;
    do {
        t->rendezvous_rc = rt_chan_send(unbuf, &magic, RT_NOWAIT);
        if (t->rendezvous_rc != RT_EAGAIN) {
            break;
        }
        rt_yield();
    } while (rt_now() < deadline);
    uint64_t out[2] = {0, 0};
    if (t->rendezvous_rc != RT_OK) {
        rt_chan_close(unbuf); /* releases the receiver */
    }
    (void)rt_chan_recv(r.done, out, rt_deadline_in(th_slack(5 * RT_SEC)));
    t->rendezvous_recv_rc = (int)(int64_t)out[0];
    t->rendezvous_value = out[1];
    rt_chan_free(r.done);
    rt_chan_free(unbuf);
}

START_TEST(test_chan_nowait_returns_eagain)
{
    try_ops_t t;
    memset(&t, 0, sizeof(t));
    th_rt_run(try_ops_main, &t, 2);
    ck_assert_int_eq(t.unbuf_send, RT_EAGAIN);
    ck_assert_int_eq(t.unbuf_recv, RT_EAGAIN);
    ck_assert_int_eq(t.unbuf_recv_past, RT_EAGAIN);
    ck_assert_msg(t.elapsed < th_slack(100 * RT_MSEC), "RT_NOWAIT calls took %lld ns",
                  (long long)t.elapsed);
    ck_assert_uint_eq(t.buf_cap, 2);
    ck_assert_int_eq(t.buf_send[0], RT_OK);
    ck_assert_int_eq(t.buf_send[1], RT_OK);
    ck_assert_int_eq(t.buf_send[2], RT_EAGAIN);
    ck_assert_uint_eq(t.buf_len_full, 2);
    ck_assert_int_eq(t.buf_recv[0], RT_OK);
    ck_assert_int_eq(t.buf_recv[1], RT_OK);
    ck_assert_int_eq(t.buf_recv[2], RT_EAGAIN);
    ck_assert_int_eq(t.buf_values[0], 10);
    ck_assert_int_eq(t.buf_values[1], 11);
    ck_assert_msg(t.rendezvous_rc == RT_OK, "try-send never met the waiting receiver (last rc %d)",
                  t.rendezvous_rc);
    ck_assert_int_eq(t.rendezvous_recv_rc, RT_OK);
    ck_assert_uint_eq(t.rendezvous_value, 0x5eed);
}

END_TEST

typedef struct deadlines {
    int recv_rc, send_full_rc, send_unbuf_rc, after_rc;
    rt_time_t recv_elapsed, send_full_elapsed, send_unbuf_elapsed;
    size_t len_after;
} deadlines_t;

#define DEADLINE_NS (50 * RT_MSEC)

static void deadlines_main(void *arg)
{
    deadlines_t *d = arg;
    rt_chan_t *unbuf = rt_chan_new(sizeof(int), 0);
    rt_chan_t *full = rt_chan_new(sizeof(int), 1);
    int v = 1;
    ck_assert_int_eq(rt_chan_send(full, &v, RT_NOWAIT), RT_OK);

    rt_time_t t0 = rt_now();
    d->recv_rc = rt_chan_recv(unbuf, &v, t0 + DEADLINE_NS);
    d->recv_elapsed = rt_now() - t0;

    t0 = rt_now();
    d->send_full_rc = rt_chan_send(full, &v, t0 + DEADLINE_NS);
    d->send_full_elapsed = rt_now() - t0;
    d->len_after = rt_chan_len(full);

    t0 = rt_now();
    d->send_unbuf_rc = rt_chan_send(unbuf, &v, t0 + DEADLINE_NS);
    d->send_unbuf_elapsed = rt_now() - t0;
    /* The timed-out sender must have withdrawn: nothing is there to receive. */
    d->after_rc = rt_chan_recv(unbuf, &v, RT_NOWAIT);
    rt_chan_free(unbuf);
    rt_chan_free(full);
}

START_TEST(test_chan_deadline_returns_etimedout)
{
    deadlines_t d;
    memset(&d, 0, sizeof(d));
    th_rt_run(deadlines_main, &d, 2);
    ck_assert_int_eq(d.recv_rc, RT_ETIMEDOUT);
    ck_assert_int_eq(d.send_full_rc, RT_ETIMEDOUT);
    ck_assert_int_eq(d.send_unbuf_rc, RT_ETIMEDOUT);
    ck_assert_int_eq(d.after_rc, RT_EAGAIN);
    ck_assert_uint_eq(d.len_after, 1);
    rt_time_t elapsed[] = {d.recv_elapsed, d.send_full_elapsed, d.send_unbuf_elapsed};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_msg(elapsed[i] >= DEADLINE_NS, "op %zu timed out early after %lld ns", i,
                      (long long)elapsed[i]);
        ck_assert_msg(elapsed[i] < DEADLINE_NS + th_slack(500 * RT_MSEC),
                      "op %zu timed out late after %lld ns", i, (long long)elapsed[i]);
    }
}

END_TEST

Suite *suite_runtime_chan(void)
{
    Suite *s = suite_create("runtime/chan");

    TCase *tc = tcase_create("mpmc");
    tcase_add_loop_test(tc, test_chan_mpmc_nothing_lost_nothing_duplicated, 0,
                        (int)(sizeof(mpmc_shapes) / sizeof(mpmc_shapes[0])));
    tcase_add_loop_test(tc, test_chan_single_producer_order_is_fifo, 0, 4);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_loop_test(tc, test_chan_close_wakes_every_blocked_sender, 0, 2);
    tcase_add_loop_test(tc, test_chan_close_wakes_every_blocked_receiver, 0, 2);
    tcase_add_test(tc, test_chan_recv_drains_buffer_after_close);
    tcase_add_test(tc, test_chan_send_on_closed_returns_eclosed);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadline");
    tcase_add_test(tc, test_chan_nowait_returns_eagain);
    tcase_add_test(tc, test_chan_deadline_returns_etimedout);
    suite_add_tcase(s, tc);
    return s;
}
