/* SPDX-License-Identifier: MIT */
/*
 * errors.c - the problem list (cfg_errors_t), its compiler-style printing,
 * and the path-tracking walker the convert and validate passes report through.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"
#include "runtime/base.h"

/* Appends one problem; takes `msg`. */
static void append(cfg_errors_t *errs, const char *path, unsigned line, unsigned column, char *msg)
{
    /*
     * cfg_errors_t keeps no capacity (its zero value must be empty), so it is
     * implied: `count` rounded up to a power of two, full when `count` is one.
     * Growing geometrically keeps many problems linear (growing by one copied
     * the array each time under allocators that do not grow in place: 30000
     * problems took a minute under ASan).
     */
    if ((errs->count & (errs->count - 1)) == 0) {
        size_t cap = errs->count ? 2 * errs->count : 1;
        errs->items = rt_xrealloc(errs->items, cap * sizeof(errs->items[0]));
    }
    errs->items[errs->count++] = (cfg_error_t){
        .path = rt_xstrdup(path),
        .line = line,
        .column = column,
        .message = msg,
    };
}

static void error_vadd(cfg_errors_t *errs, const char *path, unsigned line, unsigned column,
                       const char *fmt, va_list ap)
{
    /*
     * A 1 MiB body of broken entries makes hundreds of thousands of problems
     * (100 MB, and a JSON answer of tens of MB): keep the first ones, like a
     * compiler's error limit, and say that more were left out.
     */
    if (errs->count >= CFG_ERRORS_MAX) {
        if (errs->count == CFG_ERRORS_MAX) {
            char msg[96];
            snprintf(msg, sizeof(msg), "too many problems: only the first %d are listed",
                     CFG_ERRORS_MAX);
            append(errs, "", 0, 0, rt_xstrdup(msg));
        }
        return;
    }
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *msg = rt_xmalloc(n > 0 ? (size_t)n + 1 : 1);
    vsnprintf(msg, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
    append(errs, path, line, column, msg);
}

void cfg__error_add(cfg_errors_t *errs, const char *path, unsigned line, unsigned column,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vadd(errs, path, line, column, fmt, ap);
    va_end(ap);
}

void cfg_errors_add_at(cfg_errors_t *errs, const char *yaml, size_t len, const char *path,
                       const char *message)
{
    cfg__lines_t lines = {0};
    unsigned line = 0, column = 0;
    char unused[8];
    (void)cfg__lines_build(&lines, yaml, len, &line, &column, unused, sizeof(unused));
    line = column = 0;
    (void)cfg__lines_locate(&lines, path, &line, &column);
    cfg__lines_destroy(&lines);
    cfg__error_add(errs, path, line, column, "%s", message);
}

void cfg_errors_print(const cfg_errors_t *errs, const char *file, FILE *out)
{
    for (size_t i = 0; i < errs->count; i++) {
        const cfg_error_t *e = &errs->items[i];
        /* A problem of the whole document (syntax, unreadable file) has no path. */
        fprintf(out, "%s:%u:%u: %s%s%s\n", file ? file : "<config>", e->line, e->column, e->path,
                e->path[0] ? ": " : "", e->message);
    }
}

void cfg_errors_destroy(cfg_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        free(errs->items[i].path);
        free(errs->items[i].message);
    }
    free(errs->items);
    errs->items = NULL;
    errs->count = 0;
}

/* ---- walker ---- */

static size_t walk_push(cfg__walk_t *w, const char *fmt, const char *key, size_t i)
{
    size_t old = w->len;
    int n = key ? snprintf(w->path + w->len, sizeof(w->path) - w->len, fmt, key)
                : snprintf(w->path + w->len, sizeof(w->path) - w->len, fmt, i);
    if (n > 0 && (size_t)n < sizeof(w->path) - w->len) {
        w->len += (size_t)n;
    } else {
        w->path[w->len] = '\0'; /* too deep to name: report at the parent */
    }
    return old;
}

size_t cfg__walk_key(cfg__walk_t *w, const char *key)
{
    return walk_push(w, w->len ? ".%s" : "%s", key, 0);
}

size_t cfg__walk_index(cfg__walk_t *w, size_t i)
{
    return walk_push(w, "[%zu]", NULL, i);
}

void cfg__walk_pop(cfg__walk_t *w, size_t len)
{
    w->len = len;
    w->path[len] = '\0';
}

/* Whether this document already has a problem at the current path. */
static bool seen_before(cfg__walk_t *w)
{
    /* Index the problems added since the last call (a hash: there may be many of them). */
    size_t i = w->indexed > w->first ? w->indexed : w->first;
    for (; i < w->errs->count; i++) {
        cfg__index_put(&w->seen, w->errs->items[i].path, i);
    }
    w->indexed = i;
    return cfg__index_get(&w->seen, w->path) != SIZE_MAX;
}

void cfg__walk_error(cfg__walk_t *w, const char *key, const char *fmt, ...)
{
    size_t old = key ? cfg__walk_key(w, key) : w->len;
    if (!seen_before(w)) {
        unsigned line = 0, column = 0;
        if (w->lines != NULL) {
            cfg__lines_locate(w->lines, w->path, &line, &column);
        }
        va_list ap;
        va_start(ap, fmt);
        error_vadd(w->errs, w->path, line, column, fmt, ap);
        va_end(ap);
    }
    cfg__walk_pop(w, old);
}

bool cfg__walk_present(const cfg__walk_t *w, const char *key)
{
    char buf[sizeof(w->path) + 64];
    int n = snprintf(buf, sizeof(buf), "%s%s%s", w->path, w->len ? "." : "", key);
    return n > 0 && (size_t)n < sizeof(buf) && w->lines != NULL &&
           cfg__lines_find(w->lines, buf) != NULL;
}

void cfg__walk_destroy(cfg__walk_t *w)
{
    cfg__index_destroy(&w->seen);
    w->indexed = 0;
}
