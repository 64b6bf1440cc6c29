/* SPDX-License-Identifier: MIT */
/*
 * chan.c - channels: buffered and unbuffered send/receive, close, and the
 * wait queues shared with select.c (Go's chan.go).
 *
 * Invariants (under `lock`):
 *   - at most one of `recvq` and `sendq` is non-empty;
 *   - count > 0 implies recvq is empty; count < cap implies sendq is empty.
 * `lock` (an M-blocking spin lock) protects every field and the waiters
 * queued here; `count`, `closed` and the queue heads are also read without
 * it, by the non-blocking fast paths, which only ever conclude "not ready".
 *
 * A parked G's waiter lives on its stack. Whoever completes it (a partner
 * op, close, or the deadline timer) must first win the CAS on the waiter's
 * shared `done` word (0 -> 1 op, 0 -> 2 deadline); a select parks one waiter
 * per case that all share one `done`, so exactly one case fires. A partner
 * copies the element directly to or from the parked G's stack and readies it
 * into runnext, so a hand-off costs no buffer copy and no thread wake-up.
 *
 * Partners are readied only after `lock` is released. A G woken by its
 * deadline takes `lock` again to unlink its own waiter.
 *
 * Rejected: a lock-free MPMC ring for buffered channels - select needs to lock
 * several channels atomically, which a ring cannot join.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

struct rt_chan {
    _Atomic uint32_t lock;
    uint32_t elem_size;
    size_t cap;
    _Atomic size_t count;
    size_t recvx, sendx;
    _Atomic bool closed;
    rt__waitq_t recvq, sendq;
    char buf[];
};

/* ---- wait queues (caller holds the channel lock) ---- */

void rt__waitq_push(rt__waitq_t *q, rt__waiter_t *w)
{
    w->next = NULL;
    w->prev = q->tail;
    w->queued = true;
    if (q->tail)
        q->tail->next = w;
    else
        __atomic_store_n(&q->head, w, __ATOMIC_RELAXED);
    q->tail = w;
}

void rt__waitq_remove(rt__waitq_t *q, rt__waiter_t *w)
{
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        __atomic_store_n(&q->head, w->next, __ATOMIC_RELAXED);
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->queued = false;
    w->next = w->prev = NULL;
}

rt__waiter_t *rt__waitq_claim(rt__waitq_t *q)
{
    rt__waiter_t *w;
    while ((w = q->head) != NULL) {
        rt__waitq_remove(q, w);
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong(&w->w->done, &zero, 1)) {
            w->w->winner = w;
            return w;
        }
    }
    return NULL;
}

static inline bool waitq_empty(rt__waitq_t *q)
{
    return __atomic_load_n(&q->head, __ATOMIC_RELAXED) == NULL;
}

/* ---- channel internals shared with select.c ---- */

rt_chan_t *rt_chan_new(size_t elem_size, size_t capacity)
{
    RT_CHECK(elem_size <= 65536, "channel element too large");
    rt_chan_t *ch = rt_xcalloc(1, sizeof(*ch) + elem_size * capacity);
    ch->elem_size = (uint32_t)elem_size;
    ch->cap = capacity;
    return ch;
}

void rt_chan_free(rt_chan_t *ch)
{
    if (!ch)
        return;
    RT_CHECK(ch->recvq.head == NULL && ch->sendq.head == NULL, "freeing a channel with waiters");
    free(ch);
}

size_t rt_chan_len(rt_chan_t *ch)
{
    return atomic_load_explicit(&ch->count, memory_order_relaxed);
}

size_t rt_chan_cap(const rt_chan_t *ch)
{
    return ch->cap;
}

static inline void copy_elem(const rt_chan_t *ch, void *dst, const void *src)
{
    if (!dst || ch->elem_size == 0)
        return;
    if (src && ch->elem_size == sizeof(uint64_t)) {
        memcpy(dst, src, sizeof(uint64_t)); /* pointers and ints: one move, not a call */
        return;
    }
    if (src)
        memcpy(dst, src, ch->elem_size);
    else
        memset(dst, 0, ch->elem_size);
}

static inline char *slot(rt_chan_t *ch, size_t i)
{
    return ch->buf + i * ch->elem_size;
}

/* Lock-free "certainly cannot proceed now" (Go's full()/empty()). */
bool rt__chan_send_blocked(rt_chan_t *ch)
{
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed))
        return false;
    if (ch->cap == 0)
        return waitq_empty(&ch->recvq);
    return atomic_load_explicit(&ch->count, memory_order_relaxed) == ch->cap;
}

bool rt__chan_recv_blocked(rt_chan_t *ch)
{
    bool empty = ch->cap == 0 ? waitq_empty(&ch->sendq)
                              : atomic_load_explicit(&ch->count, memory_order_relaxed) == 0;
    /* closed is checked after empty: closed is monotonic, so "empty, then
     * not closed" proves both held at the moment emptiness was observed. */
    return empty && !atomic_load_explicit(&ch->closed, memory_order_acquire);
}

/* Tries to send without waiting; caller holds the lock. Returns true if done
 * (*res set), with a partner to ready in *partner. */
bool rt__chan_try_send_locked(rt_chan_t *ch, const void *elem, int *res, rt__g_t **partner)
{
    *partner = NULL;
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        *res = RT_ECLOSED;
        return true;
    }
    rt__waiter_t *w = rt__waitq_claim(&ch->recvq);
    if (w) {
        copy_elem(ch, w->elem, elem);
        w->success = true;
        *partner = w->w->g;
        *res = RT_OK;
        return true;
    }
    size_t count = atomic_load_explicit(&ch->count, memory_order_relaxed);
    if (count < ch->cap) {
        copy_elem(ch, slot(ch, ch->sendx), elem);
        ch->sendx = ch->sendx + 1 == ch->cap ? 0 : ch->sendx + 1;
        atomic_store_explicit(&ch->count, count + 1, memory_order_relaxed);
        *res = RT_OK;
        return true;
    }
    return false;
}

bool rt__chan_try_recv_locked(rt_chan_t *ch, void *elem, int *res, rt__g_t **partner)
{
    *partner = NULL;
    rt__waiter_t *w = rt__waitq_claim(&ch->sendq);
    if (w) {
        if (ch->cap == 0) {
            copy_elem(ch, elem, w->elem);
        } else {
            /* Buffer full: take its head, put the sender's element at the tail. */
            copy_elem(ch, elem, slot(ch, ch->recvx));
            copy_elem(ch, slot(ch, ch->recvx), w->elem);
            ch->recvx = ch->recvx + 1 == ch->cap ? 0 : ch->recvx + 1;
            ch->sendx = ch->recvx;
        }
        w->success = true;
        *partner = w->w->g;
        *res = RT_OK;
        return true;
    }
    size_t count = atomic_load_explicit(&ch->count, memory_order_relaxed);
    if (count > 0) {
        copy_elem(ch, elem, slot(ch, ch->recvx));
        ch->recvx = ch->recvx + 1 == ch->cap ? 0 : ch->recvx + 1;
        atomic_store_explicit(&ch->count, count - 1, memory_order_relaxed);
        *res = RT_OK;
        return true;
    }
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        copy_elem(ch, elem, NULL);
        *res = RT_ECLOSED;
        return true;
    }
    return false;
}

void rt__chan_lock(rt_chan_t *ch)
{
    rt__spin_lock(&ch->lock);
}

void rt__chan_unlock(rt_chan_t *ch)
{
    rt__spin_unlock(&ch->lock);
}

rt__waitq_t *rt__chan_queue(rt_chan_t *ch, bool send)
{
    return send ? &ch->sendq : &ch->recvq;
}

/* ---- blocking single-channel ops ---- */

typedef struct chan_park {
    rt__wait_t *pw;
    rt_time_t deadline;
    rt__timer_t timer;
} chan_park_t;

void rt__wait_deadline(rt__timer_t *t, void *arg)
{
    rt__wait_t *pw = arg;
    uint32_t zero = 0;
    (void)t;
    if (atomic_compare_exchange_strong(&pw->done, &zero, 2))
        rt__ready(pw->g, false);
}

static bool arm_chan_deadline(rt__g_t *g, void *arg)
{
    chan_park_t *cp = arg;
    (void)g;
    if (cp->deadline != RT_FOREVER)
        rt__timer_start(&cp->timer, cp->deadline, rt__wait_deadline, cp->pw);
    return true;
}

static int chan_wait(rt_chan_t *ch, bool send, void *elem, rt_time_t deadline)
{
    rt__wait_t pw = {.g = rt__getg()};
    RT_CHECK(pw.g != NULL, "blocking channel operation outside a G");
    rt__waiter_t me = {.w = &pw, .elem = elem, .ch = ch};
    rt__waitq_push(send ? &ch->sendq : &ch->recvq, &me);
    chan_park_t cp = {.pw = &pw, .deadline = deadline};
    cp.timer.index = -1;
    rt__park(&ch->lock, arm_chan_deadline, &cp);
    if (deadline != RT_FOREVER)
        rt__timer_stop(&cp.timer);
    if (atomic_load(&pw.done) == 1)
        return me.success ? RT_OK : RT_ECLOSED;
    rt__spin_lock(&ch->lock);
    rt__waitq_remove(send ? &ch->sendq : &ch->recvq, &me);
    rt__spin_unlock(&ch->lock);
    return RT_ETIMEDOUT;
}

/* One send or receive: lock-free "not ready" for RT_NOWAIT, then under the
 * lock a partner or the buffer, else wait until the deadline. */
static inline int chan_op(rt_chan_t *ch, bool send, void *elem, rt_time_t deadline)
{
    if (deadline == RT_NOWAIT && (send ? rt__chan_send_blocked(ch) : rt__chan_recv_blocked(ch)))
        return RT_EAGAIN;
    int res;
    rt__g_t *partner;
    rt__spin_lock(&ch->lock);
    if (send ? rt__chan_try_send_locked(ch, elem, &res, &partner)
             : rt__chan_try_recv_locked(ch, elem, &res, &partner)) {
        rt__spin_unlock(&ch->lock);
        if (partner)
            rt__ready(partner, true);
        return res;
    }
    if (deadline == RT_NOWAIT || rt__past(deadline)) {
        rt__spin_unlock(&ch->lock);
        return RT_EAGAIN;
    }
    return chan_wait(ch, send, elem, deadline);
}

int rt_chan_send(rt_chan_t *ch, const void *elem, rt_time_t deadline)
{
    return chan_op(ch, true, (void *)elem, deadline);
}

int rt_chan_recv(rt_chan_t *ch, void *elem, rt_time_t deadline)
{
    return chan_op(ch, false, elem, deadline);
}

int rt_chan_close(rt_chan_t *ch)
{
    rt__spin_lock(&ch->lock);
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        rt__spin_unlock(&ch->lock);
        return RT_ECLOSED;
    }
    atomic_store_explicit(&ch->closed, true, memory_order_release);
    rt__g_t *list = NULL;
    rt__waiter_t *w;
    while ((w = rt__waitq_claim(&ch->recvq)) != NULL) {
        copy_elem(ch, w->elem, NULL);
        w->success = false;
        w->w->g->schedlink = list;
        list = w->w->g;
    }
    while ((w = rt__waitq_claim(&ch->sendq)) != NULL) {
        w->success = false;
        w->w->g->schedlink = list;
        list = w->w->g;
    }
    rt__spin_unlock(&ch->lock);
    while (list) {
        rt__g_t *next = list->schedlink;
        rt__ready(list, false);
        list = next;
    }
    return RT_OK;
}
