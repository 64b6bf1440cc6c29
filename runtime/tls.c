/* SPDX-License-Identifier: MIT */
/*
 * tls.c - the runtime's only thread-local: the current M. Read only through
 * these noinline accessors, so no caller can keep a thread-local address
 * across a park (after which the G may run on another thread).
 */
#include "runtime/internal.h"

static _Thread_local rt__m_t *current_m;

rt__m_t *rt__getm(void)
{
    return current_m;
}

void rt__setm(rt__m_t *m)
{
    current_m = m;
}
