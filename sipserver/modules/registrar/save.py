"""save(): store the bindings of a REGISTER and answer it (1.6 save.c).

`Contact: *` (with Expires 0) removes every binding of the AOR; no Contact
asks for the current list; otherwise each contact is inserted, refreshed
or (expires 0) removed. Contact values that every binding shares (Call-ID,
CSeq, socket, User-Agent, Path, flags) are read once per REGISTER, as
1.6's pack_ci does, quirks included: a `received` a Contact carries as a
parameter is kept for the contacts after it that carry none.

Flags (a string, may hold pseudo-variables): `m` memory only, `r` no
reply, `s` socket from the sock_hdr_name header, `cNN` at most NN
contacts, `f` force (drop the first binding to make room), `p0`/`p1`/`p2`
Path off/lazy/strict, `v` received from the first Path hop.

Returns 1 after a successful save (and its reply), -1 when the reply
could not be sent or an argument could not be read, and 0 (the script
stops) after any error, whose reply (400/420/500/503 with
P-Registrar-Error) is already sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.context import MsgContext
from ...core.forward import parse_phostport
from ...core.runtime import L_CRIT, L_DBG, L_ERR, L_INFO, L_WARN, SocketInfo
from ...lang.pv import PVError
from ...sip.errors import ParseError
from ...sip.headers import NameAddr
from ...sip.uri import parse_uri
from ..usrloc import FL_MEM, ContactInfo, UDomain, URecord
from .common import RegState, extract_aor, render_flags
from .path import build_path_vector
from .reply import REG_SAVE_PATH_FLAG, build_contact, send_reply
from .rerrno import (
    R_CALLID_LEN,
    R_CONTACT_LEN,
    R_FINE,
    R_INV_CSEQ,
    R_PARSE_PATH,
    R_TOO_MANY,
    R_UL_DEL_R,
    R_UL_INS_C,
    R_UL_UPD_C,
    RegError,
)
from .sip_msg import (
    RECEIVED_MAX_SIZE,
    RegMsg,
    allow_methods,
    calc_contact_expires,
    calc_contact_q,
    contact_methods,
    parse_register,
    unquote_param,
)

__all__ = ["SaveFlags", "parse_save_flags", "save"]

REG_SAVE_MEMORY_FLAG = 1 << 0
REG_SAVE_NOREPLY_FLAG = 1 << 1
REG_SAVE_SOCKET_FLAG = 1 << 2
REG_SAVE_PATH_STRICT_FLAG = 1 << 3
REG_SAVE_PATH_LAZY_FLAG = 1 << 4
REG_SAVE_PATH_OFF_FLAG = 1 << 5
REG_SAVE_PATH_RECEIVED_FLAG = 1 << 6
REG_SAVE_FORCE_REG_FLAG = 1 << 7

CALLID_MAX_SIZE = 255
UA_MAX_SIZE = 255
NO_UA = "n/a"
_SIMPLE_FLAGS = {"m": REG_SAVE_MEMORY_FLAG, "r": REG_SAVE_NOREPLY_FLAG,
                 "s": REG_SAVE_SOCKET_FLAG, "v": REG_SAVE_PATH_RECEIVED_FLAG,
                 "f": REG_SAVE_FORCE_REG_FLAG}
_PATH_FLAGS = {"2": REG_SAVE_PATH_STRICT_FLAG, "1": REG_SAVE_PATH_LAZY_FLAG,
               "0": REG_SAVE_PATH_OFF_FLAG}


@dataclass(frozen=True, slots=True)
class SaveFlags:
    """The parsed flags string: bits, and the `cNN` limit (-1: not given)."""

    flags: int = 0
    max_contacts: int = -1


def parse_save_flags(text: str) -> tuple[SaveFlags, list[str]]:
    """The flags of a save() flags string, and the characters 1.6 warns about."""
    flags = 0
    max_contacts = -1
    unknown: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in _SIMPLE_FLAGS:
            flags |= _SIMPLE_FLAGS[ch]
        elif ch == "c":
            max_contacts = 0
            while i < n - 1 and text[i + 1].isascii() and text[i + 1].isdigit():
                max_contacts = max_contacts * 10 + int(text[i + 1])
                i += 1
        elif ch == "p" and i < n - 1 and text[i + 1] in _PATH_FLAGS:
            i += 1
            flags |= _PATH_FLAGS[text[i]]
        else:
            if ch == "p" and i < n - 1:
                i += 1  # 1.6 consumes the character after a bad `p` and warns about it
            unknown.append(text[i])
        i += 1
    return SaveFlags(flags, max_contacts), unknown


class _Save:
    """One save() call: its flags, AOR, the Contact header and path for the reply."""

    __slots__ = (
        "_allowed",
        "_ci",
        "_packed",
        "_received",
        "_received_found",
        "aor",
        "contact",
        "ctx",
        "flags",
        "max_contacts",
        "path_vec",
        "st",
    )

    def __init__(self, ctx: MsgContext, st: RegState, flags: int, max_contacts: int) -> None:
        self.ctx = ctx
        self.st = st
        self.flags = flags
        self.max_contacts = max_contacts
        self.aor = ""
        self.contact: str | None = None  # the reply's Contact header
        self.path_vec = ""
        self._ci = ContactInfo()
        self._packed = False
        self._allowed: int | None = None
        self._received = ""
        self._received_found = False

    # ------------------------------------------------------------ contact info (1.6 pack_ci)

    def pack_common(self, now: int) -> None:
        """The values every contact of this REGISTER shares."""
        ctx = self.ctx
        msg = ctx.msg
        st = self.st
        ci = self._ci = ContactInfo()
        callid = msg.call_id.rstrip(" \t\r\n")
        if len(callid) > CALLID_MAX_SIZE:
            ctx.rt.log(L_ERR, "registrar: callid too long")
            raise RegError(R_CALLID_LEN)
        ci.callid = callid
        try:
            ci.cseq = msg.cseq.number
        except (ParseError, AttributeError):
            ctx.rt.log(L_ERR, "registrar: failed to convert cseq number")
            raise RegError(R_INV_CSEQ) from None
        sock = None
        if self.flags & REG_SAVE_SOCKET_FLAG:
            sock = _sock_from_header(ctx, st)
        ci.sock = sock or ctx.rcv
        ua = msg.header_value("user-agent")
        ci.user_agent = ua if ua and len(ua) < UA_MAX_SIZE else NO_UA
        path_received = ""
        if self.flags & REG_SAVE_PATH_FLAG:
            path, path_received = build_path_vector(
                ctx, bool(self.flags & REG_SAVE_PATH_RECEIVED_FLAG))
            if path:
                ci.path = path
                self.path_vec = path  # for the Path of the reply
        ci.last_modified = now
        ci.flags = FL_MEM if self.flags & REG_SAVE_MEMORY_FLAG else 0
        ci.cflags = ctx.bflags
        if path_received:
            ci.cflags |= st.ul.nat_flag
            ci.received = path_received
        self._allowed = None
        self._received_found = False
        self._packed = True

    def pack_contact(self, na: NameAddr, e: int, now: int) -> ContactInfo:
        """The values of one contact, on top of the shared ones."""
        if not self._packed:
            self.pack_common(now)
        ci = self._ci
        ci.q = calc_contact_q(self.st, na)
        ci.expires = e
        methods = contact_methods(na)
        if methods is None:
            if self._allowed is None:
                self._allowed = allow_methods(self.ctx)
            methods = self._allowed
        ci.methods = methods
        if not ci.received:
            p = na.param("received")
            if p is not None:
                ci.received = unquote_param(p.value)
            else:
                if not self._received_found:
                    self._received = self._received_from_avp()
                    self._received_found = True
                ci.received = self._received
        return ContactInfo(ci.expires, ci.q, ci.callid, ci.cseq, ci.flags, ci.cflags,
                           ci.user_agent, ci.received, ci.path, ci.sock, ci.methods,
                           ci.last_modified)

    def _received_from_avp(self) -> str:
        name = self.st.rcv_avp
        if name is None:
            return ""
        value = self.ctx.avps.get(name)
        if not isinstance(value, str) or not value:
            return ""
        if len(value) > RECEIVED_MAX_SIZE:
            self.ctx.rt.log(L_ERR, "registrar: received too long")
            raise RegError(R_CONTACT_LEN)
        return value

    @property
    def callid(self) -> str:
        return self._ci.callid

    @property
    def cseq(self) -> int:
        return self._ci.cseq


def _sock_from_header(ctx: MsgContext, st: RegState) -> SocketInfo | None:
    """The local socket the sock_hdr_name header names (1.6 get_sock_hdr)."""
    if not st.sock_hdr_name:
        return None
    text = (ctx.msg.header_value(st.sock_hdr_name) or "").strip(" \t\r\n")
    if not text:
        return None
    try:
        proto, host, port = parse_phostport(text)
    except ValueError:
        ctx.rt.log(L_ERR, f"registrar: bad socket <{text}> in {st.sock_hdr_name}")
        return None
    proto = proto or "udp"
    port = port or (5061 if proto == "tls" else 5060)
    host = host.strip("[]")
    for s in ctx.rt.sockets:
        if s.proto == proto and (s.ip == host or (s.adv_host or "").strip("[]") == host) \
                and (s.port == port or (s.adv_host and (s.adv_port or s.port) == port)):
            return s
    ctx.rt.log(L_ERR, f"registrar: non-local socket <{text}>")
    return None


# ---------------------------------------------------------------- TCP lifetime


class _TcpCheck:
    """tcp_persistent_flag: keep the REGISTER's TCP connection open as long
    as the longest TCP contact it registered (1.6 force_tcp_conn_lifetime)."""

    __slots__ = ("ctx", "e_max", "on")

    def __init__(self, ctx: MsgContext, st: RegState, start: int) -> None:
        self.ctx = ctx
        self.on = bool(st.tcp_persistent_flag and ctx.flags & st.tcp_persistent_flag
                       and ctx.proto in ("tcp", "tls"))
        self.e_max = start

    def contact(self, na: NameAddr, e: int) -> None:
        if not self.on:
            return
        try:
            uri = parse_uri(na.uri_text)
        except ParseError:
            self.ctx.rt.log(L_ERR, f"registrar: failed to parse contact <{na.uri_text}>")
            return
        if uri.transport in ("tcp", "tls") or uri.scheme == "sips":
            if self.e_max > 0:
                self.ctx.rt.log(L_WARN, "registrar: multiple TCP contacts on single REGISTER")
            if e > self.e_max:
                self.e_max = e

    def apply(self, now: int, threshold: int) -> None:
        if not self.on or self.e_max <= threshold:
            return
        lifetime = (self.e_max - now if self.e_max else 0) + 10
        setter = getattr(self.ctx.rt.transport, "set_conn_lifetime", None)
        if setter is None or not self.ctx.conn:
            self.ctx.rt.log(L_DBG, "registrar: no way to extend the TCP connection lifetime")
            return
        setter(self.ctx.conn, lifetime)


# ---------------------------------------------------------------- the cases


def _set_mem(s: _Save, c: Any) -> None:
    if s.flags & REG_SAVE_MEMORY_FLAG:
        c.flags |= FL_MEM
    else:
        c.flags &= ~FL_MEM


def _star(s: _Save, dom: UDomain, now: int) -> None:
    """`Contact: *`: remove every binding of the AOR."""
    aor = s.aor
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        if r is not None:
            for c in r.contacts:
                _set_mem(s, c)
        if not dom.delete_urecord(aor, r):
            s.ctx.rt.log(L_ERR, "registrar: failed to remove record from usrloc")
            r = dom.get_urecord(aor)
            if r is not None:
                s.contact = build_contact(s.st, r.contacts, now)
            raise RegError(R_UL_DEL_R)
    finally:
        dom.unlock(aor)


def _no_contacts(s: _Save, dom: UDomain, now: int) -> None:
    """No Contact: answer with the current bindings."""
    dom.lock(s.aor)
    try:
        r = dom.get_urecord(s.aor)
        if r is not None:
            s.contact = build_contact(s.st, r.contacts, now)
    finally:
        dom.unlock(s.aor)


def _too_many(s: _Save, r: URecord | None) -> None:
    """Room for one more binding: with `f` the first one goes, else 503."""
    if s.flags & REG_SAVE_FORCE_REG_FLAG:
        if r is None or not r.contacts:
            s.ctx.rt.log(L_CRIT, "registrar: BUG - contact overflow without contacts")
            raise RegError(R_FINE)
        r.delete_ucontact(r.contacts[0])
        return
    s.ctx.rt.log(L_INFO, f"registrar: too many contacts for AOR <{s.aor}>, "
                         f"max={s.max_contacts}")
    raise RegError(R_TOO_MANY)


def _insert_contacts(s: _Save, rm: RegMsg, dom: UDomain, now: int) -> None:
    """A new AOR: insert every contact that does not expire at once."""
    tcp = _TcpCheck(s.ctx, s.st, 0)
    r: URecord | None = None
    num = 0
    try:
        for na in rm.contacts:
            e = calc_contact_expires(s.st, rm, na, now)
            if e == 0:
                continue
            if s.max_contacts and num >= s.max_contacts:
                _too_many(s, r)
            else:
                num += 1
            if r is None:
                r = dom.insert_urecord(s.aor)
            ci = s.pack_contact(na, e, now)
            code = 1
            c = None
            if r.contacts:
                code, c = r.get_ucontact(na.uri_text, ci.callid, ci.cseq + 1)
            if code != 0 or c is None:
                r.insert_ucontact(na.uri_text, ci)
            else:
                r.update_ucontact(c, ci)
            tcp.contact(na, e)
        if r is not None:
            if r.contacts:
                s.contact = build_contact(s.st, r.contacts, now)
            if not dom.release_urecord(r):
                s.contact = None
                raise RegError(R_UL_INS_C)
    except RegError:
        if r is not None:
            dom.delete_urecord(s.aor, r)
        raise
    tcp.apply(now, 0)


def _update_contacts(s: _Save, rm: RegMsg, r: URecord, now: int) -> None:
    """A known AOR: insert, refresh or remove each contact."""
    s.pack_common(now)
    num = 0
    if s.max_contacts:
        num = sum(1 for c in r.contacts if c.expires > now or c.expires == 0)
    tcp = _TcpCheck(s.ctx, s.st, -1)
    for na in rm.contacts:
        e = calc_contact_expires(s.st, rm, na, now)
        code, c = r.get_ucontact(na.uri_text, s.callid, s.cseq)
        if code == -1:
            s.ctx.rt.log(L_ERR, f"registrar: invalid cseq for aor <{r.aor}>")
            raise RegError(R_INV_CSEQ)
        if code == -2:
            continue  # a retransmission: the binding stays as it is
        if code > 0 or c is None:
            if e == 0:
                continue
            # 1.6 counts the bindings once, before this REGISTER's new ones
            if s.max_contacts and num >= s.max_contacts:
                _too_many(s, r)
            r.insert_ucontact(na.uri_text, s.pack_contact(na, e, now))
        elif e == 0:
            _set_mem(s, c)
            r.delete_ucontact(c)
        else:
            r.update_ucontact(c, s.pack_contact(na, e, now))
        tcp.contact(na, e)
    tcp.apply(now, -1)


def _add_contacts(s: _Save, rm: RegMsg, dom: UDomain, now: int) -> None:
    aor = s.aor
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        if r is None:
            _insert_contacts(s, rm, dom, now)
            return
        try:
            _update_contacts(s, rm, r, now)
        except RegError:
            s.contact = build_contact(s.st, r.contacts, now)
            dom.release_urecord(r)  # what was done before the error stays, as in 1.6
            raise
        s.contact = build_contact(s.st, r.contacts, now)
        if not dom.release_urecord(r):
            s.contact = None
            raise RegError(R_UL_UPD_C)
    finally:
        dom.unlock(aor)


# ---------------------------------------------------------------- save()


def _flags(ctx: MsgContext, flags: Any) -> SaveFlags | None:
    if flags is None:
        return SaveFlags()
    if isinstance(flags, SaveFlags):
        return flags
    return render_flags(ctx, flags, parse_save_flags)


def pv_string(ctx: MsgContext, pv: Any, what: str) -> str | None:
    """A PV argument's string value (1.6 PV_VAL_STR), None (logged) otherwise."""
    try:
        value = pv.get(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"registrar: failed to get {what} PV value: {e}")
        return None
    if not isinstance(value, str):
        ctx.rt.log(L_ERR, f"registrar: {what} PV value is not a string")
        return None
    return value


def save(ctx: MsgContext, st: RegState, dom: UDomain, flags: Any = None,
         aor_pv: Any = None) -> int:
    """save(table[, flags[, aor_pv]]): see the module docstring."""
    sf = _flags(ctx, flags)
    if sf is None:
        return -1
    max_contacts = st.max_contacts if sf.max_contacts == -1 else sf.max_contacts
    s = _Save(ctx, st, sf.flags, max_contacts)
    noreply = bool(sf.flags & REG_SAVE_NOREPLY_FLAG)
    now = st.now()
    try:
        rm = parse_register(ctx, st, now)
        if aor_pv is not None:
            uri = pv_string(ctx, aor_pv, "AOR")
            if uri is None:
                return -1
        else:
            uri = ctx.msg.to.uri_text
        s.aor = extract_aor(st, uri)
        if not rm.contacts:
            if rm.star:
                _star(s, dom, now)
            else:
                _no_contacts(s, dom, now)
        else:
            _add_contacts(s, rm, dom, now)
    except RegError as e:
        if e.rerr == R_PARSE_PATH:
            ctx.rt.log(L_ERR, "registrar: bad Path header(s)")
        if st.rejected is not None:
            st.rejected.inc()
        if not noreply:
            send_reply(ctx, st, e.rerr, s.flags, s.contact, s.path_vec)
        return 0
    if st.accepted is not None:
        st.accepted.inc()
    if not noreply and send_reply(ctx, st, R_FINE, s.flags, s.contact, s.path_vec) < 0:
        return -1
    return 1
