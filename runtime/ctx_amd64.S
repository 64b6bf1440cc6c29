/* SPDX-License-Identifier: MIT */
/*
 * ctx_amd64.S - x86-64: the first frame of every G. The switch itself is
 * inline assembly in ctx.c (ctx_switch), which saves only sp, pc and rbp.
 */
#if defined(__x86_64__)
    .text
/* First frame of every G, entered by jmp with rdi = the G and rsp 16-byte
 * aligned (so the call below leaves it as the ABI expects); rt__g_entry
 * never returns. */
    .globl rt__ctx_trampoline
    .type rt__ctx_trampoline, @function
    .p2align 4
rt__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    callq rt__g_entry
    ud2
    .cfi_endproc
    .size rt__ctx_trampoline, .-rt__ctx_trampoline
#endif
    .section .note.GNU-stack,"",@progbits
