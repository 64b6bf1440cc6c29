/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - a validated config made live and immutable: the listeners'
 * views (routes, filter chains, limits, logs), the clusters the routes use,
 * and the YAML it came from.
 *
 * The server publishes the current snapshot in an rt_value. A request holds
 * the snapshot it started with (px_snapshot_hold) until its last byte, so a
 * reload in the middle of it changes nothing it sees; the old snapshot is
 * freed when the last such request ends. Its own references come from the
 * rt_value and from listeners removed by a reload (their kept-alive
 * connections still need the routes they were accepted with).
 *
 * Building a snapshot from a new config carries over what did not change,
 * keyed by name: a cluster with an equal block keeps its pools and DNS
 * state; a filter keeps its state when its route (same listener, same name)
 * still has it with the same rule (flt_chain_new). Statistics are kept by
 * name outside snapshots (px_stats_for), so counters survive reloads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

static _Atomic int64_t live_snapshots;

int64_t px_snapshots_live(void)
{
    return atomic_load(&live_snapshots);
}

const px_lview_t *px_snapshot_view(const px_snapshot_t *s, const px_listener_t *l)
{
    for (unsigned i = 0; i < s->nviews; i++) {
        if (s->views[i].l == l) {
            return &s->views[i];
        }
    }
    return NULL;
}

const px_route_t *px_snapshot_route(const px_snapshot_t *s, const char *name)
{
    for (unsigned i = 0; i < s->nviews; i++) {
        const px_lview_t *lv = &s->views[i];
        for (unsigned j = 0; j < lv->nroutes; j++) {
            if (strcmp(lv->routes[j].cfg->name, name) == 0) {
                return &lv->routes[j];
            }
        }
    }
    return NULL;
}

px_snapshot_t *px_snapshot_hold(px_server_t *srv, px_hold_t *hold)
{
    hold->snap = rt_value_load(&srv->current, &hold->h);
    return hold->snap;
}

void px_snapshot_drop(px_hold_t *hold)
{
    rt_value_drop(&hold->h);
    hold->snap = NULL;
}

void px_snapshot_ref(px_snapshot_t *s)
{
    atomic_fetch_add(&s->refs, 1);
}

static void snapshot_free(px_snapshot_t *s)
{
    for (unsigned i = 0; i < s->nviews; i++) {
        px_lview_t *lv = &s->views[i];
        for (unsigned j = 0; j < lv->nroutes; j++) {
            px_route_t *r = &lv->routes[j];
            flt_chain_free(r->chain);
            free(r->backends);
            free(r->stats);
        }
        free(lv->routes);
    }
    free(s->views);
    for (unsigned i = 0; i < s->nclusters; i++) {
        px_cluster_unuse(s->clusters[i]);
    }
    free(s->clusters);
    cfg_config_free(s->cfg);
    free(s->yaml);
    free(s->admin_token);
    free(s);
    atomic_fetch_sub(&live_snapshots, 1);
}

void px_snapshot_unref(px_snapshot_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        snapshot_free(s);
    }
}

static px_cluster_t *find_cluster(px_cluster_t *const *clusters, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(clusters[i]->cfg->name, name) == 0) {
            return clusters[i];
        }
    }
    return NULL;
}

/* The chain of route `route` of listener `listener` in `prev`, or NULL. */
static const flt_chain_t *previous_chain(const px_snapshot_t *prev, const char *listener,
                                         const char *route)
{
    for (unsigned i = 0; prev && i < prev->nviews; i++) {
        const px_lview_t *lv = &prev->views[i];
        if (strcmp(lv->cfg->name, listener) != 0) {
            continue;
        }
        for (unsigned j = 0; j < lv->nroutes; j++) {
            if (strcmp(lv->routes[j].cfg->name, route) == 0) {
                return lv->routes[j].chain;
            }
        }
    }
    return NULL;
}

static int build_route(px_server_t *srv, px_snapshot_t *s, const px_snapshot_t *prev,
                       const cfg_listener_t *lcfg, px_route_t *r, const cfg_route_t *cfg, char *msg,
                       size_t msglen)
{
    r->cfg = cfg;
    r->backends = rt_xcalloc(cfg->backends_count ? cfg->backends_count : 1, sizeof(*r->backends));
    r->stats = rt_xcalloc(cfg->backends_count + 1, sizeof(*r->stats));
    for (unsigned i = 0; i < cfg->backends_count; i++) {
        const cfg_backend_t *b = &cfg->backends[i];
        px_backend_t *pb = &r->backends[r->nbackends];
        pb->name = b->name;
        pb->weight = b->weight;
        pb->cluster = find_cluster(s->clusters, s->nclusters, b->cluster);
        if (!pb->cluster) {
            snprintf(msg, msglen, "backend %s names unknown cluster %s", b->name, b->cluster);
            return -1;
        }
        r->stats[i] = px_stats_for(srv, lcfg->name, cfg->name, b->name);
        r->total_weight += b->weight;
        r->nbackends++;
    }
    r->stats[cfg->backends_count] = px_stats_for(srv, lcfg->name, cfg->name, "");
    if (r->total_weight == 0) {
        snprintf(msg, msglen, "backend weights sum to 0");
        return -1;
    }
    return flt_chain_new(cfg, previous_chain(prev, lcfg->name, cfg->name), &r->chain, msg, msglen);
}

static int build_view(px_server_t *srv, px_snapshot_t *s, const px_snapshot_t *prev, unsigned i,
                      px_listener_t *l, px_build_error_t *err)
{
    const cfg_listener_t *cfg = &s->cfg->listeners[i];
    px_lview_t *lv = &s->views[i];
    lv->cfg = cfg;
    lv->l = l;
    lv->limits.max_head_bytes = cfg->max_header_bytes;
    lv->limits.max_headers = cfg->max_headers;
    lv->limits.max_body_bytes = cfg->max_request_body;
    lv->no_route = px_stats_for(srv, cfg->name, "", "");
    if (cfg->access_log[0]) {
        lv->log = px_access_log_open(cfg->access_log, err->message, sizeof(err->message));
        if (!lv->log) {
            snprintf(err->path, sizeof(err->path), "listeners[%u].access_log", i);
            return -1;
        }
    }
    lv->routes = rt_xcalloc(cfg->routes_count ? cfg->routes_count : 1, sizeof(*lv->routes));
    for (unsigned j = 0; j < cfg->routes_count; j++) {
        lv->nroutes++;
        if (build_route(srv, s, prev, cfg, &lv->routes[j], &cfg->routes[j], err->message,
                        sizeof(err->message)) != 0) {
            snprintf(err->path, sizeof(err->path), "listeners[%u].routes[%u]", i, j);
            return -1;
        }
    }
    return 0;
}

px_snapshot_t *px_snapshot_build(px_server_t *srv, cfg_config_t *cfg, char *yaml, size_t yaml_len,
                                 const px_snapshot_t *prev, px_listener_t *const *listeners,
                                 px_build_error_t *err)
{
    px_snapshot_t *s = rt_xcalloc(1, sizeof(*s));
    atomic_fetch_add(&live_snapshots, 1);
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->yaml = yaml;
    s->yaml_len = yaml_len;
    if (cfg->admin.token_file[0]) {
        s->admin_token =
            px_admin_read_token(cfg->admin.token_file, err->message, sizeof(err->message));
        if (!s->admin_token) {
            snprintf(err->path, sizeof(err->path), "admin.token_file");
            goto fail;
        }
    }
    s->clusters = rt_xcalloc(cfg->clusters_count ? cfg->clusters_count : 1, sizeof(*s->clusters));
    for (unsigned i = 0; i < cfg->clusters_count; i++) {
        const cfg_cluster_t *c = &cfg->clusters[i];
        px_cluster_t *old = prev ? find_cluster(prev->clusters, prev->nclusters, c->name) : NULL;
        if (old && cfg_cluster_equal(old->cfg, c)) {
            px_cluster_use(old);
            s->clusters[s->nclusters++] = old;
            continue;
        }
        px_cluster_t *cl = px_cluster_open(c, cfg, err->message, sizeof(err->message));
        if (!cl) {
            snprintf(err->path, sizeof(err->path), "clusters[%u].endpoints", i);
            goto fail;
        }
        s->clusters[s->nclusters++] = cl;
    }
    s->views = rt_xcalloc(cfg->listeners_count ? cfg->listeners_count : 1, sizeof(*s->views));
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        s->nviews++;
        if (build_view(srv, s, prev, i, listeners[i], err) != 0) {
            goto fail;
        }
    }
    return s;
fail:
    s->yaml = NULL; /* the caller still owns cfg and yaml on failure */
    s->cfg = NULL;
    snapshot_free(s);
    return NULL;
}
