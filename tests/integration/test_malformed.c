/* SPDX-License-Identifier: MIT */
/*
 * test_malformed.c - integration/malformed: ambiguous or malformed requests
 * get their status and x-remora-reason, the connection is closed after the
 * answer, and - when the head itself is bad - remora-echo never saw the
 * request (its x-echo-seq, read directly, moved only by our own probes).
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
    bool head_ok; /* the head was valid: the upstream may have seen it */
} bad_case_t;

/* The listener's limits below: 8 KiB head, 20 headers, 1 KiB body. */
static const bad_case_t cases[] = {
    {"CL and TE",
     "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "bad_request", false},
    {"two different CLs",
     "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     "Content-Length: 6\r\n\r\nhello!",
     400, "bad_request", false},
    {"non-numeric CL", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400,
     "bad_request", false},
    {"TE gzip only", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", 400,
     "bad_request", false},
    {"TE gzip, chunked",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     "0\r\n\r\n",
     501, "not_implemented", false},
    {"bad chunk size",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "zz\r\nhello\r\n0\r\n\r\n",
     400, "bad_request", true},
    {"bad chunk extension",
     "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;e\x01x=1\r\nhello\r\n0\r\n\r\n",
     400, "bad_request", true},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request", false},
    {"space before colon", "GET / HTTP/1.1\r\nHost: t\r\nX-A : a\r\n\r\n", 400, "bad_request",
     false},
    {"bare CR", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400, "bad_request", false},
    {"missing Host in 1.1", "GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400, "bad_request", false},
    {"body over max_request_body", NULL, 413, "body_too_large", false},
    {"oversized request line", NULL, 431, "headers_too_large", false},
    {"oversized header block", NULL, 431, "headers_too_large", false},
    {"too many headers", NULL, 431, "headers_too_large", false},
};

/* Builds the requests too big to spell out (malloc'd). */
static char *build_big(const char *name)
{
    size_t cap = 64 * 1024, n = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    if (strcmp(name, "body over max_request_body") == 0) {
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

    if (!bc->head_ok) {
        long after = th_echo_seq(e.port);
        ck_assert_msg(after == before + 1, "%s: the upstream saw %ld request(s)", bc->name,
                      after - before - 1);
    }
    /* The listener still serves well-formed requests. */
    it_get(r.port, "/ok", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

Suite *suite_integration_malformed(void)
{
    Suite *s = suite_create("integration/malformed");
    TCase *tc = it_tcase(s, "refused", 20);
    tcase_add_loop_test(tc, test_malformed_request_refused_and_not_forwarded, 0,
                        (int)(sizeof(cases) / sizeof(cases[0])));
    return s;
}
