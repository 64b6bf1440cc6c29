/* SPDX-License-Identifier: MIT */
/*
 * netpoll.c - the network poller: netfds registered once with epoll in
 * edge-triggered mode, and Gs parked until an fd is ready or a deadline
 * passes (Go's netpoll.go + netpoll_epoll.go).
 *
 * Each netfd has, per direction, either a `ready` flag (an edge arrived with
 * nobody waiting) or one waiting G (its wait record lives on that G's stack).
 * `lock` (spin) protects both. A waiter that finds `ready` set consumes it and
 * retries its syscall instead of parking, so an edge that arrives between a
 * read's EAGAIN and the park is never lost. Spurious readiness is harmless:
 * the caller retries, gets EAGAIN and waits again.
 *
 * Deadlines: each netfd has one timer per direction, armed lazily as nginx
 * and Go do. A wait whose deadline is not earlier than the armed timer's
 * leaves the timer alone, and a wait that ends does not stop it: when it
 * fires it looks at the waiter of the moment under the lock, times it out if
 * its deadline has passed, re-arms for it if not, and otherwise goes idle. A
 * proxy's waits end long before their deadlines, so most of them cost no
 * timer-heap operation at all (a start and a stop each, with thousands of
 * connections, had been a visible share of the CPU). The timer and the poller
 * race only under the netfd lock, and whoever clears the waiter readies the G
 * exactly once with its result (RT_OK, RT_ETIMEDOUT, RT_ECLOSED).
 *
 * rt_go_when_readable parks no G at all: its waiter is heap-allocated and
 * whoever clears it (poller, deadline, close) creates the G that runs the
 * callback. An idle keep-alive connection then costs a netfd and a ~100-byte
 * record, not a stack page.
 *
 * Netfds are type-stable: recycled through a free list, freed only when
 * rt_run returns, so an event harvested by one M for a netfd another M just
 * closed touches valid memory (and at worst sets a spurious ready flag).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/internal.h"

typedef struct nwait {
    rt__g_t *g;      /* the parked G, or NULL for rt_go_when_readable */
    rt_ready_fn *fn; /* rt_go_when_readable: what to spawn, with `arg` */
    void *arg;
    int res;
    rt_netfd_t *nfd;
    bool write;
    rt_time_t deadline;
} nwait_t;

struct rt_netfd {
    _Atomic uint32_t lock;
    int fd;
    bool closing, wr_ready;
    /* A read-readiness event no wait has consumed. Written under `lock`;
     * read without it by rt_netfd_rd_event_pending and rt__netfd_read_begin. */
    _Atomic bool rd_ready;
    nwait_t *rwait, *wwait;
    /* Deadline timers and the `when` each is armed for (RT_FOREVER: idle),
     * under `lock`; stopped by rt_netfd_close before the netfd is reused. */
    rt__timer_t rtimer, wtimer;
    rt_time_t rtimer_when, wtimer_when;
    rt_netfd_t *next_free;
};

#define CHUNK 128

static struct {
    _Atomic uint32_t lock;
    rt_netfd_t *free;
    void **chunks;
    size_t nchunks;
    _Atomic int32_t waiters;
} np;

void rt__netpoll_init(void)
{
    rt__sched.epfd = epoll_create1(EPOLL_CLOEXEC);
    RT_CHECK(rt__sched.epfd >= 0, "epoll_create1 failed");
    rt__sched.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    RT_CHECK(rt__sched.wakefd >= 0, "eventfd failed");
    /* Level-triggered, and read only by the blocking poller: a non-blocking
     * poll by another M must not swallow the wake-up meant for it. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    RT_CHECK(epoll_ctl(rt__sched.epfd, EPOLL_CTL_ADD, rt__sched.wakefd, &ev) == 0,
             "epoll_ctl(eventfd) failed");
    np.free = NULL;
    np.chunks = NULL;
    np.nchunks = 0;
    atomic_store(&np.waiters, 0);
}

void rt__netpoll_shutdown(void)
{
    close(rt__sched.epfd);
    close(rt__sched.wakefd);
    for (size_t i = 0; i < np.nchunks; i++)
        free(np.chunks[i]);
    free(np.chunks);
    np.chunks = NULL;
    np.nchunks = 0;
    np.free = NULL;
}

bool rt__netpoll_has_waiters(void)
{
    return atomic_load_explicit(&np.waiters, memory_order_relaxed) > 0;
}

void rt__netpoll_break(void)
{
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&rt__sched.poll_wakeup_pending, &zero, 1))
        return;
    uint64_t one = 1;
    ssize_t rc = write(rt__sched.wakefd, &one, sizeof(one));
    (void)rc;
}

static void spawned_entry(void *arg);

/* Clears the waiter in `slot` with `res` and pushes the G to run onto `list`:
 * the parked G, or a new one for a spawn-on-ready waiter. */
static rt__g_t *take_waiter(nwait_t **slot, int res, rt__g_t *list)
{
    nwait_t *w = *slot;
    if (!w)
        return list;
    *slot = NULL;
    w->res = res;
    atomic_fetch_sub_explicit(&np.waiters, 1, memory_order_relaxed);
    rt__g_t *g = w->g ? w->g : rt__newg_anywhere(spawned_entry, w);
    g->schedlink = list;
    return g;
}

rt__g_t *rt__netpoll(rt_time_t until, uint32_t *count)
{
    struct epoll_event events[128];
    rt_time_t timeout = 0;
    if (until == RT_FOREVER)
        timeout = -1;
    else if (until != RT_NOWAIT) {
        timeout = until - rt_now();
        if (timeout < 0)
            timeout = 0;
    }
    if (timeout != 0)
        atomic_fetch_add_explicit(&rt__sched.netpoll_waits, 1, memory_order_relaxed);
    int n = rt__sys_epoll_wait(rt__sched.epfd, events, (int)RT_ARRAY_LEN(events), timeout);
    atomic_store_explicit(&rt__sched.last_poll, rt__coarse_now(), memory_order_relaxed);
    rt__g_t *list = NULL;
    uint32_t cnt = 0;
    for (int i = 0; i < n; i++) {
        rt_netfd_t *nfd = events[i].data.ptr;
        uint32_t ev = events[i].events;
        if (!nfd) {
            if (until != RT_NOWAIT) {
                /* Read, then clear: a break in between is absorbed by this
                 * wake-up, and the flag never stays set with nothing to read. */
                uint64_t v;
                ssize_t rc = read(rt__sched.wakefd, &v, sizeof(v));
                (void)rc;
                atomic_store(&rt__sched.poll_wakeup_pending, 0);
            }
            continue;
        }
        rt__spin_lock(&nfd->lock);
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            if (nfd->rwait) {
                list = take_waiter(&nfd->rwait, RT_OK, list);
                cnt++;
            } else {
                atomic_store_explicit(&nfd->rd_ready, true, memory_order_relaxed);
            }
        }
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
            if (nfd->wwait) {
                list = take_waiter(&nfd->wwait, RT_OK, list);
                cnt++;
            } else {
                nfd->wr_ready = true;
            }
        }
        rt__spin_unlock(&nfd->lock);
    }
    if (cnt)
        atomic_fetch_add_explicit(&rt__sched.netpoll_wakeups, cnt, memory_order_relaxed);
    *count = cnt;
    /* take_waiter prepends: restore epoll's order, so that under load the
     * connection that became ready first runs first (FIFO keeps the tail of
     * the latency distribution short). */
    rt__g_t *fifo = NULL;
    while (list) {
        rt__g_t *next = list->schedlink;
        list->schedlink = fifo;
        fifo = list;
        list = next;
    }
    return fifo;
}

static rt_netfd_t *netfd_alloc(void)
{
    rt__spin_lock(&np.lock);
    if (!np.free) {
        rt_netfd_t *chunk = rt_xcalloc(CHUNK, sizeof(*chunk));
        np.chunks = rt_xrealloc(np.chunks, (np.nchunks + 1) * sizeof(*np.chunks));
        np.chunks[np.nchunks++] = chunk;
        for (int i = 0; i < CHUNK; i++) {
            chunk[i].next_free = np.free;
            np.free = &chunk[i];
        }
    }
    rt_netfd_t *nfd = np.free;
    np.free = nfd->next_free;
    rt__spin_unlock(&np.lock);
    return nfd;
}

int rt_netfd_open(int fd, rt_netfd_t **out)
{
    if (!rt__getm() || fd < 0)
        return fd < 0 ? RT_EINVAL : RT_ESTATE;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -rt_errno();
    rt_netfd_t *nfd = netfd_alloc();
    rt__spin_lock(&nfd->lock);
    nfd->fd = fd;
    nfd->closing = nfd->wr_ready = false;
    atomic_store_explicit(&nfd->rd_ready, false, memory_order_relaxed);
    nfd->rwait = nfd->wwait = NULL;
    nfd->rtimer.index = nfd->wtimer.index = -1; /* stopped at the last close, or new */
    nfd->rtimer_when = nfd->wtimer_when = RT_FOREVER;
    rt__spin_unlock(&nfd->lock);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = nfd};
    if (epoll_ctl(rt__sched.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -rt_errno();
        rt__spin_lock(&np.lock);
        nfd->next_free = np.free;
        np.free = nfd;
        rt__spin_unlock(&np.lock);
        return err;
    }
    *out = nfd;
    return RT_OK;
}

int rt_netfd_fd(const rt_netfd_t *nfd)
{
    return nfd->fd;
}

void rt_netfd_close(rt_netfd_t *nfd)
{
    if (!nfd)
        return;
    rt__spin_lock(&nfd->lock);
    nfd->closing = true;
    rt__g_t *list = take_waiter(&nfd->rwait, RT_ECLOSED, NULL);
    list = take_waiter(&nfd->wwait, RT_ECLOSED, list);
    int fd = nfd->fd;
    nfd->fd = -1;
    rt__spin_unlock(&nfd->lock);
    while (list) {
        rt__g_t *next = list->schedlink;
        rt__ready(list, false);
        list = next;
    }
    /* A firing that takes the lock from now on sees `closing` and does not
     * re-arm; the stops wait out one already running. */
    rt__timer_stop(&nfd->rtimer);
    rt__timer_stop(&nfd->wtimer);
    epoll_ctl(rt__sched.epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    rt__spin_lock(&np.lock);
    nfd->next_free = np.free;
    np.free = nfd;
    rt__spin_unlock(&np.lock);
}

static void on_deadline(rt__timer_t *t, void *arg)
{
    rt_netfd_t *nfd = arg;
    bool write = t == &nfd->wtimer;
    rt__g_t *g = NULL;
    rt__spin_lock(&nfd->lock);
    rt_time_t *armed = write ? &nfd->wtimer_when : &nfd->rtimer_when;
    nwait_t **slot = write ? &nfd->wwait : &nfd->rwait;
    nwait_t *w = *slot;
    *armed = RT_FOREVER;
    if (w && !nfd->closing && w->deadline != RT_FOREVER) {
        if (w->deadline <= rt_now()) {
            g = take_waiter(slot, RT_ETIMEDOUT, NULL);
        } else {
            *armed = w->deadline;
            rt__timer_start(t, w->deadline, on_deadline, nfd);
        }
    }
    rt__spin_unlock(&nfd->lock);
    if (g)
        rt__ready(g, false);
}

/* Makes sure a timer fires by `deadline` for the waiter just queued in one
 * direction of `nfd`. Under nfd->lock. */
static void deadline_arm(rt_netfd_t *nfd, bool write, rt_time_t deadline)
{
    rt_time_t *armed = write ? &nfd->wtimer_when : &nfd->rtimer_when;
    if (deadline == RT_FOREVER || *armed <= deadline)
        return; /* none needed, or the armed one fires first and re-arms */
    rt__timer_t *t = write ? &nfd->wtimer : &nfd->rtimer;
    if (*armed == RT_FOREVER)
        rt__timer_start(t, deadline, on_deadline, nfd);
    else if (!rt__timer_reset(t, deadline))
        return; /* fired already: its call, waiting for our lock, re-arms */
    *armed = deadline;
}

/* Runs after the context switch, still under nfd->lock. */
static bool arm_deadline(rt__g_t *g, void *arg)
{
    nwait_t *w = arg;
    (void)g;
    deadline_arm(w->nfd, w->write, w->deadline);
    return true;
}

static int netfd_wait(rt_netfd_t *nfd, bool write, rt_time_t deadline)
{
    rt__spin_lock(&nfd->lock);
    if (nfd->closing) {
        rt__spin_unlock(&nfd->lock);
        return RT_ECLOSED;
    }
    bool ready = write ? nfd->wr_ready : atomic_load_explicit(&nfd->rd_ready, memory_order_relaxed);
    if (ready) {
        if (write)
            nfd->wr_ready = false;
        else
            atomic_store_explicit(&nfd->rd_ready, false, memory_order_relaxed);
        rt__spin_unlock(&nfd->lock);
        return RT_OK;
    }
    if (deadline == RT_NOWAIT || rt__past(deadline)) {
        rt__spin_unlock(&nfd->lock);
        return deadline == RT_NOWAIT ? RT_EAGAIN : RT_ETIMEDOUT;
    }
    nwait_t w = {.g = rt__getg(), .res = 1, .nfd = nfd, .write = write, .deadline = deadline};
    RT_CHECK(w.g != NULL, "netpoll wait outside a G");
    nwait_t **slot = write ? &nfd->wwait : &nfd->rwait;
    RT_CHECK(*slot == NULL, "two Gs waiting on one netfd direction");
    *slot = &w;
    atomic_fetch_add_explicit(&np.waiters, 1, memory_order_relaxed);
    rt__park(&nfd->lock, arm_deadline, &w);
    return w.res;
}

/* A read is about to look at the socket: whatever readiness was reported so
 * far, it will see. Clearing the flag now keeps it from waking a later wait
 * (or rt_go_when_readable) for bytes this read consumes. */
void rt__netfd_read_begin(rt_netfd_t *nfd)
{
    if (atomic_load_explicit(&nfd->rd_ready, memory_order_relaxed)) {
        rt__spin_lock(&nfd->lock);
        atomic_store_explicit(&nfd->rd_ready, false, memory_order_relaxed);
        rt__spin_unlock(&nfd->lock);
    }
}

bool rt_netfd_rd_event_pending(rt_netfd_t *nfd)
{
    return atomic_load_explicit(&nfd->rd_ready, memory_order_relaxed);
}

int rt_wait_readable(rt_netfd_t *nfd, rt_time_t deadline)
{
    return netfd_wait(nfd, false, deadline);
}

int rt_wait_writable(rt_netfd_t *nfd, rt_time_t deadline)
{
    return netfd_wait(nfd, true, deadline);
}

/* ---- spawn on readiness ---- */

static void spawned_entry(void *arg)
{
    nwait_t *w = arg;
    rt_ready_fn *fn = w->fn;
    void *fn_arg = w->arg;
    int res = w->res;
    free(w);
    fn(fn_arg, res);
}

int rt_go_when_readable(rt_netfd_t *nfd, rt_ready_fn *fn, void *arg, rt_time_t deadline)
{
    rt__m_t *m = rt__getm();
    if (!m || !m->curg || !m->p || !fn)
        return RT_ESTATE;
    nwait_t *w = rt_xcalloc(1, sizeof(*w));
    *w = (nwait_t){.fn = fn, .arg = arg, .nfd = nfd, .deadline = deadline};
    rt__spin_lock(&nfd->lock);
    if (nfd->closing || nfd->rwait) {
        int err = nfd->closing ? RT_ECLOSED : RT_ESTATE;
        rt__spin_unlock(&nfd->lock);
        free(w);
        return err;
    }
    rt__g_t *g = NULL;
    if (atomic_load_explicit(&nfd->rd_ready, memory_order_relaxed)) {
        atomic_store_explicit(&nfd->rd_ready, false, memory_order_relaxed);
        w->res = RT_OK;
        w->deadline = RT_FOREVER;
        g = rt__newg_anywhere(spawned_entry, w);
    } else {
        nfd->rwait = w;
        atomic_fetch_add_explicit(&np.waiters, 1, memory_order_relaxed);
        deadline_arm(nfd, false, deadline);
    }
    rt__spin_unlock(&nfd->lock);
    if (g)
        rt__ready(g, false);
    return RT_OK;
}
