/* SPDX-License-Identifier: MIT */
/*
 * tls.c - the runtime's only thread-local: the current M. Read only through
 * rt__getm, never through its address: after a park the G may run on another
 * thread, and a cached thread-local address would still name the old one.
 * On x86-64 rt__getm is an inline %fs-relative load in internal.h (a volatile
 * asm that also clobbers memory, so the compiler can neither merge two reads
 * nor move one across a park); elsewhere it is the noinline function below.
 */
#include "runtime/internal.h"

/* used (and, for GCC's LTO, externally_visible): the inline readers name it
 * only in asm, which the compiler cannot see. */
#if defined(__clang__)
#define ASM_REFERENCED __attribute__((used))
#else
#define ASM_REFERENCED __attribute__((used, externally_visible))
#endif
_Thread_local rt__m_t *rt__current_m __attribute__((tls_model("initial-exec"))) ASM_REFERENCED;

#if !RT__GETM_INLINE
rt__m_t *rt__getm(void)
{
    return rt__current_m;
}
#endif

void rt__setm(rt__m_t *m)
{
    rt__current_m = m;
}
