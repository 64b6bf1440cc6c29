/* SPDX-License-Identifier: MIT */
/*
 * runq.h - the owner's side of a P's run queue (put, get), inline because it
 * is most of the cost of every switch; runq.c has the design, the overflow
 * path and stealing. Included by internal.h only.
 */
#ifndef RT_RUNQ_H
#define RT_RUNQ_H

#define RT__HOT __attribute__((always_inline))
#define RT__RUNQ_SLOT(p, i) ((p)->runq[(i) % RT__RUNQ_SIZE])

/* Moves half of a full queue plus `g` to the global queue; false if a thief
 * raced us (retry). */
bool rt__runq_put_slow(rt__p_t *p, rt__g_t *g, uint32_t head, uint32_t tail);

/* Called only by the owner P. */
static inline RT__HOT void rt__runq_put(rt__p_t *p, rt__g_t *g, bool next)
{
    if (next) {
        if (rt__sched.nprocs == 1) {
            rt__g_t *old = atomic_load_explicit(&p->runnext, memory_order_relaxed);
            atomic_store_explicit(&p->runnext, g, memory_order_relaxed);
            g = old;
        } else {
            g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        }
        if (!g)
            return;
    }
    for (;;) {
        uint32_t head = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
        if (tail - head < RT__RUNQ_SIZE) {
            atomic_store_explicit(&RT__RUNQ_SLOT(p, tail), g, memory_order_relaxed);
            /* store-release: pairs with the load-acquire of tail in grab */
            atomic_store_explicit(&p->runq_tail, tail + 1, memory_order_release);
            return;
        }
        if (rt__runq_put_slow(p, g, head, tail))
            return;
    }
}

/* With a single P there are no thieves: the owner needs no atomic
 * read-modify-write (a quarter of the cost of a yield). */
static inline RT__HOT rt__g_t *rt__runq_get_single(rt__p_t *p)
{
    rt__g_t *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (next) {
        atomic_store_explicit(&p->runnext, NULL, memory_order_relaxed);
        return next;
    }
    uint32_t head = atomic_load_explicit(&p->runq_head, memory_order_relaxed);
    if (atomic_load_explicit(&p->runq_tail, memory_order_relaxed) == head)
        return NULL;
    rt__g_t *g = atomic_load_explicit(&RT__RUNQ_SLOT(p, head), memory_order_relaxed);
    atomic_store_explicit(&p->runq_head, head + 1, memory_order_release);
    return g;
}

static inline RT__HOT rt__g_t *rt__runq_get(rt__p_t *p)
{
    if (rt__sched.nprocs == 1)
        return rt__runq_get_single(p);
    rt__g_t *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (next && atomic_compare_exchange_strong_explicit(&p->runnext, &next, NULL,
                                                        memory_order_acq_rel, memory_order_relaxed))
        return next;
    for (;;) {
        uint32_t head = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
        if (tail == head)
            return NULL;
        rt__g_t *g = atomic_load_explicit(&RT__RUNQ_SLOT(p, head), memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&p->runq_head, &head, head + 1,
                                                    memory_order_release, memory_order_relaxed))
            return g;
    }
}

#endif /* RT_RUNQ_H */
