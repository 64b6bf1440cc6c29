/* SPDX-License-Identifier: MIT */
/*
 * sync.c - G-aware mutex, wait group and once. Contended callers park their
 * G (the thread goes on running other Gs); each waiter record lives on the
 * parked G's stack, linked under the object's small spin lock.
 */
#include "runtime/internal.h"

typedef struct gwait {
    rt__g_t *g;
    struct gwait *next;
} gwait_t;

/* ---- mutex: state 0 unlocked, 1 locked, 2 locked and maybe contended ---- */

void rt_mutex_lock(rt_mutex_t *mu)
{
    uint32_t expect = 0;
    if (atomic_compare_exchange_strong(&mu->_state, &expect, 1))
        return;
    for (int i = 0; i < 64; i++) {
        expect = 0;
        if (atomic_load_explicit(&mu->_state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&mu->_state, &expect, 1))
            return;
    }
    for (;;) {
        rt__spin_lock(&mu->_lock);
        if (atomic_exchange(&mu->_state, 2) == 0) {
            rt__spin_unlock(&mu->_lock);
            return;
        }
        gwait_t w = {.g = rt__getg(), .next = NULL};
        RT_CHECK(w.g != NULL, "rt_mutex_lock would block outside a G");
        if (mu->_tail)
            ((gwait_t *)mu->_tail)->next = &w;
        else
            mu->_head = &w;
        mu->_tail = &w;
        rt__park(&mu->_lock, NULL, NULL);
    }
}

bool rt_mutex_trylock(rt_mutex_t *mu)
{
    uint32_t expect = 0;
    return atomic_compare_exchange_strong(&mu->_state, &expect, 1);
}

void rt_mutex_unlock(rt_mutex_t *mu)
{
    uint32_t old = atomic_exchange(&mu->_state, 0);
    RT_CHECK(old != 0, "unlock of an unlocked rt_mutex");
    if (old != 2)
        return;
    rt__spin_lock(&mu->_lock);
    gwait_t *w = mu->_head;
    if (w) {
        mu->_head = w->next;
        if (!mu->_head)
            mu->_tail = NULL;
    }
    rt__spin_unlock(&mu->_lock);
    if (w)
        rt__ready(w->g, false);
}

/* ---- wait group ---- */

void rt_wg_add(rt_waitgroup_t *wg, int64_t delta)
{
    int64_t v = atomic_fetch_add(&wg->_count, delta) + delta;
    RT_CHECK(v >= 0, "negative wait group counter");
    if (v != 0 || delta == 0)
        return;
    rt__spin_lock(&wg->_lock);
    gwait_t *w = wg->_head;
    wg->_head = NULL;
    rt__spin_unlock(&wg->_lock);
    while (w) {
        gwait_t *next = w->next; /* read before the G can run and drop its frame */
        rt__ready(w->g, false);
        w = next;
    }
}

void rt_wg_done(rt_waitgroup_t *wg)
{
    rt_wg_add(wg, -1);
}

void rt_wg_wait(rt_waitgroup_t *wg)
{
    if (atomic_load(&wg->_count) == 0)
        return;
    rt__spin_lock(&wg->_lock);
    if (atomic_load(&wg->_count) == 0) {
        rt__spin_unlock(&wg->_lock);
        return;
    }
    gwait_t w = {.g = rt__getg(), .next = wg->_head};
    RT_CHECK(w.g != NULL, "rt_wg_wait would block outside a G");
    wg->_head = &w;
    rt__park(&wg->_lock, NULL, NULL);
}

/* ---- once ---- */

void rt_once_do(rt_once_t *once, rt_go_fn *fn, void *arg)
{
    if (atomic_load_explicit(&once->_done, memory_order_acquire))
        return;
    rt_mutex_lock(&once->_mu);
    if (!atomic_load_explicit(&once->_done, memory_order_relaxed)) {
        fn(arg);
        atomic_store_explicit(&once->_done, 1, memory_order_release);
    }
    rt_mutex_unlock(&once->_mu);
}
