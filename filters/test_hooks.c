/* SPDX-License-Identifier: MIT */
/*
 * test_hooks.c - a test-only filter (built with REMORA_TEST_FILTERS) that
 * makes the chain's seam observable from outside: it marks the upstream
 * request and the client response with a header, numbers the requests its
 * state has seen in "<header>-seq" (which shows whether a reload kept the
 * state), and appends one line per completed request (route, backend,
 * status, outcome, latency) to a file.
 */
#ifdef REMORA_TEST_FILTERS

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filters/filter.h"

typedef struct hooks_state {
    char *header;
    char *seq_header; /* "<header>-seq": how many requests this state has seen */
    _Atomic uint64_t seq;
    int log_fd; /* -1 = no log */
} hooks_state_t;

static void hooks_destroy(void *state)
{
    hooks_state_t *st = state;
    if (st->log_fd >= 0) {
        close(st->log_fd);
    }
    free(st->header);
    free(st->seq_header);
    free(st);
}

static int hooks_create(const cfg_filter_t *cfg, const cfg_route_t *route, void **state, char *err,
                        size_t errlen)
{
    (void)route;
    const cfg_test_hooks_t *h = cfg->test_hooks;
    hooks_state_t *st = rt_xcalloc(1, sizeof(*st));
    st->header = rt_xstrdup(h->header[0] ? h->header : "x-test-hooks");
    size_t n = strlen(st->header) + sizeof("-seq");
    st->seq_header = rt_xmalloc(n);
    snprintf(st->seq_header, n, "%s-seq", st->header);
    st->log_fd = -1;
    if (h->log[0]) {
        st->log_fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (st->log_fd < 0) {
            snprintf(err, errlen, "test_hooks: cannot open %s: %s", h->log, strerror(rt_errno()));
            hooks_destroy(st);
            return -1;
        }
    }
    *state = st;
    return 0;
}

static flt_verdict_t hooks_on_request(void *state, flt_ctx_t *ctx, flt_reply_t *reply)
{
    (void)reply;
    hooks_state_t *st = state;
    ctx->host->add_request_header(ctx, st->header, "on_request");
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)(atomic_fetch_add(&st->seq, 1) + 1));
    ctx->host->add_response_header(ctx, st->seq_header, seq);
    return FLT_CONTINUE;
}

static void hooks_on_response(void *state, flt_ctx_t *ctx, int status)
{
    (void)status;
    hooks_state_t *st = state;
    ctx->host->add_response_header(ctx, st->header, "on_response");
}

static void hooks_on_complete(void *state, flt_ctx_t *ctx, const flt_complete_t *done)
{
    hooks_state_t *st = state;
    if (st->log_fd < 0) {
        return;
    }
    char line[512];
    int n =
        snprintf(line, sizeof(line), "route=%s backend=%s status=%d outcome=%s latency_us=%lld\n",
                 ctx->route, done->backend, done->status, flt_outcome_name(done->outcome),
                 (long long)(done->latency_ns / RT_USEC));
    if (n > 0) {
        /* One write per line: O_APPEND keeps concurrent lines whole. */
        ssize_t w = write(st->log_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
        (void)w;
    }
}

const flt_ops_t flt_test_hooks_ops = {
    .name = "test_hooks",
    .kind = CFG_FILTER_TEST_HOOKS,
    .create = hooks_create,
    .on_request = hooks_on_request,
    .on_response = hooks_on_response,
    .on_complete = hooks_on_complete,
    .destroy = hooks_destroy,
};

#else
typedef int flt_test_hooks_not_built;
#endif /* REMORA_TEST_FILTERS */
