"""t_uac_dlg is asynchronous (1.6 MI_ASYNC_RPL_FLAG): the MI process serves other
commands while the request waits for its final reply.

A real server, a UAS on UDP that answers 1 s late, and MI clients on the
same FIFO and on the same (single) mi_datagram process: `uptime`/`version`
sent while a t_uac_dlg waits are answered at once, before the UAS even
answers; then the t_uac_dlg answer comes, byte for byte what the UAS sent.
With pass_provisional_replies each 1xx is an answer of its own (one FIFO
reply write, one datagram). Over mi_http the request waits in its own
thread while other requests are answered.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from sipserver.ctl.mi_client import build_request

from .server import SipServer, free_port

DELAY = 1.0

CFG = """
log_stderror=yes
debug=1
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "mi_fifo.so"
loadmodule "mi_datagram.so"
loadmodule "httpd.so"
loadmodule "mi_http.so"
modparam("httpd", "ip", "127.0.0.1")
modparam("httpd", "port", @HTTPPORT@)
modparam("tm", "fr_timer", 4)
modparam("tm", "wt_timer", 1)
modparam("tm", "pass_provisional_replies", 1)
modparam("mi_fifo", "fifo_name", "@FIFO@")
modparam("mi_fifo", "reply_dir", "@DIR@")
modparam("mi_datagram", "socket_name", "udp:127.0.0.1:@MIPORT@")
route {
    sl_send_reply("200", "Alive");
}
"""

HDRS = '"From: <sip:mi@127.0.0.1>\r\nTo: <sip:peer@127.0.0.1>\r\n"'


class SlowPeer(threading.Thread):
    """A UDP UAS: `200 Slow` DELAY seconds after a request (user `ring`: a 180 first)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.seen: set[str] = set()
        self.sent: list[tuple[float, bytes]] = []  # (monotonic time, reply)
        self.stop = False

    def reply(self, request: bytes, code: str, tag: bool) -> bytes:
        head = request.decode("latin-1").split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [h for h in head[1:] if h.split(":", 1)[0].lower() in ("via", "from", "call-id",
                                                                      "cseq")]
        to = next(h for h in head if h.lower().startswith("to:"))
        return ((f"SIP/2.0 {code}\r\n" + "\r\n".join(keep) + f"\r\n{to}"
                 + (";tag=slow1" if tag else "") + "\r\n"
                 f"Contact: <sip:slow@127.0.0.1:{self.port}>\r\nContent-Length: 0\r\n\r\n")
                .encode())

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((time.monotonic(), data))
        self.sock.sendto(data, addr)

    def run(self) -> None:
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            callid = next(h for h in data.decode().split("\r\n") if h.startswith("Call-ID:"))
            if callid in self.seen:  # a retransmission
                continue
            self.seen.add(callid)
            if data.startswith(b"OPTIONS sip:ring@"):
                self.send(self.reply(data, "180 Ringing", False), addr)
            threading.Timer(DELAY, self.send, (self.reply(data, "200 Slow", True), addr)).start()

    def final_replies(self) -> list[tuple[float, bytes]]:
        return [(t, d) for t, d in self.sent if d.startswith(b"SIP/2.0 200 ")]


class FifoClient:
    """A raw client of the server FIFO with its own reply FIFO, read in every write."""

    def __init__(self, fifo: Path, reply_dir: Path, name: str) -> None:
        self.fifo = fifo
        self.name = name
        self.path = reply_dir / name
        os.mkfifo(self.path, 0o600)
        self.rfd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)

    def send(self, command: str, *args: str) -> None:
        wfd = os.open(self.fifo, os.O_WRONLY)
        try:
            os.write(wfd, build_request(command, list(args), fifo_reply=self.name))
        finally:
            os.close(wfd)

    def ready(self) -> bool:
        """Has the server written something that is not read yet?"""
        return any(ev & select.POLLIN for _, ev in _poll(self.rfd, 0))

    def read_reply(self, timeout: float = 10.0) -> bytes:
        """One reply: what one opening of the reply FIFO by the server wrote."""
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        while time.monotonic() < deadline:
            if not _poll(self.rfd, 50):
                continue
            data = os.read(self.rfd, 65536)
            if data:
                chunks.append(data)
            elif chunks:  # the server closed its end: that reply is complete
                return b"".join(chunks)
            else:  # the previous writer's hang-up: wait for the next one
                time.sleep(0.01)
        raise AssertionError(f"no complete reply within {timeout} s (got {chunks!r})")

    def close(self) -> None:
        os.close(self.rfd)
        os.unlink(self.path)


def rpc(url: str, method: str, params: list[str] | None = None) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        body["params"] = params
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _poll(fd: int, ms: int) -> list[tuple[int, int]]:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return p.poll(ms)


def expected_answer(peer_reply: bytes, target: str, datagram: bool) -> bytes:
    """1.6's t_uac_dlg tree for a received reply, as the text transports print it."""
    first, _, rest = peer_reply.partition(b"\r\n")
    status = first[len(b"SIP/2.0 "):]
    uris = f"{target}\n{target}\n.\n" if status.startswith(b"2") else ".\n.\n.\n"
    return b"200 OK\n" + status + b"\n" + uris.encode() + rest + b"\n" + (b"" if datagram else b"\n")


def test_t_uac_dlg_does_not_block_the_mi(tmp_path: Path) -> None:
    fifo = tmp_path / "sipserver_fifo"
    mi_port = free_port()
    http_port = free_port(socket.SOCK_STREAM)
    cfg = (CFG.replace("@FIFO@", str(fifo)).replace("@DIR@", str(tmp_path) + "/")
           .replace("@MIPORT@", str(mi_port)).replace("@HTTPPORT@", str(http_port)))
    peer = SlowPeer()
    peer.start()
    server = SipServer(tmp_path, cfg).start()
    deadline = time.monotonic() + 10
    while not fifo.exists() and time.monotonic() < deadline:  # the MI FIFO process makes it
        time.sleep(0.05)
    a = FifoClient(fifo, tmp_path, "reply_a")
    b = FifoClient(fifo, tmp_path, "reply_b")
    udp_a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_a.settimeout(10)
    udp_b.settimeout(10)
    mi = ("127.0.0.1", mi_port)
    target = f"sip:slow@127.0.0.1:{peer.port}"
    try:
        # ---- FIFO: t_uac_dlg, then uptime on the same FIFO while it waits
        ruri = f"sip:slow@127.0.0.1:{peer.port}"
        start = time.monotonic()
        a.send("t_uac_dlg", "OPTIONS", ruri, ".", ".", HDRS)
        time.sleep(0.2)  # the MI process has taken the request and sent the OPTIONS
        b.send("uptime")
        up = b.read_reply(5)
        answered = time.monotonic()
        assert up.startswith(b"200 OK\nNow:: "), up
        assert b"Up time:: " in up
        assert answered - start < DELAY
        assert not peer.final_replies(), "uptime waited for the UAS"
        assert not a.ready()  # the t_uac_dlg answer is not written yet
        got = a.read_reply(10)
        (sent_at, sent), = peer.final_replies()
        assert time.monotonic() >= sent_at >= start + DELAY - 0.05
        assert got == expected_answer(sent, target, datagram=False)

        # ---- mi_datagram (one process): the same, with version
        peer.sent.clear()
        start = time.monotonic()
        udp_a.sendto(build_request("t_uac_dlg", ["OPTIONS", ruri, ".", ".", HDRS],
                                   fifo_reply=None), mi)
        time.sleep(0.2)
        udp_b.sendto(build_request("version", [], fifo_reply=None), mi)
        version = udp_b.recv(65535)
        assert version.startswith(b"200 OK\nServer:: "), version
        assert time.monotonic() - start < DELAY and not peer.final_replies()
        got = udp_a.recv(65535)
        (sent_at, sent), = peer.final_replies()
        assert sent_at >= start + DELAY - 0.05
        assert got == expected_answer(sent, target, datagram=True)

        # ---- pass_provisional_replies: the 180 is an answer of its own
        peer.sent.clear()
        ring = f"sip:ring@127.0.0.1:{peer.port}"
        udp_a.sendto(build_request("t_uac_dlg", ["OPTIONS", ring, ".", ".", HDRS],
                                   fifo_reply=None), mi)
        first = udp_a.recv(65535)
        second = udp_a.recv(65535)
        ringing, final = peer.sent[0][1], peer.final_replies()[0][1]
        assert ringing.startswith(b"SIP/2.0 180 Ringing\r\n")
        assert first == expected_answer(ringing, target, datagram=True)
        assert second == expected_answer(final, target, datagram=True)

        # ---- mi_http: the t_uac_dlg request waits in its own thread, others go on
        peer.sent.clear()
        url = f"http://127.0.0.1:{http_port}/mi"
        slow: dict[str, Any] = {}
        start = time.monotonic()
        caller = threading.Thread(target=lambda: slow.update(
            rpc(url, "t_uac_dlg", ["OPTIONS", ruri, ".", ".", HDRS.strip('"')])))
        caller.start()
        time.sleep(0.2)
        up = rpc(url, "uptime")
        assert "Up time" in up["result"] and time.monotonic() - start < DELAY
        assert not peer.final_replies() and not slow
        caller.join(10)
        (_, sent), = peer.final_replies()
        assert slow["result"] == ["200 Slow", target, target, ".",
                                  sent.decode().split("\r\n", 1)[1]]

        # over the FIFO: one write of the reply FIFO per reply
        peer.sent.clear()
        a.send("t_uac_dlg", "OPTIONS", ring, ".", ".", HDRS)
        first = a.read_reply(5)
        b.send("uptime")  # still served between the 180 and the 200
        assert b.read_reply(5).startswith(b"200 OK\nNow:: ")
        assert not peer.final_replies()
        second = a.read_reply(10)
        ringing, final = peer.sent[0][1], peer.final_replies()[0][1]
        assert first == expected_answer(ringing, target, datagram=False)
        assert second == expected_answer(final, target, datagram=False)
    finally:
        peer.stop = True
        a.close()
        b.close()
        udp_a.close()
        udp_b.close()
        assert server.stop() == 0
        peer.join(2)
