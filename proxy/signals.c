/* SPDX-License-Identifier: MIT */
/*
 * signals.c - process signals as runtime events: SIGTERM, SIGINT and SIGHUP
 * are blocked in every thread and read from a signalfd by one G, so a signal
 * never interrupts a G mid-operation. SIGTERM and SIGINT start the drain;
 * SIGHUP reloads the -c file (reload.c; the result goes to the log).
 */
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "proxy/proxy.h"

static sigset_t handled_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    return set;
}

void px_signals_block(void)
{
    sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void signal_loop(void *arg)
{
    px_server_t *srv = arg;
    sigset_t set = handled_signals();
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    rt_netfd_t *nfd;
    if (fd < 0 || rt_netfd_open(fd, &nfd) != RT_OK) {
        rt_log(RT_LOG_ERROR, "signals: cannot watch SIGTERM/SIGHUP; drain only via POST /drain");
        return;
    }
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = rt_read(nfd, &si, sizeof(si), RT_FOREVER);
        if (n != (ssize_t)sizeof(si)) {
            continue;
        }
        if (si.ssi_signo == SIGHUP) {
            px_reload_t res;
            px_server_reload_file(srv, "SIGHUP", &res);
            cfg_errors_destroy(&res.errs);
            continue;
        }
        px_server_drain(srv);
    }
}

void px_signals_start(px_server_t *srv)
{
    int rc = rt_go(signal_loop, srv);
    RT_CHECK(rc == RT_OK, "cannot start the signal G");
}
