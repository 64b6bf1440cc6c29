/* SPDX-License-Identifier: MIT */
/*
 * lines.c - one libyaml event pass over the document that records where each
 * node is, by YAML path ("listeners[0].routes[2].backends[1].cluster" ->
 * line:column). Problems found after loading (units, validation) look their
 * position up here; libcyaml's own errors are placed through it too.
 *
 * A mapping value is placed at its key (that is where a compiler would point);
 * a sequence entry at its first character. Aliases are leaves: paths below
 * them resolve to the alias itself through cfg__lines_locate's fallback.
 * Lookups go through a hash index of the paths (index.c).
 *
 * The same pass measures what libcyaml's alias expansion would build: every
 * node counts one, an alias counts the nodes of its anchor's subtree with
 * that subtree's own aliases expanded, and `alias_nodes` sums what aliases
 * add, saturating. An anchored collection's expanded size is the growth of
 * the running total between its start and end. An anchor defined twice
 * counts its larger definition, so the sum is never an underestimate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf/internal.h"
#include "runtime/base.h"

/* Nesting deeper than this is indexed no further (and refused: CFG__MAX_NESTING). */
#define MAX_DEPTH 64

typedef struct frame {
    bool is_mapping;
    bool want_key; /* mapping: the next node is a key */
    size_t index;  /* sequence: index of the next entry */
    size_t len;    /* length of this node's path */
    char key[128]; /* mapping: the pending key */
    yaml_mark_t key_mark;
} frame_t;

/* The expanded size of each anchor, by name. */
typedef struct anchor {
    char *name;
    uint64_t nodes;
} anchor_t;

/* An anchored collection still open: its name, depth and the node total at its start. */
typedef struct open_anchor {
    char *name;
    size_t depth;
    uint64_t start;
} open_anchor_t;

typedef struct aliases {
    anchor_t *anchors;
    size_t count, cap;
    cfg__index_t by_name; /* name -> anchors[] */
    open_anchor_t *open;
    size_t nopen, open_cap;
    size_t depth;   /* of every collection, unlike the path stack's (which stops at MAX_DEPTH) */
    uint64_t total; /* nodes so far with aliases expanded, saturating */
} aliases_t;

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static void anchor_set(aliases_t *al, const char *name, uint64_t nodes)
{
    size_t i = cfg__index_get(&al->by_name, name);
    if (i != SIZE_MAX) {
        al->anchors[i].nodes = nodes > al->anchors[i].nodes ? nodes : al->anchors[i].nodes;
        return;
    }
    if (al->count == al->cap) {
        al->cap = al->cap ? al->cap * 2 : 16;
        al->anchors = rt_xrealloc(al->anchors, al->cap * sizeof(al->anchors[0]));
    }
    al->anchors[al->count] = (anchor_t){.name = rt_xstrdup(name), .nodes = nodes};
    cfg__index_put(&al->by_name, al->anchors[al->count].name, al->count);
    al->count++;
}

/* Counts one node event (alias, scalar or collection start/end); returns what an alias adds. */
static uint64_t aliases_count(aliases_t *al, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL;
    uint64_t added = 0;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        /* An alias of an unknown or unfinished anchor is libcyaml's error; count it as one. */
        size_t i = cfg__index_get(&al->by_name, (const char *)ev->data.alias.anchor);
        added = i != SIZE_MAX ? al->anchors[i].nodes : 1;
        al->total = sat_add(al->total, added);
        return added;
    }
    case YAML_SCALAR_EVENT:
        al->total = sat_add(al->total, 1);
        if (ev->data.scalar.anchor != NULL) {
            anchor_set(al, (const char *)ev->data.scalar.anchor, 1);
        }
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        anchor = ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                       : ev->data.mapping_start.anchor;
        al->depth++;
        if (anchor != NULL) {
            if (al->nopen == al->open_cap) {
                al->open_cap = al->open_cap ? al->open_cap * 2 : 16;
                al->open = rt_xrealloc(al->open, al->open_cap * sizeof(al->open[0]));
            }
            al->open[al->nopen++] = (open_anchor_t){
                .name = rt_xstrdup((const char *)anchor),
                .depth = al->depth,
                .start = al->total,
            };
        }
        al->total = sat_add(al->total, 1);
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (al->nopen > 0 && al->open[al->nopen - 1].depth == al->depth) {
            open_anchor_t *o = &al->open[--al->nopen];
            anchor_set(al, o->name, al->total - o->start);
            free(o->name);
        }
        al->depth--;
        return 0;
    default:
        return 0;
    }
}

static void aliases_destroy(aliases_t *al)
{
    for (size_t i = 0; i < al->count; i++) {
        free(al->anchors[i].name);
    }
    for (size_t i = 0; i < al->nopen; i++) {
        free(al->open[i].name);
    }
    free(al->anchors);
    free(al->open);
    cfg__index_destroy(&al->by_name);
}

static void add(cfg__lines_t *lines, const char *path, yaml_mark_t mark)
{
    if (lines->count == lines->cap) {
        lines->cap = lines->cap ? lines->cap * 2 : 64;
        lines->items = rt_xrealloc(lines->items, lines->cap * sizeof(lines->items[0]));
    }
    lines->items[lines->count] = (cfg__lines_entry_t){
        .path = rt_xstrdup(path),
        .line = (unsigned)mark.line + 1,
        .column = (unsigned)mark.column + 1,
    };
    cfg__index_put(&lines->index, lines->items[lines->count].path, lines->count);
    lines->count++;
}

/* Records where the aliases' additions passed CFG__MAX_ALIAS_NODES (the first time). */
static void alias_limit(cfg__lines_t *lines, uint64_t added, const char *path, yaml_mark_t mark)
{
    lines->alias_nodes = sat_add(lines->alias_nodes, added);
    if (lines->alias_nodes > CFG__MAX_ALIAS_NODES && lines->alias_path == NULL) {
        lines->alias_path = rt_xstrdup(path);
        lines->alias_line = (unsigned)mark.line + 1;
        lines->alias_column = (unsigned)mark.column + 1;
    }
}

/*
 * Handles one node event: a key of the enclosing mapping, or a value whose
 * path is the parent's plus ".key" / "[i]". Returns the node's path length in
 * `path` (or SIZE_MAX if it was a key) so containers can push a frame.
 */
static size_t on_node(cfg__lines_t *lines, frame_t *stack, int depth, char *path, size_t size,
                      const yaml_event_t *ev)
{
    if (depth < 0) {
        path[0] = '\0';
        add(lines, "", ev->start_mark);
        return 0;
    }
    frame_t *top = &stack[depth];
    size_t len = top->len;
    if (top->is_mapping && top->want_key) {
        const char *k = ev->type == YAML_SCALAR_EVENT ? (const char *)ev->data.scalar.value : "?";
        snprintf(top->key, sizeof(top->key), "%s", k);
        top->key_mark = ev->start_mark;
        top->want_key = false;
        return SIZE_MAX;
    }
    int n;
    yaml_mark_t mark = ev->start_mark;
    if (top->is_mapping) {
        n = snprintf(path + len, size - len, "%s%s", len ? "." : "", top->key);
        mark = top->key_mark;
        top->want_key = true;
    } else {
        n = snprintf(path + len, size - len, "[%zu]", top->index++);
    }
    if (n < 0 || (size_t)n >= size - len) {
        path[len] = '\0';
        return len;
    }
    add(lines, path, mark);
    return len + (size_t)n;
}

int cfg__lines_build(cfg__lines_t *lines, const char *yaml, size_t len, unsigned *line,
                     unsigned *column, char *msg, size_t msg_size)
{
    yaml_parser_t parser;
    frame_t stack[MAX_DEPTH];
    char path[512];
    int depth = -1, skip = 0, rc = 0;
    bool done = false;
    aliases_t al = {0};

    RT_CHECK(yaml_parser_initialize(&parser), "yaml_parser_initialize");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    path[0] = '\0';
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            *line = (unsigned)parser.problem_mark.line + 1;
            *column = (unsigned)parser.problem_mark.column + 1;
            snprintf(msg, msg_size, "%s%s%s", parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
            rc = -1;
            break;
        }
        uint64_t added = aliases_count(&al, &ev);
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (skip == 0) {
                on_node(lines, stack, depth, path, sizeof(path), &ev);
            }
            if (added > 0) {
                /* `path` still names the alias (unless skipped: then an ancestor) */
                alias_limit(lines, added, path, ev.start_mark);
            }
            if (skip == 0 && depth >= 0) {
                path[stack[depth].len] = '\0';
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (al.depth > CFG__MAX_NESTING) {
                *line = (unsigned)ev.start_mark.line + 1;
                *column = (unsigned)ev.start_mark.column + 1;
                snprintf(msg, msg_size, "collections nested deeper than %d levels",
                         CFG__MAX_NESTING);
                rc = -1;
                done = true;
                break;
            }
            if (skip > 0) {
                skip++;
                break;
            }
            size_t plen = on_node(lines, stack, depth, path, sizeof(path), &ev);
            if (plen == SIZE_MAX || depth + 1 >= MAX_DEPTH) {
                /* A complex key, or too deep: its contents are not indexed. */
                path[depth >= 0 ? stack[depth].len : 0] = '\0';
                skip++;
                break;
            }
            stack[++depth] = (frame_t){
                .is_mapping = ev.type == YAML_MAPPING_START_EVENT,
                .want_key = true,
                .len = plen,
            };
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (skip > 0) {
                skip--; /* a skipped complex key leaves want_key false: its value is "?" */
                break;
            }
            depth--;
            path[depth >= 0 ? stack[depth].len : 0] = '\0';
            break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    aliases_destroy(&al);
    return rc;
}

const cfg__lines_entry_t *cfg__lines_find(const cfg__lines_t *lines, const char *path)
{
    size_t i = cfg__index_get(&lines->index, path);
    return i != SIZE_MAX ? &lines->items[i] : NULL;
}

bool cfg__lines_locate(const cfg__lines_t *lines, const char *path, unsigned *line,
                       unsigned *column)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        const cfg__lines_entry_t *e = cfg__lines_find(lines, buf);
        if (e != NULL) {
            *line = e->line;
            *column = e->column;
            return true;
        }
        if (buf[0] == '\0') {
            return false;
        }
        /* Strip the last component: ".key" or "[i]". */
        char *dot = strrchr(buf, '.');
        char *br = strrchr(buf, '[');
        char *cut = dot > br ? dot : br;
        if (cut == NULL) {
            cut = buf;
        }
        *cut = '\0';
    }
}

void cfg__lines_destroy(cfg__lines_t *lines)
{
    for (size_t i = 0; i < lines->count; i++) {
        free(lines->items[i].path);
    }
    free(lines->items);
    free(lines->alias_path);
    cfg__index_destroy(&lines->index);
    *lines = (cfg__lines_t){0};
}
