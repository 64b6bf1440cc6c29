/* SPDX-License-Identifier: MIT */
/*
 * test_stack.c - suite "runtime/stack": G stacks of runtime/stack.c: an
 * overflowing G is reported as "stack overflow in G n" in both guard modes
 * (run in a forked child), and 100k parked Gs fit default vm.max_map_count.
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

/* ---- overflow, reported from a child process ---- */

static volatile long recursion_limit =
    1L << 40; /* never reached: keeps gcc's -Winfinite-recursion quiet */
static bool overflow_yields;

static long recurse(long depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof(buf) - 1] = (char)depth;
    /*
     * A red zone is checked when the G switches away, so the red-zone
     * variant switches at every frame, as any real G does when it does I/O
     * (a companion G keeps rt_yield from returning without a switch).
     */
    if (overflow_yields) {
        rt_yield();
    }
    long r = depth < recursion_limit ? recurse(depth + 1) : 0;
    return r + buf[depth % 1024];
}

static void overflow_g(void *arg)
{
    (void)arg;
    char line[64];
    int n = snprintf(line, sizeof(line), "overflowing G %" PRIu64 "\n", rt_g_id());
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    long r = recurse(0);
    /* Unreachable unless the stack was unbounded. */
    n = snprintf(line, sizeof(line), "recursion returned %ld\n", r);
    w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

static void companion_g(void *arg)
{
    (void)arg;
    for (;;) {
        rt_yield();
    }
}

static void overflow_main(void *arg)
{
    (void)arg;
    rt_chan_t *never = rt_chan_new(1, 0);
    if (overflow_yields && rt_go(companion_g, NULL) != RT_OK) {
        _exit(5);
    }
    if (rt_go(overflow_g, NULL) != RT_OK) {
        _exit(5);
    }
    /* The process should die long before this deadline. */
    (void)rt_chan_recv(never, NULL, rt_deadline_in(20 * RT_SEC));
    _exit(3);
}

/* Reads the child's stderr until EOF or `deadline`; returns false on timeout. */
static bool read_all(int fd, char *buf, size_t size, rt_time_t deadline)
{
    size_t len = 0;
    for (;;) {
        rt_time_t left = deadline - rt_now();
        if (left <= 0) {
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(left / RT_MSEC) + 1);
        if (rc <= 0) {
            continue;
        }
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0) {
            buf[len] = '\0';
            return true;
        }
        size_t take = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
}

START_TEST(test_stack_overflow_is_reported)
{
    static const rt_stack_guard_t modes[] = {RT_GUARD_PAGES, RT_GUARD_REDZONE};
    rt_stack_guard_t mode = modes[_i];
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    /* Fork before any runtime thread exists; the child runs the runtime. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[1]);
        unsetenv("REMORA_STACK_GUARD");
        overflow_yields = mode == RT_GUARD_REDZONE;
        rt_config_t cfg = {.procs = 1, .guard = mode};
        int rc = rt_run(&cfg, overflow_main, NULL);
        _exit(rc == RT_OK ? 3 : 4);
    }
    close(pipefd[1]);
    static char out[65536];
    bool eof = read_all(pipefd[0], out, sizeof(out), rt_deadline_in(th_slack(20 * RT_SEC)));
    close(pipefd[0]);
    if (!eof) {
        kill(pid, SIGKILL);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(eof, "child with guard mode %d neither died nor exited; stderr:\n%s", (int)mode,
                  out);
    ck_assert_msg(!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3),
                  "child survived a stack overflow (guard mode %d, exit %d); stderr:\n%s",
                  (int)mode, WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
    unsigned long long gid = 0, reported = 0;
    const char *who = strstr(out, "overflowing G ");
    ck_assert_msg(who != NULL && sscanf(who, "overflowing G %llu", &gid) == 1,
                  "overflowing G never ran; stderr:\n%s", out);
    const char *msg = strstr(out, "stack overflow in G ");
    ck_assert_msg(msg != NULL,
                  "no \"stack overflow in G\" report (guard mode %d, status %#x); "
                  "stderr:\n%s",
                  (int)mode, status, out);
    ck_assert_int_eq(sscanf(msg, "stack overflow in G %llu", &reported), 1);
    ck_assert_msg(reported == gid, "overflow reported for G %llu, but G %llu overflowed", reported,
                  gid);
}

END_TEST

/* ---- 100k parked Gs ---- */

typedef struct many {
    long n;
    rt_chan_t *ch;
    rt_waitgroup_t arrived, finished;
    _Atomic long eclosed, other;
    int arrived_rc, finished_rc;
    bool parked_seen;
    rt_stats_t parked;
    long maps, max_maps;
} many_t;

static many_t *many_state;

static void many_g(void *arg)
{
    many_t *m = many_state;
    (void)arg;
    rt_wg_done(&m->arrived);
    int rc = rt_chan_recv(m->ch, NULL, RT_FOREVER);
    atomic_fetch_add(rc == RT_ECLOSED ? &m->eclosed : &m->other, 1);
    rt_wg_done(&m->finished);
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long lines = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        lines += c == '\n';
    }
    fclose(f);
    return lines;
}

static long read_long(const char *path)
{
    long v = -1;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1) {
            v = -1;
        }
        fclose(f);
    }
    return v;
}

static void many_main(void *arg)
{
    many_t *m = arg;
    many_state = m;
    m->ch = rt_chan_new(1, 0);
    rt_wg_add(&m->arrived, m->n);
    rt_wg_add(&m->finished, m->n);
    for (long i = 0; i < m->n; i++) {
        th_go(many_g, NULL);
    }
    rt_time_t deadline = rt_deadline_in(th_slack(20 * RT_SEC));
    m->arrived_rc = th_wg_wait_until(&m->arrived, deadline);
    m->parked_seen = th_wait_gs_waiting((uint64_t)m->n, deadline);
    rt_stats_read(&m->parked);
    rt_blocking_enter(); /* file reads may block the thread */
    m->maps = count_lines("/proc/self/maps");
    m->max_maps = read_long("/proc/sys/vm/max_map_count");
    rt_blocking_leave();
    rt_chan_close(m->ch);
    m->finished_rc = th_wg_wait_until(&m->finished, deadline);
    if (m->finished_rc == RT_OK) {
        rt_chan_free(m->ch);
    }
}

START_TEST(test_stack_100k_parked_gs_fit_default_map_count)
{
    many_t m;
    memset(&m, 0, sizeof(m));
    m.n = th_scaled_gs(100000);
    rt_config_t cfg = {.procs = 2, .guard = RT_GUARD_AUTO};
    th_rt_run_cfg(&cfg, many_main, &m);
    ck_assert_int_eq(m.arrived_rc, RT_OK);
    ck_assert_msg(m.parked_seen, "%ld Gs never all parked (gs_waiting %llu)", m.n,
                  (unsigned long long)m.parked.gs_waiting);
    ck_assert_msg(m.parked.stacks >= (uint64_t)m.n, "stats.stacks %llu < %ld live Gs",
                  (unsigned long long)m.parked.stacks, m.n);
    ck_assert_msg(m.parked.gs_live >= (uint64_t)m.n, "stats.gs_live %llu < %ld",
                  (unsigned long long)m.parked.gs_live, m.n);
    ck_assert_uint_le(m.parked.stacks_guarded, m.parked.stacks);
    ck_assert_msg(m.parked.stacks_guarded > 0, "RT_GUARD_AUTO guarded no stack at all");
    ck_assert_int_gt(m.maps, 0);
    ck_assert_msg(m.max_maps <= 0 || m.maps < m.max_maps, "%ld mappings >= vm.max_map_count %ld",
                  m.maps, m.max_maps);
    ck_assert_int_eq(m.finished_rc, RT_OK);
    ck_assert_int_eq(m.other, 0);
    ck_assert_int_eq(m.eclosed, m.n);
}

END_TEST

Suite *suite_runtime_stack(void)
{
    Suite *s = suite_create("runtime/stack");

    TCase *tc = tcase_create("overflow");
    tcase_add_loop_test(tc, test_stack_overflow_is_reported, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("many");
    tcase_add_test(tc, test_stack_100k_parked_gs_fit_default_map_count);
    suite_add_tcase(s, tc);
    return s;
}
