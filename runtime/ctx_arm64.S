/* SPDX-License-Identifier: MIT */
/*
 * ctx_arm64.S - aarch64 context switch. Layout of rt__ctx_t.regs:
 * 0 sp, 1 pc (x30), 2-11 x19-x28, 12 x29, 13-20 d8-d15. Returns the
 * switching side's third argument (its M) to the resumed side. Resumes with ret
 * through x30, which keeps the return-address predictor in step (see
 * ctx_amd64.S).
 */
#if defined(__aarch64__)
    .text
    .globl rt__ctx_switch
    .type rt__ctx_switch, %function
    .p2align 4
rt__ctx_switch:
    mov x9, sp
    stp x9, x30, [x0, #0]
    stp x19, x20, [x0, #16]
    stp x21, x22, [x0, #32]
    stp x23, x24, [x0, #48]
    stp x25, x26, [x0, #64]
    stp x27, x28, [x0, #80]
    str x29, [x0, #96]
    stp d8, d9, [x0, #104]
    stp d10, d11, [x0, #120]
    stp d12, d13, [x0, #136]
    stp d14, d15, [x0, #152]
    ldp x9, x30, [x1, #0]
    mov sp, x9
    ldp x19, x20, [x1, #16]
    ldp x21, x22, [x1, #32]
    ldp x23, x24, [x1, #48]
    ldp x25, x26, [x1, #64]
    ldp x27, x28, [x1, #80]
    ldr x29, [x1, #96]
    ldp d8, d9, [x1, #104]
    ldp d10, d11, [x1, #120]
    ldp d12, d13, [x1, #136]
    ldp d14, d15, [x1, #152]
    mov x0, x2              /* the M that switched to us (third argument) */
    ret
    .size rt__ctx_switch, .-rt__ctx_switch

/* First frame of every G: x19 holds the G; rt__g_entry never returns. */
    .globl rt__ctx_trampoline
    .type rt__ctx_trampoline, %function
    .p2align 4
rt__ctx_trampoline:
    mov x29, #0
    mov x30, #0
    mov x0, x19
    bl rt__g_entry
    brk #0
    .size rt__ctx_trampoline, .-rt__ctx_trampoline
#endif
    .section .note.GNU-stack,"",%progbits
