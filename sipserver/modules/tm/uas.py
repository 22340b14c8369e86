"""The server side: replies going upstream (local or relayed), their
retransmission, and the tm To-tag.

Local replies have 1.6's layout (`sip.builders.build_reply`) and, for
code >= 180 to a request without a To-tag, the tm tag
`<md5("OpenSIPS-TM/tags" + first socket)>-<crc of the top Via>`. Every
reply sent upstream is kept in the record (`uas_reply`) so a request
retransmission gets it again; a non-2xx final reply to an INVITE over UDP
is retransmitted (T1 doubling, capped at T2) until the ACK comes.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from ...core.reply import crc_suffix, dset_contact, pending_reply_lumps
from ...core.runtime import L_DBG, L_ERR, Destination
from ...sip.builders import build_reply, format_ip
from ...sip.errors import ParseError
from . import callbacks
from .record import T_REPLICATED, Txn
from .store import TmState

__all__ = ["error_text", "local_reply", "send_upstream", "set_completed", "tm_totag",
           "update_uas"]

TM_TAG_SIGNATURE = "OpenSIPS-TM/tags"

_REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 480: "Temporarily Unavailable", 481: "Call/Transaction Does not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere",
    603: "Decline", 604: "Does not Exist Anywhere", 606: "Not Acceptable",
}


def error_text(code: int) -> str:
    """1.6's reason phrase for a code tm makes up (a faked 408, a 487)."""
    text = _REASONS.get(code)
    if text is not None:
        return text
    for floor, name in ((600, "Global Failure"), (500, "Server Failure"),
                        (400, "Request Failure"), (300, "Redirection"), (200, "Successful"),
                        (100, "Provisional")):
        if code >= floor:
            return name
    return "Unknown"


@lru_cache(maxsize=16)
def _tag_prefix(address: str, port: str) -> str:
    return hashlib.md5((TM_TAG_SIGNATURE + address + port).encode("latin-1", "replace")).hexdigest()


def _first_socket(rt: Any) -> Any:
    sockets = list(getattr(rt, "sockets", None) or ())
    for proto in ("udp", "tcp", "tls", "sctp"):
        for s in sockets:
            if s.proto == proto:
                return s
    return sockets[0] if sockets else None


def tm_totag(rt: Any, msg: Any) -> str:
    """The To-tag tm gives its local replies to this request (`md5-crc`)."""
    sock = _first_socket(rt)
    prefix = _tag_prefix(format_ip(sock.ip), str(sock.port)) if sock is not None else \
        _tag_prefix("", "")
    via = msg.via1
    port = "" if via.port is None else str(via.port)
    parts = [via.host, port]
    if via.param("branch") is not None:
        parts.append(via.branch or "")
    return f"{prefix}-{crc_suffix(parts)}"


def _socket_named(rt: Any, name: str) -> Any:
    for s in rt.sockets:
        if s.name == name:
            return s
    return None


def send_upstream(st: TmState, t: Txn, data: bytes) -> bool:
    """Send a reply to where the request came from, from the socket it came in on."""
    rt = st.rt
    transport = rt.transport
    if transport is None:
        rt.log(L_ERR, "tm: no transport to send a reply")
        return False
    dest = Destination(*t.reply_dst)
    sock = _socket_named(rt, t.rcv)
    if sock is None or sock.proto != dest.proto:
        sock = transport.choose_socket(dest, None)
    if sock is None:
        rt.log(L_ERR, f"tm: no socket to send a reply to {dest.proto}:{dest.ip}")
        return False
    # a request that came over TCP: its connection, by the id the worker saw (1.6)
    conn = t.src[3] if len(t.src) > 3 and dest.proto != "udp" else 0
    sent = transport.send(sock, dest, data, conn=conn) if conn else transport.send(sock, dest, data)
    if not sent:
        rt.log(L_ERR, f"tm: sending a reply to {dest.ip}:{dest.port} failed")
        return False
    return True


def set_completed(st: TmState, t: Txn, code: int) -> None:
    """A final reply went upstream: stop the client timers, arm the wait
    (and, for a non-2xx INVITE reply over UDP, its retransmission)."""
    now = st.clock()
    for b in t.branches:
        b.retr_due = 0.0
        b.fr_due = 0.0
    if t.is_invite and code >= 300 and t.reply_dst[0] == "udp":
        t.uas_retr_iv = st.t1
        t.uas_retr_due = now + st.t1
        t.wait_due = now + max(st.fr, st.wt)  # until the ACK comes (or give up)
    else:
        t.uas_retr_due = 0.0
        t.wait_due = now + st.wt
    st.stat_final(code)


def update_uas(st: TmState, t: Txn, code: int, data: bytes, *, local: bool,
               rpl: Any = None) -> bool:
    """Record `data` as the reply sent upstream and send it (`rpl`: the
    relayed reply, None for a local one; for the transaction callbacks)."""
    if t.uas_status >= 200 and code >= 200 and not (t.is_invite and code < 300):
        st.rt.log(L_DBG, f"tm: a final reply was already sent; {code} not sent")
        return False
    first_final = code >= 200 and t.uas_status < 200
    report = bool(t.tmcbs) and code >= 200 and not t.flags & T_REPLICATED and (
        first_final or data != t.uas_reply)  # not a retransmitted 2xx
    if report:
        if t.is_invite and code < 300 and callbacks.has_tmcbs(t, callbacks.TMCB_E2EACK_IN):
            callbacks.note_2xx(st, t, rpl)
        callbacks.run_trans_callbacks(st, t, callbacks.TMCB_RESPONSE_PRE_OUT, t.request_msg(),
                                      rpl, code, extra=data)
    if code >= t.uas_status or code >= 200:
        t.uas_status = code
        t.uas_reply = data
        t.uas_local = local
    if first_final:
        set_completed(st, t, code)
    st.stat("local_replies" if local else "relayed_replies")
    ok = send_upstream(st, t, data)
    if report:
        callbacks.run_trans_callbacks(st, t, callbacks.TMCB_RESPONSE_OUT, t.request_msg(), rpl,
                                      code, extra=data)
    return ok


def local_reply(st: TmState, t: Txn, ctx: Any, code: int, reason: str, body: str = "") -> int:
    """t_reply: build a reply to the transaction's request and send it (1 / -1).

    `ctx` is the request's context (request or failure route): its queued
    reply lumps (append_to_reply) go in, and for 3xx the destination set.
    """
    req = t.request_msg()
    headers = "".join(pending_reply_lumps(ctx)) if ctx is not None else ""
    if ctx is not None and 300 <= code < 400:
        contact = dset_contact(ctx)
        if contact:
            headers += contact
    tag = None
    if code >= 180 and not req.to.tag:
        tag = t.totag = tm_totag(st.rt, req)
    config = st.rt.config
    server = config.get("server_header") if config.get("server_signature") else None
    try:
        data = build_reply(req, code, reason, to_tag=tag, source=(t.src[0], t.src[1]),
                           force_rport=bool(ctx is not None and ctx.force_rport),
                           headers=headers, body=body, server_header=server)
    except (ParseError, ValueError) as e:
        st.rt.log(L_ERR, f"tm: cannot build a {code} reply: {e}")
        return -1
    return 1 if update_uas(st, t, code, data, local=True) else -1
