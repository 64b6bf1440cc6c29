/* SPDX-License-Identifier: MIT */
/*
 * rt.h - the public API of remora's Go-style M:N runtime: coroutines (G) run
 * by OS threads (M) holding processors (P), channels and select, timers, an
 * epoll netpoller, G-aware sync primitives and scheduler statistics.
 *
 * Conventions: errors are negative codes (RT_E* or negated errno); every call
 * that may block takes an absolute monotonic deadline (RT_NOWAIT never parks,
 * RT_FOREVER never times out); functions that may park their G say "May park."
 * and after such a call the G may run on another OS thread.
 */
#ifndef RT_RT_H
#define RT_RT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "runtime/base.h"

/* ---- errors ---- */

enum {
    RT_OK = 0,
    RT_EAGAIN = -EAGAIN,       /* not ready and the deadline was already past (select default) */
    RT_ETIMEDOUT = -ETIMEDOUT, /* the deadline passed while waiting */
    RT_ENOMEM = -ENOMEM,
    RT_EINVAL = -EINVAL,
    RT_ECLOSED = -10001, /* channel closed (or netfd closed while waiting) */
    RT_ESTATE = -10002,  /* call not allowed in this state (e.g. outside a G) */
};

/** Returns a static description of an RT_E* code or negated errno. */
const char *rt_strerror(int err);

/* ---- time ---- */

typedef int64_t rt_time_t; /* nanoseconds of CLOCK_MONOTONIC */
#define RT_NSEC ((int64_t)1)
#define RT_USEC ((int64_t)1000)
#define RT_MSEC ((int64_t)1000000)
#define RT_SEC ((int64_t)1000000000)
#define RT_NOWAIT ((rt_time_t)0)
#define RT_FOREVER ((rt_time_t)INT64_MAX)

/** Returns the monotonic clock in nanoseconds. */
rt_time_t rt_now(void);
/** Returns the absolute deadline `ns` nanoseconds from now (saturating). */
rt_time_t rt_deadline_in(int64_t ns);

/* ---- running the runtime ---- */

typedef void rt_go_fn(void *arg);

typedef enum rt_stack_guard {
    RT_GUARD_AUTO = 0, /* guard pages while the VMA budget lasts, then red zones */
    RT_GUARD_PAGES,    /* always a PROT_NONE guard page (costs 2 VMAs per stack) */
    RT_GUARD_REDZONE,  /* never a guard page: 1 VMA per 64 stacks, checked red zone */
} rt_stack_guard_t;

typedef struct rt_config {
    int procs;                /* Ps; 0 = one per online CPU (env REMORA_PROCS overrides 0) */
    size_t stack_size;        /* usable bytes per G stack; 0 = 64 KiB */
    rt_stack_guard_t guard;   /* see rt_stack_guard_t and runtime/README.md */
    int64_t hog_threshold_ns; /* report a G holding its P longer; 0 = 10 ms */
    uint64_t seed;            /* select/steal randomness; 0 = from the clock (env RT_SEED) */
} rt_config_t;

/**
 * Starts the runtime with `cfg` (NULL = defaults), runs `main_fn(arg)` as the
 * first G and returns when it returns, after stopping every thread. Gs still
 * parked at that point are discarded (counted in rt_stats_t.gs_discarded).
 * Restartable: may be called again after it returns. Not reentrant.
 * Returns RT_OK, or RT_ESTATE if already running.
 */
int rt_run(const rt_config_t *cfg, rt_go_fn *main_fn, void *arg);

/** Returns true if the caller is a G of the running runtime. */
bool rt_in_g(void);

/* ---- goroutines ---- */

/**
 * Spawns a G running `fn(arg)`. Returns RT_OK, or RT_ESTATE outside the
 * runtime; on failure `fn` never runs and the caller still owns `arg`.
 * May yield: when the caller's P already has a full run queue (256 Gs), the
 * caller lets them run before going on (spawn backpressure).
 */
RT_MUST_CHECK int rt_go(rt_go_fn *fn, void *arg);
/** Puts the current G at the back of the run queue and runs another one. May park. */
void rt_yield(void);
/** Ends the current G (like returning from its function). */
RT_NORETURN void rt_exit(void);
/** Returns the current G's id (1 = main G), or 0 outside a G. */
uint64_t rt_g_id(void);
/** Returns the index of the P the caller runs on (0..procs-1), or -1 outside a G. */
int rt_p_id(void);
/** Returns the number of Ps. */
int rt_procs(void);
/** Returns 64 random bits from the calling M's generator (cheap; not for cryptography). */
uint64_t rt_fastrand(void);
/** Pins the current G to its OS thread, nesting (LockOSThread); nothing else runs there. */
void rt_lock_os_thread(void);
void rt_unlock_os_thread(void);

/* ---- blocking calls ---- */

/**
 * Brackets a call that may block its OS thread (file I/O, getaddrinfo,
 * sleep(3)): the P is handed to another M while the call runs, and a P is
 * reacquired afterwards. May park (in leave).
 */
void rt_blocking_enter(void);
void rt_blocking_leave(void);

/* ---- channels ---- */

typedef struct rt_chan rt_chan_t;

/** Returns a new channel of `elem_size`-byte elements; `capacity` 0 is a rendezvous. Caller owns.
 */
rt_chan_t *rt_chan_new(size_t elem_size, size_t capacity);
/** Frees `ch`; no G may be blocked on it. NULL does nothing. */
void rt_chan_free(rt_chan_t *ch);
/**
 * Sends a copy of `elem`. Returns RT_OK; RT_ECLOSED if `ch` is closed (before
 * or while waiting: a reported error, never a crash); RT_EAGAIN if it could
 * not send and `deadline` was already past; RT_ETIMEDOUT if the deadline
 * passed while waiting. May park.
 */
int rt_chan_send(rt_chan_t *ch, const void *elem, rt_time_t deadline);
/**
 * Receives into `elem` (may be NULL to discard). Returns RT_OK; RT_ECLOSED
 * once `ch` is closed and drained (`elem` zeroed); RT_EAGAIN; RT_ETIMEDOUT.
 * May park.
 */
int rt_chan_recv(rt_chan_t *ch, void *elem, rt_time_t deadline);
/** Closes `ch`, waking every blocked sender (RT_ECLOSED) and receiver. RT_ECLOSED if closed. */
int rt_chan_close(rt_chan_t *ch);
size_t rt_chan_len(rt_chan_t *ch);
size_t rt_chan_cap(const rt_chan_t *ch);

typedef enum rt_case_op {
    RT_CASE_SEND = 0,
    RT_CASE_RECV = 1,
} rt_case_op_t;

typedef struct rt_case {
    rt_chan_t *ch;   /* NULL: the case is never ready (Go's nil channel) */
    rt_case_op_t op; /* send or receive */
    void *elem;      /* element to send, or buffer to receive into (may be NULL) */
    int result;      /* out: RT_OK or RT_ECLOSED for the chosen case */
} rt_case_t;

/**
 * Waits until one of `cases` can proceed and performs it; when several are
 * ready one is chosen uniformly at random. Returns the chosen index (its
 * `result` says RT_OK or RT_ECLOSED), RT_EAGAIN if none was ready and
 * `deadline` was already past (RT_NOWAIT is Go's `default:`), RT_ETIMEDOUT if
 * the deadline passed while waiting. At most 64 cases. May park.
 */
int rt_select(rt_case_t *cases, size_t ncases, rt_time_t deadline);

/* ---- timers ---- */

/** Parks the current G until `deadline`. May park. */
void rt_sleep_until(rt_time_t deadline);
/** Parks the current G for `ns` nanoseconds. May park. */
void rt_sleep(int64_t ns);

typedef struct rt_timer rt_timer_t;
/** Returns a timer whose channel (capacity 1, rt_time_t elements) receives the fire time at `when`.
 */
rt_timer_t *rt_timer_new(rt_time_t when);
/** Borrowed; valid until rt_timer_free. */
rt_chan_t *rt_timer_chan(rt_timer_t *t);
/** Stops `t` if still pending and frees it with its channel. NULL does nothing. */
void rt_timer_free(rt_timer_t *t);

/* ---- netpoller ---- */

typedef struct rt_netfd rt_netfd_t;

/** Registers `fd` with the netpoller (made non-blocking). Takes ownership of `fd` on success. */
RT_MUST_CHECK int rt_netfd_open(int fd, rt_netfd_t **out);
/** Closes the fd and wakes Gs waiting on it with RT_ECLOSED. NULL does nothing. */
void rt_netfd_close(rt_netfd_t *nfd);
int rt_netfd_fd(const rt_netfd_t *nfd);

/** Parses "127.0.0.1:80", "[::1]:80" or ":80" (any address) into `ss`. */
RT_MUST_CHECK int rt_sockaddr_parse(const char *hostport, struct sockaddr_storage *ss,
                                    socklen_t *len);
/** Opens a listening TCP socket (SO_REUSEADDR) on `addr`; port 0 picks one (see rt_netfd_port). */
RT_MUST_CHECK int rt_listen(const struct sockaddr *addr, socklen_t len, int backlog,
                            rt_netfd_t **out);
/** Returns the local port of `nfd`, or a negative error. */
int rt_netfd_port(const rt_netfd_t *nfd);
/** Accepts one connection (non-blocking, close-on-exec). May park. */
RT_MUST_CHECK int rt_accept(rt_netfd_t *lnfd, rt_netfd_t **out, struct sockaddr_storage *peer,
                            rt_time_t deadline);
/** Connects a new TCP socket to `addr`. Returns RT_OK, -ECONNREFUSED..., RT_ETIMEDOUT. May park. */
RT_MUST_CHECK int rt_connect(const struct sockaddr *addr, socklen_t len, rt_netfd_t **out,
                             rt_time_t deadline);
/** Reads up to `len` bytes: count, 0 at EOF, or negative (-ECONNRESET, RT_ETIMEDOUT, ...). May
 * park. */
ssize_t rt_read(rt_netfd_t *nfd, void *buf, size_t len, rt_time_t deadline);
/** Writes up to `len` bytes (at least 1 unless error). May park. */
ssize_t rt_write(rt_netfd_t *nfd, const void *buf, size_t len, rt_time_t deadline);
/**
 * Writes every byte of `iov[0..iovcnt)` (gathered: one syscall when the socket
 * takes them all) or fails. Updates `iov` as it goes. Returns the total or a
 * negative error. May park.
 */
ssize_t rt_writev_all(rt_netfd_t *nfd, struct iovec *iov, int iovcnt, rt_time_t deadline);
/** Writes all `len` bytes or fails. Returns `len` or a negative error. May park. */
ssize_t rt_write_all(rt_netfd_t *nfd, const void *buf, size_t len, rt_time_t deadline);
/**
 * Returns whether a read-readiness event (bytes, EOF or an error) arrived on
 * `nfd` since the last rt_read on it began, and no wait consumed it. After a
 * read that came back short (fewer bytes than asked), false means nothing new
 * is there, so the next read can start with rt_wait_readable instead of a
 * read that fails with EAGAIN; bytes left behind by a read that filled its
 * buffer are not reported (the netpoller is edge-triggered).
 */
bool rt_netfd_rd_event_pending(rt_netfd_t *nfd);
/** Parks until `nfd` is readable / writable. Returns RT_OK, RT_ETIMEDOUT, RT_EAGAIN, RT_ECLOSED. */
int rt_wait_readable(rt_netfd_t *nfd, rt_time_t deadline);
int rt_wait_writable(rt_netfd_t *nfd, rt_time_t deadline);

typedef void rt_ready_fn(void *arg, int result);
/**
 * Spawns a G running `fn(arg, result)` once `nfd` is readable (result RT_OK),
 * `deadline` passes (RT_ETIMEDOUT) or `nfd` is closed (RT_ECLOSED), holding
 * no G and no stack meanwhile: what an idle keep-alive connection should cost.
 * At most one reader may wait on `nfd` at a time. Returns RT_OK, or an error
 * (then `fn` never runs and the caller still owns `arg`).
 */
RT_MUST_CHECK int rt_go_when_readable(rt_netfd_t *nfd, rt_ready_fn *fn, void *arg,
                                      rt_time_t deadline);

/* ---- sync (embeddable; the zero value is ready to use) ---- */

typedef struct rt_mutex {
    _Atomic uint32_t _state; /* 0 unlocked, 1 locked, 2 locked with waiters */
    _Atomic uint32_t _lock;  /* spin lock over the waiter list */
    void *_head, *_tail;
} rt_mutex_t;

/** Locks `mu`, parking the G (not the thread) while it is held elsewhere. May park. */
void rt_mutex_lock(rt_mutex_t *mu);
bool rt_mutex_trylock(rt_mutex_t *mu);
void rt_mutex_unlock(rt_mutex_t *mu);

typedef struct rt_waitgroup {
    _Atomic int64_t _count;
    _Atomic uint32_t _lock;
    void *_head;
} rt_waitgroup_t;

void rt_wg_add(rt_waitgroup_t *wg, int64_t delta);
void rt_wg_done(rt_waitgroup_t *wg);
/** Parks until the counter is zero. May park. */
void rt_wg_wait(rt_waitgroup_t *wg);

typedef struct rt_once {
    _Atomic uint32_t _done;
    rt_mutex_t _mu;
} rt_once_t;

/** Runs `fn(arg)` exactly once across all callers; others wait for it to finish. May park. */
void rt_once_do(rt_once_t *once, rt_go_fn *fn, void *arg);

/* Per-P object pool (sync.Pool idea): fixed-size objects cached per P. */
typedef struct rt_pool rt_pool_t;
/** Returns a pool of `obj_size`-byte objects. Caller owns. */
rt_pool_t *rt_pool_new(size_t obj_size);
/** Returns an object (recycled or freshly zeroed); never NULL. Caller owns it. */
void *rt_pool_get(rt_pool_t *pool);
/** Returns `obj` to `pool`. Takes ownership of `obj`. */
void rt_pool_put(rt_pool_t *pool, void *obj);
/** Frees the pool and every cached object. NULL does nothing. */
void rt_pool_free(rt_pool_t *pool);

/*
 * Atomically swapped pointer with safe reclamation (atomic.Value idea) for
 * read-mostly data such as config snapshots: readers hold the value they
 * loaded for as long as they like; a store publishes a new one and the old
 * one is released (through `release`) when its last holder lets go.
 */
typedef struct rt_value {
    void *_Atomic _node;
    void (*_release)(void *ptr);
} rt_value_t;

typedef struct rt_value_hold {
    void *_node;
} rt_value_hold_t;

/** Initialises `v` holding `ptr` (may be NULL); `release` frees a retired value. Takes ownership.
 */
void rt_value_init(rt_value_t *v, void *ptr, void (*release)(void *ptr));
/** Stores `ptr` (takes ownership); the previous value is released when no longer held. */
void rt_value_store(rt_value_t *v, void *ptr);
/** Returns the current value and holds it in `hold` until rt_value_drop. Never parks. */
void *rt_value_load(rt_value_t *v, rt_value_hold_t *hold);
void rt_value_drop(rt_value_hold_t *hold);
/** Releases the current value; no holds may remain. */
void rt_value_destroy(rt_value_t *v);

/* ---- statistics ---- */

#define RT_STATS_MAX_PROCS 64

typedef struct rt_stats {
    /* Gs by state */
    uint64_t gs_live, gs_runnable, gs_running, gs_waiting, gs_syscall;
    uint64_t gs_discarded; /* parked Gs dropped when rt_run returned */
    /* counters since rt_run started */
    uint64_t spawns, steals, stolen_gs, parks, yields, netpoll_waits, netpoll_wakeups, timer_fires,
        hogs_reported, handoffs, m_parks;
    /* memory */
    uint64_t stacks, stacks_guarded, stack_bytes_mapped, stack_bytes_resident;
    /* threads and queues */
    uint32_t procs, ms, ms_idle, ps_idle;
    uint64_t runq_global, runq_local_total;
    uint32_t runq_local[RT_STATS_MAX_PROCS];
    uint64_t p_schedules[RT_STATS_MAX_PROCS]; /* Gs run by each P */
} rt_stats_t;

/** Fills `out` from per-P counters summed on read; cheap (no stop-the-world). */
void rt_stats_read(rt_stats_t *out);
/** Like rt_stats_read, plus stack_bytes_resident measured with mincore(2) (O(stacks)). */
void rt_stats_read_resident(rt_stats_t *out);
/** Writes `s` as one JSON object into `buf`; returns the length (snprintf semantics). */
int rt_stats_json(const rt_stats_t *s, char *buf, size_t size);

#endif /* RT_RT_H */
