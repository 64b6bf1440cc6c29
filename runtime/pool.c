/* SPDX-License-Identifier: MIT */
/*
 * pool.c - rt_pool, the sync.Pool idea: fixed-size objects cached per P so
 * that the common get/put touches no shared cache line and takes no lock.
 *
 * The per-P cache is used only by the G running on that P, between two
 * scheduling points (get and put never park), which is what makes it safe
 * without atomics: scheduling is cooperative. Overflow and underflow move
 * half a cache to or from a global list under a spin lock.
 *
 * Under ASan the pool is a pass-through to calloc/free, so use-after-put and
 * double-put are reported at the faulty line instead of being hidden.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

#define LOCAL_MAX 32

typedef struct free_obj {
    struct free_obj *next;
} free_obj_t;

typedef struct pool_local {
    void *objs[LOCAL_MAX];
    int n;
} __attribute__((aligned(RT_CACHE_LINE))) pool_local_t;

struct rt_pool {
    size_t size;
    _Atomic uint32_t lock;
    free_obj_t *global;
    pool_local_t local[RT__MAX_PROCS];
};

rt_pool_t *rt_pool_new(size_t obj_size)
{
    rt_pool_t *pool = aligned_alloc(RT_CACHE_LINE, sizeof(rt_pool_t));
    RT_CHECK(pool != NULL, "out of memory");
    memset(pool, 0, sizeof(*pool));
    pool->size = obj_size < sizeof(free_obj_t) ? sizeof(free_obj_t) : obj_size;
    return pool;
}

#if !defined(REMORA_ASAN)
static pool_local_t *local_cache(rt_pool_t *pool)
{
    rt__m_t *m = rt__getm();
    return m && m->curg && m->p ? &pool->local[m->p->id] : NULL;
}
#endif

void *rt_pool_get(rt_pool_t *pool)
{
#if defined(REMORA_ASAN)
    return rt_xcalloc(1, pool->size);
#else
    pool_local_t *c = local_cache(pool);
    if (c && c->n > 0)
        return c->objs[--c->n];
    rt__spin_lock(&pool->lock);
    free_obj_t *o = pool->global;
    if (o)
        pool->global = o->next;
    while (c && pool->global && c->n < LOCAL_MAX / 2) {
        free_obj_t *x = pool->global;
        pool->global = x->next;
        c->objs[c->n++] = x;
    }
    rt__spin_unlock(&pool->lock);
    return o ? (void *)o : rt_xcalloc(1, pool->size);
#endif
}

void rt_pool_put(rt_pool_t *pool, void *obj)
{
    if (!obj)
        return;
#if defined(REMORA_ASAN)
    (void)pool;
    free(obj);
#else
    pool_local_t *c = local_cache(pool);
    if (c && c->n < LOCAL_MAX) {
        c->objs[c->n++] = obj;
        return;
    }
    rt__spin_lock(&pool->lock);
    while (c && c->n > LOCAL_MAX / 2) {
        free_obj_t *x = c->objs[--c->n];
        x->next = pool->global;
        pool->global = x;
    }
    free_obj_t *o = obj;
    o->next = pool->global;
    pool->global = o;
    rt__spin_unlock(&pool->lock);
#endif
}

void rt_pool_free(rt_pool_t *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < RT__MAX_PROCS; i++) {
        while (pool->local[i].n > 0)
            free(pool->local[i].objs[--pool->local[i].n]);
    }
    while (pool->global) {
        free_obj_t *x = pool->global;
        pool->global = x->next;
        free(x);
    }
    free(pool);
}
