/* SPDX-License-Identifier: MIT */
/*
 * stack.c - G stacks: mmap'd slabs of demand-paged slots, overflow detection.
 *
 * A slot is [guard zone 16 KiB][usable stack][G struct], the G living at the
 * top of its own stack so that a new or parked G costs exactly the one page
 * it touches (Go: 2 KiB stack + G; we cannot move stacks, so we reserve
 * address space instead and let the kernel fault pages in on demand).
 * Slots are never returned to the kernel while the runtime runs: an exited G
 * keeps its stack and goes to a free list (proc.c), because mmap+guard costs
 * ~5 us and munmap ~4 us, two orders of magnitude more than a spawn.
 *
 * Overflow detection has two forms, chosen per slab:
 *   - guard pages: the zone is PROT_NONE; an overflow faults and the SIGSEGV
 *     handler (on an alternate signal stack) prints "stack overflow in G n".
 *     Each guarded slot splits the slab mapping, costing 2 of the kernel's
 *     vm.max_map_count VMAs (65530 by default, so at most ~32k guarded Gs).
 *   - red zone: the zone is ordinary never-touched memory (no RSS, one VMA
 *     per 1024 slots). Every switch away from a G checks that its frame is
 *     above the zone, and the SIGSEGV handler reports a fault whose stack
 *     pointer is below the current G's stack. An overflow that stays within
 *     the zone is harmless; one that runs past it first smashes the canary
 *     at the top of the G below, which is checked whenever that G is
 *     switched to and scanned for on any fault, so the overflowing G is
 *     named - but only after the damage. Use RT_GUARD_PAGES where that
 *     matters more than the number of Gs.
 * RT_GUARD_AUTO uses guard pages while the VMA budget (half of what
 * max_map_count leaves after a 16k reserve) lasts, then red zones; that is how
 * 100k Gs work on default kernel settings and 1M parked Gs remain possible.
 *
 * Rejected: one mmap per stack (2 VMAs each and a syscall per spawn);
 * MAP_GROWSDOWN (the kernel's own guard gap, but one VMA each and racy);
 * copying stacks (pointers into a parked G's stack, like our waiters, would
 * dangle); -fsplit-stack (libc is not built for it).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime/internal.h"

#define G_AREA (((sizeof(rt__g_t) + 63) / 64) * 64)
#define GUARDED_SLAB_SLOTS 64
#define REDZONE_SLAB_SLOTS 1024
#define MAX_SLABS 65536

typedef struct slab {
    char *base;
    size_t nslots;
    _Atomic size_t used;          /* slots handed out (under st.lock) */
    _Atomic size_t prefault_next; /* next slot an idle M may pre-fault */
    bool guarded;
} slab_t;

static struct {
    _Atomic uint32_t lock;
    size_t stack_size, slot_size, page;
    rt_stack_guard_t mode;
    size_t guarded_budget;
    _Atomic size_t guarded_slots; /* written under lock, read by stats */
    slab_t *slabs;
    _Atomic size_t nslabs;
    slab_t *cur;
    slab_t *_Atomic cur_pub; /* st.cur, for the pre-faulters */
    _Atomic bool populate;   /* MADV_POPULATE_WRITE works */
    _Atomic uint64_t slots, bytes_mapped;
} st;

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

static long read_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

void rt__stacks_init(size_t stack_size, rt_stack_guard_t guard)
{
    memset(&st, 0, sizeof(st));
    st.page = (size_t)sysconf(_SC_PAGESIZE);
    st.stack_size = round_up(stack_size ? stack_size : 64 * 1024, st.page);
    st.slot_size = round_up(RT__GUARD_SIZE + st.stack_size + G_AREA, st.page);
    st.mode = guard;
    const char *env = getenv("REMORA_STACK_GUARD");
    if (env && strcmp(env, "pages") == 0)
        st.mode = RT_GUARD_PAGES;
    else if (env && strcmp(env, "redzone") == 0)
        st.mode = RT_GUARD_REDZONE;
    long maps = read_max_map_count();
    st.guarded_budget = maps > 16384 ? (size_t)(maps - 16384) / 2 : 0;
    st.slabs = rt_xcalloc(MAX_SLABS, sizeof(slab_t));
    atomic_store(&st.populate, true);
}

/*
 * Pre-faulting. A fresh slot's first touch is a page fault (2-4 us here, far
 * more than the spawn itself), taken by the spawning G. An M that is about
 * to spin for lack of work instead faults in the top pages of the next few
 * slots of the current slab, at most PREFAULT_AHEAD beyond the last one
 * handed out, so bursts of spawns find their pages ready and the fault cost
 * moves to an otherwise idle CPU. MADV_POPULATE_WRITE does it without
 * writing to memory the spawner may be initialising at the same time.
 * Once Gs are recycled from free lists no new slots are needed and this
 * costs two atomic loads.
 */
#define PREFAULT_AHEAD 1024
#define PREFAULT_LEAD 32

int rt__stack_prefault(int budget)
{
    slab_t *s = atomic_load_explicit(&st.cur_pub, memory_order_acquire);
    int done = 0;
    while (s && RT__LOAD(st.populate) && done < budget) {
        size_t used = RT__LOAD(s->used);
        size_t next = RT__LOAD(s->prefault_next);
        /* Stay a little ahead of the spawner: racing it for the same page
         * would only contend on the page-table lock. */
        size_t want = next > used + PREFAULT_LEAD ? next : used + PREFAULT_LEAD;
        if (want >= s->nslots || want - used >= PREFAULT_AHEAD)
            break;
        if (!atomic_compare_exchange_weak(&s->prefault_next, &next, want + 1))
            continue;
        char *top_page = s->base + (want + 1) * st.slot_size - st.page;
        if (madvise(top_page, st.page, MADV_POPULATE_WRITE) != 0) {
            atomic_store(&st.populate, false); /* kernel before 5.14 */
            break;
        }
        done++;
    }
    return done;
}

static slab_t *new_slab(void)
{
    bool guarded = st.mode == RT_GUARD_PAGES ||
                   (st.mode == RT_GUARD_AUTO &&
                    RT__LOAD(st.guarded_slots) + GUARDED_SLAB_SLOTS <= st.guarded_budget);
    size_t n = guarded ? GUARDED_SLAB_SLOTS : REDZONE_SLAB_SLOTS;
    size_t nslabs = RT__LOAD(st.nslabs);
    RT_CHECK(nslabs < MAX_SLABS, "too many stack slabs");
    /* One PROT_NONE zone below the whole slab: whatever happens inside a
     * red-zone slab, an overflow never runs into another mapping. */
    char *map = mmap(NULL, RT__GUARD_SIZE + n * st.slot_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED)
        rt_panic("cannot map %zu bytes of G stacks (%zu slabs so far)", n * st.slot_size, nslabs);
    if (mprotect(map, RT__GUARD_SIZE, PROT_NONE) != 0)
        rt_panic("cannot protect the stack slab guard");
    char *base = map + RT__GUARD_SIZE;
    /* Transparent huge pages would turn each stack's first touch into a
     * 2 MiB clear: 1M Gs would cost 20 s and gigabytes. */
    madvise(map, RT__GUARD_SIZE + n * st.slot_size, MADV_NOHUGEPAGE);
    if (guarded) {
        for (size_t i = 0; i < n; i++) {
            if (mprotect(base + i * st.slot_size, RT__GUARD_SIZE, PROT_NONE) != 0)
                rt_panic("cannot protect a stack guard page (vm.max_map_count too low?)");
        }
        atomic_fetch_add_explicit(&st.guarded_slots, n, memory_order_relaxed);
    }
    slab_t *s = &st.slabs[nslabs];
    *s = (slab_t){.base = base, .nslots = n, .guarded = guarded};
    atomic_store_explicit(&st.nslabs, nslabs + 1, memory_order_release);
    atomic_fetch_add_explicit(&st.bytes_mapped, RT__GUARD_SIZE + n * st.slot_size,
                              memory_order_relaxed);
    return s;
}

static rt__g_t *slot_g(const slab_t *s, size_t i)
{
    return (rt__g_t *)(s->base + (i + 1) * st.slot_size - G_AREA);
}

rt__g_t *rt__stack_alloc(void)
{
    rt__spin_lock(&st.lock);
    if (!st.cur || RT__LOAD(st.cur->used) == st.cur->nslots) {
        st.cur = new_slab();
        atomic_store_explicit(&st.cur_pub, st.cur, memory_order_release);
    }
    slab_t *s = st.cur;
    size_t i = atomic_fetch_add(&s->used, 1);
    rt__spin_unlock(&st.lock);

    char *slot = s->base + i * st.slot_size;
    rt__g_t *g = slot_g(s, i);
    memset(g, 0, sizeof(*g));
    g->stack_lo = slot + RT__GUARD_SIZE;
    g->stack_hi = (char *)g;
    g->guarded = s->guarded;
    g->canary = rt__stack_canary(g);
    atomic_fetch_add_explicit(&st.slots, 1, memory_order_relaxed);
    return g;
}

RT_NORETURN static void report_overflow(uint64_t gid)
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg),
                     "runtime: stack overflow in G %llu (stack %zu KiB; raise "
                     "rt_config_t.stack_size)\n",
                     (unsigned long long)gid, st.stack_size / 1024);
    ssize_t rc = write(STDERR_FILENO, msg, (size_t)(n > 0 ? n : 0));
    (void)rc;
    abort();
}

uint64_t rt__stack_canary(const rt__g_t *g)
{
    return 0x5a17c0de2bad5eedull ^ (uint64_t)(uintptr_t)g;
}

void rt__stack_check(rt__g_t *g)
{
    /* Only the frame address: reading the zone itself would fault in a page
     * per G (a read of untouched memory still costs a page-table entry and
     * a trap), which is what red-zone mode exists to avoid. */
    if (RT_UNLIKELY((char *)__builtin_frame_address(0) < g->stack_lo))
        report_overflow(g->id);
}

/* The slot above g's belongs to the G whose overflow would hit g first. */
static const rt__g_t *g_above(const rt__g_t *g)
{
    const char *next_slot = (const char *)g + G_AREA;
    size_t n = atomic_load_explicit(&st.nslabs, memory_order_acquire);
    for (size_t k = 0; k < n; k++) {
        const slab_t *s = &st.slabs[k];
        if (next_slot > s->base && next_slot < s->base + s->nslots * st.slot_size)
            return (const rt__g_t *)(next_slot + st.slot_size - G_AREA);
    }
    return NULL;
}

void rt__stack_check_in(rt__g_t *g)
{
    if (RT_LIKELY(g->canary == rt__stack_canary(g)))
        return;
    const rt__g_t *culprit = g_above(g);
    report_overflow(culprit ? culprit->id : 0);
}

/* Crash path: find a G whose stack ran over the G below it. */
static bool find_smashed(uint64_t *gid)
{
    size_t n = atomic_load_explicit(&st.nslabs, memory_order_acquire);
    for (size_t k = 0; k < n; k++) {
        const slab_t *s = &st.slabs[k];
        if (s->guarded)
            continue;
        for (size_t i = 0; i + 1 < RT__LOAD(s->used); i++) {
            const rt__g_t *lo = slot_g(s, i), *hi = slot_g(s, i + 1);
            if (lo->canary != rt__stack_canary(lo) && hi->canary == rt__stack_canary(hi)) {
                *gid = hi->id;
                return true;
            }
        }
    }
    return false;
}

/* Async-signal-safe: no locks; slabs are published with a release store. */
bool rt__stack_overflow_addr(const void *addr, uint64_t *gid)
{
    const char *a = addr;
    size_t n = atomic_load_explicit(&st.nslabs, memory_order_acquire);
    for (size_t k = 0; k < n; k++) {
        const slab_t *s = &st.slabs[k];
        if (a >= s->base - RT__GUARD_SIZE && a < s->base) {
            *gid = slot_g(s, 0)->id;
            return true;
        }
        if (a < s->base || a >= s->base + s->nslots * st.slot_size)
            continue;
        size_t i = (size_t)(a - s->base) / st.slot_size;
        const char *slot = s->base + i * st.slot_size;
        if (a >= slot + RT__GUARD_SIZE)
            return false;
        *gid = slot_g(s, i)->id;
        return true;
    }
    return false;
}

static struct sigaction old_segv, old_bus;

static void *stack_pointer(void *uctx)
{
    ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (void *)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (void *)uc->uc_mcontext.sp;
#else
    (void)uc;
    return NULL;
#endif
}

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
    /* The running G's own stack pointer below its stack is the surest sign
     * (a red-zone overflow may fault far below, in the slab's guard). */
    rt__m_t *m = rt__getm();
    if (m && m->curg) {
        char *sp = (char *)stack_pointer(uctx);
        char *addr = info->si_addr;
        if ((sp && sp < m->curg->stack_lo) ||
            (addr < m->curg->stack_lo && addr >= m->curg->stack_lo - RT__GUARD_SIZE))
            report_overflow(m->curg->id);
    }
    uint64_t gid = 0;
    if (rt__stack_overflow_addr(info->si_addr, &gid))
        report_overflow(gid);
    /* A red-zone overflow may have smashed another G and made it (or a timer
     * on its stack) fault elsewhere: name the G that overflowed. */
    if (find_smashed(&gid))
        report_overflow(gid);
    /* Not ours: restore the previous handler and let the fault happen again. */
    sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
}

void rt__signals_init(void)
{
    static _Atomic bool done;
    if (atomic_exchange(&done, true))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

#define ALTSTACK_SIZE (64 * 1024)

void *rt__altstack_new(void)
{
    void *mem =
        mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return NULL;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    return mem;
}

void rt__altstack_release(void *mem)
{
    if (!mem)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(mem, ALTSTACK_SIZE);
}

void rt__altstack_init(rt__m_t *m)
{
    m->altstack = rt__altstack_new();
}

void rt__altstack_free(rt__m_t *m)
{
    rt__altstack_release(m->altstack);
    m->altstack = NULL;
}

void rt__stack_stats(rt_stats_t *out, bool resident)
{
    out->stacks = RT__LOAD(st.slots);
    size_t guarded = RT__LOAD(st.guarded_slots);
    out->stacks_guarded = guarded < out->stacks ? guarded : out->stacks;
    out->stack_bytes_mapped = RT__LOAD(st.bytes_mapped);
    out->stack_bytes_resident = 0;
    if (!resident)
        return;
    size_t n = atomic_load_explicit(&st.nslabs, memory_order_acquire);
    size_t slab_pages = REDZONE_SLAB_SLOTS * st.slot_size / st.page;
    unsigned char *vec = rt_xmalloc(slab_pages);
    for (size_t k = 0; k < n; k++) {
        const slab_t *s = &st.slabs[k];
        size_t len = s->nslots * st.slot_size;
        if (mincore(s->base, len, vec) != 0)
            continue;
        for (size_t i = 0; i < len / st.page; i++)
            out->stack_bytes_resident += (vec[i] & 1) ? st.page : 0;
    }
    free(vec);
}

void rt__stacks_shutdown(void (*each_live)(rt__g_t *g))
{
    size_t n = RT__LOAD(st.nslabs);
    for (size_t k = 0; k < n; k++) {
        slab_t *s = &st.slabs[k];
        for (size_t i = 0; i < RT__LOAD(s->used); i++)
            each_live(slot_g(s, i));
        munmap(s->base - RT__GUARD_SIZE, RT__GUARD_SIZE + s->nslots * st.slot_size);
    }
    free(st.slabs);
    memset(&st, 0, sizeof(st));
}
