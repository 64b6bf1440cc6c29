/* SPDX-License-Identifier: MIT */
/*
 * proxy.h - declarations shared inside proxy/: the live objects built from a
 * config (server, listeners, routes, clusters, endpoints and their pools),
 * the client connection, the per-request context, and the reasons the proxy
 * gives for the responses it generates itself.
 */
#ifndef PX_PROXY_H
#define PX_PROXY_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "filters/filter.h"
#include "proxy/http1.h"
#include "runtime/rt.h"

/* ---- reasons (x-remora-reason), one table in reply.c ---- */

typedef enum px_reason {
    PX_REASON_NONE = 0,
    PX_REASON_NO_ROUTE,
    PX_REASON_OVERLOADED,
    PX_REASON_UPSTREAM_CONNECT,
    PX_REASON_UPSTREAM_TIMEOUT,
    PX_REASON_UPSTREAM_RESET,
    PX_REASON_BAD_RESPONSE,
    PX_REASON_BAD_REQUEST,
    PX_REASON_HEADERS_TOO_LARGE,
    PX_REASON_BODY_TOO_LARGE,
    PX_REASON_NOT_IMPLEMENTED,
    PX_REASON_VERSION_NOT_SUPPORTED,
    PX_REASON_REQUEST_TIMEOUT,
    PX_REASON_FILTER, /* the text comes from the filter's flt_reply_t */
} px_reason_t;

/** Returns the x-remora-reason text of `reason` ("" for NONE). */
const char *px_reason_name(px_reason_t reason);
/** Returns the reason a refused request gets for a parser error. */
px_reason_t px_reason_of_http1_error(px_http1_err_t err);

/* ---- byte buffers ---- */

/** A bounded byte buffer: bytes live in data[start..end). */
typedef struct px_buf {
    char *data;
    size_t cap, start, end;
    bool pooled;  /* data is a block of one of the shared pools */
    bool drained; /* the last fill read fewer bytes than it had room for */
} px_buf_t;

/** Pooled buffer sizes: a client connection's, and an upstream connection's (a 16 KiB body
 * and its head fit in one read). */
#define PX_BUF_SIZE (16 * 1024)
#define PX_UP_BUF_SIZE (32 * 1024)

/** Gives `b` a buffer of `size` (PX_BUF_SIZE or PX_UP_BUF_SIZE) from a per-P pool. */
void px_buf_init(px_buf_t *b, size_t size);
/** Returns the storage (not the `drained` flag). */
void px_buf_destroy(px_buf_t *b);

static inline size_t px_buf_len(const px_buf_t *b)
{
    return b->end - b->start;
}

static inline const char *px_buf_head(const px_buf_t *b)
{
    return b->data + b->start;
}

static inline void px_buf_consume(px_buf_t *b, size_t n)
{
    b->start += n;
    if (b->start == b->end) {
        b->start = b->end = 0;
    }
}

/** Moves the bytes to the front; grows the buffer up to `max` if it is full. */
void px_buf_make_room(px_buf_t *b, size_t max);
/**
 * Reads once into the free space (growing the buffer up to `max` when full).
 * Returns bytes read, 0 at EOF, or a negative error. May park.
 */
ssize_t px_buf_fill(px_buf_t *b, rt_netfd_t *nfd, size_t max, rt_time_t deadline);

/* ---- upstreams: clusters, endpoints, connection pools (upstream.c, pool.c) ---- */

typedef struct px_cluster px_cluster_t;

/** One address of a cluster, with its pool of connections. Refcounted: DNS may drop it. */
typedef struct px_endpoint {
    _Atomic int refs;
    px_cluster_t *cluster;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char name[64];        /* "10.0.0.1:8080" for logs */
    _Atomic bool retired; /* no longer in the cluster: connections are closed on release */
    rt_chan_t *idle;      /* px_upconn_t *: kept-alive connections, capacity max_connections */
    rt_chan_t *slots;     /* tokens: a connection may be opened per token held */
} px_endpoint_t;

/** A connection to an endpoint, owned by one request at a time (or parked in `idle`). */
typedef struct px_upconn {
    rt_netfd_t *nfd;
    px_endpoint_t *ep;
    px_buf_t buf;  /* response bytes; allocated when first used */
    uint32_t uses; /* requests sent on it before the current one */
    bool quiet;    /* nothing was left to read when it was last read (or never read) */
} px_upconn_t;

struct px_cluster {
    const cfg_cluster_t *cfg;
    cfg_config_t *doc; /* a reference to the config `cfg` lives in */
    _Atomic int users; /* snapshots using the cluster; the last one closes it */
    _Atomic int refs;  /* memory: one for all users, one for a running DNS refresher */
    rt_mutex_t mu;     /* protects eps/neps (DNS refresh replaces them) */
    px_endpoint_t **eps;
    unsigned neps;
    _Atomic uint64_t rr;     /* round-robin cursor */
    _Atomic int64_t pending; /* requests waiting for a connection */
    _Atomic uint64_t connect_failures;
    _Atomic bool stop;            /* ends the DNS refresher */
    bool has_names;               /* some endpoint is a host name: refresh periodically */
    struct px_addr_list *answers; /* per cfg->endpoints[i]: the addresses of its last DNS
                                     answer, kept while lookups fail (the refresher's own) */
    unsigned nanswers;
    bool started; /* px_cluster_start ran (it is called once per snapshot using it) */
};

/**
 * Builds a cluster with one user from `cfg`, which lives in `doc` (retained;
 * NULL in unit tests), and resolves its endpoints (may park: getaddrinfo off
 * the P). NULL + message on a malformed endpoint.
 */
px_cluster_t *px_cluster_open(const cfg_cluster_t *cfg, cfg_config_t *doc, char *err,
                              size_t errlen);
/** Starts the periodic DNS refresher when some endpoint is a name (once; later calls do nothing).
 * Called under the server's reload lock. */
void px_cluster_start(px_cluster_t *cl);
/** Adds a user (a snapshot that keeps the cluster across a reload). */
void px_cluster_use(px_cluster_t *cl);
/** Drops a user; the last one closes the cluster (refresher stopped, endpoints retired) and frees
 * it once nothing touches it. */
void px_cluster_unuse(px_cluster_t *cl);
/** Re-resolves the endpoints now, keeping the unchanged ones (what the refresher does). May park.
 */
void px__cluster_refresh(px_cluster_t *cl);

/** At most this many addresses are taken from one name. */
#define PX_RESOLVE_MAX 64
/** What a resolver returns when it got no answer (a timeout, SERVFAIL): not "no addresses". */
#define PX_RESOLVE_NO_ANSWER (-1)
/**
 * Resolves `host`:`port` into at most `max` addresses. Returns how many: 0
 * when the answer is that the name has none (NXDOMAIN, a headless Service
 * without ready pods), or PX_RESOLVE_NO_ANSWER.
 */
typedef int px_resolve_fn(const char *host, const char *port, struct sockaddr_storage *out,
                          socklen_t *lens, unsigned max);
/** Replaces getaddrinfo (tests); NULL restores it. */
void px__set_resolver(px_resolve_fn *fn);
/** Returns a referenced endpoint chosen round-robin (skipping `avoid` if another exists), or NULL.
 */
px_endpoint_t *px_cluster_pick(px_cluster_t *cl, const px_endpoint_t *avoid);
void px_endpoint_unref(px_endpoint_t *ep);
px_endpoint_t *px_endpoint_new(px_cluster_t *cl, const struct sockaddr *sa, socklen_t len);

typedef enum px_acquire {
    PX_ACQUIRE_OK = 0,
    PX_ACQUIRE_OVERLOADED,     /* no capacity and no room or time to wait */
    PX_ACQUIRE_CONNECT_FAILED, /* the connect failed or timed out */
} px_acquire_t;

/**
 * Gets a connection to `ep`: an idle one that is still open, or a new one
 * when a slot is free; when neither is ready, waits up to the cluster's
 * pending_timeout if fewer than max_pending wait, else fails fast (select
 * with default). `fresh` skips idle connections. `*connect_err` gets the
 * connect error. May park.
 */
px_acquire_t px_pool_acquire(px_endpoint_t *ep, bool fresh, px_upconn_t **out, int *connect_err);
/** Returns `up` to its pool when `reusable`, else closes it and frees its slot. */
void px_pool_release(px_upconn_t *up, bool reusable);

/* ---- routes (router.c) ---- */

typedef struct px_backend {
    const char *name;
    px_cluster_t *cluster;
    uint32_t weight;
} px_backend_t;

/* ---- request statistics (metrics.c) ---- */

/** Upper bounds of the request duration histogram (metrics.c), then +Inf. */
#define PX_LATENCY_BUCKETS 14

/** Counters of one (route, backend) pair; updated with relaxed atomics by any P. */
typedef struct px_stats {
    _Atomic uint64_t by_class[6]; /* [0] no status sent, [1..5] 1xx..5xx */
    _Atomic uint64_t buckets[PX_LATENCY_BUCKETS + 1];
    _Atomic uint64_t sum_us;
} px_stats_t;

/** Counts one finished request with `status` (0 = none sent) and `latency_ns`. */
void px_stats_record(px_stats_t *st, int status, int64_t latency_ns);

typedef struct px_route {
    const cfg_route_t *cfg;
    px_backend_t *backends;
    unsigned nbackends;
    uint64_t total_weight;
    flt_chain_t *chain;
    px_stats_t **stats; /* one per backend, then one for requests answered without a backend */
} px_route_t;

typedef struct px_listener px_listener_t;
typedef struct px_lview px_lview_t;

/** Returns the first route of `lv` matching `req`, or NULL. */
const px_route_t *px_router_match(const px_lview_t *lv, const px_request_t *req);
/** Picks a backend at random by weight. */
const px_backend_t *px_route_pick(const px_route_t *r);
/** Returns the backend named `name`, or NULL. */
const px_backend_t *px_route_backend(const px_route_t *r, const char *name);

/* ---- access log (access_log.c) ---- */

typedef struct px_access_log px_access_log_t;

/** Returns the log of "-" (stderr) or a file, opening it with a writer G the first time. NULL +
 * message on error. */
px_access_log_t *px_access_log_open(const char *target, char *err, size_t errlen);
/** Queues one line; drops it (counted) rather than block when the writer lags. */
void px_access_log_line(px_access_log_t *log, const char *line, size_t len);
/** Waits (until `deadline`) for every log's queued lines to be written. May park. */
void px_access_log_flush_all(rt_time_t deadline);

/* ---- server, listeners, snapshots ---- */

typedef struct px_server px_server_t;
typedef struct px_snapshot px_snapshot_t;

/**
 * A listening socket, identified by its address, alive across reloads
 * while some config has it (listener.c). Refcounted: the server's list,
 * its accept G and each of its connections hold a reference.
 */
struct px_listener {
    px_server_t *srv;
    char address[64];
    char name[64];      /* of the config that opened it, for logs */
    rt_netfd_t *nfd;    /* NULL once the accept G closed it */
    rt_mutex_t stop_mu; /* orders px_listener_stop's shutdown before the close */
    _Atomic int refs;
    _Atomic int64_t conns;       /* open connections */
    _Atomic uint64_t max_conns;  /* max_connections of the current config */
    rt_chan_t *room;             /* capacity 1: a connection closed while the listener was full */
    _Atomic bool closing;        /* removed by a reload (or draining): accept no more */
    px_snapshot_t *_Atomic last; /* once removed: the last snapshot that had it (a reference) */
};

/** Opens (binds) a listener for `address`; not accepting until px_listener_start. */
px_listener_t *px_listener_open(px_server_t *srv, const cfg_listener_t *cfg, char *err,
                                size_t errlen);
/** Starts its accept G, which closes the socket once stopped. */
void px_listener_start(px_listener_t *l);
/** Closes a listener that was never started and drops the caller's reference. */
void px_listener_discard(px_listener_t *l);
/** Stops accepting (the socket closes) without touching established connections. */
void px_listener_stop(px_listener_t *l);
/** Called by a connection of `l` as it closes: frees its place and its reference. */
void px_listener_conn_closed(px_listener_t *l);
void px_listener_unref(px_listener_t *l);

/** A listener as one snapshot configures it. */
struct px_lview {
    const cfg_listener_t *cfg;
    px_listener_t *l;
    px_route_t *routes;
    unsigned nroutes;
    px_http1_limits_t limits;
    px_access_log_t *log; /* NULL = off; shared by every config naming its target */
    px_stats_t *no_route; /* requests that matched no route */
};

/**
 * An immutable, validated config made live (snapshot.c): listener views with
 * their routes and filter chains, the clusters they use, the YAML it came
 * from. Requests hold the snapshot they started with; a reload publishes a
 * new one and the old one is freed when its last holder lets go.
 */
struct px_snapshot {
    _Atomic int refs;
    uint64_t generation;
    cfg_config_t *cfg;
    char *yaml; /* the config's text (GET /config) */
    size_t yaml_len;
    px_lview_t *views;
    unsigned nviews;
    px_cluster_t **clusters;
    unsigned nclusters;
    char *admin_token; /* NULL = the admin API is open */
};

/** Problems found while making a config live (a bind failure...): path and message. */
typedef struct px_build_error {
    char path[128];
    char message[256];
} px_build_error_t;

/**
 * Builds the live objects of `cfg`, loaded from `yaml`; the snapshot takes
 * both on success (the caller keeps them on failure). `listeners[i]` is the
 * listening socket of cfg->listeners[i] (opened by the caller, not yet
 * accepting). Objects whose config is unchanged from `prev` (NULL: none)
 * are carried over: clusters with their pools, filters with their state.
 * NULL + `err` on failure, with nothing changed. May park (DNS).
 */
px_snapshot_t *px_snapshot_build(px_server_t *srv, cfg_config_t *cfg, char *yaml, size_t yaml_len,
                                 const px_snapshot_t *prev, px_listener_t *const *listeners,
                                 px_build_error_t *err);
void px_snapshot_ref(px_snapshot_t *s);
void px_snapshot_unref(px_snapshot_t *s);
/** Snapshots in memory: the current one, and old ones still held by requests or listeners. */
int64_t px_snapshots_live(void);
/** Returns the view of `l` in `s`, or NULL when `s` has no listener at that address. */
const px_lview_t *px_snapshot_view(const px_snapshot_t *s, const px_listener_t *l);
/** Returns the route named `name` (first listener that has one), or NULL. */
const px_route_t *px_snapshot_route(const px_snapshot_t *s, const char *name);

/** A request's hold on the current snapshot. */
typedef struct px_hold {
    px_snapshot_t *snap;
    rt_value_hold_t h;
} px_hold_t;

/** Holds the current snapshot (never parks). */
px_snapshot_t *px_snapshot_hold(px_server_t *srv, px_hold_t *hold);
void px_snapshot_drop(px_hold_t *hold);

/** Statistics that outlive snapshots, one per (listener, route, backend) names (metrics.c). */
px_stats_t *px_stats_for(px_server_t *srv, const char *listener, const char *route,
                         const char *backend);

struct px_server {
    rt_value_t current;        /* px_snapshot_t *: the config being served */
    rt_mutex_t reload_mu;      /* serialises reloads, and the drain against them */
    const char *config_path;   /* -c FILE; NULL = the embedded default */
    px_listener_t **listeners; /* under reload_mu: the current snapshot's */
    unsigned nlisteners;
    rt_netfd_t *admin_nfd;
    char admin_address[64];
    struct px_stats_registry *stats; /* under stats_mu */
    rt_mutex_t stats_mu;
    _Atomic uint64_t reloads_ok, reloads_failed;
    _Atomic bool draining;
    _Atomic int64_t active; /* connections serving a request right now */
};

/**
 * Starts serving `cfg` (takes it and `yaml`; `path` is the -c file or NULL):
 * builds the first snapshot (generation 1), binds and starts listeners, the
 * admin API and the DNS refreshers. 0, or -1 with a message. May park.
 */
int px_server_open(px_server_t *srv, cfg_config_t *cfg, char *yaml, const char *path, char *err,
                   size_t errlen);
/** Starts a graceful drain (idempotent): stop accepting, finish, exit 0. */
void px_server_drain(px_server_t *srv);

/* ---- reloads (reload.c) ---- */

/** What a reload did: applied (generation), or why not. */
typedef struct px_reload {
    int status;          /* HTTP-ish: 200 applied, 400 invalid, 409 no file, 503 draining */
    uint64_t generation; /* of the snapshot serving afterwards */
    cfg_errors_t errs;   /* the problems, for 400 */
    char message[256];   /* a one-line summary */
} px_reload_t;

/**
 * Makes the new config text of a reload from the current snapshot (e.g. the
 * request body, the file, or the current YAML with weights edited). Returns
 * 0 with `*yaml` (malloc'd), or sets res->status/message/errs and returns -1.
 */
typedef int px_edit_fn(const px_snapshot_t *cur, void *arg, char **yaml, size_t *len,
                       px_reload_t *res);

/**
 * Applies one reload, serialised with every other: `edit` makes the text,
 * it is loaded and validated, made live, and published atomically. A
 * rejected config changes nothing. Fills `res` (free res->errs with
 * cfg_errors_destroy). May park.
 */
void px_server_reload(px_server_t *srv, px_edit_fn *edit, void *arg, const char *origin,
                      px_reload_t *res);
/** Reloads the -c file (SIGHUP, POST /reload, --watch). */
void px_server_reload_file(px_server_t *srv, const char *origin, px_reload_t *res);
/** Reloads from `yaml` (PUT /config). */
void px_server_reload_text(px_server_t *srv, const char *yaml, size_t len, px_reload_t *res);
/** Reads a whole file (NUL-terminated; `*len` bytes unless NULL), or NULL. */
char *px_read_file(const char *path, size_t *len);
/** Watches the -c file with inotify and reloads it when it changes (--watch). */
void px_watch_start(px_server_t *srv);

/** Serves `nfd` (takes ownership) accepted on `l` from `peer`; the connection holds `l`. */
void px_conn_serve(px_listener_t *l, rt_netfd_t *nfd, const struct sockaddr_storage *peer);

/** Returns the Prometheus text exposition (version 0.0.4) of `srv`. Caller owns (free). */
char *px_metrics_text(px_server_t *srv, size_t *len);

/** Admin API on the admin address (admin.c). */
int px_admin_open(px_server_t *srv, const cfg_config_t *cfg, char *err, size_t errlen);
void px_admin_start(px_server_t *srv);
/** Reads the bearer token of `path` (first line, trimmed). malloc'd, or NULL + message. */
char *px_admin_read_token(const char *path, char *err, size_t errlen);

/** Blocks SIGTERM/SIGINT/SIGHUP in the calling thread (call before rt_run) and ignores SIGPIPE. */
void px_signals_block(void);
/** Starts a G that turns SIGTERM/SIGINT into a drain and SIGHUP into a reload of the file. */
void px_signals_start(px_server_t *srv);

/* ---- one request (conn.c, forward.c, reply.c) ---- */

#define PX_EXTRA_HEADERS 8

/** How a connection that must close (close_after) closes; a later need may only raise it. */
typedef enum px_close_how {
    PX_CLOSE_FIN = 0, /* a plain close */
    PX_CLOSE_LINGER,  /* request bytes left unread: read and drop them first, or the kernel's
                         reset could destroy the answer in flight (nginx's lingering close) */
    PX_CLOSE_RESET,   /* a response cut short: reset, so the client cannot take it for whole */
} px_close_how_t;

/** A client connection while a G serves it. */
typedef struct px_conn {
    px_listener_t *l;
    const px_lview_t *lv; /* during a request: its listener as the request's snapshot has it */
    rt_netfd_t *nfd;
    px_buf_t buf; /* client bytes; freed while the connection idles */
    char client_ip[INET6_ADDRSTRLEN];
    rt_time_t wait_deadline;  /* for the next request's first byte (idle or read timeout) */
    bool close_after;         /* close once the current response is sent */
    px_close_how_t close_how; /* how, when close_after */
} px_conn_t;

/** Marks `c` to close once the current response is sent, at least as `how` says. */
static inline void px_conn_close_after(px_conn_t *c, px_close_how_t how)
{
    c->close_after = true;
    if (how > c->close_how) {
        c->close_how = how;
    }
}

/** Makes the close of `nfd` send a reset (RST) instead of a FIN. */
void px_reset_on_close(rt_netfd_t *nfd);

/** Everything about one request, from its head to its last byte. */
typedef struct px_ctx {
    flt_ctx_t flt; /* what filters see; first, so a flt_ctx_t * converts back */
    px_conn_t *conn;
    const px_request_t *req; /* valid until the request body starts streaming */
    const px_route_t *route;
    const px_backend_t *backend;
    int status; /* sent to the client; 0 = nothing sent yet */
    px_reason_t reason;
    const char *reason_text; /* for PX_REASON_FILTER */
    flt_outcome_t outcome;
    uint64_t bytes_out; /* body bytes sent to the client */
    unsigned flt_ran;
    bool response_started; /* some byte of the response reached the client socket */
    size_t nextra_req, nextra_resp, extra_used;
    /* PX_CTX_ZEROED: everything above starts zeroed; the arrays below are
     * filled before they are read (a request's memset stays small). */
    char method[16];
    char path[256];
    char request_id[33];
    px_header_t extra_req[PX_EXTRA_HEADERS];
    px_header_t extra_resp[PX_EXTRA_HEADERS];
    char extra_store[1024];
} px_ctx_t;

/** Bytes of px_ctx_t a new request zeroes. */
#define PX_CTX_ZEROED offsetof(px_ctx_t, method)

/**
 * Forwards the request of `ctx` to ctx->backend and streams the response
 * back. Fills status/outcome/reason; sets conn->close_after when the client
 * connection cannot be reused. May park.
 */
void px_forward(px_ctx_t *ctx);

/**
 * Sends a response generated by the proxy: `status`, x-remora-reason, body
 * "REASON\n". `close` adds Connection: close. Returns 0 or a negative error.
 * May park.
 */
int px_reply(px_conn_t *c, int status, const char *reason, bool close, const px_header_t *extra,
             size_t nextra, int64_t retry_after, bool head_only);

#endif /* PX_PROXY_H */
