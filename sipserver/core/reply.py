"""Stateless local replies: what 1.6's sl module and core do for one reply.

`send_stateless_reply` builds a reply with the 1.6 layout
(`sip.builders.build_reply`), adds what 1.6 adds around it (the sl To-tag,
the reply lumps a script queued with `append_to_reply`/`append_time`, the
destination set as Contact for 3xx, Server and Warning headers) and sends
it from the socket the request came in on to where 1.6 sends replies.

Also here: 1.6's internal error codes and `err2reason` (for
`sl_reply_error`), and the ACK filter that swallows the ACKs answering our
own stateless replies.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..sip.builders import build_reply, format_ip
from ..sip.errors import ParseError
from .errors import (
    E_BAD_ADDRESS,
    E_BAD_REQ,
    E_BAD_TO,
    E_BAD_TUPEL,
    E_BAD_URI,
    E_EXEC,
    E_IP_BLOCKED,
    E_Q_DEC_MISSING,
    E_Q_EMPTY,
    E_Q_INV_CHAR,
    E_Q_TOO_BIG,
    E_SEND,
    E_TOO_MANY_BRANCHES,
)
from .replydest import ReplyRoute
from .replydest import reply_destination as compute_reply_destination
from .runtime import L_DBG, L_ERR, Destination

if TYPE_CHECKING:
    from ..sip.headers import Via
    from .context import MsgContext

# The error codes live in core/errors.py; err2reason below maps them to replies.


# ser error -> (reason text, SIP code); None = the code is -ser_error itself.
_ERR_REASONS: dict[int, tuple[str, int | None]] = {
    E_IP_BLOCKED: ("Filtered destination", None),
    E_SEND: ("Send failed", None),
    E_BAD_ADDRESS: ("Unresolvable destination", None),
    E_BAD_REQ: ("Bad Request", None),
    E_BAD_URI: ("Bad URI", None),
    E_BAD_TUPEL: ("Transaction tuple incomplete", 400),
    E_BAD_TO: ("Bad To", 400),
    E_EXEC: ("Error in external logic", 500),
    E_TOO_MANY_BRANCHES: ("Forking capacity exceeded", 500),
    E_Q_INV_CHAR: ("Invalid character in q parameter", 400),
    E_Q_EMPTY: ("Empty q parameter", 400),
    E_Q_TOO_BIG: ("q parameter too big", 400),
    E_Q_DEC_MISSING: ("Decimal part missing in q", 400),
}


def err2reason(ser_error: int, signature: str = "SL") -> tuple[int, str]:
    """1.6's err2reason_phrase: (SIP code, "text (N/SIGNATURE)") for an error code.

    Anything not listed (E_UNSPEC, out of memory, ...) is a 500
    "Server error occurred", as in a 1.6 release build.
    """
    text, code = _ERR_REASONS.get(ser_error, ("Server error occurred", 500))
    if code is None:
        code = -ser_error
    return code, f"{text} ({-ser_error}/{signature})"[:127]


# ---------------------------------------------------------------- the sl To-tag

SL_TAG_SIGNATURE = "OpenSIPS-stateless"
SL_RPL_WAIT_TIME = 2  # seconds during which ACKs to our replies are absorbed


def _ccitt_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CCITT = _ccitt_table()


def crc_suffix(parts: list[str]) -> str:
    """1.6's crcitt_string_array: CRC-CCITT (reflected 0x8408, init 0xFFFF,
    complemented) over the strings, printed as 4 hex digits lowest nibble
    first, padded with '0'."""
    crc = 0xFFFF
    for s in parts:
        for b in s.encode("latin-1", "replace"):
            crc = _CCITT[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc = ~crc & 0xFFFF
    digits = []
    while crc:
        digits.append("0123456789abcdef"[crc & 0xF])
        crc >>= 4
    out = "".join(digits) or "0"
    return out.ljust(4, "0")


@lru_cache(maxsize=64)
def _tag_prefix(address: str, port: str) -> str:
    # MD5StringArray trims each piece; none of these has spaces anyway.
    data = (SL_TAG_SIGNATURE + address.strip() + port.strip()).encode("latin-1", "replace")
    return hashlib.md5(data).hexdigest()


def _first_socket(ctx: MsgContext) -> Any:
    """1.6's get_first_socket: the first UDP listener, else TCP, TLS, SCTP."""
    sockets = list(getattr(ctx.rt, "sockets", None) or ())
    for proto in ("udp", "tcp", "tls", "sctp"):
        for s in sockets:
            if s.proto == proto:
                return s
    return sockets[0] if sockets else None


def _via_port_text(msg: Any, via: Via) -> str:
    """The port of the top Via as written (1.6 hashes port_str, not the number)."""
    if via.port is None:
        return ""
    value = msg.index["via"][0].value
    m = re.search(r"([0-9]+)[ \t\r\n]*\Z", value[via.start : via.hostport_end])
    return m.group(1) if m else str(via.port)


def sl_totag(ctx: MsgContext) -> str:
    """The To-tag 1.6 sl puts in a stateless reply to this request.

    `<md5>.<crc>`: the 32 hex digits are the MD5 of "OpenSIPS-stateless" +
    the address + the port of the first listening socket (UDP first; IPv6
    in brackets), so they are fixed per instance; the 4 hex digits after
    the dot are the CRC-CCITT of the top Via's host, port (as written) and
    branch, so retransmissions and the matching ACK carry the same tag.
    """
    sock = _first_socket(ctx)
    if sock is None:
        prefix = _tag_prefix("", "")
    else:
        prefix = _tag_prefix(format_ip(sock.ip), str(sock.port))
    msg = ctx.msg
    via = msg.via1
    parts = [via.host, _via_port_text(msg, via)]
    if via.param("branch") is not None:
        parts.append(via.branch or "")
    return f"{prefix}.{crc_suffix(parts)}"


# ---------------------------------------------------------------- reply lumps


def pending_reply_lumps(ctx: MsgContext) -> list[str]:
    """The header text queued for every local reply to this message
    (1.6's msg->reply_lump: textops append_to_reply, append_time)."""
    lumps = ctx.reply_lumps
    if lumps is None:  # a context made without the list
        lumps = ctx.reply_lumps = []
    return lumps


def add_reply_lump(ctx: MsgContext, text: str) -> bool:
    """Queue header text for the local replies (1.6 add_lump_rpl LUMP_RPL_HDR).

    The text goes in as it is (the caller supplies CRLF); 1.6 refuses an
    empty lump, so does this.
    """
    if not text:
        return False
    pending_reply_lumps(ctx).append(text)
    return True


def _q_text(q: int) -> str:
    """1.6 q2str: 1000 -> "1", 0 -> "0", 500 -> "0.5", 25 -> "0.025"."""
    if q >= 1000:
        return "1"
    if q <= 0:
        return "0"
    return ("0." + f"{q:03d}").rstrip("0")


def dset_contact(ctx: MsgContext) -> str | None:
    """1.6 print_dset: `Contact:` with the destination set, for 3xx replies.

    The R-URI is listed only when the script rewrote it; a URI carrying a q
    value is written `<uri>;q=x`.
    """
    items = []
    if ctx.new_uri is not None:
        items.append((ctx.new_uri, ctx.q))
    for b in ctx.branches:
        items.append((b.uri, b.q))
    if not items:
        return None
    parts = [uri if q is None else f"<{uri}>;q={_q_text(q)}" for uri, q in items]
    return "Contact: " + ", ".join(parts) + "\r\n"


# ---------------------------------------------------------------- destination


def reply_route(ctx: MsgContext) -> ReplyRoute | None:
    """Where a local reply to the request in `ctx` goes, and on which connection
    (`replydest.reply_destination` for a request we received; None: no Via)."""
    proto = ctx.rcv.proto if ctx.rcv is not None else ctx.proto
    return compute_reply_destination(ctx.rt, ctx.msg.via1, source=(ctx.src_ip, ctx.src_port),
                                     proto=proto, conn=ctx.conn or 0,
                                     force_rport=ctx.force_rport)


def reply_destination(ctx: MsgContext) -> Destination | None:
    """The address a local reply to the request in `ctx` goes to (see `reply_route`)."""
    route = reply_route(ctx)
    return route.dest if route is not None else None


def warning_header(ctx: MsgContext) -> str:
    """The 1.6 `sip_warning` header (Warning: 392 ... "Noisy feedback tells: ...")."""
    msg = ctx.msg
    sock = ctx.rcv
    name = format_ip(sock.ip) if sock is not None else ""
    port = str(sock.port) if sock is not None else ""
    in_uri = msg.ruri_text
    out_uri = ctx.ruri
    via_cnt = len(msg.headers_named("via"))
    return (
        f'Warning: 392 {name}:{port} "Noisy feedback tells: pid={os.getpid()}'
        f" req_src_ip={ctx.src_ip} req_src_port={ctx.src_port} in_uri={in_uri}"
        f' out_uri={out_uri} via_cnt=={via_cnt}"'
    )


# ---------------------------------------------------------------- sending

# Until when (monotonic seconds) an ACK may answer one of our replies. 1.6
# keeps this in shared memory; here it is per process.
_sl_deadline = 0.0


def send_stateless_reply(
    ctx: MsgContext,
    code: int,
    reason: str,
    *,
    to_tag: str | None = None,
    extra_headers: str = "",
    body: str = "",
) -> int:
    """Build and send a stateless reply to the request in `ctx` (1.6 sl).

    `to_tag` None means the sl rule: for code >= 180 and a To without a tag
    the sl tag (see `sl_totag`) is added. An explicit tag is added, or
    replaces the To tag; "" adds none. `extra_headers` (CRLF-terminated
    lines) go after the queued reply lumps; for 3xx the destination set
    follows as Contact. Returns 1 when sent, -1 on failure and 0 (which
    stops the script) for an ACK, which is never answered.
    """
    global _sl_deadline
    msg = ctx.msg
    if not msg.is_request:
        ctx.rt.log(L_ERR, "sl: cannot reply to a reply")
        return -1
    if msg.method.upper() == "ACK":
        return 0
    if not 100 <= code <= 699:
        ctx.rt.log(L_ERR, f"sl: bad reply code {code}")
        return -1
    route = reply_route(ctx)
    if route is None:  # no Via to answer by (logged)
        return -1
    headers = "".join(pending_reply_lumps(ctx)) + extra_headers
    if 300 <= code < 400:
        contact = dset_contact(ctx)
        if contact:
            headers += contact
    tag: str | None
    if to_tag is None:
        tag = sl_totag(ctx) if code >= 180 and not msg.to.tag else None
    else:
        tag = to_tag or None
    config = ctx.rt.config
    server = config.get("server_header") if config.get("server_signature") else None
    warning = warning_header(ctx) if config.get("sip_warning") else None
    try:
        data = build_reply(
            msg, code, reason,
            to_tag=tag,
            source=(ctx.src_ip, ctx.src_port),
            force_rport=ctx.force_rport,
            headers=headers,
            body=body,
            server_header=server,
            warning=warning,
        )
    except (ParseError, ValueError) as e:
        ctx.rt.log(L_ERR, f"sl: response building failed: {e}")
        return -1
    transport = ctx.rt.transport
    if transport is None:
        ctx.rt.log(L_ERR, "sl: no transport to send the reply")
        return -1
    dest = route.dest
    sock = ctx.rcv if ctx.rcv is not None else transport.choose_socket(dest)
    if sock is None:
        ctx.rt.log(L_ERR, f"sl: no sending socket found for proto {dest.proto}")
        return -1
    if route.conn:
        # 1.6: the reply goes back on the connection the request came in on
        sent = transport.send(sock, dest, data, conn=route.conn)
    else:
        sent = transport.send(sock, dest, data)
    if not sent:
        ctx.rt.log(L_ERR, f"sl: sending the reply to {dest.ip}:{dest.port} failed")
        return -1
    _sl_deadline = time.monotonic() + SL_RPL_WAIT_TIME
    return 1


def is_local_ack(ctx: MsgContext) -> bool:
    """1.6 sl_filter_ACK: is this ACK the answer to one of our stateless replies?

    True (the ACK is to be dropped before the script) only within 2 s of the
    last stateless reply, when the To-tag equals the sl tag this ACK's top
    Via would get.
    """
    msg = ctx.msg
    if not msg.is_request or msg.method.upper() != "ACK":
        return False
    if time.monotonic() >= _sl_deadline:
        ctx.rt.log(L_DBG, "sl: too late to be a local ACK")
        return False
    tag = msg.to.tag
    if not tag or len(tag) != 37:
        return False
    return tag == sl_totag(ctx)
