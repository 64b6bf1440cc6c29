/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http1.c - libFuzzer entry point for the HTTP/1 message layer
 * (proxy/http1.c, proxy/headers.c). Besides "no crash, no sanitizer report"
 * it checks properties: a rewritten head parses again, the chunked decoder
 * gives the same result however its input is split, tighter limits never
 * accept what looser ones refuse, and prev_len does not change the verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/headers.h"
#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http1: property failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char out[256 * 1024];

static bool within(const char *p, size_t n, const char *buf, size_t size)
{
    return n == 0 || (p >= buf && p + n <= buf + size);
}

typedef struct chunk_result {
    ssize_t err;
    size_t consumed;
    uint64_t total;
    uint64_t hash; /* FNV-1a of the decoded data */
    bool done;
} chunk_result_t;

/* Decodes `in` in pieces of `step` bytes (0: all at once). */
static void decode(const char *in, size_t len, size_t step, chunk_result_t *r)
{
    px_chunked_t c;
    px_chunked_init(&c);
    memset(r, 0, sizeof(*r));
    r->hash = 0xcbf29ce484222325ull;
    size_t fed = 0;
    while (fed < len && !c.done && r->err == 0) {
        size_t piece = step == 0 || len - fed < step ? len - fed : step;
        size_t off = 0;
        while (off < piece && !c.done) {
            size_t doff, dlen;
            ssize_t n = px_chunked_decode(&c, in + fed + off, piece - off, &doff, &dlen);
            if (n < 0) {
                r->err = n;
                return;
            }
            FUZZ_CHECK((size_t)n <= piece - off && doff + dlen <= (size_t)n);
            for (size_t i = 0; i < dlen; i++) {
                r->hash ^= (unsigned char)in[fed + off + doff + i];
                r->hash *= 0x100000001b3ull;
            }
            if (n == 0 && dlen == 0)
                break;
            off += (size_t)n;
        }
        /* the decoder swallows every byte until done */
        FUZZ_CHECK(off == piece || c.done);
        fed += off;
        r->consumed = fed;
    }
    r->total = c.total;
    r->done = c.done;
}

static void check_chunked(const char *in, size_t len)
{
    chunk_result_t whole, bytes, halves;
    decode(in, len, 0, &whole);
    decode(in, len, 1, &bytes);
    decode(in, len, len / 2 + 1, &halves);
    FUZZ_CHECK(whole.err == bytes.err && whole.err == halves.err);
    if (whole.err == 0) {
        FUZZ_CHECK(whole.consumed == bytes.consumed && whole.consumed == halves.consumed);
        FUZZ_CHECK(whole.total == bytes.total && whole.hash == bytes.hash);
        FUZZ_CHECK(whole.hash == halves.hash && whole.done == bytes.done);
    }
}

static void check_request(const char *buf, size_t size)
{
    static const px_http1_limits_t loose = {65536, PX_HTTP1_MAX_HEADERS, 0};
    static const px_http1_limits_t tight = {256, 4, 10};
    px_request_t req, again;

    px_http1_err_t e = px_http1_parse_request(buf, size, 0, &loose, &req);
    px_http1_err_t et = px_http1_parse_request(buf, size, 0, &tight, &again);
    FUZZ_CHECK(px_http1_error_message(e) != NULL && px_http1_error_status(e) >= 200);
    if (et == PX_HTTP1_OK)
        FUZZ_CHECK(e == PX_HTTP1_OK);

    /* the last_len optimisation never changes a final verdict */
    size_t k = size / 2;
    if (px_http1_parse_request(buf, k, 0, &loose, &again) == PX_HTTP1_INCOMPLETE) {
        px_http1_err_t ek = px_http1_parse_request(buf, size, k, &loose, &again);
        if (ek != PX_HTTP1_INCOMPLETE && e != PX_HTTP1_INCOMPLETE)
            FUZZ_CHECK(ek == e);
    }
    if (e != PX_HTTP1_OK)
        return;

    FUZZ_CHECK(req.head_len > 0 && req.head_len <= size);
    FUZZ_CHECK(within(req.method, req.method_len, buf, req.head_len));
    FUZZ_CHECK(within(req.target, req.target_len, buf, req.head_len));
    FUZZ_CHECK(req.path_len > 0 && req.nheaders <= PX_HTTP1_MAX_HEADERS);
    FUZZ_CHECK(req.minor_version == 0 || req.minor_version == 1);
    for (size_t i = 0; i < req.nheaders; i++) {
        FUZZ_CHECK(within(req.headers[i].name, req.headers[i].name_len, buf, req.head_len));
        FUZZ_CHECK(within(req.headers[i].value, req.headers[i].value_len, buf, req.head_len));
    }

    /* the head we send upstream is itself a valid request */
    char id[33];
    px_headers_new_request_id(id);
    px_fwd_request_t fwd = {.client_ip = "192.0.2.1",
                            .proto = "http",
                            .request_id = id,
                            .via = "1.1 remora",
                            .body = req.body,
                            .content_length = req.content_length,
                            .upgrade = req.upgrade};
    ssize_t n = px_headers_request_head(out, sizeof(out), &req, &fwd);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(px_headers_request_head(out, (size_t)n - 1, &req, &fwd) == -1);
    FUZZ_CHECK(px_http1_parse_request(out, (size_t)n, 0, &loose, &again) == PX_HTTP1_OK);
    FUZZ_CHECK((size_t)n == again.head_len && again.minor_version == 1);
    FUZZ_CHECK(again.body == req.body && again.content_length == req.content_length);
    FUZZ_CHECK(again.method_len == req.method_len &&
               memcmp(again.method, req.method, req.method_len) == 0);
    FUZZ_CHECK(again.path_len == req.path_len && memcmp(again.path, req.path, req.path_len) == 0);
    FUZZ_CHECK(again.host_len == req.host_len && memcmp(again.host, req.host, req.host_len) == 0);
    FUZZ_CHECK(again.upgrade == req.upgrade && again.is_head == req.is_head);

    if (req.body == PX_BODY_CHUNKED)
        check_chunked(buf + req.head_len, size - req.head_len);
}

static void check_response(const char *buf, size_t size, bool is_head)
{
    px_response_t resp, again;
    px_http1_err_t e = px_http1_parse_response(buf, size, 0, is_head, 65536, &resp);
    if (e != PX_HTTP1_OK)
        return;
    FUZZ_CHECK(resp.head_len > 0 && resp.head_len <= size);
    FUZZ_CHECK(resp.status >= 100 && resp.status <= 999);
    FUZZ_CHECK(resp.body != PX_BODY_UNTIL_CLOSE || !resp.keep_alive);
    FUZZ_CHECK(!is_head || resp.body == PX_BODY_NONE);
    for (size_t i = 0; i < resp.nheaders; i++)
        FUZZ_CHECK(within(resp.headers[i].value, resp.headers[i].value_len, buf, resp.head_len));

    px_fwd_response_t fwd = {.backend = "b",
                             .via = "1.1 remora",
                             .body = resp.body,
                             .content_length = resp.content_length,
                             .keep_alive = resp.keep_alive,
                             .upgrade = resp.upgrade};
    ssize_t n = px_headers_response_head(out, sizeof(out), &resp, &fwd);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(px_http1_parse_response(out, (size_t)n, 0, is_head, 0, &again) == PX_HTTP1_OK);
    FUZZ_CHECK(again.status == resp.status && again.body == resp.body);
    FUZZ_CHECK(again.content_length == resp.content_length);
    FUZZ_CHECK(px_http1_find(again.headers, again.nheaders, "x-remora-backend") != NULL);

    if (resp.body == PX_BODY_CHUNKED)
        check_chunked(buf + resp.head_len, size - resp.head_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    check_request(buf, size);
    check_response(buf, size, false);
    check_response(buf, size, true);
    /* the decoder on its own, straight from the raw bytes */
    check_chunked(buf, size);
    return 0;
}
