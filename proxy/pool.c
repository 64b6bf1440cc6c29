/* SPDX-License-Identifier: MIT */
/*
 * pool.c - per-endpoint connection pools, where backpressure happens.
 *
 * Each endpoint has two channels of capacity max_connections:
 *   - `slots` holds one token per connection that may still be opened;
 *   - `idle` holds kept-alive connections, each of which owns a token.
 * So tokens in `slots` + connections in `idle` + connections in use always
 * equals max_connections, and neither channel can ever be full when a
 * connection or token is put back.
 *
 * Acquire prefers an idle connection, then a free slot, each tried with
 * RT_NOWAIT (select's default). When neither is ready the request either
 * fails fast (pending_timeout 0, or max_pending requests already waiting)
 * or waits, as a select over both channels with the pending deadline.
 *
 * An idle connection may have been closed by the upstream while parked. It
 * is never sent a request when the peer has closed it (or sent unexpected
 * bytes): if its last read emptied the socket and the netpoller has reported
 * nothing since, it is known quiet without a syscall; otherwise a
 * non-blocking MSG_PEEK tells.
 *
 * Rejected: a mutex-protected free list with a condition variable: it would
 * need its own fairness and timeout code, which channels and select already
 * give, and it would not show the fail-fast path as plainly.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "proxy/proxy.h"

/* True if an idle connection is still open and quiet (no EOF, no stray bytes). */
static bool idle_conn_usable(px_upconn_t *up)
{
    if (up->quiet && !rt_netfd_rd_event_pending(up->nfd)) {
        return true; /* nothing has arrived since a read that emptied the socket */
    }
    char byte;
    ssize_t n = recv(rt_netfd_fd(up->nfd), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
        int err = rt_errno();
        return err == EAGAIN || err == EWOULDBLOCK;
    }
    return false; /* 0: the peer closed; > 0: bytes nobody asked for */
}

static void upconn_close(px_upconn_t *up)
{
    rt_netfd_close(up->nfd);
    px_buf_destroy(&up->buf);
    px_endpoint_unref(up->ep);
    free(up);
}

static void give_back_slot(px_endpoint_t *ep)
{
    char token = 0;
    int rc = rt_chan_send(ep->slots, &token, RT_NOWAIT);
    RT_CHECK(rc == RT_OK, "endpoint slot channel overflow");
}

static px_acquire_t open_conn(px_endpoint_t *ep, px_upconn_t **out, int *connect_err)
{
    rt_netfd_t *nfd;
    int rc = rt_connect((const struct sockaddr *)&ep->addr, ep->addr_len, &nfd,
                        rt_deadline_in(ep->cluster->cfg->connect_timeout));
    if (rc != RT_OK) {
        give_back_slot(ep);
        atomic_fetch_add_explicit(&ep->cluster->connect_failures, 1, memory_order_relaxed);
        *connect_err = rc;
        return PX_ACQUIRE_CONNECT_FAILED;
    }
    px_upconn_t *up = rt_xcalloc(1, sizeof(*up));
    up->nfd = nfd;
    up->ep = ep;
    up->quiet = true;
    atomic_fetch_add(&ep->refs, 1);
    *out = up;
    return PX_ACQUIRE_OK;
}

/* Waits for an idle connection or a slot within the pending limits. May park. */
static int wait_for_capacity(px_endpoint_t *ep, bool fresh, rt_case_t *cases)
{
    px_cluster_t *cl = ep->cluster;
    const cfg_cluster_t *cfg = cl->cfg;
    if (cfg->pending_timeout <= 0) {
        return RT_EAGAIN;
    }
    if (atomic_fetch_add(&cl->pending, 1) >= (int64_t)cfg->max_pending) {
        atomic_fetch_sub(&cl->pending, 1);
        return RT_EAGAIN;
    }
    int idx =
        rt_select(fresh ? cases + 1 : cases, fresh ? 1 : 2, rt_deadline_in(cfg->pending_timeout));
    atomic_fetch_sub(&cl->pending, 1);
    return idx >= 0 && fresh ? idx + 1 : idx;
}

px_acquire_t px_pool_acquire(px_endpoint_t *ep, bool fresh, px_upconn_t **out, int *connect_err)
{
    px_upconn_t *up = NULL;
    char token;
    /* Prefer a kept-alive connection, then a new one; select's default fails fast. */
    if (!fresh && rt_chan_recv(ep->idle, &up, RT_NOWAIT) == RT_OK) {
        goto got_idle;
    }
    if (rt_chan_recv(ep->slots, &token, RT_NOWAIT) == RT_OK) {
        return open_conn(ep, out, connect_err);
    }
    rt_case_t cases[2] = {
        {.ch = ep->idle, .op = RT_CASE_RECV, .elem = &up},
        {.ch = ep->slots, .op = RT_CASE_RECV, .elem = &token},
    };
    int idx = wait_for_capacity(ep, fresh, cases);
    if (idx < 0) {
        return PX_ACQUIRE_OVERLOADED;
    }
    if (idx == 1) {
        return open_conn(ep, out, connect_err);
    }
got_idle:
    if (idle_conn_usable(up)) {
        up->uses++;
        *out = up;
        return PX_ACQUIRE_OK;
    }
    /* The upstream closed it while idle: its slot opens a new connection instead. */
    upconn_close(up);
    return open_conn(ep, out, connect_err);
}

void px_pool_release(px_upconn_t *up, bool reusable)
{
    px_endpoint_t *ep = up->ep;
    if (reusable && !atomic_load(&ep->retired) && px_buf_len(&up->buf) == 0) {
        /* An idle connection keeps no read buffer: 32 KiB per parked connection adds up. */
        up->quiet = up->buf.drained;
        px_buf_destroy(&up->buf);
        int rc = rt_chan_send(ep->idle, &up, RT_NOWAIT);
        RT_CHECK(rc == RT_OK, "endpoint idle channel overflow");
        if (atomic_load(&ep->retired)) {
            /* Retired while we parked it: take back whatever is idle now. */
            while (rt_chan_recv(ep->idle, &up, RT_NOWAIT) == RT_OK) {
                px_pool_release(up, false);
            }
        }
        return;
    }
    atomic_fetch_add(&ep->refs, 1); /* keep ep alive across upconn_close */
    upconn_close(up);
    give_back_slot(ep);
    px_endpoint_unref(ep);
}
