/* SPDX-License-Identifier: MIT */
/*
 * buf.c - px_buf, the bounded byte buffer every connection reads into:
 * compacted in place, grown by doubling only up to a caller's limit, so an
 * untrusted peer can never make it larger than the configured bound. The
 * first block (16 KiB for clients, 32 KiB for upstreams) comes from a per-P
 * pool: connections take one per request and give it back while idle, so
 * malloc stays off the hot path.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

/* One pool per pooled size: client buffers and upstream buffers. */
static rt_pool_t *_Atomic buf_pools[2];

static rt_pool_t *pool_for(size_t size)
{
    RT_ASSERT(size == PX_BUF_SIZE || size == PX_UP_BUF_SIZE);
    rt_pool_t *_Atomic *slot = &buf_pools[size == PX_BUF_SIZE ? 0 : 1];
    rt_pool_t *p = atomic_load_explicit(slot, memory_order_acquire);
    if (!p) {
        rt_pool_t *fresh = rt_pool_new(size);
        if (atomic_compare_exchange_strong(slot, &p, fresh)) {
            p = fresh;
        } else {
            rt_pool_free(fresh);
        }
    }
    return p;
}

void px_buf_init(px_buf_t *b, size_t size)
{
    b->data = rt_pool_get(pool_for(size));
    b->cap = size;
    b->start = b->end = 0;
    b->pooled = true;
    b->drained = false;
}

void px_buf_destroy(px_buf_t *b)
{
    if (b->pooled) {
        rt_pool_put(pool_for(b->cap), b->data);
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->cap = b->start = b->end = 0;
    b->pooled = false;
}

void px_buf_make_room(px_buf_t *b, size_t max)
{
    if (b->start > 0) {
        size_t n = px_buf_len(b);
        memmove(b->data, b->data + b->start, n);
        b->start = 0;
        b->end = n;
    }
    if (b->end == b->cap && b->cap < max) {
        size_t cap = b->cap * 2 < max ? b->cap * 2 : max;
        char *data = rt_xmalloc(cap);
        memcpy(data, b->data, b->end);
        bool drained = b->drained;
        size_t end = b->end;
        px_buf_destroy(b);
        b->data = data;
        b->cap = cap;
        b->end = end;
        b->drained = drained;
    }
}

ssize_t px_buf_fill(px_buf_t *b, rt_netfd_t *nfd, size_t max, rt_time_t deadline)
{
    if (b->end == b->cap) {
        px_buf_make_room(b, max);
        if (b->end == b->cap) {
            return -ENOBUFS;
        }
    }
    size_t room = b->cap - b->end;
    ssize_t n = rt_read(nfd, b->data + b->end, room, deadline);
    if (n > 0) {
        b->end += (size_t)n;
        b->drained = (size_t)n < room;
    }
    return n;
}
