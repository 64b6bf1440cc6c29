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

static void conn_close(px_conn_t *c)
{
    px_listener_t *l = c->l;
    rt_netfd_close(c->nfd);
    px_buf_destroy(&c->buf);
    free(c);
    char token = 0;
    int rc = rt_chan_send(l->conn_slots, &token, RT_NOWAIT);
    RT_CHECK(rc == RT_OK, "listener connection slots overflow");
}

/*
 * Closes after an error response without losing it to a reset: a close with
 * unread input makes the kernel send RST, which can destroy the response in
 * flight. So shut down our side, then read and discard briefly (nginx's
 * lingering close). May park.
 */
static void conn_linger_close(px_conn_t *c)
{
    shutdown(rt_netfd_fd(c->nfd), SHUT_WR);
    char sink[4096];
    rt_time_t deadline = rt_deadline_in(RT_SEC);
    for (int i = 0; i < 64; i++) {
        if (rt_read(c->nfd, sink, sizeof(sink), deadline) <= 0) {
            break;
        }
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
        px_access_log_line(ctx->conn->l->log, line,
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
        c->close_after = true;
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
    px_listener_t *l = c->l;
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

    if (!req->keep_alive || atomic_load(&l->srv->draining)) {
        c->close_after = true;
    }
    const px_route_t *route = px_router_match(l, req);
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
    px_stats_record(&route->stats[which], ctx.status, done.latency_ns);
    if (l->log) {
        access_log(&ctx, end);
    }
    return;
done:;
    rt_time_t now = rt_now();
    px_stats_record(&l->no_route, ctx.status, now - ctx.flt.start);
    if (l->log) {
        access_log(&ctx, now);
    }
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
 * The keep-alive loop. Returns when the connection is closed or handed to
 * the netpoller to idle. May park.
 */
static void conn_loop(px_conn_t *c)
{
    px_listener_t *l = c->l;
    const size_t max_head = l->limits.max_head_bytes + 1;
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
            ssize_t n = px_buf_fill(&c->buf, c->nfd, max_head, RT_NOWAIT);
            if (n == RT_EAGAIN) {
                conn_idle(c); /* a wake-up with nothing to read, or none yet */
                return;
            }
            if (n <= 0) {
                conn_close(c);
                return;
            }
        }

        /* The rest of the head must arrive within read_timeout of its first byte. */
        px_request_t req;
        size_t prev_len = 0;
        rt_time_t deadline = rt_deadline_in(l->cfg->read_timeout);
        for (;;) {
            size_t len = px_buf_len(&c->buf);
            px_http1_err_t err =
                px_http1_parse_request(px_buf_head(&c->buf), len, prev_len, &l->limits, &req);
            if (err == PX_HTTP1_OK) {
                break;
            }
            if (err != PX_HTTP1_INCOMPLETE) {
                px_reason_t reason = px_reason_of_http1_error(err);
                (void)px_reply(c, px_http1_error_status(err), px_reason_name(reason), true, NULL, 0,
                               0, false);
                conn_linger_close(c);
                return;
            }
            prev_len = len;
            ssize_t n = px_buf_fill(&c->buf, c->nfd, max_head, deadline);
            if (n > 0) {
                continue;
            }
            if (n == -ENOBUFS) {
                (void)px_reply(c, 431, px_reason_name(PX_REASON_HEADERS_TOO_LARGE), true, NULL, 0,
                               0, false);
                conn_linger_close(c);
            } else if (n == RT_ETIMEDOUT) {
                (void)px_reply(c, 408, px_reason_name(PX_REASON_REQUEST_TIMEOUT), true, NULL, 0, 0,
                               false);
                conn_linger_close(c);
            } else {
                conn_close(c); /* EOF or reset mid-head */
            }
            return;
        }

        atomic_fetch_add(&l->srv->active, 1);
        serve_request(c, &req);
        atomic_fetch_sub(&l->srv->active, 1);

        if (c->close_after) {
            conn_close(c);
            return;
        }
        c->wait_deadline = rt_deadline_in(l->cfg->idle_timeout);
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
    c->wait_deadline = rt_deadline_in(l->cfg->read_timeout); /* for the first request */
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
