/* SPDX-License-Identifier: MIT */
/*
 * stats.c - scheduler statistics: per-P single-writer counters and global
 * atomics summed on read, with no stop-the-world. G counts by state are
 * derived (live = spawned - exited; runnable = queued) rather than kept per
 * transition, which would put shared writes on every switch.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/internal.h"

static void read_stats(rt_stats_t *out, bool resident)
{
    memset(out, 0, sizeof(*out));
    out->gs_discarded = RT__LOAD(rt__sched.discarded);
    int n = atomic_load(&rt__sched.running) ? rt__sched.nprocs : 0;
    uint64_t exits = 0;
    for (int i = 0; i < n; i++) {
        rt__p_t *p = rt__sched.allp[i];
        out->spawns += RT__LOAD(p->st.spawns);
        exits += RT__LOAD(p->st.exits);
        out->steals += RT__LOAD(p->st.steals);
        out->stolen_gs += RT__LOAD(p->st.stolen_gs);
        out->parks += RT__LOAD(p->st.parks);
        out->yields += RT__LOAD(p->st.yields);
        out->timer_fires += RT__LOAD(p->st.timer_fires);
        uint32_t q = rt__runq_len(p);
        out->runq_local[i] = q;
        out->runq_local_total += q;
        out->p_schedules[i] = RT__LOAD(p->schedtick);
        uint32_t s = RT__LOAD(p->status);
        if (s == RT__P_RUNNING)
            out->gs_running++;
        else if (s == RT__P_SYSCALL)
            out->gs_syscall++;
    }
    out->spawns += RT__LOAD(rt__sched.spawns_nop);
    out->gs_live = out->spawns > exits ? out->spawns - exits : 0;
    out->runq_global = RT__LOAD(rt__sched.runq_size);
    out->gs_runnable = out->runq_global + out->runq_local_total;
    uint64_t busy = out->gs_runnable + out->gs_running + out->gs_syscall;
    out->gs_waiting = out->gs_live > busy ? out->gs_live - busy : 0;
    out->netpoll_waits = RT__LOAD(rt__sched.netpoll_waits);
    out->netpoll_wakeups = RT__LOAD(rt__sched.netpoll_wakeups);
    out->hogs_reported = RT__LOAD(rt__sched.hogs_reported);
    out->handoffs = RT__LOAD(rt__sched.handoffs);
    out->m_parks = RT__LOAD(rt__sched.m_parks);
    out->procs = (uint32_t)n;
    out->ms = RT__LOAD(rt__sched.nm);
    out->ms_idle = RT__LOAD(rt__sched.nmidle);
    out->ps_idle = RT__LOAD(rt__sched.npidle);
    if (n > 0)
        rt__stack_stats(out, resident);
}

void rt_stats_read(rt_stats_t *out)
{
    read_stats(out, false);
}

void rt_stats_read_resident(rt_stats_t *out)
{
    read_stats(out, true);
}

int rt_stats_json(const rt_stats_t *s, char *buf, size_t size)
{
    return snprintf(buf, size,
                    "{\"gs\":{\"live\":%llu,\"runnable\":%llu,\"running\":%llu,\"waiting\":%llu,"
                    "\"syscall\":%llu},\"spawns\":%llu,\"steals\":%llu,\"stolen_gs\":%llu,"
                    "\"parks\":%llu,\"yields\":%llu,\"netpoll_waits\":%llu,"
                    "\"netpoll_wakeups\":%llu,\"timer_fires\":%llu,\"hogs_reported\":%llu,"
                    "\"handoffs\":%llu,\"m_parks\":%llu,\"stacks\":%llu,\"stacks_guarded\":%llu,"
                    "\"stack_bytes_mapped\":%llu,\"stack_bytes_resident\":%llu,\"procs\":%u,"
                    "\"ms\":%u,\"ms_idle\":%u,\"ps_idle\":%u,\"runq_global\":%llu,"
                    "\"runq_local\":%llu}",
                    (unsigned long long)s->gs_live, (unsigned long long)s->gs_runnable,
                    (unsigned long long)s->gs_running, (unsigned long long)s->gs_waiting,
                    (unsigned long long)s->gs_syscall, (unsigned long long)s->spawns,
                    (unsigned long long)s->steals, (unsigned long long)s->stolen_gs,
                    (unsigned long long)s->parks, (unsigned long long)s->yields,
                    (unsigned long long)s->netpoll_waits, (unsigned long long)s->netpoll_wakeups,
                    (unsigned long long)s->timer_fires, (unsigned long long)s->hogs_reported,
                    (unsigned long long)s->handoffs, (unsigned long long)s->m_parks,
                    (unsigned long long)s->stacks, (unsigned long long)s->stacks_guarded,
                    (unsigned long long)s->stack_bytes_mapped,
                    (unsigned long long)s->stack_bytes_resident, s->procs, s->ms, s->ms_idle,
                    s->ps_idle, (unsigned long long)s->runq_global,
                    (unsigned long long)s->runq_local_total);
}

const char *rt_strerror(int err)
{
    switch (err) {
    case RT_OK:
        return "ok";
    case RT_ECLOSED:
        return "closed";
    case RT_ESTATE:
        return "not allowed in this state";
    default:
        return err < 0 ? strerror(-err) : "unknown";
    }
}
