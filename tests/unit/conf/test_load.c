/* SPDX-License-Identifier: MIT */
/*
 * test_load.c - cfg_load_data / cfg_load_file end to end: the defaults of
 * defaults.c show up, explicit values convert, strings are never NULL, errors
 * are appended and printed compiler-style, a failed load leaves `*out`
 * untouched, untrusted input cannot make a load slow or huge (many problems,
 * alias expansion, deep nesting), and a config is reference counted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "conf/conf.h"
#include "tests/unit/conf/suites.h"

#define MS 1000000LL
#define SEC 1000000000LL

static cfg_config_t *load_ok(const char *yaml)
{
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    int rc = cfg_load_data(yaml, strlen(yaml), &cfg, &errs);
    if (rc != 0) {
        cfg_errors_print(&errs, "<test>", stderr);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

static cfg_config_t *load_file_ok(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/valid/%s", CFG_TEST_DATA_DIR, name);
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    int rc = cfg_load_file(path, &cfg, &errs);
    if (rc != 0) {
        cfg_errors_print(&errs, path, stderr);
    }
    ck_assert_int_eq(rc, 0);
    return cfg;
}

#define ROUTE_TAIL                                                                                 \
    "        backends: [ { name: b, cluster: c, weight: 1 } ]\n"                                   \
    "clusters:\n"                                                                                  \
    "  - { name: c, endpoints: [127.0.0.1:8081] }\n"

START_TEST(test_load_embedded_default_is_valid)
{
    const char *yaml = cfg_default_yaml();
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_load_data(yaml, strlen(yaml), &cfg, &errs), 0);
    ck_assert_uint_eq(errs.count, 0);
    /* DESIGN.md: without -c, the proxy is on 0.0.0.0:10000 and the admin on 127.0.0.1:9901. */
    ck_assert_uint_eq(cfg->listeners_count, 1);
    ck_assert_str_eq(cfg->listeners[0].address, "0.0.0.0:10000");
    ck_assert_str_eq(cfg->admin.address, "127.0.0.1:9901");
    ck_assert_uint_eq(cfg->listeners[0].routes[0].backends_count, 2);
    ck_assert_uint_eq(cfg->listeners[0].routes[0].backends[0].weight, 90);
    ck_assert_uint_eq(cfg->listeners[0].routes[0].backends[1].weight, 10);
    cfg_config_free(cfg);
}

END_TEST

START_TEST(test_load_minimal_gets_every_default)
{
    cfg_config_t *cfg = load_file_ok("minimal.yaml");
    ck_assert_uint_eq(cfg->runtime.procs, 0);
    ck_assert_str_eq(cfg->admin.address, "127.0.0.1:9901");
    ck_assert_str_eq(cfg->admin.token_file, "");
    ck_assert_int_eq(cfg->drain_timeout, 30 * SEC);

    ck_assert_uint_eq(cfg->listeners_count, 1);
    const cfg_listener_t *l = &cfg->listeners[0];
    ck_assert_str_eq(l->name, "main");
    ck_assert_str_eq(l->address, "127.0.0.1:10000");
    ck_assert_int_eq(l->read_timeout, 8 * SEC);
    ck_assert_int_eq(l->write_timeout, 12 * SEC);
    ck_assert_int_eq(l->idle_timeout, 90 * SEC);
    ck_assert_uint_eq(l->max_connections, 10000);
    ck_assert_uint_eq(l->max_header_bytes, 64 * 1024);
    ck_assert_uint_eq(l->max_headers, 100);
    ck_assert_uint_eq(l->max_request_body, 0);
    ck_assert_str_eq(l->access_log, "");

    ck_assert_uint_eq(l->routes_count, 1);
    const cfg_route_t *r = &l->routes[0];
    ck_assert_str_eq(r->name, "all");
    ck_assert_str_eq(r->match.path_prefix, "/");
    ck_assert_str_eq(r->match.path, "");
    ck_assert_str_eq(r->match.host, "");
    ck_assert_str_eq(r->match.method, "");
    ck_assert_uint_eq(r->match.headers_count, 0);
    ck_assert_int_eq(r->timeout, 15 * SEC);
    ck_assert_uint_eq(r->retries.attempts, 0);
    ck_assert_uint_eq(r->retries.on, CFG_OUTCOME_CONNECT_FAILURE);
    ck_assert_uint_eq(r->filters_count, 0);
    ck_assert_ptr_null(r->canary);
    ck_assert_uint_eq(r->backends_count, 1);
    ck_assert_str_eq(r->backends[0].name, "b");
    ck_assert_str_eq(r->backends[0].cluster, "c");
    ck_assert_uint_eq(r->backends[0].weight, 1);

    ck_assert_uint_eq(cfg->clusters_count, 1);
    const cfg_cluster_t *c = &cfg->clusters[0];
    ck_assert_ptr_eq(cfg_find_cluster(cfg, "c"), c);
    ck_assert_ptr_null(cfg_find_cluster(cfg, "d"));
    ck_assert_uint_eq(c->endpoints_count, 1);
    ck_assert_str_eq(c->endpoints[0], "127.0.0.1:8081");
    ck_assert_uint_eq(c->max_connections, 256);
    ck_assert_uint_eq(c->max_pending, 1024);
    ck_assert_int_eq(c->pending_timeout, 0);
    ck_assert_int_eq(c->connect_timeout, 1 * SEC);
    ck_assert_int_eq(c->dns_refresh, 5 * SEC);
    cfg_config_free(cfg);
}

END_TEST

START_TEST(test_load_full_converts_every_key)
{
    cfg_config_t *cfg = load_file_ok("full.yaml");
    ck_assert_uint_eq(cfg->runtime.procs, 2);
    ck_assert_str_eq(cfg->admin.token_file, "/etc/remora/token");
    ck_assert_int_eq(cfg->drain_timeout, 10 * SEC);
    ck_assert_uint_eq(cfg->listeners_count, 2);
    const cfg_listener_t *l = &cfg->listeners[0];
    ck_assert_uint_eq(l->max_header_bytes, 32 * 1024);
    ck_assert_uint_eq(l->max_headers, 64);
    ck_assert_uint_eq(l->max_request_body, 1024 * 1024);
    ck_assert_str_eq(l->access_log, "-");
    ck_assert_str_eq(cfg->listeners[1].address, "[::1]:10001");

    const cfg_route_t *r = &l->routes[0];
    ck_assert_str_eq(r->match.host, "shop.example.com");
    ck_assert_str_eq(r->match.method, "GET");
    ck_assert_uint_eq(r->match.headers_count, 2);
    ck_assert_str_eq(r->match.headers[0].name, "x-tenant");
    ck_assert_str_eq(r->match.headers[0].value, "acme");
    ck_assert_str_eq(r->match.headers[1].value, "");
    ck_assert_int_eq(r->timeout, 12 * SEC);
    ck_assert_uint_eq(r->retries.attempts, 1);
    ck_assert_uint_eq(r->retries.on, CFG_OUTCOME_CONNECT_FAILURE | CFG_OUTCOME_RESET);

    ck_assert_uint_eq(r->filters_count, 3);
    ck_assert_int_eq(r->filters[0].kind, CFG_FILTER_RATE_LIMIT);
    const cfg_rate_limit_t *rl = r->filters[0].rate_limit;
    ck_assert_double_eq(rl->rate, 6500);
    ck_assert_uint_eq(rl->burst, 6500);
    ck_assert_int_eq(rl->key, CFG_RL_KEY_ROUTE);
    ck_assert_uint_eq(rl->max_keys, 100000);
    ck_assert_int_eq(rl->mode, CFG_RL_REJECT);
    ck_assert_int_eq(rl->max_queue_time, 500 * MS);
    ck_assert_str_eq(rl->related_route, "");

    ck_assert_int_eq(r->filters[1].kind, CFG_FILTER_CIRCUIT_BREAKER);
    const cfg_circuit_breaker_t *cb = r->filters[1].circuit_breaker;
    ck_assert_int_eq(cb->grade, CFG_CB_EXCEPTION_COUNT);
    ck_assert_double_eq(cb->threshold, 15);
    ck_assert_int_eq(cb->slow_call, 1 * SEC);
    ck_assert_int_eq(cb->window, 60 * SEC);
    ck_assert_uint_eq(cb->min_requests, 5);
    ck_assert_int_eq(cb->open_for, 60 * SEC);
    ck_assert_uint_eq(cb->exceptions,
                      CFG_OUTCOME_5XX | CFG_OUTCOME_CONNECT_FAILURE | CFG_OUTCOME_TIMEOUT);
    ck_assert_str_eq(cb->fallback_cluster, "orders-v1");

    ck_assert_int_eq(r->filters[2].kind, CFG_FILTER_FAULT);
    const cfg_fault_t *f = r->filters[2].fault;
    ck_assert_double_eq(f->delay_percent, 0);
    ck_assert_int_eq(f->delay_duration, 0);
    ck_assert_double_eq_tol(f->abort_percent, 0.005, 1e-12);
    ck_assert_uint_eq(f->abort_status, 503);

    ck_assert_uint_eq(r->backends_count, 2);
    ck_assert_str_eq(r->backends[1].name, "canary");
    ck_assert_str_eq(r->backends[1].cluster, "orders-v2");
    ck_assert_uint_eq(r->backends[1].weight, 10);

    const cfg_canary_t *c = r->canary;
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->backend, "canary");
    ck_assert_str_eq(c->baseline, "stable");
    ck_assert_int_eq(c->window, 30 * SEC);
    ck_assert_uint_eq(c->min_requests, 100);
    ck_assert_int_eq(c->max_p99_increase, 150 * MS);
    ck_assert_double_eq_tol(c->max_error_rate, 0.005, 1e-12);
    ck_assert_ptr_nonnull(c->promote);
    ck_assert_uint_eq(c->promote->step, 10);
    ck_assert_int_eq(c->promote->interval, 60 * SEC);
    ck_assert_str_eq(c->override_header, "x-canary");
    ck_assert_str_eq(c->sticky, "cookie:session");

    const cfg_route_t *exact = &l->routes[1];
    ck_assert_str_eq(exact->match.path, "/healthz");
    ck_assert_str_eq(exact->match.path_prefix, "");
    const cfg_rate_limit_t *rl2 = exact->filters[0].rate_limit;
    ck_assert_double_eq(rl2->rate, 0.5);
    ck_assert_uint_eq(rl2->burst, 1); /* ceil(0.5) */
    ck_assert_int_eq(rl2->key, CFG_RL_KEY_HEADER);
    ck_assert_str_eq(rl2->key_header, "x-api-key");
    ck_assert_int_eq(rl2->mode, CFG_RL_QUEUE);
    ck_assert_int_eq(exact->filters[1].kind, CFG_FILTER_TEST_HOOKS);
    ck_assert_str_eq(exact->filters[1].test_hooks->header, "x-hooks");
    ck_assert_str_eq(exact->filters[1].test_hooks->log, "/tmp/hooks.log");

    const cfg_cluster_t *v2 = cfg_find_cluster(cfg, "orders-v2");
    ck_assert_ptr_nonnull(v2);
    ck_assert_str_eq(v2->endpoints[0], "orders-v2.default.svc.cluster.local:8080");
    ck_assert_uint_eq(v2->max_pending, 0);
    ck_assert_int_eq(v2->pending_timeout, 250 * MS);
    ck_assert_uint_eq(cfg_find_cluster(cfg, "orders-v1")->endpoints_count, 2);
    cfg_config_free(cfg);
}

END_TEST

START_TEST(test_load_filter_defaults)
{
    cfg_config_t *cfg = load_ok("listeners:\n"
                                "  - name: main\n"
                                "    address: 127.0.0.1:10000\n"
                                "    routes:\n"
                                "      - name: r\n"
                                "        match: { path_prefix: / }\n"
                                "        retries: { attempts: 2, on: [] }\n"
                                "        filters:\n"
                                "          - rate_limit: { rate: 2.5 }\n"
                                "          - circuit_breaker: { threshold: 3 }\n"
                                "          - fault: { delay: { percent: 50, duration: 20ms } }\n"
                                "          - test_hooks: {}\n"
                                "        canary: { backend: b, baseline: b2 }\n"
                                "        backends:\n"
                                "          - { name: b, cluster: c, weight: 1 }\n"
                                "          - { name: b2, cluster: c, weight: 0 }\n"
                                "clusters:\n"
                                "  - { name: c, endpoints: [127.0.0.1:8081] }\n");
    const cfg_route_t *r = &cfg->listeners[0].routes[0];
    ck_assert_uint_eq(r->retries.attempts, 2);
    ck_assert_uint_eq(r->retries.on, 0); /* an explicit empty list retries on nothing */

    const cfg_rate_limit_t *rl = r->filters[0].rate_limit;
    ck_assert_uint_eq(rl->burst, 3);
    ck_assert_int_eq(rl->key, CFG_RL_KEY_ROUTE);
    ck_assert_str_eq(rl->key_header, "");
    ck_assert_uint_eq(rl->max_keys, 100000);
    ck_assert_int_eq(rl->mode, CFG_RL_REJECT);
    ck_assert_int_eq(rl->max_queue_time, 500 * MS);
    ck_assert_str_eq(rl->related_route, "");

    const cfg_circuit_breaker_t *cb = r->filters[1].circuit_breaker;
    ck_assert_int_eq(cb->grade, CFG_CB_EXCEPTION_COUNT);
    ck_assert_uint_eq(cb->exceptions,
                      CFG_OUTCOME_5XX | CFG_OUTCOME_CONNECT_FAILURE | CFG_OUTCOME_TIMEOUT);
    ck_assert_uint_eq(cb->min_requests, 5);
    ck_assert_str_eq(cb->fallback_cluster, "");

    const cfg_fault_t *f = r->filters[2].fault;
    ck_assert_double_eq(f->delay_percent, 0.5);
    ck_assert_int_eq(f->delay_duration, 20 * MS);
    ck_assert_double_eq(f->abort_percent, 0);
    ck_assert_uint_eq(f->abort_status, 503);

    ck_assert_str_eq(r->filters[3].test_hooks->header, "x-test-hooks");
    ck_assert_str_eq(r->filters[3].test_hooks->log, "");

    const cfg_canary_t *c = r->canary;
    ck_assert_int_eq(c->window, 30 * SEC);
    ck_assert_uint_eq(c->min_requests, 100);
    ck_assert_int_eq(c->max_p99_increase, 150 * MS);
    ck_assert_double_eq_tol(c->max_error_rate, 0.005, 1e-12);
    ck_assert_ptr_null(c->promote);
    ck_assert_str_eq(c->override_header, "x-canary");
    ck_assert_str_eq(c->sticky, "");
    cfg_config_free(cfg);
}

END_TEST

START_TEST(test_load_anchors_and_aliases_resolve)
{
    cfg_config_t *cfg = load_ok("listeners:\n"
                                "  - name: main\n"
                                "    address: 127.0.0.1:10000\n"
                                "    read_timeout: &t 3s\n"
                                "    write_timeout: *t\n"
                                "    routes:\n"
                                "      - name: r\n"
                                "        match: { path_prefix: / }\n" ROUTE_TAIL);
    ck_assert_int_eq(cfg->listeners[0].write_timeout, 3 * SEC);
    cfg_config_free(cfg);
}

END_TEST

START_TEST(test_load_failure_leaves_out_untouched_and_appends)
{
    cfg_config_t *sentinel = (cfg_config_t *)&sentinel, *cfg = sentinel;
    cfg_errors_t errs = {0};
    const char *bad = "drain_timeout: 5\n";
    ck_assert_int_eq(cfg_load_data(bad, strlen(bad), &cfg, &errs), -1);
    ck_assert_ptr_eq(cfg, sentinel);
    ck_assert_uint_eq(errs.count, 2); /* the bad duration, and no listener */
    ck_assert_int_eq(cfg_load_data(bad, strlen(bad), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 4);
    ck_assert_str_eq(errs.items[2].path, "drain_timeout");
    ck_assert_uint_eq(errs.items[2].line, 1);
    ck_assert_uint_eq(errs.items[2].column, 1);
    cfg_errors_destroy(&errs);
    ck_assert_ptr_null(errs.items);
    ck_assert_uint_eq(errs.count, 0);
    cfg_errors_destroy(&errs); /* empty again: nothing to do */
    cfg_config_free(NULL);
}

END_TEST

START_TEST(test_load_libcyaml_errors_get_our_path_and_line)
{
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    const char *y = "runtime:\n"
                    "  procs: -3\n";
    ck_assert_int_eq(cfg_load_data(y, strlen(y), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, "runtime.procs");
    ck_assert_uint_eq(errs.items[0].line, 2);
    ck_assert_uint_eq(errs.items[0].column, 3);
    ck_assert_str_eq(errs.items[0].message, "invalid integer '-3'");
    cfg_errors_destroy(&errs);

    y = "listeners:\n"
        "  - name: a\n"
        "    routes:\n"
        "      - name: r\n"
        "        filters:\n"
        "          - rate_limit:\n"
        "              rate: 5\n"
        "              burts: 5\n";
    ck_assert_int_eq(cfg_load_data(y, strlen(y), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, "listeners[0].routes[0].filters[0].rate_limit.burts");
    ck_assert_uint_eq(errs.items[0].line, 8);
    ck_assert_uint_eq(errs.items[0].column, 15);
    ck_assert_str_eq(errs.items[0].message, "unknown key \"burts\" (did you mean \"burst\"?)");
    cfg_errors_destroy(&errs);

    y = "listeners: 5\n";
    ck_assert_int_eq(cfg_load_data(y, strlen(y), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, "listeners");
    ck_assert_str_eq(errs.items[0].message, "expected a sequence here, got a scalar");
    cfg_errors_destroy(&errs);

    y = "- a\n- b\n";
    ck_assert_int_eq(cfg_load_data(y, strlen(y), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, "");
    ck_assert_str_eq(errs.items[0].message, "expected a mapping here, got a sequence");
    cfg_errors_destroy(&errs);
    ck_assert_ptr_null(cfg);
}

END_TEST

START_TEST(test_load_errors_print_like_a_compiler)
{
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    const char *y = "drain_timeout: 5\n"
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:10000\n"
                    "    routes:\n"
                    "      - name: r\n"
                    "        match: { path_prefix: / }\n"
                    "        backends: [ { name: b, cluster: nope, weight: 1 } ]\n";
    ck_assert_int_eq(cfg_load_data(y, strlen(y), &cfg, &errs), -1);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cfg_errors_print(&errs, "remora.yaml", out);
    fclose(out);
    ck_assert_str_eq(text, "remora.yaml:1:1: drain_timeout: invalid duration '5' (want e.g. "
                           "150ms, 8s, 2m, 1h)\n"
                           "remora.yaml:8:32: listeners[0].routes[0].backends[0].cluster: no "
                           "cluster named 'nope'\n");
    free(text);
    cfg_errors_destroy(&errs);

    y = "a: [\n";
    ck_assert_int_eq(cfg_load_data(y, strlen(y), &cfg, &errs), -1);
    out = open_memstream(&text, &size);
    cfg_errors_print(&errs, "x.yaml", out);
    fclose(out);
    ck_assert_msg(strncmp(text, "x.yaml:2:1: YAML syntax error: ", 31) == 0, "%s", text);
    free(text);
    cfg_errors_destroy(&errs);
}

END_TEST

START_TEST(test_load_file_reports_unreadable_files)
{
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_load_file("/nonexistent/remora.yaml", &cfg, &errs), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, "");
    ck_assert_msg(strstr(errs.items[0].message, "cannot open /nonexistent/remora.yaml") != NULL,
                  "%s", errs.items[0].message);
    cfg_errors_destroy(&errs);
}

END_TEST

START_TEST(test_load_config_is_reference_counted)
{
    cfg_config_t *cfg = load_file_ok("minimal.yaml");
    ck_assert_uint_eq(atomic_load(&cfg->refs), 1);
    ck_assert_ptr_eq(cfg_config_retain(cfg), cfg);
    ck_assert_ptr_eq(cfg_config_retain(cfg), cfg);
    ck_assert_uint_eq(atomic_load(&cfg->refs), 3);
    cfg_config_free(cfg);
    cfg_config_free(cfg);
    /* Still held once: fully readable (ASan would flag a use after free). */
    ck_assert_uint_eq(atomic_load(&cfg->refs), 1);
    ck_assert_str_eq(cfg->listeners[0].routes[0].name, "all");
    ck_assert_ptr_null(cfg_config_retain(NULL));
    cfg_config_free(cfg); /* the last reference frees */
}

END_TEST

enum { REF_THREADS = 4, REF_ROUNDS = 20000 };

static void *retain_release(void *arg)
{
    cfg_config_t *cfg = arg;
    for (int i = 0; i < REF_ROUNDS; i++) {
        cfg_config_free(cfg_config_retain(cfg) == cfg ? cfg : NULL);
    }
    return NULL;
}

START_TEST(test_load_config_refs_are_thread_safe)
{
    cfg_config_t *cfg = load_file_ok("minimal.yaml");
    pthread_t t[REF_THREADS];
    for (int i = 0; i < REF_THREADS; i++) {
        ck_assert_int_eq(pthread_create(&t[i], NULL, retain_release, cfg), 0);
    }
    for (int i = 0; i < REF_THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    }
    ck_assert_uint_eq(atomic_load(&cfg->refs), 1);
    cfg_config_free(cfg);
}

END_TEST

/* A document of `head`, `n` copies of `unit` (a printf format given the copy's index), `tail`. */
static char *generate(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t cap = strlen(head) + strlen(tail) + n * (strlen(unit) + 24) + 1, len = 0;
    char *doc = malloc(cap);
    ck_assert_ptr_nonnull(doc);
    len += (size_t)snprintf(doc, cap, "%s", head);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(doc + len, cap - len, unit, i);
    }
    snprintf(doc + len, cap - len, "%s", tail);
    return doc;
}

/*
 * 30000 clusters with a problem each, and one duplicate name: placing and
 * de-duplicating the problems and finding duplicates used to compare every
 * pair (16000 entries took 13 s). The suite's timeout is the assertion.
 * Only the first CFG_ERRORS_MAX problems are listed, then one saying so.
 */
START_TEST(test_load_many_problems_take_linear_time)
{
    enum { N = 30000 };

    char *doc = generate("clusters:\n", "  - { name: c%zu }\n", N,
                         "  - { name: c7, endpoints: [127.0.0.1:1] }\n");
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_load_data(doc, strlen(doc), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, CFG_ERRORS_MAX + 1);
    ck_assert_str_eq(errs.items[1].path, "clusters[0].endpoints"); /* [0]: no listener */
    ck_assert_uint_eq(errs.items[1].line, 2);
    ck_assert_str_eq(errs.items[CFG_ERRORS_MAX - 1].path, "clusters[998].endpoints");
    ck_assert_uint_eq(errs.items[CFG_ERRORS_MAX - 1].line, 1000);
    ck_assert_str_eq(errs.items[CFG_ERRORS_MAX].path, "");
    ck_assert_str_eq(errs.items[CFG_ERRORS_MAX].message,
                     "too many problems: only the first 1000 are listed");
    cfg_errors_destroy(&errs);
    free(doc);

    /* Under the limit, a duplicate name among 30000 is still found (in linear time). */
    doc = generate("listeners: [ { name: l, address: 127.0.0.1:1, routes: [] } ]\nclusters:\n",
                   "  - { name: c%zu, endpoints: [127.0.0.1:1] }\n", N,
                   "  - { name: c7, endpoints: [127.0.0.1:1] }\n");
    ck_assert_int_eq(cfg_load_data(doc, strlen(doc), &cfg, &errs), -1);
    bool dup = false;
    for (size_t i = 0; i < errs.count; i++) {
        dup |=
            strcmp(errs.items[i].path, "clusters[30000].name") == 0 &&
            strcmp(errs.items[i].message, "duplicate cluster name 'c7' (also clusters[7])") == 0 &&
            errs.items[i].line == N + 3;
    }
    ck_assert_msg(dup, "the duplicate name was not found (%zu problems, first: %s: %s)", errs.count,
                  errs.count ? errs.items[0].path : "", errs.count ? errs.items[0].message : "");
    cfg_errors_destroy(&errs);
    free(doc);
}

END_TEST

/* libcyaml copies every alias: 400 routes of 400 backends from a few KB ("billion laughs"). */
START_TEST(test_load_alias_expansion_is_bounded)
{
    char *doc = generate("listeners:\n"
                         "  - name: main\n"
                         "    address: 127.0.0.1:10000\n"
                         "    routes:\n"
                         "      - &r\n"
                         "        name: r\n"
                         "        match: { path_prefix: / }\n"
                         "        backends: [ &e { name: b, cluster: c, weight: 1 }",
                         ", *e", 399, " ]\n");
    char *full = generate(doc, "      - *r\n", 399,
                          "clusters:\n  - { name: c, endpoints: [127.0.0.1:8081] }\n");
    cfg_config_t *sentinel = (cfg_config_t *)&sentinel, *cfg = sentinel;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_load_data(full, strlen(full), &cfg, &errs), -1);
    ck_assert_ptr_eq(cfg, sentinel);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].message,
                     "aliases expand the document by more than 100000 nodes");
    /* at the alias that went over: a route, on its own line */
    ck_assert_int_eq(strncmp(errs.items[0].path, "listeners[0].routes[", 20), 0);
    ck_assert_uint_gt(errs.items[0].line, 8);
    ck_assert_uint_eq(errs.items[0].column, 9);
    cfg_errors_destroy(&errs);
    free(full);
    free(doc);
}

END_TEST

/* libyaml's scanner is quadratic in the flow nesting depth: the load stops at level 65. */
START_TEST(test_load_refuses_deep_nesting)
{
    enum { DEEP = 100000 };

    char *doc = generate("listeners: ", "[", DEEP, "");
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    ck_assert_int_eq(cfg_load_data(doc, strlen(doc), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].path, "");
    ck_assert_str_eq(errs.items[0].message,
                     "YAML syntax error: collections nested deeper than 64 levels");
    ck_assert_uint_eq(errs.items[0].line, 1);
    ck_assert_uint_eq(errs.items[0].column, 11 + 64); /* the root mapping is level 1 */
    cfg_errors_destroy(&errs);

    free(doc);

    /* 64 levels are not refused: libcyaml then reports what it expected */
    char *open = generate("listeners: ", "[", 63, "");
    doc = generate(open, "]", 63, "\n");
    ck_assert_int_eq(cfg_load_data(doc, strlen(doc), &cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.items[0].message, "expected a mapping here, got a sequence");
    cfg_errors_destroy(&errs);
    free(doc);
    free(open);
}

END_TEST

Suite *suite_conf_load(void)
{
    Suite *s = suite_create("conf/load");
    TCase *tc = tcase_create("defaults");
    tcase_add_test(tc, test_load_embedded_default_is_valid);
    tcase_add_test(tc, test_load_minimal_gets_every_default);
    tcase_add_test(tc, test_load_full_converts_every_key);
    tcase_add_test(tc, test_load_filter_defaults);
    tcase_add_test(tc, test_load_anchors_and_aliases_resolve);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_load_failure_leaves_out_untouched_and_appends);
    tcase_add_test(tc, test_load_libcyaml_errors_get_our_path_and_line);
    tcase_add_test(tc, test_load_errors_print_like_a_compiler);
    tcase_add_test(tc, test_load_file_reports_unreadable_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, test_load_many_problems_take_linear_time);
    tcase_add_test(tc, test_load_alias_expansion_is_bounded);
    tcase_add_test(tc, test_load_refuses_deep_nesting);
    suite_add_tcase(s, tc);
    tc = tcase_create("refs");
    tcase_add_test(tc, test_load_config_is_reference_counted);
    tcase_add_test(tc, test_load_config_refs_are_thread_safe);
    suite_add_tcase(s, tc);
    return s;
}
