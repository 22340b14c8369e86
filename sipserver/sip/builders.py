"""Messages a server makes itself: replies, ACK/CANCEL, our own Via.

Formats follow what OpenSIPS 1.6 puts on the wire (see shared/spec/
wire-notes.md): a local reply copies Via/From/Call-ID/CSeq/To (and
Record-Route for 180..299) from the request in their original order and
spelling, then the extra headers, `Server:`, `Content-Length:`; a local
ACK/CANCEL is request line, our Via, From, Call-ID, To, CSeq, Max-Forwards,
Route set, extra headers, `User-Agent:`, `Content-Length: 0`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable

from .errors import ParseError
from .headers import MAGIC_COOKIE
from .lumps import to_wire
from .message import SipMsg

CRLF = "\r\n"


def _ip_equal(a: str, b: str) -> bool:
    """Do two address strings name the same IP (brackets, IPv6 spelling)?"""
    if a == b:  # the common case, and it needs no parsing
        return a.count(".") == 3 or ":" in a
    if ":" not in a and ":" not in b and "[" not in a:
        return False  # two different IPv4 texts (or a name): 1.6 compares the text too
    try:
        return ipaddress.ip_address(a.strip("[]")) == ipaddress.ip_address(b.strip("[]"))
    except ValueError:
        return False


def received_needed(msg: SipMsg, src_ip: str,
                    same_host: Callable[[str, str], bool] | None = None) -> bool:
    """RFC 3261 §18.2.1: the top Via's sent-by differs from the source IP.

    A host name differs unless `same_host(host, ip)` (the `dns`/`rev_dns`
    lookups, done by the caller: this module does no I/O) says it names
    that IP; an existing `received` is always rewritten, as 1.6 does.
    """
    via = msg.via1
    if via.received is not None:
        return True
    host = via.maddr or via.host
    if _ip_equal(host, src_ip):
        return False
    return same_host is None or not same_host(host, src_ip)


def format_ip(ip: str) -> str:
    """An IP as it goes into a received= parameter or a host (IPv6 bracketed)."""
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def _top_via_edits(
    msg: SipMsg, src_ip: str, src_port: int, force_rport: bool,
    same_host: Callable[[str, str], bool] | None = None,
) -> list[tuple[int, int, str]]:
    """(start, end, text) edits of the top Via adding received/rport.

    Shared by the local-reply and the forwarding paths: received goes right
    after host:port (over an existing one), rport gets its value in place or
    is added after received.
    """
    via = msg.via1
    base = msg.index["via"][0].value_start
    edits: list[tuple[int, int, str]] = []
    rport = via.param("rport")
    add_rport = force_rport or rport is not None
    anchor = base + via.hostport_end
    if add_rport or received_needed(msg, src_ip, same_host):
        old = via.param("received")
        if old is not None:
            edits.append((base + old.start, base + old.end, ""))
        edits.append((anchor, anchor, f";received={src_ip}"))
    if add_rport:
        if rport is not None:
            edits.append((base + rport.start, base + rport.end, f";rport={src_port}"))
        else:
            edits.append((anchor, anchor, f";rport={src_port}"))
    return edits


def add_received_lumps(msg: SipMsg, src_ip: str, src_port: int, force_rport: bool = False,
                       same_host: Callable[[str, str], bool] | None = None) -> None:
    """Record on a request to be forwarded the received/rport its Via needs."""
    for start, end, text in _top_via_edits(msg, src_ip, src_port, force_rport, same_host):
        msg.lumps.replace(start, end, text)


def _splice(text: str, base: int, edits: list[tuple[int, int, str]]) -> str:
    """Apply (start, end, new) edits, given in message offsets, to `text`
    which starts at message offset `base`."""
    out = []
    cursor = 0
    for start, end, new in sorted(edits, key=lambda e: e[0]):
        s, e = start - base, end - base
        if s < cursor:
            continue
        out.append(text[cursor:s])
        out.append(new)
        cursor = e
    out.append(text[cursor:])
    return "".join(out)


def build_reply(
    req: SipMsg,
    code: int,
    reason: str,
    *,
    to_tag: str | None = None,
    source: tuple[str, int] | None = None,
    force_rport: bool = False,
    headers: str = "",
    body: str = "",
    server_header: str | None = None,
    warning: str | None = None,
) -> bytes:
    """A reply to `req` built the way 1.6's build_res_buf_from_sip_req does.

    `source` is where the request came from (adds received/rport to the top
    Via); `to_tag` is added to To (or replaces its tag); `headers` are extra
    header lines, each ending in CRLF; `server_header` is a whole header
    line without CRLF (`Server: ...`); `warning` likewise.
    """
    if not req.is_request:
        raise ParseError("cannot reply to a reply")
    if not 100 <= code <= 699:
        raise ValueError(f"bad reply code {code}")
    text = req.text
    out = [f"SIP/2.0 {code} {reason}{CRLF}"]
    via_edits = _top_via_edits(req, source[0], source[1], force_rport) if source else []
    first_via = True
    for h in req.headers:
        key = h.key
        if key == "via":
            line = text[h.start : h.value_end]
            if first_via and via_edits:
                line = _splice(line, h.start, via_edits)
            first_via = False
            out.append(line + CRLF)
        elif key == "record-route":
            if 180 <= code < 300:
                out.append(text[h.start : h.end])
        elif key == "to":
            if to_tag:
                out.append(_to_with_tag(req, h, to_tag))
            else:
                out.append(text[h.start : h.end])
        elif key in ("from", "call-id", "cseq"):
            out.append(text[h.start : h.end])
    out.append(headers)
    if server_header:
        out.append(server_header + CRLF)
    body_bytes = to_wire(body)
    out.append(f"Content-Length: {len(body_bytes)}{CRLF}")
    if warning:
        out.append(warning + CRLF)
    out.append(CRLF)
    return to_wire("".join(out)) + body_bytes


def _to_with_tag(req: SipMsg, h, tag: str) -> str:
    text = req.text
    to = req.to
    p = to.param("tag")
    if p is not None and p.value:
        vstart = h.value_start + p.end - len(p.value)
        return text[h.start : vstart] + tag + text[h.value_start + p.end : h.end]
    return text[h.start : h.value_end] + f";tag={tag}" + text[h.value_end : h.end]


# ---------------------------------------------------------------- Via, branch


def make_branch(msg: SipMsg, index: int = 0, ruri: str | None = None) -> str:
    """A deterministic RFC 3261 branch for a request we forward.

    The same request (a retransmission, or the CANCEL / non-2xx ACK of an
    INVITE, which carry the INVITE's top-Via branch) always gets the same
    branch; another target (`ruri`) or branch index gets another.
    """
    via = msg.via1
    incoming = via.branch
    if incoming and incoming.startswith(MAGIC_COOKIE) and len(incoming) > len(MAGIC_COOKIE):
        key = f"{incoming}|{via.sent_by}"
    else:
        # RFC 2543 peers: identify the transaction by its dialog fields.
        to_tag = msg.to.tag or ""
        from_tag = msg.from_.tag or ""
        key = f"{to_tag}|{from_tag}|{msg.call_id}|{msg.cseq.number}|{via.sent_by}|{msg.ruri_text}"
    if ruri is None:
        ruri = msg.lumps.new_ruri if msg.has_lumps and msg.lumps.new_ruri else msg.ruri_text
    digest = hashlib.md5(f"{key}|{ruri}".encode("latin-1", "replace")).hexdigest()
    return f"{MAGIC_COOKIE}{digest}.{index}"


def make_via(
    transport: str, host: str, port: int | None, branch: str, *, rport: bool = False, params: str = ""
) -> str:
    """Our Via header line (without CRLF): `Via: SIP/2.0/UDP host:port;branch=...`."""
    hostport = format_ip(host) if port is None else f"{format_ip(host)}:{port}"
    line = f"Via: SIP/2.0/{transport.upper()} {hostport};branch={branch}"
    if rport:
        line += ";rport"
    return line + params


def add_via(msg: SipMsg, via_line: str) -> None:
    """Insert our Via above every other Via of a request we forward."""
    msg.lumps.insert_header_before(msg.index["via"][0], via_line)


def remove_top_via(msg: SipMsg) -> None:
    """Delete the top via-parm of a reply (ours) before relaying it.

    A header line holding only that Via goes as a whole; otherwise only the
    first value and its comma go.
    """
    h = msg.index["via"][0]
    vias = h.parsed
    if len(vias) == 1:
        msg.lumps.remove_header(h)
    else:
        msg.lumps.delete(h.value_start + vias[0].start, h.value_start + vias[1].start)


# ---------------------------------------------------------------- ACK, CANCEL


def _local_request(
    sent: SipMsg,
    method: str,
    dialog_src: SipMsg,
    extra_headers: str,
    user_agent: str | None,
) -> bytes:
    """1.6's build_local: request line, our Via, From, Call-ID, To, CSeq,
    Max-Forwards, Route set, extras, User-Agent, Content-Length: 0. From and
    To are copied from `dialog_src` (the request itself, or the reply)."""
    text = sent.text
    via_h = sent.index["via"][0]
    top_via = via_h.parsed[0]
    via_line = text[via_h.start : via_h.value_start] + via_h.value[: top_via.end].rstrip(" \t,")
    callid = sent.index["call-id"][0]
    dtext = dialog_src.text
    to_h = dialog_src.index["to"][0]
    from_h = dialog_src.index["from"][0]
    out = [
        f"{method} {sent.ruri_text} SIP/2.0{CRLF}",
        via_line + CRLF,
        dtext[from_h.start : from_h.end],
        text[callid.start : callid.end],
        dtext[to_h.start : to_h.end],
        f"CSeq: {sent.cseq.number} {method}{CRLF}",
        f"Max-Forwards: 70{CRLF}",
    ]
    out.extend(text[h.start : h.end] for h in sent.headers_named("route"))
    out.append(extra_headers)
    if user_agent:
        out.append(user_agent + CRLF)
    out.append(f"Content-Length: 0{CRLF}{CRLF}")
    return to_wire("".join(out))


def build_cancel(sent: SipMsg, extra_headers: str = "", user_agent: str | None = None) -> bytes:
    """CANCEL for a request we sent (RFC 3261 §9.1): same R-URI, top Via
    (so the same branch), From, To, Call-ID, Route set and CSeq number."""
    if not sent.is_request:
        raise ParseError("CANCEL needs a request")
    return _local_request(sent, "CANCEL", sent, extra_headers, user_agent)


def build_ack(
    sent: SipMsg, reply: SipMsg, extra_headers: str = "", user_agent: str | None = None
) -> bytes:
    """Hop-by-hop ACK for a non-2xx final reply (RFC 3261 §17.1.1.3).

    From and To come from the reply (To carries the UAS tag), the rest from
    the INVITE as we sent it.
    """
    if not sent.is_request or reply.is_request:
        raise ParseError("ACK needs the request sent and its reply")
    return _local_request(sent, "ACK", reply, extra_headers, user_agent)
