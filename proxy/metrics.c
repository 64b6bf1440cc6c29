/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - request statistics and their Prometheus text exposition
 * (format 0.0.4), served by GET /metrics. A series is named by (listener,
 * route, backend); its px_stats_t lives in a registry keyed by those names,
 * outside any snapshot, so counters go on across reloads. Routes point at
 * their stats, updated with relaxed atomic adds on the request's way out;
 * the registry is only searched when a snapshot is built. The exposition
 * walks the current snapshot. Counters are monotonic; readers may see a
 * request counted in one series a moment before another, which Prometheus
 * tolerates.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

/* Histogram upper bounds in microseconds: fit for millisecond latencies. */
static const uint64_t bucket_us[PX_LATENCY_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

#define REGISTRY_BUCKETS 1024

typedef struct stats_entry {
    struct stats_entry *next;
    char *listener, *route, *backend;
    px_stats_t stats;
} stats_entry_t;

struct px_stats_registry {
    stats_entry_t *buckets[REGISTRY_BUCKETS];
};

static uint64_t hash_names(const char *a, const char *b, const char *c)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i]; *p; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        }
        h = (h ^ 0xff) * 1099511628211ull; /* separator: ("ab","") differs from ("a","b") */
    }
    return h;
}

px_stats_t *px_stats_for(px_server_t *srv, const char *listener, const char *route,
                         const char *backend)
{
    rt_mutex_lock(&srv->stats_mu);
    if (!srv->stats) {
        srv->stats = rt_xcalloc(1, sizeof(*srv->stats));
    }
    stats_entry_t **bucket =
        &srv->stats->buckets[hash_names(listener, route, backend) % REGISTRY_BUCKETS];
    stats_entry_t *e = *bucket;
    while (e && (strcmp(e->listener, listener) != 0 || strcmp(e->route, route) != 0 ||
                 strcmp(e->backend, backend) != 0)) {
        e = e->next;
    }
    if (!e) {
        e = rt_xcalloc(1, sizeof(*e));
        e->listener = rt_xstrdup(listener);
        e->route = rt_xstrdup(route);
        e->backend = rt_xstrdup(backend);
        e->next = *bucket;
        *bucket = e;
    }
    rt_mutex_unlock(&srv->stats_mu);
    return &e->stats;
}

void px_stats_record(px_stats_t *st, int status, int64_t latency_ns)
{
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    atomic_fetch_add_explicit(&st->by_class[cls], 1, memory_order_relaxed);
    uint64_t us = latency_ns > 0 ? (uint64_t)latency_ns / 1000 : 0;
    int b = 0;
    while (b < PX_LATENCY_BUCKETS && us > bucket_us[b]) {
        b++;
    }
    atomic_fetch_add_explicit(&st->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_us, us, memory_order_relaxed);
}

/* A growing text buffer. */
typedef struct out {
    char *data;
    size_t len, cap;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (n > 0 ? (size_t)n : 0);
        o->data = rt_xrealloc(o->data, o->cap);
    }
}

static void header(out_t *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const class_names[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

static void put_requests(out_t *o, const char *l, const char *r, const char *b,
                         const px_stats_t *st)
{
    for (int c = 0; c < 6; c++) {
        uint64_t v = atomic_load_explicit(&st->by_class[c], memory_order_relaxed);
        if (v) {
            put(o,
                "remora_requests_total{listener=\"%s\",route=\"%s\",backend=\"%s\","
                "code_class=\"%s\"} %llu\n",
                l, r, b, class_names[c], (unsigned long long)v);
        }
    }
}

static void put_histogram(out_t *o, const char *l, const char *r, const char *b,
                          const px_stats_t *st)
{
    uint64_t cum = 0;
    for (int i = 0; i <= PX_LATENCY_BUCKETS; i++) {
        cum += atomic_load_explicit(&st->buckets[i], memory_order_relaxed);
        char le[32];
        if (i < PX_LATENCY_BUCKETS) {
            snprintf(le, sizeof(le), "%g", (double)bucket_us[i] / 1e6);
        } else {
            strcpy(le, "+Inf");
        }
        put(o,
            "remora_request_duration_seconds_bucket{listener=\"%s\",route=\"%s\",backend=\"%s\","
            "le=\"%s\"} %llu\n",
            l, r, b, le, (unsigned long long)cum);
    }
    put(o,
        "remora_request_duration_seconds_sum{listener=\"%s\",route=\"%s\",backend=\"%s\"} %.6f\n"
        "remora_request_duration_seconds_count{listener=\"%s\",route=\"%s\",backend=\"%s\"} "
        "%llu\n",
        l, r, b, (double)atomic_load_explicit(&st->sum_us, memory_order_relaxed) / 1e6, l, r, b,
        (unsigned long long)cum);
}

/* Calls `fn` for every (listener, route, backend) series of `snap`, including the no-backend ones.
 */
static void each_series(const px_snapshot_t *snap, out_t *o,
                        void (*fn)(out_t *, const char *, const char *, const char *,
                                   const px_stats_t *))
{
    for (unsigned i = 0; i < snap->nviews; i++) {
        const px_lview_t *lv = &snap->views[i];
        fn(o, lv->cfg->name, "", "", lv->no_route);
        for (unsigned j = 0; j < lv->nroutes; j++) {
            const px_route_t *r = &lv->routes[j];
            for (unsigned k = 0; k <= r->nbackends; k++) {
                fn(o, lv->cfg->name, r->cfg->name, k < r->nbackends ? r->backends[k].name : "",
                   r->stats[k]);
            }
        }
    }
}

static void put_upstreams(out_t *o, const px_snapshot_t *snap)
{
    header(o, "remora_upstream_connections", "gauge",
           "Upstream connections per endpoint, by state (active: serving a request).");
    for (unsigned i = 0; i < snap->nclusters; i++) {
        px_cluster_t *cl = snap->clusters[i];
        rt_mutex_lock(&cl->mu);
        for (unsigned j = 0; j < cl->neps; j++) {
            px_endpoint_t *ep = cl->eps[j];
            size_t idle = rt_chan_len(ep->idle), free_slots = rt_chan_len(ep->slots);
            size_t cap = rt_chan_cap(ep->slots);
            size_t active = cap > idle + free_slots ? cap - idle - free_slots : 0;
            put(o,
                "remora_upstream_connections{cluster=\"%s\",endpoint=\"%s\",state=\"active\"} "
                "%zu\nremora_upstream_connections{cluster=\"%s\",endpoint=\"%s\",state=\"idle\"} "
                "%zu\n",
                cl->cfg->name, ep->name, active, cl->cfg->name, ep->name, idle);
        }
        rt_mutex_unlock(&cl->mu);
    }
    header(o, "remora_upstream_pending_requests", "gauge",
           "Requests waiting for an upstream connection.");
    for (unsigned i = 0; i < snap->nclusters; i++) {
        put(o, "remora_upstream_pending_requests{cluster=\"%s\"} %lld\n",
            snap->clusters[i]->cfg->name, (long long)atomic_load(&snap->clusters[i]->pending));
    }
    header(o, "remora_upstream_connect_failures_total", "counter",
           "Upstream connects that failed or timed out (since the cluster's config last changed).");
    for (unsigned i = 0; i < snap->nclusters; i++) {
        put(o, "remora_upstream_connect_failures_total{cluster=\"%s\"} %llu\n",
            snap->clusters[i]->cfg->name,
            (unsigned long long)atomic_load(&snap->clusters[i]->connect_failures));
    }
}

static void put_runtime(out_t *o)
{
    rt_stats_t st;
    rt_stats_read(&st);
    header(o, "remora_runtime_goroutines", "gauge", "Runtime Gs by state.");
    put(o,
        "remora_runtime_goroutines{state=\"runnable\"} %llu\n"
        "remora_runtime_goroutines{state=\"running\"} %llu\n"
        "remora_runtime_goroutines{state=\"waiting\"} %llu\n"
        "remora_runtime_goroutines{state=\"syscall\"} %llu\n",
        (unsigned long long)st.gs_runnable, (unsigned long long)st.gs_running,
        (unsigned long long)st.gs_waiting, (unsigned long long)st.gs_syscall);
    header(o, "remora_runtime_procs", "gauge", "Runtime Ps.");
    put(o, "remora_runtime_procs %llu\n", (unsigned long long)st.procs);
    header(o, "remora_runtime_threads", "gauge", "Runtime Ms (OS threads).");
    put(o, "remora_runtime_threads %llu\n", (unsigned long long)st.ms);
    header(o, "remora_runtime_steals_total", "counter", "Work-stealing operations.");
    put(o, "remora_runtime_steals_total %llu\n", (unsigned long long)st.steals);
    header(o, "remora_runtime_stack_bytes", "gauge", "Bytes of G stacks mapped.");
    put(o, "remora_runtime_stack_bytes %llu\n", (unsigned long long)st.stack_bytes_mapped);
}

char *px_metrics_text(px_server_t *srv, size_t *len)
{
    px_hold_t hold;
    const px_snapshot_t *snap = px_snapshot_hold(srv, &hold);
    out_t o = {.data = rt_xmalloc(8192), .cap = 8192};
    header(&o, "remora_requests_total", "counter",
           "Requests by listener, route, backend and status class (none: no status sent).");
    each_series(snap, &o, put_requests);
    header(&o, "remora_requests_in_flight", "gauge", "Requests being served.");
    put(&o, "remora_requests_in_flight %lld\n", (long long)atomic_load(&srv->active));
    header(&o, "remora_request_duration_seconds", "histogram",
           "Request duration from a complete head to the last byte.");
    each_series(snap, &o, put_histogram);
    put_upstreams(&o, snap);
    header(&o, "remora_config_generation", "gauge", "Generation of the running config.");
    put(&o, "remora_config_generation %llu\n", (unsigned long long)snap->generation);
    header(&o, "remora_config_snapshots", "gauge",
           "Config snapshots in memory: the current one, and older ones still held by requests "
           "that started before a reload.");
    put(&o, "remora_config_snapshots %lld\n", (long long)px_snapshots_live());
    header(&o, "remora_config_reloads_total", "counter", "Config reloads by result.");
    put(&o,
        "remora_config_reloads_total{result=\"success\"} %llu\n"
        "remora_config_reloads_total{result=\"failure\"} %llu\n",
        (unsigned long long)atomic_load(&srv->reloads_ok),
        (unsigned long long)atomic_load(&srv->reloads_failed));
    put_runtime(&o);
    px_snapshot_drop(&hold);
    *len = o.len;
    return o.data;
}
