/* SPDX-License-Identifier: MIT */
/*
 * th_stall.c - the stall witness of th_stall.h: threads that sleep 2 ms in
 * a loop and keep the largest overshoot. A witness thread does almost no
 * work, so the kernel wakes it at once unless the CPU (or the whole VM) is
 * unavailable: its overshoot is what the machine, not the code under test,
 * cost a wall-clock measurement.
 */
#include "tests/support/th_stall.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "runtime/rt.h"

#define TICK_NS 2000000L
#define MAX_WITNESSES 64

typedef struct witness {
    pthread_t thread;
    int cpu;
    int64_t worst_ns;
    struct th_stall_watch *watch;
} witness_t;

struct th_stall_watch {
    atomic_bool stop;
    int n;
    witness_t w[MAX_WITNESSES];
};

static void *witness_main(void *arg)
{
    witness_t *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set); /* best effort */
    /*
     * Real-time priority, where allowed (root): the witness then preempts the
     * code under test at once, so a busy runtime does not show as a stall.
     * Without it the witness still sees a machine that stopped, but also the
     * scheduler's latency for a normal thread (a few ms beside busy Ms).
     */
    struct sched_param prio = {.sched_priority = 1};
    (void)pthread_setschedparam(pthread_self(), SCHED_FIFO, &prio);
    const struct timespec tick = {0, TICK_NS};
    while (!atomic_load(&w->watch->stop)) {
        rt_time_t t0 = rt_now(); /* CLOCK_MONOTONIC; needs no runtime */
        nanosleep(&tick, NULL);
        int64_t late = rt_now() - t0 - TICK_NS;
        if (late > w->worst_ns) {
            w->worst_ns = late;
        }
    }
    return NULL;
}

th_stall_watch_t *th_stall_watch_start(void)
{
    th_stall_watch_t *watch = calloc(1, sizeof(*watch));
    ck_assert_ptr_nonnull(watch);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    watch->n = cpus < 1 ? 1 : cpus > MAX_WITNESSES ? MAX_WITNESSES : (int)cpus;
    for (int i = 0; i < watch->n; i++) {
        watch->w[i].cpu = i;
        watch->w[i].watch = watch;
        ck_assert_int_eq(pthread_create(&watch->w[i].thread, NULL, witness_main, &watch->w[i]), 0);
    }
    return watch;
}

int64_t th_stall_watch_stop(th_stall_watch_t *watch)
{
    atomic_store(&watch->stop, true);
    int64_t worst = 0;
    for (int i = 0; i < watch->n; i++) {
        pthread_join(watch->w[i].thread, NULL);
        if (watch->w[i].worst_ns > worst) {
            worst = watch->w[i].worst_ns;
        }
    }
    free(watch);
    return worst;
}
