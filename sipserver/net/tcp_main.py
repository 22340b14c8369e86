"""TCP main: the process that owns every TCP connection of the server.

It accepts connections on the TCP listen sockets, opens the outgoing ones,
and hands each connection's file descriptor (SCM_RIGHTS over a unix socket
pair) to one TCP worker, which from then on reads it (tcp_worker.py). TCP
main itself never reads a connection; it is the only writer: every process
that sends over TCP asks TCP main through the control socket (tcp.py,
`StreamSender`), so messages from several processes never interleave on a
connection. Writes are non-blocking; what the kernel does not take is
queued and flushed when the socket is writable.

Connections are found by id (the one the request came in on) or by the
remote address and its aliases. TCP main also enforces the limits:
`tcp_max_connections`, `tcp_connect_timeout` (outgoing connects),
`tcp_send_timeout` (queued data that makes no progress) and
`tcp_connection_lifetime` (idle connections: nothing read, nothing written).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..core.runtime import L_DBG, L_ERR, L_WARN, Runtime, SocketInfo
from . import tcp_ipc as ipc

__all__ = ["TcpMain", "norm_ip"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
CONTROL_BUFFER = ipc.MAX_DATAGRAM  # largest SEND request read from the control socket
MAX_QUEUED = 1 << 22  # bytes queued on one connection before it is given up


def norm_ip(ip: str) -> str:
    """One spelling per address (IPv6 compressed, no brackets)."""
    if ":" not in ip:
        return ip
    try:
        return ipaddress.ip_address(ip.strip("[]")).compressed
    except ValueError:
        return ip


@dataclass(eq=False, slots=True)
class _Peer:
    """A unix channel: a control client (any process) or a TCP worker."""

    sock: socket.socket
    kind: str  # "client" or "worker"
    index: int = -1  # the worker number
    out: deque[tuple[bytes, Any]] = field(default_factory=deque)  # (message, conn for NEW)
    conns: int = 0  # connections held by a worker
    closed: bool = False


@dataclass(eq=False, slots=True)
class _Conn:
    id: int
    sock: socket.socket
    ip: str
    port: int
    sock_index: int
    connecting: bool
    last: float  # last activity (read by a worker, written here), monotonic
    keep_until: float = 0.0  # kept open until then even when idle (LIFETIME)
    deadline: float = 0.0  # connect deadline
    out: bytearray = field(default_factory=bytearray)
    stalled: float = 0.0  # since when queued data makes no progress
    waiters: list[tuple[_Peer, int]] = field(default_factory=list)  # acks owed after connect
    aliases: list[tuple[str, int]] = field(default_factory=list)
    worker: _Peer | None = None
    watched: bool = False  # registered for write events
    closed: bool = False


class TcpMain:
    """The TCP main process body (`run()` never returns)."""

    def __init__(self, rt: Runtime, config: dict[str, Any], sockets: list[SocketInfo],
                 control: socket.socket, workers: list[socket.socket]) -> None:
        self.rt = rt
        self.sockets = sockets
        self.control = control
        self.max_connections = int(config.get("tcp_max_connections") or 2048)
        self.connect_timeout = float(config.get("tcp_connect_timeout") or 10)
        self.send_timeout = float(config.get("tcp_send_timeout") or 10)
        lifetime = config.get("tcp_connection_lifetime")
        self.lifetime = float(120 if lifetime is None else lifetime)
        self.tick = min(1.0, max(0.05, self.lifetime / 4))
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self.by_addr: dict[tuple[str, int], _Conn] = {}
        self.workers = [_Peer(w, "worker", i) for i, w in enumerate(workers)]
        self._next_id = 1
        self._rbuf = bytearray(CONTROL_BUFFER)
        self._uid = os.geteuid()

    # ------------------------------------------------------------ loop

    def run(self) -> None:
        sel = self.sel
        for index, info in enumerate(self.sockets):
            if info.proto == "tcp" and info.handle is not None:
                info.handle.setblocking(False)
                sel.register(info.handle, READ, ("listen", index))
        self.control.setblocking(False)
        sel.register(self.control, READ, ("control", None))
        for w in self.workers:
            w.sock.setblocking(False)
            sel.register(w.sock, READ, ("peer", w))
        next_tick = time.monotonic() + self.tick
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            for key, mask in sel.select(timeout):
                kind, obj = key.data
                try:
                    if kind == "conn":
                        self._conn_event(obj)
                    elif kind == "peer":
                        if mask & WRITE:
                            self._flush_peer(obj)
                        if mask & READ and not obj.closed:
                            self._peer_readable(obj)
                    elif kind == "listen":
                        self._accept(key.fileobj, obj)  # type: ignore[arg-type]
                    else:
                        self._accept_control()
                except Exception as e:  # one bad event must not stop TCP for everyone
                    self.rt.log(L_ERR, f"tcp main: {type(e).__name__}: {e}")
            now = time.monotonic()
            if now >= next_tick:
                self._expire(now)
                next_tick = now + self.tick

    # ------------------------------------------------------------ connections

    def _new_conn(self, sock: socket.socket, ip: str, port: int, index: int,
                  connecting: bool) -> _Conn:
        now = time.monotonic()
        conn = _Conn(self._next_id, sock, norm_ip(ip), port, index, connecting, now)
        self._next_id += 1
        self.conns[conn.id] = conn
        self._add_alias(conn, conn.ip, port)
        return conn

    def _add_alias(self, conn: _Conn, ip: str, port: int) -> None:
        key = (ip, port)
        if key not in conn.aliases:
            conn.aliases.append(key)
        self.by_addr[key] = conn

    def _accept(self, lsock: socket.socket, index: int) -> None:
        while True:
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors, aborted handshakes
                self.rt.log(L_ERR, f"tcp main: accept failed: {e.strerror or e}")
                return
            if len(self.conns) >= self.max_connections:
                self.rt.log(L_ERR, f"tcp main: too many connections ({self.max_connections});"
                                   f" refusing {addr[0]}:{addr[1]}")
                sock.close()
                continue
            _tune(sock)
            conn = self._new_conn(sock, addr[0], addr[1], index, False)
            self.rt.log(L_DBG, f"tcp main: connection {conn.id} from {addr[0]}:{addr[1]}")
            self._assign(conn)

    def _connect(self, ip: str, port: int, index: int) -> _Conn | None:
        if len(self.conns) >= self.max_connections:
            self.rt.log(L_ERR, f"tcp main: too many connections ({self.max_connections});"
                               f" cannot connect to {ip}:{port}")
            return None
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            self.rt.log(L_ERR, f"tcp main: cannot open a socket: {e.strerror or e}")
            return None
        _tune(sock)
        try:
            sock.connect((ip.strip("[]"), port))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            self.rt.log(L_ERR, f"tcp main: connect to {ip}:{port} failed: {e.strerror or e}")
            sock.close()
            return None
        if index < 0 or index >= len(self.sockets) or self.sockets[index].proto != "tcp":
            index = self._local_socket(sock)
        conn = self._new_conn(sock, ip, port, index, True)
        conn.deadline = conn.last + self.connect_timeout
        self._watch(conn, True)
        self.rt.log(L_DBG, f"tcp main: connection {conn.id} to {ip}:{port} being opened")
        return conn

    def _local_socket(self, sock: socket.socket) -> int:
        """The TCP listen socket matching a connection's local address (1.6 find_si)."""
        try:
            local = norm_ip(sock.getsockname()[0])
        except OSError:
            local = ""
        first = -1
        for i, s in enumerate(self.sockets):
            if s.proto != "tcp":
                continue
            if first < 0:
                first = i
            if norm_ip(s.ip) == local:
                return i
        return first

    def _connected(self, conn: _Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.rt.log(L_ERR, f"tcp main: connect to {conn.ip}:{conn.port} failed:"
                               f" {os.strerror(err)}")
            self._close(conn)
            return
        conn.connecting = False
        conn.last = time.monotonic()
        self.rt.log(L_DBG, f"tcp main: connection {conn.id} to {conn.ip}:{conn.port} open")
        self._assign(conn)
        waiters, conn.waiters = conn.waiters, []
        if conn.out:
            conn.stalled = conn.last
            self._flush_conn(conn)
        else:
            self._watch(conn, False)
        ok = not conn.closed
        for peer, seq in waiters:
            self._reply(peer, ipc.encode_ack(seq, ok, conn.id))

    def _conn_event(self, conn: _Conn) -> None:
        if conn.closed:
            return
        if conn.connecting:
            self._connected(conn)
        else:
            self._flush_conn(conn)

    def _watch(self, conn: _Conn, on: bool) -> None:
        if on and not conn.watched:
            self.sel.register(conn.sock, WRITE, ("conn", conn))
            conn.watched = True
        elif not on and conn.watched:
            self.sel.unregister(conn.sock)
            conn.watched = False

    def _write(self, conn: _Conn, data: bytes) -> bool:
        """Write now what the kernel takes, queue the rest; False when the connection broke."""
        now = time.monotonic()
        conn.last = now
        if conn.out:
            if len(conn.out) + len(data) > MAX_QUEUED:
                self.rt.log(L_ERR, f"tcp main: {conn.ip}:{conn.port} does not read;"
                                   " closing the connection")
                self._close(conn)
                return False
            conn.out += data
            return True
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as e:
            self.rt.log(L_ERR, f"tcp main: sending to {conn.ip}:{conn.port} failed:"
                               f" {e.strerror or e}")
            self._close(conn)
            return False
        if sent < len(data):
            conn.out += data[sent:]
            conn.stalled = now
            self._watch(conn, True)
        return True

    def _flush_conn(self, conn: _Conn) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.rt.log(L_ERR, f"tcp main: sending to {conn.ip}:{conn.port} failed:"
                                   f" {e.strerror or e}")
                self._close(conn)
                return
            if sent:
                del conn.out[:sent]
                conn.stalled = conn.last = time.monotonic()
        if not conn.out:
            conn.stalled = 0.0
            self._watch(conn, False)

    def _close(self, conn: _Conn, shutdown: bool = True) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.id, None)
        for key in conn.aliases:
            if self.by_addr.get(key) is conn:
                del self.by_addr[key]
        self._watch(conn, False)
        if shutdown:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)  # the worker's copy sees the end too
            except OSError:
                pass
        conn.sock.close()
        if conn.worker is not None:
            conn.worker.conns -= 1
        for peer, seq in conn.waiters:
            self._reply(peer, ipc.encode_ack(seq, False, conn.id))
        conn.waiters.clear()
        self.rt.log(L_DBG, f"tcp main: connection {conn.id} ({conn.ip}:{conn.port}) closed")

    def _expire(self, now: float) -> None:
        for conn in list(self.conns.values()):
            if conn.connecting:
                if now >= conn.deadline:
                    self.rt.log(L_ERR, f"tcp main: connect to {conn.ip}:{conn.port} timed out"
                                       f" after {self.connect_timeout:g}s")
                    self._close(conn)
            elif conn.out:
                if now - conn.stalled >= self.send_timeout:
                    self.rt.log(L_ERR, f"tcp main: send to {conn.ip}:{conn.port} timed out"
                                       f" after {self.send_timeout:g}s; closing the connection")
                    self._close(conn)
            elif now - conn.last >= self.lifetime and now >= conn.keep_until:
                self.rt.log(L_DBG, f"tcp main: connection {conn.id} idle for"
                                   f" {self.lifetime:g}s; closing it")
                self._close(conn)

    # ------------------------------------------------------------ workers

    def _assign(self, conn: _Conn) -> None:
        """Hand the connection to the least busy worker that is alive."""
        alive = [w for w in self.workers if not w.closed]
        if not alive:
            self.rt.log(L_ERR, "tcp main: no TCP worker left; closing the connection")
            self._close(conn)
            return
        worker = min(alive, key=lambda w: w.conns)
        worker.conns += 1
        conn.worker = worker
        self._reply(worker, ipc.encode_new(conn.id, conn.sock_index, conn.ip, conn.port), conn)

    def _worker_message(self, peer: _Peer, msg: bytes) -> None:
        kind = msg[:1]
        if kind == ipc.ACTIVITY:
            conn = self.conns.get(ipc.CONN.unpack_from(msg, 1)[0])
            if conn is not None:
                conn.last = time.monotonic()
        elif kind == ipc.CLOSED:
            conn = self.conns.get(ipc.CONN.unpack_from(msg, 1)[0])
            if conn is not None:
                self._close(conn)
        elif kind == ipc.ALIAS:
            conn_id, port = ipc.CONN_PORT.unpack_from(msg, 1)
            conn = self.conns.get(conn_id)
            if conn is not None and port:
                self._add_alias(conn, conn.ip, port)

    # ------------------------------------------------------------ control channel

    def _accept_control(self) -> None:
        while True:
            try:
                sock, _ = self.control.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.rt.log(L_ERR, f"tcp main: control accept failed: {e.strerror or e}")
                return
            try:
                creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
                _, uid, _ = struct.unpack("3i", creds)
            except OSError:
                uid = -1
            if uid not in (0, self._uid):
                self.rt.log(L_WARN, f"tcp main: control connection from uid {uid} refused")
                sock.close()
                continue
            sock.setblocking(False)
            peer = _Peer(sock, "client")
            self.sel.register(sock, READ, ("peer", peer))

    def _peer_readable(self, peer: _Peer) -> None:
        buf = self._rbuf
        for _ in range(64):  # then let the others have a turn
            try:
                n = peer.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                n = 0
            if n == 0:
                self._drop_peer(peer)
                return
            msg = bytes(buf[:n])
            try:
                if peer.kind == "worker":
                    self._worker_message(peer, msg)
                elif msg[:1] == ipc.SEND:
                    self._send_request(peer, msg)
                elif msg[:1] == ipc.LIFETIME:
                    conn_id, seconds = ipc.CONN_SECS.unpack_from(msg, 1)
                    conn = self.conns.get(conn_id)
                    if conn is not None:
                        conn.keep_until = time.monotonic() + seconds
            except (ValueError, struct.error, UnicodeDecodeError) as e:
                self.rt.log(L_ERR, f"tcp main: bad request on a channel: {e}")

    def _send_request(self, peer: _Peer, msg: bytes) -> None:
        seq, conn_id, index, ip, port, want_ack, data = ipc.decode_send(msg)
        conn = self.conns.get(conn_id) if conn_id else None
        if conn is None:
            conn = self.by_addr.get((norm_ip(ip), port))
        if conn is None:
            if not ip or not port:
                if want_ack:
                    self._reply(peer, ipc.encode_ack(seq, False, 0))
                return
            conn = self._connect(ip, port, index)
            if conn is None:
                if want_ack:
                    self._reply(peer, ipc.encode_ack(seq, False, 0))
                return
        if conn.connecting:
            conn.out += data
            if want_ack:
                conn.waiters.append((peer, seq))
            return
        ok = self._write(conn, data)
        if want_ack:
            self._reply(peer, ipc.encode_ack(seq, ok, conn.id))

    def _reply(self, peer: _Peer, msg: bytes, conn: _Conn | None = None) -> None:
        """Send a message on a channel; queued when the channel is full."""
        if peer.closed:
            return
        if not peer.out and self._peer_send(peer, msg, conn):
            return
        peer.out.append((msg, conn))
        self.sel.modify(peer.sock, READ | WRITE, ("peer", peer))

    def _peer_send(self, peer: _Peer, msg: bytes, conn: _Conn | None) -> bool:
        """True when the message is gone (sent, or pointless to send)."""
        try:
            if conn is None:
                peer.sock.send(msg)
            elif conn.closed:
                return True  # closed before the worker got it
            else:
                socket.send_fds(peer.sock, [msg], [conn.sock.fileno()])
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self._drop_peer(peer)
            else:
                self.rt.log(L_ERR, f"tcp main: channel send failed: {e.strerror or e}")
            return True
        return True

    def _flush_peer(self, peer: _Peer) -> None:
        while peer.out and not peer.closed:
            msg, conn = peer.out[0]
            if not self._peer_send(peer, msg, conn):
                return
            if peer.out:
                peer.out.popleft()
        if not peer.closed:
            self.sel.modify(peer.sock, READ, ("peer", peer))

    def _drop_peer(self, peer: _Peer) -> None:
        if peer.closed:
            return
        peer.closed = True
        peer.out.clear()
        try:
            self.sel.unregister(peer.sock)
        except (KeyError, ValueError):
            pass
        peer.sock.close()
        if peer.kind == "worker":
            self.rt.log(L_ERR, f"tcp main: TCP worker {peer.index} is gone")
            for conn in list(self.conns.values()):
                if conn.worker is peer:
                    conn.worker = None
                    self._close(conn)
        else:
            self.rt.log(L_DBG, "tcp main: a control client left")
            for conn in self.conns.values():
                conn.waiters = [(p, s) for p, s in conn.waiters if p is not peer]


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
