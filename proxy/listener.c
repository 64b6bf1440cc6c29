/* SPDX-License-Identifier: MIT */
/*
 * listener.c - listening sockets and the graceful drain.
 *
 * A listener is identified by its address and lives across reloads while
 * some config has that address: a reload that keeps it keeps the socket
 * (no connection in the kernel's backlog is lost); one that drops it stops
 * accepting, while the connections it accepted go on. One accept G per
 * listener.
 *
 * A listener admits at most max_connections connections (of the current
 * config): the accept G waits for room before each accept, and a
 * connection closing while the listener is full wakes it through `room`, so
 * connections beyond the limit wait in the kernel's backlog while the
 * admitted ones keep working. A counter rather than a channel of tokens, so
 * a reload can change the limit.
 *
 * Drain (SIGTERM, POST /drain): stop accepting (listening sockets closed),
 * report not-ready, let requests in flight finish - kept-alive connections
 * answer their next request with "Connection: close" - and exit 0 once none
 * is left or drain_timeout has passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/proxy.h"

px_listener_t *px_listener_open(px_server_t *srv, const cfg_listener_t *cfg, char *err,
                                size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    rt_netfd_t *nfd = NULL;
    int rc = rt_sockaddr_parse(cfg->address, &ss, &len);
    if (rc == RT_OK) {
        rc = rt_listen((const struct sockaddr *)&ss, len, 4096, &nfd);
    }
    if (rc != RT_OK) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->address, rt_strerror(rc));
        return NULL;
    }
    px_listener_t *l = rt_xcalloc(1, sizeof(*l));
    l->srv = srv;
    snprintf(l->address, sizeof(l->address), "%s", cfg->address);
    snprintf(l->name, sizeof(l->name), "%s", cfg->name);
    l->nfd = nfd;
    atomic_init(&l->refs, 1);
    atomic_init(&l->max_conns, cfg->max_connections);
    l->room = rt_chan_new(1, 1);
    return l;
}

void px_listener_unref(px_listener_t *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1) {
        return;
    }
    px_snapshot_unref(atomic_load(&l->last));
    rt_chan_free(l->room);
    free(l);
}

/* Waits until the listener may admit one more connection. False once it stops. */
static bool wait_for_room(px_listener_t *l)
{
    while (atomic_load(&l->conns) >= (int64_t)atomic_load(&l->max_conns)) {
        if (atomic_load(&l->closing)) {
            return false;
        }
        char token;
        /* Bounded: a limit raised by a reload sends no wake-up. */
        (void)rt_chan_recv(l->room, &token, rt_deadline_in(100 * RT_MSEC));
    }
    return !atomic_load(&l->closing);
}

/*
 * The accept G owns the socket and is the one to close it: a socket closed
 * under a G about to accept could be recycled for another one. Stopping
 * shuts the socket down, which wakes the accept (the netpoller keeps a
 * readiness that comes before the wait), so the accept needs no deadline
 * and an idle listener costs no wake-ups. `stop_mu` keeps the close after
 * the shutdown, which must never reach a recycled descriptor number.
 */
static void accept_loop(void *arg)
{
    px_listener_t *l = arg;
    while (wait_for_room(l)) {
        rt_netfd_t *nfd;
        struct sockaddr_storage peer;
        int rc = rt_accept(l->nfd, &nfd, &peer, RT_FOREVER);
        if (rc == RT_OK) {
            atomic_fetch_add(&l->conns, 1);
            atomic_fetch_add(&l->refs, 1);
            px_conn_serve(l, nfd, &peer);
            continue;
        }
        if (atomic_load(&l->closing)) {
            break;
        }
        /* EMFILE and friends: back off instead of spinning on the error. */
        rt_log(RT_LOG_WARN, "listener %s: accept: %s", l->name, rt_strerror(rc));
        rt_sleep(10 * RT_MSEC);
    }
    rt_mutex_lock(&l->stop_mu);
    rt_netfd_close(l->nfd);
    l->nfd = NULL;
    rt_mutex_unlock(&l->stop_mu);
    px_listener_unref(l);
}

void px_listener_start(px_listener_t *l)
{
    atomic_fetch_add(&l->refs, 1);
    int rc = rt_go(accept_loop, l);
    RT_CHECK(rc == RT_OK, "cannot start an accept loop");
    rt_log(RT_LOG_INFO, "listener %s on %s", l->name, l->address);
}

void px_listener_discard(px_listener_t *l)
{
    rt_netfd_close(l->nfd);
    px_listener_unref(l);
}

void px_listener_stop(px_listener_t *l)
{
    rt_mutex_lock(&l->stop_mu);
    if (!atomic_exchange(&l->closing, true) && l->nfd) {
        shutdown(rt_netfd_fd(l->nfd), SHUT_RDWR);
    }
    rt_mutex_unlock(&l->stop_mu);
}

void px_listener_conn_closed(px_listener_t *l)
{
    int64_t before = atomic_fetch_sub(&l->conns, 1);
    if (before >= (int64_t)atomic_load(&l->max_conns)) {
        char token = 0;
        (void)rt_chan_send(l->room, &token, RT_NOWAIT); /* a wake-up already queued will do */
    }
    px_listener_unref(l);
}

static void drain_main(void *arg)
{
    px_server_t *srv = arg;
    rt_log(RT_LOG_INFO, "draining: no new connections; finishing requests in flight");
    rt_mutex_lock(&srv->reload_mu); /* a reload in progress finishes first; none starts after */
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        px_listener_stop(srv->listeners[i]);
    }
    rt_mutex_unlock(&srv->reload_mu);
    px_hold_t hold;
    rt_time_t deadline = rt_deadline_in(px_snapshot_hold(srv, &hold)->cfg->drain_timeout);
    px_snapshot_drop(&hold);
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
