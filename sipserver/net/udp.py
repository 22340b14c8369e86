"""UDP sockets: bound by the master before forking, read by the receiver processes."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from ..core.runtime import SocketInfo

__all__ = ["BindError", "bind_error", "bind_udp", "serve_udp"]

MAX_DATAGRAM = 65535


class BindError(Exception):
    """A listen address that cannot be bound; the message says why for the operator."""


def bind_udp(info: SocketInfo, maxbuffer: int = 262144) -> socket.socket:
    """Open and bind the UDP socket of `info` (kept in `info.handle`)."""
    family = socket.AF_INET6 if ":" in info.ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, maxbuffer)
        except OSError:
            pass  # 1.6 probes down to what the kernel allows; the default is fine
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
        except OSError:
            pass
        sock.bind((info.ip, info.port))
    except OSError as e:
        sock.close()
        raise bind_error(f"udp:{info.ip}:{info.port}", e) from None
    info.handle = sock
    return sock


def bind_error(where: str, e: OSError) -> BindError:
    """The operator's version of a bind/listen failure on `where` (proto:ip:port)."""
    if e.errno == errno.EADDRINUSE:
        return BindError(f"cannot listen on {where}: address already in use"
                         " (is another SIP server running?)")
    if e.errno == errno.EACCES:
        return BindError(f"cannot listen on {where}: permission denied"
                         " (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
    if e.errno == errno.EADDRNOTAVAIL:
        return BindError(f"cannot listen on {where}: no such local address")
    return BindError(f"cannot listen on {where}: {e.strerror}")


def serve_udp(info: SocketInfo, handle: Callable[[bytes, str, int, SocketInfo], None],
              stopping: Callable[[], bool]) -> None:
    """The receiver loop: one datagram at a time into `handle(data, ip, port, info)`."""
    sock = info.handle
    recv = sock.recvfrom
    while not stopping():
        try:
            data, addr = recv(MAX_DATAGRAM)
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ECONNREFUSED):
                continue
            raise
        if len(data) < 2:
            continue  # keep-alive noise (CRLF, zero bytes)
        handle(data, addr[0], addr[1], info)
