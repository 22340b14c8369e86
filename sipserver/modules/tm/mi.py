"""tm's MI commands (1.6 modules/tm/mi.c): t_uac_dlg, t_uac_cancel, t_hash, t_reply.

`t_uac_dlg` is asynchronous in 1.6 (the answer is written when the final
reply comes). Here the MI process sends the request itself and waits for
the final reply, which the receiver (or, for a timeout, the timer process)
hands over through shared memory (`LocalUac.results`, via the named
callback `tm:mi_uac_dlg`); the wait is bounded by fr_timer (plus
fr_inv_timer for an INVITE) and a margin. While it waits the MI process
serves nothing else. Provisional replies are not reported
(`pass_provisional_replies` concerns the API callers only).

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

__all__ = ["mi_t_hash", "mi_t_reply", "mi_t_uac_cancel", "mi_t_uac_dlg", "uac_reply_tree"]

TM_TABLE_ENTRIES = 65536
CALLBACK = "tm:mi_uac_dlg"
POLL = 0.01
MARGIN = 2.0


def _state(module: Any) -> TmState | None:
    st = getattr(module, "state", None)
    return st if isinstance(st, TmState) else None


def _dot(value: str) -> bool:
    return value == "."


# ---------------------------------------------------------------- t_uac_dlg


def _deliver(reply: SipMsg | None, code: int, param: Any) -> None:
    """The named callback: store the final reply where the MI process waits."""
    lu, token = current_local_uac(), param
    if code < 200 or lu is None or not isinstance(token, str):
        return
    lu.results.put(token.encode(), marshal.dumps((code, reply.buf if reply is not None else b"")))


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


def mi_t_uac_dlg(args: list[Any], rt: Any, module: Any) -> MIReply | None:
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
    deadline = time.monotonic() + wait
    key = token.encode()
    while time.monotonic() < deadline:
        data = lu.results.pop(key)
        if data is not None:
            code, raw = marshal.loads(data)
            reply = None
            if raw:
                try:
                    reply = parse_message(raw)
                except ParseError:
                    reply = None
            return uac_reply_tree(code, reply)
        time.sleep(POLL)
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
