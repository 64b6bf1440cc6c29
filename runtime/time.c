/* SPDX-License-Identifier: MIT */
/*
 * time.c - timers: per-P 4-ary min-heaps, sleep, and rt_timer channels
 * (Go's time.go, simplified).
 *
 * A timer lives in the heap of the P that started it, under that P's
 * timers_lock. Any M may run any P's expired timers: the owner checks its own
 * heap in the scheduler, spinning Ms check their victims' heaps, and the M
 * sleeping in the netpoller sleeps until the earliest timer of all Ps, so a P
 * busy running a long G does not delay its timers.
 *
 * A timer's callback runs with no lock held, counted in `running`;
 * rt__timer_stop waits for the count to drop to zero, so a timer embedded in a
 * G's stack frame can be stopped and then safely go out of scope. It is a
 * count, not a flag, because a callback may start its own timer again, which
 * can then fire on another M before the first call has returned.
 *
 * Rejected: one global heap (a contended lock on every sleep and deadline);
 * a timing wheel (coarse: p50 lateness under 100 us needs exact deadlines and
 * epoll_pwait2's nanosecond timeout).
 */
#include <sched.h>
#include <stdlib.h>

#include "runtime/internal.h"

static void heap_set(rt__p_t *p, int i, rt__timer_slot_t slot)
{
    p->timers[i] = slot;
    slot.t->index = i;
}

static void sift_up(rt__p_t *p, int i)
{
    rt__timer_slot_t s = p->timers[i];
    while (i > 0) {
        int parent = (i - 1) / 4;
        if (p->timers[parent].when <= s.when)
            break;
        heap_set(p, i, p->timers[parent]);
        i = parent;
    }
    heap_set(p, i, s);
}

static void sift_down(rt__p_t *p, int i)
{
    rt__timer_slot_t s = p->timers[i];
    int n = p->ntimers;
    for (;;) {
        int c = 4 * i + 1, best = -1;
        rt_time_t w = s.when;
        for (int k = c; k < c + 4 && k < n; k++) {
            if (p->timers[k].when < w) {
                w = p->timers[k].when;
                best = k;
            }
        }
        if (best < 0)
            break;
        heap_set(p, i, p->timers[best]);
        i = best;
    }
    heap_set(p, i, s);
}

static void heap_remove(rt__p_t *p, int i)
{
    rt__timer_t *t = p->timers[i].t;
    int last = --p->ntimers;
    t->index = -1;
    if (i != last) {
        heap_set(p, i, p->timers[last]);
        sift_down(p, i);
        sift_up(p, p->timers[i].t->index);
    }
}

static void update_timer0(rt__p_t *p)
{
    atomic_store_explicit(&p->timer0, p->ntimers ? p->timers[0].when : RT_FOREVER,
                          memory_order_relaxed);
}

void rt__timer_start(rt__timer_t *t, rt_time_t when, rt__timer_fn *fn, void *arg)
{
    rt__m_t *m = rt__getm();
    rt__p_t *p = m && m->p ? m->p : rt__sched.allp[0];
    t->when = when;
    t->fn = fn;
    t->arg = arg;
    t->p = p;
    rt__spin_lock(&p->timers_lock);
    if (p->ntimers == p->timers_cap) {
        p->timers_cap = p->timers_cap ? 2 * p->timers_cap : 64;
        p->timers = rt_xrealloc(p->timers, (size_t)p->timers_cap * sizeof(*p->timers));
    }
    heap_set(p, p->ntimers++, (rt__timer_slot_t){when, t});
    sift_up(p, t->index);
    update_timer0(p);
    rt__spin_unlock(&p->timers_lock);
    /* The M asleep in the netpoller must wake for an earlier deadline. */
    if (when < atomic_load(&rt__sched.poll_until))
        rt__netpoll_break();
}

bool rt__timer_stop(rt__timer_t *t)
{
    rt__p_t *p = t->p;
    if (!p)
        return false;
    rt__spin_lock(&p->timers_lock);
    bool queued = t->index >= 0;
    if (queued) {
        heap_remove(p, t->index);
        update_timer0(p);
    }
    rt__spin_unlock(&p->timers_lock);
    /* A call of fn may be running even if the timer was queued: one that
     * started the timer again (netpoll.c) and has not returned yet. */
    while (atomic_load_explicit(&t->running, memory_order_acquire))
        sched_yield();
    return queued;
}

bool rt__timer_reset(rt__timer_t *t, rt_time_t when)
{
    rt__p_t *p = t->p;
    if (!p)
        return false;
    rt__spin_lock(&p->timers_lock);
    if (t->index < 0) {
        rt__spin_unlock(&p->timers_lock);
        return false;
    }
    t->when = when;
    p->timers[t->index].when = when;
    sift_down(p, t->index);
    sift_up(p, t->index);
    update_timer0(p);
    rt__spin_unlock(&p->timers_lock);
    if (when < atomic_load(&rt__sched.poll_until))
        rt__netpoll_break();
    return true;
}

rt_time_t rt__timers_run(rt__p_t *p, rt_time_t now)
{
    if (!rt__spin_trylock(&p->timers_lock))
        return atomic_load(&p->timer0); /* someone else is running them */
    while (p->ntimers > 0 && p->timers[0].when <= now) {
        rt__timer_t *t = p->timers[0].t;
        heap_remove(p, 0);
        atomic_fetch_add_explicit(&t->running, 1, memory_order_relaxed);
        update_timer0(p);
        rt__spin_unlock(&p->timers_lock);
        atomic_fetch_add_explicit(&p->st.timer_fires, 1, memory_order_relaxed);
        t->fn(t, t->arg);
        atomic_fetch_sub_explicit(&t->running, 1, memory_order_release);
        rt__spin_lock(&p->timers_lock);
    }
    update_timer0(p);
    rt_time_t next = p->ntimers ? p->timers[0].when : RT_FOREVER;
    rt__spin_unlock(&p->timers_lock);
    return next;
}

rt_time_t rt__timers_next(void)
{
    rt_time_t next = RT_FOREVER;
    for (int i = 0; i < rt__sched.nprocs; i++) {
        rt_time_t w = atomic_load_explicit(&rt__sched.allp[i]->timer0, memory_order_relaxed);
        if (w < next)
            next = w;
    }
    return next;
}

/* ---- sleep ---- */

static void wake_sleeper(rt__timer_t *t, void *arg)
{
    (void)t;
    rt__ready(arg, false);
}

static bool arm_sleep(rt__g_t *g, void *arg)
{
    rt__timer_t *t = arg;
    rt__timer_start(t, t->when, wake_sleeper, g);
    return true;
}

void rt_sleep_until(rt_time_t deadline)
{
    if (deadline <= rt_now()) {
        rt_yield();
        return;
    }
    rt__timer_t t = {.when = deadline, .index = -1};
    rt__park(NULL, arm_sleep, &t);
    rt__timer_stop(&t);
}

void rt_sleep(int64_t ns)
{
    rt_sleep_until(rt_deadline_in(ns));
}

/* ---- rt_timer: a channel that receives the time once ---- */

struct rt_timer {
    rt__timer_t t;
    rt_chan_t *ch;
};

static void fire_timer(rt__timer_t *t, void *arg)
{
    rt_timer_t *tm = arg;
    rt_time_t now = rt_now();
    (void)t;
    (void)rt_chan_send(tm->ch, &now, RT_NOWAIT);
}

rt_timer_t *rt_timer_new(rt_time_t when)
{
    RT_CHECK(rt__getm() != NULL, "rt_timer_new outside the runtime");
    rt_timer_t *tm = rt_xcalloc(1, sizeof(*tm));
    tm->ch = rt_chan_new(sizeof(rt_time_t), 1);
    tm->t.index = -1;
    rt__timer_start(&tm->t, when, fire_timer, tm);
    return tm;
}

rt_chan_t *rt_timer_chan(rt_timer_t *t)
{
    return t->ch;
}

void rt_timer_free(rt_timer_t *t)
{
    if (!t)
        return;
    rt__timer_stop(&t->t);
    rt_chan_free(t->ch);
    free(t);
}
