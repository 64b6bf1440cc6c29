/* SPDX-License-Identifier: MIT */
/*
 * test_filters.c - integration/filters: the filter chain on the real data
 * plane. The fault filter answers locally without calling the upstream; the
 * test-only test_hooks filter (REMORA_TEST_FILTERS) shows on_request,
 * on_response and on_complete run, the last with the route, backend, status,
 * outcome and latency of each request.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

START_TEST(test_filters_fault_abort_answers_locally)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "fault");
    th_remora_start_simple(
        &r, e.port, NULL,
        "        filters: [ { fault: { abort: { percent: 100, status: 503 } } } ]\n", NULL);
    long before = th_echo_seq(e.port);
    for (int i = 0; i < 3; i++) {
        it_get(r.port, "/", NULL, &resp);
        it_assert_local_reply(&resp, 503, "fault_abort");
        th_resp_free(&resp);
    }
    ck_assert_int_eq(th_echo_seq(e.port), before + 1);
}

END_TEST

/* One parsed line of the test_hooks log. */
typedef struct hook_line {
    char route[64], backend[64], outcome[32];
    int status;
    long long latency_us;
} hook_line_t;

/* Reads the test_hooks log at `path`, waiting (bounded) until it has `want` lines. */
static int read_hook_log(const char *path, hook_line_t *out, int want)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^route=([^ ]+) backend=([^ ]*) status=([0-9]{3}) "
                             "outcome=(ok|5xx|connect_failure|timeout|reset|overloaded|local) "
                             "latency_us=([0-9]+)$",
                             REG_EXTENDED),
                     0);
    int n = 0;
    int64_t end = th_now_ms() + th_slack_ms(3000);
    for (;;) {
        n = 0;
        FILE *f = fopen(path, "r");
        char line[512];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL && n < want + 8) {
            line[strcspn(line, "\n")] = '\0';
            regmatch_t m[6];
            ck_assert_msg(regexec(&re, line, 6, m, 0) == 0, "test_hooks log line: \"%s\"", line);
            hook_line_t *h = &out[n < want ? n : want - 1];
            snprintf(h->route, sizeof(h->route), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
            snprintf(h->backend, sizeof(h->backend), "%.*s", (int)(m[2].rm_eo - m[2].rm_so),
                     line + m[2].rm_so);
            h->status = atoi(line + m[3].rm_so);
            snprintf(h->outcome, sizeof(h->outcome), "%.*s", (int)(m[4].rm_eo - m[4].rm_so),
                     line + m[4].rm_so);
            h->latency_us = atoll(line + m[5].rm_so);
            n++;
        }
        if (f != NULL) {
            fclose(f);
        }
        if (n >= want || th_now_ms() >= end) {
            break;
        }
        th_sleep_ms(20);
    }
    regfree(&re);
    return n;
}

START_TEST(test_filters_test_hooks_run_each_hook)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_req_t q;
    char log[256], route_extra[512];
    th_echo_start(&e, "hooks");
    snprintf(log, sizeof(log), "%s/hooks.log", th_tmpdir());
    snprintf(route_extra, sizeof(route_extra),
             "        filters: [ { test_hooks: { header: x-test-hooks, log: \"%s\" } } ]\n", log);
    th_remora_start_simple(&r, e.port, NULL, route_extra, NULL);
    for (int i = 0; i < 3; i++) {
        it_get(r.port, "/echo", NULL, &resp);
        it_echo_req(&resp, &q);
        ck_assert_str_eq(th_echo_req_header(&q, "x-test-hooks"), "on_request");
        it_assert_header(&resp, "x-test-hooks", "on_response");
        th_echo_req_free(&q);
        th_resp_free(&resp);
    }
    hook_line_t lines[3];
    ck_assert_int_eq(read_hook_log(log, lines, 3), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(lines[i].route, "r");
        ck_assert_str_eq(lines[i].backend, "b1");
        ck_assert_int_eq(lines[i].status, 200);
        ck_assert_str_eq(lines[i].outcome, "ok");
        ck_assert(lines[i].latency_us > 0 && lines[i].latency_us < 5000000);
    }
}

END_TEST

START_TEST(test_filters_test_hooks_report_outcomes)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    char log[256];
    th_echo_start(&e, "outcomes");
    snprintf(log, sizeof(log), "%s/outcomes.log", th_tmpdir());
    int dead = th_free_port();
#define HOOKS "{ test_hooks: { header: x-test-hooks, log: \"%s\" } }"
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: err\n"
                    "        match: { path_prefix: /err }\n"
                    "        filters: [ " HOOKS " ]\n"
                    "        backends: [ { name: live, cluster: live, weight: 1 } ]\n"
                    "      - name: dead\n"
                    "        match: { path_prefix: /dead }\n"
                    "        filters: [ " HOOKS " ]\n"
                    "        backends: [ { name: gone, cluster: dead, weight: 1 } ]\n"
                    "      - name: slow\n"
                    "        match: { path_prefix: /slow }\n"
                    "        timeout: 300ms\n"
                    "        filters: [ " HOOKS " ]\n"
                    "        backends: [ { name: live, cluster: live, weight: 1 } ]\n"
                    "      - name: local\n"
                    "        match: { path_prefix: /local }\n"
                    "        filters: [ " HOOKS
                    ", { fault: { abort: { percent: 100, status: 503 } } } ]\n"
                    "        backends: [ { name: live, cluster: live, weight: 1 } ]\n"
                    "      - name: reset\n"
                    "        match: { path_prefix: /reset }\n"
                    "        filters: [ " HOOKS " ]\n"
                    "        backends: [ { name: live, cluster: live, weight: 1 } ]\n"
                    "      - name: hold\n"
                    "        match: { path_prefix: /tight/hold }\n"
                    "        filters: [ " HOOKS " ]\n"
                    "        backends: [ { name: one, cluster: one, weight: 1 } ]\n"
                    "      - name: tight\n"
                    "        match: { path_prefix: /tight }\n"
                    "        filters: [ " HOOKS " ]\n"
                    "        backends: [ { name: one, cluster: one, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: live\n"
                    "    endpoints: [127.0.0.1:%d]\n"
                    "  - name: dead\n"
                    "    endpoints: [127.0.0.1:%d]\n"
                    "    connect_timeout: 1s\n"
                    "  - name: one\n"
                    "    endpoints: [127.0.0.1:%d]\n"
                    "    max_connections: 1\n"
                    "    max_pending: 1\n"
                    "    pending_timeout: 0s\n",
                    log, log, log, log, log, log, log, e.port, dead, e.port);
#undef HOOKS

    static const struct {
        const char *path, *extra, *route, *outcome;
        int status;
    } want[] = {
        {"/err", "x-echo-status: 503\r\n", "err", "5xx", 503},
        {"/dead", "", "dead", "connect_failure", 502},
        {"/slow", "x-echo-delay: 2s\r\n", "slow", "timeout", 504},
        {"/local", "", "local", "local", 503},
        /* Sent by hand below: the upstream resets after the head and 1000 body bytes. */
        {"/reset", NULL, "reset", "reset", 200},
        /* Sent by hand below: one request holds the only connection of cluster `one`, */
        {"/tight/hold", NULL, "hold", "ok", 200},
        /* and the next is refused at once (nobody may wait). */
        {"/tight", NULL, "tight", "overloaded", 503},
    };

    enum { N = sizeof(want) / sizeof(want[0]) };

    for (int i = 0; i < N; i++) {
        if (want[i].extra == NULL) {
            continue;
        }
        it_get(r.port, want[i].path, want[i].extra, &resp);
        ck_assert_int_eq(resp.status, want[i].status);
        th_resp_free(&resp);
    }
    /* Reset mid-body: the client sees its connection end, however far it read. */
    th_conn_t c;
    it_open(&c, r.port);
    const char *reset = "GET /reset HTTP/1.1\r\nHost: t\r\nx-echo-body-size: 100000\r\n"
                        "x-echo-reset-after: 1000\r\n\r\n";
    it_send(&c, reset, strlen(reset));
    ck_assert_int_ne(th_http_read_response(&c, &resp, false), 0);
    th_resp_free(&resp);
    th_conn_close(&c);
    /* Overloaded: one slow request holds the only connection, the next is refused at once. */
    it_open(&c, r.port);
    const char *hold = "GET /tight/hold HTTP/1.1\r\nHost: t\r\nx-echo-delay: 1s\r\n\r\n";
    it_send(&c, hold, strlen(hold));
    th_sleep_ms(th_slack_ms(200));
    it_get(r.port, "/tight/refused", NULL, &resp);
    it_assert_local_reply(&resp, 503, "overloaded");
    th_resp_free(&resp);
    ck_assert_int_eq(th_http_read_response(&c, &resp, false), 0);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    th_conn_close(&c);
    hook_line_t lines[N];
    ck_assert_int_eq(read_hook_log(log, lines, N), N);
    /* on_complete may run after the response went out: match lines by route, not order. */
    for (int i = 0; i < N; i++) {
        const hook_line_t *h = NULL;
        for (int j = 0; j < N; j++) {
            if (strcmp(lines[j].route, want[i].route) == 0) {
                h = &lines[j];
            }
        }
        ck_assert_msg(h != NULL, "no log line for route %s", want[i].route);
        ck_assert_msg(h->status == want[i].status && strcmp(h->outcome, want[i].outcome) == 0,
                      "route %s: status=%d outcome=%s, want %d %s", want[i].route, h->status,
                      h->outcome, want[i].status, want[i].outcome);
        if (strcmp(want[i].route, "dead") == 0) {
            ck_assert_str_eq(h->backend, "gone");
        } else if (strcmp(want[i].route, "hold") == 0 || strcmp(want[i].route, "tight") == 0) {
            ck_assert_str_eq(h->backend, "one");
        } else if (strcmp(want[i].route, "local") != 0) {
            ck_assert_str_eq(h->backend, "live");
        } /* answered before a backend was picked: the name may be empty */
        if (strcmp(want[i].route, "slow") == 0) {
            ck_assert_msg(h->latency_us >= 250000, "timeout latency_us=%lld", h->latency_us);
        }
    }
}

END_TEST

Suite *suite_integration_filters(void)
{
    Suite *s = suite_create("integration/filters");
    TCase *tc = it_tcase(s, "chain", 20);
    tcase_add_test(tc, test_filters_fault_abort_answers_locally);
    tcase_add_test(tc, test_filters_test_hooks_run_each_hook);
    tcase_add_test(tc, test_filters_test_hooks_report_outcomes);
    return s;
}
