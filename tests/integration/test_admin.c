/* SPDX-License-Identifier: MIT */
/*
 * test_admin.c - integration/admin: the admin API as served so far: the
 * bearer token of admin.token_file guards every call, GET /config returns
 * the running YAML and its generation, unknown paths and methods get JSON
 * 404/405, and GET /metrics parses with the Prometheus client library's own
 * parser (python3-prometheus-client) with counters matching the requests sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

#define TOKEN "t0ken-for-tests"

#define ROUTES_YAML                                                                                \
    "listeners:\n"                                                                                 \
    "  - name: main\n"                                                                             \
    "    address: 127.0.0.1:@LISTEN@\n"                                                            \
    "    routes:\n"                                                                                \
    "      - name: r\n"                                                                            \
    "        match: { path_prefix: / }\n"                                                          \
    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"                                 \
    "clusters:\n"                                                                                  \
    "  - name: c1\n"                                                                               \
    "    endpoints: [127.0.0.1:%d]\n"

START_TEST(test_admin_token_guards_every_call)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "admin");
    char token_file[256];
    th_tmpfile_write(token_file, sizeof(token_file), "token", TOKEN "\n");
    th_remora_admin_token = TOKEN;
    th_remora_start(&r, "admin: { address: 127.0.0.1:@ADMIN@, token_file: %s }\n" ROUTES_YAML,
                    token_file, e.port);

    const char *paths[] = {"/ready", "/healthz", "/config", "/runtime"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        ck_assert_int_eq(th_http_get(r.admin_port, paths[i], NULL, &resp), 0);
        ck_assert_msg(resp.status == 401, "%s without a token: %d", paths[i], resp.status);
        it_assert_header(&resp, "www-authenticate", "Bearer");
        th_resp_free(&resp);
        ck_assert_int_eq(
            th_http_get(r.admin_port, paths[i], "Authorization: Bearer t0ken-for-tesTs\r\n", &resp),
            0);
        ck_assert_msg(resp.status == 401, "%s with a wrong token: %d", paths[i], resp.status);
        th_resp_free(&resp);
        ck_assert_int_eq(
            th_http_get(r.admin_port, paths[i], "Authorization: Bearer " TOKEN "\r\n", &resp), 0);
        ck_assert_msg(resp.status == 200, "%s with the token: %d", paths[i], resp.status);
        th_resp_free(&resp);
    }
    /* A drain without the token is refused, and the proxy keeps serving. */
    th_conn_t c;
    it_open(&c, r.admin_port);
    it_roundtrip(&c, "POST /drain HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 401);
    th_resp_free(&resp);
    th_conn_close(&c);
    it_get(r.port, "/", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_admin_config_returns_running_yaml)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "admin");
    th_remora_start(&r, ROUTES_YAML, e.port);
    ck_assert_int_eq(th_http_get(r.admin_port, "/config", NULL, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    it_assert_header(&resp, "x-remora-generation", "1");
    /* Byte for byte the file remora was started with. */
    FILE *f = fopen(r.conf, "rb");
    ck_assert_ptr_nonnull(f);
    char file[8192];
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    ck_assert_uint_eq(resp.body_len, n);
    ck_assert(memcmp(resp.body, file, n) == 0);
    th_resp_free(&resp);
}

END_TEST

START_TEST(test_admin_unknown_path_and_method_are_json_errors)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "admin");
    th_remora_start(&r, ROUTES_YAML, e.port);
    ck_assert_int_eq(th_http_get(r.admin_port, "/nope", NULL, &resp), 0);
    ck_assert_int_eq(resp.status, 404);
    it_assert_header(&resp, "content-type", "application/json");
    th_resp_free(&resp);
    th_conn_t c;
    it_open(&c, r.admin_port);
    it_roundtrip(&c, "DELETE /config HTTP/1.1\r\nHost: a\r\n\r\n", &resp);
    ck_assert_int_eq(resp.status, 405);
    it_assert_header(&resp, "content-type", "application/json");
    th_resp_free(&resp);
    th_conn_close(&c);
}

END_TEST

/* GET /metrics parses with Prometheus's own parser and counts what was sent. */
START_TEST(test_admin_metrics_parse_and_count_requests)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "admin");
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    routes:\n"
                    "      - name: api\n"
                    "        match: { path_prefix: /api/ }\n"
                    "        backends: [ { name: stable, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n",
                    e.port);
    for (int i = 0; i < 7; i++) {
        it_get(r.port, "/api/x", NULL, &resp);
        ck_assert_int_eq(resp.status, 200);
        th_resp_free(&resp);
    }
    for (int i = 0; i < 3; i++) {
        it_get(r.port, "/api/x", "x-echo-status: 503\r\n", &resp);
        ck_assert_int_eq(resp.status, 503);
        th_resp_free(&resp);
    }
    for (int i = 0; i < 2; i++) {
        it_get(r.port, "/elsewhere", NULL, &resp);
        ck_assert_int_eq(resp.status, 404);
        th_resp_free(&resp);
    }
    /* A request is counted when it completes, just after its last byte is
     * written: the client may read the response a moment before that. */
    char out[2048] = "";
    int rc = -1;
    for (int attempt = 0; attempt < 40 && rc != 0; attempt++) {
        if (attempt > 0)
            usleep(50 * 1000);
        ck_assert_int_eq(th_http_get(r.admin_port, "/metrics", NULL, &resp), 0);
        ck_assert_int_eq(resp.status, 200);
        char file[256];
        th_tmpfile_write(file, sizeof(file), "metrics.txt", resp.body);
        th_resp_free(&resp);
        char cmd[1024];
        snprintf(
            cmd, sizeof(cmd),
            "/usr/bin/python3 %s/metrics_check.py %s "
            "'remora_requests_total{backend=stable,code_class=2xx,listener=main,route=api}=7' "
            "'remora_requests_total{backend=stable,code_class=5xx,listener=main,route=api}=3' "
            "'remora_requests_total{backend=,code_class=4xx,listener=main,route=}=2' "
            "'remora_request_duration_seconds_count{backend=stable,listener=main,route=api}=10' "
            "'remora_config_generation{}=1' 'remora_runtime_procs{}=2' 2>&1",
            IT_SOURCE_DIR, file);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        rc = pclose(p);
    }
    ck_assert_msg(rc == 0, "metrics_check failed (%d):\n%s", rc, out);
}

END_TEST

Suite *suite_integration_admin(void)
{
    Suite *s = suite_create("integration/admin");
    TCase *tc = it_tcase(s, "admin", 30);
    tcase_add_test(tc, test_admin_token_guards_every_call);
    tcase_add_test(tc, test_admin_config_returns_running_yaml);
    tcase_add_test(tc, test_admin_unknown_path_and_method_are_json_errors);
    tcase_add_test(tc, test_admin_metrics_parse_and_count_requests);
    return s;
}
