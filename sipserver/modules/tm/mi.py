"""tm's MI commands (1.6 modules/tm/mi.c): t_uac_dlg, t_uac_cancel, t_hash, t_reply.

`t_uac_dlg` is asynchronous, as in 1.6 (`MICmdExport(async_=True)`): the MI
process sends the request and returns a pending answer
(`UacDlgReply`, sipserver.mi.pending); it then serves other commands. The
replies reach it through shared memory: the named callback `tm:mi_uac_dlg`,
run by the receiver that got a reply (or by the timer process for a
timeout), appends `(code, reply bytes)` to `LocalUac.results` under the
request's token, and the MI loop polls that entry. The final reply
completes the answer; with tm's `pass_provisional_replies` every 1xx is
an answer of its own first (one FIFO reply / one datagram each, as 1.6
writes them). The wait is bounded by fr_timer (plus fr_inv_timer for an
INVITE) and a margin: past it the answer is the 408 tm would have made.

Reply of t_uac_dlg: `200 OK`, then `<code> <reason>`, the remote target
(Contact of a 2xx) or `.`, the next hop or `.`, `Route: <...>, <...>` or
`.`, then everything of the reply after its first line (headers and body)
as one node; a reply tm made up (408 timeout) gives `.` for that last node.

`t_hash` prints 1.6's 65536 buckets (a transaction's bucket is the first
16 bits of its id, as in its `hash:label`); `Total` is not kept across
time here, it shows the current count too.
"""

from __future__ import annotations

import marshal
import time
import uuid
from collections import Counter
from typing import Any

from ...core.reply import err2reason
from ...mi.pending import PendingReply
from ...mi.tree import MINode, MIReply, missing_params
from ...sip.errors import ParseError
from ...sip.message import SipMsg, parse_message
from ...sip.uri import parse_uri
from .api import (
    UacError,
    current_local_uac,
    find_by_ident,
    local_uac,
    register_uac_callback,
    t_reply_ident,
    t_uac,
    t_uac_cancel,
)
from .store import TmState
from .uas import error_text

__all__ = ["UacDlgReply", "mi_t_hash", "mi_t_reply", "mi_t_uac_cancel", "mi_t_uac_dlg",
           "uac_reply_tree"]

TM_TABLE_ENTRIES = 65536
CALLBACK = "tm:mi_uac_dlg"
MARGIN = 2.0


def _state(module: Any) -> TmState | None:
    st = getattr(module, "state", None)
    return st if isinstance(st, TmState) else None


def _dot(value: str) -> bool:
    return value == "."


# ---------------------------------------------------------------- t_uac_dlg


def _deliver(reply: SipMsg | None, code: int, param: Any) -> None:
    """The named callback: queue a reply (1xx too) where the MI process looks."""
    lu, token = current_local_uac(), param
    if lu is None or not isinstance(token, str):
        return
    item = (code, reply.buf if reply is not None else b"")

    def append(old: bytes | None) -> bytes:
        items = list(marshal.loads(old)) if old is not None else []
        items.append(item)
        return marshal.dumps(items)

    lu.results.update(token.encode(), append)


register_uac_callback(CALLBACK, _deliver)


def _raw_uri(text: str) -> str:
    """1.6 get_raw_uri: the URI inside `<...>`."""
    if "<" in text and ">" in text:
        return text[text.index("<") + 1:text.rindex(">")]
    return text


def _print_uris(root: MINode, reply: SipMsg | None) -> None:
    """Remote target, next hop and route set of the dialog a 2xx makes (else three `.`)."""
    if reply is None or not 200 <= reply.status < 299:
        for _ in range(3):
            root.add(None, ".")
        return
    target = ""
    contacts = reply.contacts
    if contacts:
        target = contacts[0].uri_text
    routes = list(reversed(reply.record_routes))
    if routes:
        first = routes[0]
        try:
            loose = parse_uri(first.uri_text).lr
        except ParseError:
            loose = True
        if loose:
            ruri, hop, shown, last = target, first.uri_text, routes, None
        else:
            ruri = hop = first.uri_text
            shown, last = routes[1:], target
    else:
        ruri = hop = target
        shown, last = [], None
    root.add(None, _raw_uri(ruri) if ruri else ".")
    root.add(None, _raw_uri(hop) if hop else ".")
    if not shown:
        root.add(None, ".")
        return
    parts = [_route_text(r) for r in shown]
    line = "Route: " + ", ".join(parts)
    if last:
        line += f"<{last}>"
    root.add(None, line)


def _route_text(na: Any) -> str:
    return f"<{na.uri_text}>" if na.display is None else f"{na.display} <{na.uri_text}>"


def uac_reply_tree(code: int, reply: SipMsg | None) -> MIReply:
    """1.6 mi_uac_dlg_hdl's tree for a final reply (None: one tm made up)."""
    root = MIReply.ok()
    if reply is None:
        root.add(None, f"{code} {error_text(code)}")
        _print_uris(root, None)
        root.add(None, ".")
        return root
    root.add(None, f"{reply.status} {reply.reason}")
    _print_uris(root, reply)
    root.add(None, reply.text[reply.first_line_end:])
    return root


def mi_t_uac_dlg(args: list[Any], rt: Any, module: Any) -> MIReply | PendingReply | None:
    if len(args) not in (5, 6):
        return missing_params()
    st = _state(module)
    if st is None:
        return None
    lu = local_uac(st)
    method, ruri, nexthop, sock, hdrs = (a.text for a in args[:5])
    body = args[5].text if len(args) == 6 else ""
    token = uuid.uuid4().hex
    try:
        t_uac(rt, method, ruri, "" if _dot(hdrs) else hdrs, body,
              next_hop=None if _dot(nexthop) else nexthop,
              socket=None if _dot(sock) else sock,
              callback=CALLBACK if lu is not None else None, cb_param=token)
    except UacError as e:
        if not e.code:
            return MIReply.error(e.status, e.reason)
        root = MIReply.ok()
        sip_code, text = err2reason(e.code, "MI/UAC")
        root.add(None, f"{sip_code} {text}" if text else "500 MI/UAC failed")
        return root
    if lu is None:
        return MIReply.error(202, "Accepted")
    wait = st.fr + (st.fr_inv if method == "INVITE" else 0.0) + MARGIN
    return UacDlgReply(lu, token, time.monotonic() + wait)


class UacDlgReply(PendingReply):
    """The answer t_uac_dlg owes: the replies queued under its token."""

    def __init__(self, lu: Any, token: str, deadline: float) -> None:
        super().__init__(deadline)
        self.lu = lu
        self.key = token.encode()

    def fetch(self) -> list[tuple[MIReply, bool]]:
        data = self.lu.results.pop(self.key)
        if data is None:
            return []
        out = []
        for code, raw in marshal.loads(data):
            reply = None
            if raw:
                try:
                    reply = parse_message(raw)
                except ParseError:
                    reply = None
            out.append((uac_reply_tree(code, reply), code >= 200))
        return out

    def expired(self) -> MIReply:
        self.lu.results.pop(self.key)
        return uac_reply_tree(408, None)


# ---------------------------------------------------------------- t_uac_cancel


def mi_t_uac_cancel(args: list[Any], rt: Any, module: Any) -> MIReply | None:
    if len(args) != 2:
        return missing_params()
    try:
        found = t_uac_cancel(rt, args[0].text, args[1].text)
    except UacError:
        return None
    if not found:
        return MIReply.error(481, "No such transaction")
    return MIReply.ok()


# ---------------------------------------------------------------- t_hash


def mi_t_hash(args: list[Any], rt: Any, module: Any) -> MIReply | None:
    st = _state(module)
    if st is None:
        return MIReply.error(500, "Server Internal Error")
    counts = Counter(int(k[:4], 16) for k in list(st.table))
    root = MIReply.ok()
    kids = root.kids
    for i in range(TM_TABLE_ENTRIES):
        n = counts.get(i, 0)
        kids.append(MINode(None, str(i)).attr("Current", n).attr("Total", n))
    return root


# ---------------------------------------------------------------- t_reply


def _uint(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def mi_t_reply(args: list[Any], rt: Any, module: Any) -> MIReply | None:
    if len(args) not in (5, 6):
        return missing_params()
    code = _uint(args[0].text)
    if code is None or code >= 700:
        return MIReply.error(400, "Invalid reply code")
    reason = args[1].text
    ident = args[2].text
    head, colon, tail = ident.partition(":")
    if not colon:
        return MIReply.error(400, "Invalid trans_id")
    h = _uint(head)
    if h is None:
        return MIReply.error(400, "Invalid index in trans_id")
    label = _uint(tail)
    if label is None:
        return MIReply.error(400, "Invalid label in trans_id")
    st = _state(module)
    if st is None or find_by_ident(st, (h, label)) is None:
        return MIReply.error(404, "Transaction not found")
    totag = args[3].text
    hdrs = args[4].text
    headers = "" if _dot(hdrs) else hdrs
    if headers and not headers.endswith("\n"):
        headers += "\r\n"
    body = args[5].text if len(args) == 6 else ""
    r = t_reply_ident(rt, (h, label), code, reason, totag=totag or None, headers=headers,
                      body=body)
    if r == -2:
        return MIReply.error(404, "Transaction not found")
    if r < 0:
        return MIReply.error(500, "Reply failed")
    return MIReply.ok()
