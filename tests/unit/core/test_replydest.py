"""Where replies go (core/replydest.py), asserted on what the transport sends.

Three senders share one computation: a local stateless reply (sl), a reply
relayed statelessly along the second Via, and the 400 for a request that
does not parse. Each edge case the docstring of `reply_destination`
decides is checked here: rport with and without a value, force_rport,
received, maddr, a Via host that is a name (with a real DNS server on
loopback for the relayed case), TCP connections, and no Via at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from sipserver.core.context import MsgContext
from sipserver.core.dns import SipResolver
from sipserver.core.errors import E_BAD_ADDRESS
from sipserver.core.receive import Receiver
from sipserver.core.relay import conn_id_param, forward_reply
from sipserver.core.reply import send_stateless_reply
from sipserver.core.replydest import reply_destination
from sipserver.core.runtime import Destination, SocketInfo
from sipserver.sip.message import dummy_request
from sipserver.testing import ScriptRunner
from tests.dnsserver import DnsTestServer

SRC = ("192.0.2.7", 40000)
LISTEN = "listen=udp:127.0.0.1:5060\nlisten=tcp:127.0.0.1:5060\n"


def request(via: str, cseq: str = "1 OPTIONS") -> bytes:
    return (f"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: {via}\r\n"
            "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
            f"Call-ID: rd-1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()


def reply(via2: str) -> bytes:
    return ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours;i=4321\r\n"
            f"Via: {via2}\r\n"
            "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            "Call-ID: rd-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


class NoDns:
    """A resolver that must not be asked."""

    last_error = ""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def resolve(self, host: str, *a: Any) -> list[Destination]:
        self.asked.append(host)
        return []


def sl_runner(script: str = 'sl_send_reply("404", "Not Here");') -> ScriptRunner:
    r = ScriptRunner(LISTEN + "route { " + script + " }", modules=["sl"])
    r.transport.resolver = NoDns()
    return r


def tcp_socket(r: ScriptRunner) -> SocketInfo:
    return next(s for s in r.transport.sockets if s.proto == "tcp")


# ---------------------------------------------------------------- local replies

LOCAL = [
    # (top Via, where the reply goes)
    ("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa", ("udp", "192.0.2.7", 5070)),
    ("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa", ("udp", "192.0.2.7", 5060)),
    # rport without a value: the source port (RFC 3581)
    ("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKa", ("udp", "192.0.2.7", 40000)),
    # a value someone else wrote: still the source port (1.6)
    ("SIP/2.0/UDP 10.0.0.1:5070;rport=1234;branch=z9hG4bKa", ("udp", "192.0.2.7", 40000)),
    # received without rport: ignored, the source IP and the sent-by port
    ("SIP/2.0/UDP 10.0.0.1:5070;received=10.9.9.9;branch=z9hG4bKa", ("udp", "192.0.2.7", 5070)),
    # maddr: ignored for local replies (1.6)
    ("SIP/2.0/UDP 10.0.0.1:5070;maddr=10.8.8.8;branch=z9hG4bKa", ("udp", "192.0.2.7", 5070)),
    # a name as sent-by: never resolved, the source IP is used
    ("SIP/2.0/UDP pbx.example.test:5070;branch=z9hG4bKa", ("udp", "192.0.2.7", 5070)),
    ("SIP/2.0/UDP pbx.example.test;branch=z9hG4bKa", ("udp", "192.0.2.7", 5060)),
    # the Via names TCP but the request came over UDP: UDP
    ("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKa", ("udp", "192.0.2.7", 5070)),
]


@pytest.mark.parametrize(("via", "where"), LOCAL)
def test_local_reply_destination(via: str, where: tuple[str, str, int]) -> None:
    r = sl_runner()
    r.request(request(via), src=SRC)
    (sock, dest, data), = r.sent
    assert data.startswith(b"SIP/2.0 404 Not Here\r\n")
    assert dest == Destination(*where)
    assert sock is r.transport.sockets[0]  # the socket the request came in on
    assert r.transport.conns == [None]
    assert r.transport.resolver.asked == []


def test_force_rport_sends_to_the_source_port() -> None:
    r = sl_runner('force_rport(); sl_send_reply("404", "Not Here");')
    r.request(request("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa"), src=SRC)
    assert r.sent[0][1] == Destination("udp", "192.0.2.7", 40000)


def test_ipv6_source_without_brackets() -> None:
    r = sl_runner()
    r.request(request("SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKa"), src=("[2001:db8::1]", 6000))
    assert r.sent[0][1] == Destination("udp", "2001:db8::1", 5070)


@pytest.mark.parametrize(("via", "port"), [
    ("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKa", 5070),
    ("SIP/2.0/TCP 10.0.0.1:5070;rport;branch=z9hG4bKa", 40000),
])
def test_local_reply_over_tcp_takes_the_request_connection(via: str, port: int) -> None:
    r = sl_runner()
    tcp = tcp_socket(r)
    r.request(request(via), src=SRC, proto="tcp", rcv=tcp, conn=17)
    (sock, dest, _), = r.sent
    # connection 17 first; `dest` is where a new connection goes if it closed
    assert sock is tcp and dest == Destination("tcp", "192.0.2.7", port)
    assert r.transport.conns == [17]


def test_local_reply_without_a_via_is_not_sent() -> None:
    r = sl_runner()
    ctx = r.context(dummy_request(), src=("", 0))
    assert send_stateless_reply(ctx, 404, "Not Here") == -1
    assert r.sent == []
    assert "no Via" in r.log_text()


def test_the_function_without_a_via() -> None:
    r = sl_runner()
    assert reply_destination(r.rt, None, source=SRC) is None
    assert reply_destination(r.rt, None) is None


# ---------------------------------------------------------------- relayed replies

RELAYED = [
    # (second Via, where the reply goes)
    ("SIP/2.0/UDP 10.0.0.1:5070;received=192.0.2.7;rport=40000;branch=z9hG4bKb",
     ("udp", "192.0.2.7", 40000)),
    # received without rport: received and the sent-by port
    ("SIP/2.0/UDP 10.0.0.1:5070;received=192.0.2.7;branch=z9hG4bKb", ("udp", "192.0.2.7", 5070)),
    ("SIP/2.0/UDP 10.0.0.1;received=192.0.2.7;branch=z9hG4bKb", ("udp", "192.0.2.7", 5060)),
    # rport without a value (nobody filled it in): as if absent
    ("SIP/2.0/UDP 10.0.0.1:5070;rport;received=192.0.2.7;branch=z9hG4bKb",
     ("udp", "192.0.2.7", 5070)),
    ("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKb", ("udp", "10.0.0.1", 5070)),
    # an rport value without received: the sent-by host with that port (1.6)
    ("SIP/2.0/UDP 10.0.0.1:5070;rport=40000;branch=z9hG4bKb", ("udp", "10.0.0.1", 40000)),
    # maddr comes before received (1.6); the rport value still applies
    ("SIP/2.0/UDP 10.0.0.1:5070;maddr=10.8.8.8;received=192.0.2.7;rport=40000;branch=z9hG4bKb",
     ("udp", "10.8.8.8", 40000)),
    ("SIP/2.0/UDP 10.0.0.1:5070;maddr=10.8.8.8;branch=z9hG4bKb", ("udp", "10.8.8.8", 5070)),
    ("SIP/2.0/UDP 10.0.0.1;maddr=10.8.8.8;branch=z9hG4bKb", ("udp", "10.8.8.8", 5060)),
    # bad rport values are ignored
    ("SIP/2.0/UDP 10.0.0.1:5070;received=192.0.2.7;rport=abc;branch=z9hG4bKb",
     ("udp", "192.0.2.7", 5070)),
    ("SIP/2.0/UDP 10.0.0.1:5070;received=192.0.2.7;rport=70000;branch=z9hG4bKb",
     ("udp", "192.0.2.7", 5070)),
    # the transport default port for received without a port
    ("SIP/2.0/TLS 10.0.0.1;received=192.0.2.7;branch=z9hG4bKb", ("tls", "192.0.2.7", 5061)),
]


@pytest.mark.parametrize(("via2", "where"), RELAYED)
def test_relayed_reply_destination(via2: str, where: tuple[str, str, int]) -> None:
    r = sl_runner()
    r.transport.resolver = None  # IP literals only: resolved without DNS
    assert forward_reply(r.context(reply(via2), src=("10.1.1.1", 5060))) == 1
    (_, dest, data), = r.sent
    assert dest == Destination(*where)
    assert data.startswith(b"SIP/2.0 200 OK\r\nVia: " + via2.encode())  # ours removed
    if "rport=abc" in via2 or "rport=70000" in via2:
        assert "bad rport value" in r.log_text()


def test_relayed_reply_over_tcp_names_the_connection_of_our_via() -> None:
    r = sl_runner()
    r.transport.resolver = None
    data = reply("SIP/2.0/TCP 10.0.0.1:5070;received=192.0.2.7;rport=40000;branch=z9hG4bKb")
    assert forward_reply(r.context(data, src=("10.1.1.1", 5060))) == 1
    assert r.sent[0][1] == Destination("tcp", "192.0.2.7", 40000)
    assert r.transport.conns == [int(conn_id_param(0x1234)[::-1], 16)]


ZONE = """
$TTL 300
@                IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@                IN NS  ns.test.
ns               IN A   127.0.0.1
pbx              IN A   10.0.0.5
srv              IN A   10.0.0.77
_sip._udp.srv    IN SRV 10 0 5099 pbx.test.
"""


@pytest.fixture(scope="module")
def dns_server() -> Any:
    with DnsTestServer(ZONE) as srv:
        yield srv


@pytest.mark.parametrize(("via2", "where"), [
    # a port: the A record only
    ("SIP/2.0/UDP pbx.test:5070;branch=z9hG4bKb", ("udp", "10.0.0.5", 5070)),
    # no port: SRV of the Via's transport first
    ("SIP/2.0/UDP srv.test;branch=z9hG4bKb", ("udp", "10.0.0.5", 5099)),
    # no SRV for that transport: the A record and the default port
    ("SIP/2.0/TCP srv.test;branch=z9hG4bKb", ("tcp", "10.0.0.77", 5060)),
    # an rport value: no SRV, the A record with that port
    ("SIP/2.0/UDP srv.test;rport=7000;branch=z9hG4bKb", ("udp", "10.0.0.77", 7000)),
    # received: never resolved through the host name
    ("SIP/2.0/UDP srv.test;received=192.0.2.7;branch=z9hG4bKb", ("udp", "192.0.2.7", 5060)),
])
def test_relayed_reply_to_a_via_host_name(dns_server: DnsTestServer, via2: str,
                                          where: tuple[str, str, int]) -> None:
    dns_server.reset_counts()
    r = sl_runner()
    r.transport.resolver = SipResolver(nameservers=[dns_server.address], hosts_file=None,
                                       timeout=1, retries=1)
    assert forward_reply(r.context(reply(via2), src=("10.1.1.1", 5060))) == 1
    assert r.sent[0][1] == Destination(*where)
    if "received" in via2:
        assert dns_server.total() == 0


def test_relayed_reply_to_a_name_that_does_not_resolve(dns_server: DnsTestServer) -> None:
    r = sl_runner()
    r.transport.resolver = SipResolver(nameservers=[dns_server.address], hosts_file=None,
                                       timeout=1, retries=1)
    ctx = r.context(reply("SIP/2.0/UDP nowhere.test:5070;branch=z9hG4bKb"), src=("10.1.1.1", 5060))
    assert forward_reply(ctx) == E_BAD_ADDRESS
    assert r.sent == []
    assert "cannot resolve nowhere.test" in r.log_text()


# ---------------------------------------------------------------- 400 for a broken request

BAD_CSEQ = "x OPTIONS"


def receive(r: ScriptRunner, data: bytes, proto: str = "udp", conn: int = 0) -> None:
    rcv = tcp_socket(r) if proto == "tcp" else r.transport.sockets[0]
    Receiver(r.rt).handle(data, SRC[0], SRC[1], rcv, proto=proto, conn=conn)


@pytest.mark.parametrize(("via", "where"), [
    ("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKc", ("udp", "192.0.2.7", 5070)),
    ("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKc", ("udp", "192.0.2.7", 40000)),
    ("SIP/2.0/UDP 10.0.0.1;received=10.9.9.9;maddr=10.8.8.8;branch=z9hG4bKc",
     ("udp", "192.0.2.7", 5060)),
    ("SIP/2.0/UDP pbx.example.test:5070;branch=z9hG4bKc", ("udp", "192.0.2.7", 5070)),
    # a TCP Via on a UDP request: answered over UDP, where it came from
    ("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKc", ("udp", "192.0.2.7", 5070)),
])
def test_400_for_a_broken_request_goes_where_a_local_reply_goes(
        via: str, where: tuple[str, str, int]) -> None:
    r = sl_runner()
    receive(r, request(via, BAD_CSEQ))
    (sock, dest, data), = r.sent
    assert data.startswith(b"SIP/2.0 400 Bad Request\r\n")
    assert dest == Destination(*where) and sock is r.transport.sockets[0]
    # the same request, well formed, is answered by sl at the same address
    r.clear()
    receive(r, request(via))
    assert r.sent[0][2].startswith(b"SIP/2.0 404 ") and r.sent[0][1] == Destination(*where)


def test_400_over_tcp_takes_the_connection() -> None:
    r = sl_runner()
    receive(r, request("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKc", BAD_CSEQ), "tcp", conn=23)
    (sock, dest, data), = r.sent
    assert data.startswith(b"SIP/2.0 400 ")
    assert sock.proto == "tcp" and dest == Destination("tcp", "192.0.2.7", 5070)
    assert r.transport.conns == [23]


def test_a_broken_request_without_a_via_is_dropped_and_logged() -> None:
    r = sl_runner()
    receive(r, b"OPTIONS sip:bob@example.com SIP/2.0\r\nCSeq: 1 OPTIONS\r\n"
               b"Call-ID: x\r\nContent-Length: 0\r\n\r\n")
    assert r.sent == []
    assert "bad message from 192.0.2.7:40000" in r.log_text()
    assert "not answered" in r.log_text()


def test_tm_server_transaction_replies_use_the_same_rule() -> None:
    r = ScriptRunner(LISTEN + 'route { t_reply("404", "Gone"); }', modules=["sl", "tm"])
    ctx: MsgContext = r.request(request("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKd"),
                                src=SRC)
    assert ctx is not None
    assert r.sent[-1][2].startswith(b"SIP/2.0 404 Gone\r\n")
    assert r.sent[-1][1] == Destination("udp", "192.0.2.7", 40000)
