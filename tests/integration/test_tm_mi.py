"""tm's MI commands through the real server: t_uac_dlg sent by the MI process,
answered by a raw UDP peer (the reply is received by a SIP worker and handed
back through shared memory), t_hash, and the 1.6 argument errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

from .server import SipServer, free_port

ROOT = Path(__file__).resolve().parents[2]

CFG = """
log_stderror=yes
debug=1
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "mi_fifo.so"
loadmodule "mi_datagram.so"
modparam("tm", "fr_timer", 2)
modparam("tm", "wt_timer", 1)
modparam("mi_fifo", "fifo_name", "@FIFO@")
modparam("mi_fifo", "reply_dir", "@DIR@")
modparam("mi_datagram", "socket_name", "udp:127.0.0.1:@MIPORT@")
route {
    sl_send_reply("200", "Alive");
}
"""


def sipctl(connector: str, *args: str, reply_dir: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "SIPCTL_REPLY_DIR": reply_dir} if reply_dir else None
    return subprocess.run([sys.executable, "-m", "sipserver.ctl.main", "-m", connector, *args],
                          capture_output=True, text=True, timeout=20, cwd=ROOT, check=False,
                          env=env)


class Peer(threading.Thread):
    """A UDP UA answering every request with 200 OK (with a Contact)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = False
        self.answer = True

    def run(self) -> None:
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.received.append(data)
            if not self.answer:
                continue
            head = data.decode("latin-1").split("\r\n\r\n", 1)[0].split("\r\n")
            keep = [h for h in head[1:] if h.split(":", 1)[0].lower()
                    in ("via", "from", "call-id", "cseq")]
            to = next(h for h in head if h.lower().startswith("to:"))
            reply = ("SIP/2.0 200 Fine\r\n" + "\r\n".join(keep) + f"\r\n{to};tag=peer1\r\n"
                     f"Contact: <sip:peer@127.0.0.1:{self.port}>\r\n"
                     "Content-Length: 0\r\n\r\n")
            self.sock.sendto(reply.encode(), addr)


def test_tm_mi_commands_with_the_real_server(tmp_path: Path) -> None:
    fifo = tmp_path / "sipserver_fifo"
    mi_port = free_port()
    cfg = (CFG.replace("@FIFO@", str(fifo)).replace("@DIR@", str(tmp_path) + "/")
           .replace("@MIPORT@", str(mi_port)))
    peer = Peer()
    peer.start()
    server = SipServer(tmp_path, cfg).start()
    try:
        hdrs = ('"From: <sip:mi@127.0.0.1>\r\nTo: <sip:peer@127.0.0.1>\r\n'
                'Contact: <sip:mi@!!>\r\n"')
        ruri = f"sip:peer@127.0.0.1:{peer.port}"
        out = sipctl(f"udp:127.0.0.1:{mi_port}", "fifo", "t_uac_dlg", "OPTIONS", ruri, ".", ".",
                     hdrs)
        assert out.returncode == 0, out.stdout + out.stderr
        lines = out.stdout.split("\n")
        assert lines[0] == "200 Fine"
        assert lines[1] == f"sip:peer@127.0.0.1:{peer.port}"  # remote target
        assert lines[2] == f"sip:peer@127.0.0.1:{peer.port}"  # next hop
        assert lines[3] == "."  # no route set
        assert lines[4].startswith("Via: SIP/2.0/UDP 127.0.0.1:")
        assert "tag=peer1" in out.stdout
        sent = peer.received[0].decode()
        assert sent.startswith(f"OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{server.port};")
        assert f"Contact: <sip:mi@127.0.0.1:{server.port}>\r\n" in sent
        assert "\r\nCSeq: 10 OPTIONS\r\n" in sent

        # same over the FIFO, with a given Call-ID and CSeq
        hdrs2 = hdrs[:-1] + 'Call-ID: mi-call-2\r\nCSeq: 3 OPTIONS\r\n"'
        out = sipctl(f"fifo:{fifo}", "fifo", "t_uac_dlg", "OPTIONS", ruri, ".", ".", hdrs2,
                     reply_dir=str(tmp_path))
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith("200 Fine\n")
        assert "Call-ID: mi-call-2" in peer.received[-1].decode()

        # no answer: the timer's 408 reaches the MI process
        peer.answer = False
        out = sipctl(f"udp:127.0.0.1:{mi_port}", "fifo", "t_uac_dlg", "OPTIONS", ruri, ".",
                     ".", hdrs)
        assert out.stdout == "408 Request Timeout\n.\n.\n.\n.\n", out.stdout + out.stderr

        # t_hash: 65536 buckets, over the FIFO (too big for one datagram)
        out = sipctl(f"fifo:{fifo}", "fifo", "t_hash", reply_dir=str(tmp_path))
        assert out.returncode == 0, out.stderr
        rows = out.stdout.splitlines()
        assert len(rows) == 65536
        assert rows[0].startswith("0 Current=") and " Total=" in rows[0]

        # 1.6 argument errors
        udp = f"udp:127.0.0.1:{mi_port}"
        cases = [
            (("t_uac_dlg", "OPTIONS", ruri), "400 Too few or too many arguments"),
            (("t_uac_dlg", "OPTIONS", "nonsense", ".", ".", hdrs), "400 Invalid RURI"),
            (("t_uac_dlg", "OPTIONS", ruri, ".", "udp:10.1.1.1:5060", hdrs),
             "404 Local socket not found"),
            (("t_uac_dlg", "OPTIONS", ruri, ".", ".", '"To: <sip:a@b>\r\n"'), "400 From missing"),
            (("t_uac_cancel", "nope", "1"), "481 No such transaction"),
            (("t_reply", "200", "OK", "12"), "400 Too few or too many arguments"),
            (("t_reply", "200", "OK", "x", "t", "."), "400 Invalid trans_id"),
            (("t_reply", "200", "OK", "1:2", "t", "."), "404 Transaction not found"),
        ]
        for args, expected in cases:
            out = sipctl(udp, "fifo", *args)
            assert out.returncode != 0
            assert (out.stdout + out.stderr).strip().startswith(expected), (args, out)
    finally:
        peer.stop = True
        assert server.stop() == 0
        peer.join(2)
