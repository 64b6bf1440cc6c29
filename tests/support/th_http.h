/* SPDX-License-Identifier: MIT */
/*
 * th_http.h - a small blocking HTTP/1.1 client for the integration suites:
 * raw bytes out, responses in (Content-Length, chunked and close-delimited
 * framing, 1xx skipping), every wait bounded through poll. Also the body
 * pattern and FNV-1a checksum remora-echo uses, and a reader of its /echo
 * JSON. Plain POSIX sockets: no runtime in the test process.
 */
#ifndef TH_HTTP_H
#define TH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Default bound for one read or write step of a test, before th_slack_ms. */
#define TH_HTTP_TIMEOUT_MS 5000

/*
 * Errors are negative errno values: -ETIMEDOUT (no progress before the
 * deadline), -ECONNRESET (reset by the peer), -ENODATA (clean EOF in the
 * middle of a message), -EPROTO (bytes that are not HTTP), -ECONNREFUSED.
 */

/** A client connection with a read buffer. */
typedef struct th_conn {
    int fd;
    char *buf; /* unread bytes are buf[off..len) */
    size_t off, len, cap;
} th_conn_t;

#define TH_RESP_MAX_HEADERS 128

/** A response head and (optionally stored) body. */
typedef struct th_resp {
    int status;
    int minor_version;
    size_t nheaders;
    const char *names[TH_RESP_MAX_HEADERS];
    const char *values[TH_RESP_MAX_HEADERS];
    char *head;      /* the raw head, NUL-separated into names and values */
    int continues;   /* 100 Continue responses skipped before this one */
    bool chunked;    /* Transfer-Encoding: chunked */
    bool has_length; /* Content-Length present */
    uint64_t content_length;
    bool close_delimited; /* body ran until the server closed */
    bool complete;        /* the whole body arrived as framed */
    uint64_t body_bytes;  /* body bytes received (stored or not) */
    char *body;           /* the first `body_len` stored bytes, NUL-terminated */
    size_t body_len;
} th_resp_t;

/** Receives body bytes as they arrive; returns false to stop reading. */
typedef bool th_body_sink_fn(const char *data, size_t n, void *arg);

/** Connects to 127.0.0.1:`port` within `timeout_ms`. Returns 0 or a negative errno. */
int th_conn_open(th_conn_t *c, int port, int64_t timeout_ms);
/** Closes `c` (nothing if already closed). */
void th_conn_close(th_conn_t *c);
/** Closes `c` with SO_LINGER 0 (the peer sees a reset). */
void th_conn_abort(th_conn_t *c);
/** Sends all `n` bytes within `timeout_ms`. Returns 0 or a negative errno. */
int th_conn_send(th_conn_t *c, const void *data, size_t n, int64_t timeout_ms);
/** Formats and sends (TH_HTTP_TIMEOUT_MS). Returns 0 or a negative errno. */
int th_conn_sendf(th_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/**
 * Receives up to `n` bytes (buffered ones first) within `timeout_ms`.
 * Returns the count, 0 at EOF, or a negative errno.
 */
ssize_t th_conn_recv(th_conn_t *c, void *data, size_t n, int64_t timeout_ms);
/**
 * Reads and discards until the peer closes. Returns 0 if it closed cleanly
 * (EOF) within `timeout_ms`, 1 if it reset the connection, -ETIMEDOUT
 * otherwise; `*extra` (if not NULL) gets the number of bytes discarded.
 */
int th_conn_wait_closed(th_conn_t *c, int64_t timeout_ms, size_t *extra);
/** Returns true if `c` has bytes buffered or readable within `timeout_ms`, or is closed. */
bool th_conn_readable(th_conn_t *c, int64_t timeout_ms);

/**
 * Reads one response head into `r` (1xx included). Returns 0 or a negative
 * errno (-ENODATA if the connection closed before a complete head).
 */
int th_http_read_head(th_conn_t *c, th_resp_t *r, int64_t timeout_ms);
/**
 * Reads the body of the response whose head is in `r` (`is_head`: the request
 * was HEAD). Bytes go to `sink` if given, else are stored in `r->body` up to
 * `max_store` bytes (the rest are counted and dropped). Each step waits at
 * most `timeout_ms`. Returns 0 if the body is complete, else a negative errno.
 */
int th_http_read_body(th_conn_t *c, th_resp_t *r, bool is_head, th_body_sink_fn *sink, void *arg,
                      size_t max_store, int64_t timeout_ms);
/**
 * Reads a whole response: skips (and counts) 100 Continue and other 1xx
 * except 101, then stores up to 16 MiB of the body. Returns 0 or a negative errno.
 */
int th_http_read_response(th_conn_t *c, th_resp_t *r, bool is_head);
/** Frees what `r` holds and zeroes it. */
void th_resp_free(th_resp_t *r);
/** Returns the first value of header `name` (case-insensitive), or NULL. */
const char *th_resp_header(const th_resp_t *r, const char *name);
/** Returns how many headers are named `name`. */
int th_resp_header_count(const th_resp_t *r, const char *name);
/** Returns true if the comma-separated header `name` lists `token` (case-insensitive). */
bool th_resp_header_has_token(const th_resp_t *r, const char *name, const char *token);

/**
 * Sends `raw` on `c` and reads one response (HEAD if `raw` starts with
 * "HEAD "). Returns 0 or a negative errno.
 */
int th_http_roundtrip(th_conn_t *c, const char *raw, th_resp_t *r);
/**
 * Connects to `port`, sends `raw`, reads one response (HEAD if `raw` starts
 * with "HEAD "), closes. Returns 0 or a negative errno.
 */
int th_http_exchange(int port, const char *raw, th_resp_t *r);
/**
 * GET `path` with Host "test" and `extra` header lines ("Name: v\r\n"..., or
 * NULL) over a new connection. Returns 0 or a negative errno.
 */
int th_http_get(int port, const char *path, const char *extra, th_resp_t *r);

/**
 * Connects to `port` and sends `method` `path` with Host "test", the header
 * lines `extra` ("Name: v\r\n"..., or NULL), Content-Length `body_len` (unless
 * `body` is NULL) and the body, then reads one response and closes. If the
 * server answers or closes before the whole body is sent (e.g. 413), sending
 * stops and whatever response arrived is read. Returns 0 or a negative errno.
 */
int th_http_request(int port, const char *method, const char *path, const char *extra,
                    const void *body, size_t body_len, th_resp_t *r);

/**
 * Returns the value of the Prometheus sample whose name and labels are
 * exactly `series` (e.g. `x_total{result="ok"}`) in the text exposition
 * `text` through `*out`; false if there is no such line.
 */
bool th_metric_value(const char *text, const char *series, double *out);

/** JSON value types of th_json_t. */
typedef enum th_json_type {
    TH_JSON_NULL,
    TH_JSON_BOOL,
    TH_JSON_NUMBER,
    TH_JSON_STRING,
    TH_JSON_ARRAY,
    TH_JSON_OBJECT,
} th_json_type_t;

/** A parsed JSON value (a small strict RFC 8259 parser for the admin API's answers). */
typedef struct th_json {
    th_json_type_t type;
    bool boolean;
    double number;
    bool integral;     /* a NUMBER written without fraction or exponent */
    long long integer; /* its value when `integral` */
    char *string;      /* STRING (NUL-terminated UTF-8) */
    size_t n;          /* ARRAY and OBJECT: element count */
    char **keys;       /* OBJECT */
    struct th_json **items;
} th_json_t;

/**
 * Parses `text` (`len` bytes), which must hold exactly one JSON value with
 * optional whitespace around it. Returns it (caller frees with th_json_free),
 * or NULL if the text is not JSON.
 */
th_json_t *th_json_parse(const char *text, size_t len);
/** Frees `j` and everything in it. th_json_free(NULL) does nothing. */
void th_json_free(th_json_t *j);
/** Returns member `key` of object `obj`, or NULL (also if `obj` is not an object). */
const th_json_t *th_json_get(const th_json_t *obj, const char *key);
/** Returns element `i` of array `arr`, or NULL. */
const th_json_t *th_json_at(const th_json_t *arr, size_t i);
/** Returns the string member `key` of `obj`, or NULL if absent or not a string. */
const char *th_json_str(const th_json_t *obj, const char *key);
/** Stores the integral member `key` of `obj` in `*out`; false if absent or not an integer. */
bool th_json_int(const th_json_t *obj, const char *key, long long *out);

/**
 * Asks remora-echo on `echo_port` directly (GET /) and returns its x-echo-seq:
 * the count of requests it received, this one included; -1 on failure.
 */
long th_echo_seq(int echo_port);

/** FNV-1a 64-bit: initial value, and the update over `n` bytes. */
#define TH_FNV_INIT 0xcbf29ce484222325ULL
uint64_t th_fnv1a(uint64_t h, const void *data, size_t n);
/** Fills `buf` with the echo pattern from stream offset `off` (byte i = 'a' + i % 23). */
void th_pattern_fill(char *buf, uint64_t off, size_t n);
/** Returns the index in `buf` of the first byte that breaks the pattern, or -1. */
ssize_t th_pattern_find_mismatch(const char *buf, uint64_t off, size_t n);

/** One request as remora-echo's /echo described it. */
typedef struct th_echo_req {
    char method[16];
    char target[1024];
    char version[16];
    size_t nheaders;
    char *names[TH_RESP_MAX_HEADERS];
    char *values[TH_RESP_MAX_HEADERS];
    long long body_bytes;
} th_echo_req_t;

/** Parses the JSON of /echo. Returns 0, or -EPROTO if it is not that shape. */
int th_echo_req_parse(th_echo_req_t *q, const char *json);
/** Frees the strings of `q`. */
void th_echo_req_free(th_echo_req_t *q);
/** Returns the first value of header `name` seen by /echo, or NULL. */
const char *th_echo_req_header(const th_echo_req_t *q, const char *name);
/** Returns how many headers named `name` /echo saw. */
int th_echo_req_header_count(const th_echo_req_t *q, const char *name);
/**
 * Joins every value of header `name` with ", ", normalising the spaces
 * around commas (list semantics, RFC 9110 §5.3), into `out`.
 */
void th_echo_req_header_list(const th_echo_req_t *q, const char *name, char *out, size_t size);

#endif /* TH_HTTP_H */
