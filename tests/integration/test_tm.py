"""tm on the wire: a stateful proxy (t_relay) between raw UDP peers and SIPp."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from .server import SipServer, free_port
from .sipp import Uas, have_sipp, run_uac

TM_CFG = """
log_stderror=yes
debug=1
children=3
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
tcp_children=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "uri.so"
loadmodule "textops.so"
modparam("tm", "fr_timer", 2)
modparam("tm", "fr_inv_timer", 2)
modparam("tm", "wt_timer", 2)
modparam("tm", "tw_append", "vm: ua=$hdr(User-Agent)")

route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (method == "OPTIONS" && $rU == "ping") {
        sl_send_reply("200", "Alive");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (method == "ACK") {
            if (t_check_trans()) t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (method == "CANCEL") {
        if (t_check_trans()) t_relay();
        exit;
    }
    if ($rU == "body") {
        append_to_reply("Content-Type: text/plain\\r\\n");
        t_reply_with_body("200", "With body", "hello $fU");
        exit;
    }
    if (method == "REGISTER") {
        t_replicate("sip:127.0.0.1:@UAS2@");
        sl_send_reply("200", "Replicated");
        exit;
    }
    if ($rU == "vm") {
        t_newtran();
        t_write_unix("voicemail/vm", "@VMSOCK@");
        exit;
    }
    if ($rU == "extra") {
        t_newtran();
        t_add_hdrs("X-Extra: $fU\\r\\n");
    }
    if (method == "INVITE") {
        record_route();
    }
    if ($rU == "service") {
        rewritehostport("127.0.0.1:@SIPPUAS@");
    }
    if ($rU == "serial") {
        t_on_failure("1");
    }
    if (!t_relay()) {
        sl_reply_error();
    }
}

failure_route[1] {
    if (t_was_cancelled()) {
        exit;
    }
    if (t_check_status("486")) {
        rewritehostport("127.0.0.1:@UAS2@");
        t_relay();
    }
}
"""


def read_stream(sock: socket.socket, until: bytes, timeout: float = 4.0) -> list[bytes]:
    """Content-Length: 0 messages read from a stream up to the one starting with `until`."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = [m + b"\r\n\r\n" for m in buf.split(b"\r\n\r\n")[:-1]]
        if any(m.startswith(until) for m in msgs):
            return msgs
        data = sock.recv(65535)
        if not data:
            break
        buf += data
    return [m + b"\r\n\r\n" for m in buf.split(b"\r\n\r\n")[:-1]]


class Peer:
    """A raw UDP endpoint (UAC or UAS) on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def send(self, data: str | bytes, port: int) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendto(data, ("127.0.0.1", port))

    def recv(self, timeout: float = 2.0) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recvfrom(65535)[0].decode("latin-1")
        except TimeoutError:
            return None

    def recv_until(self, pred, timeout: float = 3.0) -> tuple[str | None, list[str]]:
        """The first message matching pred, and everything received before it."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m is None:
                break
            if pred(m):
                return m, seen
            seen.append(m)
        return None, seen

    def drain(self, timeout: float = 0.3) -> list[str]:
        out = []
        while (m := self.recv(timeout)) is not None:
            out.append(m)
        return out

    def close(self) -> None:
        self.sock.close()


def first(msg: str | None) -> str:
    assert msg is not None, "nothing received"
    return msg.split("\r\n", 1)[0]


def request(method: str, ruri: str, uac: Peer, *, call_id: str, branch: str, cseq: int = 1,
            to_tag: str = "", route: str = "", cseq_method: str | None = None) -> str:
    to = "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{uac.port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:alice@127.0.0.1>;tag=a-{call_id}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        f"Contact: <sip:alice@127.0.0.1:{uac.port}>",
    ]
    if route:
        lines.append(f"Route: {route}")
    return "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"


def reply(req: str, code: int, reason: str, *, to_tag: str = "", contact: str = "") -> str:
    """A UAS reply copying Via/From/To/Call-ID/CSeq/Record-Route."""
    head = req.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    out = [f"SIP/2.0 {code} {reason}"]
    for line in head:
        name = line.split(":", 1)[0].strip().lower()
        if name == "to" and to_tag and ";tag=" not in line:
            line += f";tag={to_tag}"
        if name in ("via", "from", "to", "call-id", "cseq", "record-route"):
            out.append(line)
    if contact:
        out.append(f"Contact: {contact}")
    return "\r\n".join(out) + "\r\nContent-Length: 0\r\n\r\n"


def header(msg: str, name: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            if line.split(":", 1)[0].strip().lower() == name.lower()]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("tm")
    uas2 = Peer()
    sipp_uas = free_port()
    cfg = (TM_CFG.replace("@UAS2@", str(uas2.port)).replace("@SIPPUAS@", str(sipp_uas))
           .replace("@VMSOCK@", str(tmp / "vm.sock")))
    server = SipServer(tmp, cfg).start()
    server.uas2 = uas2  # type: ignore[attr-defined]
    server.sipp_uas = sipp_uas  # type: ignore[attr-defined]
    server.tmp = tmp
    yield server
    uas2.close()
    server.stop()


@pytest.fixture
def peers():
    uac, uas = Peer(), Peer()
    yield uac, uas
    uac.close()
    uas.close()


BRANCH_RE = re.compile(r"^SIP/2\.0/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK[0-9a-f]{32}\.0$")


def test_invite_call_through_t_relay(proxy: SipServer, peers) -> None:
    uac, uas = peers
    p = proxy.port
    inv = request("INVITE", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call1",
                  branch="z9hG4bK-c1")
    uac.send(inv, p)
    assert first(uac.recv()) == "SIP/2.0 100 Giving a try"
    got = uas.recv()
    assert first(got) == f"INVITE sip:bob@127.0.0.1:{uas.port} SIP/2.0"
    vias = header(got, "via")
    assert len(vias) == 2 and BRANCH_RE.match(vias[0]), vias
    assert vias[1] == (f"SIP/2.0/UDP 127.0.0.1:{uac.port};received=127.0.0.1;"
                       f"branch=z9hG4bK-c1;rport={uac.port}")
    rr = header(got, "record-route")
    assert rr == [f"<sip:127.0.0.1:{p};lr;ftag=a-call1>"]
    # 180, then a retransmitted INVITE: the 180 again upstream, nothing downstream
    uas.send(reply(got, 180, "Ringing", to_tag="b1"), p)
    ringing = uac.recv()
    assert first(ringing) == "SIP/2.0 180 Ringing"
    assert len(header(ringing, "via")) == 1
    uac.send(inv, p)
    assert uac.recv() == ringing
    # our own retransmission stopped with the 180: the UAS sees nothing more
    assert uas.drain(0.7) == []
    ok = reply(got, 200, "OK", to_tag="b1", contact=f"<sip:bob@127.0.0.1:{uas.port}>")
    uas.send(ok, p)
    answer = uac.recv()
    assert first(answer) == "SIP/2.0 200 OK"
    assert header(answer, "record-route") == rr
    # ACK and BYE follow the route set
    route = rr[0]
    uac.send(request("ACK", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call1",
                     branch="z9hG4bK-c1ack", to_tag="b1", route=route), p)
    ack = uas.recv()
    assert first(ack) == f"ACK sip:bob@127.0.0.1:{uas.port} SIP/2.0"
    bye = request("BYE", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call1",
                  branch="z9hG4bK-c1bye", cseq=2, to_tag="b1", route=route)
    uac.send(bye, p)
    got_bye = uas.recv()
    assert first(got_bye) == f"BYE sip:bob@127.0.0.1:{uas.port} SIP/2.0"
    assert BRANCH_RE.match(header(got_bye, "via")[0])
    uas.send(reply(got_bye, 200, "OK"), p)
    assert first(uac.recv()) == "SIP/2.0 200 OK"


def test_serial_forking_after_486(proxy: SipServer, peers) -> None:
    uac, uas = peers
    uas2: Peer = proxy.uas2  # type: ignore[attr-defined]
    uas2.drain(0.05)
    p = proxy.port
    uac.send(request("INVITE", f"sip:serial@127.0.0.1:{uas.port}", uac, call_id="call2",
                     branch="z9hG4bK-c2"), p)
    assert first(uac.recv()) == "SIP/2.0 100 Giving a try"
    got = uas.recv()
    uas.send(reply(got, 486, "Busy Here", to_tag="busy"), p)
    ack = uas.recv()
    assert first(ack) == f"ACK sip:serial@127.0.0.1:{uas.port} SIP/2.0"
    assert header(ack, "via")[0] == header(got, "via")[0]  # the INVITE's branch
    assert header(ack, "to")[0].endswith(";tag=busy")
    second = uas2.recv()
    assert first(second) == f"INVITE sip:serial@127.0.0.1:{uas2.port} SIP/2.0"
    via = header(second, "via")[0]
    assert via.endswith(".1") and via.rsplit(".", 1)[0] == header(got, "via")[0].rsplit(".", 1)[0]
    uas2.send(reply(second, 200, "OK", to_tag="second"), p)
    answer, before = uac.recv_until(lambda m: not m.startswith("SIP/2.0 100"))
    assert first(answer) == "SIP/2.0 200 OK", before
    assert header(answer, "to")[0].endswith(";tag=second")


def test_unanswered_invite_gets_408(proxy: SipServer, peers) -> None:
    uac, uas = peers
    p = proxy.port
    uac.send(request("INVITE", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call3",
                     branch="z9hG4bK-c3"), p)
    assert first(uac.recv()) == "SIP/2.0 100 Giving a try"
    got = uas.recv()
    uas.send(reply(got, 180, "Ringing", to_tag="r3"), p)
    assert first(uac.recv()) == "SIP/2.0 180 Ringing"
    t0 = time.monotonic()
    answer, _ = uac.recv_until(lambda m: m.startswith("SIP/2.0 408"), timeout=4)
    elapsed = time.monotonic() - t0
    assert answer is not None and first(answer) == "SIP/2.0 408 Request Timeout"
    assert 1.5 < elapsed < 3.5
    cancel, _ = uas.recv_until(lambda m: m.startswith("CANCEL"), timeout=1)
    assert cancel is not None
    assert 'Reason: SIP;cause=480;text="NO_ANSWER"' in cancel
    # the ACK for our 408 is absorbed by the proxy
    uac.send(request("ACK", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call3",
                     branch="z9hG4bK-c3", to_tag=header(answer, "to")[0].split("tag=")[1]), p)
    assert [m for m in uas.drain(0.5) if m.startswith("ACK")] == []


def test_upstream_cancel_of_ringing_call(proxy: SipServer, peers) -> None:
    uac, uas = peers
    p = proxy.port
    ruri = f"sip:bob@127.0.0.1:{uas.port}"
    uac.send(request("INVITE", ruri, uac, call_id="call4", branch="z9hG4bK-c4"), p)
    assert first(uac.recv()) == "SIP/2.0 100 Giving a try"
    got = uas.recv()
    uas.send(reply(got, 180, "Ringing", to_tag="r4"), p)
    assert first(uac.recv()) == "SIP/2.0 180 Ringing"
    uac.send(request("CANCEL", ruri, uac, call_id="call4", branch="z9hG4bK-c4"), p)
    assert first(uac.recv()) == "SIP/2.0 200 canceling"
    cancel = uas.recv()
    assert first(cancel) == f"CANCEL {ruri} SIP/2.0"
    assert header(cancel, "via") == [header(got, "via")[0]]
    assert 'Reason: SIP;cause=487;text="ORIGINATOR_CANCEL"' in cancel
    assert "Max-Forwards: 70" in cancel
    uas.send(reply(cancel, 200, "OK", to_tag="r4"), p)
    uas.send(reply(got, 487, "Request Terminated", to_tag="r4"), p)
    assert first(uas.recv()) == f"ACK {ruri} SIP/2.0"
    assert first(uac.recv()) == "SIP/2.0 487 Request Terminated"


def test_non_invite_retransmissions(proxy: SipServer, peers) -> None:
    uac, uas = peers
    p = proxy.port
    msg = request("MESSAGE", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call5",
                  branch="z9hG4bK-c5")
    uac.send(msg, p)
    a = uas.recv()
    b = uas.recv(1.0)  # the proxy retransmits after T1 (500 ms)
    assert first(a) == first(b) == f"MESSAGE sip:bob@127.0.0.1:{uas.port} SIP/2.0"
    assert a == b
    uas.send(reply(a, 200, "OK", to_tag="m5"), p)
    ok = uac.recv()
    assert first(ok) == "SIP/2.0 200 OK"
    uac.send(msg, p)  # a retransmission gets the 200 again
    assert uac.recv() == ok
    assert uas.drain(0.7) == []  # and nothing more goes downstream
    # OPTIONS answered 404: relayed; retransmission answered from the transaction
    opt = request("OPTIONS", f"sip:bob@127.0.0.1:{uas.port}", uac, call_id="call6",
                  branch="z9hG4bK-c6")
    uac.send(opt, p)
    o = uas.recv()
    uas.send(reply(o, 404, "Not Found", to_tag="o6"), p)
    nf = uac.recv()
    assert first(nf) == "SIP/2.0 404 Not Found"
    uac.send(opt, p)
    assert uac.recv() == nf


@pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")
def test_500_calls_through_t_relay(proxy: SipServer) -> None:
    tmp: Path = proxy.tmp  # type: ignore[attr-defined]
    uas = Uas(tmp, proxy.sipp_uas, scenario="tm_uas.xml")  # type: ignore[attr-defined]
    try:
        time.sleep(0.3)
        result = run_uac(tmp, f"127.0.0.1:{proxy.port}", calls=500, rate=250,
                         scenario="tm_uac.xml", timeout=30)
    finally:
        uas.stop()
    assert result["successful"] == 500, (result, proxy.log()[-2000:])
    assert result["failed"] == 0


def test_t_reply_with_body(proxy: SipServer, peers) -> None:
    uac, _uas = peers
    msg = request("MESSAGE", "sip:body@127.0.0.1", uac, call_id="call7", branch="z9hG4bK-c7")
    uac.send(msg, proxy.port)
    got = uac.recv()
    assert first(got) == "SIP/2.0 200 With body"
    assert got.endswith("CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
                        "Server: OpenSIPS (1.6.4-notls (x86_64/linux))\r\n"
                        "Content-Length: 11\r\n\r\nhello alice")
    uac.send(msg, proxy.port)
    assert uac.recv() == got


def test_cancel_with_t_add_hdrs_is_retransmitted(proxy: SipServer, peers) -> None:
    uac, uas = peers
    p = proxy.port
    ruri = f"sip:extra@127.0.0.1:{uas.port}"
    uac.send(request("INVITE", ruri, uac, call_id="call8", branch="z9hG4bK-c8"), p)
    got = uas.recv()
    assert first(got) == f"INVITE {ruri} SIP/2.0"
    uas.send(reply(got, 180, "Ringing", to_tag="r8"), p)
    assert first(uac.recv()) == "SIP/2.0 180 Ringing"
    uac.send(request("CANCEL", ruri, uac, call_id="call8", branch="z9hG4bK-c8"), p)
    assert first(uac.recv()) == "SIP/2.0 200 canceling"
    cancel = uas.recv()
    assert first(cancel) == f"CANCEL {ruri} SIP/2.0"
    assert ('Reason: SIP;cause=487;text="ORIGINATOR_CANCEL"\r\nX-Extra: alice\r\n'
            "User-Agent: OpenSIPS (1.6.4-notls (x86_64/linux))\r\nContent-Length: 0\r\n\r\n"
            ) in cancel
    t0 = time.monotonic()
    again = uas.recv(1.5)  # not answered: sent again after T1
    assert again == cancel and 0.3 < time.monotonic() - t0 < 1.2
    uas.send(reply(cancel, 200, "OK", to_tag="r8"), p)
    uas.send(reply(got, 487, "Request Terminated", to_tag="r8"), p)
    ack = uas.recv()
    assert first(ack) == f"ACK {ruri} SIP/2.0" and "\r\nX-Extra: alice\r\n" in ack
    assert first(uac.recv()) == "SIP/2.0 487 Request Terminated"
    assert [m for m in uas.drain(0.8) if m.startswith("CANCEL")] == []


def test_t_replicate_register(proxy: SipServer, peers) -> None:
    uac, _uas = peers
    uas2: Peer = proxy.uas2  # type: ignore[attr-defined]
    uas2.drain(0.05)
    reg = request("REGISTER", "sip:127.0.0.1", uac, call_id="call9", branch="z9hG4bK-c9")
    uac.send(reg, proxy.port)
    assert first(uac.recv()) == "SIP/2.0 200 Replicated"
    copy = uas2.recv()
    assert first(copy) == "REGISTER sip:127.0.0.1 SIP/2.0"
    assert BRANCH_RE.match(header(copy, "via")[0])
    uas2.send(reply(copy, 200, "OK", to_tag="r9"), proxy.port)
    assert uac.recv(0.5) is None  # the reply to the copy stays in the proxy


def test_t_write_unix_and_blind_408(proxy: SipServer, peers) -> None:
    uac, _uas = peers
    tmp: Path = proxy.tmp  # type: ignore[attr-defined]
    vm = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    vm.bind(str(tmp / "vm.sock"))
    vm.settimeout(2)
    try:
        msg = request("MESSAGE", "sip:vm@127.0.0.1", uac, call_id="call10", branch="z9hG4bK-c10")
        msg = msg.replace("Content-Length: 0", "User-Agent: tester\r\nContent-Length: 0")
        uac.send(msg, proxy.port)
        data = vm.recv(65536).decode()
    finally:
        vm.close()
        (tmp / "vm.sock").unlink()
    lines = data.split("\n")
    assert lines[:9] == ["0.3", "sip_request.voicemail", "MESSAGE", "vm", "127.0.0.1", "127.0.0.1",
                         str(proxy.port), "sip:vm@127.0.0.1", f"sip:alice@127.0.0.1:{uac.port}"]
    assert lines[9:15] == ["<sip:alice@127.0.0.1>;tag=a-call10", "<sip:bob@127.0.0.1>", "call10",
                           "a-call10", "", "1"]
    assert re.fullmatch(r"\d+:\d+", lines[15])
    assert data.endswith("\n.\n.\nP-MsgFlags: 0\nua: tester\n.\n.\n")
    # nobody answers for the application: 408 after fr_timer (2 s)
    answer, _ = uac.recv_until(lambda m: m.startswith("SIP/2.0 408"), timeout=3.5)
    assert answer is not None


def test_invite_over_tcp_gets_the_timer_408_on_its_connection(proxy: SipServer, peers) -> None:
    _uac, uas = peers
    p = proxy.port
    ruri = f"sip:bob@127.0.0.1:{uas.port}"
    with socket.create_connection(("127.0.0.1", p), timeout=3) as s:
        # the Via names a port nobody listens on: replies take the connection
        inv = (f"INVITE {ruri} SIP/2.0\r\n"
               "Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-t1\r\nMax-Forwards: 70\r\n"
               "From: <sip:alice@127.0.0.1>;tag=a-t1\r\nTo: <sip:bob@127.0.0.1>\r\n"
               "Call-ID: tcp1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
        s.sendall(inv.encode())
        got = uas.recv()
        assert first(got) == f"INVITE {ruri} SIP/2.0"
        assert header(got, "via")[1] == "SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-t1"
        uas.send(reply(got, 180, "Ringing", to_tag="t1"), p)
        t0 = time.monotonic()
        msgs = read_stream(s, b"SIP/2.0 408")
        firsts = [m.split(b"\r\n", 1)[0] for m in msgs]
        assert firsts == [b"SIP/2.0 100 Giving a try", b"SIP/2.0 180 Ringing",
                          b"SIP/2.0 408 Request Timeout"], msgs
        assert 1.5 < time.monotonic() - t0 < 3.5
        assert b"\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-t1\r\n" in msgs[2]
        assert re.search(rb"\r\nTo: <sip:bob@127\.0\.0\.1>;tag=[0-9a-f]{32}-[0-9a-f]{4}\r\n", msgs[2])


# ---------------------------------------------------------------- mixed transports

MIXED_CFG = """
log_stderror=yes
debug=1
# one UDP receiver: SIPp sends ACK and BYE back to back, and two receivers
# may hand them to TCP main in either order (the UAS then aborts the call)
children=1
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
tcp_children=2
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "uri.so"

route {
    if (method == "OPTIONS" && $rU == "ping") {
        sl_send_reply("200", "Alive");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (method == "ACK") {
            if (t_check_trans()) t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (method == "INVITE") {
        record_route();
    }
    # the other transport: a UDP caller reaches the TCP callee and back
    if (proto == UDP) {
        $du = "sip:127.0.0.1:@TCPUAS@;transport=tcp";
    } else {
        $du = "sip:127.0.0.1:@UDPUAS@;transport=udp";
    }
    if (!t_relay()) {
        sl_reply_error();
    }
}
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("tm_mixed")
    tcp_uas, udp_uas = free_port(), free_port()
    cfg = MIXED_CFG.replace("@TCPUAS@", str(tcp_uas)).replace("@UDPUAS@", str(udp_uas))
    server = SipServer(tmp, cfg).start()
    server.uas_ports = {"t1": tcp_uas, "u1": udp_uas}  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")
@pytest.mark.parametrize(("caller", "callee"), [("u1", "t1"), ("t1", "u1")],
                         ids=["udp-to-tcp", "tcp-to-udp"])
def test_50_calls_across_transports(mixed: SipServer, caller: str, callee: str) -> None:
    tmp: Path = mixed.tmp
    uas = Uas(tmp, mixed.uas_ports[callee], scenario="tm_uas.xml",  # type: ignore[attr-defined]
              transport=callee)
    try:
        time.sleep(0.3)
        result = run_uac(tmp, f"127.0.0.1:{mixed.port}", calls=50, rate=50,
                         scenario="tm_uac.xml", transport=caller, timeout=20)
    finally:
        uas.stop()
    assert result["successful"] == 50, (result, mixed.log()[-2000:])
    assert result["failed"] == 0
