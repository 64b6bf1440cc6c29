/* SPDX-License-Identifier: MIT */
/*
 * admin.c - the admin API of DESIGN.md on its own listener, served by the
 * same runtime: health, readiness (503 while draining), POST /drain and the
 * scheduler's statistics. One request per connection, answered and closed;
 * the endpoints form one table so adding one is adding a row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/headers.h"
#include "proxy/proxy.h"

#define ADMIN_HEAD_MAX 8192

typedef struct admin_reply {
    int status;
    const char *content_type;
    char body[4096];
    size_t len;
    const char *big_body;  /* when set, sent instead of `body` (borrowed, e.g. the config) */
    char *owned_body;      /* like big_body, freed after the reply */
    char extra_header[96]; /* "" or one "name: value\r\n" line */
} admin_reply_t;

typedef void admin_fn(px_server_t *srv, admin_reply_t *out);

static void reply_text(admin_reply_t *out, int status, const char *text)
{
    out->status = status;
    out->content_type = "text/plain";
    out->len = (size_t)snprintf(out->body, sizeof(out->body), "%s\n", text);
}

static void on_healthz(px_server_t *srv, admin_reply_t *out)
{
    (void)srv;
    reply_text(out, 200, "ok");
}

static void on_ready(px_server_t *srv, admin_reply_t *out)
{
    bool draining = atomic_load(&srv->draining);
    reply_text(out, draining ? 503 : 200, draining ? "draining" : "ready");
}

static void on_drain(px_server_t *srv, admin_reply_t *out)
{
    reply_text(out, 202, "draining");
    px_server_drain(srv);
}

static void on_runtime(px_server_t *srv, admin_reply_t *out)
{
    (void)srv;
    rt_stats_t st;
    rt_stats_read_resident(&st);
    int n = rt_stats_json(&st, out->body, sizeof(out->body) - 1);
    out->status = 200;
    out->content_type = "application/json";
    out->len = n > 0 ? (size_t)n : 0;
    out->body[out->len++] = '\n';
}

static void on_config(px_server_t *srv, admin_reply_t *out)
{
    out->status = 200;
    out->content_type = "application/yaml";
    out->big_body = srv->config_text;
    out->len = strlen(srv->config_text);
    snprintf(out->extra_header, sizeof(out->extra_header), "x-remora-generation: %llu\r\n",
             (unsigned long long)srv->generation);
}

static void on_metrics(px_server_t *srv, admin_reply_t *out)
{
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    out->owned_body = px_metrics_text(srv, &out->len);
    out->big_body = out->owned_body;
}

static const struct admin_route {
    const char *method;
    const char *path;
    admin_fn *fn;
} admin_routes[] = {
    {"GET", "/healthz", on_healthz}, {"GET", "/ready", on_ready},   {"POST", "/drain", on_drain},
    {"GET", "/runtime", on_runtime}, {"GET", "/config", on_config}, {"GET", "/metrics", on_metrics},
};

/* Constant-time comparison: how long it takes says nothing about where a guess went wrong. */
static bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < blen; i++) {
        diff |= (unsigned char)((i < alen ? a[i] : 0) ^ b[i]);
    }
    return diff == 0;
}

static bool authorized(px_server_t *srv, const px_request_t *req)
{
    if (!srv->admin_token) {
        return true;
    }
    const px_header_t *h = px_http1_find(req->headers, req->nheaders, "authorization");
    static const char bearer[] = "Bearer ";
    if (!h || h->value_len < sizeof(bearer) - 1 ||
        strncasecmp(h->value, bearer, sizeof(bearer) - 1) != 0) {
        return false;
    }
    return token_equal(h->value + sizeof(bearer) - 1, h->value_len - (sizeof(bearer) - 1),
                       srv->admin_token, strlen(srv->admin_token));
}

static void admin_dispatch(px_server_t *srv, const px_request_t *req, admin_reply_t *out)
{
    if (!authorized(srv, req)) {
        out->status = 401;
        out->content_type = "application/json";
        out->len = (size_t)snprintf(out->body, sizeof(out->body), "{\"error\":\"unauthorized\"}\n");
        snprintf(out->extra_header, sizeof(out->extra_header), "www-authenticate: Bearer\r\n");
        return;
    }
    size_t plen = req->path_len;
    const char *q = memchr(req->path, '?', plen);
    if (q) {
        plen = (size_t)(q - req->path);
    }
    bool path_known = false;
    for (size_t i = 0; i < RT_ARRAY_LEN(admin_routes); i++) {
        const struct admin_route *r = &admin_routes[i];
        if (strlen(r->path) != plen || memcmp(r->path, req->path, plen) != 0) {
            continue;
        }
        path_known = true;
        if (strlen(r->method) == req->method_len &&
            memcmp(r->method, req->method, req->method_len) == 0) {
            r->fn(srv, out);
            return;
        }
    }
    out->status = path_known ? 405 : 404;
    out->content_type = "application/json";
    out->len = (size_t)snprintf(out->body, sizeof(out->body), "{\"error\":\"%s\"}\n",
                                path_known ? "method not allowed" : "not found");
}

typedef struct admin_conn {
    px_server_t *srv;
    rt_netfd_t *nfd;
} admin_conn_t;

static void admin_serve(void *arg)
{
    admin_conn_t *ac = arg;
    char *buf = rt_xmalloc(ADMIN_HEAD_MAX);
    size_t len = 0, prev = 0;
    rt_time_t deadline = rt_deadline_in(5 * RT_SEC);
    px_http1_limits_t lim = {.max_head_bytes = ADMIN_HEAD_MAX - 1, .max_headers = 64};
    px_request_t *req = rt_xmalloc(sizeof(*req));
    admin_reply_t *out = rt_xcalloc(1, sizeof(*out));
    for (;;) {
        ssize_t n = rt_read(ac->nfd, buf + len, ADMIN_HEAD_MAX - len, deadline);
        if (n <= 0) {
            goto done;
        }
        len += (size_t)n;
        px_http1_err_t err = px_http1_parse_request(buf, len, prev, &lim, req);
        if (err == PX_HTTP1_OK) {
            admin_dispatch(ac->srv, req, out);
            break;
        }
        if (err != PX_HTTP1_INCOMPLETE || len == ADMIN_HEAD_MAX) {
            reply_text(out, px_http1_error_status(err), px_http1_error_message(err));
            break;
        }
        prev = len;
    }
    char head[384];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                      "%sconnection: close\r\n\r\n",
                      out->status, px_headers_status_text(out->status), out->content_type, out->len,
                      out->extra_header);
    struct iovec iov[2] = {{head, (size_t)hl},
                           {(void *)(out->big_body ? out->big_body : out->body), out->len}};
    (void)rt_writev_all(ac->nfd, iov, 2, rt_deadline_in(5 * RT_SEC));
done:
    free(out->owned_body);
    free(out);
    free(req);
    free(buf);
    rt_netfd_close(ac->nfd);
    free(ac);
}

static void admin_accept(void *arg)
{
    px_server_t *srv = arg;
    for (;;) {
        rt_netfd_t *nfd;
        struct sockaddr_storage peer;
        int rc = rt_accept(srv->admin_nfd, &nfd, &peer, RT_FOREVER);
        if (rc == RT_ECLOSED) {
            return;
        }
        if (rc != RT_OK) {
            rt_sleep(10 * RT_MSEC);
            continue;
        }
        admin_conn_t *ac = rt_xmalloc(sizeof(*ac));
        ac->srv = srv;
        ac->nfd = nfd;
        if (rt_go(admin_serve, ac) != RT_OK) {
            rt_netfd_close(nfd);
            free(ac);
        }
    }
}

/* Reads the bearer token (first line of the file, surrounding whitespace trimmed). */
static int read_token(px_server_t *srv, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f || !fgets(line, sizeof(line), f)) {
        snprintf(err, errlen, "admin: cannot read token_file %s", path);
        if (f) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t')) {
        line[--n] = '\0';
    }
    char *start = line;
    while (*start == ' ' || *start == '\t') {
        start++;
    }
    if (!*start) {
        snprintf(err, errlen, "admin: token_file %s is empty", path);
        return -1;
    }
    srv->admin_token = rt_xstrdup(start);
    return 0;
}

int px_admin_open(px_server_t *srv, char *err, size_t errlen)
{
    if (srv->cfg->admin.token_file[0] &&
        read_token(srv, srv->cfg->admin.token_file, err, errlen) != 0) {
        return -1;
    }
    const char *addr = srv->cfg->admin.address;
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = rt_sockaddr_parse(addr, &ss, &len);
    if (rc == RT_OK) {
        rc = rt_listen((const struct sockaddr *)&ss, len, 128, &srv->admin_nfd);
    }
    if (rc != RT_OK) {
        snprintf(err, errlen, "admin: cannot listen on %s: %s", addr, rt_strerror(rc));
        return -1;
    }
    return 0;
}

void px_admin_start(px_server_t *srv)
{
    int rc = rt_go(admin_accept, srv);
    RT_CHECK(rc == RT_OK, "cannot start the admin listener");
    rt_log(RT_LOG_INFO, "admin on %s", srv->cfg->admin.address);
}
