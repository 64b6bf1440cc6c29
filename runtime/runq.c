/* SPDX-License-Identifier: MIT */
/*
 * runq.c - per-P local run queues and work stealing (Go's runqput/runqget/
 * runqsteal).
 *
 * Each P has a 256-slot ring and a `runnext` slot. Only the owner P writes
 * `runq_tail` and the slots at and after it; anyone (the owner taking work,
 * a thief stealing half) advances `runq_head` with a CAS. A thief copies the
 * Gs out *before* its CAS on head, so a failed CAS just retries; a successful
 * one publishes that the owner may reuse those slots.
 *
 * `runnext` holds the G that the running G just readied (a channel partner):
 * it runs next and inherits the time slice, so ping-pong pairs stay on one P
 * and in cache. Thieves leave runnext alone unless the owner is flagged as a
 * hog by sysmon (see proc.c), otherwise every hand-off would race a thief.
 *
 * With procs = 1 nobody can steal, so the owner skips the atomic
 * read-modify-writes altogether.
 *
 * When the ring is full the owner moves half of it plus the new G to the
 * global queue in one locked batch, which bounds the global lock traffic.
 */
#include "runtime/internal.h"

bool rt__runq_put_slow(rt__p_t *p, rt__g_t *g, uint32_t head, uint32_t tail)
{
    enum { HALF = RT__RUNQ_SIZE / 2 };

    rt__g_t *batch[HALF + 1];
    uint32_t n = (tail - head) / 2;
    RT_CHECK(n == HALF, "run queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&RT__RUNQ_SLOT(p, head + i), memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&p->runq_head, &head, head + n,
                                                 memory_order_release, memory_order_relaxed))
        return false;
    batch[n] = g;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    g->schedlink = NULL;
    rt__globrunq_put_batch(batch[0], g, n + 1);
    return true;
}

/* Copies half of `victim`'s queue into `p`'s ring starting at `at`. */
static uint32_t grab(rt__p_t *victim, rt__p_t *p, uint32_t at, bool steal_next)
{
    for (;;) {
        uint32_t head = atomic_load_explicit(&victim->runq_head, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&victim->runq_tail, memory_order_acquire);
        uint32_t n = tail - head;
        n -= n / 2;
        if (n == 0) {
            if (!steal_next)
                return 0;
            rt__g_t *next = atomic_load_explicit(&victim->runnext, memory_order_relaxed);
            if (next && atomic_compare_exchange_strong_explicit(&victim->runnext, &next, NULL,
                                                                memory_order_acq_rel,
                                                                memory_order_relaxed)) {
                atomic_store_explicit(&RT__RUNQ_SLOT(p, at), next, memory_order_relaxed);
                return 1;
            }
            return 0;
        }
        if (n > RT__RUNQ_SIZE / 2)
            continue; /* head and tail read inconsistently */
        for (uint32_t i = 0; i < n; i++) {
            rt__g_t *g =
                atomic_load_explicit(&RT__RUNQ_SLOT(victim, head + i), memory_order_relaxed);
            atomic_store_explicit(&RT__RUNQ_SLOT(p, at + i), g, memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&victim->runq_head, &head, head + n,
                                                    memory_order_release, memory_order_relaxed))
            return n;
    }
}

/* Called by the owner of `p` (the thief). Returns one G to run, queues the rest. */
rt__g_t *rt__runq_steal(rt__p_t *p, rt__p_t *victim, bool steal_next)
{
    uint32_t tail = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
    uint32_t n = grab(victim, p, tail, steal_next);
    if (n == 0)
        return NULL;
    RT__STAT_INC(p->st.steals);
    RT__STAT_ADD(p->st.stolen_gs, n);
    n--;
    rt__g_t *g = atomic_load_explicit(&RT__RUNQ_SLOT(p, tail + n), memory_order_relaxed);
    if (n == 0)
        return g;
    atomic_store_explicit(&p->runq_tail, tail + n, memory_order_release);
    return g;
}

uint32_t rt__runq_len(rt__p_t *p)
{
    uint32_t head = atomic_load_explicit(&p->runq_head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&p->runq_tail, memory_order_acquire);
    uint32_t n = tail - head;
    return (n > RT__RUNQ_SIZE ? 0 : n) +
           (atomic_load_explicit(&p->runnext, memory_order_relaxed) ? 1 : 0);
}

bool rt__runq_empty(rt__p_t *p)
{
    return rt__runq_len(p) == 0;
}
