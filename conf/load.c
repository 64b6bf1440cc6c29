/* SPDX-License-Identifier: MIT */
/*
 * load.c - cfg_load_*: bytes -> libyaml index (lines.c) -> libcyaml load
 * (schema.c) -> convert -> defaults -> validate. Every stage reports into one
 * cfg_errors_t with YAML paths and positions; a document with any problem is
 * rejected whole and freed.
 *
 * libcyaml 1.3.1 reports its own errors (unknown key, wrong node type, bad
 * integer, duplicate key) only through its log callback, as a message plus a
 * backtrace of "in mapping field 'k' (line: L, column: C)" / "in sequence
 * entry 'N' ..." lines; we capture them, rebuild the YAML path from the
 * backtrace and place it through our own index (libcyaml's innermost position
 * can be stale). libcyaml stops at its first error, so those documents report
 * one problem; everything after loading reports all of them. An unknown key
 * gets the closest valid key at its place as a hint (suggest.c).
 *
 * A loaded config is immutable and reference counted: the load holds the
 * first reference, cfg_config_retain adds one, cfg_config_free drops one and
 * the last frees.
 *
 * Input from the admin API is untrusted, so a load stays linear in its size:
 * lookups by path or name are hashed (index.c), and a document whose aliases
 * would make libcyaml build more than CFG__MAX_ALIAS_NODES extra nodes is
 * refused before libcyaml sees it (lines.c counts them).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/internal.h"
#include "runtime/base.h"

/* A config file larger than this is refused before reading (no real config comes close). */
#define MAX_FILE_BYTES (16u * 1024 * 1024)

typedef struct capture {
    char *buf;
    size_t len;
} capture_t;

static void on_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    capture_t *c = ctx;
    if (level < CYAML_LOG_ERROR) {
        return;
    }
    va_list ap;
    va_copy(ap, args);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        return;
    }
    c->buf = rt_xrealloc(c->buf, c->len + (size_t)n + 1);
    vsnprintf(c->buf + c->len, (size_t)n + 1, fmt, args);
    c->len += (size_t)n;
}

/* "SEQUENCE_START" -> "a sequence", for "Expecting X, got event: Y". */
static const char *node_kind(const char *event)
{
    if (strncmp(event, "SEQUENCE", 8) == 0) {
        return "a sequence";
    }
    if (strncmp(event, "MAPPING", 7) == 0) {
        return "a mapping";
    }
    if (strncmp(event, "ALIAS", 5) == 0) {
        return "an alias";
    }
    return "a scalar";
}

/* `unknown key "timout" (did you mean "timeout"?)`: `parent` is the path of the key's mapping. */
static void unknown_key_text(char *text, size_t size, const char *parent, const char *key)
{
    const char *hint = cfg__suggest_key(parent, key);
    if (hint != NULL) {
        snprintf(text, size, "unknown key \"%s\" (did you mean \"%s\"?)", key, hint);
    } else {
        snprintf(text, size, "unknown key \"%s\"", key);
    }
}

/*
 * Turns libcyaml's captured log into one problem: the message from its first
 * "Load: " line, the path from the backtrace (innermost first in the log).
 */
static void report_cyaml(const capture_t *cap, cyaml_err_t err, const cfg__lines_t *lines,
                         cfg_errors_t *errs)
{
    char msg[256] = "", comps[32][136];
    unsigned ncomp = 0, bt_line = 0, bt_col = 0;
    bool have_pos = false;

    for (char *p = cap->buf; p != NULL && *p != '\0';) {
        char *nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        char key[128];
        unsigned n, l, c;
        if (strncmp(p, "Load: ", 6) == 0 && strcmp(p, "Load: Backtrace:") != 0 && !msg[0]) {
            snprintf(msg, sizeof(msg), "%s", p + 6);
        } else if (sscanf(p, "  in mapping field '%127[^']' (line: %u, column: %u)", key, &l, &c) ==
                   3) {
            if (ncomp < 32) {
                snprintf(comps[ncomp++], sizeof(comps[0]), ".%s", key);
            }
            if (!have_pos) {
                bt_line = l, bt_col = c, have_pos = true;
            }
        } else if (sscanf(p, "  in sequence entry '%u' (line: %u, column: %u)", &n, &l, &c) == 3) {
            if (ncomp < 32) {
                snprintf(comps[ncomp++], sizeof(comps[0]), "[%u]", n > 0 ? n - 1 : 0);
            }
            if (!have_pos) {
                bt_line = l, bt_col = c, have_pos = true;
            }
        } else if (sscanf(p, "  in %*[a-z] (line: %u, column: %u)", &l, &c) == 2 && !have_pos) {
            bt_line = l, bt_col = c, have_pos = true;
        }
        p = nl ? nl + 1 : NULL;
    }

    /* The backtrace lists the innermost frame first; the path reads outermost first. */
    char path[512] = "";
    size_t len = 0;
    for (unsigned i = ncomp; i-- > 0;) {
        const char *comp = comps[i];
        if (len == 0 && comp[0] == '.') {
            comp++;
        }
        int w = snprintf(path + len, sizeof(path) - len, "%s", comp);
        if (w > 0 && (size_t)w < sizeof(path) - len) {
            len += (size_t)w;
        }
    }
    char text[320], arg[160], arg2[64];
    const char *last = strrchr(path, '.');
    last = last ? last + 1 : path;
    if (sscanf(msg, "Unexpected key: %159[^\n]", arg) == 1) {
        unknown_key_text(text, sizeof(text), path, arg);
        snprintf(path + len, sizeof(path) - len, "%s%s", len ? "." : "", arg);
    } else if (sscanf(msg, "Mapping field already seen: %159[^\n]", arg) == 1) {
        if (strcmp(last, arg) != 0) {
            snprintf(path + len, sizeof(path) - len, "%s%s", len ? "." : "", arg);
        }
        snprintf(text, sizeof(text), "duplicate key");
    } else if (sscanf(msg, "Invalid %63s value: %159[^\n]", arg2, arg) == 2) {
        snprintf(text, sizeof(text), "invalid %s %s",
                 strcmp(arg2, "UINT") == 0 || strcmp(arg2, "INT") == 0 ? "integer" : "value", arg);
    } else if (sscanf(msg, "Expecting %63[A-Z_], got event: %159s", arg2, arg) == 2) {
        snprintf(text, sizeof(text), "expected %s here, got %s",
                 strcmp(arg2, "MAPPING") == 0    ? "a mapping"
                 : strcmp(arg2, "SEQUENCE") == 0 ? "a sequence"
                                                 : "a scalar",
                 node_kind(arg));
    } else if (msg[0] != '\0') {
        snprintf(text, sizeof(text), "%s", msg);
    } else {
        snprintf(text, sizeof(text), "%s", cyaml_strerror(err));
    }

    unsigned line = 0, col = 0;
    const cfg__lines_entry_t *e = cfg__lines_find(lines, path);
    if (e != NULL && strcmp(text, "duplicate key") == 0) {
        /* Point at the repeated key, not the first one. */
        for (size_t i = lines->count; i-- > 0;) {
            if (strcmp(lines->items[i].path, path) == 0) {
                e = &lines->items[i];
                break;
            }
        }
    }
    if (e != NULL) {
        line = e->line, col = e->column;
    } else if (have_pos) {
        line = bt_line, col = bt_col;
    } else {
        cfg__lines_locate(lines, path, &line, &col);
    }
    cfg__error_add(errs, path, line, col, "%s", text);
}

/* Frees `cfg` whatever its reference count (a failed load frees before publishing it). */
static void config_destroy(cfg_config_t *cfg)
{
    /* First what the loader allocated outside the schema, then libcyaml frees the rest. */
    free(cfg->admin.address);
    free(cfg->admin.token_file);
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        const cfg_listener_t *l = &cfg->listeners[i];
        for (unsigned j = 0; j < l->routes_count; j++) {
            const cfg_route_t *r = &l->routes[j];
            for (unsigned k = 0; k < r->filters_count; k++) {
                if (r->filters[k].rate_limit != NULL) {
                    free(r->filters[k].rate_limit->key_header);
                }
            }
        }
    }
    cyaml_free(&cfg__cyaml_free_config, &cfg__config_schema, cfg, 0);
}

int cfg_load_data(const char *yaml, size_t len, cfg_config_t **out, cfg_errors_t *errs)
{
    cfg__lines_t lines = {0};
    capture_t cap = {0};
    cfg_config_t *cfg = NULL;
    size_t before = errs->count;
    unsigned line, col;
    char msg[256];

    if (cfg__lines_build(&lines, yaml, len, &line, &col, msg, sizeof(msg)) != 0) {
        cfg__error_add(errs, "", line, col, "YAML syntax error: %s", msg);
        goto fail_free_lines;
    }
    if (lines.alias_path != NULL) {
        /* Before libcyaml, which would build every copy. */
        cfg__error_add(errs, lines.alias_path, lines.alias_line, lines.alias_column,
                       "aliases expand the document by more than %u nodes", CFG__MAX_ALIAS_NODES);
        goto fail_free_lines;
    }

    cyaml_config_t cy = cfg__cyaml_free_config;
    cy.log_fn = on_cyaml_log;
    cy.log_ctx = &cap;
    cyaml_err_t err = cyaml_load_data((const uint8_t *)yaml, len, &cy, &cfg__config_schema,
                                      (cyaml_data_t **)&cfg, NULL);
    if (err != CYAML_OK) {
        report_cyaml(&cap, err, &lines, errs);
        goto fail_free_lines;
    }
    if (cfg == NULL) {
        cfg = rt_xcalloc(1, sizeof(*cfg)); /* an empty document: validation says what is missing */
    }

    cfg__walk_t w = {.errs = errs, .first = before, .lines = &lines};
    cfg__convert(cfg, &w);
    cfg__defaults_apply(cfg);
    cfg__validate(cfg, &w);
    cfg__walk_destroy(&w);
    if (errs->count != before) {
        goto fail_free_cfg;
    }
    free(cap.buf);
    cfg__lines_destroy(&lines);
    atomic_init(&cfg->refs, 1);
    *out = cfg;
    return 0;

fail_free_cfg:
    config_destroy(cfg);
fail_free_lines:
    free(cap.buf);
    cfg__lines_destroy(&lines);
    return -1;
}

int cfg_load_file(const char *path, cfg_config_t **out, cfg_errors_t *errs)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cfg__error_add(errs, "", 0, 0, "cannot open %s: %s", path, strerror(rt_errno()));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                cfg__error_add(errs, "", 0, 0, "%s is larger than %u bytes", path, MAX_FILE_BYTES);
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            buf = rt_xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        cfg__error_add(errs, "", 0, 0, "cannot read %s", path);
        goto fail;
    }
    fclose(f);
    int rc = cfg_load_data(buf, len, out, errs);
    free(buf);
    return rc;

fail:
    fclose(f);
    free(buf);
    return -1;
}

cfg_config_t *cfg_config_retain(cfg_config_t *cfg)
{
    if (cfg != NULL) {
        /* relaxed: the caller already holds a reference, so the config cannot go away. */
        uint32_t old = atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
        RT_CHECK(old > 0 && old < UINT32_MAX, "cfg_config_retain: bad reference count");
    }
    return cfg;
}

void cfg_config_free(cfg_config_t *cfg)
{
    if (cfg == NULL) {
        return;
    }
    /* release: this holder's reads of the config happen before the last holder frees it. */
    uint32_t old = atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_release);
    RT_CHECK(old > 0, "cfg_config_free: config already freed");
    if (old == 1) {
        atomic_thread_fence(memory_order_acquire); /* pairs with the other holders' release */
        config_destroy(cfg);
    }
}

const cfg_cluster_t *cfg_find_cluster(const cfg_config_t *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        if (strcmp(cfg->clusters[i].name, name) == 0) {
            return &cfg->clusters[i];
        }
    }
    return NULL;
}
