/* SPDX-License-Identifier: MIT */
/*
 * admin_config.c - the admin endpoints that change the running config:
 *   PUT  /config                 the body is the new YAML
 *   POST /reload                 re-read the -c file
 *   PUT  /routes/NAME/weights    {"stable": 90, "canary": 10} by backend name
 *   POST /routes/NAME/rollback   all of the canary's weight to its baseline
 *   POST /routes/NAME/promote    all of the baseline's weight to the canary
 * and GET /routes/NAME/canary, which reports the canary's rule and weights.
 *
 * Each change is a reload (px_server_reload), so it is validated like any
 * config, serialised with every other change, and published atomically.
 * Weight changes edit the weight scalars of the running YAML in place
 * (cfg_set_weights), so GET /config shows them and a later PUT of that text
 * keeps them; POST /reload goes back to the file.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/admin.h"

#define MAX_WEIGHTS 64

/* {"backend": weight, ...} over every backend of `r`. */
static void put_weights(px_sb_t *sb, const px_route_t *r)
{
    px_sb_printf(sb, "{");
    for (unsigned i = 0; i < r->nbackends; i++) {
        px_sb_printf(sb, i ? "," : "");
        px_sb_json_string(sb, r->backends[i].name);
        px_sb_printf(sb, ":%u", r->backends[i].weight);
    }
    px_sb_printf(sb, "}");
}

/*
 * Answers a reload: 200 {"generation": N} (with the route's weights when
 * `route` is set), or its status with {"error": ..., "problems": [...]}.
 */
static void reply_reload(px_server_t *srv, const px_reload_t *res, const char *route,
                         admin_reply_t *out)
{
    px_sb_t sb = {0};
    if (res->status != 200) {
        px_sb_printf(&sb, "{\"error\":");
        px_sb_json_string(&sb, res->message);
        px_sb_printf(&sb, ",\"problems\":[");
        for (size_t i = 0; i < res->errs.count; i++) {
            const cfg_error_t *e = &res->errs.items[i];
            px_sb_printf(&sb, "%s{\"path\":", i ? "," : "");
            px_sb_json_string(&sb, e->path);
            px_sb_printf(&sb, ",\"line\":%u,\"column\":%u,\"message\":", e->line, e->column);
            px_sb_json_string(&sb, e->message);
            px_sb_printf(&sb, "}");
        }
        px_sb_printf(&sb, "]}\n");
        px_admin_json(out, res->status, &sb);
        return;
    }
    px_sb_printf(&sb, "{\"generation\":%llu", (unsigned long long)res->generation);
    if (route) {
        px_hold_t hold;
        const px_route_t *r = px_snapshot_route(px_snapshot_hold(srv, &hold), route);
        if (r) {
            px_sb_printf(&sb, ",\"route\":");
            px_sb_json_string(&sb, route);
            px_sb_printf(&sb, ",\"weights\":");
            put_weights(&sb, r);
        }
        px_snapshot_drop(&hold);
    }
    px_sb_printf(&sb, "}\n");
    px_admin_json(out, 200, &sb);
}

void px_admin_put_config(const admin_req_t *rq, admin_reply_t *out)
{
    px_reload_t res;
    px_server_reload_text(rq->srv, rq->body, rq->body_len, &res);
    reply_reload(rq->srv, &res, NULL, out);
    cfg_errors_destroy(&res.errs);
}

void px_admin_reload(const admin_req_t *rq, admin_reply_t *out)
{
    px_reload_t res;
    px_server_reload_file(rq->srv, "POST /reload", &res);
    reply_reload(rq->srv, &res, NULL, out);
    cfg_errors_destroy(&res.errs);
}

/* ---- weights ---- */

typedef enum weights_op { WEIGHTS_SET, WEIGHTS_ROLLBACK, WEIGHTS_PROMOTE } weights_op_t;

typedef struct weights_edit {
    const char *route;
    weights_op_t op;
    const px_json_weight_t *set; /* WEIGHTS_SET */
    int nset;
} weights_edit_t;

/* The canary's and the baseline's new weights: all of both to one of them. */
static int canary_weights(const px_route_t *r, weights_op_t op, cfg_weight_t *w, px_reload_t *res)
{
    const cfg_canary_t *c = r->cfg->canary;
    if (!c) {
        res->status = 404;
        snprintf(res->message, sizeof(res->message), "route %s has no canary", r->cfg->name);
        return -1;
    }
    const px_backend_t *canary = px_route_backend(r, c->backend);
    const px_backend_t *baseline = px_route_backend(r, c->baseline);
    uint64_t sum = (uint64_t)canary->weight + baseline->weight;
    uint32_t both = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
    w[0] = (cfg_weight_t){canary->name, op == WEIGHTS_PROMOTE ? both : 0};
    w[1] = (cfg_weight_t){baseline->name, op == WEIGHTS_PROMOTE ? 0 : both};
    return 0;
}

static int edit_weights(const px_snapshot_t *cur, void *arg, char **yaml, size_t *len,
                        px_reload_t *res)
{
    const weights_edit_t *e = arg;
    const px_route_t *r = px_snapshot_route(cur, e->route);
    if (!r) {
        res->status = 404;
        snprintf(res->message, sizeof(res->message), "unknown route %s", e->route);
        return -1;
    }
    cfg_weight_t w[MAX_WEIGHTS];
    size_t n = 2;
    if (e->op == WEIGHTS_SET) {
        n = (size_t)e->nset;
        for (size_t i = 0; i < n; i++) {
            w[i] = (cfg_weight_t){e->set[i].name, e->set[i].value};
        }
    } else if (canary_weights(r, e->op, w, res) != 0) {
        return -1;
    }
    rt_blocking_enter(); /* a big YAML takes milliseconds: let the P run other Gs */
    int rc = cfg_set_weights(cur->yaml, cur->yaml_len, e->route, w, n, yaml, len, &res->errs);
    rt_blocking_leave();
    if (rc != 0) {
        res->status = 400;
        snprintf(res->message, sizeof(res->message), "cannot set the weights of route %s",
                 e->route);
        return -1;
    }
    return 0;
}

static void change_weights(const admin_req_t *rq, weights_edit_t *e, const char *origin,
                           admin_reply_t *out)
{
    e->route = rq->name;
    char what[192];
    snprintf(what, sizeof(what), "%s %s", origin, rq->name);
    px_reload_t res;
    px_server_reload(rq->srv, edit_weights, e, what, &res);
    reply_reload(rq->srv, &res, rq->name, out);
    cfg_errors_destroy(&res.errs);
}

void px_admin_put_weights(const admin_req_t *rq, admin_reply_t *out)
{
    px_json_weight_t set[MAX_WEIGHTS];
    char err[160];
    int n = px_json_parse_weights(rq->body, rq->body_len, set, MAX_WEIGHTS, err, sizeof(err));
    if (n < 0) {
        px_admin_error(out, 400, err);
        return;
    }
    weights_edit_t e = {.op = WEIGHTS_SET, .set = set, .nset = n};
    change_weights(rq, &e, "PUT weights", out);
}

void px_admin_rollback(const admin_req_t *rq, admin_reply_t *out)
{
    weights_edit_t e = {.op = WEIGHTS_ROLLBACK};
    change_weights(rq, &e, "rollback", out);
}

void px_admin_promote(const admin_req_t *rq, admin_reply_t *out)
{
    weights_edit_t e = {.op = WEIGHTS_PROMOTE};
    change_weights(rq, &e, "promote", out);
}

/* rolled_back: the canary gets nothing; promoted: the baseline gets nothing. */
static const char *canary_state(const px_route_t *r)
{
    const px_backend_t *canary = px_route_backend(r, r->cfg->canary->backend);
    const px_backend_t *baseline = px_route_backend(r, r->cfg->canary->baseline);
    if (canary->weight == 0) {
        return "rolled_back";
    }
    return baseline->weight == 0 ? "promoted" : "progressing";
}

void px_admin_get_canary(const admin_req_t *rq, admin_reply_t *out)
{
    const px_route_t *r = px_snapshot_route(rq->snap, rq->name);
    if (!r || !r->cfg->canary) {
        px_admin_error(out, 404, r ? "route has no canary" : "unknown route");
        return;
    }
    const cfg_canary_t *c = r->cfg->canary;
    px_sb_t sb = {0};
    px_sb_printf(&sb, "{\"route\":");
    px_sb_json_string(&sb, r->cfg->name);
    px_sb_printf(&sb, ",\"backend\":");
    px_sb_json_string(&sb, c->backend);
    px_sb_printf(&sb, ",\"baseline\":");
    px_sb_json_string(&sb, c->baseline);
    px_sb_printf(&sb, ",\"state\":\"%s\",\"weights\":", canary_state(r));
    put_weights(&sb, r);
    px_sb_printf(&sb,
                 ",\"generation\":%llu,\"rule\":{\"window_ms\":%lld,\"min_requests\":%llu,"
                 "\"max_p99_increase_ms\":%lld,\"max_error_rate\":%g,\"promote\":",
                 (unsigned long long)rq->snap->generation, (long long)(c->window / RT_MSEC),
                 (unsigned long long)c->min_requests, (long long)(c->max_p99_increase / RT_MSEC),
                 c->max_error_rate);
    if (c->promote) {
        px_sb_printf(&sb, "{\"step\":%u,\"interval_ms\":%lld}", c->promote->step,
                     (long long)(c->promote->interval / RT_MSEC));
    } else {
        px_sb_printf(&sb, "null");
    }
    px_sb_printf(&sb, "}}\n");
    px_admin_json(out, 200, &sb);
}
