/* SPDX-License-Identifier: MIT */
/*
 * th_proc.h - process helpers for the integration suites: free ports, temp
 * files, spawning children (killed with the test even when it fails), and
 * starting remora-echo and remora with readiness checks. Plain POSIX: the
 * test process runs no runtime, so Check may fork it freely.
 */
#ifndef TH_PROC_H
#define TH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** A child process: its pid and the file its stderr goes to. */
typedef struct th_proc {
    pid_t pid;
    bool exited;   /* reaped: `status` is valid */
    int status;    /* waitpid status once `exited` */
    char log[256]; /* stderr (and stdout) of the child */
    char name[32]; /* for messages */
} th_proc_t;

/** A running remora-echo. */
typedef struct th_echo {
    th_proc_t proc;
    int port;
} th_echo_t;

/** A running remora: its proxy listener and admin ports and its config file. */
/** When set, readiness checks send "Authorization: Bearer <it>" (admin.token_file tests). */
extern const char *th_remora_admin_token;

typedef struct th_remora {
    th_proc_t proc;
    int port;
    int admin_port;
    char conf[256];
} th_remora_t;

/** Returns the current CLOCK_MONOTONIC time in milliseconds. */
int64_t th_now_ms(void);
/** Returns `ms` widened by CK_TIMEOUT_MULTIPLIER (sanitizer builds run slower). */
int64_t th_slack_ms(int64_t ms);
/**
 * Returns `n` scaled down for sanitizer builds of the processes under test,
 * like th.h's th_scaled (TSan /10, ASan /4, at least 1), without the runtime.
 */
long th_scaled_count(long n);
/** Sleeps `ms` milliseconds (pacing a client, never waiting for readiness). */
void th_sleep_ms(int64_t ms);

/** Returns a port that was free a moment ago (bind 127.0.0.1:0, read it, close). */
int th_free_port(void);
/** Binds a socket to 127.0.0.1 on a free port (`*port`); returns its fd (caller closes). */
int th_bind_loopback(int *port);

/**
 * Returns the per-test temp directory (created on first use, removed with its
 * files by th_proc_teardown).
 */
const char *th_tmpdir(void);
/** Writes `text` to the file `name` in th_tmpdir() and stores its path in `out`. */
void th_tmpfile_write(char *out, size_t out_size, const char *name, const char *text);

/**
 * Starts `argv[0]` with stdout and stderr appended to a temp log file. The
 * child gets SIGKILL when the test process dies (PR_SET_PDEATHSIG), so a
 * failing test (Check _exit()s it) leaks nothing; th_proc_teardown reaps the
 * rest. Fails the test if fork or exec fails.
 */
void th_proc_spawn(th_proc_t *p, const char *name, char *const argv[]);
/** Returns true if `p` has not exited yet (reaps it if it has). */
bool th_proc_alive(th_proc_t *p);
/**
 * Sends `sig` to `p` (if `sig` != 0) and waits up to `timeout_ms` for it to
 * exit. Returns true if it exited (status in `p->status`).
 */
bool th_proc_wait(th_proc_t *p, int sig, int64_t timeout_ms);
/** Terminates `p`: SIGTERM, a bounded wait, then SIGKILL and wait. Returns true if reaped. */
bool th_proc_stop(th_proc_t *p);
/** Returns the child's resident set size in KiB (VmRSS), or -1. */
long th_proc_rss_kib(pid_t pid);
/**
 * Returns how many times the threads of `pid` have been switched out so far
 * (voluntary and involuntary context switches, summed over /proc/PID/task),
 * or -1; `detail`, if not NULL, gets a "comm:count ..." line of `detail_size`.
 */
long th_proc_switches(pid_t pid, char *detail, size_t detail_size);
/**
 * Returns how many TCP sockets on this machine have 127.0.0.1:`port` as one
 * of their ends, in any state but LISTEN (TIME_WAIT included): each
 * connection to a server on that port lately counts twice, or once when
 * one end is gone. -1 if /proc/net/tcp is unreadable.
 */
int th_tcp_sockets_on(int port);
/** Returns the whole log file of `p` (malloc'd, NUL-terminated; caller frees). */
char *th_proc_log(const th_proc_t *p);
/** Prints the last `max` bytes of the log of `p` to stderr (shown by ctest on failure). */
void th_proc_dump_log(const th_proc_t *p, size_t max);

/**
 * Checked teardown for every integration test: stops every child spawned by
 * this test (by pid, SIGTERM then SIGKILL), reaps it, removes the temp dir.
 * Fails the test if a child could not be reaped.
 */
void th_proc_teardown(void);

/** Returns the path of a binary from env `var` (REMORA_BIN, ECHO_BIN); fails the test if unset. */
const char *th_bin(const char *var);

/**
 * Starts remora-echo on 127.0.0.1:`port` (0 = any) named `name` with extra
 * arguments `extra` (NULL-terminated, may be NULL), and waits for its
 * "remora-echo: listening on IP:PORT" line. Fails the test if it does not
 * come within a few seconds.
 */
void th_echo_start_args(th_echo_t *e, const char *name, int port, const char *const *extra);
/** th_echo_start_args on any port, no extra arguments. */
void th_echo_start(th_echo_t *e, const char *name);

/**
 * Starts remora with the YAML `body` (listeners, clusters, ...), printf-style.
 * In the formatted text, "@LISTEN@" and "@ADMIN@" are replaced by free ports;
 * the helper prepends `runtime`, `admin` and (unless `body` sets it)
 * `drain_timeout: 2s`. Waits until GET /ready on the admin port answers 200,
 * retrying once with new ports if remora exits first (e.g. EADDRINUSE).
 * Fails the test, printing remora's log, if it never gets ready.
 */
void th_remora_start(th_remora_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** th_remora_start with extra command-line arguments `args` (NULL-terminated) after "-c FILE". */
void th_remora_start_args(th_remora_t *r, const char *const *args, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Returns the whole config th_remora_start would write for `fmt`, with the
 * ports of the running `r` for @LISTEN@ and @ADMIN@ (for PUT /config or a
 * rewrite of `r->conf`). Caller frees.
 */
char *th_remora_yaml(const th_remora_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Runs `remora --check -c path`. Returns its exit code (-1 if it did not
 * exit) and its output (stdout and stderr) in `*out` (caller frees).
 */
int th_remora_check(const char *path, char **out);

/**
 * th_remora_start with one listener, one route `r` (path_prefix /) and one
 * backend `b1` of cluster `c1` whose endpoint is 127.0.0.1:`echo_port`.
 * The extras (YAML lines, indented 4, 8 and 4 spaces; NULL for none) are
 * added to the listener, the route and the cluster.
 */
void th_remora_start_simple(th_remora_t *r, int echo_port, const char *listener_extra,
                            const char *route_extra, const char *cluster_extra);

#endif /* TH_PROC_H */
