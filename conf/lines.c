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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf/internal.h"
#include "runtime/base.h"

/* Nesting deeper than this is indexed no further (no config is that deep). */
#define MAX_DEPTH 64

typedef struct frame {
    bool is_mapping;
    bool want_key; /* mapping: the next node is a key */
    size_t index;  /* sequence: index of the next entry */
    size_t len;    /* length of this node's path */
    char key[128]; /* mapping: the pending key */
    yaml_mark_t key_mark;
} frame_t;

static void add(cfg__lines_t *lines, const char *path, yaml_mark_t mark)
{
    if (lines->count == lines->cap) {
        lines->cap = lines->cap ? lines->cap * 2 : 64;
        lines->items = rt_xrealloc(lines->items, lines->cap * sizeof(lines->items[0]));
    }
    lines->items[lines->count++] = (cfg__lines_entry_t){
        .path = rt_xstrdup(path),
        .line = (unsigned)mark.line + 1,
        .column = (unsigned)mark.column + 1,
    };
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
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            if (skip == 0) {
                on_node(lines, stack, depth, path, sizeof(path), &ev);
                if (depth >= 0) {
                    path[stack[depth].len] = '\0';
                }
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
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
    return rc;
}

const cfg__lines_entry_t *cfg__lines_find(const cfg__lines_t *lines, const char *path)
{
    for (size_t i = 0; i < lines->count; i++) {
        if (strcmp(lines->items[i].path, path) == 0) {
            return &lines->items[i];
        }
    }
    return NULL;
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
    *lines = (cfg__lines_t){0};
}
