/* SPDX-License-Identifier: MIT */
/*
 * test_sched.c - suite "runtime/sched": the scheduler of runtime/proc.c,
 * runq.c and sysmon.c: work spreading and stealing, wait groups, yield,
 * blocking-call handoff, hog reporting, sysmon asleep while idle, thread
 * pinning, G ids, restarts.
 */
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* ---- a burst of Gs spreads over both Ms ---- */

typedef struct burst {
    long n;
    pid_t *tids;
    int *pids;
    _Atomic long next;
    rt_waitgroup_t wg;
    int wait_rc;
    rt_stats_t stats;
} burst_t;

static burst_t *burst_state;
static _Atomic uint64_t burst_sink;

static void burst_worker(void *arg)
{
    burst_t *b = burst_state;
    long i = (long)(intptr_t)arg;
    /* A couple of microseconds of work keeps the spawner's queue populated. */
    volatile uint64_t x = 0;
    for (int k = 0; k < 500; k++) {
        x = x + (uint64_t)k * (uint64_t)i;
    }
    atomic_store_explicit(&burst_sink, x, memory_order_relaxed);
    b->tids[i] = th_gettid();
    b->pids[i] = rt_p_id();
    rt_wg_done(&b->wg);
}

static void burst_main(void *arg)
{
    burst_t *b = arg;
    burst_state = b;
    rt_wg_add(&b->wg, b->n);
    for (long i = 0; i < b->n; i++) {
        th_go(burst_worker, (void *)(intptr_t)i);
    }
    b->wait_rc = th_wg_wait_until(&b->wg, rt_deadline_in(th_slack(20 * RT_SEC)));
    rt_stats_read(&b->stats);
}

START_TEST(test_sched_burst_runs_on_both_ms_and_steals)
{
    burst_t b;
    memset(&b, 0, sizeof(b));
    b.n = th_scaled_gs(100000);
    b.tids = calloc((size_t)b.n, sizeof(*b.tids));
    b.pids = calloc((size_t)b.n, sizeof(*b.pids));
    ck_assert_ptr_nonnull(b.tids);
    ck_assert_ptr_nonnull(b.pids);
    for (long i = 0; i < b.n; i++) {
        b.pids[i] = -2;
    }

    th_rt_run(burst_main, &b, 2);

    ck_assert_int_eq(b.wait_rc, RT_OK);
    long per_p[2] = {0, 0}, bad_p = 0, missing = 0;
    for (long i = 0; i < b.n; i++) {
        if (b.tids[i] == 0) {
            missing++;
        }
        if (b.pids[i] == 0 || b.pids[i] == 1) {
            per_p[b.pids[i]]++;
        } else {
            bad_p++;
        }
    }
    ck_assert_int_eq(missing, 0);
    ck_assert_int_eq(bad_p, 0);
    qsort(b.tids, (size_t)b.n, sizeof(*b.tids), cmp_pid);
    long distinct = 1;
    for (long i = 1; i < b.n; i++) {
        distinct += b.tids[i] != b.tids[i - 1];
    }
    ck_assert_msg(distinct >= 2, "all %ld Gs ran on one OS thread", b.n);
    ck_assert_msg(per_p[0] > 0 && per_p[1] > 0, "P0 ran %ld Gs, P1 ran %ld", per_p[0], per_p[1]);
    ck_assert_uint_eq(b.stats.procs, 2);
    ck_assert_msg(b.stats.spawns >= (uint64_t)b.n, "spawns %llu < %ld",
                  (unsigned long long)b.stats.spawns, b.n);
    ck_assert_msg(b.stats.steals > 0,
                  "no steals while one G spawned %ld Gs on 2 Ps (P0 ran %ld, P1 ran %ld, "
                  "RT_SEED=%llu)",
                  b.n, per_p[0], per_p[1], (unsigned long long)th_seed());
    ck_assert_msg(b.stats.p_schedules[0] > 0 && b.stats.p_schedules[1] > 0,
                  "p_schedules %llu / %llu", (unsigned long long)b.stats.p_schedules[0],
                  (unsigned long long)b.stats.p_schedules[1]);
    free(b.tids);
    free(b.pids);
}

END_TEST

/* ---- wait groups ---- */

#define WG_WORKERS 1000
#define WG_WAITERS 4

typedef struct wgtest {
    rt_waitgroup_t wg, waiters;
    _Atomic long finished;
    long seen_by_waiter[WG_WAITERS];
    _Atomic int next_waiter;
    int waiters_rc;
    long zero_wait_finished;
    long reuse_finished;
} wgtest_t;

static void wg_worker(void *arg)
{
    wgtest_t *w = arg;
    uint64_t rng = th_rand_init((uint64_t)rt_g_id());
    if (th_rand(&rng) % 2) {
        rt_sleep((int64_t)(th_rand(&rng) % (2 * RT_MSEC)));
    } else {
        rt_yield();
    }
    atomic_fetch_add(&w->finished, 1);
    rt_wg_done(&w->wg);
}

static void wg_waiter(void *arg)
{
    wgtest_t *w = arg;
    int me = atomic_fetch_add(&w->next_waiter, 1);
    rt_wg_wait(&w->wg);
    w->seen_by_waiter[me] = atomic_load(&w->finished);
    rt_wg_done(&w->waiters);
}

static void wg_main(void *arg)
{
    wgtest_t *w = arg;
    rt_waitgroup_t zero = {0};
    rt_wg_wait(&zero); /* a zero counter returns at once */
    w->zero_wait_finished = 1;

    rt_wg_add(&w->wg, WG_WORKERS);
    rt_wg_add(&w->waiters, WG_WAITERS);
    for (int i = 0; i < WG_WAITERS; i++) {
        th_go(wg_waiter, w);
    }
    for (int i = 0; i < WG_WORKERS; i++) {
        th_go(wg_worker, w);
    }
    w->waiters_rc = th_wg_wait_until(&w->waiters, rt_deadline_in(th_slack(20 * RT_SEC)));
    if (w->waiters_rc != RT_OK) {
        return;
    }
    /* The same wait group is reusable once it reached zero. */
    atomic_store(&w->finished, 0);
    rt_wg_add(&w->wg, 10);
    for (int i = 0; i < 10; i++) {
        th_go(wg_worker, w);
    }
    rt_wg_wait(&w->wg);
    w->reuse_finished = atomic_load(&w->finished);
}

START_TEST(test_sched_waitgroup_wait_joins_every_g)
{
    wgtest_t w;
    memset(&w, 0, sizeof(w));
    th_rt_run(wg_main, &w, 2);
    ck_assert_int_eq(w.zero_wait_finished, 1);
    ck_assert_int_eq(w.waiters_rc, RT_OK);
    for (int i = 0; i < WG_WAITERS; i++) {
        ck_assert_int_eq(w.seen_by_waiter[i], WG_WORKERS);
    }
    ck_assert_int_eq(w.reuse_finished, 10);
}

END_TEST

/* ---- yield ---- */

#define YIELD_ROUNDS 2000

typedef struct yielder {
    _Atomic long count[2];
    _Atomic bool done[2];
    long stalls[2];
    rt_waitgroup_t wg;
    _Atomic int next;
    uint64_t yields;
} yielder_t;

static void yield_worker(void *arg)
{
    yielder_t *y = arg;
    int me = atomic_fetch_add(&y->next, 1), other = 1 - me;
    for (long i = 0; i < YIELD_ROUNDS; i++) {
        atomic_fetch_add(&y->count[me], 1);
        long before = atomic_load(&y->count[other]);
        rt_yield();
        /* procs=1: yielding with another G runnable must run that G first. */
        if (!atomic_load(&y->done[other]) && atomic_load(&y->count[other]) == before) {
            y->stalls[me]++;
        }
    }
    atomic_store(&y->done[me], true);
    rt_wg_done(&y->wg);
}

static void yield_main(void *arg)
{
    yielder_t *y = arg;
    rt_stats_t before, after;
    rt_stats_read(&before);
    rt_wg_add(&y->wg, 2);
    th_go(yield_worker, y);
    th_go(yield_worker, y);
    rt_wg_wait(&y->wg);
    rt_stats_read(&after);
    y->yields = after.yields - before.yields;
}

START_TEST(test_sched_yield_runs_another_g)
{
    yielder_t y;
    memset(&y, 0, sizeof(y));
    th_rt_run(yield_main, &y, 1);
    ck_assert_int_eq(y.count[0], YIELD_ROUNDS);
    ck_assert_int_eq(y.count[1], YIELD_ROUNDS);
    ck_assert_msg(y.stalls[0] == 0 && y.stalls[1] == 0,
                  "rt_yield returned without running the other runnable G (%ld, %ld times)",
                  y.stalls[0], y.stalls[1]);
    ck_assert_msg(y.yields >= 2 * YIELD_ROUNDS, "stats.yields grew by %llu",
                  (unsigned long long)y.yields);
}

END_TEST

/* ---- yield rotates the run queue, even a full one ---- */

#define ROTATE_ROUNDS 40
#define ROTATE_MAX_GS 257 /* one running + a full local run queue of 256 */

typedef struct rotation {
    int ngs;
    _Atomic int started;
    rt_waitgroup_t wg;
    int log[ROTATE_MAX_GS * ROTATE_ROUNDS];
    int len;
} rotation_t;

static rotation_t rot;

static void rotate_worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    /* G 0 spawns the others, so that the parked main G is not in the ring:
     * the spawner steps back (yields) once its queue is full, and with main
     * in there too half the queue would spill to the global queue. */
    if (me == 0) {
        for (int i = 1; i < rot.ngs; i++)
            th_go(rotate_worker, (void *)(intptr_t)i);
    }
    atomic_fetch_add(&rot.started, 1);
    while (atomic_load(&rot.started) < rot.ngs)
        rt_yield(); /* start the log only when every G is in the ring */
    for (int r = 0; r < ROTATE_ROUNDS; r++) {
        rot.log[rot.len++] = me; /* procs=1: no other thread writes */
        rt_yield();
    }
    rt_wg_done(&rot.wg);
}

static void rotate_main(void *arg)
{
    (void)arg;
    rt_wg_add(&rot.wg, rot.ngs);
    th_go(rotate_worker, (void *)(intptr_t)0);
    rt_wg_wait(&rot.wg);
}

/* procs=1: once every G is in the ring, yields take turns strictly: each
 * stretch of ngs entries of the log names every G once, in the same order.
 * With 257 Gs the local run queue (256) is full at every yield, so the
 * rotation reads and writes the same slot. */
static void check_rotation(int ngs)
{
    memset(&rot, 0, sizeof(rot));
    rot.ngs = ngs;
    th_rt_run(rotate_main, NULL, 1);
    ck_assert_int_eq(rot.len, ngs * ROTATE_ROUNDS);
    for (int k = ngs; k < rot.len; k++) {
        ck_assert_msg(rot.log[k] == rot.log[k - ngs],
                      "%d Gs: turn %d went to G %d, a round earlier to G %d", ngs, k, rot.log[k],
                      rot.log[k - ngs]);
    }
    bool seen[ROTATE_MAX_GS] = {false};
    for (int k = 0; k < ngs; k++) {
        ck_assert_msg(!seen[rot.log[k]], "%d Gs: G %d ran twice in one round", ngs, rot.log[k]);
        seen[rot.log[k]] = true;
    }
}

START_TEST(test_sched_yield_rotates_every_g_in_turn)
{
    check_rotation(3);
    check_rotation(ROTATE_MAX_GS);
}

END_TEST

/* ---- blocking calls hand the P over ---- */

#define BLOCK_MS 300

typedef struct blocking {
    int pipefd[2];
    _Atomic long counter;
    _Atomic bool stop;
    long during;
    int poll_rc;
    rt_time_t blocked_ns;
    rt_chan_t *done;
    int blocker_rc, counter_rc;
} blocking_t;

static void blocking_counter(void *arg)
{
    blocking_t *b = arg;
    while (!atomic_load(&b->stop)) {
        atomic_fetch_add(&b->counter, 1);
        rt_yield();
    }
    char token = 'c';
    (void)rt_chan_send(b->done, &token, RT_NOWAIT);
}

static void blocking_blocker(void *arg)
{
    blocking_t *b = arg;
    long before = atomic_load(&b->counter);
    rt_time_t t0 = rt_now();
    rt_blocking_enter();
    /* A real blocking syscall: nobody ever writes to the pipe. */
    struct pollfd pfd = {.fd = b->pipefd[0], .events = POLLIN};
    int rc = poll(&pfd, 1, BLOCK_MS);
    rt_blocking_leave();
    b->blocked_ns = rt_now() - t0;
    b->poll_rc = rc;
    b->during = atomic_load(&b->counter) - before;
    char token = 'b';
    (void)rt_chan_send(b->done, &token, RT_NOWAIT);
}

static void blocking_main(void *arg)
{
    blocking_t *b = arg;
    b->done = rt_chan_new(1, 2);
    th_go(blocking_counter, b);
    th_go(blocking_blocker, b);
    char token = 0;
    b->blocker_rc = rt_chan_recv(b->done, &token, rt_deadline_in(th_slack(10 * RT_SEC)));
    atomic_store(&b->stop, true);
    if (b->blocker_rc == RT_OK && token == 'c') {
        b->blocker_rc = RT_EINVAL; /* the counter cannot stop before the blocker is done */
    }
    b->counter_rc = rt_chan_recv(b->done, &token, rt_deadline_in(th_slack(10 * RT_SEC)));
    if (b->counter_rc == RT_OK) {
        rt_chan_free(b->done);
    }
}

START_TEST(test_sched_blocking_call_does_not_stop_other_gs)
{
    blocking_t b;
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(pipe(b.pipefd), 0);
    th_rt_run(blocking_main, &b, 1);
    close(b.pipefd[0]);
    close(b.pipefd[1]);
    ck_assert_int_eq(b.blocker_rc, RT_OK);
    ck_assert_int_eq(b.counter_rc, RT_OK);
    ck_assert_int_eq(b.poll_rc, 0);
    ck_assert_msg(b.blocked_ns >= BLOCK_MS * RT_MSEC, "poll blocked only %lld ns",
                  (long long)b.blocked_ns);
    ck_assert_msg(b.during >= 100,
                  "procs=1: the other G ran only %ld times during a %d ms blocking call", b.during,
                  BLOCK_MS);
}

END_TEST

/* ---- a G hogging its P ---- */

#define HOG_MS 50
#define HOG_LIMIT_MS 2000
#define HOG_WORKERS 8

typedef struct hog {
    rt_time_t start, end;
    pid_t hog_tid;
    rt_time_t ran_at[HOG_WORKERS];
    pid_t ran_tid[HOG_WORKERS];
    _Atomic int next, ran;
    rt_waitgroup_t workers;
    rt_chan_t *done;
    int done_rc, workers_rc;
    uint64_t hogs_reported;
} hog_t;

static void hog_worker(void *arg)
{
    hog_t *h = arg;
    int me = atomic_fetch_add(&h->next, 1);
    h->ran_at[me] = rt_now();
    h->ran_tid[me] = th_gettid();
    atomic_fetch_add(&h->ran, 1);
    rt_wg_done(&h->workers);
}

static void hog_g(void *arg)
{
    hog_t *h = arg;
    h->hog_tid = th_gettid();
    h->start = rt_now();
    /* The workers queue up on this G's P, behind a G that will not yield. */
    for (int i = 0; i < HOG_WORKERS; i++) {
        th_go(hog_worker, h);
    }
    /*
     * Spin at least HOG_MS, and on until the queued workers have run (so a
     * loaded machine only makes it longer), but never past HOG_LIMIT_MS:
     * workers stuck behind the hog make it spin to the limit and fail.
     */
    for (;;) {
        rt_time_t now = rt_now();
        if (now >= h->start + HOG_LIMIT_MS * RT_MSEC) {
            break;
        }
        if (now >= h->start + HOG_MS * RT_MSEC && atomic_load(&h->ran) == HOG_WORKERS) {
            break;
        }
    }
    h->end = rt_now();
    char token = 1;
    (void)rt_chan_send(h->done, &token, RT_NOWAIT);
}

static void hog_main(void *arg)
{
    hog_t *h = arg;
    h->done = rt_chan_new(1, 1);
    rt_wg_add(&h->workers, HOG_WORKERS);
    th_go(hog_g, h);
    h->done_rc = rt_chan_recv(h->done, NULL, rt_deadline_in(th_slack(10 * RT_SEC)));
    h->workers_rc = th_wg_wait_until(&h->workers, rt_deadline_in(th_slack(10 * RT_SEC)));
    rt_stats_t st;
    rt_stats_read(&st);
    h->hogs_reported = st.hogs_reported;
    if (h->done_rc == RT_OK) {
        rt_chan_free(h->done);
    }
}

START_TEST(test_sched_hog_is_reported_and_its_queue_still_runs)
{
    hog_t h;
    memset(&h, 0, sizeof(h));
    th_rt_run(hog_main, &h, 2);
    ck_assert_int_eq(h.done_rc, RT_OK);
    ck_assert_int_eq(h.workers_rc, RT_OK);
    ck_assert_msg(h.hogs_reported > 0, "a G spinning %d ms was not reported (hogs_reported 0)",
                  HOG_MS);
    int during = 0;
    for (int i = 0; i < HOG_WORKERS; i++) {
        if (h.ran_at[i] >= h.start && h.ran_at[i] < h.end && h.ran_tid[i] != h.hog_tid) {
            during++;
        }
    }
    ck_assert_msg(during == HOG_WORKERS,
                  "only %d of %d Gs queued behind the hog ran elsewhere while it spun %lld ms",
                  during, HOG_WORKERS, (long long)((h.end - h.start) / RT_MSEC));
}

END_TEST

/* ---- an idle runtime: sysmon sleeps, and wakes when a P gets work ---- */

#define IDLE_MS 400

typedef struct idle {
    int sampler_rc;
    long sysmon_switches[2]; /* at 150 ms and at 350 ms of the idle sleep */
    hog_t h;
} idle_t;

/* Context switches so far of the thread named "rt-sysmon", or -1. */
static long sysmon_switches(void)
{
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks)
        return -1;
    long sum = -1;
    struct dirent *e;
    while (sum < 0 && (e = readdir(tasks))) {
        char path[300], line[128] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool is_sysmon = fgets(line, sizeof(line), f) && strcmp(line, "rt-sysmon\n") == 0;
        fclose(f);
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
        if (!is_sysmon || !(f = fopen(path, "r")))
            continue;
        sum = 0;
        while (fgets(line, sizeof(line), f)) {
            long v;
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
                sum += v;
        }
        fclose(f);
    }
    closedir(tasks);
    return sum;
}

/* Not a G: samples sysmon while the runtime has nothing to do. */
static void *idle_sampler(void *arg)
{
    idle_t *s = arg;
    usleep(150 * 1000);
    s->sysmon_switches[0] = sysmon_switches();
    usleep(200 * 1000);
    s->sysmon_switches[1] = sysmon_switches();
    return NULL;
}

static void idle_main(void *arg)
{
    idle_t *s = arg;
    pthread_t sampler;
    s->sampler_rc = pthread_create(&sampler, NULL, idle_sampler, s);
    if (s->sampler_rc != 0)
        return;
    rt_sleep(IDLE_MS * RT_MSEC);
    pthread_join(sampler, NULL);
    hog_main(&s->h); /* sysmon must wake to report the hog and spread its queue */
}

START_TEST(test_sched_idle_runtime_sysmon_sleeps_and_wakes_for_a_hog)
{
    idle_t s;
    memset(&s, 0, sizeof(s));
    th_rt_run(idle_main, &s, 2);
    ck_assert_int_eq(s.sampler_rc, 0);
    ck_assert_msg(s.sysmon_switches[0] >= 0, "no thread named rt-sysmon");
    long woke = s.sysmon_switches[1] - s.sysmon_switches[0];
    ck_assert_msg(woke <= 2, "sysmon woke %ld times in 200 ms of an idle runtime", woke);
    ck_assert_int_eq(s.h.done_rc, RT_OK);
    ck_assert_int_eq(s.h.workers_rc, RT_OK);
    ck_assert_msg(s.h.hogs_reported > 0, "after an idle spell, a G spinning %d ms was not reported",
                  HOG_MS);
    ck_assert_msg(s.h.end - s.h.start < HOG_LIMIT_MS * RT_MSEC,
                  "after an idle spell, the Gs queued behind a hog waited for it to give up");
}

END_TEST

/* ---- one P out of work goes to the poller, it does not spin ---- */

#define WAKES 400

typedef struct wakes {
    int fds[2];
    int rc, writer_rc, n;
    int64_t cpu_ns; /* of the M, over all the wake-ups */
} wakes_t;

/* Not a G: one byte every 300 us, each a wake-up of an idle runtime. */
static void *wake_writer(void *arg)
{
    wakes_t *w = arg;
    for (int i = 0; i < WAKES; i++) {
        usleep(300);
        if (write(w->fds[1], "x", 1) != 1)
            return NULL;
    }
    return NULL;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * RT_SEC + ts.tv_nsec;
}

static void wakes_main(void *arg)
{
    wakes_t *w = arg;
    rt_netfd_t *nfd;
    if ((w->rc = rt_netfd_open(w->fds[0], &nfd)) != RT_OK)
        return;
    pthread_t writer;
    if ((w->writer_rc = pthread_create(&writer, NULL, wake_writer, w)) != 0) {
        rt_netfd_close(nfd);
        return;
    }
    int64_t cpu0 = thread_cpu_ns();
    while (w->n < WAKES) {
        char c;
        ssize_t r = rt_read(nfd, &c, 1, rt_deadline_in(th_slack(2 * RT_SEC)));
        if (r != 1) {
            w->rc = r < 0 ? (int)r : RT_EINVAL;
            break;
        }
        w->n++;
    }
    w->cpu_ns = thread_cpu_ns() - cpu0; /* one P, no blocking calls: all on this M */
    pthread_join(writer, NULL);
    rt_netfd_close(nfd);
}

START_TEST(test_sched_one_p_out_of_work_polls_without_spinning)
{
    wakes_t w;
    memset(&w, 0, sizeof(w));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, w.fds), 0);
    th_rt_run(wakes_main, &w, 1);
    close(w.fds[1]);
    ck_assert_int_eq(w.rc, RT_OK);
    ck_assert_int_eq(w.writer_rc, 0);
    ck_assert_int_eq(w.n, WAKES);
    /* A wake-up costs an epoll_wait and a read: 15 us of CPU in a Debug
     * build. With the spin before the poller it was 75 us. */
    int64_t per_wake = w.cpu_ns / WAKES;
    ck_assert_msg(per_wake < th_slack(50 * RT_USEC), "%lld ns of CPU per wake-up of an idle P",
                  (long long)per_wake);
}

END_TEST

/* ---- LockOSThread ---- */

#define PIN_ROUNDS 1000
#define PIN_WORKERS 4

typedef struct pin {
    pid_t pinned_tid;
    _Atomic bool locked, finished;
    long moved;
    long nested_moved;
    _Atomic long worker_work, worker_on_pinned_thread;
    long work_while_pinned;
    rt_waitgroup_t wg;
    int wait_rc;
} pin_t;

static void pin_worker(void *arg)
{
    pin_t *p = arg;
    long k = 0;
    while (!atomic_load(&p->finished)) {
        /* No park between these two reads: both happen on one thread. */
        pid_t tid = th_gettid();
        if (atomic_load(&p->locked) && tid == p->pinned_tid) {
            atomic_fetch_add(&p->worker_on_pinned_thread, 1);
        }
        atomic_fetch_add(&p->worker_work, 1);
        if (++k % 8 == 0) {
            rt_sleep(20 * RT_USEC);
        } else {
            rt_yield();
        }
    }
    rt_wg_done(&p->wg);
}

static void pin_g(void *arg)
{
    pin_t *p = arg;
    rt_lock_os_thread();
    p->pinned_tid = th_gettid();
    atomic_store(&p->locked, true);
    long work0 = atomic_load(&p->worker_work);
    for (int i = 0; i < PIN_ROUNDS; i++) {
        if (i % 2 == 0) {
            rt_yield();
        } else {
            rt_sleep(10 * RT_USEC);
        }
        if (th_gettid() != p->pinned_tid) {
            p->moved++;
        }
    }
    /* Nesting: one unlock of two locks keeps the G pinned. */
    rt_lock_os_thread();
    rt_unlock_os_thread();
    for (int i = 0; i < 50; i++) {
        rt_sleep(10 * RT_USEC);
        if (th_gettid() != p->pinned_tid) {
            p->nested_moved++;
        }
    }
    p->work_while_pinned = atomic_load(&p->worker_work) - work0;
    atomic_store(&p->locked, false);
    rt_unlock_os_thread();
    atomic_store(&p->finished, true);
    rt_wg_done(&p->wg);
}

static void pin_main(void *arg)
{
    pin_t *p = arg;
    rt_wg_add(&p->wg, 1 + PIN_WORKERS);
    th_go(pin_g, p);
    for (int i = 0; i < PIN_WORKERS; i++) {
        th_go(pin_worker, p);
    }
    p->wait_rc = th_wg_wait_until(&p->wg, rt_deadline_in(th_slack(20 * RT_SEC)));
}

START_TEST(test_sched_lock_os_thread_keeps_g_on_one_thread)
{
    pin_t p;
    memset(&p, 0, sizeof(p));
    th_rt_run(pin_main, &p, 2);
    ck_assert_int_eq(p.wait_rc, RT_OK);
    ck_assert_msg(p.moved == 0, "pinned G changed OS thread %ld times in %d yields/sleeps", p.moved,
                  PIN_ROUNDS);
    ck_assert_int_eq(p.nested_moved, 0);
    ck_assert_msg(p.worker_on_pinned_thread == 0, "other Gs ran %ld times on the pinned thread",
                  (long)p.worker_on_pinned_thread);
    ck_assert_msg(p.work_while_pinned > 0, "other Gs made no progress while a G was pinned");
}

END_TEST

/* ---- identity, rt_exit, outside the runtime, restarts ---- */

#define ID_GS 1000

typedef struct ids {
    uint64_t main_id;
    int procs_seen;
    bool in_g;
    uint64_t ids[ID_GS];
    _Atomic long bad_p;
    rt_waitgroup_t wg;
    _Atomic int next;
    _Atomic long after_exit;
    bool all_ended;
    long nested_rc;
    _Atomic int nested_ran;
} ids_t;

/* Calls rt_exit from `depth` frames down; the frames are never returned to. */
static void exit_from_depth(int depth);
static void (*volatile exit_next)(int) = exit_from_depth; /* hides the recursion from gcc */

static void exit_from_depth(int depth)
{
    if (depth <= 0) {
        rt_exit();
    }
    exit_next(depth - 1);
}

static void ids_worker(void *arg)
{
    ids_t *s = arg;
    int me = atomic_fetch_add(&s->next, 1);
    s->ids[me] = rt_g_id();
    if (rt_p_id() < 0 || rt_p_id() >= rt_procs()) {
        atomic_fetch_add(&s->bad_p, 1);
    }
    rt_wg_done(&s->wg);
    if (me % 2 == 0) {
        exit_from_depth(me % 7);
        atomic_fetch_add(&s->after_exit, 1); /* never reached */
    }
}

static void nested_main(void *arg)
{
    ids_t *s = arg;
    atomic_store(&s->nested_ran, 1);
}

static void ids_main(void *arg)
{
    ids_t *s = arg;
    rt_stats_t st;
    rt_stats_read(&st);
    s->main_id = rt_g_id();
    s->procs_seen = rt_procs();
    s->in_g = rt_in_g();
    s->nested_rc = rt_run(NULL, nested_main, s); /* not reentrant */
    rt_wg_add(&s->wg, ID_GS);
    for (int i = 0; i < ID_GS; i++) {
        th_go(ids_worker, s);
    }
    rt_wg_wait(&s->wg);
    /* Wait until every worker has ended, so a G that survived rt_exit is counted. */
    s->all_ended = th_wait_gs_live_at_most(st.gs_live, rt_deadline_in(th_slack(10 * RT_SEC)));
}

START_TEST(test_sched_g_ids_unique_and_exit_ends_g)
{
    ids_t s;
    memset(&s, 0, sizeof(s));
    th_rt_run(ids_main, &s, 2);
    ck_assert_uint_eq(s.main_id, 1);
    ck_assert_int_eq(s.procs_seen, 2);
    ck_assert(s.in_g);
    ck_assert_int_eq(s.nested_rc, RT_ESTATE);
    ck_assert_int_eq(s.nested_ran, 0);
    ck_assert_int_eq(s.bad_p, 0);
    ck_assert_msg(s.all_ended, "gs_live never fell back to its value before the spawns");
    ck_assert_int_eq(s.after_exit, 0);
    qsort(s.ids, ID_GS, sizeof(s.ids[0]), cmp_u64);
    ck_assert_uint_gt(s.ids[0], 1);
    long dups = 0;
    for (int i = 1; i < ID_GS; i++) {
        dups += s.ids[i] == s.ids[i - 1];
    }
    ck_assert_int_eq(dups, 0);
}

END_TEST

static void must_not_run(void *arg)
{
    atomic_store((_Atomic int *)arg, 1);
}

static void trivial_main(void *arg)
{
    (void)arg;
}

START_TEST(test_sched_go_outside_runtime_returns_estate)
{
    _Atomic int ran = 0;
    ck_assert(!rt_in_g());
    ck_assert_uint_eq(rt_g_id(), 0);
    ck_assert_int_eq(rt_p_id(), -1);
    ck_assert_int_eq(rt_go(must_not_run, (void *)&ran), RT_ESTATE);
    /* ... and still after a run has come and gone. */
    th_rt_run(trivial_main, NULL, 2);
    ck_assert(!rt_in_g());
    ck_assert_int_eq(rt_go(must_not_run, (void *)&ran), RT_ESTATE);
    ck_assert_int_eq(ran, 0);
}

END_TEST

typedef struct restart {
    int run;
    _Atomic long counter;
    long counts[3];
    uint64_t main_ids[3];
    int procs[3];
    rt_waitgroup_t wg;
} restart_t;

static void restart_worker(void *arg)
{
    restart_t *r = arg;
    rt_yield();
    atomic_fetch_add(&r->counter, 1);
    rt_wg_done(&r->wg);
}

static void restart_main(void *arg)
{
    restart_t *r = arg;
    r->main_ids[r->run] = rt_g_id();
    r->procs[r->run] = rt_procs();
    atomic_store(&r->counter, 0);
    rt_wg_add(&r->wg, 100);
    for (int i = 0; i < 100; i++) {
        th_go(restart_worker, r);
    }
    rt_wg_wait(&r->wg);
    r->counts[r->run] = atomic_load(&r->counter);
}

START_TEST(test_sched_run_is_restartable)
{
    restart_t r;
    memset(&r, 0, sizeof(r));
    static const int procs[3] = {2, 1, 2};
    for (r.run = 0; r.run < 3; r.run++) {
        th_rt_run(restart_main, &r, procs[r.run]);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r.counts[i], 100);
        ck_assert_uint_eq(r.main_ids[i], 1);
        ck_assert_int_eq(r.procs[i], procs[i]);
    }
}

END_TEST

Suite *suite_runtime_sched(void)
{
    Suite *s = suite_create("runtime/sched");

    TCase *tc = tcase_create("spread");
    tcase_add_test(tc, test_sched_burst_runs_on_both_ms_and_steals);
    tcase_add_test(tc, test_sched_waitgroup_wait_joins_every_g);
    tcase_add_test(tc, test_sched_yield_runs_another_g);
    tcase_add_test(tc, test_sched_yield_rotates_every_g_in_turn);
    tcase_add_test(tc, test_sched_one_p_out_of_work_polls_without_spinning);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocking");
    tcase_add_test(tc, test_sched_blocking_call_does_not_stop_other_gs);
    tcase_add_test(tc, test_sched_hog_is_reported_and_its_queue_still_runs);
    tcase_add_test(tc, test_sched_idle_runtime_sysmon_sleeps_and_wakes_for_a_hog);
    tcase_add_test(tc, test_sched_lock_os_thread_keeps_g_on_one_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_sched_g_ids_unique_and_exit_ends_g);
    tcase_add_test(tc, test_sched_go_outside_runtime_returns_estate);
    tcase_add_test(tc, test_sched_run_is_restartable);
    suite_add_tcase(s, tc);
    return s;
}
