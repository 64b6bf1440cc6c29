/* SPDX-License-Identifier: MIT */
/*
 * patch.c - cfg_set_weights: sets backend weights in the YAML text itself,
 * for the admin API (PUT /routes/NAME/weights, rollback, promote), so the
 * file an operator wrote keeps its comments, key order, quoting and style.
 *
 * One libyaml event pass finds listeners[*].routes[*] with the wanted `name`
 * and, in their `backends`, the entries with a listed `name`. Each change is
 * an edit of a range of the input: a `weight` scalar's bytes are replaced by
 * the number (inside the quotes of a quoted one, after an anchor or tag), a
 * missing `weight` is inserted after the entry's last key/value (", weight: N"
 * in a flow mapping; a "weight: N" line indented like the entry's keys in a
 * block one). The output is the input with the edits spliced in; nothing is
 * re-emitted, so every other byte is unchanged.
 *
 * A route's `name` may come after its `backends`, so a route's entries are
 * collected while it is parsed and turned into edits at its end.
 *
 * libyaml marks count characters (code points; CRLF counts two), not bytes,
 * and do not count a UTF-8 BOM: edits are found in characters and converted
 * to byte offsets in one forward pass before splicing. UTF-16 is refused.
 * Aliases are leaves: a `routes` or `backends` given as an alias is not
 * followed, and an aliased or anchored weight is edited where it is written.
 *
 * Rejected: loading a node tree and emitting it again (libyaml's emitter drops
 * comments and rewrites style and quoting); editing the loaded config (there
 * is no way back from it to the operator's text).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf/conf.h"
#include "conf/internal.h"
#include "runtime/base.h"

/* Nesting deeper than this is skipped (the nodes we edit are 7 deep), and refused. */
#define MAX_DEPTH 64
#define NO_ENTRY SIZE_MAX

/* What a node is, from where it sits; only these places matter. */
typedef enum role {
    ROLE_OTHER = 0,
    ROLE_ROOT,      /* the document mapping */
    ROLE_LISTENERS, /* root.listeners */
    ROLE_LISTENER,  /* listeners[i] */
    ROLE_ROUTES,    /* listeners[i].routes */
    ROLE_ROUTE,     /* routes[j] */
    ROLE_BACKENDS,  /* routes[j].backends */
    ROLE_BACKEND,   /* backends[k] */
} role_t;

typedef struct frame {
    role_t role;
    bool is_mapping, flow;
    bool want_key;    /* mapping: the next node is a key */
    size_t index;     /* sequence: index of the next entry */
    size_t own_index; /* this node's index in its parent sequence */
    char key[16];     /* mapping: the pending key ("" if long or not a scalar) */
    yaml_mark_t key_start, key_end;
} frame_t;

/* How one backend entry holds its weight. */
typedef enum weight_form {
    WEIGHT_ABSENT = 0,
    WEIGHT_SCALAR, /* replace the scalar (or alias) */
    WEIGHT_EMPTY,  /* `weight:` with no value: add the number after the colon */
    WEIGHT_OTHER,  /* a mapping or sequence: refused */
} weight_form_t;

typedef struct entry {
    char *name; /* NULL if the entry has no scalar `name` */
    size_t index;
    bool flow;
    bool has_key_column;
    unsigned key_column; /* 0-based column of the entry's first key */
    size_t last_end;     /* chars: end of the last key, value or flow collection inside */
    weight_form_t weight;
    size_t w_start, w_end; /* chars: the weight node; WEIGHT_EMPTY: insertion point */
    bool w_decorated;      /* the weight node has an anchor or tag */
    yaml_scalar_style_t w_style;
    unsigned w_line, w_column; /* 1-based: the `weight` key */
} entry_t;

typedef struct route {
    char *name;
    size_t listener, index;
    unsigned line, column; /* 1-based: the `backends` key, else the route */
    entry_t *entries;
    size_t count, cap;
} route_t;

typedef enum edit_kind {
    EDIT_REPLACE, /* [start, end) is the weight node */
    EDIT_EMPTY,   /* start: end of the `weight` key, whose value is empty */
    EDIT_FLOW,    /* start: after the entry's last value, before the `}` */
    EDIT_BLOCK,   /* start: after the entry's last value; a new line follows it */
} edit_kind_t;

typedef struct edit {
    edit_kind_t kind;
    size_t start, end; /* characters while parsing, bytes after to_bytes() */
    bool decorated;
    yaml_scalar_style_t style;
    unsigned indent;
    uint32_t weight;
} edit_t;

typedef struct patch {
    const char *route_name;
    const cfg_weight_t *w;
    size_t n;
    cfg_errors_t *errs;
    frame_t stack[MAX_DEPTH];
    int depth, skip;
    route_t route; /* the route being parsed (ROLE_ROUTE on the stack) */
    size_t entry;  /* index in route.entries of the open ROLE_BACKEND, or NO_ENTRY */
    bool found;    /* a route had the wanted name */
    edit_t *edits;
    size_t nedits, cap;
} patch_t;

/* ---- collecting ---- */

static void route_reset(route_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->entries[i].name);
    }
    free(r->entries);
    free(r->name);
    *r = (route_t){0};
}

static void edit_add(patch_t *p, edit_t e)
{
    if (p->nedits == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->edits = rt_xrealloc(p->edits, p->cap * sizeof(p->edits[0]));
    }
    p->edits[p->nedits++] = e;
}

/* Whether a later element of `w` names the same backend (then that one wins). */
static bool overridden(const patch_t *p, size_t i)
{
    for (size_t j = i + 1; j < p->n; j++) {
        if (strcmp(p->w[j].backend, p->w[i].backend) == 0) {
            return true;
        }
    }
    return false;
}

/* Turns entry `e`'s weight into an edit setting it to `weight`; false if it cannot be set. */
static bool entry_edit(patch_t *p, const entry_t *e, uint32_t weight)
{
    edit_t ed = {.start = e->last_end, .end = e->last_end, .weight = weight};
    switch (e->weight) {
    case WEIGHT_SCALAR:
        ed = (edit_t){EDIT_REPLACE, e->w_start, e->w_end, e->w_decorated, e->w_style, 0, weight};
        break;
    case WEIGHT_EMPTY:
        ed = (edit_t){EDIT_EMPTY, e->w_start, e->w_start, e->w_decorated, e->w_style, 0, weight};
        break;
    case WEIGHT_ABSENT:
        ed.kind = e->flow ? EDIT_FLOW : EDIT_BLOCK;
        ed.indent = e->key_column;
        break;
    case WEIGHT_OTHER:
        return false;
    }
    edit_add(p, ed);
    return true;
}

/* At the end of a route: if it is the wanted one, an edit per listed backend, or a problem. */
static void route_end(patch_t *p)
{
    route_t *r = &p->route;
    if (r->name == NULL || strcmp(r->name, p->route_name) != 0) {
        return;
    }
    p->found = true;
    for (size_t i = 0; i < p->n; i++) {
        if (overridden(p, i)) {
            continue;
        }
        bool matched = false;
        for (size_t k = 0; k < r->count; k++) {
            const entry_t *e = &r->entries[k];
            if (e->name == NULL || strcmp(e->name, p->w[i].backend) != 0) {
                continue;
            }
            matched = true;
            if (!entry_edit(p, e, p->w[i].weight)) {
                char path[128];
                snprintf(path, sizeof(path), "listeners[%zu].routes[%zu].backends[%zu].weight",
                         r->listener, r->index, e->index);
                cfg__error_add(p->errs, path, e->w_line, e->w_column,
                               "expected a scalar weight, got a collection");
            }
        }
        if (!matched) {
            char path[96];
            snprintf(path, sizeof(path), "listeners[%zu].routes[%zu].backends", r->listener,
                     r->index);
            cfg__error_add(p->errs, path, r->line, r->column, "no backend named \"%s\"",
                           p->w[i].backend);
        }
    }
}

/* The role of a child node of a `parent` node (value of `key` if the parent is a mapping). */
static role_t child_role(role_t parent, const char *key, yaml_event_type_t type)
{
    bool map = type == YAML_MAPPING_START_EVENT, seq = type == YAML_SEQUENCE_START_EVENT;
    switch (parent) {
    case ROLE_ROOT:
        return seq && strcmp(key, "listeners") == 0 ? ROLE_LISTENERS : ROLE_OTHER;
    case ROLE_LISTENERS:
        return map ? ROLE_LISTENER : ROLE_OTHER;
    case ROLE_LISTENER:
        return seq && strcmp(key, "routes") == 0 ? ROLE_ROUTES : ROLE_OTHER;
    case ROLE_ROUTES:
        return map ? ROLE_ROUTE : ROLE_OTHER;
    case ROLE_ROUTE:
        return seq && strcmp(key, "backends") == 0 ? ROLE_BACKENDS : ROLE_OTHER;
    case ROLE_BACKENDS:
        return map ? ROLE_BACKEND : ROLE_OTHER;
    default:
        return ROLE_OTHER;
    }
}

static entry_t *cur_entry(patch_t *p)
{
    return p->entry == NO_ENTRY ? NULL : &p->route.entries[p->entry];
}

/* Opens a collection node with `role`; `own` is its index in a parent sequence. */
static void push(patch_t *p, role_t role, const yaml_event_t *ev, size_t own)
{
    if (p->depth + 1 >= MAX_DEPTH) {
        p->skip++;
        return;
    }
    const frame_t *top = p->depth >= 0 ? &p->stack[p->depth] : NULL;
    bool is_mapping = ev->type == YAML_MAPPING_START_EVENT;
    bool flow = is_mapping ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                           : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
    if (role == ROLE_ROUTE) {
        route_reset(&p->route);
        p->route.listener = p->stack[p->depth - 1].own_index;
        p->route.index = own;
        p->route.line = (unsigned)ev->start_mark.line + 1;
        p->route.column = (unsigned)ev->start_mark.column + 1;
    } else if (role == ROLE_BACKENDS) {
        p->route.line = (unsigned)top->key_start.line + 1;
        p->route.column = (unsigned)top->key_start.column + 1;
    } else if (role == ROLE_BACKEND) {
        route_t *r = &p->route;
        if (r->count == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 8;
            r->entries = rt_xrealloc(r->entries, r->cap * sizeof(r->entries[0]));
        }
        r->entries[r->count] = (entry_t){
            .index = own,
            .flow = flow,
            .last_end = ev->end_mark.index,
        };
        p->entry = r->count++;
    }
    p->stack[++p->depth] = (frame_t){
        .role = role,
        .is_mapping = is_mapping,
        .flow = flow,
        .want_key = true,
        .own_index = own,
    };
}

/* Closes the innermost collection. */
static void pop(patch_t *p, const yaml_event_t *ev)
{
    if (p->skip > 0) {
        p->skip--;
        return;
    }
    const frame_t *f = &p->stack[p->depth];
    entry_t *e = cur_entry(p);
    if (f->role == ROLE_BACKEND) {
        p->entry = NO_ENTRY;
    } else if (e != NULL && f->flow && ev->end_mark.index > e->last_end) {
        e->last_end = ev->end_mark.index; /* a flow collection inside the entry ends here */
    } else if (f->role == ROLE_ROUTE) {
        route_end(p);
        route_reset(&p->route);
    }
    p->depth--;
}

/* A key of the innermost mapping (a scalar, or the start of a complex key). */
static void on_key(patch_t *p, frame_t *top, const yaml_event_t *ev)
{
    top->want_key = false;
    top->key[0] = '\0';
    top->key_start = ev->start_mark;
    top->key_end = ev->end_mark;
    if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length < sizeof(top->key)) {
        memcpy(top->key, ev->data.scalar.value, ev->data.scalar.length + 1);
    }
    entry_t *e = cur_entry(p);
    if (top->role == ROLE_BACKEND && e != NULL) {
        if (!e->has_key_column) {
            e->has_key_column = true;
            e->key_column = (unsigned)ev->start_mark.column;
        }
        if (strcmp(top->key, "weight") == 0) {
            e->w_line = (unsigned)ev->start_mark.line + 1;
            e->w_column = (unsigned)ev->start_mark.column + 1;
        }
    }
}

static bool is_empty_plain(const yaml_event_t *ev)
{
    return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
           ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* The `weight` value of the open backend entry. */
static void on_weight(entry_t *e, const frame_t *top, const yaml_event_t *ev)
{
    bool scalar = ev->type == YAML_SCALAR_EVENT;
    e->w_decorated = scalar && (ev->data.scalar.anchor != NULL || ev->data.scalar.tag != NULL);
    e->w_style = scalar ? ev->data.scalar.style : YAML_ANY_SCALAR_STYLE;
    e->w_start = ev->start_mark.index;
    e->w_end = ev->end_mark.index;
    e->weight = WEIGHT_SCALAR;
    if (is_empty_plain(ev)) {
        /* A null weight; its marks may point at the next token: work from the key. */
        e->weight = WEIGHT_EMPTY;
        e->w_start = top->key_end.index;
    }
}

/* A scalar or alias that is a value (of a mapping key, or a sequence entry). */
static void on_leaf(patch_t *p, role_t parent, const char *key, const yaml_event_t *ev)
{
    bool scalar = ev->type == YAML_SCALAR_EVENT;
    const char *value = scalar ? (const char *)ev->data.scalar.value : NULL;
    entry_t *e = cur_entry(p);
    if (parent == ROLE_ROUTE && scalar && strcmp(key, "name") == 0) {
        free(p->route.name);
        p->route.name = rt_xstrdup(value);
    } else if (parent == ROLE_BACKEND && e != NULL && scalar && strcmp(key, "name") == 0) {
        free(e->name);
        e->name = rt_xstrdup(value);
    } else if (parent == ROLE_BACKEND && e != NULL && strcmp(key, "weight") == 0) {
        on_weight(e, &p->stack[p->depth], ev);
    }
}

/* A node event: a scalar, an alias or the start of a collection. */
static void on_node(patch_t *p, const yaml_event_t *ev)
{
    bool container = ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;
    if (p->skip > 0) {
        p->skip += container;
        return;
    }
    frame_t *top = p->depth >= 0 ? &p->stack[p->depth] : NULL;
    if (top != NULL && top->is_mapping && top->want_key) {
        on_key(p, top, ev);
        if (container) {
            push(p, ROLE_OTHER, ev, 0); /* a complex key: nothing of ours inside */
        }
        return;
    }
    const char *key = "";
    size_t own = 0;
    if (top != NULL && top->is_mapping) {
        key = top->key;
        top->want_key = true;
    } else if (top != NULL) {
        own = top->index++;
    }
    role_t parent = top != NULL ? top->role : ROLE_OTHER;
    if (!container) {
        on_leaf(p, parent, key, ev);
        return;
    }
    entry_t *e = cur_entry(p);
    if (parent == ROLE_BACKEND && e != NULL && strcmp(key, "weight") == 0) {
        e->weight = WEIGHT_OTHER;
    }
    role_t role = top == NULL ? (ev->type == YAML_MAPPING_START_EVENT ? ROLE_ROOT : ROLE_OTHER)
                              : child_role(parent, key, ev->type);
    push(p, role, ev, own);
}

/* Records how far the open backend entry's content reaches (for inserting after it). */
static void note_content(patch_t *p, const yaml_event_t *ev)
{
    entry_t *e = cur_entry(p);
    /* An empty value's mark is where the next token starts, maybe lines later. */
    if (e != NULL && !is_empty_plain(ev) && ev->end_mark.index > e->last_end) {
        e->last_end = ev->end_mark.index;
    }
}

/* Parses the first document, collecting edits and problems; -1 on a YAML syntax error. */
static int collect(patch_t *p, const char *yaml, size_t len)
{
    yaml_parser_t parser;
    int rc = 0;
    RT_CHECK(yaml_parser_initialize(&parser), "yaml_parser_initialize");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    for (bool done = false; !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            cfg__error_add(p->errs, "", (unsigned)parser.problem_mark.line + 1,
                           (unsigned)parser.problem_mark.column + 1, "YAML syntax error: %s%s%s",
                           parser.problem ? parser.problem : "syntax error",
                           parser.context ? " " : "", parser.context ? parser.context : "");
            rc = -1;
            break;
        }
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            note_content(p, &ev);
            on_node(p, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            on_node(p, &ev);
            if (p->depth + 1 + p->skip > CFG__MAX_NESTING) {
                /* Stop here: libyaml's scanner slows down quadratically with the depth. */
                cfg__error_add(p->errs, "", (unsigned)ev.start_mark.line + 1,
                               (unsigned)ev.start_mark.column + 1,
                               "YAML syntax error: collections nested deeper than %d levels",
                               CFG__MAX_NESTING);
                rc = -1;
                done = true;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            pop(p, &ev);
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

/* ---- splicing ---- */

/* Walks UTF-8 text forward, converting libyaml character indices into byte offsets. */
typedef struct cursor {
    const char *s;
    size_t len, chars, bytes;
} cursor_t;

static size_t to_byte(cursor_t *c, size_t chars)
{
    while (c->chars < chars && c->bytes < c->len) {
        c->bytes++;
        while (c->bytes < c->len && ((unsigned char)c->s[c->bytes] & 0xC0) == 0x80) {
            c->bytes++; /* a continuation byte of the same character */
        }
        c->chars++;
    }
    return c->bytes;
}

static int cmp_edits(const void *a, const void *b)
{
    const edit_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorts the edits and converts their character positions into byte offsets. */
static void to_bytes(edit_t *edits, size_t n, const char *yaml, size_t len, size_t bom)
{
    if (n == 0) {
        return; /* qsort(NULL, 0, ...) is undefined */
    }
    qsort(edits, n, sizeof(edits[0]), cmp_edits);
    cursor_t c = {.s = yaml, .len = len, .bytes = bom};
    for (size_t i = 0; i < n; i++) {
        edits[i].start = to_byte(&c, edits[i].start);
        edits[i].end = to_byte(&c, edits[i].end);
    }
}

typedef struct buf {
    char *data;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = rt_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_space(char c)
{
    return is_blank(c) || c == '\n' || c == '\r';
}

/* The length of the line break at `yaml[i]` (CRLF 2, LF or CR 1), or 0. */
static size_t line_break(const char *yaml, size_t len, size_t i)
{
    if (i < len && yaml[i] == '\r') {
        return i + 1 < len && yaml[i + 1] == '\n' ? 2 : 1;
    }
    return i < len && yaml[i] == '\n' ? 1 : 0;
}

/* The document's line break: CRLF if its first line ends with one. */
static const char *doc_eol(const char *yaml, size_t len)
{
    const char *nl = memchr(yaml, '\n', len);
    return nl != NULL && nl > yaml && nl[-1] == '\r' ? "\r\n" : "\n";
}

/* Skips spaces and tabs from `i`. */
static size_t skip_blanks(const char *yaml, size_t len, size_t i)
{
    while (i < len && is_blank(yaml[i])) {
        i++;
    }
    return i;
}

/*
 * From the end of a key whose value is empty, past the `:` (if any; a flow
 * `{ a }` has none); true if there was one.
 */
static bool skip_colon(const char *yaml, size_t len, size_t *i)
{
    size_t q = skip_blanks(yaml, len, *i);
    if (q < len && yaml[q] == ':') {
        *i = q + 1;
        return true;
    }
    return false;
}

/* Skips the anchor and tag tokens from `i` ("&a !!str"); returns the end of the last, or `i`. */
static size_t skip_decorations(const char *yaml, size_t len, size_t i)
{
    size_t q = skip_blanks(yaml, len, i);
    while (q < len && (yaml[q] == '&' || yaml[q] == '!')) {
        while (q < len && !is_space(yaml[q]) && strchr(",]}", yaml[q]) == NULL) {
            q++;
        }
        i = q;
        q = skip_blanks(yaml, len, q);
    }
    return i;
}

/* EDIT_REPLACE: narrows [start, end) to the scalar's text, keeping anchor, tag and quotes. */
static void replace_range(const char *yaml, const edit_t *e, size_t *start, size_t *end)
{
    size_t s = e->start, t = e->end;
    if (e->decorated) {
        s = skip_decorations(yaml, t, s);
        while (s < t && is_space(yaml[s])) {
            s++;
        }
    }
    if ((e->style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
         e->style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) &&
        t - s >= 2) {
        s++, t--;
    }
    if (e->style == YAML_LITERAL_SCALAR_STYLE || e->style == YAML_FOLDED_SCALAR_STYLE) {
        while (t > s && (yaml[t - 1] == '\n' || yaml[t - 1] == '\r')) {
            t--; /* a block scalar ends after its line break: keep it */
        }
    }
    *start = s, *end = t;
}

/*
 * EDIT_BLOCK: the new line goes after the line holding the entry's last
 * content (after a trailing comment), so it reads as the entry's next key.
 * Returns where; `*lead` says whether a line break must come first (no break
 * follows that content: end of input, or more text on the line).
 */
static size_t block_point(const char *yaml, size_t len, size_t pos, bool *lead)
{
    *lead = false;
    if (pos == 0 || yaml[pos - 1] == '\n' || yaml[pos - 1] == '\r') {
        return pos; /* the content (a block scalar) ended with its line break */
    }
    if (skip_colon(yaml, len, &pos)) {
        /* The last content was a key with an empty value, which may carry an anchor or tag. */
        pos = skip_decorations(yaml, len, pos);
    }
    size_t q = skip_blanks(yaml, len, pos);
    if (q < len && yaml[q] == '#') {
        while (q < len && yaml[q] != '\n' && yaml[q] != '\r') {
            q++;
        }
    }
    size_t lb = line_break(yaml, len, q);
    if (lb > 0) {
        return q + lb;
    }
    *lead = true;
    return q == len ? len : pos;
}

/* Copies the input up to edit `e`, writes the edit, and moves `*from` past what it replaced. */
static void splice(buf_t *out, const char *yaml, size_t len, size_t *from, const edit_t *e)
{
    char num[16];
    size_t at = e->start, resume = e->end;
    snprintf(num, sizeof(num), "%" PRIu32, e->weight);
    const char *eol = doc_eol(yaml, len);
    const char *prefix = "";
    bool lead = false;
    switch (e->kind) {
    case EDIT_REPLACE:
        replace_range(yaml, e, &at, &resume);
        break;
    case EDIT_EMPTY:
        /* `weight:` -> `weight: N`, `weight: &a` -> `weight: &a N`, `{ weight }` -> `weight: N` */
        prefix = ": ";
        if (skip_colon(yaml, len, &at)) {
            at = e->decorated ? skip_decorations(yaml, len, at) : at;
            prefix = " ";
        }
        resume = at;
        break;
    case EDIT_FLOW:
        /* `{ a: b, c: }` -> `{ a: b, c: , weight: N }`: libyaml refuses a plain `c:,` */
        prefix = ", weight: ";
        if (skip_colon(yaml, len, &at)) {
            at = skip_decorations(yaml, len, at); /* `c: &x }` -> `c: &x , weight: N }` */
            prefix = " , weight: ";
        }
        resume = at;
        break;
    case EDIT_BLOCK:
        at = resume = block_point(yaml, len, e->start, &lead);
        break;
    }
    buf_add(out, yaml + *from, at - *from);
    *from = resume;
    buf_str(out, prefix);
    if (e->kind == EDIT_BLOCK) {
        buf_str(out, lead ? eol : "");
        for (unsigned i = 0; i < e->indent; i++) {
            buf_add(out, " ", 1);
        }
        buf_str(out, "weight: ");
    }
    buf_str(out, num);
    if (e->kind == EDIT_BLOCK && !lead) {
        buf_str(out, eol);
    }
}

/* UTF-16 input: libyaml would read it, but our byte offsets assume UTF-8. */
static bool is_utf16(const char *yaml, size_t len)
{
    const unsigned char *u = (const unsigned char *)yaml;
    return len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE));
}

int cfg_set_weights(const char *yaml, size_t len, const char *route, const cfg_weight_t *w,
                    size_t n, char **out, size_t *out_len, cfg_errors_t *errs)
{
    size_t before = errs->count;
    if (is_utf16(yaml, len)) {
        cfg__error_add(errs, "", 1, 1, "YAML syntax error: UTF-16 is not supported, use UTF-8");
        return -1;
    }
    patch_t p = {.route_name = route, .w = w, .n = n, .errs = errs, .depth = -1, .entry = NO_ENTRY};
    if (collect(&p, yaml, len) == 0 && !p.found) {
        cfg__error_add(errs, "", 0, 0, "no route named \"%s\"", route);
    }
    route_reset(&p.route);
    if (errs->count != before) {
        free(p.edits);
        return -1;
    }

    bool bom = len >= 3 && memcmp(yaml, "\xEF\xBB\xBF", 3) == 0;
    to_bytes(p.edits, p.nedits, yaml, len, bom ? 3 : 0);
    buf_t b = {0};
    size_t from = 0;
    buf_add(&b, "", 0);
    for (size_t i = 0; i < p.nedits; i++) {
        splice(&b, yaml, len, &from, &p.edits[i]);
    }
    buf_add(&b, yaml + from, len - from);
    free(p.edits);
    *out = b.data;
    *out_len = b.len;
    return 0;
}
