"""MI through the real server: mi_fifo and mi_datagram processes forked by the
master, driven with sipctl; statistics counted by the workers in shared memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .server import SipServer, free_port, udp_exchange

ROOT = Path(__file__).resolve().parents[2]

CFG = """
log_stderror=yes
debug=1
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "mi_fifo.so"
loadmodule "mi_datagram.so"
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


def test_mi_over_fifo_and_datagram_with_the_real_server(tmp_path: Path) -> None:
    fifo = tmp_path / "sipserver_fifo"
    mi_port = free_port()
    cfg = (CFG.replace("@FIFO@", str(fifo)).replace("@DIR@", str(tmp_path) + "/")
           .replace("@MIPORT@", str(mi_port)))
    server = SipServer(tmp_path, cfg).start()
    try:
        for i in range(3):
            udp_exchange(server.port, (
                f"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{i}\r\n"
                f"From: <sip:a@example.com>;tag=f{i}\r\nTo: <sip:b@example.com>\r\n"
                f"Call-ID: mi-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode())
        out = sipctl(f"fifo:{fifo}", "ps", reply_dir=str(tmp_path))
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert any("Type=attendant" in line for line in lines)
        assert sum("Type=SIP receiver udp:127.0.0.1:" in line for line in lines) == 2
        assert any("Type=timer" in line for line in lines)
        assert any("MI FIFO" in line or "fifo" in line.lower() for line in lines)
        stats = sipctl(f"fifo:{fifo}", "fifo", "get_statistics", "core:", "sl:",
                       reply_dir=str(tmp_path))
        assert stats.returncode == 0, stats.stderr
        # the OPTIONS probe of wait_ready counts too: at least our 3 requests
        rcv = [ln for ln in stats.stdout.splitlines() if ln.startswith("core:rcv_requests = ")]
        assert rcv and int(rcv[0].split("= ")[1]) >= 3, stats.stdout
        assert "sl:2xx_replies = " in stats.stdout
        shm = sipctl(f"udp:127.0.0.1:{mi_port}", "fifo", "get_statistics", "total_size")
        assert shm.stdout == f"shmem:total_size = {64 * 1024 * 1024}\n", shm  # no -m: 64 MB
        up = sipctl(f"udp:127.0.0.1:{mi_port}", "uptime")
        assert up.returncode == 0, up.stderr
        assert "Up time::" in up.stdout or "Uptime::" in up.stdout, up.stdout
        unknown = sipctl(f"udp:127.0.0.1:{mi_port}", "fifo", "no_such_command")
        assert unknown.returncode != 0 and "not available" in (unknown.stdout + unknown.stderr)
    finally:
        assert server.stop() == 0
    assert not fifo.exists()


def test_sipctl_when_the_server_is_not_running(tmp_path: Path) -> None:
    out = sipctl(f"fifo:{tmp_path / 'nope_fifo'}", "ps", reply_dir=str(tmp_path))
    assert out.returncode == 3
    assert "does not exist" in out.stderr and "is sipserver running" in out.stderr


def test_the_m_option_sizes_shared_memory(tmp_path: Path) -> None:
    mi_port = free_port()
    cfg = (CFG.replace("@FIFO@", str(tmp_path / "fifo")).replace("@DIR@", str(tmp_path) + "/")
           .replace("@MIPORT@", str(mi_port)))
    server = SipServer(tmp_path, cfg, args=["-m", "16"]).start()
    try:
        shm = sipctl(f"udp:127.0.0.1:{mi_port}", "fifo", "get_statistics", "total_size")
        assert shm.stdout == f"shmem:total_size = {16 * 1024 * 1024}\n", shm
    finally:
        assert server.stop() == 0
