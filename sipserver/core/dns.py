"""Next-hop DNS resolution (RFC 3263) the way OpenSIPS 1.6 does it.

`SipResolver.resolve()` turns the host, port, transport and SIPS-ness of a
next hop into the ordered list of addresses the forwarding code tries one
after the other (DNS fail-over):

* an IP literal (``1.2.3.4``, ``::1``, ``[::1]``) is its own address, with
  UDP (TLS for SIPS) and port 5060 (5061 for TLS/SIPS) by default. No DNS
  work at all happens for it: that is the common case and must stay cheap;
* a port in the URI means a plain host lookup (A, then AAAA when
  ``dns_try_ipv6`` is on and there is no A), no NAPTR and no SRV;
* a transport but no port means an SRV lookup of ``_sip._udp.``,
  ``_sip._tcp.``, ``_sips._tcp.`` (TLS) or ``_sip._sctp.`` + host, and the
  host lookup with the default port when there is no usable SRV;
* neither means NAPTR first (``SIP+D2U``/``D2T``/``D2S``, ``SIPS+D2T``,
  terminal ``s`` flag, empty regexp, filtered to the transports we serve,
  ordered by order then preference), each NAPTR's replacement looked up as
  SRV; without a usable NAPTR the SRV of the default transport (UDP, TLS
  for SIPS), then the host lookup.

SRV records are ordered by priority, and within a priority by RFC 2782's
weighted random choice (made afresh at every call so load spreads); each
target contributes its addresses in answer order. With fail-over on (the
default) the list holds every NAPTR, every SRV target and every address
in that order; with ``disable_dns_failover`` it holds the addresses of the
first target that resolves, as 1.6 keeps only its first hostent.

Host lookups read the hosts file first (1.6 used gethostbyname(), which
does) and then DNS. Answers are cached per process, honouring TTLs;
"no such name" and "no such record" answers are cached too, for a short
time, so that a domain without NAPTR does not cost a NAPTR query on every
request. Errors never escape: the caller gets an empty list and
`last_error` says why, for the log line.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from sipserver.core.runtime import Destination

__all__ = [
    "DNS_BLACKLIST_EXPIRE",
    "SRV_PREFIXES",
    "NaptrRecord",
    "SipResolver",
    "SrvRecord",
    "default_port",
    "ip_literal",
    "order_srv",
]

SIP_PORT = 5060
SIPS_PORT = 5061

# SRV owner-name prefix per transport (1.6's config.h values)
SRV_PREFIXES = {
    "udp": "_sip._udp.",
    "tcp": "_sip._tcp.",
    "tls": "_sips._tcp.",
    "sctp": "_sip._sctp.",
}

# NAPTR service field -> transport
_NAPTR_SERVICES = {
    "sip+d2u": "udp",
    "sip+d2t": "tcp",
    "sip+d2s": "sctp",
    "sips+d2t": "tls",
}

# seconds a failed destination stays in the automatic "dns" blacklist (1.6: 4 min)
DNS_BLACKLIST_EXPIRE = 4 * 60

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_SRV = dns.rdatatype.SRV
_NAPTR = dns.rdatatype.NAPTR
_PTR = dns.rdatatype.PTR


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV answer: where a service runs."""

    priority: int
    weight: int
    port: int
    target: str  # no trailing dot; "" for the "service not here" target "."


@dataclass(frozen=True, slots=True)
class NaptrRecord:
    """One NAPTR answer (only the fields RFC 3263 uses)."""

    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str  # no trailing dot; "" for "."


def default_port(proto: str | None, is_sips: bool = False) -> int:
    """5061 for TLS or a SIPS URI, else 5060 (1.6's SIP_PORT/SIPS_PORT rule)."""
    return SIPS_PORT if is_sips or proto == "tls" else SIP_PORT


def ip_literal(host: str) -> str | None:
    """The address when `host` is an IP literal (IPv6 optionally in brackets), else None.

    IPv6 comes back compressed and without brackets, the form socket code and
    Destination use. Cheap on purpose (inet_pton, no ipaddress objects): it
    runs for every forwarded message.
    """
    if not host:
        return None
    if host[0] == "[":
        if host[-1] != "]":
            return None
        host = host[1:-1]
    elif ":" not in host:
        if not host[-1].isdigit():
            return None
        try:
            socket.inet_pton(socket.AF_INET, host)
        except (OSError, ValueError):
            return None
        return host
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, host))
    except (OSError, ValueError):
        return None


def order_srv(records: Iterable[SrvRecord], rng: Any = random) -> list[SrvRecord]:
    """SRV records in the order to try them (RFC 2782).

    Lower priority first; within one priority a weighted random draw, zero
    weights placed first so they are picked only when the draw is 0 (or when
    all weights are 0, in answer order). `rng` needs a ``randint(a, b)``.
    """
    groups: dict[int, list[SrvRecord]] = {}
    for rec in records:
        groups.setdefault(rec.priority, []).append(rec)
    out: list[SrvRecord] = []
    for prio in sorted(groups):
        group = groups[prio]
        if len(group) == 1:
            out.append(group[0])
            continue
        pool = [r for r in group if r.weight == 0] + [r for r in group if r.weight > 0]
        while len(pool) > 1:
            total = sum(r.weight for r in pool)
            pick = rng.randint(0, total) if total else 0
            running = 0
            chosen = len(pool) - 1
            for i, rec in enumerate(pool):
                running += rec.weight
                if running >= pick:
                    chosen = i
                    break
            out.append(pool.pop(chosen))
        out.extend(pool)
    return out


class _Walk:
    """State of one resolve() call: a timeout ends all further queries.

    A timed-out server will time out the next query too; stopping keeps
    the whole resolution within one configured timeout instead of one per
    NAPTR/SRV/A step (1.6 waited for each).
    """

    __slots__ = ("dead",)

    def __init__(self) -> None:
        self.dead = False


class _Hosts:
    """A parsed hosts file: name -> IPv4 / IPv6 addresses, address -> names."""

    __slots__ = ("rev", "v4", "v6")

    def __init__(self, path: str | None) -> None:
        self.v4: dict[str, list[str]] = {}
        self.v6: dict[str, list[str]] = {}
        self.rev: dict[str, list[str]] = {}
        if not path:
            return
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                addr = ipaddress.ip_address(fields[0])
            except ValueError:
                continue
            ip = str(addr)
            table = self.v4 if addr.version == 4 else self.v6
            for name in fields[1:]:
                key = name.lower().rstrip(".")
                addrs = table.setdefault(key, [])
                if ip not in addrs:
                    addrs.append(ip)
                names = self.rev.setdefault(ip, [])
                if name not in names:
                    names.append(name)


class SipResolver:
    """RFC 3263 resolver with a per-process TTL cache (see the module docstring).

    Build one per process (the cache is plain process memory; a forked child
    starts with a copy of its parent's). `from_config` maps the 1.6 core
    parameters; the keyword arguments exist so tests and embedders can point
    it at their own name servers, hosts file, clock and random source.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str | tuple[str, int]] | None = None,
        resolv_conf: str = "/etc/resolv.conf",
        search: Sequence[str] | None = None,
        use_search_list: bool = True,
        timeout: float | None = None,
        retries: int | None = None,
        servers_no: int | None = None,
        try_ipv6: bool = False,
        failover: bool = True,
        protos: Iterable[str] = ("udp", "tcp"),
        blacklist: bool = False,
        hosts_file: str | None = "/etc/hosts",
        clock: Callable[[], float] = time.monotonic,
        rng: Any = None,
        negative_ttl: float = 30.0,
        max_ttl: float = 3600.0,
        error_ttl: float = 0.0,
        max_entries: int = 10000,
    ) -> None:
        """Set up the resolver.

        `nameservers` overrides resolv.conf (``"ip"`` or ``("ip", port)``);
        `timeout` is the per-try wait in seconds and `retries` the tries per
        server (dns_retr_time / dns_retr_no); `servers_no` keeps only the
        first N servers. `protos` are the transports we can send over:
        NAPTR records and explicit transports outside it are not used.
        `negative_ttl` caps how long "no such name/record" is remembered,
        `max_ttl` caps positive TTLs, `error_ttl` (0 = never) how long a
        server failure is remembered.
        """
        self.try_ipv6 = try_ipv6
        self.failover = failover
        self.protos = frozenset(p.lower() for p in protos)
        self.use_search_list = use_search_list
        self.blacklist_enabled = blacklist
        self.negative_ttl = negative_ttl
        self.max_ttl = max_ttl
        self.error_ttl = error_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._hosts_file = hosts_file
        self._hosts_table: _Hosts | None = None
        self._cache: dict[tuple[str, int], tuple[float, tuple[Any, ...] | None]] = {}
        self._blacklist: dict[tuple[str, str, int], float] = {}
        self.last_error = ""
        self.queries = 0  # queries sent to name servers
        self.cache_hits = 0
        self._dns = self._make_dns(nameservers, resolv_conf, search, timeout, retries,
                                   servers_no)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> SipResolver:
        """A resolver set up from the core parameters (spec section 5).

        ``dns_retr_time``/``dns_retr_no``/``dns_servers_no`` apply when set
        and positive (as 1.6: otherwise the resolver default),
        ``dns_use_search_list``, ``dns_try_ipv6``, ``disable_dns_failover``,
        ``disable_dns_blacklist``; TCP unless ``disable_tcp``, TLS unless
        ``disable_tls``. Keyword arguments override the result.
        """
        def num(key: str) -> int | None:
            value = config.get(key)
            try:
                value = int(value) if value is not None else None
            except (TypeError, ValueError):
                return None
            return value if value is not None and value > 0 else None

        protos = ["udp"]
        if not config.get("disable_tcp", 0):
            protos.append("tcp")
        if not config.get("disable_tls", 1):
            protos.append("tls")
        kwargs: dict[str, Any] = {
            "timeout": num("dns_retr_time"),
            "retries": num("dns_retr_no"),
            "servers_no": num("dns_servers_no"),
            "use_search_list": bool(config.get("dns_use_search_list", 1)),
            "try_ipv6": bool(config.get("dns_try_ipv6", 0)),
            "failover": not config.get("disable_dns_failover", 0),
            "blacklist": not config.get("disable_dns_blacklist", 1),
            "protos": protos,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------ public API

    def resolve(self, host: str, port: int | None, proto: str | None,
                is_sips: bool = False) -> list[Destination]:
        """Addresses to try, in order, for a next hop; [] when it does not resolve.

        Never raises: a broken name, a DNS timeout or a server failure all
        give [] and leave the reason in `last_error`.
        """
        try:
            return self._resolve(host, port or None, proto.lower() if proto else None,
                                 is_sips)
        except Exception as e:  # a resolver bug must not take routing down
            self.last_error = f"{host}: resolver error: {e!r}"
            return []

    def resolve_host(self, name: str) -> list[str]:
        """Addresses of a host name (hosts file, A, then AAAA with try_ipv6); no SRV/NAPTR.

        For ``dns=yes`` Via checks and ``src_ip == "name"`` comparisons,
        which 1.6 did with a plain host lookup. An IP literal is itself.
        """
        try:
            ip = ip_literal(name)
            if ip is not None:
                return [ip]
            key = _normalise(name)
            if not key:
                self.last_error = "empty host name"
                return []
            return self._addresses(key, _Walk())
        except Exception as e:
            self.last_error = f"{name}: resolver error: {e!r}"
            return []

    def reverse(self, ip: str) -> list[str]:
        """Names of an address (hosts file, then PTR); [] when none (for rev_dns)."""
        try:
            addr = ip_literal(ip)
            if addr is None:
                self.last_error = f"{ip}: not an IP address"
                return []
            names = self._hosts().rev.get(addr)
            if names:
                return list(names)
            qname = dns.reversename.from_address(addr).to_text()
            return list(self._lookup(qname, _PTR, _Walk(), search=False))
        except Exception as e:
            self.last_error = f"{ip}: resolver error: {e!r}"
            return []

    def clear_cache(self) -> None:
        """Forget every cached answer (and re-read the hosts file next time)."""
        self._cache.clear()
        self._hosts_table = None

    def mark_failed(self, dest: Destination) -> None:
        """Put a destination that failed into the automatic "dns" blacklist.

        Only when the blacklist is enabled (``disable_dns_blacklist=no``);
        the entry expires after DNS_BLACKLIST_EXPIRE seconds, as in 1.6.
        """
        if not self.blacklist_enabled:
            return
        now = self._clock()
        if len(self._blacklist) >= 1024:
            for key in [k for k, until in list(self._blacklist.items()) if until <= now]:
                del self._blacklist[key]
        self._blacklist[(dest.proto, dest.ip, dest.port)] = now + DNS_BLACKLIST_EXPIRE

    def is_blacklisted(self, dest: Destination) -> bool:
        """True while `dest` is in the automatic "dns" blacklist."""
        if not self._blacklist:
            return False
        key = (dest.proto, dest.ip, dest.port)
        until = self._blacklist.get(key)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._blacklist[key]
        return False

    # --------------------------------------------------------- the algorithm

    def _resolve(self, host: str, port: int | None, proto: str | None,
                 is_sips: bool) -> list[Destination]:
        if is_sips and "tls" not in self.protos:
            self.last_error = f"{host}: cannot resolve SIPS as no TLS support is configured"
            return []
        ip = ip_literal(host)
        if ip is not None:
            p = proto or ("tls" if is_sips else "udp")
            return [Destination(p, ip, port or default_port(p, is_sips))]
        name = _normalise(host)
        if not name:
            self.last_error = "empty host name"
            return []
        walk = _Walk()
        if port:
            # a port means no NAPTR and no SRV: just the host's addresses
            p = proto or ("tls" if is_sips else "udp")
            return [Destination(p, a, port) for a in self._addresses(name, walk)]
        if proto is None:
            out = self._via_naptr(name, is_sips, walk)
            if out or walk.dead:
                return out
            proto = "tls" if is_sips else "udp"
        elif is_sips and proto != "tls":
            self.last_error = f"{host}: transport {proto} does not match a sips URI"
            return []
        prefix = SRV_PREFIXES.get(proto)
        if prefix is None or proto not in self.protos:
            self.last_error = f"{host}: unsupported transport {proto}"
            return []
        out = self._via_srv(prefix + name, proto, walk)
        if out or walk.dead:
            return out
        p_port = default_port(proto, is_sips)
        return [Destination(proto, a, p_port) for a in self._addresses(name, walk)]

    def _via_naptr(self, name: str, is_sips: bool, walk: _Walk) -> list[Destination]:
        """Destinations from the usable NAPTR records of `name`, in NAPTR order."""
        out: list[Destination] = []
        for proto, replacement in self._usable_naptrs(self._lookup(name, _NAPTR, walk), is_sips):
            if walk.dead:
                break
            found = self._via_srv(replacement, proto, walk)
            _extend_unique(out, found)
            if found and not self.failover:
                break
        return out

    def _usable_naptrs(self, records: Iterable[NaptrRecord],
                       is_sips: bool) -> list[tuple[str, str]]:
        """(transport, SRV name) of the NAPTRs RFC 3263 and 1.6 accept, best first."""
        usable: list[tuple[int, int, str, str]] = []
        for rec in records:
            if rec.flags.lower() != "s" or rec.regexp or not rec.replacement:
                continue
            proto = _NAPTR_SERVICES.get(rec.service.lower())
            if proto is None or (is_sips and proto != "tls") or proto not in self.protos:
                continue
            usable.append((rec.order, rec.preference, proto, rec.replacement))
        usable.sort(key=lambda u: (u[0], u[1]))
        return [(u[2], u[3]) for u in usable]

    def _via_srv(self, srv_name: str, proto: str, walk: _Walk) -> list[Destination]:
        """Destinations from the SRV records of `srv_name`, targets in RFC 2782 order."""
        out: list[Destination] = []
        for rec in order_srv(self._lookup(srv_name, _SRV, walk), self._rng):
            if walk.dead:
                break
            if not rec.target:
                continue  # "." = service decidedly not available there
            addrs = self._addresses(rec.target, walk)
            _extend_unique(out, [Destination(proto, a, rec.port) for a in addrs])
            if addrs and not self.failover:
                break
        return out

    def _addresses(self, name: str, walk: _Walk) -> list[str]:
        """A host's addresses: hosts file, A, then (try_ipv6 only) hosts file and AAAA."""
        hosts = self._hosts()
        bare = name.rstrip(".")
        found = hosts.v4.get(bare)
        if found:
            return list(found)
        addrs = self._lookup(name, _A, walk)
        if addrs or not self.try_ipv6 or walk.dead:
            return list(addrs)
        found = hosts.v6.get(bare)
        if found:
            return list(found)
        return list(self._lookup(name, _AAAA, walk))

    # --------------------------------------------------- queries and caching

    def _lookup(self, name: str, rdtype: int, walk: _Walk,
                search: bool | None = None) -> tuple[Any, ...]:
        """Records of one type for a name, from the cache or a name server; () when none."""
        key = (name, rdtype)
        now = self._clock()
        entry = self._cache.get(key)
        if entry is not None:
            if entry[0] > now:
                self.cache_hits += 1
                if entry[1] is None:
                    self.last_error = (f"{name} {dns.rdatatype.to_text(rdtype)}: "
                                       "not found (cached)")
                    return ()
                return entry[1]
            del self._cache[key]
        if walk.dead:
            return ()
        tname = dns.rdatatype.to_text(rdtype)
        self.queries += 1
        try:
            answer = self._dns.resolve(
                name, rdtype, search=self.use_search_list if search is None else search,
                raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as e:
            self.last_error = f"{name} {tname}: no such domain"
            self._store(key, None, _nx_ttl(e, self.negative_ttl), now)
            return ()
        except dns.exception.Timeout:
            walk.dead = True
            self.last_error = f"{name} {tname}: DNS timeout"
            return ()
        except dns.resolver.NoNameservers as e:
            self.last_error = f"{name} {tname}: DNS server failure ({_first_error(e)})"
            self._store(key, None, self.error_ttl, now)
            return ()
        except (dns.exception.DNSException, OSError, ValueError) as e:
            self.last_error = f"{name} {tname}: {e}"
            return ()
        ttl = _answer_ttl(answer)
        if answer.rrset is None:
            self.last_error = f"{name}: no {tname} record"
            self._store(key, None, min(ttl, self.negative_ttl), now)
            return ()
        records = tuple(_convert(rdtype, rd) for rd in answer.rrset)
        self._store(key, records, min(ttl, self.max_ttl), now)
        return records

    def _store(self, key: tuple[str, int], records: tuple[Any, ...] | None, ttl: float,
               now: float) -> None:
        if ttl <= 0:
            return
        cache = self._cache
        if len(cache) >= self.max_entries:
            for k in [k for k, v in list(cache.items()) if v[0] <= now]:
                del cache[k]
            if len(cache) >= self.max_entries:
                # still full: drop the oldest quarter (dicts keep insertion order)
                for k in list(cache)[: max(1, self.max_entries // 4)]:
                    del cache[k]
        cache[key] = (now + ttl, records)

    def _hosts(self) -> _Hosts:
        table = self._hosts_table
        if table is None:
            table = self._hosts_table = _Hosts(self._hosts_file)
        return table

    @staticmethod
    def _make_dns(nameservers: Sequence[str | tuple[str, int]] | None, resolv_conf: str,
                  search: Sequence[str] | None, timeout: float | None, retries: int | None,
                  servers_no: int | None) -> dns.resolver.Resolver:
        """A dnspython resolver with 1.6's resolver options applied.

        libc's model is "wait `timeout` per try, `retries` tries per server";
        dnspython's is a per-try timeout plus a total lifetime, so the
        lifetime is timeout x tries x servers (2 tries when unset, libc's
        default). No resolv.conf or no server in it means 127.0.0.1, as libc.
        """
        if nameservers is None:
            try:
                res = dns.resolver.Resolver(filename=resolv_conf, configure=True)
            except (dns.resolver.NoResolverConfiguration, OSError):
                res = dns.resolver.Resolver(configure=False)
                res.nameservers = ["127.0.0.1"]
        else:
            res = dns.resolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for ns in nameservers:
                if isinstance(ns, str):
                    servers.append(ns)
                else:
                    servers.append(dns.nameserver.Do53Nameserver(ns[0], int(ns[1])))
            res.nameservers = servers
        if servers_no is not None and servers_no > 0:
            res.nameservers = list(res.nameservers)[:servers_no]
        if search is not None:
            res.search = [dns.name.from_text(s) for s in search]
        res.cache = None  # we cache ourselves, with our clock
        if timeout is not None and timeout > 0:
            res.timeout = float(timeout)
        tries = retries if retries is not None and retries > 0 else 2
        res.lifetime = res.timeout * tries * max(1, len(res.nameservers))
        return res


# ------------------------------------------------------------------ helpers


def _normalise(host: str) -> str:
    """Lower-cased host name as the cache key; a trailing dot (absolute name) is kept."""
    return host.strip().lower()


def _extend_unique(out: list[Destination], more: Iterable[Destination]) -> None:
    """Append destinations not already listed: retrying the same one gains nothing."""
    for d in more:
        if d not in out:
            out.append(d)


def _name_text(name: dns.name.Name) -> str:
    return "" if name == dns.name.root else name.to_text(omit_final_dot=True).lower()


def _convert(rdtype: int, rd: Any) -> Any:
    """A dnspython rdata as the plain value the cache keeps."""
    if rdtype in (_A, _AAAA):
        return str(ipaddress.ip_address(rd.address))
    if rdtype == _SRV:
        return SrvRecord(rd.priority, rd.weight, rd.port, _name_text(rd.target))
    if rdtype == _NAPTR:
        return NaptrRecord(rd.order, rd.preference, _text(rd.flags), _text(rd.service),
                           _text(rd.regexp), _name_text(rd.replacement))
    if rdtype == _PTR:
        return rd.target.to_text(omit_final_dot=True)
    return rd


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _answer_ttl(answer: Any) -> float:
    """Seconds an answer may be cached (CNAME chain and, when negative, SOA included)."""
    chaining = getattr(answer, "chaining_result", None)
    if chaining is not None:
        return float(chaining.minimum_ttl)
    return max(0.0, answer.expiration - time.time())


def _nx_ttl(e: dns.resolver.NXDOMAIN, cap: float) -> float:
    """Negative-cache time of an NXDOMAIN: the SOA's negative TTL, at most `cap`."""
    ttl = cap
    try:
        responses = e.responses()
    except Exception:
        return ttl
    for resp in responses.values():
        try:
            ttl = min(ttl, float(resp.resolve_chaining().minimum_ttl))
        except Exception:
            continue
    return ttl


def _first_error(e: dns.resolver.NoNameservers) -> str:
    """The rcode or exception text of the first failed server, for the log."""
    errors = e.kwargs.get("errors") or []
    if errors:
        err = errors[0][3]
        return str(err) if err is not None else "no answer"
    return "no usable server"

