/* SPDX-License-Identifier: MIT */
/*
 * filter.h - the filter contract (DESIGN.md "filters/"): a filter is one
 * const flt_ops_t; a route's filters form a chain built from its config.
 * The proxy runs on_request before choosing an upstream, on_response when
 * the response head is known, and on_complete once the request is over.
 * Filters see a request only through flt_ctx_t, so they know nothing of
 * sockets or HTTP framing. Hooks run on the request's G and may park it.
 */
#ifndef FLT_FILTER_H
#define FLT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "runtime/rt.h"

typedef struct flt_ctx flt_ctx_t;

/** What the proxy lets filters do to the request it is serving. */
typedef struct flt_host {
    /**
     * Returns the value of request header `name` (case-insensitive) or NULL.
     * Only during on_request: the head's bytes may be reused once the body streams.
     */
    const char *(*request_header)(flt_ctx_t *ctx, const char *name, size_t *len);
    /** Adds a header to the request sent upstream (copied). 0 or -1 when full. */
    int (*add_request_header)(flt_ctx_t *ctx, const char *name, const char *value);
    /** Adds a header to the response sent to the client (copied). 0 or -1 when full. */
    int (*add_response_header)(flt_ctx_t *ctx, const char *name, const char *value);
} flt_host_t;

/** One request as filters see it; embedded in the proxy's request context. */
struct flt_ctx {
    const flt_host_t *host;
    const char *route;  /* route name */
    const char *method; /* NUL-terminated copies, valid for the whole request */
    const char *path;
    const char *client_ip;
    const char *backend; /* NULL until chosen; a filter may set a backend name of the route */
    rt_time_t start;     /* when the request head was complete */
};

/** How a request ended, for on_complete (and breaker/canary statistics). */
typedef enum flt_outcome {
    FLT_OUTCOME_OK = 0,          /* the upstream answered with a status below 500 */
    FLT_OUTCOME_5XX,             /* the upstream answered 5xx */
    FLT_OUTCOME_CONNECT_FAILURE, /* no connection to the upstream (refused, unreachable, timeout) */
    FLT_OUTCOME_TIMEOUT,         /* the route timeout passed before the response head */
    FLT_OUTCOME_RESET,           /* the upstream closed or reset the exchange */
    FLT_OUTCOME_OVERLOADED,      /* no pool capacity (503 overloaded) */
    FLT_OUTCOME_LOCAL, /* answered without an upstream (a filter, no route, bad request) */
} flt_outcome_t;

/** Returns the outcome's name: ok, 5xx, connect_failure, timeout, reset, overloaded, local. */
const char *flt_outcome_name(flt_outcome_t outcome);

typedef struct flt_complete {
    const char *backend; /* "" when none was chosen */
    int status;          /* status sent to the client; 0 if none was sent */
    flt_outcome_t outcome;
    int64_t latency_ns; /* from `start` to the end of the response */
} flt_complete_t;

typedef enum flt_verdict {
    FLT_CONTINUE = 0, /* go on with the next filter, then the upstream */
    FLT_REPLY,        /* answer locally with `flt_reply_t`; later filters do not run */
} flt_verdict_t;

typedef struct flt_reply {
    int status;          /* e.g. 429, 503 */
    const char *reason;  /* x-remora-reason: "rate_limited", "circuit_open", ... (static) */
    int64_t retry_after; /* seconds for Retry-After; 0 = none */
} flt_reply_t;

/** The vtable of one filter kind. NULL hooks pass through. */
typedef struct flt_ops {
    const char *name; /* YAML key: "fault" */
    cfg_filter_kind_t kind;
    /**
     * Builds per-route state from `cfg`. 0, or -1 with a message in `err`.
     * The state must not point into `cfg`: when a reload keeps the rule, the
     * state outlives the config it was built from.
     */
    int (*create)(const cfg_filter_t *cfg, const cfg_route_t *route, void **state, char *err,
                  size_t errlen);
    /** May park (a delaying filter sleeps its G). */
    flt_verdict_t (*on_request)(void *state, flt_ctx_t *ctx, flt_reply_t *reply);
    void (*on_response)(void *state, flt_ctx_t *ctx, int status);
    void (*on_complete)(void *state, flt_ctx_t *ctx, const flt_complete_t *done);
    void (*destroy)(void *state);
} flt_ops_t;

/** Returns the ops of a filter kind, or NULL when it is not built in. */
const flt_ops_t *flt_lookup(cfg_filter_kind_t kind);

typedef struct flt_chain flt_chain_t;

/**
 * Builds the chain of `route` (its `filters` in order). `prev` is the same
 * route's chain in the config being replaced (NULL if none): each filter
 * whose kind, position among filters of that kind, and rule are unchanged
 * keeps prev's state. `prev` must stay alive during the call. Returns 0 and
 * `*out` (caller owns), or -1 with a message in `err`.
 */
int flt_chain_new(const cfg_route_t *route, const flt_chain_t *prev, flt_chain_t **out, char *err,
                  size_t errlen);
/** Returns how many filters of `chain` kept the state of the previous chain. */
unsigned flt_chain_carried(const flt_chain_t *chain);
void flt_chain_free(flt_chain_t *chain);

/**
 * Runs on_request of each filter in order until one replies. `*ran` receives
 * how many filters ran (pass it to the later calls). May park.
 */
flt_verdict_t flt_chain_on_request(flt_chain_t *chain, flt_ctx_t *ctx, flt_reply_t *reply,
                                   unsigned *ran);
/** Runs on_response of the filters that ran, last first. */
void flt_chain_on_response(flt_chain_t *chain, flt_ctx_t *ctx, int status, unsigned ran);
/** Runs on_complete of the filters that ran, last first. */
void flt_chain_on_complete(flt_chain_t *chain, flt_ctx_t *ctx, const flt_complete_t *done,
                           unsigned ran);

#endif /* FLT_FILTER_H */
