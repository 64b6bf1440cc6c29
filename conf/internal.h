/* SPDX-License-Identifier: MIT */
/*
 * internal.h - declarations shared by the files of conf/ and nothing else:
 * the libcyaml schema, the YAML path -> line index, the error-collecting
 * walker, the strict scalar parsers and the load passes (convert, defaults,
 * validate). Not part of the public API; conf.h is.
 */
#ifndef CFG_INTERNAL_H
#define CFG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "conf/conf.h"

/* ---- schema.c ---- */

/** The whole document: a pointer to a cfg_config_t. */
extern const cyaml_schema_value_t cfg__config_schema;
/** libcyaml settings shared by load and free (allocator, no logging). */
extern const cyaml_config_t cfg__cyaml_free_config;
/** The mapping fields of one `clusters[]` entry (cfg_cluster_t); for equal.c. */
extern const cyaml_schema_field_t cfg__cluster_fields[];
/** The mapping fields of one `filters[]` entry (cfg_filter_t); for equal.c. */
extern const cyaml_schema_field_t cfg__filter_fields[];
/** The mapping fields of a route's `canary` (cfg_canary_t); for equal.c. */
extern const cyaml_schema_field_t cfg__canary_fields[];

/* ---- suggest.c: "did you mean" for unknown keys ---- */

/**
 * Returns the key valid in the mapping at YAML path `parent` ("" = the
 * document, "listeners[0].routes[1]") that is closest to the unknown `key`
 * (optimal string alignment distance <= 2 and < strlen(key); ties go to
 * schema order), or NULL if none is close or `parent` is not a mapping of
 * the schema. Static storage.
 */
const char *cfg__suggest_key(const char *parent, const char *key);
/** Returns the optimal string alignment (restricted Damerau-Levenshtein) distance of a and b. */
size_t cfg__edit_distance(const char *a, const char *b);

/* ---- index.c: string -> position hash index (keeps lookups by path or name O(1)) ---- */

typedef struct cfg__index_slot {
    const char *key; /* borrowed; NULL = empty slot */
    uint64_t hash;
    size_t pos;
} cfg__index_slot_t;

/** A hash index; the zero value is empty. */
typedef struct cfg__index {
    cfg__index_slot_t *slots;
    size_t cap, count; /* cap: 0 or a power of two >= 2 * count */
} cfg__index_t;

/**
 * Adds `key` (borrowed: it must outlive the index, unchanged) at `pos`
 * unless it is already there. Returns the position now stored under `key`:
 * `pos`, or the earlier one.
 */
size_t cfg__index_put(cfg__index_t *ix, const char *key, size_t pos);
/** Returns the position stored under `key`, or SIZE_MAX. */
size_t cfg__index_get(const cfg__index_t *ix, const char *key);
void cfg__index_destroy(cfg__index_t *ix);

/* ---- lines.c: one libyaml event pass -> "listeners[0].routes[2].name" -> line:column ---- */

/*
 * Nodes that aliases may add to a document, all aliases together. libcyaml
 * expands every alias into a copy, so without a bound a few KB of nested
 * aliases ("billion laughs") ask for billions of structs. No real config
 * comes near; a 1 MiB document without aliases has at most ~350000 nodes.
 */
#define CFG__MAX_ALIAS_NODES 100000u

/*
 * Collections nested deeper than this are refused as a syntax error, and the
 * parse stops there: libyaml 0.2.5's scanner re-examines every open flow
 * level on each token, so nesting d deep costs O(d^2) (1 MiB of '[' took
 * minutes). No config is nested more than about 10 deep.
 */
#define CFG__MAX_NESTING 64

typedef struct cfg__lines_entry {
    char *path;
    unsigned line, column; /* 1-based: the key of a mapping value, the start of a sequence entry */
} cfg__lines_entry_t;

typedef struct cfg__lines {
    cfg__lines_entry_t *items;
    size_t count, cap;
    cfg__index_t index; /* path -> first entry with that path */
    /* Nodes added by expanding aliases (saturating), and where that passed the limit. */
    uint64_t alias_nodes;
    char *alias_path; /* NULL until alias_nodes > CFG__MAX_ALIAS_NODES */
    unsigned alias_line, alias_column;
} cfg__lines_t;

/**
 * Indexes every node of the first document of `yaml`, and counts the nodes
 * its aliases add. Returns 0, or -1 on a YAML syntax error (or nesting deeper
 * than CFG__MAX_NESTING) with its position and text in `*line`, `*column`
 * and `msg` (the index then holds what came before the error).
 */
int cfg__lines_build(cfg__lines_t *lines, const char *yaml, size_t len, unsigned *line,
                     unsigned *column, char *msg, size_t msg_size);
/** Returns the entry of `path` itself, or NULL. */
const cfg__lines_entry_t *cfg__lines_find(const cfg__lines_t *lines, const char *path);
/** Finds the position of `path`, else of its nearest indexed ancestor; false if none. */
bool cfg__lines_locate(const cfg__lines_t *lines, const char *path, unsigned *line,
                       unsigned *column);
void cfg__lines_destroy(cfg__lines_t *lines);

/* ---- errors.c: problems and the path-tracking walker ---- */

/** Appends one problem (copies `path` and the formatted message). */
void cfg__error_add(cfg_errors_t *errs, const char *path, unsigned line, unsigned column,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/**
 * A walk over the loaded structs that knows the YAML path of where it is, so
 * a problem is reported with its path and (through `lines`) its position.
 */
typedef struct cfg__walk {
    cfg_errors_t *errs;
    size_t first; /* errs->items[first..] are this document's (errs may hold older ones) */
    const cfg__lines_t *lines;
    char path[512];
    size_t len;
    cfg__index_t seen; /* paths of errs->items[first..indexed) */
    size_t indexed;
} cfg__walk_t;

/** Frees what the walk allocated (not its problems). */
void cfg__walk_destroy(cfg__walk_t *w);

/** Pushes ".key" (or "key" at the root); returns the previous length for cfg__walk_pop. */
size_t cfg__walk_key(cfg__walk_t *w, const char *key);
/** Pushes "[i]"; returns the previous length. */
size_t cfg__walk_index(cfg__walk_t *w, size_t i);
void cfg__walk_pop(cfg__walk_t *w, size_t len);
/**
 * Reports a problem at the current path plus `key` (NULL: the current path),
 * unless one was already reported at that exact path (one problem per value:
 * a bad scalar is not also reported as missing or out of range).
 */
void cfg__walk_error(cfg__walk_t *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Returns whether the document has a node at the current path plus `key`. */
bool cfg__walk_present(const cfg__walk_t *w, const char *key);

/* ---- units.c: strict scalars beyond the public duration/size/percent ---- */

/** Parses decimal digits only (no sign, no spaces) into `*out` <= `max`. 0 or -1. */
int cfg__parse_uint(const char *s, uint64_t max, uint64_t *out);
/** Parses "12", "0.25" (digits, optional fraction; no sign/exponent). 0 or -1. */
int cfg__parse_number(const char *s, double *out);
/** Parses an outcome class name (5xx, connect_failure, timeout, reset) into its bit; 0 if unknown.
 */
uint32_t cfg__parse_outcome(const char *s);
/**
 * Checks "HOST:PORT" / "[IPV6]:PORT". `numeric` requires an IP literal;
 * otherwise a DNS name is allowed. Port 1..65535, or 0..65535 if `port0`.
 * Returns NULL if valid, else a static message.
 */
const char *cfg__check_address(const char *s, bool numeric, bool port0);
/** Returns whether `s` is a non-empty RFC 9110 token (header names, methods). */
bool cfg__is_token(const char *s);

/* ---- the load passes, in order (load.c drives them) ---- */

/** convert.c: parses every present `*_text`/raw scalar into its converted field. */
void cfg__convert(cfg_config_t *cfg, cfg__walk_t *w);
/** defaults.c: fills every absent optional key with its default; NULL strings become "". */
void cfg__defaults_apply(cfg_config_t *cfg);
/** validate.c: semantic checks over the converted, defaulted config. */
void cfg__validate(const cfg_config_t *cfg, cfg__walk_t *w);

#endif /* CFG_INTERNAL_H */
