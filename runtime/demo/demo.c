/* SPDX-License-Identifier: MIT */
/*
 * demo.c - remora-rt-demo: a short, self-terminating tour of the M:N runtime.
 * Thousands of worker Gs share one buffered job channel; a producer offers load
 * in three phases (light, overload, light) and uses select/default to notice a
 * full channel, defer jobs into a bounded backlog and shed what does not fit; a
 * reporter G ticks on one-shot timers and prints progress; a wait group joins
 * the workers; the run ends with the scheduler's own counters (rt_stats_read).
 * Every number printed is measured during the run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base.h"
#include "runtime/rt.h"

#define JOB_CHAN_CAP 256     /* buffered job channel */
#define BACKLOG_CAP 2048     /* jobs the producer may defer before it sheds */
#define JOB_COST_NS 20000    /* mean CPU cost of one job (calibrated spin) */
#define PRODUCER_TICK_MSEC 1 /* the producer offers the jobs owed every tick */
#define MAX_GS 1000000

typedef struct options {
    int procs;      /* --procs: 0 = one per CPU */
    long gs;        /* --gs: worker Gs */
    double seconds; /* --seconds: length of the load run */
} options_t;

typedef struct job {
    uint64_t id;
    uint64_t iters;       /* spin iterations (its CPU cost) */
    rt_time_t created_ns; /* when the producer made it: queueing delay includes the backlog */
} job_t;

/* Counters shared by all Gs; relaxed atomics, read by the reporter for progress lines. */
typedef struct counters {
    _Atomic uint64_t produced, sent, full, deferred, shed, backlog;
    _Atomic uint64_t done, delay_sum_ns, delay_max_ns, checksum;
    _Atomic uint64_t workers_used, jobs_max_per_worker;
    _Atomic uint64_t jobs_by_p[RT_STATS_MAX_PROCS];
} counters_t;

typedef struct demo {
    options_t opt;
    rt_chan_t *jobs; /* job_t elements, capacity JOB_CHAN_CAP */
    rt_chan_t *quit; /* closed by main when the load run is over: stops the producer */
    rt_chan_t *done; /* closed by main when the workers have joined: stops the reporter */
    rt_waitgroup_t workers, helpers;
    double ns_per_iter; /* calibrated cost of one spin iteration */
    double capacity;    /* estimated jobs/s all Ps can run: procs * 1 s / JOB_COST_NS */
    rt_time_t start_ns, end_ns;
    counters_t c;
    int exit_code;
} demo_t;

static demo_t demo;

static uint64_t load(_Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void add(_Atomic uint64_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static void store_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = load(a);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

/* The CPU work a job stands for: an xorshift chain the compiler cannot skip. */
static uint64_t spin(uint64_t seed, uint64_t iters)
{
    uint64_t x = seed | 1;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* Times the spin loop; the fastest of a few short rounds is the least disturbed one. */
static double calibrate_ns_per_iter(void)
{
    const uint64_t iters = 200000;
    double best = 1e9;
    for (int round = 0; round < 8; round++) {
        rt_time_t t0 = rt_now();
        uint64_t x = spin((uint64_t)t0, iters);
        double ns = (double)(rt_now() - t0) / (double)iters;
        add(&demo.c.checksum, x);
        best = ns < best ? ns : best;
    }
    return best > 0.01 ? best : 0.01;
}

/* The load run has three equal phases; after it the workers drain what is queued. */
static const struct {
    const char *name;
    double load; /* offered jobs/s as a multiple of the estimated capacity */
} phases[] = {{"light", 0.5}, {"overload", 1.5}, {"light", 0.5}, {"drain", 0.0}};

static int phase_at(rt_time_t t)
{
    if (t >= demo.end_ns) {
        return 3;
    }
    int i = (int)(3.0 * (double)(t - demo.start_ns) / (double)(demo.end_ns - demo.start_ns));
    return i < 0 ? 0 : i;
}

/* ---- workers ---- */

static void worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15u;
    uint64_t jobs = 0, sum = 0;
    job_t job;

    while (rt_chan_recv(demo.jobs, &job, RT_FOREVER) == RT_OK) {
        rt_time_t delay = rt_now() - job.created_ns;
        add(&demo.c.delay_sum_ns, (uint64_t)delay);
        store_max(&demo.c.delay_max_ns, (uint64_t)delay);
        /* Half the work, a cooperative scheduling point, then the rest. */
        sum += spin(seed ^ job.id, job.iters / 2);
        rt_yield();
        sum += spin(seed + job.id, job.iters - job.iters / 2);
        int p = rt_p_id();
        if (p >= 0 && p < RT_STATS_MAX_PROCS) {
            add(&demo.c.jobs_by_p[p], 1);
        }
        add(&demo.c.done, 1);
        jobs++;
    }
    add(&demo.c.checksum, sum);
    if (jobs > 0) {
        add(&demo.c.workers_used, 1);
        store_max(&demo.c.jobs_max_per_worker, jobs);
    }
    rt_wg_done(&demo.workers);
}

/* ---- producer ---- */

typedef struct backlog {
    job_t ring[BACKLOG_CAP];
    size_t head, len;
} backlog_t;

static backlog_t backlog;

/*
 * Offers `job` to the channel without blocking: select over {send job, quit}
 * with a default. Returns 1 if sent, 0 if the channel was full, -1 on quit.
 */
static int offer(job_t *job)
{
    rt_case_t cases[2] = {
        {.ch = demo.jobs, .op = RT_CASE_SEND, .elem = job},
        {.ch = demo.quit, .op = RT_CASE_RECV, .elem = NULL},
    };
    int r = rt_select(cases, RT_ARRAY_LEN(cases), RT_NOWAIT);
    if (r == 0 && cases[0].result == RT_OK) {
        add(&demo.c.sent, 1);
        return 1;
    }
    if (r == RT_EAGAIN) {
        add(&demo.c.full, 1); /* default: the channel is full right now */
        return 0;
    }
    return -1;
}

static void defer_or_shed(const job_t *job)
{
    if (backlog.len == BACKLOG_CAP) {
        add(&demo.c.shed, 1);
        return;
    }
    backlog.ring[(backlog.head + backlog.len) % BACKLOG_CAP] = *job;
    backlog.len++;
    add(&demo.c.deferred, 1);
}

/* Sends deferred jobs oldest first until the channel is full. Returns -1 on quit. */
static int flush_backlog(void)
{
    while (backlog.len > 0) {
        int r = offer(&backlog.ring[backlog.head]);
        if (r <= 0) {
            return r;
        }
        backlog.head = (backlog.head + 1) % BACKLOG_CAP;
        backlog.len--;
    }
    return 1;
}

static void producer(void *arg)
{
    (void)arg;
    uint64_t next_id = 1, rng = 0x2545f4914f6cdd1du;
    uint64_t mean = (uint64_t)(JOB_COST_NS / demo.ns_per_iter);
    double owed = 0;
    rt_time_t last = rt_now();
    bool quit = false;

    while (!quit) {
        quit = flush_backlog() < 0;
        rt_time_t now = rt_now();
        owed += demo.capacity * phases[phase_at(now)].load * (double)(now - last) / (double)RT_SEC;
        last = now;
        uint64_t n = (uint64_t)owed;
        owed -= (double)n;
        for (; n > 0 && !quit; n--) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            /* Costs vary uniformly over [0.5, 1.5) x the mean. */
            job_t job = {.id = next_id++, .iters = mean / 2 + rng % (mean + 1), .created_ns = now};
            add(&demo.c.produced, 1);
            /* Keep order: once jobs wait in the backlog, new ones queue behind them. */
            int r = backlog.len > 0 ? 0 : offer(&job);
            if (r == 0) {
                defer_or_shed(&job);
            } else if (r < 0) {
                defer_or_shed(&job);
                quit = true;
            }
        }
        atomic_store_explicit(&demo.c.backlog, backlog.len, memory_order_relaxed);
        if (!quit) {
            /* Pace the offers: wait one tick, or less if main closes `quit` meanwhile. */
            rt_time_t tick = rt_deadline_in(PRODUCER_TICK_MSEC * RT_MSEC);
            quit = rt_chan_recv(demo.quit, NULL, tick) == RT_ECLOSED;
        }
    }
    /* The run is over: hand every deferred job over, waiting for room as long as it takes. */
    for (; backlog.len > 0; backlog.len--) {
        int r = rt_chan_send(demo.jobs, &backlog.ring[backlog.head], RT_FOREVER);
        RT_CHECK(r == RT_OK, "job channel closed under the producer");
        add(&demo.c.sent, 1);
        backlog.head = (backlog.head + 1) % BACKLOG_CAP;
    }
    atomic_store_explicit(&demo.c.backlog, 0, memory_order_relaxed);
    /* As in Go, the sender closes: workers drain the buffer, then see RT_ECLOSED. */
    rt_chan_close(demo.jobs);
    rt_wg_done(&demo.helpers);
}

/* ---- reporter ---- */

typedef struct snapshot {
    rt_time_t at;
    uint64_t produced, done, delay_sum, full, deferred, shed;
} snapshot_t;

static void take(snapshot_t *s, rt_time_t now)
{
    s->at = now;
    s->produced = load(&demo.c.produced);
    s->done = load(&demo.c.done);
    s->delay_sum = load(&demo.c.delay_sum_ns);
    s->full = load(&demo.c.full);
    s->deferred = load(&demo.c.deferred);
    s->shed = load(&demo.c.shed);
}

static void report_progress(const snapshot_t *prev, const snapshot_t *cur)
{
    double dt = (double)(cur->at - prev->at) / (double)RT_SEC;
    uint64_t done = cur->done - prev->done;
    double delay_ms = done ? (double)(cur->delay_sum - prev->delay_sum) / (double)done / 1e6 : 0;
    rt_stats_t st;
    rt_stats_read(&st);

    /* printf may block on a slow terminal or pipe: let another M run this P meanwhile. */
    rt_blocking_enter();
    printf("%6.2f  %-8s %9.0f %9.0f %5zu %7" PRIu64 " %9.2f %6" PRIu64 " %8" PRIu64 " %7" PRIu64
           " %7" PRIu64 "\n",
           (double)(cur->at - demo.start_ns) / (double)RT_SEC,
           phases[phase_at(prev->at + (cur->at - prev->at) / 2)].name,
           (double)(cur->produced - prev->produced) / dt, (double)done / dt, rt_chan_len(demo.jobs),
           load(&demo.c.backlog), delay_ms, cur->full - prev->full, cur->deferred - prev->deferred,
           cur->shed - prev->shed, st.gs_waiting);
    rt_blocking_leave();
}

/* Ticks on a fresh one-shot timer each period until `demo.done` is closed. */
static void reporter(void *arg)
{
    (void)arg;
    int64_t total = demo.end_ns - demo.start_ns;
    int64_t period = total / 12 > 500 * RT_MSEC ? total / 12 : 500 * RT_MSEC;
    rt_time_t next = demo.start_ns + period;
    snapshot_t prev, cur;
    take(&prev, demo.start_ns);
    printf("     t  phase    offered/s    done/s queue backlog  delay ms   full deferred    shed"
           " Gs parked\n");

    for (;;) {
        rt_timer_t *tick = rt_timer_new(next);
        rt_time_t fired = 0;
        rt_case_t cases[2] = {
            {.ch = rt_timer_chan(tick), .op = RT_CASE_RECV, .elem = &fired},
            {.ch = demo.done, .op = RT_CASE_RECV, .elem = NULL},
        };
        int r = rt_select(cases, RT_ARRAY_LEN(cases), RT_FOREVER);
        rt_timer_free(tick);
        if (r != 0) {
            break;
        }
        take(&cur, fired);
        report_progress(&prev, &cur);
        prev = cur;
        next += period;
    }
    rt_wg_done(&demo.helpers);
}

/* ---- main G ---- */

static void print_stats(const rt_stats_t *peak, const rt_stats_t *end, double elapsed)
{
    printf("\nruntime (rt_stats_read)            at peak     at end\n");
    printf("  %-28s %10" PRIu32 "\n", "Ps (procs)", end->procs);
    printf("  %-28s %10" PRIu32 " %10" PRIu32 "\n", "Ms (OS threads)", peak->ms, end->ms);
    printf("  %-28s %10" PRIu64 " %10" PRIu64 "\n", "Gs live", peak->gs_live, end->gs_live);
    printf("  %-28s %10" PRIu64 " %10" PRIu64 "\n", "Gs waiting", peak->gs_waiting,
           end->gs_waiting);
    printf("  %-28s %10" PRIu64 " %10" PRIu64 "\n", "stacks", peak->stacks, end->stacks);
    printf("  %-28s %10" PRIu64 " %10" PRIu64 "\n", "stacks with a guard page",
           peak->stacks_guarded, end->stacks_guarded);
    printf("  %-28s %10.1f %10.1f MiB\n", "stack bytes mapped",
           (double)peak->stack_bytes_mapped / 1048576.0,
           (double)end->stack_bytes_mapped / 1048576.0);
    printf("  %-28s %10.1f %10.1f MiB\n", "stack bytes resident",
           (double)peak->stack_bytes_resident / 1048576.0,
           (double)end->stack_bytes_resident / 1048576.0);
    printf("\ncounters over the whole run       total     per second\n");

    const struct {
        const char *name;
        uint64_t value;
    } rows[] = {
        {"spawns", end->spawns},
        {"parks", end->parks},
        {"yields", end->yields},
        {"steals", end->steals},
        {"Gs stolen", end->stolen_gs},
        {"timer fires", end->timer_fires},
        {"P handoffs (blocking calls)", end->handoffs},
        {"M parks", end->m_parks},
        {"hogs reported", end->hogs_reported},
    };

    for (size_t i = 0; i < RT_ARRAY_LEN(rows); i++) {
        printf("  %-28s %10" PRIu64 " %12.0f\n", rows[i].name, rows[i].value,
               (double)rows[i].value / elapsed);
    }
    printf("  %-28s", "Gs run by each P");
    for (uint32_t p = 0; p < end->procs && p < RT_STATS_MAX_PROCS; p++) {
        printf(" %" PRIu64, end->p_schedules[p]);
    }
    printf("\n");
}

static void print_summary(double elapsed, int64_t spawn_ns)
{
    counters_t *c = &demo.c;
    uint64_t done = load(&c->done);
    printf("\nwork\n");
    printf("  %-28s %10ld in %.1f ms (%.0f/s)\n", "worker Gs spawned", demo.opt.gs,
           (double)spawn_ns / 1e6, (double)demo.opt.gs / ((double)spawn_ns / 1e9));
    printf("  %-28s %10" PRIu64 " (%.0f/s)\n", "jobs produced", load(&c->produced),
           (double)load(&c->produced) / elapsed);
    printf("  %-28s %10" PRIu64 " (%.0f/s)\n", "jobs done", done, (double)done / elapsed);
    printf("  %-28s %10" PRIu64 "\n", "select hit default (full)", load(&c->full));
    printf("  %-28s %10" PRIu64 "\n", "jobs deferred to backlog", load(&c->deferred));
    printf("  %-28s %10" PRIu64 "\n", "jobs shed (backlog full)", load(&c->shed));
    printf("  %-28s %10.2f ms avg %10.2f ms max\n", "queueing delay",
           done ? (double)load(&c->delay_sum_ns) / (double)done / 1e6 : 0.0,
           (double)load(&c->delay_max_ns) / 1e6);
    printf("  %-28s %10" PRIu64 " of %ld (busiest ran %" PRIu64 " jobs)\n", "workers that ran jobs",
           load(&c->workers_used), demo.opt.gs, load(&c->jobs_max_per_worker));
    printf("  %-28s", "jobs run on each P");
    for (int p = 0; p < rt_procs() && p < RT_STATS_MAX_PROCS; p++) {
        printf(" %" PRIu64, load(&c->jobs_by_p[p]));
    }
    printf("\n");
}

static void demo_main(void *arg)
{
    (void)arg;
    demo.capacity = (double)rt_procs() * (double)RT_SEC / JOB_COST_NS;
    demo.jobs = rt_chan_new(sizeof(job_t), JOB_CHAN_CAP);
    demo.quit = rt_chan_new(1, 0);
    demo.done = rt_chan_new(1, 0);

    printf("remora-rt-demo: %d Ps, %ld worker Gs, %.1f s of load; job channel %d deep, "
           "backlog %d\n",
           rt_procs(), demo.opt.gs, demo.opt.seconds, JOB_CHAN_CAP, BACKLOG_CAP);
    printf("jobs cost %.0f us of CPU on average (%.2f ns per spin step), so the Ps can run "
           "about %.0f jobs/s;\nthe producer offers 0.5x, then 1.5x, then 0.5x of that.\n\n",
           JOB_COST_NS / 1e3, demo.ns_per_iter, demo.capacity);

    rt_time_t t0 = rt_now();
    for (long i = 0; i < demo.opt.gs; i++) {
        rt_wg_add(&demo.workers, 1);
        int err = rt_go(worker, (void *)(uintptr_t)i);
        if (err != RT_OK) {
            rt_wg_add(&demo.workers, -1);
            fprintf(stderr, "remora-rt-demo: rt_go failed after %ld Gs: %s\n", i, rt_strerror(err));
            demo.opt.gs = i;
            demo.exit_code = 1;
            break;
        }
        /* Cooperative scheduling: a long loop offers its P to others now and then. */
        if (i % 64 == 63) {
            rt_yield();
        }
    }
    int64_t spawn_ns = rt_now() - t0;

    /* Measure when every worker is parked in its first receive (or after 2 s at most). */
    rt_stats_t peak;
    rt_time_t give_up = rt_deadline_in(2 * RT_SEC);
    do {
        rt_sleep(RT_MSEC);
        rt_stats_read(&peak);
    } while (peak.gs_waiting < (uint64_t)demo.opt.gs && rt_now() < give_up);
    rt_stats_read_resident(&peak);

    demo.start_ns = rt_now();
    demo.end_ns = demo.start_ns + (rt_time_t)(demo.opt.seconds * (double)RT_SEC);
    rt_wg_add(&demo.helpers, 2);
    int e1 = rt_go(producer, NULL);
    int e2 = rt_go(reporter, NULL);
    RT_CHECK(e1 == RT_OK && e2 == RT_OK, "cannot spawn the producer and reporter");

    rt_sleep_until(demo.end_ns);
    rt_chan_close(demo.quit);
    rt_wg_wait(&demo.workers);
    rt_chan_close(demo.done);
    rt_wg_wait(&demo.helpers);
    double elapsed = (double)(rt_now() - demo.start_ns) / (double)RT_SEC;

    rt_stats_t end;
    rt_stats_read_resident(&end);
    print_summary(elapsed, spawn_ns);
    print_stats(&peak, &end, elapsed);

    uint64_t produced = load(&demo.c.produced), sent = load(&demo.c.sent);
    uint64_t shed = load(&demo.c.shed), done = load(&demo.c.done);
    bool ok = sent == done && sent + shed == produced;
    printf("\naccounting: produced %" PRIu64 " = sent %" PRIu64 " + shed %" PRIu64 "; done %" PRIu64
           ": %s (checksum %016" PRIx64 ")\n",
           produced, sent, shed, done, ok ? "ok" : "MISMATCH", load(&demo.c.checksum));
    if (!ok) {
        demo.exit_code = 1;
    }
    rt_chan_free(demo.jobs);
    rt_chan_free(demo.quit);
    rt_chan_free(demo.done);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out, "usage: remora-rt-demo [--procs N] [--gs N] [--seconds N]\n"
                 "  --procs N    Ps to run on (0 = one per CPU; default 0)\n"
                 "  --gs N       worker Gs to spawn (default 10000)\n"
                 "  --seconds N  length of the load run, may be fractional (default 3)\n");
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static int parse_options(int argc, char **argv, options_t *opt)
{
    static const struct option longopts[] = {
        {"procs", required_argument, NULL, 'p'},
        {"gs", required_argument, NULL, 'g'},
        {"seconds", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    long n;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            if (!parse_long(optarg, 0, RT_STATS_MAX_PROCS, &n)) {
                fprintf(stderr, "remora-rt-demo: --procs wants 0..%d\n", RT_STATS_MAX_PROCS);
                return 2;
            }
            opt->procs = (int)n;
            break;
        case 'g':
            if (!parse_long(optarg, 1, MAX_GS, &opt->gs)) {
                fprintf(stderr, "remora-rt-demo: --gs wants 1..%d\n", MAX_GS);
                return 2;
            }
            break;
        case 's':
            if (!parse_double(optarg, 0.1, 3600, &opt->seconds)) {
                fprintf(stderr, "remora-rt-demo: --seconds wants 0.1..3600\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "remora-rt-demo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    demo.opt = (options_t){.procs = 0, .gs = 10000, .seconds = 3.0};
    int rc = parse_options(argc, argv, &demo.opt);
    if (rc >= 0) {
        return rc;
    }
    /* Before the runtime starts, so no G holds a P for the milliseconds this takes. */
    demo.ns_per_iter = calibrate_ns_per_iter();
    /* Line-buffered even into a pipe, so progress shows up as it happens. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    rt_config_t cfg = {.procs = demo.opt.procs};
    int err = rt_run(&cfg, demo_main, NULL);
    if (err != RT_OK) {
        fprintf(stderr, "remora-rt-demo: rt_run: %s\n", rt_strerror(err));
        return 1;
    }
    return demo.exit_code;
}
