"""Contacts and records of usrloc as plain Python values, and their encoding.

A record (1.6 `urecord_t`) is an AOR and its contacts (1.6 `ucontact_t`),
ordered as 1.6 keeps them: by q, highest first, a new contact after those
of the same q (or, with `desc_time_order`, the most recently updated
first). In shared memory a whole record is one byte string, so saving a
REGISTER writes one value; `encode_record`/`decode_record` make it.

Layout of an encoded record (little endian)::

    head   u32 next expiry (0: none), u32 flags (bit 0: not in sync with the DB)
    count  u16
    per contact: u32 expires, i16 q, u32 cseq, u32 flags, u32 cflags,
                 u32 methods, u32 last_modified, u8 state, u8 socket,
                 u16 x5 lengths (contact, callid, user_agent, received, path),
                 the five strings, and for socket 254 a u16 length + its text

The head comes first so the timer finds due records by reading 8 bytes of
each (SharedHash.heads). A socket is its index in the listen socket list
(the same list in every process); 255 is none, 254 a socket that is not
ours, kept by its `proto:ip:port` text.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...core.runtime import SocketInfo

__all__ = [
    "ALL_METHODS", "CS_DIRTY", "CS_NEW", "CS_SYNC", "FL_MEM", "HEAD", "HEAD_UNSYNCED",
    "Q_UNSPECIFIED", "STATE_NAMES", "UL_EXPIRED_TIME", "ContactInfo", "SocketCodec",
    "UContact", "core_hash", "decode_record", "encode_record", "place_contact", "q2str",
    "sock_text",
]

Q_UNSPECIFIED = -1  # 1.6 qvalue_t for "no q given"
ALL_METHODS = 0xFFFFFFFF  # methods unknown: every method allowed
UL_EXPIRED_TIME = 10  # expires of a contact deleted but not yet removed from the DB
FL_MEM = 1  # contact flag: keep in memory only, never write to the DB

CS_NEW, CS_SYNC, CS_DIRTY = 0, 1, 2
STATE_NAMES = {CS_NEW: "CS_NEW", CS_SYNC: "CS_SYNC", CS_DIRTY: "CS_DIRTY"}

HEAD = struct.Struct("<II")  # next expiry, flags
HEAD_UNSYNCED = 1
_COUNT = struct.Struct("<H")
_FIX = struct.Struct("<IhIIIIIBBHHHHH")
_H = struct.Struct("<H")
_U32 = 0xFFFFFFFF
SOCK_NONE = 255
SOCK_TEXT = 254
_ENC = "utf-8"
_ERRS = "surrogatepass"  # every str round-trips, whatever decoded it


def q2str(q: int) -> str:
    """A q value as 1.6 prints it: "" unspecified, "1", "0", else "0.5", "0.25"."""
    if q == Q_UNSPECIFIED:
        return ""
    if q >= 1000:
        return "1"
    if q <= 0:
        return "0"
    return "0." + f"{q:03d}".rstrip("0")


def sock_text(sock: SocketInfo | None) -> str | None:
    """`proto:ip:port` of a socket, its advertised form when it has one (1.6 adv_sock_str)."""
    if sock is None:
        return None
    if sock.adv_host:
        return f"{sock.proto}:{sock.adv_host}:{sock.adv_port or sock.port}"
    return sock.name


@dataclass(slots=True)
class ContactInfo:
    """What a REGISTER (or MI, or a DB row) says about one contact (1.6 ucontact_info_t).

    `expires` and `last_modified` are absolute Unix times (expires 0:
    permanent); `q` is 0..1000 or Q_UNSPECIFIED; an empty `received` or
    `path` is none; `sock` the socket the REGISTER came in on.
    """

    expires: int = 0
    q: int = Q_UNSPECIFIED
    callid: str = ""
    cseq: int = 0
    flags: int = 0
    cflags: int = 0
    user_agent: str = ""
    received: str = ""
    path: str = ""
    sock: SocketInfo | None = None
    methods: int = ALL_METHODS
    last_modified: int = 0


@dataclass(slots=True, eq=False)
class UContact:
    """One binding of an AOR (1.6 ucontact_t); `contact` is the URI as registered.

    Compared by identity: two bindings may hold the same values.
    """

    aor: str
    contact: str
    expires: int = 0
    q: int = Q_UNSPECIFIED
    callid: str = ""
    cseq: int = 0
    flags: int = 0
    cflags: int = 0
    user_agent: str = ""
    received: str = ""
    path: str = ""
    sock: SocketInfo | None = None
    methods: int = ALL_METHODS
    last_modified: int = 0
    state: int = CS_NEW

    @classmethod
    def new(cls, aor: str, contact: str, ci: ContactInfo, state: int = CS_NEW) -> UContact:
        return cls(aor, contact, ci.expires, ci.q, ci.callid, ci.cseq, ci.flags, ci.cflags,
                   ci.user_agent, ci.received, ci.path, ci.sock, ci.methods,
                   ci.last_modified, state)

    def valid(self, now: int) -> bool:
        """Not expired, or permanent (1.6 VALID_CONTACT)."""
        return self.expires > now or self.expires == 0

    def apply(self, ci: ContactInfo) -> None:
        """Take the new values of an update (1.6 mem_update_ucontact: the Call-ID stays)."""
        self.user_agent = ci.user_agent
        self.received = ci.received
        self.path = ci.path
        self.sock = ci.sock
        self.expires = ci.expires
        self.q = ci.q
        self.cseq = ci.cseq
        self.methods = ci.methods
        self.last_modified = ci.last_modified
        self.flags = ci.flags
        self.cflags = ci.cflags

    @property
    def uri(self) -> str:
        """Where to send to reach this contact: its received address if stored, else itself."""
        return self.received or self.contact


def place_contact(contacts: list[UContact], c: UContact, desc_time_order: bool) -> None:
    """Insert `c` where 1.6 puts a new contact: before the first of lower q
    (after those of equal q), or first of all with desc_time_order."""
    if desc_time_order:
        contacts.insert(0, c)
        return
    q = c.q
    for i, other in enumerate(contacts):
        if other.q < q:
            contacts.insert(i, c)
            return
    contacts.append(c)


def reposition(contacts: list[UContact], c: UContact, desc_time_order: bool) -> None:
    """Move an updated contact to where its (new) q or time puts it.

    A contact still between neighbours of higher-or-equal and lower-or-equal
    q stays where it is, as in 1.6.
    """
    i = contacts.index(c)
    if desc_time_order:
        if i:
            del contacts[i]
            contacts.insert(0, c)
        return
    if (i == 0 or c.q <= contacts[i - 1].q) and \
            (i == len(contacts) - 1 or c.q >= contacts[i + 1].q):
        return
    del contacts[i]
    place_contact(contacts, c, False)


class SocketCodec:
    """Sockets to and from their one-byte index in the listen socket list."""

    __slots__ = ("_by_key", "sockets")

    def __init__(self, sockets: Sequence[SocketInfo]) -> None:
        self.sockets = list(sockets)[:SOCK_TEXT]
        self._by_key = {(s.proto, s.ip, s.port): i for i, s in enumerate(self.sockets)}

    def index(self, sock: SocketInfo | None) -> int:
        if sock is None:
            return SOCK_NONE
        for i, s in enumerate(self.sockets):
            if s is sock:
                return i
        return self._by_key.get((sock.proto, sock.ip, sock.port), SOCK_TEXT)

    def find(self, text: str) -> SocketInfo | None:
        """The local socket `proto:host:port` names (its address or its
        advertised one), or None when it is not ours (1.6 grep_sock_info)."""
        parsed = parse_sock_text(text)
        if parsed is None:
            return None
        proto, host, port = parsed
        for s in self.sockets:
            if s.proto != proto:
                continue
            if (s.ip == host and s.port == port) or \
                    (s.adv_host and s.adv_host.strip("[]") == host and
                     (s.adv_port or s.port) == port):
                return s
        return None

    def from_text(self, text: str) -> SocketInfo | None:
        """A socket kept by its text: ours when it is, else a stand-in."""
        s = self.find(text)
        if s is not None:
            return s
        parsed = parse_sock_text(text)
        return SocketInfo(*parsed) if parsed is not None else None


def parse_sock_text(text: str) -> tuple[str, str, int] | None:
    """`proto:host:port` (IPv6 in brackets) -> (proto, host, port), or None."""
    proto, sep, rest = text.strip().partition(":")
    if not sep or not proto:
        return None
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    if not host:
        return None
    return proto.lower(), host, int(port)


def _b(text: str) -> bytes:
    return text.encode(_ENC, _ERRS)


def encode_record(contacts: Sequence[UContact], socks: SocketCodec, track_sync: bool) -> bytes:
    """A record's contacts as one value (head first); see the module docstring."""
    nexp = 0
    unsynced = False
    parts: list[bytes] = []
    for c in contacts:
        e = c.expires
        if e and (not nexp or e < nexp):
            nexp = e
        if c.state != CS_SYNC:
            unsynced = True
        cb, ib, ub, rb, pb = (_b(c.contact), _b(c.callid), _b(c.user_agent),
                              _b(c.received), _b(c.path))
        si = socks.index(c.sock)
        parts.append(_FIX.pack(min(max(e, 0), _U32), max(min(c.q, 32767), -32768),
                               c.cseq & _U32, c.flags & _U32, c.cflags & _U32,
                               c.methods & _U32, min(max(c.last_modified, 0), _U32),
                               c.state, si, len(cb), len(ib), len(ub), len(rb), len(pb)))
        parts.append(cb + ib + ub + rb + pb)
        if si == SOCK_TEXT:
            st = _b(sock_text(c.sock) or "")
            parts.append(_H.pack(len(st)) + st)
    flags = HEAD_UNSYNCED if (unsynced and track_sync) else 0
    return HEAD.pack(min(nexp, _U32), flags) + _COUNT.pack(len(contacts)) + b"".join(parts)


def decode_record(aor: str, data: bytes, socks: SocketCodec) -> list[UContact]:
    """The contacts of an encoded record (ValueError/struct.error if broken)."""
    (n,) = _COUNT.unpack_from(data, HEAD.size)
    pos = HEAD.size + _COUNT.size
    out: list[UContact] = []
    fix = _FIX.unpack_from
    fsize = _FIX.size
    sockets = socks.sockets
    for _ in range(n):
        (e, q, cseq, flags, cflags, methods, lm, state, si,
         lc, li, lu, lr, lp) = fix(data, pos)
        pos += fsize
        end = pos + lc + li + lu + lr + lp
        if end > len(data):
            raise ValueError("record shorter than its contacts")
        raw = data[pos:end]
        a = lc
        b = a + li
        c = b + lu
        d = c + lr
        if si == SOCK_NONE:
            sock = None
        elif si == SOCK_TEXT:
            (ls,) = _H.unpack_from(data, end)
            sock = socks.from_text(data[end + 2:end + 2 + ls].decode(_ENC, _ERRS))
            end += 2 + ls
        else:
            sock = sockets[si] if si < len(sockets) else None
        out.append(UContact(aor, raw[:a].decode(_ENC, _ERRS), e, q, raw[a:b].decode(_ENC, _ERRS),
                            cseq, flags, cflags, raw[b:c].decode(_ENC, _ERRS),
                            raw[c:d].decode(_ENC, _ERRS), raw[d:].decode(_ENC, _ERRS), sock,
                            methods, lm, state))
        pos = end
    return out


def core_hash(data: bytes, size: int = 0) -> int:
    """1.6 core_hash over one string (signed chars, as on x86): the slot
    order ul_dump lists records in."""
    h = 0
    n = len(data)
    full = n - n % 4
    if data.isascii():  # no sign extension: whole words big endian
        for v in struct.unpack_from(f">{full // 4}I", data):
            h += v ^ (v >> 3)
        h &= _U32
        sb: Any = data
    else:
        sb = [x - 256 if x > 127 else x for x in data]
        for p in range(0, full, 4):
            v = ((sb[p] << 24) + (sb[p + 1] << 16) + (sb[p + 2] << 8) + sb[p + 3]) & _U32
            h = (h + (v ^ (v >> 3))) & _U32
    v = 0
    for p in range(full, n):
        v = ((v << 8) + sb[p]) & _U32
    h = (h + (v ^ (v >> 3))) & _U32
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & _U32
    return h & (size - 1) if size else h


def run_callbacks(cbs: Sequence[tuple[int, Callable[[UContact, int], None]]], kind: int,
                  c: UContact, log: Callable[[str], None]) -> None:
    """Run the usrloc callbacks registered for `kind` (a failing one is logged)."""
    for types, fn in cbs:
        if types & kind:
            try:
                fn(c, kind)
            except Exception as e:  # another module's bug must not break a save
                log(f"usrloc: callback {getattr(fn, '__name__', fn)} failed: "
                    f"{type(e).__name__}: {e}")
