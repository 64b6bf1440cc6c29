/* SPDX-License-Identifier: MIT */
/*
 * json.c - a string builder, JSON string escaping, and the strict parser of
 * {"name": integer} objects the admin API takes (json.h). Strict: anything
 * but that shape is an error with its byte offset, never a guess.
 */
#include "proxy/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rt.h"

void px_sb_printf(px_sb_t *sb, const char *fmt, ...)
{
    for (;;) {
        size_t room = sb->cap - sb->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->data ? sb->data + sb->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return;
        }
        if ((size_t)n < room) {
            sb->len += (size_t)n;
            return;
        }
        sb->cap = sb->cap * 2 + (size_t)n + 64;
        sb->data = rt_xrealloc(sb->data, sb->cap);
    }
}

void px_sb_json_string(px_sb_t *sb, const char *s)
{
    px_sb_printf(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            px_sb_printf(sb, "\\%c", *p);
        } else if (*p == '\n') {
            px_sb_printf(sb, "\\n");
        } else if (*p < 0x20) {
            px_sb_printf(sb, "\\u%04x", *p);
        } else {
            px_sb_printf(sb, "%c", *p);
        }
    }
    px_sb_printf(sb, "\"");
}

typedef struct cursor {
    const char *s;
    size_t len, pos;
} cursor_t;

static void skip_space(cursor_t *c)
{
    while (c->pos < c->len && strchr(" \t\r\n", c->s[c->pos])) {
        c->pos++;
    }
}

static bool take(cursor_t *c, char ch)
{
    skip_space(c);
    if (c->pos < c->len && c->s[c->pos] == ch) {
        c->pos++;
        return true;
    }
    return false;
}

/* A string without escapes (backend names are tokens). */
static bool parse_name(cursor_t *c, char *out, size_t size)
{
    if (!take(c, '"')) {
        return false;
    }
    size_t n = 0;
    while (c->pos < c->len && c->s[c->pos] != '"') {
        char ch = c->s[c->pos++];
        if (ch == '\\' || (unsigned char)ch < 0x20 || n + 1 >= size) {
            return false;
        }
        out[n++] = ch;
    }
    out[n] = '\0';
    return take(c, '"') && n > 0;
}

static bool parse_uint32(cursor_t *c, uint32_t *out)
{
    skip_space(c);
    uint64_t v = 0;
    size_t start = c->pos;
    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
        v = v * 10 + (uint64_t)(c->s[c->pos++] - '0');
        if (v > UINT32_MAX) {
            return false;
        }
    }
    if (c->pos == start || (c->pos - start > 1 && c->s[start] == '0')) {
        return false;
    }
    /* 1.5, 1e3, -1: not a non-negative integer */
    if (c->pos < c->len && strchr(".eE", c->s[c->pos])) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

int px_json_parse_weights(const char *text, size_t len, px_json_weight_t *out, int max, char *err,
                          size_t errlen)
{
    cursor_t c = {text, len, 0};
    int n = 0;
    if (!take(&c, '{')) {
        snprintf(err, errlen, "expected a JSON object like {\"stable\": 90, \"canary\": 10}");
        return -1;
    }
    if (!take(&c, '}')) {
        do {
            if (n == max) {
                snprintf(err, errlen, "more than %d backends", max);
                return -1;
            }
            if (!parse_name(&c, out[n].name, sizeof(out[n].name))) {
                snprintf(err, errlen, "byte %zu: expected a backend name in quotes", c.pos);
                return -1;
            }
            if (!take(&c, ':') || !parse_uint32(&c, &out[n].value)) {
                snprintf(err, errlen, "byte %zu: weight of \"%s\" must be a non-negative integer",
                         c.pos, out[n].name);
                return -1;
            }
            for (int i = 0; i < n; i++) {
                if (strcmp(out[i].name, out[n].name) == 0) {
                    snprintf(err, errlen, "backend \"%s\" given twice", out[n].name);
                    return -1;
                }
            }
            n++;
        } while (take(&c, ','));
        if (!take(&c, '}')) {
            snprintf(err, errlen, "byte %zu: expected ',' or '}'", c.pos);
            return -1;
        }
    }
    skip_space(&c);
    if (c.pos != c.len) {
        snprintf(err, errlen, "byte %zu: unexpected text after the object", c.pos);
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "no weights given");
        return -1;
    }
    return n;
}
