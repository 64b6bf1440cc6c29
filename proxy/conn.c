/* SPDX-License-Identifier: MIT */
/*
 * conn.c - a client connection: the keep-alive loop of one G that reads a
 * request head, refuses it or routes it, runs the route's filters, forwards
 * it (forward.c), and goes on with pipelined bytes already buffered.
 *
 * Between requests an idle connection holds no G, no stack and no buffer:
 * its G ends after handing the socket to rt_go_when_readable, and a new G
 * starts when the next request's first bytes arrive (or the idle timeout
 * closes it). What an idle keep-alive connection costs is this struct and
 * its netpoll registration.
 *
 * Timeouts: the read timeout bounds the arrival of a whole request head from
 * its first byte (trickling clients are cut off: 408 if part of a head came,
 * a silent close if nothing did); the idle timeout bounds the quiet time
 * between requests; the write timeout bounds each write's progress.
 *
 * Reloads: each request holds the config snapshot current when its first
 * byte was read, from its head to its last byte (an upgraded tunnel holds it
 * for its life); the next request on the connection takes the snapshot then
 * current. When a reload removed the connection's listener, its requests are
 * served by the last snapshot that had it, with "Connection: close".
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "proxy/proxy.h"

/* ---- the request context as filters see it ---- */

static px_ctx_t *ctx_of(flt_ctx_t *f)
{
    return RT_CONTAINER_OF(f, px_ctx_t, flt);
}

static const char *host_request_header(flt_ctx_t *f, const char *name, size_t *len)
{
    px_ctx_t *ctx = ctx_of(f);
    if (!ctx->req) {
        return NULL;
    }
    const px_header_t *h = px_http1_find(ctx->req->headers, ctx->req->nheaders, name);
    if (!h) {
        return NULL;
    }
    *len = h->value_len;
    return h->value;
}

/* Copies name and value into the context's small store. */
static int add_header(px_ctx_t *ctx, px_header_t *list, size_t *n, const char *name,
                      const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (*n == PX_EXTRA_HEADERS || ctx->extra_used + nl + vl > sizeof(ctx->extra_store)) {
        return -1;
    }
    char *p = ctx->extra_store + ctx->extra_used;
    memcpy(p, name, nl);
    memcpy(p + nl, value, vl);
    ctx->extra_used += nl + vl;
    list[*n] = (px_header_t){.name = p, .name_len = nl, .value = p + nl, .value_len = vl};
    (*n)++;
    return 0;
}

static int host_add_request_header(flt_ctx_t *f, const char *name, const char *value)
{
    px_ctx_t *ctx = ctx_of(f);
    return add_header(ctx, ctx->extra_req, &ctx->nextra_req, name, value);
}

static int host_add_response_header(flt_ctx_t *f, const char *name, const char *value)
{
    px_ctx_t *ctx = ctx_of(f);
    return add_header(ctx, ctx->extra_resp, &ctx->nextra_resp, name, value);
}

static const flt_host_t filter_host = {
    .request_header = host_request_header,
    .add_request_header = host_add_request_header,
    .add_response_header = host_add_response_header,
};

/* ---- connection lifecycle ---- */

void px_reset_on_close(rt_netfd_t *nfd)
{
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(rt_netfd_fd(nfd), SOL_SOCKET, SO_LINGER, &now, sizeof(now));
}

static void conn_close(px_conn_t *c)
{
    px_listener_t *l = c->l;
    rt_netfd_close(c->nfd);
    px_buf_destroy(&c->buf);
    free(c);
    px_listener_conn_closed(l);
}

#define LINGER_TIME RT_SEC
#define LINGER_MAX_BYTES (4u << 20)

/*
 * Closes after an answer given with request bytes unread (an error, or a
 * body never read) without losing the answer to a reset: a close with
 * unread input makes the kernel send RST, which can destroy the response in
 * flight. So shut down our side, then read and drop what the client still
 * sends, until it closes, for at most LINGER_TIME and LINGER_MAX_BYTES
 * (nginx's lingering close). May park.
 */
static void conn_linger_close(px_conn_t *c)
{
    shutdown(rt_netfd_fd(c->nfd), SHUT_WR);
    char sink[4096];
    rt_time_t deadline = rt_deadline_in(LINGER_TIME);
    size_t dropped = 0;
    while (dropped < LINGER_MAX_BYTES) {
        ssize_t n = rt_read(c->nfd, sink, sizeof(sink), deadline);
        if (n <= 0) {
            break;
        }
        dropped += (size_t)n;
    }
    conn_close(c);
}

static void access_log(px_ctx_t *ctx, rt_time_t end)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s \"%s %s\" %d %llu %.3fms backend=%s reason=%s id=%s\n",
                     ctx->conn->client_ip, ctx->method, ctx->path, ctx->status,
                     (unsigned long long)ctx->bytes_out,
                     (double)(end - ctx->flt.start) / (double)RT_MSEC,
                     ctx->backend ? ctx->backend->name : "-",
                     ctx->reason == PX_REASON_FILTER ? ctx->reason_text
                     : ctx->reason                   ? px_reason_name(ctx->reason)
                                                     : "-",
                     ctx->request_id[0] ? ctx->request_id : "-");
    if (n > 0) {
        px_access_log_line(ctx->conn->lv->log, line,
                           (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

static void copy_token(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size) {
        len = size - 1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Answers locally (no upstream). Requests with a body we did not read close the connection. */
static void reply_local(px_ctx_t *ctx, int status, px_reason_t reason, const char *text,
                        int64_t retry_after)
{
    px_conn_t *c = ctx->conn;
    if (ctx->req->body != PX_BODY_NONE) {
        px_conn_close_after(c, PX_CLOSE_LINGER); /* the body was never read */
    }
    ctx->status = status;
    ctx->reason = reason;
    ctx->reason_text = text;
    ctx->outcome = FLT_OUTCOME_LOCAL;
    if (px_reply(c, status, text, c->close_after, ctx->extra_resp, ctx->nextra_resp, retry_after,
                 ctx->req->is_head) != 0) {
        c->close_after = true;
    }
    px_buf_consume(&c->buf, ctx->req->head_len);
}

/* Serves one parsed request from routing to the last response byte. May park. */
static void serve_request(px_conn_t *c, const px_request_t *req)
{
    const px_lview_t *lv = c->lv;
    px_ctx_t ctx;
    memset(&ctx, 0, PX_CTX_ZEROED);
    ctx.request_id[0] = '\0';
    ctx.conn = c;
    ctx.req = req;
    ctx.flt.host = &filter_host;
    ctx.flt.start = rt_now();
    ctx.flt.client_ip = c->client_ip;
    copy_token(ctx.method, sizeof(ctx.method), req->method, req->method_len);
    copy_token(ctx.path, sizeof(ctx.path), req->path, req->path_len);
    ctx.flt.method = ctx.method;
    ctx.flt.path = ctx.path;

    if (!req->keep_alive || atomic_load(&c->l->srv->draining)) {
        c->close_after = true;
    }
    const px_route_t *route = px_router_match(lv, req);
    if (!route) {
        ctx.flt.route = "";
        reply_local(&ctx, 404, PX_REASON_NO_ROUTE, px_reason_name(PX_REASON_NO_ROUTE), 0);
        goto done;
    }
    ctx.route = route;
    ctx.flt.route = route->cfg->name;

    flt_reply_t reply = {0};
    if (flt_chain_on_request(route->chain, &ctx.flt, &reply, &ctx.flt_ran) == FLT_REPLY) {
        reply_local(&ctx, reply.status, PX_REASON_FILTER, reply.reason ? reply.reason : "filter",
                    reply.retry_after);
        goto complete;
    }
    ctx.backend = NULL;
    if (ctx.flt.backend) {
        ctx.backend = px_route_backend(route, ctx.flt.backend);
    }
    if (!ctx.backend) {
        ctx.backend = px_route_pick(route);
    }
    ctx.flt.backend = ctx.backend->name;
    px_forward(&ctx);

complete:;
    rt_time_t end = rt_now();
    flt_complete_t done = {
        .backend = ctx.backend ? ctx.backend->name : "",
        .status = ctx.status,
        .outcome = ctx.outcome,
        .latency_ns = end - ctx.flt.start,
    };
    ctx.req = NULL; /* its header pointers may be stale after body streaming */
    flt_chain_on_complete(route->chain, &ctx.flt, &done, ctx.flt_ran);
    unsigned which = ctx.backend ? (unsigned)(ctx.backend - route->backends) : route->nbackends;
    px_stats_record(route->stats[which], ctx.status, done.latency_ns);
    if (lv->log) {
        access_log(&ctx, end);
    }
    return;
done:;
    rt_time_t now = rt_now();
    px_stats_record(lv->no_route, ctx.status, now - ctx.flt.start);
    if (lv->log) {
        access_log(&ctx, now);
    }
}

/* The access log line of a request refused before its head was parsed: no method or path. */
static void access_log_refused(const px_conn_t *c, int status, px_reason_t reason, rt_time_t start)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s \"- -\" %d 0 %.3fms backend=- reason=%s id=-\n",
                     c->client_ip, status, (double)(rt_now() - start) / (double)RT_MSEC,
                     px_reason_name(reason));
    if (n > 0) {
        px_access_log_line(c->lv->log, line,
                           (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

/* Answers a request whose head cannot be parsed, logs it, and closes. May park. */
static void refuse_head(px_conn_t *c, int status, px_reason_t reason, rt_time_t start)
{
    (void)px_reply(c, status, px_reason_name(reason), true, NULL, 0, 0, false);
    if (c->lv->log) {
        access_log_refused(c, status, reason, start);
    }
    conn_linger_close(c);
}

static void conn_resume(void *arg, int result);

/*
 * Parks the connection without a G until its next bytes arrive or
 * `wait_deadline` passes: the buffer goes back, only the struct and the
 * netpoll registration remain.
 */
static void conn_idle(px_conn_t *c)
{
    px_buf_destroy(&c->buf);
    if (rt_go_when_readable(c->nfd, conn_resume, c, c->wait_deadline) != RT_OK) {
        conn_close(c);
    }
}

/*
 * Reads the rest of a request head (its first bytes are buffered): it must
 * arrive within read_timeout. True with `req` parsed; false when the
 * connection was answered with an error and closed. May park.
 */
static bool read_head(px_conn_t *c, px_request_t *req)
{
    const px_lview_t *lv = c->lv;
    const size_t max_head = lv->limits.max_head_bytes + 1;
    size_t prev_len = 0;
    rt_time_t start = rt_now();
    rt_time_t deadline = rt_deadline_in(lv->cfg->read_timeout);
    for (;;) {
        size_t len = px_buf_len(&c->buf);
        px_http1_err_t err =
            px_http1_parse_request(px_buf_head(&c->buf), len, prev_len, &lv->limits, req);
        if (err == PX_HTTP1_OK) {
            return true;
        }
        if (err != PX_HTTP1_INCOMPLETE) {
            refuse_head(c, px_http1_error_status(err), px_reason_of_http1_error(err), start);
            return false;
        }
        prev_len = len;
        ssize_t n = px_buf_fill(&c->buf, c->nfd, max_head, deadline);
        if (n > 0) {
            continue;
        }
        if (n == -ENOBUFS) {
            refuse_head(c, 431, PX_REASON_HEADERS_TOO_LARGE, start);
        } else if (n == RT_ETIMEDOUT) {
            refuse_head(c, 408, PX_REASON_REQUEST_TIMEOUT, start);
        } else {
            conn_close(c); /* EOF or reset mid-head */
        }
        return false;
    }
}

/* The view of the connection's listener in `hold`'s snapshot, or in the last one that had it. */
static const px_lview_t *listener_view(px_conn_t *c, const px_hold_t *hold)
{
    const px_lview_t *lv = px_snapshot_view(hold->snap, c->l);
    if (!lv) {
        /* A reload removed the listener: it set `last` before publishing. */
        px_snapshot_t *last = atomic_load(&c->l->last);
        RT_CHECK(last != NULL, "a connection's listener is in no snapshot");
        lv = px_snapshot_view(last, c->l);
        c->close_after = true; /* its listener is gone: no more requests here */
    }
    return lv;
}

/*
 * The keep-alive loop. Returns when the connection is closed or handed to
 * the netpoller to idle. May park.
 */
static void conn_loop(px_conn_t *c)
{
    for (;;) {
        /* The next request's first bytes: never park a G for them. */
        if (px_buf_len(&c->buf) == 0) {
            if (c->buf.data && c->buf.drained && !rt_netfd_rd_event_pending(c->nfd)) {
                conn_idle(c); /* nothing arrived since a read that emptied the socket */
                return;
            }
            if (!c->buf.data) {
                px_buf_init(&c->buf, PX_BUF_SIZE);
            }
            ssize_t n = px_buf_fill(&c->buf, c->nfd, PX_BUF_SIZE, RT_NOWAIT);
            if (n == RT_EAGAIN) {
                conn_idle(c); /* a wake-up with nothing to read, or none yet */
                return;
            }
            if (n <= 0) {
                conn_close(c);
                return;
            }
        }

        /* From its first byte to its last, a request sees one snapshot. */
        px_hold_t hold;
        px_snapshot_hold(c->l->srv, &hold);
        c->lv = listener_view(c, &hold);
        /* In flight from its first byte: a drain waits for a head still arriving too. */
        px_server_t *srv = c->l->srv; /* read_head may free `c` */
        px_request_t req;
        atomic_fetch_add(&srv->active, 1);
        if (!read_head(c, &req)) {
            atomic_fetch_sub(&srv->active, 1);
            px_snapshot_drop(&hold);
            return;
        }
        serve_request(c, &req);
        atomic_fetch_sub(&srv->active, 1);
        int64_t idle_timeout = c->lv->cfg->idle_timeout;
        c->lv = NULL;
        px_snapshot_drop(&hold);

        if (c->close_after) {
            if (c->close_how == PX_CLOSE_LINGER) {
                conn_linger_close(c);
            } else {
                if (c->close_how == PX_CLOSE_RESET) {
                    px_reset_on_close(c->nfd);
                }
                conn_close(c);
            }
            return;
        }
        c->wait_deadline = rt_deadline_in(idle_timeout);
    }
}

static void conn_resume(void *arg, int result)
{
    px_conn_t *c = arg;
    if (result != RT_OK) {
        conn_close(c); /* idle timeout, or closed */
        return;
    }
    conn_loop(c);
}

static void conn_main(void *arg)
{
    conn_loop(arg);
}

void px_conn_serve(px_listener_t *l, rt_netfd_t *nfd, const struct sockaddr_storage *peer)
{
    px_conn_t *c = rt_xcalloc(1, sizeof(*c));
    c->l = l;
    c->nfd = nfd;
    px_hold_t hold;
    const px_lview_t *lv = px_snapshot_view(px_snapshot_hold(l->srv, &hold), l);
    c->wait_deadline = rt_deadline_in(lv ? lv->cfg->read_timeout : 0); /* for the first request */
    px_snapshot_drop(&hold);
    if (peer->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->client_ip,
                  sizeof(c->client_ip));
    } else if (peer->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->client_ip,
                  sizeof(c->client_ip));
    } else {
        strcpy(c->client_ip, "unknown");
    }
    int rc = rt_go(conn_main, c);
    if (rc != RT_OK) {
        conn_close(c);
    }
}
