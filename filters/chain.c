/* SPDX-License-Identifier: MIT */
/*
 * chain.c - a route's filter chain: built once per config from the route's
 * `filters:` list, run by the proxy on every request.
 *
 * Order: on_request runs first to last and stops at the first FLT_REPLY;
 * on_response and on_complete run only for the filters whose on_request ran,
 * last to first (the nesting Envoy's decoder/encoder filters have), so a
 * filter that admitted a request always hears how it ended.
 */
#include <stdio.h>
#include <stdlib.h>

#include "filters/filter.h"

struct flt_chain {
    unsigned count;

    struct chain_link {
        const flt_ops_t *ops;
        void *state;
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

int flt_chain_new(const cfg_route_t *route, flt_chain_t **out, char *err, size_t errlen)
{
    flt_chain_t *chain =
        rt_xcalloc(1, sizeof(*chain) + route->filters_count * sizeof(chain->links[0]));
    for (unsigned i = 0; i < route->filters_count; i++) {
        const cfg_filter_t *cfg = &route->filters[i];
        const flt_ops_t *ops = flt_lookup(cfg->kind);
        if (!ops) {
            snprintf(err, errlen, "route %s: filter %u is not built into this remora", route->name,
                     i);
            goto fail;
        }
        void *state = NULL;
        if (ops->create && ops->create(cfg, route, &state, err, errlen) != 0) {
            goto fail;
        }
        chain->links[chain->count].ops = ops;
        chain->links[chain->count].state = state;
        chain->count++;
    }
    *out = chain;
    return 0;
fail:
    flt_chain_free(chain);
    return -1;
}

void flt_chain_free(flt_chain_t *chain)
{
    if (!chain) {
        return;
    }
    for (unsigned i = 0; i < chain->count; i++) {
        if (chain->links[i].ops->destroy) {
            chain->links[i].ops->destroy(chain->links[i].state);
        }
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
