/* SPDX-License-Identifier: MIT */
/*
 * sysmon.c - the monitor thread (Go's sysmon). It runs without a P, wakes
 * every 20 us while an M is in a blocking call and otherwise backs off to
 * 5 ms (waking at 50 kHz beside busy Ms would steal their CPUs), and:
 *   - retakes the P of an M stuck in a blocking call for more than 20 us and
 *     hands it to another M, so the rest of that P's queue keeps running;
 *   - reports a G that has held its P for more than the hog threshold (10 ms)
 *     without a scheduling point, marks the P so that thieves may also take
 *     its runnext G, and wakes an idle M to steal the P's queue. The G itself
 *     cannot be preempted (see proc.c: preemption is cooperative);
 *   - polls the network if nobody has for 10 ms, so readiness is not starved
 *     by Ps that always have local work.
 * When no G has run for 20 ms and every P is idle, none of that can happen:
 * it then sleeps until acquirep takes a P off the idle list, so an idle
 * process is not woken 200 times a second. (Under light load Ps go idle
 * between requests; the 20 ms keep most wake-ups from kicking it.)
 */
#include <stdlib.h>

#include "runtime/internal.h"

#define RETAKE_NS (20 * RT_USEC)
#define MIN_DELAY (20 * RT_USEC)
#define MAX_DELAY (5 * RT_MSEC)
#define POLL_EVERY (10 * RT_MSEC)
#define QUIET_BEFORE_SLEEP (20 * RT_MSEC)

static _Atomic bool sysmon_stop_flag;

static bool retake(rt__p_t *p, rt_time_t now)
{
    uint32_t s = atomic_load(&p->status);
    if (s == RT__P_SYSCALL) {
        if (now - atomic_load(&p->syscall_when) < RETAKE_NS)
            return true;
        uint32_t expect = RT__P_SYSCALL;
        if (atomic_compare_exchange_strong(&p->status, &expect, RT__P_STOPPED))
            rt__handoffp(p);
        return true;
    }
    if (s != RT__P_RUNNING) {
        atomic_store_explicit(&p->hog, false, memory_order_relaxed);
        return false;
    }
    uint32_t tick = atomic_load_explicit(&p->schedtick, memory_order_relaxed);
    bool in_g = atomic_load_explicit(&p->curg_id, memory_order_relaxed) != 0;
    if (tick != p->mon_tick || p->mon_when == 0 || !in_g) {
        p->mon_tick = tick;
        p->mon_when = now;
        atomic_store_explicit(&p->hog, false, memory_order_relaxed);
        return false;
    }
    if (now - p->mon_when < rt__sched.hog_ns)
        return false; /* watching for a hog needs no fast polling */
    if (p->mon_reported != (uint64_t)tick + 1) {
        p->mon_reported = (uint64_t)tick + 1;
        atomic_fetch_add(&rt__sched.hogs_reported, 1);
        atomic_store_explicit(&p->hog, true, memory_order_relaxed);
        rt_log(RT_LOG_WARN,
               "runtime: G %llu has held P %d for %lld ms without a scheduling point "
               "(scheduling is cooperative: park, do I/O or call rt_yield); "
               "moving the rest of P %d's queue to other Ps",
               (unsigned long long)atomic_load_explicit(&p->curg_id, memory_order_relaxed), p->id,
               (long long)((now - p->mon_when) / RT_MSEC), p->id);
    }
    if (!rt__runq_empty(p))
        rt__wakep();
    return false;
}

static bool all_ps_idle(void)
{
    for (int i = 0; i < rt__sched.nprocs; i++) {
        if (atomic_load(&rt__sched.allp[i]->status) != RT__P_IDLE)
            return false;
    }
    return true;
}

/* Schedules so far, all Ps: unchanged from one round to the next, no G ran. */
static uint64_t schedticks(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < rt__sched.nprocs; i++)
        sum += atomic_load_explicit(&rt__sched.allp[i]->schedtick, memory_order_relaxed);
    return sum;
}

/* The sleep before the next round of a quiet sysmon: until woken (-1) if
 * every P is idle, else `delay`. sysmon_idle is stored before the statuses
 * are read, and acquirep stores a status before it reads sysmon_idle (all
 * seq_cst): either sysmon sees the busy P, or acquirep sees sysmon_idle and
 * wakes it. */
static int64_t next_sleep(int64_t delay)
{
    atomic_store(&rt__sched.sysmon_idle, true);
    if (all_ps_idle())
        return -1;
    atomic_store(&rt__sched.sysmon_idle, false);
    return delay;
}

static void *sysmon_main(void *arg)
{
    (void)arg;
    void *altstack = rt__altstack_new();
    int64_t delay = MIN_DELAY;
    int idle_rounds = 0;
    uint64_t ticks = 0;
    rt_time_t quiet_since = rt_now();
    bool quiet = false;
    while (!atomic_load(&sysmon_stop_flag)) {
        atomic_store(&rt__sched.sysmon_sleeping, true);
        rt__futex_wait(&rt__sched.sysmon_futex, 0, quiet ? next_sleep(delay) : delay);
        atomic_store(&rt__sched.sysmon_sleeping, false);
        atomic_store(&rt__sched.sysmon_idle, false);
        atomic_store(&rt__sched.sysmon_futex, 0);
        if (atomic_load(&sysmon_stop_flag) || atomic_load(&rt__sched.stopping))
            break;
        rt_time_t now = rt_now();
        uint64_t t = schedticks();
        if (t != ticks || !all_ps_idle()) {
            ticks = t;
            quiet_since = now;
        }
        quiet = now - quiet_since >= QUIET_BEFORE_SLEEP;
        bool busy = false;
        for (int i = 0; i < rt__sched.nprocs; i++)
            busy |= retake(rt__sched.allp[i], now);
        if (rt__netpoll_has_waiters() && !atomic_load(&rt__sched.polling) &&
            rt__coarse_now() - atomic_load(&rt__sched.last_poll) > POLL_EVERY) {
            uint32_t cnt = 0;
            rt__ready_list(rt__netpoll(RT_NOWAIT, &cnt));
        }
        if (busy) {
            delay = MIN_DELAY;
            idle_rounds = 0;
        } else if (++idle_rounds > 50 && delay < MAX_DELAY) {
            delay *= 2;
        }
    }
    rt__altstack_release(altstack);
    return NULL;
}

void rt__sysmon_start(void)
{
    atomic_store(&sysmon_stop_flag, false);
    RT_CHECK(pthread_create(&rt__sched.sysmon, NULL, sysmon_main, NULL) == 0,
             "cannot start sysmon");
    pthread_setname_np(rt__sched.sysmon, "rt-sysmon"); /* top -H, /proc/PID/task/TID/comm */
}

void rt__sysmon_kick(void)
{
    if (atomic_load_explicit(&rt__sched.sysmon_sleeping, memory_order_relaxed)) {
        atomic_store(&rt__sched.sysmon_futex, 1);
        rt__futex_wake(&rt__sched.sysmon_futex, 1);
    }
}

void rt__sysmon_p_busy(void)
{
    if (RT_UNLIKELY(atomic_load(&rt__sched.sysmon_idle)))
        rt__sysmon_kick();
}

void rt__sysmon_stop(void)
{
    atomic_store(&sysmon_stop_flag, true);
    atomic_store(&rt__sched.sysmon_futex, 1);
    rt__futex_wake(&rt__sched.sysmon_futex, 1);
    pthread_join(rt__sched.sysmon, NULL);
}
