/* SPDX-License-Identifier: MIT */
/*
 * test_basic.c - integration/basic: plain forwarding through remora to
 * remora-echo: keep-alive, pipelining, HTTP/1.0, HEAD, bodiless statuses,
 * routing and weighted backends, the headers a proxy adds and removes, a
 * WebSocket upgrade tunnelled both ways, an idle proxy that sleeps, and the
 * access log.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

/* Starts one echo named `name` and a remora routing everything to it. */
static void start_pair(th_echo_t *e, th_remora_t *r, const char *name)
{
    th_echo_start(e, name);
    th_remora_start_simple(r, e->port, NULL, NULL, NULL);
}

START_TEST(test_basic_get_through_proxy)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    start_pair(&e, &r, "alpha");
    it_get(r.port, "/hello", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "hello from alpha\n");
    it_assert_header(&resp, "x-remora-backend", "b1");
    it_assert_header(&resp, "x-echo-name", "alpha");
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_basic_keepalive_serves_several_requests)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    start_pair(&e, &r, "ka");
    it_open(&c, r.port);
    long last_seq = 0;
    for (int i = 0; i < 5; i++) {
        th_resp_t resp;
        it_roundtrip(&c, "GET /ka HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
        ck_assert_int_eq(resp.status, 200);
        ck_assert_str_eq(resp.body, "hello from ka\n");
        const char *seq = th_resp_header(&resp, "x-echo-seq");
        ck_assert_ptr_nonnull(seq);
        ck_assert_int_gt(strtol(seq, NULL, 10), last_seq);
        last_seq = strtol(seq, NULL, 10);
        th_resp_free(&resp);
    }
    th_conn_close(&c);
}

END_TEST

START_TEST(test_basic_pipelined_requests_answered_in_order)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    start_pair(&e, &r, "pipe");
    it_open(&c, r.port);
    const char *three = "GET /echo?n=1 HTTP/1.1\r\nHost: test\r\n\r\n"
                        "GET /echo?n=2 HTTP/1.1\r\nHost: test\r\n\r\n"
                        "GET /echo?n=3 HTTP/1.1\r\nHost: test\r\n\r\n";
    it_send(&c, three, strlen(three));
    for (int i = 1; i <= 3; i++) {
        th_resp_t resp;
        th_echo_req_t q;
        char want[32];
        ck_assert_int_eq(th_http_read_response(&c, &resp, false), 0);
        it_echo_req(&resp, &q);
        snprintf(want, sizeof(want), "/echo?n=%d", i);
        ck_assert_str_eq(q.target, want);
        th_echo_req_free(&q);
        th_resp_free(&resp);
    }
    th_conn_close(&c);
}

END_TEST

START_TEST(test_basic_http10_closes_unless_keepalive)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    start_pair(&e, &r, "old");

    it_open(&c, r.port);
    it_roundtrip(&c, "GET /one HTTP/1.0\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "hello from old\n");
    th_resp_free(&resp);
    ck_assert_msg(th_conn_wait_closed(&c, th_slack_ms(2000), NULL) == 0,
                  "HTTP/1.0 connection without keep-alive left open");
    th_conn_close(&c);

    /* With keep-alive the connection persists: a second request is served on it. */
    it_open(&c, r.port);
    for (int i = 0; i < 2; i++) {
        it_roundtrip(&c, "GET /two HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n",
                     &resp);
        ck_assert_int_eq(resp.status, 200);
        ck_assert_str_eq(resp.body, "hello from old\n");
        ck_assert_msg(!resp.close_delimited, "keep-alive response must be length-delimited");
        th_resp_free(&resp);
    }
    th_conn_close(&c);
}

END_TEST

START_TEST(test_basic_head_has_no_body)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    start_pair(&e, &r, "hd");
    it_open(&c, r.port);
    it_roundtrip(&c, "HEAD /x HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    if (resp.has_length) {
        ck_assert_int_eq(resp.content_length, strlen("hello from hd\n"));
    }
    th_resp_free(&resp);
    /* Any stray body byte after the HEAD response would corrupt this one. */
    it_roundtrip(&c, "GET /x HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "hello from hd\n");
    th_resp_free(&resp);
    th_conn_close(&c);
}

END_TEST

START_TEST(test_basic_204_and_304_have_no_body)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    start_pair(&e, &r, "nb");
    it_open(&c, r.port);
    const int statuses[] = {204, 304};
    for (int i = 0; i < 2; i++) {
        char raw[128];
        snprintf(raw, sizeof(raw), "GET /nb HTTP/1.1\r\nHost: test\r\nx-echo-status: %d\r\n\r\n",
                 statuses[i]);
        it_roundtrip(&c, raw, &resp);
        ck_assert_int_eq(resp.status, statuses[i]);
        ck_assert_ptr_null(th_resp_header(&resp, "transfer-encoding"));
        if (statuses[i] == 204) {
            ck_assert_ptr_null(th_resp_header(&resp, "content-length"));
        }
        th_resp_free(&resp);
        it_roundtrip(&c, "GET /after HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
        ck_assert_int_eq(resp.status, 200);
        ck_assert_str_eq(resp.body, "hello from nb\n");
        th_resp_free(&resp);
    }
    th_conn_close(&c);
}

END_TEST

START_TEST(test_basic_no_route_is_404)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "nr");
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: api\n"
                    "        match: { path_prefix: /api }\n"
                    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n",
                    e.port);
    long before = th_echo_seq(e.port);
    it_get(r.port, "/elsewhere", NULL, &resp);
    it_assert_local_reply(&resp, 404, "no_route");
    ck_assert_ptr_nonnull(th_resp_header(&resp, "content-type"));
    ck_assert_msg(strncmp(th_resp_header(&resp, "content-type"), "text/plain", 10) == 0,
                  "content-type %s", th_resp_header(&resp, "content-type"));
    th_resp_free(&resp);
    ck_assert_int_eq(th_echo_seq(e.port), before + 1);
    it_get(r.port, "/api/x", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_basic_routes_by_path_host_method_header)
{
    th_echo_t e;
    th_remora_t r;
    th_echo_start(&e, "rt");
    /* One cluster; the backend name (x-remora-backend) tells which route matched. */
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: exact\n"
                    "        match: { path: /exact }\n"
                    "        backends: [ { name: exact, cluster: c1, weight: 1 } ]\n"
                    "      - name: prefix\n"
                    "        match: { path_prefix: /pre/ }\n"
                    "        backends: [ { name: prefix, cluster: c1, weight: 1 } ]\n"
                    "      - name: method\n"
                    "        match: { path_prefix: /m, method: POST }\n"
                    "        backends: [ { name: method, cluster: c1, weight: 1 } ]\n"
                    "      - name: header\n"
                    "        match: { path_prefix: /h, headers: [ { name: x-a, value: b } ] }\n"
                    "        backends: [ { name: header, cluster: c1, weight: 1 } ]\n"
                    "      - name: host\n"
                    "        match: { path_prefix: /, host: h.example }\n"
                    "        backends: [ { name: host, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n",
                    e.port);

    static const struct {
        const char *method, *path, *host, *extra, *backend; /* backend NULL: 404 no_route */
    } cases[] = {
        {"GET", "/exact", "test", "", "exact"},
        {"GET", "/exact/sub", "test", "", NULL},
        {"GET", "/exactly", "test", "", NULL},
        {"GET", "/pre/x", "test", "", "prefix"},
        {"GET", "/pre/", "test", "", "prefix"},
        {"GET", "/other", "test", "", NULL},
        {"POST", "/m", "test", "Content-Length: 0\r\n", "method"},
        {"GET", "/m", "test", "", NULL},
        {"GET", "/h", "test", "x-a: b\r\n", "header"},
        {"GET", "/h", "test", "x-a: c\r\n", NULL},
        {"GET", "/h", "test", "", NULL},
        {"GET", "/anything", "h.example", "", "host"},
        {"GET", "/exact", "h.example", "", "exact"}, /* first match wins */
        {"GET", "/anything", "other.example", "", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char raw[512];
        th_resp_t resp;
        snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", cases[i].method,
                 cases[i].path, cases[i].host, cases[i].extra);
        ck_assert_int_eq(th_http_exchange(r.port, raw, &resp), 0);
        const char *backend = th_resp_header(&resp, "x-remora-backend");
        if (cases[i].backend == NULL) {
            ck_assert_msg(resp.status == 404 && backend == NULL,
                          "case %zu %s %s host %s: status %d backend %s, want 404", i,
                          cases[i].method, cases[i].path, cases[i].host, resp.status,
                          backend ? backend : "-");
            it_assert_header(&resp, "x-remora-reason", "no_route");
        } else {
            ck_assert_msg(resp.status == 200 && backend && strcmp(backend, cases[i].backend) == 0,
                          "case %zu %s %s host %s: status %d backend %s, want %s", i,
                          cases[i].method, cases[i].path, cases[i].host, resp.status,
                          backend ? backend : "-", cases[i].backend);
        }
        th_resp_free(&resp);
    }
}

END_TEST

START_TEST(test_basic_weighted_backends_split_80_20)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_echo_start(&e, "w");
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: split\n"
                    "        match: { path_prefix: / }\n"
                    "        backends:\n"
                    "          - { name: stable, cluster: c1, weight: 80 }\n"
                    "          - { name: canary, cluster: c1, weight: 20 }\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n",
                    e.port);

    enum { N = 2000 };

    int stable = 0, canary = 0;
    it_open(&c, r.port);
    for (int i = 0; i < N; i++) {
        th_resp_t resp;
        it_roundtrip(&c, "GET /w HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
        ck_assert_int_eq(resp.status, 200);
        const char *b = th_resp_header(&resp, "x-remora-backend");
        ck_assert_ptr_nonnull(b);
        stable += strcmp(b, "stable") == 0;
        canary += strcmp(b, "canary") == 0;
        th_resp_free(&resp);
    }
    th_conn_close(&c);
    ck_assert_int_eq(stable + canary, N);
    /* 80% +- 5 points: about 5.6 standard deviations of a binomial(2000, 0.8). */
    ck_assert_msg(stable >= N * 75 / 100 && stable <= N * 85 / 100, "stable %d of %d", stable, N);
}

END_TEST

/* Returns true if `s` is 32 hex digits. */
static bool is_hex32(const char *s)
{
    if (s == NULL || strlen(s) != 32) {
        return false;
    }
    for (int i = 0; i < 32; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

START_TEST(test_basic_forwarded_headers_added)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_req_t q;
    char list[512];
    start_pair(&e, &r, "fw");

    it_get(r.port, "/echo?plain", NULL, &resp);
    it_echo_req(&resp, &q);
    th_echo_req_header_list(&q, "x-forwarded-for", list, sizeof(list));
    ck_assert_str_eq(list, "127.0.0.1");
    ck_assert_int_eq(th_echo_req_header_count(&q, "x-forwarded-proto"), 1);
    ck_assert_str_eq(th_echo_req_header(&q, "x-forwarded-proto"), "http");
    ck_assert_int_eq(th_echo_req_header_count(&q, "x-request-id"), 1);
    ck_assert_msg(is_hex32(th_echo_req_header(&q, "x-request-id")), "x-request-id %s",
                  th_echo_req_header(&q, "x-request-id"));
    th_echo_req_header_list(&q, "via", list, sizeof(list));
    ck_assert_str_eq(list, "1.1 remora");
    char first_id[64];
    snprintf(first_id, sizeof(first_id), "%s", th_echo_req_header(&q, "x-request-id"));
    th_echo_req_free(&q);
    th_resp_free(&resp);

    /* Client values: XFF and Via get ours appended, the request id is kept. */
    it_get(r.port, "/echo?client",
           "X-Forwarded-For: 10.0.0.1\r\nVia: 1.0 client\r\nX-Request-Id: client-id-42\r\n", &resp);
    it_echo_req(&resp, &q);
    th_echo_req_header_list(&q, "x-forwarded-for", list, sizeof(list));
    ck_assert_str_eq(list, "10.0.0.1, 127.0.0.1");
    th_echo_req_header_list(&q, "via", list, sizeof(list));
    ck_assert_str_eq(list, "1.0 client, 1.1 remora");
    ck_assert_int_eq(th_echo_req_header_count(&q, "x-request-id"), 1);
    ck_assert_str_eq(th_echo_req_header(&q, "x-request-id"), "client-id-42");
    th_echo_req_free(&q);
    th_resp_free(&resp);

    /* Generated ids differ between requests. */
    it_get(r.port, "/echo?again", NULL, &resp);
    it_echo_req(&resp, &q);
    ck_assert(is_hex32(th_echo_req_header(&q, "x-request-id")));
    ck_assert_str_ne(th_echo_req_header(&q, "x-request-id"), first_id);
    th_echo_req_free(&q);
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_basic_hop_by_hop_headers_removed)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_req_t q;
    start_pair(&e, &r, "hop");
    it_open(&c, r.port);
    it_roundtrip(&c,
                 "GET /echo HTTP/1.1\r\n"
                 "Host: test\r\n"
                 "Connection: close, x-custom-hop\r\n"
                 "x-custom-hop: secret\r\n"
                 "Keep-Alive: timeout=77\r\n"
                 "TE: deflate;q=0.5\r\n"
                 "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
                 "x-end-to-end: kept\r\n"
                 "\r\n",
                 &resp);
    it_echo_req(&resp, &q);
    ck_assert_ptr_null(th_echo_req_header(&q, "x-custom-hop"));
    ck_assert_ptr_null(th_echo_req_header(&q, "proxy-authorization"));
    /* The proxy may send its own Connection/Keep-Alive/TE upstream, never the client's. */
    const char *conn = th_echo_req_header(&q, "connection");
    ck_assert_msg(conn == NULL || strcasestr(conn, "x-custom-hop") == NULL, "Connection: %s", conn);
    const char *ka = th_echo_req_header(&q, "keep-alive");
    ck_assert_msg(ka == NULL || strstr(ka, "77") == NULL, "Keep-Alive: %s", ka);
    const char *te = th_echo_req_header(&q, "te");
    ck_assert_msg(te == NULL || strstr(te, "deflate") == NULL, "TE: %s", te);
    ck_assert_str_eq(th_echo_req_header(&q, "x-end-to-end"), "kept");
    th_echo_req_free(&q);
    th_resp_free(&resp);
    /* The client asked for close: remora closes after the response. */
    ck_assert_int_eq(th_conn_wait_closed(&c, th_slack_ms(2000), NULL), 0);
    th_conn_close(&c);
}

END_TEST

START_TEST(test_basic_websocket_upgrade_tunnelled)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    start_pair(&e, &r, "ws");
    it_open(&c, r.port);
    const char *req = "GET /ws HTTP/1.1\r\n"
                      "Host: test\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n"
                      "\r\n";
    it_send(&c, req, strlen(req));
    ck_assert_int_eq(th_http_read_head(&c, &resp, IT_IO_MS), 0);
    ck_assert_int_eq(resp.status, 101);
    ck_assert(th_resp_header_has_token(&resp, "upgrade", "websocket"));
    ck_assert(th_resp_header_has_token(&resp, "connection", "upgrade"));
    it_assert_header(&resp, "x-remora-backend", "b1");
    th_resp_free(&resp);

    /* Raw bytes both ways, a small message then 256 KiB in 16 KiB steps. */
    char buf[16384], got[16384];
    it_send(&c, "ping-123", 8);
    size_t n = 0;
    for (int i = 0; i < 100 && n < 8; i++) {
        ssize_t k = th_conn_recv(&c, got + n, 8 - n, IT_IO_MS);
        ck_assert_int_gt(k, 0);
        n += (size_t)k;
    }
    ck_assert_int_eq(memcmp(got, "ping-123", 8), 0);
    for (uint64_t off = 0; off < 256 * 1024; off += sizeof(buf)) {
        th_pattern_fill(buf, off, sizeof(buf));
        it_send(&c, buf, sizeof(buf));
        for (n = 0; n < sizeof(buf);) {
            ssize_t k = th_conn_recv(&c, got + n, sizeof(got) - n, IT_IO_MS);
            ck_assert_int_gt(k, 0);
            n += (size_t)k;
        }
        ck_assert_int_eq(th_pattern_find_mismatch(got, off, sizeof(got)), -1);
    }
    /* Our EOF ends the tunnel: the echo closes, so does remora. */
    ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
    ck_assert_int_eq(th_conn_wait_closed(&c, th_slack_ms(3000), NULL), 0);
    th_conn_close(&c);
}

END_TEST

/*
 * An idle proxy - a kept-alive client, a pooled upstream connection, nothing
 * moving - is not woken: nginx is not, and a node runs many sidecars. Each
 * wake-up switches a thread out once more. Before the accept loop waited
 * without a deadline and sysmon slept while every P is idle, remora woke 6
 * times a second (12 in this window); it may wake at most once a second.
 * A deadline timer that a request armed fires once even when the wait it
 * was armed for has ended (netfd timers are lazy, as Go's and nginx's are):
 * short timeouts here let those fire before the window opens.
 * Not checked under TSan, whose runtime adds a thread that wakes 10 times a
 * second.
 */
#define IDLE_WINDOW_MS 2000
#define IDLE_SETTLE_MS 700 /* past every timeout below */

START_TEST(test_basic_idle_proxy_is_not_woken)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "idle");
    th_remora_start_simple(&r, e.port, "    read_timeout: 400ms\n", "        timeout: 400ms\n",
                           "    connect_timeout: 200ms\n");
    it_open(&c, r.port);
    it_roundtrip(&c, "GET /idle HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    th_sleep_ms(IDLE_SETTLE_MS);
    char before[512], after[512];
    long s0 = th_proc_switches(r.proc.pid, before, sizeof(before));
    th_sleep_ms(IDLE_WINDOW_MS);
    long s1 = th_proc_switches(r.proc.pid, after, sizeof(after));
    ck_assert_int_ge(s0, 0);
    long woken = s1 - s0;
    fprintf(stderr, "idle remora: switched out %ld times in %d ms (%s)\n", woken, IDLE_WINDOW_MS,
            after);
#ifdef REMORA_TSAN
    /* TSan's own thread (not ours, and named like the main one) wakes 10 times a second. */
    fprintf(stderr, "idle remora (TSan) switched out %ld times in %d ms: not checked\n", woken,
            IDLE_WINDOW_MS);
    woken = 0;
#endif
    ck_assert_msg(woken <= IDLE_WINDOW_MS / 1000,
                  "idle remora switched out %ld times in %d ms (threads before: %s; after: %s)",
                  woken, IDLE_WINDOW_MS, before, after);
    /* And it still serves on the connection it kept. */
    it_roundtrip(&c, "GET /idle HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    th_conn_close(&c);
}

END_TEST

/* Returns the text of `path` once it has at least `lines` lines (waits up to 3 s; malloc'd). */
static char *read_lines_eventually(const char *path, int lines)
{
    int64_t end = th_now_ms() + th_slack_ms(3000);
    for (;;) {
        FILE *f = fopen(path, "r");
        char *text = calloc(1, 64 * 1024);
        ck_assert_ptr_nonnull(text);
        size_t n = f ? fread(text, 1, 64 * 1024 - 1, f) : 0;
        if (f) {
            fclose(f);
        }
        int have = 0;
        for (size_t i = 0; i < n; i++) {
            have += text[i] == '\n';
        }
        if (have >= lines || th_now_ms() >= end) {
            return text;
        }
        free(text);
        th_sleep_ms(20);
    }
}

/*
 * The access log: off by default (nothing on stderr), and with `access_log:
 * FILE` one line per request - forwarded, answered locally or refused
 * before its head could be parsed - with client, method and path, status,
 * body bytes, duration, backend, reason and request id.
 */
START_TEST(test_basic_access_log_line_per_request)
{
    th_echo_t e;
    th_remora_t quiet, r;
    th_resp_t resp;
    th_echo_start(&e, "log");
    th_remora_start_simple(&quiet, e.port, NULL, NULL, NULL);
    it_get(quiet.port, "/quiet-path", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);

    char path[512], listener[700];
    snprintf(path, sizeof(path), "%s/access.log", th_tmpdir());
    snprintf(listener, sizeof(listener), "    access_log: %s\n", path);
    th_remora_start_simple(&r, e.port, listener, NULL, NULL);
    it_get(r.port, "/logged?x=1", "x-request-id: rid-123\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    th_conn_t c;
    it_open(&c, r.port);
    const char *bad = "GET / HTTP/1.1\r\nHost: t\r\nX-A : a\r\n\r\n";
    it_send(&c, bad, strlen(bad));
    ck_assert_int_eq(th_http_read_response(&c, &resp, false), 0);
    ck_assert_int_eq(resp.status, 400);
    th_resp_free(&resp);
    th_conn_close(&c);

    char *text = read_lines_eventually(path, 2);
    char *ok = strstr(text, "\"GET /logged?x=1\" 200 ");
    ck_assert_msg(ok != NULL, "no line for the forwarded request in:\n%s", text);
    char *eol = strchr(ok, '\n');
    ck_assert_ptr_nonnull(eol);
    *eol = '\0';
    ck_assert_msg(strstr(ok, "200 15 ") && strstr(ok, "ms backend=b1 reason=- id=rid-123"),
                  "forwarded line: %s", ok);
    ck_assert_msg(strncmp(text, "127.0.0.1 ", 10) == 0, "client address: %s", text);
    *eol = '\n';
    ck_assert_msg(strstr(text, "\"- -\" 400 0 ") && strstr(text, "reason=bad_request"),
                  "no line for the refused request in:\n%s", text);
    free(text);

    char *quiet_log = th_proc_log(&quiet.proc);
    ck_assert_msg(strstr(quiet_log, "/quiet-path") == NULL,
                  "access log written though off by default:\n%s", quiet_log);
    free(quiet_log);
}

END_TEST

Suite *suite_integration_basic(void)
{
    Suite *s = suite_create("integration/basic");
    TCase *tc = it_tcase(s, "forwarding", 20);
    tcase_add_test(tc, test_basic_get_through_proxy);
    tcase_add_test(tc, test_basic_keepalive_serves_several_requests);
    tcase_add_test(tc, test_basic_pipelined_requests_answered_in_order);
    tcase_add_test(tc, test_basic_http10_closes_unless_keepalive);
    tcase_add_test(tc, test_basic_head_has_no_body);
    tcase_add_test(tc, test_basic_204_and_304_have_no_body);
    tcase_add_test(tc, test_basic_idle_proxy_is_not_woken);
    tc = it_tcase(s, "routing", 20);
    tcase_add_test(tc, test_basic_no_route_is_404);
    tcase_add_test(tc, test_basic_routes_by_path_host_method_header);
    tcase_add_test(tc, test_basic_weighted_backends_split_80_20);
    tc = it_tcase(s, "headers", 20);
    tcase_add_test(tc, test_basic_forwarded_headers_added);
    tcase_add_test(tc, test_basic_hop_by_hop_headers_removed);
    tcase_add_test(tc, test_basic_websocket_upgrade_tunnelled);
    tcase_add_test(tc, test_basic_access_log_line_per_request);
    return s;
}
