/* SPDX-License-Identifier: MIT */
/*
 * buf.c - px_buf, the bounded byte buffer every connection reads into:
 * compacted in place, grown by doubling only up to a caller's limit, so an
 * untrusted peer can never make it larger than the configured bound.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

void px_buf_init(px_buf_t *b, size_t cap)
{
    b->data = rt_xmalloc(cap);
    b->cap = cap;
    b->start = b->end = 0;
}

void px_buf_destroy(px_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->start = b->end = 0;
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
        b->data = rt_xrealloc(b->data, cap);
        b->cap = cap;
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
    ssize_t n = rt_read(nfd, b->data + b->end, b->cap - b->end, deadline);
    if (n > 0) {
        b->end += (size_t)n;
    }
    return n;
}
