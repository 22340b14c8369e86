"""The core actions of the 1.6 routing script (spec section 6).

``CORE_ACTIONS`` maps the canonical name of every core function the parser
knows (``parser.CORE_FUNCTIONS``) to a compiler ``(call, env) -> action``.
The script compiler calls it once per call site at start-up; the returned
``action(ctx) -> int`` runs per message and returns the 1.6 code (> 0
true, < 0 false; 0 would stop the script and no core action returns it).

What 1.6 checks at start-up is checked here and raised as `CompileError`:
flag indexes (0..31), the ``forward``/``send`` destination syntax, the
``force_send_socket`` socket (must be one we listen on), blacklist names,
formats and PV names, writable targets, AVP targets. The messages do not
name the function: the compiler adds ``name(): `` and the location. Bad
run-time input is never an exception: it is logged and gives a negative
code.

Return codes are 1.6's, quirks included (spec 3.6): ``xlog``, ``xdbg``,
``use_blacklist``, ``unuse_blacklist`` and ``construct_uri`` always give
-5 (1.6's E_BUG left in place by ``do_action``), ``next_branches`` gives
1 (more groups left) or 2 (that was the last one).
"""

from __future__ import annotations

import ipaddress
import json
import socket as pysocket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.context import MAX_FLAG, Branch
from ..core.exports import FAILURE_ROUTE, REQUEST_ROUTE
from ..core.forward import Dest, forward_request, parse_phostport, send_to
from ..core.runtime import L_ALERT, L_CRIT, L_DBG, L_ERR, L_INFO, L_NOTICE, L_WARN
from ..sip.errors import ParseError
from ..sip.uri import parse_uri
from . import ast
from .env import CompileEnv, CompileError
from .format import Format
from .pv import PV, PVError, int_of

if TYPE_CHECKING:
    from ..core.context import MsgContext

__all__ = [
    "CORE_ACTIONS",
    "E_BUG",
    "E_UNSPEC",
    "SERIAL_AVP",
    "Action",
    "ActionCompiler",
    "rewrite_uri",
    "str2q",
]

Action = Callable[["MsgContext"], int]
ActionCompiler = Callable[[ast.Call, CompileEnv], Action]

E_UNSPEC = -1  # 1.6's generic failure
E_BUG = -5  # 1.6's E_BUG: also the code several actions leave on success

#: AVP id of the serial-forking store (1.6's SERIAL_AVL_ID, alias "serial_branch")
SERIAL_AVP = 0xFF3434

CORE_ACTIONS: dict[str, ActionCompiler] = {}


def _action(*names: str) -> Callable[[ActionCompiler], ActionCompiler]:
    def register(fn: ActionCompiler) -> ActionCompiler:
        for name in names:
            CORE_ACTIONS[name] = fn
        return fn

    return register


# ---------------------------------------------------------------- argument helpers


def _text(node: Any) -> str:
    """The text of a string, host or IP argument."""
    if isinstance(node, ast.StrLit):
        return node.value
    if isinstance(node, ast.HostLit):
        return node.name
    if isinstance(node, ast.IPLit):
        return node.addr
    if isinstance(node, ast.NumLit):
        return str(node.value)
    raise CompileError(f"unexpected argument {type(node).__name__}")


def _num(node: Any) -> int:
    if isinstance(node, ast.NumLit):
        return node.value
    raise CompileError(f"expected a number, got {type(node).__name__}")


def _format(call: ast.Call, env: CompileEnv, node: Any) -> Format:
    try:
        return env.compile_format(_text(node))
    except CompileError as e:
        raise CompileError(e.message, e.offset, node) from None


def _pv(call: ast.Call, env: CompileEnv, node: Any) -> PV:
    return env.compile_pv(node if isinstance(node, (ast.PVar, str)) else _text(node))


def _avp_target(call: ast.Call, env: CompileEnv, node: Any, what: str) -> PV:
    """An ``$avp(...)`` argument (1.6 refuses any other PV there)."""
    if not isinstance(node, ast.PVar) or node.name != "avp":
        raise CompileError(f"the {what} argument must be an AVP ($avp(...))")
    return _pv(call, env, node)


def _flag(call: ast.Call, node: Any) -> int:
    n = _num(node)
    if not 0 <= n <= MAX_FLAG:
        raise CompileError(f"flag {n} out of range 0..{MAX_FLAG}")
    return n


def _dest(call: ast.Call, node: Any) -> Dest:
    try:
        return parse_phostport(_text(node))
    except ValueError as e:
        raise CompileError(f"bad destination: {e}") from None


# ---------------------------------------------------------------- forward, send, log


@_action("forward")
def _c_forward(call: ast.Call, env: CompileEnv) -> Action:
    disabled = env.config.get("disable_stateless_fwd")
    if isinstance(disabled, int) and disabled > 0:
        raise CompileError("stateless forwarding is disabled "
                           "(disable_stateless_fwd = yes) but forward() is used")
    if not call.args:
        return forward_request
    dest = _dest(call, call.args[0])

    def forward(ctx: MsgContext) -> int:
        return forward_request(ctx, dest)

    return forward


@_action("send")
def _c_send(call: ast.Call, env: CompileEnv) -> Action:
    dest = _dest(call, call.args[0])

    def send(ctx: MsgContext) -> int:
        return send_to(ctx, dest)

    return send


@_action("log")
def _c_log(call: ast.Call, env: CompileEnv) -> Action:
    if len(call.args) == 2:
        level, text = _num(call.args[0]), _text(call.args[1])
    else:
        level, text = L_DBG, _text(call.args[0])

    def log(ctx: MsgContext) -> int:
        ctx.rt.log(level, text)
        return 1

    return log


@_action("error")
def _c_error(call: ast.Call, env: CompileEnv) -> Action:
    text = f'error("{_text(call.args[0])}", "{_text(call.args[1])}") not implemented yet'

    def error(ctx: MsgContext) -> int:
        ctx.rt.log(L_ERR, text)
        return 1

    return error


@_action("setdebug")
def _c_setdebug(call: ast.Call, env: CompileEnv) -> Action:
    if not call.args:
        def reset_debug(ctx: MsgContext) -> int:
            ctx.rt.debug_local = None  # back to the global level
            return 1

        return reset_debug
    level = max(L_ALERT, min(L_DBG, _num(call.args[0])))

    def setdebug(ctx: MsgContext) -> int:
        ctx.rt.debug_local = level  # this process only, as in 1.6
        return 1

    return setdebug


# 3rd character of "L_ALERT" ... "L_DBG" -> level (all 1.6 looks at)
_XLOG_LEVELS = {"A": L_ALERT, "C": L_CRIT, "E": L_ERR, "W": L_WARN,
                "N": L_NOTICE, "I": L_INFO, "D": L_DBG}


def _xlog_action(fmt: Format, level: int | None, level_pv: PV | None) -> Action:
    def xlog(ctx: MsgContext) -> int:
        rt = ctx.rt
        lev = level
        if level_pv is not None:
            try:
                lev = int_of(level_pv.get(ctx))
            except PVError as e:
                rt.log(L_ERR, f"xlog: invalid log level value: {e}")
                return E_BUG
            if lev is None:
                rt.log(L_ERR, f"xlog: invalid log level value in {level_pv.raw}")
                return E_BUG
        assert lev is not None
        if not rt.log_enabled(lev):
            return E_BUG
        text = fmt.render(ctx)
        size = int(rt.config.get("xlog_buf_size", 4096))
        if len(text) >= size:
            rt.log(L_ERR, f"xlog: buffer overflow -- increase the buffer size from [{size}]")
            return E_BUG
        rt.log(lev, text)
        return E_BUG

    return xlog


@_action("xlog")
def _c_xlog(call: ast.Call, env: CompileEnv) -> Action:
    if len(call.args) == 1:
        if not _text(call.args[0]):
            raise CompileError("empty format")
        return _xlog_action(_format(call, env, call.args[0]), L_ERR, None)
    spec = _text(call.args[0])
    if not spec:
        raise CompileError("empty log level")
    fmt = _format(call, env, call.args[1])
    if spec.startswith("$"):
        return _xlog_action(fmt, None, _pv(call, env, spec))
    level = _XLOG_LEVELS.get(spec[2:3])
    if level is None:
        raise CompileError(f'unknown log level "{spec}" '
                           "(L_ALERT, L_CRIT, L_ERR, L_WARN, L_NOTICE, L_INFO, L_DBG or a PV)")
    return _xlog_action(fmt, level, None)


@_action("xdbg")
def _c_xdbg(call: ast.Call, env: CompileEnv) -> Action:
    if not _text(call.args[0]):
        raise CompileError("empty format")
    return _xlog_action(_format(call, env, call.args[0]), L_DBG, None)


# ---------------------------------------------------------------- flags


def _c_ctxflag(attr: str, op: str) -> ActionCompiler:
    """Message flags (`ctx.flags`) and script flags (`ctx.sflags`) alike."""

    def compile_flag(call: ast.Call, env: CompileEnv) -> Action:
        mask = 1 << _flag(call, call.args[0])
        if op == "set":
            def setflag(ctx: MsgContext) -> int:
                setattr(ctx, attr, getattr(ctx, attr) | mask)
                return 1

            return setflag
        if op == "reset":
            def resetflag(ctx: MsgContext) -> int:
                setattr(ctx, attr, getattr(ctx, attr) & ~mask)
                return 1

            return resetflag

        def isflagset(ctx: MsgContext) -> int:
            return 1 if getattr(ctx, attr) & mask else -1

        return isflagset

    return compile_flag


def _c_branchflag(op: str) -> ActionCompiler:
    """Branch flags: index 0 is the R-URI branch, b >= 1 the b-th appended
    branch; a branch that does not exist gives -1."""

    def compile_flag(call: ast.Call, env: CompileEnv) -> Action:
        if len(call.args) == 2:
            idx, mask = _num(call.args[0]), 1 << _flag(call, call.args[1])
        else:
            idx, mask = 0, 1 << _flag(call, call.args[0])

        def bflag(ctx: MsgContext) -> int:
            if idx == 0:
                flags = ctx.bflags
            elif idx - 1 < len(ctx.branches):
                flags = ctx.branches[idx - 1].flags
            else:
                return -1
            if op == "is":
                return 1 if flags & mask else -1
            flags = flags | mask if op == "set" else flags & ~mask
            if idx == 0:
                ctx.bflags = flags
            else:
                ctx.branches[idx - 1].flags = flags
            return 1

        return bflag

    return compile_flag


for _op, _names in (("set", ("setflag", "setsflag", "setbflag")),
                    ("reset", ("resetflag", "resetsflag", "resetbflag")),
                    ("is", ("isflagset", "issflagset", "isbflagset"))):
    CORE_ACTIONS[_names[0]] = _c_ctxflag("flags", _op)
    CORE_ACTIONS[_names[1]] = _c_ctxflag("sflags", _op)
    CORE_ACTIONS[_names[2]] = _c_branchflag(_op)


# ---------------------------------------------------------------- Request-URI


def rewrite_uri(text: str, what: str, value: str | int) -> str:
    """The URI `text` with one part replaced, the way 1.6's set* actions do it.

    `what` is ``host``, ``hostport``, ``user``, ``userpass``, ``port``,
    ``prefix``, ``strip`` or ``strip_tail`` (`value` an int for the last
    two). Scheme, the other parts, parameters and headers are kept as
    written; ``host``/``hostport`` also drop a ``maddr`` parameter (1.6.4).
    Raises ValueError for a URI that does not parse.
    """
    try:
        uri = parse_uri(text)
    except ParseError as e:
        raise ValueError(f"bad uri <{text}>: {e}") from None
    if uri.opaque is not None:
        raise ValueError(f"bad uri <{text}>: not a sip/sips/tel URI")
    scheme = text[: text.index(":") + 1]
    user = uri.user or ""
    password = uri.password
    host = uri.host
    port: str | None = None if uri.port is None else str(uri.port)
    params = list(uri.params)
    if what == "prefix":
        user = f"{value}{user}"
    elif what == "user":
        user = str(value)
    elif what == "userpass":
        # fixed (spec 10): the argument is user[:password]; the old password goes
        user, sep, pw = str(value).partition(":")
        password = pw if sep else None
    elif what == "strip":
        n = int(value)
        user = "" if n >= len(user) else user[n:]
    elif what == "strip_tail":
        n = int(value)
        user = "" if n >= len(user) else user[: len(user) - n]
    elif what == "host":
        host = str(value)
    elif what == "hostport":
        host, port = str(value), None
    elif what == "port":
        port = str(value) or None
    else:
        raise ValueError(f"unknown URI part {what!r}")
    if what in ("host", "hostport"):
        params = [p for p in params if p[0].lower() != "maddr"]
    if not user:
        password = None  # no password without a user
    out = [scheme]
    if user:
        out.append(user)
        if password is not None:
            out += (":", password)
        out.append("@")
    out.append(host)
    if port:
        out += (":", port)
    for name, val in params:
        out += (";", name) if val is None else (";", name, "=", val)
    if uri.headers is not None:
        out += ("?", uri.headers)
    return "".join(out)


_REWRITES = {
    "rewritehost": "host", "rewritehostport": "hostport", "rewriteuser": "user",
    "rewriteuserpass": "userpass", "rewriteport": "port", "prefix": "prefix",
    "strip": "strip", "strip_tail": "strip_tail",
}


def _c_rewrite(call: ast.Call, env: CompileEnv) -> Action:
    what = _REWRITES[call.name]
    node = call.args[0]
    value: str | int = _num(node) if what in ("strip", "strip_tail") else _text(node)
    name = call.name

    def rewrite(ctx: MsgContext) -> int:
        text = ctx.ruri
        if what in ("strip", "strip_tail"):
            try:
                user = parse_uri(text).user or ""
            except ParseError:
                user = None
            if user is not None and int(value) > len(user):
                ctx.rt.log(L_WARN, f"{name}: too long {name} asked; deleting username: "
                                   f"{value} of <{user}>")
        try:
            ctx.new_uri = rewrite_uri(text, what, value)
        except ValueError as e:
            ctx.rt.log(L_ERR, f"{name}: {e}, dropping packet")
            return E_UNSPEC
        return 1

    return rewrite


for _name in _REWRITES:
    CORE_ACTIONS[_name] = _c_rewrite


@_action("rewriteuri")
def _c_rewriteuri(call: ast.Call, env: CompileEnv) -> Action:
    uri = _text(call.args[0])

    def rewriteuri(ctx: MsgContext) -> int:
        ctx.new_uri = uri  # 1.6 does not check the URI either
        return 1

    return rewriteuri


@_action("revert_uri")
def _c_revert_uri(call: ast.Call, env: CompileEnv) -> Action:
    def revert_uri(ctx: MsgContext) -> int:
        ctx.new_uri = None
        return 1

    return revert_uri


@_action("setdsturi")
def _c_setdsturi(call: ast.Call, env: CompileEnv) -> Action:
    uri = _text(call.args[0]) or None  # an empty $du is no $du

    def setdsturi(ctx: MsgContext) -> int:
        ctx.dst_uri = uri
        return 1

    return setdsturi


@_action("resetdsturi")
def _c_resetdsturi(call: ast.Call, env: CompileEnv) -> Action:
    def resetdsturi(ctx: MsgContext) -> int:
        ctx.dst_uri = None
        return 1

    return resetdsturi


@_action("isdsturiset")
def _c_isdsturiset(call: ast.Call, env: CompileEnv) -> Action:
    def isdsturiset(ctx: MsgContext) -> int:
        return 1 if ctx.dst_uri else -1

    return isdsturiset


# ---------------------------------------------------------------- branches


def str2q(text: str) -> int:
    """A q value as 1.6's str2q reads it: 0..1000; ValueError if malformed.

    Blanks may lead; ``1``, ``1.0…``, ``0…``, ``0….ddd``, ``.ddd``; digits
    past the third decimal are ignored.
    """
    s = text.lstrip(" \t")
    if not s:
        raise ValueError("empty q value")
    whole, dot, frac = s.partition(".")
    if whole and not (whole.isdigit() and whole.isascii()):
        raise ValueError(f"bad q value {text!r}")
    if dot and not frac:
        raise ValueError(f"q value {text!r} misses its decimals")
    if frac and not (frac.isdigit() and frac.isascii()):
        raise ValueError(f"bad q value {text!r}")
    digits = whole.lstrip("0")
    if digits not in ("", "1"):
        raise ValueError(f"q value {text!r} is above 1")
    if digits == "1":
        if frac.strip("0"):
            raise ValueError(f"q value {text!r} is above 1")
        return 1000
    return int((frac + "000")[:3])


def _append_branch(ctx: MsgContext, uri: str | None, dst_uri: str | None,
                   path: str | None, q: int | None, flags: int, sock: Any) -> int:
    """1.6's append_branch(): at most MAX_BRANCHES - 1 appended branches."""
    if ctx.branches_full("append_branch"):
        return E_UNSPEC
    uri = uri or ctx.ruri
    if not uri:
        ctx.rt.log(L_ERR, "append_branch: no URI to append")
        return E_UNSPEC
    ctx.branches.append(Branch(uri, dst_uri or None, path or None, q, flags, sock))
    return 1


@_action("append_branch")
def _c_append_branch(call: ast.Call, env: CompileEnv) -> Action:
    if not call.args:
        def append_current(ctx: MsgContext) -> int:
            ret = _append_branch(ctx, None, ctx.dst_uri, ctx.path, ctx.q, ctx.bflags,
                                 ctx.force_socket)
            # the main branch gives its per-branch settings to the new branch
            ctx.force_socket = None
            ctx.bflags = 0
            ctx.q = None
            ctx.dst_uri = None
            ctx.path = None
            return ret

        return append_current
    uri = _text(call.args[0]) or None
    q: int | None = None
    if len(call.args) == 2:
        try:
            q = str2q(_text(call.args[1]))
        except ValueError as e:
            raise CompileError(str(e)) from None

    def append_uri(ctx: MsgContext) -> int:
        return _append_branch(ctx, uri, ctx.dst_uri, ctx.path, q, ctx.bflags, ctx.force_socket)

    return append_uri


def _socket_name(sock: Any) -> str:
    return str(getattr(sock, "name", "")) if sock is not None else ""


def _socket_by_name(ctx: MsgContext, name: str) -> Any:
    if not name:
        return None
    for s in ctx.rt.sockets:
        if getattr(s, "name", None) == name:
            return s
    return None


def _encode_serial(q_flag: bool, uri: str, dst: str | None, path: str | None,
                   q: int | None, flags: int, sock: Any) -> str:
    """One serial-forking entry as an AVP string (1.6 packs a binary blob)."""
    return json.dumps([int(q_flag), -1 if q is None else q, flags, _socket_name(sock),
                       uri, dst or "", path or ""], separators=(",", ":"))


def _decode_serial(value: Any) -> tuple[bool, int | None, int, str, str, str, str] | None:
    if not isinstance(value, str):
        return None
    try:
        q_flag, q, flags, sock, uri, dst, path = json.loads(value)
        return (bool(q_flag), None if q < 0 else int(q), int(flags), str(sock), str(uri),
                str(dst), str(path))
    except (ValueError, TypeError):
        return None


@_action("serialize_branches")
def _c_serialize_branches(call: ast.Call, env: CompileEnv) -> Action:
    clean = _num(call.args[0]) != 0

    def serialize_branches(ctx: MsgContext) -> int:
        if not ctx.branches:
            return 1  # nothing to do
        ruri_q = ctx.q
        if all(b.q == ruri_q for b in ctx.branches):
            return 1  # all the same q: nothing to serialize

        def qkey(q: int | None) -> int:
            return -1 if q is None else q

        # ascending q; a later entry goes before earlier ones of equal q
        entries: list[tuple[int, str, str | None, str | None, int | None, int, Any]] = [
            (qkey(ruri_q), ctx.ruri, ctx.dst_uri, ctx.path, ruri_q, ctx.bflags, ctx.force_socket)]
        for b in ctx.branches:
            pos = 0
            while pos < len(entries) and entries[pos][0] < qkey(b.q):
                pos += 1
            entries.insert(pos, (qkey(b.q), b.uri, b.dst_uri, b.path, b.q, b.flags, b.socket))
        if clean:
            ctx.avps.delete(SERIAL_AVP, None)
        prev_q: int | None = None
        for i, (key, uri, dst, path, q, flags, sock) in enumerate(entries):
            # the first of a higher-q class carries the flag; read back
            # newest-first it marks the end of a priority group
            q_flag = i > 0 and prev_q is not None and prev_q < key
            ctx.avps.add(SERIAL_AVP, _encode_serial(q_flag, uri, dst, path, q, flags, sock))
            prev_q = key
        ctx.branches.clear()
        ctx.q = None
        ctx.bflags = 0
        return 1

    return serialize_branches


def _next_branches(ctx: MsgContext) -> int:
    rt = ctx.rt
    if ctx.route_type not in (REQUEST_ROUTE, FAILURE_ROUTE):
        rt.log(L_ERR, f"next_branches: called from unsupported route type {ctx.route_type}")
        return -1
    values = ctx.avps.get_all(SERIAL_AVP)
    if not values:
        rt.log(L_DBG, "next_branches: no serial branches left")
        return -1
    first = _decode_serial(values[0])
    if first is None:
        rt.log(L_ERR, "next_branches: invalid serial_branch AVP value")
        return -1
    q_flag, q, flags, sock, uri, dst, path = first
    ctx.new_uri = uri
    ctx.dst_uri = dst or None
    ctx.path = path or None
    ctx.force_socket = _socket_by_name(ctx, sock)
    ctx.q = q
    ctx.bflags = flags
    ctx.avps.delete(SERIAL_AVP, 0)
    if not q_flag:
        while SERIAL_AVP in ctx.avps:
            entry = _decode_serial(ctx.avps.get(SERIAL_AVP, 0))
            if entry is None:
                rt.log(L_ERR, "next_branches: invalid serial_branch AVP value")
                ctx.avps.delete(SERIAL_AVP, 0)
                continue
            q_flag, q, flags, sock, uri, dst, path = entry
            if _append_branch(ctx, uri, dst, path, q, flags, _socket_by_name(ctx, sock)) < 0:
                ctx.avps.delete(SERIAL_AVP, 0)
                return -1
            ctx.avps.delete(SERIAL_AVP, 0)
            if q_flag:
                break
        else:
            return 2
    return 1 if SERIAL_AVP in ctx.avps else 2


@_action("next_branches")
def _c_next_branches(call: ast.Call, env: CompileEnv) -> Action:
    def next_branches(ctx: MsgContext) -> int:
        ret = _next_branches(ctx)
        if ret < 0:
            ctx.rt.log(L_ERR, "next_branches failed")
            return E_UNSPEC
        return ret

    return next_branches


@_action("construct_uri")
def _c_construct_uri(call: ast.Call, env: CompileEnv) -> Action:
    parts = [_format(call, env, node) for node in call.args[:5]]
    target = _avp_target(call, env, call.args[5], "last")

    def construct_uri(ctx: MsgContext) -> int:
        vals: list[str] = []
        for fmt in parts:
            if fmt.static is not None:
                vals.append(fmt.static)
                continue
            text = fmt.render(ctx)
            if not text:
                ctx.rt.log(L_WARN, "construct_uri: cannot get string for value")
                return E_UNSPEC
            vals.append(text)
        proto, user, domain, port, params = vals
        if not proto or not domain:
            ctx.rt.log(L_ERR, f"construct_uri: no {'protocol' if not proto else 'domain'} specified")
            return E_BUG
        uri = f"{proto}:{user + '@' if user else ''}{domain}"
        if port:
            uri += f":{port}"
        if params:
            uri += f";{params}"
        try:
            target.set(ctx, uri, "=")
        except PVError as e:
            ctx.rt.log(L_ERR, f"construct_uri: cannot add AVP: {e}")
            return E_UNSPEC
        return E_BUG  # 1.6 leaves E_BUG as the code of a successful call

    return construct_uri


# ---------------------------------------------------------------- variables


@_action("pv_printf")
def _c_pv_printf(call: ast.Call, env: CompileEnv) -> Action:
    target = _pv(call, env, call.args[0])
    if not target.writable:
        raise CompileError(f"{target.raw} is read-only")
    fmt = _format(call, env, call.args[1])

    def pv_printf(ctx: MsgContext) -> int:
        try:
            target.set(ctx, fmt.render(ctx), "=")
        except PVError as e:
            ctx.rt.log(L_ERR, f"pv_printf: setting {target.raw} failed: {e}")
            return E_UNSPEC
        return 1

    return pv_printf


# ---------------------------------------------------------------- transport, advertising


@_action("force_rport")
def _c_force_rport(call: ast.Call, env: CompileEnv) -> Action:
    def force_rport(ctx: MsgContext) -> int:
        ctx.force_rport = True
        return 1

    return force_rport


@_action("force_local_rport")
def _c_force_local_rport(call: ast.Call, env: CompileEnv) -> Action:
    def force_local_rport(ctx: MsgContext) -> int:
        ctx.local_rport = True
        return 1

    return force_local_rport


@_action("force_tcp_alias")
def _c_force_tcp_alias(call: ast.Call, env: CompileEnv) -> Action:
    port = _num(call.args[0]) if call.args else None

    def force_tcp_alias(ctx: MsgContext) -> int:
        if ctx.proto in ("tcp", "tls"):
            # no argument: the top Via's port (0 when it has none)
            ctx.tcp_alias = port if port is not None else (ctx.msg.via1.port or 0)
        return 1

    return force_tcp_alias


@_action("set_advertised_address")
def _c_set_advertised_address(call: ast.Call, env: CompileEnv) -> Action:
    address = _text(call.args[0])

    def set_advertised_address(ctx: MsgContext) -> int:
        ctx.adv_address = address
        return 1

    return set_advertised_address


@_action("set_advertised_port")
def _c_set_advertised_port(call: ast.Call, env: CompileEnv) -> Action:
    port = _num(call.args[0])

    def set_advertised_port(ctx: MsgContext) -> int:
        ctx.adv_port = port
        return 1

    return set_advertised_port


_PROTO_ORDER = ("udp", "tcp", "tls", "sctp")


def _ip_key(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return text.strip("[]").lower()


def _find_socket(sockets: list[Any], addrs: list[str], port: int, proto: str | None) -> Any:
    """1.6's find_si: address (or advertised address) and port (0 = any) and
    protocol (None = any, UDP first)."""
    keys = {_ip_key(a) for a in addrs}
    for want in (proto,) if proto else _PROTO_ORDER:
        for s in sockets:
            if s.proto != want or (port and s.port != port):
                continue
            if _ip_key(s.ip) in keys or (s.adv_host and _ip_key(s.adv_host) in keys):
                return s
    return None


def _resolve_names(host: str) -> list[str]:
    """The host itself plus, for a name, its addresses (start-up only)."""
    addrs = [host]
    try:
        ipaddress.ip_address(host.strip("[]"))
        return addrs
    except ValueError:
        pass
    try:
        infos = pysocket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return addrs
    addrs.extend(str(info[4][0]) for info in infos)
    return addrs


@_action("force_send_socket")
def _c_force_send_socket(call: ast.Call, env: CompileEnv) -> Action:
    node = call.args[0]
    if not isinstance(node, ast.Socket):
        raise CompileError("expected [proto:]host[:port]")
    host = _text(node.host)
    proto = None if node.proto in (None, "any") else node.proto
    port = node.port or 0
    addrs = [host]
    chosen = None
    if env.sockets:
        chosen = _find_socket(env.sockets, addrs, port, proto)
        if chosen is None:
            addrs = _resolve_names(host)
            chosen = _find_socket(env.sockets, addrs, port, proto)
        if chosen is None:
            where = f"{host}:{port}" if port else host
            raise CompileError(f"bad socket {where} "
                               "(not one of the listen sockets)")
        key: tuple[Any, ...] = (chosen.proto, chosen.ip, chosen.port)
    else:
        key = ()

    def force_send_socket(ctx: MsgContext) -> int:
        nonlocal addrs
        sockets = ctx.rt.sockets
        found = None
        if key:
            for s in sockets:
                if (s.proto, s.ip, s.port) == key:
                    found = s
                    break
            found = found or chosen
        else:
            found = _find_socket(sockets, addrs, port, proto)
            if found is None and len(addrs) == 1:
                addrs = _resolve_names(host)
                found = _find_socket(sockets, addrs, port, proto)
        if found is None:
            ctx.rt.log(L_ERR, f"force_send_socket: not listening on {host}:{port}")
            return E_UNSPEC
        ctx.force_socket = found
        return 1

    return force_send_socket


def _c_blacklist(enable: bool) -> ActionCompiler:
    def compile_bl(call: ast.Call, env: CompileEnv) -> Action:
        name = _text(call.args[0])
        every = name.lower() == "all"
        if not every and name not in env.blacklists:
            known = ", ".join(sorted(env.blacklists)) or "none defined"
            raise CompileError(f'blacklist "{name}" is not configured '
                               f"(dst_blacklist: {known})")
        names = set(env.blacklists)

        def blacklist(ctx: MsgContext) -> int:
            if every:
                every_name = names | set(ctx.rt.blacklists)
                if enable:
                    ctx.blacklists |= every_name
                else:
                    ctx.blacklists.clear()
            elif enable:
                ctx.blacklists.add(name)
            else:
                ctx.blacklists.discard(name)
            return E_BUG  # 1.6 leaves E_BUG as the code

        return blacklist

    return compile_bl


CORE_ACTIONS["use_blacklist"] = _c_blacklist(True)
CORE_ACTIONS["unuse_blacklist"] = _c_blacklist(False)


# ---------------------------------------------------------------- cache


def _cache_name(call: ast.Call, env: CompileEnv) -> tuple[str, Format]:
    system = _text(call.args[0])
    if not _text(call.args[1]):
        raise CompileError("the name (2nd argument) is empty")
    return system, _format(call, env, call.args[1])


def _backend(ctx: MsgContext, fname: str, system: str) -> Any:
    backend = ctx.rt.caches.get(system)
    if backend is None:
        ctx.rt.log(L_ERR, f"{fname}: no cache system \"{system}\" registered")
    return backend


@_action("cache_store")
def _c_cache_store(call: ast.Call, env: CompileEnv) -> Action:
    system, name_fmt = _cache_name(call, env)
    if not _text(call.args[2]):
        raise CompileError("the value (3rd argument) is empty")
    value_fmt = _format(call, env, call.args[2])
    expires_num = 0
    expires_pv: PV | None = None
    if len(call.args) == 4:
        if isinstance(call.args[3], ast.PVar):
            expires_pv = _pv(call, env, call.args[3])
        else:
            expires_num = _num(call.args[3])

    def cache_store(ctx: MsgContext) -> int:
        rt = ctx.rt
        name = name_fmt.render(ctx)
        value = value_fmt.render(ctx)
        if not name or not value:
            rt.log(L_WARN, "cache_store: cannot get string for name or value")
            return E_BUG
        expires = expires_num
        if expires_pv is not None:
            try:
                got = expires_pv.get(ctx)
            except PVError as e:
                rt.log(L_DBG, f"cache_store: failed to get the expires value: {e}")
                return E_BUG
            n = int_of(got)
            if n is None:
                rt.log(L_ERR, f"cache_store: expires value is not an integer [{got}]")
                n = 0
            expires = n
        backend = _backend(ctx, "cache_store", system)
        if backend is None:
            return E_UNSPEC
        try:
            ok = backend.store(name, value, expires)
        except Exception as e:
            rt.log(L_ERR, f"cache_store: {system}: {e}")
            return E_UNSPEC
        return 1 if ok else E_UNSPEC

    return cache_store


@_action("cache_fetch")
def _c_cache_fetch(call: ast.Call, env: CompileEnv) -> Action:
    system, name_fmt = _cache_name(call, env)
    target = _avp_target(call, env, call.args[2], "third")

    def cache_fetch(ctx: MsgContext) -> int:
        rt = ctx.rt
        name = name_fmt.render(ctx)
        if not name:
            rt.log(L_WARN, "cache_fetch: cannot get string for name")
            return E_BUG
        backend = _backend(ctx, "cache_fetch", system)
        if backend is None:
            return E_UNSPEC
        try:
            value = backend.fetch(name)
        except Exception as e:
            rt.log(L_ERR, f"cache_fetch: {system}: {e}")
            return E_UNSPEC
        if value is None:
            return -2  # localcache's "not found"
        try:
            target.set(ctx, str(value), "=")
        except PVError as e:
            rt.log(L_ERR, f"cache_fetch: cannot add AVP: {e}")
            return E_UNSPEC
        return 1

    return cache_fetch


@_action("cache_remove")
def _c_cache_remove(call: ast.Call, env: CompileEnv) -> Action:
    system, name_fmt = _cache_name(call, env)

    def cache_remove(ctx: MsgContext) -> int:
        rt = ctx.rt
        name = name_fmt.render(ctx)
        if not name:
            rt.log(L_WARN, "cache_remove: cannot get string for name")
            return E_BUG
        backend = _backend(ctx, "cache_remove", system)
        if backend is None:
            return E_UNSPEC
        try:
            backend.remove(name)
        except Exception as e:
            rt.log(L_ERR, f"cache_remove: {system}: {e}")
        return 1

    return cache_remove
