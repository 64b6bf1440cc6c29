/* SPDX-License-Identifier: MIT */
/*
 * test_drain.c - integration/drain: SIGTERM and POST /drain stop accepting,
 * report not-ready, let an in-flight request finish, close kept-alive
 * connections with `Connection: close` on their next response, and exit 0
 * within drain_timeout; a request whose head is still arriving counts as in
 * flight, and one that outlives drain_timeout is cut off at it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

#define DRAIN_TIMEOUT_MS 5000

/* Returns the status of GET /ready on the admin port, or a negative errno. */
static int ready_status(th_remora_t *r)
{
    th_resp_t resp;
    int rc = th_http_get(r->admin_port, "/ready", NULL, &resp);
    int status = rc == 0 ? resp.status : rc;
    th_resp_free(&resp);
    return status;
}

/*
 * Waits (bounded) until remora-echo has received one request more than the
 * `probes` we made since `base`: the slow request is then in flight upstream.
 */
static void wait_upstream_received(int echo_port, long base)
{
    int64_t end = th_now_ms() + 400;
    for (long k = 1; k < 100 && th_now_ms() < end; k++) {
        if (th_echo_seq(echo_port) >= base + k + 1) {
            return;
        }
        th_sleep_ms(10);
    }
    /* remora-echo may count a request only when answering: go on, it is still in flight. */
}

/* Returns true once a new connection to `port` is refused or closed unanswered. */
static bool new_connections_refused(int port)
{
    int64_t end = th_now_ms() + th_slack_ms(1000);
    while (th_now_ms() < end) {
        th_conn_t c;
        th_resp_t resp;
        if (th_conn_open(&c, port, 300) != 0) {
            return true;
        }
        int rc = th_http_roundtrip(&c, "GET /new HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
        th_resp_free(&resp);
        th_conn_close(&c);
        if (rc == -ENODATA || rc == -ECONNRESET || rc == -EPIPE) {
            return true;
        }
        th_sleep_ms(20);
    }
    return false;
}

/* Starts remora with drain_timeout `drain` in front of `e`. */
static void start_drainable(th_remora_t *r, const th_echo_t *e, const char *drain)
{
    th_remora_start(r,
                    "drain_timeout: %s\n"
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: r\n"
                    "        match: { path_prefix: / }\n"
                    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n",
                    drain, e->port);
}

/* Waits for remora to exit after a drain; fails unless it exited 0. */
static void assert_exit_0(th_remora_t *r, int64_t within_ms)
{
    ck_assert_msg(th_proc_wait(&r->proc, 0, within_ms), "remora still running after %lld ms",
                  (long long)within_ms);
    ck_assert_msg(WIFEXITED(r->proc.status) && WEXITSTATUS(r->proc.status) == 0,
                  "remora exit status 0x%x, want exit 0", r->proc.status);
}

static void drain_and_check(bool via_admin)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t slow, kept;
    th_resp_t resp;
    th_echo_start(&e, "drain");
    start_drainable(&r, &e, "5s");

    it_open(&kept, r.port);
    it_roundtrip(&kept, "GET /kept HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);

    long base = th_echo_seq(e.port);
    it_open(&slow, r.port);
    const char *slow_req = "GET /slow HTTP/1.1\r\nHost: test\r\nx-echo-delay: 1500ms\r\n\r\n";
    int64_t t_slow = th_now_ms();
    it_send(&slow, slow_req, strlen(slow_req));
    wait_upstream_received(e.port, base);

    int64_t t_drain = th_now_ms();
    if (via_admin) {
        th_resp_t d;
        int rc = th_http_exchange(
            r.admin_port, "POST /drain HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n", &d);
        ck_assert_msg(rc == 0 && d.status / 100 == 2, "POST /drain: rc %d status %d", rc, d.status);
        th_resp_free(&d);
    } else {
        ck_assert_int_eq(kill(r.proc.pid, SIGTERM), 0);
    }
    /* Draining shows as not ready (bounded wait: the signal is asynchronous). */
    int ready = 0;
    for (int i = 0; i < 100; i++) {
        ready = ready_status(&r);
        if (ready == 503) {
            break;
        }
        th_sleep_ms(10);
    }
    ck_assert_msg(ready == 503, "GET /ready while draining: %d, want 503", ready);

    /* The kept-alive connection gets one more response, marked close, then EOF. */
    it_roundtrip(&kept, "GET /kept2 HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_msg(th_resp_header_has_token(&resp, "connection", "close"),
                  "response on a kept-alive connection while draining lacks Connection: close");
    th_resp_free(&resp);
    ck_assert_int_eq(th_conn_wait_closed(&kept, th_slack_ms(2000), NULL), 0);
    th_conn_close(&kept);

    ck_assert_msg(new_connections_refused(r.port), "new connections still served while draining");

    /* The in-flight request completes. */
    int rc = th_http_read_response(&slow, &resp, false);
    ck_assert_msg(rc == 0, "in-flight request: %s", strerror(-rc));
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "hello from drain\n");
    ck_assert_int_ge(th_now_ms() - t_slow, 1400);
    th_resp_free(&resp);
    th_conn_close(&slow);

    ck_assert_msg(th_proc_wait(&r.proc, 0, DRAIN_TIMEOUT_MS + th_slack_ms(1000)),
                  "remora still running %d ms after the drain began", DRAIN_TIMEOUT_MS);
    ck_assert_msg(WIFEXITED(r.proc.status) && WEXITSTATUS(r.proc.status) == 0,
                  "remora exit status 0x%x, want exit 0", r.proc.status);
    ck_assert_int_lt(th_now_ms() - t_drain, DRAIN_TIMEOUT_MS + th_slack_ms(1000));
}

START_TEST(test_drain_on_sigterm)
{
    drain_and_check(false);
}

END_TEST

START_TEST(test_drain_on_admin_post)
{
    drain_and_check(true);
}

END_TEST

/*
 * A request whose head is still arriving when the drain begins is in flight
 * too: it is answered (Connection: close) before remora exits.
 */
START_TEST(test_drain_waits_for_a_head_still_arriving)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "half");
    start_drainable(&r, &e, "5s");
    it_open(&c, r.port);
    const char *first = "GET /half HTTP/1.1\r\nHost: test\r\n";
    it_send(&c, first, strlen(first));
    th_sleep_ms(th_slack_ms(100)); /* remora has the first bytes */
    ck_assert_int_eq(kill(r.proc.pid, SIGTERM), 0);
    th_sleep_ms(th_slack_ms(300)); /* the drain has begun */
    it_send(&c, "\r\n", 2);
    int rc = th_http_read_response(&c, &resp, false);
    ck_assert_msg(rc == 0, "the request begun before the drain: %s", strerror(-rc));
    ck_assert_int_eq(resp.status, 200);
    ck_assert(th_resp_header_has_token(&resp, "connection", "close"));
    th_resp_free(&resp);
    th_conn_close(&c);
    assert_exit_0(&r, th_slack_ms(3000));
}

END_TEST

/*
 * drain_timeout bounds the drain: a request still in flight when it passes
 * is cut off, and remora exits 0 at the deadline, not when the request ends.
 */
START_TEST(test_drain_deadline_exits_0_with_a_request_in_flight)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_echo_start(&e, "late");
    start_drainable(&r, &e, "500ms");
    it_open(&c, r.port);
    const char *req = "GET /late HTTP/1.1\r\nHost: test\r\nx-echo-delay: 10s\r\n\r\n";
    it_send(&c, req, strlen(req));
    th_sleep_ms(th_slack_ms(200)); /* in flight upstream */
    int64_t t0 = th_now_ms();
    ck_assert_int_eq(kill(r.proc.pid, SIGTERM), 0);
    assert_exit_0(&r, th_slack_ms(3000));
    int64_t ms = th_now_ms() - t0;
    ck_assert_msg(ms >= 400, "exited %lld ms after SIGTERM, before drain_timeout 500ms",
                  (long long)ms);
    /* The client sees its connection end, never a response that looks whole. */
    th_resp_t resp;
    int rc = th_http_read_response(&c, &resp, false);
    ck_assert_msg(rc != 0, "got a response (%d) to a request cut off by the drain", resp.status);
    th_resp_free(&resp);
    th_conn_close(&c);
}

END_TEST

Suite *suite_integration_drain(void)
{
    Suite *s = suite_create("integration/drain");
    TCase *tc = it_tcase(s, "drain", 20);
    tcase_add_test(tc, test_drain_on_sigterm);
    tcase_add_test(tc, test_drain_on_admin_post);
    tcase_add_test(tc, test_drain_waits_for_a_head_still_arriving);
    tcase_add_test(tc, test_drain_deadline_exits_0_with_a_request_in_flight);
    return s;
}
