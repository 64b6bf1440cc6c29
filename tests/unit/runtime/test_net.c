/* SPDX-License-Identifier: MIT */
/*
 * test_net.c - suite "runtime/net": the netpoller and socket calls of
 * runtime/net.c and netpoll*.c on 127.0.0.1: parallel TCP echo, read
 * deadlines (and their lazy timers), refused connects, close waking waiters,
 * address parsing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "runtime/rt.h"
#include "tests/support/th.h"
#include "tests/unit/runtime/suites.h"

#define IO_WAIT_NS (20 * RT_SEC)

static int listen_loopback(rt_netfd_t **lnfd, struct sockaddr_storage *ss, socklen_t *len,
                           int backlog)
{
    th_loopback(ss, len, 0);
    int rc = rt_listen((struct sockaddr *)ss, *len, backlog, lnfd);
    if (rc != RT_OK) {
        return rc;
    }
    int port = rt_netfd_port(*lnfd);
    if (port <= 0) {
        return port < 0 ? port : RT_EINVAL;
    }
    th_loopback(ss, len, port);
    return RT_OK;
}

/* ---- parallel echo ---- */

#define ECHO_BYTES 16384

typedef struct echo {
    long nconn;
    rt_netfd_t *lnfd;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    rt_waitgroup_t servers, clients;
    int listen_rc;
    _Atomic long accepted, echoed_ok, server_errors, client_errors, bad_data, first_error;
    int clients_rc, servers_rc;
} echo_t;

static echo_t *echo_state;

static void echo_error(_Atomic long *counter, long err)
{
    atomic_fetch_add(counter, 1);
    long zero = 0;
    atomic_compare_exchange_strong(&echo_state->first_error, &zero, err);
}

static uint8_t echo_byte(long conn, long k)
{
    return (uint8_t)(conn * 31 + k * 7 + (k >> 8));
}

static void echo_server(void *arg)
{
    rt_netfd_t *c = arg;
    echo_t *e = echo_state;
    char buf[4096];
    rt_time_t deadline = rt_deadline_in(th_slack(IO_WAIT_NS));
    for (;;) {
        ssize_t n = rt_read(c, buf, sizeof(buf), deadline);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            echo_error(&e->server_errors, (long)n);
            break;
        }
        ssize_t w = rt_write_all(c, buf, (size_t)n, deadline);
        if (w != n) {
            echo_error(&e->server_errors, w < 0 ? (long)w : -1);
            break;
        }
    }
    rt_netfd_close(c);
    rt_wg_done(&e->servers);
}

static void echo_acceptor(void *arg)
{
    echo_t *e = arg;
    rt_time_t deadline = rt_deadline_in(th_slack(IO_WAIT_NS));
    for (long i = 0; i < e->nconn; i++) {
        rt_netfd_t *c = NULL;
        struct sockaddr_storage peer;
        int rc = rt_accept(e->lnfd, &c, &peer, deadline);
        if (rc != RT_OK) {
            echo_error(&e->server_errors, rc);
            /* Account for the servers that will never start. */
            rt_wg_add(&e->servers, -(e->nconn - i));
            return;
        }
        atomic_fetch_add(&e->accepted, 1);
        th_go(echo_server, c);
    }
}

static void echo_client(void *arg)
{
    echo_t *e = echo_state;
    long id = (long)(intptr_t)arg;
    rt_time_t deadline = rt_deadline_in(th_slack(IO_WAIT_NS));
    uint8_t *out = malloc(ECHO_BYTES), *in = malloc(ECHO_BYTES + 1);
    rt_netfd_t *c = NULL;
    int rc = rt_connect((struct sockaddr *)&e->addr, e->addrlen, &c, deadline);
    if (rc != RT_OK) {
        echo_error(&e->client_errors, rc);
        goto out;
    }
    for (long k = 0; k < ECHO_BYTES; k++) {
        out[k] = echo_byte(id, k);
    }
    ssize_t w = rt_write_all(c, out, ECHO_BYTES, deadline);
    if (w != ECHO_BYTES) {
        echo_error(&e->client_errors, w < 0 ? (long)w : -1);
        goto out_close;
    }
    /* Half-close: the server sees EOF after our bytes and then closes. */
    shutdown(rt_netfd_fd(c), SHUT_WR);
    size_t got = 0;
    for (;;) {
        ssize_t n = rt_read(c, in + got, ECHO_BYTES + 1 - got, deadline);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            echo_error(&e->client_errors, (long)n);
            goto out_close;
        }
        got += (size_t)n;
        if (got > ECHO_BYTES) {
            break;
        }
    }
    if (got != ECHO_BYTES || memcmp(in, out, ECHO_BYTES) != 0) {
        atomic_fetch_add(&e->bad_data, 1);
    } else {
        atomic_fetch_add(&e->echoed_ok, 1);
    }
out_close:
    rt_netfd_close(c);
out:
    free(out);
    free(in);
    rt_wg_done(&e->clients);
}

static void echo_main(void *arg)
{
    echo_t *e = arg;
    echo_state = e;
    e->listen_rc = listen_loopback(&e->lnfd, &e->addr, &e->addrlen, 1024);
    if (e->listen_rc != RT_OK) {
        return;
    }
    rt_wg_add(&e->servers, e->nconn);
    rt_wg_add(&e->clients, e->nconn);
    th_go(echo_acceptor, e);
    for (long i = 0; i < e->nconn; i++) {
        th_go(echo_client, (void *)(intptr_t)i);
    }
    rt_time_t deadline = rt_deadline_in(th_slack(IO_WAIT_NS) + 5 * RT_SEC);
    e->clients_rc = th_wg_wait_until(&e->clients, deadline);
    e->servers_rc = th_wg_wait_until(&e->servers, deadline);
    rt_netfd_close(e->lnfd);
}

START_TEST(test_net_tcp_echo_1000_connections_in_parallel)
{
    echo_t e;
    memset(&e, 0, sizeof(e));
    e.nconn = th_scaled(1000);
    th_rt_run(echo_main, &e, 2);
    ck_assert_int_eq(e.listen_rc, RT_OK);
    ck_assert_msg(e.clients_rc == RT_OK && e.servers_rc == RT_OK,
                  "echo did not finish: clients %d servers %d (accepted %ld, ok %ld)", e.clients_rc,
                  e.servers_rc, (long)e.accepted, (long)e.echoed_ok);
    ck_assert_msg(e.client_errors == 0 && e.server_errors == 0,
                  "client errors %ld, server errors %ld, first %ld (%s)", (long)e.client_errors,
                  (long)e.server_errors, (long)e.first_error, rt_strerror((int)e.first_error));
    ck_assert_int_eq(e.bad_data, 0);
    ck_assert_int_eq(e.accepted, e.nconn);
    ck_assert_int_eq(e.echoed_ok, e.nconn);
}

END_TEST

/* ---- a connected pair in one G ---- */

typedef struct pair {
    rt_netfd_t *lnfd, *client, *server;
    int rc;
} pair_t;

/* Fills `*p` (zeroed first, so a failed open leaves nothing to close). */
static int pair_open(pair_t *p)
{
    memset(p, 0, sizeof(*p));
    struct sockaddr_storage ss;
    socklen_t len;
    p->rc = listen_loopback(&p->lnfd, &ss, &len, 16);
    if (p->rc != RT_OK) {
        return p->rc;
    }
    rt_time_t deadline = rt_deadline_in(th_slack(5 * RT_SEC));
    p->rc = rt_connect((struct sockaddr *)&ss, len, &p->client, deadline);
    if (p->rc == RT_OK) {
        struct sockaddr_storage peer;
        p->rc = rt_accept(p->lnfd, &p->server, &peer, deadline);
    }
    return p->rc;
}

/* ---- deadlines ---- */

#define READ_DEADLINE_NS (100 * RT_MSEC)

typedef struct read_deadline {
    int pair_rc;
    ssize_t nowait_rc, read_rc, data_rc, eof_rc;
    int wait_readable_rc, wait_nowait_rc, wait_writable_rc;
    rt_time_t read_elapsed, wait_elapsed;
    char data[8];
} read_deadline_t;

static void read_deadline_main(void *arg)
{
    read_deadline_t *d = arg;
    pair_t p;
    d->pair_rc = pair_open(&p);
    if (d->pair_rc != RT_OK) {
        return;
    }
    char buf[16];
    d->nowait_rc = rt_read(p.server, buf, sizeof(buf), RT_NOWAIT);
    rt_time_t t0 = rt_now();
    d->read_rc = rt_read(p.server, buf, sizeof(buf), t0 + READ_DEADLINE_NS);
    d->read_elapsed = rt_now() - t0;
    t0 = rt_now();
    d->wait_readable_rc = rt_wait_readable(p.server, t0 + READ_DEADLINE_NS);
    d->wait_elapsed = rt_now() - t0;
    d->wait_nowait_rc = rt_wait_readable(p.server, RT_NOWAIT);
    d->wait_writable_rc = rt_wait_writable(p.server, rt_deadline_in(th_slack(RT_SEC)));

    /* The same socket still works after timeouts. */
    rt_time_t deadline = rt_deadline_in(th_slack(5 * RT_SEC));
    (void)rt_write_all(p.client, "hello", 5, deadline);
    d->data_rc = rt_read(p.server, d->data, sizeof(d->data) - 1, deadline);
    rt_netfd_close(p.client);
    d->eof_rc = rt_read(p.server, buf, sizeof(buf), deadline);
    rt_netfd_close(p.server);
    rt_netfd_close(p.lnfd);
}

START_TEST(test_net_read_deadline_returns_etimedout)
{
    read_deadline_t d;
    memset(&d, 0, sizeof(d));
    th_rt_run(read_deadline_main, &d, 2);
    ck_assert_int_eq(d.pair_rc, RT_OK);
    ck_assert_int_eq(d.nowait_rc, RT_EAGAIN);
    ck_assert_int_eq(d.read_rc, RT_ETIMEDOUT);
    ck_assert_int_eq(d.wait_readable_rc, RT_ETIMEDOUT);
    ck_assert_int_eq(d.wait_nowait_rc, RT_EAGAIN);
    ck_assert_int_eq(d.wait_writable_rc, RT_OK);
    rt_time_t el[2] = {d.read_elapsed, d.wait_elapsed};
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(el[i] >= READ_DEADLINE_NS, "wait %d returned early (%lld ns)", i,
                      (long long)el[i]);
        ck_assert_msg(el[i] < READ_DEADLINE_NS + th_slack(RT_SEC),
                      "wait %d returned late (%lld ns)", i, (long long)el[i]);
    }
    ck_assert_int_eq(d.data_rc, 5);
    ck_assert_str_eq(d.data, "hello");
    ck_assert_int_eq(d.eof_rc, 0);
}

END_TEST

/* ---- deadlines are armed lazily (netpoll.c): one timer per netfd direction ---- */

#define LAZY_LONG_NS (20 * RT_SEC) /* only reached if the test fails */
#define LAZY_SHORT_NS (100 * RT_MSEC)

typedef struct lazy_deadline {
    int pair_rc;
    ssize_t long_read_rc, short_read_rc, short_ok_rc, after_short_rc, async_setup_rc;
    int async_rc;
    rt_time_t short_elapsed, after_short_elapsed, async_elapsed;
} lazy_deadline_t;

typedef struct late_write {
    rt_netfd_t *to;
    int64_t delay;
} late_write_t;

static void late_writer(void *arg)
{
    late_write_t *lw = arg;
    rt_sleep(lw->delay);
    (void)rt_write_all(lw->to, "x", 1, rt_deadline_in(th_slack(RT_SEC)));
    free(lw);
}

/* Reads one byte written `delay` from now by another G, with `deadline`. */
static ssize_t read_late_byte(pair_t *p, int64_t delay, rt_time_t deadline)
{
    late_write_t *lw = malloc(sizeof(*lw));
    *lw = (late_write_t){.to = p->client, .delay = delay};
    if (rt_go(late_writer, lw) != RT_OK) {
        free(lw);
        return RT_ESTATE;
    }
    char c;
    return rt_read(p->server, &c, 1, deadline);
}

static void on_lazy_async(void *arg, int result)
{
    rt_chan_t *ch = arg;
    (void)rt_chan_send(ch, &result, RT_FOREVER);
}

static void lazy_deadline_main(void *arg)
{
    lazy_deadline_t *d = arg;
    pair_t p;
    d->pair_rc = pair_open(&p);
    if (d->pair_rc != RT_OK) {
        return;
    }
    char buf[4];
    /* 1. A wait with a far deadline ends early and leaves its timer armed;
     * the next wait's nearer deadline must still be kept. */
    d->long_read_rc = read_late_byte(&p, 5 * RT_MSEC, rt_deadline_in(LAZY_LONG_NS));
    rt_time_t t0 = rt_now();
    d->short_read_rc = rt_read(p.server, buf, sizeof(buf), t0 + LAZY_SHORT_NS);
    d->short_elapsed = rt_now() - t0;

    /* 2. A wait with a near deadline ends early; its timer fires while the
     * next wait (farther deadline) is parked, and must not time it out. */
    d->short_ok_rc = read_late_byte(&p, 5 * RT_MSEC, rt_deadline_in(LAZY_SHORT_NS));
    t0 = rt_now();
    d->after_short_rc = rt_read(p.server, buf, sizeof(buf), t0 + 3 * LAZY_SHORT_NS);
    d->after_short_elapsed = rt_now() - t0;

    /* 3. The same for a spawn-on-ready waiter after a far-deadline wait. */
    (void)read_late_byte(&p, 5 * RT_MSEC, rt_deadline_in(LAZY_LONG_NS));
    rt_chan_t *results = rt_chan_new(sizeof(int), 1);
    t0 = rt_now();
    d->async_setup_rc = rt_go_when_readable(p.server, on_lazy_async, results, t0 + LAZY_SHORT_NS);
    if (d->async_setup_rc == RT_OK &&
        rt_chan_recv(results, &d->async_rc, rt_deadline_in(2 * LAZY_LONG_NS)) == RT_OK) {
        d->async_elapsed = rt_now() - t0;
    }
    rt_chan_free(results);
    rt_netfd_close(p.client);
    rt_netfd_close(p.server);
    rt_netfd_close(p.lnfd);
}

START_TEST(test_net_lazy_deadlines_keep_each_waits_deadline)
{
    lazy_deadline_t d;
    memset(&d, 0, sizeof(d));
    d.async_rc = 1;
    th_rt_run(lazy_deadline_main, &d, 2);
    ck_assert_int_eq(d.pair_rc, RT_OK);
    ck_assert_int_eq(d.long_read_rc, 1);
    ck_assert_int_eq(d.short_read_rc, RT_ETIMEDOUT);
    ck_assert_msg(d.short_elapsed >= LAZY_SHORT_NS &&
                      d.short_elapsed < LAZY_SHORT_NS + th_slack(RT_SEC),
                  "a nearer deadline after a farther one fired after %.1f ms (want %d ms)",
                  (double)d.short_elapsed / RT_MSEC, (int)(LAZY_SHORT_NS / RT_MSEC));
    ck_assert_int_eq(d.short_ok_rc, 1);
    ck_assert_int_eq(d.after_short_rc, RT_ETIMEDOUT);
    ck_assert_msg(d.after_short_elapsed >= 3 * LAZY_SHORT_NS,
                  "a wait was timed out by an earlier wait's deadline after %.1f ms (want %d ms)",
                  (double)d.after_short_elapsed / RT_MSEC, (int)(3 * LAZY_SHORT_NS / RT_MSEC));
    ck_assert_msg(d.after_short_elapsed < 3 * LAZY_SHORT_NS + th_slack(RT_SEC), "late: %.1f ms",
                  (double)d.after_short_elapsed / RT_MSEC);
    ck_assert_int_eq(d.async_setup_rc, RT_OK);
    ck_assert_int_eq(d.async_rc, RT_ETIMEDOUT);
    ck_assert_msg(d.async_elapsed >= LAZY_SHORT_NS &&
                      d.async_elapsed < LAZY_SHORT_NS + th_slack(RT_SEC),
                  "spawn-on-ready deadline fired after %.1f ms (want %d ms)",
                  (double)d.async_elapsed / RT_MSEC, (int)(LAZY_SHORT_NS / RT_MSEC));
}

END_TEST

typedef struct refused {
    int listen_rc, rc;
    int port;
    rt_netfd_t *out;
} refused_t;

static void refused_main(void *arg)
{
    refused_t *r = arg;
    rt_netfd_t *lnfd = NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    r->listen_rc = listen_loopback(&lnfd, &ss, &len, 1);
    if (r->listen_rc != RT_OK) {
        return;
    }
    /* The port was ours a moment ago; now nothing listens there. */
    r->port = rt_netfd_port(lnfd);
    rt_netfd_close(lnfd);
    r->out = (rt_netfd_t *)&r->port; /* sentinel: must stay untouched on failure */
    r->rc = rt_connect((struct sockaddr *)&ss, len, &r->out, rt_deadline_in(th_slack(5 * RT_SEC)));
    if (r->rc == RT_OK) {
        rt_netfd_close(r->out);
    }
}

START_TEST(test_net_connect_to_closed_port_is_refused)
{
    refused_t r;
    memset(&r, 0, sizeof(r));
    th_rt_run(refused_main, &r, 1);
    ck_assert_int_eq(r.listen_rc, RT_OK);
    ck_assert_int_gt(r.port, 0);
    ck_assert_msg(r.rc == -ECONNREFUSED, "connect to closed port %d returned %d (%s)", r.port, r.rc,
                  rt_strerror(r.rc));
    ck_assert_ptr_eq(r.out, (rt_netfd_t *)&r.port);
}

END_TEST

/* ---- close wakes waiters ---- */

typedef struct close_wake {
    bool use_read; /* wait in rt_read (else rt_wait_readable) */
    rt_netfd_t *server;
    rt_chan_t *result;
    int pair_rc, result_rc;
    bool parked_seen;
    long waiter_rc;
    ssize_t peer_eof;
} close_wake_t;

static void close_wake_waiter(void *arg)
{
    close_wake_t *c = arg;
    long rc;
    if (c->use_read) {
        char buf[8];
        rc = (long)rt_read(c->server, buf, sizeof(buf), RT_FOREVER);
    } else {
        rc = rt_wait_readable(c->server, RT_FOREVER);
    }
    /* `server` is closed and freed by now: do not touch it. */
    (void)rt_chan_send(c->result, &rc, RT_NOWAIT);
}

static void close_wake_main(void *arg)
{
    close_wake_t *c = arg;
    pair_t p;
    c->pair_rc = pair_open(&p);
    if (c->pair_rc != RT_OK) {
        return;
    }
    c->server = p.server;
    c->result = rt_chan_new(sizeof(long), 1);
    rt_stats_t st;
    rt_stats_read(&st);
    th_go(close_wake_waiter, c);
    c->parked_seen = th_wait_gs_waiting(st.gs_waiting + 1, rt_deadline_in(th_slack(5 * RT_SEC)));
    if (!c->parked_seen) {
        return; /* closing under a G that may not have parked yet would be a test bug */
    }
    rt_netfd_close(p.server);
    c->result_rc = rt_chan_recv(c->result, &c->waiter_rc, rt_deadline_in(th_slack(5 * RT_SEC)));
    char buf[4];
    c->peer_eof = rt_read(p.client, buf, sizeof(buf), rt_deadline_in(th_slack(5 * RT_SEC)));
    rt_netfd_close(p.client);
    rt_netfd_close(p.lnfd);
    if (c->result_rc == RT_OK) {
        rt_chan_free(c->result);
    }
}

START_TEST(test_net_netfd_close_wakes_waiter_with_eclosed)
{
    close_wake_t c;
    memset(&c, 0, sizeof(c));
    c.use_read = _i == 1;
    th_rt_run(close_wake_main, &c, 2);
    ck_assert_int_eq(c.pair_rc, RT_OK);
    ck_assert_msg(c.parked_seen, "the waiting G was never seen parked");
    ck_assert_msg(c.result_rc == RT_OK, "rt_netfd_close did not wake the G in %s",
                  c.use_read ? "rt_read" : "rt_wait_readable");
    ck_assert_int_eq(c.waiter_rc, RT_ECLOSED);
    ck_assert_int_eq(c.peer_eof, 0);
}

END_TEST

/* ---- socketpair through rt_netfd_open ---- */

#define STREAM_BYTES (4 * 1024 * 1024)

typedef struct stream {
    rt_netfd_t *a, *b;
    int open_rc[2], bad_open_rc;
    int fd_matches;
    long write_errors, read_errors, mismatches;
    size_t received;
    rt_chan_t *done;
    int done_rc;
} stream_t;

static void stream_writer(void *arg)
{
    stream_t *s = arg;
    uint8_t buf[3000];
    size_t sent = 0;
    rt_time_t deadline = rt_deadline_in(th_slack(IO_WAIT_NS));
    while (sent < STREAM_BYTES) {
        size_t n = STREAM_BYTES - sent < sizeof(buf) ? STREAM_BYTES - sent : sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            buf[i] = (uint8_t)((sent + i) % 251);
        }
        /* rt_write may write less than asked: send the rest next round. */
        ssize_t w = rt_write(s->a, buf, n, deadline);
        if (w <= 0) {
            s->write_errors++;
            break;
        }
        sent += (size_t)w;
    }
    rt_netfd_close(s->a);
    char token = 1;
    (void)rt_chan_send(s->done, &token, RT_NOWAIT);
}

static void stream_main(void *arg)
{
    stream_t *s = arg;
    int fds[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    s->open_rc[0] = rt_netfd_open(fds[0], &s->a);
    s->open_rc[1] = rt_netfd_open(fds[1], &s->b);
    s->bad_open_rc = RT_OK;
    rt_netfd_t *bad = NULL;
    s->bad_open_rc = rt_netfd_open(-1, &bad);
    if (s->open_rc[0] != RT_OK || s->open_rc[1] != RT_OK) {
        return;
    }
    s->fd_matches = rt_netfd_fd(s->a) == fds[0] && rt_netfd_fd(s->b) == fds[1];
    s->done = rt_chan_new(1, 1);
    th_go(stream_writer, s);
    uint8_t buf[5000];
    rt_time_t deadline = rt_deadline_in(th_slack(IO_WAIT_NS));
    for (;;) {
        ssize_t n = rt_read(s->b, buf, sizeof(buf), deadline);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            s->read_errors++;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            s->mismatches += buf[i] != (uint8_t)((s->received + (size_t)i) % 251);
        }
        s->received += (size_t)n;
    }
    rt_netfd_close(s->b);
    s->done_rc = rt_chan_recv(s->done, NULL, deadline);
    if (s->done_rc == RT_OK) {
        rt_chan_free(s->done);
    }
}

START_TEST(test_net_netfd_open_streams_through_socketpair)
{
    stream_t s;
    memset(&s, 0, sizeof(s));
    th_rt_run(stream_main, &s, 2);
    ck_assert_int_eq(s.open_rc[0], RT_OK);
    ck_assert_int_eq(s.open_rc[1], RT_OK);
    ck_assert_int_lt(s.bad_open_rc, 0);
    ck_assert(s.fd_matches);
    ck_assert_int_eq(s.done_rc, RT_OK);
    ck_assert_int_eq(s.write_errors, 0);
    ck_assert_int_eq(s.read_errors, 0);
    ck_assert_uint_eq(s.received, STREAM_BYTES);
    ck_assert_int_eq(s.mismatches, 0);
}

END_TEST

/* ---- address parsing ---- */

/* ---- rt_go_when_readable: idle connections hold no G ---- */

typedef struct idle_conn {
    rt_netfd_t *mine, *peer;
    rt_chan_t *results; /* int: the callback's result, or -1 on a short read */
} idle_conn_t;

static void on_idle_ready(void *arg, int result)
{
    idle_conn_t *c = arg;
    int out = result;
    if (result == RT_OK) {
        char buf[8] = {0};
        ssize_t n = rt_read(c->mine, buf, sizeof(buf), rt_deadline_in(th_slack(RT_SEC)));
        out = n == 4 && memcmp(buf, "ping", 4) == 0 ? RT_OK : -1;
    }
    (void)rt_chan_send(c->results, &out, RT_FOREVER);
}

typedef struct idle {
    long n;
    int register_rc, ok, timedout, closed, other;
    uint64_t live_before, live_idle, stacks_before, stacks_idle;
    rt_time_t timeout_elapsed;
} idle_t;

static void idle_main(void *arg)
{
    idle_t *t = arg;
    idle_conn_t *conns = calloc((size_t)t->n + 2, sizeof(*conns));
    rt_chan_t *results = rt_chan_new(sizeof(int), (size_t)t->n + 2);
    for (long i = 0; i < t->n + 2; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || rt_netfd_open(sv[0], &conns[i].mine) ||
            rt_netfd_open(sv[1], &conns[i].peer)) {
            t->register_rc = -1;
            return;
        }
        conns[i].results = results;
    }
    rt_stats_t st;
    rt_stats_read(&st);
    t->live_before = st.gs_live;
    t->stacks_before = st.stacks;
    for (long i = 0; i < t->n && t->register_rc == RT_OK; i++) {
        t->register_rc = rt_go_when_readable(conns[i].mine, on_idle_ready, &conns[i], RT_FOREVER);
    }
    rt_stats_read(&st);
    t->live_idle = st.gs_live;
    t->stacks_idle = st.stacks;

    /* Wake every idle connection, then one that times out and one closed. */
    for (long i = 0; i < t->n; i++) {
        (void)rt_write_all(conns[i].peer, "ping", 4, rt_deadline_in(th_slack(RT_SEC)));
    }
    idle_conn_t *slow = &conns[t->n], *gone = &conns[t->n + 1];
    rt_time_t start = rt_now();
    if (rt_go_when_readable(slow->mine, on_idle_ready, slow, rt_deadline_in(50 * RT_MSEC)) ||
        rt_go_when_readable(gone->mine, on_idle_ready, gone, RT_FOREVER)) {
        t->register_rc = -2;
        return;
    }
    rt_netfd_close(gone->mine);
    gone->mine = NULL;
    for (long i = 0; i < t->n + 2; i++) {
        int r = 0;
        if (rt_chan_recv(results, &r, rt_deadline_in(th_slack(5 * RT_SEC))) != RT_OK) {
            break;
        }
        if (r == RT_OK) {
            t->ok++;
        } else if (r == RT_ETIMEDOUT) {
            t->timedout++;
            t->timeout_elapsed = rt_now() - start;
        } else if (r == RT_ECLOSED) {
            t->closed++;
        } else {
            t->other++;
        }
    }
    for (long i = 0; i < t->n + 2; i++) {
        rt_netfd_close(conns[i].mine);
        rt_netfd_close(conns[i].peer);
    }
    rt_chan_free(results);
    free(conns);
}

START_TEST(test_net_go_when_readable_holds_no_g_while_idle)
{
    idle_t t = {.n = th_scaled(1000)};
    th_rt_run(idle_main, &t, 2);
    ck_assert_int_eq(t.register_rc, RT_OK);
    ck_assert_msg(t.live_idle == t.live_before && t.stacks_idle == t.stacks_before,
                  "%ld idle connections cost Gs: live %llu -> %llu, stacks %llu -> %llu", t.n,
                  (unsigned long long)t.live_before, (unsigned long long)t.live_idle,
                  (unsigned long long)t.stacks_before, (unsigned long long)t.stacks_idle);
    ck_assert_int_eq(t.ok, t.n);
    ck_assert_int_eq(t.timedout, 1);
    ck_assert_int_eq(t.closed, 1);
    ck_assert_int_eq(t.other, 0);
    ck_assert_msg(t.timeout_elapsed >= 50 * RT_MSEC && t.timeout_elapsed < th_slack(RT_SEC),
                  "idle deadline fired after %.1f ms", (double)t.timeout_elapsed / RT_MSEC);
}

END_TEST

/*
 * Gs the netpoller spawns while every M sleeps in epoll (no P at hand) reuse
 * exited Gs' stacks instead of mapping new ones. An OS thread outside the
 * runtime pokes the socket, so each wake-up comes from the sleeping poller.
 */

typedef struct respawn {
    int peer_fd; /* the poking thread's end, blocking */
    rt_netfd_t *b;
    long rounds, done;
    rt_chan_t *finished;
    int rc;
    uint64_t stacks_before, stacks_after;
} respawn_t;

static void *respawn_poker(void *arg)
{
    respawn_t *t = arg;
    char c = 'x';
    for (long i = 0; i < t->rounds; i++) {
        if (write(t->peer_fd, &c, 1) != 1 || read(t->peer_fd, &c, 1) != 1) {
            break;
        }
    }
    return NULL;
}

static void on_respawn_ready(void *arg, int result)
{
    respawn_t *t = arg;
    char c;
    if (result != RT_OK || rt_read(t->b, &c, 1, RT_FOREVER) != 1) {
        t->rc = -1;
    } else if (++t->done < t->rounds) {
        /* Re-arm first, then answer: the next G is spawned by the poller. */
        if (rt_go_when_readable(t->b, on_respawn_ready, t, RT_FOREVER) == RT_OK &&
            rt_write_all(t->b, &c, 1, RT_FOREVER) == 1) {
            return;
        }
        t->rc = -2;
    } else {
        (void)rt_write_all(t->b, &c, 1, RT_FOREVER);
    }
    char token = 0;
    (void)rt_chan_send(t->finished, &token, RT_FOREVER);
}

static void respawn_main(void *arg)
{
    respawn_t *t = arg;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t->peer_fd = sv[0];
    ck_assert_int_eq(rt_netfd_open(sv[1], &t->b), RT_OK);
    t->finished = rt_chan_new(1, 0);
    rt_stats_t st;
    rt_stats_read(&st);
    t->stacks_before = st.stacks;
    ck_assert_int_eq(rt_go_when_readable(t->b, on_respawn_ready, t, RT_FOREVER), RT_OK);
    pthread_t poker;
    ck_assert_int_eq(pthread_create(&poker, NULL, respawn_poker, t), 0);
    int rc = rt_chan_recv(t->finished, NULL, rt_deadline_in(th_slack(20 * RT_SEC)));
    rt_blocking_enter();
    pthread_join(poker, NULL);
    rt_blocking_leave();
    ck_assert_int_eq(rc, RT_OK);
    rt_stats_read(&st);
    t->stacks_after = st.stacks;
    rt_chan_free(t->finished);
    close(sv[0]);
    rt_netfd_close(t->b);
}

START_TEST(test_net_go_when_readable_reuses_stacks)
{
    respawn_t t = {.rounds = th_scaled(5000)};
    th_rt_run(respawn_main, &t, 1);
    ck_assert_int_eq(t.rc, 0);
    ck_assert_int_eq(t.done, t.rounds);
    /* One G alive at a time: a handful of stacks, not one per round. */
    ck_assert_msg(t.stacks_after - t.stacks_before < 200, "%ld rounds mapped %llu stacks", t.rounds,
                  (unsigned long long)(t.stacks_after - t.stacks_before));
}

END_TEST

/* rt_netfd_rd_event_pending: reports arrivals since the last read began, and only those. */

static void rd_event_main(void *arg)
{
    (void)arg;
    int sv[2];
    rt_netfd_t *a, *b;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(rt_netfd_open(sv[0], &a), RT_OK);
    ck_assert_int_eq(rt_netfd_open(sv[1], &b), RT_OK);
    char buf[64];
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(rt_write_all(a, "hi", 2, RT_FOREVER), 2);
        /* The poller must see the bytes arrive (no reader waits, so it records them). */
        rt_time_t deadline = rt_deadline_in(th_slack(2 * RT_SEC));
        while (!rt_netfd_rd_event_pending(b) && rt_now() < deadline) {
            rt_sleep(RT_MSEC);
        }
        ck_assert_msg(rt_netfd_rd_event_pending(b), "round %d: arrival not reported", round);
        ck_assert_int_eq(rt_read(b, buf, sizeof(buf), RT_FOREVER), 2); /* short: socket empty */
        ck_assert_msg(!rt_netfd_rd_event_pending(b), "round %d: stale after the read", round);
    }
    rt_netfd_close(a);
    rt_netfd_close(b);
}

START_TEST(test_net_rd_event_pending_tracks_arrivals)
{
    th_rt_run(rd_event_main, NULL, 1);
}

END_TEST

/* rt_writev_all: partial gathered writes resume at the right byte. */

typedef struct gather {
    rt_netfd_t *a, *b;
    size_t total, got;
    bool mismatch;
    rt_waitgroup_t wg;
} gather_t;

static unsigned char gather_byte(size_t i)
{
    return (unsigned char)(i * 7 + i / 4099);
}

static void gather_reader(void *arg)
{
    gather_t *t = arg;
    unsigned char buf[7000];
    while (t->got < t->total) {
        ssize_t n = rt_read(t->b, buf, sizeof(buf), rt_deadline_in(th_slack(5 * RT_SEC)));
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            t->mismatch |= buf[i] != gather_byte(t->got + (size_t)i);
        }
        t->got += (size_t)n;
    }
    rt_wg_done(&t->wg);
}

static void gather_main(void *arg)
{
    gather_t *t = arg;
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    ck_assert_int_eq(rt_netfd_open(sv[0], &t->a), RT_OK);
    ck_assert_int_eq(rt_netfd_open(sv[1], &t->b), RT_OK);
    /* Three pieces of odd sizes; the socket takes a few KiB per write. */
    size_t sizes[3] = {1, 300001, 77777};
    t->total = sizes[0] + sizes[1] + sizes[2];
    unsigned char *data = malloc(t->total);
    for (size_t i = 0; i < t->total; i++) {
        data[i] = gather_byte(i);
    }
    struct iovec iov[3] = {
        {data, sizes[0]}, {data + sizes[0], sizes[1]}, {data + sizes[0] + sizes[1], sizes[2]}};
    rt_wg_add(&t->wg, 1);
    th_go(gather_reader, t);
    ck_assert_int_eq(rt_writev_all(t->a, iov, 3, rt_deadline_in(th_slack(5 * RT_SEC))),
                     (ssize_t)t->total);
    ck_assert_int_eq(th_wg_wait_until(&t->wg, rt_deadline_in(th_slack(5 * RT_SEC))), RT_OK);
    free(data);
    rt_netfd_close(t->a);
    rt_netfd_close(t->b);
}

START_TEST(test_net_writev_all_resumes_partial_writes)
{
    gather_t t = {0};
    th_rt_run(gather_main, &t, 2);
    ck_assert_uint_eq(t.got, t.total);
    ck_assert(!t.mismatch);
}

END_TEST

/* ---- a G whose I/O never waits is preempted at its next I/O call ---- */

#define BUSY_IO_NS (300 * RT_MSEC)

typedef struct busy_io {
    rt_netfd_t *a, *b;
    rt_time_t start, io_end, ticker_woke;
    long rounds;
    int setup_rc;
} busy_io_t;

static void busy_io_ticker(void *arg)
{
    busy_io_t *t = arg;
    rt_sleep(5 * RT_MSEC);
    t->ticker_woke = rt_now();
}

static void busy_io_main(void *arg)
{
    busy_io_t *t = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || rt_netfd_open(sv[0], &t->a) ||
        rt_netfd_open(sv[1], &t->b)) {
        t->setup_rc = -1;
        return;
    }
    th_go(busy_io_ticker, t);
    rt_yield(); /* the ticker arms its timer and parks */
    /* One byte circulates a -> b -> a: every read and write succeeds at once. */
    t->start = rt_now();
    (void)rt_write_all(t->a, "x", 1, RT_FOREVER);
    char c;
    while (rt_now() - t->start < BUSY_IO_NS) {
        if (rt_read(t->b, &c, 1, RT_FOREVER) != 1 || rt_write_all(t->b, &c, 1, RT_FOREVER) != 1 ||
            rt_read(t->a, &c, 1, RT_FOREVER) != 1 || rt_write_all(t->a, &c, 1, RT_FOREVER) != 1) {
            t->setup_rc = -2;
            break;
        }
        t->rounds++;
    }
    t->io_end = rt_now();
    rt_sleep(10 * RT_MSEC); /* the ticker has certainly run by now */
    rt_netfd_close(t->a);
    rt_netfd_close(t->b);
}

START_TEST(test_net_busy_io_is_preempted_at_io_calls)
{
    busy_io_t t;
    memset(&t, 0, sizeof(t));
    th_rt_run(busy_io_main, &t, 1);
    ck_assert_int_eq(t.setup_rc, 0);
    ck_assert_msg(t.rounds > 1000, "only %ld I/O rounds", t.rounds);
    /* Hog threshold 10 ms + sysmon's period (<= 5 ms): far less than 300 ms. */
    int64_t late = t.ticker_woke - (t.start + 5 * RT_MSEC);
    ck_assert_msg(t.ticker_woke != 0 && t.ticker_woke < t.io_end && late < th_slack(100 * RT_MSEC),
                  "a 5 ms sleeper on the same P woke %.1f ms late (the I/O loop ran %.0f ms)",
                  (double)late / RT_MSEC, (double)(t.io_end - t.start) / RT_MSEC);
}

END_TEST

START_TEST(test_net_sockaddr_parse_accepts_and_rejects)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;

    ck_assert_int_eq(rt_sockaddr_parse("127.0.0.1:80", &ss, &len), RT_OK);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;
    ck_assert_int_eq(in4->sin_family, AF_INET);
    ck_assert_int_eq(ntohs(in4->sin_port), 80);
    ck_assert_uint_eq(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in));

    ck_assert_int_eq(rt_sockaddr_parse("10.1.2.3:65535", &ss, &len), RT_OK);
    ck_assert_int_eq(ntohs(in4->sin_port), 65535);
    ck_assert_uint_eq(ntohl(in4->sin_addr.s_addr), 0x0a010203u);

    ck_assert_int_eq(rt_sockaddr_parse("[::1]:8080", &ss, &len), RT_OK);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    ck_assert_int_eq(in6->sin6_family, AF_INET6);
    ck_assert_int_eq(ntohs(in6->sin6_port), 8080);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));

    ck_assert_int_eq(rt_sockaddr_parse(":9901", &ss, &len), RT_OK);
    if (ss.ss_family == AF_INET) {
        ck_assert_int_eq(ntohs(in4->sin_port), 9901);
        ck_assert_uint_eq(in4->sin_addr.s_addr, htonl(INADDR_ANY));
    } else {
        ck_assert_int_eq(ss.ss_family, AF_INET6);
        ck_assert_int_eq(ntohs(in6->sin6_port), 9901);
        ck_assert(IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr));
    }

    ck_assert_int_eq(rt_sockaddr_parse("0.0.0.0:0", &ss, &len), RT_OK);
    ck_assert_int_eq(ntohs(in4->sin_port), 0);

    static const char *const bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:80x",
        "127.0.0.1:8 0",
        "256.0.0.1:80",
        "1.2.3:80",
        "[::1]",
        "[::1:80",
        "[::1]80",
        "[zz::1]:80",
        ":",
        "127.0.0.1:99999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = rt_sockaddr_parse(bad[i], &ss, &len);
        ck_assert_msg(rc < 0, "rt_sockaddr_parse accepted \"%s\"", bad[i]);
    }
}

END_TEST

Suite *suite_runtime_net(void)
{
    Suite *s = suite_create("runtime/net");

    TCase *tc = tcase_create("echo");
    tcase_add_test(tc, test_net_tcp_echo_1000_connections_in_parallel);
    tcase_add_test(tc, test_net_netfd_open_streams_through_socketpair);
    tcase_add_test(tc, test_net_go_when_readable_holds_no_g_while_idle);
    tcase_add_test(tc, test_net_go_when_readable_reuses_stacks);
    tcase_add_test(tc, test_net_rd_event_pending_tracks_arrivals);
    tcase_add_test(tc, test_net_writev_all_resumes_partial_writes);
    tcase_add_test(tc, test_net_busy_io_is_preempted_at_io_calls);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_net_read_deadline_returns_etimedout);
    tcase_add_test(tc, test_net_lazy_deadlines_keep_each_waits_deadline);
    tcase_add_test(tc, test_net_connect_to_closed_port_is_refused);
    tcase_add_loop_test(tc, test_net_netfd_close_wakes_waiter_with_eclosed, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("addr");
    tcase_add_test(tc, test_net_sockaddr_parse_accepts_and_rejects);
    suite_add_tcase(s, tc);
    return s;
}
