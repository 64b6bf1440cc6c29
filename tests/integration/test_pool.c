/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c - integration/pool: the upstream connection pool's limits.
 * With max_connections 1 and a bounded pending queue, extra requests get a
 * fast 503 overloaded; with pending_timeout 0 the second request fails at
 * once, with 200ms after 200 ms; connections are kept alive and reused, but
 * an idle pooled connection the upstream closed is not reused.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

#define MAX_FIRE 8

typedef struct fired {
    int status[MAX_FIRE];
    char reason[MAX_FIRE][32];
    int64_t ms[MAX_FIRE]; /* from the last send to the response's first byte */
} fired_t;

/* Sends `raw` on `n` new connections at once, then collects each response as it arrives. */
static void fire(int port, int n, const char *raw, fired_t *f)
{
    th_conn_t c[MAX_FIRE];
    bool done[MAX_FIRE] = {false};
    ck_assert_int_le(n, MAX_FIRE);
    for (int i = 0; i < n; i++) {
        it_open(&c[i], port);
    }
    for (int i = 0; i < n; i++) {
        it_send(&c[i], raw, strlen(raw));
    }
    int64_t t0 = th_now_ms(), deadline = t0 + th_slack_ms(8000);
    for (int left = n; left > 0;) {
        struct pollfd pfd[MAX_FIRE];
        int idx[MAX_FIRE], m = 0;
        for (int i = 0; i < n; i++) {
            if (!done[i]) {
                pfd[m] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
                idx[m++] = i;
            }
        }
        int64_t wait = deadline - th_now_ms();
        ck_assert_msg(wait > 0 && poll(pfd, (nfds_t)m, (int)wait) > 0,
                      "%d of %d responses missing after 8 s", left, n);
        int64_t now = th_now_ms();
        for (int j = 0; j < m; j++) {
            if (pfd[j].revents == 0) {
                continue;
            }
            int i = idx[j];
            th_resp_t resp;
            int rc = th_http_read_response(&c[i], &resp, false);
            ck_assert_msg(rc == 0, "response %d: %s", i, strerror(-rc));
            f->status[i] = resp.status;
            const char *reason = th_resp_header(&resp, "x-remora-reason");
            snprintf(f->reason[i], sizeof(f->reason[i]), "%s", reason ? reason : "");
            f->ms[i] = now - t0;
            th_resp_free(&resp);
            th_conn_close(&c[i]);
            done[i] = true;
            left--;
        }
    }
}

static const char slow_req[] = "GET /slow HTTP/1.1\r\nHost: test\r\nx-echo-delay: 500ms\r\n\r\n";

START_TEST(test_pool_overflow_beyond_pending_fails_fast)
{
    th_echo_t e;
    th_remora_t r;
    fired_t f;
    th_echo_start(&e, "pool");
    th_remora_start_simple(&r, e.port, NULL, NULL,
                           "    max_connections: 1\n"
                           "    max_pending: 1\n"
                           "    pending_timeout: 2s\n");
    fire(r.port, 5, slow_req, &f);
    int ok = 0, overloaded = 0;
    int64_t last_ok = 0;
    for (int i = 0; i < 5; i++) {
        if (f.status[i] == 200) {
            ok++;
            last_ok = f.ms[i] > last_ok ? f.ms[i] : last_ok;
        } else {
            ck_assert_msg(f.status[i] == 503 && strcmp(f.reason[i], "overloaded") == 0,
                          "request %d: %d %s", i, f.status[i], f.reason[i]);
            ck_assert_msg(f.ms[i] < th_slack_ms(250), "503 after %lld ms, not fast",
                          (long long)f.ms[i]);
            overloaded++;
        }
    }
    ck_assert_msg(ok == 2 && overloaded == 3, "%d ok and %d overloaded, want 2 and 3", ok,
                  overloaded);
    /* One connection: the waiting request ran after the first one's 500 ms. */
    ck_assert_msg(last_ok >= 950, "second success after %lld ms, want >= 1 s", (long long)last_ok);
}

END_TEST

START_TEST(test_pool_zero_pending_timeout_fails_at_once)
{
    th_echo_t e;
    th_remora_t r;
    fired_t f;
    th_echo_start(&e, "pool0");
    th_remora_start_simple(&r, e.port, NULL, NULL,
                           "    max_connections: 1\n"
                           "    max_pending: 1\n"
                           "    pending_timeout: 0s\n");
    fire(r.port, 2, slow_req, &f);
    int first = f.status[0] == 200 ? 0 : 1, second = 1 - first;
    ck_assert_int_eq(f.status[first], 200);
    ck_assert_int_eq(f.status[second], 503);
    ck_assert_str_eq(f.reason[second], "overloaded");
    ck_assert_msg(f.ms[second] < th_slack_ms(250), "503 after %lld ms", (long long)f.ms[second]);
}

END_TEST

/*
 * pending_timeout: a request waiting for the only connection gives up after
 * it (503 overloaded), not after the request ahead of it has finished.
 */
START_TEST(test_pool_pending_timeout_expires)
{
    th_echo_t e;
    th_remora_t r;
    fired_t f;
    th_echo_start(&e, "poolwait");
    th_remora_start_simple(&r, e.port, NULL, NULL,
                           "    max_connections: 1\n"
                           "    max_pending: 1\n"
                           "    pending_timeout: 200ms\n");
    static const char slower[] = "GET /slow HTTP/1.1\r\nHost: test\r\nx-echo-delay: 1500ms\r\n\r\n";
    fire(r.port, 2, slower, &f);
    int first = f.status[0] == 200 ? 0 : 1, second = 1 - first;
    ck_assert_int_eq(f.status[first], 200);
    ck_assert_int_eq(f.status[second], 503);
    ck_assert_str_eq(f.reason[second], "overloaded");
    ck_assert_msg(f.ms[second] >= 150 && f.ms[second] < th_slack_ms(1000),
                  "the waiter gave up after %lld ms; pending_timeout 200ms",
                  (long long)f.ms[second]);
}

END_TEST

/*
 * Upstream connections are kept alive and reused: ten requests, each on a new
 * client connection, reach the upstream over one connection - two at most,
 * as remora gives a connection back just after the response's last byte, so
 * a quick next request may find none idle yet (paced to make that rare).
 * Without reuse it would take ten.
 */
START_TEST(test_pool_upstream_connection_reused)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "reuse");
    th_remora_start_simple(&r, e.port, NULL, NULL, NULL);
    th_sleep_ms(th_slack_ms(100)); /* th_echo_start's own check closes meanwhile */
    int before = th_tcp_sockets_on(e.port);
    ck_assert_int_ge(before, 0);
    for (int i = 0; i < 10; i++) {
        it_get(r.port, "/again", NULL, &resp);
        ck_assert_int_eq(resp.status, 200);
        th_resp_free(&resp);
        th_sleep_ms(20);
    }
    int sockets = th_tcp_sockets_on(e.port) - before;
    ck_assert_msg(sockets >= 2 && sockets <= 4,
                  "%d new sockets on the upstream's port for 10 requests, want 2 to 4 "
                  "(one or two connections, both ends)",
                  sockets);
}

END_TEST

/*
 * Loop 0 sends GETs after the restart, loop 1 POSTs. A POST is never replayed
 * on a fresh connection, so only the pool's check of idle connections keeps it
 * off the dead one: were that check broken, the GETs would still pass (the
 * stale-connection replay), the POSTs would get 502.
 */
START_TEST(test_pool_idle_connection_closed_by_upstream_not_reused)
{
    bool post = _i == 1;
    th_echo_t e1, e2;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e1, "first");
    th_remora_start_simple(&r, e1.port, NULL, NULL, NULL);
    it_get(r.port, "/a", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    it_assert_header(&resp, "x-echo-name", "first");
    th_resp_free(&resp);

    /* The pooled connection's upstream goes away; a new one takes the same port. */
    ck_assert(th_proc_stop(&e1.proc));
    th_echo_start_args(&e2, "second", e1.port, NULL);
    for (int i = 0; i < 3; i++) {
        if (post) {
            th_conn_t c;
            it_open(&c, r.port);
            it_roundtrip(&c, "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
                         &resp);
            th_conn_close(&c);
        } else {
            it_get(r.port, "/b", NULL, &resp);
        }
        ck_assert_msg(resp.status == 200, "request %d after the restart: %d %s", i, resp.status,
                      th_resp_header(&resp, "x-remora-reason"));
        it_assert_header(&resp, "x-echo-name", "second");
        th_resp_free(&resp);
    }
}

END_TEST

Suite *suite_integration_pool(void)
{
    Suite *s = suite_create("integration/pool");
    TCase *tc = it_tcase(s, "limits", 20);
    tcase_add_test(tc, test_pool_overflow_beyond_pending_fails_fast);
    tcase_add_test(tc, test_pool_zero_pending_timeout_fails_at_once);
    tcase_add_test(tc, test_pool_pending_timeout_expires);
    tc = it_tcase(s, "reuse", 20);
    tcase_add_loop_test(tc, test_pool_idle_connection_closed_by_upstream_not_reused, 0, 2);
    tcase_add_test(tc, test_pool_upstream_connection_reused);
    return s;
}
