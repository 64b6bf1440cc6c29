/* SPDX-License-Identifier: MIT */
/*
 * reply.c - responses the proxy generates itself: the one table of
 * x-remora-reason names, and px_reply, which writes a complete small
 * response in one write.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/headers.h"
#include "proxy/proxy.h"

static const char *const reason_names[] = {
    [PX_REASON_NONE] = "",
    [PX_REASON_NO_ROUTE] = "no_route",
    [PX_REASON_OVERLOADED] = "overloaded",
    [PX_REASON_UPSTREAM_CONNECT] = "upstream_connect",
    [PX_REASON_UPSTREAM_TIMEOUT] = "upstream_timeout",
    [PX_REASON_UPSTREAM_RESET] = "upstream_reset",
    [PX_REASON_BAD_RESPONSE] = "bad_response",
    [PX_REASON_BAD_REQUEST] = "bad_request",
    [PX_REASON_HEADERS_TOO_LARGE] = "headers_too_large",
    [PX_REASON_BODY_TOO_LARGE] = "body_too_large",
    [PX_REASON_NOT_IMPLEMENTED] = "not_implemented",
    [PX_REASON_VERSION_NOT_SUPPORTED] = "version_not_supported",
    [PX_REASON_REQUEST_TIMEOUT] = "request_timeout",
    [PX_REASON_FILTER] = "filter",
};

const char *px_reason_name(px_reason_t reason)
{
    if ((unsigned)reason >= RT_ARRAY_LEN(reason_names)) {
        return "unknown";
    }
    return reason_names[reason];
}

px_reason_t px_reason_of_http1_error(px_http1_err_t err)
{
    switch (px_http1_error_status(err)) {
    case 413:
        return PX_REASON_BODY_TOO_LARGE;
    case 431:
        return PX_REASON_HEADERS_TOO_LARGE;
    case 501:
        return PX_REASON_NOT_IMPLEMENTED;
    case 505:
        return PX_REASON_VERSION_NOT_SUPPORTED;
    default:
        return PX_REASON_BAD_REQUEST;
    }
}

int px_reply(px_conn_t *c, int status, const char *reason, bool close, const px_header_t *extra,
             size_t nextra, int64_t retry_after, bool head_only)
{
    char out[2048];
    size_t body_len = strlen(reason) + 1;
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d %s\r\nx-remora-reason: %s\r\ncontent-type: text/plain\r\n"
                     "content-length: %zu\r\n",
                     status, px_headers_status_text(status), reason, body_len);
    size_t len = (size_t)n;
    if (retry_after > 0) {
        len += (size_t)snprintf(out + len, sizeof(out) - len, "retry-after: %lld\r\n",
                                (long long)retry_after);
    }
    for (size_t i = 0; i < nextra && len < sizeof(out); i++) {
        len +=
            (size_t)snprintf(out + len, sizeof(out) - len, "%.*s: %.*s\r\n", (int)extra[i].name_len,
                             extra[i].name, (int)extra[i].value_len, extra[i].value);
    }
    if (len < sizeof(out)) {
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s\r\n",
                                close ? "connection: close\r\n" : "");
    }
    if (!head_only && len < sizeof(out)) {
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s\n", reason);
    }
    if (len >= sizeof(out)) {
        return -ENOBUFS;
    }
    ssize_t w = rt_write_all(c->nfd, out, len, rt_deadline_in(c->lv->cfg->write_timeout));
    return w < 0 ? (int)w : 0;
}
