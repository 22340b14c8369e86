"""`-D` (fork=no): one process serves UDP and the timers, and at SIGTERM runs
the modules' destroy hooks as the master does (usrloc db_mode 2 flushes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.dbfixtures import create_schema

from .server import SipServer, udp_exchange

CFG = """
listen=udp:127.0.0.1:@PORT@
loadmodule "db_sqlite.so"
loadmodule "sl.so"
loadmodule "signaling.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_url", "sqlite://ul.db")
modparam("usrloc", "db_mode", 2)
modparam("usrloc", "timer_interval", 3600)
route {
    if (method == "REGISTER") { save("location"); exit; }
    sl_send_reply("200", "OK");
}
"""


def register(port: int, user: str) -> bytes:
    return (f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-{user}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\n"
            f"Call-ID: {user}-reg\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@192.0.2.7:5062>\r\nExpires: 600\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def test_single_process_mode_flushes_usrloc_at_sigterm(tmp_path: Path) -> None:
    create_schema(f"sqlite://{tmp_path}/ul.db", ["version", "location"])
    server = SipServer(tmp_path, CFG, args=["-D"]).start()
    try:
        for user in ("ann", "ben"):
            answer = udp_exchange(server.port, register(server.port, user))
            assert answer is not None and answer.startswith(b"SIP/2.0 200 OK\r\n"), answer
        with sqlite3.connect(tmp_path / "ul.db") as db:  # write-back: nothing yet
            assert db.execute("SELECT count(*) FROM location").fetchone()[0] == 0
    finally:
        assert server.stop() == 0, server.log()
    with sqlite3.connect(tmp_path / "ul.db") as db:
        rows = sorted(db.execute("SELECT username, contact FROM location").fetchall())
    assert rows == [("ann", "sip:ann@192.0.2.7:5062"), ("ben", "sip:ben@192.0.2.7:5062")]
