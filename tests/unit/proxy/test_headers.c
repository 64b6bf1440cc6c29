/* SPDX-License-Identifier: MIT */
/*
 * test_headers.c - proxy/headers.c: request and response heads as rewritten
 * by the proxy, compared as exact strings, plus output overflow and request
 * ids.
 */
#include <string.h>

#include <check.h>

#include "proxy/headers.h"
#include "proxy/http1.h"
#include "tests/unit/proxy/suites.h"

static char out[4096];

static void parse_req(const char *s, px_request_t *req)
{
    ck_assert_int_eq(px_http1_parse_request(s, strlen(s), 0, NULL, req), PX_HTTP1_OK);
}

static void parse_resp(const char *s, bool is_head, px_response_t *r)
{
    ck_assert_int_eq(px_http1_parse_response(s, strlen(s), 0, is_head, 0, r), PX_HTTP1_OK);
}

static const char *req_head(const char *in, const px_fwd_request_t *fwd)
{
    static px_request_t req;
    parse_req(in, &req);
    ssize_t n = px_headers_request_head(out, sizeof(out) - 1, &req, fwd);
    ck_assert_int_ge(n, 0);
    out[n] = '\0';
    return out;
}

static const char *resp_head(const char *in, bool is_head, const px_fwd_response_t *fwd)
{
    static px_response_t r;
    parse_resp(in, is_head, &r);
    ssize_t n = px_headers_response_head(out, sizeof(out) - 1, &r, fwd);
    ck_assert_int_ge(n, 0);
    out[n] = '\0';
    return out;
}

static const px_fwd_request_t fwd_basic = {
    .client_ip = "10.0.0.7",
    .proto = "http",
    .request_id = "0123456789abcdef0123456789abcdef",
    .via = "1.1 remora",
};

START_TEST(test_headers_request_adds_forwarding_fields)
{
    ck_assert_str_eq(
        req_head("GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n", &fwd_basic),
        "GET /a?b HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Accept: */*\r\n"
        "X-Forwarded-For: 10.0.0.7\r\n"
        "Via: 1.1 remora\r\n"
        "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
        "X-Forwarded-Proto: http\r\n"
        "\r\n");
}

END_TEST

START_TEST(test_headers_request_appends_to_existing_fields_and_keeps_request_id)
{
    ck_assert_str_eq(req_head("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
                              "Via: 1.0 edge\r\nX-Request-Id: abc\r\n"
                              "X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n"
                              "X-Forwarded-Proto: https\r\nVia: 1.1 cdn\r\n\r\n",
                              &fwd_basic),
                     "GET / HTTP/1.1\r\n"
                     "Host: h\r\n"
                     "X-Forwarded-For: 1.1.1.1\r\n"
                     "Via: 1.0 edge\r\n"
                     "X-Request-Id: abc\r\n"
                     "X-Forwarded-For: 2.2.2.2, 3.3.3.3, 10.0.0.7\r\n"
                     "Via: 1.1 cdn, 1.1 remora\r\n"
                     "X-Forwarded-Proto: http\r\n"
                     "\r\n");
    /* an empty X-Forwarded-For gets just the address */
    ck_assert_str_eq(req_head("GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for:\r\n\r\n", &fwd_basic),
                     "GET / HTTP/1.1\r\n"
                     "Host: h\r\n"
                     "x-forwarded-for: 10.0.0.7\r\n"
                     "Via: 1.1 remora\r\n"
                     "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
                     "X-Forwarded-Proto: http\r\n"
                     "\r\n");
}

END_TEST

START_TEST(test_headers_request_drops_hop_by_hop_fields)
{
    ck_assert_str_eq(
        req_head("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, host\r\n"
                 "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                 "Proxy-Authorization: Basic xx\r\nTE: trailers\r\n"
                 "Trailer: X-Sum\r\nUpgrade: h2c\r\nX-Secret: 1\r\n"
                 "x-secret: 2\r\nX-Kept: yes\r\n\r\n",
                 &fwd_basic),
        "GET / HTTP/1.1\r\n"
        "Host: h\r\n"
        "X-Kept: yes\r\n"
        "X-Forwarded-For: 10.0.0.7\r\n"
        "Via: 1.1 remora\r\n"
        "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
        "X-Forwarded-Proto: http\r\n"
        "\r\n");
}

END_TEST

START_TEST(test_headers_request_writes_our_framing)
{
    px_fwd_request_t fwd = {.body = PX_BODY_LENGTH, .content_length = 12345};
    ck_assert_str_eq(req_head("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 12345\r\n"
                              "Expect: 100-continue\r\nContent-Type: text/plain\r\n\r\n",
                              &fwd),
                     "POST /up HTTP/1.1\r\n"
                     "Host: h\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: 12345\r\n"
                     "\r\n");
    fwd.body = PX_BODY_CHUNKED;
    ck_assert_str_eq(
        req_head("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &fwd),
        "POST /up HTTP/1.1\r\n"
        "Host: h\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n");
    fwd.body = PX_BODY_NONE;
    px_header_t extra[] = {{"x-canary", 8, "always", 6}};
    fwd.extra = extra;
    fwd.nextra = 1;
    ck_assert_str_eq(req_head("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &fwd), "GET / HTTP/1.1\r\n"
                                                                          "Host: h\r\n"
                                                                          "x-canary: always\r\n"
                                                                          "\r\n");
}

END_TEST

START_TEST(test_headers_request_upgrade_keeps_upgrade)
{
    px_fwd_request_t fwd = {.upgrade = true};
    ck_assert_str_eq(req_head("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n",
                              &fwd),
                     "GET /ws HTTP/1.1\r\n"
                     "Host: h\r\n"
                     "Upgrade: websocket\r\n"
                     "Sec-WebSocket-Key: k\r\n"
                     "Connection: upgrade\r\n"
                     "\r\n");
}

END_TEST

START_TEST(test_headers_request_host_from_absolute_form_or_http10)
{
    px_fwd_request_t fwd = {0};
    ck_assert_str_eq(req_head("GET http://real:81/p HTTP/1.1\r\nX: 1\r\nHost: fake\r\n\r\n", &fwd),
                     "GET /p HTTP/1.1\r\n"
                     "X: 1\r\n"
                     "Host: real:81\r\n"
                     "\r\n");
    ck_assert_str_eq(req_head("GET / HTTP/1.0\r\nConnection: keep-alive\r\nX: 1\r\n\r\n", &fwd),
                     "GET / HTTP/1.1\r\n"
                     "Host: \r\n"
                     "X: 1\r\n"
                     "\r\n");
    ck_assert_str_eq(req_head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &fwd),
                     "OPTIONS * HTTP/1.1\r\n"
                     "Host: h\r\n"
                     "\r\n");
}

END_TEST

START_TEST(test_headers_request_returns_minus_one_when_it_does_not_fit)
{
    px_request_t req;
    parse_req("GET /a HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n", &req);
    ssize_t full = px_headers_request_head(out, sizeof(out), &req, &fwd_basic);
    ck_assert_int_gt(full, 0);
    for (size_t cap = 0; cap < (size_t)full; cap++)
        ck_assert_int_eq(px_headers_request_head(out, cap, &req, &fwd_basic), -1);
    ck_assert_int_eq(px_headers_request_head(out, (size_t)full, &req, &fwd_basic), full);
}

END_TEST

static const px_fwd_response_t fwd_resp = {
    .backend = "stable",
    .body = PX_BODY_LENGTH,
    .content_length = 5,
    .keep_alive = true,
};

START_TEST(test_headers_response_status_line_backend_and_dropped_fields)
{
    ck_assert_str_eq(
        resp_head("HTTP/1.0 200 Fine\r\nContent-Length: 5\r\nX-Remora-Backend: evil\r\n"
                  "x-remora-reason: spoof\r\nConnection: keep-alive, X-Hop\r\n"
                  "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nServer: echo\r\n\r\n",
                  false, &fwd_resp),
        "HTTP/1.1 200 Fine\r\n"
        "Server: echo\r\n"
        "x-remora-backend: stable\r\n"
        "Content-Length: 5\r\n"
        "\r\n");
}

END_TEST

START_TEST(test_headers_response_connection_field)
{
    px_fwd_response_t f = fwd_resp;
    f.keep_alive = false;
    f.backend = NULL;
    ck_assert_str_eq(resp_head("HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n", false, &f),
                     "HTTP/1.1 404 Not Found\r\n"
                     "Connection: close\r\n"
                     "Content-Length: 5\r\n"
                     "\r\n");
    f.keep_alive = true;
    f.client_http10 = true;
    ck_assert_str_eq(resp_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, &f),
                     "HTTP/1.1 200 OK\r\n"
                     "Connection: keep-alive\r\n"
                     "Content-Length: 5\r\n"
                     "\r\n");
    /* a body delimited by the close cannot be kept alive */
    f.body = PX_BODY_UNTIL_CLOSE;
    f.client_http10 = false;
    ck_assert_str_eq(resp_head("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", false, &f),
                     "HTTP/1.1 200 OK\r\n"
                     "X: y\r\n"
                     "Connection: close\r\n"
                     "\r\n");
}

END_TEST

START_TEST(test_headers_response_framing_via_and_upgrade)
{
    px_fwd_response_t f = {
        .backend = "canary", .via = "1.1 remora", .body = PX_BODY_CHUNKED, .keep_alive = true};
    ck_assert_str_eq(resp_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                               "Trailer: X-Sum\r\nVia: 1.1 up\r\n\r\n",
                               false, &f),
                     "HTTP/1.1 200 OK\r\n"
                     "Via: 1.1 up, 1.1 remora\r\n"
                     "x-remora-backend: canary\r\n"
                     "Transfer-Encoding: chunked\r\n"
                     "\r\n");
    /* HEAD: no body, the upstream's Content-Length describes the GET */
    f.body = PX_BODY_NONE;
    f.via = NULL;
    ck_assert_str_eq(resp_head("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true, &f),
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Length: 42\r\n"
                     "x-remora-backend: canary\r\n"
                     "\r\n");
    f.upgrade = true;
    f.keep_alive = false;
    f.backend = NULL;
    ck_assert_str_eq(resp_head("HTTP/1.1 101 \r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: a\r\n\r\n",
                               false, &f),
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Sec-WebSocket-Accept: a\r\n"
                     "Connection: upgrade\r\n"
                     "\r\n");
}

END_TEST

START_TEST(test_headers_response_returns_minus_one_when_it_does_not_fit)
{
    px_response_t r;
    parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nA: b\r\n\r\n", false, &r);
    ssize_t full = px_headers_response_head(out, sizeof(out), &r, &fwd_resp);
    ck_assert_int_gt(full, 0);
    for (size_t cap = 0; cap < (size_t)full; cap++)
        ck_assert_int_eq(px_headers_response_head(out, cap, &r, &fwd_resp), -1);
    ck_assert_int_eq(px_headers_response_head(out, (size_t)full, &r, &fwd_resp), full);
}

END_TEST

START_TEST(test_headers_new_request_id_is_32_lowercase_hex)
{
    char a[33], b[33];
    px_headers_new_request_id(a);
    px_headers_new_request_id(b);
    ck_assert_uint_eq(strlen(a), 32);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 32);
    ck_assert_str_ne(a, b);
}

END_TEST

Suite *suite_proxy_headers(void)
{
    Suite *s = suite_create("proxy/headers");
    TCase *tc = tcase_create("request");
    tcase_add_test(tc, test_headers_request_adds_forwarding_fields);
    tcase_add_test(tc, test_headers_request_appends_to_existing_fields_and_keeps_request_id);
    tcase_add_test(tc, test_headers_request_drops_hop_by_hop_fields);
    tcase_add_test(tc, test_headers_request_writes_our_framing);
    tcase_add_test(tc, test_headers_request_upgrade_keeps_upgrade);
    tcase_add_test(tc, test_headers_request_host_from_absolute_form_or_http10);
    tcase_add_test(tc, test_headers_request_returns_minus_one_when_it_does_not_fit);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_test(tc, test_headers_response_status_line_backend_and_dropped_fields);
    tcase_add_test(tc, test_headers_response_connection_field);
    tcase_add_test(tc, test_headers_response_framing_via_and_upgrade);
    tcase_add_test(tc, test_headers_response_returns_minus_one_when_it_does_not_fit);
    tcase_add_test(tc, test_headers_new_request_id_is_32_lowercase_hex);
    suite_add_tcase(s, tc);
    return s;
}
