/* SPDX-License-Identifier: MIT */
/*
 * net.c - TCP on the netpoller: address parsing, listen, accept, connect,
 * read and write, each retrying its non-blocking syscall and parking the G
 * on EAGAIN until readiness or the deadline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/internal.h"

int rt_sockaddr_parse(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
    if (!hostport)
        return RT_EINVAL;
    char host[128];
    const char *colon;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (!end || end[1] != ':' || (size_t)(end - hostport - 1) >= sizeof(host))
            return RT_EINVAL;
        memcpy(host, hostport + 1, (size_t)(end - hostport - 1));
        host[end - hostport - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon || (size_t)(colon - hostport) >= sizeof(host))
            return RT_EINVAL;
        memcpy(host, hostport, (size_t)(colon - hostport));
        host[colon - hostport] = '\0';
    }
    char *endp;
    const char *ps = colon + 1;
    if (*ps < '0' || *ps > '9')
        return RT_EINVAL;
    unsigned long port = strtoul(ps, &endp, 10);
    if (*endp != '\0' || port > 65535)
        return RT_EINVAL;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
    } else if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
    } else {
        return RT_EINVAL;
    }
    return RT_OK;
}

int rt_listen(const struct sockaddr *addr, socklen_t len, int backlog, rt_netfd_t **out)
{
    int fd = rt__sys_socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(fd, addr, len) < 0 ? -rt_errno() : 0;
    if (rc == 0 && listen(fd, backlog > 0 ? backlog : 1024) < 0)
        rc = -rt_errno();
    if (rc == 0)
        rc = rt_netfd_open(fd, out);
    if (rc < 0)
        close(fd);
    return rc;
}

int rt_netfd_port(const rt_netfd_t *nfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(rt_netfd_fd(nfd), (struct sockaddr *)&ss, &len) < 0)
        return -rt_errno();
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * A G whose reads and writes never have to wait (a fast peer, a full
 * buffer) would never reach a scheduling point. Once sysmon has flagged
 * its P (a G held it for more than the hog threshold), the next successful
 * I/O call yields: cooperative preemption at a call the G makes anyway.
 */
static void preempt_point(void)
{
    rt__m_t *m = rt__getm();
    if (m && m->p && RT_UNLIKELY(atomic_load_explicit(&m->p->hog, memory_order_relaxed)))
        rt_yield();
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int rt_accept(rt_netfd_t *lnfd, rt_netfd_t **out, struct sockaddr_storage *peer, rt_time_t deadline)
{
    for (;;) {
        int c = rt__sys_accept4(rt_netfd_fd(lnfd), peer, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            set_nodelay(c);
            int rc = rt_netfd_open(c, out);
            if (rc < 0)
                close(c);
            return rc;
        }
        if (c == -ECONNABORTED || c == -EINTR)
            continue;
        if (c != -EAGAIN)
            return c;
        int rc = rt_wait_readable(lnfd, deadline);
        if (rc < 0)
            return rc;
    }
}

int rt_connect(const struct sockaddr *addr, socklen_t len, rt_netfd_t **out, rt_time_t deadline)
{
    int fd = rt__sys_socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    set_nodelay(fd);
    rt_netfd_t *nfd;
    int rc = rt_netfd_open(fd, &nfd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    rc = rt__sys_connect(fd, addr, len);
    if (rc == -EINPROGRESS) {
        for (;;) {
            rc = rt_wait_writable(nfd, deadline);
            if (rc < 0)
                break;
            rc = rt__sys_getsockopt_error(fd);
            if (rc != -EINPROGRESS && rc != -EALREADY)
                break;
        }
    }
    if (rc == RT_EAGAIN)
        rc = RT_ETIMEDOUT;
    if (rc < 0) {
        rt_netfd_close(nfd);
        return rc;
    }
    *out = nfd;
    return RT_OK;
}

ssize_t rt_read(rt_netfd_t *nfd, void *buf, size_t len, rt_time_t deadline)
{
    for (;;) {
        rt__netfd_read_begin(nfd);
        ssize_t n = rt__sys_read(rt_netfd_fd(nfd), buf, len);
        if (n >= 0 || (n != -EAGAIN && n != -EINTR)) {
            preempt_point();
            return n;
        }
        if (n == -EINTR)
            continue;
        int rc = rt_wait_readable(nfd, deadline);
        if (rc < 0)
            return rc;
    }
}

ssize_t rt_write(rt_netfd_t *nfd, const void *buf, size_t len, rt_time_t deadline)
{
    for (;;) {
        ssize_t n = rt__sys_write(rt_netfd_fd(nfd), buf, len);
        if (n >= 0 || (n != -EAGAIN && n != -EINTR)) {
            preempt_point();
            return n;
        }
        if (n == -EINTR)
            continue;
        int rc = rt_wait_writable(nfd, deadline);
        if (rc < 0)
            return rc;
    }
}

ssize_t rt_writev_all(rt_netfd_t *nfd, struct iovec *iov, int iovcnt, rt_time_t deadline)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    /* Empty entries at either end (a request without a body, say) would
     * only turn one send(2) into a sendmsg(2). */
    while (iovcnt > 0 && iov[iovcnt - 1].iov_len == 0)
        iovcnt--;
    while (iovcnt > 0 && iov->iov_len == 0) {
        iov++;
        iovcnt--;
    }
    while (iovcnt > 0) {
        ssize_t n = rt__sys_writev(rt_netfd_fd(nfd), iov, iovcnt);
        if (n == -EINTR)
            continue;
        if (n == -EAGAIN) {
            int rc = rt_wait_writable(nfd, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n < 0)
            return n;
        preempt_point();
        /* Skip what was written: whole entries, then part of the next. */
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return (ssize_t)total;
}

ssize_t rt_write_all(rt_netfd_t *nfd, const void *buf, size_t len, rt_time_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = rt_write(nfd, (const char *)buf + done, len - done, deadline);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)len;
}
