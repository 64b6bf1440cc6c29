/* SPDX-License-Identifier: MIT */
/*
 * headers.c - rewriting request and response heads on their way through the
 * proxy (RFC 9110 §7.6): hop-by-hop fields out, our framing and forwarding
 * fields in. Pure code writing into caller buffers.
 */
#include "proxy/headers.h"

#include <string.h>

#include "runtime/rt.h"

/*
 * Output layout (tests compare exact strings, so it is fixed):
 *
 *   request:  "METHOD path HTTP/1.1", then "Host" first if the client sent
 *             none (HTTP/1.0), then the client's fields in order, minus the
 *             dropped ones, with Host rewritten to the absolute-form
 *             authority, ", ip" appended to the last X-Forwarded-For and
 *             ", via" to the last Via; then, in this order, X-Forwarded-For,
 *             Via and X-Request-Id when the client sent none,
 *             X-Forwarded-Proto, "Connection: upgrade", the framing field,
 *             the extra fields.
 *   response: "HTTP/1.1 status reason", the upstream's fields minus the
 *             dropped ones, ", via" appended to the last Via; then Via when
 *             there was none, x-remora-backend, Connection, the framing
 *             field, the extra fields.
 *
 * Dropped both ways: Connection and every field it names (but never Host),
 * Keep-Alive, Proxy-Connection, Proxy-*, TE, Trailer, Transfer-Encoding,
 * Upgrade (unless upgrading), Content-Length (our framing replaces it; kept
 * on responses without a body, where it describes a HEAD or 304). Requests
 * also lose Expect (the proxy answers 100-continue itself) and the client's
 * X-Forwarded-Proto; responses lose every x-remora-* field.
 */

typedef struct wbuf {
    char *p;
    size_t cap;
    size_t len;
    bool overflow;
} wbuf_t;

static void put(wbuf_t *w, const char *s, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void puts_(wbuf_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_u64(wbuf_t *w, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, tmp + i, sizeof(tmp) - i);
}

/* Writes "name: value\r\n". */
static void put_field(wbuf_t *w, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    put(w, name, name_len);
    put(w, ": ", 2);
    put(w, value, value_len);
    put(w, "\r\n", 2);
}

static void put_field_str(wbuf_t *w, const char *name, const char *value)
{
    put_field(w, name, strlen(name), value, strlen(value));
}

static ssize_t finish(wbuf_t *w)
{
    put(w, "\r\n", 2);
    return w->overflow ? -1 : (ssize_t)w->len;
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

static bool has_prefix_nocase(const char *s, size_t n, const char *prefix)
{
    size_t pn = strlen(prefix);
    return n >= pn && eq_nocase(s, pn, prefix, pn);
}

#define NAME_IS(h, lit) eq_nocase((h)->name, (h)->name_len, (lit), sizeof(lit) - 1)

/* True if `name` is a token of any Connection field in `h[0..n)`. */
static bool named_by_connection(const px_header_t *h, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (!NAME_IS(&h[i], "connection"))
            continue;
        const char *p = h[i].value, *end = h[i].value + h[i].value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > s && eq_nocase(s, (size_t)(e - s), name, name_len))
                return true;
        }
    }
    return false;
}

/* RFC 9110 §7.6.1: fields meant for one connection only. */
static bool is_hop_by_hop(const px_header_t *all, size_t n, const px_header_t *h, bool upgrade)
{
    if (NAME_IS(h, "host"))
        return false; /* "Connection: host" must not strip it */
    if (NAME_IS(h, "connection") || NAME_IS(h, "keep-alive") || NAME_IS(h, "te") ||
        NAME_IS(h, "trailer") || NAME_IS(h, "transfer-encoding") ||
        has_prefix_nocase(h->name, h->name_len, "proxy-"))
        return true;
    if (NAME_IS(h, "upgrade"))
        return !upgrade;
    return named_by_connection(all, n, h->name, h->name_len);
}

/* Index of the last field named `name`, or n. */
static size_t last_index(const px_header_t *h, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = n; i-- > 0;) {
        if (eq_nocase(h[i].name, h[i].name_len, name, len))
            return i;
    }
    return n;
}

/* Writes `h` with ", add" appended to its value ("add" alone if it was empty). */
static void put_appended(wbuf_t *w, const px_header_t *h, const char *add)
{
    put(w, h->name, h->name_len);
    put(w, ": ", 2);
    put(w, h->value, h->value_len);
    if (h->value_len > 0)
        put(w, ", ", 2);
    puts_(w, add);
    put(w, "\r\n", 2);
}

static void put_extra(wbuf_t *w, const px_header_t *extra, size_t n)
{
    for (size_t i = 0; extra != NULL && i < n; i++)
        put_field(w, extra[i].name, extra[i].name_len, extra[i].value, extra[i].value_len);
}

ssize_t px_headers_request_head(char *out, size_t cap, const px_request_t *req,
                                const px_fwd_request_t *fwd)
{
    wbuf_t w = {out, cap, 0, false};
    const px_header_t *h = req->headers;
    size_t n = req->nheaders;

    put(&w, req->method, req->method_len);
    put(&w, " ", 1);
    put(&w, req->path, req->path_len);
    put(&w, " HTTP/1.1\r\n", 11);

    /* The upstream speaks 1.1, which needs Host (RFC 9112 §3.2; empty if none). */
    size_t xff = last_index(h, n, "x-forwarded-for");
    size_t via = last_index(h, n, "via");
    bool has_host = last_index(h, n, "host") < n;
    bool has_id = last_index(h, n, "x-request-id") < n;
    if (!has_host)
        put_field(&w, "Host", 4, req->host, req->host_len);

    for (size_t i = 0; i < n; i++) {
        const px_header_t *f = &h[i];
        if (is_hop_by_hop(h, n, f, fwd->upgrade) || NAME_IS(f, "content-length") ||
            NAME_IS(f, "expect") || NAME_IS(f, "x-forwarded-proto"))
            continue;
        if (NAME_IS(f, "host"))
            put_field(&w, f->name, f->name_len, req->host, req->host_len);
        else if (i == xff && fwd->client_ip != NULL)
            put_appended(&w, f, fwd->client_ip);
        else if (i == via && fwd->via != NULL)
            put_appended(&w, f, fwd->via);
        else
            put_field(&w, f->name, f->name_len, f->value, f->value_len);
    }

    if (xff == n && fwd->client_ip != NULL)
        put_field_str(&w, "X-Forwarded-For", fwd->client_ip);
    if (via == n && fwd->via != NULL)
        put_field_str(&w, "Via", fwd->via);
    if (!has_id && fwd->request_id != NULL)
        put_field_str(&w, "X-Request-Id", fwd->request_id);
    if (fwd->proto != NULL)
        put_field_str(&w, "X-Forwarded-Proto", fwd->proto);
    if (fwd->upgrade)
        puts_(&w, "Connection: upgrade\r\n");
    if (fwd->body == PX_BODY_LENGTH) {
        puts_(&w, "Content-Length: ");
        put_u64(&w, fwd->content_length);
        put(&w, "\r\n", 2);
    } else if (fwd->body == PX_BODY_CHUNKED) {
        puts_(&w, "Transfer-Encoding: chunked\r\n");
    }
    put_extra(&w, fwd->extra, fwd->nextra);
    return finish(&w);
}

const char *px_headers_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

ssize_t px_headers_response_head(char *out, size_t cap, const px_response_t *resp,
                                 const px_fwd_response_t *fwd)
{
    wbuf_t w = {out, cap, 0, false};
    const px_header_t *h = resp->headers;
    size_t n = resp->nheaders;

    if (resp->status < 100 || resp->status > 999)
        return -1;
    puts_(&w, "HTTP/1.1 ");
    put_u64(&w, (uint64_t)resp->status);
    put(&w, " ", 1);
    if (resp->reason_len > 0)
        put(&w, resp->reason, resp->reason_len);
    else
        puts_(&w, px_headers_status_text(resp->status));
    put(&w, "\r\n", 2);

    size_t via = last_index(h, n, "via");
    for (size_t i = 0; i < n; i++) {
        const px_header_t *f = &h[i];
        if (is_hop_by_hop(h, n, f, fwd->upgrade) ||
            has_prefix_nocase(f->name, f->name_len, "x-remora-") ||
            (NAME_IS(f, "content-length") && fwd->body != PX_BODY_NONE))
            continue;
        if (i == via && fwd->via != NULL)
            put_appended(&w, f, fwd->via);
        else
            put_field(&w, f->name, f->name_len, f->value, f->value_len);
    }

    if (via == n && fwd->via != NULL)
        put_field_str(&w, "Via", fwd->via);
    if (fwd->backend != NULL)
        put_field_str(&w, "x-remora-backend", fwd->backend);
    /* A body delimited by the close leaves nothing to keep alive. */
    if (fwd->upgrade)
        puts_(&w, "Connection: upgrade\r\n");
    else if (!fwd->keep_alive || fwd->body == PX_BODY_UNTIL_CLOSE)
        puts_(&w, "Connection: close\r\n");
    else if (fwd->client_http10)
        puts_(&w, "Connection: keep-alive\r\n");
    if (fwd->body == PX_BODY_LENGTH) {
        puts_(&w, "Content-Length: ");
        put_u64(&w, fwd->content_length);
        put(&w, "\r\n", 2);
    } else if (fwd->body == PX_BODY_CHUNKED) {
        puts_(&w, "Transfer-Encoding: chunked\r\n");
    }
    put_extra(&w, fwd->extra, fwd->nextra);
    return finish(&w);
}

void px_headers_new_request_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int half = 0; half < 2; half++) {
        uint64_t r = rt_fastrand();
        for (int i = 0; i < 16; i++) {
            out[half * 16 + i] = hex[r & 0xf];
            r >>= 4;
        }
    }
    out[32] = '\0';
}
