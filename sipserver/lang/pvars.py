"""The core pseudo-variables: every name 1.6's ``pvar.c`` registers (spec 7.2-7.4).

`CORE_PVARS` maps each name (and alias) to a maker ``make(spec, env) -> PV``.
A maker checks the inner name once, at start-up, and resolves everything it
can (header key, AVP name, field accessor, colour escape); the PV objects
then only read the message context.  Values follow spec 3.9: ``None`` for
null, ``int``, ``str``, or `IntStr` for the *str+int* PVs.  A missing header
or part is null; a header that cannot be parsed raises `PVError`.

Deliberate differences from 1.6.4 (spec section 10, "fixed"):

* ``$aU`` is the whole username, ``$an`` the nonce, ``$auth.resp`` the
  response (1.6 mixed the three up).
* ``$rU = NULL`` removes the user (and password) of the R-URI.
* ``$dd`` / ``$dp`` writes rebuild ``$du`` properly (1.6.4 produced
  ``sip::@host`` for a URI without user); ``$dp = NULL`` removes the port.
* ``$(ct[*])`` lists every contact (1.6 looped past the last one).
* ``$C(Xy)`` stays bold on every use (1.6 lower-cased the name in place
  after the first evaluation).
* The default port of ``$rp``/``$op``/``$dp`` is 5061 for a ``sips:`` URI.
* A header that cannot be parsed is an error, not null.
* AVP flag digits (``$avp(i3:10)``) are accepted and ignored.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..core.context import MAX_BRANCHES, Branch
from ..core.runtime import DEFAULT_PORTS, L_WARN, PROTO_IDS
from ..sip.digest import Credentials, parse_credentials
from ..sip.errors import ParseError
from ..sip.headers import (
    TOKEN_RE,
    NameAddr,
    find_param,
    header_key,
    is_star_contact,
    param_value,
    parse_name_addr_list,
)
from ..sip.uri import Uri, parse_uri
from .pv import PV, IntStr, PVError, PVMaker, PVNameError, PVSpec, PVTable, Value, int_of

if TYPE_CHECKING:
    from ..core.context import MsgContext
    from ..sip.message import Header, SipMsg

__all__ = ["CORE_AVP_ALIASES", "CORE_PVARS", "core_pv_table"]

CORE_PVARS: dict[str, PVMaker] = {}

# serialize_branches() keeps its contacts in this AVP (1.6 serialize.c).
CORE_AVP_ALIASES: dict[str, int | str] = {"serial_branch": 0xFF3434}

_U32 = 0xFFFFFFFF
_P5060 = IntStr("5060", 5060)
_P5061 = IntStr("5061", 5061)
_UDP = IntStr("udp", PROTO_IDS["udp"])
_NULL_PROTO = IntStr("<null>", 0)  # 1.6 prints an unknown transport this way

# 1.6 method ids (parser/msg_parser.h); anything else is METHOD_OTHER.
_METHOD_IDS = {
    "INVITE": 1, "CANCEL": 2, "ACK": 4, "BYE": 8, "INFO": 16, "OPTIONS": 32,
    "UPDATE": 64, "REGISTER": 128, "MESSAGE": 256, "SUBSCRIBE": 512,
    "NOTIFY": 1024, "PRACK": 2048, "REFER": 4096, "PUBLISH": 8192,
}  # fmt: skip
_METHOD_OTHER = 16384


def core_pv_table() -> PVTable:
    """A fresh PV table holding the core names (modules add theirs to it)."""
    table = PVTable()
    for name, maker in CORE_PVARS.items():
        table.add(name, maker)
    return table


# ====================================================================== helpers


def _register(*names: str) -> Callable[[PVMaker], PVMaker]:
    def deco(maker: PVMaker) -> PVMaker:
        for n in names:
            CORE_PVARS[n] = maker
        return maker

    return deco


def _no_inner(spec: PVSpec) -> None:
    if spec.inner is not None or spec.inner_pv is not None:
        raise PVNameError(f"${spec.name} takes no name in parentheses")


def _simple(cls: type[PV], *names: str) -> None:
    """Register a PV class that takes no inner name."""

    def make(spec: PVSpec, env: Any) -> PV:
        _no_inner(spec)
        return cls(spec.raw)

    for n in names:
        CORE_PVARS[n] = make


def _fixed(cls: Callable[..., PV], *args: Any) -> PVMaker:
    """A maker for a PV class built with fixed arguments (a field selector ...)."""

    def make(spec: PVSpec, env: Any) -> PV:
        _no_inner(spec)
        return cls(spec.raw, *args)

    return make


def _index_value(index: PV, ctx: MsgContext, raw: str) -> int:
    """The integer a PV index evaluates to (1.6 requires an integer)."""
    v = index.get(ctx)
    i = int_of(v)
    if i is None:
        raise PVError(f"{raw}: index {v!r} is not an integer")
    return i


def _plain(value: Value) -> int | str:
    """What an AVP or $var stores: ints stay ints, everything else plain text.

    A *str+int* value (``$rp``) is stored as its text, as 1.6 does.
    """
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    return str(value)


def _need_str(value: Value, raw: str) -> str:
    if not isinstance(value, str):
        raise PVError(f"{raw}: a string value is required")
    return str(value)


def _need_int(value: Value, raw: str) -> int:
    i = int_of(value)
    if i is None:
        raise PVError(f"{raw}: an integer value is required")
    return i


def _hex8(flags: int) -> IntStr:
    return IntStr(f"{flags & _U32:08x}", flags)


@lru_cache(maxsize=512)
def _parse_uri_cached(text: str) -> Uri:
    return parse_uri(text)


def _uri(text: str, raw: str) -> Uri:
    try:
        return _parse_uri_cached(text)
    except ParseError as e:
        raise PVError(f"{raw}: bad URI {text[:80]!r}: {e}") from None


def _ruri(ctx: MsgContext, raw: str) -> Uri | None:
    """The current R-URI parsed (None on a reply)."""
    msg = ctx.msg
    if not msg.is_request:
        return None
    nu = ctx.new_uri
    if nu is None:
        return msg.ruri
    return _uri(nu, raw)


def _ouri(ctx: MsgContext, raw: str) -> Uri | None:
    msg = ctx.msg
    return msg.ruri if msg.is_request else None


def _duri(ctx: MsgContext, raw: str) -> Uri | None:
    du = ctx.dst_uri
    return None if du is None else _uri(du, raw)


def _part_user(u: Uri) -> Value:
    return u.user or None


def _part_host(u: Uri) -> Value:
    return u.host or None


@lru_cache(maxsize=1024)
def _port_value_of(port: int) -> IntStr:
    return IntStr(str(port), port)


@lru_cache(maxsize=64)
def _proto_value_of(text: str) -> IntStr:
    return IntStr(text, PROTO_IDS.get(text.lower(), 0))


@lru_cache(maxsize=256)
def _method_value_of(method: str) -> IntStr:
    return IntStr(method, _METHOD_IDS.get(method.upper(), _METHOD_OTHER))


def _part_port(u: Uri) -> Value:
    port = u.port
    if port is None:
        return _P5061 if u.scheme == "sips" else _P5060
    return _port_value_of(port)


def _part_proto(u: Uri) -> Value:
    t = u.get_param("transport")
    return _UDP if t is None else _proto_value_of(t)


def _rebuild(u: Uri, raw: str, **fields: Any) -> str:
    try:
        return u.replace(**fields).raw
    except ParseError as e:
        raise PVError(f"{raw}: cannot build the new URI: {e}") from None


def _port_value(value: Value, raw: str) -> int | None:
    """A port to write: None/"" remove it; an int or decimal text sets it."""
    if value is None:
        return None
    if type(value) is int:
        port = value
    else:
        text = str(value).strip()
        if not text:
            return None
        if not (text.isdigit() and text.isascii()):
            raise PVError(f"{raw}: bad port {text[:20]!r}")
        port = int(text)
    if not 0 <= port <= 65535:
        raise PVError(f"{raw}: port {port} out of range")
    return port


def _q2str(q: int | None) -> str:
    """1.6's q2str: "" unset, "1" at or above 1000, "0" at or below 0, else 0.xyz."""
    if q is None:
        return ""
    if q >= 1000:
        return "1"
    if q <= 0:
        return "0"
    return "0." + f"{q:03d}".rstrip("0")


def _first_name_addr(msg: SipMsg, key: str, what: str) -> NameAddr | None:
    """The first name-addr of the first `key` header (None if there is none)."""
    hs = msg.index.get(key)
    if not hs:
        return None
    h = hs[0]
    p = h.parsed
    if p is None:
        try:
            p = h.parsed = parse_name_addr_list(h.value, what)
        except ParseError as e:
            raise PVError(f"bad {what} header: {e}") from None
    if isinstance(p, list):
        return p[0] if p else None
    if isinstance(p, NameAddr):
        return p
    try:  # cached by someone else as another type: parse afresh
        return parse_name_addr_list(h.value, what)[0]
    except ParseError as e:
        raise PVError(f"bad {what} header: {e}") from None


def _na_uri(na: NameAddr, raw: str) -> Uri:
    try:
        return na.uri
    except ParseError as e:
        raise PVError(f"{raw}: bad URI {na.uri_text[:80]!r}: {e}") from None


def _parse_hostport(text: str, raw: str) -> tuple[str, str, int]:
    """``[proto:]host[:port]`` with 1.6's defaults (udp; 5060, 5061 for tls)."""
    s = text.strip()
    proto = None
    head, sep, rest = s.partition(":")
    if sep and head.lower() in PROTO_IDS:
        proto = head.lower()
        s = rest
    port_s = ""
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise PVError(f"{raw}: bad socket {text!r}")
        host, after = s[: end + 1], s[end + 1 :]
        if after:
            if after[0] != ":":
                raise PVError(f"{raw}: bad socket {text!r}")
            port_s = after[1:]
    else:
        host, sep, port_s = s.partition(":")
        if sep and not port_s:
            raise PVError(f"{raw}: bad socket {text!r}")
    if not host or ":" in port_s:
        raise PVError(f"{raw}: bad socket {text!r}")
    if port_s and not (port_s.isdigit() and port_s.isascii() and int(port_s) <= 65535):
        raise PVError(f"{raw}: bad port in socket {text!r}")
    proto = proto or "udp"
    port = int(port_s) if port_s else 0
    if not port:
        port = DEFAULT_PORTS.get(proto, 5060)
    return proto, host, port


def _host_norm(host: str) -> str:
    h = host.strip("[]").lower()
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        return h


def _find_socket(ctx: MsgContext, text: str, raw: str) -> Any:
    """The listening socket `text` names (1.6 grep_sock_info), or None."""
    proto, host, port = _parse_hostport(text, raw)
    want = _host_norm(host)
    for si in ctx.rt.sockets:
        if si.proto != proto or (si.port != port and si.adv_port != port):
            continue
        if want == _host_norm(si.ip) or (si.adv_host and want == _host_norm(si.adv_host)):
            return si
    return None


# ====================================================================== $var


class VarPV(PV):
    """``$var(name)``: per-process script variable, 0 until assigned, never null."""

    __slots__ = ("name",)
    writable = True

    def __init__(self, raw: str, name: str) -> None:
        super().__init__(raw)
        self.name = name

    def get(self, ctx: MsgContext) -> Value:
        return ctx.rt.script_vars.get(self.name, 0)

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        ctx.rt.script_vars[self.name] = 0 if value is None else _plain(value)


@_register("var")
def _make_var(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None:
        raise PVNameError("$var takes a fixed name, not a pseudo-variable")
    if not spec.inner:
        raise PVNameError("$var needs a name: $var(name)")
    return VarPV(spec.raw, spec.inner)


# ====================================================================== $avp


def _avp_name(inner: str, env: Any) -> int | str:
    """Resolve ``i:N`` / ``s:text`` / ``iF:N`` / an alias to the stored AVP name."""
    colon = inner.find(":")
    if colon < 0:
        aliases = getattr(env, "avp_aliases", None) or {}
        want = inner.lower()
        for alias, name in (*aliases.items(), *CORE_AVP_ALIASES.items()):
            if alias.lower() == want:
                return name
        raise PVNameError(
            f"unknown AVP name {inner!r}: use $avp(s:name) or $avp(i:number), "
            "or declare avp_aliases"
        )
    kind, flags, name = inner[0], inner[1:colon], inner[colon + 1 :]
    if kind not in "iIsS" or colon == 0:
        raise PVNameError(f"bad AVP name {inner!r}: use s: or i: in front of the name")
    if flags and not (flags.isdigit() and flags.isascii()):
        raise PVNameError(f"bad AVP flags {flags!r} in {inner!r}")
    if not name:
        raise PVNameError(f"empty AVP name in {inner!r}")
    if kind in "sS":
        return name
    if not (name.isdigit() and name.isascii()) or int(name) > _U32:
        raise PVNameError(f"bad AVP id {name!r}: not a number")
    return int(name)


class AvpPV(PV):
    """``$avp(id)``: the AVP stack of the message, newest value first."""

    __slots__ = ("index", "name", "name_pv")
    writable = True
    indexed = True

    def __init__(self, raw: str, name: int | str | None, name_pv: PV | None,
                 index: int | str | PV | None) -> None:
        super().__init__(raw)
        self.name = name
        self.name_pv = name_pv
        self.index = index

    def _name(self, ctx: MsgContext) -> int | str:
        if self.name_pv is None:
            return self.name  # type: ignore[return-value]
        v = self.name_pv.get(ctx)
        if v is None or v == "":
            raise PVError(f"{self.raw}: null or empty AVP name")
        return v if type(v) is int else str(v)

    def name_at(self, ctx: MsgContext) -> int | str:
        """The AVP name for this message (a dynamic name is evaluated); for modules."""
        return self._name(ctx)

    def get(self, ctx: MsgContext) -> Value:
        name = self._name(ctx)
        idx = self.index
        if idx is None:
            return ctx.avps.get(name)
        if idx == "*":
            values = ctx.avps.get_all(name)
            if not values:
                return None
            return "".join(f"{v}, " for v in values)  # 1.6 ends with ", " too
        if type(idx) is not int:
            idx = _index_value(idx, ctx, self.raw)  # type: ignore[arg-type]
        return ctx.avps.get(name, idx)

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        name = self._name(ctx)
        avps = ctx.avps
        idx = self.index
        if value is None:
            if op == ":=" or idx == "*":
                avps.delete(name, None)
                return
            i = 0 if idx is None else idx
            if type(i) is not int:
                i = _index_value(i, ctx, self.raw)  # type: ignore[arg-type]
            if i < 0:
                raise PVError(f"{self.raw}: cannot delete by a negative index")
            avps.delete(name, i)
            return
        stored = _plain(value)
        if op == ":=" or idx == "*":
            avps.delete(name, None)
            avps.add(name, stored)
            return
        if idx is None:
            avps.add(name, stored)
            return
        i = idx if type(idx) is int else _index_value(idx, ctx, self.raw)  # type: ignore[arg-type]
        if i < 0:
            raise PVError(f"{self.raw}: cannot replace by a negative index")
        if not avps.replace(name, i, stored):
            raise PVError(f"{self.raw}: no value at index {i} to replace")


@_register("avp")
def _make_avp(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None:
        return AvpPV(spec.raw, None, spec.inner_pv, spec.index)
    if not spec.inner:
        raise PVNameError("$avp needs a name: $avp(s:name), $avp(i:number) or an alias")
    return AvpPV(spec.raw, _avp_name(spec.inner, env), None, spec.index)


# ====================================================================== $hdr


class HdrPV(PV):
    """``$hdr(name)``: body of a header line; the index picks the occurrence."""

    __slots__ = ("index", "key", "name_pv")
    indexed = True

    def __init__(self, raw: str, key: str | None, name_pv: PV | None,
                 index: int | str | PV | None) -> None:
        super().__init__(raw)
        self.key = key
        self.name_pv = name_pv
        self.index = index

    def get(self, ctx: MsgContext) -> Value:
        key = self.key
        if key is None:
            v = self.name_pv.get(ctx)  # type: ignore[union-attr]
            if v is None or v == "":
                raise PVError(f"{self.raw}: null or empty header name")
            key = header_key(str(v))
        hs = ctx.msg.index.get(key)
        if not hs:
            return None
        idx = self.index
        if idx is None:
            return hs[0].value
        if idx == "*":
            return ", ".join(h.value for h in hs)
        if type(idx) is not int:
            idx = _index_value(idx, ctx, self.raw)  # type: ignore[arg-type]
        try:
            return hs[idx].value
        except IndexError:
            return None


@_register("hdr")
def _make_hdr(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None:
        return HdrPV(spec.raw, None, spec.inner_pv, spec.index)
    name = (spec.inner or "").strip()
    if not name or not TOKEN_RE.match(name):
        raise PVNameError(f"bad header name {spec.inner!r}")
    return HdrPV(spec.raw, header_key(name), None, spec.index)


# ====================================================================== R-URI, $ou, $du


class RuriPV(PV):
    """``$ru``: the current Request-URI (null on replies)."""

    __slots__ = ()
    writable = True

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        if not msg.is_request:
            return None
        nu = ctx.new_uri
        return msg.ruri_text if nu is None else nu

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        if value is None:
            raise PVError(f"{self.raw}: cannot set the R-URI to NULL")
        if not ctx.msg.is_request:
            raise PVError(f"{self.raw}: a reply has no R-URI")
        ctx.new_uri = _need_str(value, self.raw)


class UriPartPV(PV):
    """A part of a URI (user, host, port, transport) from a URI source."""

    __slots__ = ("part", "source")

    def __init__(self, raw: str, source: Callable[[MsgContext, str], Uri | None],
                 part: Callable[[Uri], Value]) -> None:
        super().__init__(raw)
        self.source = source
        self.part = part

    def get(self, ctx: MsgContext) -> Value:
        u = self.source(ctx, self.raw)
        return None if u is None else self.part(u)


def _ruri_for_write(ctx: MsgContext, raw: str) -> Uri:
    if not ctx.msg.is_request:
        raise PVError(f"{raw}: a reply has no R-URI")
    return _ruri(ctx, raw)  # type: ignore[return-value]


class RuriUserPV(UriPartPV):
    """``$rU``: write = setuser; NULL removes the user (fixed vs 1.6)."""

    __slots__ = ()
    writable = True

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        u = _ruri_for_write(ctx, self.raw)
        user = None if value is None else _need_str(value, self.raw)
        if not user:
            ctx.new_uri = _rebuild(u, self.raw, user=None, password=None)
        else:
            ctx.new_uri = _rebuild(u, self.raw, user=user)


class RuriHostPV(UriPartPV):
    """``$rd``: write = rewritehost (drops ``;maddr=``, as 1.6.4 does)."""

    __slots__ = ()
    writable = True

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        if value is None:
            raise PVError(f"{self.raw}: cannot set the R-URI host to NULL")
        host = _need_str(value, self.raw)
        u = _ruri_for_write(ctx, self.raw)
        params = [p for p in u.params if not (p[0].lower() == "maddr" and p[1])]
        ctx.new_uri = _rebuild(u, self.raw, host=host, params=params)


class RuriPortPV(UriPartPV):
    """``$rp``: write = setport; NULL or "" removes the port."""

    __slots__ = ()
    writable = True

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        port = _port_value(value, self.raw)
        u = _ruri_for_write(ctx, self.raw)
        ctx.new_uri = _rebuild(u, self.raw, port=port)


class OuriPV(PV):
    """``$ou``: the R-URI as received."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        return msg.ruri_text if msg.is_request else None


class DuriPV(PV):
    """``$du``: the destination URI (next hop); NULL clears it."""

    __slots__ = ()
    writable = True

    def get(self, ctx: MsgContext) -> Value:
        return ctx.dst_uri

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        ctx.dst_uri = None if value is None else _need_str(value, self.raw)


def _duri_for_write(ctx: MsgContext, raw: str) -> Uri:
    du = ctx.dst_uri
    if not du:
        raise PVError(f"{raw}: no destination URI to change")
    return _uri(du, raw)


class DuriHostPV(UriPartPV):
    """``$dd``: write replaces the host of ``$du`` (1.6.4's intent)."""

    __slots__ = ()
    writable = True

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        if value is None:
            raise PVError(f"{self.raw}: cannot set the destination host to NULL")
        host = _need_str(value, self.raw)
        if not host:
            raise PVError(f"{self.raw}: cannot set an empty destination host")
        u = _duri_for_write(ctx, self.raw)
        ctx.dst_uri = _rebuild(u, self.raw, host=host)


class DuriPortPV(UriPartPV):
    """``$dp``: write sets the port of ``$du``; NULL or "" removes it."""

    __slots__ = ()
    writable = True

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        port = _port_value(value, self.raw)
        u = _duri_for_write(ctx, self.raw)
        ctx.dst_uri = _rebuild(u, self.raw, port=port)


for _names, _cls, _src, _part in (
    (("rU", "ruri.user"), RuriUserPV, _ruri, _part_user),
    (("rd", "ruri.domain"), RuriHostPV, _ruri, _part_host),
    (("rp",), RuriPortPV, _ruri, _part_port),
    (("rP",), UriPartPV, _ruri, _part_proto),
    (("oU",), UriPartPV, _ouri, _part_user),
    (("od",), UriPartPV, _ouri, _part_host),
    (("op",), UriPartPV, _ouri, _part_port),
    (("oP",), UriPartPV, _ouri, _part_proto),
    (("dd",), DuriHostPV, _duri, _part_host),
    (("dp",), DuriPortPV, _duri, _part_port),
    (("dP",), UriPartPV, _duri, _part_proto),
):
    _register(*_names)(_fixed(_cls, _src, _part))

_simple(RuriPV, "ru", "ruri")
_simple(OuriPV, "ou", "ouri")
_simple(DuriPV, "du", "duri")


# ====================================================================== From / To


def _na_field_uri(na: NameAddr, raw: str) -> Value:
    return na.uri_text


def _na_field_user(na: NameAddr, raw: str) -> Value:
    return _na_uri(na, raw).user or None


def _na_field_host(na: NameAddr, raw: str) -> Value:
    return _na_uri(na, raw).host or None


def _na_field_tag(na: NameAddr, raw: str) -> Value:
    return na.tag or None


def _na_field_display(na: NameAddr, raw: str) -> Value:
    return na.display or None


class FromToPV(PV):
    """A field of the From or To header (``$fu $fU $fd $fn $ft``, ``$t*``)."""

    __slots__ = ("field", "to")

    def __init__(self, raw: str, to: bool, field: Callable[[NameAddr, str], Value]) -> None:
        super().__init__(raw)
        self.to = to
        self.field = field

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        try:
            na = msg.to if self.to else msg.from_
        except ParseError as e:
            raise PVError(f"{self.raw}: {e}") from None
        if na is None:
            return None
        return self.field(na, self.raw)


for _names, _to, _field in (
    (("fu", "from"), False, _na_field_uri),
    (("fU", "from.user"), False, _na_field_user),
    (("fd", "from.domain"), False, _na_field_host),
    (("fn",), False, _na_field_display),
    (("ft",), False, _na_field_tag),
    (("tu", "to"), True, _na_field_uri),
    (("tU", "to.user"), True, _na_field_user),
    (("td", "to.domain"), True, _na_field_host),
    (("tn",), True, _na_field_display),
    (("tt",), True, _na_field_tag),
):
    _register(*_names)(_fixed(FromToPV, _to, _field))


# ====================================================================== other name-addr headers


class NameAddrHdrPV(PV):
    """A field of the first P-Asserted-Identity / P-Preferred-Identity /
    Remote-Party-ID / Refer-To / Diversion header."""

    __slots__ = ("field", "key", "what")

    def __init__(self, raw: str, key: str, what: str,
                 field: Callable[[NameAddr, str], Value]) -> None:
        super().__init__(raw)
        self.key = key
        self.what = what
        self.field = field

    def get(self, ctx: MsgContext) -> Value:
        na = _first_name_addr(ctx.msg, self.key, self.what)
        return None if na is None else self.field(na, self.raw)


def _div_param(name: str) -> Callable[[NameAddr, str], Value]:
    def field(na: NameAddr, raw: str) -> Value:
        p = find_param(na.params, name)
        return None if p is None else (p.value or "")

    return field


for _names, _key, _what, _field in (
    (("ai",), "p-asserted-identity", "P-Asserted-Identity", _na_field_uri),
    (("pu",), "p-preferred-identity", "P-Preferred-Identity", _na_field_uri),
    (("pU",), "p-preferred-identity", "P-Preferred-Identity", _na_field_user),
    (("pd",), "p-preferred-identity", "P-Preferred-Identity", _na_field_host),
    (("pn",), "p-preferred-identity", "P-Preferred-Identity", _na_field_display),
    (("re",), "remote-party-id", "Remote-Party-ID", _na_field_uri),
    (("rt",), "refer-to", "Refer-To", _na_field_uri),
    (("di",), "diversion", "Diversion", _na_field_uri),
    (("dir",), "diversion", "Diversion", _div_param("reason")),
    (("dip",), "diversion", "Diversion", _div_param("privacy")),
):
    _register(*_names)(_fixed(NameAddrHdrPV, _key, _what, _field))


# ====================================================================== simple header bodies


class HeaderBodyPV(PV):
    """The body of the first header called `key` (``$ua``, ``$cT``); null if none."""

    __slots__ = ("key",)

    def __init__(self, raw: str, key: str) -> None:
        super().__init__(raw)
        self.key = key

    def get(self, ctx: MsgContext) -> Value:
        hs = ctx.msg.index.get(self.key)
        return hs[0].value if hs else None


_register("ua")(_fixed(HeaderBodyPV, "user-agent"))
_register("cT")(_fixed(HeaderBodyPV, "content-type"))
_register("ci")(_fixed(HeaderBodyPV, "call-id"))


class CSeqNumPV(PV):
    """``$cs``: the CSeq number as written."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        hs = ctx.msg.index.get("cseq")
        if not hs:
            return None
        parts = hs[0].value.split(None, 1)
        return parts[0] if parts else None


class ContentLengthPV(PV):
    """``$cl``: Content-Length value (null without the header)."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        try:
            return ctx.msg.content_length
        except ParseError as e:
            raise PVError(f"{self.raw}: {e}") from None


class BodyPV(PV):
    """``$rb``: the body; null when there is no Content-Length header (1.6)."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        if "content-length" not in msg.index:
            return None
        return msg.body


class MsgBufPV(PV):
    """``$mb``: the whole message as received."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        return ctx.msg.text


class MsgLenPV(PV):
    """``$ml``: length of the message as received."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return len(ctx.msg.buf)


class MethodPV(PV):
    """``$rm``: method text with 1.6's method id (CSeq method on replies)."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        if msg.is_request:
            m = msg.method
        else:
            try:
                m = msg.cseq.method
            except ParseError as e:
                raise PVError(f"{self.raw}: {e}") from None
        return _method_value_of(m)


class StatusPV(PV):
    """``$rs``: reply status code (null on requests)."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        return None if msg.is_request else msg.status


class ReasonPV(PV):
    """``$rr``: reply reason phrase (null on requests)."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        return None if msg.is_request else msg.reason


_simple(CSeqNumPV, "cs")
_simple(ContentLengthPV, "cl")
_simple(BodyPV, "rb")
_simple(MsgBufPV, "mb")
_simple(MsgLenPV, "ml")
_simple(MethodPV, "rm")
_simple(StatusPV, "rs")
_simple(ReasonPV, "rr")


# ====================================================================== $ct


def _contact_entries(msg: SipMsg, raw: str) -> list[tuple[str, NameAddr | None]]:
    """Every contact of every Contact header: (header body, contact or None for ``*``)."""
    out: list[tuple[str, NameAddr | None]] = []
    for h in msg.index.get("contact", ()):
        if is_star_contact(h.value):
            out.append((h.value, None))
            continue
        p = h.parsed
        if p is None:
            try:
                p = h.parsed = parse_name_addr_list(h.value, "Contact")
            except ParseError as e:
                raise PVError(f"{raw}: bad Contact header: {e}") from None
        out.extend((h.value, na) for na in p)
    return out


def _ct_whole(body: str, na: NameAddr | None) -> Value:
    return body if na is None else body[na.start : na.end]


def _ct_name(body: str, na: NameAddr | None) -> Value:
    return None if na is None else (na.display or None)


def _ct_uri(body: str, na: NameAddr | None) -> Value:
    return None if na is None else na.uri_text


def _ct_param(name: str) -> Callable[[str, NameAddr | None], Value]:
    def field(body: str, na: NameAddr | None) -> Value:
        if na is None:
            return None
        return param_value(na.params, name) or None

    return field


def _ct_params(body: str, na: NameAddr | None) -> Value:
    if na is None or not na.params:
        return None
    start = body.index(";", na.params[0].start) + 1
    return body[start : na.params[-1].end].lstrip(" \t\r\n")


_CT_FIELDS: dict[str, Callable[[str, NameAddr | None], Value]] = {
    "name": _ct_name,
    "uri": _ct_uri,
    "q": _ct_param("q"),
    "expires": _ct_param("expires"),
    "methods": _ct_param("methods"),
    "received": _ct_param("received"),
    "params": _ct_params,
}


class ContactPV(PV):
    """``$ct`` / ``$ct.fields(f)``: a contact of the Contact headers, by index."""

    __slots__ = ("field", "index")
    indexed = True

    def __init__(self, raw: str, field: Callable[[str, NameAddr | None], Value],
                 index: int | str | PV | None) -> None:
        super().__init__(raw)
        self.field = field
        self.index = index

    def get(self, ctx: MsgContext) -> Value:
        msg = ctx.msg
        if "contact" not in msg.index:
            return None
        entries = _contact_entries(msg, self.raw)
        if not entries:
            return None
        idx = self.index
        field = self.field
        if idx == "*":
            out = []
            for body, na in entries:
                v = field(body, na)
                out.append("" if v is None else str(v))
            return ", ".join(out)
        if idx is None:
            idx = 0
        elif type(idx) is not int:
            idx = _index_value(idx, ctx, self.raw)  # type: ignore[arg-type]
        try:
            body, na = entries[idx]  # type: ignore[index]
        except IndexError:
            return None
        return field(body, na)


@_register("ct")
def _make_ct(spec: PVSpec, env: Any) -> PV:
    _no_inner(spec)
    return ContactPV(spec.raw, _ct_whole, spec.index)


@_register("ct.fields")
def _make_ct_fields(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None:
        raise PVNameError("$ct.fields takes a field name, not a pseudo-variable")
    name = (spec.inner or "").strip().lower()
    field = _CT_FIELDS.get(name)
    if field is None:
        raise PVNameError(
            f"unknown contact field {spec.inner!r} (use {'|'.join(_CT_FIELDS)})"
        )
    return ContactPV(spec.raw, field, spec.index)


# ====================================================================== credentials


def _credentials(msg: SipMsg, raw: str) -> Credentials | None:
    """Digest credentials of the first Proxy-Authorization (else Authorization)."""
    if msg.is_request and msg.method.upper() in ("ACK", "CANCEL"):
        return None
    hs = msg.index.get("proxy-authorization") or msg.index.get("authorization")
    if not hs:
        return None
    h: Header = hs[0]
    c = h.parsed
    if c is None:
        try:
            c = h.parsed = parse_credentials(h.value)
        except ParseError as e:
            raise PVError(f"{raw}: bad credentials: {e}") from None
    return c if c.is_digest else None


def _cred_uri(c: Credentials) -> Value:
    return c.uri or None


class AuthPV(PV):
    """A field of the request's digest credentials (``$au $ad $ar $aU $an $adu``)."""

    __slots__ = ("field",)

    def __init__(self, raw: str, field: Callable[[Credentials], Value]) -> None:
        super().__init__(raw)
        self.field = field

    def get(self, ctx: MsgContext) -> Value:
        c = _credentials(ctx.msg, self.raw)
        return None if c is None else self.field(c)


for _names, _cfield in (
    (("aU",), lambda c: c.username or ""),
    (("au",), lambda c: c.user or ""),
    (("ad",), lambda c: c.domain or ""),
    (("ar",), lambda c: c.realm or ""),
    (("an",), lambda c: c.nonce or ""),
    (("auth.resp",), lambda c: c.response or ""),
    (("adu",), _cred_uri),
):
    _register(*_names)(_fixed(AuthPV, _cfield))


class AccUserPV(PV):
    """``$Au``: user@realm of the credentials auth accepted, else From user@host.

    The auth module records the accepted credentials in ``ctx.auth_cred``.
    """

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        c = getattr(ctx, "auth_cred", None)
        if c is not None and c.user:
            return f"{c.user}@{c.realm}" if c.realm else c.user
        try:
            na = ctx.msg.from_
        except ParseError as e:
            raise PVError(f"{self.raw}: {e}") from None
        if na is None or not na.uri_text:
            return ""
        u = _na_uri(na, self.raw)
        return f"{u.user or ''}@{u.host}"


_simple(AccUserPV, "Au")


# ====================================================================== flags


class _FlagsPV(PV):
    """Base of the flag PVs: the int form; `attr` names the MsgContext field."""

    __slots__ = ()
    writable = True
    int_typed = True
    attr = "flags"

    def get(self, ctx: MsgContext) -> Value:
        return getattr(ctx, self.attr)

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        flags = 0 if value is None else _need_int(value, self.raw) & _U32
        setattr(ctx, self.attr, flags)


class MsgFlagsPV(_FlagsPV):
    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        return ctx.flags


class MsgFlagsHexPV(MsgFlagsPV):
    __slots__ = ()
    int_typed = False

    def get(self, ctx: MsgContext) -> Value:
        return _hex8(ctx.flags)


class ScriptFlagsPV(_FlagsPV):
    __slots__ = ()
    attr = "sflags"

    def get(self, ctx: MsgContext) -> Value:
        return ctx.sflags


class ScriptFlagsHexPV(ScriptFlagsPV):
    __slots__ = ()
    int_typed = False

    def get(self, ctx: MsgContext) -> Value:
        return _hex8(ctx.sflags)


class BranchFlagsPV(_FlagsPV):
    __slots__ = ()
    attr = "bflags"

    def get(self, ctx: MsgContext) -> Value:
        return ctx.bflags


class BranchFlagsHexPV(BranchFlagsPV):
    __slots__ = ()
    int_typed = False

    def get(self, ctx: MsgContext) -> Value:
        return _hex8(ctx.bflags)


_simple(MsgFlagsPV, "mf")
_simple(MsgFlagsHexPV, "mF")
_simple(ScriptFlagsPV, "sf")
_simple(ScriptFlagsHexPV, "sF")
_simple(BranchFlagsPV, "bf")
_simple(BranchFlagsHexPV, "bF")


# ====================================================================== branches


def _br_uri(b: Branch) -> Value:
    return b.uri


def _br_duri(b: Branch) -> Value:
    return b.dst_uri or None


def _br_q(b: Branch) -> Value:
    return _q2str(b.q)


def _br_path(b: Branch) -> Value:
    return b.path or None


def _br_flags(b: Branch) -> Value:
    return IntStr(str(b.flags), b.flags)


def _br_socket(b: Branch) -> Value:
    return None if b.socket is None else b.socket.name


def _brw_uri(ctx: MsgContext, b: Branch, value: Value, raw: str) -> None:
    if not isinstance(value, str) or not value:
        raise PVError(f"{raw}: a non-empty string is required for the branch URI")
    b.uri = str(value)


def _brw_duri(ctx: MsgContext, b: Branch, value: Value, raw: str) -> None:
    b.dst_uri = None if value is None else _need_str(value, raw)


def _brw_path(ctx: MsgContext, b: Branch, value: Value, raw: str) -> None:
    b.path = None if value is None else _need_str(value, raw)


def _brw_q(ctx: MsgContext, b: Branch, value: Value, raw: str) -> None:
    b.q = None if value is None else _need_int(value, raw)


def _brw_flags(ctx: MsgContext, b: Branch, value: Value, raw: str) -> None:
    b.flags = 0 if value is None else _need_int(value, raw) & _U32


def _brw_socket(ctx: MsgContext, b: Branch, value: Value, raw: str) -> None:
    if value is None:
        b.socket = None
        return
    si = _find_socket(ctx, _need_str(value, raw), raw)
    if si is None:
        raise PVError(f"{raw}: no listening socket matches {value!r}")
    b.socket = si


_BR_FIELDS: dict[str, tuple[Callable[[Branch], Value], Callable[..., None]]] = {
    "uri": (_br_uri, _brw_uri),
    "duri": (_br_duri, _brw_duri),
    "q": (_br_q, _brw_q),
    "path": (_br_path, _brw_path),
    "flags": (_br_flags, _brw_flags),
    "socket": (_br_socket, _brw_socket),
}


class BranchPV(PV):
    """``$branch(field)``: a field of appended branch IDX (0 = first appended).

    Bare ``$branch`` reads the URI and, written, appends a new branch.
    """

    __slots__ = ("index", "reader", "writer")
    writable = True
    indexed = True

    def __init__(self, raw: str, reader: Callable[[Branch], Value],
                 writer: Callable[..., None] | None, index: int | str | PV | None) -> None:
        super().__init__(raw)
        self.reader = reader
        self.writer = writer
        self.index = index

    def get(self, ctx: MsgContext) -> Value:
        branches = ctx.branches
        if not branches or not ctx.msg.is_request:
            return None
        idx = self.index
        if idx is None:
            return self.reader(branches[0])
        if idx == "*":
            return ", ".join(b.uri for b in branches)  # always the URIs, as 1.6
        if type(idx) is not int:
            idx = _index_value(idx, ctx, self.raw)  # type: ignore[arg-type]
        try:
            b = branches[idx]  # type: ignore[index]
        except IndexError:
            return None
        return self.reader(b)

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        if not ctx.msg.is_request:
            raise PVError(f"{self.raw}: branches exist only for requests")
        if self.writer is None:
            self._append(ctx, value)
            return
        idx = self.index
        if idx == "*":
            raise PVError(f"{self.raw}: [*] cannot be assigned")
        if idx is None:
            idx = 0
        elif type(idx) is not int:
            idx = _index_value(idx, ctx, self.raw)  # type: ignore[arg-type]
        n = len(ctx.branches)
        i: int = idx + n if idx < 0 else idx  # type: ignore[operator,assignment]
        if not 0 <= i < n:
            raise PVError(f"{self.raw}: there is no branch {idx} ({n} appended)")
        self.writer(ctx, ctx.branches[i], value, self.raw)

    def _append(self, ctx: MsgContext, value: Value) -> None:
        if not isinstance(value, str) or not value:
            raise PVError(f"{self.raw}: a non-empty string is required to add a branch")
        if len(ctx.branches) >= MAX_BRANCHES - 1:
            raise PVError(f"{self.raw}: too many branches (max {MAX_BRANCHES - 1})")
        ctx.branches.append(Branch(uri=str(value)))


@_register("branch")
def _make_branch(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None:
        raise PVNameError("$branch takes a field name, not a pseudo-variable")
    if spec.inner is None:
        return BranchPV(spec.raw, _br_uri, None, spec.index)
    fields = _BR_FIELDS.get(spec.inner.strip().lower())
    if fields is None:
        raise PVNameError(f"unknown branch field {spec.inner!r} (use {'|'.join(_BR_FIELDS)})")
    return BranchPV(spec.raw, fields[0], fields[1], spec.index)


class DsetPV(PV):
    """``$ds``: the destination set as a Contact header (no CRLF), null if empty."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        items: list[str] = []
        if ctx.new_uri is not None:
            items.append(_dset_item(ctx.new_uri, ctx.q))
        items.extend(_dset_item(b.uri, b.q) for b in ctx.branches)
        if not items:
            return None
        return "Contact: " + ", ".join(items)


def _dset_item(uri: str, q: int | None) -> str:
    return uri if q is None else f"<{uri}>;q={_q2str(q)}"


_simple(DsetPV, "ds")


class PathPV(PV):
    """``$path``: the path vector attached to the R-URI branch."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        return ctx.path


_simple(PathPV, "path")


# ====================================================================== transport


class ForceSocketPV(PV):
    """``$fs``: the forced send socket; write ``[proto:]host[:port]``."""

    __slots__ = ()
    writable = True

    def get(self, ctx: MsgContext) -> Value:
        s = ctx.force_socket
        return None if s is None else s.name

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        if value is None:
            ctx.force_socket = None
            return
        if not isinstance(value, str) or not value:
            raise PVError(f"{self.raw}: a non-empty string is required")
        si = _find_socket(ctx, str(value), self.raw)
        if si is None:
            ctx.rt.log(L_WARN, f"{self.raw}: no socket found to match [{value}]")
            return
        ctx.force_socket = si


class SrcIpPV(PV):
    """``$si``: source IP of the message."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        return ctx.src_ip


class SrcPortPV(PV):
    """``$sp``: source port of the message."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return ctx.src_port


class RcvIpPV(PV):
    """``$Ri``: local IP the message came in on (null without a socket)."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        r = ctx.rcv
        return None if r is None else r.ip


class RcvPortPV(PV):
    """``$Rp``: local port the message came in on (null without a socket)."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        r = ctx.rcv
        return None if r is None else r.port


class ProtoPV(PV):
    """``$pr``: transport of the message, with 1.6's protocol id."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        p = ctx.proto
        return _proto_value_of(p) if p in PROTO_IDS else _NULL_PROTO


_simple(ForceSocketPV, "fs")
_simple(SrcIpPV, "si", "src_ip")
_simple(SrcPortPV, "sp")
_simple(RcvIpPV, "Ri")
_simple(RcvPortPV, "Rp")
_simple(ProtoPV, "pr", "proto")


# ====================================================================== process / script state


class RetCodePV(PV):
    """``$rc``: code of the last action (spec 3.6)."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return ctx.rc


class MsgIdPV(PV):
    """``$mi``: message id."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return ctx.msg_id


class PidPV(PV):
    """``$pp``: process id."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return ctx.rt.pid


class ErrPV(PV):
    """``$err.*``: the last core error."""

    __slots__ = ("attr",)

    def __init__(self, raw: str, attr: str) -> None:
        super().__init__(raw)
        self.attr = attr

    def get(self, ctx: MsgContext) -> Value:
        return getattr(ctx.err, self.attr)


class ErrIntPV(ErrPV):
    __slots__ = ()
    int_typed = True


_simple(RetCodePV, "rc", "retcode")
_simple(MsgIdPV, "mi")
_simple(PidPV, "pp")
_register("err.class")(_fixed(ErrIntPV, "eclass"))
_register("err.level")(_fixed(ErrIntPV, "level"))
_register("err.rcode")(_fixed(ErrIntPV, "rcode"))
_register("err.info")(_fixed(ErrPV, "info"))
_register("err.rreason")(_fixed(ErrPV, "rreason"))


# ====================================================================== time


class TimeFmtPV(PV):
    """``$time(fmt)``: local time through strftime; null when the result is empty."""

    __slots__ = ("fmt",)

    def __init__(self, raw: str, fmt: str) -> None:
        super().__init__(raw)
        self.fmt = fmt

    def get(self, ctx: MsgContext) -> Value:
        try:
            text = time.strftime(self.fmt, time.localtime())
        except ValueError as e:
            raise PVError(f"{self.raw}: {e}") from None
        return text or None


@_register("time")
def _make_time(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None or not spec.inner:
        raise PVNameError("$time needs a strftime format, e.g. $time(%H:%M:%S)")
    return TimeFmtPV(spec.raw, spec.inner)


class TimeTextPV(PV):
    """``$Tf``: ctime() text of now (no newline), integer = unix time."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        t = int(time.time())
        return IntStr(time.ctime(t), t)


class TimeSecPV(PV):
    """``$Ts``: unix time now."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return int(time.time())


class TimeUsecPV(PV):
    """``$Tsm``: microseconds of the current second."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return (time.time_ns() // 1000) % 1_000_000


class StartTimePV(PV):
    """``$TS``: start-up time."""

    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Value:
        return ctx.rt.start_time


_simple(TimeTextPV, "Tf")
_simple(TimeSecPV, "Ts")
_simple(TimeUsecPV, "Tsm")
_simple(StartTimePV, "TS")


# ====================================================================== $C, $argv

_COLOURS = {"x": "9", "s": "0", "r": "1", "g": "2", "y": "3", "b": "4", "p": "5", "c": "6", "w": "7"}


class ColourPV(PV):
    """``$C(xy)``: ANSI colour escape, empty unless logging to stderr or forced."""

    __slots__ = ("code",)

    def __init__(self, raw: str, code: str) -> None:
        super().__init__(raw)
        self.code = code

    def get(self, ctx: MsgContext) -> Value:
        cfg = ctx.rt.config
        if cfg.get("log_stderror") or cfg.get("xlog_force_color"):
            return self.code
        return ""


@_register("C")
def _make_colour(spec: PVSpec, env: Any) -> PV:
    name = spec.inner or ""
    if spec.inner_pv is not None or len(name) != 2:
        raise PVNameError(f"bad colour {name!r}: $C takes two letters, e.g. $C(rx)")
    fg, bg = name[0], name[1]
    if fg.lower() not in _COLOURS or fg == "X" or bg not in _COLOURS:
        raise PVNameError(
            f"bad colour {name!r}: use two of x s r g y b p c w "
            "(upper-case foreground = bold)"
        )
    bold = "1" if fg.isupper() else "0"
    code = f"\033[{bold};3{_COLOURS[fg.lower()]};4{_COLOURS[bg]}m"
    return ColourPV(spec.raw, code)


class ArgvPV(PV):
    """``$argv(name)``: value of ``-o name=value`` (null if absent or empty)."""

    __slots__ = ("name",)

    def __init__(self, raw: str, name: str) -> None:
        super().__init__(raw)
        self.name = name

    def get(self, ctx: MsgContext) -> Value:
        return ctx.rt.argv.get(self.name) or None


@_register("argv")
def _make_argv(spec: PVSpec, env: Any) -> PV:
    if spec.inner_pv is not None or not spec.inner:
        raise PVNameError("$argv needs an option name: $argv(name)")
    return ArgvPV(spec.raw, spec.inner)


del _names, _cls, _src, _part, _to, _field, _key, _what, _cfield
