/* SPDX-License-Identifier: MIT */
/*
 * th.c - test helpers: th_rt_run (the runtime started inside a forked Check
 * test, with a printed seed), sanitizer scaling, bounded waits built from
 * channels, and utilities. Shared by every runner under tests/unit/.
 */
#include "tests/support/th.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

static uint64_t run_seed;

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

bool th_tsan(void)
{
#ifdef REMORA_TSAN
    return true;
#else
    return env_flag("REMORA_TSAN");
#endif
}

bool th_asan(void)
{
#ifdef REMORA_ASAN
    return true;
#else
    return env_flag("REMORA_ASAN");
#endif
}

long th_scaled(long n)
{
    long s = n;
    if (th_tsan()) {
        s = n / 10;
    } else if (th_asan()) {
        s = n / 4;
    }
    return s < 1 ? 1 : s;
}

long th_scaled_gs(long n)
{
    long s = th_scaled(n);
    /* TSan gives each G a fiber, and dies past 8128 threads and fibers. */
    if (th_tsan() && s > TH_TSAN_MAX_LIVE_GS) {
        s = TH_TSAN_MAX_LIVE_GS;
    }
    return s;
}

int64_t th_slack(int64_t ns)
{
    long factor = 1;
    const char *mult = getenv("CK_TIMEOUT_MULTIPLIER");
    if (mult != NULL && atol(mult) > factor) {
        factor = atol(mult);
    }
    if (th_tsan() && factor < 8) {
        factor = 8;
    } else if (th_asan() && factor < 4) {
        factor = 4;
    }
    return ns * factor;
}

pid_t th_gettid(void)
{
    return gettid();
}

uint64_t th_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t th_rand_init(uint64_t stream)
{
    uint64_t s = run_seed ^ (stream * UINT64_C(0xd1b54a32d192ed03));
    return th_rand(&s);
}

static uint64_t pick_seed(void)
{
    const char *env = getenv("RT_SEED");
    if (env != NULL && env[0] != '\0') {
        return strtoull(env, NULL, 0);
    }
    uint64_t s = (uint64_t)rt_now() ^ ((uint64_t)getpid() << 32);
    s = th_rand(&s);
    return s == 0 ? 1 : s;
}

void th_rt_run_cfg(const rt_config_t *cfg, rt_go_fn *fn, void *arg)
{
    rt_config_t c = *cfg;
    if (c.seed == 0) {
        c.seed = pick_seed();
    }
    run_seed = c.seed;
    /* Printed before running: ctest --output-on-failure shows it only when the test fails. */
    fprintf(stderr, "th_rt_run: RT_SEED=%" PRIu64 " procs=%d guard=%d\n", c.seed, c.procs,
            (int)c.guard);
    fflush(stderr);
    int rc = rt_run(&c, fn, arg);
    ck_assert_msg(rc == RT_OK, "rt_run returned %d (%s) with RT_SEED=%" PRIu64, rc, rt_strerror(rc),
                  c.seed);
    rt_stats_t st;
    memset(&st, 0, sizeof(st));
    rt_stats_read(&st);
    ck_assert_msg(st.gs_discarded == 0,
                  "rt_run discarded %" PRIu64 " parked Gs (leaked by the test?) RT_SEED=%" PRIu64,
                  st.gs_discarded, c.seed);
}

void th_rt_run(rt_go_fn *fn, void *arg, int procs)
{
    rt_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.procs = procs;
    th_rt_run_cfg(&cfg, fn, arg);
}

uint64_t th_seed(void)
{
    return run_seed;
}

void th_go(rt_go_fn *fn, void *arg)
{
    int rc = rt_go(fn, arg);
    if (rc != RT_OK) {
        /* Not ck_assert: each passing one writes a mark to Check's log (slow in hot loops). */
        ck_abort_msg("rt_go returned %d (%s)", rc, rt_strerror(rc));
    }
}

typedef struct wg_waiter {
    rt_waitgroup_t *wg;
    rt_chan_t *done;
} wg_waiter_t;

static void wg_waiter_main(void *arg)
{
    wg_waiter_t *w = arg;
    rt_wg_wait(w->wg);
    char token = 1;
    (void)rt_chan_send(w->done, &token, RT_NOWAIT); /* capacity 1: never blocks */
}

int th_wg_wait_until(rt_waitgroup_t *wg, rt_time_t deadline)
{
    /* Heap state: on a timeout the helper G keeps using it until the process exits. */
    wg_waiter_t *w = rt_xmalloc(sizeof(*w));
    w->wg = wg;
    w->done = rt_chan_new(1, 1);
    th_go(wg_waiter_main, w);
    int rc = rt_chan_recv(w->done, NULL, deadline);
    if (rc == RT_OK) {
        rt_chan_free(w->done);
        free(w);
    }
    return rc;
}

bool th_wait_gs_waiting(uint64_t n, rt_time_t deadline)
{
    for (;;) {
        rt_stats_t st;
        rt_stats_read(&st);
        if (st.gs_waiting >= n) {
            return true;
        }
        if (rt_now() >= deadline) {
            return false;
        }
        rt_yield();
    }
}

bool th_wait_gs_live_at_most(uint64_t n, rt_time_t deadline)
{
    for (;;) {
        rt_stats_t st;
        rt_stats_read(&st);
        if (st.gs_live <= n) {
            return true;
        }
        if (rt_now() >= deadline) {
            return false;
        }
        rt_yield();
    }
}

void th_loopback(struct sockaddr_storage *ss, socklen_t *len, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof(*sin);
}
