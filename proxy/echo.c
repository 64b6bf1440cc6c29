/* SPDX-License-Identifier: MIT */
/*
 * echo.c - remora-echo, the test upstream used by tests, benchmarks and the
 * demo: an HTTP/1.1 server on the remora runtime that answers with its name,
 * a request sequence number and a configurable body, returns the request it
 * received on /echo, and offers per-request hooks (status, delay, body size,
 * chunked, close-delimited, reset) that drive the proxy's error paths.
 */

/*
 * Theory of operation.
 *
 * One G accepts; each connection gets its own G running conn_main. A
 * connection owns a read buffer (rbuf: a 64 KiB head limit plus slack) and an
 * output buffer (obuf). Requests are parsed in place with px_http1; every
 * complete request already in rbuf is answered into obuf before anything is
 * written, so a pipelined burst costs one read and one write, and a plain
 * keep-alive request costs exactly one read(2) and one sendmsg(2). obuf is
 * flushed before any call that may wait (reading more, sleeping for a delay).
 *
 * The parsed head borrows rbuf, and reading the request body reuses rbuf, so
 * everything the answer needs (hooks, the /echo JSON prefix) is taken from
 * the head before the first body byte is consumed. Bodies are never held
 * whole: request bodies are hashed (FNV-1a) as they stream through rbuf (only
 * the first 64 KiB are kept, for /echo), and large response bodies are sent
 * straight from a shared pattern buffer (byte i is 'a' + i % 23, so any
 * offset is a pointer into it), so a multi-GiB answer uses no extra memory.
 *
 * A read that came back short left the socket empty, so the next fill waits
 * for readiness before reading: a keep-alive request then costs one read(2),
 * not a second one that only says EAGAIN (this relies on the netpoller being
 * edge-triggered: any byte that arrives later is reported). Idle keep-alive
 * connections park their G there (a stack page each; rt_go_when_readable is
 * not used: the per-connection buffers dominate the cost).
 *
 * SIGTERM and SIGINT are blocked in every thread and read from a signalfd by
 * the main G, which exits the process at once with status 0 (nothing is
 * buffered in stdio).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proxy/http1.h"
#include "runtime/base.h"
#include "runtime/rt.h"

#define HEAD_MAX (64 * 1024)       /* request line + headers */
#define RBUF_CAP (HEAD_MAX + 4096) /* more than HEAD_MAX so the parser sees the overflow */
#define OBUF_CAP (32 * 1024)       /* responses are gathered here, then written at once */
#define HEAD_RESERVE 1024          /* room a response head needs in obuf */
#define PAT_PERIOD 23              /* byte i of a sized body is 'a' + i % 23 */
#define PAT_SPAN (64 * 1024)       /* largest single write from the pattern */
#define CHUNK_MAX (16 * 1024)      /* x-echo-chunked: chunks of at most 16 KiB */
#define ECHO_BODY_MAX (64 * 1024)  /* /echo shows the first 64 KiB of the body */
#define NAME_MAX_LEN 128           /* --name */
#define DRAIN_MAX (256 * 1024)     /* bytes read and dropped by a lingering close */
#define DRAIN_TIME (1 * RT_SEC)    /* how long a lingering close waits for the peer */
#define YIELD_EVERY 16             /* big writes between voluntary yields */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* Command-line knobs; read-only once the runtime runs. */
static struct {
    const char *listen;
    const char *name;
    size_t name_len;
    int status;
    int64_t delay_ns;
    uint64_t error_thr; /* answer 500 when a 32-bit random number is below this */
    bool has_body_size;
    uint64_t body_size;
    int procs;
} g_opt = {.name = "echo", .name_len = 4, .status = 200};

static char g_pat[PAT_SPAN + PAT_PERIOD];
static char g_default_body[NAME_MAX_LEN + 32]; /* "hello from NAME\n" */
static size_t g_default_body_len;
static char g_name_hdr[NAME_MAX_LEN + 64]; /* "x-echo-name: NAME\r\nx-echo-seq: " */
static size_t g_name_hdr_len;
static _Atomic uint64_t g_seq;
static int g_exit_code;
static const px_http1_limits_t g_limits = {
    .max_head_bytes = HEAD_MAX, .max_headers = PX_HTTP1_MAX_HEADERS, .max_body_bytes = 0};

typedef struct conn {
    rt_netfd_t *nfd;
    int fd;
    size_t rpos, rlen; /* unconsumed input is rbuf[rpos, rlen) */
    size_t prev;       /* bytes seen by the last incomplete parse of this head */
    size_t olen;       /* pending output in obuf */
    unsigned writes;   /* big writes since the last voluntary yield */
    bool drained;      /* the last read was short: the socket was empty after it */
    char *jbuf;        /* /echo JSON, grown on demand, kept for the connection */
    size_t jlen, jcap;
    char *ebody; /* /echo: first ECHO_BODY_MAX bytes of the request body */
    px_request_t req;
    char rbuf[RBUF_CAP];
    char obuf[OBUF_CAP];
} conn_t;

/* What one request asks for, taken from its head before the body is read. */
typedef struct plan {
    int status;
    int64_t delay_ns;
    bool has_body_size;
    uint64_t body_size;
    int64_t reset_after; /* -1: no reset */
    bool chunked, close_delim, keep_alive, http10, is_head, is_echo, expect;
    px_body_kind_t req_body;
    uint64_t req_cl;
    uint64_t req_bytes, req_fnv;
} plan_t;

/* Outcomes of handling one request: keep reading, close gracefully, close at
 * once (the connection failed), or already closed. */
enum { KEEP, CLOSE, ABORT, GONE };

/* ---- small parsers (strict: the whole string, no sign, no spaces) ---- */

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* "123", "4KiB", "5M", "1GiB" (binary multiples). */
static bool parse_size(const char *s, size_t n, uint64_t *out)
{
    size_t d = 0;
    while (d < n && s[d] >= '0' && s[d] <= '9')
        d++;
    uint64_t v, mult = 1;
    if (!parse_u64(s, d, &v))
        return false;
    const char *u = s + d;
    size_t ul = n - d;

    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},           {"B", 1},
                 {"K", 1ULL << 10}, {"KiB", 1ULL << 10},
                 {"M", 1ULL << 20}, {"MiB", 1ULL << 20},
                 {"G", 1ULL << 30}, {"GiB", 1ULL << 30}};

    size_t i;
    for (i = 0; i < RT_ARRAY_LEN(units); i++)
        if (strlen(units[i].suffix) == ul && memcmp(units[i].suffix, u, ul) == 0)
            break;
    if (i == RT_ARRAY_LEN(units))
        return false;
    mult = units[i].mult;
    if (v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

/* A decimal number with an optional fraction: integer part and fraction scaled to 1e9. */
static bool parse_decimal(const char *s, size_t n, size_t *used, uint64_t *ip, uint64_t *frac_e9)
{
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (!parse_u64(s, i, ip))
        return false;
    uint64_t f = 0, scale = 1000000000ULL;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (scale > 1) {
                scale /= 10;
                f += (uint64_t)(s[i] - '0') * scale;
            }
            i++;
        }
        if (i == start)
            return false;
    }
    *used = i;
    *frac_e9 = f;
    return true;
}

/* "50ms", "2s", "1.5s", "100us", "10ns", "1m", "0". */
static bool parse_duration(const char *s, size_t n, int64_t *out)
{
    uint64_t ip, frac;
    size_t used;
    if (!parse_decimal(s, n, &used, &ip, &frac))
        return false;
    const char *u = s + used;
    size_t ul = n - used;
    uint64_t mult;
    if (ul == 0 && ip == 0 && frac == 0)
        mult = 1;
    else if (ul == 2 && memcmp(u, "ns", 2) == 0)
        mult = 1;
    else if (ul == 2 && memcmp(u, "us", 2) == 0)
        mult = RT_USEC;
    else if (ul == 2 && memcmp(u, "ms", 2) == 0)
        mult = RT_MSEC;
    else if (ul == 1 && u[0] == 's')
        mult = RT_SEC;
    else if (ul == 1 && u[0] == 'm')
        mult = 60 * RT_SEC;
    else if (ul == 1 && u[0] == 'h')
        mult = 3600 * RT_SEC;
    else
        return false;
    if (ip > (uint64_t)INT64_MAX / mult / 2)
        return false;
    *out = (int64_t)(ip * mult + (frac * mult) / 1000000000ULL);
    return true;
}

/* "10%", "10", "0.5%": 0..100; returns the 32-bit threshold. */
static bool parse_percent(const char *s, size_t n, uint64_t *thr)
{
    uint64_t ip, frac;
    size_t used;
    if (!parse_decimal(s, n, &used, &ip, &frac))
        return false;
    if (!(used == n || (used + 1 == n && s[used] == '%')))
        return false;
    if (ip > 100 || (ip == 100 && frac > 0))
        return false;
    /* (ip + frac/1e9) / 100 of 2^32; a double is exact enough here. */
    *thr = (uint64_t)((double)(ip * 1000000000ULL + frac) / 1e11 * 4294967296.0);
    return true;
}

static bool parse_status(const char *s, size_t n, int *out)
{
    uint64_t v;
    if (n != 3 || !parse_u64(s, n, &v) || v < 200 || v > 599)
        return false;
    *out = (int)v;
    return true;
}

/* ---- response building ---- */

static const char *reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };

    for (size_t i = 0; i < RT_ARRAY_LEN(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_str(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_hex(char *p, uint64_t v, int min_digits)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = hex[v & 15];
        v >>= 4;
    } while (v || n < min_digits);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* ---- output ---- */

/* Writes every byte of `iov`. Returns 0 or a negative error. May park. */
static int send_iov(conn_t *c, struct iovec *iov, int n)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    while (msg.msg_iovlen > 0) {
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            int err = rt_errno();
            if (err == EINTR)
                continue;
            if (err != EAGAIN)
                return -err;
            int rc = rt_wait_writable(c->nfd, RT_FOREVER);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t left = (size_t)w;
        while (msg.msg_iovlen > 0 && left >= msg.msg_iov->iov_len) {
            left -= msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + left;
            msg.msg_iov->iov_len -= left;
        }
    }
    return 0;
}

/* Writes out obuf. May park. */
static int flush(conn_t *c)
{
    if (c->olen == 0)
        return 0;
    struct iovec iov = {c->obuf, c->olen};
    c->olen = 0;
    return send_iov(c, &iov, 1);
}

/* Queues `len` bytes: copied into obuf when they fit, else written with it. May park. */
static int emit(conn_t *c, const void *data, size_t len)
{
    if (len <= OBUF_CAP - c->olen) {
        memcpy(c->obuf + c->olen, data, len);
        c->olen += len;
        return 0;
    }
    struct iovec iov[2] = {{c->obuf, c->olen}, {(void *)data, len}};
    bool pending = c->olen > 0;
    c->olen = 0;
    int rc = send_iov(c, pending ? iov : iov + 1, pending ? 2 : 1);
    /* A stream of writes to a fast reader never parks: let other Gs run. */
    if (rc == 0 && ++c->writes % YIELD_EVERY == 0)
        rt_yield();
    return rc;
}

/* ---- closing ---- */

static void conn_free(conn_t *c)
{
    rt_netfd_close(c->nfd);
    free(c->jbuf);
    free(c->ebody);
    free(c);
}

/* Flushes, half-closes and reads what the peer still sends for a while, so
 * unread input does not turn the close into a reset that loses our answer. */
static void close_gracefully(conn_t *c)
{
    if (flush(c) == 0 && shutdown(c->fd, SHUT_WR) == 0) {
        rt_time_t deadline = rt_deadline_in(DRAIN_TIME);
        size_t drained = 0;
        while (drained < DRAIN_MAX) {
            ssize_t n = rt_read(c->nfd, c->rbuf, RBUF_CAP, deadline);
            if (n <= 0)
                break;
            drained += (size_t)n;
        }
    }
    conn_free(c);
}

/* x-echo-reset-after: waits (bounded) until the peer has acknowledged what was
 * sent, then closes with SO_LINGER 0 so the kernel sends RST. May park. */
static void close_reset(conn_t *c)
{
    if (flush(c) == 0) {
        for (int i = 0; i < 500; i++) {
            int outq = 0;
            if (ioctl(c->fd, SIOCOUTQ, &outq) < 0 || outq == 0)
                break;
            rt_sleep(RT_MSEC);
        }
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    conn_free(c);
}

/* ---- input ---- */

/* Flushes pending output, moves unconsumed input to the front of rbuf and
 * reads more. Returns the byte count, 0 at EOF, or a negative error (-ENOBUFS
 * when rbuf is full). May park. */
static ssize_t fill(conn_t *c)
{
    int rc = flush(c);
    if (rc < 0)
        return rc;
    if (c->rpos > 0) {
        c->rlen -= c->rpos;
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen);
        c->rpos = 0;
    }
    if (c->rlen == RBUF_CAP)
        return -ENOBUFS;
    /* After a short read the socket was empty, and the edge-triggered poller
     * reports any byte that arrives later: wait for it instead of paying for
     * a read(2) that would only say EAGAIN (a keep-alive client sends its
     * next request only after our answer). A stale readiness flag just makes
     * the read below come back with EAGAIN and wait inside rt_read. */
    if (c->drained && (rc = rt_wait_readable(c->nfd, RT_FOREVER)) < 0)
        return rc;
    size_t want = RBUF_CAP - c->rlen;
    ssize_t n = rt_read(c->nfd, c->rbuf + c->rlen, want, RT_FOREVER);
    c->drained = n > 0 && (size_t)n < want;
    if (n > 0)
        c->rlen += (size_t)n;
    return n;
}

/* ---- /echo JSON ---- */

static void jreserve(conn_t *c, size_t more)
{
    if (c->jcap - c->jlen >= more)
        return;
    size_t cap = c->jcap ? c->jcap : 4096;
    while (cap - c->jlen < more)
        cap *= 2;
    c->jbuf = rt_xrealloc(c->jbuf, cap);
    c->jcap = cap;
}

static void jlit(conn_t *c, const char *s)
{
    size_t n = strlen(s);
    jreserve(c, n);
    memcpy(c->jbuf + c->jlen, s, n);
    c->jlen += n;
}

/* Length of the valid UTF-8 sequence at s[0..n) that starts with a byte >= 0x80, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t len;
    uint32_t cp;
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Appends `s` as the inside of a JSON string. Valid UTF-8 is kept; other bytes
 * >= 0x80 become \u00XX (their Latin-1 reading), so the output is valid JSON. */
static void jstr(conn_t *c, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    jreserve(c, n * 6);
    char *o = c->jbuf + c->jlen;
    size_t i = 0;
    while (i < n) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
            *o++ = (char)ch;
            i++;
            continue;
        }
        if (ch >= 0x80) {
            size_t l = utf8_seq(s + i, n - i);
            if (l) {
                memcpy(o, s + i, l);
                o += l;
                i += l;
                continue;
            }
        }
        *o++ = '\\';
        switch (ch) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            o = PUT_LIT(o, "u00");
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
        i++;
    }
    c->jlen = (size_t)(o - c->jbuf);
}

/* Everything but the body, taken from the head while it is still in rbuf. */
static void json_begin(conn_t *c, const px_request_t *r)
{
    c->jlen = 0;
    jlit(c, "{\"method\":\"");
    jstr(c, r->method, r->method_len);
    jlit(c, "\",\"target\":\"");
    jstr(c, r->target, r->target_len);
    jlit(c, r->minor_version == 0 ? "\",\"version\":\"HTTP/1.0\",\"headers\":["
                                  : "\",\"version\":\"HTTP/1.1\",\"headers\":[");
    for (size_t i = 0; i < r->nheaders; i++) {
        jlit(c, i ? ",[\"" : "[\"");
        jstr(c, r->headers[i].name, r->headers[i].name_len);
        jlit(c, "\",\"");
        jstr(c, r->headers[i].value, r->headers[i].value_len);
        jlit(c, "\"]");
    }
    jlit(c, "],\"body\":\"");
}

static void json_end(conn_t *c, const plan_t *p)
{
    size_t kept = p->req_bytes < ECHO_BODY_MAX ? (size_t)p->req_bytes : ECHO_BODY_MAX;
    if (kept)
        jstr(c, c->ebody, kept);
    char tail[64];
    char *t = PUT_LIT(tail, "\",\"body_bytes\":");
    t = put_u64(t, p->req_bytes);
    *t++ = '}';
    *t = '\0';
    jlit(c, tail);
}

/* ---- requests ---- */

static bool value_is(const px_header_t *h, const char *want)
{
    size_t n = strlen(want);
    return h->value_len == n && strncasecmp(h->value, want, n) == 0;
}

static bool parse_flag(const px_header_t *h, bool *out)
{
    if (value_is(h, "1") || value_is(h, "true") || value_is(h, "yes")) {
        *out = true;
        return true;
    }
    if (value_is(h, "0") || value_is(h, "false") || value_is(h, "no")) {
        *out = false;
        return true;
    }
    return false;
}

static bool suffix_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

/* Applies the x-echo-* request headers to `p` in one pass. Returns NULL, or
 * the name of a header whose value is not understood. */
static const char *scan_hooks(const px_request_t *r, plan_t *p)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const px_header_t *h = &r->headers[i];
        if (h->name_len < 8 || strncasecmp(h->name, "x-echo-", 7) != 0)
            continue;
        const char *n = h->name + 7;
        size_t nl = h->name_len - 7;
        uint64_t v;
        if (suffix_is(n, nl, "status")) {
            if (!parse_status(h->value, h->value_len, &p->status))
                return "x-echo-status";
        } else if (suffix_is(n, nl, "delay")) {
            if (!parse_duration(h->value, h->value_len, &p->delay_ns))
                return "x-echo-delay";
        } else if (suffix_is(n, nl, "body-size")) {
            if (!parse_size(h->value, h->value_len, &p->body_size))
                return "x-echo-body-size";
            p->has_body_size = true;
        } else if (suffix_is(n, nl, "chunked")) {
            if (!parse_flag(h, &p->chunked))
                return "x-echo-chunked";
        } else if (suffix_is(n, nl, "close-delimited")) {
            if (!parse_flag(h, &p->close_delim))
                return "x-echo-close-delimited";
        } else if (suffix_is(n, nl, "reset-after")) {
            if (!parse_u64(h->value, h->value_len, &v) || v > (uint64_t)INT64_MAX)
                return "x-echo-reset-after";
            p->reset_after = (int64_t)v;
        }
    }
    return NULL;
}

static bool is_echo_path(const px_request_t *r)
{
    const char *s = r->path;
    size_t n = r->path_len;
    return n >= 5 && memcmp(s, "/echo", 5) == 0 && (n == 5 || s[5] == '?');
}

static bool wants_websocket(const px_request_t *r)
{
    if (!r->upgrade || r->minor_version != 1)
        return false;
    const px_header_t *h = px_http1_find(r->headers, r->nheaders, "upgrade");
    if (!h)
        return false;
    for (size_t i = 0; i + 9 <= h->value_len; i++)
        if (strncasecmp(h->value + i, "websocket", 9) == 0)
            return true;
    return false;
}

/* Makes sure obuf can take a response head. May park. */
static int head_room(conn_t *c)
{
    return OBUF_CAP - c->olen < HEAD_RESERVE ? flush(c) : 0;
}

static char *put_common(char *o, int status, uint64_t seq)
{
    o = PUT_LIT(o, "HTTP/1.1 ");
    o = put_u64(o, (uint64_t)status);
    *o++ = ' ';
    o = put_str(o, reason(status));
    o = PUT_LIT(o, "\r\n");
    o = put(o, g_name_hdr, g_name_hdr_len);
    o = put_u64(o, seq);
    return PUT_LIT(o, "\r\n");
}

/* A short text answer with "Connection: close"; the caller closes. May park. */
static int answer_text(conn_t *c, int status, uint64_t seq, const char *msg)
{
    int rc = head_room(c);
    if (rc < 0)
        return rc;
    size_t mlen = strlen(msg);
    if (mlen > 200)
        mlen = 200;
    char *o = c->obuf + c->olen;
    o = put_common(o, status, seq);
    o = PUT_LIT(o, "Content-Type: text/plain\r\nContent-Length: ");
    o = put_u64(o, mlen + 1);
    o = PUT_LIT(o, "\r\nConnection: close\r\n\r\n");
    o = put(o, msg, mlen);
    *o++ = '\n';
    c->olen = (size_t)(o - c->obuf);
    return 0;
}

static uint64_t next_seq(void)
{
    return atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
}

static void hash_body(conn_t *c, plan_t *p, const char *d, size_t n)
{
    uint64_t h = p->req_fnv;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)d[i];
        h *= FNV_PRIME;
    }
    p->req_fnv = h;
    if (p->is_echo && p->req_bytes < ECHO_BODY_MAX) {
        size_t keep = ECHO_BODY_MAX - (size_t)p->req_bytes;
        if (keep > n)
            keep = n;
        memcpy(c->ebody + p->req_bytes, d, keep);
    }
    p->req_bytes += n;
}

/* Consumes the request body. Returns 0, a negative px_http1_err_t for bad
 * chunked framing (PX_HTTP1_INCOMPLETE when rbuf cannot hold a framing
 * line), or 1 when the connection failed. May park. */
static int read_body(conn_t *c, plan_t *p)
{
    if (p->req_body == PX_BODY_LENGTH) {
        uint64_t left = p->req_cl;
        while (left > 0) {
            if (c->rpos == c->rlen && fill(c) <= 0)
                return 1;
            size_t take = c->rlen - c->rpos;
            if (take > left)
                take = (size_t)left;
            hash_body(c, p, c->rbuf + c->rpos, take);
            c->rpos += take;
            left -= take;
        }
    } else if (p->req_body == PX_BODY_CHUNKED) {
        px_chunked_t ch;
        px_chunked_init(&ch);
        while (!ch.done) {
            size_t off = 0, dlen = 0;
            ssize_t k = 0;
            if (c->rpos < c->rlen) {
                k = px_chunked_decode(&ch, c->rbuf + c->rpos, c->rlen - c->rpos, &off, &dlen);
                if (k < 0)
                    return (int)k;
                if (dlen)
                    hash_body(c, p, c->rbuf + c->rpos + off, dlen);
                c->rpos += (size_t)k;
            }
            if (!ch.done && k == 0 && dlen == 0) {
                ssize_t n = fill(c);
                if (n == -ENOBUFS)
                    return PX_HTTP1_E_CHUNK_FRAMING;
                if (n <= 0)
                    return 1;
            }
        }
    }
    return 0;
}

/* Sends bytes [0, limit) of a body from `src` (NULL: the pattern), chunked
 * when asked, ending with the last chunk when `last`. May park. */
static int send_body(conn_t *c, const char *src, uint64_t limit, bool chunked, bool last)
{
    uint64_t off = 0;
    while (off < limit) {
        uint64_t span = limit - off;
        const char *d;
        if (src) {
            d = src + off;
        } else {
            d = g_pat + off % PAT_PERIOD;
            if (span > PAT_SPAN)
                span = PAT_SPAN;
        }
        if (chunked && span > CHUNK_MAX)
            span = CHUNK_MAX;
        int rc;
        if (chunked) {
            char line[24];
            char *e = put_hex(line, span, 1);
            e = PUT_LIT(e, "\r\n");
            if ((rc = emit(c, line, (size_t)(e - line))) < 0)
                return rc;
        }
        if ((rc = emit(c, d, (size_t)span)) < 0)
            return rc;
        if (chunked && (rc = emit(c, "\r\n", 2)) < 0)
            return rc;
        off += span;
    }
    if (chunked && last)
        return emit(c, "0\r\n\r\n", 5);
    return 0;
}

/* Writes the answer described by `p`. Returns KEEP, CLOSE or ABORT (the
 * connection is gone). May park. */
static int respond(conn_t *c, const plan_t *p, uint64_t seq)
{
    const char *src;
    uint64_t len;
    bool json = p->is_echo;
    if (json) {
        src = c->jbuf;
        len = c->jlen;
    } else if (p->has_body_size) {
        src = NULL;
        len = p->body_size;
    } else {
        src = g_default_body;
        len = g_default_body_len;
    }

    enum { F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE } frame;

    if (p->status == 204 || p->status == 304)
        frame = F_NONE;
    else if (p->close_delim || (p->chunked && p->http10))
        frame = F_CLOSE;
    else if (p->chunked)
        frame = F_CHUNKED;
    else
        frame = F_LENGTH;
    bool keep = p->keep_alive && frame != F_CLOSE;

    int rc = head_room(c);
    if (rc < 0)
        return ABORT;
    char *o = c->obuf + c->olen;
    o = put_common(o, p->status, seq);
    if (p->req_body != PX_BODY_NONE) {
        o = PUT_LIT(o, "x-echo-request-bytes: ");
        o = put_u64(o, p->req_bytes);
        o = PUT_LIT(o, "\r\nx-echo-request-fnv: ");
        o = put_hex(o, p->req_fnv, 16);
        o = PUT_LIT(o, "\r\n");
    }
    if (p->status != 204)
        o = json ? PUT_LIT(o, "Content-Type: application/json\r\n")
                 : PUT_LIT(o, "Content-Type: text/plain\r\n");
    if (frame == F_LENGTH || p->status == 304) {
        o = PUT_LIT(o, "Content-Length: ");
        o = put_u64(o, len);
        o = PUT_LIT(o, "\r\n");
    } else if (frame == F_CHUNKED) {
        o = PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
    }
    if (!keep)
        o = PUT_LIT(o, "Connection: close\r\n");
    else if (p->http10)
        o = PUT_LIT(o, "Connection: keep-alive\r\n");
    o = PUT_LIT(o, "\r\n");
    c->olen = (size_t)(o - c->obuf);

    if (frame != F_NONE && !p->is_head) {
        uint64_t limit = len;
        bool reset = p->reset_after >= 0 && (uint64_t)p->reset_after < len;
        if (reset)
            limit = (uint64_t)p->reset_after;
        if (send_body(c, src, limit, frame == F_CHUNKED, !reset) < 0)
            return ABORT;
    }
    if (p->reset_after >= 0) {
        close_reset(c);
        return GONE;
    }
    return keep ? KEEP : CLOSE;
}

/* 101 and a raw echo of every byte until EOF. Returns CLOSE or ABORT. May park. */
static int websocket(conn_t *c, uint64_t seq)
{
    if (head_room(c) < 0)
        return ABORT;
    char *o = c->obuf + c->olen;
    o = put_common(o, 101, seq);
    o = PUT_LIT(o, "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    c->olen = (size_t)(o - c->obuf);
    c->rpos += c->req.head_len;
    if (emit(c, c->rbuf + c->rpos, c->rlen - c->rpos) < 0 || flush(c) < 0)
        return ABORT;
    c->rpos = c->rlen = 0;
    for (;;) {
        ssize_t n = rt_read(c->nfd, c->rbuf, RBUF_CAP, RT_FOREVER);
        if (n <= 0)
            return n == 0 ? CLOSE : ABORT;
        struct iovec iov = {c->rbuf, (size_t)n};
        if (send_iov(c, &iov, 1) < 0)
            return ABORT;
    }
}

/* Answers the request parsed into c->req. Returns KEEP, CLOSE or ABORT. May park. */
static int handle(conn_t *c)
{
    const px_request_t *r = &c->req;
    uint64_t seq = next_seq();
    plan_t p = {
        .status = g_opt.status,
        .delay_ns = g_opt.delay_ns,
        .has_body_size = g_opt.has_body_size,
        .body_size = g_opt.body_size,
        .reset_after = -1,
        .keep_alive = r->keep_alive,
        .http10 = r->minor_version == 0,
        .is_head = r->is_head,
        .req_body = r->body,
        .req_cl = r->content_length,
        .req_fnv = FNV_OFFSET,
    };
    const char *bad = scan_hooks(r, &p);
    if (bad) {
        char msg[64];
        snprintf(msg, sizeof(msg), "bad %s", bad);
        return answer_text(c, 400, seq, msg) < 0 ? ABORT : CLOSE;
    }
    if (wants_websocket(r))
        return websocket(c, seq);
    p.is_echo = is_echo_path(r);
    if (p.is_echo) {
        json_begin(c, r);
        if (p.req_body != PX_BODY_NONE && !c->ebody)
            c->ebody = rt_xmalloc(ECHO_BODY_MAX);
    }
    p.expect = r->expect_continue && !p.http10 && p.req_body != PX_BODY_NONE &&
               !(p.req_body == PX_BODY_LENGTH && p.req_cl == 0);
    c->rpos += r->head_len;
    r = NULL; /* its pointers borrow rbuf, which the body may overwrite */

    if (p.expect) {
        if (emit(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0 || flush(c) < 0)
            return ABORT;
    }
    int rc = read_body(c, &p);
    if (rc == 1)
        return ABORT;
    if (rc < 0) {
        px_http1_err_t err = (px_http1_err_t)rc;
        return answer_text(c, px_http1_error_status(err), seq, px_http1_error_message(err)) < 0
                   ? ABORT
                   : CLOSE;
    }
    if (p.is_echo)
        json_end(c, &p);
    if (p.delay_ns > 0) {
        if (flush(c) < 0)
            return ABORT;
        rt_sleep(p.delay_ns);
    }
    if (g_opt.error_thr && (rt_fastrand() & 0xffffffffULL) < g_opt.error_thr)
        p.status = 500;
    return respond(c, &p, seq);
}

static void conn_main(void *arg)
{
    conn_t *c = arg;
    for (;;) {
        px_http1_err_t perr = PX_HTTP1_INCOMPLETE;
        for (;;) {
            size_t avail = c->rlen - c->rpos;
            if (avail > 0) {
                perr =
                    px_http1_parse_request(c->rbuf + c->rpos, avail, c->prev, &g_limits, &c->req);
                if (perr != PX_HTTP1_INCOMPLETE)
                    break;
                c->prev = avail;
            }
            ssize_t n = fill(c);
            if (n == -ENOBUFS) {
                perr = PX_HTTP1_E_HEAD_TOO_LARGE;
                break;
            }
            if (n <= 0) {
                conn_free(c);
                return;
            }
        }
        c->prev = 0;
        int rc;
        if (perr < 0) {
            rc = answer_text(c, px_http1_error_status(perr), next_seq(),
                             px_http1_error_message(perr)) < 0
                     ? ABORT
                     : CLOSE;
        } else {
            rc = handle(c);
        }
        if (rc == GONE)
            return;
        if (rc == ABORT) {
            conn_free(c);
            return;
        }
        if (rc == CLOSE) {
            close_gracefully(c);
            return;
        }
    }
}

static void accept_loop(void *arg)
{
    rt_netfd_t *lnfd = arg;
    for (;;) {
        rt_netfd_t *nfd;
        struct sockaddr_storage peer;
        int rc = rt_accept(lnfd, &nfd, &peer, RT_FOREVER);
        if (rc == RT_ECLOSED)
            return;
        if (rc < 0) {
            /* EMFILE and friends: back off instead of spinning. */
            rt_sleep(10 * RT_MSEC);
            continue;
        }
        conn_t *c = rt_xmalloc(sizeof(*c));
        c->nfd = nfd;
        c->fd = rt_netfd_fd(nfd);
        c->rpos = c->rlen = c->prev = c->olen = 0;
        c->writes = 0;
        c->drained = false;
        c->jbuf = NULL;
        c->jlen = c->jcap = 0;
        c->ebody = NULL;
        if (rt_go(conn_main, c) != RT_OK)
            conn_free(c);
    }
}

/* ---- startup ---- */

static void print_addr(rt_netfd_t *lnfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = rt_netfd_port(lnfd);
    bool v6 = false;
    if (getsockname(rt_netfd_fd(lnfd), (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            v6 = true;
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
        } else {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
        }
    }
    char line[128];
    int n = snprintf(
        line, sizeof(line),
        v6 ? "remora-echo: listening on [%s]:%d\n" : "remora-echo: listening on %s:%d\n", ip, port);
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/* The first G: listens, starts the accept loop, then waits for SIGTERM/SIGINT
 * on a signalfd (the signals are blocked in every thread). */
static void main_g(void *arg)
{
    sigset_t *sigs = arg;
    struct sockaddr_storage ss;
    socklen_t slen;
    rt_netfd_t *lnfd, *sfd;
    int rc = rt_sockaddr_parse(g_opt.listen, &ss, &slen);
    if (rc == RT_OK)
        rc = rt_listen((struct sockaddr *)&ss, slen, 4096, &lnfd);
    if (rc < 0) {
        fprintf(stderr, "remora-echo: cannot listen on %s: %s\n", g_opt.listen, rt_strerror(rc));
        g_exit_code = 1;
        return;
    }
    int fd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0 || rt_netfd_open(fd, &sfd) != RT_OK) {
        fprintf(stderr, "remora-echo: signalfd: %s\n", strerror(rt_errno()));
        g_exit_code = 1;
        return;
    }
    if (rt_go(accept_loop, lnfd) != RT_OK) {
        fprintf(stderr, "remora-echo: cannot start the accept loop\n");
        g_exit_code = 1;
        return;
    }
    print_addr(lnfd);
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = rt_read(sfd, &si, sizeof(si), RT_FOREVER);
        if (n == (ssize_t)sizeof(si) && (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT))
            _exit(0); /* stdio holds nothing: stderr is unbuffered, stdout unused */
        if (n <= 0 && n != -EINTR)
            rt_sleep(RT_SEC);
    }
}

static void usage(FILE *f)
{
    fputs("usage: remora-echo --listen ADDR [--name NAME] [--status CODE] [--delay DURATION]\n"
          "                   [--error-rate PERCENT] [--body-size BYTES] [--procs N]\n"
          "  --listen ADDR        IP:PORT to serve (port 0 picks one; the real one is printed)\n"
          "  --name NAME          x-echo-name and default body \"hello from NAME\" (default echo)\n"
          "  --status CODE        status of every answer, 200..599 (default 200)\n"
          "  --delay DURATION     wait before answering, e.g. 50ms, 2s (default 0)\n"
          "  --error-rate PERCENT answer this share of requests with 500, e.g. 10% (default 0)\n"
          "  --body-size BYTES    body of BYTES pattern bytes instead of the greeting\n"
          "  --procs N            runtime Ps (default 0 = one per CPU)\n",
          f);
}

RT_NORETURN static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("remora-echo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    usage(stderr);
    exit(2);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        static const char *const known[] = {"--listen",     "--name",      "--status", "--delay",
                                            "--error-rate", "--body-size", "--procs"};
        const char *opt = NULL, *val = NULL;
        for (size_t k = 0; k < RT_ARRAY_LEN(known); k++) {
            size_t kl = strlen(known[k]);
            if (strcmp(a, known[k]) == 0) {
                opt = known[k];
                if (i + 1 >= argc)
                    bad_usage("%s needs a value", opt);
                val = argv[++i];
            } else if (strncmp(a, known[k], kl) == 0 && a[kl] == '=') {
                opt = known[k];
                val = a + kl + 1;
            }
            if (opt)
                break;
        }
        if (!opt)
            bad_usage("unknown argument '%s'", a);
        size_t vl = strlen(val);
        uint64_t v;
        if (strcmp(opt, "--listen") == 0) {
            struct sockaddr_storage ss;
            socklen_t len;
            if (rt_sockaddr_parse(val, &ss, &len) != RT_OK)
                bad_usage("--listen '%s': expected IP:PORT, e.g. 127.0.0.1:8081", val);
            g_opt.listen = val;
        } else if (strcmp(opt, "--name") == 0) {
            if (!name_ok(val))
                bad_usage("--name '%s': 1..%d printable characters", val, NAME_MAX_LEN);
            g_opt.name = val;
            g_opt.name_len = vl;
        } else if (strcmp(opt, "--status") == 0) {
            if (!parse_status(val, vl, &g_opt.status))
                bad_usage("--status '%s': expected a status code 200..599", val);
        } else if (strcmp(opt, "--delay") == 0) {
            if (!parse_duration(val, vl, &g_opt.delay_ns))
                bad_usage("--delay '%s': expected a duration such as 50ms or 2s", val);
        } else if (strcmp(opt, "--error-rate") == 0) {
            if (!parse_percent(val, vl, &g_opt.error_thr))
                bad_usage("--error-rate '%s': expected a percentage 0..100 such as 10%%", val);
        } else if (strcmp(opt, "--body-size") == 0) {
            if (!parse_size(val, vl, &g_opt.body_size))
                bad_usage("--body-size '%s': expected a byte count such as 13 or 1MiB", val);
            g_opt.has_body_size = true;
        } else {
            if (!parse_u64(val, vl, &v) || v > 1024)
                bad_usage("--procs '%s': expected 0..1024", val);
            g_opt.procs = (int)v;
        }
    }
    if (!g_opt.listen)
        bad_usage("--listen is required");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    for (size_t i = 0; i < sizeof(g_pat); i++)
        g_pat[i] = (char)('a' + i % PAT_PERIOD);
    g_default_body_len =
        (size_t)snprintf(g_default_body, sizeof(g_default_body), "hello from %s\n", g_opt.name);
    g_name_hdr_len = (size_t)snprintf(g_name_hdr, sizeof(g_name_hdr),
                                      "x-echo-name: %s\r\nx-echo-seq: ", g_opt.name);

    /* Blocked before the runtime starts its threads, so every thread inherits
     * the mask and the signals reach only the signalfd. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rt_config_t cfg = {.procs = g_opt.procs};
    int rc = rt_run(&cfg, main_g, &sigs);
    if (rc != RT_OK) {
        fprintf(stderr, "remora-echo: runtime: %s\n", rt_strerror(rc));
        return 1;
    }
    return g_exit_code;
}
