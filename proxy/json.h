/* SPDX-License-Identifier: MIT */
/*
 * json.h - the little text the admin API writes and reads: a growing string
 * builder (also used by the metrics exposition), JSON string escaping, and a
 * parser for the one JSON shape the API accepts, a flat object of names to
 * non-negative integers ({"stable": 90, "canary": 10}).
 */
#ifndef PX_JSON_H
#define PX_JSON_H

#include <stddef.h>
#include <stdint.h>

/** A growing, NUL-terminated string. Zero value is empty; free `data` when done. */
typedef struct px_sb {
    char *data;
    size_t len, cap;
} px_sb_t;

/** Appends printf-formatted text. */
void px_sb_printf(px_sb_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends `s` as a JSON string literal, quotes included. */
void px_sb_json_string(px_sb_t *sb, const char *s);

/** One member of a {"name": integer} object. */
typedef struct px_json_weight {
    char name[128];
    uint32_t value;
} px_json_weight_t;

/**
 * Parses `text` as a JSON object whose values are integers in 0..UINT32_MAX
 * (at most `max` members, names unique). Returns how many, or -1 with a
 * message in `err`.
 */
int px_json_parse_weights(const char *text, size_t len, px_json_weight_t *out, int max, char *err,
                          size_t errlen);

#endif /* PX_JSON_H */
