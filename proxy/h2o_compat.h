/* SPDX-License-Identifier: MIT */
/*
 * h2o_compat.h - the one place that touches libh2o 2.2.5 (STYLE.md §II.2).
 * Debian ships libh2o-evloop, which exports picohttpparser's phr_* functions,
 * but no picohttpparser.h: the prototypes below are picohttpparser's own, as
 * documented in its header. Link with libh2o-evloop (PkgConfig::H2O).
 */
#ifndef PX_H2O_COMPAT_H
#define PX_H2O_COMPAT_H

#include <stddef.h>
#include <sys/types.h>

#include "proxy/http1.h" /* struct phr_header, which is our px_header_t */

/*
 * Returns the number of bytes consumed if successful, -2 if the request is
 * partial, -1 if it failed. `*num_headers` is the capacity of `headers` on
 * entry and the count parsed on return. `last_len` is the length of the
 * previous (partial) attempt on the same buffer, 0 the first time.
 */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

/* ditto, for a response */
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                       const char **msg, size_t *msg_len, struct phr_header *headers,
                       size_t *num_headers, size_t last_len);

/* ditto, for a block of header fields */
int phr_parse_headers(const char *buf, size_t len, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

/* should be zero-filled before start */
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk; /* number of bytes left in current chunk */
    char consume_trailer;       /* if trailing headers should be consumed */
    char _hex_count;
    char _state;
};

/*
 * Decodes chunked data in place: returns the number of octets left
 * undecoded after the end of the chunked data (>= 0) when complete, -2 if
 * incomplete, -1 on error. `*bufsz` is updated to the decoded length.
 * (remora uses its own incremental decoder, px_chunked_decode, which reports
 * the exact error and never copies; this is declared for completeness.)
 */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

/* returns whether the decoder is in the middle of chunked data */
int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder);

#endif /* PX_H2O_COMPAT_H */
