/* SPDX-License-Identifier: MIT */
/*
 * ctx.c - the context switch (inline assembly on x86-64, ctx_arm64.S on
 * aarch64), new G contexts, the red zone check at switch-out, and the
 * ASan/TSan fiber annotations that let the sanitizers follow a G from stack
 * to stack and thread to thread.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "runtime/internal.h"

#if defined(REMORA_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(REMORA_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

void rt__ctx_trampoline(void);

#if defined(__x86_64__)
/* rt__ctx_t.regs on x86-64: 0 sp, 1 pc, 2 rbp, 3 rdi (the G, for a new one). */

/*
 * Saves sp, the resume address and rbp in `from`, loads them from `to` and
 * jumps. `m` travels in rdx: the resumed side gets the M that switched to
 * it without reloading it through memory (its own frame, then the G), which
 * was the longest chain of dependent loads in a yield. Every other register
 * is declared clobbered, so the compiler keeps nothing live in them across
 * the switch: what the caller needs afterwards it saves itself,
 * callee-saved registers once in its prologue, instead of a fixed set being
 * stored and loaded again on every switch. The x87/SSE control words are
 * not switched: no G may change them.
 *
 * jmp, not ret: there is no call, so no return-stack entry to keep in step;
 * a G resumes inside its own function, and its later returns match its own
 * stack. In a yield ping-pong both sides switch from the same place and
 * every branch predicts.
 */
static inline __attribute__((always_inline)) rt__m_t *ctx_switch(rt__ctx_t *from, rt__ctx_t *to,
                                                                 rt__m_t *m)
{
    __asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
                     "movq %%rsp, 0(%0)\n\t"
                     "movq %%rax, 8(%0)\n\t"
                     "movq %%rbp, 16(%0)\n\t"
                     "movq 0(%1), %%rsp\n\t"
                     "movq 16(%1), %%rbp\n\t"
                     "movq 24(%1), %%rdi\n\t"
                     "jmpq *8(%1)\n"
                     "1:"
                     : "+D"(from), "+S"(to), "+d"(m)
                     :
                     : "rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                       "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory",
                       "cc");
    return m;
}

void rt__ctx_make(rt__ctx_t *ctx, void *sp, rt__g_t *g)
{
    memset(ctx, 0, sizeof(*ctx));
    /* The trampoline is entered by jmp with rsp 16-byte aligned. */
    uintptr_t top = ((uintptr_t)sp & ~(uintptr_t)15) - 16;
    ctx->regs[0] = top;
    ctx->regs[1] = (uint64_t)(uintptr_t)rt__ctx_trampoline;
    ctx->regs[3] = (uint64_t)(uintptr_t)g;
}
#elif defined(__aarch64__)
/* ctx_arm64.S; returns its third argument as the switching side passed it */
rt__m_t *rt__ctx_switch(rt__ctx_t *from, rt__ctx_t *to, rt__m_t *m);
#define ctx_switch rt__ctx_switch

void rt__ctx_make(rt__ctx_t *ctx, void *sp, rt__g_t *g)
{
    memset(ctx, 0, sizeof(*ctx));
    uintptr_t top = (uintptr_t)sp & ~(uintptr_t)15;
    ctx->regs[0] = top;
    ctx->regs[1] = (uint64_t)(uintptr_t)rt__ctx_trampoline; /* x30 */
    ctx->regs[2] = (uint64_t)(uintptr_t)g;                  /* x19 */
}
#else
#error "remora runtime: no context switch for this architecture"
#endif

rt__m_t *rt__switch(rt__m_t *m, rt__g_t *from, rt__g_t *to, bool from_dying)
{
    rt__ctx_t *fctx = from ? &from->ctx : &m->g0ctx;
    rt__ctx_t *tctx = to ? &to->ctx : &m->g0ctx;

    if (from && !from->guarded)
        rt__stack_check(from);
    if (to && !to->guarded)
        rt__stack_check_in(to);
#if defined(REMORA_ASAN)
    void **save = from_dying ? NULL : (from ? &from->san_fake_stack : &m->san_fake_stack);
    const void *lo = to ? (const void *)to->stack_lo : (const void *)m->g0_stack_lo;
    size_t size = to ? (size_t)(to->stack_hi - to->stack_lo) : m->g0_stack_size;
    __sanitizer_start_switch_fiber(save, lo, size);
#endif
#if defined(REMORA_TSAN)
    __tsan_switch_to_fiber(to ? to->san_fiber : m->san_fiber, 0);
#endif
    (void)from_dying;
    rt__m_t *self = m;
    m = ctx_switch(fctx, tctx, m);
    /* Resumed, perhaps on another M: `m` is now the M that switched to us. */
#if defined(REMORA_ASAN)
    __sanitizer_finish_switch_fiber(from ? from->san_fake_stack : self->san_fake_stack, NULL, NULL);
#endif
    (void)self;
    return m;
}

/* First thing a new G does: complete the switch that started it. */
void rt__san_g_started(void)
{
#if defined(REMORA_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

void rt__san_g_reuse(rt__g_t *g)
{
#if defined(REMORA_ASAN)
    /* A G that exited never returned from its frames: their redzones are
     * still poisoned in the shadow and would trip the next G on this stack. */
    __asan_unpoison_memory_region(g->stack_lo, (size_t)(g->stack_hi - g->stack_lo));
#else
    (void)g;
#endif
}

void rt__san_g_create(rt__g_t *g)
{
#if defined(REMORA_TSAN)
    if (!g->san_fiber)
        g->san_fiber = __tsan_create_fiber(0);
#else
    (void)g;
#endif
}

void rt__san_g_destroy(rt__g_t *g)
{
#if defined(REMORA_TSAN)
    if (g->san_fiber) {
        __tsan_destroy_fiber(g->san_fiber);
        g->san_fiber = NULL;
    }
#else
    (void)g;
#endif
}

void rt__san_m_init(rt__m_t *m)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
    }
    m->g0_stack_lo = addr;
    m->g0_stack_size = size;
#if defined(REMORA_TSAN)
    m->san_fiber = __tsan_get_current_fiber();
#endif
}
