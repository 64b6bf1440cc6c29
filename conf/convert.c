/* SPDX-License-Identifier: MIT */
/*
 * convert.c - the first pass after libcyaml: every present raw scalar
 * (`*_text`, the fault's raw mappings, outcome lists, enum names) is parsed
 * strictly into its converted field. A scalar that does not parse is reported
 * with its path and then dropped (freed, NULL), so the defaults pass fills a
 * sane value and validation does not report the same key twice.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"
#include "runtime/base.h"

static void drop(char **text)
{
    free(*text);
    *text = NULL;
}

static void duration(cfg__walk_t *w, const char *key, char **text, int64_t *out)
{
    if (*text != NULL && cfg_parse_duration(*text, out) != 0) {
        cfg__walk_error(w, key, "invalid duration '%s' (want e.g. 150ms, 8s, 2m, 1h)", *text);
        drop(text);
    }
}

static void size(cfg__walk_t *w, const char *key, char **text, uint64_t *out)
{
    if (*text != NULL && cfg_parse_size(*text, out) != 0) {
        cfg__walk_error(w, key, "invalid size '%s' (want e.g. 512, 64KiB, 1MiB)", *text);
        drop(text);
    }
}

static void percent(cfg__walk_t *w, const char *key, char **text, double *out)
{
    if (*text != NULL && cfg_parse_percent(*text, out) != 0) {
        cfg__walk_error(w, key, "invalid percentage '%s' (want 0%%..100%%, e.g. 0.5%%)", *text);
        drop(text);
    }
}

static void uint_(cfg__walk_t *w, const char *key, char **text, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (*text == NULL) {
        return;
    }
    if (cfg__parse_uint(*text, UINT64_MAX, &v) != 0) {
        cfg__walk_error(w, key, "invalid integer '%s'", *text);
        drop(text);
    } else if (v > max) {
        cfg__walk_error(w, key, "must be <= %" PRIu64, max);
        drop(text);
    } else {
        *out = v;
    }
}

static void uint32_(cfg__walk_t *w, const char *key, char **text, uint32_t *out)
{
    uint64_t v = 0;
    uint_(w, key, text, UINT32_MAX, &v);
    if (*text != NULL) {
        *out = (uint32_t)v;
    }
}

static void number(cfg__walk_t *w, const char *key, char **text, double *out)
{
    if (*text != NULL && cfg__parse_number(*text, out) != 0) {
        cfg__walk_error(w, key, "invalid number '%s'", *text);
        drop(text);
    }
}

/* An outcome list (retries.on, exceptions) -> CFG_OUTCOME_* bits. */
static uint32_t outcomes(cfg__walk_t *w, const char *key, char **names, unsigned count)
{
    uint32_t bits = 0;
    size_t o = cfg__walk_key(w, key);
    for (unsigned i = 0; i < count; i++) {
        uint32_t bit = cfg__parse_outcome(names[i]);
        if (bit == 0) {
            size_t o2 = cfg__walk_index(w, i);
            cfg__walk_error(w, NULL,
                            "unknown outcome '%s' (want 5xx, connect_failure, timeout, reset)",
                            names[i]);
            cfg__walk_pop(w, o2);
        }
        bits |= bit;
    }
    cfg__walk_pop(w, o);
    return bits;
}

/* A fault share: "50%" or a plain number of percent 0..100. */
static void fault_percent(cfg__walk_t *w, const char *key, char **text, double *out)
{
    double v;
    if (*text == NULL) {
        return;
    }
    if (cfg_parse_percent(*text, out) == 0) {
        return;
    }
    if (cfg__parse_number(*text, &v) == 0 && v <= 100.0) {
        *out = v / 100.0;
        return;
    }
    cfg__walk_error(w, key, "invalid percentage '%s' (want 0..100 or 0%%..100%%)", *text);
    drop(text);
}

static void rate_limit(cfg_rate_limit_t *rl, cfg__walk_t *w)
{
    number(w, "rate", &rl->rate_text, &rl->rate);
    uint_(w, "burst", &rl->burst_text, UINT64_MAX, &rl->burst);
    uint_(w, "max_keys", &rl->max_keys_text, UINT64_MAX, &rl->max_keys);
    duration(w, "max_queue_time", &rl->max_queue_time_text, &rl->max_queue_time);
    if (rl->key_text != NULL) {
        if (strcmp(rl->key_text, "route") == 0) {
            rl->key = CFG_RL_KEY_ROUTE;
        } else if (strcmp(rl->key_text, "client_ip") == 0) {
            rl->key = CFG_RL_KEY_CLIENT_IP;
        } else if (strncmp(rl->key_text, "header:", 7) == 0 && cfg__is_token(rl->key_text + 7)) {
            rl->key = CFG_RL_KEY_HEADER;
            rl->key_header = rt_xstrdup(rl->key_text + 7);
        } else {
            cfg__walk_error(w, "key", "invalid key '%s' (want route, client_ip or header:NAME)",
                            rl->key_text);
            drop(&rl->key_text);
        }
    }
    if (rl->mode_text != NULL) {
        if (strcmp(rl->mode_text, "reject") == 0) {
            rl->mode = CFG_RL_REJECT;
        } else if (strcmp(rl->mode_text, "queue") == 0) {
            rl->mode = CFG_RL_QUEUE;
        } else {
            cfg__walk_error(w, "mode", "invalid mode '%s' (want reject or queue)", rl->mode_text);
            drop(&rl->mode_text);
        }
    }
}

static void circuit_breaker(cfg_circuit_breaker_t *cb, cfg__walk_t *w)
{
    if (cb->grade_text != NULL) {
        if (strcmp(cb->grade_text, "exception_count") == 0) {
            cb->grade = CFG_CB_EXCEPTION_COUNT;
        } else if (strcmp(cb->grade_text, "exception_ratio") == 0) {
            cb->grade = CFG_CB_EXCEPTION_RATIO;
        } else if (strcmp(cb->grade_text, "slow_ratio") == 0) {
            cb->grade = CFG_CB_SLOW_RATIO;
        } else {
            cfg__walk_error(w, "grade",
                            "invalid grade '%s' (want exception_count, exception_ratio or "
                            "slow_ratio)",
                            cb->grade_text);
            drop(&cb->grade_text);
        }
    }
    /* A ratio may be written "0.5" or "50%"; which range applies depends on the grade. */
    if (cb->threshold_text != NULL && cfg_parse_percent(cb->threshold_text, &cb->threshold) != 0) {
        number(w, "threshold", &cb->threshold_text, &cb->threshold);
    }
    duration(w, "slow_call", &cb->slow_call_text, &cb->slow_call);
    duration(w, "window", &cb->window_text, &cb->window);
    duration(w, "open_for", &cb->open_for_text, &cb->open_for);
    uint_(w, "min_requests", &cb->min_requests_text, UINT64_MAX, &cb->min_requests);
    cb->has_exceptions = cfg__walk_present(w, "exceptions");
    cb->exceptions = outcomes(w, "exceptions", cb->exceptions_text, cb->exceptions_count);
}

static void fault(cfg_fault_t *f, cfg__walk_t *w)
{
    if (f->delay_raw != NULL) {
        size_t o = cfg__walk_key(w, "delay");
        fault_percent(w, "percent", &f->delay_raw->percent, &f->delay_percent);
        duration(w, "duration", &f->delay_raw->duration, &f->delay_duration);
        cfg__walk_pop(w, o);
    }
    if (f->abort_raw != NULL) {
        size_t o = cfg__walk_key(w, "abort");
        fault_percent(w, "percent", &f->abort_raw->percent, &f->abort_percent);
        uint32_(w, "status", &f->abort_raw->status, &f->abort_status);
        cfg__walk_pop(w, o);
    }
}

static void route(cfg_route_t *r, cfg__walk_t *w)
{
    duration(w, "timeout", &r->timeout_text, &r->timeout);
    if (r->retries_raw != NULL) {
        cfg_retries_t *rr = r->retries_raw;
        size_t o = cfg__walk_key(w, "retries");
        rr->has_on = cfg__walk_present(w, "on");
        rr->on = outcomes(w, "on", rr->on_text, rr->on_text_count);
        cfg__walk_pop(w, o);
    }
    size_t o = cfg__walk_key(w, "filters");
    for (unsigned i = 0; i < r->filters_count; i++) {
        cfg_filter_t *f = &r->filters[i];
        size_t o2 = cfg__walk_index(w, i);
        if (f->rate_limit != NULL) {
            size_t o3 = cfg__walk_key(w, "rate_limit");
            rate_limit(f->rate_limit, w);
            cfg__walk_pop(w, o3);
        }
        if (f->circuit_breaker != NULL) {
            size_t o3 = cfg__walk_key(w, "circuit_breaker");
            circuit_breaker(f->circuit_breaker, w);
            cfg__walk_pop(w, o3);
        }
        if (f->fault != NULL) {
            size_t o3 = cfg__walk_key(w, "fault");
            fault(f->fault, w);
            cfg__walk_pop(w, o3);
        }
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
    o = cfg__walk_key(w, "backends");
    for (unsigned i = 0; i < r->backends_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        uint32_(w, "weight", &r->backends[i].weight_text, &r->backends[i].weight);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
    if (r->canary != NULL) {
        cfg_canary_t *c = r->canary;
        o = cfg__walk_key(w, "canary");
        duration(w, "window", &c->window_text, &c->window);
        uint_(w, "min_requests", &c->min_requests_text, UINT64_MAX, &c->min_requests);
        duration(w, "max_p99_increase", &c->max_p99_increase_text, &c->max_p99_increase);
        percent(w, "max_error_rate", &c->max_error_rate_text, &c->max_error_rate);
        if (c->promote != NULL) {
            size_t o2 = cfg__walk_key(w, "promote");
            uint32_(w, "step", &c->promote->step_text, &c->promote->step);
            duration(w, "interval", &c->promote->interval_text, &c->promote->interval);
            cfg__walk_pop(w, o2);
        }
        cfg__walk_pop(w, o);
    }
}

static void listener(cfg_listener_t *l, cfg__walk_t *w)
{
    duration(w, "read_timeout", &l->read_timeout_text, &l->read_timeout);
    duration(w, "write_timeout", &l->write_timeout_text, &l->write_timeout);
    duration(w, "idle_timeout", &l->idle_timeout_text, &l->idle_timeout);
    uint_(w, "max_connections", &l->max_connections_text, UINT64_MAX, &l->max_connections);
    size(w, "max_header_bytes", &l->max_header_bytes_text, &l->max_header_bytes);
    uint_(w, "max_headers", &l->max_headers_text, UINT64_MAX, &l->max_headers);
    size(w, "max_request_body", &l->max_request_body_text, &l->max_request_body);
    size_t o = cfg__walk_key(w, "routes");
    for (unsigned i = 0; i < l->routes_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        route(&l->routes[i], w);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
}

static void cluster(cfg_cluster_t *c, cfg__walk_t *w)
{
    uint_(w, "max_connections", &c->max_connections_text, UINT64_MAX, &c->max_connections);
    uint_(w, "max_pending", &c->max_pending_text, UINT64_MAX, &c->max_pending);
    duration(w, "pending_timeout", &c->pending_timeout_text, &c->pending_timeout);
    duration(w, "connect_timeout", &c->connect_timeout_text, &c->connect_timeout);
    duration(w, "dns_refresh", &c->dns_refresh_text, &c->dns_refresh);
}

void cfg__convert(cfg_config_t *cfg, cfg__walk_t *w)
{
    duration(w, "drain_timeout", &cfg->drain_timeout_text, &cfg->drain_timeout);
    size_t o = cfg__walk_key(w, "listeners");
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        listener(&cfg->listeners[i], w);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
    o = cfg__walk_key(w, "clusters");
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        cluster(&cfg->clusters[i], w);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
}
