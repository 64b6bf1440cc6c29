/* SPDX-License-Identifier: MIT */
/*
 * ctx_amd64.S - x86-64 context switch. Saves the callee-saved registers of
 * the running context in `from`, loads `to`, and resumes it with `ret`.
 *
 * Why ret and not pop+jmp: every switch in the runtime goes through the one
 * call site of rt__ctx_switch in rt__switch, so the return address on the
 * target stack is the very address the return-stack predictor expects. A jmp
 * would leave the call's predictor entry behind, and every return after the
 * switch (rt__switch, switch_to, rt_yield...) would then mispredict: that
 * cost 30 ns per yield here. Only a new G's first ret, into the trampoline,
 * mispredicts.
 * Layout of rt__ctx_t.regs: 0 sp (pointing at the return address), 1 unused,
 * 2 rbx, 3 rbp, 4 r12, 5 r13, 6 r14, 7 r15.
 */
#if defined(__x86_64__)
    .text
    .globl rt__ctx_switch
    .type rt__ctx_switch, @function
    .p2align 4
rt__ctx_switch:
    .cfi_startproc
    movq %rsp, 0(%rdi)
    movq %rbx, 16(%rdi)
    movq %rbp, 24(%rdi)
    movq %r12, 32(%rdi)
    movq %r13, 40(%rdi)
    movq %r14, 48(%rdi)
    movq %r15, 56(%rdi)
    movq 0(%rsi), %rsp
    movq 16(%rsi), %rbx
    movq 24(%rsi), %rbp
    movq 32(%rsi), %r12
    movq 40(%rsi), %r13
    movq 48(%rsi), %r14
    movq 56(%rsi), %r15
    ret
    .cfi_endproc
    .size rt__ctx_switch, .-rt__ctx_switch

/* First frame of every G: r12 holds the G; rt__g_entry never returns. */
    .globl rt__ctx_trampoline
    .type rt__ctx_trampoline, @function
    .p2align 4
rt__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %r12, %rdi
    callq rt__g_entry
    ud2
    .cfi_endproc
    .size rt__ctx_trampoline, .-rt__ctx_trampoline
#endif
    .section .note.GNU-stack,"",@progbits
