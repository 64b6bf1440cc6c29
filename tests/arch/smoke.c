/* SPDX-License-Identifier: MIT */
/*
 * smoke.c - a self-checking tour of the runtime for architectures we can only
 * emulate (aarch64 under qemu-user): context switches, channels, select,
 * timers, the netpoller, many Gs and the stack-overflow report. Exit 0 = ok.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/rt.h"

static int failures;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "smoke: FAILED %s (line %d)\n", #cond, __LINE__);                      \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static rt_chan_t *ping, *pong;
static rt_waitgroup_t wg;

static void echo_g(void *arg)
{
    long v;
    (void)arg;
    while (rt_chan_recv(ping, &v, RT_FOREVER) == RT_OK)
        (void)rt_chan_send(pong, &v, RT_FOREVER);
    rt_wg_done(&wg);
}

static void yielder(void *arg)
{
    long *count = arg;
    for (int i = 0; i < 10000; i++) {
        (*count)++;
        rt_yield();
    }
    rt_wg_done(&wg);
}

static void sleeper(void *arg)
{
    rt_chan_t *done = arg;
    rt_time_t t = rt_now();
    rt_sleep(20 * RT_MSEC);
    rt_time_t slept = rt_now() - t;
    (void)rt_chan_send(done, &slept, RT_FOREVER);
}

static void parker(void *arg)
{
    (void)rt_chan_recv(arg, NULL, RT_FOREVER);
    rt_wg_done(&wg);
}

static void sock_echo(void *arg)
{
    rt_netfd_t *nfd = arg;
    char buf[64];
    ssize_t n;
    while ((n = rt_read(nfd, buf, sizeof(buf), rt_deadline_in(5 * RT_SEC))) > 0)
        (void)rt_write_all(nfd, buf, (size_t)n, rt_deadline_in(5 * RT_SEC));
    rt_wg_done(&wg);
}

static void main_g(void *arg)
{
    (void)arg;
    /* channels: 10,000 round trips with values checked */
    ping = rt_chan_new(sizeof(long), 0);
    pong = rt_chan_new(sizeof(long), 0);
    rt_wg_add(&wg, 1);
    EXPECT(rt_go(echo_g, NULL) == RT_OK);
    long sum = 0;
    for (long i = 0; i < 10000; i++) {
        long v = i;
        EXPECT(rt_chan_send(ping, &v, RT_FOREVER) == RT_OK);
        EXPECT(rt_chan_recv(pong, &v, RT_FOREVER) == RT_OK);
        sum += v;
    }
    EXPECT(sum == 10000L * 9999 / 2);
    rt_chan_close(ping);
    rt_wg_wait(&wg);

    /* context switches: two yielders interleave */
    long a = 0, b = 0;
    rt_wg_add(&wg, 2);
    EXPECT(rt_go(yielder, &a) == RT_OK && rt_go(yielder, &b) == RT_OK);
    rt_wg_wait(&wg);
    EXPECT(a == 10000 && b == 10000);

    /* select: default when nothing is ready, the ready case otherwise */
    rt_chan_t *c1 = rt_chan_new(sizeof(long), 1), *c2 = rt_chan_new(sizeof(long), 1);
    long got = 0, seven = 7;
    rt_case_t cases[2] = {{c1, RT_CASE_RECV, &got, 0}, {c2, RT_CASE_RECV, &got, 0}};
    EXPECT(rt_select(cases, 2, RT_NOWAIT) == RT_EAGAIN);
    EXPECT(rt_chan_send(c2, &seven, RT_NOWAIT) == RT_OK);
    EXPECT(rt_select(cases, 2, RT_FOREVER) == 1 && got == 7);
    EXPECT(rt_select(cases, 2, rt_deadline_in(10 * RT_MSEC)) == RT_ETIMEDOUT);

    /* timers */
    rt_chan_t *slept = rt_chan_new(sizeof(rt_time_t), 1);
    EXPECT(rt_go(sleeper, slept) == RT_OK);
    rt_time_t d = 0;
    EXPECT(rt_chan_recv(slept, &d, rt_deadline_in(5 * RT_SEC)) == RT_OK);
    EXPECT(d >= 20 * RT_MSEC && d < 2 * RT_SEC);

    /* netpoller: echo over a socketpair, and a read deadline */
    int sv[2];
    EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rt_netfd_t *x, *y;
    EXPECT(rt_netfd_open(sv[0], &x) == RT_OK && rt_netfd_open(sv[1], &y) == RT_OK);
    rt_wg_add(&wg, 1);
    EXPECT(rt_go(sock_echo, y) == RT_OK);
    char buf[16] = {0};
    EXPECT(rt_write_all(x, "aarch64", 7, rt_deadline_in(RT_SEC)) == 7);
    EXPECT(rt_read(x, buf, sizeof(buf), rt_deadline_in(5 * RT_SEC)) == 7);
    EXPECT(memcmp(buf, "aarch64", 7) == 0);
    EXPECT(rt_read(x, buf, sizeof(buf), rt_deadline_in(20 * RT_MSEC)) == RT_ETIMEDOUT);
    rt_netfd_close(x);
    rt_wg_wait(&wg);
    rt_netfd_close(y);

    /* many parked Gs, all released by close */
    rt_chan_t *gate = rt_chan_new(0, 0);
    rt_wg_add(&wg, 20000);
    for (int i = 0; i < 20000; i++)
        EXPECT(rt_go(parker, gate) == RT_OK);
    /* Bounded by time, not by rounds: under qemu, beside other tests, 20,000
     * spawns took longer than 500 rounds of a 1 ms sleep. */
    rt_stats_t st;
    rt_time_t until = rt_now() + 30 * RT_SEC;
    do {
        rt_stats_read(&st);
        if (st.gs_waiting >= 20000)
            break;
        rt_sleep(RT_MSEC);
    } while (rt_now() < until);
    EXPECT(st.gs_waiting >= 20000);
    rt_chan_close(gate);
    rt_wg_wait(&wg);
}

static volatile long depth_limit = 1L << 40; /* never reached: the stack ends first */

static long deep(long n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    return (n < depth_limit ? deep(n + 1) : 0) + pad[0];
}

static void overflow_g(void *arg)
{
    (void)arg;
    (void)deep(0);
}

static void overflow_main(void *arg)
{
    (void)arg;
    if (rt_go(overflow_g, NULL) == RT_OK)
        rt_sleep(10 * RT_SEC);
}

/* The overflow must be reported by name, in a child process. */
static void check_overflow(rt_stack_guard_t guard)
{
    int fds[2];
    EXPECT(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        rt_config_t cfg = {.procs = 1, .guard = guard};
        rt_run(&cfg, overflow_main, NULL);
        _exit(0);
    }
    close(fds[1]);
    char out[4096] = {0};
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(out) - 1 && (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT(WIFSIGNALED(status));
    EXPECT(strstr(out, "stack overflow in G 2") != NULL);
}

int main(void)
{
    rt_config_t cfg = {.procs = 2};
    EXPECT(rt_run(&cfg, main_g, NULL) == RT_OK);
    check_overflow(RT_GUARD_PAGES);
    check_overflow(RT_GUARD_REDZONE);
    printf("smoke: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
