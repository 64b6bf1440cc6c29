/* SPDX-License-Identifier: MIT */
/*
 * test_reload.c - integration/reload and integration/reload_load: hot reload
 * through the admin API (PUT /config, POST /reload, the route weight and
 * canary endpoints), SIGHUP and --watch, against the real remora.
 *
 * What is checked: an applied change bumps the generation by one and shows
 * in the routing right after the 200; an invalid one answers 400 with the
 * problems `remora --check` prints and changes nothing; weight edits rewrite
 * the YAML's scalars in place; a listener moved to a new address serves there
 * at once while the connections of the old one (kept-alive, in flight,
 * upgraded) live on; filter state survives a reload that keeps the rule; and
 * (reload_load) 100 reloads under keep-alive load lose no request and the
 * split follows the weights of each phase.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

#define TOKEN "reload-t0ken"
#define MIB ((size_t)1024 * 1024)

/* "Authorization: ...\r\n" sent with every admin call, or NULL (set by the token test). */
static const char *admin_auth;

static void reload_setup(void)
{
    admin_auth = NULL;
    th_remora_admin_token = NULL;
}

/* ---- admin API ---- */

/* Sends one admin request (body may be NULL) and reads the answer, or fails the test. */
static void admin_call(const th_remora_t *r, const char *method, const char *path, const char *body,
                       th_resp_t *resp)
{
    int rc = th_http_request(r->admin_port, method, path, admin_auth, body,
                             body != NULL ? strlen(body) : 0, resp);
    ck_assert_msg(rc == 0, "%s %s on the admin port: %s (status %d)", method, path, strerror(-rc),
                  resp->status);
}

/* Parses the JSON body of an admin answer, or fails the test. Caller frees. */
static th_json_t *json_body(const th_resp_t *resp, const char *what)
{
    const char *ct = th_resp_header(resp, "content-type");
    ck_assert_msg(ct != NULL && strncmp(ct, "application/json", 16) == 0,
                  "%s: content-type \"%s\", want application/json (status %d, body %.300s)", what,
                  ct ? ct : "(none)", resp->status, resp->body ? resp->body : "");
    th_json_t *j = th_json_parse(resp->body, resp->body_len);
    ck_assert_msg(j != NULL && j->type == TH_JSON_OBJECT, "%s: not a JSON object: %.300s", what,
                  resp->body ? resp->body : "(no body)");
    return j;
}

/* Asserts a JSON error answer with `status` and a string "error". */
static void assert_json_error(th_resp_t *resp, int status, const char *what)
{
    ck_assert_msg(resp->status == status, "%s: status %d, want %d (body %.300s)", what,
                  resp->status, status, resp->body ? resp->body : "");
    th_json_t *j = json_body(resp, what);
    const char *e = th_json_str(j, "error");
    ck_assert_msg(e != NULL && e[0] != '\0', "%s: no \"error\" string in %.300s", what, resp->body);
    th_json_free(j);
}

/* Returns the running config's text and (if `gen`) its x-remora-generation. Caller frees. */
static char *config_get(const th_remora_t *r, long long *gen)
{
    th_resp_t resp;
    admin_call(r, "GET", "/config", NULL, &resp);
    ck_assert_msg(resp.status == 200, "GET /config: %d", resp.status);
    const char *g = th_resp_header(&resp, "x-remora-generation");
    ck_assert_msg(g != NULL, "GET /config has no x-remora-generation");
    char *end = NULL;
    long long v = strtoll(g, &end, 10);
    ck_assert_msg(end != g && *end == '\0' && v >= 1, "x-remora-generation: \"%s\"", g);
    if (gen != NULL) {
        *gen = v;
    }
    char *text = strdup(resp.body != NULL ? resp.body : "");
    ck_assert_ptr_nonnull(text);
    th_resp_free(&resp);
    return text;
}

/* Returns the running generation (GET /config's header). */
static long long generation(const th_remora_t *r)
{
    long long gen;
    free(config_get(r, &gen));
    return gen;
}

/* Asserts GET /config answers exactly `want` at generation `gen`. */
static void assert_config(const th_remora_t *r, const char *want, long long gen)
{
    long long got_gen;
    char *text = config_get(r, &got_gen);
    ck_assert_msg(got_gen == gen, "generation %lld, want %lld", got_gen, gen);
    ck_assert_msg(strcmp(text, want) == 0, "GET /config:\n%s\n---- want ----\n%s", text, want);
    free(text);
}

/* PUT /config with `yaml`; asserts 200 {"generation": N} and returns N. */
static long long put_config(const th_remora_t *r, const char *yaml)
{
    th_resp_t resp;
    admin_call(r, "PUT", "/config", yaml, &resp);
    ck_assert_msg(resp.status == 200, "PUT /config: %d %.500s", resp.status,
                  resp.body ? resp.body : "");
    th_json_t *j = json_body(&resp, "PUT /config");
    long long gen = 0;
    ck_assert_msg(th_json_int(j, "generation", &gen), "PUT /config answer: %s", resp.body);
    th_json_free(j);
    th_resp_free(&resp);
    return gen;
}

/* Returns the sample `series` of GET /metrics; `missing` if there is none. */
static double metric(const th_remora_t *r, const char *series, double missing)
{
    th_resp_t resp;
    admin_call(r, "GET", "/metrics", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    double v = missing;
    if (!th_metric_value(resp.body, series, &v)) {
        v = missing;
    }
    th_resp_free(&resp);
    return v;
}

#define RELOADS_OK "remora_config_reloads_total{result=\"success\"}"
#define RELOADS_FAILED "remora_config_reloads_total{result=\"failure\"}"

/* Polls until the generation is `want` (asynchronous reloads: SIGHUP, --watch). */
static void wait_generation(const th_remora_t *r, long long want, const char *what)
{
    int64_t end = th_now_ms() + th_slack_ms(3000);
    long long gen = generation(r);
    while (gen < want && th_now_ms() < end) {
        th_sleep_ms(20);
        gen = generation(r);
    }
    ck_assert_msg(gen == want, "%s: generation %lld, want %lld", what, gen, want);
}

/* Polls until the failure counter exceeds `before` (a rejected asynchronous reload). */
static void wait_failed_reload(const th_remora_t *r, double before, const char *what)
{
    int64_t end = th_now_ms() + th_slack_ms(3000);
    double v = metric(r, RELOADS_FAILED, 0);
    while (v <= before && th_now_ms() < end) {
        th_sleep_ms(20);
        v = metric(r, RELOADS_FAILED, 0);
    }
    ck_assert_msg(v == before + 1, "%s: %s is %g, want %g", what, RELOADS_FAILED, v, before + 1);
}

/* ---- problems of an invalid config ---- */

typedef struct problem {
    char path[256];
    long line, column;
    char message[256];
} problem_t;

#define MAX_PROBLEMS 16

/* Parses `remora --check` output lines "FILE:LINE:COL: PATH: MESSAGE" into `out`. */
static size_t check_problems(const char *yaml, problem_t *out)
{
    char file[256], *text = NULL;
    th_tmpfile_write(file, sizeof(file), "check.yaml", yaml);
    int rc = th_remora_check(file, &text);
    ck_assert_msg(rc == 1, "remora --check exit %d, want 1:\n%s", rc, text);
    size_t n = 0, flen = strlen(file);
    for (char *line = text; line != NULL && *line != '\0' && n < MAX_PROBLEMS;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        char *p = line + flen;
        problem_t *pr = &out[n];
        int off = 0;
        if (strncmp(line, file, flen) == 0 &&
            sscanf(p, ":%ld:%ld: %255[^:]: %n", &pr->line, &pr->column, pr->path, &off) == 3 &&
            off > 0) {
            snprintf(pr->message, sizeof(pr->message), "%s", p + off);
            n++;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    ck_assert_msg(n > 0, "remora --check printed no problem lines");
    return n;
}

/*
 * Asserts `resp` is the 400 of an invalid config: {"error":"invalid config",
 * "problems":[...]} holding exactly the problems `remora --check` prints for
 * `yaml`, including one at `path` on `line` with `message`.
 */
static void assert_invalid_config(th_resp_t *resp, const char *yaml, const char *path, long line,
                                  const char *message)
{
    ck_assert_msg(resp->status == 400, "invalid config: status %d, want 400 (%.300s)", resp->status,
                  resp->body ? resp->body : "");
    th_json_t *j = json_body(resp, "invalid config");
    const char *e = th_json_str(j, "error");
    ck_assert_msg(e != NULL && strcmp(e, "invalid config") == 0, "error \"%s\"", e ? e : "(none)");
    const th_json_t *list = th_json_get(j, "problems");
    ck_assert_msg(list != NULL && list->type == TH_JSON_ARRAY, "no problems array: %s", resp->body);
    problem_t want[MAX_PROBLEMS];
    size_t nwant = check_problems(yaml, want);
    ck_assert_msg(list->n == nwant, "%zu problems, remora --check prints %zu: %s", list->n, nwant,
                  resp->body);
    bool found = false;
    for (size_t i = 0; i < list->n; i++) {
        const th_json_t *p = th_json_at(list, i);
        const char *ppath = th_json_str(p, "path"), *msg = th_json_str(p, "message");
        long long pline, pcol;
        ck_assert_msg(ppath != NULL && msg != NULL && th_json_int(p, "line", &pline) &&
                          th_json_int(p, "column", &pcol),
                      "problem %zu lacks path/line/column/message: %s", i, resp->body);
        bool matched = false;
        for (size_t k = 0; k < nwant; k++) {
            matched |= strcmp(want[k].path, ppath) == 0 && want[k].line == pline &&
                       want[k].column == pcol && strcmp(want[k].message, msg) == 0;
        }
        ck_assert_msg(matched, "problem %s (%lld:%lld) \"%s\" is not what remora --check prints",
                      ppath, pline, pcol, msg);
        found |= strcmp(ppath, path) == 0 && pline == line && strcmp(msg, message) == 0;
    }
    ck_assert_msg(found, "no problem at %s line %ld \"%s\" in %s", path, line, message, resp->body);
    th_json_free(j);
}

/* Returns the 1-based line of the first occurrence of `needle` in `text`. */
static long line_of(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    ck_assert_msg(p != NULL, "\"%s\" not in the config", needle);
    long line = 1;
    for (const char *q = text; q < p; q++) {
        line += *q == '\n';
    }
    return line;
}

/* ---- the split route: backends stable and canary on their own echoes ---- */

typedef struct pair {
    th_echo_t stable, canary;
    th_remora_t r;
    const char *extra; /* YAML lines after the split route's backends (indent 8, or routes at 6) */
} pair_t;

#define SPLIT_FMT                                                                                  \
    "listeners:\n"                                                                                 \
    "  - name: main\n"                                                                             \
    "    address: 127.0.0.1:%s\n"                                                                  \
    "    routes:\n"                                                                                \
    "      - name: split\n"                                                                        \
    "        match: { path_prefix: / }\n"                                                          \
    "        backends:\n"                                                                          \
    "          - { name: stable, cluster: cs, weight: %d }\n"                                      \
    "          - { name: canary, cluster: cc, weight: %d }\n"                                      \
    "%s"                                                                                           \
    "clusters:\n"                                                                                  \
    "  - { name: cs, endpoints: [127.0.0.1:%d] }\n"                                                \
    "  - { name: cc, endpoints: [127.0.0.1:%d] }\n"

/* A canary block for the split route, then a route without one (never matched: / is first). */
#define CANARY_EXTRA                                                                               \
    "        canary: { backend: canary, baseline: stable }\n"                                      \
    "      - name: plain\n"                                                                        \
    "        match: { path_prefix: /plain }\n"                                                     \
    "        backends: [ { name: only, cluster: cs, weight: 1 } ]\n"

/* A second route whose backend names a cluster that does not exist. */
#define BROKEN_ROUTE                                                                               \
    "      - name: broken\n"                                                                       \
    "        match: { path_prefix: /broken }\n"                                                    \
    "        backends: [ { name: b, cluster: nope, weight: 1 } ]\n"

static void pair_start(pair_t *p, int ws, int wc, const char *extra, const char *const *args)
{
    p->extra = extra != NULL ? extra : "";
    th_echo_start(&p->stable, "stable");
    th_echo_start(&p->canary, "canary");
    th_remora_start_args(&p->r, args, SPLIT_FMT, "@LISTEN@", ws, wc, p->extra, p->stable.port,
                         p->canary.port);
}

/* The whole config for weights `ws`/`wc` with the listener on `listen` (NULL: r's port). */
static char *pair_yaml_at(const pair_t *p, const char *listen, int ws, int wc)
{
    return th_remora_yaml(&p->r, SPLIT_FMT, listen != NULL ? listen : "@LISTEN@", ws, wc, p->extra,
                          p->stable.port, p->canary.port);
}

static char *pair_yaml(const pair_t *p, int ws, int wc)
{
    return pair_yaml_at(p, NULL, ws, wc);
}

/* Checks one proxied answer: 200 from stable or canary, as the echo confirms. -1 if not. */
static int backend_of(const th_resp_t *resp)
{
    const char *b = th_resp_header(resp, "x-remora-backend");
    const char *e = th_resp_header(resp, "x-echo-name");
    if (resp->status != 200 || b == NULL || e == NULL || strcmp(b, e) != 0) {
        return -1;
    }
    return strcmp(b, "stable") == 0 ? 0 : strcmp(b, "canary") == 0 ? 1 : -1;
}

/* Sends `n` GETs over a new connection each and asserts every one is served by `name`. */
static void assert_served_by(int port, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        th_resp_t resp;
        it_get(port, "/", NULL, &resp);
        ck_assert_msg(backend_of(&resp) >= 0, "GET /: status %d backend %s echo %s", resp.status,
                      th_resp_header(&resp, "x-remora-backend"),
                      th_resp_header(&resp, "x-echo-name"));
        it_assert_header(&resp, "x-remora-backend", name);
        th_resp_free(&resp);
    }
}

/* ---- PUT /config ---- */

/* A config with a mistake on a known line (and one more elsewhere) changes nothing. */
START_TEST(test_reload_invalid_config_changes_nothing)
{
    pair_t p;
    th_resp_t resp;
    pair_start(&p, 100, 0, NULL, NULL);
    char *yaml = pair_yaml(&p, 100, 0);
    assert_config(&p.r, yaml, 1);
    double ok0 = metric(&p.r, RELOADS_OK, 0), failed0 = metric(&p.r, RELOADS_FAILED, 0);

    /* The good part would send everything to canary: it must not be applied. */
    char *bad = th_remora_yaml(&p.r,
                               "listeners:\n"
                               "  - name: main\n"
                               "    address: 127.0.0.1:@LISTEN@\n"
                               "    read_timeout: fast\n"
                               "    routes:\n"
                               "      - name: split\n"
                               "        match: { path_prefix: / }\n"
                               "        backends:\n"
                               "          - { name: stable, cluster: cs, weight: 0 }\n"
                               "          - { name: canary, cluster: nope, weight: 100 }\n"
                               "clusters:\n"
                               "  - { name: cs, endpoints: [127.0.0.1:%d] }\n"
                               "  - { name: cc, endpoints: [127.0.0.1:%d] }\n",
                               p.stable.port, p.canary.port);
    admin_call(&p.r, "PUT", "/config", bad, &resp);
    assert_invalid_config(&resp, bad, "listeners[0].routes[0].backends[1].cluster",
                          line_of(bad, "cluster: nope"), "no cluster named 'nope'");
    th_resp_free(&resp);
    assert_config(&p.r, yaml, 1);
    assert_served_by(p.r.port, 10, "stable");

    /* Not YAML at all: a problem with a position, and still nothing changes. */
    const char *broken = "listeners: [ { name: main\n";
    admin_call(&p.r, "PUT", "/config", broken, &resp);
    ck_assert_int_eq(resp.status, 400);
    th_json_t *j = json_body(&resp, "PUT of broken YAML");
    const th_json_t *first = th_json_at(th_json_get(j, "problems"), 0);
    long long line;
    ck_assert_msg(first != NULL && th_json_int(first, "line", &line) && line >= 1,
                  "broken YAML: %s", resp.body);
    th_json_free(j);
    th_resp_free(&resp);
    /* An empty body is no config either. */
    admin_call(&p.r, "PUT", "/config", "", &resp);
    ck_assert_int_eq(resp.status, 400);
    th_resp_free(&resp);

    assert_config(&p.r, yaml, 1);
    assert_served_by(p.r.port, 5, "stable");
    ck_assert(metric(&p.r, RELOADS_OK, 0) == ok0);
    double failed = metric(&p.r, RELOADS_FAILED, -1);
    ck_assert_msg(failed == failed0 + 3, "%s: %g, want %g", RELOADS_FAILED, failed, failed0 + 3);

    /* The same server still takes a good config. */
    char *next = pair_yaml(&p, 0, 100);
    ck_assert_int_eq(put_config(&p.r, next), 2);
    assert_served_by(p.r.port, 10, "canary");
    assert_config(&p.r, next, 2);
    ck_assert(metric(&p.r, RELOADS_OK, -1) == ok0 + 1);
    ck_assert(metric(&p.r, "remora_config_generation", -1) == 2);
    free(next);
    free(bad);
    free(yaml);
}

END_TEST

/* GET /config, then PUT that body: same routing, generation + 1, same text. */
START_TEST(test_reload_get_put_round_trip_keeps_behaviour)
{
    th_echo_t stable, canary;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&stable, "stable");
    th_echo_start(&canary, "canary");
    th_remora_start(&r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "    idle_timeout: 30s\n"
                    "    routes:\n"
                    "      - name: a\n"
                    "        match: { path_prefix: /a }\n"
                    "        timeout: 5s\n"
                    "        backends: [ { name: stable, cluster: cs, weight: 1 } ]\n"
                    "      - name: b\n"
                    "        match: { path: /b, method: GET }\n"
                    "        backends:\n"
                    "          - { name: canary, cluster: cc, weight: 3 }\n"
                    "      - name: f  # answered by the fault filter\n"
                    "        match: { path_prefix: /f }\n"
                    "        filters: [ { fault: { abort: { percent: 100, status: 418 } } } ]\n"
                    "        backends: [ { name: stable, cluster: cs, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - { name: cs, endpoints: [127.0.0.1:%d] }\n"
                    "  - { name: cc, endpoints: [127.0.0.1:%d], max_connections: 8 }\n",
                    stable.port, canary.port);
    for (int round = 0; round < 3; round++) {
        long long gen;
        char *text = config_get(&r, &gen);
        ck_assert_int_eq(gen, round + 1);
        ck_assert_int_eq(put_config(&r, text), gen + 1);
        assert_config(&r, text, gen + 1);
        free(text);

        it_get(r.port, "/a/x", NULL, &resp);
        it_assert_header(&resp, "x-remora-backend", "stable");
        th_resp_free(&resp);
        it_get(r.port, "/b", NULL, &resp);
        it_assert_header(&resp, "x-remora-backend", "canary");
        th_resp_free(&resp);
        it_get(r.port, "/b/x", NULL, &resp);
        ck_assert_int_eq(resp.status, 404);
        th_resp_free(&resp);
        it_get(r.port, "/f", NULL, &resp);
        it_assert_local_reply(&resp, 418, "fault_abort");
        th_resp_free(&resp);
    }
    /* A weight edit survives the round trip too. */
    admin_call(&r, "PUT", "/routes/b/weights", "{\"canary\": 7}", &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    long long gen;
    char *text = config_get(&r, &gen);
    ck_assert_int_eq(gen, 5);
    ck_assert_msg(strstr(text, "{ name: canary, cluster: cc, weight: 7 }") != NULL, "%s", text);
    ck_assert_int_eq(put_config(&r, text), 6);
    assert_config(&r, text, 6);
    free(text);
}

END_TEST

/* Two PUTs sent at once both apply, one after the other. */
START_TEST(test_reload_concurrent_puts_are_serialised)
{
    pair_t p;
    pair_start(&p, 100, 0, NULL, NULL);
    char *cfg[2] = {pair_yaml(&p, 100, 0), pair_yaml(&p, 0, 100)};
    long long gen = 1;
    for (int round = 0; round < 5; round++) {
        th_conn_t c[2];
        th_resp_t resp[2];
        for (int i = 0; i < 2; i++) {
            it_open(&c[i], p.r.admin_port);
        }
        /* Both requests are on the wire before either answer is read. */
        for (int i = 0; i < 2; i++) {
            ck_assert_int_eq(th_conn_sendf(&c[i],
                                           "PUT /config HTTP/1.1\r\nHost: a\r\n"
                                           "Content-Length: %zu\r\n\r\n%s",
                                           strlen(cfg[i]), cfg[i]),
                             0);
        }
        long long got[2];
        for (int i = 0; i < 2; i++) {
            int rc = th_http_read_response(&c[i], &resp[i], false);
            ck_assert_msg(rc == 0, "PUT %d: %s", i, strerror(-rc));
            ck_assert_msg(resp[i].status == 200, "PUT %d: %d %s", i, resp[i].status, resp[i].body);
            th_json_t *j = json_body(&resp[i], "concurrent PUT");
            ck_assert(th_json_int(j, "generation", &got[i]));
            th_json_free(j);
            th_resp_free(&resp[i]);
            th_conn_close(&c[i]);
        }
        ck_assert_msg((got[0] == gen + 1 && got[1] == gen + 2) ||
                          (got[0] == gen + 2 && got[1] == gen + 1),
                      "generations %lld and %lld after %lld", got[0], got[1], gen);
        gen += 2;
        /* The one applied last is the one running. */
        int last = got[0] > got[1] ? 0 : 1;
        assert_config(&p.r, cfg[last], gen);
        assert_served_by(p.r.port, 3, last == 0 ? "stable" : "canary");
    }
    free(cfg[0]);
    free(cfg[1]);
}

END_TEST

/* Over 1 MiB is refused with 413; exactly 1 MiB is a config like any other. */
START_TEST(test_reload_body_over_1mib_is_413)
{
    pair_t p;
    th_resp_t resp;
    pair_start(&p, 100, 0, NULL, NULL);
    char *yaml = pair_yaml(&p, 0, 100);
    size_t n = strlen(yaml);
    char *big = malloc(MIB + 2);
    ck_assert_ptr_nonnull(big);
    /* The config, then comment lines of 100 bytes, then one shorter to land on the size. */
    memcpy(big, yaml, n);
    size_t off = n;
    while (off < MIB + 1) {
        size_t line = MIB + 1 - off > 100 ? 100 : MIB + 1 - off;
        memset(big + off, '#', line - 1);
        big[off + line - 1] = '\n';
        off += line;
    }
    big[MIB + 1] = '\0';
    ck_assert_int_eq(strlen(big), MIB + 1);
    admin_call(&p.r, "PUT", "/config", big, &resp);
    ck_assert_msg(resp.status == 413, "PUT of %zu bytes: %d, want 413", MIB + 1, resp.status);
    th_resp_free(&resp);
    ck_assert_int_eq(generation(&p.r), 1);
    assert_served_by(p.r.port, 3, "stable");

    /* Exactly 1 MiB (the last comment line one byte shorter) is not over the limit. */
    big[MIB - 1] = '\n';
    big[MIB] = '\0';
    ck_assert_int_eq(put_config(&p.r, big), 2);
    assert_served_by(p.r.port, 3, "canary");
    free(big);
    free(yaml);
}

END_TEST

/*
 * A client that asks before sending its body (curl does for bodies over
 * 1 KiB) gets "100 Continue" at once instead of waiting out its own timer.
 */
START_TEST(test_reload_put_with_expect_continue_is_answered_at_once)
{
    pair_t p;
    pair_start(&p, 100, 0, NULL, NULL);
    char *yaml = pair_yaml(&p, 0, 100);
    size_t n = strlen(yaml);
    th_conn_t c;
    ck_assert_int_eq(th_conn_open(&c, p.r.admin_port, 2000), 0);
    ck_assert_int_eq(th_conn_sendf(&c,
                                   "PUT /config HTTP/1.1\r\nHost: admin\r\nContent-Length: %zu\r\n"
                                   "Expect: 100-continue\r\n\r\n",
                                   n),
                     0);
    char interim[64] = "";
    static const char want[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t got = 0;
    while (got < sizeof(want) - 1) {
        /* curl would send the body anyway after 1 s: the answer must come well before. */
        ssize_t r = th_conn_recv(&c, interim + got, sizeof(want) - 1 - got, th_slack_ms(500));
        ck_assert_msg(r > 0, "no 100 Continue (got \"%s\")", interim);
        got += (size_t)r;
    }
    ck_assert_str_eq(interim, want);
    ck_assert_int_eq(th_conn_send(&c, yaml, n, 2000), 0);
    th_resp_t resp;
    ck_assert_int_eq(th_http_read_response(&c, &resp, false), 0);
    ck_assert_msg(resp.status == 200, "PUT after 100 Continue: %d %s", resp.status, resp.body);
    th_resp_free(&resp);
    th_conn_close(&c);
    assert_served_by(p.r.port, 3, "canary");
    free(yaml);
}

END_TEST

/* ---- re-reading the file: SIGHUP, POST /reload, --watch ---- */

static void rewrite_conf(const th_remora_t *r, const char *yaml)
{
    char path[256];
    const char *slash = strrchr(r->conf, '/');
    th_tmpfile_write(path, sizeof(path), slash + 1, yaml);
    ck_assert_str_eq(path, r->conf);
}

START_TEST(test_reload_sighup_and_post_reload_reread_the_file)
{
    pair_t p;
    th_resp_t resp;
    pair_start(&p, 100, 0, NULL, NULL);
    char *to_canary = pair_yaml(&p, 0, 100), *to_stable = pair_yaml(&p, 100, 0);
    char *bad = th_remora_yaml(&p.r, SPLIT_FMT, "@LISTEN@", 50, 50, BROKEN_ROUTE, p.stable.port,
                               p.canary.port);

    rewrite_conf(&p.r, to_canary);
    ck_assert_int_eq(kill(p.r.proc.pid, SIGHUP), 0);
    wait_generation(&p.r, 2, "SIGHUP");
    assert_served_by(p.r.port, 10, "canary");
    assert_config(&p.r, to_canary, 2);

    /* An invalid file: counted as a failure, logged, and nothing changes. */
    double failed = metric(&p.r, RELOADS_FAILED, 0);
    rewrite_conf(&p.r, bad);
    ck_assert_int_eq(kill(p.r.proc.pid, SIGHUP), 0);
    wait_failed_reload(&p.r, failed, "SIGHUP with an invalid file");
    ck_assert_int_eq(generation(&p.r), 2);
    assert_served_by(p.r.port, 5, "canary");
    char *log = th_proc_log(&p.r.proc);
    ck_assert_msg(strstr(log, "no cluster named 'nope'") != NULL,
                  "the rejected SIGHUP reload's problem is not in remora's log");
    free(log);

    /* POST /reload answers what PUT /config would, from the file. */
    admin_call(&p.r, "POST", "/reload", NULL, &resp);
    assert_invalid_config(&resp, bad, "listeners[0].routes[1].backends[0].cluster",
                          line_of(bad, "cluster: nope"), "no cluster named 'nope'");
    th_resp_free(&resp);
    ck_assert_int_eq(generation(&p.r), 2);

    rewrite_conf(&p.r, to_stable);
    admin_call(&p.r, "POST", "/reload", NULL, &resp);
    ck_assert_msg(resp.status == 200, "POST /reload: %d %s", resp.status, resp.body);
    th_json_t *j = json_body(&resp, "POST /reload");
    long long gen = 0;
    ck_assert(th_json_int(j, "generation", &gen));
    ck_assert_int_eq(gen, 3);
    th_json_free(j);
    th_resp_free(&resp);
    assert_served_by(p.r.port, 10, "stable");
    assert_config(&p.r, to_stable, 3);
    free(bad);
    free(to_canary);
    free(to_stable);
}

END_TEST

START_TEST(test_reload_watch_picks_up_rewrites)
{
    pair_t p;
    static const char *const watch[] = {"--watch", NULL};
    pair_start(&p, 100, 0, NULL, watch);
    char *to_canary = pair_yaml(&p, 0, 100), *to_stable = pair_yaml(&p, 100, 0);

    /* Written in place. */
    rewrite_conf(&p.r, to_canary);
    wait_generation(&p.r, 2, "--watch, file written in place");
    assert_served_by(p.r.port, 10, "canary");
    assert_config(&p.r, to_canary, 2);

    /* Written to a temp file in the same directory, renamed over it. */
    char tmp[256];
    th_tmpfile_write(tmp, sizeof(tmp), "next.yaml.tmp", to_stable);
    ck_assert_int_eq(rename(tmp, p.r.conf), 0);
    wait_generation(&p.r, 3, "--watch, file renamed over");
    assert_served_by(p.r.port, 10, "stable");
    assert_config(&p.r, to_stable, 3);

    /* One write, one reload: nothing more happens while the directory stays quiet. */
    th_sleep_ms(th_slack_ms(400));
    ck_assert_int_eq(generation(&p.r), 3);

    /* The watch survives the rename: the new file is watched as well. */
    rewrite_conf(&p.r, to_canary);
    wait_generation(&p.r, 4, "--watch, rewrite after a rename");
    assert_served_by(p.r.port, 5, "canary");

    /* An invalid rewrite is counted as a failure and changes nothing. */
    double failed = metric(&p.r, RELOADS_FAILED, 0);
    char *bad = th_remora_yaml(&p.r, SPLIT_FMT, "@LISTEN@", 100, 0, BROKEN_ROUTE, p.stable.port,
                               p.canary.port);
    rewrite_conf(&p.r, bad);
    wait_failed_reload(&p.r, failed, "--watch, invalid rewrite");
    ck_assert_int_eq(generation(&p.r), 4);
    assert_served_by(p.r.port, 5, "canary");
    free(bad);
    free(to_canary);
    free(to_stable);
}

END_TEST

/* Appends a line to a file next to the config every 5 ms until told to stop. */
typedef struct busy_neighbour {
    char path[512];
    atomic_bool stop;
} busy_neighbour_t;

static void *neighbour_main(void *arg)
{
    busy_neighbour_t *b = arg;
    while (!atomic_load(&b->stop)) {
        FILE *f = fopen(b->path, "a");
        if (f) {
            fputs("GET / 200\n", f);
            fclose(f);
        }
        th_sleep_ms(5);
    }
    return NULL;
}

/*
 * A file next to the config that never stops changing (an access log) does
 * not keep the watch from noticing the config: its events are not the
 * config's, and the wait for a quiet directory is bounded.
 */
START_TEST(test_reload_watch_ignores_a_busy_neighbour)
{
    pair_t p;
    static const char *const watch[] = {"--watch", NULL};
    pair_start(&p, 100, 0, NULL, watch);
    char *to_canary = pair_yaml(&p, 0, 100);
    busy_neighbour_t b = {.stop = false};
    snprintf(b.path, sizeof(b.path), "%s.access.log", p.r.conf);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, neighbour_main, &b), 0);
    th_sleep_ms(200);
    ck_assert_int_eq(generation(&p.r), 1); /* the neighbour alone reloads nothing */
    rewrite_conf(&p.r, to_canary);
    wait_generation(&p.r, 2, "--watch beside a file written every 5 ms");
    atomic_store(&b.stop, true);
    pthread_join(t, NULL);
    assert_served_by(p.r.port, 5, "canary");
    free(to_canary);
}

END_TEST

/* ---- route weights and the canary endpoints ---- */

/* Asserts a weights answer: 200 {"generation":gen,"route":route,"weights":{...}}. */
static void assert_weights_answer(th_resp_t *resp, long long gen, const char *route, int ws, int wc,
                                  const char *what)
{
    ck_assert_msg(resp->status == 200, "%s: %d %s", what, resp->status, resp->body);
    th_json_t *j = json_body(resp, what);
    long long g = 0, s = -1, c = -1;
    ck_assert_msg(th_json_int(j, "generation", &g) && g == gen, "%s: generation in %s, want %lld",
                  what, resp->body, gen);
    const char *rn = th_json_str(j, "route");
    ck_assert_msg(rn != NULL && strcmp(rn, route) == 0, "%s: route in %s", what, resp->body);
    const th_json_t *w = th_json_get(j, "weights");
    ck_assert_msg(th_json_int(w, "stable", &s) && th_json_int(w, "canary", &c) && s == ws &&
                      c == wc,
                  "%s: weights in %s, want stable %d canary %d", what, resp->body, ws, wc);
    th_json_free(j);
}

START_TEST(test_reload_route_weights_edit_in_place)
{
    pair_t p;
    th_resp_t resp;
    pair_start(&p, 50, 50, CANARY_EXTRA, NULL);

    struct {
        const char *body;
        int ws, wc;
        const char *only; /* the backend serving everything, or NULL */
    } steps[] = {
        {"{\"stable\": 0, \"canary\": 100}", 0, 100, "canary"},
        {"{\"canary\": 0, \"stable\": 100}", 100, 0, "stable"},
        {"{\"canary\": 25}", 100, 25, NULL}, /* stable keeps its weight */
        {" { \"stable\" : 0 } ", 0, 25, "canary"},
    };

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        admin_call(&p.r, "PUT", "/routes/split/weights", steps[i].body, &resp);
        assert_weights_answer(&resp, (long long)i + 2, "split", steps[i].ws, steps[i].wc,
                              steps[i].body);
        th_resp_free(&resp);
        /* Only the weight scalars change in the YAML. */
        char *want = pair_yaml(&p, steps[i].ws, steps[i].wc);
        assert_config(&p.r, want, (long long)i + 2);
        free(want);
        if (steps[i].only != NULL) {
            assert_served_by(p.r.port, 10, steps[i].only);
        }
    }
}

END_TEST

START_TEST(test_reload_route_weights_errors_change_nothing)
{
    pair_t p;
    th_resp_t resp;
    pair_start(&p, 100, 0, CANARY_EXTRA, NULL);
    char *yaml = pair_yaml(&p, 100, 0);
    admin_call(&p.r, "PUT", "/routes/nope/weights", "{\"stable\": 1}", &resp);
    assert_json_error(&resp, 404, "weights of an unknown route");
    th_resp_free(&resp);
    static const char *const bad[] = {
        "{\"stable\": 0, \"blue\": 100}",    /* unknown backend */
        "{\"canary\": -1}",                  /* negative */
        "{\"canary\": 1.5}",                 /* not an integer */
        "{\"canary\": \"100\"}",             /* a string */
        "{\"canary\": true}",                /* a boolean */
        "{\"canary\": 100",                  /* bad JSON */
        "{\"canary\": 100} x",               /* trailing garbage */
        "[100, 0]",                          /* not an object */
        "",                                  /* nothing */
        "{\"stable\": 0, \"canary\": 0}",    /* all zero */
        "{\"stable\": 0}",                   /* all zero with the others kept */
        "{\"canary\": 99999999999999999999}" /* out of range */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        admin_call(&p.r, "PUT", "/routes/split/weights", bad[i], &resp);
        char what[128];
        snprintf(what, sizeof(what), "weights %s", bad[i]);
        assert_json_error(&resp, 400, what);
        th_resp_free(&resp);
    }
    assert_config(&p.r, yaml, 1);
    assert_served_by(p.r.port, 10, "stable");
    free(yaml);
}

END_TEST

/* GET /routes/split/canary: asserts its shape and returns its state (caller frees nothing). */
static void assert_canary(const th_remora_t *r, int ws, int wc, const char *state)
{
    th_resp_t resp;
    admin_call(r, "GET", "/routes/split/canary", NULL, &resp);
    ck_assert_msg(resp.status == 200, "GET canary: %d %s", resp.status, resp.body);
    th_json_t *j = json_body(&resp, "GET /routes/split/canary");
    const char *route = th_json_str(j, "route"), *backend = th_json_str(j, "backend");
    const char *baseline = th_json_str(j, "baseline"), *st = th_json_str(j, "state");
    ck_assert_msg(route && strcmp(route, "split") == 0 && backend &&
                      strcmp(backend, "canary") == 0 && baseline && strcmp(baseline, "stable") == 0,
                  "canary status: %s", resp.body);
    long long s = -1, c = -1;
    const th_json_t *w = th_json_get(j, "weights");
    ck_assert_msg(th_json_int(w, "stable", &s) && th_json_int(w, "canary", &c) && s == ws &&
                      c == wc,
                  "canary weights in %s, want stable %d canary %d", resp.body, ws, wc);
    ck_assert_msg(st && strcmp(st, state) == 0, "canary state in %s, want %s", resp.body, state);
    th_json_free(j);
    th_resp_free(&resp);
}

START_TEST(test_reload_canary_rollback_and_promote)
{
    pair_t p;
    th_resp_t resp;
    pair_start(&p, 70, 30, CANARY_EXTRA, NULL);
    assert_canary(&p.r, 70, 30, "progressing");
    admin_call(&p.r, "GET", "/routes/plain/canary", NULL, &resp);
    assert_json_error(&resp, 404, "canary of a route without a canary block");
    th_resp_free(&resp);
    admin_call(&p.r, "GET", "/routes/nope/canary", NULL, &resp);
    assert_json_error(&resp, 404, "canary of an unknown route");
    th_resp_free(&resp);

    admin_call(&p.r, "POST", "/routes/split/rollback", NULL, &resp);
    assert_weights_answer(&resp, 2, "split", 100, 0, "rollback");
    th_resp_free(&resp);
    assert_canary(&p.r, 100, 0, "rolled_back");
    assert_served_by(p.r.port, 10, "stable");
    char *want = pair_yaml(&p, 100, 0);
    assert_config(&p.r, want, 2);
    free(want);

    admin_call(&p.r, "POST", "/routes/split/promote", NULL, &resp);
    assert_weights_answer(&resp, 3, "split", 0, 100, "promote");
    th_resp_free(&resp);
    assert_canary(&p.r, 0, 100, "promoted");
    assert_served_by(p.r.port, 10, "canary");
    want = pair_yaml(&p, 0, 100);
    assert_config(&p.r, want, 3);

    /* Unknown routes (404) and routes without a canary block (404 like GET, or 400): refused. */
    static const char *const refused[] = {"/routes/nope/rollback", "/routes/nope/promote",
                                          "/routes/plain/rollback", "/routes/plain/promote"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        admin_call(&p.r, "POST", refused[i], NULL, &resp);
        bool plain = strstr(refused[i], "plain") != NULL;
        assert_json_error(&resp, plain && resp.status == 400 ? 400 : 404, refused[i]);
        th_resp_free(&resp);
    }
    assert_config(&p.r, want, 3);
    free(want);

    /* Back to a split by weights: progressing again. */
    admin_call(&p.r, "PUT", "/routes/split/weights", "{\"stable\": 60, \"canary\": 40}", &resp);
    assert_weights_answer(&resp, 4, "split", 60, 40, "weights 60/40");
    th_resp_free(&resp);
    assert_canary(&p.r, 60, 40, "progressing");
}

END_TEST

/* ---- admin token ---- */

START_TEST(test_reload_token_guards_the_write_endpoints)
{
    pair_t p;
    th_resp_t resp;
    char token_file[256];
    th_tmpfile_write(token_file, sizeof(token_file), "token", TOKEN "\n");
    th_remora_admin_token = TOKEN;
    th_echo_start(&p.stable, "stable");
    th_echo_start(&p.canary, "canary");
    char admin_extra[512];
    snprintf(admin_extra, sizeof(admin_extra),
             "admin: { address: 127.0.0.1:@ADMIN@, token_file: %s }\n", token_file);
    p.extra = "        canary: { backend: canary, baseline: stable }\n";
    th_remora_start(&p.r, "%s" SPLIT_FMT, admin_extra, "@LISTEN@", 100, 0, p.extra, p.stable.port,
                    p.canary.port);
    char *yaml = th_remora_yaml(&p.r, "%s" SPLIT_FMT, admin_extra, "@LISTEN@", 0, 100, p.extra,
                                p.stable.port, p.canary.port);

    struct {
        const char *method, *path, *body;
    } calls[] = {
        {"PUT", "/config", yaml},
        {"POST", "/reload", NULL},
        {"PUT", "/routes/split/weights", "{\"stable\": 0, \"canary\": 100}"},
        {"GET", "/routes/split/canary", NULL},
        {"POST", "/routes/split/rollback", NULL},
        {"POST", "/routes/split/promote", NULL},
    };

    static const char *const wrong[] = {NULL, "Authorization: Bearer reload-t0keN\r\n",
                                        "Authorization: Basic cmVsb2FkLXQwa2Vu\r\n",
                                        "Authorization: Bearer\r\n"};
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        for (size_t k = 0; k < sizeof(wrong) / sizeof(wrong[0]); k++) {
            admin_auth = wrong[k];
            admin_call(&p.r, calls[i].method, calls[i].path, calls[i].body, &resp);
            ck_assert_msg(resp.status == 401, "%s %s with %s: %d", calls[i].method, calls[i].path,
                          wrong[k] ? wrong[k] : "no token", resp.status);
            th_resp_free(&resp);
        }
    }
    admin_auth = "Authorization: Bearer " TOKEN "\r\n";
    ck_assert_int_eq(generation(&p.r), 1);
    assert_served_by(p.r.port, 5, "stable");
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        admin_call(&p.r, calls[i].method, calls[i].path, calls[i].body, &resp);
        ck_assert_msg(resp.status == 200, "%s %s with the token: %d %s", calls[i].method,
                      calls[i].path, resp.status, resp.body);
        th_resp_free(&resp);
    }
    /* PUT (0/100), reload (the file: 100/0), weights (0/100), rollback (100/0), promote. */
    ck_assert_int_eq(generation(&p.r), 6);
    assert_served_by(p.r.port, 5, "canary");
    free(yaml);
}

END_TEST

/* ---- listeners move; established connections stay ---- */

/* Reads exactly `n` bytes from `c` or fails the test. */
static void recv_exact(th_conn_t *c, char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = th_conn_recv(c, buf + got, n - got, IT_IO_MS);
        ck_assert_msg(k > 0, "tunnel read after %zu of %zu bytes: %s", got, n,
                      k == 0 ? "EOF" : strerror((int)-k));
        got += (size_t)k;
    }
}

/* Sends 64 KiB of pattern through the tunnel and checks it comes back intact. */
static void tunnel_echo(th_conn_t *c, uint64_t off)
{
    char buf[16384], got[16384];
    for (uint64_t end = off + (uint64_t)64 * 1024; off < end; off += sizeof(buf)) {
        th_pattern_fill(buf, off, sizeof(buf));
        it_send(c, buf, sizeof(buf));
        recv_exact(c, got, sizeof(got));
        ck_assert_int_eq(th_pattern_find_mismatch(got, off, sizeof(got)), -1);
    }
}

/* Binds and listens on a free 127.0.0.1 port, returning the fd and the port in `*port`. */
static int occupy_port(int *port)
{
    int fd = th_bind_loopback(port);
    ck_assert_int_eq(listen(fd, 4), 0);
    return fd;
}

/* Returns true once a connection to `port` is refused (the listening socket is closed). */
static bool port_refuses(int port)
{
    int64_t end = th_now_ms() + th_slack_ms(1000);
    for (;;) {
        th_conn_t c;
        int rc = th_conn_open(&c, port, 300);
        if (rc == -ECONNREFUSED) {
            return true;
        }
        if (rc == 0) {
            th_conn_close(&c);
        }
        if (th_now_ms() >= end) {
            return false;
        }
        th_sleep_ms(20);
    }
}

/*
 * Waits until remora-echo on `port` has counted the request sent after its
 * count was `base`: each probe counts itself, the k-th returns base + k, or
 * base + k + 1 once the request arrived.
 */
static void wait_upstream_received(int port, long base)
{
    int64_t end = th_now_ms() + th_slack_ms(2000);
    for (long k = 1; th_now_ms() < end; k++) {
        if (th_echo_seq(port) >= base + k + 1) {
            return;
        }
        th_sleep_ms(10);
    }
    ck_abort_msg("the slow request never reached the upstream");
}

/*
 * A request keeps the snapshot it started with; an old snapshot is freed
 * when its last request ends, and one that no request holds at once.
 */
START_TEST(test_reload_old_snapshot_freed_when_its_last_request_ends)
{
    pair_t p;
    th_conn_t slow;
    th_resp_t resp;
    pair_start(&p, 100, 0, NULL, NULL);
    ck_assert_int_eq((int)metric(&p.r, "remora_config_snapshots", -1), 1);

    long base = th_echo_seq(p.stable.port);
    it_open(&slow, p.r.port);
    const char *slow_req = "GET /slow HTTP/1.1\r\nHost: test\r\nx-echo-delay: 1000ms\r\n\r\n";
    it_send(&slow, slow_req, strlen(slow_req));
    wait_upstream_received(p.stable.port, base);

    char *to_canary = pair_yaml(&p, 0, 100), *to_stable = pair_yaml(&p, 100, 0);
    ck_assert_int_eq(put_config(&p.r, to_canary), 2);
    ck_assert_int_eq(put_config(&p.r, to_stable), 3);
    /* Generation 1 (held by the slow request) and 3 (current); 2 goes as soon as the admin
     * request that replaced it lets go (just after its answer). */
    int64_t end = th_now_ms() + th_slack_ms(500);
    while (metric(&p.r, "remora_config_snapshots", -1) != 2 && th_now_ms() < end) {
        th_sleep_ms(5);
    }
    ck_assert_int_eq((int)metric(&p.r, "remora_config_snapshots", -1), 2);

    ck_assert_int_eq(th_http_read_response(&slow, &resp, false), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(backend_of(&resp), 0); /* routed by the snapshot it started with */
    th_resp_free(&resp);
    end = th_now_ms() + th_slack_ms(2000);
    while (metric(&p.r, "remora_config_snapshots", -1) != 1 && th_now_ms() < end) {
        th_sleep_ms(10);
    }
    ck_assert_int_eq((int)metric(&p.r, "remora_config_snapshots", -1), 1);
    th_conn_close(&slow);
    free(to_canary);
    free(to_stable);
}

END_TEST

START_TEST(test_reload_listener_moves_and_old_connections_live_on)
{
    pair_t p;
    th_conn_t kept, slow, tunnel;
    th_resp_t resp;
    pair_start(&p, 100, 0, NULL, NULL);
    int old_port = p.r.port;

    it_open(&kept, old_port);
    it_roundtrip(&kept, "GET /kept HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_int_eq(backend_of(&resp), 0);
    th_resp_free(&resp);

    it_open(&tunnel, old_port);
    const char *up = "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n";
    it_send(&tunnel, up, strlen(up));
    ck_assert_int_eq(th_http_read_head(&tunnel, &resp, IT_IO_MS), 0);
    ck_assert_int_eq(resp.status, 101);
    th_resp_free(&resp);
    tunnel_echo(&tunnel, 0);

    /* In flight across the reload: the echo holds its answer for 1.5 s. */
    long base = th_echo_seq(p.stable.port);
    it_open(&slow, old_port);
    const char *slow_req = "GET /slow HTTP/1.1\r\nHost: test\r\nx-echo-delay: 1500ms\r\n\r\n";
    int64_t t_slow = th_now_ms();
    it_send(&slow, slow_req, strlen(slow_req));
    wait_upstream_received(p.stable.port, base);

    char new_port[16];
    int np = th_free_port();
    snprintf(new_port, sizeof(new_port), "%d", np);
    char *moved = pair_yaml_at(&p, new_port, 0, 100);
    ck_assert_int_eq(put_config(&p.r, moved), 2);
    /* The new address serves right after the 200, with the new weights. */
    assert_served_by(np, 3, "canary");
    ck_assert_msg(port_refuses(old_port), "the old listener %d still accepts", old_port);

    /* The kept-alive connection's next request is served, then it is closed. */
    it_roundtrip(&kept, "GET /kept2 HTTP/1.1\r\nHost: test\r\n\r\n", &resp);
    ck_assert_msg(backend_of(&resp) >= 0, "kept-alive request after the move: %d", resp.status);
    ck_assert_msg(th_resp_header_has_token(&resp, "connection", "close"),
                  "kept-alive answer on the old listener lacks Connection: close");
    th_resp_free(&resp);
    ck_assert_int_eq(th_conn_wait_closed(&kept, th_slack_ms(2000), NULL), 0);
    th_conn_close(&kept);

    /* The tunnel keeps echoing both ways. */
    it_send(&tunnel, "after-reload", 12);
    char got[12];
    recv_exact(&tunnel, got, sizeof(got));
    ck_assert_int_eq(memcmp(got, "after-reload", 12), 0);
    tunnel_echo(&tunnel, (uint64_t)64 * 1024);

    /* The in-flight request finishes. */
    int rc = th_http_read_response(&slow, &resp, false);
    ck_assert_msg(rc == 0, "in-flight request across the reload: %s", strerror(-rc));
    ck_assert_int_eq(backend_of(&resp), 0);
    ck_assert_int_ge(th_now_ms() - t_slow, 1400);
    th_resp_free(&resp);
    th_conn_close(&slow);

    /* Tunnel still up after all that; our EOF ends it. */
    tunnel_echo(&tunnel, (uint64_t)128 * 1024);
    ck_assert_int_eq(shutdown(tunnel.fd, SHUT_WR), 0);
    ck_assert_int_eq(th_conn_wait_closed(&tunnel, th_slack_ms(3000), NULL), 0);
    th_conn_close(&tunnel);

    /* A new address that cannot be bound: 400 at listeners[0].address, nothing changes. */
    int busy_port;
    int fd = occupy_port(&busy_port);
    char busy[16];
    snprintf(busy, sizeof(busy), "%d", busy_port);
    char *clash = pair_yaml_at(&p, busy, 100, 0);
    admin_call(&p.r, "PUT", "/config", clash, &resp);
    ck_assert_msg(resp.status == 400, "PUT with a busy address: %d %s", resp.status, resp.body);
    th_json_t *j = json_body(&resp, "busy address");
    const th_json_t *list = th_json_get(j, "problems");
    bool found = false;
    for (size_t i = 0; list != NULL && i < list->n; i++) {
        const char *path = th_json_str(th_json_at(list, i), "path");
        found |= path != NULL && strcmp(path, "listeners[0].address") == 0;
    }
    ck_assert_msg(found, "no problem at listeners[0].address: %s", resp.body);
    th_json_free(j);
    th_resp_free(&resp);
    close(fd);
    assert_config(&p.r, moved, 2);
    assert_served_by(np, 3, "canary");
    free(clash);
    free(moved);
}

END_TEST

#define TWO_LISTENERS_FMT                                                                          \
    "listeners:\n"                                                                                 \
    "  - name: main\n"                                                                             \
    "    address: 127.0.0.1:%s\n"                                                                  \
    "    routes:\n"                                                                                \
    "      - name: r\n"                                                                            \
    "        match: { path_prefix: / }\n"                                                          \
    "        backends: [ { name: stable, cluster: cs, weight: 1 } ]\n"                             \
    "%s"                                                                                           \
    "clusters:\n"                                                                                  \
    "  - { name: cs, endpoints: [127.0.0.1:%d] }\n"                                                \
    "  - { name: cc, endpoints: [127.0.0.1:%d] }\n"

#define SECOND_LISTENER_FMT                                                                        \
    "  - name: second\n"                                                                           \
    "    address: 127.0.0.1:%d\n"                                                                  \
    "    routes:\n"                                                                                \
    "      - name: r2\n"                                                                           \
    "        match: { path_prefix: / }\n"                                                          \
    "        backends: [ { name: canary, cluster: cc, weight: 1 } ]\n"

/* Returns the config of listener main on `port` plus, if `second` > 0, listener second. */
static char *two_listeners(const pair_t *p, int port, int second)
{
    char extra[512] = "", at[16];
    if (second > 0) {
        snprintf(extra, sizeof(extra), SECOND_LISTENER_FMT, second);
    }
    snprintf(at, sizeof(at), "%d", port);
    return th_remora_yaml(&p->r, TWO_LISTENERS_FMT, at, extra, p->stable.port, p->canary.port);
}

/*
 * Listeners come and go with the config, by address. A reload whose second
 * listener cannot bind is refused as a whole: the first listener, which it
 * would have moved, stays where it was and its would-be address is not left
 * bound.
 */
START_TEST(test_reload_listeners_added_removed_and_bind_failure_changes_nothing)
{
    pair_t p;
    th_resp_t resp;
    th_echo_start(&p.stable, "stable");
    th_echo_start(&p.canary, "canary");
    p.extra = "";
    th_remora_start(&p.r, TWO_LISTENERS_FMT, "@LISTEN@", "", p.stable.port, p.canary.port);
    int main_port = p.r.port;
    char *one = two_listeners(&p, main_port, 0);
    assert_config(&p.r, one, 1);
    assert_served_by(main_port, 2, "stable");

    /* A second listener appears. */
    int second = th_free_port();
    char *two = two_listeners(&p, main_port, second);
    ck_assert_int_eq(put_config(&p.r, two), 2);
    assert_served_by(main_port, 2, "stable");
    assert_served_by(second, 2, "canary");

    /* Moving main while second's new address is taken: 400, nothing changes. */
    int busy, moved = th_free_port();
    int fd = occupy_port(&busy);
    char *clash = two_listeners(&p, moved, busy);
    admin_call(&p.r, "PUT", "/config", clash, &resp);
    ck_assert_msg(resp.status == 400, "PUT with a busy address: %d %s", resp.status, resp.body);
    th_json_t *j = json_body(&resp, "busy address");
    const th_json_t *list = th_json_get(j, "problems");
    bool found = false;
    for (size_t i = 0; list != NULL && i < list->n; i++) {
        const th_json_t *pr = th_json_at(list, i);
        const char *path = th_json_str(pr, "path");
        long long line = 0;
        found |= path != NULL && strcmp(path, "listeners[1].address") == 0 &&
                 th_json_int(pr, "line", &line) && line == line_of(clash, "name: second") + 1;
    }
    ck_assert_msg(found, "no problem at listeners[1].address on its line: %s", resp.body);
    th_json_free(j);
    th_resp_free(&resp);
    close(fd);
    assert_config(&p.r, two, 2);
    assert_served_by(main_port, 2, "stable");
    assert_served_by(second, 2, "canary");
    ck_assert_msg(port_refuses(moved), "port %d of the refused config is still bound", moved);

    /* The second listener goes away: its port closes, main serves on. */
    ck_assert_int_eq(put_config(&p.r, one), 3);
    ck_assert_msg(port_refuses(second), "removed listener %d still accepts", second);
    assert_served_by(main_port, 2, "stable");
    free(clash);
    free(two);
    free(one);
}

END_TEST

/* ---- filter state across reloads ---- */

#define HOOKS_FMT                                                                                  \
    "listeners:\n"                                                                                 \
    "  - name: main\n"                                                                             \
    "    address: 127.0.0.1:@LISTEN@\n"                                                            \
    "    idle_timeout: %s\n"                                                                       \
    "    routes:\n"                                                                                \
    "      - name: a\n"                                                                            \
    "        match: { path_prefix: /a }\n"                                                         \
    "        filters: [ { test_hooks: %s } ]\n"                                                    \
    "        backends: [ { name: stable, cluster: cs, weight: 1 } ]\n"                             \
    "      - name: b\n"                                                                            \
    "        match: { path_prefix: /b }\n"                                                         \
    "        filters: [ { test_hooks: %s } ]\n"                                                    \
    "        backends: [ { name: stable, cluster: cs, weight: 1 } ]\n"                             \
    "clusters:\n"                                                                                  \
    "  - { name: cs, endpoints: [127.0.0.1:%d] }\n"

/* GETs `path` and asserts header `name` is `seq` (and, if given, `absent` is not there). */
static void assert_seq(int port, const char *path, const char *name, int seq, const char *absent)
{
    th_resp_t resp;
    char want[16];
    snprintf(want, sizeof(want), "%d", seq);
    it_get(port, path, NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    it_assert_header(&resp, name, want);
    ck_assert_msg(absent == NULL || th_resp_header(&resp, absent) == NULL, "%s still set on %s",
                  absent, path);
    th_resp_free(&resp);
}

START_TEST(test_reload_filter_state_carried_when_rule_unchanged)
{
    th_echo_t e;
    th_remora_t r;
    th_resp_t resp;
    th_echo_start(&e, "stable");
    const char *rule = "{ header: x-th }";
    char logged[512];
    snprintf(logged, sizeof(logged), "{ header: x-th, log: \"%s/hooks.log\" }", th_tmpdir());
    const char *renamed = "{ header: x-tj }";
    th_remora_start(&r, HOOKS_FMT, "90s", rule, rule, e.port);
    for (int i = 1; i <= 3; i++) {
        assert_seq(r.port, "/a", "x-th-seq", i, NULL);
    }
    assert_seq(r.port, "/b", "x-th-seq", 1, NULL);

    /* Another part of the config changes: both rules are the same, both counts go on. */
    char *y = th_remora_yaml(&r, HOOKS_FMT, "60s", rule, rule, e.port);
    ck_assert_int_eq(put_config(&r, y), 2);
    free(y);
    assert_seq(r.port, "/a", "x-th-seq", 4, NULL);
    assert_seq(r.port, "/b", "x-th-seq", 2, NULL);

    /* The same text again. */
    char *text = config_get(&r, NULL);
    ck_assert_int_eq(put_config(&r, text), 3);
    free(text);
    assert_seq(r.port, "/a", "x-th-seq", 5, NULL);

    /* b's rule changes (a log file): b starts over, a goes on. */
    y = th_remora_yaml(&r, HOOKS_FMT, "60s", rule, logged, e.port);
    ck_assert_int_eq(put_config(&r, y), 4);
    free(y);
    assert_seq(r.port, "/b", "x-th-seq", 1, NULL);
    assert_seq(r.port, "/b", "x-th-seq", 2, NULL);
    assert_seq(r.port, "/a", "x-th-seq", 6, NULL);

    /* a's header changes: a new instance under the new name; b goes on. */
    y = th_remora_yaml(&r, HOOKS_FMT, "60s", renamed, logged, e.port);
    ck_assert_int_eq(put_config(&r, y), 5);
    free(y);
    assert_seq(r.port, "/a", "x-tj-seq", 1, "x-th-seq");
    assert_seq(r.port, "/b", "x-th-seq", 3, NULL);

    /* A weight edit is a reload that keeps every rule. */
    admin_call(&r, "PUT", "/routes/a/weights", "{\"stable\": 5}", &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    ck_assert_int_eq(generation(&r), 6);
    assert_seq(r.port, "/a", "x-tj-seq", 2, "x-th-seq");
    assert_seq(r.port, "/b", "x-th-seq", 4, NULL);
}

END_TEST

/* ---- 100 reloads under load ---- */

#define LOAD_CONNS 6
#define LOAD_RELOADS 100
#define LOAD_HOLD_MS 30
#define LOAD_MAX_RECS 200000

typedef struct load_rec {
    int64_t sent_ns, done_ns;
    bool canary;
} load_rec_t;

typedef struct load_worker {
    pthread_t tid;
    int port;
    atomic_bool *stop;
    atomic_long done;
    load_rec_t *recs;
    size_t nrecs;
    char failure[256]; /* "" unless a request failed */
} load_worker_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One client: one keep-alive connection for the whole test, GETs back to back. */
static void *load_main(void *arg)
{
    load_worker_t *w = arg;
    th_conn_t c;
    int rc = th_conn_open(&c, w->port, th_slack_ms(TH_HTTP_TIMEOUT_MS));
    if (rc != 0) {
        snprintf(w->failure, sizeof(w->failure), "connect: %s", strerror(-rc));
        return NULL;
    }
    static const char req[] = "GET /load HTTP/1.1\r\nHost: test\r\n\r\n";
    while (!atomic_load(w->stop)) {
        th_resp_t resp;
        int64_t t0 = now_ns();
        rc = th_http_roundtrip(&c, req, &resp);
        int64_t t1 = now_ns();
        int b = rc == 0 ? backend_of(&resp) : -1;
        if (rc != 0) {
            snprintf(w->failure, sizeof(w->failure), "request %ld: connection lost: %s",
                     atomic_load(&w->done), strerror(-rc));
        } else if (b < 0) {
            snprintf(w->failure, sizeof(w->failure),
                     "request %ld: status %d, x-remora-backend %s, x-echo-name %s, reason %s",
                     atomic_load(&w->done), resp.status, th_resp_header(&resp, "x-remora-backend"),
                     th_resp_header(&resp, "x-echo-name"),
                     th_resp_header(&resp, "x-remora-reason"));
        } else if (th_resp_header_has_token(&resp, "connection", "close")) {
            snprintf(w->failure, sizeof(w->failure), "request %ld: Connection: close",
                     atomic_load(&w->done));
        }
        th_resp_free(&resp);
        if (w->failure[0] != '\0') {
            break;
        }
        if (w->nrecs < LOAD_MAX_RECS) {
            w->recs[w->nrecs++] = (load_rec_t){t0, t1, b == 1};
        }
        atomic_fetch_add(&w->done, 1);
    }
    th_conn_close(&c);
    return NULL;
}

/* A stretch of time during which one config was running, from its 200 to the next PUT. */
typedef struct phase {
    int64_t from_ns, to_ns;
    bool b; /* config B (10/90), else A (90/10) */
    long n, canary;
} phase_t;

/* Asserts the canary share of `n` requests is within 5 sigma of `p`. */
static void assert_share(const char *what, long canary, long n, double p, long min_n)
{
    ck_assert_msg(n >= min_n, "%s: only %ld requests attributed (want >= %ld)", what, n, min_n);
    double share = (double)canary / (double)n;
    double bound = 5 * sqrt(p * (1 - p) / (double)n);
    fprintf(stderr, "reload_load: %s: %ld of %ld to canary (%.3f, want %.2f +- %.3f)\n", what,
            canary, n, share, p, bound);
    ck_assert_msg(fabs(share - p) <= bound, "%s: canary share %.4f of %ld, want %.2f +- %.4f", what,
                  share, n, p, bound);
}

START_TEST(test_reload_100_reloads_under_load_lose_nothing)
{
    pair_t p;
    pair_start(&p, 90, 10, NULL, NULL);
    char *cfg_a = pair_yaml(&p, 90, 10), *cfg_b = pair_yaml(&p, 10, 90);
    double ok0 = metric(&p.r, RELOADS_OK, 0);

    atomic_bool stop = false;
    load_worker_t *w = calloc(LOAD_CONNS, sizeof(*w));
    ck_assert_ptr_nonnull(w);
    for (int i = 0; i < LOAD_CONNS; i++) {
        w[i].port = p.r.port;
        w[i].stop = &stop;
        w[i].recs = malloc(LOAD_MAX_RECS * sizeof(load_rec_t));
        ck_assert_ptr_nonnull(w[i].recs);
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL, load_main, &w[i]), 0);
    }
    /* Every client has its connection up and served before the first reload. */
    int64_t end = th_now_ms() + th_slack_ms(5000);
    for (int i = 0; i < LOAD_CONNS; i++) {
        while (atomic_load(&w[i].done) == 0 && w[i].failure[0] == '\0' && th_now_ms() < end) {
            th_sleep_ms(5);
        }
    }

    static phase_t phases[LOAD_RELOADS + 1];
    memset(phases, 0, sizeof(phases));
    phases[0].from_ns = now_ns();
    long long gens[LOAD_RELOADS];
    int statuses[LOAD_RELOADS];
    for (int k = 0; k < LOAD_RELOADS; k++) {
        bool b = k % 2 == 0;
        const char *yaml = b ? cfg_b : cfg_a;
        th_resp_t resp;
        phases[k].to_ns = now_ns();
        int rc = th_http_request(p.r.admin_port, "PUT", "/config", NULL, yaml, strlen(yaml), &resp);
        phases[k + 1].from_ns = now_ns();
        phases[k + 1].b = b;
        statuses[k] = rc == 0 ? resp.status : rc;
        gens[k] = -1;
        th_json_t *j = rc == 0 ? th_json_parse(resp.body, resp.body_len) : NULL;
        if (j == NULL || !th_json_int(j, "generation", &gens[k])) {
            gens[k] = -1;
        }
        th_json_free(j);
        th_resp_free(&resp);
        th_sleep_ms(LOAD_HOLD_MS);
    }
    phases[LOAD_RELOADS].to_ns = now_ns();
    atomic_store(&stop, true);
    for (int i = 0; i < LOAD_CONNS; i++) {
        ck_assert_int_eq(pthread_join(w[i].tid, NULL), 0);
    }

    /* Zero failed requests, zero dropped connections. */
    long total = 0;
    for (int i = 0; i < LOAD_CONNS; i++) {
        ck_assert_msg(w[i].failure[0] == '\0', "client %d: %s", i, w[i].failure);
        ck_assert_msg(atomic_load(&w[i].done) > 0, "client %d made no request", i);
        total += atomic_load(&w[i].done);
    }
    /* Every PUT applied, in order. */
    for (int k = 0; k < LOAD_RELOADS; k++) {
        ck_assert_msg(statuses[k] == 200 && gens[k] == k + 2, "PUT %d: status %d generation %lld",
                      k, statuses[k], gens[k]);
    }

    /* Attribute each request to the phase that contains it whole. */
    for (int i = 0; i < LOAD_CONNS; i++) {
        int ph = 0;
        for (size_t q = 0; q < w[i].nrecs; q++) {
            const load_rec_t *rec = &w[i].recs[q];
            while (ph <= LOAD_RELOADS && phases[ph].to_ns < rec->sent_ns) {
                ph++;
            }
            if (ph <= LOAD_RELOADS && rec->sent_ns >= phases[ph].from_ns &&
                rec->done_ns <= phases[ph].to_ns) {
                phases[ph].n++;
                phases[ph].canary += rec->canary;
            }
        }
    }
    long na = 0, ca = 0, nb = 0, cb = 0;
    int used = 0;
    for (int k = 0; k <= LOAD_RELOADS; k++) {
        used += phases[k].n > 0;
        if (phases[k].b) {
            nb += phases[k].n;
            cb += phases[k].canary;
        } else {
            na += phases[k].n;
            ca += phases[k].canary;
        }
    }
    fprintf(stderr, "reload_load: %ld requests on %d connections, %d of %d phases observed\n",
            total, LOAD_CONNS, used, LOAD_RELOADS + 1);
    ck_assert_msg(used >= (LOAD_RELOADS + 1) / 2, "only %d of %d phases saw a whole request", used,
                  LOAD_RELOADS + 1);
    long min_n = th_scaled_count(2000);
    assert_share("config A (90/10)", ca, na, 0.10, min_n);
    assert_share("config B (10/90)", cb, nb, 0.90, min_n);

    ck_assert_int_eq(generation(&p.r), LOAD_RELOADS + 1);
    double ok = metric(&p.r, RELOADS_OK, -1);
    ck_assert_msg(ok == ok0 + LOAD_RELOADS, "%s: %g, want %g", RELOADS_OK, ok, ok0 + LOAD_RELOADS);
    ck_assert(th_proc_alive(&p.r.proc));
    for (int i = 0; i < LOAD_CONNS; i++) {
        free(w[i].recs);
    }
    free(w);
    free(cfg_a);
    free(cfg_b);
}

END_TEST

static TCase *reload_tcase(Suite *s, const char *name, double timeout_s)
{
    TCase *tc = it_tcase(s, name, timeout_s);
    tcase_add_checked_fixture(tc, reload_setup, NULL);
    return tc;
}

Suite *suite_integration_reload(void)
{
    Suite *s = suite_create("integration/reload");
    TCase *tc = reload_tcase(s, "put_config", 20);
    tcase_add_test(tc, test_reload_invalid_config_changes_nothing);
    tcase_add_test(tc, test_reload_get_put_round_trip_keeps_behaviour);
    tcase_add_test(tc, test_reload_concurrent_puts_are_serialised);
    tcase_add_test(tc, test_reload_body_over_1mib_is_413);
    tcase_add_test(tc, test_reload_put_with_expect_continue_is_answered_at_once);
    tc = reload_tcase(s, "file", 20);
    tcase_add_test(tc, test_reload_sighup_and_post_reload_reread_the_file);
    tcase_add_test(tc, test_reload_watch_picks_up_rewrites);
    tcase_add_test(tc, test_reload_watch_ignores_a_busy_neighbour);
    tc = reload_tcase(s, "routes", 20);
    tcase_add_test(tc, test_reload_route_weights_edit_in_place);
    tcase_add_test(tc, test_reload_route_weights_errors_change_nothing);
    tcase_add_test(tc, test_reload_canary_rollback_and_promote);
    tcase_add_test(tc, test_reload_token_guards_the_write_endpoints);
    tc = reload_tcase(s, "carry", 20);
    tcase_add_test(tc, test_reload_listener_moves_and_old_connections_live_on);
    tcase_add_test(tc, test_reload_old_snapshot_freed_when_its_last_request_ends);
    tcase_add_test(tc, test_reload_listeners_added_removed_and_bind_failure_changes_nothing);
    tcase_add_test(tc, test_reload_filter_state_carried_when_rule_unchanged);
    return s;
}

Suite *suite_integration_reload_load(void)
{
    Suite *s = suite_create("integration/reload_load");
    TCase *tc = reload_tcase(s, "load", 40);
    tcase_add_test(tc, test_reload_100_reloads_under_load_lose_nothing);
    return s;
}
