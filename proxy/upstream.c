/* SPDX-License-Identifier: MIT */
/*
 * upstream.c - clusters and their endpoints. An endpoint written as an IP
 * address is used as is; a host name is resolved with getaddrinfo as a
 * blocking call (the P is handed off meanwhile), every address it returns
 * becomes an endpoint, and a refresher G re-resolves it every `dns_refresh`
 * (Kubernetes headless Services change their addresses).
 *
 * Endpoints are refcounted: the cluster's list holds one reference, a
 * request that picked an endpoint holds one, and each upstream connection
 * holds one. A refresh swaps the list under `mu`; an address that went away
 * is retired (its idle connections closed, its busy ones closed on release)
 * and freed when the last reference goes.
 *
 * Clusters outlive configs: a reload whose cluster block is unchanged hands
 * the same cluster, pools and all, to the new snapshot. `users` counts the
 * snapshots using a cluster; the last one to let go closes it (refresher
 * stopped, endpoints retired). `refs` counts who may still touch its memory:
 * the users together, and the refresher G until it notices the stop.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

static void endpoint_name(const struct sockaddr *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, size, "%s:%d", host, port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, size, "[%s]:%d", host, port);
    }
}

px_endpoint_t *px_endpoint_new(px_cluster_t *cl, const struct sockaddr *sa, socklen_t len)
{
    px_endpoint_t *ep = rt_xcalloc(1, sizeof(*ep));
    atomic_init(&ep->refs, 1);
    ep->cluster = cl;
    memcpy(&ep->addr, sa, len);
    ep->addr_len = len;
    endpoint_name(sa, ep->name, sizeof(ep->name));
    size_t cap = cl->cfg->max_connections;
    ep->idle = rt_chan_new(sizeof(px_upconn_t *), cap);
    ep->slots = rt_chan_new(1, cap);
    for (size_t i = 0; i < cap; i++) {
        char token = 0;
        int rc = rt_chan_send(ep->slots, &token, RT_NOWAIT);
        RT_CHECK(rc == RT_OK, "endpoint slot channel full at creation");
    }
    return ep;
}

void px_endpoint_unref(px_endpoint_t *ep)
{
    if (!ep || atomic_fetch_sub(&ep->refs, 1) != 1) {
        return;
    }
    rt_chan_free(ep->idle);
    rt_chan_free(ep->slots);
    free(ep);
}

/* Closes the idle connections of an endpoint that left its cluster. */
static void endpoint_retire(px_endpoint_t *ep)
{
    atomic_store(&ep->retired, true);
    px_upconn_t *up;
    while (rt_chan_recv(ep->idle, &up, RT_NOWAIT) == RT_OK) {
        px_pool_release(up, false);
    }
    px_endpoint_unref(ep);
}

/* Splits "host:port" / "[v6]:port". Returns 0 or -1. */
static int split_host_port(const char *hostport, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || !colon[1]) {
        return -1;
    }
    const char *h = hostport;
    size_t hlen = (size_t)(colon - hostport);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= hsize || strlen(colon + 1) >= psize) {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

/* A growing list of distinct addresses. */
typedef struct px_addr_list {
    struct sockaddr_storage *addrs;
    socklen_t *lens;
    unsigned n, cap;
} addr_list_t;

static void addr_list_free(addr_list_t *l)
{
    free(l->addrs);
    free(l->lens);
}

static void addr_list_add(addr_list_t *l, const struct sockaddr *sa, socklen_t len)
{
    for (unsigned j = 0; j < l->n; j++) {
        if (l->lens[j] == len && memcmp(&l->addrs[j], sa, len) == 0) {
            return;
        }
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->addrs = rt_xrealloc(l->addrs, l->cap * sizeof(*l->addrs));
        l->lens = rt_xrealloc(l->lens, l->cap * sizeof(*l->lens));
    }
    memcpy(&l->addrs[l->n], sa, len);
    l->lens[l->n++] = len;
}

/* getaddrinfo as a blocking call: the P goes to another M meanwhile. May park. */
static int resolve_getaddrinfo(const char *host, const char *port, struct sockaddr_storage *out,
                               socklen_t *lens, unsigned max)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    rt_blocking_enter();
    int rc = getaddrinfo(host, port, &hints, &res);
    rt_blocking_leave();
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_ADDRFAMILY) {
        return 0; /* an answer: no such name, or no address for it */
    }
    if (rc != 0) {
        return PX_RESOLVE_NO_ANSWER; /* EAI_AGAIN, EAI_FAIL, EAI_SYSTEM...: ask again later */
    }
    int n = 0;
    for (struct addrinfo *ai = res; ai && (unsigned)n < max; ai = ai->ai_next) {
        memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
        lens[n++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    return n;
}

static px_resolve_fn *resolver = resolve_getaddrinfo;

void px__set_resolver(px_resolve_fn *fn)
{
    resolver = fn ? fn : resolve_getaddrinfo;
}

/*
 * Resolves every endpoint of the config into `out` (addresses, deduplicated).
 * A name whose answer has no addresses is dropped with a warning (a Service
 * without ready pods is normal; the refresher asks again). A lookup that
 * gets no answer at all (a DNS timeout) keeps the name's last addresses,
 * as Envoy does: one lost UDP packet must not empty a cluster. May park.
 */
static void resolve_all(px_cluster_t *cl, addr_list_t *out)
{
    for (unsigned i = 0; i < cl->cfg->endpoints_count; i++) {
        const char *spec = cl->cfg->endpoints[i];
        struct sockaddr_storage ss[PX_RESOLVE_MAX];
        socklen_t len[PX_RESOLVE_MAX];
        if (rt_sockaddr_parse(spec, &ss[0], &len[0]) == RT_OK) {
            addr_list_add(out, (const struct sockaddr *)&ss[0], len[0]);
            continue;
        }
        char host[256], port[16];
        if (split_host_port(spec, host, sizeof(host), port, sizeof(port)) != 0) {
            continue;
        }
        addr_list_t *last = &cl->answers[i];
        int n = resolver(host, port, ss, len, PX_RESOLVE_MAX);
        if (n < 0) {
            rt_log(RT_LOG_WARN, "cluster %s: no DNS answer for %s; keeping its %u addresses",
                   cl->cfg->name, spec, last->n);
            for (unsigned j = 0; j < last->n; j++) {
                addr_list_add(out, (const struct sockaddr *)&last->addrs[j], last->lens[j]);
            }
            continue;
        }
        if (n == 0) {
            rt_log(RT_LOG_WARN, "cluster %s: %s has no addresses", cl->cfg->name, spec);
        }
        last->n = 0;
        for (int j = 0; j < n; j++) {
            addr_list_add(last, (const struct sockaddr *)&ss[j], len[j]);
            addr_list_add(out, (const struct sockaddr *)&ss[j], len[j]);
        }
    }
}

/* Replaces the endpoint list with the addresses now resolved, keeping unchanged endpoints. */
void px__cluster_refresh(px_cluster_t *cl)
{
    addr_list_t list = {0};
    resolve_all(cl, &list);
    struct sockaddr_storage *addrs = list.addrs;
    socklen_t *lens = list.lens;
    unsigned n = list.n;
    px_endpoint_t **eps = rt_xcalloc(n ? n : 1, sizeof(*eps));

    rt_mutex_lock(&cl->mu);
    px_endpoint_t **old = cl->eps;
    unsigned nold = cl->neps;
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = 0; j < nold; j++) {
            if (old[j] && old[j]->addr_len == lens[i] &&
                memcmp(&old[j]->addr, &addrs[i], lens[i]) == 0) {
                eps[i] = old[j];
                old[j] = NULL;
                break;
            }
        }
        if (!eps[i]) {
            eps[i] = px_endpoint_new(cl, (const struct sockaddr *)&addrs[i], lens[i]);
        }
    }
    if (atomic_load(&cl->stop)) {
        /* Closed while resolving: nothing may join a closed cluster. */
        for (unsigned i = 0; i < n; i++) {
            endpoint_retire(eps[i]);
        }
        free(eps);
        eps = NULL;
        n = 0;
    }
    cl->eps = eps;
    cl->neps = n;
    rt_mutex_unlock(&cl->mu);

    for (unsigned j = 0; j < nold; j++) {
        if (old[j]) {
            endpoint_retire(old[j]);
        }
    }
    free(old);
    free(addrs);
    free(lens);
}

px_cluster_t *px_cluster_open(const cfg_cluster_t *cfg, cfg_config_t *doc, char *err, size_t errlen)
{
    bool has_names = false;
    for (unsigned i = 0; i < cfg->endpoints_count; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        char host[256], port[16];
        if (rt_sockaddr_parse(cfg->endpoints[i], &ss, &len) == RT_OK) {
            continue;
        }
        if (split_host_port(cfg->endpoints[i], host, sizeof(host), port, sizeof(port)) != 0) {
            snprintf(err, errlen, "cluster %s: bad endpoint '%s' (want host:port)", cfg->name,
                     cfg->endpoints[i]);
            return NULL;
        }
        has_names = true;
    }
    px_cluster_t *cl = rt_xcalloc(1, sizeof(*cl));
    cl->cfg = cfg;
    cl->doc = doc ? cfg_config_retain(doc) : NULL;
    cl->has_names = has_names;
    cl->answers = rt_xcalloc(cfg->endpoints_count ? cfg->endpoints_count : 1, sizeof(addr_list_t));
    cl->nanswers = cfg->endpoints_count;
    atomic_init(&cl->users, 1);
    atomic_init(&cl->refs, 1);
    px__cluster_refresh(cl);
    return cl;
}

/* Drops one memory reference; the last frees the cluster. */
static void cluster_put(px_cluster_t *cl)
{
    if (atomic_fetch_sub(&cl->refs, 1) != 1) {
        return;
    }
    for (unsigned i = 0; i < cl->nanswers; i++) {
        addr_list_free(&cl->answers[i]);
    }
    free(cl->answers);
    cfg_config_free(cl->doc);
    free(cl->eps);
    free(cl);
}

static void dns_refresher(void *arg)
{
    px_cluster_t *cl = arg;
    for (;;) {
        rt_sleep(cl->cfg->dns_refresh);
        if (atomic_load(&cl->stop)) {
            cluster_put(cl);
            return;
        }
        px__cluster_refresh(cl);
    }
}

/* Stops the refresher (it ends at its next wake-up) and retires every endpoint. */
static void cluster_close(px_cluster_t *cl)
{
    atomic_store(&cl->stop, true);
    rt_mutex_lock(&cl->mu);
    px_endpoint_t **eps = cl->eps;
    unsigned n = cl->neps;
    cl->eps = NULL;
    cl->neps = 0;
    rt_mutex_unlock(&cl->mu);
    for (unsigned i = 0; i < n; i++) {
        endpoint_retire(eps[i]);
    }
    free(eps);
}

void px_cluster_use(px_cluster_t *cl)
{
    atomic_fetch_add(&cl->users, 1);
}

void px_cluster_unuse(px_cluster_t *cl)
{
    if (atomic_fetch_sub(&cl->users, 1) != 1) {
        return;
    }
    cluster_close(cl);
    cluster_put(cl);
}

void px_cluster_start(px_cluster_t *cl)
{
    if (cl->started) {
        return;
    }
    cl->started = true;
    if (cl->has_names && cl->cfg->dns_refresh > 0) {
        atomic_fetch_add(&cl->refs, 1);
        int rc = rt_go(dns_refresher, cl);
        if (rc != RT_OK) {
            cluster_put(cl);
            rt_log(RT_LOG_ERROR, "cluster %s: cannot start DNS refresh: %s", cl->cfg->name,
                   rt_strerror(rc));
        }
    }
}

px_endpoint_t *px_cluster_pick(px_cluster_t *cl, const px_endpoint_t *avoid)
{
    rt_mutex_lock(&cl->mu);
    px_endpoint_t *ep = NULL;
    if (cl->neps > 0) {
        uint64_t i = atomic_fetch_add_explicit(&cl->rr, 1, memory_order_relaxed);
        ep = cl->eps[i % cl->neps];
        if (ep == avoid && cl->neps > 1) {
            ep = cl->eps[(i + 1) % cl->neps];
        }
        atomic_fetch_add(&ep->refs, 1);
    }
    rt_mutex_unlock(&cl->mu);
    return ep;
}
