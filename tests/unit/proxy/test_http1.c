/* SPDX-License-Identifier: MIT */
/*
 * test_http1.c - proxy/http1.c: request and response heads (every refusal
 * with its status), keep-alive/upgrade/expect flags, pipelining, response
 * framing per RFC 9112 §6.3, and the chunked decoder at every split point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "proxy/http1.h"
#include "tests/unit/proxy/suites.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static const px_http1_limits_t lim = {
    .max_head_bytes = 8192, .max_headers = 100, .max_body_bytes = 0};

static px_http1_err_t parse_req(const char *s, size_t n, px_request_t *req)
{
    return px_http1_parse_request(s, n, 0, &lim, req);
}

static bool span_is(const char *p, size_t n, const char *want)
{
    return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* ---- refused requests: one table, each with its error and status ---- */

typedef struct bad_case {
    const char *in;
    size_t len;
    px_http1_err_t err;
    int status;
} bad_case_t;

#define BAD(lit, e, st)                                                                            \
    {                                                                                              \
        (lit), sizeof(lit) - 1, (e), (st)                                                          \
    }
#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define P11 "POST / HTTP/1.1\r\nHost: a\r\n"

static const bad_case_t bad_cases[] = {
    /* both framings (smuggling), either order */
    BAD(P11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", PX_HTTP1_E_CL_AND_TE, 400),
    BAD(P11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", PX_HTTP1_E_CL_AND_TE, 400),
    /* Content-Length: duplicates (equal or not), not a plain number, overflow */
    BAD(P11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", PX_HTTP1_E_CL_DUPLICATE, 400),
    BAD(P11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", PX_HTTP1_E_CL_DUPLICATE, 400),
    BAD(P11 "Content-Length: 5, 5\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: abc\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: -1\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: +5\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: 0x10\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: 1 2\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length:\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: 18446744073709551616\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    BAD(P11 "Content-Length: 99999999999999999999999\r\n\r\n", PX_HTTP1_E_CL_INVALID, 400),
    /* Transfer-Encoding: final coding not chunked (400), others first (501) */
    BAD(P11 "Transfer-Encoding: gzip\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: chunked, gzip\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: chunked, chunked\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: identity\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: chunked;q=1\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: chunked x\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: \"chunked\"\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding:\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: ,\r\n\r\n", PX_HTTP1_E_TE_NOT_CHUNKED, 400),
    BAD(P11 "Transfer-Encoding: gzip, chunked\r\n\r\n", PX_HTTP1_E_TE_UNSUPPORTED, 501),
    BAD(P11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        PX_HTTP1_E_TE_UNSUPPORTED, 501),
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", PX_HTTP1_E_TE_HTTP10, 400),
    /* Host */
    BAD("GET / HTTP/1.1\r\n\r\n", PX_HTTP1_E_HOST_MISSING, 400),
    BAD("GET http://a/ HTTP/1.1\r\n\r\n", PX_HTTP1_E_HOST_MISSING, 400),
    BAD(H11 "Host: a\r\n\r\n", PX_HTTP1_E_HOST_DUPLICATE, 400),
    BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", PX_HTTP1_E_HOST_DUPLICATE, 400),
    BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    /* request-target forms and methods */
    BAD("GET a HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET * HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_TARGET, 400),
    BAD("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", PX_HTTP1_E_METHOD, 501),
    BAD("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET /\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    /* versions */
    BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", PX_HTTP1_E_VERSION, 505),
    BAD("GET / HTTP/0.9\r\nHost: a\r\n\r\n", PX_HTTP1_E_VERSION, 505),
    BAD("GET / HTTP/1.2\r\nHost: a\r\n\r\n", PX_HTTP1_E_VERSION, 505),
    BAD("GET / HTTP/1.x\r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET / HTTP/1.11\r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET / http/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    /* field syntax */
    BAD(H11 "X: a\r\n b\r\n\r\n", PX_HTTP1_E_OBS_FOLD, 400),
    BAD(H11 "X: a\r\n\tb\r\n\r\n", PX_HTTP1_E_OBS_FOLD, 400),
    BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", PX_HTTP1_E_SPACE_BEFORE_COLON, 400),
    BAD(H11 "Content-Length\t: 5\r\n\r\n", PX_HTTP1_E_SPACE_BEFORE_COLON, 400),
    BAD(H11 "X: a\rb\r\n\r\n", PX_HTTP1_E_BARE_CR, 400),
    BAD("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", PX_HTTP1_E_BARE_CR, 400),
    BAD(H11 "X\r: a\r\n\r\n", PX_HTTP1_E_BARE_CR, 400),
    BAD(H11 "X: a\r\r\n\r\n", PX_HTTP1_E_BARE_CR, 400),
    BAD(H11 "X: a\x01"
            "b\r\n\r\n",
        PX_HTTP1_E_FIELD_VALUE, 400),
    BAD(H11 "X: a\x7f\r\n\r\n", PX_HTTP1_E_FIELD_VALUE, 400),
    BAD(H11 "X: a\0b\r\n\r\n", PX_HTTP1_E_FIELD_VALUE, 400),
    BAD(H11 "X: \x1b[31m\r\n\r\n", PX_HTTP1_E_FIELD_VALUE, 400),
    BAD(H11 "NoColon\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD(H11 ": empty name\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD(H11 "Bad\"Name: x\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
    BAD(H11 "Bad(Name): x\r\n\r\n", PX_HTTP1_E_SYNTAX, 400),
};

START_TEST(test_http1_refuses_each_malformed_request_with_its_status)
{
    const bad_case_t *c = &bad_cases[_i];
    px_request_t req;
    px_http1_err_t e = parse_req(c->in, c->len, &req);
    ck_assert_msg(e == c->err, "case %d (%.*s): got %d (%s), want %d (%s)", _i, (int)c->len, c->in,
                  e, px_http1_error_message(e), c->err, px_http1_error_message(c->err));
    ck_assert_int_eq(px_http1_error_status(e), c->status);
    ck_assert_ptr_nonnull(px_http1_error_message(e));
}

END_TEST

START_TEST(test_http1_error_statuses_and_messages_cover_every_code)
{
    for (int e = PX_HTTP1_E_SYNTAX; e >= PX_HTTP1_E_FIELD_VALUE; e--) {
        int st = px_http1_error_status((px_http1_err_t)e);
        ck_assert(st == 400 || st == 413 || st == 431 || st == 501 || st == 505);
        ck_assert_str_ne(px_http1_error_message((px_http1_err_t)e), "unknown error");
    }
    ck_assert_int_eq(px_http1_error_status(PX_HTTP1_E_BODY_TOO_LARGE), 413);
    ck_assert_int_eq(px_http1_error_status(PX_HTTP1_E_TOO_MANY_HEADERS), 431);
}

END_TEST

/* ---- limits ---- */

START_TEST(test_http1_oversized_head_is_431_complete_or_not)
{
    static char buf[20000];
    px_http1_limits_t l = {.max_head_bytes = 1024, .max_headers = 100};
    px_request_t req;
    int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'v', 2000);
    n += 2000;
    /* incomplete and over the limit */
    ck_assert_int_eq(px_http1_parse_request(buf, (size_t)n, 0, &l, &req),
                     PX_HTTP1_E_HEAD_TOO_LARGE);
    /* complete but over the limit */
    memcpy(buf + n, "\r\n\r\n", 4);
    ck_assert_int_eq(px_http1_parse_request(buf, (size_t)n + 4, 0, &l, &req),
                     PX_HTTP1_E_HEAD_TOO_LARGE);
    ck_assert_int_eq(px_http1_error_status(PX_HTTP1_E_HEAD_TOO_LARGE), 431);
    /* under the limit, still incomplete: wait for more */
    ck_assert_int_eq(px_http1_parse_request(buf, 500, 0, &l, &req), PX_HTTP1_INCOMPLETE);
    /* exactly at the limit */
    const char *ok = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    l.max_head_bytes = strlen(ok);
    ck_assert_int_eq(px_http1_parse_request(ok, strlen(ok), 0, &l, &req), PX_HTTP1_OK);
    l.max_head_bytes = strlen(ok) - 1;
    ck_assert_int_eq(px_http1_parse_request(ok, strlen(ok), 0, &l, &req),
                     PX_HTTP1_E_HEAD_TOO_LARGE);
}

END_TEST

static size_t build_with_fields(char *buf, size_t cap, int nfields)
{
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < nfields; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-%d: %d\r\n", i, i);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    return n;
}

START_TEST(test_http1_too_many_headers_is_431)
{
    static char buf[16384];
    px_request_t req;
    px_http1_limits_t l = {.max_head_bytes = sizeof(buf), .max_headers = 10};
    size_t n = build_with_fields(buf, sizeof(buf), 10);
    ck_assert_int_eq(px_http1_parse_request(buf, n, 0, &l, &req), PX_HTTP1_OK);
    ck_assert_uint_eq(req.nheaders, 10);
    n = build_with_fields(buf, sizeof(buf), 11);
    ck_assert_int_eq(px_http1_parse_request(buf, n, 0, &l, &req), PX_HTTP1_E_TOO_MANY_HEADERS);
    ck_assert_int_eq(px_http1_error_status(PX_HTTP1_E_TOO_MANY_HEADERS), 431);
    /* the hard cap applies whatever the listener says */
    l.max_headers = 100000;
    n = build_with_fields(buf, sizeof(buf), PX_HTTP1_MAX_HEADERS);
    ck_assert_int_eq(px_http1_parse_request(buf, n, 0, &l, &req), PX_HTTP1_OK);
    n = build_with_fields(buf, sizeof(buf), PX_HTTP1_MAX_HEADERS + 1);
    ck_assert_int_eq(px_http1_parse_request(buf, n, 0, &l, &req), PX_HTTP1_E_TOO_MANY_HEADERS);
}

END_TEST

START_TEST(test_http1_body_over_limit_is_413)
{
    px_http1_limits_t l = {.max_head_bytes = 8192, .max_headers = 100, .max_body_bytes = 1000};
    px_request_t req;
    ck_assert_int_eq(px_http1_parse_request(S(P11 "Content-Length: 1000\r\n\r\n"), 0, &l, &req),
                     PX_HTTP1_OK);
    ck_assert_int_eq(px_http1_parse_request(S(P11 "Content-Length: 1001\r\n\r\n"), 0, &l, &req),
                     PX_HTTP1_E_BODY_TOO_LARGE);
    ck_assert_int_eq(px_http1_error_status(PX_HTTP1_E_BODY_TOO_LARGE), 413);
    /* no limit: the largest 64-bit length parses */
    ck_assert_int_eq(parse_req(S(P11 "Content-Length: 18446744073709551615\r\n\r\n"), &req),
                     PX_HTTP1_OK);
    ck_assert(req.content_length == UINT64_MAX);
}

END_TEST

/* ---- good requests ---- */

START_TEST(test_http1_parses_a_simple_get)
{
    static const char in[] = "GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
                             "User-Agent: t  \t\r\nAccept: */*\r\n\r\n";
    px_request_t req;
    ck_assert_int_eq(parse_req(S(in), &req), PX_HTTP1_OK);
    ck_assert(span_is(req.method, req.method_len, "GET"));
    ck_assert(span_is(req.target, req.target_len, "/a?b=1"));
    ck_assert(span_is(req.path, req.path_len, "/a?b=1"));
    ck_assert(span_is(req.host, req.host_len, "example.com:8080"));
    ck_assert_int_eq(req.minor_version, 1);
    ck_assert_uint_eq(req.nheaders, 3);
    ck_assert_uint_eq(req.head_len, sizeof(in) - 1);
    ck_assert_int_eq(req.body, PX_BODY_NONE);
    ck_assert(req.keep_alive && !req.expect_continue && !req.upgrade && !req.is_head);
    /* trailing whitespace is not part of a field value */
    const px_header_t *ua = px_http1_find(req.headers, req.nheaders, "user-agent");
    ck_assert_ptr_nonnull(ua);
    ck_assert(span_is(ua->value, ua->value_len, "t"));
    ck_assert(px_http1_name_is(&req.headers[2], "ACCEPT"));
    ck_assert(!px_http1_name_is(&req.headers[2], "Accep"));
    ck_assert_ptr_null(px_http1_find(req.headers, req.nheaders, "cookie"));
}

END_TEST

START_TEST(test_http1_parses_pipelined_requests_one_at_a_time)
{
    static const char in[] = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                             "GET /two HTTP/1.1\r\nHost: b\r\n\r\n"
                             "GET /thr";
    px_request_t req;
    size_t off = 0, len = sizeof(in) - 1;
    ck_assert_int_eq(parse_req(in, len, &req), PX_HTTP1_OK);
    ck_assert(span_is(req.path, req.path_len, "/one"));
    ck_assert_int_eq(req.body, PX_BODY_LENGTH);
    ck_assert(req.content_length == 5);
    off = req.head_len;
    ck_assert(memcmp(in + off, "hello", 5) == 0);
    off += 5;
    ck_assert_int_eq(parse_req(in + off, len - off, &req), PX_HTTP1_OK);
    ck_assert(span_is(req.path, req.path_len, "/two"));
    ck_assert(span_is(req.host, req.host_len, "b"));
    ck_assert_int_eq(req.body, PX_BODY_NONE);
    off += req.head_len;
    ck_assert_int_eq(parse_req(in + off, len - off, &req), PX_HTTP1_INCOMPLETE);
}

END_TEST

START_TEST(test_http1_every_prefix_is_incomplete_and_prev_len_works)
{
    static const char in[] = "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                             "Expect: 100-continue\r\n\r\n";
    px_request_t req;
    size_t prev = 0;
    for (size_t n = 0; n < sizeof(in) - 1; n++) {
        px_http1_err_t e = px_http1_parse_request(in, n, prev, &lim, &req);
        ck_assert_msg(e == PX_HTTP1_INCOMPLETE, "prefix %zu: %d", n, e);
        prev = n;
    }
    ck_assert_int_eq(px_http1_parse_request(in, sizeof(in) - 1, prev, &lim, &req), PX_HTTP1_OK);
    ck_assert_int_eq(req.body, PX_BODY_CHUNKED);
    ck_assert(req.expect_continue);
}

END_TEST

START_TEST(test_http1_keep_alive_follows_version_and_connection)
{
    px_request_t req;
    ck_assert_int_eq(parse_req(S(H11 "\r\n"), &req), PX_HTTP1_OK);
    ck_assert(req.keep_alive);
    ck_assert_int_eq(parse_req(S(H11 "Connection: close\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(!req.keep_alive);
    ck_assert_int_eq(parse_req(S(H11 "Connection: foo, CLOSE\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(!req.keep_alive);
    ck_assert_int_eq(parse_req(S(H11 "Connection: foo\r\nConnection: Close\r\n\r\n"), &req),
                     PX_HTTP1_OK);
    ck_assert(!req.keep_alive);
    ck_assert_int_eq(parse_req(S(H11 "Connection: closed\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(req.keep_alive);
    ck_assert_int_eq(parse_req(S("GET / HTTP/1.0\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(!req.keep_alive);
    ck_assert_int_eq(req.minor_version, 0);
    ck_assert_uint_eq(req.host_len, 0);
    ck_assert_ptr_nonnull(req.host);
    ck_assert_int_eq(parse_req(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &req),
                     PX_HTTP1_OK);
    ck_assert(req.keep_alive);
    ck_assert_int_eq(parse_req(S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), &req),
                     PX_HTTP1_OK);
    ck_assert(!req.keep_alive);
}

END_TEST

START_TEST(test_http1_expect_upgrade_and_head_flags)
{
    px_request_t req;
    ck_assert_int_eq(parse_req(S(P11 "Content-Length: 3\r\nExpect: 100-Continue\r\n\r\n"), &req),
                     PX_HTTP1_OK);
    ck_assert(req.expect_continue);
    /* RFC 9110 §10.1.1: ignored in 1.0 */
    ck_assert_int_eq(
        parse_req(S("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"), &req),
        PX_HTTP1_OK);
    ck_assert(!req.expect_continue);
    ck_assert_int_eq(
        parse_req(S(H11 "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"), &req),
        PX_HTTP1_OK);
    ck_assert(req.upgrade && req.keep_alive);
    ck_assert_int_eq(parse_req(S(H11 "Upgrade: websocket\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(!req.upgrade);
    ck_assert_int_eq(parse_req(S(H11 "Connection: upgrade\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(!req.upgrade);
    ck_assert_int_eq(parse_req(S("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(req.is_head);
    ck_assert_int_eq(parse_req(S("head / HTTP/1.1\r\nHost: a\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(!req.is_head); /* methods are case-sensitive */
}

END_TEST

START_TEST(test_http1_target_forms)
{
    px_request_t req;
    ck_assert_int_eq(
        parse_req(S("GET http://Example.com:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n"), &req),
        PX_HTTP1_OK);
    ck_assert(span_is(req.host, req.host_len, "Example.com:81"));
    ck_assert(span_is(req.path, req.path_len, "/p?q"));
    ck_assert(span_is(req.target, req.target_len, "http://Example.com:81/p?q"));
    ck_assert_int_eq(parse_req(S("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(span_is(req.path, req.path_len, "/"));
    ck_assert(span_is(req.host, req.host_len, "h"));
    ck_assert_int_eq(parse_req(S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(span_is(req.path, req.path_len, "*"));
    ck_assert_int_eq(parse_req(S("GET http://[::1]:8080/ HTTP/1.1\r\nHost: h\r\n\r\n"), &req),
                     PX_HTTP1_OK);
    ck_assert(span_is(req.host, req.host_len, "[::1]:8080"));
    ck_assert_int_eq(parse_req(S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert_uint_eq(req.host_len, 0);
}

END_TEST

START_TEST(test_http1_accepts_lf_lines_leading_crlf_and_odd_but_valid_fields)
{
    px_request_t req;
    ck_assert_int_eq(parse_req(S("GET / HTTP/1.1\nHost: a\nX: y\n\n"), &req), PX_HTTP1_OK);
    ck_assert_uint_eq(req.nheaders, 2);
    ck_assert_int_eq(parse_req(S("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert_uint_eq(req.head_len, 29);
    ck_assert_int_eq(
        parse_req(S(H11 "X-Empty:\r\nX-Utf8: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n"), &req),
        PX_HTTP1_OK);
    ck_assert_uint_eq(req.headers[1].value_len, 0);
    ck_assert_int_eq(parse_req(S(P11 "Transfer-Encoding: Chunked\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert_int_eq(req.body, PX_BODY_CHUNKED);
    ck_assert_int_eq(parse_req(S(P11 "Content-Length: 007\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert(req.content_length == 7);
    ck_assert_int_eq(parse_req(S(P11 "Content-Length: 0\r\n\r\n"), &req), PX_HTTP1_OK);
    ck_assert_int_eq(req.body, PX_BODY_LENGTH);
    ck_assert(req.content_length == 0);
    ck_assert_int_eq(parse_req(S("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n"), &req),
                     PX_HTTP1_E_TARGET);
    ck_assert_int_eq(parse_req(S("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n"), &req), PX_HTTP1_OK);
}

END_TEST

START_TEST(test_http1_null_limits_mean_defaults)
{
    px_request_t req;
    ck_assert_int_eq(px_http1_parse_request(S(H11 "\r\n"), 0, NULL, &req), PX_HTTP1_OK);
    px_http1_limits_t zero = {0};
    ck_assert_int_eq(px_http1_parse_request(S(H11 "\r\n"), 0, &zero, &req), PX_HTTP1_OK);
}

END_TEST

/* ---- responses ---- */

static px_http1_err_t parse_resp(const char *s, size_t n, bool is_head, px_response_t *r)
{
    return px_http1_parse_response(s, n, 0, is_head, 8192, r);
}

START_TEST(test_http1_response_framing_follows_rfc9112_6_3)
{
    px_response_t r;
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"), false, &r),
                     PX_HTTP1_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert(span_is(r.reason, r.reason_len, "OK"));
    ck_assert_int_eq(r.body, PX_BODY_LENGTH);
    ck_assert(r.content_length == 12 && r.keep_alive && !r.upgrade);
    ck_assert_uint_eq(r.head_len, 39);

    ck_assert_int_eq(
        parse_resp(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false, &r),
        PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_CHUNKED);
    ck_assert(r.keep_alive);

    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nX: y\r\n\r\n"), false, &r), PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_UNTIL_CLOSE);
    ck_assert(!r.keep_alive);

    ck_assert_int_eq(parse_resp(S("HTTP/1.1 204 No Content\r\n\r\n"), false, &r), PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_NONE);
    ck_assert(r.keep_alive);
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"), false, &r),
        PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_NONE);
    ck_assert(r.keep_alive);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"), true, &r),
                     PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_NONE);
    ck_assert(r.keep_alive);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\n\r\n"), true, &r), PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_NONE);
    ck_assert(r.keep_alive);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 100 Continue\r\n\r\n"), false, &r), PX_HTTP1_OK);
    ck_assert_int_eq(r.body, PX_BODY_NONE);
    ck_assert_int_eq(r.status, 100);

    ck_assert_int_eq(parse_resp(S("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n\r\n"),
                                false, &r),
                     PX_HTTP1_OK);
    ck_assert(r.upgrade && !r.keep_alive);
    ck_assert_int_eq(r.body, PX_BODY_NONE);
}

END_TEST

START_TEST(test_http1_response_keep_alive)
{
    px_response_t r;
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), false,
                   &r),
        PX_HTTP1_OK);
    ck_assert(!r.keep_alive);
    ck_assert_int_eq(parse_resp(S("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), false, &r),
                     PX_HTTP1_OK);
    ck_assert(!r.keep_alive);
    ck_assert_int_eq(r.minor_version, 0);
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"),
                   false, &r),
        PX_HTTP1_OK);
    ck_assert(r.keep_alive);
}

END_TEST

START_TEST(test_http1_response_bad_framing_is_an_error)
{
    px_response_t r;
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                   false, &r),
        PX_HTTP1_E_CL_AND_TE);
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), false,
                   &r),
        PX_HTTP1_E_CL_DUPLICATE);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), false, &r),
                     PX_HTTP1_E_CL_INVALID);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), false, &r),
                     PX_HTTP1_E_TE_NOT_CHUNKED);
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), false, &r),
        PX_HTTP1_E_TE_UNSUPPORTED);
    ck_assert_int_eq(
        parse_resp(S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false, &r),
        PX_HTTP1_E_TE_HTTP10);
    ck_assert_int_eq(parse_resp(S("HTTP/2.0 200 OK\r\n\r\n"), false, &r), PX_HTTP1_E_VERSION);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 2000 OK\r\n\r\n"), false, &r), PX_HTTP1_E_SYNTAX);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 099 X\r\n\r\n"), false, &r), PX_HTTP1_E_SYNTAX);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), false, &r),
                     PX_HTTP1_E_OBS_FOLD);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), false, &r),
                     PX_HTTP1_E_BARE_CR);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), false, &r),
                     PX_HTTP1_E_SPACE_BEFORE_COLON);
    ck_assert_int_eq(parse_resp(S("garbage\r\n\r\n"), false, &r), PX_HTTP1_E_SYNTAX);
    /* found by fuzz_http1: phr refuses a status without SP, the classifier must too */
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 101\r"), false, &r), PX_HTTP1_E_SYNTAX);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200\r\n\r\n"), false, &r), PX_HTTP1_E_SYNTAX);
    ck_assert_int_eq(parse_resp(S("HTTP/1.1 200 OK\r\nContent-"), false, &r), PX_HTTP1_INCOMPLETE);
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    ck_assert_int_eq(px_http1_parse_response(big, sizeof(big), 0, false, 512, &r),
                     PX_HTTP1_E_HEAD_TOO_LARGE);
}

END_TEST

/* ---- chunked bodies ---- */

typedef struct decoded {
    ssize_t err;     /* 0, or the first negative return */
    size_t consumed; /* bytes consumed in total */
    bool done;
    char data[4096];
    size_t data_len;
} decoded_t;

/*
 * Feeds `in` to a fresh decoder in pieces of `step` bytes (0: all at once),
 * starting the second piece at `split` when `split` is not 0, and collects
 * the body. The decoder consumes every byte it is given until done.
 */
static void feed(px_chunked_t *c, const char *in, size_t len, decoded_t *out)
{
    size_t off = 0;
    while (off < len && !c->done) {
        size_t doff, dlen;
        ssize_t r = px_chunked_decode(c, in + off, len - off, &doff, &dlen);
        if (r < 0) {
            out->err = r;
            return;
        }
        ck_assert_uint_le(doff + dlen, (size_t)r);
        if (dlen > 0) {
            ck_assert_uint_le(out->data_len + dlen, sizeof(out->data));
            memcpy(out->data + out->data_len, in + off + doff, dlen);
            out->data_len += dlen;
        }
        if (r == 0 && dlen == 0)
            break;
        off += (size_t)r;
        out->consumed += (size_t)r;
    }
    out->done = c->done;
}

static void decode_split(const char *in, size_t len, size_t split, size_t step, decoded_t *out)
{
    px_chunked_t c;
    px_chunked_init(&c);
    memset(out, 0, sizeof(*out));
    if (step > 0) {
        for (size_t off = 0; off < len && out->err == 0 && !out->done; off += step) {
            size_t n = len - off < step ? len - off : step;
            feed(&c, in + off, n, out);
        }
        return;
    }
    feed(&c, in, split, out);
    if (out->err == 0 && !out->done)
        feed(&c, in + split, len - split, out);
}

START_TEST(test_http1_chunked_decodes_with_extensions_and_trailers)
{
    static const char in[] = "5;a=b;c=\"q\\\"x\" ; d\r\nhello\r\n"
                             "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                             "0;last\r\nExpires: never\r\nX-Sum: 1\r\n\r\n"
                             "NEXT REQUEST";
    decoded_t d;
    decode_split(S(in), sizeof(in) - 1, 0, &d);
    ck_assert_int_eq(d.err, 0);
    ck_assert(d.done);
    ck_assert_uint_eq(d.consumed, sizeof(in) - 1 - strlen("NEXT REQUEST"));
    ck_assert_uint_eq(d.data_len, 31);
    ck_assert(memcmp(d.data, "helloabcdefghijklmnopqrstuvwxyz", 31) == 0);

    /* after the end nothing more is consumed */
    px_chunked_t c;
    px_chunked_init(&c);
    size_t off, len;
    size_t pos = 0;
    while (!c.done) {
        ssize_t r = px_chunked_decode(&c, in + pos, sizeof(in) - 1 - pos, &off, &len);
        ck_assert_int_ge(r, 0);
        pos += (size_t)r;
    }
    ck_assert(c.total == 31);
    ck_assert_int_eq(px_chunked_decode(&c, "more", 4, &off, &len), 0);
    ck_assert_uint_eq(len, 0);
}

END_TEST

START_TEST(test_http1_chunked_every_split_point_and_byte_by_byte)
{
    static const char in[] = "3\r\nabc\r\n"
                             "10;ext=\"v;\\\\\"\r\n0123456789abcdef\r\n"
                             "1\r\nZ\r\n"
                             "0\r\nT: v\r\n\r\n";
    const char *want = "abc0123456789abcdefZ";
    for (size_t split = 0; split <= sizeof(in) - 1; split++) {
        decoded_t d;
        decode_split(in, sizeof(in) - 1, split, 0, &d);
        ck_assert_msg(d.err == 0 && d.done, "split %zu: err %zd done %d", split, d.err, d.done);
        ck_assert_uint_eq(d.consumed, sizeof(in) - 1);
        ck_assert(d.data_len == strlen(want) && memcmp(d.data, want, d.data_len) == 0);
    }
    for (size_t step = 1; step <= 7; step++) {
        decoded_t d;
        decode_split(in, sizeof(in) - 1, 0, step, &d);
        ck_assert_msg(d.err == 0 && d.done, "step %zu", step);
        ck_assert(d.data_len == strlen(want) && memcmp(d.data, want, d.data_len) == 0);
    }
}

END_TEST

typedef struct chunk_bad {
    const char *in;
    size_t len;
    ssize_t err;
} chunk_bad_t;

#define CBAD(lit, e)                                                                               \
    {                                                                                              \
        (lit), sizeof(lit) - 1, (e)                                                                \
    }

static const chunk_bad_t chunk_bad_cases[] = {
    CBAD("x\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("-1\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("+1\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("0x5\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("5g\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD(" 5\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD(";a\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("10000000000000000\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("fffffffffffffffff\r\n", PX_HTTP1_E_CHUNK_SIZE),
    CBAD("5 \r\nhello\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5 x\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;=x\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a b\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=b c\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=b=c\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=\"x\"y\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=\"x\x01\"\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=\"x\\\x01\"\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a=\"x\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a@b\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5;a\x7f\r\n", PX_HTTP1_E_CHUNK_EXT),
    CBAD("5\nhello\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("5\rhello\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("5\r\nhelloX\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("5\r\nhello\n0\r\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("5\r\nhello\rX", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("5\r\nhello\r\n0\r\n\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\n\rX", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\nBad Name: x\r\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\n: x\r\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\n x: y\r\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\nx: a\x01"
         "b\r\n\r\n",
         PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\nx: a\rb\r\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\nx: a\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
    CBAD("0\r\nnocolon\r\n\r\n", PX_HTTP1_E_CHUNK_FRAMING),
};

START_TEST(test_http1_chunked_refuses_bad_framing)
{
    const chunk_bad_t *c = &chunk_bad_cases[_i];
    /* the same error whether the bytes arrive at once or one by one */
    decoded_t d;
    decode_split(c->in, c->len, c->len, 0, &d);
    ck_assert_msg(d.err == c->err, "case %d (%s): got %zd want %zd", _i, c->in, d.err, c->err);
    decode_split(c->in, c->len, 0, 1, &d);
    ck_assert_msg(d.err == c->err, "case %d bytewise: got %zd want %zd", _i, d.err, c->err);
    ck_assert_int_eq(px_http1_error_status((px_http1_err_t)c->err), 400);
}

END_TEST

START_TEST(test_http1_chunked_sizes_at_the_edges)
{
    px_chunked_t c;
    size_t off, len;
    px_chunked_init(&c);
    ck_assert_int_eq(px_chunked_decode(&c, S("ffffffffffffffff\r\nab"), &off, &len), 20);
    ck_assert_uint_eq(off, 18);
    ck_assert_uint_eq(len, 2);
    ck_assert(c.remaining == UINT64_MAX - 2 && c.total == 2);
    px_chunked_init(&c);
    ck_assert_int_eq(
        px_chunked_decode(&c, S("00000000000000000000003\r\nabc\r\n0\r\n\r\n"), &off, &len), 28);
    ck_assert_uint_eq(len, 3);
    decoded_t d;
    decode_split(S("00\r\n\r\n"), 2, 0, &d);
    ck_assert(d.done && d.err == 0 && d.data_len == 0);
}

END_TEST

START_TEST(test_http1_chunked_lines_are_bounded)
{
    static char buf[80 * 1024];
    decoded_t d;
    /* an over-long size line (extensions) */
    memcpy(buf, "1;", 2);
    memset(buf + 2, 'a', 5000);
    decode_split(buf, 5002, 5002, 0, &d);
    ck_assert_int_eq(d.err, PX_HTTP1_E_HEAD_TOO_LARGE);
    /* zeros alone cannot make a size line unbounded either */
    memset(buf, '0', 5000);
    decode_split(buf, 5000, 0, 1000, &d);
    ck_assert_int_eq(d.err, PX_HTTP1_E_HEAD_TOO_LARGE);
    /* an over-long trailer line */
    memcpy(buf, "0\r\nX: ", 6);
    memset(buf + 6, 'v', 5000);
    decode_split(buf, 5006, 5006, 0, &d);
    ck_assert_int_eq(d.err, PX_HTTP1_E_HEAD_TOO_LARGE);
    /* a trailer section of many short lines */
    size_t n = 3;
    memcpy(buf, "0\r\n", 3);
    while (n + 12 < sizeof(buf)) {
        memcpy(buf + n, "X: 12345678\r\n", 13);
        n += 13;
    }
    decode_split(buf, n, 0, 0, &d);
    ck_assert_int_eq(d.err, PX_HTTP1_E_HEAD_TOO_LARGE);
    /* a 4000-byte extension is fine */
    n = (size_t)snprintf(buf, sizeof(buf), "1;x=");
    memset(buf + n, 't', 4000);
    n += 4000;
    memcpy(buf + n, "\r\nZ\r\n0\r\n\r\n", 10);
    decode_split(buf, n + 10, 0, 0, &d);
    ck_assert(d.err == 0 && d.done && d.data_len == 1);
}

END_TEST

Suite *suite_proxy_http1(void)
{
    Suite *s = suite_create("proxy/http1");
    TCase *tc = tcase_create("request");
    tcase_add_loop_test(tc, test_http1_refuses_each_malformed_request_with_its_status, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_http1_error_statuses_and_messages_cover_every_code);
    tcase_add_test(tc, test_http1_oversized_head_is_431_complete_or_not);
    tcase_add_test(tc, test_http1_too_many_headers_is_431);
    tcase_add_test(tc, test_http1_body_over_limit_is_413);
    tcase_add_test(tc, test_http1_parses_a_simple_get);
    tcase_add_test(tc, test_http1_parses_pipelined_requests_one_at_a_time);
    tcase_add_test(tc, test_http1_every_prefix_is_incomplete_and_prev_len_works);
    tcase_add_test(tc, test_http1_keep_alive_follows_version_and_connection);
    tcase_add_test(tc, test_http1_expect_upgrade_and_head_flags);
    tcase_add_test(tc, test_http1_target_forms);
    tcase_add_test(tc, test_http1_accepts_lf_lines_leading_crlf_and_odd_but_valid_fields);
    tcase_add_test(tc, test_http1_null_limits_mean_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_test(tc, test_http1_response_framing_follows_rfc9112_6_3);
    tcase_add_test(tc, test_http1_response_keep_alive);
    tcase_add_test(tc, test_http1_response_bad_framing_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_test(tc, test_http1_chunked_decodes_with_extensions_and_trailers);
    tcase_add_test(tc, test_http1_chunked_every_split_point_and_byte_by_byte);
    tcase_add_loop_test(tc, test_http1_chunked_refuses_bad_framing, 0,
                        (int)(sizeof(chunk_bad_cases) / sizeof(chunk_bad_cases[0])));
    tcase_add_test(tc, test_http1_chunked_sizes_at_the_edges);
    tcase_add_test(tc, test_http1_chunked_lines_are_bounded);
    suite_add_tcase(s, tc);
    return s;
}
