/* SPDX-License-Identifier: MIT */
/*
 * admin.c - the admin API of DESIGN.md on its own listener, served by the
 * same runtime: the server (one request per connection, answered and
 * closed; a body of at most 1 MiB read by Content-Length), the bearer-token
 * check, and the endpoints that only read (health, readiness, runtime
 * statistics, config, metrics) or drain. The endpoints that change the
 * config live in admin_config.c. Every endpoint is a row of one table; a
 * path may have one "*" segment (the NAME of /routes/NAME/weights).
 */
#include "proxy/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/headers.h"

#define ADMIN_HEAD_MAX 8192
#define ADMIN_BODY_MAX (1024 * 1024)

void px_admin_text(admin_reply_t *out, int status, const char *text)
{
    out->status = status;
    out->content_type = "text/plain";
    out->len = (size_t)snprintf(out->body, sizeof(out->body), "%s\n", text);
}

void px_admin_error(admin_reply_t *out, int status, const char *message)
{
    px_sb_t sb = {0};
    px_sb_printf(&sb, "{\"error\":");
    px_sb_json_string(&sb, message);
    px_sb_printf(&sb, "}\n");
    px_admin_json(out, status, &sb);
}

void px_admin_json(admin_reply_t *out, int status, px_sb_t *sb)
{
    out->status = status;
    out->content_type = "application/json";
    out->owned_body = sb->data;
    out->big_body = sb->data;
    out->len = sb->len;
    *sb = (px_sb_t){0};
}

static void on_healthz(const admin_req_t *rq, admin_reply_t *out)
{
    (void)rq;
    px_admin_text(out, 200, "ok");
}

static void on_ready(const admin_req_t *rq, admin_reply_t *out)
{
    bool draining = atomic_load(&rq->srv->draining);
    px_admin_text(out, draining ? 503 : 200, draining ? "draining" : "ready");
}

static void on_drain(const admin_req_t *rq, admin_reply_t *out)
{
    px_admin_text(out, 202, "draining");
    px_server_drain(rq->srv);
}

static void on_runtime(const admin_req_t *rq, admin_reply_t *out)
{
    (void)rq;
    rt_stats_t st;
    rt_stats_read_resident(&st);
    int n = rt_stats_json(&st, out->body, sizeof(out->body) - 1);
    out->status = 200;
    out->content_type = "application/json";
    out->len = n > 0 ? (size_t)n : 0;
    out->body[out->len++] = '\n';
}

static void on_config(const admin_req_t *rq, admin_reply_t *out)
{
    out->status = 200;
    out->content_type = "application/yaml";
    out->big_body = rq->snap->yaml; /* the request holds the snapshot until the reply is sent */
    out->len = rq->snap->yaml_len;
    snprintf(out->extra_header, sizeof(out->extra_header), "x-remora-generation: %llu\r\n",
             (unsigned long long)rq->snap->generation);
}

static void on_metrics(const admin_req_t *rq, admin_reply_t *out)
{
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    out->owned_body = px_metrics_text(rq->srv, &out->len);
    out->big_body = out->owned_body;
}

static const struct admin_route {
    const char *method;
    const char *path; /* one "*" segment matches a NAME */
    admin_fn *fn;
} admin_routes[] = {
    {"GET", "/healthz", on_healthz},
    {"GET", "/ready", on_ready},
    {"POST", "/drain", on_drain},
    {"GET", "/runtime", on_runtime},
    {"GET", "/config", on_config},
    {"PUT", "/config", px_admin_put_config},
    {"POST", "/reload", px_admin_reload},
    {"GET", "/metrics", on_metrics},
    {"PUT", "/routes/*/weights", px_admin_put_weights},
    {"GET", "/routes/*/canary", px_admin_get_canary},
    {"POST", "/routes/*/rollback", px_admin_rollback},
    {"POST", "/routes/*/promote", px_admin_promote},
};

/* Matches `path` (without its query) against `pattern`; a "*" segment's text goes to `name`. */
static bool path_matches(const char *pattern, const char *path, size_t plen, char *name,
                         size_t name_size)
{
    const char *star = strchr(pattern, '*');
    if (!star) {
        return strlen(pattern) == plen && memcmp(pattern, path, plen) == 0;
    }
    size_t pre = (size_t)(star - pattern), post = strlen(star + 1);
    if (plen <= pre + post || memcmp(path, pattern, pre) != 0 ||
        memcmp(path + plen - post, star + 1, post) != 0) {
        return false;
    }
    size_t nlen = plen - pre - post;
    if (nlen >= name_size || memchr(path + pre, '/', nlen)) {
        return false;
    }
    memcpy(name, path + pre, nlen);
    name[nlen] = '\0';
    return true;
}

/* Constant-time comparison: how long it takes says nothing about where a guess went wrong. */
static bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < blen; i++) {
        diff |= (unsigned char)((i < alen ? a[i] : 0) ^ b[i]);
    }
    return diff == 0;
}

static bool authorized(const px_snapshot_t *snap, const px_request_t *req)
{
    if (!snap->admin_token) {
        return true;
    }
    const px_header_t *h = px_http1_find(req->headers, req->nheaders, "authorization");
    static const char bearer[] = "Bearer ";
    if (!h || h->value_len < sizeof(bearer) - 1 ||
        strncasecmp(h->value, bearer, sizeof(bearer) - 1) != 0) {
        return false;
    }
    return token_equal(h->value + sizeof(bearer) - 1, h->value_len - (sizeof(bearer) - 1),
                       snap->admin_token, strlen(snap->admin_token));
}

static void admin_dispatch(admin_req_t *rq, const px_request_t *req, admin_reply_t *out)
{
    if (!authorized(rq->snap, req)) {
        px_admin_error(out, 401, "unauthorized");
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
        if (!path_matches(r->path, req->path, plen, rq->name, sizeof(rq->name))) {
            continue;
        }
        path_known = true;
        if (strlen(r->method) == req->method_len &&
            memcmp(r->method, req->method, req->method_len) == 0) {
            r->fn(rq, out);
            return;
        }
    }
    px_admin_error(out, path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
}

typedef struct admin_conn {
    px_server_t *srv;
    rt_netfd_t *nfd;
} admin_conn_t;

/*
 * Reads one request: its head into `buf`, then its body (Content-Length, at
 * most ADMIN_BODY_MAX) into `*body`. Returns 0, a status to answer with
 * (400, 408, 411, 413, 431...) with `why`, or -1 when the client went away.
 */
static int read_request(rt_netfd_t *nfd, char *buf, px_request_t *req, char **body,
                        const char **why)
{
    size_t len = 0, prev = 0;
    rt_time_t deadline = rt_deadline_in(5 * RT_SEC);
    px_http1_limits_t lim = {
        .max_head_bytes = ADMIN_HEAD_MAX - 1, .max_headers = 64, .max_body_bytes = ADMIN_BODY_MAX};
    for (;;) {
        ssize_t n = rt_read(nfd, buf + len, ADMIN_HEAD_MAX - len, deadline);
        if (n <= 0) {
            return -1;
        }
        len += (size_t)n;
        px_http1_err_t err = px_http1_parse_request(buf, len, prev, &lim, req);
        if (err == PX_HTTP1_OK) {
            break;
        }
        if (err != PX_HTTP1_INCOMPLETE || len == ADMIN_HEAD_MAX) {
            *why = px_http1_error_message(err);
            return err == PX_HTTP1_INCOMPLETE ? 431 : px_http1_error_status(err);
        }
        prev = len;
    }
    if (req->body == PX_BODY_CHUNKED) {
        *why = "send the body with a Content-Length";
        return 411;
    }
    size_t want = req->body == PX_BODY_LENGTH ? (size_t)req->content_length : 0;
    *body = rt_xmalloc(want + 1);
    size_t have = len - req->head_len < want ? len - req->head_len : want;
    if (req->expect_continue && have < want) {
        /* curl asks before sending a body over 1 KiB, and would wait a second for this. */
        static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (rt_write_all(nfd, go_on, sizeof(go_on) - 1, rt_deadline_in(5 * RT_SEC)) < 0) {
            return -1;
        }
    }
    memcpy(*body, buf + req->head_len, have);
    while (have < want) {
        ssize_t n = rt_read(nfd, *body + have, want - have, rt_deadline_in(5 * RT_SEC));
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
    }
    (*body)[want] = '\0';
    return 0;
}

static void admin_serve(void *arg)
{
    admin_conn_t *ac = arg;
    char *buf = rt_xmalloc(ADMIN_HEAD_MAX);
    px_request_t *req = rt_xmalloc(sizeof(*req));
    admin_reply_t *out = rt_xcalloc(1, sizeof(*out));
    admin_req_t rq = {.srv = ac->srv};
    char *body = NULL;
    const char *why = "";
    px_hold_t hold;
    rq.snap = px_snapshot_hold(ac->srv, &hold);
    int rc = read_request(ac->nfd, buf, req, &body, &why);
    if (rc < 0) {
        goto done;
    }
    if (rc > 0) {
        px_admin_error(out, rc, why);
    } else {
        rq.body = body;
        rq.body_len = req->body == PX_BODY_LENGTH ? (size_t)req->content_length : 0;
        admin_dispatch(&rq, req, out);
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
    px_snapshot_drop(&hold);
    free(body);
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

char *px_admin_read_token(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f || !fgets(line, sizeof(line), f)) {
        snprintf(err, errlen, "cannot read token_file %s", path);
        if (f) {
            fclose(f);
        }
        return NULL;
    }
    fclose(f);
    size_t n = strlen(line);
    while (n > 0 && strchr("\r\n \t", line[n - 1])) {
        line[--n] = '\0';
    }
    char *start = line + strspn(line, " \t");
    if (!*start) {
        snprintf(err, errlen, "token_file %s is empty", path);
        return NULL;
    }
    return rt_xstrdup(start);
}

int px_admin_open(px_server_t *srv, const cfg_config_t *cfg, char *err, size_t errlen)
{
    const char *addr = cfg->admin.address;
    snprintf(srv->admin_address, sizeof(srv->admin_address), "%s", addr);
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
    rt_log(RT_LOG_INFO, "admin on %s", srv->admin_address);
}
