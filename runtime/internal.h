/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the runtime's private structures (G, M, P, scheduler, timers,
 * waiters) and rt__* functions shared between runtime/ files. Nothing outside
 * runtime/ includes this file (tests/tools/check_layers.sh would flag it).
 */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/rt.h"

#define RT__MAX_PROCS RT_STATS_MAX_PROCS
#define RT__RUNQ_SIZE 256
#define RT__GUARD_SIZE ((size_t)16384) /* guard page(s) or red zone below each stack */

typedef struct rt__g rt__g_t;
typedef struct rt__m rt__m_t;
typedef struct rt__p rt__p_t;
typedef struct rt__timer rt__timer_t;

/* ---- spin locks (M-blocking; held for a few instructions, never across a park
 * except as the "unlock after switch" of rt__park) ---- */

void rt__spin_lock(_Atomic uint32_t *l);

static inline bool rt__spin_trylock(_Atomic uint32_t *l)
{
    uint32_t zero = 0;
    return atomic_load_explicit(l, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_strong_explicit(l, &zero, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void rt__spin_unlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* Relaxed counter bump by the single writer (plain load+store on x86, TSan-clean). */
#define RT__STAT_INC(field) RT__STAT_ADD(field, 1)
#define RT__STAT_ADD(field, n)                                                                     \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n),    \
                          memory_order_relaxed)
#define RT__LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* ---- context switch (ctx.c, ctx_*.S) ---- */

/* A switched-out context. amd64: sp, pc, rbp, and the G for a new G (ctx.c).
 * arm64: sp, pc, x19-x28, x29, d8-d15. */
typedef struct rt__ctx {
    uint64_t regs[22];
} rt__ctx_t;

/* Prepares `ctx` to start rt__g_entry(g) on the stack whose top is `sp`. */
void rt__ctx_make(rt__ctx_t *ctx, void *sp, rt__g_t *g);

/* ---- G ---- */

typedef enum rt__gstatus {
    RT__G_IDLE = 0, /* in a free list */
    RT__G_RUNNABLE,
    RT__G_RUNNING,
    RT__G_WAITING,
    RT__G_SYSCALL,
    RT__G_DEAD,
} rt__gstatus_t;

/*
 * A G lives at the top of its own stack slot (stack.c): spawning touches one
 * page for both. `ctx` is valid only while the G is not running.
 */
struct rt__g {
    rt__ctx_t ctx;
    uint64_t id;
    rt_go_fn *fn;
    void *arg;
    rt__m_t *m;       /* M running it, while RUNNING/SYSCALL */
    rt__m_t *lockedm; /* rt_lock_os_thread */
    uint32_t lock_count;
    _Atomic uint32_t status;
    rt__g_t *schedlink;  /* global run queue and free lists */
    rt__g_t *batch_next; /* rt__gbatchq_t: next batch, on a batch's first G */
    rt__g_t *batch_tail; /* rt__gbatchq_t: the batch's last G, on its first G */
    uint32_t batch_len;  /* rt__gbatchq_t: Gs in the batch, on its first G */
    char *stack_lo;      /* lowest usable byte; the guard/red zone is just below */
    char *stack_hi;      /* top of the usable stack (16-byte aligned) */
    uint8_t guarded;     /* 1: PROT_NONE guard; 0: red zone checked at switches */
    void *san_fiber;     /* TSan fiber */
    void *san_fake_stack;
    uint64_t canary; /* last field: the first thing an overflow from the slot above hits */
};

/* A FIFO of G batches: each batch is a chain through schedlink whose first
 * G carries batch_next and batch_len, so whole batches move in O(1) under a
 * lock instead of walking (and TLB-missing on) one G per page. */
typedef struct rt__gbatchq {
    rt__g_t *first, *last;
} rt__gbatchq_t;

/* ---- waiters: a parked G in a channel/mutex queue (Go's sudog) ---- */

typedef struct rt__wait {
    _Atomic uint32_t done; /* 0 waiting; 1 completed by an op; 2 deadline */
    rt__g_t *g;
    struct rt__waiter *winner;
} rt__wait_t;

typedef struct rt__waiter {
    struct rt__waiter *next, *prev;
    rt__wait_t *w;
    void *elem;
    rt_chan_t *ch;
    int case_index;
    bool queued;
    bool success; /* false: woken by close */
} rt__waiter_t;

typedef struct rt__waitq {
    rt__waiter_t *head, *tail;
} rt__waitq_t;

void rt__waitq_push(rt__waitq_t *q, rt__waiter_t *w);
void rt__waitq_remove(rt__waitq_t *q, rt__waiter_t *w);
/* Pops the first waiter whose wait it wins (CAS done 0->1), skipping others. */
rt__waiter_t *rt__waitq_claim(rt__waitq_t *q);

/* chan.c, for select.c */
bool rt__chan_send_blocked(rt_chan_t *ch);
bool rt__chan_recv_blocked(rt_chan_t *ch);
bool rt__chan_try_send_locked(rt_chan_t *ch, const void *elem, int *res, rt__g_t **partner);
bool rt__chan_try_recv_locked(rt_chan_t *ch, void *elem, int *res, rt__g_t **partner);
void rt__chan_lock(rt_chan_t *ch);
void rt__chan_unlock(rt_chan_t *ch);
rt__waitq_t *rt__chan_queue(rt_chan_t *ch, bool send);

/* ---- timers (time.c): per-P 4-ary heaps ---- */

typedef void rt__timer_fn(rt__timer_t *t, void *arg);

/* A heap slot carries its timer's `when`, so sifting compares without
 * touching the timers themselves (often in other Gs' stacks: a cache and TLB
 * miss each, which made the heap a visible cost with thousands of deadlines). */
typedef struct rt__timer_slot {
    rt_time_t when;
    rt__timer_t *t;
} rt__timer_slot_t;

struct rt__timer {
    rt_time_t when;
    rt__timer_fn *fn;
    void *arg;
    rt__p_t *p;               /* heap it is in, under p->timers_lock */
    int32_t index;            /* heap index, -1 when not queued */
    _Atomic uint32_t running; /* calls of fn executing (stop waits for none) */
};

/* Timers start zeroed (index -1 when not queued) and are not queued twice. */
void rt__timer_start(rt__timer_t *t, rt_time_t when, rt__timer_fn *fn, void *arg);
/* Stops `t`; returns once its fn cannot be running. True if it had not fired. */
bool rt__timer_stop(rt__timer_t *t);
/* Moves a queued timer to `when`, in the heap it is in; false (nothing done)
 * if it is not queued (never started, fired, or stopped). */
bool rt__timer_reset(rt__timer_t *t, rt_time_t when);
/* Runs the expired timers of `p`; returns the next `when` (RT_FOREVER if none). */
rt_time_t rt__timers_run(rt__p_t *p, rt_time_t now);
rt_time_t rt__timers_next(void);
/* Timer callback: completes the wait `arg` (an rt__wait_t) with "deadline". */
void rt__wait_deadline(rt__timer_t *t, void *arg);

/* ---- P ---- */

typedef enum rt__pstatus {
    RT__P_IDLE = 0,
    RT__P_RUNNING,
    RT__P_SYSCALL,
    RT__P_STOPPED,
} rt__pstatus_t;

struct rt__p {
    int id;
    _Atomic uint32_t status;
    rt__m_t *m;
    rt__p_t *link; /* idle list */

    /* Local run queue: owner writes tail, anyone CASes head (runq.c). */
    _Atomic uint32_t runq_head __attribute__((aligned(RT_CACHE_LINE)));
    _Atomic uint32_t runq_tail;
    rt__g_t *_Atomic runnext;
    rt__g_t *_Atomic runq[RT__RUNQ_SIZE];

    /* Owner-only state. */
    _Atomic uint32_t schedtick __attribute__((aligned(RT_CACHE_LINE)));
    _Atomic uint64_t curg_id;  /* for sysmon's reports */
    uint32_t global_countdown; /* look at the global queue when it hits 0 */
    rt__g_t *gfree;
    int ngfree;
    uint64_t goid_next, goid_end;
    _Atomic int64_t syscall_when;
    _Atomic bool hog; /* sysmon saw a G hold this P too long: runnext is stealable */

    /* Timers: any M may run them (under timers_lock). */
    _Atomic uint32_t timers_lock __attribute__((aligned(RT_CACHE_LINE)));
    rt__timer_slot_t *timers;
    int ntimers, timers_cap;
    _Atomic int64_t timer0; /* earliest when, RT_FOREVER if none */

    /* Statistics, single writer (the owner), relaxed. */
    struct {
        _Atomic uint64_t spawns, exits, steals, stolen_gs, parks, yields, timer_fires, schedules,
            netpoll_wakeups;
    } st __attribute__((aligned(RT_CACHE_LINE)));

    /* sysmon */
    uint32_t mon_tick;
    int64_t mon_when;
    uint64_t mon_reported;
};

/* ---- M ---- */

typedef enum rt__after {
    RT__AFTER_NONE = 0,
    RT__AFTER_PARK,   /* prev becomes WAITING; then unlock / call fn */
    RT__AFTER_YIELD,  /* prev goes to the local run queue tail */
    RT__AFTER_EXIT,   /* prev is freed */
    RT__AFTER_GLOBAL, /* prev goes to the global run queue (no P after a syscall) */
} rt__after_t;

/* Park hook: runs after the parking G's context is saved. Returning false
 * aborts the park (the G is made runnable again). */
typedef bool rt__park_fn(rt__g_t *g, void *arg);

struct rt__m {
    int id;
    pid_t tid;
    pthread_t thread;
    rt__ctx_t g0ctx; /* the scheduler loop on the thread's own stack */
    rt__g_t *curg;
    rt__p_t *p;
    rt__p_t *nextp; /* handed over by whoever woke us */
    rt__m_t *link;  /* idle list */
    _Atomic uint32_t park_futex;
    bool spinning;
    rt__g_t *lockedg;
    rt__g_t *nextg; /* locked G handed over with nextp */
    bool in_syscall;

    /* Deferred action run right after a switch (Go's park_m / mcall). */
    rt__after_t after;
    rt__g_t *after_g;
    _Atomic uint32_t *after_unlock;
    rt__park_fn *after_fn;
    void *after_arg;

    uint64_t rand;
    void *_Atomic hazard; /* rt_value_load */
    void *altstack;
    char *g0_stack_lo;
    size_t g0_stack_size;
    void *san_fiber;
    void *san_fake_stack;
};

/* ---- the scheduler ---- */

typedef struct rt__sched {
    _Atomic uint32_t lock;
    rt__gbatchq_t runq;         /* the global run queue */
    _Atomic uint32_t runq_size; /* Gs in it; read without the lock */
    rt__p_t *pidle;
    _Atomic uint32_t npidle;
    rt__m_t *midle;
    _Atomic uint32_t nmidle;
    _Atomic uint32_t nmspinning;
    rt__gbatchq_t gfree; /* global G free list, under gfree_lock */
    _Atomic int ngfree;  /* Gs in it; also peeked without the lock */
    _Atomic uint32_t gfree_lock;

    int nprocs;
    rt__p_t *allp[RT__MAX_PROCS];
    rt__m_t *_Atomic allm[1024]; /* published with a release store; NULL while being made */
    _Atomic uint32_t nm;
    rt__m_t *m0;

    _Atomic bool running;
    _Atomic bool stopping;
    _Atomic uint64_t goidgen;
    int64_t hog_ns;
    size_t stack_size;
    rt_stack_guard_t guard;
    uint64_t seed;

    /* netpoll */
    int epfd, wakefd;
    _Atomic bool polling;       /* an M is blocked in epoll_wait */
    _Atomic int64_t poll_until; /* its deadline */
    _Atomic int64_t last_poll;  /* coarse clock (rt__coarse_now): compare with the same */
    _Atomic uint32_t poll_wakeup_pending;
    _Atomic uint64_t netpoll_waits;
    _Atomic uint64_t netpoll_wakeups;

    /* sysmon */
    pthread_t sysmon;
    _Atomic uint32_t sysmon_futex;
    _Atomic bool sysmon_sleeping;
    _Atomic bool sysmon_idle; /* asleep until a P leaves the idle list (sysmon.c) */
    _Atomic uint64_t hogs_reported, handoffs, m_parks, discarded;
    _Atomic uint64_t spawns_nop; /* Gs created by threads without a P */
} rt__sched_t;

extern rt__sched_t rt__sched;

/* tls.c: the only thread-local, the current M; see there why only rt__getm reads it. */
#if defined(__x86_64__)
#define RT__GETM_INLINE 1
extern _Thread_local rt__m_t *rt__current_m __attribute__((tls_model("initial-exec")));

static inline rt__m_t *rt__getm(void)
{
    rt__m_t *m;
    __asm__ volatile("movq rt__current_m@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(m)
                     :
                     : "memory");
    return m;
}
#else
#define RT__GETM_INLINE 0
RT_NOINLINE rt__m_t *rt__getm(void);
#endif
RT_NOINLINE void rt__setm(rt__m_t *m);

static inline rt__g_t *rt__getg(void)
{
    rt__m_t *m = rt__getm();
    return m ? m->curg : NULL;
}

/* proc.c */
void rt__ready(rt__g_t *g, bool next);
void rt__ready_list(rt__g_t *head); /* linked through schedlink; from netpoll/sysmon */
/* Parks the current G. After its context is saved, `fn(g, arg)` (if any) is
 * called, then `unlock` (if any) is released. May park. */
void rt__park(_Atomic uint32_t *unlock, rt__park_fn *fn, void *arg);
void rt__wakep(void);
void rt__g_entry(rt__g_t *g);
/* A new RUNNABLE G, not queued; works on g0 and on threads without a P. */
rt__g_t *rt__newg_anywhere(rt_go_fn *fn, void *arg);
void rt__netfd_read_begin(rt_netfd_t *nfd);
uint64_t rt__fastrand(void);
void rt__globrunq_put_batch(rt__g_t *head, rt__g_t *tail, uint32_t n);
void rt__handoffp(rt__p_t *p);
void rt__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns);
void rt__futex_wake(_Atomic uint32_t *addr, int n);
/* True once `deadline` has passed; cheap while it is far away (proc.c). */
bool rt__past(rt_time_t deadline);
/* The monotonic clock as of the last tick (a few ms behind, cheap to read). */
rt_time_t rt__coarse_now(void);

/* runq.c */
uint32_t rt__runq_len(rt__p_t *p);
rt__g_t *rt__runq_steal(rt__p_t *p, rt__p_t *victim, bool steal_next);
bool rt__runq_empty(rt__p_t *p);

/* stack.c */
void rt__stacks_init(size_t stack_size, rt_stack_guard_t guard);
void rt__stacks_shutdown(void (*each_live)(rt__g_t *g));
rt__g_t *rt__stack_alloc(void); /* a fresh G at the top of a new slot */
/* Pre-faults up to `budget` upcoming slots (idle Ms); returns how many. */
int rt__stack_prefault(int budget);
void rt__stack_check(rt__g_t *g);    /* red zone check at switch-out */
void rt__stack_check_in(rt__g_t *g); /* red zone: was g overwritten from above? */
uint64_t rt__stack_canary(const rt__g_t *g);
void rt__stack_stats(rt_stats_t *out, bool resident);
bool rt__stack_overflow_addr(const void *addr, uint64_t *gid);
void rt__signals_init(void);
void rt__altstack_init(rt__m_t *m);
void rt__altstack_free(rt__m_t *m);
void *rt__altstack_new(void); /* for threads that are not Ms (sysmon) */
void rt__altstack_release(void *mem);

/* ctx.c: switch with sanitizer annotations */
/* Switches from `from` to `to` on `m` (NULL = the M's own g0 context). When
 * it returns in a G, that G may be on another M: it returns the M it now
 * runs on (the one that switched to it). */
rt__m_t *rt__switch(rt__m_t *m, rt__g_t *from, rt__g_t *to, bool from_dying);
void rt__san_g_started(void);
void rt__san_g_create(rt__g_t *g);
void rt__san_g_reuse(rt__g_t *g);
void rt__san_g_destroy(rt__g_t *g);
void rt__san_m_init(rt__m_t *m);

/* netpoll.c */
void rt__netpoll_init(void);
void rt__netpoll_shutdown(void);
/* Polls with `until` (RT_NOWAIT: non-blocking); returns readied Gs linked by schedlink. */
rt__g_t *rt__netpoll(rt_time_t until, uint32_t *count);
void rt__netpoll_break(void);
bool rt__netpoll_has_waiters(void);

/* sysmon.c */
void rt__sysmon_start(void);
void rt__sysmon_stop(void);
void rt__sysmon_kick(void);
/* acquirep: a P leaves the idle list; wakes sysmon if all Ps had been idle. */
void rt__sysmon_p_busy(void);

/* sys_linux.c: syscalls returning -errno (noinline: errno is per-thread) */
RT_NOINLINE ssize_t rt__sys_read(int fd, void *buf, size_t len);
RT_NOINLINE ssize_t rt__sys_write(int fd, const void *buf, size_t len);
struct iovec;
RT_NOINLINE ssize_t rt__sys_writev(int fd, const struct iovec *iov, int iovcnt);
RT_NOINLINE int rt__sys_accept4(int fd, struct sockaddr_storage *ss, int flags);
RT_NOINLINE int rt__sys_connect(int fd, const struct sockaddr *sa, socklen_t len);
RT_NOINLINE int rt__sys_socket(int domain, int type, int proto);
RT_NOINLINE int rt__sys_getsockopt_error(int fd);
RT_NOINLINE int rt__sys_epoll_wait(int epfd, void *events, int max, rt_time_t timeout_ns);
RT_NOINLINE pid_t rt__sys_gettid(void);

#include "runtime/runq.h"

#endif /* RT_INTERNAL_H */
