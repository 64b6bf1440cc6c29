/* SPDX-License-Identifier: MIT */
/*
 * headers.h - rewriting message heads on their way through the proxy: drop
 * hop-by-hop fields (RFC 9110 §7.6.1: Connection and the fields it names,
 * Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), set our own
 * framing, append X-Forwarded-For/-Proto, X-Request-Id and Via, and add
 * x-remora-backend to responses. Pure code: writes into caller buffers.
 */
#ifndef PX_HEADERS_H
#define PX_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/http1.h"

/** How a request head is rewritten for the upstream (always sent as HTTP/1.1). */
typedef struct px_fwd_request {
    const char *client_ip;  /* appended to X-Forwarded-For */
    const char *proto;      /* X-Forwarded-Proto: "http" */
    const char *request_id; /* sent as X-Request-Id when the client sent none */
    const char *via;        /* appended to Via, e.g. "1.1 remora" */
    px_body_kind_t body;    /* framing sent upstream: NONE, LENGTH or CHUNKED */
    uint64_t content_length;
    bool upgrade;             /* keep Upgrade and send "Connection: upgrade" */
    const px_header_t *extra; /* extra headers (e.g. from filters), may be NULL */
    size_t nextra;
} px_fwd_request_t;

/**
 * Writes the upstream request head ("METHOD path HTTP/1.1", forwarded and
 * added headers, blank line) into `out[0..cap)`. Client Content-Length,
 * Transfer-Encoding and Expect are replaced by the framing in `fwd`.
 * Returns the length, or -1 if it does not fit.
 */
ssize_t px_headers_request_head(char *out, size_t cap, const px_request_t *req,
                                const px_fwd_request_t *fwd);

/** How a response head is rewritten for the client. */
typedef struct px_fwd_response {
    const char *backend; /* x-remora-backend value; NULL = none */
    const char *via;     /* appended to Via */
    px_body_kind_t body; /* framing to the client: NONE, LENGTH, CHUNKED or UNTIL_CLOSE */
    uint64_t content_length;
    bool keep_alive;    /* false: "Connection: close" */
    bool client_http10; /* true: a keep-alive answer says "Connection: keep-alive" */
    bool upgrade;       /* 101: keep Upgrade, send "Connection: upgrade" */
    const px_header_t *extra;
    size_t nextra;
} px_fwd_response_t;

/**
 * Writes the client response head ("HTTP/1.1 status reason", forwarded and
 * added headers, blank line) into `out[0..cap)`. Upstream x-remora-* fields
 * are dropped. Returns the length, or -1 if it does not fit.
 */
ssize_t px_headers_response_head(char *out, size_t cap, const px_response_t *resp,
                                 const px_fwd_response_t *fwd);

/**
 * Returns the reason phrase of `status` (RFC 9110 §15: "OK", "Not Found"), or
 * "" for one it does not know; used for upstreams that send none and for the
 * proxy's own responses.
 */
const char *px_headers_status_text(int status);

/** Writes a 16-byte random hex request id plus NUL into `out` (33 bytes). */
void px_headers_new_request_id(char out[33]);

#endif /* PX_HEADERS_H */
