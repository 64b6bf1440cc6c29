/* SPDX-License-Identifier: MIT */
/*
 * sys_linux.c - the syscalls the runtime makes, each in a noinline function
 * returning -errno. errno lives in thread-local storage and compilers cache
 * its address across calls; a G that parks may resume on another thread, so
 * errno is read here, right after the call, and nowhere else (STYLE §II.3).
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"

/*
 * The data path: recv/send first, since on a socket they skip the VFS layer
 * (file position lock, permission hooks) that read/write go through; ENOTSOCK
 * (a pipe, say) falls back to read/write. Through syscall(2), not the libc
 * wrappers: those are thread cancellation points and pay two atomic
 * operations per call for it; the runtime never cancels a thread.
 */
ssize_t rt__sys_read(int fd, void *buf, size_t len)
{
    ssize_t n = syscall(SYS_recvfrom, fd, buf, len, 0, NULL, NULL);
    if (n < 0 && errno == ENOTSOCK)
        n = syscall(SYS_read, fd, buf, len);
    return n < 0 ? -errno : n;
}

ssize_t rt__sys_write(int fd, const void *buf, size_t len)
{
    ssize_t n = syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0);
    if (n < 0 && errno == ENOTSOCK)
        n = syscall(SYS_write, fd, buf, len);
    return n < 0 ? -errno : n;
}

ssize_t rt__sys_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt == 1)
        return rt__sys_write(fd, iov->iov_base, iov->iov_len);
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n = syscall(SYS_sendmsg, fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
        n = syscall(SYS_writev, fd, iov, iovcnt);
    return n < 0 ? -errno : n;
}

int rt__sys_accept4(int fd, struct sockaddr_storage *ss, int flags)
{
    socklen_t len = sizeof(*ss);
    int c = accept4(fd, (struct sockaddr *)ss, ss ? &len : NULL, flags);
    return c < 0 ? -errno : c;
}

int rt__sys_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    return connect(fd, sa, len) < 0 ? -errno : 0;
}

int rt__sys_socket(int domain, int type, int proto)
{
    int fd = socket(domain, type, proto);
    return fd < 0 ? -errno : fd;
}

int rt__sys_getsockopt_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int rt__sys_epoll_wait(int epfd, void *events, int max, rt_time_t timeout_ns)
{
    int n;
    if (timeout_ns < 0) {
        n = epoll_wait(epfd, events, max, -1);
    } else if (timeout_ns == 0) {
        n = epoll_wait(epfd, events, max, 0);
    } else {
        /* epoll_pwait2 takes a timespec: microsecond-class timer precision,
         * where epoll_wait's milliseconds would make every sleep ~1 ms late. */
        struct timespec ts = {.tv_sec = timeout_ns / RT_SEC, .tv_nsec = timeout_ns % RT_SEC};
        n = epoll_pwait2(epfd, events, max, &ts, NULL);
    }
    return n < 0 ? -errno : n;
}

pid_t rt__sys_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}
