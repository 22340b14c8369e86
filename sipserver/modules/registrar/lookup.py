"""lookup(), registered() and add_sock_hdr() (1.6 lookup.c, reg_mod.c).

lookup(table[, flags[, aor_pv]]) rewrites the R-URI to the first valid
binding of the AOR (usrloc keeps them highest q first) and appends every
other valid one as a branch. A binding's Path wins over its received
address: the first Path URI becomes $du and the whole path the Route set;
else a received address becomes $du. The binding's q, branch flags and
socket go with it. Flags: `m` skip bindings whose methods do not include
the request's, `b` no branches. Returns 1 found, -1 not found, -2 found
but no binding allows the method, -3 error.
"""

from __future__ import annotations

from typing import Any

from ...core.context import Branch, MsgContext
from ...core.runtime import L_DBG, L_ERR, SocketInfo
from ...sip.errors import ParseError
from ..usrloc import Q_UNSPECIFIED, UContact, UDomain
from .common import RegState, extract_aor, render_flags
from .path import path_dst_uri
from .rerrno import RegError
from .save import pv_string
from .sip_msg import method_id

__all__ = ["LookupFlags", "add_sock_hdr", "lookup", "parse_lookup_flags", "registered"]

REG_LOOKUP_METHODFILTER_FLAG = 1 << 0
REG_LOOKUP_NOBRANCH_FLAG = 1 << 1


class LookupFlags(int):
    """Parsed lookup() flags (a static flags string is parsed once)."""


def parse_lookup_flags(text: str) -> tuple[int, list[str]]:
    """`m` method filtering, `b` no branches; the other characters are warned about."""
    flags = 0
    unknown = []
    for ch in text:
        if ch == "m":
            flags |= REG_LOOKUP_METHODFILTER_FLAG
        elif ch == "b":
            flags |= REG_LOOKUP_NOBRANCH_FLAG
        else:
            unknown.append(ch)
    return flags, unknown


def _flags(ctx: MsgContext, flags: Any) -> int | None:
    if flags is None:
        return 0
    if isinstance(flags, LookupFlags):
        return int(flags)
    return render_flags(ctx, flags, parse_lookup_flags)


def _local(ctx: MsgContext, sock: SocketInfo | None) -> SocketInfo | None:
    """The binding's socket when it is one of ours (a DB row may name another)."""
    if sock is None:
        return None
    for s in ctx.rt.sockets:
        if s is sock or (s.proto, s.ip, s.port) == (sock.proto, sock.ip, sock.port):
            return s
    return None


def _q(c: UContact) -> int | None:
    return None if c.q == Q_UNSPECIFIED else c.q


def _valid(c: UContact, now: int) -> bool:
    return c.expires > now or c.expires == 0


def lookup(ctx: MsgContext, st: RegState, dom: UDomain, flags: Any = None,
           aor_pv: Any = None) -> int:
    """lookup(table[, flags[, aor_pv]]): see the module docstring."""
    f = _flags(ctx, flags)
    if f is None:
        return -1
    if aor_pv is not None:
        uri = pv_string(ctx, aor_pv, "AOR")
        if uri is None:
            return -1
    else:
        uri = ctx.ruri
    try:
        aor = extract_aor(st, uri)
    except RegError:
        ctx.rt.log(L_ERR, "registrar: failed to extract address of record")
        return -3
    now = st.now()
    filter_methods = bool(f & REG_LOOKUP_METHODFILTER_FLAG)
    method = method_id(ctx.msg.method) if filter_methods else 0
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        if r is None:
            ctx.rt.log(L_DBG, f"registrar: '{aor}' not found in usrloc")
            return -1
        contacts = r.contacts
        ret = -1
        first = -1
        for i, c in enumerate(contacts):
            if _valid(c, now):
                ret = -2
                if not filter_methods or c.methods & method:
                    first = i
                    break
        if first < 0:
            return ret
        c = contacts[first]
        ctx.set_ruri(c.contact)
        if c.path:
            try:
                dst = path_dst_uri(c.path)
            except ParseError:
                ctx.rt.log(L_ERR, "registrar: failed to get dst_uri for Path")
                return -3
            ctx.path = c.path
            ctx.dst_uri = dst
        elif c.received:
            ctx.dst_uri = c.received
        ctx.q = _q(c)
        ctx.bflags |= c.cflags
        sock = _local(ctx, c.sock)
        if sock is not None:
            ctx.force_socket = sock
        if f & REG_LOOKUP_NOBRANCH_FLAG:
            return 1
        for c in contacts[first + 1:]:
            if not _valid(c, now) or (filter_methods and not c.methods & method):
                continue
            dst = None
            if c.path:
                try:
                    dst = path_dst_uri(c.path)
                except ParseError:
                    ctx.rt.log(L_ERR, "registrar: failed to get dst_uri for Path")
                    continue
            if ctx.branches_full("registrar: failed to append a branch"):
                continue
            ctx.branches.append(Branch(c.contact, dst or c.received or None, c.path or None,
                                       _q(c), c.cflags, _local(ctx, c.sock)))
        return 1
    finally:
        dom.unlock(aor)


def registered(ctx: MsgContext, st: RegState, dom: UDomain, aor_pv: Any = None,
               callid_pv: Any = None) -> int:
    """registered(table[, aor_pv[, callid_pv]]): 1 when the AOR has a valid
    binding (with that Call-ID, when given), else -1."""
    if aor_pv is not None:
        uri = pv_string(ctx, aor_pv, "AOR")
        if uri is None:
            return -1
    else:
        if not ctx.msg.is_request:
            ctx.rt.log(L_ERR, "registrar: no AOR and called for a reply!")
            return -1
        uri = ctx.ruri
    try:
        aor = extract_aor(st, uri)
    except RegError:
        ctx.rt.log(L_ERR, "registrar: failed to extract address of record")
        return -1
    callid = ""
    if callid_pv is not None:
        value = pv_string(ctx, callid_pv, "callid")
        if value is None:
            return -1
        callid = value
    now = st.now()
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        if r is not None:
            contacts = r.contacts
            i = 0
            while i < len(contacts) and not _valid(contacts[i], now):
                i += 1
            # 1.6 checks the Call-ID from the first valid binding on, valid or not
            for c in contacts[i:]:
                if not callid or c.callid == callid:
                    ctx.rt.log(L_DBG, f"registrar: '{aor}' found in usrloc")
                    return 1
    finally:
        dom.unlock(aor)
    ctx.rt.log(L_DBG, f"registrar: '{aor}' not found in usrloc")
    return -1


def add_sock_hdr(ctx: MsgContext, name: str) -> int:
    """add_sock_hdr(name): append `name: proto:ip:port` of the receiving
    socket (its advertised address when it has one) to the request."""
    sock = ctx.rcv
    if sock is None:
        ctx.rt.log(L_ERR, "registrar: no receiving socket to name")
        return -1
    if sock.adv_host:
        text = f"{sock.proto}:{sock.adv_host}:{sock.adv_port or sock.port}"
    else:
        text = sock.name
    msg = ctx.msg
    msg.lumps.insert(msg.headers_end, f"{name}: {text}\r\n")
    return 1
