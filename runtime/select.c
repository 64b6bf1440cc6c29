/* SPDX-License-Identifier: MIT */
/*
 * select.c - rt_select over up to 64 send/receive cases with optional
 * default (RT_NOWAIT) and deadline (Go's select.go).
 *
 * Non-blocking selects first ask every channel, without locks, whether it
 * could possibly proceed; if none can, they return RT_EAGAIN at once (the
 * common backpressure case costs a few loads). Otherwise:
 *   1. lock every channel in address order (a global order: no deadlock
 *      with another select over the same channels), skipping duplicates;
 *   2. scan the cases in a random permutation and complete the first ready
 *      one - randomness gives fairness between ready cases, as in Go;
 *   3. if none and we may wait: queue one waiter per case, all sharing one
 *      `done` word, park, and unlock everything after the switch;
 *   4. once woken: lock all again and unlink the waiters that did not fire.
 */
#include <string.h>

#include "runtime/internal.h"

#define MAX_CASES 64

typedef struct sel {
    rt_case_t *cases;
    const uint8_t *lockorder;
    size_t nlock;
    rt__wait_t *pw;
    rt_time_t deadline;
    rt__timer_t timer;
} sel_t;

static void lock_all(rt_case_t *cases, const uint8_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || cases[order[i]].ch != cases[order[i - 1]].ch)
            rt__chan_lock(cases[order[i]].ch);
    }
}

static void unlock_all(rt_case_t *cases, const uint8_t *order, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        if (i == 0 || cases[order[i]].ch != cases[order[i - 1]].ch)
            rt__chan_unlock(cases[order[i]].ch);
    }
}

static bool select_parked(rt__g_t *g, void *arg)
{
    sel_t *s = arg;
    (void)g;
    if (s->deadline != RT_FOREVER)
        rt__timer_start(&s->timer, s->deadline, rt__wait_deadline, s->pw);
    unlock_all(s->cases, s->lockorder, s->nlock);
    return true;
}

static bool maybe_ready(const rt_case_t *c)
{
    if (!c->ch)
        return false;
    return c->op == RT_CASE_SEND ? !rt__chan_send_blocked(c->ch) : !rt__chan_recv_blocked(c->ch);
}

int rt_select(rt_case_t *cases, size_t ncases, rt_time_t deadline)
{
    RT_CHECK(ncases <= MAX_CASES, "rt_select: too many cases");
    if (deadline == RT_NOWAIT) {
        size_t i = 0;
        while (i < ncases && !maybe_ready(&cases[i]))
            i++;
        if (i == ncases)
            return RT_EAGAIN;
    }

    /* Random poll order (Fisher-Yates) and address lock order (insertion sort). */
    uint8_t pollorder[MAX_CASES] = {0}, lockorder[MAX_CASES] = {0};
    size_t npoll = 0, nlock = 0;
    for (size_t i = 0; i < ncases; i++) {
        if (!cases[i].ch)
            continue;
        size_t j = (size_t)(rt__fastrand() % (npoll + 1));
        pollorder[npoll] = pollorder[j];
        pollorder[j] = (uint8_t)i;
        npoll++;
        size_t k = nlock++;
        while (k > 0 && (uintptr_t)cases[lockorder[k - 1]].ch > (uintptr_t)cases[i].ch) {
            lockorder[k] = lockorder[k - 1];
            k--;
        }
        lockorder[k] = (uint8_t)i;
    }

    lock_all(cases, lockorder, nlock);
    for (size_t k = 0; k < npoll; k++) {
        rt_case_t *c = &cases[pollorder[k]];
        rt__g_t *partner;
        bool done = c->op == RT_CASE_SEND
                        ? rt__chan_try_send_locked(c->ch, c->elem, &c->result, &partner)
                        : rt__chan_try_recv_locked(c->ch, c->elem, &c->result, &partner);
        if (done) {
            unlock_all(cases, lockorder, nlock);
            if (partner)
                rt__ready(partner, true);
            return pollorder[k];
        }
    }
    if (deadline == RT_NOWAIT || rt__past(deadline)) {
        unlock_all(cases, lockorder, nlock);
        return RT_EAGAIN;
    }

    rt__wait_t pw = {.g = rt__getg()};
    RT_CHECK(pw.g != NULL, "blocking rt_select outside a G");
    rt__waiter_t waiters[MAX_CASES];
    for (size_t k = 0; k < npoll; k++) {
        size_t i = pollorder[k];
        waiters[k] = (rt__waiter_t){
            .w = &pw, .elem = cases[i].elem, .ch = cases[i].ch, .case_index = (int)i};
        rt__waitq_push(rt__chan_queue(cases[i].ch, cases[i].op == RT_CASE_SEND), &waiters[k]);
    }
    sel_t s = {
        .cases = cases, .lockorder = lockorder, .nlock = nlock, .pw = &pw, .deadline = deadline};
    s.timer.index = -1;
    rt__park(NULL, select_parked, &s);
    if (deadline != RT_FOREVER)
        rt__timer_stop(&s.timer);

    lock_all(cases, lockorder, nlock);
    for (size_t k = 0; k < npoll; k++) {
        size_t i = (size_t)waiters[k].case_index;
        rt__waitq_remove(rt__chan_queue(cases[i].ch, cases[i].op == RT_CASE_SEND), &waiters[k]);
    }
    unlock_all(cases, lockorder, nlock);
    if (atomic_load(&pw.done) != 1)
        return RT_ETIMEDOUT;
    rt__waiter_t *w = pw.winner;
    cases[w->case_index].result = w->success ? RT_OK : RT_ECLOSED;
    return w->case_index;
}
