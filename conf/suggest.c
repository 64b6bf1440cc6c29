/* SPDX-License-Identifier: MIT */
/*
 * suggest.c - "did you mean" for unknown keys. The keys valid at a place are
 * not listed anywhere by hand: the libcyaml schema (schema.c) is followed
 * along the YAML path of the unknown key's mapping, so a key added to the
 * schema is suggested from then on. Closeness is the optimal string alignment
 * distance (Levenshtein plus adjacent transpositions, "timout" -> "timeout" 1,
 * "rtae" -> "rate" 1).
 */
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"
#include "runtime/base.h"

/* A suggestion must be at most this many edits away (and fewer than the key's length). */
#define MAX_DISTANCE 2

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

size_t cfg__edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Three rolling rows of the (la+1) x (lb+1) table: two back for transpositions. */
    size_t *rows = rt_xmalloc(3 * (lb + 1) * sizeof(*rows));
    size_t *prev2 = rows, *prev = rows + lb + 1, *cur = rows + 2 * (lb + 1);
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < cur[j]) {
                cur[j] = prev2[j - 2] + 1;
            }
        }
        size_t *t = prev2;
        prev2 = prev, prev = cur, cur = t;
    }
    size_t d = prev[lb];
    free(rows);
    return d;
}

/* Returns the schema value of the child `key` of mapping `v`, or NULL. */
static const cyaml_schema_value_t *child(const cyaml_schema_value_t *v, const char *key, size_t len)
{
    if (v->type != CYAML_MAPPING) {
        return NULL;
    }
    for (const cyaml_schema_field_t *f = v->mapping.fields; f->key != NULL; f++) {
        if (strlen(f->key) == len && strncmp(f->key, key, len) == 0) {
            return &f->value;
        }
    }
    return NULL;
}

/*
 * Follows `path` ("a.b[2].c") from the document's schema: a key steps into a
 * mapping's field, an index into a sequence's entry. Returns the fields of
 * the mapping found there, or NULL.
 */
static const cyaml_schema_field_t *fields_at(const char *path)
{
    const cyaml_schema_value_t *v = &cfg__config_schema;
    for (const char *p = path; v != NULL && *p != '\0';) {
        if (*p == '[') {
            const char *end = strchr(p, ']');
            bool seq = v->type == CYAML_SEQUENCE || v->type == CYAML_SEQUENCE_FIXED;
            v = end != NULL && seq ? v->sequence.entry : NULL;
            p = end != NULL ? end + 1 : p;
            continue;
        }
        if (*p == '.') {
            p++;
        }
        size_t len = strcspn(p, ".[");
        v = child(v, p, len);
        p += len;
    }
    return v != NULL && v->type == CYAML_MAPPING ? v->mapping.fields : NULL;
}

const char *cfg__suggest_key(const char *parent, const char *key)
{
    const cyaml_schema_field_t *fields = fields_at(parent);
    const char *best = NULL;
    size_t best_d = MAX_DISTANCE + 1, klen = strlen(key);
    for (const cyaml_schema_field_t *f = fields; f != NULL && f->key != NULL; f++) {
        size_t flen = strlen(f->key);
        if ((flen > klen ? flen - klen : klen - flen) > MAX_DISTANCE) {
            continue; /* the length difference alone is too many edits */
        }
        size_t d = cfg__edit_distance(key, f->key);
        if (d < best_d && d < klen) {
            best = f->key, best_d = d;
        }
    }
    return best;
}
