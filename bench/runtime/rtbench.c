/* SPDX-License-Identifier: MIT */
/*
 * rtbench.c - the C side of bench/runtime: the same programs as
 * bench/runtime/go/main.go, written against runtime/rt.h, with the same
 * iteration counts and the same number of Ps. Each subcommand prints
 *
 *     RESULT name=<row> value=<number> unit=<unit>
 *
 * Usage: rtbench <a|b1|b2|c1|c4|d|e|f|g|h> [-n N] [-dur SECONDS] [-conns N] [-v]
 * (-v writes the runtime's stats as JSON to stderr when the benchmark ends).
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "runtime/rt.h"

/* Iteration counts; keep in sync with go/main.go. */
enum {
    DEF_NA = 1000000,  /* (a) parked Gs */
    DEF_NB = 2000000,  /* (b) round trips (2 hand-offs each) */
    DEF_NC = 20000000, /* (c) items */
    DEF_ND = 20000000, /* (d) selects */
    DEF_NE = 20000000, /* (e) yields per G (2 Gs) */
    DEF_NF = 1000000,  /* (f) tasks */
    DEF_NG = 100000,   /* (g) sleepers */
    DEF_NH = 1000,     /* (h) connections */
    DEF_DUR_H = 10,    /* (h) seconds */
    CHAN_CAP = 1024,   /* (c) */
    MSG_SIZE = 64,     /* (h) */
    HIST_SUB = 64,     /* log-linear histogram: 64 sub-buckets per power of two */
    HIST_BKTS = 36 * HIST_SUB,
};

#define SLEEP_MAX (100 * RT_MSEC)
#define G_SEED UINT64_C(0x5eed5eed)

typedef struct bench_args {
    const char *cmd;
    long n;
    double dur_s;
    int conns;
    bool verbose;
} bench_args_t;

static void result(const char *name, double value, const char *unit)
{
    printf("RESULT name=%s value=%.6g unit=%s\n", name, value, unit);
    fflush(stdout);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rtbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void spawn(rt_go_fn *fn, void *arg)
{
    int err = rt_go(fn, arg);
    if (err != RT_OK)
        die("rt_go: %s", rt_strerror(err));
}

/* VmRSS from /proc/self/status, in bytes (procfs: never blocks). */
static int64_t vm_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("open /proc/self/status");
    char line[256];
    int64_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    if (kb < 0)
        die("no VmRSS");
    return kb * 1024;
}

/* splitmix64: the same generator as go/main.go, so (g) sleeps the same durations. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- (a) spawn N Gs that park on one channel ---- */

static rt_chan_t *a_ch;
static rt_waitgroup_t a_started, a_exited;

static void a_g(void *arg)
{
    rt_wg_done(&a_started);
    (void)rt_chan_recv(a_ch, NULL, RT_FOREVER);
    rt_wg_done(&a_exited);
}

static void bench_a(long n)
{
    a_ch = rt_chan_new(sizeof(int64_t), 0);
    int64_t before = vm_rss();
    rt_wg_add(&a_started, n);
    rt_wg_add(&a_exited, n);
    rt_time_t t0 = rt_now();
    for (long i = 0; i < n; i++)
        spawn(a_g, NULL);
    rt_wg_wait(&a_started);
    rt_time_t el = rt_now() - t0;
    int64_t after = vm_rss();
    rt_chan_close(a_ch);
    rt_wg_wait(&a_exited);
    rt_chan_free(a_ch);
    result("a_time", (double)el / 1e6, "ms");
    result("a_bytes_per_g", (double)(after - before) / (double)n, "bytes");
}

/* ---- (b) unbuffered ping-pong ---- */

static rt_chan_t *b_ping, *b_pong;
static rt_waitgroup_t b_wg;
static long b_n;

static void b_pinger(void *arg)
{
    for (long i = 0; i < b_n; i++) {
        int64_t v = i;
        if (rt_chan_send(b_ping, &v, RT_FOREVER) != RT_OK ||
            rt_chan_recv(b_pong, &v, RT_FOREVER) != RT_OK)
            die("b: channel error");
    }
    rt_wg_done(&b_wg);
}

static void b_ponger(void *arg)
{
    for (long i = 0; i < b_n; i++) {
        int64_t v;
        if (rt_chan_recv(b_ping, &v, RT_FOREVER) != RT_OK ||
            rt_chan_send(b_pong, &v, RT_FOREVER) != RT_OK)
            die("b: channel error");
    }
    rt_wg_done(&b_wg);
}

static void bench_b(int procs, long n)
{
    b_n = n;
    b_ping = rt_chan_new(sizeof(int64_t), 0);
    b_pong = rt_chan_new(sizeof(int64_t), 0);
    rt_wg_add(&b_wg, 2);
    rt_time_t t0 = rt_now();
    spawn(b_pinger, NULL);
    spawn(b_ponger, NULL);
    rt_wg_wait(&b_wg);
    rt_time_t el = rt_now() - t0;
    rt_chan_free(b_ping);
    rt_chan_free(b_pong);
    char name[16];
    snprintf(name, sizeof name, "b_p%d", procs);
    result(name, (double)el / (double)(2 * n), "ns");
}

/* ---- (c) buffered channel, P producers / P consumers ---- */

static rt_chan_t *c_ch;
static rt_waitgroup_t c_prod, c_cons;
static _Atomic int64_t c_sum;
static long c_per;

static void c_consumer(void *arg)
{
    int64_t v, s = 0;
    while (rt_chan_recv(c_ch, &v, RT_FOREVER) == RT_OK)
        s += v;
    atomic_fetch_add(&c_sum, s);
    rt_wg_done(&c_cons);
}

static void c_producer(void *arg)
{
    for (long i = 0; i < c_per; i++) {
        int64_t v = i;
        if (rt_chan_send(c_ch, &v, RT_FOREVER) != RT_OK)
            die("c: send failed");
    }
    rt_wg_done(&c_prod);
}

static void bench_c(int pairs, long n)
{
    c_ch = rt_chan_new(sizeof(int64_t), CHAN_CAP);
    c_per = n / pairs;
    long total = c_per * pairs;
    rt_wg_add(&c_prod, pairs);
    rt_wg_add(&c_cons, pairs);
    rt_time_t t0 = rt_now();
    for (int i = 0; i < pairs; i++)
        spawn(c_consumer, NULL);
    for (int i = 0; i < pairs; i++)
        spawn(c_producer, NULL);
    rt_wg_wait(&c_prod);
    rt_chan_close(c_ch);
    rt_wg_wait(&c_cons);
    rt_time_t el = rt_now() - t0;
    rt_chan_free(c_ch);
    int64_t want = (int64_t)pairs * c_per * (c_per - 1) / 2;
    if (atomic_load(&c_sum) != want)
        die("c: sum %" PRId64 " want %" PRId64, atomic_load(&c_sum), want);
    char name[16];
    snprintf(name, sizeof name, "c_%dx%d", pairs, pairs);
    result(name, (double)total / ((double)el / 1e9), "items/s");
}

/* ---- (d) select over two channels with default, nothing ready ---- */

static void bench_d(long n)
{
    rt_chan_t *a = rt_chan_new(sizeof(int64_t), 0);
    rt_chan_t *b = rt_chan_new(sizeof(int64_t), 0);
    long defaults = 0;
    rt_time_t t0 = rt_now();
    for (long i = 0; i < n; i++) {
        rt_case_t cases[2] = {
            {.ch = a, .op = RT_CASE_RECV, .elem = NULL},
            {.ch = b, .op = RT_CASE_RECV, .elem = NULL},
        };
        if (rt_select(cases, 2, RT_NOWAIT) == RT_EAGAIN)
            defaults++;
    }
    rt_time_t el = rt_now() - t0;
    rt_chan_free(a);
    rt_chan_free(b);
    if (defaults != n)
        die("d: %ld defaults of %ld", defaults, n);
    result("d_select", (double)el / (double)n, "ns");
}

/* ---- (e) yield ping-pong on one P ---- */

static rt_waitgroup_t e_wg;
static long e_n;

static void e_yielder(void *arg)
{
    for (long i = 0; i < e_n; i++)
        rt_yield();
    rt_wg_done(&e_wg);
}

static void bench_e(long n)
{
    e_n = n;
    rt_wg_add(&e_wg, 2);
    rt_time_t t0 = rt_now();
    spawn(e_yielder, NULL);
    spawn(e_yielder, NULL);
    rt_wg_wait(&e_wg);
    rt_time_t el = rt_now() - t0;
    result("e_yield", (double)el / (double)(2 * n), "ns");
}

/* ---- (f) one G fans out N tiny tasks on 2 Ps ---- */

static rt_waitgroup_t f_wg;
static _Atomic int64_t f_sum;

static void f_task(void *arg)
{
    atomic_fetch_add(&f_sum, (int64_t)(uintptr_t)arg);
    rt_wg_done(&f_wg);
}

static void bench_f(long n)
{
    rt_wg_add(&f_wg, n);
    rt_time_t t0 = rt_now();
    for (long i = 0; i < n; i++)
        spawn(f_task, (void *)(uintptr_t)i);
    rt_wg_wait(&f_wg);
    rt_time_t el = rt_now() - t0;
    int64_t want = (int64_t)n * (n - 1) / 2;
    if (atomic_load(&f_sum) != want)
        die("f: sum %" PRId64 " want %" PRId64, atomic_load(&f_sum), want);
    result("f_fanout", (double)el / 1e6, "ms");
}

/* ---- (g) N sleepers with random 0-100 ms, lateness ---- */

static int64_t *g_durs, *g_late;
static rt_waitgroup_t g_wg;

static void g_sleeper(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    int64_t d = g_durs[i];
    rt_time_t deadline = rt_now() + d;
    rt_sleep(d);
    g_late[i] = rt_now() - deadline;
    rt_wg_done(&g_wg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t percentile(const int64_t *sorted, long n, double q)
{
    long idx = (long)(q * (double)n + 0.999999999) - 1;
    if (idx < 0)
        idx = 0;
    if (idx >= n)
        idx = n - 1;
    return sorted[idx];
}

static void bench_g(long n)
{
    g_durs = rt_xcalloc((size_t)n, sizeof *g_durs);
    g_late = rt_xcalloc((size_t)n, sizeof *g_late);
    uint64_t seed = G_SEED;
    for (long i = 0; i < n; i++)
        g_durs[i] = (int64_t)(splitmix64(&seed) % (uint64_t)(SLEEP_MAX + 1));
    rt_wg_add(&g_wg, n);
    for (long i = 0; i < n; i++)
        spawn(g_sleeper, (void *)(uintptr_t)i);
    rt_wg_wait(&g_wg);
    qsort(g_late, (size_t)n, sizeof *g_late, cmp_i64);
    if (g_late[0] < 0) {
        long early = 0;
        while (early < n && g_late[early] < 0)
            early++;
        fprintf(stderr, "rtbench: g: WARNING %ld sleepers woke early (min %" PRId64 " ns)\n", early,
                g_late[0]);
    }
    result("g_p50", (double)percentile(g_late, n, 0.50) / 1e3, "us");
    result("g_p99", (double)percentile(g_late, n, 0.99) / 1e3, "us");
    free(g_durs);
    free(g_late);
}

/* ---- (h) TCP echo over loopback ---- */

typedef uint32_t hist_t[HIST_BKTS];

static int hist_index(int64_t v)
{
    if (v < HIST_SUB)
        return v < 0 ? 0 : (int)v;
    int m = 63 - __builtin_clzll((unsigned long long)v); /* >= 6 */
    int idx = (m - 5) * HIST_SUB + (int)(((uint64_t)v >> (m - 6)) & (HIST_SUB - 1));
    return idx < HIST_BKTS ? idx : HIST_BKTS - 1;
}

/* Midpoint of bucket idx, in ns. */
static double hist_value(int idx)
{
    if (idx < HIST_SUB)
        return idx;
    int m = idx / HIST_SUB + 5;
    int sub = idx % HIST_SUB;
    uint64_t lo = (uint64_t)(HIST_SUB + sub) << (m - 6);
    uint64_t width = UINT64_C(1) << (m - 6);
    return (double)lo + (double)width / 2;
}

static double hist_percentile(const uint32_t *h, uint64_t total, double q)
{
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999999);
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (int i = 0; i < HIST_BKTS; i++) {
        cum += h[i];
        if (cum >= rank)
            return hist_value(i);
    }
    return hist_value(HIST_BKTS - 1);
}

static rt_netfd_t *h_ln;
static int h_conns;
static struct sockaddr_storage h_addr;
static socklen_t h_addrlen;
static rt_waitgroup_t h_servers, h_connected, h_clients;
static rt_chan_t *h_go;
static rt_time_t h_end;
static hist_t *h_hists;
static uint64_t *h_counts;

/* Go sets TCP_NODELAY on every TCP socket; do the same so both sides send alike. */
static void set_nodelay(rt_netfd_t *c)
{
    int one = 1;
    if (setsockopt(rt_netfd_fd(c), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die("h: setsockopt TCP_NODELAY failed");
}

/* Reads exactly len bytes: len, 0 at EOF, or a negative error. */
static ssize_t read_full(rt_netfd_t *c, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = rt_read(c, (char *)buf + got, len - got, RT_FOREVER);
        if (r <= 0)
            return r;
        got += (size_t)r;
    }
    return (ssize_t)len;
}

static void h_handler(void *arg)
{
    rt_netfd_t *c = arg;
    char buf[MSG_SIZE];
    for (;;) {
        if (read_full(c, buf, sizeof buf) <= 0)
            break;
        if (rt_write_all(c, buf, sizeof buf, RT_FOREVER) < 0)
            break;
    }
    rt_netfd_close(c);
    rt_wg_done(&h_servers);
}

static void h_acceptor(void *arg)
{
    for (int i = 0; i < h_conns; i++) {
        rt_netfd_t *c;
        struct sockaddr_storage peer;
        int err = rt_accept(h_ln, &c, &peer, RT_FOREVER);
        if (err != RT_OK)
            die("h: accept: %s", rt_strerror(err));
        set_nodelay(c);
        spawn(h_handler, c);
    }
}

static void h_client(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    rt_netfd_t *c;
    int err = rt_connect((const struct sockaddr *)&h_addr, h_addrlen, &c, RT_FOREVER);
    if (err != RT_OK)
        die("h: connect: %s", rt_strerror(err));
    set_nodelay(c);
    rt_wg_done(&h_connected);
    (void)rt_chan_recv(h_go, NULL, RT_FOREVER); /* closed: start */
    unsigned char buf[MSG_SIZE];
    for (size_t j = 0; j < sizeof buf; j++)
        buf[j] = (unsigned char)(i + j);
    uint32_t *h = h_hists[i];
    uint64_t n = 0;
    for (;;) {
        rt_time_t t0 = rt_now();
        if (t0 >= h_end)
            break;
        ssize_t r = rt_write_all(c, buf, sizeof buf, RT_FOREVER);
        if (r < 0)
            die("h: write: %s", rt_strerror((int)r));
        r = read_full(c, buf, sizeof buf);
        if (r <= 0)
            die("h: read: %s", r == 0 ? "EOF" : rt_strerror((int)r));
        rt_time_t t1 = rt_now();
        if (t1 > h_end)
            break;
        h[hist_index(t1 - t0)]++;
        n++;
    }
    h_counts[i] = n;
    rt_netfd_close(c);
    rt_wg_done(&h_clients);
}

static void bench_h(int conns, double dur_s)
{
    h_conns = conns;
    struct sockaddr_storage ss;
    socklen_t len;
    int err = rt_sockaddr_parse("127.0.0.1:0", &ss, &len);
    if (err != RT_OK)
        die("h: parse: %s", rt_strerror(err));
    err = rt_listen((const struct sockaddr *)&ss, len, 4096, &h_ln);
    if (err != RT_OK)
        die("h: listen: %s", rt_strerror(err));
    int port = rt_netfd_port(h_ln);
    if (port <= 0)
        die("h: port: %s", rt_strerror(port));
    char hostport[32];
    snprintf(hostport, sizeof hostport, "127.0.0.1:%d", port);
    err = rt_sockaddr_parse(hostport, &h_addr, &h_addrlen);
    if (err != RT_OK)
        die("h: parse: %s", rt_strerror(err));

    h_hists = rt_xcalloc((size_t)conns, sizeof *h_hists);
    h_counts = rt_xcalloc((size_t)conns, sizeof *h_counts);
    h_go = rt_chan_new(1, 0);
    rt_wg_add(&h_servers, conns);
    rt_wg_add(&h_connected, conns);
    rt_wg_add(&h_clients, conns);
    spawn(h_acceptor, NULL);
    for (int i = 0; i < conns; i++)
        spawn(h_client, (void *)(uintptr_t)i);
    rt_wg_wait(&h_connected);
    int64_t dur_ns = (int64_t)(dur_s * 1e9);
    h_end = rt_now() + dur_ns;
    rt_chan_close(h_go);
    rt_wg_wait(&h_clients);
    rt_wg_wait(&h_servers);
    rt_netfd_close(h_ln);
    rt_chan_free(h_go);

    static hist_t all;
    uint64_t total = 0;
    for (int i = 0; i < conns; i++) {
        for (int b = 0; b < HIST_BKTS; b++)
            all[b] += h_hists[i][b];
        total += h_counts[i];
    }
    free(h_hists);
    free(h_counts);
    if (total == 0)
        die("h: no round trips");
    result("h_msgs", (double)total / ((double)dur_ns / 1e9), "msgs/s");
    result("h_p99", hist_percentile(all, total, 0.99) / 1e3, "us");
}

/* ---- main ---- */

static long pick(const bench_args_t *a, long def)
{
    return a->n > 0 ? a->n : def;
}

static void bench_main(void *arg)
{
    const bench_args_t *a = arg;
    const char *c = a->cmd;
    if (strcmp(c, "a") == 0)
        bench_a(pick(a, DEF_NA));
    else if (strcmp(c, "b1") == 0)
        bench_b(1, pick(a, DEF_NB));
    else if (strcmp(c, "b2") == 0)
        bench_b(2, pick(a, DEF_NB));
    else if (strcmp(c, "c1") == 0)
        bench_c(1, pick(a, DEF_NC));
    else if (strcmp(c, "c4") == 0)
        bench_c(4, pick(a, DEF_NC));
    else if (strcmp(c, "d") == 0)
        bench_d(pick(a, DEF_ND));
    else if (strcmp(c, "e") == 0)
        bench_e(pick(a, DEF_NE));
    else if (strcmp(c, "f") == 0)
        bench_f(pick(a, DEF_NF));
    else if (strcmp(c, "g") == 0)
        bench_g(pick(a, DEF_NG));
    else if (strcmp(c, "h") == 0)
        bench_h(a->conns, a->dur_s);
    if (a->verbose) {
        rt_stats_t st;
        rt_stats_read(&st);
        char buf[8192];
        rt_stats_json(&st, buf, sizeof buf);
        fprintf(stderr, "rtbench: stats %s\n", buf);
    }
}

/* The number of Ps each benchmark runs on (GOMAXPROCS on the Go side). */
static int procs_for(const char *cmd)
{
    if (strcmp(cmd, "b1") == 0 || strcmp(cmd, "d") == 0 || strcmp(cmd, "e") == 0)
        return 1;
    return 2;
}

int main(int argc, char **argv)
{
    static const char *const cmds[] = {"a", "b1", "b2", "c1", "c4", "d", "e", "f", "g", "h"};
    if (argc < 2)
        die("usage: rtbench <a|b1|b2|c1|c4|d|e|f|g|h> [-n N] [-dur SECONDS] [-conns N] [-v]");
    bench_args_t a = {.cmd = argv[1], .n = 0, .dur_s = DEF_DUR_H, .conns = DEF_NH};
    bool known = false;
    for (size_t i = 0; i < RT_ARRAY_LEN(cmds); i++)
        known |= strcmp(a.cmd, cmds[i]) == 0;
    if (!known)
        die("unknown benchmark \"%s\"", a.cmd);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            a.verbose = true;
        else if (i + 1 < argc && strcmp(argv[i], "-n") == 0)
            a.n = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "-dur") == 0)
            a.dur_s = strtod(argv[++i], NULL);
        else if (i + 1 < argc && strcmp(argv[i], "-conns") == 0)
            a.conns = (int)strtol(argv[++i], NULL, 10);
        else
            die("bad argument \"%s\"", argv[i]);
    }
    rt_config_t cfg = {.procs = procs_for(a.cmd)};
    int err = rt_run(&cfg, bench_main, &a);
    if (err != RT_OK)
        die("rt_run: %s", rt_strerror(err));
    return 0;
}
