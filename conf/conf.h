/* SPDX-License-Identifier: MIT */
/*
 * conf.h - remora's configuration model: the YAML of shared/DESIGN.md mapped
 * onto C structs (libcyaml), with durations, sizes and percentages converted,
 * defaults applied in one place and semantic problems collected with their
 * YAML path and line. conf/ turns bytes into a validated config and nothing
 * more; building live objects from it is the proxy's job.
 *
 * Units after loading: durations in nanoseconds (int64_t, rt_time_t scale),
 * sizes in bytes, percentages and ratios as doubles in 0..1 ("0.5%" -> 0.005).
 * Strings are NUL-terminated and never NULL after loading ("" when absent).
 * Fields named `*_text` hold the raw YAML scalar and belong to the loader.
 */
#ifndef CFG_CONF_H
#define CFG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- filters ---- */

typedef enum cfg_rl_key {
    CFG_RL_KEY_ROUTE = 0,
    CFG_RL_KEY_CLIENT_IP,
    CFG_RL_KEY_HEADER, /* header:NAME, NAME in `key_header` */
} cfg_rl_key_t;

typedef enum cfg_rl_mode { CFG_RL_REJECT = 0, CFG_RL_QUEUE } cfg_rl_mode_t;

typedef struct cfg_rate_limit {
    double rate;            /* tokens per second, > 0 */
    uint64_t burst;         /* bucket size, >= 1 (default: rate rounded up) */
    cfg_rl_key_t key;       /* default route */
    char *key_header;       /* for CFG_RL_KEY_HEADER */
    uint64_t max_keys;      /* default 100000 */
    cfg_rl_mode_t mode;     /* default reject */
    int64_t max_queue_time; /* default 500ms */
    char *related_route;    /* default "" */
    char *key_text, *mode_text, *max_queue_time_text, *rate_text;
    char *burst_text, *max_keys_text;
} cfg_rate_limit_t;

typedef enum cfg_cb_grade {
    CFG_CB_EXCEPTION_COUNT = 0,
    CFG_CB_EXCEPTION_RATIO,
    CFG_CB_SLOW_RATIO,
} cfg_cb_grade_t;

/* Outcome classes a breaker counts, and a route retries on (bit set). */
enum {
    CFG_OUTCOME_5XX = 1u << 0,
    CFG_OUTCOME_CONNECT_FAILURE = 1u << 1,
    CFG_OUTCOME_TIMEOUT = 1u << 2,
    CFG_OUTCOME_RESET = 1u << 3,
};

typedef struct cfg_circuit_breaker {
    cfg_cb_grade_t grade;   /* default exception_count */
    double threshold;       /* count, or ratio 0..1 */
    int64_t slow_call;      /* default 1s */
    int64_t window;         /* default 60s */
    uint64_t min_requests;  /* default 5 */
    int64_t open_for;       /* default 60s */
    uint32_t exceptions;    /* CFG_OUTCOME_* bits; default 5xx|connect_failure|timeout */
    char *fallback_cluster; /* default "" */
    char *grade_text, *threshold_text, *slow_call_text, *window_text, *open_for_text;
    char **exceptions_text;
    unsigned exceptions_count;
    char *min_requests_text;
    bool has_exceptions; /* `exceptions:` present (an empty list counts 0 outcomes) */
} cfg_circuit_breaker_t;

typedef struct cfg_fault {
    double delay_percent; /* 0..1 share of requests delayed */
    int64_t delay_duration;
    double abort_percent;  /* 0..1 share of requests aborted */
    uint32_t abort_status; /* default 503 */

    /* loader-owned raw scalars */
    struct cfg_fault_delay_raw {
        char *percent, *duration;
    } * delay_raw;

    struct cfg_fault_abort_raw {
        char *percent, *status;
    } * abort_raw;
} cfg_fault_t;

/*
 * Test-only filter (behaviour compiled in with REMORA_TEST_FILTERS): adds
 * `header: on_request` to the upstream request and `header: on_response` to
 * the response, and appends one line per on_complete to `log`.
 */
typedef struct cfg_test_hooks {
    char *header; /* default "x-test-hooks" */
    char *log;    /* file path, "" = none */
} cfg_test_hooks_t;

typedef enum cfg_filter_kind {
    CFG_FILTER_RATE_LIMIT = 0,
    CFG_FILTER_CIRCUIT_BREAKER,
    CFG_FILTER_FAULT,
    CFG_FILTER_TEST_HOOKS,
} cfg_filter_kind_t;

/** One entry of a route's `filters:` list: exactly one of the pointers is set. */
typedef struct cfg_filter {
    cfg_filter_kind_t kind; /* derived from which pointer is set */
    cfg_rate_limit_t *rate_limit;
    cfg_circuit_breaker_t *circuit_breaker;
    cfg_fault_t *fault;
    cfg_test_hooks_t *test_hooks;
} cfg_filter_t;

/* ---- routes ---- */

typedef struct cfg_header_match {
    char *name;
    char *value; /* exact match; "" = the header must be present */
} cfg_header_match_t;

typedef struct cfg_match {
    char *path_prefix; /* "" = none; at least one of path_prefix/path is set */
    char *path;        /* exact path (query string excluded) */
    char *host;        /* "" = any; compared case-insensitively, port ignored */
    char *method;      /* "" = any */
    cfg_header_match_t *headers;
    unsigned headers_count;
} cfg_match_t;

typedef struct cfg_retries {
    uint32_t attempts; /* extra attempts after the first; default 0 */
    uint32_t on;       /* CFG_OUTCOME_* bits; default connect_failure */
    char **on_text;
    unsigned on_text_count;
    bool has_on; /* `on:` present (an empty list retries on nothing) */
} cfg_retries_t;

typedef struct cfg_backend {
    char *name;
    char *cluster;
    uint32_t weight;
    char *weight_text;
} cfg_backend_t;

typedef struct cfg_promote {
    uint32_t step;
    int64_t interval;
    char *interval_text, *step_text;
} cfg_promote_t;

typedef struct cfg_canary {
    char *backend;
    char *baseline;
    int64_t window;           /* default 30s */
    uint64_t min_requests;    /* default 100 */
    int64_t max_p99_increase; /* default 150ms */
    double max_error_rate;    /* 0..1; default 0.005 */
    cfg_promote_t *promote;   /* NULL = manual promotion */
    char *override_header;    /* default "x-canary" */
    char *sticky;             /* "" | header:NAME | cookie:NAME */
    char *window_text, *max_p99_increase_text, *max_error_rate_text, *min_requests_text;
} cfg_canary_t;

typedef struct cfg_route {
    char *name;
    cfg_match_t match;
    int64_t timeout;       /* until the upstream's response head arrives; default 15s */
    cfg_retries_t retries; /* defaults when the key is absent */
    cfg_filter_t *filters;
    unsigned filters_count;
    cfg_backend_t *backends;
    unsigned backends_count;
    cfg_canary_t *canary; /* NULL = none */
    char *timeout_text;
    cfg_retries_t *retries_raw;
} cfg_route_t;

/* ---- listeners, clusters, the whole config ---- */

typedef struct cfg_listener {
    char *name;
    char *address;             /* "0.0.0.0:10000", "[::1]:80" */
    int64_t read_timeout;      /* default 8s: a request head must arrive within it */
    int64_t write_timeout;     /* default 12s */
    int64_t idle_timeout;      /* default 90s: keep-alive idle */
    uint64_t max_connections;  /* default 10000 */
    uint64_t max_header_bytes; /* default 64KiB: request line + headers (431 over it) */
    uint64_t max_headers;      /* default 100 (431 over it; at most 128) */
    uint64_t max_request_body; /* default 0 = no limit (413 over it) */
    char *access_log;          /* "" off, "-" stderr, or a file path */
    cfg_route_t *routes;
    unsigned routes_count;
    char *read_timeout_text, *write_timeout_text, *idle_timeout_text;
    char *max_header_bytes_text, *max_request_body_text;
    char *max_connections_text, *max_headers_text;
} cfg_listener_t;

typedef struct cfg_cluster {
    char *name;
    char **endpoints; /* "ip:port" or "name:port" */
    unsigned endpoints_count;
    uint64_t max_connections; /* per endpoint; default 256 */
    uint64_t max_pending;     /* requests waiting for a connection, per cluster; default 1024 */
    int64_t pending_timeout;  /* default 0 = fail fast */
    int64_t connect_timeout;  /* default 1s */
    int64_t dns_refresh;      /* default 5s */
    char *pending_timeout_text, *connect_timeout_text, *dns_refresh_text;
    char *max_connections_text, *max_pending_text;
} cfg_cluster_t;

typedef struct cfg_admin {
    char *address;    /* default 127.0.0.1:9901 */
    char *token_file; /* default "" */
} cfg_admin_t;

typedef struct cfg_runtime {
    uint32_t procs; /* 0 = one per CPU */
} cfg_runtime_t;

typedef struct cfg_config {
    cfg_runtime_t runtime;
    cfg_admin_t admin;
    int64_t drain_timeout; /* default 30s: SIGTERM / POST /drain waits this long at most */
    cfg_listener_t *listeners;
    unsigned listeners_count;
    cfg_cluster_t *clusters;
    unsigned clusters_count;
    /* loader-owned */
    cfg_runtime_t *runtime_raw;
    cfg_admin_t *admin_raw;
    char *drain_timeout_text;
    _Atomic uint32_t refs; /* 1 from cfg_load_*; cfg_config_retain / cfg_config_free */
} cfg_config_t;

/* ---- loading and problems ---- */

/** One problem: YAML path ("listeners[0].routes[2].backends[1].cluster"), position, message. */
typedef struct cfg_error {
    char *path;
    unsigned line;   /* 1-based; 0 = unknown */
    unsigned column; /* 1-based; 0 = unknown */
    char *message;
} cfg_error_t;

/** At most this many problems are listed; then one more says that the rest were left out. */
#define CFG_ERRORS_MAX 1000

/**
 * Every problem found in one document (caller storage; zero value is empty).
 * Only cfg_* functions add to it: its capacity is implied by `count`.
 */
typedef struct cfg_errors {
    cfg_error_t *items;
    size_t count;
} cfg_errors_t;

/**
 * Loads, converts, defaults and validates `len` bytes of YAML. Returns 0 and
 * `*out` (caller owns; free with cfg_config_free), or -1 with every problem
 * appended to `errs` (then `*out` is untouched). Untrusted input is safe: the
 * time taken is linear in `len`, collections nested deeper than 64 levels are
 * a syntax error, and aliases may add at most 100000 nodes in all.
 */
int cfg_load_data(const char *yaml, size_t len, cfg_config_t **out, cfg_errors_t *errs);
/** Like cfg_load_data on the contents of `path` (unreadable file -> one problem). */
int cfg_load_file(const char *path, cfg_config_t **out, cfg_errors_t *errs);
/** Returns the embedded default config (conf/default.yaml), NUL-terminated. Static. */
const char *cfg_default_yaml(void);
/**
 * Adds a reference to `cfg` (from cfg_load_*) and returns `cfg`; each retain
 * is paired with one cfg_config_free. NULL returns NULL. Thread-safe: a config
 * is immutable after loading, so holders on any thread may share it.
 */
cfg_config_t *cfg_config_retain(cfg_config_t *cfg);
/**
 * Drops one reference to `cfg`; frees it when that was the last (the load
 * holds the first). NULL does nothing. Thread-safe.
 */
void cfg_config_free(cfg_config_t *cfg);

/** Prints each problem as "FILE:LINE:COLUMN: PATH: MESSAGE" (like a compiler). */
void cfg_errors_print(const cfg_errors_t *errs, const char *file, FILE *out);
/** Frees the problems' storage and empties `errs`. */
void cfg_errors_destroy(cfg_errors_t *errs);
/**
 * Appends a problem found after loading (e.g. an address that cannot be
 * bound) at `path` of the document `yaml`, with the line and column of that
 * path, or of its nearest ancestor present in the document.
 */
void cfg_errors_add_at(cfg_errors_t *errs, const char *yaml, size_t len, const char *path,
                       const char *message);

/** Returns the cluster named `name`, or NULL. */
const cfg_cluster_t *cfg_find_cluster(const cfg_config_t *cfg, const char *name);

/* ---- reloads and the admin API ---- */

/**
 * Returns whether `a` and `b` were configured the same, so live state built
 * from one (a cluster's pool, a filter's buckets or breaker window, a
 * canary's statistics) may be carried over to the other across a reload.
 * Compares the YAML scalars as written, key order aside: conservative, so
 * "1s" vs "1000ms" counts as changed. NULL equals only NULL.
 */
bool cfg_cluster_equal(const cfg_cluster_t *a, const cfg_cluster_t *b);
/** Like cfg_cluster_equal, for one entry of a route's `filters:` (its kind and every key). */
bool cfg_filter_equal(const cfg_filter_t *a, const cfg_filter_t *b);
/** Like cfg_cluster_equal, for a route's `canary:` (both NULL: equal). */
bool cfg_canary_equal(const cfg_canary_t *a, const cfg_canary_t *b);

/** One backend's new weight, by backend name (`backends[].name`). */
typedef struct cfg_weight {
    const char *backend;
    uint32_t weight;
} cfg_weight_t;

/**
 * Returns in `*out` (caller owns; free(); NUL-terminated, `*out_len` bytes
 * without the NUL) a copy of the `len` bytes of `yaml` where every route
 * named `route` (listeners[*].routes[*]) has the `weight` of each backend
 * listed in `w[0..n)` set; every other byte is unchanged (comments, order,
 * quoting, flow or block style). A quoted weight stays quoted; a missing
 * `weight` key is added after the entry's last key, in the entry's style.
 * When `w` names a backend twice, the last one wins. Returns 0, or -1 with
 * problems appended to `errs` and `*out` untouched: a YAML syntax error (or
 * UTF-16 input, or nesting deeper than 64 levels); no such route (path "",
 * message `no route named "NAME"`); a backend not in the route (path
 * "listeners[i].routes[j].backends" at its line, message `no backend named
 * "NAME"`); a `weight` that is not a scalar. Does not validate the result:
 * the caller loads it like any config.
 */
int cfg_set_weights(const char *yaml, size_t len, const char *route, const cfg_weight_t *w,
                    size_t n, char **out, size_t *out_len, cfg_errors_t *errs);

/** Parses "150ms", "8s", "2m", "1h", "0s", "250us" into ns. 0 or -1 (bad syntax/overflow). */
int cfg_parse_duration(const char *s, int64_t *out_ns);
/** Parses "64KiB", "1MiB", "1GiB", "512", "10KB" into bytes. 0 or -1. */
int cfg_parse_size(const char *s, uint64_t *out_bytes);
/** Parses "0.5%" into 0.005 (the % is required); 0 or -1; range 0..100%. */
int cfg_parse_percent(const char *s, double *out_ratio);

#endif /* CFG_CONF_H */
