/* SPDX-License-Identifier: MIT */
/*
 * test_malformed.c - integration/malformed: ambiguous or malformed requests
 * get their status and x-remora-reason, the connection is closed after the
 * answer (a FIN, the answer not lost to a reset), and remora-echo never saw
 * the request (its x-echo-seq, read directly, moved only by our own probes):
 * a chunked body is checked as far as it came with its head before anything
 * goes upstream. Errors further into a streamed body, and answers given
 * while a large body is still unread, close cleanly too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

typedef struct bad_case {
    const char *name;
    const char *raw; /* NULL: built by build_big() */
    int status;
    const char *reason;
} bad_case_t;

/* The listener's limits below: 8 KiB head, 20 headers, 1 KiB body. */
static const bad_case_t cases[] = {
    {"CL and TE",
     "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "bad_request"},
    {"two different CLs",
     "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     "Content-Length: 6\r\n\r\nhello!",
     400, "bad_request"},
    {"non-numeric CL", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400,
     "bad_request"},
    {"TE gzip only", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", 400,
     "bad_request"},
    {"TE gzip, chunked",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     "0\r\n\r\n",
     501, "not_implemented"},
    {"bad chunk size",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "zz\r\nhello\r\n0\r\n\r\n",
     400, "bad_request"},
    {"bad chunk extension",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;e\x01x=1\r\nhello\r\n0\r\n\r\n",
     400, "bad_request"},
    {"chunk data without its CRLF",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhelloXX0\r\n\r\n",
     400, "bad_request"},
    {"chunked body over max_request_body, one chunk", NULL, 413, "body_too_large"},
    {"chunked body over max_request_body, many chunks", NULL, 413, "body_too_large"},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request"},
    {"space before colon", "GET / HTTP/1.1\r\nHost: t\r\nX-A : a\r\n\r\n", 400, "bad_request"},
    {"bare CR", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400, "bad_request"},
    {"missing Host in 1.1", "GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400, "bad_request"},
    {"body over max_request_body", NULL, 413, "body_too_large"},
    {"oversized request line", NULL, 431, "headers_too_large"},
    {"oversized header block", NULL, 431, "headers_too_large"},
    {"too many headers", NULL, 431, "headers_too_large"},
};

/* Builds the requests too big to spell out (malloc'd). */
static char *build_big(const char *name)
{
    size_t cap = 64 * 1024, n = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    if (strncmp(name, "chunked body over", 17) == 0) {
        /* 2 KiB against the 1 KiB limit: one chunk of 2048, or four of 512. */
        bool one = strstr(name, "one chunk") != NULL;
        size_t chunk = one ? 2048 : 512;
        n = (size_t)snprintf(s, cap,
                             "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < (one ? 1 : 4); i++) {
            n += (size_t)snprintf(s + n, cap - n, "%zx\r\n", chunk);
            memset(s + n, 'c', chunk);
            n += chunk;
            n += (size_t)snprintf(s + n, cap - n, "\r\n");
        }
        n += (size_t)snprintf(s + n, cap - n, "0\r\n\r\n");
    } else if (strcmp(name, "body over max_request_body") == 0) {
        n = (size_t)snprintf(s, cap, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n");
        memset(s + n, 'b', 2048);
        n += 2048;
    } else if (strcmp(name, "oversized request line") == 0) {
        n = (size_t)snprintf(s, cap, "GET /");
        memset(s + n, 'a', 10 * 1024);
        n += 10 * 1024;
        n += (size_t)snprintf(s + n, cap - n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    } else if (strcmp(name, "oversized header block") == 0) {
        /* 10 headers of 1 KiB: over 8 KiB, under 20 headers. */
        n = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\nHost: t\r\n");
        for (int i = 0; i < 10; i++) {
            n += (size_t)snprintf(s + n, cap - n, "x-big-%d: ", i);
            memset(s + n, 'v', 1024);
            n += 1024;
            n += (size_t)snprintf(s + n, cap - n, "\r\n");
        }
        n += (size_t)snprintf(s + n, cap - n, "\r\n");
    } else {
        n = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\nHost: t\r\n");
        for (int i = 0; i < 30; i++) {
            n += (size_t)snprintf(s + n, cap - n, "x-h-%d: v\r\n", i);
        }
        n += (size_t)snprintf(s + n, cap - n, "\r\n");
    }
    s[n] = '\0';
    return s;
}

START_TEST(test_malformed_request_refused_and_not_forwarded)
{
    const bad_case_t *bc = &cases[_i];
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "mal");
    th_remora_start_simple(&r, e.port,
                           "    max_header_bytes: 8KiB\n"
                           "    max_headers: 20\n"
                           "    max_request_body: 1KiB\n",
                           NULL, NULL);
    long before = th_echo_seq(e.port);
    ck_assert_int_gt(before, 0);

    char *raw = bc->raw != NULL ? strdup(bc->raw) : build_big(bc->name);
    it_open(&c, r.port);
    it_send(&c, raw, strlen(raw));
    free(raw);
    int rc = th_http_read_response(&c, &resp, false);
    ck_assert_msg(rc == 0, "%s: no response (%s)", bc->name, strerror(-rc));
    const char *reason = th_resp_header(&resp, "x-remora-reason");
    ck_assert_msg(resp.status == bc->status && reason != NULL && strcmp(reason, bc->reason) == 0,
                  "%s: got %d %s, want %d %s", bc->name, resp.status, reason ? reason : "-",
                  bc->status, bc->reason);
    th_resp_free(&resp);
    /* Closed with a FIN (read returns 0), not a reset that could eat the answer. */
    rc = th_conn_wait_closed(&c, th_slack_ms(2000), NULL);
    ck_assert_msg(rc == 0, "%s: after the error the connection was %s", bc->name,
                  rc == 1 ? "reset, not closed" : "left open");
    th_conn_close(&c);

    long after = th_echo_seq(e.port);
    ck_assert_msg(after == before + 1, "%s: the upstream saw %ld request(s)", bc->name,
                  after - before - 1);
    /* The listener still serves well-formed requests. */
    it_get(r.port, "/ok", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

/* Sends one chunk of `size` bytes of 'c' on `c`. */
static void send_chunk(th_conn_t *c, size_t size)
{
    char line[32], data[4096];
    ck_assert_uint_le(size, sizeof(data));
    int n = snprintf(line, sizeof(line), "%zx\r\n", size);
    it_send(c, line, (size_t)n);
    memset(data, 'c', size);
    it_send(c, data, size);
    it_send(c, "\r\n", 2);
}

/*
 * An error further into a chunked body than came with the head: the head
 * and first chunk have gone upstream by then. The client still gets its
 * status and a clean close (the upstream connection is reset, so the
 * upstream never sees the request end), and remora goes on serving.
 */
START_TEST(test_malformed_chunked_error_mid_stream_answered_and_closed)
{
    bool too_large = _i == 1;
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "mid");
    th_remora_start_simple(&r, e.port, "    max_request_body: 1KiB\n", NULL, NULL);
    long before = th_echo_seq(e.port);
    it_open(&c, r.port);
    const char *head = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    it_send(&c, head, strlen(head));
    send_chunk(&c, 512);
    th_sleep_ms(th_slack_ms(100)); /* the head and first chunk go upstream meanwhile */
    if (too_large) {
        send_chunk(&c, 512);
        send_chunk(&c, 512); /* 1.5 KiB against 1 KiB */
    } else {
        it_send(&c, "zz\r\n", 4);
    }
    int rc = th_http_read_response(&c, &resp, false);
    ck_assert_msg(rc == 0, "no response (%s)", strerror(-rc));
    if (too_large) {
        it_assert_local_reply(&resp, 413, "body_too_large");
    } else {
        it_assert_local_reply(&resp, 400, "bad_request");
    }
    th_resp_free(&resp);
    rc = th_conn_wait_closed(&c, th_slack_ms(3000), NULL);
    ck_assert_msg(rc == 0, "after the error the connection was %s",
                  rc == 1 ? "reset, not closed" : "left open");
    th_conn_close(&c);
    /* The upstream had the head (the error was found mid-stream), and no more. */
    long after = th_echo_seq(e.port);
    ck_assert_msg(after == before + 2, "the upstream saw %ld requests, want 1", after - before - 1);
    it_get(r.port, "/ok", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

/*
 * An answer given before a large request body was read (here a 404 for a
 * 512 KiB upload) reaches the client whole and the connection ends in a
 * FIN: remora reads and drops the rest of the body before closing, since
 * closing with unread input would reset the connection and could destroy
 * the answer.
 */
#define UNREAD_BODY (512 * 1024)

START_TEST(test_malformed_answer_to_an_unread_body_is_not_lost)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "unread");
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: only\n"
                    "        match: { path_prefix: /only }\n"
                    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n",
                    e.port);
    it_open(&c, r.port);
    char head[128];
    int n = snprintf(head, sizeof(head),
                     "POST /elsewhere HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: %d\r\n\r\n",
                     UNREAD_BODY);
    it_send(&c, head, (size_t)n);
    char *body = malloc(UNREAD_BODY);
    ck_assert_ptr_nonnull(body);
    memset(body, 'u', UNREAD_BODY);
    it_send(&c, body, UNREAD_BODY);
    free(body);
    int rc = th_http_read_response(&c, &resp, false);
    ck_assert_msg(rc == 0, "no response (%s)", strerror(-rc));
    it_assert_local_reply(&resp, 404, "no_route");
    th_resp_free(&resp);
    rc = th_conn_wait_closed(&c, th_slack_ms(3000), NULL);
    ck_assert_msg(rc == 0, "after the answer the connection was %s",
                  rc == 1 ? "reset, not closed" : "left open");
    th_conn_close(&c);
}

END_TEST

Suite *suite_integration_malformed(void)
{
    Suite *s = suite_create("integration/malformed");
    TCase *tc = it_tcase(s, "refused", 20);
    tcase_add_loop_test(tc, test_malformed_request_refused_and_not_forwarded, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    tc = it_tcase(s, "streamed", 20);
    tcase_add_loop_test(tc, test_malformed_chunked_error_mid_stream_answered_and_closed, 0, 2);
    tcase_add_test(tc, test_malformed_answer_to_an_unread_body_is_not_lost);
    return s;
}
