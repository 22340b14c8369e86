"""A tiny authoritative DNS server on loopback, for tests that need real DNS.

It serves zones given as master-file text (dnspython parses them) over UDP
on 127.0.0.1 and a free port, from a daemon thread. It answers what is in
the zones (following CNAMEs inside them), NXDOMAIN with the zone's SOA for
unknown names, NODATA with the SOA for known names without the asked type,
and on request SERVFAIL or silence for chosen names. Every query is
counted so tests can tell cache hits from network lookups.

    with DnsTestServer(ZONE) as srv:
        resolver = SipResolver(nameservers=[("127.0.0.1", srv.port)])
        ...
        assert srv.count("example.test", "NAPTR") == 1
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["DnsTestServer", "silent_udp_port"]


class DnsTestServer:
    """Authoritative UDP DNS server for one or more zones (see module docstring)."""

    def __init__(self, *zones: tuple[str, str] | str, servfail: Iterable[str] = (),
                 drop: Iterable[str] = ()) -> None:
        """`zones` are master-file texts, or (origin, text) pairs (default origin ``test.``).

        Names in `servfail` get SERVFAIL, names in `drop` get no reply at all.
        """
        self.zones: list[dns.zone.Zone] = []
        for z in zones:
            origin, text = z if isinstance(z, tuple) else ("test.", z)
            self.zones.append(dns.zone.from_text(text, origin=origin, relativize=False))
        self.servfail = {_key(n) for n in servfail}
        self.drop = {_key(n) for n in drop}
        self.queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-test-server",
                                        daemon=True)

    # ---------------------------------------------------------------- control

    def start(self) -> DnsTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._sock.close()

    def __enter__(self) -> DnsTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """(ip, port) as SipResolver's `nameservers` takes it."""
        return ("127.0.0.1", self.port)

    def count(self, name: str, rdtype: str | None = None) -> int:
        """Queries received for `name` (of type `rdtype`, or of any type)."""
        key = _key(name)
        with self._lock:
            if rdtype is not None:
                return self.queries[(key, rdtype.upper())]
            return sum(n for (k, _), n in self.queries.items() if k == key)

    def total(self) -> int:
        """All queries received."""
        with self._lock:
            return sum(self.queries.values())

    def reset_counts(self) -> None:
        with self._lock:
            self.queries.clear()

    # ---------------------------------------------------------------- serving

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            reply = self._answer(query)
            if reply is not None:
                try:
                    self._sock.sendto(reply.to_wire(want_shuffle=False), peer)
                except OSError:
                    return

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        if not query.question:
            return None
        q = query.question[0]
        key = _key(q.name.to_text())
        with self._lock:
            self.queries[(key, dns.rdatatype.to_text(q.rdtype))] += 1
        if key in self.drop:
            return None
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        if key in self.servfail:
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp
        name = q.name
        for _ in range(8):  # follow CNAMEs inside our zones
            zone = self._zone_for(name)
            if zone is None:
                resp.set_rcode(dns.rcode.REFUSED)
                return resp
            node = zone.get_node(name)
            if node is None:
                resp.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(resp, zone)
                return resp
            rds = node.get_rdataset(dns.rdataclass.IN, q.rdtype)
            if rds is not None:
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, q.rdtype)
                rrset.update(rds)
                resp.answer.append(rrset)
                return resp
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or q.rdtype == dns.rdatatype.CNAME:
                self._add_soa(resp, zone)  # NODATA
                return resp
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.CNAME)
            rrset.update(cname)
            resp.answer.append(rrset)
            name = cname[0].target
        return resp

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        best = None
        for zone in self.zones:
            if name.is_subdomain(zone.origin) and (
                    best is None or len(zone.origin) > len(best.origin)):
                best = zone
        return best

    @staticmethod
    def _add_soa(resp: dns.message.Message, zone: dns.zone.Zone) -> None:
        soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
        if soa is not None:
            rrset = dns.rrset.RRset(zone.origin, dns.rdataclass.IN, dns.rdatatype.SOA)
            rrset.update(soa)
            resp.authority.append(rrset)


def _key(name: str) -> str:
    return name.lower().rstrip(".")


def silent_udp_port() -> socket.socket:
    """A bound loopback UDP socket nobody reads: a name server that never answers.

    The caller closes it; its port is ``sock.getsockname()[1]``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock
