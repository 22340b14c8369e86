"""Stateless reply relaying (1.6 forward_reply): back along the second Via.

A reply that no transaction claims goes to the sender named by its second
Via (`replydest.reply_destination`: maddr, else received, else the sent-by
host, resolved when a name; the rport value, else the sent-by port). Our
own Via, on top, is removed first.

A request received over TCP leaves with `;i=<connection id>` in our Via
(1.6 id_builder, the id in reversed hex digits); a reply relayed to a TCP
hop goes back on that connection when it is still open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sip.builders import remove_top_via
from ..sip.errors import ParseError
from .errors import E_BAD_ADDRESS, E_BAD_VIA, E_SEND
from .replydest import STREAM_PROTOS, reply_destination
from .runtime import L_DBG, L_ERR

if TYPE_CHECKING:
    from .context import MsgContext

__all__ = ["conn_id_param", "forward_reply", "parse_conn_id"]


def conn_id_param(conn: int) -> str:
    """The Via `i` value for a connection id: hex digits, lowest first (1.6 int2reverse_hex)."""
    if conn <= 0:
        return "0"
    digits = []
    while conn:
        digits.append("0123456789abcdef"[conn & 0xF])
        conn >>= 4
    return "".join(digits)


def parse_conn_id(text: str | None) -> int:
    """The connection id of a Via `i` value (1.6 reverse_hex2int); 0 when absent or bad."""
    if not text or len(text) > 16:
        return 0
    try:
        return int(text[::-1], 16)
    except ValueError:
        return 0


def forward_reply(ctx: MsgContext) -> int:
    """Relay a reply statelessly; 1 when sent, negative when dropped."""
    rt = ctx.rt
    msg = ctx.msg
    try:
        via2 = msg.via2
    except ParseError as e:
        rt.log(L_ERR, f"reply relay: bad Via: {e}")
        return E_BAD_VIA
    if via2 is None:
        rt.log(L_DBG, "reply relay: no second Via, the reply is for us; dropped")
        return E_BAD_VIA
    if rt.config.get("check_via"):
        top = msg.via1
        if not rt.is_myself(top.host, top.port or 5060):
            rt.log(L_ERR, f"reply relay: top Via {top.sent_by} is not ours; dropped")
            return E_BAD_VIA
    conn = 0
    if (via2.transport or "").lower() in STREAM_PROTOS:
        # our Via's `i`: the connection the request came in on (1.6 forward_reply)
        i = msg.via1.param("i")
        conn = parse_conn_id(i.value if i is not None else None)
    route = reply_destination(rt, via2, conn=conn)
    if route is None:
        return E_BAD_ADDRESS
    dest, conn = route.dest, route.conn
    transport = rt.transport
    sock = transport.choose_socket(dest, None) if transport is not None else None
    if sock is None:
        rt.log(L_ERR, f"reply relay: no socket for {dest.proto}:{dest.ip}")
        return E_SEND
    remove_top_via(msg)
    if msg.status == 503 and not rt.config.get("disable_503_translation"):
        # 1.6 relays a 503 as 500 (the code only; RFC 3261 16.7 item 6)
        code_at = msg.text.index(" ") + 1
        msg.lumps.replace(code_at, code_at + 3, "500")
    data = msg.build()
    if conn:
        sent = transport.send(sock, dest, data, conn=conn)
    else:
        sent = transport.send(sock, dest, data)
    if not sent:
        rt.log(L_ERR, f"reply relay: sending to {dest.proto}:{dest.ip}:{dest.port} failed")
        return E_SEND
    return 1
