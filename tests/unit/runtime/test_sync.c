/* SPDX-License-Identifier: MIT */
/*
 * test_sync.c - suite "runtime/sync": G-aware primitives of runtime/sync.c,
 * pool.c and value.c: rt_mutex (exclusion, parking), rt_once, rt_pool
 * ownership and recycling, rt_value reclamation under concurrent readers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

/* ---- mutex ---- */

#define MUTEX_GS 100

typedef struct mutex_count {
    long per_g;
    rt_mutex_t mu;
    long counter; /* protected by mu; deliberately not atomic */
    _Atomic int inside;
    _Atomic long overlaps;
    rt_waitgroup_t wg;
    int wait_rc;
    bool trylock_held, trylock_free;
} mutex_count_t;

static void mutex_count_g(void *arg)
{
    mutex_count_t *m = arg;
    for (long i = 0; i < m->per_g; i++) {
        rt_mutex_lock(&m->mu);
        if (atomic_fetch_add(&m->inside, 1) != 0) {
            atomic_fetch_add(&m->overlaps, 1);
        }
        m->counter++;
        if (i % 64 == 0) {
            rt_yield(); /* hold the lock across a switch so that others must wait */
        }
        atomic_fetch_sub(&m->inside, 1);
        rt_mutex_unlock(&m->mu);
    }
    rt_wg_done(&m->wg);
}

static void mutex_count_main(void *arg)
{
    mutex_count_t *m = arg;
    rt_mutex_lock(&m->mu);
    m->trylock_held = rt_mutex_trylock(&m->mu);
    rt_mutex_unlock(&m->mu);
    m->trylock_free = rt_mutex_trylock(&m->mu);
    if (m->trylock_free) {
        rt_mutex_unlock(&m->mu);
    }
    rt_wg_add(&m->wg, MUTEX_GS);
    for (int i = 0; i < MUTEX_GS; i++) {
        th_go(mutex_count_g, m);
    }
    m->wait_rc = th_wg_wait_until(&m->wg, rt_deadline_in(th_slack(20 * RT_SEC)));
}

START_TEST(test_sync_mutex_counter_is_exact)
{
    mutex_count_t m;
    memset(&m, 0, sizeof(m));
    m.per_g = th_scaled(10000);
    th_rt_run(mutex_count_main, &m, 2);
    ck_assert(!m.trylock_held);
    ck_assert(m.trylock_free);
    ck_assert_int_eq(m.wait_rc, RT_OK);
    ck_assert_int_eq(m.overlaps, 0);
    ck_assert_int_eq(m.counter, MUTEX_GS * m.per_g);
}

END_TEST

#define HOLD_MS 50
#define MUTEX_WAITERS 10

typedef struct mutex_park {
    rt_mutex_t mu;
    _Atomic bool holder_done;
    _Atomic long bystander;
    long bystander_during;
    uint64_t waiting_during;
    rt_time_t unlocked_at;
    rt_time_t acquired_at[MUTEX_WAITERS];
    _Atomic int next;
    rt_waitgroup_t wg;
    int wait_rc;
} mutex_park_t;

static void mutex_waiter(void *arg)
{
    mutex_park_t *m = arg;
    rt_mutex_lock(&m->mu);
    m->acquired_at[atomic_fetch_add(&m->next, 1)] = rt_now();
    rt_mutex_unlock(&m->mu);
    rt_wg_done(&m->wg);
}

static void mutex_bystander(void *arg)
{
    mutex_park_t *m = arg;
    while (!atomic_load(&m->holder_done)) {
        atomic_fetch_add(&m->bystander, 1);
        rt_yield();
    }
    rt_wg_done(&m->wg);
}

static void mutex_holder(void *arg)
{
    mutex_park_t *m = arg;
    rt_mutex_lock(&m->mu);
    for (int i = 0; i < MUTEX_WAITERS; i++) {
        th_go(mutex_waiter, m);
    }
    th_go(mutex_bystander, m);
    long before = atomic_load(&m->bystander);
    rt_sleep(HOLD_MS * RT_MSEC); /* parks while holding the mutex */
    rt_stats_t st;
    rt_stats_read(&st);
    m->waiting_during = st.gs_waiting;
    m->bystander_during = atomic_load(&m->bystander) - before;
    m->unlocked_at = rt_now();
    rt_mutex_unlock(&m->mu);
    atomic_store(&m->holder_done, true);
    rt_wg_done(&m->wg);
}

static void mutex_park_main(void *arg)
{
    mutex_park_t *m = arg;
    rt_wg_add(&m->wg, 2 + MUTEX_WAITERS);
    th_go(mutex_holder, m);
    m->wait_rc = th_wg_wait_until(&m->wg, rt_deadline_in(th_slack(10 * RT_SEC)));
}

START_TEST(test_sync_mutex_parks_the_g_not_the_thread)
{
    mutex_park_t m;
    memset(&m, 0, sizeof(m));
    th_rt_run(mutex_park_main, &m, 1);
    ck_assert_int_eq(m.wait_rc, RT_OK);
    ck_assert_int_eq(m.next, MUTEX_WAITERS);
    ck_assert_msg(m.waiting_during >= MUTEX_WAITERS,
                  "only %llu Gs parked while %d waited for the mutex",
                  (unsigned long long)m.waiting_during, MUTEX_WAITERS);
    ck_assert_msg(m.bystander_during >= 10,
                  "procs=1: an unrelated G ran %ld times while the mutex was held %d ms",
                  m.bystander_during, HOLD_MS);
    for (int i = 0; i < MUTEX_WAITERS; i++) {
        ck_assert_msg(m.acquired_at[i] >= m.unlocked_at, "waiter %d got the mutex while held", i);
    }
}

END_TEST

/* ---- once ---- */

#define ONCE_GS 100

typedef struct once {
    rt_once_t once;
    _Atomic int calls;
    _Atomic bool finished;
    _Atomic long early;
    rt_waitgroup_t wg;
    int wait_rc;
    int calls_after_second;
} once_t;

static void once_fn(void *arg)
{
    once_t *o = arg;
    atomic_fetch_add(&o->calls, 1);
    rt_sleep(5 * RT_MSEC); /* others must wait for this to finish */
    atomic_store(&o->finished, true);
}

static void once_g(void *arg)
{
    once_t *o = arg;
    rt_once_do(&o->once, once_fn, o);
    if (!atomic_load(&o->finished)) {
        atomic_fetch_add(&o->early, 1);
    }
    rt_wg_done(&o->wg);
}

static void once_main(void *arg)
{
    once_t *o = arg;
    rt_wg_add(&o->wg, ONCE_GS);
    for (int i = 0; i < ONCE_GS; i++) {
        th_go(once_g, o);
    }
    o->wait_rc = th_wg_wait_until(&o->wg, rt_deadline_in(th_slack(10 * RT_SEC)));
    rt_once_do(&o->once, once_fn, o);
    o->calls_after_second = atomic_load(&o->calls);
}

START_TEST(test_sync_once_runs_exactly_once)
{
    once_t o;
    memset(&o, 0, sizeof(o));
    th_rt_run(once_main, &o, 2);
    ck_assert_int_eq(o.wait_rc, RT_OK);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.calls_after_second, 1);
    ck_assert_msg(o.early == 0, "%ld callers returned before the once function finished",
                  (long)o.early);
}

END_TEST

/* ---- pool ---- */

#define POOL_OBJ 64
#define POOL_BATCH 32
#define POOL_GS 8

typedef struct pool_test {
    rt_pool_t *pool;
    long rounds;
    long nonzero_fresh, recycled, null_objs;
    _Atomic long stomped, stress_null;
    rt_waitgroup_t wg;
    int wait_rc;
} pool_test_t;

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

static void pool_stress_g(void *arg)
{
    pool_test_t *t = arg;
    uint64_t me = rt_g_id();
    uint64_t *objs[4];
    for (long r = 0; r < t->rounds; r++) {
        for (int k = 0; k < 4; k++) {
            objs[k] = rt_pool_get(t->pool);
            if (objs[k] == NULL) {
                atomic_fetch_add(&t->stress_null, 1);
                return;
            }
            for (size_t w = 0; w < POOL_OBJ / sizeof(uint64_t); w++) {
                objs[k][w] = me << 32 | (uint64_t)r;
            }
        }
        if (r % 4 == 0) {
            rt_yield(); /* hold across a switch: another owner would stomp the stamp */
        }
        for (int k = 0; k < 4; k++) {
            for (size_t w = 0; w < POOL_OBJ / sizeof(uint64_t); w++) {
                if (objs[k][w] != (me << 32 | (uint64_t)r)) {
                    atomic_fetch_add(&t->stomped, 1);
                    break;
                }
            }
            rt_pool_put(t->pool, objs[k]);
        }
    }
    rt_wg_done(&t->wg);
}

static void pool_main(void *arg)
{
    pool_test_t *t = arg;
    t->pool = rt_pool_new(POOL_OBJ);
    void *put[POOL_BATCH], *got[POOL_BATCH];
    for (int i = 0; i < POOL_BATCH; i++) {
        put[i] = rt_pool_get(t->pool);
        if (put[i] == NULL) {
            t->null_objs++;
            return;
        }
        if (!all_zero(put[i], POOL_OBJ)) {
            t->nonzero_fresh++; /* a new pool can only hand out fresh, zeroed objects */
        }
        memset(put[i], 0xa5, POOL_OBJ);
    }
    for (int i = 0; i < POOL_BATCH; i++) {
        rt_pool_put(t->pool, put[i]);
    }
    for (int i = 0; i < POOL_BATCH; i++) {
        got[i] = rt_pool_get(t->pool);
        bool was_put = false;
        for (int k = 0; k < POOL_BATCH; k++) {
            was_put |= got[i] == put[k];
        }
        if (was_put) {
            t->recycled++;
        } else if (got[i] != NULL && !all_zero(got[i], POOL_OBJ)) {
            t->nonzero_fresh++;
        }
    }
    for (int i = 0; i < POOL_BATCH; i++) {
        rt_pool_put(t->pool, got[i]);
    }

    rt_wg_add(&t->wg, POOL_GS);
    for (int i = 0; i < POOL_GS; i++) {
        th_go(pool_stress_g, t);
    }
    t->wait_rc = th_wg_wait_until(&t->wg, rt_deadline_in(th_slack(20 * RT_SEC)));
    rt_pool_free(t->pool); /* frees every cached object */
    rt_pool_free(NULL);
}

START_TEST(test_sync_pool_get_put_recycles_objects)
{
    pool_test_t t;
    memset(&t, 0, sizeof(t));
    t.rounds = th_scaled(10000);
    th_rt_run(pool_main, &t, 2);
    ck_assert_int_eq(t.null_objs, 0);
    ck_assert_int_eq(t.nonzero_fresh, 0);
    ck_assert_int_eq(t.wait_rc, RT_OK);
    ck_assert_int_eq(t.stress_null, 0);
    ck_assert_msg(t.stomped == 0, "%ld pool objects were handed to two owners at once",
                  (long)t.stomped);
#if !defined(REMORA_POOL_PASSTHROUGH)
    /* Sanitizer builds may turn pools into plain malloc/free (STYLE.md III.6). */
    if (!th_tsan() && !th_asan()) {
        ck_assert_msg(t.recycled > 0, "none of %d objects put back was handed out again",
                      POOL_BATCH);
    }
#endif
}

END_TEST

/* ---- value ---- */

#define VALUE_LIVE UINT64_C(0x4c495645c0ffee01)
#define VALUE_DEAD UINT64_C(0xdeaddeaddeaddead)
#define VALUE_READERS 4

typedef struct value_obj {
    _Atomic uint64_t magic;
    uint64_t seq;
} value_obj_t;

typedef struct value_test {
    long stores;
    value_obj_t *objs; /* objs[0] is the initial value; never freed during the run */
    rt_value_t value;
    _Atomic bool writer_done;
    _Atomic long released, double_release, foreign_release;
    _Atomic long dead_seen, regressions, loads;
    long released_before_destroy, released_after_destroy;
    rt_waitgroup_t wg;
    int wait_rc;
} value_test_t;

static value_test_t *value_state;

static void value_release(void *ptr)
{
    value_test_t *t = value_state;
    value_obj_t *o = ptr;
    if (o < t->objs || o > t->objs + t->stores) {
        atomic_fetch_add(&t->foreign_release, 1);
        return;
    }
    /* Poison instead of freeing, so that a reader still holding it sees DEAD. */
    if (atomic_exchange(&o->magic, VALUE_DEAD) != VALUE_LIVE) {
        atomic_fetch_add(&t->double_release, 1);
    }
    atomic_fetch_add(&t->released, 1);
}

static void value_reader(void *arg)
{
    value_test_t *t = arg;
    uint64_t last = 0;
    long k = 0;
    while (!atomic_load(&t->writer_done)) {
        rt_value_hold_t h;
        value_obj_t *o = rt_value_load(&t->value, &h);
        if (atomic_load(&o->magic) != VALUE_LIVE) {
            atomic_fetch_add(&t->dead_seen, 1);
        }
        if (o->seq < last) {
            atomic_fetch_add(&t->regressions, 1);
        }
        last = o->seq;
        if (++k % 8 == 0) {
            rt_yield(); /* hold across a park, maybe resuming on another thread */
            if (atomic_load(&o->magic) != VALUE_LIVE) {
                atomic_fetch_add(&t->dead_seen, 1);
            }
        }
        rt_value_drop(&h);
        atomic_fetch_add(&t->loads, 1);
    }
    rt_wg_done(&t->wg);
}

static void value_writer(void *arg)
{
    value_test_t *t = arg;
    for (long i = 1; i <= t->stores; i++) {
        value_obj_t *o = &t->objs[i];
        atomic_store(&o->magic, VALUE_LIVE);
        o->seq = (uint64_t)i;
        rt_value_store(&t->value, o);
        if (i % 16 == 0) {
            rt_yield();
        }
    }
    atomic_store(&t->writer_done, true);
    rt_wg_done(&t->wg);
}

static void value_main(void *arg)
{
    value_test_t *t = arg;
    value_state = t;
    atomic_store(&t->objs[0].magic, VALUE_LIVE);
    rt_value_init(&t->value, &t->objs[0], value_release);
    rt_wg_add(&t->wg, 1 + VALUE_READERS);
    for (int i = 0; i < VALUE_READERS; i++) {
        th_go(value_reader, t);
    }
    th_go(value_writer, t);
    t->wait_rc = th_wg_wait_until(&t->wg, rt_deadline_in(th_slack(20 * RT_SEC)));
    if (t->wait_rc != RT_OK) {
        return;
    }
    t->released_before_destroy = atomic_load(&t->released);
    rt_value_destroy(&t->value);
    t->released_after_destroy = atomic_load(&t->released);
}

START_TEST(test_sync_value_releases_each_retired_value_once)
{
    value_test_t t;
    memset(&t, 0, sizeof(t));
    t.stores = th_scaled(10000);
    t.objs = calloc((size_t)t.stores + 1, sizeof(*t.objs));
    ck_assert_ptr_nonnull(t.objs);
    th_rt_run(value_main, &t, 2);
    ck_assert_int_eq(t.wait_rc, RT_OK);
    ck_assert_int_eq(t.foreign_release, 0);
    ck_assert_int_eq(t.double_release, 0);
    ck_assert_msg(t.dead_seen == 0, "readers saw a released value %ld times (use after free)",
                  (long)t.dead_seen);
    ck_assert_int_eq(t.regressions, 0);
    ck_assert_int_gt(t.loads, 0);
    /* With no holds left every retired value is released; destroy releases the current one. */
    ck_assert_int_eq(t.released_before_destroy, t.stores);
    ck_assert_int_eq(t.released_after_destroy, t.stores + 1);
    long live = 0;
    for (long i = 0; i <= t.stores; i++) {
        live += t.objs[i].magic != VALUE_DEAD;
    }
    ck_assert_int_eq(live, 0);
    free(t.objs);
}

END_TEST

Suite *suite_runtime_sync(void)
{
    Suite *s = suite_create("runtime/sync");

    TCase *tc = tcase_create("mutex");
    tcase_add_test(tc, test_sync_mutex_counter_is_exact);
    tcase_add_test(tc, test_sync_mutex_parks_the_g_not_the_thread);
    tcase_add_test(tc, test_sync_once_runs_exactly_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_add_test(tc, test_sync_pool_get_put_recycles_objects);
    suite_add_tcase(s, tc);

    tc = tcase_create("value");
    tcase_add_test(tc, test_sync_value_releases_each_retired_value_once);
    suite_add_tcase(s, tc);
    return s;
}
