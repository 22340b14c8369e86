"""tm's API for other modules: requests tm sends itself (1.6 `t_uac`), their
cancellation (`t_uac_cancel`), and replies to a server transaction named
by its `hash:label` identity (1.6 `t_reply_with_body` via `t_lookup_ident`).

Local requests (1.6 build_uac_req): request line, our Via
(`z9hG4bK<tid>.0`, so a reply names its transaction in whichever process
gets it), To, From, CSeq, Call-ID, Content-Length, the User-Agent line when
`server_signature` is on, the caller's other headers, the body. From, To,
Call-ID and CSeq are taken from the given header block; a missing Call-ID
is generated (`<16 hex>-<pid>@<first socket address>`), a missing From tag
is `<md5>-<crc of the Call-ID>`, a missing CSeq is 10. 1.6 adds no
Max-Forwards to local requests; pass `max_forwards=70` to get one.
In the extra headers `!!` becomes `address:port` of the sending socket.

The client transaction is a normal record in the shared store (flag
`T_REPLICATED`: replies stop in tm, nothing is relayed upstream), so
replies are matched by any receiver and retransmissions and the final
response timer run in the timer process.

Completion callbacks. Replies and timeouts are handled in whichever process
gets them, so a callback cannot be a closure of the caller: it is a
function registered by *name*, in every process, before the fork (at import
or mod_init time)::

    register_uac_callback("dialog:bye_done", on_bye_done)
    t_uac(rt, "BYE", ruri, hdrs, callback="dialog:bye_done", cb_param=dlg_id)

`on_bye_done(reply, code, param)` gets the final reply (a parsed `SipMsg`,
None when tm made it up: 408 on timeout, 487 after a cancel), its code, and
`cb_param` (anything `marshal` can store). It runs once per transaction;
with `pass_provisional_replies` it also runs for each 1xx (reply given).
Received replies call it in the receiver, right after tm processed them;
made-up and negative ones may be reported by the timer process (a
`tm_uac` timer watching the local transactions that still wait).

local_route runs over each of these requests before it is sent
(`run_local_route`). Not done: t_uac_cancel finds only transactions that
did not end yet (1.6 also "cancels" ended ones and answers 200).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...core.context import MsgContext
from ...core.errors import E_BAD_ADDRESS, E_BAD_URI, E_NO_SOCKET, E_SEND
from ...core.reply import crc_suffix
from ...core.runtime import L_DBG, L_ERR, Destination
from ...shm import LockSet, SharedHash
from ...sip.builders import build_reply, format_ip
from ...sip.errors import ParseError
from ...sip.headers import header_key, parse_name_addr
from ...sip.message import SipMsg, parse_message
from ...sip.uri import parse_uri
from .keys import branch_of, parse_our_branch, tid_of_key
from .record import T_REPLICATED, Txn, UacBranch
from .replies import process_reply
from .store import TmState
from .uac import REASON_ORIGINATOR, cancel_branches, next_address, send_branch_bytes
from .uas import update_uas

__all__ = ["DEFAULT_CSEQ", "LocalUac", "UacError", "current_local_uac", "find_by_ident", "local_uac",
           "parse_header_block", "register_uac_callback", "t_reply_ident", "t_uac",
           "t_uac_cancel"]

DEFAULT_CSEQ = 10
SUBST = "!!"
FROM_TAG_SIGNATURE = "Long live SER server"
LATE = 0.5
LOCAL_KEY = "local_uac"  # where the LocalUac lives in the module's params

UacCallback = Callable[[SipMsg | None, int, Any], None]
_CALLBACKS: dict[str, UacCallback] = {}


def register_uac_callback(name: str, fn: UacCallback) -> None:
    """Name a completion callback (call before the fork, in module code)."""
    _CALLBACKS[name] = fn


class UacError(Exception):
    """A request that cannot be built or sent: `code` is a 1.6 error code
    (core/errors.py) when sending failed, `status`/`reason` the 400/404 an
    MI caller answers for a bad argument."""

    def __init__(self, status: int, reason: str, code: int = 0) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code


# ---------------------------------------------------------------- shared state


def _tid_hash(key: bytes) -> int:
    return int(key[:15], 16)


class LocalUac:
    """The local transactions still waiting for their end, and the results
    the MI process waits for (both in shared memory, made before the fork)."""

    def __init__(self, st: TmState) -> None:
        self.st = st
        self.pending = SharedHash(st.seg, 256, LockSet(8), _tid_hash)
        self.results = SharedHash(st.seg, 64, LockSet(4), _tid_hash)

    # entry: (callback name or None, param, call-id, cseq, method)
    def add(self, tid: str, cb: str | None, param: Any, callid: str, cseq: int,
            method: str) -> None:
        self.pending.put(tid.encode(), marshal.dumps((cb, param, callid, cseq, method)))

    def entry(self, tid: str) -> tuple[Any, ...] | None:
        data = self.pending.get(tid.encode())
        return None if data is None else marshal.loads(data)

    def claim(self, tid: str) -> tuple[Any, ...] | None:
        """Take the entry (only one process wins it)."""
        data = self.pending.pop(tid.encode())
        return None if data is None else marshal.loads(data)

    def find(self, callid: str, cseq: int) -> str | None:
        for key, data in self.pending.items():
            e = marshal.loads(data)
            if e[2] == callid and e[3] == cseq:
                return key.decode()
        return None

    # ------------------------------------------------------------ completion

    def _fire(self, entry: tuple[Any, ...], reply: SipMsg | None, code: int) -> None:
        name, param = entry[0], entry[1]
        if name is None:
            return
        fn = _CALLBACKS.get(name)
        if fn is None:
            self.st.rt.log(L_ERR, f"tm: no UAC callback named {name!r} in this process")
            return
        try:
            fn(reply, code, param)
        except Exception as e:  # a callback bug must not break reply processing
            self.st.rt.log(L_ERR, f"tm: UAC callback {name}: {e!r}")

    def after_reply(self, msg: SipMsg) -> None:
        """A reply tm just processed: report it if it ended a local transaction."""
        try:
            parsed = parse_our_branch(msg.via1.branch)
        except (ParseError, AttributeError):
            return
        if parsed is None:
            return
        tid = parsed[0]
        if tid.encode() not in self.pending:
            return
        code = msg.status
        if code < 200:
            if self.st.params.get("pass_provisional_replies", 0):
                e = self.entry(tid)
                if e is not None:
                    self._fire(e, msg, code)
            return
        t = self.st.load(tid)
        if t is None or t.uas_status < 200:
            return  # not ended by this reply (another branch still tried)
        if t.uas_status != code:
            return  # a failover or a stored reply decided: the timer reports it
        e = self.claim(tid)
        if e is not None:
            self._fire(e, msg, code)

    def check_ended(self) -> None:
        """Timer: report the local transactions ended by a timeout or a
        stored negative reply (a received 2xx is reported by the receiver;
        here only if that did not happen within LATE seconds)."""
        for key, _ in self.pending.items():
            tid = key.decode()
            t = self.st.load(tid)
            if t is None:  # gone: ended long ago, report what we can
                e = self.claim(tid)
                if e is not None:
                    self._fire(e, None, 408)
                continue
            if t.uas_status < 200:
                continue
            if t.uas_status < 300 and self.st.clock() < t.wait_due - self.st.wt + LATE:
                continue  # a 2xx: the receiver that got it reports it (a moment's grace)
            reply = None
            for b in reversed(t.branches):
                if b.last == t.uas_status and b.reply:
                    try:
                        reply = parse_message(b.reply)
                    except ParseError:
                        reply = None
                    break
            e = self.claim(tid)
            if e is not None:
                self._fire(e, reply, t.uas_status)


def local_uac(st: TmState) -> LocalUac | None:
    return st.params.get(LOCAL_KEY)


_CURRENT: list[LocalUac | None] = [None]


def current_local_uac() -> LocalUac | None:
    """The LocalUac of this server (made by mod_init, inherited by every
    process): for callbacks, which get no state of their own."""
    return _CURRENT[0]


def init(st: TmState) -> None:
    """mod_init: the shared tables, the reply hook and the timer."""
    rt = st.rt
    lu = LocalUac(st)
    st.params[LOCAL_KEY] = lu
    _CURRENT[0] = lu

    def hook(ctx: Any) -> bool:
        handled = process_reply(st, ctx)
        if handled and len(lu.pending):
            try:
                lu.after_reply(ctx.msg)
            except Exception as e:
                rt.log(L_ERR, f"tm: local UAC reply: {e!r}")
        return handled

    rt.reply_hook = hook
    rt.register_timer("tm_uac", 0.1, lambda: lu.check_ended() if len(lu.pending) else None)


def tm_of(rt: Any) -> TmState:
    registry = getattr(rt, "registry", None)
    mod = registry.modules.get("tm") if registry is not None else None
    st = getattr(mod, "state", None) if mod is not None else None
    if not isinstance(st, TmState):
        raise UacError(500, "tm not loaded")
    return st


# ---------------------------------------------------------------- request building


@dataclass
class HeaderBlock:
    """The caller's header block, split: From/To/Call-ID/CSeq apart, the rest raw."""

    from_: Any = None
    to: Any = None
    call_id: str | None = None
    cseq: tuple[str, str] | None = None  # (number text, method)
    content_type: bool = False
    content_length: bool = False
    extra: list[str] | None = None


def parse_header_block(text: str) -> HeaderBlock:
    """Split `Name: value` lines (CRLF or LF, folded lines joined); raises
    ValueError for a line that is no header or a From/To that does not parse."""
    hb = HeaderBlock(extra=[])
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw:
            continue
        if raw[0] in " \t" and lines:
            lines[-1] += "\r\n" + raw
            continue
        lines.append(raw)
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or any(c in name for c in " \t<>\""):
            raise ValueError(f"bad header line {line!r}")
        key = header_key(name)
        value = value.strip()
        if key in ("from", "to"):
            try:
                na = parse_name_addr(value, key)
                parse_uri(na.uri_text)
            except ParseError as e:
                raise ValueError(str(e)) from None
            setattr(hb, "from_" if key == "from" else "to", na)
        elif key == "call-id":
            hb.call_id = value
        elif key == "cseq":
            num, _, method = value.partition(" ")
            hb.cseq = (num.strip(), method.strip())
        else:
            if key == "content-type":
                hb.content_type = True
            elif key == "content-length":
                hb.content_length = True
            hb.extra.append(line + "\r\n")
    return hb


_counter = [0, 0]  # [pid, next Call-ID number] of this process


def generate_callid(rt: Any) -> str:
    if _counter[0] != os.getpid():
        _counter[0] = os.getpid()
        _counter[1] = random.getrandbits(64)
    _counter[1] = (_counter[1] + 1) & 0xFFFFFFFFFFFFFFFF
    sock = _first_socket(rt)
    addr = format_ip(sock.ip) if sock is not None else "127.0.0.1"
    return f"{_counter[1]:016x}-{os.getpid()}@{addr}"


def _first_socket(rt: Any) -> Any:
    sockets = list(getattr(rt, "sockets", None) or ())
    return sockets[0] if sockets else None


def generate_fromtag(rt: Any, callid: str) -> str:
    sock = _first_socket(rt)
    src = FROM_TAG_SIGNATURE + (format_ip(sock.ip) + str(sock.port) if sock is not None else "")
    return hashlib.md5(src.encode("latin-1", "replace")).hexdigest() + "-" + crc_suffix([callid])


def _name_addr(prefix: str, na: Any, tag: str | None) -> str:
    display = na.display or ""
    out = prefix + (display + " " if display else "")
    if display or tag:
        out += f"<{na.uri_text}>"
    else:
        out += na.uri_text
    if tag:
        out += f";tag={tag}"
    return out + "\r\n"


def _via_host(rt: Any, sock: Any) -> str:
    cfg = rt.config
    host = getattr(sock, "adv_host", None) or cfg.get("advertised_address") or format_ip(sock.ip)
    port = getattr(sock, "adv_port", None) or cfg.get("advertised_port")
    if port:
        return f"{host}:{port}"
    return host if sock.port == 5060 else f"{host}:{sock.port}"


def _find_socket(rt: Any, spec: Any) -> Any:
    """A SocketInfo, or `[proto:]ip[:port]` text (404 when not ours)."""
    if spec is None or not isinstance(spec, str):
        return spec
    text = spec.strip()
    proto = None
    low = text.lower()
    for p in ("udp", "tcp", "tls", "sctp"):
        if low.startswith(p + ":"):
            proto, text = p, text[len(p) + 1:]
            break
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p)
    else:
        host = text
    if not host:
        raise UacError(404, "Invalid local socket")
    proto = proto or "udp"
    if port is None:
        port = 5061 if proto == "tls" else 5060
    for s in rt.sockets:
        if s.proto == proto and s.ip == host and s.port == port:
            return s
    raise UacError(404, "Local socket not found")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UacError(404, "Invalid local socket")
    return int(text)


@dataclass
class Prepared:
    tid: str
    method: str
    ruri: str
    callid: str
    cseq: int
    data: bytes
    sock: Any
    dests: list[Destination]


def check_headers(method: str, hb: HeaderBlock, body: str) -> int:
    """1.6 mi_check_msg: the 400 reasons; returns the CSeq number (-1: none)."""
    if body and not hb.content_type:
        raise UacError(400, "Content-Type missing")
    if body and hb.content_length:
        raise UacError(400, "Content-Length disallowe")  # 1.6 cut its own text (len 24)
    if hb.to is None:
        raise UacError(400, "To missing")
    if hb.from_ is None:
        raise UacError(400, "From missing")
    if hb.cseq is None:
        return -1
    num, cmethod = hb.cseq
    if not num.isdigit() or int(num) > 0xFFFFFFFF:
        raise UacError(400, "Bad CSeq number")
    if cmethod != method:
        raise UacError(400, "CSeq method mismatch")
    return int(num)


def prepare(rt: Any, method: str, ruri: str, headers: str | HeaderBlock, body: str = "", *,
            next_hop: str | None = None, socket: Any = None,
            max_forwards: int | None = None) -> Prepared:
    """Check the arguments, pick the destination and socket, build the bytes."""
    try:
        parse_uri(ruri)
    except ParseError:
        raise UacError(400, "Invalid RURI") from None
    hop_uri = next_hop or ruri
    if next_hop:
        try:
            parse_uri(next_hop)
        except ParseError:
            raise UacError(400, "Invalid NEXTHOP") from None
    sock = _find_socket(rt, socket)
    if isinstance(headers, HeaderBlock):
        hb = headers
    else:
        try:
            hb = parse_header_block(headers)
        except ValueError:
            raise UacError(400, "Bad headers") from None
    cseq = check_headers(method, hb, body)
    if cseq < 0:
        cseq = DEFAULT_CSEQ
    callid = hb.call_id or generate_callid(rt)
    from_tag = hb.from_.tag or generate_fromtag(rt, callid)
    to_tag = hb.to.tag
    # where it goes
    uri = parse_uri(hop_uri)
    if uri.opaque is not None or not uri.host:
        raise UacError(400, "Invalid NEXTHOP" if next_hop else "Invalid RURI", E_BAD_URI)
    proto = uri.transport if uri.transport in ("udp", "tcp", "tls", "sctp") else None
    transport = rt.transport
    if transport is None:
        raise UacError(500, "no transport", E_SEND)
    dests = transport.resolve(uri.maddr or uri.host, uri.port, proto, uri.scheme == "sips")
    if not dests:
        raise UacError(500, "unresolvable next hop", E_BAD_ADDRESS)
    chosen = transport.choose_socket(dests[0], sock)
    if chosen is None:
        raise UacError(500, "no socket found", E_NO_SOCKET)
    sock = chosen
    tid = tid_of_key(f"uac|{callid}|{cseq}|{method}|{os.getpid()}|{random.getrandbits(48)}")
    extra = "".join(hb.extra or ())
    if SUBST in extra:
        extra = extra.replace(SUBST, f"{format_ip(sock.ip)}:{sock.port}")
    body_b = body.encode("utf-8", "surrogateescape")
    ua = rt.config.get("user_agent_header") if rt.config.get("server_signature") else None
    out = [
        f"{method} {ruri} SIP/2.0\r\n",
        f"Via: SIP/2.0/{sock.proto.upper()} {_via_host(rt, sock)};branch={branch_of(tid, 0)}\r\n",
        _name_addr("To: ", hb.to, to_tag),
        _name_addr("From: ", hb.from_, from_tag),
        f"CSeq: {cseq} {method}\r\n",
        f"Call-ID: {callid}\r\n",
    ]
    if max_forwards is not None:
        out.append(f"Max-Forwards: {max_forwards}\r\n")
    out.append(f"Content-Length: {len(body_b)}\r\n")
    if ua:
        out.append(ua + "\r\n")
    out.append(extra)
    out.append("\r\n")
    data = "".join(out).encode("utf-8", "surrogateescape") + body_b
    return Prepared(tid, method, ruri, callid, cseq, data, sock, dests)


def t_uac(rt: Any, method: str, ruri: str, headers: str | HeaderBlock, body: str = "", *,
          next_hop: str | None = None, socket: Any = None, callback: str | None = None,
          cb_param: Any = None, max_forwards: int | None = None) -> str:
    """Send a request as a new client transaction; returns its tid.

    `callback` is the name given to `register_uac_callback`. Raises UacError
    (argument problems: `status`/`reason`; send problems: `code` too).
    An ACK is sent without a transaction (1.6 releases it at once).
    """
    if callback is not None and callback not in _CALLBACKS:
        raise UacError(500, f"unknown UAC callback {callback!r}")
    st = tm_of(rt)
    p = prepare(rt, method, ruri, headers, body, next_hop=next_hop, socket=socket,
                max_forwards=max_forwards)
    p.data = run_local_route(rt, p.data, p.sock)
    d = p.dests[0]
    b = UacBranch(ruri, (d.proto, d.ip, d.port), p.sock.name, p.data)
    if method == "ACK":
        if not send_branch_bytes(st, b, p.data):
            raise UacError(500, "send failed", E_SEND)
        return p.tid
    if len(p.dests) > 1:
        b.alt = [(x.proto, x.ip, x.port) for x in p.dests[1:]]
    now = st.clock()
    t = Txn(p.tid, method, p.data, ("", 0, d.proto), p.sock.name, ("local", "", 0), now)
    t.flags |= T_REPLICATED
    t.ruri = ruri
    if d.proto == "udp":
        b.retr_iv = st.t1
        b.retr_due = now + st.t1
    b.fr_due = now + st.fr
    t.branches.append(b)
    lu = local_uac(st)
    st.lock(p.tid)
    try:
        if lu is not None:
            lu.add(p.tid, callback, cb_param, p.callid, p.cseq, method)
        if not st.insert(t):
            if lu is not None:
                lu.claim(p.tid)
            raise UacError(500, "out of shared memory", E_SEND)
        st.stat("UAC_transactions")
        ok = send_branch_bytes(st, b, p.data)
        while not ok and next_address(st, b):
            ok = send_branch_bytes(st, b, p.data)
        if not ok:  # 1.6 logs and lets the retransmissions/timer deal with it
            rt.log(L_ERR, f"tm: t_uac: sending to {d.ip}:{d.port} failed")
        st.save(t)
    finally:
        st.unlock(p.tid)
    rt.log(L_DBG, f"tm: t_uac {method} {ruri} -> {b.dst} ({p.tid})")
    return p.tid


def run_local_route(rt: Any, data: bytes, sock: Any) -> bytes:
    """Run `local_route` on a request tm builds itself; the bytes it sends.

    As in 1.6 the route sees the new request and may change it (append_hf,
    remove_hf, ...); `drop`/`exit` only end the route, the request still
    goes out. No local_route, or a request the route cannot parse: unchanged.
    """
    routes = getattr(rt, "routes", None)
    if routes is None or not routes.has("local", None):
        return data
    try:
        msg = parse_message(data)
    except ParseError as e:
        rt.log(L_ERR, f"tm: local_route: cannot parse our own request: {e}")
        return data
    ctx = MsgContext(rt, msg, rcv=sock)
    routes.run("local", None, ctx)
    if ctx.new_uri is not None and ctx.new_uri != msg.ruri_text:
        msg.lumps.set_ruri(ctx.new_uri)
    return msg.build() if msg.has_lumps else data


def t_uac_cancel(rt: Any, callid: str, cseq: int | str) -> bool:
    """CANCEL every pending branch of the local transaction with this
    Call-ID and CSeq number; False when there is none."""
    st = tm_of(rt)
    lu = local_uac(st)
    try:
        n = int(cseq)
    except (TypeError, ValueError):
        return False
    tid = lu.find(callid, n) if lu is not None else None
    if tid is None:
        return False
    st.lock(tid)
    try:
        t = st.load(tid)
        if t is None:
            return False
        cancel_branches(st, t, t.pending_branches(), REASON_ORIGINATOR)
        st.save(t)
    finally:
        st.unlock(tid)
    return True


# ---------------------------------------------------------------- replies by identity


def _ident_prefix(ident: str | tuple[int, int]) -> str | None:
    if isinstance(ident, tuple):
        h, label = ident
    else:
        head, colon, tail = ident.partition(":")
        if not colon or not head.isdigit() or not tail.isdigit():
            return None
        h, label = int(head), int(tail)
    if not 0 <= h <= 0xFFFF or not 0 <= label <= 0xFFFFFFFF:
        return None
    return f"{h:04x}{label:08x}"


def find_by_ident(st: TmState, ident: str | tuple[int, int]) -> str | None:
    """The tid whose `hash:label` (write.trans_ident) is `ident`, or a tid itself."""
    if isinstance(ident, str) and len(ident) == 32 and st.exists(ident):
        return ident
    prefix = _ident_prefix(ident)
    if prefix is None:
        return None
    for key in list(st.table):
        if key[:12].decode() == prefix:
            return key.decode()
    return None


def t_reply_ident(rt: Any, ident: str | tuple[int, int], code: int, reason: str, *,
                  totag: str | None = None, headers: str = "", body: str = "") -> int:
    """Reply to a server transaction by tid or `hash:label`: 1 sent, -1
    failed, -2 no such transaction. `headers` are whole lines (CRLF each)."""
    st = tm_of(rt)
    tid = find_by_ident(st, ident)
    if tid is None:
        return -2
    st.lock(tid)
    try:
        t = st.load(tid)
        if t is None:
            return -2
        if t.flags & T_REPLICATED or not t.request:
            return -1
        try:
            req = t.request_msg()
            tag = totag if totag else None
            if tag and code >= 180:
                t.totag = tag
            cfg = rt.config
            server = cfg.get("server_header") if cfg.get("server_signature") else None
            data = build_reply(req, code, reason, to_tag=tag, source=(t.src[0], t.src[1]),
                               headers=headers, body=body, server_header=server)
        except (ParseError, ValueError) as e:
            rt.log(L_ERR, f"tm: cannot build a {code} reply: {e}")
            return -1
        ok = update_uas(st, t, code, data, local=True)
        st.save(t)
        return 1 if ok else -1
    finally:
        st.unlock(tid)
