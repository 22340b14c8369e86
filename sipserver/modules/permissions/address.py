"""The cached `address` table and its matching (1.6 permissions address.c + hash.c).

Rows with mask 32 go to an exact-IP hash (128 buckets keyed by 1.6's
core_hash of the 4 address bytes, newest row first in a bucket); the
others to a subnet table kept sorted by group (rows of one group in table
order). check_address looks in the hash first, then in the subnets; group
0, port 0 and protocol "any" (0) are wildcards on both sides. A row's
pattern is an fnmatch pattern matched against the caller's pattern string;
a row without one, or a call without one, matches. On a match the row's
context_info (empty when NULL) is stored into the caller's PV.

Like 1.6, addresses are IPv4 dotted quads (1.6 `str2ip`: three dots,
digits, each part taken modulo 256); a row whose ip does not parse, whose
protocol is `none` or unknown, or whose ip is empty is skipped. A row with
a NULL ip/grp/mask/port/proto, a negative group or a mask outside 1..32
makes the whole load fail, and the table in use stays.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .pattern import Matcher, compile_pattern

PERM_HASH_SIZE = 128
GROUP_ANY = 0
PORT_ANY = 0
PROTO_NONE = 0
# 1.6 enum sip_protos, the numbers address_dump prints
PROTOS = {"any": 0, "udp": 1, "tcp": 2, "tls": 3, "sctp": 4}
_PROTO_PREFIX_ORDER = (("UDP", 1), ("TCP", 2), ("TLS", 3), ("SCTP", 4), ("ANY", 0))
M32 = 0xFFFFFFFF

# (ip, grp, port, proto, pattern, info) and (grp, net, mask, port, proto, pattern, info)
HashRow = tuple[int, int, int, int, str | None, str | None]
SubnetRow = tuple[int, int, int, int, int, str | None, str | None]


class AddressLoadError(ValueError):
    """A row the table cannot be built from (the load fails as a whole)."""


def str2ip(text: str) -> int | None:
    """1.6 str2ip: `a.b.c.d` as a 32-bit int, None unless three dots and digits only."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if part and not (part.isascii() and part.isdigit()):
            return None
        value = (value << 8) | (int(part or "0") & 0xFF)
    return value


def ip2str(ip: int) -> str:
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


def mask_of(bits: int) -> int:
    return (M32 << (32 - bits)) & M32


def proto_arg(text: str) -> int | None:
    """check_address's protocol text (1.6 compares the first len(text)
    characters, so "U" is UDP); "" is any; None when unknown."""
    if not text:
        return PROTO_NONE
    up = text.upper()
    for name, number in _PROTO_PREFIX_ORDER:
        if name.startswith(up):
            return number
    return None


def _signed(b: int) -> int:
    return b - 256 if b & 0x80 else b


def bucket_of(ip: int) -> int:
    """1.6 core_hash(ip bytes, 0, 128): C's signed chars and 32-bit wrap-around."""
    b = ip.to_bytes(4, "big")
    v = ((_signed(b[0]) << 24) + (_signed(b[1]) << 16) + (_signed(b[2]) << 8)
         + _signed(b[3])) & M32
    h = (v ^ (v >> 3)) & M32
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & M32
    return h & (PERM_HASH_SIZE - 1)


# ---------------------------------------------------------------- building from rows


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def build_tables(rows: Sequence[Sequence[Any]],
                 log: Callable[[str], None] | None = None) -> tuple[list[HashRow], list[SubnetRow]]:
    """Rows (ip, grp, mask, port, proto, pattern, info, id) -> (hash rows in
    table order, subnet rows sorted by group). Raises AddressLoadError."""
    hash_rows: list[HashRow] = []
    subnets: list[SubnetRow] = []
    for i, row in enumerate(rows):
        if len(row) != 8:
            raise AddressLoadError(f"row {i}: expected 8 columns, got {len(row)}")
        ip_v, grp_v, mask_v, port_v, proto_v, pattern_v, info_v, id_v = row
        ip_text = _text(ip_v)
        if ip_text is None:
            raise AddressLoadError(f"invalid IP column type on row {i}")
        grp = _int(grp_v)
        if grp is None or grp < 0:
            raise AddressLoadError(f"invalid group column type on row {i}")
        mask = _int(mask_v)
        if mask is None or not 0 < mask <= 32:
            raise AddressLoadError(f"invalid mask column type on row {i}")
        port = _int(port_v)
        if port is None:
            raise AddressLoadError(f"invalid port column type on row {i}")
        proto_text = _text(proto_v)
        if proto_text is None:
            raise AddressLoadError(f"invalid protocol column type on row {i}")
        if pattern_v is not None and _text(pattern_v) is None:
            raise AddressLoadError(f"invalid pattern column type on row {i}")
        if info_v is not None and _text(info_v) is None:
            raise AddressLoadError(f"invalid info column type on row {i}")
        if not ip_text:
            if log:
                log(f"empty ip field in address table, ignoring entry number {i}")
            continue
        ip = str2ip(ip_text)
        if ip is None:
            if log:
                log(f"invalid ip field in address table, ignoring entry with id {id_v}")
            continue
        proto = PROTOS.get(proto_text.lower())
        if proto_text.lower() == "none" or proto is None:
            if log:
                log(f'protocol field is "{proto_text}" in address table, ignoring entry '
                    f"with id {id_v}")
            continue
        pattern = _text(pattern_v) or None  # an empty string is no pattern, as NULL
        info = _text(info_v) or None
        if mask == 32:
            hash_rows.append((ip, grp, port, proto, pattern, info))
        else:
            m = mask_of(mask)
            subnets.append((grp, ip & m, m, port, proto, pattern, info))
    subnets.sort(key=lambda r: r[0])  # stable: a group's rows keep table order
    return hash_rows, subnets


def encode(hash_rows: list[HashRow], subnets: list[SubnetRow]) -> bytes:
    """The shared-memory form of a table (what every process decodes)."""
    return marshal.dumps((1, hash_rows, subnets))


# ---------------------------------------------------------------- the table in use


@dataclass(slots=True)
class _Entry:
    ip: int
    grp: int
    port: int
    proto: int
    pattern: Matcher | None
    info: str | None
    net_mask: int = M32


@dataclass(slots=True)
class AddressTables:
    """One process's decoded copy of the table in shared memory."""

    hash_rows: list[HashRow] = field(default_factory=list)
    subnet_rows: list[SubnetRow] = field(default_factory=list)
    by_ip: dict[int, list[_Entry]] = field(default_factory=dict)
    subnets: list[_Entry] = field(default_factory=list)

    @classmethod
    def decode(cls, blob: bytes, patterns: dict[str, Matcher]) -> AddressTables:
        _, hash_rows, subnet_rows = marshal.loads(blob)

        def pat(text: str | None) -> Matcher | None:
            if text is None:
                return None
            m = patterns.get(text)
            if m is None:
                m = patterns[text] = compile_pattern(text)
            return m

        by_ip: dict[int, list[_Entry]] = {}
        for ip, grp, port, proto, pattern, info in reversed(hash_rows):  # newest first
            by_ip.setdefault(ip, []).append(_Entry(ip, grp, port, proto, pat(pattern), info))
        subnets = [_Entry(net, grp, port, proto, pat(pattern), info, mask)
                   for grp, net, mask, port, proto, pattern, info in subnet_rows]
        return cls(list(hash_rows), list(subnet_rows), by_ip, subnets)

    # ------------------------------------------------------------ matching

    def match(self, grp: int, ip: int, port: int, proto: int,
              pattern: str | None) -> tuple[str | None] | None:
        """(context_info,) of the first matching row, hash then subnets; None if none."""
        for e in self.by_ip.get(ip, ()):
            if ((e.grp == GROUP_ANY or e.grp == grp or grp == GROUP_ANY)
                    and (e.proto == PROTO_NONE or e.proto == proto or proto == PROTO_NONE)
                    and (e.port == PORT_ANY or e.port == port or port == PORT_ANY)
                    and (e.pattern is None or pattern is None or e.pattern(pattern))):
                return (e.info,)
        for e in self.subnets:
            if ((e.grp == grp or e.grp == GROUP_ANY or grp == GROUP_ANY)
                    and (e.port == port or e.port == PORT_ANY or port == PORT_ANY)
                    and (e.proto == proto or e.proto == PROTO_NONE or proto == PROTO_NONE)):
                if ip & e.net_mask != e.ip:
                    continue
                if e.pattern is not None and pattern is not None and not e.pattern(pattern):
                    continue
                return (e.info,)
            if e.grp > grp and grp != GROUP_ANY:
                break  # sorted by group: no later row can be in this one
        return None

    def find_group(self, ip: int, port: int) -> int:
        """get_source_group: the group of the first row for ip/port (protocol
        and pattern ignored), hash then subnets; -1 when none."""
        for e in self.by_ip.get(ip, ()):
            if e.port == 0 or e.port == port:
                return e.grp
        for e in self.subnets:
            if (e.port == port or e.port == 0) and ip & e.net_mask == e.ip:
                return e.grp
        return -1

    # ------------------------------------------------------------ MI dumps

    def hash_lines(self) -> list[str]:
        """address_dump: `%4d <ip,grp, port, proto, pattern, info>` per bucket,
        newest row first in a bucket, as 1.6 walks its hash."""
        buckets: list[list[HashRow]] = [[] for _ in range(PERM_HASH_SIZE)]
        for row in self.hash_rows:
            buckets[bucket_of(row[0])].insert(0, row)
        return [f"{i:4d} <{ip2str(ip)},{grp}, {port}, {proto}, {pattern or 'NULL'}, "
                f"{info or 'NULL'}>"
                for i, bucket in enumerate(buckets)
                for ip, grp, port, proto, pattern, info in bucket]

    def subnet_lines(self) -> list[str]:
        """subnet_dump: `%4d <grp, network, netmask, port>` in table order."""
        return [f"{i:4d} <{grp}, {ip2str(net)}, {ip2str(mask)}, {port}>"
                for i, (grp, net, mask, port, _p, _pat, _info) in enumerate(self.subnet_rows)]
