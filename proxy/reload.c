/* SPDX-License-Identifier: MIT */
/*
 * reload.c - making a config live, at start and on every reload (PUT
 * /config, POST /reload, SIGHUP, --watch, the route endpoints).
 *
 * One reload at a time (reload_mu), in three steps:
 *   1. make the text (an edit function) and load it: a config with problems
 *      is rejected with every problem, and nothing changes;
 *   2. build the snapshot: listeners found by address or bound now (a new
 *      address is listening before anything switches), clusters and filter
 *      state carried over where unchanged; a failure undoes what it opened;
 *   3. commit: listeners the new config drops keep a reference to the old
 *      snapshot for their remaining connections; the new snapshot is
 *      published with one atomic store; then new listeners start accepting
 *      and dropped ones stop (their established connections go on).
 * Requests that started before the store finish on the old snapshot; those
 * that start after it see the new one. Nothing closes a connection.
 *
 * Not reloadable (they take effect at restart, and a reload changing them
 * says so in the log): runtime.procs and admin.address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

static px_listener_t *find_listener(px_server_t *srv, const char *address)
{
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        if (strcmp(srv->listeners[i]->address, address) == 0) {
            return srv->listeners[i];
        }
    }
    return NULL;
}

static bool in_list(px_listener_t *const *list, unsigned n, const px_listener_t *l)
{
    for (unsigned i = 0; i < n; i++) {
        if (list[i] == l) {
            return true;
        }
    }
    return false;
}

/*
 * Fills `ls` with the listener of each of cfg's addresses: the running one,
 * or a new bound socket (`fresh`). On failure closes the new ones. 0 or -1.
 */
static int open_listeners(px_server_t *srv, const cfg_config_t *cfg, px_listener_t **ls,
                          bool *fresh, px_build_error_t *err)
{
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        const cfg_listener_t *lc = &cfg->listeners[i];
        ls[i] = find_listener(srv, lc->address);
        fresh[i] = !ls[i];
        if (ls[i]) {
            continue;
        }
        ls[i] = px_listener_open(srv, lc, err->message, sizeof(err->message));
        if (!ls[i]) {
            snprintf(err->path, sizeof(err->path), "listeners[%u].address", i);
            for (unsigned j = 0; j < i; j++) {
                if (fresh[j]) {
                    px_listener_discard(ls[j]);
                }
            }
            return -1;
        }
    }
    return 0;
}

static void release_snapshot(void *ptr)
{
    px_snapshot_unref(ptr);
}

/* Step 3: publishes `snap`, whose listeners are `ls`, replacing `prev` (NULL at start). */
static void commit(px_server_t *srv, px_snapshot_t *snap, px_snapshot_t *prev, px_listener_t **ls,
                   const bool *fresh)
{
    const cfg_config_t *cfg = snap->cfg;
    px_listener_t **dropped = rt_xcalloc(srv->nlisteners + 1, sizeof(*dropped));
    unsigned ndropped = 0;
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        px_listener_t *l = srv->listeners[i];
        if (!in_list(ls, cfg->listeners_count, l)) {
            px_snapshot_ref(prev);
            atomic_store(&l->last, prev); /* before the store: no request finds it missing */
            dropped[ndropped++] = l;
        }
    }
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        atomic_store(&ls[i]->max_conns, cfg->listeners[i].max_connections);
    }

    if (prev) {
        rt_value_store(&srv->current, snap);
    } else {
        rt_value_init(&srv->current, snap, release_snapshot);
    }

    for (unsigned i = 0; i < snap->nclusters; i++) {
        px_cluster_start(snap->clusters[i]);
    }
    for (unsigned i = 0; i < cfg->listeners_count; i++) {
        if (fresh[i]) {
            px_listener_start(ls[i]);
        }
    }
    for (unsigned i = 0; i < ndropped; i++) {
        rt_log(RT_LOG_INFO, "listener %s on %s: removed; its connections go on", dropped[i]->name,
               dropped[i]->address);
        px_listener_stop(dropped[i]);
        px_listener_unref(dropped[i]);
    }
    free(dropped);
    free(srv->listeners);
    srv->listeners = rt_xcalloc(cfg->listeners_count + 1, sizeof(*srv->listeners));
    memcpy(srv->listeners, ls, cfg->listeners_count * sizeof(*ls));
    srv->nlisteners = cfg->listeners_count;
}

static void warn_restart_only(const cfg_config_t *old, const cfg_config_t *cfg)
{
    if (old->runtime.procs != cfg->runtime.procs) {
        rt_log(RT_LOG_WARN, "runtime.procs changed: takes effect at restart");
    }
    if (strcmp(old->admin.address, cfg->admin.address) != 0) {
        rt_log(RT_LOG_WARN, "admin.address changed: takes effect at restart");
    }
}

/*
 * Steps 2 and 3 for a loaded config. Takes `cfg` and `yaml` on success (the
 * caller keeps them on failure). `prev` is held by the caller (NULL at
 * start). 0, or -1 with `err`.
 */
static int make_live(px_server_t *srv, cfg_config_t *cfg, char *yaml, size_t len,
                     px_snapshot_t *prev, px_build_error_t *err)
{
    unsigned n = cfg->listeners_count;
    px_listener_t **ls = rt_xcalloc(n + 1, sizeof(*ls));
    bool *fresh = rt_xcalloc(n + 1, sizeof(*fresh));
    px_snapshot_t *snap = NULL;
    if (open_listeners(srv, cfg, ls, fresh, err) == 0) {
        snap = px_snapshot_build(srv, cfg, yaml, len, prev, ls, err);
        if (!snap) {
            for (unsigned i = 0; i < n; i++) {
                if (fresh[i]) {
                    px_listener_discard(ls[i]);
                }
            }
        }
    }
    if (!snap) {
        free(ls);
        free(fresh);
        return -1;
    }
    snap->generation = prev ? prev->generation + 1 : 1;
    if (prev) {
        warn_restart_only(prev->cfg, cfg);
    }
    commit(srv, snap, prev, ls, fresh);
    free(ls);
    free(fresh);
    return 0;
}

int px_server_open(px_server_t *srv, cfg_config_t *cfg, char *yaml, const char *path, char *err,
                   size_t errlen)
{
    memset(srv, 0, sizeof(*srv));
    srv->config_path = path;
    if (px_admin_open(srv, cfg, err, errlen) != 0) {
        cfg_config_free(cfg);
        free(yaml);
        return -1;
    }
    px_build_error_t berr = {.path = ""};
    rt_mutex_lock(&srv->reload_mu);
    int rc = make_live(srv, cfg, yaml, strlen(yaml), NULL, &berr);
    rt_mutex_unlock(&srv->reload_mu);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", berr.path, berr.message);
        cfg_config_free(cfg);
        free(yaml);
        return -1;
    }
    px_admin_start(srv);
    return 0;
}

static void finish(px_server_t *srv, const char *origin, px_reload_t *res)
{
    if (res->status == 200) {
        atomic_fetch_add(&srv->reloads_ok, 1);
        snprintf(res->message, sizeof(res->message), "applied generation %llu",
                 (unsigned long long)res->generation);
        rt_log(RT_LOG_INFO, "config reload (%s): generation %llu", origin,
               (unsigned long long)res->generation);
        return;
    }
    atomic_fetch_add(&srv->reloads_failed, 1);
    rt_log(RT_LOG_WARN, "config reload (%s) rejected: %s (%zu problem%s)", origin, res->message,
           res->errs.count, res->errs.count == 1 ? "" : "s");
    cfg_errors_print(&res->errs, origin, stderr);
}

/*
 * Loads like cfg_load_data, with the P handed to another M meanwhile: a big
 * config takes milliseconds to parse, and the Gs queued behind the reload
 * on its P should not wait for it. conf/ never calls into the runtime.
 */
static int load_off_p(const char *yaml, size_t len, cfg_config_t **out, cfg_errors_t *errs)
{
    rt_blocking_enter();
    int rc = cfg_load_data(yaml, len, out, errs);
    rt_blocking_leave();
    return rc;
}

void px_server_reload(px_server_t *srv, px_edit_fn *edit, void *arg, const char *origin,
                      px_reload_t *res)
{
    memset(res, 0, sizeof(*res));
    rt_mutex_lock(&srv->reload_mu);
    px_hold_t hold;
    px_snapshot_t *cur = px_snapshot_hold(srv, &hold);
    res->generation = cur->generation;
    char *yaml = NULL;
    size_t len = 0;
    cfg_config_t *cfg = NULL;
    if (atomic_load(&srv->draining)) {
        res->status = 503;
        snprintf(res->message, sizeof(res->message), "draining: no more reloads");
    } else if (edit(cur, arg, &yaml, &len, res) != 0) {
        /* the edit said why */
    } else if (load_off_p(yaml, len, &cfg, &res->errs) != 0) {
        res->status = 400;
        snprintf(res->message, sizeof(res->message), "invalid config");
        free(yaml);
    } else {
        px_build_error_t err = {.path = ""};
        if (make_live(srv, cfg, yaml, len, cur, &err) == 0) {
            res->status = 200;
            res->generation = cur->generation + 1;
        } else {
            res->status = 400;
            cfg_errors_add_at(&res->errs, yaml, len, err.path, err.message);
            snprintf(res->message, sizeof(res->message), "cannot apply: %.100s: %.120s", err.path,
                     err.message);
            cfg_config_free(cfg);
            free(yaml);
        }
    }
    px_snapshot_drop(&hold);
    finish(srv, origin, res);
    rt_mutex_unlock(&srv->reload_mu);
}

/* ---- the edits ---- */

typedef struct text_arg {
    const char *yaml;
    size_t len;
} text_arg_t;

static int edit_text(const px_snapshot_t *cur, void *arg, char **yaml, size_t *len,
                     px_reload_t *res)
{
    (void)cur, (void)res;
    const text_arg_t *t = arg;
    *yaml = rt_xmalloc(t->len + 1);
    memcpy(*yaml, t->yaml, t->len);
    (*yaml)[t->len] = '\0';
    *len = t->len;
    return 0;
}

void px_server_reload_text(px_server_t *srv, const char *yaml, size_t len, px_reload_t *res)
{
    text_arg_t t = {yaml, len};
    px_server_reload(srv, edit_text, &t, "PUT /config", res);
}

char *px_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = rt_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n == 1) {
            cap *= 2;
            buf = rt_xrealloc(buf, cap);
        }
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) {
        *len = n;
    }
    return buf;
}

static int edit_file(const px_snapshot_t *cur, void *arg, char **yaml, size_t *len,
                     px_reload_t *res)
{
    (void)cur;
    px_server_t *srv = arg;
    if (!srv->config_path) {
        res->status = 409;
        snprintf(res->message, sizeof(res->message),
                 "no config file: remora runs on the embedded default (start it with -c FILE)");
        return -1;
    }
    rt_blocking_enter();
    *yaml = px_read_file(srv->config_path, len);
    rt_blocking_leave();
    if (!*yaml) {
        cfg_config_t *unused = NULL;
        (void)cfg_load_file(srv->config_path, &unused, &res->errs); /* says why it is unreadable */
        cfg_config_free(unused);
        res->status = 400;
        snprintf(res->message, sizeof(res->message), "cannot read %s", srv->config_path);
        return -1;
    }
    return 0;
}

void px_server_reload_file(px_server_t *srv, const char *origin, px_reload_t *res)
{
    px_server_reload(srv, edit_file, srv, origin, res);
}
