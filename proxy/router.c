/* SPDX-License-Identifier: MIT */
/*
 * router.c - route matching and backend choice. Routes are tried in config
 * order and the first match wins (DESIGN.md); a route matches on an exact
 * path or a path prefix (the query string is never part of the path), and
 * optionally on host (case-insensitive, port ignored), method and headers.
 * Backends are chosen per request at random in proportion to their weights.
 */
#include <string.h>
#include <strings.h>

#include "proxy/proxy.h"

/* Length of the path without its query string. */
static size_t path_len_without_query(const px_request_t *req)
{
    const char *q = memchr(req->path, '?', req->path_len);
    return q ? (size_t)(q - req->path) : req->path_len;
}

static bool host_matches(const char *want, const px_request_t *req)
{
    size_t len = req->host_len;
    const char *colon = len ? memchr(req->host, ':', len) : NULL;
    if (colon && req->host[0] != '[') {
        len = (size_t)(colon - req->host);
    }
    return strlen(want) == len && strncasecmp(want, req->host, len) == 0;
}

static bool headers_match(const cfg_match_t *m, const px_request_t *req)
{
    for (unsigned i = 0; i < m->headers_count; i++) {
        const px_header_t *h = px_http1_find(req->headers, req->nheaders, m->headers[i].name);
        if (!h) {
            return false;
        }
        const char *want = m->headers[i].value;
        if (want[0] && (strlen(want) != h->value_len || memcmp(want, h->value, h->value_len))) {
            return false;
        }
    }
    return true;
}

static bool route_matches(const cfg_match_t *m, const px_request_t *req)
{
    size_t plen = path_len_without_query(req);
    if (m->path[0]) {
        if (strlen(m->path) != plen || memcmp(m->path, req->path, plen) != 0) {
            return false;
        }
    } else {
        size_t n = strlen(m->path_prefix);
        if (n > plen || memcmp(m->path_prefix, req->path, n) != 0) {
            return false;
        }
    }
    if (m->method[0] && (strlen(m->method) != req->method_len ||
                         memcmp(m->method, req->method, req->method_len) != 0)) {
        return false;
    }
    if (m->host[0] && !host_matches(m->host, req)) {
        return false;
    }
    return headers_match(m, req);
}

const px_route_t *px_router_match(const px_lview_t *lv, const px_request_t *req)
{
    for (unsigned i = 0; i < lv->nroutes; i++) {
        if (route_matches(&lv->routes[i].cfg->match, req)) {
            return &lv->routes[i];
        }
    }
    return NULL;
}

const px_backend_t *px_route_pick(const px_route_t *r)
{
    if (r->nbackends == 1) {
        return &r->backends[0];
    }
    uint64_t x = rt_fastrand() % r->total_weight;
    for (unsigned i = 0; i < r->nbackends; i++) {
        if (x < r->backends[i].weight) {
            return &r->backends[i];
        }
        x -= r->backends[i].weight;
    }
    return &r->backends[r->nbackends - 1];
}

const px_backend_t *px_route_backend(const px_route_t *r, const char *name)
{
    for (unsigned i = 0; i < r->nbackends; i++) {
        if (strcmp(r->backends[i].name, name) == 0) {
            return &r->backends[i];
        }
    }
    return NULL;
}
