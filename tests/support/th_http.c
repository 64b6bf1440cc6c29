/* SPDX-License-Identifier: MIT */
/*
 * th_http.c - the integration suites' blocking HTTP/1.1 client (th_http.h).
 * Its parser is deliberately independent of proxy/http1.c: a test must not
 * share the bugs of the code it checks. Strict on what it needs (CRLF line
 * ends, a status line, name: value fields), tolerant of nothing else.
 */
#include "tests/support/th_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/th_proc.h"

#define CONN_BUF_INITIAL (64 * 1024)
#define HEAD_MAX (1024 * 1024)
#define STORE_MAX_DEFAULT (16 * 1024 * 1024)

/* ---- connection ---- */

int th_conn_open(th_conn_t *c, int port, int64_t timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        return -errno;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        int err = errno;
        if (err != EINPROGRESS) {
            th_conn_close(c);
            return -err;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        int n = poll(&pfd, 1, (int)timeout_ms);
        if (n <= 0) {
            th_conn_close(c);
            return n == 0 ? -ETIMEDOUT : -errno;
        }
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            th_conn_close(c);
            return -(err != 0 ? err : EIO);
        }
    }
    c->cap = CONN_BUF_INITIAL;
    c->buf = malloc(c->cap);
    if (c->buf == NULL) {
        abort();
    }
    return 0;
}

void th_conn_close(th_conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->off = c->len = c->cap = 0;
}

void th_conn_abort(th_conn_t *c)
{
    if (c->fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    th_conn_close(c);
}

/* Waits for `events` on `fd` until `deadline` (ms). Returns 1 ready, 0 timeout, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (int i = 0; i < 1000; i++) {
        int64_t left = deadline - th_now_ms();
        if (left < 0) {
            left = 0;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)left);
        if (n > 0) {
            return 1;
        }
        if (n == 0) {
            return 0;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

int th_conn_send(th_conn_t *c, const void *data, size_t n, int64_t timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        int ready = wait_fd(c->fd, POLLOUT, deadline);
        if (ready <= 0) {
            return ready == 0 ? -ETIMEDOUT : ready;
        }
    }
    return 0;
}

int th_conn_sendf(th_conn_t *c, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    int rc = th_conn_send(c, s, (size_t)n, th_slack_ms(TH_HTTP_TIMEOUT_MS));
    free(s);
    return rc;
}

/* Reads more bytes into c->buf. Returns the count, 0 at EOF, or a negative errno. */
static ssize_t fill(th_conn_t *c, int64_t deadline)
{
    if (c->off > 0 && c->off == c->len) {
        c->off = c->len = 0;
    }
    if (c->len == c->cap) {
        if (c->off > 0) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        } else {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
            if (c->buf == NULL) {
                abort();
            }
        }
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (r >= 0) {
            c->len += (size_t)r;
            return r;
        }
        if (errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        int ready = wait_fd(c->fd, POLLIN, deadline);
        if (ready <= 0) {
            return ready == 0 ? -ETIMEDOUT : ready;
        }
    }
}

ssize_t th_conn_recv(th_conn_t *c, void *data, size_t n, int64_t timeout_ms)
{
    if (c->off == c->len) {
        ssize_t r = fill(c, th_now_ms() + timeout_ms);
        if (r <= 0) {
            return r;
        }
    }
    size_t k = c->len - c->off < n ? c->len - c->off : n;
    memcpy(data, c->buf + c->off, k);
    c->off += k;
    return (ssize_t)k;
}

int th_conn_wait_closed(th_conn_t *c, int64_t timeout_ms, size_t *extra)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    size_t dropped = c->len - c->off;
    c->off = c->len = 0;
    int rc = -ETIMEDOUT;
    for (int i = 0; i < 100000; i++) {
        ssize_t r = fill(c, deadline);
        if (r == 0 || r == -ECONNRESET || r == -EPIPE) {
            rc = r == 0 ? 0 : 1;
            break;
        }
        if (r < 0) {
            break;
        }
        dropped += (size_t)r;
        c->off = c->len = 0;
    }
    if (extra != NULL) {
        *extra = dropped;
    }
    return rc;
}

bool th_conn_readable(th_conn_t *c, int64_t timeout_ms)
{
    if (c->off < c->len) {
        return true;
    }
    return wait_fd(c->fd, POLLIN, th_now_ms() + timeout_ms) != 0;
}

/* ---- response parsing ---- */

void th_resp_free(th_resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Parses the head in r->head (CRLFs intact, ends with an empty line) in place. */
static int parse_head(th_resp_t *r)
{
    char *p = r->head;
    if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') {
        return -EPROTO;
    }
    r->minor_version = p[7] - '0';
    p += 9;
    if (p[0] < '1' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
        (p[3] != ' ' && p[3] != '\r')) {
        return -EPROTO;
    }
    r->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p = strstr(p, "\r\n");
    if (p == NULL) {
        return -EPROTO;
    }
    p += 2;
    while (!(p[0] == '\r' && p[1] == '\n')) {
        char *eol = strstr(p, "\r\n");
        char *colon = strchr(p, ':');
        if (eol == NULL || colon == NULL || colon > eol || colon == p ||
            r->nheaders == TH_RESP_MAX_HEADERS) {
            return -EPROTO;
        }
        for (char *q = p; q < colon; q++) {
            if (!is_tchar(*q)) {
                return -EPROTO;
            }
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        char *e = eol;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        *e = '\0';
        r->names[r->nheaders] = p;
        r->values[r->nheaders] = v;
        r->nheaders++;
        p = eol + 2;
    }
    const char *te = th_resp_header(r, "transfer-encoding");
    r->chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    const char *cl = th_resp_header(r, "content-length");
    if (cl != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno != 0 || end == cl || *end != '\0' ||
            th_resp_header_count(r, "content-length") != 1) {
            return -EPROTO;
        }
        r->has_length = true;
        r->content_length = n;
    }
    return 0;
}

int th_http_read_head(th_conn_t *c, th_resp_t *r, int64_t timeout_ms)
{
    memset(r, 0, sizeof(*r));
    int64_t deadline = th_now_ms() + timeout_ms;
    size_t scanned = 0;
    for (int i = 0; i < 100000; i++) {
        char *start = c->buf + c->off;
        size_t avail = c->len - c->off;
        for (size_t j = scanned; j + 3 < avail; j++) {
            if (memcmp(start + j, "\r\n\r\n", 4) == 0) {
                size_t n = j + 4;
                r->head = malloc(n + 1);
                if (r->head == NULL) {
                    abort();
                }
                memcpy(r->head, start, n);
                r->head[n] = '\0';
                c->off += n;
                return parse_head(r);
            }
        }
        scanned = avail > 3 ? avail - 3 : 0;
        if (avail > HEAD_MAX) {
            return -EPROTO;
        }
        ssize_t got = fill(c, deadline);
        if (got == 0) {
            return -ENODATA;
        }
        if (got < 0) {
            return (int)got;
        }
    }
    return -ETIMEDOUT;
}

typedef struct body_out {
    th_resp_t *r;
    th_body_sink_fn *sink;
    void *arg;
    size_t max_store;
    size_t store_cap;
    bool stopped;
} body_out_t;

static void body_emit(body_out_t *o, const char *data, size_t n)
{
    o->r->body_bytes += n;
    if (o->sink != NULL) {
        if (!o->stopped && !o->sink(data, n, o->arg)) {
            o->stopped = true;
        }
        return;
    }
    th_resp_t *r = o->r;
    size_t k = r->body_len + n <= o->max_store ? n : o->max_store - r->body_len;
    if (k == 0) {
        return;
    }
    if (r->body_len + k + 1 > o->store_cap) {
        size_t cap = o->store_cap == 0 ? 4096 : o->store_cap;
        while (cap < r->body_len + k + 1) {
            cap *= 2;
        }
        r->body = realloc(r->body, cap);
        if (r->body == NULL) {
            abort();
        }
        o->store_cap = cap;
    }
    memcpy(r->body + r->body_len, data, k);
    r->body_len += k;
    r->body[r->body_len] = '\0';
}

/* Hands up to `want` buffered-or-received bytes to `o`. Returns the count, 0 at EOF, -errno. */
static ssize_t body_take(th_conn_t *c, body_out_t *o, uint64_t want, int64_t timeout_ms)
{
    if (c->off == c->len) {
        ssize_t got = fill(c, th_now_ms() + timeout_ms);
        if (got <= 0) {
            return got;
        }
    }
    size_t k = c->len - c->off;
    if (k > want) {
        k = (size_t)want;
    }
    body_emit(o, c->buf + c->off, k);
    c->off += k;
    return (ssize_t)k;
}

/* Returns a pointer to one CRLF-terminated line in the buffer (reading more as needed). */
static int read_line(th_conn_t *c, char **line, size_t *len, int64_t timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (int i = 0; i < 100000; i++) {
        char *start = c->buf + c->off;
        size_t avail = c->len - c->off;
        char *lf = memchr(start, '\n', avail);
        if (lf != NULL) {
            if (lf == start || lf[-1] != '\r') {
                return -EPROTO;
            }
            *line = start;
            *len = (size_t)(lf - start) - 1;
            c->off += (size_t)(lf - start) + 1;
            return 0;
        }
        if (avail > 64 * 1024) {
            return -EPROTO;
        }
        ssize_t got = fill(c, deadline);
        if (got == 0) {
            return -ENODATA;
        }
        if (got < 0) {
            return (int)got;
        }
    }
    return -ETIMEDOUT;
}

static int read_chunked(th_conn_t *c, body_out_t *o, int64_t timeout_ms)
{
    for (int64_t chunks = 0; chunks < (1LL << 40); chunks++) {
        char *line;
        size_t len;
        int rc = read_line(c, &line, &len, timeout_ms);
        if (rc != 0) {
            return rc;
        }
        uint64_t size = 0;
        size_t i = 0;
        for (; i < len && i < 16; i++) {
            char ch = line[i];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0) {
                break;
            }
            size = size * 16 + (uint64_t)d;
        }
        if (i == 0 || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) {
            return -EPROTO;
        }
        if (size == 0) {
            /* Trailer section: fields up to an empty line (RFC 9112 §7.1.2). */
            for (int t = 0; t < 1000; t++) {
                rc = read_line(c, &line, &len, timeout_ms);
                if (rc != 0) {
                    return rc;
                }
                if (len == 0) {
                    return 0;
                }
            }
            return -EPROTO;
        }
        while (size > 0) {
            ssize_t got = body_take(c, o, size, timeout_ms);
            if (got == 0) {
                return -ENODATA;
            }
            if (got < 0) {
                return (int)got;
            }
            size -= (uint64_t)got;
            if (o->stopped) {
                return -ECANCELED;
            }
        }
        rc = read_line(c, &line, &len, timeout_ms);
        if (rc != 0) {
            return rc;
        }
        if (len != 0) {
            return -EPROTO;
        }
    }
    return -EPROTO;
}

int th_http_read_body(th_conn_t *c, th_resp_t *r, bool is_head, th_body_sink_fn *sink, void *arg,
                      size_t max_store, int64_t timeout_ms)
{
    body_out_t o = {.r = r, .sink = sink, .arg = arg, .max_store = max_store};
    /* RFC 9112 §6.3: HEAD, 1xx, 204 and 304 responses end at the head. */
    if (is_head || r->status / 100 == 1 || r->status == 204 || r->status == 304) {
        r->complete = true;
        return 0;
    }
    int rc;
    if (r->chunked) {
        rc = read_chunked(c, &o, timeout_ms);
    } else if (r->has_length) {
        uint64_t left = r->content_length;
        rc = 0;
        while (left > 0) {
            ssize_t got = body_take(c, &o, left, timeout_ms);
            if (got <= 0) {
                rc = got == 0 ? -ENODATA : (int)got;
                break;
            }
            left -= (uint64_t)got;
            if (o.stopped) {
                rc = -ECANCELED;
                break;
            }
        }
    } else {
        r->close_delimited = true;
        rc = -EPROTO;
        for (;;) {
            ssize_t got = body_take(c, &o, UINT64_MAX, timeout_ms);
            if (got == 0) {
                rc = 0;
                break;
            }
            if (got < 0) {
                rc = (int)got;
                break;
            }
            if (o.stopped) {
                rc = -ECANCELED;
                break;
            }
        }
    }
    r->complete = rc == 0;
    return rc;
}

int th_http_read_response(th_conn_t *c, th_resp_t *r, bool is_head)
{
    int64_t timeout = th_slack_ms(TH_HTTP_TIMEOUT_MS);
    int continues = 0;
    for (int i = 0; i < 16; i++) {
        int rc = th_http_read_head(c, r, timeout);
        if (rc != 0) {
            return rc;
        }
        if (r->status / 100 != 1 || r->status == 101) {
            r->continues = continues;
            return th_http_read_body(c, r, is_head, NULL, NULL, STORE_MAX_DEFAULT, timeout);
        }
        continues++;
        th_resp_free(r);
    }
    return -EPROTO;
}

/* The first value named `name` (case-insensitive) in parallel name/value arrays, or NULL. */
static const char *find_field(const char *const *names, const char *const *values, size_t n,
                              const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(names[i], name) == 0) {
            return values[i];
        }
    }
    return NULL;
}

static int count_fields(const char *const *names, size_t n, const char *name)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        count += strcasecmp(names[i], name) == 0;
    }
    return count;
}

const char *th_resp_header(const th_resp_t *r, const char *name)
{
    return find_field(r->names, r->values, r->nheaders, name);
}

int th_resp_header_count(const th_resp_t *r, const char *name)
{
    return count_fields(r->names, r->nheaders, name);
}

/* Returns true if the comma-separated `list` holds `token` (case-insensitive). */
static bool list_has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *e = p;
        while (*e != '\0' && *e != ',') {
            e++;
        }
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t')) {
            t--;
        }
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0) {
            return true;
        }
        p = e;
    }
    return false;
}

bool th_resp_header_has_token(const th_resp_t *r, const char *name, const char *token)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->names[i], name) == 0 && list_has_token(r->values[i], token)) {
            return true;
        }
    }
    return false;
}

int th_http_roundtrip(th_conn_t *c, const char *raw, th_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    int rc = th_conn_send(c, raw, strlen(raw), th_slack_ms(TH_HTTP_TIMEOUT_MS));
    return rc != 0 ? rc : th_http_read_response(c, r, strncmp(raw, "HEAD ", 5) == 0);
}

int th_http_exchange(int port, const char *raw, th_resp_t *r)
{
    th_conn_t c;
    memset(r, 0, sizeof(*r));
    int rc = th_conn_open(&c, port, th_slack_ms(TH_HTTP_TIMEOUT_MS));
    if (rc != 0) {
        return rc;
    }
    rc = th_conn_send(&c, raw, strlen(raw), th_slack_ms(TH_HTTP_TIMEOUT_MS));
    if (rc == 0) {
        rc = th_http_read_response(&c, r, strncmp(raw, "HEAD ", 5) == 0);
    }
    th_conn_close(&c);
    return rc;
}

int th_http_get(int port, const char *path, const char *extra, th_resp_t *r)
{
    char *raw = NULL;
    if (asprintf(&raw, "GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n", path, extra ? extra : "") < 0) {
        abort();
    }
    int rc = th_http_exchange(port, raw, r);
    free(raw);
    return rc;
}

long th_echo_seq(int echo_port)
{
    th_resp_t r;
    long seq = -1;
    if (th_http_get(echo_port, "/", NULL, &r) == 0 && r.status == 200) {
        const char *v = th_resp_header(&r, "x-echo-seq");
        seq = v != NULL ? strtol(v, NULL, 10) : -1;
    }
    th_resp_free(&r);
    return seq;
}

/* ---- body pattern and checksum ---- */

uint64_t th_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void th_pattern_fill(char *buf, uint64_t off, size_t n)
{
    unsigned k = (unsigned)(off % 23);
    for (size_t i = 0; i < n; i++) {
        buf[i] = (char)('a' + k);
        k = k == 22 ? 0 : k + 1;
    }
}

ssize_t th_pattern_find_mismatch(const char *buf, uint64_t off, size_t n)
{
    unsigned k = (unsigned)(off % 23);
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != (char)('a' + k)) {
            return (ssize_t)i;
        }
        k = k == 22 ? 0 : k + 1;
    }
    return -1;
}

/* ---- /echo JSON ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
        p++;
    }
    return p;
}

/* Parses a JSON string at `p` into a malloc'd C string; returns the end or NULL. */
static const char *json_string(const char *p, char **out)
{
    p = skip_ws(p);
    if (*p != '"') {
        return NULL;
    }
    p++;
    size_t cap = strlen(p) + 1, n = 0;
    char *s = malloc(cap);
    if (s == NULL) {
        abort();
    }
    while (*p != '"') {
        if (*p == '\0') {
            free(s);
            return NULL;
        }
        char ch = *p++;
        if (ch == '\\') {
            char e = *p++;
            switch (e) {
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p++;
                    int d = h >= '0' && h <= '9'   ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
                    if (d < 0) {
                        free(s);
                        return NULL;
                    }
                    v = v * 16 + (unsigned)d;
                }
                ch = v < 0x100 ? (char)v : '?';
                break;
            }
            case '"':
            case '\\':
            case '/':
                ch = e;
                break;
            default:
                free(s);
                return NULL;
            }
        }
        s[n++] = ch;
    }
    s[n] = '\0';
    *out = s;
    return p + 1;
}

/* Finds `"key":` at the top level of the /echo object (keys are unique and fixed). */
static const char *json_key(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL) {
        return NULL;
    }
    p = skip_ws(p + strlen(pat));
    return *p == ':' ? p + 1 : NULL;
}

static int json_copy_string(const char *json, const char *key, char *out, size_t size)
{
    const char *p = json_key(json, key);
    char *s = NULL;
    if (p == NULL || json_string(p, &s) == NULL) {
        return -EPROTO;
    }
    snprintf(out, size, "%s", s);
    free(s);
    return 0;
}

int th_echo_req_parse(th_echo_req_t *q, const char *json)
{
    memset(q, 0, sizeof(*q));
    q->body_bytes = -1;
    if (json == NULL || json_copy_string(json, "method", q->method, sizeof(q->method)) != 0 ||
        json_copy_string(json, "target", q->target, sizeof(q->target)) != 0 ||
        json_copy_string(json, "version", q->version, sizeof(q->version)) != 0) {
        return -EPROTO;
    }
    const char *p = json_key(json, "body_bytes");
    if (p != NULL) {
        q->body_bytes = strtoll(p, NULL, 10);
    }
    p = json_key(json, "headers");
    if (p == NULL || *(p = skip_ws(p)) != '[') {
        return -EPROTO;
    }
    p = skip_ws(p + 1);
    while (*p == '[') {
        char *name = NULL, *value = NULL;
        p = json_string(p + 1, &name);
        if (p == NULL || *(p = skip_ws(p)) != ',' || (p = json_string(p + 1, &value)) == NULL ||
            *(p = skip_ws(p)) != ']' || q->nheaders == TH_RESP_MAX_HEADERS) {
            free(name);
            free(value);
            th_echo_req_free(q);
            return -EPROTO;
        }
        q->names[q->nheaders] = name;
        q->values[q->nheaders] = value;
        q->nheaders++;
        p = skip_ws(p + 1);
        if (*p == ',') {
            p = skip_ws(p + 1);
        }
    }
    if (*p != ']') {
        th_echo_req_free(q);
        return -EPROTO;
    }
    return 0;
}

void th_echo_req_free(th_echo_req_t *q)
{
    for (size_t i = 0; i < q->nheaders; i++) {
        free(q->names[i]);
        free(q->values[i]);
    }
    q->nheaders = 0;
}

const char *th_echo_req_header(const th_echo_req_t *q, const char *name)
{
    return find_field((const char *const *)q->names, (const char *const *)q->values, q->nheaders,
                      name);
}

int th_echo_req_header_count(const th_echo_req_t *q, const char *name)
{
    return count_fields((const char *const *)q->names, q->nheaders, name);
}

void th_echo_req_header_list(const th_echo_req_t *q, const char *name, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < q->nheaders; i++) {
        if (strcasecmp(q->names[i], name) != 0) {
            continue;
        }
        const char *p = q->values[i];
        while (*p != '\0') {
            while (*p == ' ' || *p == '\t' || *p == ',') {
                p++;
            }
            const char *e = p;
            while (*e != '\0' && *e != ',') {
                e++;
            }
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t')) {
                t--;
            }
            if (t > p) {
                int w = snprintf(out + n, size - n, "%s%.*s", n > 0 ? ", " : "", (int)(t - p), p);
                if (w < 0 || (size_t)w >= size - n) {
                    return;
                }
                n += (size_t)w;
            }
            p = e;
        }
    }
}

/* ---- requests with a body ---- */

int th_http_request(int port, const char *method, const char *path, const char *extra,
                    const void *body, size_t body_len, th_resp_t *r)
{
    th_conn_t c;
    memset(r, 0, sizeof(*r));
    int64_t timeout = th_slack_ms(TH_HTTP_TIMEOUT_MS);
    int rc = th_conn_open(&c, port, timeout);
    if (rc != 0) {
        return rc;
    }
    char *head = NULL;
    char length[48] = "";
    if (body != NULL) {
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
    }
    if (asprintf(&head, "%s %s HTTP/1.1\r\nHost: test\r\n%s%s\r\n", method, path,
                 extra ? extra : "", length) < 0) {
        abort();
    }
    rc = th_conn_send(&c, head, strlen(head), timeout);
    free(head);
    /* Send the body while watching for an early answer (413 before the body is read). */
    const char *p = body;
    size_t left = body != NULL ? body_len : 0;
    int64_t deadline = th_now_ms() + timeout;
    while (rc == 0 && left > 0) {
        struct pollfd pfd = {.fd = c.fd, .events = POLLIN | POLLOUT};
        int n = poll(&pfd, 1, (int)(deadline - th_now_ms() > 0 ? deadline - th_now_ms() : 0));
        if (n == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            break;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            break; /* an answer (or a close) before the whole body: read it */
        }
        ssize_t w = send(c.fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            left -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            break; /* EPIPE, ECONNRESET: try to read what was answered */
        }
    }
    if (rc == 0) {
        rc = th_http_read_response(&c, r, strcmp(method, "HEAD") == 0);
    }
    th_conn_close(&c);
    return rc;
}

/* ---- Prometheus text ---- */

bool th_metric_value(const char *text, const char *series, double *out)
{
    size_t n = strlen(series);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *next = strchr(line, '\n');
        if (line[0] != '#' && strncmp(line, series, n) == 0 && line[n] == ' ') {
            char *end = NULL;
            double v = strtod(line + n + 1, &end);
            if (end != line + n + 1) {
                *out = v;
                return true;
            }
        }
        line = next != NULL ? next + 1 : NULL;
    }
    return false;
}

/* ---- JSON ---- */

#define JSON_MAX_DEPTH 64

typedef struct json_parser {
    const char *p, *end;
    int depth;
} json_parser_t;

static th_json_t *json_new(th_json_type_t type)
{
    th_json_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        abort();
    }
    j->type = type;
    return j;
}

void th_json_free(th_json_t *j)
{
    if (j == NULL) {
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        if (j->keys != NULL) {
            free(j->keys[i]);
        }
        th_json_free(j->items[i]);
    }
    free(j->keys);
    free(j->items);
    free(j->string);
    free(j);
}

static void jp_ws(json_parser_t *jp)
{
    while (jp->p < jp->end &&
           (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r')) {
        jp->p++;
    }
}

static bool jp_lit(json_parser_t *jp, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, lit, n) != 0) {
        return false;
    }
    jp->p += n;
    return true;
}

static int jp_hex4(json_parser_t *jp)
{
    if (jp->end - jp->p < 4) {
        return -1;
    }
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = *jp->p++;
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static void put_utf8(char *s, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        s[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        s[(*n)++] = (char)(0xc0 | (cp >> 6));
        s[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        s[(*n)++] = (char)(0xe0 | (cp >> 12));
        s[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        s[(*n)++] = (char)(0xf0 | (cp >> 18));
        s[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        s[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* Parses a string at jp->p (on the opening quote) into a malloc'd C string, or NULL. */
static char *jp_string(json_parser_t *jp)
{
    if (jp->p >= jp->end || *jp->p != '"') {
        return NULL;
    }
    jp->p++;
    /* Escapes never make the text longer than its source (\uXXXX: 6 bytes -> at most 4). */
    char *s = malloc((size_t)(jp->end - jp->p) + 1);
    if (s == NULL) {
        abort();
    }
    size_t n = 0;
    for (;;) {
        if (jp->p >= jp->end) {
            goto fail;
        }
        unsigned char ch = (unsigned char)*jp->p++;
        if (ch == '"') {
            break;
        }
        if (ch < 0x20) {
            goto fail; /* RFC 8259 §7: control characters must be escaped */
        }
        if (ch != '\\') {
            s[n++] = (char)ch;
            continue;
        }
        if (jp->p >= jp->end) {
            goto fail;
        }
        char e = *jp->p++;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = e != '\0' ? strchr(from, e) : NULL;
        if (k != NULL) {
            s[n++] = to[k - from];
            continue;
        }
        if (e != 'u') {
            goto fail;
        }
        int cp = jp_hex4(jp);
        if (cp < 0) {
            goto fail;
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (!jp_lit(jp, "\\u")) {
                goto fail;
            }
            int lo = jp_hex4(jp);
            if (lo < 0xdc00 || lo > 0xdfff) {
                goto fail;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            goto fail;
        }
        put_utf8(s, &n, (unsigned)cp);
    }
    s[n] = '\0';
    return s;
fail:
    free(s);
    return NULL;
}

static th_json_t *jp_value(json_parser_t *jp);

static void json_append(th_json_t *j, char *key, th_json_t *item)
{
    j->items = realloc(j->items, (j->n + 1) * sizeof(*j->items));
    if (j->items == NULL) {
        abort();
    }
    if (j->type == TH_JSON_OBJECT) {
        j->keys = realloc(j->keys, (j->n + 1) * sizeof(*j->keys));
        if (j->keys == NULL) {
            abort();
        }
        j->keys[j->n] = key;
    }
    j->items[j->n++] = item;
}

static th_json_t *jp_container(json_parser_t *jp, bool object)
{
    char close = object ? '}' : ']';
    th_json_t *j = json_new(object ? TH_JSON_OBJECT : TH_JSON_ARRAY);
    jp->p++;
    jp_ws(jp);
    if (jp->p < jp->end && *jp->p == close) {
        jp->p++;
        return j;
    }
    for (;;) {
        char *key = NULL;
        if (object) {
            jp_ws(jp);
            key = jp_string(jp);
            jp_ws(jp);
            if (key == NULL || jp->p >= jp->end || *jp->p != ':') {
                free(key);
                goto fail;
            }
            jp->p++;
        }
        th_json_t *item = jp_value(jp);
        if (item == NULL) {
            free(key);
            goto fail;
        }
        json_append(j, key, item);
        jp_ws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
            return j;
        }
        goto fail;
    }
fail:
    th_json_free(j);
    return NULL;
}

static th_json_t *jp_number(json_parser_t *jp)
{
    const char *s = jp->p;
    bool integral = true;
    if (jp->p < jp->end && *jp->p == '-') {
        jp->p++;
    }
    if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9') {
        return NULL;
    }
    if (*jp->p == '0') {
        jp->p++;
    } else {
        while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9') {
            jp->p++;
        }
    }
    if (jp->p < jp->end && *jp->p == '.') {
        integral = false;
        jp->p++;
        const char *d = jp->p;
        while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9') {
            jp->p++;
        }
        if (jp->p == d) {
            return NULL;
        }
    }
    if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
        integral = false;
        jp->p++;
        if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-')) {
            jp->p++;
        }
        const char *d = jp->p;
        while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9') {
            jp->p++;
        }
        if (jp->p == d) {
            return NULL;
        }
    }
    char tmp[64];
    if (jp->p - s >= (ptrdiff_t)sizeof(tmp)) {
        return NULL;
    }
    memcpy(tmp, s, (size_t)(jp->p - s));
    tmp[jp->p - s] = '\0';
    th_json_t *j = json_new(TH_JSON_NUMBER);
    j->number = strtod(tmp, NULL);
    if (integral) {
        errno = 0;
        j->integer = strtoll(tmp, NULL, 10);
        j->integral = errno == 0;
    }
    return j;
}

static th_json_t *jp_value(json_parser_t *jp)
{
    jp_ws(jp);
    if (jp->p >= jp->end || jp->depth >= JSON_MAX_DEPTH) {
        return NULL;
    }
    th_json_t *j = NULL;
    switch (*jp->p) {
    case '{':
    case '[':
        jp->depth++;
        j = jp_container(jp, *jp->p == '{');
        jp->depth--;
        return j;
    case '"': {
        char *s = jp_string(jp);
        if (s == NULL) {
            return NULL;
        }
        j = json_new(TH_JSON_STRING);
        j->string = s;
        return j;
    }
    case 't':
    case 'f':
        if (jp_lit(jp, "true") || jp_lit(jp, "false")) {
            j = json_new(TH_JSON_BOOL);
            j->boolean = jp->p[-1] == 'e' && jp->p[-2] == 'u';
        }
        return j;
    case 'n':
        return jp_lit(jp, "null") ? json_new(TH_JSON_NULL) : NULL;
    default:
        return jp_number(jp);
    }
}

th_json_t *th_json_parse(const char *text, size_t len)
{
    if (text == NULL) {
        return NULL;
    }
    json_parser_t jp = {.p = text, .end = text + len};
    th_json_t *j = jp_value(&jp);
    jp_ws(&jp);
    if (j != NULL && jp.p != jp.end) {
        th_json_free(j);
        return NULL;
    }
    return j;
}

const th_json_t *th_json_get(const th_json_t *obj, const char *key)
{
    if (obj == NULL || obj->type != TH_JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0) {
            return obj->items[i];
        }
    }
    return NULL;
}

const th_json_t *th_json_at(const th_json_t *arr, size_t i)
{
    return arr != NULL && arr->type == TH_JSON_ARRAY && i < arr->n ? arr->items[i] : NULL;
}

const char *th_json_str(const th_json_t *obj, const char *key)
{
    const th_json_t *v = th_json_get(obj, key);
    return v != NULL && v->type == TH_JSON_STRING ? v->string : NULL;
}

bool th_json_int(const th_json_t *obj, const char *key, long long *out)
{
    const th_json_t *v = th_json_get(obj, key);
    if (v == NULL || v->type != TH_JSON_NUMBER || !v->integral) {
        return false;
    }
    *out = v->integer;
    return true;
}
