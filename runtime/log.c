/* SPDX-License-Identifier: MIT */
/*
 * log.c - one-line logging to stderr and rt_panic (Go's throw). Each line is
 * formatted into a local buffer and written with a single write(2), so lines
 * from different threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/base.h"

static _Atomic int min_level = -1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static int current_level(void)
{
    int lvl = atomic_load_explicit(&min_level, memory_order_relaxed);
    if (lvl >= 0)
        return lvl;
    lvl = RT_LOG_INFO;
    const char *env = getenv("REMORA_LOG");
    for (int i = 0; env && i < (int)RT_ARRAY_LEN(level_names); i++) {
        if (strcmp(env, level_names[i]) == 0)
            lvl = i;
    }
    atomic_store_explicit(&min_level, lvl, memory_order_relaxed);
    return lvl;
}

void rt_log_set_level(rt_log_level_t level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

void rt_vlog(rt_log_level_t level, const char *fmt, va_list ap)
{
    if ((int)level < current_level())
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "remora %s: ", level_names[level]);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t rc = write(STDERR_FILENO, line, len);
    (void)rc;
}

void rt_log(rt_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rt_vlog(level, fmt, ap);
    va_end(ap);
}

void rt_panic_at(const char *file, int line, const char *fmt, ...)
{
    char msg[768], out[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int n = snprintf(out, sizeof(out), "runtime: %s (%s:%d)\n", msg, file, line);
    ssize_t rc = write(STDERR_FILENO, out, (size_t)(n < 0 ? 0 : n));
    (void)rc;
    abort();
}

int rt_errno(void)
{
    return errno;
}
