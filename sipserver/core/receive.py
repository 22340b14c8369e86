"""The receive path: bytes from a socket -> parsed message -> routes -> relay.

Every receiver process (UDP and TCP workers) calls `Receiver.handle` for
each message. A request runs the main route; a reply runs the global
onreply_route, is offered to tm (when loaded), and is otherwise relayed
statelessly along its second Via. Nothing here may raise: a bad request is
answered with a 400 when enough of it can be read (a Via and a CSeq), else
dropped and logged; 1.6 drops every message that does not parse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..sip.errors import ParseError
from ..sip.headers import parse_via
from ..sip.message import parse_message
from .context import RUN_DROP, MsgContext
from .relay import forward_reply
from .replydest import reply_destination
from .runtime import L_DBG, L_ERR, L_WARN, Runtime, SocketInfo

__all__ = ["Receiver", "bad_request_reply"]

# header names (any case, compact forms) copied into a 400 for a broken request
_COPY = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To",
         "call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq"}


_BAD_REQUEST_REASONS = {400: "Bad Request", 505: "Version Not Supported",
                        513: "Message Too Large"}


def bad_request_reply(data: bytes, error: ParseError) -> tuple[bytes, Any] | None:
    """A reply for a request that does not parse, and the Via to send it by.

    None when the message is not a request, is an ACK, or lacks the
    headers a reply needs (a Via and a CSeq): then it can only be dropped.
    """
    text = data.decode("latin-1")
    head, _, _ = text.partition("\r\n\r\n") if "\r\n\r\n" in text else text.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    first = lines[0].split(" ")
    if len(first) != 3 or first[0].upper().startswith("SIP/") or first[0] == "ACK":
        return None
    copied: list[str] = []
    top_via = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        canon = _COPY.get(name.strip().lower())
        if canon is None:
            continue
        value = value.strip()
        if canon == "Via" and top_via is None:
            try:
                top_via = parse_via(value)[0]
            except (ParseError, IndexError, ValueError):
                return None
        copied.append(f"{canon}: {value}")
    if top_via is None or not any(c.startswith("CSeq:") for c in copied):
        return None
    code = error.status if error.status in _BAD_REQUEST_REASONS else 400
    out = f"SIP/2.0 {code} {_BAD_REQUEST_REASONS[code]}\r\n" + "".join(c + "\r\n" for c in copied)
    out += "Content-Length: 0\r\n\r\n"
    return out.encode("latin-1"), top_via


class Receiver:
    """Per process: runs the routes over each message this process reads."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.routes = rt.routes
        self.has_onreply = rt.routes.has("onreply", None)
        # callbacks run before the script on every request; False drops it
        # (sl absorbs ACKs to its own replies this way)
        self.pre_script: list[Callable[[MsgContext], bool]] = list(rt.pre_script)
        # tm, when loaded, claims replies of its transactions: True = handled
        self.reply_hook: Callable[[MsgContext], bool] | None = rt.reply_hook
        self.stat = rt.stats.core_inc if rt.stats is not None else _no_stat

    def handle(self, data: bytes, ip: str, port: int, rcv: SocketInfo,
               proto: str = "udp", conn: Any = None) -> None:
        """Process one message; never raises."""
        rt = self.rt
        try:
            msg = parse_message(data)
        except ParseError as e:
            self._bad_message(data, e, ip, port, rcv, conn)
            return
        except Exception as e:  # a parser bug must not take the worker down
            rt.log(L_ERR, f"receive: cannot parse message from {ip}:{port}: {e!r}")
            return
        ctx = MsgContext(rt, msg, src_ip=ip, src_port=port, proto=proto, rcv=rcv,
                         conn=conn or 0)
        ctx.msg_id = rt.next_msg_id()
        try:
            if msg.is_request:
                self._request(ctx)
            else:
                self._reply(ctx)
        except Exception as e:  # anything a route or module let through
            rt.log(L_ERR, f"receive: error while handling a message from {ip}:{port}: {e!r}")

    # ------------------------------------------------------------ requests

    def _request(self, ctx: MsgContext) -> None:
        self.stat("rcv_requests")
        for cb in self.pre_script:
            if not cb(ctx):
                return
        self.routes.run("request", None, ctx)
        if ctx.stop == RUN_DROP:
            self.stat("drop_requests")

    # ------------------------------------------------------------ replies

    def _reply(self, ctx: MsgContext) -> None:
        self.stat("rcv_replies")
        if self.has_onreply:
            self.routes.run("onreply", None, ctx)
            if ctx.stop == RUN_DROP and ctx.msg.status < 200:
                self.rt.log(L_DBG, "receive: provisional reply dropped by onreply_route")
                self.stat("drop_replies")
                return
        if self.reply_hook is not None and self.reply_hook(ctx):
            return
        if forward_reply(ctx) > 0:
            self.stat("fwd_replies")
        else:
            self.stat("drop_replies")

    # ------------------------------------------------------------ bad input

    def _bad_message(self, data: bytes, e: ParseError, ip: str, port: int,
                     rcv: SocketInfo, conn: Any = None) -> None:
        rt = self.rt
        self.stat("bad_msg_hdr")
        rt.log(L_WARN, f"receive: bad message from {ip}:{port}: {e}")
        answer = bad_request_reply(data, e)
        if answer is None:
            rt.log(L_DBG, "receive: not answered (a reply, an ACK, or no usable Via/CSeq)")
            return
        if rt.transport is None:
            return
        reply, via = answer
        # answered as any local reply: to the source address, on the socket
        # and connection it came in on (1.6 itself drops a broken request)
        route = reply_destination(rt, via, source=(ip, port), proto=rcv.proto, conn=conn or 0)
        if route is None:
            return
        if route.conn:
            rt.transport.send(rcv, route.dest, reply, conn=route.conn)
        else:
            rt.transport.send(rcv, route.dest, reply)


def _no_stat(name: str, n: int = 1) -> None:
    """Statistics are off (no shared memory, e.g. in unit tests)."""

