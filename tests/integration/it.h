/* SPDX-License-Identifier: MIT */
/*
 * it.h - asserting shorthands shared by the integration suites, on top of
 * tests/support/th_proc.h and th_http.h: open a connection, do a round trip,
 * check a header, each failing the test with a readable message.
 */
#ifndef TH_INTEGRATION_IT_H
#define TH_INTEGRATION_IT_H

#include <string.h>

#include <check.h>

#include "tests/support/th_http.h"
#include "tests/support/th_proc.h"

/** One bounded I/O step of a test (5 s, widened under sanitizers). */
#define IT_IO_MS th_slack_ms(TH_HTTP_TIMEOUT_MS)

/** Opens a connection to 127.0.0.1:`port` or fails the test. */
static inline void it_open(th_conn_t *c, int port)
{
    int rc = th_conn_open(c, port, IT_IO_MS);
    ck_assert_msg(rc == 0, "connect to port %d: %s", port, strerror(-rc));
}

/** Sends `raw` on `c` and reads one whole response into `r`, or fails the test. */
static inline void it_roundtrip(th_conn_t *c, const char *raw, th_resp_t *r)
{
    int rc = th_http_roundtrip(c, raw, r);
    ck_assert_msg(rc == 0, "request %.40s...: %s (status %d, %llu body bytes)", raw, strerror(-rc),
                  r->status, (unsigned long long)r->body_bytes);
}

/** GET `path` (extra header lines `extra`) over a new connection, or fails the test. */
static inline void it_get(int port, const char *path, const char *extra, th_resp_t *r)
{
    int rc = th_http_get(port, path, extra, r);
    ck_assert_msg(rc == 0, "GET %s on port %d: %s (status %d)", path, port, strerror(-rc),
                  r->status);
}

/** Sends raw bytes on `c` or fails the test. */
static inline void it_send(th_conn_t *c, const void *data, size_t n)
{
    int rc = th_conn_send(c, data, n, IT_IO_MS);
    ck_assert_msg(rc == 0, "send %zu bytes: %s", n, strerror(-rc));
}

/** Asserts that response `r` has header `name` equal to `want`. */
#define it_assert_header(r, name, want)                                                            \
    do {                                                                                           \
        const char *it_v_ = th_resp_header((r), (name));                                           \
        ck_assert_msg(it_v_ != NULL && strcmp(it_v_, (want)) == 0,                                 \
                      "header %s: got \"%s\", want \"%s\" (status %d)", (name),                    \
                      it_v_ ? it_v_ : "(none)", (want), (r)->status);                              \
    } while (0)

/** Asserts a proxy-generated response: `status`, x-remora-reason `reason`, body "reason\n". */
#define it_assert_local_reply(r, want_status, reason)                                              \
    do {                                                                                           \
        ck_assert_int_eq((r)->status, (want_status));                                              \
        it_assert_header((r), "x-remora-reason", (reason));                                        \
        ck_assert_msg((r)->body != NULL && strcmp((r)->body, reason "\n") == 0,                    \
                      "body \"%s\", want \"%s\\n\"", (r)->body ? (r)->body : "", reason);          \
    } while (0)

/** Parses the /echo JSON of response `r` into `q`, or fails the test. */
static inline void it_echo_req(const th_resp_t *r, th_echo_req_t *q)
{
    ck_assert_int_eq(r->status, 200);
    ck_assert_msg(th_echo_req_parse(q, r->body) == 0, "not /echo JSON: %.200s",
                  r->body ? r->body : "(no body)");
}

/** Adds a test case `name` with the checked teardown that stops every child. */
static inline TCase *it_tcase(Suite *s, const char *name, double timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, NULL, th_proc_teardown);
    tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    return tc;
}

#endif /* TH_INTEGRATION_IT_H */
