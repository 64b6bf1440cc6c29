/* SPDX-License-Identifier: MIT */
/*
 * validate.c - semantic checks over the converted, defaulted config (libcyaml
 * 1.3.1 has no validation callbacks, STYLE.md §II.4). Every problem is
 * collected with its YAML path; nothing stops at the first.
 *
 * Checked: required keys; unique listener, listener address, route (per
 * listener), backend (per route) and cluster names; a route matches on
 * exactly one of path / path_prefix, starting with '/'; backends non-empty,
 * each naming an existing cluster, weights with a positive sum; canary
 * backend/baseline naming two different backends of the route; addresses
 * (listeners and admin: numeric IP; cluster endpoints may be names); ranges
 * of limits, timeouts, ratios and statuses; one filter kind per filter entry;
 * references to other routes and clusters.
 *
 * Uniqueness and references are looked up in hash indexes of the names
 * (index.c), not by comparing every pair: the document comes from the admin
 * API, and N entries must not cost N^2 string comparisons.
 */
#include <string.h>

#include "conf/internal.h"

#define MAX_WEIGHT 1000000u

/* Name -> first position with that name. */
typedef struct names {
    cfg__index_t clusters;  /* clusters[].name */
    cfg__index_t listeners; /* listeners[].name */
    cfg__index_t addresses; /* listeners[].address */
    cfg__index_t routes;    /* routes[].name of the listener being checked */
} names_t;

static bool has_cluster(const names_t *n, const char *name)
{
    return cfg__index_get(&n->clusters, name) != SIZE_MAX;
}

/* Reports a missing or empty required string; returns whether it is set. */
static bool required(cfg__walk_t *w, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0') {
        return true;
    }
    if (cfg__walk_present(w, key)) {
        cfg__walk_error(w, key, "must not be empty");
    } else {
        cfg__walk_error(w, key, "is required");
    }
    return false;
}

static void positive_duration(cfg__walk_t *w, const char *key, int64_t v)
{
    if (v <= 0) {
        cfg__walk_error(w, key, "must be > 0");
    }
}

static void address(cfg__walk_t *w, const char *key, const char *value, bool numeric, bool port0)
{
    if (!required(w, key, value)) {
        return;
    }
    const char *why = cfg__check_address(value, numeric, port0);
    if (why != NULL) {
        cfg__walk_error(w, key, "invalid address '%s': %s", value, why);
    }
}

/* "header:NAME" or "cookie:NAME" (sticky), "" allowed. */
static void sticky(cfg__walk_t *w, const char *s)
{
    if (s[0] == '\0') {
        return;
    }
    const char *name = NULL;
    if (strncmp(s, "header:", 7) == 0) {
        name = s + 7;
    } else if (strncmp(s, "cookie:", 7) == 0) {
        name = s + 7;
    }
    if (name == NULL || !cfg__is_token(name)) {
        cfg__walk_error(w, "sticky", "invalid sticky '%s' (want header:NAME or cookie:NAME)", s);
    }
}

static void rate_limit(const cfg_rate_limit_t *rl, const names_t *n, const cfg_route_t *r,
                       cfg__walk_t *w)
{
    if (rl->rate_text == NULL) {
        cfg__walk_error(w, "rate", "is required");
    } else if (!(rl->rate > 0)) {
        cfg__walk_error(w, "rate", "must be > 0");
    } else if (rl->rate > 1e9) {
        cfg__walk_error(w, "rate", "must be <= 1000000000");
    }
    if (rl->burst < 1) {
        cfg__walk_error(w, "burst", "must be >= 1");
    }
    if (rl->max_keys < 1) {
        cfg__walk_error(w, "max_keys", "must be >= 1");
    }
    if (rl->related_route[0] != '\0') {
        if (strcmp(rl->related_route, r->name) == 0) {
            cfg__walk_error(w, "related_route", "must name another route");
        } else if (cfg__index_get(&n->routes, rl->related_route) == SIZE_MAX) {
            cfg__walk_error(w, "related_route", "no route '%s' in this listener",
                            rl->related_route);
        }
    }
}

static void circuit_breaker(const cfg_circuit_breaker_t *cb, const names_t *n, cfg__walk_t *w)
{
    if (cb->threshold_text == NULL) {
        cfg__walk_error(w, "threshold", "is required");
    } else if (cb->grade == CFG_CB_EXCEPTION_COUNT) {
        if (cb->threshold < 1 || cb->threshold != (double)(uint64_t)cb->threshold) {
            cfg__walk_error(w, "threshold", "must be an integer count >= 1 for exception_count");
        }
    } else if (cb->threshold < 0 || cb->threshold > 1) {
        cfg__walk_error(w, "threshold", "must be a ratio in 0..1");
    }
    positive_duration(w, "slow_call", cb->slow_call);
    positive_duration(w, "window", cb->window);
    positive_duration(w, "open_for", cb->open_for);
    if (cb->fallback_cluster[0] != '\0' && !has_cluster(n, cb->fallback_cluster)) {
        cfg__walk_error(w, "fallback_cluster", "no cluster named '%s'", cb->fallback_cluster);
    }
}

static void fault(const cfg_fault_t *f, cfg__walk_t *w)
{
    if (f->abort_status < 200 || f->abort_status > 599) {
        size_t o = cfg__walk_key(w, "abort");
        cfg__walk_error(w, "status", "must be an HTTP status 200..599");
        cfg__walk_pop(w, o);
    }
}

static void filters(const cfg_route_t *r, const names_t *n, cfg__walk_t *w)
{
    size_t o = cfg__walk_key(w, "filters");
    for (unsigned i = 0; i < r->filters_count; i++) {
        const cfg_filter_t *f = &r->filters[i];
        size_t o2 = cfg__walk_index(w, i);
        int kinds = (f->rate_limit != NULL) + (f->circuit_breaker != NULL) + (f->fault != NULL) +
                    (f->test_hooks != NULL);
        if (kinds != 1) {
            cfg__walk_error(w, NULL,
                            kinds == 0 ? "a filter entry needs one of rate_limit, "
                                         "circuit_breaker, fault, test_hooks"
                                       : "a filter entry must have exactly one filter kind");
        }
        if (f->rate_limit != NULL) {
            size_t o3 = cfg__walk_key(w, "rate_limit");
            rate_limit(f->rate_limit, n, r, w);
            cfg__walk_pop(w, o3);
        } else if (f->circuit_breaker != NULL) {
            size_t o3 = cfg__walk_key(w, "circuit_breaker");
            circuit_breaker(f->circuit_breaker, n, w);
            cfg__walk_pop(w, o3);
        } else if (f->fault != NULL) {
            size_t o3 = cfg__walk_key(w, "fault");
            fault(f->fault, w);
            cfg__walk_pop(w, o3);
        } else if (f->test_hooks != NULL) {
            if (!cfg__is_token(f->test_hooks->header)) {
                size_t o3 = cfg__walk_key(w, "test_hooks");
                cfg__walk_error(w, "header", "must be a header name");
                cfg__walk_pop(w, o3);
            }
        }
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
}

static const cfg_backend_t *find_backend(const cfg_route_t *r, const char *name)
{
    for (unsigned i = 0; i < r->backends_count; i++) {
        if (strcmp(r->backends[i].name, name) == 0) {
            return &r->backends[i];
        }
    }
    return NULL;
}

static void backends(const cfg_route_t *r, const names_t *n, cfg__walk_t *w)
{
    if (r->backends_count == 0) {
        cfg__walk_error(w, "backends",
                        cfg__walk_present(w, "backends") ? "must not be empty" : "is required");
        return;
    }
    size_t o = cfg__walk_key(w, "backends");
    cfg__index_t seen = {0}; /* backends[].name -> the first with that name */
    uint64_t sum = 0;
    bool all_weights = true; /* a missing or bad weight is reported once, not as a zero sum */
    for (unsigned i = 0; i < r->backends_count; i++) {
        const cfg_backend_t *b = &r->backends[i];
        size_t o2 = cfg__walk_index(w, i);
        if (required(w, "name", b->name)) {
            size_t j = cfg__index_put(&seen, b->name, i);
            if (j != i) {
                cfg__walk_error(w, "name", "duplicate backend name '%s' (also backends[%u])",
                                b->name, (unsigned)j);
            }
        }
        if (required(w, "cluster", b->cluster) && !has_cluster(n, b->cluster)) {
            cfg__walk_error(w, "cluster", "no cluster named '%s'", b->cluster);
        }
        if (b->weight_text == NULL) {
            all_weights = false;
            cfg__walk_error(w, "weight", "is required");
        } else if (b->weight > MAX_WEIGHT) {
            cfg__walk_error(w, "weight", "must be <= %u", MAX_WEIGHT);
        }
        sum += b->weight;
        cfg__walk_pop(w, o2);
    }
    if (all_weights && sum == 0) {
        cfg__walk_error(w, NULL, "the weights must add up to more than 0");
    }
    cfg__index_destroy(&seen);
    cfg__walk_pop(w, o);
}

static void canary(const cfg_route_t *r, cfg__walk_t *w)
{
    const cfg_canary_t *c = r->canary;
    size_t o = cfg__walk_key(w, "canary");
    if (required(w, "backend", c->backend) && find_backend(r, c->backend) == NULL) {
        cfg__walk_error(w, "backend", "no backend named '%s' in this route", c->backend);
    }
    if (required(w, "baseline", c->baseline)) {
        if (find_backend(r, c->baseline) == NULL) {
            cfg__walk_error(w, "baseline", "no backend named '%s' in this route", c->baseline);
        } else if (strcmp(c->baseline, c->backend) == 0) {
            cfg__walk_error(w, "baseline", "must differ from backend");
        }
    }
    positive_duration(w, "window", c->window);
    if (c->max_p99_increase < 0) {
        cfg__walk_error(w, "max_p99_increase", "must be >= 0");
    }
    if (c->promote != NULL) {
        size_t o2 = cfg__walk_key(w, "promote");
        if (c->promote->step_text == NULL) {
            cfg__walk_error(w, "step", "is required");
        } else if (c->promote->step < 1 || c->promote->step > 100) {
            cfg__walk_error(w, "step", "must be 1..100 (percent of the traffic)");
        }
        if (c->promote->interval_text == NULL) {
            cfg__walk_error(w, "interval", "is required");
        } else {
            positive_duration(w, "interval", c->promote->interval);
        }
        cfg__walk_pop(w, o2);
    }
    if (c->override_header[0] != '\0' && !cfg__is_token(c->override_header)) {
        cfg__walk_error(w, "override_header", "must be a header name");
    }
    sticky(w, c->sticky);
    cfg__walk_pop(w, o);
}

static void match(const cfg_match_t *m, cfg__walk_t *w)
{
    size_t o = cfg__walk_key(w, "match");
    bool has_path = m->path[0] != '\0', has_prefix = m->path_prefix[0] != '\0';
    if (has_path && has_prefix) {
        cfg__walk_error(w, "path", "set path or path_prefix, not both");
    } else if (!has_path && !has_prefix) {
        cfg__walk_error(w, NULL, "needs path or path_prefix");
    } else if (has_path && m->path[0] != '/') {
        cfg__walk_error(w, "path", "must start with '/'");
    } else if (has_prefix && m->path_prefix[0] != '/') {
        cfg__walk_error(w, "path_prefix", "must start with '/'");
    }
    if (m->method[0] != '\0' && !cfg__is_token(m->method)) {
        cfg__walk_error(w, "method", "invalid method '%s'", m->method);
    }
    if (strpbrk(m->host, " \t/") != NULL) {
        cfg__walk_error(w, "host", "invalid host '%s'", m->host);
    }
    size_t o2 = cfg__walk_key(w, "headers");
    for (unsigned i = 0; i < m->headers_count; i++) {
        size_t o3 = cfg__walk_index(w, i);
        if (required(w, "name", m->headers[i].name) && !cfg__is_token(m->headers[i].name)) {
            cfg__walk_error(w, "name", "invalid header name '%s'", m->headers[i].name);
        }
        cfg__walk_pop(w, o3);
    }
    cfg__walk_pop(w, o2);
    cfg__walk_pop(w, o);
}

static void route(const cfg_route_t *r, unsigned index, const names_t *n, cfg__walk_t *w)
{
    if (required(w, "name", r->name)) {
        size_t j = cfg__index_get(&n->routes, r->name);
        if (j != index) {
            cfg__walk_error(w, "name", "duplicate route name '%s' (also routes[%u])", r->name,
                            (unsigned)j);
        }
    }
    match(&r->match, w);
    positive_duration(w, "timeout", r->timeout);
    if (r->retries.attempts > 10) {
        size_t o = cfg__walk_key(w, "retries");
        cfg__walk_error(w, "attempts", "must be <= 10");
        cfg__walk_pop(w, o);
    }
    filters(r, n, w);
    backends(r, n, w);
    if (r->canary != NULL) {
        canary(r, w);
    }
}

static void listener(const cfg_config_t *cfg, unsigned index, names_t *n, cfg__walk_t *w)
{
    const cfg_listener_t *l = &cfg->listeners[index];
    if (required(w, "name", l->name)) {
        size_t j = cfg__index_put(&n->listeners, l->name, index);
        if (j != index) {
            cfg__walk_error(w, "name", "duplicate listener name '%s' (also listeners[%u])", l->name,
                            (unsigned)j);
        }
    }
    address(w, "address", l->address, true, true);
    if (l->address[0] != '\0') {
        size_t j = cfg__index_put(&n->addresses, l->address, index);
        if (j != index) {
            cfg__walk_error(w, "address", "address '%s' already used by listeners[%u]", l->address,
                            (unsigned)j);
        }
    }
    positive_duration(w, "read_timeout", l->read_timeout);
    positive_duration(w, "write_timeout", l->write_timeout);
    positive_duration(w, "idle_timeout", l->idle_timeout);
    if (l->max_connections < 1) {
        cfg__walk_error(w, "max_connections", "must be >= 1");
    }
    if (l->max_header_bytes < 1 || l->max_header_bytes > 16u * 1024 * 1024) {
        cfg__walk_error(w, "max_header_bytes", "must be 1..16MiB");
    }
    if (l->max_headers < 1 || l->max_headers > 128) {
        cfg__walk_error(w, "max_headers", "must be 1..128");
    }
    /* All of them first: related_route may name a later route. */
    cfg__index_destroy(&n->routes);
    for (unsigned i = 0; i < l->routes_count; i++) {
        cfg__index_put(&n->routes, l->routes[i].name, i);
    }
    size_t o = cfg__walk_key(w, "routes");
    for (unsigned i = 0; i < l->routes_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        route(&l->routes[i], i, n, w);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
}

static void cluster(const cfg_config_t *cfg, unsigned index, const names_t *n, cfg__walk_t *w)
{
    const cfg_cluster_t *c = &cfg->clusters[index];
    if (required(w, "name", c->name)) {
        size_t j = cfg__index_get(&n->clusters, c->name);
        if (j != index) {
            cfg__walk_error(w, "name", "duplicate cluster name '%s' (also clusters[%u])", c->name,
                            (unsigned)j);
        }
    }
    if (c->endpoints_count == 0) {
        cfg__walk_error(w, "endpoints",
                        cfg__walk_present(w, "endpoints") ? "must not be empty" : "is required");
    }
    size_t o = cfg__walk_key(w, "endpoints");
    for (unsigned i = 0; i < c->endpoints_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        const char *why = cfg__check_address(c->endpoints[i], false, false);
        if (why != NULL) {
            cfg__walk_error(w, NULL, "invalid endpoint '%s': %s", c->endpoints[i], why);
        }
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
    if (c->max_connections < 1) {
        cfg__walk_error(w, "max_connections", "must be >= 1");
    }
    positive_duration(w, "connect_timeout", c->connect_timeout);
    positive_duration(w, "dns_refresh", c->dns_refresh);
}

void cfg__validate(const cfg_config_t *cfg, cfg__walk_t *w)
{
    names_t n = {0};
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        cfg__index_put(&n.clusters, cfg->clusters[i].name, i);
    }
    if (cfg->runtime.procs > 1024) {
        size_t o = cfg__walk_key(w, "runtime");
        cfg__walk_error(w, "procs", "must be <= 1024");
        cfg__walk_pop(w, o);
    }
    {
        size_t o = cfg__walk_key(w, "admin");
        address(w, "address", cfg->admin.address, true, true);
        cfg__walk_pop(w, o);
    }
    if (cfg->listeners_count == 0) {
        cfg__walk_error(w, "listeners", "at least one listener is required");
    }
    size_t o = cfg__walk_key(w, "listeners");
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        listener(cfg, i, &n, w);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
    o = cfg__walk_key(w, "clusters");
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        size_t o2 = cfg__walk_index(w, i);
        cluster(cfg, i, &n, w);
        cfg__walk_pop(w, o2);
    }
    cfg__walk_pop(w, o);
    cfg__index_destroy(&n.clusters);
    cfg__index_destroy(&n.listeners);
    cfg__index_destroy(&n.addresses);
    cfg__index_destroy(&n.routes);
}
