"""SIP over TCP: listen sockets, the TCP processes and the sender every process uses.

Processes (1.6's model, `tcp_children` workers):

- the master binds the TCP listen sockets (`bind_tcp`) before forking and,
  in `add_children`, makes the unix sockets the TCP processes talk over:
  one control socket (SOCK_SEQPACKET, abstract name, same user only) and
  one socket pair per worker;
- TCP main (tcp_main.py) owns every connection: it accepts, connects, hands
  each connection's descriptor to a worker (fd passing), is the only writer,
  and closes idle connections after `tcp_connection_lifetime`;
- TCP workers (tcp_worker.py) read and frame the connections they are given
  and run the messages through the receive path.

Sending from any process (UDP receivers forwarding to a TCP next hop, TCP
workers replying, the timer process) goes through `StreamSender`, which is
`rt.transport.stream_sender`: it asks TCP main, over the control socket, to
write the message on the connection to the destination (opening one,
within `tcp_connect_timeout`, when there is none) and waits for the answer.
A reply to a request read from a TCP connection goes back on that
connection: the connection is found by the remote address and port (and
its aliases); a worker also knows the connection of the request it is
handling, so a reply to the request's Via port (no `rport`) still takes it,
as 1.6 does with the connection id of the request.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from typing import Any

from ..core.runtime import Destination, Runtime, SocketInfo
from . import tcp_ipc as ipc
from .udp import bind_error

__all__ = ["StreamSender", "add_children", "bind_tcp"]

LISTEN_BACKLOG = 1024


def bind_tcp(info: SocketInfo, config: dict[str, Any] | None = None) -> socket.socket:
    """Open, bind and listen on the TCP socket of `info` (kept in `info.handle`)."""
    family = socket.AF_INET6 if ":" in info.ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    where = f"tcp:{info.ip}:{info.port}"
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, int((config or {}).get("tos")
                                                                  or 0x10))
        except (OSError, ValueError, TypeError):
            pass
        sock.bind((info.ip, info.port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as e:
        sock.close()
        raise bind_error(where, e) from None
    info.handle = sock
    return sock


class StreamSender:
    """`stream_sender(sock, dest, data[, conn]) -> bool`, usable in every process.

    Each process connects to TCP main's control socket the first time it
    sends (a fork gets its own connection), sends the request and waits for
    TCP main's answer: True once the data is written or queued on the
    connection. `hint` is set by a TCP worker while it handles a message:
    (connection id, source ip, source port, top Via port).
    """

    def __init__(self, address: bytes | str, sockets: list[SocketInfo],
                 timeout: float) -> None:
        self.address = address
        self.sockets = sockets
        self.timeout = timeout
        self.hint: tuple[int, str, int, int | None] | None = None
        self._sock: socket.socket | None = None
        self._pid = 0
        self._seq = 0

    def __call__(self, sock: SocketInfo, dest: Destination, data: bytes,
                 conn: int | None = None) -> bool:
        return self.send(sock, dest, data, conn or 0)

    def send(self, sock: SocketInfo | None, dest: Destination, data: bytes,
             conn_id: int = 0) -> bool:
        """Send `data` over TCP to `dest` (on connection `conn_id` if it still exists)."""
        if dest.proto != "tcp" or len(data) > ipc.MAX_DATA:
            return False
        hint = self.hint
        if not conn_id and hint is not None and dest.ip == hint[1] \
                and dest.port in (hint[2], hint[3]):
            conn_id = hint[0]
        index = -1
        for i, s in enumerate(self.sockets):
            if s is sock:
                index = i
                break
        return self._request(conn_id, index, dest.ip, dest.port, data, True)

    def set_lifetime(self, conn_id: int, seconds: int) -> bool:
        """Keep connection `conn_id` open `seconds` from now, idle or not."""
        s = self._channel()
        if s is None:
            return False
        try:
            s.send(ipc.encode_lifetime(conn_id, seconds))
        except OSError:
            self._reset()
            return False
        return True

    def send_on(self, conn_id: int, data: bytes) -> None:
        """Write on a connection without waiting (keep-alive answers)."""
        self._request(conn_id, -1, "", 0, data, False)

    def _channel(self) -> socket.socket | None:
        pid = os.getpid()
        if self._sock is not None and self._pid == pid:
            return self._sock
        if self._sock is not None:
            self._sock.close()  # inherited from the parent: not ours to use
            self._sock = None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        except OSError:
            pass
        s.settimeout(self.timeout)
        try:
            s.connect(self.address)
        except OSError:
            s.close()
            return None
        self._sock, self._pid = s, pid
        return s

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _request(self, conn_id: int, index: int, ip: str, port: int, data: bytes,
                 want_ack: bool) -> bool:
        s = self._channel()
        if s is None:
            return False
        self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
        try:
            s.send(ipc.encode_send(seq, conn_id, index, ip, port, want_ack, data))
            if not want_ack:
                return True
            while True:
                answer = s.recv(64)
                if not answer:
                    self._reset()
                    return False
                if answer[:1] != ipc.ACK:
                    continue
                got, ok, _ = ipc.decode_ack(answer)
                if got == seq:
                    return ok
        except TimeoutError:
            return False  # a late answer is skipped by its sequence number
        except OSError as e:
            if e.errno != errno.EMSGSIZE:
                self._reset()
            return False


def add_children(master: Any, rt: Runtime, config: dict[str, Any]) -> None:
    """Register TCP main and the TCP workers with the master; install the sender."""
    from .tcp_main import TcpMain
    from .tcp_worker import TcpWorker

    sockets = rt.sockets
    count = int(config.get("tcp_children") or config.get("children") or 8)
    count = max(1, count)
    address = f"\0sipserver-tcp-{os.getpid()}-{secrets.token_hex(8)}".encode()
    control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    control.bind(address)
    control.listen(512)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(count)]
    timeout = float(config.get("tcp_connect_timeout") or 10) + 2.0
    sender = StreamSender(address, sockets, timeout)
    if rt.transport is not None:
        rt.transport.stream_sender = sender  # type: ignore[attr-defined]

    def run_main() -> None:
        for _, theirs in pairs:
            theirs.close()
        TcpMain(rt, config, sockets, control, [ours for ours, _ in pairs]).run()

    def worker_runner(i: int) -> Any:
        def run() -> None:
            control.close()
            for j, (ours, theirs) in enumerate(pairs):
                ours.close()
                if j != i:
                    theirs.close()
            for s in sockets:
                if s.proto == "tcp" and s.handle is not None:
                    s.handle.close()  # only TCP main accepts
            TcpWorker(rt, config, sockets, pairs[i][1], sender).run()
        return run

    master.add_child("TCP main", run_main)
    for i in range(count):
        master.add_child(f"TCP receiver child={i}", worker_runner(i))

    def close_all() -> None:
        control.close()
        for a, b in pairs:
            a.close()
            b.close()

    master.on_exit.append(close_all)
