/* SPDX-License-Identifier: MIT */
/*
 * test_time.c - suite "runtime/time": timers of runtime/time.c: many
 * sleepers wake in deadline order with bounded lateness, timer channels
 * fire, freed timers stay silent, the clock helpers behave.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/support/th_stall.h"
#include "tests/unit/runtime/suites.h"

/* ---- many sleepers ---- */

#define SLEEP_SPAN_NS (200 * RT_MSEC)

typedef struct sleeper_rec {
    rt_time_t offset; /* deadline = start + offset */
    rt_time_t deadline, called, woke;
    rt_time_t due; /* max(deadline, called): the earliest it could wake */
    uint64_t order;
} sleeper_rec_t;

typedef struct sleepers {
    long n;
    sleeper_rec_t *recs;
    rt_chan_t *start; /* closed once every sleeper is spawned */
    rt_time_t start_at;
    _Atomic uint64_t order;
    rt_waitgroup_t wg;
    int wait_rc;
} sleepers_t;

static sleepers_t *sleepers_state;

static void sleeper(void *arg)
{
    sleeper_rec_t *r = arg;
    /*
     * Spawning 10k Gs (stack faults, mappings) is not what is measured:
     * every sleeper starts the clock only when all of them exist.
     */
    (void)rt_chan_recv(sleepers_state->start, NULL, RT_FOREVER);
    r->deadline = sleepers_state->start_at + r->offset;
    r->called = rt_now();
    rt_sleep_until(r->deadline);
    r->woke = rt_now();
    r->order = atomic_fetch_add(&sleepers_state->order, 1);
    rt_wg_done(&sleepers_state->wg);
}

static void sleepers_main(void *arg)
{
    sleepers_t *s = arg;
    sleepers_state = s;
    uint64_t rng = th_rand_init(1);
    s->start = rt_chan_new(1, 0);
    rt_wg_add(&s->wg, s->n);
    for (long i = 0; i < s->n; i++) {
        s->recs[i].offset = (rt_time_t)(th_rand(&rng) % (uint64_t)SLEEP_SPAN_NS);
        th_go(sleeper, &s->recs[i]);
        if (i % 256 == 255) {
            rt_yield(); /* a cooperative spawner */
        }
    }
    s->start_at = rt_now();
    rt_chan_close(s->start);
    s->wait_rc = th_wg_wait_until(&s->wg, rt_deadline_in(th_slack(20 * RT_SEC)));
    if (s->wait_rc == RT_OK) {
        rt_chan_free(s->start);
    }
}

static int cmp_due(const void *a, const void *b)
{
    const sleeper_rec_t *x = a, *y = b;
    return (x->due > y->due) - (x->due < y->due);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* What one run of the sleepers measured. */
typedef struct sleepers_result {
    long early;        /* woke before their deadline */
    int64_t p99, max;  /* lateness */
    long out_of_order; /* woke after one due more than `bound` later */
    int64_t stall;     /* the worst stall the witness saw meanwhile */
} sleepers_result_t;

static sleepers_result_t measure_sleepers(long n, int64_t bound)
{
    sleepers_t s;
    memset(&s, 0, sizeof(s));
    s.n = n;
    s.recs = calloc((size_t)s.n, sizeof(*s.recs));
    ck_assert_ptr_nonnull(s.recs);
    th_stall_watch_t *watch = th_stall_watch_start();
    th_rt_run(sleepers_main, &s, 2);
    sleepers_result_t res = {.stall = th_stall_watch_stop(watch)};
    ck_assert_int_eq(s.wait_rc, RT_OK);

    /* Lateness counts from when the sleeper could first have woken. */
    int64_t *late = calloc((size_t)s.n, sizeof(*late));
    ck_assert_ptr_nonnull(late);
    for (long i = 0; i < s.n; i++) {
        sleeper_rec_t *r = &s.recs[i];
        if (r->woke < r->deadline) {
            res.early++;
        }
        r->due = r->deadline > r->called ? r->deadline : r->called;
        late[i] = r->woke - r->due;
    }
    qsort(late, (size_t)s.n, sizeof(*late), cmp_i64);
    res.p99 = late[(s.n * 99) / 100];
    res.max = late[s.n - 1];
    fprintf(stderr,
            "sleepers: n=%ld lateness p50 %.3f ms p99 %.3f ms max %.3f ms; "
            "witness stall %.3f ms\n",
            s.n, (double)late[s.n / 2] / RT_MSEC, (double)res.p99 / RT_MSEC,
            (double)res.max / RT_MSEC, (double)res.stall / RT_MSEC);

    /*
     * Order: a sleeper woke out of order if one due more than `bound` after
     * it woke before it ("due" rather than the deadline: a G that started
     * after its deadline was due when it started). Sorted by due time, a
     * suffix minimum of the wake order finds, for each sleeper, the earliest
     * waker due later.
     */
    qsort(s.recs, (size_t)s.n, sizeof(*s.recs), cmp_due);
    uint64_t *min_after = calloc((size_t)s.n + 1, sizeof(*min_after));
    ck_assert_ptr_nonnull(min_after);
    min_after[s.n] = UINT64_MAX;
    for (long i = s.n - 1; i >= 0; i--) {
        uint64_t o = s.recs[i].order;
        min_after[i] = o < min_after[i + 1] ? o : min_after[i + 1];
    }
    long k = 0;
    for (long i = 0; i < s.n; i++) {
        while (k < s.n && s.recs[k].due <= s.recs[i].due + bound) {
            k++;
        }
        res.out_of_order += min_after[k] < s.recs[i].order;
    }
    free(min_after);
    free(late);
    free(s.recs);
    return res;
}

/*
 * 99% of the sleepers wake within `bound` of their deadline, and in order
 * to within `bound`. Both are wall-clock figures, so a stall of the machine
 * itself (this VM descheduled for 30 ms, seen in CI) breaks them whatever
 * the runtime does: an attempt that misses is measured again, at most
 * twice, only if the stall witness saw the machine stop for half the bound.
 * A miss the witness cannot explain fails at once.
 */
#define SLEEPERS_ATTEMPTS 3

START_TEST(test_time_sleepers_wake_in_deadline_order)
{
    long n = th_scaled(10000);
    int64_t bound = th_slack(20 * RT_MSEC);
    sleepers_result_t res;
    for (int attempt = 1;; attempt++) {
        res = measure_sleepers(n, bound);
        ck_assert_msg(res.early == 0, "%ld of %ld sleepers woke before their deadline", res.early,
                      n);
        bool met = res.p99 < bound && res.out_of_order <= n / 100;
        if (met || res.stall < bound / 2 || attempt == SLEEPERS_ATTEMPTS) {
            break;
        }
        fprintf(stderr, "sleepers: missed while the machine stalled %.1f ms; measuring again\n",
                (double)res.stall / RT_MSEC);
    }
    ck_assert_msg(res.p99 < bound,
                  "p99 wake lateness %.3f ms >= %.3f ms (max %.3f ms; witness stall %.1f ms)",
                  (double)res.p99 / RT_MSEC, (double)bound / RT_MSEC, (double)res.max / RT_MSEC,
                  (double)res.stall / RT_MSEC);
    ck_assert_msg(
        res.out_of_order <= n / 100,
        "%ld of %ld sleepers woke after one due more than %lld ms later (witness stall %.1f ms)",
        res.out_of_order, n, (long long)(bound / RT_MSEC), (double)res.stall / RT_MSEC);
}

END_TEST

/* ---- timer channels ---- */

#define TIMER_NS (30 * RT_MSEC)

typedef struct timer_fire {
    rt_time_t when, fired, received_at;
    int rc, again_rc;
    size_t cap;
} timer_fire_t;

static void timer_fire_main(void *arg)
{
    timer_fire_t *t = arg;
    t->when = rt_deadline_in(TIMER_NS);
    rt_timer_t *tm = rt_timer_new(t->when);
    rt_chan_t *ch = rt_timer_chan(tm);
    t->cap = rt_chan_cap(ch);
    t->rc = rt_chan_recv(ch, &t->fired, rt_deadline_in(th_slack(5 * RT_SEC)));
    t->received_at = rt_now();
    /* A timer fires once. */
    t->again_rc = rt_chan_recv(ch, NULL, rt_deadline_in(20 * RT_MSEC));
    rt_timer_free(tm);
}

START_TEST(test_time_timer_channel_fires)
{
    timer_fire_t t;
    memset(&t, 0, sizeof(t));
    th_rt_run(timer_fire_main, &t, 2);
    ck_assert_int_eq(t.rc, RT_OK);
    ck_assert_uint_eq(t.cap, 1);
    ck_assert_msg(t.fired >= t.when, "fire time %lld before its deadline %lld", (long long)t.fired,
                  (long long)t.when);
    ck_assert_msg(t.fired <= t.received_at, "fire time after it was received");
    ck_assert_msg(t.received_at - t.when < th_slack(200 * RT_MSEC), "timer fired %lld ms late",
                  (long long)((t.received_at - t.when) / RT_MSEC));
    ck_assert_int_eq(t.again_rc, RT_ETIMEDOUT);
}

END_TEST

#define FREED_TIMERS 1000

typedef struct timer_stop {
    uint64_t fires_before, fires_after;
    int control_rc;
    size_t fired_len;
    rt_time_t freed_when;
} timer_stop_t;

static void timer_stop_main(void *arg)
{
    timer_stop_t *t = arg;
    rt_timer_t *timers[FREED_TIMERS];
    t->freed_when = rt_deadline_in(20 * RT_MSEC);
    rt_stats_t st;
    rt_stats_read(&st);
    t->fires_before = st.timer_fires;
    for (int i = 0; i < FREED_TIMERS; i++) {
        timers[i] = rt_timer_new(t->freed_when);
    }
    for (int i = 0; i < FREED_TIMERS; i++) {
        rt_timer_free(timers[i]);
    }
    /* Wait past the freed timers' deadline on a control timer. */
    rt_timer_t *control = rt_timer_new(t->freed_when + 40 * RT_MSEC);
    t->control_rc =
        rt_chan_recv(rt_timer_chan(control), NULL, rt_deadline_in(th_slack(5 * RT_SEC)));
    rt_timer_free(control);
    /* A timer already fired but never read is freed as well. */
    rt_timer_t *fired = rt_timer_new(rt_now());
    rt_time_t deadline = rt_deadline_in(th_slack(5 * RT_SEC));
    while (rt_chan_len(rt_timer_chan(fired)) == 0 && rt_now() < deadline) {
        rt_yield();
    }
    t->fired_len = rt_chan_len(rt_timer_chan(fired));
    rt_timer_free(fired);
    rt_stats_read(&st);
    t->fires_after = st.timer_fires;
}

START_TEST(test_time_timer_free_stops_pending_timer)
{
    timer_stop_t t;
    memset(&t, 0, sizeof(t));
    th_rt_run(timer_stop_main, &t, 2);
    ck_assert_int_eq(t.control_rc, RT_OK);
    ck_assert_uint_eq(t.fired_len, 1);
    uint64_t fires = t.fires_after - t.fires_before;
    /* The control timer and the fired one (and deadline timers); the freed ones never. */
    ck_assert_msg(fires < FREED_TIMERS / 2, "%llu timer fires: freed timers still fired",
                  (unsigned long long)fires);
    ck_assert_msg(fires >= 1, "stats.timer_fires did not count the control timer");
}

END_TEST

/* ---- clock helpers and plain sleeps ---- */

typedef struct sleeps {
    rt_time_t elapsed[3];
    rt_time_t past_elapsed;
} sleeps_t;

static void sleeps_main(void *arg)
{
    sleeps_t *s = arg;
    static const int64_t ns[3] = {1 * RT_MSEC, 10 * RT_MSEC, 25 * RT_MSEC};
    for (int i = 0; i < 3; i++) {
        rt_time_t t0 = rt_now();
        rt_sleep(ns[i]);
        s->elapsed[i] = rt_now() - t0;
    }
    rt_time_t t0 = rt_now();
    rt_sleep_until(t0 - RT_SEC);
    rt_sleep(0);
    s->past_elapsed = rt_now() - t0;
}

/* ---- a P busy with a hog does not hold back its timers ---- */

#define BUSY_TIMER_NS (20 * RT_MSEC)
#define BUSY_SPIN_NS (300 * RT_MSEC)

typedef struct busy_timer {
    rt_timer_t *timer;
    rt_waitgroup_t wg;
    int armed_on, spun_on, recv_rc;
    rt_time_t armed_at, woke_at, spin_end;
} busy_timer_t;

static void busy_timer_waiter(void *arg)
{
    busy_timer_t *b = arg;
    rt_time_t fired;
    b->recv_rc =
        rt_chan_recv(rt_timer_chan(b->timer), &fired, rt_deadline_in(th_slack(5 * RT_SEC)));
    b->woke_at = rt_now();
    rt_wg_done(&b->wg);
}

static void busy_timer_main(void *arg)
{
    busy_timer_t *b = arg;
    rt_wg_add(&b->wg, 1);
    /* The timer lands in this P's heap; then this G holds the P, spinning. */
    b->armed_at = rt_now();
    b->armed_on = rt_p_id();
    b->timer = rt_timer_new(b->armed_at + BUSY_TIMER_NS);
    th_go(busy_timer_waiter, b);
    rt_yield(); /* let the waiter park on the timer's channel */
    b->spun_on = rt_p_id();
    while (rt_now() - b->armed_at < BUSY_SPIN_NS) {
    }
    b->spin_end = rt_now();
    (void)th_wg_wait_until(&b->wg, rt_deadline_in(th_slack(5 * RT_SEC)));
    rt_timer_free(b->timer);
}

START_TEST(test_time_timers_of_a_busy_p_fire_on_time)
{
    busy_timer_t b;
    memset(&b, 0, sizeof(b));
    th_rt_run(busy_timer_main, &b, 2);
    ck_assert_int_eq(b.recv_rc, RT_OK);
    ck_assert_int_eq(b.armed_on, b.spun_on);
    int64_t late = b.woke_at - (b.armed_at + BUSY_TIMER_NS);
    ck_assert_msg(late >= 0 && late < th_slack(50 * RT_MSEC),
                  "timer of a busy P woke its G %.1f ms late (the P was busy for %.0f ms)",
                  (double)late / RT_MSEC, (double)(b.spin_end - b.armed_at) / RT_MSEC);
}

END_TEST

START_TEST(test_time_sleep_lasts_at_least_its_duration)
{
    sleeps_t s;
    memset(&s, 0, sizeof(s));
    th_rt_run(sleeps_main, &s, 1);
    static const int64_t ns[3] = {1 * RT_MSEC, 10 * RT_MSEC, 25 * RT_MSEC};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(s.elapsed[i] >= ns[i], "rt_sleep(%lld) returned after %lld ns",
                      (long long)ns[i], (long long)s.elapsed[i]);
        ck_assert_msg(s.elapsed[i] < ns[i] + th_slack(100 * RT_MSEC),
                      "rt_sleep(%lld) returned after %lld ns", (long long)ns[i],
                      (long long)s.elapsed[i]);
    }
    ck_assert_msg(s.past_elapsed < th_slack(50 * RT_MSEC), "past deadlines slept %lld ns",
                  (long long)s.past_elapsed);
}

END_TEST

/*
 * Deadlines of a second or more come from the coarse clock once a runtime
 * runs (proc.c): never early, at most 1/32 late. Checked over many samples
 * with idle gaps between them, since the coarse clock lags most right
 * after an idle CPU's tick.
 */
#define DEADLINE_SAMPLES 2000

typedef struct deadline_check {
    long early, late;
    int64_t worst_early, worst_late;
} deadline_check_t;

static void deadline_check_main(void *arg)
{
    deadline_check_t *c = arg;
    for (int i = 0; i < DEADLINE_SAMPLES; i++) {
        if (i % 4 == 0) {
            rt_sleep((i % 13) * 100 * RT_USEC);
        }
        rt_time_t t0 = rt_now();
        rt_time_t d = rt_deadline_in(RT_SEC);
        rt_time_t t1 = rt_now();
        if (d < t0 + RT_SEC) {
            c->early++;
            c->worst_early = t0 + RT_SEC - d > c->worst_early ? t0 + RT_SEC - d : c->worst_early;
        } else if (d > t1 + RT_SEC + RT_SEC / 32) {
            c->late++;
            c->worst_late = d - t1 - RT_SEC > c->worst_late ? d - t1 - RT_SEC : c->worst_late;
        }
    }
}

START_TEST(test_time_clock_is_monotonic_and_deadlines_saturate)
{
    rt_time_t prev = rt_now();
    ck_assert_int_gt(prev, 0);
    long backwards = 0;
    for (int i = 0; i < 100000; i++) {
        rt_time_t now = rt_now();
        backwards += now < prev;
        prev = now;
    }
    ck_assert_int_eq(backwards, 0);
    ck_assert_int_eq(rt_deadline_in(INT64_MAX), RT_FOREVER);
    ck_assert_int_eq(rt_deadline_in(INT64_MAX - 1), RT_FOREVER);

    deadline_check_t c;
    memset(&c, 0, sizeof(c));
    th_rt_run(deadline_check_main, &c, 1);
    ck_assert_msg(c.early == 0, "%ld of %d one-second deadlines early, by up to %.3f ms", c.early,
                  DEADLINE_SAMPLES, (double)c.worst_early / RT_MSEC);
    ck_assert_msg(c.late == 0, "%ld of %d one-second deadlines over 1/32 late, by up to %.3f ms",
                  c.late, DEADLINE_SAMPLES, (double)c.worst_late / RT_MSEC);
}

END_TEST

Suite *suite_runtime_time(void)
{
    Suite *s = suite_create("runtime/time");

    TCase *tc = tcase_create("sleep");
    tcase_add_test(tc, test_time_sleepers_wake_in_deadline_order);
    tcase_add_test(tc, test_time_sleep_lasts_at_least_its_duration);
    tcase_add_test(tc, test_time_clock_is_monotonic_and_deadlines_saturate);
    suite_add_tcase(s, tc);

    tc = tcase_create("timer");
    tcase_add_test(tc, test_time_timer_channel_fires);
    tcase_add_test(tc, test_time_timer_free_stops_pending_timer);
    tcase_add_test(tc, test_time_timers_of_a_busy_p_fire_on_time);
    suite_add_tcase(s, tc);
    return s;
}
