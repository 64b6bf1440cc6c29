/* SPDX-License-Identifier: MIT */
/*
 * value.c - rt_value, an atomically swapped pointer with safe reclamation
 * (Go's atomic.Value plus what a GC gives Go for free), for config snapshots.
 *
 * A stored pointer is wrapped in a refcounted node. rt_value_load publishes
 * the node it is about to take in its M's hazard slot, re-checks that the
 * node is still current, then takes a reference; the hazard lasts a few
 * instructions and never spans a park. rt_value_store swaps the node, waits
 * until no hazard slot names the old node (so nobody can still be between
 * reading it and taking a reference), then drops the value's own reference.
 * The last holder releases the user's pointer.
 *
 * Threads that are not Ms load under `fallback_lock`, which a store takes
 * once after the swap for the same guarantee.
 *
 * Rejected: a reader-writer lock (readers would contend on one cache line on
 * every request); epoch-based reclamation (an idle G holding a snapshot for
 * minutes would stall every epoch).
 */
#include <sched.h>
#include <stdlib.h>

#include "runtime/internal.h"

typedef struct vnode {
    _Atomic int64_t refs;
    void *ptr;
    void (*release)(void *ptr);
} vnode_t;

static _Atomic uint32_t fallback_lock;

static vnode_t *node_new(void *ptr, void (*release)(void *))
{
    vnode_t *n = rt_xmalloc(sizeof(*n));
    atomic_init(&n->refs, 1);
    n->ptr = ptr;
    n->release = release;
    return n;
}

static void node_unref(vnode_t *n)
{
    if (n && atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1) {
        if (n->release && n->ptr)
            n->release(n->ptr);
        free(n);
    }
}

void rt_value_init(rt_value_t *v, void *ptr, void (*release)(void *ptr))
{
    v->_release = release;
    atomic_store(&v->_node, node_new(ptr, release));
}

void *rt_value_load(rt_value_t *v, rt_value_hold_t *hold)
{
    rt__m_t *m = rt__getm();
    vnode_t *n;
    if (!m) {
        rt__spin_lock(&fallback_lock);
        n = atomic_load(&v->_node);
        atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
        rt__spin_unlock(&fallback_lock);
    } else {
        for (;;) {
            n = atomic_load(&v->_node);
            atomic_store(&m->hazard, n); /* seq_cst: ordered before the re-check */
            if (atomic_load(&v->_node) == n)
                break;
        }
        atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
        atomic_store_explicit(&m->hazard, NULL, memory_order_release);
    }
    hold->_node = n;
    return n->ptr;
}

void rt_value_drop(rt_value_hold_t *hold)
{
    node_unref(hold->_node);
    hold->_node = NULL;
}

static void wait_unhazarded(vnode_t *old)
{
    uint32_t nm = atomic_load(&rt__sched.nm);
    for (uint32_t i = 0; i < nm; i++) {
        rt__m_t *m = atomic_load_explicit(&rt__sched.allm[i], memory_order_acquire);
        while (m && atomic_load(&m->hazard) == old)
            sched_yield();
    }
    rt__spin_lock(&fallback_lock);
    rt__spin_unlock(&fallback_lock);
}

void rt_value_store(rt_value_t *v, void *ptr)
{
    vnode_t *old = atomic_exchange(&v->_node, node_new(ptr, v->_release));
    if (atomic_load(&rt__sched.running))
        wait_unhazarded(old);
    node_unref(old);
}

void rt_value_destroy(rt_value_t *v)
{
    node_unref(atomic_exchange(&v->_node, NULL));
}
