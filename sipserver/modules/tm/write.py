"""t_write_req / t_write_unix: hand a request to an external application
(voicemail style) as the 1.6 line record, through a FIFO or a UNIX
datagram socket, and add a blind branch so that a 408 goes upstream if the
application does not answer in fr_timer.

The record is 20 lines, each ending in `\\n`: version `0.3`,
`sip_request.<action>`, method, R-URI user, R-URI host, receiving address,
receiving port (`.` for 5060), R-URI, the URI for further requests (first
Contact, else From; the first Record-Route when it is not loose), From,
To, Call-ID, From tag, To tag, CSeq number, `hash:label`, the route set
(`<uri>,<uri>` or `.`), the next hop (`.` unless loose routing), a block
`P-MsgFlags: <hex, digits reversed>` + one `name: value` line per
`tw_append` element whose value is not null + a `.`, and the body (INVITEs,
or when the append asks for `$rb`; `.` otherwise).

`hash:label` is derived from the transaction id (16-bit hash, 32-bit label).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from ...core.context import MsgContext
from ...core.exports import FixupError, LoadedModule
from ...core.runtime import L_ERR
from ...sip.errors import ParseError
from ...sip.headers import parse_name_addr_list
from .record import Txn, UacBranch

__all__ = ["fixup_t_write", "parse_tw_append", "record_for", "trans_ident",
           "w_t_write_req", "w_t_write_unix"]

VERSION = "0.3"
BODY_PV = "$rb"


def parse_tw_append(text: str) -> tuple[str, bool, list[tuple[str, str]]]:
    """`name:element[;element...]`, element = `title=PV` or `$rb` (the body):
    (name, add_body, [(title, pv text)]). ValueError when malformed."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise ValueError(f"bad tw_append {text!r} (name:element;...)")
    add_body = False
    elems: list[tuple[str, str]] = []
    for item in _split_elems(rest):
        item = item.strip()
        if not item:
            raise ValueError(f"bad tw_append {text!r}: empty element")
        title, eq, pv = item.partition("=")
        if not eq:
            if item not in (BODY_PV, "$(rb)"):
                raise ValueError(f"bad tw_append {text!r}: a short element must be $rb")
            add_body = True
            continue
        title, pv = title.strip(), pv.strip()
        if not title or not pv.startswith("$"):
            raise ValueError(f"bad tw_append element {item!r} (title=$pv)")
        elems.append((title, pv))
    return name, add_body, elems


def _split_elems(text: str) -> list[str]:
    """Split at `;` outside parentheses (PV names may hold a `;`)."""
    out, depth, cur = [], 0, []
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(depth - 1, 0)
        if c == ";" and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur))
    return out


def fixup_t_write(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """`action[/append_name]` -> (action, add_body, [(title, PV)]); the target stays."""
    info = args[0]
    action, slash, app_name = info.partition("/")
    if not action:
        raise FixupError("empty action name")
    add_body, elems = False, []
    if slash:
        if not app_name:
            raise FixupError("empty append name")
        for raw in module.params.get("tw_append_list", ()):
            name, body, items = parse_tw_append(raw)
            if name.lower() == app_name.lower():
                add_body = body
                elems = [(title, env.compile_pv(pv)) for title, pv in items]
                break
        else:
            raise FixupError(f"unknown append name <{app_name}>")
    if not args[1]:
        raise FixupError("empty FIFO / socket name")
    return [(action, add_body, elems), args[1]]


def trans_ident(tid: str) -> str:
    """`hash:label` for a transaction id (an MD5 in hex)."""
    return f"{int(tid[:4], 16)}:{int(tid[4:12], 16)}"


def _reverse_hex(n: int) -> str:
    """1.6 int2reverse_hex: hex digits, least significant first."""
    if n == 0:
        return "0"
    out = []
    n &= 0xFFFFFFFF
    while n:
        out.append("0123456789abcdef"[n & 0xF])
        n >>= 4
    return "".join(out)


def _route_and_target(msg: Any) -> tuple[str, str, str]:
    """(route set, URI for further requests, next hop) as 1.6 computes them."""
    target = ""
    contacts = msg.contacts if msg.has_header("contact") else []
    if contacts:
        target = contacts[0].uri_text
    if not target:
        target = msg.from_.uri_text
    rr_headers = msg.headers_named("record-route")
    if not rr_headers:
        return ".", target, "."
    first_list = parse_name_addr_list(rr_headers[0].value, "Record-Route")
    first = first_list[0]
    route: list[str] = []
    loose = ";" in first.uri_text and first.uri.lr
    if loose:
        route.append(first.uri_text)
    for h in rr_headers[1:]:  # 1.6 skips the rest of the first header's list
        if h.value:
            route.extend(na.uri_text for na in parse_name_addr_list(h.value, "Record-Route"))
    next_hop = "."
    if not loose:
        route.append(target)
        target = first.uri_text
    else:
        next_hop = first.uri_text
    text = ",".join(f"<{u}>" for u in route)
    return text or ".", target, next_hop


def record_for(ctx: MsgContext, tid: str, action: str, add_body: bool,
               elems: list[tuple[str, Any]]) -> bytes:
    """The t_write_* record for the request in hand."""
    msg = ctx.msg
    if not msg.is_request:
        raise ParseError("t_write_*: not a request")
    from ...sip.uri import parse_uri

    ruri_text = ctx.ruri
    uri = parse_uri(ruri_text)
    rcv = ctx.rcv
    route, target, next_hop = _route_and_target(msg)
    append = [f"P-MsgFlags: {_reverse_hex(1 if ctx.force_rport else 0)}\n"]
    for title, pv in elems:
        value = pv.get(ctx)
        if value is not None:
            append.append(f"{title}: {value}\n")
    append.append(".")
    if msg.method.upper() == "INVITE" or add_body:
        body = msg.body
    else:
        body = "."
    to_tag = msg.to.tag or ""
    lines = [
        VERSION,
        f"sip_request.{action}",
        msg.method,
        uri.user or "",
        uri.host,
        rcv.ip if rcv is not None else "",
        "." if rcv is None or rcv.port == 5060 else str(rcv.port),
        ruri_text,
        target or ".",
        msg.header_value("from") or "",
        msg.header_value("to") or "",
        msg.call_id,
        msg.from_.tag or "",
        to_tag,
        (msg.header_value("cseq") or "").split(maxsplit=1)[0],
        trans_ident(tid),
        route,
        next_hop,
        "".join(append),
        body,
    ]
    return "".join(line + "\n" for line in lines).encode("latin-1", "replace")


def _write_fifo(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_unix(path: str, data: bytes, timeout: float) -> None:
    if not path or len(path) > 107:
        raise OSError(f"bad socket name {path!r}")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.send(data)
    finally:
        s.close()


def _blind_branch(st: Any, t: Txn) -> bool:
    """1.6 add_blind_uac: a branch sent nowhere, only its final timer runs
    (so a 408 goes upstream when the application does not answer)."""
    from .uac import MAX_BRANCHES

    if len(t.branches) >= MAX_BRANCHES:
        st.rt.log(L_ERR, "tm: maximum number of branches exceeded")
        return False
    b = UacBranch(t.ruri, ("", "", 0), "", b"")
    b.fr_due = st.clock() + st.fr
    t.branches.append(b)
    if not t.completed:
        t.wait_due = 0.0
    return True


def _t_write(ctx: MsgContext, info: Any, target: str, unix: bool) -> int:
    from .funcs import _with_txn, tm_state

    st = tm_state(ctx)
    t = ctx.transaction
    if st is None or t is None:
        ctx.rt.log(L_ERR, "tm: t_write: no transaction (call t_newtran() first)")
        return -1
    action, add_body, elems = info
    try:
        data = record_for(ctx, t.tid, action, add_body, elems)
    except (ParseError, AttributeError, IndexError, ValueError) as e:
        ctx.rt.log(L_ERR, f"tm: t_write: failed to assemble the record: {e}")
        return -1
    try:
        if unix:
            _write_unix(target, data, float(st.params.get("unix_tx_timeout", 2)))
        else:
            _write_fifo(target, data)
    except OSError as e:
        what = "UNIX socket" if unix else "FIFO"
        ctx.rt.log(L_ERR, f"tm: t_write: writing to the {what} [{target}] failed: {e}")
        return -1
    return _with_txn(st, ctx, lambda tx: 1 if _blind_branch(st, tx) else -1)


def w_t_write_req(ctx: MsgContext, info: Any, fifo: str) -> int:
    return _t_write(ctx, info, fifo, unix=False)


def w_t_write_unix(ctx: MsgContext, info: Any, sock: str) -> int:
    return _t_write(ctx, info, sock, unix=True)
