/* SPDX-License-Identifier: MIT */
/*
 * th_stall.h - a witness for stalls of the machine itself: plain threads,
 * one per CPU, that sleep 2 ms at a time and record how late they woke.
 * A wall-clock bound in a test can then tell "the runtime was late" from
 * "nothing on this machine ran" (a VM descheduled, a kernel thread holding
 * a CPU), and measure again only in the second case.
 */
#ifndef TH_STALL_H
#define TH_STALL_H

#include <stdint.h>

typedef struct th_stall_watch th_stall_watch_t;

/** Starts the witness threads (one per online CPU, each pinned where allowed). */
th_stall_watch_t *th_stall_watch_start(void);
/** Stops and frees the witness; returns the latest any of its threads woke, in ns. */
int64_t th_stall_watch_stop(th_stall_watch_t *w);

#endif /* TH_STALL_H */
