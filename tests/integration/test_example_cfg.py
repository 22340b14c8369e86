"""The shipped opensips.cfg.example runs (what `make run` starts)."""

from __future__ import annotations

from pathlib import Path

from tests.dbfixtures import create_schema

from .server import ROOT, SipServer, udp_exchange
from .test_server_mi import sipctl


def test_example_cfg_runs_and_answers(tmp_path: Path) -> None:
    fifo = tmp_path / "example_fifo"
    cfg = ((ROOT / "opensips.cfg.example").read_text()
           .replace("listen=udp:127.0.0.1:5060", "listen=udp:127.0.0.1:@PORT@")
           .replace("/tmp/sipserver_example_fifo", str(fifo))
           .replace("debug=3", "debug=1"))
    # the example keeps its database beside the config file (make run creates it)
    create_schema(f"sqlite://{tmp_path}/sipserver.db", ["version", "location", "subscriber"])
    server = SipServer(tmp_path, cfg).start()
    try:
        port = server.port
        ok = udp_exchange(port, (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-ex1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=f\r\nTo: <sip:b@example.com>\r\n"
            "Call-ID: ex1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode())
        assert ok is not None and ok.startswith(b"SIP/2.0 200 OK\r\n")
        nobody = udp_exchange(port, (
            f"INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-ex2;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=f\r\nTo: <sip:bob@example.com>\r\n"
            "Call-ID: ex2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").encode())
        assert nobody is not None and nobody.startswith(b"SIP/2.0 404 Not Found\r\n")
        ps = sipctl(f"fifo:{fifo}", "ps")  # mi_fifo and sipctl both default to /tmp/ replies
        assert ps.returncode == 0 and "Type=MI FIFO" in ps.stdout, ps.stdout + ps.stderr
    finally:
        assert server.stop() == 0
