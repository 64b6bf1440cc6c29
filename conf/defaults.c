/* SPDX-License-Identifier: MIT */
/*
 * defaults.c - the one place where every optional key gets its default.
 * Runs after convert.c: a key is absent when its raw field is NULL (a
 * scalar that failed to parse was dropped there, so it defaults here too).
 * Every string left NULL becomes "" (conf.h: strings are never NULL).
 *
 *   key                                   default
 *   runtime.procs                         0 (one P per CPU)
 *   admin.address / token_file            127.0.0.1:9901 / ""
 *   drain_timeout                         30s
 *   listeners[].read/write/idle_timeout   8s / 12s / 90s
 *   listeners[].max_connections           10000
 *   listeners[].max_header_bytes          64KiB
 *   listeners[].max_headers               100
 *   listeners[].max_request_body          0 (no limit)
 *   listeners[].access_log                "" (off)
 *   routes[].timeout                      15s
 *   routes[].retries                      attempts 0, on [connect_failure]
 *   rate_limit                            burst = ceil(rate) (>= 1), key route, max_keys 100000,
 *                                         mode reject, max_queue_time 500ms, related_route ""
 *   circuit_breaker                       grade exception_count, slow_call 1s, window 60s,
 *                                         min_requests 5, open_for 60s,
 *                                         exceptions [5xx, connect_failure, timeout]
 *   fault                                 delay 0% 0s, abort 0% status 503
 *   test_hooks                            header x-test-hooks, log ""
 *   canary                                window 30s, min_requests 100, max_p99_increase 150ms,
 *                                         max_error_rate 0.5%, promote none (manual),
 *                                         override_header x-canary, sticky ""
 *   clusters[]                            max_connections 256, max_pending 1024,
 *                                         pending_timeout 0s (fail fast), connect_timeout 1s,
 *                                         dns_refresh 5s
 */
#include <math.h>

#include "conf/internal.h"
#include "runtime/base.h"

#define MS 1000000LL
#define SEC 1000000000LL

static void str(char **s, const char *def)
{
    if (*s == NULL) {
        *s = rt_xstrdup(def);
    }
}

#define DEF(text, field, value)                                                                    \
    do {                                                                                           \
        if ((text) == NULL) {                                                                      \
            (field) = (value);                                                                     \
        }                                                                                          \
    } while (0)

static void filter(cfg_filter_t *f)
{
    /* The kind follows the first set pointer; validate.c rejects entries with more or none. */
    f->kind = f->rate_limit        ? CFG_FILTER_RATE_LIMIT
              : f->circuit_breaker ? CFG_FILTER_CIRCUIT_BREAKER
              : f->fault           ? CFG_FILTER_FAULT
                                   : CFG_FILTER_TEST_HOOKS;
    if (f->rate_limit != NULL) {
        cfg_rate_limit_t *rl = f->rate_limit;
        double b = ceil(rl->rate);
        DEF(rl->burst_text, rl->burst, b >= 1.0 && b < 1e18 ? (uint64_t)b : 1);
        DEF(rl->key_text, rl->key, CFG_RL_KEY_ROUTE);
        DEF(rl->max_keys_text, rl->max_keys, 100000);
        DEF(rl->mode_text, rl->mode, CFG_RL_REJECT);
        DEF(rl->max_queue_time_text, rl->max_queue_time, 500 * MS);
        str(&rl->key_header, "");
        str(&rl->related_route, "");
    }
    if (f->circuit_breaker != NULL) {
        cfg_circuit_breaker_t *cb = f->circuit_breaker;
        DEF(cb->grade_text, cb->grade, CFG_CB_EXCEPTION_COUNT);
        DEF(cb->slow_call_text, cb->slow_call, 1 * SEC);
        DEF(cb->window_text, cb->window, 60 * SEC);
        DEF(cb->min_requests_text, cb->min_requests, 5);
        DEF(cb->open_for_text, cb->open_for, 60 * SEC);
        if (!cb->has_exceptions) {
            cb->exceptions = CFG_OUTCOME_5XX | CFG_OUTCOME_CONNECT_FAILURE | CFG_OUTCOME_TIMEOUT;
        }
        str(&cb->fallback_cluster, "");
    }
    if (f->fault != NULL) {
        /* delay 0% / 0s and abort 0% are the zero values; only the status differs. */
        cfg_fault_t *ft = f->fault;
        DEF(ft->abort_raw ? ft->abort_raw->status : NULL, ft->abort_status, 503);
    }
    if (f->test_hooks != NULL) {
        str(&f->test_hooks->header, "x-test-hooks");
        str(&f->test_hooks->log, "");
    }
}

static void route(cfg_route_t *r)
{
    DEF(r->timeout_text, r->timeout, 15 * SEC);
    r->retries = (cfg_retries_t){.attempts = 0, .on = CFG_OUTCOME_CONNECT_FAILURE};
    if (r->retries_raw != NULL) {
        /* The embedded copy gets no pointers: on_text stays owned by retries_raw. */
        r->retries.attempts = r->retries_raw->attempts;
        r->retries.has_on = r->retries_raw->has_on;
        if (r->retries_raw->has_on) {
            r->retries.on = r->retries_raw->on;
        }
    }
    str(&r->name, "");
    str(&r->match.path_prefix, "");
    str(&r->match.path, "");
    str(&r->match.host, "");
    str(&r->match.method, "");
    for (unsigned i = 0; i < r->match.headers_count; i++) {
        str(&r->match.headers[i].name, "");
        str(&r->match.headers[i].value, "");
    }
    for (unsigned i = 0; i < r->filters_count; i++) {
        filter(&r->filters[i]);
    }
    for (unsigned i = 0; i < r->backends_count; i++) {
        str(&r->backends[i].name, "");
        str(&r->backends[i].cluster, "");
    }
    if (r->canary != NULL) {
        cfg_canary_t *c = r->canary;
        DEF(c->window_text, c->window, 30 * SEC);
        DEF(c->min_requests_text, c->min_requests, 100);
        DEF(c->max_p99_increase_text, c->max_p99_increase, 150 * MS);
        DEF(c->max_error_rate_text, c->max_error_rate, 0.005);
        str(&c->backend, "");
        str(&c->baseline, "");
        str(&c->override_header, "x-canary");
        str(&c->sticky, "");
    }
}

static void listener(cfg_listener_t *l)
{
    DEF(l->read_timeout_text, l->read_timeout, 8 * SEC);
    DEF(l->write_timeout_text, l->write_timeout, 12 * SEC);
    DEF(l->idle_timeout_text, l->idle_timeout, 90 * SEC);
    DEF(l->max_connections_text, l->max_connections, 10000);
    DEF(l->max_header_bytes_text, l->max_header_bytes, 64 * 1024);
    DEF(l->max_headers_text, l->max_headers, 100);
    DEF(l->max_request_body_text, l->max_request_body, 0);
    str(&l->name, "");
    str(&l->address, "");
    str(&l->access_log, "");
    for (unsigned i = 0; i < l->routes_count; i++) {
        route(&l->routes[i]);
    }
}

static void cluster(cfg_cluster_t *c)
{
    DEF(c->max_connections_text, c->max_connections, 256);
    DEF(c->max_pending_text, c->max_pending, 1024);
    DEF(c->pending_timeout_text, c->pending_timeout, 0);
    DEF(c->connect_timeout_text, c->connect_timeout, 1 * SEC);
    DEF(c->dns_refresh_text, c->dns_refresh, 5 * SEC);
    str(&c->name, "");
    for (unsigned i = 0; i < c->endpoints_count; i++) {
        str(&c->endpoints[i], "");
    }
}

void cfg__defaults_apply(cfg_config_t *cfg)
{
    cfg->runtime.procs = cfg->runtime_raw ? cfg->runtime_raw->procs : 0;
    /* The embedded admin gets its own strings: admin_raw's belong to libcyaml's free. */
    const cfg_admin_t *a = cfg->admin_raw;
    cfg->admin.address = rt_xstrdup(a && a->address ? a->address : "127.0.0.1:9901");
    cfg->admin.token_file = rt_xstrdup(a && a->token_file ? a->token_file : "");
    DEF(cfg->drain_timeout_text, cfg->drain_timeout, 30 * SEC);
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        listener(&cfg->listeners[i]);
    }
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        cluster(&cfg->clusters[i]);
    }
}
