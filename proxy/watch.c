/* SPDX-License-Identifier: MIT */
/*
 * watch.c - `--watch`: reloads the -c file when it changes.
 *
 * inotify watches the file's directory rather than the file: editors save by
 * writing a temporary file and renaming it over the old one, and Kubernetes
 * updates a mounted ConfigMap by swapping a symlink ("..data"), and neither
 * would be seen by a watch on the old inode. Events about other files (an
 * access log next to the config) are ignored. A relevant event, once the
 * directory has been quiet for 100 ms (a save is several events; at most a
 * second is waited), re-reads the file; it is reloaded only when its bytes
 * differ from the last ones read, so edits made through the admin API are
 * not overwritten until the file itself changes.
 */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "proxy/proxy.h"

#define WATCH_QUIET (100 * RT_MSEC)
#define WATCH_SETTLE_MAX RT_SEC

typedef struct watch {
    px_server_t *srv;
    rt_netfd_t *nfd;
    char *name; /* the file's name in its directory */
    char *last; /* the file's bytes when last read (NULL: unreadable) */
} watch_t;

/* Whether a batch of events may concern the config: its own name, a "..x" of a ConfigMap, or
 * lost events. */
static bool relevant(const watch_t *w, const char *buf, ssize_t len)
{
    for (ssize_t off = 0; off < len;) {
        const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
        if ((ev->mask & IN_Q_OVERFLOW) ||
            (ev->len > 0 && (strcmp(ev->name, w->name) == 0 || strncmp(ev->name, "..", 2) == 0))) {
            return true;
        }
        off += (ssize_t)(sizeof(*ev) + ev->len);
    }
    return false;
}

/* Reads the file; returns true when its bytes changed since the last read. */
static bool file_changed(watch_t *w)
{
    rt_blocking_enter();
    char *now = px_read_file(w->srv->config_path, NULL);
    rt_blocking_leave();
    bool changed = now && (!w->last || strcmp(now, w->last) != 0);
    if (now) {
        free(w->last);
        w->last = now;
    }
    return changed;
}

static void watch_main(void *arg)
{
    watch_t *w = arg;
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = rt_read(w->nfd, events, sizeof(events), RT_FOREVER);
        if (n <= 0) {
            rt_log(RT_LOG_ERROR, "--watch: inotify failed; use SIGHUP or POST /reload");
            return;
        }
        if (!relevant(w, events, n)) {
            continue;
        }
        rt_time_t settle_by = rt_deadline_in(WATCH_SETTLE_MAX);
        while (rt_now() < settle_by &&
               rt_read(w->nfd, events, sizeof(events), rt_deadline_in(WATCH_QUIET)) > 0) {
            /* wait for the directory to be quiet */
        }
        if (!file_changed(w)) {
            continue;
        }
        px_reload_t res;
        px_server_reload_file(w->srv, "--watch", &res);
        cfg_errors_destroy(&res.errs);
    }
}

void px_watch_start(px_server_t *srv)
{
    char *copy = rt_xstrdup(srv->config_path);
    const char *dir = dirname(copy);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    rt_netfd_t *nfd = NULL;
    if (fd < 0 ||
        inotify_add_watch(fd, dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY) < 0 ||
        rt_netfd_open(fd, &nfd) != RT_OK) {
        rt_log(RT_LOG_ERROR, "--watch: cannot watch %s: %s", dir, rt_strerror(-rt_errno()));
        if (fd >= 0 && !nfd) {
            close(fd);
        }
        free(copy);
        return;
    }
    free(copy);
    watch_t *w = rt_xcalloc(1, sizeof(*w));
    w->srv = srv;
    w->nfd = nfd;
    copy = rt_xstrdup(srv->config_path);
    w->name = rt_xstrdup(basename(copy));
    free(copy);
    (void)file_changed(w); /* what the running config was read from */
    int rc = rt_go(watch_main, w);
    RT_CHECK(rc == RT_OK, "cannot start the config watcher");
    rt_log(RT_LOG_INFO, "watching %s", srv->config_path);
}
