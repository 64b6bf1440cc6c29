/* SPDX-License-Identifier: MIT */
/*
 * test_upstream.c - integration/upstream: upstream failures as the client
 * sees them (refused connect 502, route timeout 504, a reset mid-body never
 * looks complete), retries on connect failures and resets, endpoints given
 * by name, and the listener's own limits: read timeout on a trickled head,
 * idle and write timeouts, max_connections.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

START_TEST(test_upstream_connect_refused_is_502)
{
    th_remora_t r;
    th_resp_t resp;
    /* Nothing listens on a port that was just free. */
    th_remora_start_simple(&r, th_free_port(), NULL, NULL, "    connect_timeout: 1s\n");
    int64_t t0 = th_now_ms();
    it_get(r.port, "/", NULL, &resp);
    it_assert_local_reply(&resp, 502, "upstream_connect");
    th_resp_free(&resp);
    ck_assert_int_lt(th_now_ms() - t0, th_slack_ms(2000));
}

END_TEST

START_TEST(test_upstream_route_timeout_is_504)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "late");
    th_remora_start_simple(&r, e.port, NULL, "        timeout: 300ms\n", NULL);
    int64_t t0 = th_now_ms();
    it_get(r.port, "/", "x-echo-delay: 2s\r\n", &resp);
    int64_t ms = th_now_ms() - t0;
    it_assert_local_reply(&resp, 504, "upstream_timeout");
    th_resp_free(&resp);
    ck_assert_msg(ms >= 250 && ms < th_slack_ms(1000), "504 after %lld ms, want ~300",
                  (long long)ms);
}

END_TEST

/*
 * The upstream resets after 1,000 of 100,000 body bytes. Whatever the
 * upstream's framing and the client's version, the client must not get a
 * response that looks whole: a short Content-Length body or a chunked one
 * without its last chunk may end in a FIN or a reset; a body read to close
 * (what HTTP/1.0 clients get for chunked or close-delimited answers) must
 * end in a reset, since a FIN is how such a body ends when it is complete.
 */
typedef struct reset_case {
    const char *name;
    const char *version; /* of the client's request */
    const char *framing; /* extra x-echo-* header line */
    bool must_reset;
} reset_case_t;

static const reset_case_t reset_cases[] = {
    {"1.1 length", "HTTP/1.1", "", false},
    {"1.1 chunked", "HTTP/1.1", "x-echo-chunked: 1\r\n", false},
    {"1.1 close-delimited", "HTTP/1.1", "x-echo-close-delimited: 1\r\n", false},
    {"1.0 length", "HTTP/1.0", "", false},
    {"1.0 chunked", "HTTP/1.0", "x-echo-chunked: 1\r\n", true},
    {"1.0 close-delimited", "HTTP/1.0", "x-echo-close-delimited: 1\r\n", true},
};

START_TEST(test_upstream_reset_mid_body_never_looks_complete)
{
    const reset_case_t *rc_ = &reset_cases[_i];
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "reset");
    th_remora_start_simple(&r, e.port, NULL, NULL, NULL);
    it_open(&c, r.port);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /r %s\r\nHost: test\r\nx-echo-body-size: 100000\r\n%s"
             "x-echo-reset-after: 1000\r\n\r\n",
             rc_->version, rc_->framing);
    it_send(&c, req, strlen(req));
    int rc = th_http_read_head(&c, &resp, IT_IO_MS);
    if (rc == -ECONNRESET) {
        th_conn_close(&c); /* reset before the head was read: nothing looked whole */
    } else {
        ck_assert_msg(rc == 0, "%s: head: %s", rc_->name, strerror(-rc));
        if (resp.status == 502) {
            /* Allowed only if remora had sent nothing yet: an honest error, not a short body. */
            it_assert_header(&resp, "x-remora-reason", "upstream_reset");
        } else {
            ck_assert_int_eq(resp.status, 200);
            rc = th_http_read_body(&c, &resp, false, NULL, NULL, 1 << 20, IT_IO_MS);
            ck_assert_msg(rc == -ECONNRESET || (rc == -ENODATA && !rc_->must_reset),
                          "%s: body ended with %s after %llu bytes: want the connection %s",
                          rc_->name, rc == 0 ? "success" : strerror(-rc),
                          (unsigned long long)resp.body_bytes,
                          rc_->must_reset ? "reset" : "closed early");
            ck_assert_int_lt(resp.body_bytes, 100000);
            ck_assert_int_eq(th_pattern_find_mismatch(resp.body, 0, resp.body_len), -1);
        }
        th_resp_free(&resp);
        th_conn_close(&c);
    }
    it_get(r.port, "/after", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_upstream_endpoint_by_name)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "named");
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: r\n"
                    "        match: { path_prefix: / }\n"
                    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [localhost:%d]\n",
                    e.port);
    it_get(r.port, "/", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    it_assert_header(&resp, "x-echo-name", "named");
    th_resp_free(&resp);
}

END_TEST

/* A cluster whose first endpoint refuses: `retries` on connect_failure hides it. */
static int count_ok(int port, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        th_resp_t resp;
        it_get(port, "/", NULL, &resp);
        ok += resp.status == 200;
        th_resp_free(&resp);
    }
    return ok;
}

static void start_half_dead_on(th_remora_t *r, int live_port, int dead_port, int attempts,
                               const char *on)
{
    th_remora_start(r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: r\n"
                    "        match: { path_prefix: / }\n"
                    "        retries: { attempts: %d, on: [%s] }\n"
                    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d, 127.0.0.1:%d]\n",
                    attempts, on, dead_port, live_port);
}

static void start_half_dead(th_remora_t *r, int live_port, int dead_port, int attempts)
{
    start_half_dead_on(r, live_port, dead_port, attempts, "connect_failure");
}

START_TEST(test_upstream_retries_connect_failure_on_another_endpoint)
{
    th_echo_t e;
    th_remora_t with, without;
    th_echo_start(&e, "live");
    int dead = th_free_port();
    /* Round-robin sends every other request to the dead endpoint. */
    start_half_dead(&without, e.port, dead, 0);
    int ok = count_ok(without.port, 20);
    ck_assert_msg(ok >= 8 && ok <= 12, "without retries %d of 20 succeeded, want about half", ok);
    start_half_dead(&with, e.port, dead, 1);
    ck_assert_int_eq(count_ok(with.port, 20), 20);
}

END_TEST

/* An upstream that accepts, waits for the request, and resets without a byte of answer. */
typedef struct resetter {
    int fd, port;
    atomic_bool stop;
    pthread_t thread;
} resetter_t;

static void *resetter_main(void *arg)
{
    resetter_t *rs = arg;
    int64_t end = th_now_ms() + 30000;
    while (!atomic_load(&rs->stop) && th_now_ms() < end) {
        struct pollfd p = {.fd = rs->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        int c = accept(rs->fd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        struct pollfd q = {.fd = c, .events = POLLIN};
        (void)poll(&q, 1, 1000); /* the request has arrived */
        struct linger now = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(c, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
        close(c);
    }
    return NULL;
}

static void resetter_start(resetter_t *rs)
{
    rs->fd = th_bind_loopback(&rs->port);
    ck_assert_int_eq(listen(rs->fd, 64), 0);
    atomic_init(&rs->stop, false);
    ck_assert_int_eq(pthread_create(&rs->thread, NULL, resetter_main, rs), 0);
}

static void resetter_stop(resetter_t *rs)
{
    atomic_store(&rs->stop, true);
    pthread_join(rs->thread, NULL);
    close(rs->fd);
}

/*
 * retries on reset: an endpoint that resets before answering gets every
 * other request; with `retries: { attempts: 1, on: [reset] }` the request is
 * sent again to the other endpoint and all succeed (GET: idempotent).
 */
START_TEST(test_upstream_retries_reset_on_another_endpoint)
{
    th_echo_t e;
    th_remora_t with, without;
    resetter_t rs;
    th_echo_start(&e, "live");
    resetter_start(&rs);
    start_half_dead_on(&without, e.port, rs.port, 0, "reset");
    int ok = count_ok(without.port, 20);
    start_half_dead_on(&with, e.port, rs.port, 1, "reset");
    int ok_with = count_ok(with.port, 20);
    resetter_stop(&rs);
    ck_assert_msg(ok >= 8 && ok <= 12, "without retries %d of 20 succeeded, want about half", ok);
    ck_assert_int_eq(ok_with, 20);
}

END_TEST

START_TEST(test_upstream_read_timeout_cuts_trickled_head)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_echo_start(&e, "trickle");
    th_remora_start_simple(&r, e.port, "    read_timeout: 1s\n", NULL, NULL);
    it_open(&c, r.port);
    int64_t t0 = th_now_ms();
    it_send(&c, "GET / HTTP/1.1\r\nHo", 18);
    /*
     * One byte every 500 ms: steady progress, so only a deadline on the
     * whole head (not a per-read timeout) stops it.
     */
    int64_t closed_ms = -1, next_byte = t0 + 500;
    while (th_now_ms() - t0 < 6000) {
        if (th_conn_readable(&c, 50)) {
            /* EOF or reset: remora may close while our next byte is in flight. */
            ck_assert_int_ge(th_conn_wait_closed(&c, th_slack_ms(2000), NULL), 0);
            closed_ms = th_now_ms() - t0;
            break;
        }
        if (th_now_ms() >= next_byte) {
            if (th_conn_send(&c, "x", 1, 1000) != 0) {
                closed_ms = th_now_ms() - t0;
                break;
            }
            next_byte += 500;
        }
    }
    th_conn_close(&c);
    ck_assert_msg(closed_ms >= 0, "a head trickled for 6 s was never cut off");
    ck_assert_msg(closed_ms < 1000 + th_slack_ms(1500), "cut off after %lld ms, read_timeout 1s",
                  (long long)closed_ms);
}

END_TEST

START_TEST(test_upstream_idle_timeout_closes_keepalive)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "idle");
    th_remora_start_simple(&r, e.port, "    idle_timeout: 1s\n    read_timeout: 8s\n", NULL, NULL);
    it_open(&c, r.port);
    it_roundtrip(&c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert(!th_resp_header_has_token(&resp, "connection", "close"));
    th_resp_free(&resp);
    /* Waits past read_timeout (8s), so a wrong timer shows in the message. */
    int64_t t0 = th_now_ms();
    ck_assert_msg(th_conn_wait_closed(&c, th_slack_ms(9000), NULL) == 0,
                  "idle keep-alive connection still open after 9 s");
    int64_t ms = th_now_ms() - t0;
    th_conn_close(&c);
    ck_assert_msg(ms >= 500 && ms < 1000 + th_slack_ms(1500),
                  "closed after %lld ms; idle_timeout 1s, read_timeout 8s", (long long)ms);
}

END_TEST

/*
 * write_timeout: a client that stops reading a long download is cut off
 * once a write has waited that long, instead of holding the connection,
 * its upstream connection and a G forever; remora goes on serving.
 */
#define STALLED_BODY (256ull << 20)

START_TEST(test_upstream_write_timeout_cuts_a_client_that_stopped_reading)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    th_echo_start(&e, "stall");
    th_remora_start_simple(&r, e.port, "    write_timeout: 1s\n", NULL, NULL);
    it_open(&c, r.port);
    char req[256];
    snprintf(req, sizeof(req), "GET /big HTTP/1.1\r\nHost: test\r\nx-echo-body-size: %llu\r\n\r\n",
             STALLED_BODY);
    it_send(&c, req, strlen(req));
    th_sleep_ms(1000 + th_slack_ms(2000)); /* not reading: remora's writes stall */
    size_t got = 0;
    int rc = th_conn_wait_closed(&c, th_slack_ms(5000), &got);
    th_conn_close(&c);
    ck_assert_msg(rc != -ETIMEDOUT, "connection still open after the stall (%zu bytes read)", got);
    ck_assert_msg(got < STALLED_BODY, "the whole body arrived (%zu bytes): no write timeout", got);
    it_get(r.port, "/after", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_upstream_listener_max_connections)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c[3];
    th_resp_t resp;
    const char *req = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    th_echo_start(&e, "maxc");
    th_remora_start_simple(&r, e.port, "    max_connections: 2\n", NULL, NULL);
    for (int i = 0; i < 2; i++) {
        it_open(&c[i], r.port);
        it_roundtrip(&c[i], req, &resp);
        ck_assert_int_eq(resp.status, 200);
        th_resp_free(&resp);
    }
    /* The third waits (the kernel completes the handshake; remora does not serve it). */
    it_open(&c[2], r.port);
    it_send(&c[2], req, strlen(req));
    ck_assert_msg(!th_conn_readable(&c[2], 500), "a third connection was answered or closed");
    for (int i = 0; i < 2; i++) {
        it_roundtrip(&c[i], req, &resp);
        ck_assert_int_eq(resp.status, 200);
        th_resp_free(&resp);
    }
    ck_assert(!th_conn_readable(&c[2], 100));
    th_conn_close(&c[0]);
    ck_assert_int_eq(th_http_read_response(&c[2], &resp, false), 0);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    th_conn_close(&c[1]);
    th_conn_close(&c[2]);
}

END_TEST

Suite *suite_integration_upstream(void)
{
    Suite *s = suite_create("integration/upstream");
    TCase *tc = it_tcase(s, "failures", 20);
    tcase_add_test(tc, test_upstream_connect_refused_is_502);
    tcase_add_test(tc, test_upstream_route_timeout_is_504);
    tcase_add_loop_test(tc, test_upstream_reset_mid_body_never_looks_complete, 0,
                        (int)(sizeof(reset_cases) / sizeof(reset_cases[0])));
    tcase_add_test(tc, test_upstream_endpoint_by_name);
    tcase_add_test(tc, test_upstream_retries_connect_failure_on_another_endpoint);
    tcase_add_test(tc, test_upstream_retries_reset_on_another_endpoint);
    tc = it_tcase(s, "listener", 20);
    tcase_add_test(tc, test_upstream_read_timeout_cuts_trickled_head);
    tcase_add_test(tc, test_upstream_idle_timeout_closes_keepalive);
    tcase_add_test(tc, test_upstream_write_timeout_cuts_a_client_that_stopped_reading);
    tcase_add_test(tc, test_upstream_listener_max_connections);
    return s;
}
