"""Stateless request forwarding: the core ``forward()`` and ``send()``.

``forward_request`` does what 1.6's ``forward()`` action does: pick the next
hop (an explicit destination, else ``$du``, else the Request-URI with its
``maddr`` preferred), resolve it through the runtime's `Transport`, choose
the outgoing socket (``force_send_socket`` honoured), then build the
message with our Via on top, ``received``/``rport`` on the old top Via when
needed, the Request-URI as rewritten and the path vector as a Route header,
and send it. DNS fail-over: every address the transport returns is tried
in order until one send succeeds.

``send_to`` is ``send()``: the message exactly as received, no Via, no
rewrites.

The lumps this module adds to the message only exist while the outgoing
bytes are built; the message is left as the script saw it, so a second
``forward()`` (or tm later) does not find our Via already inserted.

Return codes follow 1.6's ``do_action``: 1 sent; ``E_BAD_URI`` (-475) when
the next-hop URI does not parse; ``E_BAD_ADDRESS`` (-476) when it does not
resolve; -1 when no socket fits or every send failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..sip.builders import add_received_lumps, add_via, make_branch, make_via
from ..sip.errors import ParseError
from ..sip.lumps import SendInfo
from ..sip.uri import parse_uri
from .blacklist import is_blocked
from .errors import E_BAD_ADDRESS, E_BAD_URI, E_FWD_FAILED, E_IP_BLOCKED, E_SEND
from .relay import conn_id_param
from .runtime import L_DBG, L_ERR, PROTO_IDS

if TYPE_CHECKING:
    from .context import MsgContext

__all__ = [
    "E_BAD_ADDRESS",
    "E_BAD_URI",
    "E_FWD_FAILED",
    "Dest",
    "build_forwarded",
    "forward_request",
    "next_hop",
    "parse_phostport",
    "send_info",
    "send_to",
]


SIP_PORT = 5060

#: (proto or None, host, port or None) -- a literal ``[proto:]host[:port]``
Dest = tuple[str | None, str, int | None]


def parse_phostport(text: str) -> Dest:
    """``[proto:]host[:port]`` as 1.6 reads a forward()/send() argument.

    Colons inside ``[...]`` (IPv6) do not count. With a single colon the
    part after it decides: a number makes it ``host:port``, anything else
    ``proto:host``. Raises ValueError with the reason.
    """
    first = second = -1
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"too many brackets in {text!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"too many brackets in {text!r}")
        elif ch == ":" and depth == 0:
            if first < 0:
                first = i
            elif second < 0:
                second = i
            else:
                raise ValueError(f"too many colons in {text!r}")
    if not text:
        raise ValueError("empty destination")
    if depth:
        raise ValueError(f"unbalanced brackets in {text!r}")
    if text.endswith(":"):
        raise ValueError(f"too many colons in {text!r}")
    if first < 0:
        return None, text, None
    if second >= 0:
        proto = _proto(text[:first], text)
        port = _port(text[second + 1 :])
        if port is None:
            raise ValueError(f"bad port in {text!r}")
        return proto, _host(text[first + 1 : second], text), port or None
    port = _port(text[first + 1 :])
    if port is None:
        return _proto(text[:first], text), _host(text[first + 1 :], text), None
    return None, _host(text[:first], text), port or None


def _proto(word: str, text: str) -> str:
    proto = word.lower()
    if proto not in PROTO_IDS:
        raise ValueError(f"bad protocol {word!r} in {text!r} (udp, tcp, tls or sctp)")
    return proto


def _port(word: str) -> int | None:
    if not word.isdigit() or not word.isascii():
        return None
    port = int(word)
    return port if port <= 65535 else None


def _host(word: str, text: str) -> str:
    if not word:
        raise ValueError(f"no host in {text!r}")
    return word


def next_hop(ctx: MsgContext) -> tuple[str | None, str, int | None, bool] | None:
    """(proto, host, port, is_sips) of ``$du``, else of the R-URI; None if unparsable.

    ``maddr`` wins over the host, the ``transport`` parameter gives the
    protocol (None when absent or unknown), a ``sips`` URI asks for TLS.
    """
    text = ctx.dst_uri or ctx.ruri
    try:
        uri = parse_uri(text)
    except ParseError:
        return None
    if uri.opaque is not None or not uri.host:
        return None
    transport = uri.transport
    proto = transport if transport in PROTO_IDS else None
    host = uri.maddr or uri.host
    return proto, host, uri.port, uri.scheme == "sips"


def forward_request(ctx: MsgContext, dest: Dest | None = None) -> int:
    """Relay the request statelessly; 1 when sent, else a negative 1.6 code."""
    rt = ctx.rt
    if dest is None:
        hop = next_hop(ctx)
        if hop is None:
            rt.log(L_ERR, f"forward: bad URI <{ctx.dst_uri or ctx.ruri}>, dropping packet")
            return E_BAD_URI
        proto, host, port, sips = hop
    else:
        proto, host, port = dest
        sips = False
    transport = rt.transport
    if transport is None:
        rt.log(L_ERR, "forward: no transport available")
        return E_FWD_FAILED
    addresses = transport.resolve(host, port, proto, sips)
    if not addresses:
        why = getattr(getattr(transport, "resolver", None), "last_error", "") or ""
        rt.log(L_ERR, f"forward: could not resolve hostname \"{host}\"{': ' + why if why else ''}")
        return E_BAD_ADDRESS
    built: dict[tuple[int, str], bytes] = {}
    is_local = getattr(transport, "is_local", None)
    for addr in addresses:
        if is_local is not None and is_local(addr):
            # a stateless proxy sending to itself would loop until Max-Forwards runs out
            rt.log(L_ERR, f"forward: {addr.proto}:{addr.ip}:{addr.port} is this server"
                          " (forwarding loop); not sent")
            ctx.ser_error = E_BAD_ADDRESS
            continue
        sock = transport.choose_socket(addr, ctx.force_socket)
        if sock is None:
            rt.log(L_ERR, f"forward: no listening socket to send {addr.proto} to {addr.ip}")
            continue
        key = (id(sock), addr.proto)
        data = built.get(key)
        if data is None:
            data = built[key] = build_forwarded(ctx, sock, addr.proto)
        if ctx.blacklists and is_blocked(rt.blacklists, ctx.blacklists, addr.proto, addr.ip,
                                         addr.port, data):
            rt.log(L_DBG, f"forward: {addr.proto}:{addr.ip}:{addr.port} blocked by blacklists")
            ctx.ser_error = E_IP_BLOCKED
            continue
        if transport.send(sock, addr, data):
            rt.log(L_DBG, f"forward: sent {len(data)} bytes to {addr.proto}:{addr.ip}:{addr.port}")
            if rt.stats is not None:
                rt.stats.core_inc("fwd_requests")
            return 1
        ctx.ser_error = E_SEND
        rt.log(L_ERR, f"forward: sending to {addr.proto}:{addr.ip}:{addr.port} failed")
    if rt.stats is not None:
        rt.stats.core_inc("drop_requests")
    return E_FWD_FAILED


def send_to(ctx: MsgContext, dest: Dest) -> int:
    """``send()``: the received bytes, unchanged, to `dest` (no forced socket, as in 1.6)."""
    rt = ctx.rt
    transport = rt.transport
    if transport is None:
        rt.log(L_ERR, "send: no transport available")
        return E_FWD_FAILED
    proto, host, port = dest
    addresses = transport.resolve(host, port, proto)
    if not addresses:
        rt.log(L_ERR, f"send: could not resolve hostname \"{host}\"")
        return E_BAD_ADDRESS
    data = ctx.msg.buf
    for addr in addresses:
        sock = transport.choose_socket(addr, None)
        if sock is None:
            continue
        if transport.send(sock, addr, data):
            return 1
    rt.log(L_ERR, f"send: sending to {host} failed")
    return E_FWD_FAILED


# ---------------------------------------------------------------- building


def _sent_by(ctx: MsgContext, sock: Any) -> tuple[str, int | None]:
    """Host and port for our Via, in 1.6's order of preference.

    Address: the socket's ``as`` name, then ``set_advertised_address``,
    then the global ``advertised_address``, then the socket address.
    Port likewise; it is written when the socket port is not 5060 or when
    an advertised port is used.
    """
    cfg = ctx.rt.config
    host = (getattr(sock, "adv_host", None) or ctx.adv_address
            or cfg.get("advertised_address") or sock.ip)
    adv_port = getattr(sock, "adv_port", None) or ctx.adv_port or cfg.get("advertised_port")
    if adv_port:
        return str(host), int(adv_port)
    return str(host), (None if sock.port == SIP_PORT else sock.port)


def send_info(ctx: MsgContext, sock: Any, proto: str) -> SendInfo:
    """What send-time lumps (Record-Route) see when the request leaves
    through `sock` with transport `proto`: that socket, the advertised
    host/port our Via carries, and the receiving socket `ctx.rcv`."""
    host, port = _sent_by(ctx, sock)
    return SendInfo(sock, proto, ctx.rcv, host, port)


def _insert_path(ctx: MsgContext, path: str) -> None:
    """The path vector as a Route header: before the first Route, else
    after the last Via (1.6's insert_path_as_route)."""
    msg = ctx.msg
    line = f"Route: {path}"
    routes = msg.index.get("route")
    if routes:
        msg.lumps.insert_header_before(routes[0], line)
        return
    vias = msg.index.get("via")
    if vias:
        msg.lumps.insert_header_after(vias[-1], line)
    else:
        msg.lumps.insert_header_first(line)


def build_forwarded(ctx: MsgContext, sock: Any, proto: str, branch: str | None = None) -> bytes:
    """The request as it leaves through `sock` with transport `proto`.

    `branch` is the Via branch to use (tm passes its own); by default the
    stateless one (`make_branch`).

    The message's own pending changes (append_hf & co.) are kept; what this
    function adds is taken back out before returning. Send-time lumps
    (record_route's) are computed from `send_info(ctx, sock, proto)`.
    """
    msg = ctx.msg
    lumps = msg.lumps
    saved = lumps.checkpoint()
    try:
        if ctx.path:
            _insert_path(ctx, ctx.path)
        host, port = _sent_by(ctx, sock)
        if branch is None:
            branch = make_branch(msg, 0, ctx.ruri)
        # 1.6 build_req_buf_from_sip_req: a request received over TCP gets
        # `;i=<connection id>` in our Via (before `;rport`), so a relayed
        # reply can go back on that connection
        params = f";i={conn_id_param(ctx.conn)}" if ctx.proto == "tcp" and ctx.conn else ""
        if ctx.local_rport:
            params += ";rport"
        add_via(msg, make_via(proto, host, port, branch, params=params))
        if ctx.src_ip:
            add_received_lumps(msg, ctx.src_ip, ctx.src_port, ctx.force_rport,
                               _dns_same_host(ctx.rt))
        if ctx.new_uri is not None and ctx.new_uri != msg.ruri_text:
            lumps.set_ruri(ctx.new_uri)
        return lumps.apply(send=SendInfo(sock, proto, ctx.rcv, host, port))
    finally:
        lumps.rollback(saved)


def _dns_same_host(rt: Any) -> Any:
    """With `dns`/`rev_dns` on, does a Via host name the source IP (1.6 received_test)?"""
    cfg = rt.config
    dns, rev = cfg.get("dns"), cfg.get("rev_dns")
    resolver = getattr(rt.transport, "resolver", None)
    if not (dns or rev) or resolver is None:
        return None

    def same_host(host: str, ip: str) -> bool:
        if dns and ip in resolver.resolve_host(host):
            return True
        return bool(rev) and host.lower() in (n.lower().rstrip(".") for n in resolver.reverse(ip))

    return same_host
