/* SPDX-License-Identifier: MIT */
/*
 * proc.c - the scheduler: G lifecycle, the M loop, finding work, parking and
 * readying, blocking-call hand-off and thread locking (Go's proc.go).
 *
 * Model. rt_config_t.procs Ps each hold a local run queue (runq.c). An M (OS
 * thread) must hold a P to run Gs. Each M has a g0 context: the thread's own
 * stack, where the full scheduler loop (findrunnable: timers, queues, netpoll,
 * stealing, sleeping) runs.
 *
 * Switches. A G that parks, yields or exits does not bounce through g0 when
 * its P has local work: it picks the next G itself and switches straight to
 * it. What must happen to the old G after its registers are saved (mark it
 * waiting and drop the channel lock; queue it; free it) is recorded in
 * m->after and performed by whoever runs next on that M (run_after), exactly
 * once, before anything else. That is Go's mcall(park_m) without the second
 * switch: a yield costs one context switch, not two. The fast path never
 * runs timers or netpoll, because the parking G may still hold the lock (a
 * netfd's) that a timer callback needs; those run on g0 after run_after.
 *
 * Spinning. An M looking for work is "spinning". wakep() starts one only if
 * there is an idle P and nobody spins already; a spinning M that finds work
 * stops spinning and wakes another if Ps are still idle. This keeps wake-ups
 * (futex, ~5 us across CPUs) off the hot path while work still spreads.
 *
 * Spawning. rt_go puts the new G in runnext (it runs next, as in Go) and,
 * when its P's queue is full, yields: without preemption a G spawning in a
 * loop would otherwise outrun every P and force a fresh stack (a page fault)
 * for each new G. Idle spinning Ms pre-fault the stack slots a spawn burst
 * is about to use (stack.c).
 *
 * Locks. rt__sched.lock (spin) protects the global run queue and the idle P
 * and M lists; gfree_lock the global G free list. Both queues hold batches,
 * so no G is walked under a lock. Channel and netfd locks may be held when
 * taking them, never the other way round.
 *
 * Rejected: switching through g0 on every park or yield (Go's mcall): two
 * context switches instead of one; ucontext: a syscall per switch; one
 * global run queue: a contended lock on every spawn and wake-up.
 *
 * G states: IDLE (free list) -> RUNNABLE (a run queue or runnext) -> RUNNING
 * (m->curg) -> WAITING (parked; owned by the wait queue it sits in) or
 * SYSCALL (rt_blocking_enter) -> ... -> DEAD -> IDLE.
 *
 * Preemption is cooperative only: a C function cannot be stopped at an
 * arbitrary instruction and resumed elsewhere safely (no stack maps, locks
 * held by libc, errno/TLS caching), so every park, channel op, I/O wait and
 * rt_yield is a scheduling point, and sysmon.c reports Gs that hold a P too
 * long while the other Ps steal the rest of that P's queue.
 */
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"

rt__sched_t rt__sched;
static uint64_t main_goid;

#define GFREE_LOCAL_MAX 64
#define SPIN_ROUNDS 64
#define TIMER_SPIN_NS (50 * RT_USEC)

/* ---- small helpers ---- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void rt__spin_lock(_Atomic uint32_t *l)
{
    /* Holders keep these locks for tens of instructions. A waiter backs off
     * exponentially (1, 2, 4 ... 512 pauses, about 28 us in all here) and
     * then through the kernel. Backing off lets the holder's M go on with
     * the lock's cache line to itself for a while, instead of both Ms taking
     * it from each other on every operation: with 2 Ms on one channel that
     * raised throughput from 24 to 33 M items/s (1 producer, 1 consumer) and
     * from 14 to 31 (4 and 4), against a fixed 64-pause spin. */
    for (unsigned i = 0;; i++) {
        if (rt__spin_trylock(l))
            return;
        if (i < 10) {
            for (unsigned k = 0; k < (1u << i); k++)
                cpu_relax();
        } else {
            sched_yield();
        }
    }
}

void rt__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / RT_SEC;
        ts.tv_nsec = timeout_ns % RT_SEC;
        tsp = &ts;
    }
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

void rt__futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

rt_time_t rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (rt_time_t)ts.tv_sec * RT_SEC + ts.tv_nsec;
}

/* The coarse clock is the precise one as of a recent tick: about 8 ns to
 * read here against 30. It lags by up to its resolution plus the tick's own
 * jitter (4.5 ms measured with a 4 ms tick), so coarse + 2 resolutions is a
 * time at or after the precise now unless the tick itself was held up (a
 * stalled VM). Long timeouts (read, write, idle: seconds) take it: never
 * early, and late by at most two ticks, under 1/32 of the timeout. Zero
 * until rt_run sets it, and where the tick is long: then all is precise. */
static int64_t coarse_res;

static void coarse_init(void)
{
    struct timespec r;
    coarse_res = 0;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0 && r.tv_sec == 0 && r.tv_nsec <= 10 * RT_MSEC)
        coarse_res = r.tv_nsec;
}

static rt_time_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (rt_time_t)ts.tv_sec * RT_SEC + ts.tv_nsec;
}

rt_time_t rt__coarse_now(void)
{
    return coarse_res ? coarse_now() : rt_now();
}

/* Not before the precise now, for all we can tell (see coarse_res). */
static rt_time_t coarse_upper(void)
{
    return coarse_now() + 2 * coarse_res;
}

rt_time_t rt_deadline_in(int64_t ns)
{
    rt_time_t now = coarse_res && ns >= 64 * coarse_res ? coarse_upper() : rt_now();
    return ns >= RT_FOREVER - now ? RT_FOREVER : now + ns;
}

bool rt__past(rt_time_t deadline)
{
    if (deadline == RT_FOREVER)
        return false;
    if (coarse_res && deadline > coarse_upper())
        return false;
    return deadline <= rt_now();
}

static uint64_t rand_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

uint64_t rt__fastrand(void)
{
    rt__m_t *m = rt__getm();
    static _Atomic uint64_t shared = 0x9e3779b97f4a7c15ull;
    if (!m) {
        uint64_t s = atomic_fetch_add(&shared, 0x9e3779b97f4a7c15ull);
        return rand_next(&s);
    }
    return rand_next(&m->rand);
}

/* ---- G batch queues (the caller holds the queue's lock) ---- */

static void batchq_push(rt__gbatchq_t *q, rt__g_t *head, rt__g_t *tail, uint32_t n)
{
    tail->schedlink = NULL;
    head->batch_next = NULL;
    head->batch_tail = tail;
    head->batch_len = n;
    if (q->last)
        q->last->batch_next = head;
    else
        q->first = head;
    q->last = head;
}

/* Pops the first batch: a chain of batch_len Gs through schedlink. */
static rt__g_t *batchq_pop(rt__gbatchq_t *q)
{
    rt__g_t *head = q->first;
    if (head) {
        q->first = head->batch_next;
        if (!q->first)
            q->last = NULL;
    }
    return head;
}

static rt__g_t *batchq_pop_one(rt__gbatchq_t *q)
{
    rt__g_t *g = q->first;
    if (!g || g->batch_len == 1)
        return batchq_pop(q);
    rt__g_t *rest = g->schedlink;
    rest->batch_len = g->batch_len - 1;
    rest->batch_next = g->batch_next;
    rest->batch_tail = g->batch_tail;
    q->first = rest;
    if (q->last == g)
        q->last = rest;
    g->schedlink = NULL;
    return g;
}

/* ---- global run queue (sched.lock) ---- */

static void globrunq_put_locked(rt__g_t *g)
{
    batchq_push(&rt__sched.runq, g, g, 1);
    atomic_fetch_add_explicit(&rt__sched.runq_size, 1, memory_order_relaxed);
}

void rt__globrunq_put_batch(rt__g_t *head, rt__g_t *tail, uint32_t n)
{
    rt__spin_lock(&rt__sched.lock);
    batchq_push(&rt__sched.runq, head, tail, n);
    atomic_fetch_add_explicit(&rt__sched.runq_size, n, memory_order_relaxed);
    rt__spin_unlock(&rt__sched.lock);
}

/* Takes whole batches, about a fair share (size / procs + 1, as Go), or just
 * one G when max is 1. Returns a chain through schedlink. */
static rt__g_t *globrunq_take_locked(uint32_t max)
{
    uint32_t size = RT__LOAD(rt__sched.runq_size);
    if (size == 0)
        return NULL;
    if (max == 1) {
        atomic_fetch_sub_explicit(&rt__sched.runq_size, 1, memory_order_relaxed);
        return batchq_pop_one(&rt__sched.runq);
    }
    uint32_t want = size / (uint32_t)rt__sched.nprocs + 1, got = 0;
    rt__g_t *chain = NULL, *tail = NULL;
    while (got < want && got < RT__RUNQ_SIZE / 2 && rt__sched.runq.first) {
        rt__g_t *b = batchq_pop(&rt__sched.runq);
        if (tail)
            tail->schedlink = b;
        else
            chain = b;
        tail = b->batch_tail;
        got += b->batch_len;
    }
    atomic_fetch_sub_explicit(&rt__sched.runq_size, got, memory_order_relaxed);
    return chain;
}

/* Runs the first G of `chain`, queues the rest on p (outside any lock). */
static rt__g_t *take_first_queue_rest(rt__p_t *p, rt__g_t *chain)
{
    if (!chain)
        return NULL;
    for (rt__g_t *x = chain->schedlink; x;) {
        rt__g_t *next = x->schedlink;
        rt__runq_put(p, x, false);
        x = next;
    }
    chain->schedlink = NULL;
    return chain;
}

static rt__g_t *globrunq_get(rt__p_t *p, uint32_t max)
{
    if (RT__LOAD(rt__sched.runq_size) == 0)
        return NULL;
    rt__spin_lock(&rt__sched.lock);
    rt__g_t *chain = globrunq_take_locked(max);
    rt__spin_unlock(&rt__sched.lock);
    return take_first_queue_rest(p, chain);
}

/* ---- idle Ps and Ms (sched.lock) ---- */

static void pidleput_locked(rt__p_t *p)
{
    atomic_store(&p->status, RT__P_IDLE);
    p->m = NULL;
    p->link = rt__sched.pidle;
    rt__sched.pidle = p;
    atomic_fetch_add(&rt__sched.npidle, 1);
}

static rt__p_t *pidleget_locked(void)
{
    rt__p_t *p = rt__sched.pidle;
    if (p) {
        rt__sched.pidle = p->link;
        atomic_fetch_sub(&rt__sched.npidle, 1);
    }
    return p;
}

static void acquirep(rt__m_t *m, rt__p_t *p)
{
    m->p = p;
    p->m = m;
    atomic_store(&p->status, RT__P_RUNNING);
    rt__sysmon_p_busy();
}

static void *mstart(void *arg);

static rt__m_t *newm(void)
{
    uint32_t id = atomic_fetch_add(&rt__sched.nm, 1);
    RT_CHECK(id < RT_ARRAY_LEN(rt__sched.allm), "too many threads (Ms)");
    rt__m_t *m = rt_xcalloc(1, sizeof(*m));
    m->id = (int)id;
    m->rand = rt__sched.seed ^ (0x9e3779b97f4a7c15ull * (id + 1));
    if (!m->rand)
        m->rand = 1;
    return m;
}

/* Makes `m` visible in allm, once its `thread` is set. */
static void publish_m(rt__m_t *m)
{
    atomic_store_explicit(&rt__sched.allm[m->id], m, memory_order_release);
}

static void notewakeup(rt__m_t *m)
{
    atomic_store(&m->park_futex, 1);
    rt__futex_wake(&m->park_futex, 1);
}

static void notesleep(rt__m_t *m)
{
    while (atomic_load(&m->park_futex) == 0)
        rt__futex_wait(&m->park_futex, 0, -1);
    atomic_store(&m->park_futex, 0);
}

/* Starts an M (idle or new) to run p (or an idle P if p is NULL). */
static void startm(rt__p_t *p, bool spinning)
{
    rt__spin_lock(&rt__sched.lock);
    if (!p) {
        p = pidleget_locked();
        if (!p) {
            rt__spin_unlock(&rt__sched.lock);
            if (spinning)
                atomic_fetch_sub(&rt__sched.nmspinning, 1);
            return;
        }
    }
    rt__m_t *m = rt__sched.midle;
    if (m) {
        rt__sched.midle = m->link;
        atomic_fetch_sub(&rt__sched.nmidle, 1);
    }
    rt__spin_unlock(&rt__sched.lock);
    if (!m && atomic_load(&rt__sched.stopping)) {
        /* rt_run is joining threads: start no new one. */
        rt__spin_lock(&rt__sched.lock);
        pidleput_locked(p);
        rt__spin_unlock(&rt__sched.lock);
        if (spinning)
            atomic_fetch_sub(&rt__sched.nmspinning, 1);
        return;
    }
    if (!m) {
        m = newm();
        m->spinning = spinning;
        m->nextp = p;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&m->thread, &attr, mstart, m);
        pthread_attr_destroy(&attr);
        RT_CHECK(rc == 0, "pthread_create failed");
        publish_m(m);
        return;
    }
    m->spinning = spinning;
    m->nextp = p;
    notewakeup(m);
}

void rt__wakep(void)
{
    if (RT__LOAD(rt__sched.npidle) == 0 || RT__LOAD(rt__sched.nmspinning) != 0)
        return;
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&rt__sched.nmspinning, &zero, 1))
        return;
    startm(NULL, true);
}

/* Parks the M until someone hands it a P; returns false when stopping. */
static bool stopm(rt__m_t *m)
{
    rt__spin_lock(&rt__sched.lock);
    if (atomic_load(&rt__sched.stopping)) {
        rt__spin_unlock(&rt__sched.lock);
        return false;
    }
    m->link = rt__sched.midle;
    rt__sched.midle = m;
    atomic_fetch_add(&rt__sched.nmidle, 1);
    rt__spin_unlock(&rt__sched.lock);
    atomic_fetch_add_explicit(&rt__sched.m_parks, 1, memory_order_relaxed);
    notesleep(m);
    if (!m->nextp)
        return false;
    acquirep(m, m->nextp);
    m->nextp = NULL;
    return true;
}

/* Gives p away: to a new M if it has work, else to the idle list. */
void rt__handoffp(rt__p_t *p)
{
    atomic_fetch_add_explicit(&rt__sched.handoffs, 1, memory_order_relaxed);
    if (!rt__runq_empty(p) || RT__LOAD(rt__sched.runq_size) > 0) {
        startm(p, false);
        return;
    }
    uint32_t zero = 0;
    if (RT__LOAD(rt__sched.nmspinning) + RT__LOAD(rt__sched.npidle) == 0 &&
        atomic_compare_exchange_strong(&rt__sched.nmspinning, &zero, 1)) {
        startm(p, true);
        return;
    }
    rt__spin_lock(&rt__sched.lock);
    if (RT__LOAD(rt__sched.runq_size) > 0) {
        rt__spin_unlock(&rt__sched.lock);
        startm(p, false);
        return;
    }
    pidleput_locked(p);
    rt__spin_unlock(&rt__sched.lock);
    /* Its timers must still fire: make sure some M sleeps with them in mind. */
    if (atomic_load(&p->timer0) != RT_FOREVER || rt__netpoll_has_waiters()) {
        if (atomic_load(&rt__sched.polling))
            rt__netpoll_break();
        else
            rt__wakep();
    }
}

/* ---- readying ---- */

void rt__ready(rt__g_t *g, bool next)
{
    atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
    rt__m_t *m = rt__getm();
    if (m && m->p && !m->in_syscall) {
        rt__runq_put(m->p, g, next);
    } else {
        rt__spin_lock(&rt__sched.lock);
        globrunq_put_locked(g);
        rt__spin_unlock(&rt__sched.lock);
    }
    rt__wakep();
}

void rt__ready_list(rt__g_t *head)
{
    if (!head)
        return;
    rt__spin_lock(&rt__sched.lock);
    while (head) {
        rt__g_t *next = head->schedlink;
        atomic_store_explicit(&head->status, RT__G_RUNNABLE, memory_order_relaxed);
        globrunq_put_locked(head);
        head = next;
    }
    rt__spin_unlock(&rt__sched.lock);
    for (int i = 0; i < rt__sched.nprocs && RT__LOAD(rt__sched.npidle) > 0; i++)
        rt__wakep();
}

/* ---- G free lists ---- */

static void gfput(rt__p_t *p, rt__g_t *g)
{
    atomic_store_explicit(&g->status, RT__G_IDLE, memory_order_relaxed);
    g->schedlink = p->gfree;
    p->gfree = g;
    if (++p->ngfree < GFREE_LOCAL_MAX)
        return;
    /* Hand half to the global list as one batch, built outside the lock. */
    rt__g_t *head = p->gfree, *tail = head;
    for (int i = 1; i < GFREE_LOCAL_MAX / 2; i++)
        tail = tail->schedlink;
    p->gfree = tail->schedlink;
    p->ngfree -= GFREE_LOCAL_MAX / 2;
    rt__spin_lock(&rt__sched.gfree_lock);
    batchq_push(&rt__sched.gfree, head, tail, GFREE_LOCAL_MAX / 2);
    atomic_fetch_add(&rt__sched.ngfree, GFREE_LOCAL_MAX / 2);
    rt__spin_unlock(&rt__sched.gfree_lock);
}

static rt__g_t *gfget(rt__p_t *p)
{
    if (!p->gfree && RT__LOAD(rt__sched.ngfree) > 0) {
        rt__spin_lock(&rt__sched.gfree_lock);
        rt__g_t *b = batchq_pop(&rt__sched.gfree);
        if (b)
            atomic_fetch_sub(&rt__sched.ngfree, (int)b->batch_len);
        rt__spin_unlock(&rt__sched.gfree_lock);
        if (b) {
            p->gfree = b;
            p->ngfree = (int)b->batch_len;
        }
    }
    rt__g_t *g = p->gfree;
    if (g) {
        p->gfree = g->schedlink;
        p->ngfree--;
    }
    return g;
}

/* ---- the switch and its deferred action ---- */

static inline void run_after(rt__m_t *m)
{
    if (RT_LIKELY(m->after == RT__AFTER_NONE))
        return;
    rt__g_t *g = m->after_g;
    switch (m->after) {
    case RT__AFTER_NONE:
        return;
    case RT__AFTER_PARK:
        m->after = RT__AFTER_NONE;
        atomic_store_explicit(&g->status, RT__G_WAITING, memory_order_release);
        /* fn first: it may arm a deadline timer that the lock keeps from
         * racing with a wake-up (netpoll.c, chan.c). */
        if (m->after_fn && !m->after_fn(g, m->after_arg)) {
            atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
            rt__runq_put(m->p, g, true);
        }
        if (m->after_unlock)
            rt__spin_unlock(m->after_unlock);
        return;
    case RT__AFTER_YIELD:
        m->after = RT__AFTER_NONE;
        atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
        rt__runq_put(m->p, g, false);
        return;
    case RT__AFTER_EXIT:
        m->after = RT__AFTER_NONE;
        gfput(m->p, g);
        return;
    case RT__AFTER_GLOBAL:
        m->after = RT__AFTER_NONE;
        rt__spin_lock(&rt__sched.lock);
        atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
        globrunq_put_locked(g);
        rt__spin_unlock(&rt__sched.lock);
        rt__wakep();
        return;
    }
}

static inline RT__HOT void execute_prepare(rt__m_t *m, rt__p_t *p, rt__g_t *g)
{
    m->curg = g;
    g->m = m;
    atomic_store_explicit(&g->status, RT__G_RUNNING, memory_order_relaxed);
    RT__STAT_INC(p->schedtick);
    atomic_store_explicit(&p->curg_id, g->id, memory_order_relaxed);
}

/* Every 61st schedule looks at the global queue first, so that a P with
 * endless local work cannot starve it (Go's schedtick % 61). */
static inline bool time_for_global(rt__p_t *p)
{
    if (RT_LIKELY(--p->global_countdown != 0))
        return false;
    p->global_countdown = 61;
    return true;
}

/* True when the M must go through g0 now: the runtime is stopping, or a
 * timer of `p` is due (the direct switches never run timers). */
static inline RT__HOT bool g0_due(rt__p_t *p)
{
    if (RT_UNLIKELY(atomic_load_explicit(&rt__sched.stopping, memory_order_relaxed)))
        return true;
    rt_time_t t0 = atomic_load_explicit(&p->timer0, memory_order_relaxed);
    return RT_UNLIKELY(t0 != RT_FOREVER) && rt__past(t0);
}

/* Local work only; no timers, no netpoll (see the file comment). Returns
 * NULL when the caller should go through g0 or has nothing else to run. */
static inline RT__HOT rt__g_t *find_local(rt__m_t *m, rt__p_t *p)
{
    if (g0_due(p))
        return NULL;
    rt__g_t *g = NULL;
    if (RT_UNLIKELY(time_for_global(p)))
        g = globrunq_get(p, 1);
    if (!g)
        g = rt__runq_get(p);
    if (!g)
        g = globrunq_get(p, 0);
    if (RT_UNLIKELY(g && g->lockedm && g->lockedm != m)) {
        /* Must run on its own thread: let g0 hand it over. */
        rt__runq_put(p, g, true);
        return NULL;
    }
    return g;
}

/* True when a yield that found nothing local may simply return. */
static bool nothing_else_due(rt__p_t *p)
{
    return !g0_due(p) && rt__runq_empty(p);
}

/* Switches to `next`, or to g0 when NULL; then runs the deferred action. */
static inline RT__HOT void switch_to(rt__m_t *m, rt__g_t *cur, rt__g_t *next, bool dying)
{
    if (next) {
        execute_prepare(m, m->p, next);
    } else {
        m->curg = NULL;
        if (m->p) /* the M is in its scheduler now, not running a G */
            atomic_store_explicit(&m->p->curg_id, 0, memory_order_relaxed);
    }
    /* Resumed, perhaps on another M: the switch hands us that M in a
     * register, cheaper than TLS or cur->m. */
    run_after(rt__switch(m, cur, next, dying));
}

static void switch_out(rt__m_t *m, rt__g_t *cur, bool dying)
{
    rt__p_t *p = m->p;
    switch_to(m, cur, (m->lockedg || !p) ? NULL : find_local(m, p), dying);
}

void rt__park(_Atomic uint32_t *unlock, rt__park_fn *fn, void *arg)
{
    rt__m_t *m = rt__getm();
    rt__g_t *g = m->curg;
    RT_CHECK(g != NULL, "park outside a G");
    m->after = RT__AFTER_PARK;
    m->after_g = g;
    m->after_unlock = unlock;
    m->after_fn = fn;
    m->after_arg = arg;
    if (m->p)
        RT__STAT_INC(m->p->st.parks);
    switch_out(m, g, false);
}

/*
 * The common yield with one P, in as few instructions as it can be: the head
 * of the local run queue runs next and the yielder takes its place at the
 * tail, one rotation of the ring (which works even when it is full: the
 * head slot is read before the tail slot, the same one then, is written).
 * With one P nobody else takes from the queue, so the yielder is queued
 * before its registers are saved and the G that runs next has nothing left
 * to do for it. Anything unusual (runnext set, a locked G, the global
 * queue's turn or backlog, a timer due, stopping) takes the general path.
 */
static inline RT__HOT rt__g_t *yield_one_p(rt__m_t *m, rt__p_t *p, rt__g_t *cur)
{
    if (atomic_load_explicit(&p->runnext, memory_order_relaxed) || m->lockedg ||
        p->global_countdown <= 1 || RT__LOAD(rt__sched.runq_size) > 0 || g0_due(p))
        return NULL;
    uint32_t head = atomic_load_explicit(&p->runq_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
    if (head == tail)
        return NULL;
    rt__g_t *next = atomic_load_explicit(&RT__RUNQ_SLOT(p, head), memory_order_relaxed);
    if (next->lockedm)
        return NULL;
    atomic_store_explicit(&RT__RUNQ_SLOT(p, tail), cur, memory_order_relaxed);
    atomic_store_explicit(&p->runq_head, head + 1, memory_order_release);
    atomic_store_explicit(&p->runq_tail, tail + 1, memory_order_release);
    p->global_countdown--;
    atomic_store_explicit(&cur->status, RT__G_RUNNABLE, memory_order_relaxed);
    return next;
}

void rt_yield(void)
{
    rt__m_t *m = rt__getm();
    if (RT_UNLIKELY(!m))
        return; /* not a G of the runtime */
    rt__p_t *p = m->p;
    rt__g_t *cur = m->curg;
    RT_ASSERT(cur != NULL && p != NULL);
    RT__STAT_INC(p->st.yields);
    rt__g_t *next = rt__sched.nprocs == 1 ? yield_one_p(m, p, cur) : NULL;
    if (!next) {
        next = m->lockedg ? NULL : find_local(m, p);
        if (!next && !m->lockedg && nothing_else_due(p)) {
            RT__STAT_INC(p->schedtick); /* still a scheduling point, for sysmon */
            return;
        }
        /* A backlog in the global queue means local Gs are rotating among
         * themselves while others wait (the queue is read every 61st
         * tick): then the yielder goes to the back of the global queue, as
         * in Go. */
        m->after = RT__LOAD(rt__sched.runq_size) > 0 ? RT__AFTER_GLOBAL : RT__AFTER_YIELD;
        m->after_g = cur;
    }
    switch_to(m, cur, next, false);
}

void rt_exit(void)
{
    rt__m_t *m = rt__getm();
    rt__g_t *g = m->curg;
    if (g->lockedm) {
        g->lockedm = NULL;
        g->lock_count = 0;
        m->lockedg = NULL;
    }
    RT__STAT_INC(m->p->st.exits);
    atomic_store_explicit(&g->status, RT__G_DEAD, memory_order_relaxed);
    if (g->id == main_goid) {
        rt__spin_lock(&rt__sched.lock);
        atomic_store(&rt__sched.stopping, true);
        rt__spin_unlock(&rt__sched.lock);
        uint32_t nm = atomic_load(&rt__sched.nm);
        for (uint32_t i = 0; i < nm; i++) {
            rt__m_t *other = atomic_load_explicit(&rt__sched.allm[i], memory_order_acquire);
            if (other && other != m)
                notewakeup(other);
        }
        rt__netpoll_break();
    }
    m->after = RT__AFTER_EXIT;
    m->after_g = g;
    switch_out(m, g, true);
    RT_UNREACHABLE();
}

void rt__g_entry(rt__g_t *g)
{
    rt__san_g_started();
    run_after(g->m);
    g->fn(g->arg);
    rt_exit();
}

/* ---- spawning ---- */

static uint64_t next_goid(rt__p_t *p)
{
    if (p->goid_next == p->goid_end) {
        p->goid_next = atomic_fetch_add(&rt__sched.goidgen, 16);
        p->goid_end = p->goid_next + 16;
    }
    return p->goid_next++;
}

static rt__g_t *newg(rt__p_t *p, rt_go_fn *fn, void *arg)
{
    rt__g_t *g = gfget(p);
    if (g) {
        rt__san_g_reuse(g);
    } else {
        g = rt__stack_alloc();
        rt__san_g_create(g);
    }
    g->fn = fn;
    g->arg = arg;
    g->id = next_goid(p);
    g->lockedm = NULL;
    g->lock_count = 0;
    rt__ctx_make(&g->ctx, g->stack_hi, g);
    atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
    RT__STAT_INC(p->st.spawns);
    return g;
}

rt__g_t *rt__newg_anywhere(rt_go_fn *fn, void *arg)
{
    rt__m_t *m = rt__getm();
    if (m && m->p && !m->in_syscall)
        return newg(m->p, fn, arg);
    /* No P: reuse a G from the global free list, as Ps do when theirs runs
     * dry. Without this, every G the netpoller spawns for an idle connection
     * would map a fresh stack while exited ones pile up on free lists. */
    rt__g_t *g = NULL;
    if (RT__LOAD(rt__sched.ngfree) > 0) {
        rt__spin_lock(&rt__sched.gfree_lock);
        g = batchq_pop_one(&rt__sched.gfree);
        if (g)
            atomic_fetch_sub(&rt__sched.ngfree, 1);
        rt__spin_unlock(&rt__sched.gfree_lock);
    }
    if (g) {
        rt__san_g_reuse(g);
    } else {
        g = rt__stack_alloc();
        rt__san_g_create(g);
    }
    g->lockedm = NULL;
    g->lock_count = 0;
    g->fn = fn;
    g->arg = arg;
    g->id = atomic_fetch_add(&rt__sched.goidgen, 1);
    rt__ctx_make(&g->ctx, g->stack_hi, g);
    atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt__sched.spawns_nop, 1, memory_order_relaxed);
    return g;
}

int rt_go(rt_go_fn *fn, void *arg)
{
    rt__m_t *m = rt__getm();
    if (!m || !m->curg || !fn)
        return RT_ESTATE;
    if (!m->p || m->in_syscall)
        return RT_ESTATE;
    rt__g_t *g = newg(m->p, fn, arg);
    rt__runq_put(m->p, g, true);
    rt__wakep();
    /* Spawn backpressure: a G that spawns faster than Gs run would fill
     * the global queue and force fresh stacks (page faults) for every new
     * G; with its P's queue full, it steps back and lets them run (what
     * Go gets from preempting the spawner). */
    if (RT_UNLIKELY(rt__runq_len(m->p) >= RT__RUNQ_SIZE))
        rt_yield();
    return RT_OK;
}

bool rt_in_g(void)
{
    return rt__getg() != NULL;
}

uint64_t rt_g_id(void)
{
    rt__g_t *g = rt__getg();
    return g ? g->id : 0;
}

int rt_p_id(void)
{
    rt__m_t *m = rt__getm();
    return m && m->curg && m->p ? m->p->id : -1;
}

uint64_t rt_fastrand(void)
{
    return rt__fastrand();
}

int rt_procs(void)
{
    return rt__sched.nprocs;
}

/* ---- blocking calls ---- */

void rt_blocking_enter(void)
{
    rt__m_t *m = rt__getm();
    if (!m || !m->curg || !m->p)
        return;
    rt__p_t *p = m->p;
    atomic_store_explicit(&m->curg->status, RT__G_SYSCALL, memory_order_relaxed);
    m->in_syscall = true;
    atomic_store(&p->syscall_when, rt_now());
    atomic_store(&p->status, RT__P_SYSCALL);
    rt__sysmon_kick();
}

void rt_blocking_leave(void)
{
    rt__m_t *m = rt__getm();
    if (!m || !m->curg || !m->in_syscall)
        return;
    rt__g_t *g = m->curg;
    rt__p_t *p = m->p;
    uint32_t expect = RT__P_SYSCALL;
    m->in_syscall = false;
    if (atomic_compare_exchange_strong(&p->status, &expect, RT__P_RUNNING)) {
        atomic_store_explicit(&g->status, RT__G_RUNNING, memory_order_relaxed);
        return;
    }
    /* sysmon retook the P: find another or queue ourselves and stop this M. */
    m->p = NULL;
    rt__spin_lock(&rt__sched.lock);
    rt__p_t *np = pidleget_locked();
    rt__spin_unlock(&rt__sched.lock);
    if (np) {
        acquirep(m, np);
        atomic_store_explicit(&g->status, RT__G_RUNNING, memory_order_relaxed);
        return;
    }
    m->after = RT__AFTER_GLOBAL;
    m->after_g = g;
    m->curg = NULL;
    run_after(rt__switch(m, g, NULL, false));
}

/* ---- thread locking ---- */

void rt_lock_os_thread(void)
{
    rt__m_t *m = rt__getm();
    if (!m || !m->curg)
        return;
    m->curg->lock_count++;
    m->curg->lockedm = m;
    m->lockedg = m->curg;
}

void rt_unlock_os_thread(void)
{
    rt__m_t *m = rt__getm();
    if (!m || !m->curg || m->curg->lock_count == 0)
        return;
    if (--m->curg->lock_count == 0) {
        m->curg->lockedm = NULL;
        m->lockedg = NULL;
    }
}

/* Hands our P to the M that g is locked to, then idles this M. */
static void startlockedm(rt__m_t *m, rt__g_t *g)
{
    rt__m_t *lm = g->lockedm;
    rt__p_t *p = m->p;
    m->p = NULL;
    p->m = NULL;
    lm->nextp = p;
    lm->nextg = g;
    notewakeup(lm);
}

/* The locked G is not running: give the P away and wait for it to come back. */
static bool stoplockedm(rt__m_t *m)
{
    if (m->p) {
        rt__p_t *p = m->p;
        m->p = NULL;
        rt__handoffp(p);
    }
    for (;;) {
        notesleep(m);
        if (atomic_load(&rt__sched.stopping))
            return false;
        if (m->nextp)
            break;
    }
    acquirep(m, m->nextp);
    m->nextp = NULL;
    return true;
}

/* ---- finding work (on g0) ---- */

static void resetspinning(rt__m_t *m)
{
    m->spinning = false;
    uint32_t n = atomic_fetch_sub(&rt__sched.nmspinning, 1) - 1;
    if (n == 0 && RT__LOAD(rt__sched.npidle) > 0)
        rt__wakep();
}

/* Netpoll results: run the first, queue the rest on our P (overflowing to
 * the global queue), and wake a spinning M if Ps are idle. */
static rt__g_t *inject_take_one(rt__p_t *p, rt__g_t *list)
{
    rt__g_t *first = list;
    bool more = first->schedlink != NULL;
    for (rt__g_t *g = first->schedlink; g;) {
        rt__g_t *next = g->schedlink;
        atomic_store_explicit(&g->status, RT__G_RUNNABLE, memory_order_relaxed);
        rt__runq_put(p, g, false);
        g = next;
    }
    first->schedlink = NULL;
    if (more)
        rt__wakep();
    return first;
}

static rt__g_t *steal_work(rt__m_t *m, rt__p_t *p, rt_time_t now)
{
    int n = rt__sched.nprocs;
    for (int round = 0; round < SPIN_ROUNDS; round++) {
        bool last = round == SPIN_ROUNDS - 1;
        int start = (int)(rand_next(&m->rand) % (uint64_t)n);
        for (int k = 0; k < n; k++) {
            rt__p_t *v = rt__sched.allp[(start + k) % n];
            if (v == p)
                continue;
            if (atomic_load_explicit(&v->timer0, memory_order_relaxed) <= now) {
                rt__timers_run(v, now);
                rt__g_t *g = rt__runq_get(p);
                if (g)
                    return g;
            }
            bool next = last || atomic_load_explicit(&v->hog, memory_order_relaxed) ||
                        atomic_load_explicit(&v->status, memory_order_relaxed) != RT__P_RUNNING;
            rt__g_t *g = rt__runq_steal(p, v, next);
            if (g)
                return g;
        }
        if (RT__LOAD(rt__sched.runq_size) > 0) {
            rt__g_t *g = globrunq_get(p, 0);
            if (g)
                return g;
        }
        if (atomic_load_explicit(&rt__sched.stopping, memory_order_relaxed))
            return NULL;
        /* Idle CPU time: fault in stacks for the next spawns, or pause. */
        if (rt__stack_prefault(1) == 0) {
            for (int i = 0; i < 32; i++)
                cpu_relax();
        }
    }
    return NULL;
}

static rt__g_t *findrunnable(rt__m_t *m)
{
top:
    if (atomic_load(&rt__sched.stopping))
        return NULL;
    rt__p_t *p = m->p;
    rt_time_t now = rt_now();
    if (atomic_load_explicit(&p->timer0, memory_order_relaxed) <= now)
        rt__timers_run(p, now);

    rt__g_t *g = NULL;
    if (time_for_global(p))
        g = globrunq_get(p, 1);
    if (!g)
        g = rt__runq_get(p);
    if (!g)
        g = globrunq_get(p, 0);
    if (!g && rt__netpoll_has_waiters() && !atomic_load(&rt__sched.polling)) {
        uint32_t cnt = 0;
        rt__g_t *list = rt__netpoll(RT_NOWAIT, &cnt);
        if (list)
            g = inject_take_one(p, list);
    }
    /* Spinning is for stealing, which needs another P. With one it would
     * only delay the poller (a spinning M does not look at the network) and
     * burn CPU that the rest of the machine could use. */
    if (!g && rt__sched.nprocs > 1) {
        uint32_t busy = (uint32_t)rt__sched.nprocs - RT__LOAD(rt__sched.npidle);
        if (!m->spinning && 2 * RT__LOAD(rt__sched.nmspinning) < busy) {
            m->spinning = true;
            atomic_fetch_add(&rt__sched.nmspinning, 1);
        }
        if (m->spinning) {
            /* Fresh stack slots are being handed out (a spawn burst): fault
             * in some of the next ones on this otherwise idle CPU first. */
            rt__stack_prefault(128);
            g = steal_work(m, p, now);
        }
    }
    if (g) {
        if (m->spinning)
            resetspinning(m);
        return g;
    }

    /* About to sleep: if a spawn burst is eating fresh stack slots, fault in
     * the next ones first (stack.c) and look for work again. */
    if (rt__stack_prefault(64) > 0)
        goto top;

    /* A timer due within TIMER_SPIN_NS: waiting for it in the kernel would
     * cost more than the wait (a halted vCPU takes 50-100 us to wake), so
     * keep the P and spin on the clock. */
    rt_time_t next_timer = rt__timers_next();
    if (next_timer != RT_FOREVER && next_timer - now < TIMER_SPIN_NS) {
        while (rt_now() < next_timer && rt__runq_empty(p) && RT__LOAD(rt__sched.runq_size) == 0 &&
               !atomic_load(&rt__sched.stopping))
            cpu_relax();
        if (m->spinning)
            resetspinning(m);
        goto top;
    }

    /* Nothing to do: give the P back and sleep. */
    rt__spin_lock(&rt__sched.lock);
    if (RT__LOAD(rt__sched.runq_size) > 0) {
        rt__g_t *chain = globrunq_take_locked(0);
        rt__spin_unlock(&rt__sched.lock);
        g = take_first_queue_rest(p, chain);
        if (m->spinning)
            resetspinning(m);
        return g;
    }
    pidleput_locked(p);
    m->p = NULL;
    rt__spin_unlock(&rt__sched.lock);

    if (m->spinning) {
        m->spinning = false;
        atomic_fetch_sub(&rt__sched.nmspinning, 1);
        /* A G readied between our last look and the decrement saw a spinning
         * M and did not wake anyone: look once more. */
        for (int i = 0; i < rt__sched.nprocs; i++) {
            if (rt__runq_empty(rt__sched.allp[i]))
                continue;
            rt__spin_lock(&rt__sched.lock);
            rt__p_t *np = pidleget_locked();
            rt__spin_unlock(&rt__sched.lock);
            if (np) {
                acquirep(m, np);
                m->spinning = true;
                atomic_fetch_add(&rt__sched.nmspinning, 1);
                goto top;
            }
            break;
        }
    }

    bool f = false;
    if (atomic_compare_exchange_strong(&rt__sched.polling, &f, true)) {
        rt_time_t until = rt__timers_next();
        atomic_store(&rt__sched.poll_until, until);
        uint32_t cnt = 0;
        rt__g_t *list = atomic_load(&rt__sched.stopping) ? NULL : rt__netpoll(until, &cnt);
        atomic_store(&rt__sched.poll_until, RT_FOREVER);
        atomic_store(&rt__sched.polling, false);
        rt__spin_lock(&rt__sched.lock);
        rt__p_t *np = pidleget_locked();
        rt__spin_unlock(&rt__sched.lock);
        if (!np) {
            rt__ready_list(list);
            if (!stopm(m))
                return NULL;
            goto top;
        }
        acquirep(m, np);
        if (list)
            return inject_take_one(np, list);
        goto top;
    }
    /* Another M sleeps in the poller; it must not oversleep the timers of
     * the P we just gave back. */
    if (rt__timers_next() < atomic_load(&rt__sched.poll_until))
        rt__netpoll_break();
    if (!stopm(m))
        return NULL;
    goto top;
}

static void schedule_loop(rt__m_t *m)
{
    for (;;) {
        run_after(m);
        if (atomic_load(&rt__sched.stopping))
            break;
        if (!m->p) {
            if (!stopm(m))
                break;
        }
        rt__g_t *g;
        if (m->lockedg) {
            if (!stoplockedm(m))
                break;
            g = m->nextg;
            m->nextg = NULL;
        } else {
            g = findrunnable(m);
            if (!g)
                break;
            if (g->lockedm && g->lockedm != m) {
                startlockedm(m, g);
                continue;
            }
        }
        execute_prepare(m, m->p, g);
        rt__switch(m, NULL, g, false);
    }
    if (m->p) {
        rt__spin_lock(&rt__sched.lock);
        pidleput_locked(m->p);
        rt__spin_unlock(&rt__sched.lock);
        m->p = NULL;
    }
}

static void m_init_thread(rt__m_t *m)
{
    /* Timer precision: the kernel would otherwise let epoll_pwait2 sleep up
     * to 50 us past the earliest timer (the default timer slack). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    rt__setm(m);
    m->tid = rt__sys_gettid();
    rt__altstack_init(m);
    rt__san_m_init(m);
}

static void *mstart(void *arg)
{
    rt__m_t *m = arg;
    m_init_thread(m);
    if (m->nextp) {
        acquirep(m, m->nextp);
        m->nextp = NULL;
    }
    schedule_loop(m);
    rt__altstack_free(m);
    rt__setm(NULL);
    return NULL;
}

/* ---- rt_run ---- */

static void discard_g(rt__g_t *g)
{
    uint32_t s = atomic_load(&g->status);
    if (s != RT__G_IDLE && s != RT__G_DEAD)
        atomic_fetch_add(&rt__sched.discarded, 1);
    rt__san_g_destroy(g);
}

int rt_run(const rt_config_t *cfg, rt_go_fn *main_fn, void *arg)
{
    static _Atomic bool active;
    if (atomic_exchange(&active, true))
        return RT_ESTATE;
    rt_config_t c = cfg ? *cfg : (rt_config_t){0};
    memset(&rt__sched, 0, sizeof(rt__sched));

    int procs = c.procs;
    const char *env = getenv("REMORA_PROCS");
    if (procs <= 0 && env)
        procs = atoi(env);
    if (procs <= 0)
        procs = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (procs < 1)
        procs = 1;
    if (procs > RT__MAX_PROCS)
        procs = RT__MAX_PROCS;
    rt__sched.nprocs = procs;
    coarse_init();
    rt__sched.hog_ns = c.hog_threshold_ns > 0 ? c.hog_threshold_ns : 10 * RT_MSEC;
    env = getenv("RT_SEED");
    rt__sched.seed = c.seed ? c.seed : env ? strtoull(env, NULL, 0) : (uint64_t)rt_now();
    rt__sched.goidgen = 1;
    atomic_store(&rt__sched.poll_until, RT_FOREVER);

    rt__stacks_init(c.stack_size, c.guard);
    rt__signals_init();
    rt__netpoll_init();
    for (int i = 0; i < procs; i++) {
        rt__p_t *p = aligned_alloc(RT_CACHE_LINE, sizeof(rt__p_t));
        RT_CHECK(p != NULL, "out of memory");
        memset(p, 0, sizeof(*p));
        p->id = i;
        atomic_store(&p->timer0, RT_FOREVER);
        p->global_countdown = 61;
        rt__sched.allp[i] = p;
    }
    for (int i = procs - 1; i > 0; i--)
        pidleput_locked(rt__sched.allp[i]);

    rt__m_t *m0 = newm();
    m0->thread = pthread_self();
    publish_m(m0);
    rt__sched.m0 = m0;
    m_init_thread(m0);
    acquirep(m0, rt__sched.allp[0]);
    rt__g_t *g = newg(m0->p, main_fn, arg);
    main_goid = g->id;
    rt__runq_put(m0->p, g, false);
    atomic_store(&rt__sched.running, true);
    rt__sysmon_start();

    schedule_loop(m0);

    rt__sysmon_stop();
    /* An M still running a G may start another before it sees `stopping`:
     * re-read the count, and wait for a slot still being filled. */
    for (uint32_t i = 1; i < atomic_load(&rt__sched.nm); i++) {
        rt__m_t *m;
        while (!(m = atomic_load_explicit(&rt__sched.allm[i], memory_order_acquire)))
            sched_yield();
        notewakeup(m);
        pthread_join(m->thread, NULL);
    }
    uint32_t nm = atomic_load(&rt__sched.nm);
    rt__altstack_free(m0);
    rt__setm(NULL);
    atomic_store(&rt__sched.running, false);
    rt__netpoll_shutdown();
    rt__stacks_shutdown(discard_g);
    for (int i = 0; i < procs; i++) {
        free(rt__sched.allp[i]->timers);
        free(rt__sched.allp[i]);
    }
    for (uint32_t i = 0; i < nm; i++)
        free(atomic_load(&rt__sched.allm[i]));
    atomic_store(&active, false);
    return RT_OK;
}
