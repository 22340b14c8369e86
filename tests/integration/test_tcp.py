"""SIP over TCP on the wire: TCP main + workers, connection reuse, lifetime, bad streams."""

from __future__ import annotations

import csv
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .server import SipServer, free_port, udp_exchange
from .sipp import SCENARIOS, Uas, have_sipp, run_uac

PROXY_CFG = """
log_stderror=yes
debug=1
children=2
@OPTS@
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "maxfwd.so"
route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (method == "OPTIONS") {
        sl_send_reply("200", "Alive");
        exit;
    }
    rewritehostport("127.0.0.1:@UAS@");
    $du = "sip:127.0.0.1:@UAS@;transport=@UASPROTO@";
    forward();
}
"""

needs_sipp = pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")


def proxy_cfg(uas_port: int, uas_proto: str = "tcp", opts: str = "") -> str:
    return (PROXY_CFG.replace("@UAS@", str(uas_port)).replace("@UASPROTO@", uas_proto)
            .replace("@OPTS@", opts))


def start(tmp: Path, uas_proto: str = "tcp", opts: str = "") -> SipServer:
    uas_port = free_port()
    server = SipServer(tmp, proxy_cfg(uas_port, uas_proto, opts)).start()
    server.uas_port = uas_port  # type: ignore[attr-defined]
    return server


def options(call_id: str, via: str = "SIP/2.0/TCP 127.0.0.1:9", cseq: int = 1) -> bytes:
    return (f"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
            f"Via: {via};branch=z9hG4bK-{call_id}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:a@example.com>;tag={call_id}\r\n"
            "To: <sip:b@example.com>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def read_messages(sock: socket.socket, count: int, timeout: float = 3.0) -> list[bytes]:
    """`count` SIP messages (Content-Length: 0 ones) from a stream."""
    sock.settimeout(timeout)
    buf = b""
    while buf.count(b"\r\n\r\n") < count:
        data = sock.recv(65535)
        if not data:
            break
        buf += data
    return [m + b"\r\n\r\n" for m in buf.split(b"\r\n\r\n") if m]


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65535):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def tcp_options_ok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(options("alive-check"))
        got = read_messages(s, 1)
    return bool(got) and got[0].startswith(b"SIP/2.0 200 Alive")


# ---------------------------------------------------------------- SIPp calls


def run_uac_with(tmp: Path, target: str, *, calls: int, rate: int, transport: str,
                 extra: list[str]) -> dict[str, int]:
    """Like sipp.run_uac, with extra SIPp arguments (tn needs -max_socket)."""
    stat = tmp / "uac_stat.csv"
    args = ["sipp", target, "-sf", str(SCENARIOS / "uac.xml"), "-i", "127.0.0.1",
            "-m", str(calls), "-r", str(rate), "-t", transport, "-nostdin",
            "-timeout", "60s", "-timeout_error", "-recv_timeout", "5s",
            "-trace_stat", "-stf", str(stat), "-trace_err",
            "-error_file", str(tmp / "uac_err.log"), *extra]
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp,
                          timeout=90, check=False)
    rows = list(csv.reader(stat.read_text().splitlines(), delimiter=";"))
    values = dict(zip(rows[0], rows[-1], strict=False))
    return {"exit": proc.returncode, "successful": int(values["SuccessfulCall(C)"]),
            "failed": int(values["FailedCall(C)"])}


def paced_uac(tmp: Path) -> str:
    """uac.xml with 10 ms between ACK and BYE.

    Over UDP, two receiver processes may take the ACK and the BYE that SIPp
    sends back to back, and the BYE can then reach the callee first (a
    stateless proxy with several receivers keeps no order between them, in
    1.6 too); the callee scenario takes that for an unexpected message. On
    one TCP connection both are read by one worker, in order.
    """
    text = (SCENARIOS / "uac.xml").read_text()
    ack = text.index("CSeq: 1 ACK")
    end = text.index("</send>", ack) + len("</send>")
    path = tmp / "uac_paced.xml"
    path.write_text(text[:end] + '\n  <pause milliseconds="10"/>' + text[end:])
    return str(path)


def calls_through(tmp: Path, server: SipServer, uac: str, uas: str, calls: int,
                  rate: int) -> dict[str, int]:
    callee = Uas(tmp, server.uas_port, transport=uas)  # type: ignore[attr-defined]
    try:
        time.sleep(0.3)
        if uac == "tn":
            return run_uac_with(tmp, f"127.0.0.1:{server.port}", calls=calls, rate=rate,
                                transport=uac, extra=["-max_socket", "1000"])
        scenario = paced_uac(tmp) if uac.startswith("u") else "uac.xml"
        return run_uac(tmp, f"127.0.0.1:{server.port}", calls=calls, rate=rate,
                       transport=uac, scenario=scenario)
    finally:
        callee.stop()


@needs_sipp
def test_thousand_calls_over_tcp(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        result = calls_through(tmp_path, server, "t1", "t1", 1000, 250)
        assert result["successful"] == 1000, (result, server.log()[-2000:])
        assert result["failed"] == 0
        assert result["exit"] == 0
        assert tcp_options_ok(server.port)
    finally:
        server.stop()


@needs_sipp
@pytest.mark.parametrize(("uac", "uas", "proto"), [("u1", "t1", "tcp"), ("t1", "u1", "udp"),
                                                   ("tn", "t1", "tcp")])
def test_mixed_transports(tmp_path: Path, uac: str, uas: str, proto: str) -> None:
    """UDP caller -> TCP callee (replies back over TCP, then UDP), the reverse, and a
    new TCP connection per call (tn)."""
    server = start(tmp_path, proto)
    try:
        result = calls_through(tmp_path, server, uac, uas, 150, 150)
        assert result["successful"] == 150, (result, server.log()[-2000:])
        assert result["failed"] == 0
    finally:
        server.stop()


# ---------------------------------------------------------------- raw connections


@pytest.fixture
def proxy(tmp_path: Path):
    server = start(tmp_path, opts="tcp_children=3")
    yield server
    server.stop()


def titles(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode().strip())
        except OSError:
            pass
    return out


def test_tcp_processes(proxy: SipServer) -> None:
    names = titles(proxy.wait_children(7))
    assert len(names) == 7, names  # 2 UDP receivers, timer, TCP main, 3 TCP workers
    assert sum("TCP main" in t for t in names) == 1, names
    assert sum("TCP receiver" in t for t in names) == 3, names


def test_options_answered_on_the_same_connection(proxy: SipServer) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as s:
        # the Via names a port nobody listens on and has no rport: the reply still
        # takes the connection the request came in on
        s.sendall(options("same-1"))
        first = read_messages(s, 1)
        assert first and first[0].startswith(b"SIP/2.0 200 Alive\r\n")
        assert b"\r\nCall-ID: same-1\r\n" in first[0]
        assert b"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-same-1" in first[0]
        # two requests in one write, then one split over three writes
        s.sendall(options("same-2") + options("same-3", cseq=2))
        two = read_messages(s, 2)
        assert [b"Call-ID: same-2" in two[0], b"Call-ID: same-3" in two[1]] == [True, True]
        req = options("same-4", via="SIP/2.0/TCP 127.0.0.1:9;rport")
        s.sendall(req[:10])
        time.sleep(0.05)
        s.sendall(req[10:-3])
        time.sleep(0.05)
        s.sendall(req[-3:])
        last = read_messages(s, 1)
        assert b"Call-ID: same-4" in last[0]
        assert f";rport={s.getsockname()[1]}".encode() in last[0]


def test_crlf_keepalive_ping_gets_a_pong(proxy: SipServer) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as s:
        s.sendall(b"\r\n\r\n")
        assert s.recv(10) == b"\r\n"
        s.sendall(b"\r\n" + options("after-pong"))  # a pong before a message is skipped
        got = read_messages(s, 1)
        assert got and b"Call-ID: after-pong" in got[0]


def test_bad_message_on_a_stream_gets_400_on_the_connection(proxy: SipServer) -> None:
    broken = (b"INVITE sip:x@example.com SIP/2.0\r\n"
              b"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-b1\r\n"
              b"From: <sip:a@example.com>;tag=f\r\nTo: <sip:x@example.com>\r\n"
              b"Call-ID: b1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as s:
        s.sendall(broken)
        got = read_messages(s, 1)
        assert got and got[0].startswith(b"SIP/2.0 400 Bad Request\r\n")
        s.sendall(options("after-400"))  # the connection is still usable
        assert b"Call-ID: after-400" in read_messages(s, 1)[0]


def test_garbage_streams_are_closed_and_the_server_goes_on(proxy: SipServer) -> None:
    kids = proxy.wait_children(7)  # 2 UDP receivers, timer, TCP main, 3 TCP workers
    junk = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no Content-Length
        b"\x00\xff\x10garbage" * 8000,  # no end of headers within 64 KB
        options("cl").replace(b"Content-Length: 0", b"Content-Length: 999999"),  # oversize
        options("cl2").replace(b"Content-Length: 0", b"Content-Length: abc"),
    ]
    for data in junk:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert closed_by_peer(s, 3.0), data[:40]
    # a connection closed by the client in the middle of a message
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as s:
        s.sendall(options("half")[:40])
    assert tcp_options_ok(proxy.port)
    assert udp_exchange(proxy.port, options("udp-after", via="SIP/2.0/UDP 127.0.0.1:9;rport"))
    assert sorted(proxy.children()) == kids  # no worker died


def test_forwarded_requests_reuse_the_connection_to_the_next_hop(proxy: SipServer) -> None:
    """UDP caller -> TCP next hop: one connection is opened and reused, and the replies
    read from it go back over UDP."""
    uas_port = proxy.uas_port  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", uas_port))
        listener.listen(5)
        listener.settimeout(3)
        caller.bind(("127.0.0.1", 0))
        caller.settimeout(3)
        cport = caller.getsockname()[1]
        conn = None
        try:
            for n in range(3):
                req = (f"MESSAGE sip:bob@example.com SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK-m{n};rport\r\n"
                       "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=a\r\n"
                       f"To: <sip:bob@example.com>\r\nCall-ID: reuse-{n}\r\n"
                       f"CSeq: {n + 1} MESSAGE\r\nContent-Length: 5\r\n\r\nhello").encode()
                caller.sendto(req, ("127.0.0.1", proxy.port))
                if conn is None:
                    conn, _ = listener.accept()
                conn.settimeout(3)
                buf = b""
                while not buf.endswith(b"hello"):
                    buf += conn.recv(65535)
                text = buf.decode()
                assert text.startswith(f"MESSAGE sip:bob@127.0.0.1:{uas_port} SIP/2.0\r\n")
                top = text.split("\r\n")[1]
                assert top.startswith(f"Via: SIP/2.0/TCP 127.0.0.1:{proxy.port};branch=")
                vias = [line for line in text.split("\r\n") if line.startswith("Via:")]
                reply = ("SIP/2.0 200 OK\r\n" + "".join(v + "\r\n" for v in vias)
                         + "From: <sip:a@example.com>;tag=a\r\n"
                         "To: <sip:bob@example.com>;tag=b\r\n"
                         f"Call-ID: reuse-{n}\r\nCSeq: {n + 1} MESSAGE\r\n"
                         "Content-Length: 0\r\n\r\n")
                conn.sendall(reply.encode())
                answer = caller.recvfrom(65535)[0].decode()
                assert answer.startswith("SIP/2.0 200 OK\r\n")
                assert f"Call-ID: reuse-{n}" in answer
                assert answer.count("Via:") == 1
            listener.settimeout(0.3)
            with pytest.raises(TimeoutError):
                listener.accept()  # no second connection was opened
        finally:
            if conn is not None:
                conn.close()


def test_idle_connections_are_closed_after_the_lifetime(tmp_path: Path) -> None:
    server = start(tmp_path, opts="tcp_connection_lifetime=1\ntcp_max_connections=2")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as busy, \
                socket.create_connection(("127.0.0.1", server.port), timeout=3) as idle:
            t0 = time.monotonic()
            idle.sendall(options("idle-1"))
            assert read_messages(idle, 1)
            busy.sendall(options("busy-0"))
            assert read_messages(busy, 1)
            # tcp_max_connections: a third one is closed at once
            with socket.create_connection(("127.0.0.1", server.port), timeout=3) as third:
                assert closed_by_peer(third, 2.0)
            # the busy one keeps talking and stays open
            for i in range(6):
                busy.sendall(options(f"busy-{i}"))
                assert read_messages(busy, 1)
                time.sleep(0.3)
            assert closed_by_peer(idle, 3.0)
            assert 0.9 <= time.monotonic() - t0 <= 4.0
            busy.sendall(options("busy-last"))
            assert read_messages(busy, 1)
            # the closed one made room for a new one
            assert tcp_options_ok(server.port)
    finally:
        server.stop()


def test_tcp_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        server = SipServer(tmp_path, proxy_cfg(9), port=port)
        server.start(wait_ready=False)
        assert server.proc is not None
        assert server.proc.wait(15) == 1
        assert f"tcp:127.0.0.1:{port}: address already in use" in server.log()
        server.stop()
