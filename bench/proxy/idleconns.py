#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench/proxy/idleconns.py - holds N idle keep-alive connections open to a proxy. Usage:
#   idleconns.py HOST PORT N
# Opens the connections one after the other, sends one GET / on each and reads the whole
# response (so each is a real kept-alive HTTP connection, and the proxy has touched its
# buffers), then prints "open K" (K = connections that got a complete response) on stdout
# and holds them idle. On SIGTERM it prints "still-open M" (those the proxy has not closed
# meanwhile) and exits. Stops early, and says why on stderr, at the first failure
# (descriptor limit, refused connection, closed or incomplete response).
import os
import select
import signal
import socket
import sys
import time


def read_response(s):
    """Reads one response with a Content-Length body; True if it is a complete 200."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        return False
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        return False
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        rest += chunk
    return True


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    req = b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUser-Agent: idleconns\r\n\r\n"
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(req)
            if not read_response(s):
                print(f"idleconns: connection {i + 1}: bad or closed response", file=sys.stderr)
                s.close()
                break
        except OSError as e:
            print(f"idleconns: connection {i + 1}: {e}", file=sys.stderr)
            break
        socks.append(s)
    print(f"open {len(socks)}", flush=True)

    def done(signum, frame):
        p = select.poll()
        for s in socks:
            p.register(s.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        closed = len(p.poll(0))  # idle connections only become readable at EOF or error
        print(f"still-open {len(socks) - closed}", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, done)
    signal.signal(signal.SIGINT, done)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
