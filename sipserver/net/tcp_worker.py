"""A TCP worker: reads the connections TCP main hands to it.

TCP main passes each connection's descriptor over the worker's unix socket
pair (SCM_RIGHTS); from then on this process alone reads it, cuts the
stream into messages (tcp_framing.py) and runs each one through the
receive path, like a UDP receiver does with datagrams. It writes nothing
on the connections itself: replies and pongs go through TCP main (the
`StreamSender`), the only writer. A stream that cannot be framed
(garbage, a message without Content-Length, oversize) is closed.
"""

from __future__ import annotations

import array
import os
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.receive import Receiver
from ..core.runtime import L_DBG, L_WARN, Runtime, SocketInfo
from . import tcp_ipc as ipc
from .tcp_framing import MAX_MESSAGE, PING, StreamFramer, top_via_info

__all__ = ["TcpWorker"]

READ_SIZE = 65536
CRLF = b"\r\n"


@dataclass(eq=False, slots=True)
class _Conn:
    id: int
    sock: socket.socket
    ip: str
    port: int
    rcv: SocketInfo
    framer: StreamFramer = field(default_factory=lambda: StreamFramer(MAX_MESSAGE))
    reported: float = 0.0  # when activity was last reported to TCP main


class TcpWorker:
    """The TCP worker process body (`run()` returns only when TCP main is gone)."""

    def __init__(self, rt: Runtime, config: dict[str, Any], sockets: list[SocketInfo],
                 channel: socket.socket, sender: Any) -> None:
        self.rt = rt
        self.sockets = sockets
        self.channel = channel
        self.sender = sender
        self.pingpong = bool(config.get("tcp_crlf_pingpong", 1))
        self.accept_aliases = bool(config.get("tcp_accept_aliases"))
        lifetime = config.get("tcp_connection_lifetime")
        lifetime = float(120 if lifetime is None else lifetime)
        self.report_every = min(1.0, max(0.02, lifetime / 4))
        self.sel = selectors.DefaultSelector()
        self.receiver: Receiver | None = None

    def run(self) -> None:
        self.receiver = Receiver(self.rt)
        self.channel.setblocking(True)
        self.sel.register(self.channel, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select():
                if key.data is None:
                    if not self._channel_readable():
                        return
                else:
                    self._readable(key.data)

    # ------------------------------------------------------------ channel

    def _channel_readable(self) -> bool:
        """Take the connections TCP main hands over; False when TCP main is gone."""
        while True:
            try:
                msg, fds = _recv_fds(self.channel)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not msg and not fds:
                return False
            if msg[:1] != ipc.NEW or not fds:
                for fd in fds:
                    _close_fd(fd)
                continue
            for fd in fds[1:]:
                _close_fd(fd)
            conn_id, index, ip, port = ipc.decode_new(msg)
            sock = socket.socket(fileno=fds[0])
            sock.setblocking(False)
            rcv = self.sockets[index] if 0 <= index < len(self.sockets) else None
            if rcv is None:
                rcv = next((s for s in self.sockets if s.proto == "tcp"), None)
            if rcv is None:
                sock.close()
                self._notify(ipc.CLOSED + ipc.CONN.pack(conn_id))
                continue
            conn = _Conn(conn_id, sock, ip, port, rcv)
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _notify(self, msg: bytes) -> None:
        try:
            self.channel.send(msg)
        except OSError:
            pass  # TCP main is gone; the channel read will tell

    # ------------------------------------------------------------ connections

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.rt.log(L_DBG, f"tcp: read from {conn.ip}:{conn.port} failed: {e}")
            self._drop(conn, shutdown=False)
            return
        if not data:
            self._drop(conn, shutdown=False)
            return
        now = time.monotonic()
        if now - conn.reported >= self.report_every:
            conn.reported = now
            self._notify(ipc.ACTIVITY + ipc.CONN.pack(conn.id))
        framer = conn.framer
        for frame in framer.feed(data):
            if frame == PING:
                if self.pingpong:
                    self.sender.send_on(conn.id, CRLF)
            else:
                self._dispatch(conn, frame)
        if framer.error is not None:
            self.rt.log(L_WARN, f"tcp: bad stream from {conn.ip}:{conn.port}: {framer.error};"
                                " closing the connection")
            self._drop(conn, shutdown=True)

    def _dispatch(self, conn: _Conn, frame: bytes) -> None:
        via_port = None
        if not frame.startswith(b"SIP/"):
            via_port, alias = top_via_info(frame)
            if alias and self.accept_aliases and via_port:
                self._notify(ipc.ALIAS + ipc.CONN_PORT.pack(conn.id, via_port))
        sender = self.sender
        sender.hint = (conn.id, conn.ip, conn.port, via_port)
        try:
            self.receiver.handle(frame, conn.ip, conn.port, conn.rcv,  # type: ignore[union-attr]
                                 proto="tcp", conn=conn.id)
        finally:
            sender.hint = None

    def _drop(self, conn: _Conn, shutdown: bool) -> None:
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if shutdown:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.sock.close()
        self._notify(ipc.CLOSED + ipc.CONN.pack(conn.id))


def _recv_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One message and the descriptors it carries, without blocking.

    (socket.recv_fds of Python 3.11 ignores its flags argument.)
    """
    fds = array.array("i")
    msg, ancdata, _, _ = sock.recvmsg(256, socket.CMSG_LEN(4 * fds.itemsize),
                                      socket.MSG_DONTWAIT)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
