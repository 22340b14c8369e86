"""rr: Record-Route and loose routing (OpenSIPS 1.6 module `rr`).

Script functions (route masks as in 1.6):

* ``record_route()`` / ``record_route(params)`` (R B F): one Record-Route
  for the socket the request leaves through; with ``enable_double_rr`` a
  second one for the receiving socket when the two differ, both then with
  ``;r2=on``. ``params`` (a format) is appended to the URI as written.
* ``record_route_preset(addr)`` / ``record_route_preset(out, in)`` (R B F):
  the given text as the RR address; ``ftag`` comes before ``lr`` here.
* ``add_rr_param(param)`` (R B F): before record_route it is kept for it,
  after it the parameter goes into the headers already added.
* ``loose_route()`` (R): route by the Route set (RFC 3261 16.4/16.6/16.12,
  loose and strict routers); 1 when the Route set decided the next hop,
  -1 when there is no Route header, when it only removed a lone preloaded
  Route to us, or on error.
* ``check_route_param(regex)`` / ``is_direction("upstream"|"downstream")``
  (R): about the parameters of our Route that loose_route consumed.

PV ``$rr_params``: those parameters (without the leading ``;``).

The Record-Route text depends on the socket the request is sent from, so
it is a send-time lump (`sipserver.sip.lumps.SendInfo`): forward() and tm
compute it for each destination. As in 1.6 the port is left out when it is
5060 and not advertised, and ``;transport=`` is added for non-UDP sockets.

API for other modules (1.6's load_rr), plain functions taking the message
context: `add_rr_param`, `check_route_param`, `is_direction`,
`get_route_param`, `get_route_params`, `get_remote_target`, `get_route_set`,
`removed_routes`, `routing_type`, and `register_rrcb(where, fn, param,
prior)` for callbacks run by loose_route as ``fn(ctx, params, param)``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
    PVarExport,
)
from ..core.runtime import DEFAULT_PORTS, L_DBG, L_ERR, L_WARN
from ..lang.pv import PV, PVNameError, PVSpec, Value
from ..sip.builders import format_ip
from ..sip.errors import ParseError
from ..sip.headers import NameAddr, parse_name_addr_list
from ..sip.lumps import SendInfo
from ..sip.uri import Uri, parse_uri

__all__ = [
    "ROUTING_LL",
    "ROUTING_LS",
    "ROUTING_SL",
    "ROUTING_SS",
    "RR_FLOW_DOWNSTREAM",
    "RR_FLOW_UPSTREAM",
    "add_rr_param",
    "check_route_param",
    "exports",
    "get_remote_target",
    "get_route_param",
    "get_route_params",
    "get_route_set",
    "is_direction",
    "loose_route",
    "record_route",
    "record_route_preset",
    "register_rrcb",
    "removed_routes",
    "routing_type",
]

_RBF = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE

SIP_PORT = 5060
RR_DRIVEN = 1
NOT_RR_DRIVEN = -1
RR_ERROR = -1

# routing types (how the previous and the next hop route), as in 1.6's api.h
ROUTING_LL = 1 << 1  # loose -> loose
ROUTING_SL = 1 << 2  # strict -> loose
ROUTING_SS = 1 << 3  # strict -> strict
ROUTING_LS = 1 << 4  # loose -> strict

RR_FLOW_DOWNSTREAM = 1
RR_FLOW_UPSTREAM = 2

RR_PARAM_BUF_SIZE = 512  # add_rr_param text kept before record_route
MADDR_URI_MAX = 127

PARAM_DEFAULTS = {
    "append_fromtag": 1,
    "enable_double_rr": 1,
    "enable_full_lr": 0,
    "add_username": 0,
    "enable_socket_mismatch_warning": 1,
}


# ====================================================================== state


class _RRHeader:
    """One Record-Route header this module inserted, rendered when sent.

    `kind` is "out" (address of the sending socket), "in" (the receiving
    socket; only when it differs from the sending one) or "preset" (the
    script gave the address).
    """

    __slots__ = ("addr", "double", "ftag", "full_lr", "kind", "params", "rcv", "user")

    def __init__(self, kind: str, *, user: str, ftag: str, full_lr: bool, double: bool,
                 rcv: Any, addr: str = "") -> None:
        self.kind = kind
        self.user = user
        self.ftag = ftag
        self.full_lr = full_lr
        self.double = double
        self.rcv = rcv
        self.addr = addr
        self.params: list[str] = []  # record_route(params), then add_rr_param texts

    def render(self, send: SendInfo | None) -> str:
        if send is None:  # built without a destination: as if sent from where it came
            send = SendInfo(self.rcv, getattr(self.rcv, "proto", "udp"), self.rcv,
                            *_sock_hostport(self.rcv))
        lr = ";lr=on" if self.full_lr else ";lr"
        ftag = f";ftag={self.ftag}" if self.ftag else ""
        user = f"{self.user}@" if self.user else ""
        params = "".join(self.params)
        if self.kind == "preset":
            return f"Record-Route: <sip:{user}{self.addr}{ftag}{lr}{params}>\r\n"
        differ = send.realms_differ
        if self.kind == "in":
            if not differ or send.rcv is None:
                return ""
            addr = _addr_text(send.rcv, *_sock_hostport(send.rcv))
        else:
            sock = send.sock
            addr = _addr_text(sock, send.host or getattr(sock, "ip", ""), send.port)
        r2 = ";r2=on" if self.double and differ else ""
        return f"Record-Route: <sip:{user}{addr}{r2}{lr}{ftag}{params}>\r\n"


def _sock_hostport(sock: Any) -> tuple[str, int | None]:
    """Advertised (else real) address of a socket, port None when not written."""
    if sock is None:
        return "", None
    host = sock.adv_host or sock.ip
    if sock.adv_port:
        return host, int(sock.adv_port)
    return host, (None if sock.port == SIP_PORT else sock.port)


def _addr_text(sock: Any, host: str, port: int | None) -> str:
    """``host[:port][;transport=x]`` as 1.6's SUBST_*_ALL lumps write it."""
    text = format_ip(host) if port is None else f"{format_ip(host)}:{port}"
    proto = getattr(sock, "proto", "udp") or "udp"
    if proto != "udp":
        text += f";transport={proto}"
    return text


class _MsgState:
    """What 1.6 keeps in statics keyed by the message id."""

    __slots__ = ("deleted", "direction", "headers", "msg", "msg_id", "param_buf", "removed",
                 "routed", "routed_params", "routing_type", "rr_done")

    def __init__(self, ctx: MsgContext) -> None:
        self.msg_id = ctx.msg_id
        self.msg = ctx.msg
        self.rr_done = False
        self.param_buf = ""  # add_rr_param before record_route
        self.headers: list[_RRHeader] = []
        self.routed = False  # loose_route consumed a Route of ours
        self.routed_params = ""
        self.direction = 0
        self.removed = 0
        self.routing_type = 0
        self.deleted: set[tuple[int, int]] = set()  # (Route header #, value #)


class RRState:
    """The module's per-process state: callbacks and the current message."""

    __slots__ = ("callbacks", "cur")

    def __init__(self) -> None:
        # (priority, callback, param), run in list order
        self.callbacks: list[tuple[int, Callable[..., Any], Any]] = []
        self.cur: _MsgState | None = None


_FALLBACK = LoadedModule(ModuleExports("rr"), "", dict(PARAM_DEFAULTS), None)


def _state(module: LoadedModule) -> RRState:
    if module.state is None:
        module.state = RRState()
    return module.state


def _module_of(where: Any) -> LoadedModule:
    """The rr LoadedModule of a context, runtime or registry (or rr itself)."""
    if isinstance(where, LoadedModule):
        if where.exports.name == "rr":
            return where
        where = where.rt
    if isinstance(where, MsgContext):
        where = where.rt
    registry = getattr(where, "registry", where)
    modules = getattr(registry, "modules", None)
    if modules is not None and "rr" in modules:
        return modules["rr"]
    return _FALLBACK


def _msg_state(module: LoadedModule, ctx: MsgContext) -> _MsgState:
    """This message's state (a new one for a new message, as 1.6's msg->id checks)."""
    st = _state(module)
    cur = st.cur
    if cur is not None and (cur.msg_id == ctx.msg_id if ctx.msg_id else cur.msg is ctx.msg):
        return cur
    st.cur = cur = _MsgState(ctx)
    return cur


def _peek_state(module: LoadedModule, ctx: MsgContext) -> _MsgState | None:
    cur = _state(module).cur
    if cur is not None and (cur.msg_id == ctx.msg_id if ctx.msg_id else cur.msg is ctx.msg):
        return cur
    return None


def _p(module: LoadedModule, name: str) -> int:
    return int(module.params.get(name, PARAM_DEFAULTS[name]) or 0)


# ====================================================================== record-route


def _username(ctx: MsgContext) -> str | None:
    """The R-URI user as received, else from the rewritten R-URI; None on error."""
    try:
        uri = parse_uri(ctx.msg.ruri_text)
        user = uri.user or ""
        if not user and ctx.new_uri is not None:
            user = parse_uri(ctx.new_uri).user or ""
    except ParseError:
        ctx.rt.log(L_ERR, "rr: failed to parse R-URI")
        return None
    return user


def _from_tag(ctx: MsgContext) -> str | None:
    try:
        return ctx.msg.from_.tag or ""
    except (ParseError, AttributeError):
        ctx.rt.log(L_ERR, "rr: From parsing failed")
        return None


def _common(module: LoadedModule, ctx: MsgContext) -> tuple[str, str] | None:
    """(user, From tag) for a Record-Route, as the parameters ask; None on error."""
    user = ""
    if _p(module, "add_username"):
        u = _username(ctx)
        if u is None:
            return None
        user = u
    ftag = ""
    if _p(module, "append_fromtag"):
        t = _from_tag(ctx)
        if t is None:
            return None
        ftag = t
    return user, ftag


def _record_route(module: LoadedModule, ctx: MsgContext, params: str | None) -> int:
    st = _msg_state(module, ctx)
    common = _common(module, ctx)
    if common is None:
        return -1
    user, ftag = common
    double = bool(_p(module, "enable_double_rr"))
    full_lr = bool(_p(module, "enable_full_lr"))
    kinds = ("out", "in") if double else ("out",)
    for kind in kinds:
        hdr = _RRHeader(kind, user=user, ftag=ftag, full_lr=full_lr, double=double, rcv=ctx.rcv)
        if params:
            hdr.params.append(params)
        if st.param_buf:
            hdr.params.append(st.param_buf)
        ctx.msg.lumps.insert(ctx.msg.first_line_end, hdr.render)
        st.headers.append(hdr)
    st.param_buf = ""
    return 0


def _record_route_preset(module: LoadedModule, ctx: MsgContext, addr: str) -> int:
    st = _msg_state(module, ctx)
    common = _common(module, ctx)
    if common is None:
        return -1
    user, ftag = common
    hdr = _RRHeader("preset", user=user, ftag=ftag, full_lr=bool(_p(module, "enable_full_lr")),
                    double=False, rcv=ctx.rcv, addr=addr)
    if st.param_buf:
        hdr.params.append(st.param_buf)
    ctx.msg.lumps.insert(ctx.msg.first_line_end, hdr.render)
    st.headers.append(hdr)
    st.param_buf = ""
    return 1


def add_rr_param(ctx: MsgContext, param: str) -> bool:
    """Append `param` (``;name=value``) to this message's Record-Route.

    After record_route it goes into the header(s) already added (both of a
    double RR), before it it is kept for the coming one. False on error.
    """
    return _add_rr_param(_module_of(ctx), ctx, param)


def _add_rr_param(module: LoadedModule, ctx: MsgContext, param: str) -> bool:
    st = _msg_state(module, ctx)
    if st.headers:
        st.headers[0].params.append(param)
        if _p(module, "enable_double_rr") and len(st.headers) > 1:
            st.headers[1].params.append(param)
        return True
    if len(st.param_buf) + len(param) > RR_PARAM_BUF_SIZE:
        ctx.rt.log(L_ERR, "rr: maximum size of rr_param_buf exceeded")
        return False
    st.param_buf += param
    return True


# ====================================================================== routes


class _RouteSet:
    """The Route headers of a request, each parsed on first use."""

    __slots__ = ("ctx", "hdrs")

    def __init__(self, ctx: MsgContext) -> None:
        self.ctx = ctx
        self.hdrs = ctx.msg.headers_named("route")

    def values(self, i: int) -> list[NameAddr] | None:
        h = self.hdrs[i]
        if h.parsed is None:
            try:
                h.parsed = parse_name_addr_list(h.value, "Route")
            except ParseError as e:
                self.ctx.rt.log(L_ERR, f"rr: failed to parse Route HF: {e}")
                return None
        return h.parsed

    def remove_header(self, i: int) -> None:
        self.ctx.msg.lumps.remove_header(self.hdrs[i])

    def remove_before(self, i: int, value: NameAddr) -> None:
        """Delete the header body from its start up to `value`."""
        h = self.hdrs[i]
        self.ctx.msg.lumps.delete(h.value_start, h.value_start + value.start)


def _params_text(uri: Uri) -> str:
    """The URI parameters as written, without the leading ';' (1.6 puri.params)."""
    text = uri._ptext  # the validated ";a=1;b" text the parameters are split from
    return text[1:] if text else ""


def _has_flag(uri: Uri, name: str) -> bool:
    return any(n.strip(" \t\r\n").lower() == name for n, _ in uri.params)


def _is_strict(uri: Uri) -> bool:
    return not _has_flag(uri, "lr")


def _is_2rr(uri: Uri) -> bool:
    return _has_flag(uri, "r2")


def _is_myself(ctx: MsgContext, uri: Uri) -> bool:
    return bool(uri.host) and ctx.rt.is_myself(uri.host, uri.port or SIP_PORT)


def _maddr_uri(ctx: MsgContext, text: str, uri: Uri) -> str | None:
    """`text`, or ``sip:maddr[:port]`` when the URI has a maddr; None on error."""
    if not uri.has_param("maddr"):
        return text
    maddr = uri.get_param("maddr") or ""
    if len(maddr) > MADDR_URI_MAX - 10:
        ctx.rt.log(L_ERR, "rr: too long maddr parameter")
        return None
    return f"sip:{maddr}" + (f":{uri.port}" if uri.port is not None else "")


def _parse(ctx: MsgContext, na: NameAddr) -> Uri | None:
    """The URI of a Route value (parsed once, kept on the value)."""
    try:
        return na.uri
    except ParseError:
        ctx.rt.log(L_ERR, f"rr: failed to parse the Route URI <{na.uri_text}>")
        return None


def _ip_norm(text: str) -> str:
    h = text.strip("[]").lower()
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        return h


def _grep_socket(ctx: MsgContext, uri: Uri) -> Any:
    """1.6 grep_sock_info for the host/port/transport of a URI (UDP and the
    transport's default port when not given)."""
    proto = uri.transport or "udp"
    port = uri.port or DEFAULT_PORTS.get(proto, SIP_PORT)
    host = _ip_norm(uri.host)
    for s in ctx.rt.sockets:
        if s.proto != proto:
            continue
        if s.port != port and s.adv_port != port:
            continue
        if host == _ip_norm(s.ip) or (s.adv_host and host == _ip_norm(s.adv_host)):
            return s
    return None


def _force_from_2rr(module: LoadedModule, ctx: MsgContext, uri: Uri) -> None:
    sock = _grep_socket(ctx, uri)
    if sock is not None:
        ctx.force_socket = sock
    elif _p(module, "enable_socket_mismatch_warning"):
        ctx.rt.log(L_WARN, "rr: no socket found for match second RR")


def _run_callbacks(module: LoadedModule, ctx: MsgContext, st: _MsgState) -> None:
    params = st.routed_params if st.routed else ""
    for _, fn, param in list(_state(module).callbacks):
        try:
            fn(ctx, params, param)
        except Exception as e:  # a callback must not break routing
            ctx.rt.log(L_ERR, f"rr: callback {fn!r} failed: {e}")


def _is_preloaded(ctx: MsgContext) -> int:
    """1 when the To has no tag (an initial request), 0 if it has, -1 on error."""
    if not ctx.msg.has_header("to"):
        ctx.rt.log(L_ERR, "rr: To header field not found")
        return -1
    try:
        tag = ctx.msg.to.tag
    except ParseError:
        ctx.rt.log(L_ERR, "rr: failed to parse To header field")
        return -1
    return 0 if tag else 1


def loose_route(ctx: MsgContext) -> int:
    """Loose routing per RFC 3261 (1.6 semantics): 1 RR driven, -1 not / error."""
    return _loose_route(_module_of(ctx), ctx)


def _loose_route(module: LoadedModule, ctx: MsgContext) -> int:
    st = _msg_state(module, ctx)
    st.removed = 0
    st.routing_type = 0
    rs = _RouteSet(ctx)
    if not rs.hdrs:
        ctx.rt.log(L_DBG, "rr: there is no Route HF")
        return -1
    if rs.values(0) is None:
        return -1
    try:
        ruri = parse_uri(ctx.ruri)
    except ParseError:
        ctx.rt.log(L_ERR, "rr: failed to parse Request URI")
        return -1
    preloaded = _is_preloaded(ctx)
    if preloaded < 0:
        return -1
    if preloaded:
        return _after_loose(module, ctx, st, rs, True)
    if _is_myself(ctx, ruri):
        return _after_strict(module, ctx, st, rs, ruri)
    return _after_loose(module, ctx, st, rs, False)


def _next_header(rs: _RouteSet, hi: int) -> int | None:
    """Index of the Route header after `hi`, -1 when there is none, None on error."""
    if hi + 1 >= len(rs.hdrs):
        return -1
    if rs.values(hi + 1) is None:
        return None
    return hi + 1


def _after_loose(module: LoadedModule, ctx: MsgContext, st: _MsgState, rs: _RouteSet,
                 preloaded: bool) -> int:
    hi, ri = 0, 0
    values = rs.values(0) or []
    uri = _parse(ctx, values[0])
    if uri is None:
        return RR_ERROR
    if _is_myself(ctx, uri):
        ctx.rt.log(L_DBG, f"rr: topmost route URI <{values[0].uri_text}> is me")
        st.routed = True
        st.routed_params = _params_text(uri)
        st.removed += 1
        st.deleted.add((hi, ri))
        double = _p(module, "enable_double_rr") and _is_2rr(uri)
        for step in (1, 2) if double else (1,):
            if step == 2:
                uri2 = _parse(ctx, values[ri])
                if uri2 is None:
                    return RR_ERROR
                _force_from_2rr(module, ctx, uri2)
                st.removed += 1
                st.deleted.add((hi, ri))
            if ri + 1 < len(values):
                ri += 1
                continue
            rs.remove_header(hi)
            nxt = _next_header(rs, hi)
            if nxt is None:
                return RR_ERROR
            if nxt < 0:
                ctx.rt.log(L_DBG, "rr: no next URI found")
                st.routing_type = ROUTING_LL
                _run_callbacks(module, ctx, st)
                return NOT_RR_DRIVEN if preloaded else RR_DRIVEN
            hi, ri = nxt, 0
            values = rs.values(hi) or []
        uri = _parse(ctx, values[ri])
        if uri is None:
            return RR_ERROR
    target = values[ri]
    if _is_strict(uri):
        ctx.rt.log(L_DBG, "rr: next URI is a strict router")
        st.routing_type = ROUTING_LS
        if _handle_sr(ctx, st, rs, hi, values, ri, uri) < 0:
            return RR_ERROR
    else:
        st.routing_type = ROUTING_LL
        dst = _maddr_uri(ctx, target.uri_text, uri)
        if dst is None:
            return RR_ERROR
        ctx.dst_uri = dst
        if ri != 0:  # values of ours before it in the same header
            rs.remove_before(hi, target)
            st.deleted.add((hi, 0))
    _run_callbacks(module, ctx, st)
    return RR_DRIVEN


def _handle_sr(ctx: MsgContext, st: _MsgState, rs: _RouteSet, hi: int,
               values: list[NameAddr], ri: int, uri: Uri) -> int:
    """Next hop is a strict router: R-URI saved as the last Route, the Route
    put into the R-URI and removed."""
    msg = ctx.msg
    msg.lumps.insert(msg.headers_end, f"Route: <{msg.ruri_text}>\r\n")
    new = _maddr_uri(ctx, values[ri].uri_text, uri)
    if new is None:
        return -1
    ctx.set_ruri(new)
    if ri + 1 < len(values):
        rs.remove_before(hi, values[ri + 1])
    else:
        rs.remove_header(hi)
    st.deleted.add((hi, ri))
    return 0


def _after_strict(module: LoadedModule, ctx: MsgContext, st: _MsgState, rs: _RouteSet,
                  ruri: Uri) -> int:
    """The previous hop was a strict router (our RR URI is in the R-URI)."""
    hi, ri = 0, 0
    values = rs.values(0) or []
    uri = _parse(ctx, values[0])
    if uri is None:
        return RR_ERROR
    if _p(module, "enable_double_rr") and _is_2rr(uri) and _is_myself(ctx, uri):
        _force_from_2rr(module, ctx, uri)
        st.removed += 1
        st.deleted.add((0, 0))
        if len(values) > 1:
            ri = 1
        else:
            rs.remove_header(0)
            nxt = _next_header(rs, 0)
            if nxt is None:
                return RR_ERROR
            if nxt < 0:
                ctx.rt.log(L_DBG, "rr: no next URI found after the strict router")
                return NOT_RR_DRIVEN
            hi, ri = nxt, 0
            values = rs.values(hi) or []
        uri = _parse(ctx, values[ri])
        if uri is None:
            return RR_ERROR
    st.routed = True
    st.routed_params = _params_text(ruri)
    st.removed += 1
    target = values[ri]
    if _is_strict(uri):
        st.routing_type = ROUTING_SS
        new = _maddr_uri(ctx, target.uri_text, uri)
        if new is None:
            return RR_ERROR
        ctx.set_ruri(new)
        if ri + 1 < len(values):
            rs.remove_before(hi, values[ri + 1])
        else:
            rs.remove_header(hi)
        st.deleted.add((hi, ri))
    else:
        st.routing_type = ROUTING_SL
        dst = _maddr_uri(ctx, target.uri_text, uri)
        if dst is None:
            return RR_ERROR
        ctx.dst_uri = dst
        del_rt: tuple[int, int] | None = None
        if ri != 0:
            rs.remove_before(hi, target)
            del_rt = (hi, 0)
            st.deleted.add(del_rt)
        # the remote target is the last Route: into the R-URI, out of the set
        li = len(rs.hdrs) - 1
        last_values = rs.values(li)
        if last_values is None:
            return RR_ERROR
        last = last_values[-1]
        last_uri = _parse(ctx, last)
        if last_uri is None:
            return RR_ERROR
        new = _maddr_uri(ctx, last.uri_text, last_uri)
        if new is None:
            return RR_ERROR
        ctx.set_ruri(new)
        st.deleted.add((li, len(last_values) - 1))
        prev = len(last_values) - 2
        if prev >= 0 and (li, prev) != del_rt:
            h = rs.hdrs[li]
            ctx.msg.lumps.delete(h.value_start + last_values[prev].end, h.value_start + last.end)
        else:
            rs.remove_header(li)
    _run_callbacks(module, ctx, st)
    return RR_DRIVEN


# ====================================================================== route params API


def get_route_params(ctx: MsgContext) -> str | None:
    """The parameters of our Route loose_route consumed (no leading ';'), or
    None when loose_route did not consume one for this message."""
    st = _peek_state(_module_of(ctx), ctx)
    if st is None or not st.routed:
        return None
    return st.routed_params


def check_route_param(ctx: MsgContext, regex: re.Pattern[str]) -> bool:
    """Whether `regex` matches ``;<params>`` of our consumed Route."""
    params = get_route_params(ctx)
    if not params:
        return False
    return regex.search(";" + params) is not None


def _split_params(text: str) -> list[str]:
    """Split at ';' outside quotes."""
    out: list[str] = []
    quoted = ""
    start = 0
    for i, ch in enumerate(text):
        if quoted:
            if ch == quoted and text[i - 1] != "\\":
                quoted = ""
        elif ch in "\"'":
            quoted = ch
        elif ch == ";":
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def get_route_param(ctx: MsgContext, name: str) -> str | None:
    """The value of parameter `name` (case-sensitive, as 1.6) of our consumed
    Route: "" when it has no value, None when it is not there."""
    params = get_route_params(ctx)
    if not params:
        return None
    for part in _split_params(params):
        pname, eq, value = part.partition("=")
        if pname.strip(" \t") != name:
            continue
        if not eq:
            return ""
        value = value.strip(" \t")
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            return value[1:end] if end > 0 else value[1:]
        return re.split(r"[ \t]", value, maxsplit=1)[0]
    return None


def is_direction(ctx: MsgContext, direction: int | str) -> bool:
    """Whether the request flows `direction` (RR_FLOW_* or "upstream"/"downstream"):
    upstream when the ``ftag`` of our Route differs from the From tag."""
    if isinstance(direction, str):
        direction = _direction_code(direction)
    module = _module_of(ctx)
    st = _msg_state(module, ctx)
    if not st.direction:
        st.direction = _find_direction(ctx)
    return st.direction == direction


def _find_direction(ctx: MsgContext) -> int:
    ftag = get_route_param(ctx, "ftag")
    if not ftag:
        return RR_FLOW_DOWNSTREAM
    try:
        tag = ctx.msg.from_.tag
    except (ParseError, AttributeError):
        return RR_FLOW_DOWNSTREAM
    if not tag:
        return RR_FLOW_DOWNSTREAM
    return RR_FLOW_DOWNSTREAM if tag == ftag else RR_FLOW_UPSTREAM


def _direction_code(text: str) -> int:
    word = text.lower()
    if word == "downstream":
        return RR_FLOW_DOWNSTREAM
    if word == "upstream":
        return RR_FLOW_UPSTREAM
    raise ValueError(f"unknown direction '{text}'")


def removed_routes(ctx: MsgContext) -> int:
    """How many Route values of ours the last loose_route removed."""
    st = _peek_state(_module_of(ctx), ctx)
    return st.removed if st is not None else 0


def routing_type(ctx: MsgContext) -> int:
    """ROUTING_LL/SL/SS/LS as the last loose_route found it (0: none)."""
    st = _peek_state(_module_of(ctx), ctx)
    return st.routing_type if st is not None else 0


def get_remote_target(ctx: MsgContext) -> str | None:
    """The remote target after loose_route's decisions (1.6.4 API)."""
    rtype = routing_type(ctx)
    if rtype in (ROUTING_LL, ROUTING_LS):
        return ctx.msg.ruri_text
    if rtype == ROUTING_SL:
        return ctx.ruri
    if rtype == ROUTING_SS:
        rs = _RouteSet(ctx)
        if not rs.hdrs:
            return None
        values = rs.values(len(rs.hdrs) - 1)
        if not values:
            return None
        uri = _parse(ctx, values[-1])
        return None if uri is None else _maddr_uri(ctx, values[-1].uri_text, uri)
    ctx.rt.log(L_ERR, f"rr: invalid routing type - {rtype}")
    return None


def get_route_set(ctx: MsgContext) -> list[str] | None:
    """The Route URIs loose_route left in the message (1.6.4 API)."""
    rs = _RouteSet(ctx)
    if not rs.hdrs:
        ctx.rt.log(L_ERR, "rr: no route headers")
        return None
    module = _module_of(ctx)
    st = _peek_state(module, ctx)
    deleted = st.deleted if st is not None else set()
    rtype = st.routing_type if st is not None else 0
    uris: list[str] = []
    if rtype in (ROUTING_SS, ROUTING_LS):
        uris.append(ctx.ruri)
    for hi in range(len(rs.hdrs)):
        values = rs.values(hi)
        if values is None:
            return None
        uris.extend(v.uri_text for ri, v in enumerate(values) if (hi, ri) not in deleted)
    if rtype == ROUTING_SS:
        uris.pop()
    return uris


# ====================================================================== callbacks


def register_rrcb(where: Any, fn: Callable[[MsgContext, str, Any], Any], param: Any = None,
                  prior: int = 0) -> int:
    """Register `fn(ctx, rr_params, param)`, run by every loose_route that
    routes by the Route set. `where` finds the rr module: a MsgContext, a
    Runtime, the Registry, or a LoadedModule (rr's own or one with `.rt`).

    Lower `prior` runs first; 0 always goes to the front (as in 1.6).
    Returns 0, or -1 for a negative priority.
    """
    if prior < 0:
        return -1
    cbs = _state(_module_of(where)).callbacks
    entry = (prior, fn, param)
    if not cbs or not prior or prior < cbs[0][0]:
        cbs.insert(0, entry)
        return 0
    i = 1
    while i < len(cbs) and cbs[i][0] < prior:
        i += 1
    cbs.insert(i, entry)
    return 0


# ====================================================================== script functions


def _fixup_module(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [module]


def _fixup_formats(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [module, *(env.compile_format(a) for a in args)]


def _fixup_regex(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    from .textops import RegexError, compile_posix

    try:
        return [module, compile_posix(args[0])]
    except RegexError as e:
        raise FixupError(f"bad regular expression '{args[0]}': {e}") from None


def _fixup_direction(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    if not _p(module, "append_fromtag"):
        raise FixupError('usage of "is_direction" function requires parameter '
                         '"append_fromtag" enabled!!')
    try:
        return [module, _direction_code(args[0])]
    except ValueError as e:
        raise FixupError(str(e)) from None


def record_route(ctx: MsgContext, params: str | None = None) -> int:
    """``record_route([params])`` for modules: 1 done, -1 error or second attempt."""
    return _w_record_route(_module_of(ctx), ctx, params)


def record_route_preset(ctx: MsgContext, addr: str, addr2: str | None = None) -> int:
    """``record_route_preset(addr[, addr2])`` for modules: 1 done, -1 error."""
    return _w_record_route_preset(_module_of(ctx), ctx, addr, addr2)


def _w_record_route(module: LoadedModule, ctx: MsgContext, params: str | None) -> int:
    st = _msg_state(module, ctx)
    if st.rr_done:
        ctx.rt.log(L_ERR, "rr: Double attempt to record-route")
        return -1
    if _record_route(module, ctx, params) < 0:
        return -1
    st.rr_done = True
    return 1


def _w_record_route_preset(module: LoadedModule, ctx: MsgContext, addr: str,
                           addr2: str | None) -> int:
    st = _msg_state(module, ctx)
    if st.rr_done:
        ctx.rt.log(L_ERR, "rr: Double attempt to record-route")
        return -1
    if addr2 is not None and not _p(module, "enable_double_rr"):
        ctx.rt.log(L_ERR, "rr: Attempt to double record-route while 'enable_double_rr' "
                          "param is disabled")
        return -1
    if _record_route_preset(module, ctx, addr) < 0:
        return -1
    if addr2 is not None and _record_route_preset(module, ctx, addr2) < 0:
        return -1
    st.rr_done = True
    return 1


def w_loose_route(ctx: MsgContext, module: LoadedModule) -> int:
    return _loose_route(module, ctx)


def w_record_route(ctx: MsgContext, module: LoadedModule, fmt: Any = None) -> int:
    return _w_record_route(module, ctx, fmt.render(ctx) if fmt is not None else None)


def w_record_route_preset(ctx: MsgContext, module: LoadedModule, fmt: Any, fmt2: Any = None) -> int:
    return _w_record_route_preset(module, ctx, fmt.render(ctx),
                                  fmt2.render(ctx) if fmt2 is not None else None)


def w_add_rr_param(ctx: MsgContext, module: LoadedModule, fmt: Any) -> int:
    return 1 if _add_rr_param(module, ctx, fmt.render(ctx)) else -1


def w_check_route_param(ctx: MsgContext, module: LoadedModule, regex: re.Pattern[str]) -> int:
    st = _peek_state(module, ctx)
    if st is None or not st.routed or not st.routed_params:
        return -1
    return 1 if regex.search(";" + st.routed_params) else -1


def w_is_direction(ctx: MsgContext, module: LoadedModule, direction: int) -> int:
    st = _msg_state(module, ctx)
    if not st.direction:
        st.direction = _find_direction(ctx)
    return 1 if st.direction == direction else -1


# ====================================================================== $rr_params


class RRParamsPV(PV):
    """``$rr_params``: the parameters of our Route consumed by loose_route."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Value:
        return get_route_params(ctx)


def _make_rr_params(spec: PVSpec, module: LoadedModule) -> PV:
    if spec.inner is not None:
        raise PVNameError(f"{spec.raw}: $rr_params takes no name")
    return RRParamsPV(spec.raw)


def _mod_init(module: LoadedModule) -> None:
    _state(module)  # callbacks other modules register land here


exports = ModuleExports(
    name="rr",
    params=[ParamExport(name, int, default) for name, default in PARAM_DEFAULTS.items()],
    cmds=[
        CmdExport("loose_route", w_loose_route, 0, REQUEST_ROUTE, _fixup_module),
        CmdExport("record_route", w_record_route, 0, _RBF, _fixup_module),
        CmdExport("record_route", w_record_route, 1, _RBF, _fixup_formats),
        CmdExport("record_route_preset", w_record_route_preset, 1, _RBF, _fixup_formats),
        CmdExport("record_route_preset", w_record_route_preset, 2, _RBF, _fixup_formats),
        CmdExport("add_rr_param", w_add_rr_param, 1, _RBF, _fixup_formats),
        CmdExport("check_route_param", w_check_route_param, 1, REQUEST_ROUTE, _fixup_regex),
        CmdExport("is_direction", w_is_direction, 1, REQUEST_ROUTE, _fixup_direction),
    ],
    pvars=[PVarExport("rr_params", _make_rr_params)],
    mod_init=_mod_init,
)
