/* SPDX-License-Identifier: MIT */
/*
 * th.h - helpers shared by the Check suites: running the runtime inside a
 * test body (th_rt_run), seeds, sanitizer-aware scaling of counts and timing
 * slack, bounded waits, and small utilities (thread ids, PRNG, loopback).
 */
#ifndef TH_TH_H
#define TH_TH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/rt.h"

/**
 * Runs `fn(arg)` as the main G of a runtime with `procs` Ps and otherwise
 * default settings, and asserts that rt_run returned RT_OK and discarded no
 * parked G. Call it from the test body only: Check forks each test, and a
 * process that started threads must not fork. The seed comes from env
 * RT_SEED or the clock and is printed to stderr (shown by ctest on failure).
 */
void th_rt_run(rt_go_fn *fn, void *arg, int procs);
/** Like th_rt_run with a full config; a zero `cfg->seed` is replaced by a chosen, printed seed. */
void th_rt_run_cfg(const rt_config_t *cfg, rt_go_fn *fn, void *arg);
/** Returns the seed of the current (or last) th_rt_run. */
uint64_t th_seed(void);

/** Returns true when built or run under TSan (REMORA_TSAN define or env). */
bool th_tsan(void);
/** Returns true when built or run under ASan (REMORA_ASAN define or env). */
bool th_asan(void);
/** Returns `n` scaled down for sanitizers (TSan /10, ASan /4), at least 1. */
long th_scaled(long n);
/** Like th_scaled for a count of Gs alive at once: at most TH_TSAN_MAX_LIVE_GS under TSan. */
long th_scaled_gs(long n);
#define TH_TSAN_MAX_LIVE_GS 4000
/**
 * Returns a timing tolerance `ns` widened by CK_TIMEOUT_MULTIPLIER, and at
 * least 8x under TSan and 4x under ASan.
 */
int64_t th_slack(int64_t ns);

/** Returns the calling OS thread's id. */
pid_t th_gettid(void);
/** Returns the next value of a splitmix64 sequence kept in `*state`. */
uint64_t th_rand(uint64_t *state);
/** Returns a PRNG state derived from the run's seed and `stream`. */
uint64_t th_rand_init(uint64_t stream);

/** Spawns `fn(arg)` and fails the test if rt_go does not return RT_OK. */
void th_go(rt_go_fn *fn, void *arg);
/**
 * Waits for `wg` with a deadline (rt_wg_wait has none): a helper G waits and
 * signals a channel. Returns RT_OK or RT_ETIMEDOUT; after a timeout the
 * helper stays parked, so the caller must fail the test. May park.
 */
int th_wg_wait_until(rt_waitgroup_t *wg, rt_time_t deadline);
/**
 * Yields until at least `n` Gs are parked (rt_stats_t.gs_waiting) or
 * `deadline` passes. Returns true if they were seen parked. May park.
 */
bool th_wait_gs_waiting(uint64_t n, rt_time_t deadline);

/**
 * Yields until rt_stats_t.gs_live is at most `n` or `deadline` passes.
 * Returns true if it got there. May park.
 */
bool th_wait_gs_live_at_most(uint64_t n, rt_time_t deadline);

/** Returns an address for 127.0.0.1 on `port` (0 = ephemeral). */
void th_loopback(struct sockaddr_storage *ss, socklen_t *len, int port);

#endif /* TH_TH_H */
