/* SPDX-License-Identifier: MIT */
/*
 * http1.c - HTTP/1.x heads over picohttpparser plus our framing and request
 * smuggling checks, and an incremental zero-copy chunked-body decoder.
 * Pure code: no I/O, no allocation, no runtime calls.
 */
#include "proxy/http1.h"

#include <string.h>

#include "proxy/h2o_compat.h"

/*
 * Theory of operation.
 *
 * Heads. picohttpparser does the tokenising; it needs the whole head in the
 * buffer and tells us only "ok", "partial" (-2) or "bad" (-1). On top of it:
 *   - the buffer handed to phr is cut at max_head_bytes, so a head that is
 *     not complete within the limit is "partial" at the cut: 431;
 *   - on -1, classify_head() walks the same bytes again, in the same order
 *     phr does, and names the first problem precisely (bare CR, obs-fold,
 *     whitespace before a colon, control character, too many fields,
 *     version). It is ours, so it is where the fuzzer gets coverage (§II.6);
 *   - on success, check_request()/check_response() apply RFC 9112 framing:
 *     CL/TE combinations (§6.1, §6.3), strict Content-Length, Host (§3.2),
 *     request-target forms (§3.2), and compute keep-alive / upgrade.
 * Field values are trimmed of trailing whitespace (RFC 9110 §5.5; phr 2.2.5
 * trims only the leading side).
 *
 * Body. px_chunked_decode() is a byte-at-a-time state machine over the
 * framing (size line, extensions, CRLFs, trailer section) that hands back
 * chunk data as spans of the input, so it works at any split point and never
 * copies. Framing lines are bounded (CHUNK_LINE_MAX per line, TRAILER_MAX
 * for the whole trailer section). CRLF is required in chunked framing: bare
 * LF is a known source of parser disagreement (smuggling), and no real
 * client sends it there.
 *
 * Rejected: phr_decode_chunked. It decodes in place (copies), reports only
 * -1 on error, and accepts any bytes in chunk extensions.
 */

#define DEFAULT_MAX_HEAD (64 * 1024)
#define CHUNK_LINE_MAX 4096
#define TRAILER_MAX (64 * 1024)

/* ---- character classes ---- */

/* RFC 9110 §5.6.2 tchar */
static const unsigned char tchar_map[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool is_tchar(unsigned char c)
{
    return tchar_map[c] != 0;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* A byte allowed in a field value: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5). */
static bool is_field_vchar(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

#define EQ_LIT(p, n, lit) eq_nocase((p), (n), (lit), sizeof(lit) - 1)

/* ---- errors ---- */

int px_http1_error_status(px_http1_err_t err)
{
    switch (err) {
    case PX_HTTP1_OK:
        return 200;
    case PX_HTTP1_E_TE_UNSUPPORTED:
    case PX_HTTP1_E_METHOD:
        return 501;
    case PX_HTTP1_E_VERSION:
        return 505;
    case PX_HTTP1_E_HEAD_TOO_LARGE:
    case PX_HTTP1_E_TOO_MANY_HEADERS:
        return 431;
    case PX_HTTP1_E_BODY_TOO_LARGE:
        return 413;
    default:
        return 400;
    }
}

const char *px_http1_error_message(px_http1_err_t err)
{
    switch (err) {
    case PX_HTTP1_OK:
        return "ok";
    case PX_HTTP1_INCOMPLETE:
        return "incomplete message";
    case PX_HTTP1_E_SYNTAX:
        return "malformed request line or header";
    case PX_HTTP1_E_BARE_CR:
        return "CR not followed by LF";
    case PX_HTTP1_E_OBS_FOLD:
        return "obsolete line folding";
    case PX_HTTP1_E_SPACE_BEFORE_COLON:
        return "whitespace between field name and colon";
    case PX_HTTP1_E_CL_AND_TE:
        return "both Content-Length and Transfer-Encoding";
    case PX_HTTP1_E_CL_INVALID:
        return "invalid Content-Length";
    case PX_HTTP1_E_CL_DUPLICATE:
        return "more than one Content-Length";
    case PX_HTTP1_E_TE_NOT_CHUNKED:
        return "final transfer coding is not chunked";
    case PX_HTTP1_E_TE_UNSUPPORTED:
        return "unsupported transfer coding";
    case PX_HTTP1_E_TE_HTTP10:
        return "Transfer-Encoding in an HTTP/1.0 message";
    case PX_HTTP1_E_HOST_MISSING:
        return "missing Host";
    case PX_HTTP1_E_HOST_DUPLICATE:
        return "more than one Host";
    case PX_HTTP1_E_TARGET:
        return "invalid request-target";
    case PX_HTTP1_E_METHOD:
        return "method not implemented";
    case PX_HTTP1_E_VERSION:
        return "HTTP version not supported";
    case PX_HTTP1_E_HEAD_TOO_LARGE:
        return "header section too large";
    case PX_HTTP1_E_TOO_MANY_HEADERS:
        return "too many header fields";
    case PX_HTTP1_E_BODY_TOO_LARGE:
        return "body too large";
    case PX_HTTP1_E_CHUNK_SIZE:
        return "invalid chunk size";
    case PX_HTTP1_E_CHUNK_EXT:
        return "invalid chunk extension";
    case PX_HTTP1_E_CHUNK_FRAMING:
        return "invalid chunked framing";
    case PX_HTTP1_E_FIELD_VALUE:
        return "control character in a field value";
    }
    return "unknown error";
}

/* ---- header lookup ---- */

bool px_http1_name_is(const px_header_t *h, const char *want)
{
    return h->name != NULL && eq_nocase(h->name, h->name_len, want, strlen(want));
}

const px_header_t *px_http1_find(const px_header_t *h, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (h[i].name != NULL && eq_nocase(h[i].name, h[i].name_len, name, len))
            return &h[i];
    }
    return NULL;
}

/* ---- the classifier: why phr said -1 ---- */

/*
 * Finds the next line of `buf[*pos..len)`. Returns 1 with the line (without
 * its CRLF or LF) in `*line`/`*line_len` and `*pos` past the terminator, 0 at
 * the end of the buffer (no complete line), or E_BARE_CR.
 */
static int next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *line_len)
{
    for (size_t i = *pos; i < len; i++) {
        if (buf[i] == '\n') {
            *line = buf + *pos;
            *line_len = i - *pos;
            *pos = i + 1;
            return 1;
        }
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return 0;
            if (buf[i + 1] != '\n')
                return PX_HTTP1_E_BARE_CR;
            *line = buf + *pos;
            *line_len = i - *pos;
            *pos = i + 2;
            return 1;
        }
    }
    return 0;
}

/* Checks "HTTP/d.d" exactly: OK for 1.x, E_VERSION for another major, else E_SYNTAX. */
static px_http1_err_t classify_version(const char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit((unsigned char)v[5]) || v[6] != '.' ||
        !is_digit((unsigned char)v[7]))
        return PX_HTTP1_E_SYNTAX;
    return v[5] == '1' ? PX_HTTP1_OK : PX_HTTP1_E_VERSION;
}

static px_http1_err_t classify_request_line(const char *l, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i]))
        i++;
    if (i == 0 || i == n || l[i] != ' ')
        return PX_HTTP1_E_SYNTAX;
    size_t t = ++i;
    while (i < n && l[i] != ' ') {
        unsigned char c = (unsigned char)l[i];
        if (c < 0x20 || c == 0x7f)
            return PX_HTTP1_E_SYNTAX;
        i++;
    }
    if (i == t || i == n)
        return PX_HTTP1_E_SYNTAX;
    i++;
    return classify_version(l + i, n - i);
}

static px_http1_err_t classify_status_line(const char *l, size_t n)
{
    if (n < 8)
        return PX_HTTP1_E_SYNTAX;
    px_http1_err_t e = classify_version(l, 8);
    if (e != PX_HTTP1_OK)
        return e;
    if (n < 12 || l[8] != ' ' || !is_digit((unsigned char)l[9]) ||
        !is_digit((unsigned char)l[10]) || !is_digit((unsigned char)l[11]))
        return PX_HTTP1_E_SYNTAX;
    if (n > 12 && l[12] != ' ')
        return PX_HTTP1_E_SYNTAX;
    for (size_t i = 12; i < n; i++) {
        if (!is_field_vchar((unsigned char)l[i]))
            return PX_HTTP1_E_SYNTAX;
    }
    return PX_HTTP1_OK;
}

static px_http1_err_t classify_field_line(const char *l, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i]))
        i++;
    if (i == n)
        return PX_HTTP1_E_SYNTAX;
    if (is_ws((unsigned char)l[i])) {
        while (i < n && is_ws((unsigned char)l[i]))
            i++;
        return i < n && l[i] == ':' ? PX_HTTP1_E_SPACE_BEFORE_COLON : PX_HTTP1_E_SYNTAX;
    }
    if (l[i] != ':' || i == 0)
        return PX_HTTP1_E_SYNTAX;
    for (i++; i < n; i++) {
        if (!is_field_vchar((unsigned char)l[i]))
            return PX_HTTP1_E_FIELD_VALUE;
    }
    return PX_HTTP1_OK;
}

/*
 * Names the first problem in a head that picohttpparser refused, walking it
 * in phr's order. Falls back to E_SYNTAX when nothing specific is found.
 */
static px_http1_err_t classify_head(const char *buf, size_t len, bool is_request,
                                    size_t max_headers)
{
    size_t pos = 0;
    const char *line;
    size_t line_len;
    int r;

    /* phr skips one empty line before a request line (RFC 9112 §2.2). */
    if (is_request && len > 0 && (buf[0] == '\r' || buf[0] == '\n')) {
        r = next_line(buf, len, &pos, &line, &line_len);
        if (r <= 0)
            return r < 0 ? (px_http1_err_t)r : PX_HTTP1_E_SYNTAX;
    }
    r = next_line(buf, len, &pos, &line, &line_len);
    if (r < 0)
        return (px_http1_err_t)r;
    if (r == 0) {
        /* the start line is incomplete: judge what is there */
        line = buf + pos;
        line_len = len - pos;
        while (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
    }
    px_http1_err_t e =
        is_request ? classify_request_line(line, line_len) : classify_status_line(line, line_len);
    if (e != PX_HTTP1_OK)
        return e;
    if (r == 0)
        return PX_HTTP1_E_SYNTAX; /* never OK: phr refused these bytes */

    for (size_t k = 0;; k++) {
        r = next_line(buf, len, &pos, &line, &line_len);
        if (r < 0)
            return (px_http1_err_t)r;
        if (r == 0) {
            line = buf + pos;
            line_len = len - pos;
        } else if (line_len == 0) {
            return PX_HTTP1_E_SYNTAX; /* end of head, nothing found */
        }
        if (k == max_headers)
            return PX_HTTP1_E_TOO_MANY_HEADERS;
        if (line_len > 0 && is_ws((unsigned char)line[0]))
            return k == 0 ? PX_HTTP1_E_SYNTAX : PX_HTTP1_E_OBS_FOLD;
        e = classify_field_line(line, line_len);
        if (e != PX_HTTP1_OK || r == 0)
            return e != PX_HTTP1_OK ? e : PX_HTTP1_E_SYNTAX;
    }
}

/* ---- field values ---- */

/*
 * Iterates the elements of a comma-separated list (RFC 9110 §5.6.1):
 * returns false at the end; empty elements are skipped; each element is
 * trimmed of OWS.
 */
static bool list_next(const char **p, const char *end, const char **elem, size_t *elem_len)
{
    const char *s = *p;
    for (;;) {
        while (s < end && (is_ws((unsigned char)*s) || *s == ','))
            s++;
        if (s == end) {
            *p = s;
            return false;
        }
        const char *e = s;
        while (e < end && *e != ',')
            e++;
        const char *t = e;
        while (t > s && is_ws((unsigned char)t[-1]))
            t--;
        *elem = s;
        *elem_len = (size_t)(t - s);
        *p = e;
        return true;
    }
}

static bool list_has(const px_header_t *h, const char *token, size_t token_len)
{
    const char *p = h->value, *end = h->value + h->value_len, *elem;
    size_t elen;
    while (list_next(&p, end, &elem, &elen)) {
        if (eq_nocase(elem, elen, token, token_len))
            return true;
    }
    return false;
}

/* Parses 1*DIGIT into `*out` (RFC 9110 §8.6); false on anything else or overflow. */
static bool parse_content_length(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Host: uri-host [":" port] (RFC 9110 §7.2); empty is allowed. */
static bool host_is_valid(const char *s, size_t n)
{
    static const char extra[] = "-._~!$&'()*+,;=:[]%";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                  (c != 0 && memchr(extra, c, sizeof(extra) - 1) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

/* What the framing-relevant fields of a head say. */
typedef struct framing {
    const px_header_t *host;
    const px_header_t *cl;
    size_t nhost, ncl, nte;
    bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, expect_continue;
    const px_header_t *te[PX_HTTP1_MAX_HEADERS]; /* last: filled as far as nte, never zeroed */
} framing_t;

/*
 * Trims trailing OWS from the `n` headers picohttpparser left in `hs` and
 * collects the framing fields. Returns E_OBS_FOLD for a continuation line.
 */
static px_http1_err_t collect(px_header_t *hs, size_t n, framing_t *f)
{
    memset(f, 0, offsetof(framing_t, te)); /* not the 1 KiB array: twice per request */
    for (size_t i = 0; i < n; i++) {
        px_header_t *h = &hs[i];
        if (h->name == NULL)
            return PX_HTTP1_E_OBS_FOLD;
        while (h->value_len > 0 && is_ws((unsigned char)h->value[h->value_len - 1]))
            h->value_len--;

        const char *nm = h->name;
        size_t nl = h->name_len;
        if (EQ_LIT(nm, nl, "host")) {
            f->host = h;
            f->nhost++;
        } else if (EQ_LIT(nm, nl, "content-length")) {
            f->cl = h;
            f->ncl++;
        } else if (EQ_LIT(nm, nl, "transfer-encoding")) {
            f->te[f->nte++] = h;
        } else if (EQ_LIT(nm, nl, "connection")) {
            f->conn_close |= list_has(h, "close", 5);
            f->conn_keep_alive |= list_has(h, "keep-alive", 10);
            f->conn_upgrade |= list_has(h, "upgrade", 7);
        } else if (EQ_LIT(nm, nl, "upgrade")) {
            f->has_upgrade = true;
        } else if (EQ_LIT(nm, nl, "expect")) {
            f->expect_continue |= EQ_LIT(h->value, h->value_len, "100-continue");
        }
    }
    return PX_HTTP1_OK;
}

/*
 * RFC 9112 §6.1 / §7: the transfer codings, across every Transfer-Encoding
 * line, must end in exactly one chunked; anything before it is a coding we
 * do not implement (501). No coding, a malformed one, chunked with
 * parameters or chunked twice is bad framing (400).
 */
static px_http1_err_t check_te(const framing_t *f)
{
    size_t ncodings = 0;
    bool last_chunked = false, chunked_before_last = false;
    for (size_t i = 0; i < f->nte; i++) {
        const px_header_t *h = f->te[i];
        const char *p = h->value, *end = h->value + h->value_len, *elem;
        size_t elen;
        while (list_next(&p, end, &elem, &elen)) {
            size_t k = 0;
            while (k < elen && is_tchar((unsigned char)elem[k]))
                k++;
            if (k == 0)
                return PX_HTTP1_E_TE_NOT_CHUNKED;
            size_t j = k;
            while (j < elen && is_ws((unsigned char)elem[j]))
                j++;
            if (j < elen && elem[j] != ';')
                return PX_HTTP1_E_TE_NOT_CHUNKED;
            chunked_before_last |= last_chunked;
            last_chunked = EQ_LIT(elem, k, "chunked") && j == elen;
            ncodings++;
        }
    }
    if (ncodings == 0 || !last_chunked || chunked_before_last)
        return PX_HTTP1_E_TE_NOT_CHUNKED;
    return ncodings > 1 ? PX_HTTP1_E_TE_UNSUPPORTED : PX_HTTP1_OK;
}

/* The CL/TE rules shared by requests and responses; sets `*kind`/`*cl`. */
static px_http1_err_t check_framing(const framing_t *f, int minor_version, px_body_kind_t *kind,
                                    uint64_t *cl)
{
    *kind = PX_BODY_NONE;
    *cl = 0;
    /* RFC 9112 §6.3: both TE and CL present -> reject (request smuggling). */
    if (f->nte > 0 && f->ncl > 0)
        return PX_HTTP1_E_CL_AND_TE;
    if (f->nte > 0) {
        /* RFC 9112 §6.1: TE in HTTP/1.0 means the framing is faulty. */
        if (minor_version == 0)
            return PX_HTTP1_E_TE_HTTP10;
        px_http1_err_t e = check_te(f);
        if (e != PX_HTTP1_OK)
            return e;
        *kind = PX_BODY_CHUNKED;
    } else if (f->ncl > 0) {
        /* RFC 9112 §6.3 item 5: even equal duplicates are refused here. */
        if (f->ncl > 1)
            return PX_HTTP1_E_CL_DUPLICATE;
        if (!parse_content_length(f->cl->value, f->cl->value_len, cl))
            return PX_HTTP1_E_CL_INVALID;
        *kind = PX_BODY_LENGTH;
    }
    return PX_HTTP1_OK;
}

/* ---- requests ---- */

static bool target_chars_ok(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return false;
    }
    return true;
}

/*
 * RFC 9112 §3.2: origin-form ("/p?q"), absolute-form ("http://h/p?q": the
 * authority replaces Host), asterisk-form (OPTIONS only). Authority-form is
 * CONNECT's, refused earlier. An absolute-form target with an empty path and
 * a query ("http://h?q") is refused: its origin-form "/?q" is not a span of
 * the buffer, and no client sends it to a reverse proxy.
 */
static px_http1_err_t check_target(px_request_t *req)
{
    const char *t = req->target;
    size_t n = req->target_len;
    if (!target_chars_ok(t, n))
        return PX_HTTP1_E_TARGET;
    if (t[0] == '/') {
        req->path = t;
        req->path_len = n;
        return PX_HTTP1_OK;
    }
    if (n == 1 && t[0] == '*') {
        if (req->method_len != 7 || memcmp(req->method, "OPTIONS", 7) != 0)
            return PX_HTTP1_E_TARGET;
        req->path = t;
        req->path_len = 1;
        return PX_HTTP1_OK;
    }
    size_t skip;
    if (n >= 7 && eq_nocase(t, 7, "http://", 7))
        skip = 7;
    else if (n >= 8 && eq_nocase(t, 8, "https://", 8))
        skip = 8;
    else
        return PX_HTTP1_E_TARGET;
    const char *auth = t + skip, *end = t + n, *p = auth;
    while (p < end && *p != '/' && *p != '?')
        p++;
    if (p == auth || memchr(auth, '@', (size_t)(p - auth)) != NULL ||
        !host_is_valid(auth, (size_t)(p - auth)))
        return PX_HTTP1_E_TARGET;
    if (p < end && *p == '?')
        return PX_HTTP1_E_TARGET;
    req->host = auth;
    req->host_len = (size_t)(p - auth);
    if (p == end) {
        req->path = "/";
        req->path_len = 1;
    } else {
        req->path = p;
        req->path_len = (size_t)(end - p);
    }
    return PX_HTTP1_OK;
}

static px_http1_err_t check_request(px_request_t *req, const px_http1_limits_t *lim, size_t nph)
{
    framing_t f;
    px_http1_err_t e = collect(req->headers, nph, &f);
    req->nheaders = nph;
    if (e != PX_HTTP1_OK)
        return e;
    if (req->minor_version > 1)
        return PX_HTTP1_E_VERSION;
    for (size_t i = 0; i < req->method_len; i++) {
        if (!is_tchar((unsigned char)req->method[i]))
            return PX_HTTP1_E_SYNTAX;
    }
    if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
        return PX_HTTP1_E_METHOD;

    /* RFC 9112 §3.2: one Host, required in 1.1, a valid uri-host[:port]. */
    if (f.nhost > 1)
        return PX_HTTP1_E_HOST_DUPLICATE;
    if (f.nhost == 0 && req->minor_version == 1)
        return PX_HTTP1_E_HOST_MISSING;
    if (f.host != NULL && !host_is_valid(f.host->value, f.host->value_len))
        return PX_HTTP1_E_SYNTAX;
    req->host = f.host != NULL ? f.host->value : "";
    req->host_len = f.host != NULL ? f.host->value_len : 0;
    e = check_target(req);
    if (e != PX_HTTP1_OK)
        return e;

    e = check_framing(&f, req->minor_version, &req->body, &req->content_length);
    if (e != PX_HTTP1_OK)
        return e;
    if (req->body == PX_BODY_LENGTH && lim->max_body_bytes != 0 &&
        req->content_length > lim->max_body_bytes)
        return PX_HTTP1_E_BODY_TOO_LARGE;

    bool v11 = req->minor_version == 1;
    req->keep_alive = !f.conn_close && (v11 || f.conn_keep_alive);
    /* RFC 9110 §10.1.1 and §7.8: both are ignored in HTTP/1.0 requests. */
    req->expect_continue = v11 && f.expect_continue;
    req->upgrade = v11 && f.has_upgrade && f.conn_upgrade;
    req->is_head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    return PX_HTTP1_OK;
}

px_http1_err_t px_http1_parse_request(const char *buf, size_t len, size_t prev_len,
                                      const px_http1_limits_t *lim, px_request_t *req)
{
    static const px_http1_limits_t defaults = {DEFAULT_MAX_HEAD, PX_HTTP1_MAX_HEADERS, 0};
    if (lim == NULL)
        lim = &defaults;
    /* 0 means "the default" for the head limits, "unlimited" for the body. */
    size_t max_head = lim->max_head_bytes != 0 ? lim->max_head_bytes : DEFAULT_MAX_HEAD;
    size_t max_headers = lim->max_headers != 0 && lim->max_headers < PX_HTTP1_MAX_HEADERS
                             ? lim->max_headers
                             : PX_HTTP1_MAX_HEADERS;
    size_t cut = len < max_head ? len : max_head;
    if (prev_len > cut)
        prev_len = cut;

    size_t nph = max_headers;
    int minor = -1;
    memset(req, 0, offsetof(px_request_t, headers)); /* the array is filled as far as used */
    int r = phr_parse_request(buf, cut, &req->method, &req->method_len, &req->target,
                              &req->target_len, &minor, req->headers, &nph, prev_len);
    if (r == -2)
        return cut >= max_head ? PX_HTTP1_E_HEAD_TOO_LARGE : PX_HTTP1_INCOMPLETE;
    if (r < 0)
        return classify_head(buf, cut, true, max_headers);
    req->minor_version = minor;
    req->head_len = (size_t)r;
    return check_request(req, lim, nph);
}

/* ---- responses ---- */

px_http1_err_t px_http1_parse_response(const char *buf, size_t len, size_t prev_len, bool is_head,
                                       size_t max_head_bytes, px_response_t *resp)
{
    size_t max_head = max_head_bytes != 0 ? max_head_bytes : DEFAULT_MAX_HEAD;
    size_t cut = len < max_head ? len : max_head;
    if (prev_len > cut)
        prev_len = cut;

    size_t nph = PX_HTTP1_MAX_HEADERS;
    int minor = -1, status = 0;
    memset(resp, 0, offsetof(px_response_t, headers));
    int r = phr_parse_response(buf, cut, &minor, &status, &resp->reason, &resp->reason_len,
                               resp->headers, &nph, prev_len);
    if (r == -2)
        return cut >= max_head ? PX_HTTP1_E_HEAD_TOO_LARGE : PX_HTTP1_INCOMPLETE;
    if (r < 0)
        return classify_head(buf, cut, false, PX_HTTP1_MAX_HEADERS);
    resp->minor_version = minor;
    resp->status = status;
    resp->head_len = (size_t)r;

    framing_t f;
    px_http1_err_t e = collect(resp->headers, nph, &f);
    resp->nheaders = nph;
    if (e != PX_HTTP1_OK)
        return e;
    if (minor > 1)
        return PX_HTTP1_E_VERSION;
    if (status < 100)
        return PX_HTTP1_E_SYNTAX;
    px_body_kind_t kind;
    e = check_framing(&f, minor, &kind, &resp->content_length);
    if (e != PX_HTTP1_OK)
        return e;

    /* RFC 9112 §6.3: the first rule that applies decides the body length. */
    if (is_head || status < 200 || status == 204 || status == 304) {
        resp->body = PX_BODY_NONE;
        resp->content_length = 0;
    } else if (kind == PX_BODY_NONE) {
        resp->body = PX_BODY_UNTIL_CLOSE;
    } else {
        resp->body = kind;
    }
    resp->upgrade = status == 101;
    resp->keep_alive = !f.conn_close && (minor == 1 || f.conn_keep_alive) &&
                       resp->body != PX_BODY_UNTIL_CLOSE && !resp->upgrade;
    return PX_HTTP1_OK;
}

/* ---- chunked bodies ---- */

enum chunked_state {
    CK_SIZE = 0,        /* chunk-size hex digits (the zero value: start) */
    CK_SIZE_BWS,        /* whitespace after the size: only ';' may follow */
    CK_EXT_PRE_NAME,    /* after ';' */
    CK_EXT_NAME,        /* chunk-ext-name */
    CK_EXT_POST_NAME,   /* BWS after the name */
    CK_EXT_PRE_VAL,     /* after '=' */
    CK_EXT_TOKEN,       /* token value */
    CK_EXT_QUOTED,      /* quoted-string value */
    CK_EXT_QUOTED_PAIR, /* after a backslash in it */
    CK_EXT_POST_VAL,    /* BWS after a value */
    CK_SIZE_LF,         /* CR seen at the end of the size line */
    CK_DATA,            /* `remaining` data bytes follow */
    CK_DATA_CR,         /* CRLF after the data */
    CK_DATA_LF,
    CK_TRAILER_START, /* start of a trailer line, or of the final CRLF */
    CK_TRAILER_NAME,
    CK_TRAILER_VALUE,
    CK_TRAILER_LF,
    CK_END_LF, /* CR of the final CRLF seen */
    CK_DONE,
};

void px_chunked_init(px_chunked_t *c)
{
    memset(c, 0, sizeof(*c));
}

static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* Ends the size line: data follows, or the trailer section after a last chunk. */
static void size_line_done(px_chunked_t *c)
{
    c->line_len = 0;
    c->state = c->remaining > 0 ? CK_DATA : CK_TRAILER_START;
}

/* Advances the size-line states by one byte (RFC 9112 §7.1, §7.1.1). */
static int step_size_line(px_chunked_t *c, unsigned char ch)
{
    if (++c->line_len > CHUNK_LINE_MAX)
        return PX_HTTP1_E_HEAD_TOO_LARGE;
    if (ch == '\n' && c->state != CK_SIZE_LF)
        return PX_HTTP1_E_CHUNK_FRAMING; /* bare LF */
    switch (c->state) {
    case CK_SIZE: {
        int v = hex_value(ch);
        if (v >= 0) {
            if (c->remaining > (UINT64_MAX >> 4))
                return PX_HTTP1_E_CHUNK_SIZE;
            c->remaining = (c->remaining << 4) | (uint64_t)v;
            return 0;
        }
        if (c->line_len == 1)
            return PX_HTTP1_E_CHUNK_SIZE; /* no digit at all */
        if (ch == '\r')
            c->state = CK_SIZE_LF;
        else if (ch == ';')
            c->state = CK_EXT_PRE_NAME;
        else if (is_ws(ch))
            c->state = CK_SIZE_BWS;
        else
            return PX_HTTP1_E_CHUNK_SIZE;
        return 0;
    }
    case CK_SIZE_BWS:
        if (ch == ';')
            c->state = CK_EXT_PRE_NAME;
        else if (!is_ws(ch))
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_EXT_PRE_NAME:
        if (is_tchar(ch))
            c->state = CK_EXT_NAME;
        else if (!is_ws(ch))
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_EXT_NAME:
    case CK_EXT_TOKEN:
        if (is_tchar(ch))
            return 0;
        if (ch == '\r')
            c->state = CK_SIZE_LF;
        else if (ch == ';')
            c->state = CK_EXT_PRE_NAME;
        else if (ch == '=' && c->state == CK_EXT_NAME)
            c->state = CK_EXT_PRE_VAL;
        else if (is_ws(ch))
            c->state = c->state == CK_EXT_NAME ? CK_EXT_POST_NAME : CK_EXT_POST_VAL;
        else
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_EXT_POST_NAME:
        if (ch == '=')
            c->state = CK_EXT_PRE_VAL;
        else if (ch == ';')
            c->state = CK_EXT_PRE_NAME;
        else if (!is_ws(ch))
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_EXT_PRE_VAL:
        if (ch == '"')
            c->state = CK_EXT_QUOTED;
        else if (is_tchar(ch))
            c->state = CK_EXT_TOKEN;
        else if (!is_ws(ch))
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_EXT_QUOTED:
        if (ch == '"')
            c->state = CK_EXT_POST_VAL;
        else if (ch == '\\')
            c->state = CK_EXT_QUOTED_PAIR;
        else if (!is_qdtext(ch))
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_EXT_QUOTED_PAIR:
        if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
            return PX_HTTP1_E_CHUNK_EXT;
        c->state = CK_EXT_QUOTED;
        return 0;
    case CK_EXT_POST_VAL:
        if (ch == ';')
            c->state = CK_EXT_PRE_NAME;
        else if (ch == '\r')
            c->state = CK_SIZE_LF;
        else if (!is_ws(ch))
            return PX_HTTP1_E_CHUNK_EXT;
        return 0;
    case CK_SIZE_LF:
        if (ch != '\n')
            return PX_HTTP1_E_CHUNK_FRAMING;
        size_line_done(c);
        return 0;
    default:
        return PX_HTTP1_E_CHUNK_FRAMING;
    }
}

/*
 * Advances the trailer-section states by one byte (RFC 9112 §7.1.2): each
 * field line must be a valid field; all are discarded. While in the trailer
 * section `remaining` (no chunk is open) counts its bytes, for TRAILER_MAX.
 */
static int step_trailer(px_chunked_t *c, unsigned char ch)
{
    if (++c->remaining > TRAILER_MAX || ++c->line_len > CHUNK_LINE_MAX)
        return PX_HTTP1_E_HEAD_TOO_LARGE;
    switch (c->state) {
    case CK_TRAILER_START:
        if (ch == '\r')
            c->state = CK_END_LF;
        else if (is_tchar(ch))
            c->state = CK_TRAILER_NAME;
        else
            return PX_HTTP1_E_CHUNK_FRAMING;
        return 0;
    case CK_TRAILER_NAME:
        if (ch == ':')
            c->state = CK_TRAILER_VALUE;
        else if (!is_tchar(ch))
            return PX_HTTP1_E_CHUNK_FRAMING;
        return 0;
    case CK_TRAILER_VALUE:
        if (ch == '\r')
            c->state = CK_TRAILER_LF;
        else if (!is_field_vchar(ch))
            return PX_HTTP1_E_CHUNK_FRAMING;
        return 0;
    case CK_TRAILER_LF:
        if (ch != '\n')
            return PX_HTTP1_E_CHUNK_FRAMING;
        c->line_len = 0;
        c->state = CK_TRAILER_START;
        return 0;
    case CK_END_LF:
        if (ch != '\n')
            return PX_HTTP1_E_CHUNK_FRAMING;
        c->remaining = 0;
        c->line_len = 0;
        c->state = CK_DONE;
        c->done = true;
        return 0;
    default:
        return PX_HTTP1_E_CHUNK_FRAMING;
    }
}

ssize_t px_chunked_decode(px_chunked_t *c, const char *in, size_t len, size_t *data_off,
                          size_t *data_len)
{
    *data_off = 0;
    *data_len = 0;
    size_t i = 0;
    while (i < len && c->state != CK_DONE) {
        if (c->state == CK_DATA) {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data_off = i;
            *data_len = n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = CK_DATA_CR;
            return (ssize_t)(i + n);
        }
        unsigned char ch = (unsigned char)in[i++];
        int r;
        if (c->state == CK_DATA_CR || c->state == CK_DATA_LF) {
            if (ch != (c->state == CK_DATA_CR ? '\r' : '\n'))
                return PX_HTTP1_E_CHUNK_FRAMING;
            c->state = c->state == CK_DATA_CR ? CK_DATA_LF : CK_SIZE;
            continue;
        }
        if (c->state >= CK_TRAILER_START)
            r = step_trailer(c, ch);
        else
            r = step_size_line(c, ch);
        if (r < 0)
            return r;
    }
    return (ssize_t)i;
}
