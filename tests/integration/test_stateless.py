"""The running server as a stateless proxy, on the wire (SIPp and raw sockets)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .server import SipServer, alive, free_port, udp_exchange
from .sipp import Uas, have_sipp, run_uac

TORTURE = Path(__file__).resolve().parents[3] / "shared" / "torture"

PROXY_CFG = """
log_stderror=yes
debug=1
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (method == "OPTIONS") {
        sl_send_reply("200", "Alive");
        exit;
    }
    if (method == "REGISTER") {
        append_to_reply("Contact: $ct;expires=60\\r\\n");
        sl_send_reply("200", "OK");
        exit;
    }
    rewritehostport("127.0.0.1:@UAS@");
    forward();
}
"""


@pytest.fixture
def proxy(tmp_path: Path):
    uas_port = free_port()
    server = SipServer(tmp_path, PROXY_CFG.replace("@UAS@", str(uas_port))).start()
    server.uas_port = uas_port  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")
def test_thousand_calls_through_the_stateless_proxy(proxy: SipServer, tmp_path: Path) -> None:
    uas = Uas(tmp_path, proxy.uas_port)  # type: ignore[attr-defined]
    try:
        time.sleep(0.3)
        result = run_uac(tmp_path, f"127.0.0.1:{proxy.port}", calls=1000, rate=200)
    finally:
        uas.stop()
    assert result["successful"] == 1000, (result, proxy.log()[-2000:])
    assert result["failed"] == 0
    assert result["exit"] == 0


def test_options_and_register_are_answered_statelessly(proxy: SipServer) -> None:
    port = proxy.port
    reply = udp_exchange(port, (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-o1;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:a@example.com>;tag=f1\r\n"
        "To: <sip:b@example.com>\r\n"
        "Call-ID: opt-1\r\n"
        "CSeq: 7 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n").encode())
    assert reply is not None
    text = reply.decode()
    head, _, _ = text.partition("\r\n")
    assert head == "SIP/2.0 200 Alive"
    # the Via comes back with received (after the sent-by, as 1.6 puts it) and rport filled in
    assert "\r\nVia: SIP/2.0/UDP 127.0.0.1:9;received=127.0.0.1;branch=z9hG4bK-o1;rport=" in text
    assert "\r\nTo: <sip:b@example.com>;tag=" in text
    assert "\r\nCSeq: 7 OPTIONS\r\n" in text and text.endswith("Content-Length: 0\r\n\r\n")

    reply = udp_exchange(port, (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-r1;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:a@example.com>;tag=f2\r\n"
        "To: <sip:a@example.com>\r\n"
        "Call-ID: reg-1\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Contact: <sip:a@192.0.2.1:5062>\r\n"
        "Content-Length: 0\r\n\r\n").encode())
    assert reply is not None
    text = reply.decode()
    assert text.startswith("SIP/2.0 200 OK\r\n")
    assert "\r\nContact: <sip:a@192.0.2.1:5062>;expires=60\r\n" in text


def test_max_forwards_zero_gets_483(proxy: SipServer) -> None:
    reply = udp_exchange(proxy.port, (
        b"INVITE sip:x@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-m0;rport\r\n"
        b"Max-Forwards: 0\r\n"
        b"From: <sip:a@example.com>;tag=f\r\nTo: <sip:x@example.com>\r\n"
        b"Call-ID: mf0\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
    assert reply is not None and reply.startswith(b"SIP/2.0 483 Too Many Hops\r\n")


def test_malformed_datagrams_get_400_or_are_dropped(proxy: SipServer) -> None:
    bad = sorted((TORTURE).glob("*.sip")) if TORTURE.is_dir() else []
    sent = 0
    for path in bad:
        data = path.read_bytes()
        if len(data) > 60000:
            continue
        reply = udp_exchange(proxy.port, data, timeout=0.1)
        sent += 1
        if reply is not None:
            assert reply.startswith(b"SIP/2.0 "), (path.name, reply[:80])
    # noise: not SIP at all
    for junk in (b"\x00\x01\x02garbage", b"GET / HTTP/1.1\r\n\r\n", b"INVITE\r\n\r\n"):
        assert udp_exchange(proxy.port, junk, timeout=0.3) is None
    broken = (b"INVITE sip:x@example.com SIP/2.0\r\n"
              b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-b1;rport\r\n"
              b"From: <sip:a@example.com>;tag=f\r\nTo: <sip:x@example.com>\r\n"
              b"Call-ID: b1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
    reply = udp_exchange(proxy.port, broken)
    assert reply is not None and reply.startswith(b"SIP/2.0 400 Bad Request\r\n")
    assert b"\r\nCall-ID: b1\r\n" in reply
    # and it still serves
    ok = udp_exchange(proxy.port, (
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-a;rport\r\n"
        b"From: <sip:a@example.com>;tag=f\r\nTo: <sip:b@example.com>\r\nCall-ID: after\r\n"
        b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
    assert ok is not None and ok.startswith(b"SIP/2.0 200 Alive")
    assert sent > 50 and proxy.proc is not None and proxy.proc.poll() is None


def test_sigterm_is_clean(tmp_path: Path) -> None:
    server = SipServer(tmp_path, PROXY_CFG.replace("@UAS@", "9")).start()
    assert server.pid_file.read_text().strip() == str(server.pid)
    kids = server.children()
    assert len(kids) >= 3  # 2 receivers + timer
    os.kill(server.pid, signal.SIGUSR1)  # statistics to the log, nothing stops
    deadline = time.monotonic() + 5
    while "core:rcv_requests = " not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "core:rcv_requests = " in server.log()
    assert all(alive(k) for k in kids)
    t0 = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5
    assert not server.pid_file.exists()


def test_a_dying_worker_takes_the_server_down(tmp_path: Path) -> None:
    server = SipServer(tmp_path, PROXY_CFG.replace("@UAS@", "9")).start()
    kids = server.children()
    os.kill(kids[0], signal.SIGKILL)
    assert server.proc is not None
    code = server.proc.wait(10)
    assert code == 1
    assert "was killed by signal SIGKILL" in server.log()
    server.stop()  # asserts that no child is left


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        server = SipServer(tmp_path, PROXY_CFG.replace("@UAS@", "9"), port=port)
        server.start(wait_ready=False)
        assert server.proc is not None
        assert server.proc.wait(15) == 1
        assert "address already in use" in server.log()
        server.stop()


def test_forwarding_to_ourselves_is_refused(tmp_path: Path) -> None:
    cfg = PROXY_CFG.replace('rewritehostport("127.0.0.1:@UAS@");',
                            'rewritehostport("127.0.0.1:@PORT@");')
    server = SipServer(tmp_path, cfg).start()
    try:
        reply = udp_exchange(server.port, (
            b"MESSAGE sip:x@example.com SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-loop;rport\r\n"
            b"Max-Forwards: 70\r\n"
            b"From: <sip:a@example.com>;tag=f\r\nTo: <sip:x@example.com>\r\n"
            b"Call-ID: loop1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"), timeout=1.0)
        assert reply is None
        time.sleep(0.2)
        assert server.log().count("forwarding loop") == 1
    finally:
        server.stop()


IPV6_CFG = """
log_stderror=yes
debug=1
children=1
listen=udp:[::1]:@PORT@
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
route {
    if (af == INET6) sl_send_reply("200", "Over IPv6 from $si");
    else sl_send_reply("200", "Over IPv4 from $si");
}
"""


def test_ipv6_and_ipv4_listeners(tmp_path: Path) -> None:
    import socket

    server = SipServer(tmp_path, IPV6_CFG).start()
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
            s.settimeout(2)
            port = s.getsockname()[1]
            s.sendto((
                f"OPTIONS sip:[::1]:{server.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6\r\n"
                "From: <sip:a@example.com>;tag=f\r\nTo: <sip:b@example.com>\r\n"
                "Call-ID: v6\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                ("::1", server.port))
            reply = s.recvfrom(65535)[0]
        assert reply.startswith(b"SIP/2.0 200 Over IPv6 from ::1\r\n")
        assert f"\r\nVia: SIP/2.0/UDP [::1]:{port};branch=z9hG4bK-v6\r\n".encode() in reply
        v4 = udp_exchange(server.port, (
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-v4;rport\r\n"
            b"From: <sip:a@example.com>;tag=f\r\nTo: <sip:b@example.com>\r\n"
            b"Call-ID: v4\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
        assert v4 is not None and v4.startswith(b"SIP/2.0 200 Over IPv4 from 127.0.0.1\r\n")
    finally:
        server.stop()
