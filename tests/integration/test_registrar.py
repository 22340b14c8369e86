"""registrar in the running server: SIPp registers alice and calls her
through the proxy (lookup sends the INVITE to her registered contact, the
SIPp UAS checks its Request-URI), and a registration in usrloc db_mode 1
on SQLite that a restart of the server loads back."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbfixtures import connect, create_schema

from .server import SipServer, free_port, udp_exchange
from .sipp import SCENARIOS, Uas, have_sipp, run_uac

CFG = """
log_stderror=yes
debug=2
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "uri.so"
loadmodule "signaling.so"
@DBMOD@
loadmodule "usrloc.so"
loadmodule "registrar.so"
@PARAMS@
route {
    if (method == "OPTIONS") {
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
    if (method == "REGISTER") {
        save("location");
        exit;
    }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    if (method == "INVITE") record_route();
    t_relay();
}
"""


def config(db_url: str | None = None) -> str:
    if db_url is None:
        return CFG.replace("@DBMOD@", "").replace("@PARAMS@", "")
    return (CFG.replace("@DBMOD@", 'loadmodule "db_sqlite.so"')
            .replace("@PARAMS@", f'modparam("usrloc", "db_mode", 1)\n'
                                 f'modparam("usrloc", "db_url", "{db_url}")\n'))


def register(port: int, contact: str, cseq: int, expires: int | None = 600) -> bytes:
    lines = [
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-regtest{cseq}",
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=r1",
        "To: <sip:alice@example.com>",
        "Call-ID: registrar-restart@127.0.0.1",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def invite(port: int, local_port: int) -> bytes:
    return (
        f"INVITE sip:alice@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-inv-after-restart\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:bob@example.com>;tag=b1\r\n"
        "To: <sip:alice@example.com>\r\n"
        "Call-ID: registrar-invite@127.0.0.1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[SipServer]:
    srv = SipServer(tmp_path, config()).start()
    yield srv
    srv.stop()


def test_unknown_aor_gets_404_and_bad_register_400(proxy: SipServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        s.sendto(invite(proxy.port, s.getsockname()[1]), ("127.0.0.1", proxy.port))
        first = s.recvfrom(65535)[0]
        assert first.startswith(b"SIP/2.0 404 Not Found\r\n"), first
    bad = udp_exchange(proxy.port, register(proxy.port, "<sip:alice@127.0.0.1:5999>;q=7", 1))
    assert bad is not None and bad.startswith(b"SIP/2.0 400 Bad Request\r\n"), bad
    assert b"\r\nP-Registrar-Error: Invalid q param in contact\r\n" in bad


@pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")
def test_sipp_register_then_call_reaches_contact(proxy: SipServer, tmp_path: Path) -> None:
    uas_port = free_port()
    scenario = tmp_path / "registrar_uac.xml"
    scenario.write_text((SCENARIOS / "registrar_uac.xml").read_text()
                        .replace("@UAS_PORT@", str(uas_port)))
    uas = Uas(tmp_path, uas_port, scenario="registrar_uas.xml")
    try:
        result = run_uac(tmp_path, f"127.0.0.1:{proxy.port}", calls=5, rate=5,
                         scenario=str(scenario), timeout=30)
    finally:
        uas.stop()
    errors = (tmp_path / "uac_err.log").read_text() if (tmp_path / "uac_err.log").exists() else ""
    assert result["successful"] == 5, (result, errors, proxy.log())
    assert result["failed"] == 0


def test_db_mode_1_registration_survives_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'ul.db'}"
    create_schema(url, ["location"])
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    phone.settimeout(5)
    contact = f"sip:alice@127.0.0.1:{phone.getsockname()[1]};ob"
    srv = SipServer(tmp_path, config(url))
    try:
        srv.start()
        ok = udp_exchange(srv.port, register(srv.port, f"<{contact}>", 1))
        assert ok is not None and ok.startswith(b"SIP/2.0 200 OK\r\n"), (ok, srv.log())
        assert f"\r\nContact: <{contact}>;expires=600\r\n".encode() in ok
        assert srv.stop() == 0
        con = connect(url)
        try:
            rows = con.query("location", columns=["username", "contact", "callid", "cseq"]).rows
        finally:
            con.close()
        assert [tuple(r) for r in rows] == [("alice", contact, "registrar-restart@127.0.0.1", 1)]

        srv.start()
        # a REGISTER without Contact lists what the new server loaded
        listed = udp_exchange(srv.port, register(srv.port, "", 2, expires=None))
        assert listed is not None and listed.startswith(b"SIP/2.0 200 OK\r\n"), listed
        m = re.search(rb"\r\nContact: <([^>]+)>;expires=(\d+)\r\n", listed)
        assert m is not None, listed
        assert m.group(1).decode() == contact and 590 <= int(m.group(2)) <= 600
        # and lookup sends a call to it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
            caller.bind(("127.0.0.1", 0))
            caller.sendto(invite(srv.port, caller.getsockname()[1]), ("127.0.0.1", srv.port))
            data = phone.recvfrom(65535)[0]
        assert data.startswith(f"INVITE {contact} SIP/2.0\r\n".encode()), data
        # Contact * with Expires 0 removes the row at once (write-through)
        gone = udp_exchange(srv.port, register(srv.port, "*", 3, expires=0))
        assert gone is not None and gone.startswith(b"SIP/2.0 200 OK\r\n")
        assert b"Contact:" not in gone
        con = connect(url)
        try:
            assert len(con.query("location").rows) == 0
        finally:
            con.close()
    finally:
        phone.close()
        srv.stop()
