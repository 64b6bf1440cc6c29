/* SPDX-License-Identifier: MIT */
/*
 * access_log.c - one line per request, to stderr or a file. Request Gs never
 * write themselves: they queue the line on a channel with select/default
 * semantics (a full queue drops the line and counts it, so a slow disk or a
 * blocked stderr pipe cannot stall the data plane), and one writer G per log
 * batches lines into a single write() made as a blocking call (its P is
 * handed to another M meanwhile).
 *
 * A log stays open for the life of the process: configs naming the same
 * target share it, so a reload neither reopens files nor loses queued lines.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/proxy.h"

#define LOG_LINE_MAX 512
#define LOG_QUEUE 1024
#define LOG_BATCH 64

typedef struct log_line {
    uint16_t len;
    char text[LOG_LINE_MAX - sizeof(uint16_t)];
} log_line_t;

struct px_access_log {
    char *target;
    int fd;
    rt_chan_t *lines;
    _Atomic uint64_t dropped;
    _Atomic bool writing;
    px_access_log_t *next; /* every log, for px_access_log_flush_all */
};

static px_access_log_t *_Atomic all_logs;
static rt_mutex_t open_mu; /* serialises lookup-or-open */

static void writer_main(void *arg)
{
    px_access_log_t *log = arg;
    char *batch = rt_xmalloc(LOG_BATCH * LOG_LINE_MAX);
    log_line_t line;
    while (rt_chan_recv(log->lines, &line, RT_FOREVER) == RT_OK) {
        atomic_store(&log->writing, true);
        size_t len = 0;
        int n = 0;
        do {
            memcpy(batch + len, line.text, line.len);
            len += line.len;
        } while (++n < LOG_BATCH && rt_chan_recv(log->lines, &line, RT_NOWAIT) == RT_OK);
        rt_blocking_enter();
        for (size_t off = 0; off < len;) {
            ssize_t w = write(log->fd, batch + off, len - off);
            if (w <= 0) {
                break; /* nothing sensible to do about a failing log but go on */
            }
            off += (size_t)w;
        }
        rt_blocking_leave();
        atomic_store(&log->writing, false);
    }
    free(batch);
}

static px_access_log_t *open_new(const char *target, char *err, size_t errlen)
{
    int fd = STDERR_FILENO;
    if (strcmp(target, "-") != 0) {
        fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "access_log: cannot open %s: %s", target, strerror(rt_errno()));
            return NULL;
        }
    }
    px_access_log_t *log = rt_xcalloc(1, sizeof(*log));
    log->target = rt_xstrdup(target);
    log->fd = fd;
    log->lines = rt_chan_new(sizeof(log_line_t), LOG_QUEUE);
    int rc = rt_go(writer_main, log);
    RT_CHECK(rc == RT_OK, "cannot start the access log writer");
    log->next = atomic_load(&all_logs);
    while (!atomic_compare_exchange_weak(&all_logs, &log->next, log)) {
    }
    return log;
}

px_access_log_t *px_access_log_open(const char *target, char *err, size_t errlen)
{
    rt_mutex_lock(&open_mu);
    px_access_log_t *log = atomic_load(&all_logs);
    while (log && strcmp(log->target, target) != 0) {
        log = log->next;
    }
    if (!log) {
        log = open_new(target, err, errlen);
    }
    rt_mutex_unlock(&open_mu);
    return log;
}

void px_access_log_line(px_access_log_t *log, const char *text, size_t len)
{
    log_line_t line;
    if (len > sizeof(line.text)) {
        len = sizeof(line.text); /* truncated, but still one line */
    }
    memcpy(line.text, text, len);
    if (len == sizeof(line.text)) {
        line.text[len - 1] = '\n';
    }
    line.len = (uint16_t)len;
    if (rt_chan_send(log->lines, &line, RT_NOWAIT) != RT_OK) {
        atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
    }
}

void px_access_log_flush_all(rt_time_t deadline)
{
    for (px_access_log_t *log = atomic_load(&all_logs); log; log = log->next) {
        while ((rt_chan_len(log->lines) > 0 || atomic_load(&log->writing)) && rt_now() < deadline) {
            rt_sleep(RT_MSEC);
        }
    }
}
