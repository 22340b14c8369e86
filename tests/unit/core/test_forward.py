"""Stateless forwarding (core forward()/send()): next hop, our Via, received/
rport, R-URI and path on the wire, DNS fail-over, return codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sipserver.core.context import MsgContext
from sipserver.core.forward import (
    E_BAD_ADDRESS,
    E_BAD_URI,
    E_FWD_FAILED,
    forward_request,
    next_hop,
    parse_phostport,
    send_to,
)
from sipserver.core.runtime import Destination, RecordingTransport, Runtime, SocketInfo
from sipserver.sip.message import parse_message

REQ = (
    "OPTIONS sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKup1{rport}\r\n"
    "Via: SIP/2.0/UDP 10.0.0.99;branch=z9hG4bKup0\r\n"
    "From: <sip:alice@example.org>;tag=a\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 7 OPTIONS\r\n"
    "{extra}"
    "Content-Length: 0\r\n\r\n"
)


def make_ctx(*, rport: str = "", extra: str = "", src: tuple[str, int] = ("10.0.0.1", 5062),
             transport=None, config=None, sockets=None) -> MsgContext:
    data = REQ.format(rport=rport, extra=extra).encode()
    rt = Runtime(transport=transport or RecordingTransport(), config=config,
                 sockets=sockets, logger=lambda lev, text: None)
    return MsgContext(rt, parse_message(data), src_ip=src[0], src_port=src[1])


def sent(ctx: MsgContext) -> list[tuple[SocketInfo, Destination, str]]:
    return [(s, d, b.decode()) for s, d, b in ctx.rt.transport.sent]


def lines(ctx: MsgContext, i: int = 0) -> list[str]:
    return sent(ctx)[i][2].split("\r\n")


# ------------------------------------------------------------------ parse_phostport


@pytest.mark.parametrize(
    ("text", "expected"),
    [("host", (None, "host", None)),
     ("host:5070", (None, "host", 5070)),
     ("tcp:host", ("tcp", "host", None)),
     ("TLS:host:5071", ("tls", "host", 5071)),
     ("sctp:1.2.3.4:0", ("sctp", "1.2.3.4", None)),
     ("[::1]", (None, "[::1]", None)),
     ("[::1]:5070", (None, "[::1]", 5070)),
     ("udp:[2001:db8::1]:5080", ("udp", "[2001:db8::1]", 5080))],
)
def test_parse_phostport(text: str, expected: tuple) -> None:
    assert parse_phostport(text) == expected


@pytest.mark.parametrize("text", ["", "h:", "ws:h", "udp:h:70000", "a:b:c:d", "[[::1]]",
                                  "]h", "udp::5060", "[::1"])
def test_parse_phostport_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_phostport(text)


# ------------------------------------------------------------------ next hop


def test_next_hop_prefers_du_then_maddr() -> None:
    ctx = make_ctx()
    assert next_hop(ctx) == (None, "example.com", None, False)
    ctx.new_uri = "sips:bob@example.com:5071;maddr=10.5.5.5;transport=tcp"
    assert next_hop(ctx) == ("tcp", "10.5.5.5", 5071, True)
    ctx.dst_uri = "sip:10.6.6.6:5090;transport=SCTP;lr"
    assert next_hop(ctx) == ("sctp", "10.6.6.6", 5090, False)
    ctx.dst_uri = "sip:x;transport=ws"
    assert next_hop(ctx) == (None, "x", None, False)
    ctx.dst_uri = "tel:+123"
    assert next_hop(ctx) is None


# ------------------------------------------------------------------ the forwarded message


def test_via_on_top_and_no_received_when_source_matches() -> None:
    ctx = make_ctx()
    assert forward_request(ctx) == 1
    out = lines(ctx)
    assert out[0] == "OPTIONS sip:bob@example.com SIP/2.0"
    assert out[1].startswith("Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")
    assert out[2] == "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKup1"
    assert out[3] == "Via: SIP/2.0/UDP 10.0.0.99;branch=z9hG4bKup0"


def test_branch_is_stable_for_retransmissions_and_differs_per_target() -> None:
    a, b = make_ctx(), make_ctx()
    forward_request(a)
    forward_request(b)
    assert lines(a)[1] == lines(b)[1]
    c = make_ctx()
    c.new_uri = "sip:other@example.com"
    forward_request(c)
    assert lines(c)[1] != lines(a)[1]


def test_received_and_rport() -> None:
    ctx = make_ctx(src=("192.0.2.9", 40000))
    forward_request(ctx)
    assert lines(ctx)[2] == "Via: SIP/2.0/UDP 10.0.0.1:5062;received=192.0.2.9;branch=z9hG4bKup1"
    ctx = make_ctx(rport=";rport")
    forward_request(ctx)
    assert lines(ctx)[2] == \
        "Via: SIP/2.0/UDP 10.0.0.1:5062;received=10.0.0.1;branch=z9hG4bKup1;rport=5062"
    ctx = make_ctx(src=("192.0.2.9", 40000))
    ctx.force_rport = True
    forward_request(ctx)
    assert lines(ctx)[2] == \
        "Via: SIP/2.0/UDP 10.0.0.1:5062;received=192.0.2.9;rport=40000;branch=z9hG4bKup1"


def test_local_rport_and_socket_port() -> None:
    transport = RecordingTransport(sockets=[SocketInfo("udp", "10.0.0.5", 5080)])
    ctx = make_ctx(transport=transport)
    ctx.local_rport = True
    forward_request(ctx)
    via = lines(ctx)[1]
    assert via.startswith("Via: SIP/2.0/UDP 10.0.0.5:5080;branch=z9hG4bK")
    assert via.endswith(";rport")


def test_advertised_address_order() -> None:
    # per-message setting, then the global one, then the socket; a socket
    # "as" address beats them all (1.6's via_builder)
    ctx = make_ctx(config={"advertised_address": "glob.example.net"})
    forward_request(ctx)
    assert lines(ctx)[1].startswith("Via: SIP/2.0/UDP glob.example.net;branch=")
    ctx = make_ctx(config={"advertised_address": "glob.example.net", "advertised_port": 5060})
    ctx.adv_address = "msg.example.net"
    forward_request(ctx)
    assert lines(ctx)[1].startswith("Via: SIP/2.0/UDP msg.example.net:5060;branch=")
    ctx = make_ctx()
    ctx.adv_port = 7000
    forward_request(ctx)
    assert lines(ctx)[1].startswith("Via: SIP/2.0/UDP 127.0.0.1:7000;branch=")
    sock = SocketInfo("udp", "10.0.0.5", 5060, adv_host="sock.example.net", adv_port=5060)
    ctx = make_ctx(transport=RecordingTransport(sockets=[sock]))
    ctx.adv_address = "msg.example.net"
    forward_request(ctx)
    assert lines(ctx)[1].startswith("Via: SIP/2.0/UDP sock.example.net:5060;branch=")


def test_ipv6_socket_in_via() -> None:
    ctx = make_ctx(transport=RecordingTransport(sockets=[SocketInfo("udp", "2001:db8::5", 5060)]))
    forward_request(ctx)
    assert lines(ctx)[1].startswith("Via: SIP/2.0/UDP [2001:db8::5];branch=")


def test_rewritten_ruri_goes_on_the_wire_and_destination_follows_it() -> None:
    ctx = make_ctx()
    ctx.new_uri = "sip:bob@10.7.7.7:5099;maddr=10.8.8.8"
    assert forward_request(ctx) == 1
    _, dest, text = sent(ctx)[0]
    assert (dest.proto, dest.ip, dest.port) == ("udp", "10.8.8.8", 5099)
    assert text.startswith("OPTIONS sip:bob@10.7.7.7:5099;maddr=10.8.8.8 SIP/2.0\r\n")


def test_du_is_the_next_hop_and_ruri_stays() -> None:
    ctx = make_ctx()
    ctx.dst_uri = "sip:edge.example.net:5070;transport=tcp;lr"
    assert forward_request(ctx) == 1
    _, dest, text = sent(ctx)[0]
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "edge.example.net", 5070)
    assert text.startswith("OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP ")


def test_explicit_destination_wins() -> None:
    ctx = make_ctx()
    ctx.dst_uri = "sip:ignored"
    assert forward_request(ctx, ("tcp", "10.1.1.1", 5090)) == 1
    dest = sent(ctx)[0][1]
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "10.1.1.1", 5090)


def test_path_becomes_a_route_header() -> None:
    ctx = make_ctx()
    ctx.path = "<sip:edge.example.net;lr>"
    forward_request(ctx)
    out = lines(ctx)
    assert out[4] == "Route: <sip:edge.example.net;lr>"  # right after the last Via
    assert out[5].startswith("From:")
    ctx = make_ctx(extra="Route: <sip:old;lr>\r\n")
    ctx.path = "<sip:p1;lr>,<sip:p2;lr>"
    forward_request(ctx)
    out = lines(ctx)
    i = out.index("Route: <sip:old;lr>")
    assert out[i - 1] == "Route: <sip:p1;lr>,<sip:p2;lr>"


def test_script_lumps_are_kept_and_forwarding_lumps_are_not() -> None:
    ctx = make_ctx()
    ctx.msg.lumps.add_header("X-Script: 1")
    assert forward_request(ctx) == 1
    assert forward_request(ctx) == 1
    first, second = sent(ctx)[0][2], sent(ctx)[1][2]
    assert first == second
    assert first.count("Via: SIP/2.0/UDP 127.0.0.1") == 1
    assert "X-Script: 1\r\n" in first
    assert ctx.msg.lumps.new_ruri is None
    assert len(ctx.msg.lumps) == 1


def test_forced_socket_is_used() -> None:
    forced = SocketInfo("udp", "10.0.0.77", 5090)
    ctx = make_ctx()
    ctx.force_socket = forced
    forward_request(ctx)
    sock, _, text = sent(ctx)[0]
    assert sock is forced
    assert "\r\nVia: SIP/2.0/UDP 10.0.0.77:5090;branch=" in text


# ------------------------------------------------------------------ fail-over and errors


@dataclass
class MultiTransport:
    """Resolves every name to two addresses; sending to the first fails."""

    fail_ips: set[str] = field(default_factory=lambda: {"10.9.0.1"})
    sock: SocketInfo | None = field(default_factory=lambda: SocketInfo("udp", "10.0.0.5", 5060))
    sent: list[tuple[SocketInfo, Destination, bytes]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)

    def resolve(self, host, port, proto, is_sips=False):
        if host == "nowhere.invalid":
            return []
        return [Destination(proto or "udp", "10.9.0.1", port or 5060),
                Destination(proto or "udp", "10.9.0.2", port or 5060)]

    def choose_socket(self, dest, forced=None):
        return forced or self.sock

    def send(self, sock, dest, data):
        self.attempts.append(dest.ip)
        if dest.ip in self.fail_ips:
            return False
        self.sent.append((sock, dest, data))
        return True


def test_dns_failover_tries_the_next_address() -> None:
    t = MultiTransport()
    ctx = make_ctx(transport=t)
    assert forward_request(ctx) == 1
    assert t.attempts == ["10.9.0.1", "10.9.0.2"]
    assert t.sent[0][1].ip == "10.9.0.2"


def test_every_send_failing_gives_minus_1() -> None:
    t = MultiTransport(fail_ips={"10.9.0.1", "10.9.0.2"})
    assert forward_request(make_ctx(transport=t)) == E_FWD_FAILED == -1


def test_no_socket_gives_minus_1() -> None:
    t = MultiTransport(sock=None)
    assert forward_request(make_ctx(transport=t)) == -1
    assert t.attempts == []


def test_unresolvable_and_bad_uri() -> None:
    t = MultiTransport()
    ctx = make_ctx(transport=t)
    ctx.new_uri = "sip:bob@nowhere.invalid"
    assert forward_request(ctx) == E_BAD_ADDRESS == -476
    ctx.new_uri = "definitely not a uri"
    assert forward_request(ctx) == E_BAD_URI == -475
    assert send_to(ctx, (None, "nowhere.invalid", None)) == -476


def test_no_transport() -> None:
    ctx = make_ctx()
    ctx.rt.transport = None
    assert forward_request(ctx) == -1
    assert send_to(ctx, (None, "h", None)) == -1


# ------------------------------------------------------------------ send()


def test_send_to_sends_the_received_bytes_ignoring_rewrites_and_forced_socket() -> None:
    ctx = make_ctx()
    ctx.new_uri = "sip:x@y"
    ctx.force_socket = SocketInfo("udp", "10.0.0.77", 5090)
    ctx.msg.lumps.add_header("X-Script: 1")
    assert send_to(ctx, ("tcp", "10.2.2.2", None)) == 1
    sock, dest, data = ctx.rt.transport.sent[0]
    assert data == ctx.msg.buf
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "10.2.2.2", 5060)
    assert sock is not ctx.force_socket


def test_send_to_failover() -> None:
    t = MultiTransport()
    ctx = make_ctx(transport=t)
    assert send_to(ctx, (None, "h", 5070)) == 1
    assert t.attempts == ["10.9.0.1", "10.9.0.2"]

