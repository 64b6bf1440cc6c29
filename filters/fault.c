/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the fault filter (Envoy's fault injection): delays a share of
 * requests by parking their G, and aborts a share with a chosen status, for
 * drills and demos. Each request draws its own random numbers.
 */
#include <stdlib.h>

#include "filters/filter.h"

typedef struct fault_state {
    uint64_t delay_threshold; /* a draw below it delays (share * 2^32) */
    uint64_t abort_threshold;
    int64_t delay;
    int abort_status;
} fault_state_t;

static uint64_t share_to_threshold(double share)
{
    if (share <= 0) {
        return 0;
    }
    if (share >= 1) {
        return UINT64_C(1) << 32;
    }
    return (uint64_t)(share * 4294967296.0);
}

static int fault_create(const cfg_filter_t *cfg, const cfg_route_t *route, void **state, char *err,
                        size_t errlen)
{
    (void)route, (void)err, (void)errlen;
    const cfg_fault_t *f = cfg->fault;
    fault_state_t *st = rt_xcalloc(1, sizeof(*st));
    st->delay_threshold = share_to_threshold(f->delay_percent);
    st->abort_threshold = share_to_threshold(f->abort_percent);
    st->delay = f->delay_duration;
    st->abort_status = (int)f->abort_status;
    *state = st;
    return 0;
}

static bool draw(uint64_t threshold)
{
    return threshold != 0 && (rt_fastrand() & 0xffffffffu) < threshold;
}

static flt_verdict_t fault_on_request(void *state, flt_ctx_t *ctx, flt_reply_t *reply)
{
    (void)ctx;
    const fault_state_t *st = state;
    if (st->delay > 0 && draw(st->delay_threshold)) {
        rt_sleep(st->delay);
    }
    if (draw(st->abort_threshold)) {
        reply->status = st->abort_status;
        reply->reason = "fault_abort";
        return FLT_REPLY;
    }
    return FLT_CONTINUE;
}

static void fault_destroy(void *state)
{
    free(state);
}

const flt_ops_t flt_fault_ops = {
    .name = "fault",
    .kind = CFG_FILTER_FAULT,
    .create = fault_create,
    .on_request = fault_on_request,
    .destroy = fault_destroy,
};
