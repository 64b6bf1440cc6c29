/* SPDX-License-Identifier: MIT */
/*
 * listener.c - the server: live listeners, routes and clusters built from a
 * config; one accept G per listener; and the graceful drain.
 *
 * A listener admits at most max_connections connections: its accept G takes
 * a token from `conn_slots` before each accept and a connection gives it back
 * when it closes, so connections beyond the limit wait in the kernel's
 * backlog while the admitted ones keep working.
 *
 * Drain (SIGTERM, POST /drain): stop accepting (listening sockets closed),
 * report not-ready, let requests in flight finish - kept-alive connections
 * answer their next request with "Connection: close" - and exit 0 once none
 * is left or drain_timeout has passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/proxy.h"

static int build_route(px_server_t *srv, px_route_t *r, const cfg_route_t *cfg, char *err,
                       size_t errlen)
{
    r->cfg = cfg;
    r->backends = rt_xcalloc(cfg->backends_count, sizeof(*r->backends));
    r->nbackends = cfg->backends_count;
    r->stats = rt_xcalloc(cfg->backends_count + 1, sizeof(*r->stats));
    for (unsigned i = 0; i < cfg->backends_count; i++) {
        const cfg_backend_t *b = &cfg->backends[i];
        r->backends[i].name = b->name;
        r->backends[i].weight = b->weight;
        r->backends[i].cluster = px_server_cluster(srv, b->cluster);
        if (!r->backends[i].cluster) {
            snprintf(err, errlen, "route %s: backend %s names unknown cluster %s", cfg->name,
                     b->name, b->cluster);
            return -1;
        }
        r->total_weight += b->weight;
    }
    if (r->total_weight == 0) {
        snprintf(err, errlen, "route %s: backend weights sum to 0", cfg->name);
        return -1;
    }
    return flt_chain_new(cfg, &r->chain, err, errlen);
}

static int open_listener(px_server_t *srv, px_listener_t *l, const cfg_listener_t *cfg, char *err,
                         size_t errlen)
{
    l->cfg = cfg;
    l->srv = srv;
    l->limits.max_head_bytes = cfg->max_header_bytes;
    l->limits.max_headers = cfg->max_headers;
    l->limits.max_body_bytes = cfg->max_request_body;
    l->routes = rt_xcalloc(cfg->routes_count ? cfg->routes_count : 1, sizeof(*l->routes));
    l->nroutes = cfg->routes_count;
    for (unsigned i = 0; i < cfg->routes_count; i++) {
        if (build_route(srv, &l->routes[i], &cfg->routes[i], err, errlen) != 0) {
            return -1;
        }
    }
    if (cfg->access_log[0]) {
        l->log = px_access_log_open(cfg->access_log, err, errlen);
        if (!l->log) {
            return -1;
        }
    }
    l->conn_slots = rt_chan_new(1, cfg->max_connections);
    for (uint64_t i = 0; i < cfg->max_connections; i++) {
        char token = 0;
        int rc = rt_chan_send(l->conn_slots, &token, RT_NOWAIT);
        RT_CHECK(rc == RT_OK, "listener slots full at creation");
    }
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = rt_sockaddr_parse(cfg->address, &ss, &len);
    if (rc == RT_OK) {
        rc = rt_listen((const struct sockaddr *)&ss, len, 4096, &l->nfd);
    }
    if (rc != RT_OK) {
        snprintf(err, errlen, "listener %s: cannot listen on %s: %s", cfg->name, cfg->address,
                 rt_strerror(rc));
        return -1;
    }
    return 0;
}

px_cluster_t *px_server_cluster(px_server_t *srv, const char *name)
{
    for (unsigned i = 0; i < srv->nclusters; i++) {
        if (strcmp(srv->clusters[i].cfg->name, name) == 0) {
            return &srv->clusters[i];
        }
    }
    return NULL;
}

int px_server_open(px_server_t *srv, cfg_config_t *cfg, const char *yaml, char *err, size_t errlen)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    srv->config_text = yaml;
    srv->generation = 1;
    srv->clusters =
        rt_xcalloc(cfg->clusters_count ? cfg->clusters_count : 1, sizeof(*srv->clusters));
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        if (px_cluster_open(&srv->clusters[i], &cfg->clusters[i], err, errlen) != 0) {
            return -1;
        }
        srv->nclusters++;
    }
    srv->listeners =
        rt_xcalloc(cfg->listeners_count ? cfg->listeners_count : 1, sizeof(*srv->listeners));
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        if (open_listener(srv, &srv->listeners[i], &cfg->listeners[i], err, errlen) != 0) {
            return -1;
        }
        srv->nlisteners++;
    }
    return px_admin_open(srv, err, errlen);
}

static void accept_loop(void *arg)
{
    px_listener_t *l = arg;
    for (;;) {
        char token;
        if (rt_chan_recv(l->conn_slots, &token, RT_FOREVER) != RT_OK) {
            return;
        }
        rt_netfd_t *nfd;
        struct sockaddr_storage peer;
        int rc = rt_accept(l->nfd, &nfd, &peer, RT_FOREVER);
        if (rc == RT_OK) {
            px_conn_serve(l, nfd, &peer);
            continue;
        }
        token = 0;
        (void)rt_chan_send(l->conn_slots, &token, RT_NOWAIT);
        if (rc == RT_ECLOSED || atomic_load(&l->srv->draining)) {
            return;
        }
        /* EMFILE and friends: back off instead of spinning on the error. */
        rt_log(RT_LOG_WARN, "listener %s: accept: %s", l->cfg->name, rt_strerror(rc));
        rt_sleep(10 * RT_MSEC);
    }
}

void px_server_start(px_server_t *srv)
{
    for (unsigned i = 0; i < srv->nclusters; i++) {
        px_cluster_start(&srv->clusters[i]);
    }
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        px_listener_t *l = &srv->listeners[i];
        int rc = rt_go(accept_loop, l);
        RT_CHECK(rc == RT_OK, "cannot start an accept loop");
        rt_log(RT_LOG_INFO, "listener %s on %s", l->cfg->name, l->cfg->address);
    }
    px_admin_start(srv);
}

static void drain_main(void *arg)
{
    px_server_t *srv = arg;
    rt_log(RT_LOG_INFO, "draining: no new connections; finishing requests in flight");
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        rt_netfd_close(srv->listeners[i].nfd);
    }
    rt_time_t deadline = rt_deadline_in(srv->cfg->drain_timeout);
    while (atomic_load(&srv->active) > 0 && rt_now() < deadline) {
        rt_sleep(5 * RT_MSEC);
    }
    int64_t left = atomic_load(&srv->active);
    if (left > 0) {
        rt_log(RT_LOG_WARN, "drain timeout: %lld requests still in flight", (long long)left);
    } else {
        rt_log(RT_LOG_INFO, "drained");
    }
    px_access_log_flush_all(rt_deadline_in(RT_SEC));
    fflush(NULL);
    _exit(0);
}

void px_server_drain(px_server_t *srv)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&srv->draining, &expected, true)) {
        return;
    }
    int rc = rt_go(drain_main, srv);
    RT_CHECK(rc == RT_OK, "cannot start the drain");
}
