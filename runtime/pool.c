/* SPDX-License-Identifier: MIT */
/*
 * pool.c - rt_pool, the sync.Pool idea: fixed-size objects cached per P so
 * that the common get/put touches no shared cache line and takes no lock.
 *
 * The per-P cache is used only by the G running on that P, between two
 * scheduling points (get and put never park), which is what makes it safe
 * without atomics: scheduling is cooperative. Overflow and underflow move
 * half a cache to or from a global stack of batches under a spin lock. A
 * batch is a small array of its own, not a list threaded through the
 * objects: moving one touches none of the (cold, often large) objects, where
 * a list costs a cache miss per object. Outside a G the pool is calloc/free.
 *
 * Under ASan the pool is a pass-through to calloc/free, so use-after-put and
 * double-put are reported at the faulty line instead of being hidden.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

#define LOCAL_MAX 32
#define BATCH (LOCAL_MAX / 2)

typedef struct batch {
    struct batch *next;
    void *objs[BATCH];
} batch_t;

typedef struct pool_local {
    void *objs[LOCAL_MAX];
    int n;
} __attribute__((aligned(RT_CACHE_LINE))) pool_local_t;

struct rt_pool {
    size_t size;
    _Atomic uint32_t lock;
    batch_t *full;  /* batches of BATCH objects */
    batch_t *spare; /* empty batch nodes, for the next overflow */
    pool_local_t local[RT__MAX_PROCS];
};

rt_pool_t *rt_pool_new(size_t obj_size)
{
    rt_pool_t *pool = aligned_alloc(RT_CACHE_LINE, sizeof(rt_pool_t));
    RT_CHECK(pool != NULL, "out of memory");
    memset(pool, 0, sizeof(*pool));
    pool->size = obj_size ? obj_size : 1;
    return pool;
}

#if !defined(REMORA_ASAN)
static pool_local_t *local_cache(rt_pool_t *pool)
{
    rt__m_t *m = rt__getm();
    return m && m->curg && m->p ? &pool->local[m->p->id] : NULL;
}

static batch_t *pop(batch_t **list)
{
    batch_t *b = *list;
    if (b)
        *list = b->next;
    return b;
}

static void push(batch_t **list, batch_t *b)
{
    b->next = *list;
    *list = b;
}
#endif

void *rt_pool_get(rt_pool_t *pool)
{
#if !defined(REMORA_ASAN)
    pool_local_t *c = local_cache(pool);
    if (c && c->n > 0)
        return c->objs[--c->n];
    if (c) {
        rt__spin_lock(&pool->lock);
        batch_t *b = pop(&pool->full);
        if (b) {
            memcpy(c->objs, b->objs, sizeof(b->objs));
            c->n = BATCH;
            push(&pool->spare, b);
        }
        rt__spin_unlock(&pool->lock);
        if (c->n > 0)
            return c->objs[--c->n];
    }
#endif
    return rt_xcalloc(1, pool->size);
}

void rt_pool_put(rt_pool_t *pool, void *obj)
{
    if (!obj)
        return;
#if !defined(REMORA_ASAN)
    pool_local_t *c = local_cache(pool);
    if (c && c->n == LOCAL_MAX) {
        rt__spin_lock(&pool->lock);
        batch_t *b = pop(&pool->spare);
        rt__spin_unlock(&pool->lock);
        if (!b)
            b = rt_xcalloc(1, sizeof(*b));
        c->n -= BATCH;
        memcpy(b->objs, c->objs + c->n, sizeof(b->objs));
        rt__spin_lock(&pool->lock);
        push(&pool->full, b);
        rt__spin_unlock(&pool->lock);
    }
    if (c) {
        c->objs[c->n++] = obj;
        return;
    }
#else
    (void)pool;
#endif
    free(obj);
}

void rt_pool_free(rt_pool_t *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < RT__MAX_PROCS; i++) {
        while (pool->local[i].n > 0)
            free(pool->local[i].objs[--pool->local[i].n]);
    }
    for (batch_t *b = pool->full, *next; b; b = next) {
        next = b->next;
        for (int i = 0; i < BATCH; i++)
            free(b->objs[i]);
        free(b);
    }
    for (batch_t *b = pool->spare, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(pool);
}
