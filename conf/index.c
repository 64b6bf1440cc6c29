/* SPDX-License-Identifier: MIT */
/*
 * index.c - a string -> position hash index (open addressing, linear
 * probing), so that lookups by YAML path and by name keep a load linear in
 * the size of its input. Without it, placing each of N problems (lines.c),
 * de-duplicating them (errors.c) and checking N names for duplicates or
 * references (validate.c) each cost O(N^2): 16000 empty `clusters:` entries
 * (112 KB, well under the admin API's 1 MiB) took 13 s to load.
 *
 * Keys are borrowed: each must stay valid and unchanged while the index
 * lives. The first position put under a key is the one kept.
 *
 * Rejected: sorting and binary search (problems are looked up while they are
 * still being added); a keyed hash (SipHash) against crafted collisions: the
 * input comes from an operator holding the admin token, and a probe compares
 * the full 64-bit hash before any strcmp.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"
#include "runtime/base.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    /* MurmurHash3's fmix64: every bit of `h` reaches the low bits that pick the slot. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* The slot holding `key`, or the empty slot where it would go. */
static cfg__index_slot_t *find(const cfg__index_t *ix, const char *key, uint64_t h)
{
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        cfg__index_slot_t *s = &ix->slots[i];
        if (s->key == NULL || (s->hash == h && strcmp(s->key, key) == 0)) {
            return s;
        }
    }
}

static void grow(cfg__index_t *ix)
{
    cfg__index_t bigger = {.cap = ix->cap ? ix->cap * 2 : 16, .count = ix->count};
    bigger.slots = rt_xcalloc(bigger.cap, sizeof(bigger.slots[0]));
    for (size_t i = 0; i < ix->cap; i++) {
        if (ix->slots[i].key != NULL) {
            *find(&bigger, ix->slots[i].key, ix->slots[i].hash) = ix->slots[i];
        }
    }
    free(ix->slots);
    *ix = bigger;
}

size_t cfg__index_put(cfg__index_t *ix, const char *key, size_t pos)
{
    if (2 * (ix->count + 1) > ix->cap) {
        grow(ix); /* at most half full: probe runs stay short */
    }
    uint64_t h = hash_str(key);
    cfg__index_slot_t *s = find(ix, key, h);
    if (s->key == NULL) {
        *s = (cfg__index_slot_t){.key = key, .hash = h, .pos = pos};
        ix->count++;
    }
    return s->pos;
}

size_t cfg__index_get(const cfg__index_t *ix, const char *key)
{
    if (ix->count == 0) {
        return SIZE_MAX;
    }
    const cfg__index_slot_t *s = find(ix, key, hash_str(key));
    return s->key != NULL ? s->pos : SIZE_MAX;
}

void cfg__index_destroy(cfg__index_t *ix)
{
    free(ix->slots);
    *ix = (cfg__index_t){0};
}
