/* SPDX-License-Identifier: MIT */
/*
 * http1.h - HTTP/1.x message heads and body framing: parsing requests and
 * responses (picohttpparser underneath, our framing and smuggling checks on
 * top), an incremental chunked-body decoder, and the errors a malformed
 * request earns (status + precise reason). Pure code: no I/O, no runtime.
 */
#ifndef PX_HTTP1_H
#define PX_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/**
 * One header as parsed; points into the caller's buffer. It is
 * picohttpparser's own struct (name == NULL marks an obs-fold continuation
 * line), so the parser fills our header arrays directly.
 */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
typedef struct phr_header px_header_t;

/** Hard cap on headers in one message; a listener may configure fewer. */
#define PX_HTTP1_MAX_HEADERS 128

/** How a message body is delimited (RFC 9112 §6). */
typedef enum px_body_kind {
    PX_BODY_NONE = 0,    /* no body (no CL/TE in a request; 1xx/204/304/HEAD response) */
    PX_BODY_LENGTH,      /* Content-Length: `content_length` bytes (may be 0) */
    PX_BODY_CHUNKED,     /* Transfer-Encoding: chunked */
    PX_BODY_UNTIL_CLOSE, /* response only: read until the upstream closes */
} px_body_kind_t;

/*
 * Why a request was refused. Each has one status and one message
 * (px_http1_error_status / px_http1_error_message); the connection is closed
 * after any of them. PX_HTTP1_INCOMPLETE is not an error: more bytes needed.
 */
typedef enum px_http1_err {
    PX_HTTP1_OK = 0,
    PX_HTTP1_INCOMPLETE = -1,
    PX_HTTP1_E_SYNTAX = -2,             /* 400 malformed request line or header (picohttpparser) */
    PX_HTTP1_E_BARE_CR = -3,            /* 400 CR not followed by LF */
    PX_HTTP1_E_OBS_FOLD = -4,           /* 400 obsolete line folding */
    PX_HTTP1_E_SPACE_BEFORE_COLON = -5, /* 400 whitespace between field name and colon */
    PX_HTTP1_E_CL_AND_TE = -6,          /* 400 both Content-Length and Transfer-Encoding */
    PX_HTTP1_E_CL_INVALID = -7,         /* 400 Content-Length not a plain decimal number */
    PX_HTTP1_E_CL_DUPLICATE = -8,       /* 400 more than one Content-Length (even equal ones) */
    PX_HTTP1_E_TE_NOT_CHUNKED = -9,     /* 400 final transfer coding is not chunked */
    PX_HTTP1_E_TE_UNSUPPORTED =
        -10,                    /* 501 a transfer coding other than chunked (e.g. gzip, chunked) */
    PX_HTTP1_E_TE_HTTP10 = -11, /* 400 Transfer-Encoding in an HTTP/1.0 request */
    PX_HTTP1_E_HOST_MISSING = -12,   /* 400 HTTP/1.1 request without Host */
    PX_HTTP1_E_HOST_DUPLICATE = -13, /* 400 more than one Host */
    PX_HTTP1_E_TARGET = -14,         /* 400 request-target not origin-form, absolute-form or '*' */
    PX_HTTP1_E_METHOD = -15,  /* 501 CONNECT (tunnelling to arbitrary hosts is not offered) */
    PX_HTTP1_E_VERSION = -16, /* 505 HTTP version other than 1.0 / 1.1 */
    PX_HTTP1_E_HEAD_TOO_LARGE = -17,   /* 431 request line + headers over the limit */
    PX_HTTP1_E_TOO_MANY_HEADERS = -18, /* 431 more header fields than the limit */
    PX_HTTP1_E_BODY_TOO_LARGE = -19,   /* 413 body over the listener's limit */
    PX_HTTP1_E_CHUNK_SIZE = -20,       /* 400 bad chunk size (not hex, empty, overflow) */
    PX_HTTP1_E_CHUNK_EXT = -21,        /* 400 bad chunk extension */
    PX_HTTP1_E_CHUNK_FRAMING = -22,    /* 400 missing CRLF after chunk data, bad trailer */
    PX_HTTP1_E_FIELD_VALUE = -23,      /* 400 control character in a field value */
} px_http1_err_t;

/** Returns the HTTP status a refused request gets (400, 413, 431, 501, 505). */
int px_http1_error_status(px_http1_err_t err);
/** Returns a short static message for `err` ("both Content-Length and Transfer-Encoding"). */
const char *px_http1_error_message(px_http1_err_t err);

/** Limits applied while parsing a request head. */
typedef struct px_http1_limits {
    size_t max_head_bytes;   /* request line + headers + CRLFs; over it -> 431 */
    size_t max_headers;      /* at most PX_HTTP1_MAX_HEADERS */
    uint64_t max_body_bytes; /* 0 = no limit; a larger Content-Length -> 413 */
} px_http1_limits_t;

/** A parsed request head. All pointers borrow the buffer that was parsed. */
typedef struct px_request {
    const char *method;
    size_t method_len;
    const char *target; /* as received, e.g. "/a?b" or "http://h/a?b" */
    size_t target_len;
    const char *path; /* origin-form path+query ("/a?b"; "*" for OPTIONS *) */
    size_t path_len;
    int minor_version; /* 0 or 1 */
    size_t nheaders;
    size_t head_len;  /* bytes of the head, including the final CRLF */
    const char *host; /* Host header value, or the authority of an absolute-form target */
    size_t host_len;
    px_body_kind_t body; /* PX_BODY_NONE, _LENGTH or _CHUNKED */
    uint64_t content_length;
    bool keep_alive;      /* 1.1 without "Connection: close", or 1.0 with keep-alive */
    bool expect_continue; /* Expect: 100-continue */
    bool upgrade;         /* Upgrade present and Connection names upgrade */
    bool is_head;         /* method is HEAD */
    /* Last, so that what a request touches (the fields above and the first
     * nheaders entries) is contiguous: a G's stack stays a few pages. */
    px_header_t headers[PX_HTTP1_MAX_HEADERS];
} px_request_t;

/**
 * Parses a request head from `buf[0..len)`. `prev_len` is the length of a
 * previous incomplete attempt on the same buffer (0 the first time).
 * Returns PX_HTTP1_OK with `*req` filled (head_len set), PX_HTTP1_INCOMPLETE,
 * or a negative px_http1_err_t. When more than `lim->max_head_bytes` are
 * buffered and the head is still incomplete, returns E_HEAD_TOO_LARGE.
 */
px_http1_err_t px_http1_parse_request(const char *buf, size_t len, size_t prev_len,
                                      const px_http1_limits_t *lim, px_request_t *req);

/** A parsed response head. Pointers borrow the parsed buffer. */
typedef struct px_response {
    int status;
    int minor_version;
    const char *reason;
    size_t reason_len;
    size_t nheaders;
    size_t head_len;
    px_body_kind_t body; /* per RFC 9112 §6.3, given the request method */
    uint64_t content_length;
    bool keep_alive; /* the upstream connection may be reused after this response */
    bool upgrade;    /* 101 Switching Protocols */
    px_header_t headers[PX_HTTP1_MAX_HEADERS]; /* last, as in px_request_t */
} px_response_t;

/**
 * Parses a response head to a request whose method was HEAD when `is_head`.
 * Same returns as px_http1_parse_request; errors are PX_HTTP1_E_SYNTAX,
 * _CL_*, _TE_* (an upstream's bad framing makes a 502, decided by the caller).
 */
px_http1_err_t px_http1_parse_response(const char *buf, size_t len, size_t prev_len, bool is_head,
                                       size_t max_head_bytes, px_response_t *resp);

/** True if `name` equals `want` ignoring ASCII case. */
bool px_http1_name_is(const px_header_t *h, const char *want);
/** Returns the first header named `name` (case-insensitive), or NULL. */
const px_header_t *px_http1_find(const px_header_t *h, size_t n, const char *name);

/*
 * Incremental chunked-body decoder (RFC 9112 §7.1). Feed it the bytes that
 * follow the head; each call consumes framing and reports one span of body
 * data found inside the input, without copying. Trailers are validated and
 * discarded. Zero value (or px_chunked_init) is the start state.
 */
typedef struct px_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    uint64_t total;     /* data bytes decoded so far */
    size_t line_len;    /* bytes of the current size/trailer line so far (bounded) */
    bool done;          /* last chunk and trailers consumed */
} px_chunked_t;

void px_chunked_init(px_chunked_t *c);

/**
 * Consumes bytes of `in[0..len)`. Returns the count consumed (>= 0) and sets
 * `*data_off`/`*data_len` to a span of body data inside `in` (data_len may be
 * 0). Call again with the rest of the input until it returns 0 with no data
 * (needs more bytes) or `c->done`. Returns a negative px_http1_err_t
 * (E_CHUNK_SIZE, E_CHUNK_EXT, E_CHUNK_FRAMING, E_HEAD_TOO_LARGE for an
 * over-long size or trailer line) on malformed input.
 */
ssize_t px_chunked_decode(px_chunked_t *c, const char *in, size_t len, size_t *data_off,
                          size_t *data_len);

#endif /* PX_HTTP1_H */
