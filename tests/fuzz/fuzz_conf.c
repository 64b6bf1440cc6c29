/* SPDX-License-Identifier: MIT */
/*
 * fuzz_conf.c - libFuzzer entry point for the config loader (conf/), which
 * takes YAML from the admin API (PUT /config, PUT /routes/NAME/weights).
 * Besides "no crash, hang, leak or sanitizer report" it checks properties:
 * a load returns a config or problems (never both, never neither), every
 * problem has a path and a message, a loaded config has no NULL string,
 * loading twice gives configs the equality functions call equal, and
 * cfg_set_weights returns NUL-terminated text of its reported length, is
 * idempotent, breaks no YAML that parsed, and sets exactly what it was told.
 *
 * cfg_set_weights' arguments come from the input. An input that starts with
 * a header comment line "#w ROUTE [BACKEND=WEIGHT]...\n" (at most 8 pairs)
 * names them, and the weights are set in the rest of the input; the header
 * is a YAML comment, so the whole input is still the same document. Any other
 * input picks a route and backends from a table of names used by the corpus,
 * by its first two bytes, and sets them in the whole input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_conf: property failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_WEIGHTS 8
#define NAME_MAX_LEN 32
#define CHECK_PAIRS 8 /* symmetry is checked on the first few entries only (quadratic) */

/* The header line's route, backends and weights (names point into `names`). */
typedef struct weights_arg {
    char route[NAME_MAX_LEN + 1];
    char names[MAX_WEIGHTS][NAME_MAX_LEN + 1];
    cfg_weight_t w[MAX_WEIGHTS];
    size_t n;
} weights_arg_t;

/* Route and backend names of the seed corpus, for inputs without a header. */
static const char *const route_names[] = {"all", "orders", "demo", "exact", "negative", "r", ""};
static const char *const backend_names[] = {"b", "stable", "canary", "a", "only", "other", "x"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- loading ---- */

/* The problems after a call that returned `rc`: none on success, some on failure. */
static void check_errors(const cfg_errors_t *errs, int rc)
{
    if (rc == 0) {
        FUZZ_CHECK(errs->count == 0 && errs->items == NULL);
        return;
    }
    FUZZ_CHECK(rc == -1 && errs->count > 0 && errs->items != NULL);
    for (size_t i = 0; i < errs->count; i++) {
        FUZZ_CHECK(errs->items[i].path != NULL && errs->items[i].message != NULL);
        FUZZ_CHECK(errs->items[i].message[0] != '\0');
    }
}

static void check_str(const char *s)
{
    FUZZ_CHECK(s != NULL);
}

/* conf.h: strings are never NULL after loading; one filter kind per entry. */
static void check_config(const cfg_config_t *cfg)
{
    check_str(cfg->admin.address);
    check_str(cfg->admin.token_file);
    FUZZ_CHECK(cfg->listeners_count > 0 && cfg->listeners != NULL);
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        check_str(l->name);
        check_str(l->address);
        check_str(l->access_log);
        for (unsigned j = 0; j < l->routes_count; j++) {
            const cfg_route_t *r = &l->routes[j];
            check_str(r->name);
            check_str(r->match.path_prefix);
            check_str(r->match.path);
            check_str(r->match.host);
            check_str(r->match.method);
            for (unsigned k = 0; k < r->match.headers_count; k++) {
                check_str(r->match.headers[k].name);
                check_str(r->match.headers[k].value);
            }
            FUZZ_CHECK(r->backends_count > 0);
            for (unsigned k = 0; k < r->backends_count; k++) {
                check_str(r->backends[k].name);
                check_str(r->backends[k].cluster);
                FUZZ_CHECK(cfg_find_cluster(cfg, r->backends[k].cluster) != NULL);
            }
            for (unsigned k = 0; k < r->filters_count; k++) {
                const cfg_filter_t *f = &r->filters[k];
                int kinds = (f->rate_limit != NULL) + (f->circuit_breaker != NULL) +
                            (f->fault != NULL) + (f->test_hooks != NULL);
                FUZZ_CHECK(kinds == 1);
                if (f->rate_limit != NULL) {
                    FUZZ_CHECK(f->kind == CFG_FILTER_RATE_LIMIT);
                    check_str(f->rate_limit->key_header);
                    check_str(f->rate_limit->related_route);
                } else if (f->circuit_breaker != NULL) {
                    FUZZ_CHECK(f->kind == CFG_FILTER_CIRCUIT_BREAKER);
                    check_str(f->circuit_breaker->fallback_cluster);
                } else if (f->fault != NULL) {
                    FUZZ_CHECK(f->kind == CFG_FILTER_FAULT);
                } else {
                    FUZZ_CHECK(f->kind == CFG_FILTER_TEST_HOOKS);
                    check_str(f->test_hooks->header);
                    check_str(f->test_hooks->log);
                }
            }
            if (r->canary != NULL) {
                check_str(r->canary->backend);
                check_str(r->canary->baseline);
                check_str(r->canary->override_header);
                check_str(r->canary->sticky);
            }
        }
    }
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        check_str(cfg->clusters[i].name);
        for (unsigned k = 0; k < cfg->clusters[i].endpoints_count; k++) {
            check_str(cfg->clusters[i].endpoints[k]);
        }
    }
}

/* Equality is reflexive across two loads of the same bytes, and symmetric. */
static void check_equal(const cfg_config_t *a, const cfg_config_t *b)
{
    FUZZ_CHECK(a->clusters_count == b->clusters_count);
    for (unsigned i = 0; i < a->clusters_count; i++) {
        FUZZ_CHECK(cfg_cluster_equal(&a->clusters[i], &b->clusters[i]));
        FUZZ_CHECK(cfg_cluster_equal(&a->clusters[i], &a->clusters[i]));
        for (unsigned j = 0; j < a->clusters_count && j < CHECK_PAIRS && i < CHECK_PAIRS; j++) {
            FUZZ_CHECK(cfg_cluster_equal(&a->clusters[i], &b->clusters[j]) ==
                       cfg_cluster_equal(&b->clusters[j], &a->clusters[i]));
        }
    }
    if (a->clusters_count > 0) {
        FUZZ_CHECK(!cfg_cluster_equal(&a->clusters[0], NULL));
    }
    FUZZ_CHECK(a->listeners_count == b->listeners_count);
    for (unsigned i = 0; i < a->listeners_count; i++) {
        const cfg_listener_t *la = &a->listeners[i], *lb = &b->listeners[i];
        FUZZ_CHECK(la->routes_count == lb->routes_count);
        for (unsigned j = 0; j < la->routes_count; j++) {
            const cfg_route_t *ra = &la->routes[j], *rb = &lb->routes[j];
            FUZZ_CHECK(ra->filters_count == rb->filters_count);
            for (unsigned k = 0; k < ra->filters_count; k++) {
                FUZZ_CHECK(cfg_filter_equal(&ra->filters[k], &rb->filters[k]));
                for (unsigned m = 0; m < ra->filters_count && m < CHECK_PAIRS; m++) {
                    FUZZ_CHECK(cfg_filter_equal(&ra->filters[k], &rb->filters[m]) ==
                               cfg_filter_equal(&rb->filters[m], &ra->filters[k]));
                }
            }
            FUZZ_CHECK((ra->canary == NULL) == (rb->canary == NULL));
            FUZZ_CHECK(cfg_canary_equal(ra->canary, rb->canary));
            FUZZ_CHECK(cfg_canary_equal(ra->canary, ra->canary));
        }
    }
}

/*
 * Loads `len` bytes and checks the outcome. With `again`, a success is loaded
 * a second time and compared. Returns the config (caller frees) or NULL;
 * `*syntax` says whether the load failed on YAML syntax.
 */
static cfg_config_t *load(const char *yaml, size_t len, bool again, bool *syntax)
{
    static cfg_config_t untouched;
    cfg_config_t *cfg = &untouched;
    cfg_errors_t errs = {0};
    int rc = cfg_load_data(yaml, len, &cfg, &errs);
    check_errors(&errs, rc);
    *syntax = rc != 0 && strncmp(errs.items[0].message, "YAML syntax error", 17) == 0;
    if (rc != 0) {
        FUZZ_CHECK(cfg == &untouched);
        /* Placing a post-load problem (e.g. an unbindable address) at a reported path. */
        cfg_errors_add_at(&errs, yaml, len, errs.items[errs.count - 1].path, "fuzz");
        FUZZ_CHECK(errs.items[errs.count - 1].path != NULL);
        cfg_errors_destroy(&errs);
        FUZZ_CHECK(errs.count == 0 && errs.items == NULL);
        return NULL;
    }
    FUZZ_CHECK(cfg != NULL && cfg != &untouched);
    check_config(cfg);
    if (again) {
        cfg_config_t *cfg2 = NULL;
        FUZZ_CHECK(cfg_load_data(yaml, len, &cfg2, &errs) == 0 && errs.count == 0);
        check_equal(cfg, cfg2);
        FUZZ_CHECK(cfg_config_retain(cfg2) == cfg2);
        cfg_config_free(cfg2);
        cfg_config_free(cfg2);
    }
    return cfg;
}

/* ---- cfg_set_weights ---- */

/* Reads a name of up to NAME_MAX_LEN bytes up to a space, '=' or the end of the header. */
static size_t read_name(const char *s, size_t len, char *out)
{
    size_t i = 0;
    while (i < len && s[i] != ' ' && s[i] != '=' && i < NAME_MAX_LEN) {
        out[i] = s[i];
        i++;
    }
    out[i] = '\0';
    return i;
}

/* Parses "#w ROUTE [NAME=WEIGHT]...\n"; returns the header's length, or 0 if there is none. */
static size_t parse_header(const char *s, size_t len, weights_arg_t *a)
{
    const char *nl = len >= 3 && memcmp(s, "#w ", 3) == 0 ? memchr(s, '\n', len) : NULL;
    if (nl == NULL) {
        return 0;
    }
    size_t hlen = (size_t)(nl - s), i = 3;
    i += read_name(s + i, hlen - i, a->route);
    while (i < hlen && a->n < MAX_WEIGHTS) {
        while (i < hlen && s[i] == ' ') {
            i++;
        }
        if (i == hlen) {
            break;
        }
        size_t k = a->n++;
        i += read_name(s + i, hlen - i, a->names[k]);
        uint32_t v = 0;
        if (i < hlen && s[i] == '=') {
            /* Wraps on overflow: any uint32_t is a weight to write. */
            for (i++; i < hlen && s[i] >= '0' && s[i] <= '9'; i++) {
                v = v * 10 + (uint32_t)(s[i] - '0');
            }
        }
        while (i < hlen && s[i] != ' ') {
            i++;
        }
        a->w[k] = (cfg_weight_t){a->names[k], v};
    }
    return hlen + 1;
}

/* No header: a table route and 0..3 table backends, all picked by the first two bytes. */
static void pick_weights(const uint8_t *data, size_t size, weights_arg_t *a)
{
    unsigned b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
    snprintf(a->route, sizeof(a->route), "%s", route_names[b0 % COUNT(route_names)]);
    a->n = (b0 >> 4) % 4;
    for (size_t k = 0; k < a->n; k++) {
        snprintf(a->names[k], sizeof(a->names[k]), "%s",
                 backend_names[(b1 + k) % COUNT(backend_names)]);
        a->w[k] = (cfg_weight_t){a->names[k], (uint32_t)(b1 * (k + 1)) % 200};
    }
}

/* The weight `w` sets for `backend` (the last listed wins), or -1 if `w` does not name it. */
static int64_t wanted(const weights_arg_t *a, const char *backend)
{
    int64_t v = -1;
    for (size_t k = 0; k < a->n; k++) {
        if (strcmp(a->w[k].backend, backend) == 0) {
            v = a->w[k].weight;
        }
    }
    return v;
}

/*
 * `before` and `after` are loads of a document and of its weights set by `a`:
 * the listed backends of the routes named `a->route` have their new weight,
 * and everything else is as it was. Only for documents without anchors: an
 * edited weight may carry an anchor that other values refer to.
 */
static void check_patched(const cfg_config_t *before, const cfg_config_t *after,
                          const weights_arg_t *a)
{
    FUZZ_CHECK(before->listeners_count == after->listeners_count);
    FUZZ_CHECK(before->clusters_count == after->clusters_count);
    for (unsigned i = 0; i < before->clusters_count; i++) {
        FUZZ_CHECK(cfg_cluster_equal(&before->clusters[i], &after->clusters[i]));
    }
    for (unsigned i = 0; i < before->listeners_count; i++) {
        const cfg_listener_t *lb = &before->listeners[i], *la = &after->listeners[i];
        FUZZ_CHECK(lb->routes_count == la->routes_count);
        for (unsigned j = 0; j < lb->routes_count; j++) {
            const cfg_route_t *rb = &lb->routes[j], *ra = &la->routes[j];
            bool target = strcmp(rb->name, a->route) == 0;
            FUZZ_CHECK(strcmp(rb->name, ra->name) == 0);
            FUZZ_CHECK(rb->backends_count == ra->backends_count);
            FUZZ_CHECK(rb->filters_count == ra->filters_count);
            for (unsigned k = 0; k < rb->filters_count; k++) {
                FUZZ_CHECK(cfg_filter_equal(&rb->filters[k], &ra->filters[k]));
            }
            FUZZ_CHECK(cfg_canary_equal(rb->canary, ra->canary));
            for (unsigned k = 0; k < rb->backends_count; k++) {
                int64_t v = target ? wanted(a, rb->backends[k].name) : -1;
                FUZZ_CHECK(strcmp(rb->backends[k].name, ra->backends[k].name) == 0);
                FUZZ_CHECK(strcmp(rb->backends[k].cluster, ra->backends[k].cluster) == 0);
                FUZZ_CHECK(ra->backends[k].weight ==
                           (v >= 0 ? (uint32_t)v : rb->backends[k].weight));
            }
        }
    }
}

/*
 * Sets the weights `a` in `yaml` and checks the result; `orig` is the load of
 * `yaml` (or NULL), `orig_syntax` whether it failed on YAML syntax.
 */
static void set_weights(const char *yaml, size_t len, const weights_arg_t *a,
                        const cfg_config_t *orig, bool orig_syntax)
{
    char *out = NULL, *out2 = NULL;
    size_t out_len = 0, out2_len = 0;
    cfg_errors_t errs = {0};
    int rc = cfg_set_weights(yaml, len, a->route, a->w, a->n, &out, &out_len, &errs);
    check_errors(&errs, rc);
    cfg_errors_destroy(&errs);
    if (rc != 0) {
        FUZZ_CHECK(out == NULL);
        return;
    }
    FUZZ_CHECK(out != NULL && out[out_len] == '\0');
    if (memchr(yaml, '\0', len) == NULL) {
        FUZZ_CHECK(strlen(out) == out_len);
    }

    /* The result loads (or not) cleanly; setting the same weights again changes nothing. */
    bool syntax;
    cfg_config_t *cfg = load(out, out_len, false, &syntax);
    FUZZ_CHECK(orig_syntax || !syntax);
    rc = cfg_set_weights(out, out_len, a->route, a->w, a->n, &out2, &out2_len, &errs);
    check_errors(&errs, rc);
    cfg_errors_destroy(&errs);
    FUZZ_CHECK(rc == 0 && out2_len == out_len && memcmp(out, out2, out_len + 1) == 0);

    bool anchors = memchr(yaml, '&', len) != NULL;
    if (orig != NULL && cfg != NULL && !anchors) {
        check_patched(orig, cfg, a);
    }
    cfg_config_free(cfg);
    free(out2);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *yaml = (const char *)data;
    bool syntax;
    cfg_config_t *cfg = load(yaml, size, true, &syntax);

    weights_arg_t a = {.n = 0};
    size_t skip = parse_header(yaml, size, &a);
    if (skip == 0) {
        pick_weights(data, size, &a);
    }
    /* The header is a comment: the rest is the same document as the whole. */
    set_weights(yaml + skip, size - skip, &a, cfg, syntax);
    cfg_config_free(cfg);
    return 0;
}
