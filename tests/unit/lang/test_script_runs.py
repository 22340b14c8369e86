"""Whole scripts through the harness: cfg text in, log lines and wire bytes out."""

from __future__ import annotations

import pytest

from sipserver.core.runtime import L_DBG, L_ERR, L_INFO
from sipserver.lang.errors import CfgError
from sipserver.testing import ScriptRunner

INVITE = (
    b"INVITE sip:alice@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Alice <sip:alice@example.com>\r\n"
    b"From: Bob <sip:bob@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@10.0.0.1>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_xlog_formats_levels_and_rc() -> None:
    r = ScriptRunner(r"""route {
    xlog("L_INFO", "m=$rm u=$ru f=$fU null=$avp(s:x) cost=$$5\n");
    $var(rc) = $rc;
    xlog("one arg is L_ERR\n");
    $var(lvl) = 4;
    xlog("$var(lvl)", "debug via pv\n");
    xdbg("xdbg\n");
    log("raw $ru\n");
}""")
    r.request(INVITE, src=("10.0.0.1", 5060))
    assert (L_INFO, "m=INVITE u=sip:alice@example.com f=bob null=<null> cost=$5\n") in r.logs
    assert (L_ERR, "one arg is L_ERR\n") in r.logs
    assert (L_DBG, "debug via pv\n") in r.logs
    assert (L_DBG, "xdbg\n") in r.logs
    assert (L_DBG, "raw $ru\n") in r.logs
    assert r.rt.script_vars["rc"] == -5


def test_bad_pv_in_xlog_format_is_located() -> None:
    with pytest.raises(CfgError) as e:
        ScriptRunner('route {\n    xlog("L_INFO", "x=$nosuch y\\n");\n}', filename="f.cfg")
    (file, line, col, msg), = e.value.errors
    assert (file, line, col) == ("f.cfg", 2, 23) and "$nosuch" in msg


def test_forward_puts_a_via_on_the_wire_and_uses_du() -> None:
    r = ScriptRunner('listen=udp:127.0.0.1:5060\nroute { $du = "sip:192.0.2.9:5080"; forward(); }')
    r.request(INVITE, src=("10.0.0.1", 5060))
    (sock, dest, data), = r.sent
    assert sock.name == "udp:127.0.0.1:5060"
    assert (dest.ip, dest.port) == ("192.0.2.9", 5080)
    text = data.decode()
    assert text.startswith("INVITE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")
    assert "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n" in text


def test_forward_with_rewritten_ruri_and_received() -> None:
    r = ScriptRunner('route { rewritehostport("192.0.2.7:5090"); forward(); }')
    r.request(INVITE, src=("10.9.9.9", 5062))
    (_, dest, data), = r.sent
    text = data.decode()
    assert (dest.ip, dest.port) == ("192.0.2.7", 5090)
    assert text.startswith("INVITE sip:alice@192.0.2.7:5090 SIP/2.0\r\n")
    # 1.6 puts received= right after the sent-by
    assert "\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;received=10.9.9.9;branch=z9hG4bK776asdhds\r\n" in text


def test_startup_and_timer_routes_run_on_the_dummy_request() -> None:
    r = ScriptRunner("""startup_route { $var(m) = $rm; $var(u) = $ru; }
timer_route[tick, 5] { $var(t) = $var(t) + 1; }
route { exit; }""")
    r.startup()
    assert r.rt.script_vars["m"] == "DUMMY" and r.rt.script_vars["u"] == "user"
    r.timer(0)
    r.timer(0)
    assert r.rt.script_vars["t"] == 2
    assert r.compiled.routes.timers[0].interval == 5


def test_var_persists_across_messages_in_one_process() -> None:
    r = ScriptRunner("route { $var(n) = $var(n) + 1; }")
    r.request(INVITE)
    r.request(INVITE)
    assert r.rt.script_vars["n"] == 2


def test_pv_printf_and_branches() -> None:
    r = ScriptRunner("""route {
    pv_printf("$var(x)", "user=$rU");
    append_branch("sip:b@example.net", "0.5");
    $var(ds) = $ds;
    setbflag(1, 3);
    if (isbflagset(1, 3)) $var(bf) = 1;
}""")
    r.request(INVITE)
    assert r.rt.script_vars["x"] == "user=alice"
    assert r.rt.script_vars["ds"] == "Contact: <sip:b@example.net>;q=0.5"
    assert r.rt.script_vars["bf"] == 1


def test_transformations_chain_with_pv_parameter() -> None:
    r = ScriptRunner("""route {
    $var(p) = "a=1;b=2;c=3";
    $var(v) = $(var(p){param.value,$(var(p){param.name,1})});
    $var(l) = $(ru{uri.user}{s.len});
    $var(bad) = "keep";
    $var(bad) = $(var(p){s.substr,100,1});
}""")
    r.request(INVITE)
    v = r.rt.script_vars
    assert v["l"] == 5
    assert v["v"] == "2"
    assert v["bad"] == "keep"


def test_sl_reply_error_after_too_many_branches() -> None:
    appends = "".join(f'append_branch("sip:u{i}@example.net");' for i in range(12))
    r = ScriptRunner(f"route {{ {appends} sl_reply_error(); }}", modules=["sl"])
    r.request(INVITE, src=("10.0.0.1", 5060))
    (text,) = r.sent_text
    assert text.startswith("SIP/2.0 500 Forking capacity exceeded (12/SL)\r\n")


BLACKLIST_CFG = """
dst_blacklist = gw: { (udp, 192.0.2.0/24, 0, ""), (any, 198.51.100.7, 5060, "INVITE*") }
route {
    if ($var(use) == 1) use_blacklist("gw");
    $du = $var(dest);
    forward();
    $var(rc) = $rc;
}
"""


@pytest.mark.parametrize(("use", "dest", "sent"), [
    (0, "sip:192.0.2.5", True),            # list not enabled for this message
    (1, "sip:192.0.2.5", False),           # udp + network match
    (1, "sip:192.0.2.5;transport=tcp", True),  # protocol differs
    (1, "sip:198.51.100.7", False),        # port and pattern match
    (1, "sip:198.51.100.7:5070", True),    # port differs
])
def test_dst_blacklist_blocks_forward(use: int, dest: str, sent: bool) -> None:
    cfg = BLACKLIST_CFG.replace("route {", f'route {{ $var(use) = {use}; $var(dest) = "{dest}";')
    r = ScriptRunner(cfg)
    r.request(INVITE, src=("10.0.0.1", 5060))
    assert bool(r.sent) == sent
    assert (r.rt.script_vars["rc"] == 1) == sent


@pytest.mark.parametrize(("aliases", "ruri", "mine"), [
    ("alias=example.com", "sip:alice@EXAMPLE.com", True),          # any port, any case
    ("alias=example.com:5070", "sip:alice@example.com", False),    # 5060 implied
    ("alias=example.com:5070", "sip:alice@example.com:5070", True),
    ("", "sip:alice@127.0.0.1", True),                            # the listen address
    ("", "sip:alice@127.0.0.1:5062", False),
])
def test_uri_myself_with_aliases(aliases: str, ruri: str, mine: bool) -> None:
    r = ScriptRunner(f'listen=udp:127.0.0.1:5060\n{aliases}\nroute {{ $ru = "{ruri}"; '
                     'if (uri == myself) $var(m) = 1; else $var(m) = 2; }')
    r.request(INVITE)
    assert r.rt.script_vars["m"] == (1 if mine else 2)


def test_sl_statistics_and_ack_filter() -> None:
    r = ScriptRunner('route { if (method == "ACK") { $var(acks) = $var(acks) + 1; exit; } '
                     'sl_send_reply("404", "Not Found"); }', modules=["sl"], stats=True)
    ctx = r.request(INVITE, src=("10.0.0.1", 5060))
    assert r.sent_text[0].startswith("SIP/2.0 404 Not Found\r\n")
    to_tag = r.sent_text[0].split("\r\nTo: ")[1].split("\r\n")[0].split("tag=")[1]
    ack = (INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"CSeq: 314159 INVITE",
                                                           b"CSeq: 314159 ACK")
           .replace(b"To: Alice <sip:alice@example.com>",
                    b"To: Alice <sip:alice@example.com>;tag=" + to_tag.encode()))
    r.request(ack, src=("10.0.0.1", 5060))  # the ACK of our own 404: absorbed before the script
    assert r.rt.script_vars.get("acks", 0) == 0
    lines = r.rt.stats.lines(["sl:"])
    assert "sl:4xx_replies = 1" in lines and "sl:sent_replies = 1" in lines
    assert "sl:received_ACKs = 1" in lines
    assert ctx.msg.method == "INVITE"


DNS_ZONE = """
$TTL 300
@       IN SOA ns.test. admin.test. 1 3600 600 86400 60
@       IN NS  ns.test.
ns      IN A   127.0.0.1
phone   IN A 10.0.0.1
other   IN A 10.9.9.9
"""


@pytest.mark.parametrize(("dns", "via_host", "received"), [
    (0, "phone.test", True),     # without dns=yes a name always gets received=
    (1, "phone.test", False),    # the name resolves to the source address
    (1, "other.test", True),     # it resolves to another address
])
def test_received_with_dns(dns: int, via_host: str, received: bool) -> None:
    from sipserver.core.dns import SipResolver
    from tests.dnsserver import DnsTestServer

    with DnsTestServer(DNS_ZONE) as srv:
        r = ScriptRunner(f'dns={dns}\nroute {{ rewritehostport("192.0.2.7"); forward(); }}')
        r.transport.resolver = SipResolver(nameservers=[srv.address], hosts_file=None)
        msg = INVITE.replace(b"Via: SIP/2.0/UDP 10.0.0.1:5060", f"Via: SIP/2.0/UDP {via_host}:5060".encode())
        r.request(msg, src=("10.0.0.1", 5060))
    (text,) = r.sent_text
    assert (";received=10.0.0.1" in text) == received


@pytest.mark.parametrize(("disable", "code"), [(0, b"500"), (1, b"503")])
def test_stateless_relay_translates_503(disable: int, code: bytes) -> None:
    r = ScriptRunner(f"disable_503_translation={disable}\nroute {{ exit; }}")
    reply = (b"SIP/2.0 503 Service Unavailable\r\n"
             b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKabc.0\r\n"
             b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
             b"To: <sip:a@example.com>;tag=x\r\nFrom: <sip:b@example.com>;tag=y\r\n"
             b"Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    from sipserver.core.relay import forward_reply

    assert forward_reply(r.context(reply, src=("192.0.2.5", 5060))) == 1
    (text,) = r.sent_text
    assert text.startswith("SIP/2.0 " + code.decode() + " Service Unavailable\r\n")
    assert "branch=z9hG4bKabc.0" not in text


# ---------------------------------------------------------------- TCP connection id

TCP_INVITE = INVITE.replace(b"SIP/2.0/UDP 10.0.0.1:5060", b"SIP/2.0/TCP 10.0.0.1:5060")
TCP_LISTEN = "listen=udp:127.0.0.1:5060\nlisten=tcp:127.0.0.1:5060\n"


def _tcp_rcv(r: ScriptRunner):
    return next(s for s in r.transport.sockets if s.proto == "tcp")


def test_stateless_reply_names_the_connection_the_request_came_in_on() -> None:
    r = ScriptRunner(TCP_LISTEN + 'route { sl_send_reply("404", "Not Found"); }', modules=["sl"])
    ctx = r.request(TCP_INVITE, src=("10.0.0.1", 40000), proto="tcp", rcv=_tcp_rcv(r), conn=0x1234)
    assert ctx.conn == 0x1234
    (_sock, dest, data), = r.sent
    # to the Via's sent-by (no rport): the connection id finds the connection
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "10.0.0.1", 5060)
    assert data.startswith(b"SIP/2.0 404 Not Found\r\n")
    assert r.transport.conns == [0x1234]


def test_stateless_reply_over_udp_names_no_connection() -> None:
    r = ScriptRunner(TCP_LISTEN + 'route { sl_send_reply("404", "Not Found"); }', modules=["sl"])
    ctx = r.request(INVITE, src=("10.0.0.1", 5060))
    assert ctx.conn == 0
    assert len(r.sent) == 1 and r.transport.conns == [None]


def test_request_received_over_tcp_gets_i_in_our_via() -> None:
    r = ScriptRunner(TCP_LISTEN + 'route { force_local_rport(); $du = "sip:192.0.2.9:5080"; forward(); }')
    r.request(TCP_INVITE, src=("10.0.0.1", 40000), proto="tcp", rcv=_tcp_rcv(r), conn=0x1234)
    (_sock, dest, data), = r.sent
    assert dest.proto == "udp"
    top = data.decode().split("\r\n")[1]
    # 1.6 id_builder: the id in hex, lowest digit first; before ;rport
    assert top.startswith("Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")
    assert top.endswith(";i=4321;rport")
    assert r.transport.conns == [None]  # a new request names no connection


def test_request_received_over_udp_gets_no_i() -> None:
    r = ScriptRunner(TCP_LISTEN + 'route { $du = "sip:192.0.2.9:5080;transport=tcp"; forward(); }')
    r.request(INVITE, src=("10.0.0.1", 5060))
    (_sock, dest, data), = r.sent
    assert dest.proto == "tcp"
    top = data.decode().split("\r\n")[1]
    assert top.startswith("Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK") and ";i=" not in top


RELAYED_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKabc;i=4321\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.1:5060;received=10.0.0.1;rport=40000;branch=z9hG4bK776asdhds\r\n"
    b"To: Alice <sip:alice@example.com>;tag=xyz\r\n"
    b"From: Bob <sip:bob@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_relayed_reply_goes_back_on_the_connection_named_in_our_via() -> None:
    from sipserver.core.relay import forward_reply
    r = ScriptRunner(TCP_LISTEN + "route { exit; }")
    ctx = r.context(RELAYED_200, src=("192.0.2.9", 5080))
    assert forward_reply(ctx) == 1
    (_sock, dest, data), = r.sent
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "10.0.0.1", 40000)
    assert b"i=4321" not in data  # our Via is gone
    assert r.transport.conns == [0x1234]


def test_relayed_reply_to_udp_ignores_i() -> None:
    from sipserver.core.relay import forward_reply
    r = ScriptRunner(TCP_LISTEN + "route { exit; }")
    ctx = r.context(RELAYED_200.replace(b"SIP/2.0/TCP 10.0.0.1", b"SIP/2.0/UDP 10.0.0.1"),
                    src=("192.0.2.9", 5080))
    assert forward_reply(ctx) == 1
    assert r.transport.conns == [None]


def test_receiver_keeps_the_connection_id() -> None:
    from sipserver.core.receive import Receiver
    from sipserver.core.runtime import Destination
    r = ScriptRunner(TCP_LISTEN + 'route { sl_send_reply("404", "Not Found"); }', modules=["sl"])
    Receiver(r.rt).handle(TCP_INVITE, "10.0.0.1", 40000, _tcp_rcv(r), proto="tcp", conn=7)
    assert len(r.sent) == 1 and r.transport.conns == [7]
    # a message that does not parse is answered on its connection too, with the
    # address a new connection would go to (sent-by port, no rport) as for the 404
    bad = TCP_INVITE.replace(b"CSeq: 314159 INVITE\r\n", b"CSeq: x INVITE\r\n")
    Receiver(r.rt).handle(bad, "10.0.0.1", 40000, _tcp_rcv(r), proto="tcp", conn=9)
    assert len(r.sent) == 2 and r.sent[1][2].startswith(b"SIP/2.0 400 ")
    assert r.sent[1][1] == r.sent[0][1] == Destination("tcp", "10.0.0.1", 5060)
    assert r.transport.conns[1] == 9


def test_conn_id_param_round_trips() -> None:
    from sipserver.core.relay import conn_id_param, parse_conn_id
    assert conn_id_param(0x1234) == "4321" and conn_id_param(0) == "0"
    for n in (1, 15, 16, 255, 2**31 - 1):
        assert parse_conn_id(conn_id_param(n)) == n
    assert parse_conn_id(None) == 0 and parse_conn_id("xyz") == 0
