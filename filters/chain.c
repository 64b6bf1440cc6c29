/* SPDX-License-Identifier: MIT */
/*
 * chain.c - a route's filter chain: built once per config from the route's
 * `filters:` list, run by the proxy on every request.
 *
 * Order: on_request runs first to last and stops at the first FLT_REPLY;
 * on_response and on_complete run only for the filters whose on_request ran,
 * last to first (the nesting Envoy's decoder/encoder filters have), so a
 * filter that admitted a request always hears how it ended.
 *
 * Reloads: a filter's state (token buckets, breaker windows) lives in a
 * refcounted instance. A chain built for a new config takes over the
 * instance of the previous chain's filter with the same kind and position
 * among filters of that kind when its rule is unchanged (cfg_filter_equal),
 * so a reload that leaves a rule alone leaves its state alone; both chains
 * share the instance while requests of the old config finish.
 */
#include <stdio.h>
#include <stdlib.h>

#include "filters/filter.h"

/* One filter's state, shared by the chains of successive configs while its rule is unchanged. */
typedef struct flt_instance {
    _Atomic int refs;
    const flt_ops_t *ops;
    void *state;
} flt_instance_t;

struct flt_chain {
    unsigned count, carried;

    struct chain_link {
        const flt_ops_t *ops; /* copies of inst's, read on every request */
        void *state;
        flt_instance_t *inst;
        const cfg_filter_t *cfg; /* the rule, in the config this chain was built from */
        unsigned ordinal;        /* position among the route's filters of the same kind */
    } links[];
};

const char *flt_outcome_name(flt_outcome_t outcome)
{
    static const char *const names[] = {
        [FLT_OUTCOME_OK] = "ok",
        [FLT_OUTCOME_5XX] = "5xx",
        [FLT_OUTCOME_CONNECT_FAILURE] = "connect_failure",
        [FLT_OUTCOME_TIMEOUT] = "timeout",
        [FLT_OUTCOME_RESET] = "reset",
        [FLT_OUTCOME_OVERLOADED] = "overloaded",
        [FLT_OUTCOME_LOCAL] = "local",
    };
    if ((unsigned)outcome >= RT_ARRAY_LEN(names)) {
        return "unknown";
    }
    return names[outcome];
}

static void instance_unref(flt_instance_t *inst)
{
    if (atomic_fetch_sub(&inst->refs, 1) != 1) {
        return;
    }
    if (inst->ops->destroy) {
        inst->ops->destroy(inst->state);
    }
    free(inst);
}

/* The instance of `prev` holding the same kind, ordinal and rule, or NULL. */
static flt_instance_t *carried_instance(const flt_chain_t *prev, const cfg_filter_t *cfg,
                                        unsigned ordinal)
{
    for (unsigned i = 0; prev && i < prev->count; i++) {
        const struct chain_link *link = &prev->links[i];
        if (link->cfg->kind == cfg->kind && link->ordinal == ordinal &&
            cfg_filter_equal(link->cfg, cfg)) {
            atomic_fetch_add(&link->inst->refs, 1);
            return link->inst;
        }
    }
    return NULL;
}

int flt_chain_new(const cfg_route_t *route, const flt_chain_t *prev, flt_chain_t **out, char *err,
                  size_t errlen)
{
    flt_chain_t *chain =
        rt_xcalloc(1, sizeof(*chain) + route->filters_count * sizeof(chain->links[0]));
    for (unsigned i = 0; i < route->filters_count; i++) {
        const cfg_filter_t *cfg = &route->filters[i];
        unsigned ordinal = 0;
        for (unsigned j = 0; j < i; j++) {
            ordinal += route->filters[j].kind == cfg->kind;
        }
        flt_instance_t *inst = carried_instance(prev, cfg, ordinal);
        if (inst) {
            chain->carried++;
        } else {
            const flt_ops_t *ops = flt_lookup(cfg->kind);
            if (!ops) {
                snprintf(err, errlen, "route %s: filter %u is not built into this remora",
                         route->name, i);
                goto fail;
            }
            void *state = NULL;
            if (ops->create && ops->create(cfg, route, &state, err, errlen) != 0) {
                goto fail;
            }
            inst = rt_xcalloc(1, sizeof(*inst));
            atomic_init(&inst->refs, 1);
            inst->ops = ops;
            inst->state = state;
        }
        chain->links[chain->count++] = (struct chain_link){
            .ops = inst->ops, .state = inst->state, .inst = inst, .cfg = cfg, .ordinal = ordinal};
    }
    *out = chain;
    return 0;
fail:
    flt_chain_free(chain);
    return -1;
}

unsigned flt_chain_carried(const flt_chain_t *chain)
{
    return chain->carried;
}

void flt_chain_free(flt_chain_t *chain)
{
    if (!chain) {
        return;
    }
    for (unsigned i = 0; i < chain->count; i++) {
        instance_unref(chain->links[i].inst);
    }
    free(chain);
}

flt_verdict_t flt_chain_on_request(flt_chain_t *chain, flt_ctx_t *ctx, flt_reply_t *reply,
                                   unsigned *ran)
{
    *ran = 0;
    for (unsigned i = 0; i < chain->count; i++) {
        const struct chain_link *link = &chain->links[i];
        *ran = i + 1;
        if (link->ops->on_request && link->ops->on_request(link->state, ctx, reply) == FLT_REPLY) {
            return FLT_REPLY;
        }
    }
    return FLT_CONTINUE;
}

void flt_chain_on_response(flt_chain_t *chain, flt_ctx_t *ctx, int status, unsigned ran)
{
    for (unsigned i = ran; i-- > 0;) {
        const struct chain_link *link = &chain->links[i];
        if (link->ops->on_response) {
            link->ops->on_response(link->state, ctx, status);
        }
    }
}

void flt_chain_on_complete(flt_chain_t *chain, flt_ctx_t *ctx, const flt_complete_t *done,
                           unsigned ran)
{
    for (unsigned i = ran; i-- > 0;) {
        const struct chain_link *link = &chain->links[i];
        if (link->ops->on_complete) {
            link->ops->on_complete(link->state, ctx, done);
        }
    }
}
