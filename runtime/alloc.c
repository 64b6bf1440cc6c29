/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - allocation that aborts on OOM (Redis zmalloc, h2o_mem_alloc): the
 * callers never test for NULL; limits, not malloc failure, bound untrusted sizes.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/base.h"

static void *check(void *p, size_t size)
{
    if (RT_UNLIKELY(p == NULL && size != 0))
        rt_panic("out of memory allocating %zu bytes", size);
    return p;
}

void *rt_xmalloc(size_t size)
{
    return check(malloc(size), size);
}

void *rt_xcalloc(size_t n, size_t size)
{
    return check(calloc(n, size), n * size);
}

void *rt_xrealloc(void *p, size_t size)
{
    return check(realloc(p, size), size);
}

char *rt_xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    return memcpy(rt_xmalloc(len), s, len);
}
