/* SPDX-License-Identifier: MIT */
/*
 * equal.c - value equality of clusters, filters and canaries, so a reload
 * can carry live state (pools, token buckets, breaker and canary windows)
 * over to a rule that did not change.
 *
 * The comparison is a generic walk of the libcyaml schema (schema.c), not a
 * hand-written list of fields: a key added to the schema later is compared
 * from then on and can never be forgotten here. The walk sees what the schema
 * holds, which is the raw YAML scalars (`*_text` and plain strings), not the
 * converted fields; those derive from the raw scalars plus the defaults of
 * defaults.c, so raw-equal implies value-equal. The converse does not hold:
 * the comparison is conservative, and "1s" vs "1000ms" or "10" vs "10.0"
 * count as changed (the state is rebuilt, never wrongly kept).
 *
 * Per schema type: strings by strcmp (NULL equals only NULL), pointer values
 * both NULL or both set and recursed into, inline mappings recursed into,
 * sequences by count and then entry by entry, other scalars by memcmp over
 * their data_size. The walk recurses once per schema level, so its depth is
 * bounded by the static schema (a handful), never by the input.
 *
 * One thing the schema cannot show: libcyaml loads an empty sequence as NULL,
 * exactly like an absent key, and where that difference has a meaning the
 * loader keeps it in a flag outside the schema (`has_exceptions`). Such flags
 * are listed in presence_equal() and must be added there by hand.
 */
#include <string.h>

#include "conf/internal.h"

static bool fields_equal(const cyaml_schema_field_t *fields, const uint8_t *a, const uint8_t *b);

/* Reads a sequence's entry count: an unsigned integer of `size` bytes at `p`. */
static uint64_t read_count(const uint8_t *p, uint8_t size)
{
    switch (size) {
    case 1:
        return *p;
    case 2: {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    }
}

static bool value_equal(const cyaml_schema_value_t *v, const uint8_t *a, const uint8_t *b,
                        uint64_t count);

/* Compares `count` entries of schema `entry` stored from `a` and `b`. */
static bool entries_equal(const cyaml_schema_value_t *entry, const uint8_t *a, const uint8_t *b,
                          uint64_t count)
{
    size_t stride = (entry->flags & CYAML_FLAG_POINTER) ? sizeof(void *) : entry->data_size;
    for (uint64_t i = 0; i < count; i++) {
        if (!value_equal(entry, a + i * stride, b + i * stride, 0)) {
            return false;
        }
    }
    return true;
}

/*
 * Compares the values of schema `v` stored at `a` and `b` (for a pointer
 * value, where the pointer is stored). `count` is a sequence's entry count.
 */
static bool value_equal(const cyaml_schema_value_t *v, const uint8_t *a, const uint8_t *b,
                        uint64_t count)
{
    if (v->flags & CYAML_FLAG_POINTER) {
        const uint8_t *pa, *pb;
        memcpy(&pa, a, sizeof(pa));
        memcpy(&pb, b, sizeof(pb));
        if (pa == NULL || pb == NULL) {
            return pa == pb;
        }
        a = pa, b = pb;
    }
    switch (v->type) {
    case CYAML_STRING:
        if (v->flags & CYAML_FLAG_POINTER) {
            return strcmp((const char *)a, (const char *)b) == 0;
        }
        return strncmp((const char *)a, (const char *)b, v->data_size) == 0;
    case CYAML_MAPPING:
        return fields_equal(v->mapping.fields, a, b);
    case CYAML_SEQUENCE:
        return entries_equal(v->sequence.entry, a, b, count);
    case CYAML_SEQUENCE_FIXED:
        return entries_equal(v->sequence.entry, a, b, v->sequence.max);
    case CYAML_IGNORE:
        return true;
    default: /* INT, UINT, BOOL, ENUM, FLAGS, FLOAT, BITFIELD: plain bytes */
        return memcmp(a, b, v->data_size) == 0;
    }
}

/* Compares two structs described by the mapping `fields`. */
static bool fields_equal(const cyaml_schema_field_t *fields, const uint8_t *a, const uint8_t *b)
{
    for (const cyaml_schema_field_t *f = fields; f->key != NULL; f++) {
        uint64_t count = 0;
        if (f->value.type == CYAML_SEQUENCE) {
            count = read_count(a + f->count_offset, f->count_size);
            if (count != read_count(b + f->count_offset, f->count_size)) {
                return false;
            }
        }
        if (!value_equal(&f->value, a + f->data_offset, b + f->data_offset, count)) {
            return false;
        }
    }
    return true;
}

/* Both NULL, the same object, or both set and equal field by field. */
static bool mapping_equal(const cyaml_schema_field_t *fields, const void *a, const void *b)
{
    if (a == NULL || b == NULL || a == b) {
        return a == b;
    }
    return fields_equal(fields, a, b);
}

/* The loader flags that record presence the schema cannot (see the header comment). */
static bool presence_equal(const cfg_filter_t *a, const cfg_filter_t *b)
{
    const cfg_circuit_breaker_t *ca = a->circuit_breaker, *cb = b->circuit_breaker;
    return ca == NULL || cb == NULL || ca->has_exceptions == cb->has_exceptions;
}

bool cfg_cluster_equal(const cfg_cluster_t *a, const cfg_cluster_t *b)
{
    return mapping_equal(cfg__cluster_fields, a, b);
}

bool cfg_filter_equal(const cfg_filter_t *a, const cfg_filter_t *b)
{
    return mapping_equal(cfg__filter_fields, a, b) && (a == NULL || presence_equal(a, b));
}

bool cfg_canary_equal(const cfg_canary_t *a, const cfg_canary_t *b)
{
    return mapping_equal(cfg__canary_fields, a, b);
}
