/* SPDX-License-Identifier: MIT */
/*
 * base.h - assertions, branch hints, logging and abort-on-OOM allocation
 * shared by every layer of remora. No runtime state lives here.
 */
#ifndef RT_BASE_H
#define RT_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RT_LIKELY(x) __builtin_expect(!!(x), 1)
#define RT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RT_MUST_CHECK __attribute__((warn_unused_result))
#define RT_NORETURN __attribute__((noreturn))
#define RT_NOINLINE __attribute__((noinline))
#define RT_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define RT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RT_CACHE_LINE 64

/** Aborts with "runtime: MSG (file:line)"; for corrupted state (Go's throw). */
RT_NORETURN void rt_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define rt_panic(...) rt_panic_at(__FILE__, __LINE__, __VA_ARGS__)

/* Always-on invariant check. */
#define RT_CHECK(cond, msg)                                                                        \
    do {                                                                                           \
        if (RT_UNLIKELY(!(cond)))                                                                  \
            rt_panic_at(__FILE__, __LINE__, "%s (%s)", (msg), #cond);                              \
    } while (0)

#ifdef NDEBUG
#define RT_ASSERT(cond) ((void)0)
#else
#define RT_ASSERT(cond) RT_CHECK(cond, "assertion failed")
#endif
#define RT_UNREACHABLE() rt_panic_at(__FILE__, __LINE__, "unreachable")

typedef enum rt_log_level {
    RT_LOG_DEBUG = 0,
    RT_LOG_INFO,
    RT_LOG_WARN,
    RT_LOG_ERROR,
} rt_log_level_t;

/** Writes one line "remora LEVEL: message" to stderr (one write(2), so lines never interleave). */
void rt_log(rt_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rt_vlog(rt_log_level_t level, const char *fmt, va_list ap);
/** Sets the lowest level printed (default RT_LOG_INFO; env REMORA_LOG=debug|info|warn|error). */
void rt_log_set_level(rt_log_level_t level);

/** Allocation that aborts on OOM; never returns NULL. Caller owns the result. */
void *rt_xmalloc(size_t size);
void *rt_xcalloc(size_t n, size_t size);
void *rt_xrealloc(void *p, size_t size);
char *rt_xstrdup(const char *s);
#define RT_FREE_NULL(p)                                                                            \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

/** Returns the current thread's errno through a non-inlined call (safe after a G migrates). */
RT_NOINLINE int rt_errno(void);

#endif /* RT_BASE_H */
