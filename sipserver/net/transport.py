"""The real Transport: next-hop resolution and sending through our sockets."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from ..core.runtime import DEFAULT_PORTS, Destination, SocketInfo

__all__ = ["NetTransport"]


class NetTransport:
    """Sends from the listening sockets; resolves names through a SIP resolver.

    `resolver`, when given, has `resolve(host, port, proto, is_sips) ->
    list[Destination]` (RFC 3263, core/dns.py); without one, names go
    through getaddrinfo. `stream_sender(sock, dest, data[, conn]) -> bool`
    sends over TCP (the TCP layer fills it in); `conn` is a connection id.
    """

    def __init__(self, sockets: list[SocketInfo], resolver: Any = None,
                 stream_sender: Callable[..., bool] | None = None,
                 try_ipv6: bool = False) -> None:
        self.sockets = sockets
        self.resolver = resolver
        self.stream_sender = stream_sender
        self.try_ipv6 = try_ipv6
        self._literals: dict[str, str | None] = {}  # host text -> normalized IP, or None

    # ------------------------------------------------------------ resolve

    def resolve(self, host: str, port: int | None, proto: str | None,
                is_sips: bool = False) -> list[Destination]:
        p = proto or ("tls" if is_sips else "udp")
        ip = self._literals.get(host, "")
        if ip == "":
            ip = _ip_literal(host)
            if len(self._literals) < 4096:
                self._literals[host] = ip
        h = host.strip("[]")
        if ip is not None:
            return [Destination(p, ip, port or DEFAULT_PORTS.get(p, 5060))]
        if self.resolver is not None:
            return list(self.resolver.resolve(h, port, proto, is_sips))
        families = (socket.AF_INET, socket.AF_INET6) if self.try_ipv6 else (socket.AF_INET,)
        out: list[Destination] = []
        for fam in families:
            try:
                infos = socket.getaddrinfo(h, None, fam, socket.SOCK_DGRAM)
            except OSError:
                continue
            for info in infos:
                d = Destination(p, str(info[4][0]), port or DEFAULT_PORTS.get(p, 5060))
                if d not in out:
                    out.append(d)
            if out:
                break
        return out

    # ------------------------------------------------------------ sockets

    def choose_socket(self, dest: Destination, forced: SocketInfo | None = None) -> SocketInfo | None:
        """The forced socket if it fits the transport, else the first of the right kind."""
        v6 = ":" in dest.ip
        if forced is not None and forced.proto == dest.proto and (":" in forced.ip) == v6:
            return forced
        for s in self.sockets:
            if s.proto == dest.proto and (":" in s.ip) == v6:
                return s
        return None

    def is_local(self, dest: Destination) -> bool:
        """`dest` is one of our own listening sockets (a forwarding loop)."""
        return any(s.ip == dest.ip and s.port == dest.port and s.proto == dest.proto
                   for s in self.sockets)

    def set_conn_lifetime(self, conn_id: int, seconds: int) -> bool:
        """Keep TCP connection `conn_id` open `seconds` from now (registrar's
        tcp_persistent_flag); False without a TCP layer."""
        setter = getattr(self.stream_sender, "set_lifetime", None)
        return bool(setter(conn_id, seconds)) if setter is not None and conn_id else False

    # ------------------------------------------------------------ send

    def send(self, sock: SocketInfo, dest: Destination, data: bytes,
             conn: int | None = None) -> bool:
        if dest.proto == "udp":
            try:
                sock.handle.sendto(data, (dest.ip, dest.port))
            except OSError:
                return False
            return True
        if self.stream_sender is not None:
            if conn:
                return self.stream_sender(sock, dest, data, conn)
            return self.stream_sender(sock, dest, data)
        return False


def _ip_literal(host: str) -> str | None:
    """The normalized IP if `host` is an IP literal (brackets allowed), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
