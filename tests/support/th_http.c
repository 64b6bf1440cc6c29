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
