"""`make run`'s server (scripts/run-example.sh + opensips.cfg.example) on a fresh
directory: schema created, demo user added, SIPp registers alice with digest
auth, `sipctl ul show` lists her, and the contact is in SQLite after SIGTERM
(usrloc db_mode 2 flushes at shutdown).

The example is copied to a temporary directory with only its port and FIFO
changed, so the test neither touches the checkout nor needs 5060.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from .server import ROOT, alive, children_of, free_port, options_request, udp_exchange
from .sipp import have_sipp, run_uac

VENV = ROOT / ".venv"


@pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")
def test_make_run_server_registers_the_demo_user(tmp_path: Path) -> None:
    port = free_port()
    fifo = tmp_path / "fifo"
    cfg = (ROOT / "opensips.cfg.example").read_text()
    assert "listen=udp:127.0.0.1:5060" in cfg and "/tmp/sipserver_example_fifo" in cfg
    cfg = cfg.replace("listen=udp:127.0.0.1:5060", f"listen=udp:127.0.0.1:{port}")
    cfg = cfg.replace("/tmp/sipserver_example_fifo", str(fifo))
    (tmp_path / "opensips.cfg.example").write_text(cfg)
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run-example.sh", tmp_path / "scripts")
    env = dict(os.environ, VENV=str(VENV))
    env.pop("SIPSERVER_DB_URL", None)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(["bash", str(tmp_path / "scripts" / "run-example.sh")],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            # any answer will do (the probe's From is "ours": it is challenged)
            probe = options_request(port, 9).replace(b";branch=", b";rport;branch=")
            answer = udp_exchange(port, probe, timeout=0.5)
            if answer is not None and answer.startswith(b"SIP/2.0 "):
                break
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        banner = (tmp_path / "server.log").read_text()
        assert "user alice, domain 127.0.0.1, password alice-secret" in banner

        result = run_uac(tmp_path, f"127.0.0.1:{port}", calls=5, rate=10,
                         scenario="example_register.xml", timeout=20)
        assert result["successful"] == 5 and result["failed"] == 0, (
            result, (tmp_path / "server.log").read_text())

        shown = subprocess.run([str(VENV / "bin" / "sipctl"), "-m", f"fifo:{fifo}", "ul", "show"],
                               capture_output=True, text=True, timeout=30, check=False)
        assert shown.returncode == 0, shown.stderr
        assert "AOR:: alice@127.0.0.1" in shown.stdout or "alice" in shown.stdout, shown.stdout
    finally:
        kids = children_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert not [k for k in kids if alive(k)]
    with sqlite3.connect(tmp_path / "sipserver.db") as db:
        users = db.execute("SELECT username, domain, ha1 FROM subscriber").fetchall()
        rows = db.execute("SELECT username, contact FROM location").fetchall()
    assert [(u, d) for u, d, _ in users] == [("alice", "127.0.0.1")]
    assert rows and all(u == "alice" for u, _ in rows), rows
