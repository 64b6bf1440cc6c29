/* SPDX-License-Identifier: MIT */
/*
 * forward.c - one request's trip upstream and back: acquire a pooled
 * connection, send the rewritten head and stream the body, read the response
 * head within the route's timeout, run on_response, stream the response body
 * to the client, and give the connection back when it can be reused.
 *
 * Bodies move through two bounded buffers (the client connection's and the
 * upstream connection's, 16 and 32 KiB): a read is only issued once the
 * previous bytes have been written, so a slow reader slows the writer and
 * memory stays flat whatever the body size (RFC 9112 framing is re-encoded:
 * chunked bodies are decoded, validated and chunked again; a body delimited
 * by close is sent chunked to HTTP/1.1 clients so their connection survives).
 *
 * Failures: nothing is sent to the client until the response head is known,
 * so connect errors (502 upstream_connect), pool overload (503 overloaded),
 * a route timeout (504 upstream_timeout) and a reset before any response
 * byte (502 upstream_reset) become local replies. Once the response has
 * started, an upstream failure resets the client connection (even a body
 * read to close, for HTTP/1.0 clients), so it can never look complete. A
 * chunked request body is checked as far as it came with the head before
 * anything goes upstream; a framing error or excess found later, mid-stream,
 * resets the upstream connection, so the upstream never sees an end. A
 * request whose body is wholly buffered is replayed once on a fresh
 * connection when a reused connection fails before answering (the upstream
 * may have closed it just as we sent), and per the route's `retries` on
 * connect failures and resets; only idempotent methods are replayed after
 * their bytes were sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "proxy/headers.h"
#include "proxy/proxy.h"

#define UP_BUF_SIZE PX_UP_BUF_SIZE
#define UP_MAX_HEAD (64 * 1024)

/* The scalars of the request that outlive its head's bytes. */
typedef struct exchange {
    px_ctx_t *ctx;
    px_conn_t *c;
    px_upconn_t *up;
    px_body_kind_t body;
    uint64_t content_length;
    int minor_version;
    bool is_head, expect_continue, upgrade;
    int64_t write_timeout, read_timeout, body_timeout;
} exchange_t;

static bool method_is_idempotent(const char *m)
{
    static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    for (size_t i = 0; i < RT_ARRAY_LEN(safe); i++) {
        if (strcmp(m, safe[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Answers locally unless the response already started; then only the close is left. */
static void fail(exchange_t *x, int status, px_reason_t reason, flt_outcome_t outcome)
{
    px_ctx_t *ctx = x->ctx;
    ctx->outcome = outcome;
    ctx->reason = reason;
    if (ctx->response_started) {
        px_conn_close_after(x->c, PX_CLOSE_RESET);
        return;
    }
    ctx->status = status;
    if (px_reply(x->c, status, px_reason_name(reason), x->c->close_after, ctx->extra_resp,
                 ctx->nextra_resp, 0, x->is_head) != 0) {
        x->c->close_after = true;
    }
}

static int client_write(exchange_t *x, const char *data, size_t len)
{
    x->ctx->response_started = true;
    ssize_t n = rt_write_all(x->c->nfd, data, len, rt_deadline_in(x->write_timeout));
    return n < 0 ? (int)n : 0;
}

/* ---- request body: client -> upstream ---- */

typedef enum body_result {
    BODY_OK = 0,
    BODY_CLIENT_GONE,   /* the client closed or timed out mid-body */
    BODY_CLIENT_BAD,    /* malformed chunked framing (400) */
    BODY_TOO_LARGE,     /* over max_request_body (413) */
    BODY_UPSTREAM_GONE, /* writing to the upstream failed */
} body_result_t;

/* Reads more client bytes into the connection buffer. Returns > 0, or <= 0 on EOF/error. */
static ssize_t client_fill(exchange_t *x)
{
    return px_buf_fill(&x->c->buf, x->c->nfd, PX_BUF_SIZE, rt_deadline_in(x->read_timeout));
}

/*
 * Writes `pre` (a response head, or nothing), then `data` - as one chunk when
 * `chunked`, followed by the last chunk when `last` - in one gathered write.
 * The data is sent from where it lies; only the framing is formatted here.
 */
static int write_body_piece(rt_netfd_t *nfd, const char *pre, size_t pre_len, const char *data,
                            size_t len, bool chunked, bool last, rt_time_t deadline)
{
    char size_line[24], tail[8];
    struct iovec iov[4];
    int n = 0;
    size_t tail_len = 0;
    if (pre_len > 0) {
        iov[n++] = (struct iovec){(void *)pre, pre_len};
    }
    if (len > 0) {
        if (chunked) {
            int sl = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
            iov[n++] = (struct iovec){size_line, (size_t)sl};
            memcpy(tail, "\r\n", 2);
            tail_len = 2;
        }
        iov[n++] = (struct iovec){(void *)data, len};
    }
    if (chunked && last) {
        memcpy(tail + tail_len, "0\r\n\r\n", 5);
        tail_len += 5;
    }
    if (tail_len > 0) {
        iov[n++] = (struct iovec){tail, tail_len};
    }
    if (n == 0) {
        return 0;
    }
    return rt_writev_all(nfd, iov, n, deadline) < 0 ? -1 : 0;
}

static body_result_t stream_length_body(exchange_t *x)
{
    px_buf_t *b = &x->c->buf;
    uint64_t remaining = x->content_length;
    while (remaining > 0) {
        if (px_buf_len(b) == 0 && client_fill(x) <= 0) {
            return BODY_CLIENT_GONE;
        }
        size_t n = px_buf_len(b) < remaining ? px_buf_len(b) : (size_t)remaining;
        if (rt_write_all(x->up->nfd, px_buf_head(b), n, rt_deadline_in(x->write_timeout)) < 0) {
            return BODY_UPSTREAM_GONE;
        }
        px_buf_consume(b, n);
        remaining -= n;
    }
    return BODY_OK;
}

static body_result_t stream_chunked_body(exchange_t *x)
{
    px_buf_t *b = &x->c->buf;
    uint64_t limit = x->c->lv->limits.max_body_bytes;
    px_chunked_t dec;
    px_chunked_init(&dec);
    while (!dec.done) {
        if (px_buf_len(b) == 0 && client_fill(x) <= 0) {
            return BODY_CLIENT_GONE;
        }
        size_t off, len;
        ssize_t used = px_chunked_decode(&dec, px_buf_head(b), px_buf_len(b), &off, &len);
        if (used < 0) {
            return BODY_CLIENT_BAD;
        }
        if (limit && dec.total + dec.remaining > limit) {
            return BODY_TOO_LARGE; /* a chunk's declared size counts at once */
        }
        /* Re-chunked as decoded: the data where it lies, with our own framing. */
        if (write_body_piece(x->up->nfd, NULL, 0, px_buf_head(b) + off, len, true, dec.done,
                             rt_deadline_in(x->write_timeout)) != 0) {
            return BODY_UPSTREAM_GONE;
        }
        px_buf_consume(b, (size_t)used);
        if (used == 0 && len == 0 && !dec.done) {
            /* The decoder needs bytes beyond what is buffered (a size line cut short). */
            px_buf_make_room(b, PX_BUF_SIZE);
            if (client_fill(x) <= 0) {
                return BODY_CLIENT_GONE;
            }
        }
    }
    return BODY_OK;
}

/*
 * Checks the chunked body bytes that came with the head, before anything
 * goes upstream: a framing error or a body over the limit visible now (a
 * small body usually arrives whole with its head) is refused without the
 * upstream ever seeing the request. Nothing is read for it, so a client
 * streaming its body is not held up. An error further into a long body is
 * found while it streams; the upstream connection is then reset.
 */
static body_result_t precheck_chunked(const char *data, size_t len, uint64_t limit)
{
    px_chunked_t dec;
    px_chunked_init(&dec);
    size_t pos = 0;
    while (!dec.done) {
        size_t off, dlen;
        ssize_t used = px_chunked_decode(&dec, data + pos, len - pos, &off, &dlen);
        if (used < 0) {
            return BODY_CLIENT_BAD;
        }
        if (limit && dec.total + dec.remaining > limit) {
            return BODY_TOO_LARGE;
        }
        if (used == 0 && dlen == 0) {
            break; /* the rest is still on its way */
        }
        pos += (size_t)used;
    }
    return BODY_OK;
}

/* Answers a request whose body could not be relayed; the client connection closes after. */
static void body_failed(exchange_t *x, body_result_t br)
{
    /* Unless the client is gone, it may still be sending: linger, so the answer is not lost. */
    px_conn_close_after(x->c, br == BODY_CLIENT_GONE ? PX_CLOSE_FIN : PX_CLOSE_LINGER);
    switch (br) {
    case BODY_CLIENT_BAD:
        fail(x, 400, PX_REASON_BAD_REQUEST, FLT_OUTCOME_LOCAL);
        break;
    case BODY_TOO_LARGE:
        fail(x, 413, PX_REASON_BODY_TOO_LARGE, FLT_OUTCOME_LOCAL);
        break;
    case BODY_UPSTREAM_GONE:
        fail(x, 502, PX_REASON_UPSTREAM_RESET, FLT_OUTCOME_RESET);
        break;
    case BODY_CLIENT_GONE:
    case BODY_OK:
        x->ctx->outcome = FLT_OUTCOME_LOCAL;
        break;
    }
}

/* ---- response head ---- */

typedef enum head_result {
    HEAD_OK = 0,
    HEAD_TIMEOUT,
    HEAD_CLOSED_EMPTY, /* closed or reset before any response byte: may be retried */
    HEAD_CLOSED,       /* closed mid-head */
    HEAD_BAD,
} head_result_t;

static head_result_t read_response_head(exchange_t *x, rt_time_t deadline, px_response_t *resp)
{
    px_upconn_t *up = x->up;
    if (!up->buf.data) {
        px_buf_init(&up->buf, PX_UP_BUF_SIZE);
    }
    if (px_buf_len(&up->buf) == 0 && up->quiet && !rt_netfd_rd_event_pending(up->nfd)) {
        /* The request just left; its answer cannot be here unless an event says
         * so. Waiting first saves a read that would fail with EAGAIN. */
        int rc = rt_wait_readable(up->nfd, deadline);
        if (rc == RT_ETIMEDOUT) {
            return HEAD_TIMEOUT;
        }
    }
    size_t prev_len = 0;
    bool got_bytes = false;
    for (;;) {
        size_t len = px_buf_len(&up->buf);
        if (len > 0) {
            px_http1_err_t err = px_http1_parse_response(px_buf_head(&up->buf), len, prev_len,
                                                         x->is_head, UP_MAX_HEAD, resp);
            if (err == PX_HTTP1_OK) {
                if (resp->status >= 100 && resp->status < 200 && resp->status != 101) {
                    /* Interim responses (103 Early Hints...) are not relayed. */
                    px_buf_consume(&up->buf, resp->head_len);
                    prev_len = 0;
                    continue;
                }
                return HEAD_OK;
            }
            if (err != PX_HTTP1_INCOMPLETE) {
                return HEAD_BAD;
            }
            prev_len = len;
        }
        ssize_t n = px_buf_fill(&up->buf, up->nfd, UP_MAX_HEAD, deadline);
        if (n > 0) {
            got_bytes = true;
            continue;
        }
        if (n == RT_ETIMEDOUT) {
            return HEAD_TIMEOUT;
        }
        if (n == -ENOBUFS) {
            return HEAD_BAD;
        }
        return got_bytes ? HEAD_CLOSED : HEAD_CLOSED_EMPTY;
    }
}

/* ---- response body: upstream -> client ---- */

typedef enum resp_result {
    RESP_OK = 0,
    RESP_UPSTREAM_GONE, /* reset or closed early: the client must see a broken response */
    RESP_UPSTREAM_BAD,  /* malformed chunked framing from the upstream */
    RESP_CLIENT_GONE,
} resp_result_t;

static ssize_t upstream_fill(exchange_t *x)
{
    return px_buf_fill(&x->up->buf, x->up->nfd, UP_BUF_SIZE, rt_deadline_in(x->body_timeout));
}

/* Sends the head in `out[0..olen)` with the first body bytes (one gathered write), then the rest.
 */
static resp_result_t relay_length(exchange_t *x, uint64_t remaining, const char *out, size_t olen)
{
    px_buf_t *b = &x->up->buf;
    size_t n = px_buf_len(b) < remaining ? px_buf_len(b) : (size_t)remaining;
    struct iovec iov[2] = {{(void *)out, olen}, {(void *)px_buf_head(b), n}};
    x->ctx->response_started = true;
    if (rt_writev_all(x->c->nfd, iov, 2, rt_deadline_in(x->write_timeout)) < 0) {
        return RESP_CLIENT_GONE;
    }
    px_buf_consume(b, n);
    remaining -= n;
    x->ctx->bytes_out += n;
    while (remaining > 0) {
        if (px_buf_len(b) == 0 && upstream_fill(x) <= 0) {
            return RESP_UPSTREAM_GONE;
        }
        n = px_buf_len(b) < remaining ? px_buf_len(b) : (size_t)remaining;
        if (client_write(x, px_buf_head(b), n) != 0) {
            return RESP_CLIENT_GONE;
        }
        px_buf_consume(b, n);
        remaining -= n;
        x->ctx->bytes_out += n;
    }
    return RESP_OK;
}

/*
 * Relays a chunked or close-delimited upstream body, chunked to the client
 * when `chunk_out`, raw otherwise (HTTP/1.0 clients, closed after).
 */
static resp_result_t relay_stream(exchange_t *x, bool chunked_in, bool chunk_out, const char *head,
                                  size_t head_len)
{
    px_buf_t *b = &x->up->buf;
    px_chunked_t dec;
    px_chunked_init(&dec);
    bool eof = false;
    x->ctx->response_started = true;
    for (;;) {
        size_t off = 0, len = px_buf_len(b), used = len;
        if (chunked_in && len > 0) {
            ssize_t r = px_chunked_decode(&dec, px_buf_head(b), len, &off, &len);
            if (r < 0) {
                return RESP_UPSTREAM_BAD;
            }
            used = (size_t)r;
        }
        bool done = chunked_in ? dec.done : eof;
        /* The head goes out with the first piece; then only body pieces. */
        if (write_body_piece(x->c->nfd, head, head_len, px_buf_head(b) + off, len, chunk_out, done,
                             rt_deadline_in(x->write_timeout)) != 0) {
            return RESP_CLIENT_GONE;
        }
        head_len = 0;
        x->ctx->bytes_out += len;
        px_buf_consume(b, used);
        if (done) {
            return RESP_OK;
        }
        if (used == 0 || px_buf_len(b) == 0) {
            px_buf_make_room(b, UP_BUF_SIZE);
            ssize_t n = upstream_fill(x);
            if (n == 0 && !chunked_in) {
                eof = true;
            } else if (n <= 0) {
                return RESP_UPSTREAM_GONE;
            }
        }
    }
}

/* ---- upgraded connections (WebSocket): a byte tunnel both ways ---- */

typedef struct tunnel_half {
    rt_netfd_t *from, *to;
    px_buf_t *pending; /* bytes read already, sent first */
    int64_t idle_timeout;
    rt_chan_t *done;
} tunnel_half_t;

static void tunnel_copy(tunnel_half_t *t)
{
    bool ok = true;
    if (px_buf_len(t->pending) > 0) {
        ok = rt_write_all(t->to, px_buf_head(t->pending), px_buf_len(t->pending),
                          rt_deadline_in(t->idle_timeout)) >= 0;
        px_buf_consume(t->pending, px_buf_len(t->pending));
    }
    char buf[8192];
    while (ok) {
        ssize_t n = rt_read(t->from, buf, sizeof(buf), rt_deadline_in(t->idle_timeout));
        if (n == 0) {
            shutdown(rt_netfd_fd(t->to), SHUT_WR); /* pass the half-close on */
            break;
        }
        ok = n > 0 && rt_write_all(t->to, buf, (size_t)n, rt_deadline_in(t->idle_timeout)) >= 0;
    }
    if (!ok) {
        /* Unblock the other direction too. */
        shutdown(rt_netfd_fd(t->from), SHUT_RDWR);
        shutdown(rt_netfd_fd(t->to), SHUT_RDWR);
    }
    char token = 0;
    (void)rt_chan_send(t->done, &token, RT_FOREVER);
}

static void tunnel_copy_g(void *arg)
{
    tunnel_copy(arg);
}

static void tunnel(exchange_t *x)
{
    rt_chan_t *done = rt_chan_new(1, 2);
    int64_t idle = x->c->lv->cfg->idle_timeout;
    tunnel_half_t down = {x->up->nfd, x->c->nfd, &x->up->buf, idle, done};
    tunnel_half_t up = {x->c->nfd, x->up->nfd, &x->c->buf, idle, done};
    int waits = 1;
    if (rt_go(tunnel_copy_g, &down) == RT_OK) {
        waits++;
    } else {
        shutdown(rt_netfd_fd(x->up->nfd), SHUT_RDWR);
    }
    tunnel_copy(&up);
    for (int i = 0; i < waits; i++) {
        char token;
        (void)rt_chan_recv(done, &token, RT_FOREVER);
    }
    rt_chan_free(done);
}

/* ---- the exchange ---- */

/* Value of the upstream's Content-Length (for HEAD answers), or -1. */
static int64_t header_content_length(const px_response_t *resp)
{
    const px_header_t *h = px_http1_find(resp->headers, resp->nheaders, "content-length");
    if (!h || h->value_len == 0 || h->value_len > 18) {
        return -1;
    }
    int64_t v = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') {
            return -1;
        }
        v = v * 10 + (h->value[i] - '0');
    }
    return v;
}

/*
 * Sends the response head and body. Returns whether the upstream connection
 * may be reused. The head is built in `scratch` (the request head's buffer,
 * dead by now: one buffer fewer in every G's stack) when it fits.
 */
static bool relay_response(exchange_t *x, px_response_t *resp, char *scratch, size_t scratch_cap)
{
    px_ctx_t *ctx = x->ctx;
    px_conn_t *c = x->c;
    bool client10 = x->minor_version == 0;
    px_fwd_response_t fwd = {
        .backend = ctx->backend->name,
        .via = "1.1 remora",
        .body = resp->body,
        .content_length = resp->content_length,
        .client_http10 = client10,
        .extra = ctx->extra_resp,
        .nextra = ctx->nextra_resp,
    };
    bool chunk_out = false;
    if (resp->body == PX_BODY_CHUNKED || resp->body == PX_BODY_UNTIL_CLOSE) {
        if (client10) {
            fwd.body = PX_BODY_UNTIL_CLOSE;
            c->close_after = true;
        } else {
            fwd.body = PX_BODY_CHUNKED;
            chunk_out = true;
        }
    }
    if (resp->body == PX_BODY_NONE && x->is_head) {
        int64_t cl = header_content_length(resp);
        if (cl >= 0) {
            fwd.body = PX_BODY_LENGTH;
            fwd.content_length = (uint64_t)cl;
        }
    }
    bool upgrade = resp->status == 101 && x->upgrade;
    if (resp->status == 101 && !x->upgrade) {
        fail(x, 502, PX_REASON_BAD_RESPONSE, FLT_OUTCOME_RESET);
        return false;
    }
    fwd.upgrade = upgrade;
    fwd.keep_alive = !c->close_after;

    /* Head and the first body bytes leave in one write. */
    char *out = scratch;
    size_t ocap = scratch_cap;
    if (resp->head_len + 1024 + ctx->extra_used > ocap) {
        ocap = resp->head_len + 1024 + ctx->extra_used;
        out = rt_xmalloc(ocap);
    }
    ssize_t hlen = px_headers_response_head(out, ocap, resp, &fwd);
    bool reusable = false;
    if (hlen < 0) {
        fail(x, 502, PX_REASON_BAD_RESPONSE, FLT_OUTCOME_RESET);
        goto out;
    }
    px_buf_consume(&x->up->buf, resp->head_len);
    ctx->status = resp->status;
    ctx->outcome = resp->status >= 500 ? FLT_OUTCOME_5XX : FLT_OUTCOME_OK;

    resp_result_t r = RESP_OK;
    if (upgrade) {
        if (client_write(x, out, (size_t)hlen) != 0) {
            r = RESP_CLIENT_GONE;
        } else {
            tunnel(x);
        }
        c->close_after = true;
        goto out;
    }
    switch (resp->body) {
    case PX_BODY_NONE:
        r = client_write(x, out, (size_t)hlen) == 0 ? RESP_OK : RESP_CLIENT_GONE;
        break;
    case PX_BODY_LENGTH:
        r = relay_length(x, resp->content_length, out, (size_t)hlen);
        break;
    case PX_BODY_CHUNKED:
    case PX_BODY_UNTIL_CLOSE:
        r = relay_stream(x, resp->body == PX_BODY_CHUNKED, chunk_out, out, (size_t)hlen);
        break;
    }
    switch (r) {
    case RESP_OK:
        reusable =
            resp->keep_alive && resp->body != PX_BODY_UNTIL_CLOSE && px_buf_len(&x->up->buf) == 0;
        break;
    case RESP_UPSTREAM_GONE:
    case RESP_UPSTREAM_BAD:
        ctx->outcome = FLT_OUTCOME_RESET;
        ctx->reason = PX_REASON_UPSTREAM_RESET;
        /* Even a read-to-close body (HTTP/1.0 clients) must not end in a FIN. */
        px_conn_close_after(c, PX_CLOSE_RESET);
        break;
    case RESP_CLIENT_GONE:
        c->close_after = true;
        break;
    }
out:
    if (out != scratch) {
        free(out);
    }
    return reusable;
}

void px_forward(px_ctx_t *ctx)
{
    const px_request_t *req = ctx->req;
    px_conn_t *c = ctx->conn;
    const cfg_route_t *rcfg = ctx->route->cfg;
    const cfg_listener_t *lcfg = c->lv->cfg;
    exchange_t x = {
        .ctx = ctx,
        .c = c,
        .body = req->body,
        .content_length = req->content_length,
        .minor_version = req->minor_version,
        .is_head = req->is_head,
        .expect_continue = req->expect_continue,
        .upgrade = req->upgrade,
        .write_timeout = lcfg->write_timeout,
        .read_timeout = lcfg->read_timeout,
        .body_timeout = rcfg->timeout > 0 ? rcfg->timeout : lcfg->read_timeout,
    };
    rt_time_t deadline = rcfg->timeout > 0 ? ctx->flt.start + rcfg->timeout : RT_FOREVER;

    const px_header_t *rid = px_http1_find(req->headers, req->nheaders, "x-request-id");
    if (rid) {
        size_t n = rid->value_len < 32 ? rid->value_len : 32;
        memcpy(ctx->request_id, rid->value, n);
        ctx->request_id[n] = '\0';
    } else {
        px_headers_new_request_id(ctx->request_id);
    }

    /* The upstream head, and the body too when it is already here (then it can be replayed). */
    size_t buffered = px_buf_len(&c->buf) - req->head_len;
    if (req->body == PX_BODY_CHUNKED) {
        body_result_t pre = precheck_chunked(px_buf_head(&c->buf) + req->head_len, buffered,
                                             c->lv->limits.max_body_bytes);
        if (pre != BODY_OK) {
            body_failed(&x, pre);
            ctx->req = NULL;
            return;
        }
    }
    bool body_buffered = req->body == PX_BODY_NONE ||
                         (req->body == PX_BODY_LENGTH && req->content_length <= buffered &&
                          req->content_length <= UP_BUF_SIZE);
    px_fwd_request_t fwd = {
        .client_ip = c->client_ip,
        .proto = "http",
        .request_id = ctx->request_id,
        .via = "1.1 remora",
        .body = req->body,
        .content_length = req->content_length,
        .upgrade = req->upgrade,
        .extra = ctx->extra_req,
        .nextra = ctx->nextra_req,
    };
    size_t body_now = body_buffered && req->body == PX_BODY_LENGTH ? req->content_length : 0;
    size_t hcap = req->head_len + 1024 + ctx->extra_used + strlen(c->client_ip);
    char stack_head[4096];
    char *head = hcap <= sizeof(stack_head) ? stack_head : rt_xmalloc(hcap);
    if (head == stack_head) {
        hcap = sizeof(stack_head);
    }
    ssize_t hlen = px_headers_request_head(head, hcap, req, &fwd);
    if (hlen < 0) {
        px_conn_close_after(c, PX_CLOSE_LINGER); /* its body, if any, is unread */
        fail(&x, 431, PX_REASON_HEADERS_TOO_LARGE, FLT_OUTCOME_LOCAL);
        goto out;
    }
    /* Consuming does not move bytes: the buffered body stays put for replays. */
    const char *body = px_buf_head(&c->buf) + req->head_len;
    px_buf_consume(&c->buf, req->head_len + body_now);
    ctx->req = NULL; /* from here on the head's bytes may be overwritten */
    bool body_pending = !body_buffered;

    bool replayable = body_buffered && method_is_idempotent(ctx->method);
    uint32_t tries_left = rcfg->retries.attempts;
    bool stale_retry_left = true, fresh = false;
    px_endpoint_t *avoid = NULL;
    px_response_t resp;
    for (;;) {
        px_endpoint_t *ep = px_cluster_pick(ctx->backend->cluster, avoid);
        if (!ep) {
            fail(&x, 502, PX_REASON_UPSTREAM_CONNECT, FLT_OUTCOME_CONNECT_FAILURE);
            goto out_body;
        }
        int cerr = 0;
        px_acquire_t acq = px_pool_acquire(ep, fresh, &x.up, &cerr);
        avoid = ep;
        px_endpoint_unref(ep);
        if (acq == PX_ACQUIRE_OVERLOADED) {
            fail(&x, 503, PX_REASON_OVERLOADED, FLT_OUTCOME_OVERLOADED);
            goto out_body;
        }
        if (acq == PX_ACQUIRE_CONNECT_FAILED) {
            if (tries_left > 0 && (rcfg->retries.on & CFG_OUTCOME_CONNECT_FAILURE)) {
                tries_left--;
                continue;
            }
            fail(&x, 502, PX_REASON_UPSTREAM_CONNECT, FLT_OUTCOME_CONNECT_FAILURE);
            goto out_body;
        }
        bool reused = x.up->uses > 0;
        head_result_t hr = HEAD_CLOSED_EMPTY;
        struct iovec iov[2] = {{head, (size_t)hlen}, {(void *)body, body_now}};
        if (rt_writev_all(x.up->nfd, iov, 2, rt_deadline_in(x.write_timeout)) < 0) {
            goto retry_or_fail;
        }
        if (body_pending) {
            body_pending = false;
            if (x.expect_continue && x.minor_version == 1 && px_buf_len(&c->buf) == 0) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                (void)rt_write_all(c->nfd, cont, sizeof(cont) - 1, rt_deadline_in(x.write_timeout));
            }
            body_result_t br =
                x.body == PX_BODY_LENGTH ? stream_length_body(&x) : stream_chunked_body(&x);
            if (br != BODY_OK) {
                if (br != BODY_UPSTREAM_GONE) {
                    /* The upstream has part of a request: a reset, never a FIN that
                     * could pass for its end. */
                    px_reset_on_close(x.up->nfd);
                }
                px_pool_release(x.up, false);
                body_failed(&x, br);
                goto out;
            }
        }
        hr = read_response_head(&x, deadline, &resp);
        if (hr == HEAD_OK) {
            break;
        }
        if (hr == HEAD_TIMEOUT) {
            px_pool_release(x.up, false);
            fail(&x, 504, PX_REASON_UPSTREAM_TIMEOUT, FLT_OUTCOME_TIMEOUT);
            goto out_body;
        }
        if (hr == HEAD_BAD) {
            px_pool_release(x.up, false);
            fail(&x, 502, PX_REASON_BAD_RESPONSE, FLT_OUTCOME_RESET);
            goto out_body;
        }
    retry_or_fail:
        px_pool_release(x.up, false);
        x.up = NULL;
        if (hr == HEAD_CLOSED_EMPTY && !body_pending && replayable) {
            if (reused && stale_retry_left) {
                /* The upstream closed a kept-alive connection as we reused it. */
                stale_retry_left = false;
                fresh = true;
                avoid = NULL;
                continue;
            }
            if (tries_left > 0 && (rcfg->retries.on & CFG_OUTCOME_RESET)) {
                tries_left--;
                continue;
            }
        }
        fail(&x, 502, PX_REASON_UPSTREAM_RESET, FLT_OUTCOME_RESET);
        goto out_body;
    }

    flt_chain_on_response(ctx->route->chain, &ctx->flt, resp.status, ctx->flt_ran);
    bool reusable = relay_response(&x, &resp, head, hcap);
    px_pool_release(x.up, reusable);
    goto out;

out_body:
    /* The body was never read: the connection cannot go on to another request. */
    if (body_pending) {
        px_conn_close_after(c, PX_CLOSE_LINGER);
    }
out:
    if (head != stack_head) {
        free(head);
    }
}
