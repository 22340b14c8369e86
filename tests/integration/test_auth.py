"""auth + auth_db in the running server: digest REGISTERs from SIPp across
several receiver processes (the nonce secret and the one-time nonce index
are shared), and replay / wrong password on the wire."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbfixtures import connect, create_schema

from .server import SipServer, udp_exchange
from .sipp import have_sipp, run_uac

AUTH_CFG = """
log_stderror=yes
debug=1
children=3
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "signaling.so"
loadmodule "db_sqlite.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("auth_db", "db_url", "@DB@")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
route {
    if (method == "OPTIONS") {
        sl_send_reply("200", "Alive");
        exit;
    }
    if (!www_authorize("", "subscriber")) {
        www_challenge("", "1");
        exit;
    }
    consume_credentials();
    sl_send_reply("200", "OK");
}
"""


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SipServer]:
    url = f"sqlite://{tmp_path / 'auth.db'}"
    create_schema(url, ["subscriber"])
    con = connect(url)
    try:
        con.insert("subscriber", ("username", "domain", "password"),
                   ("alice", "example.com", "secret"))
    finally:
        con.close()
    srv = SipServer(tmp_path, AUTH_CFG.replace("@DB@", url)).start()
    yield srv
    srv.stop()


def register(port: int, cseq: int, auth_hf: str = "") -> bytes:
    return (
        "REGISTER sip:example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-reg{cseq}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=r1\r\n"
        "To: <sip:alice@example.com>\r\n"
        "Call-ID: auth-wire@127.0.0.1\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        "Contact: <sip:alice@127.0.0.1:5999>\r\n"
        f"{auth_hf}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answer(nonce: str, password: str = "secret") -> str:
    ha1 = md5(f"alice:example.com:{password}")
    ha2 = md5("REGISTER:sip:example.com")
    resp = md5(f"{ha1}:{nonce}:00000001:feed:auth:{ha2}")
    return ('Authorization: Digest username="alice", realm="example.com", '
            f'nonce="{nonce}", uri="sip:example.com", qop=auth, nc=00000001, '
            f'cnonce="feed", response="{resp}"\r\n')


def test_challenge_answer_replay_and_wrong_password(server: SipServer) -> None:
    first = udp_exchange(server.port, register(server.port, 1))
    assert first is not None and first.startswith(b"SIP/2.0 401 Unauthorized\r\n")
    m = re.search(rb'\r\nWWW-Authenticate: Digest realm="example.com", '
                  rb'nonce="([0-9a-f]{48})", qop="auth"\r\n', first)
    assert m is not None, first
    nonce = m.group(1).decode()
    ok = udp_exchange(server.port, register(server.port, 2, answer(nonce)))
    assert ok is not None and ok.startswith(b"SIP/2.0 200 OK\r\n"), ok
    # the same credentials again: the nonce was used, so stale
    replay = udp_exchange(server.port, register(server.port, 3, answer(nonce)))
    assert replay is not None and replay.startswith(b"SIP/2.0 401 Unauthorized\r\n")
    assert b', qop="auth", stale=true\r\n' in replay
    fresh = re.search(rb'nonce="([0-9a-f]{48})"', replay).group(1).decode()
    assert fresh != nonce
    bad = udp_exchange(server.port, register(server.port, 4, answer(fresh, "wrong")))
    assert bad is not None and bad.startswith(b"SIP/2.0 401 Unauthorized\r\n")
    assert b"stale" not in bad


@pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")
def test_sipp_registers_with_digest(server: SipServer, tmp_path: Path) -> None:
    result = run_uac(tmp_path, f"127.0.0.1:{server.port}", calls=200, rate=100,
                     scenario="auth_register.xml", timeout=30)
    assert result["successful"] == 200, (result, server.log())
    assert result["failed"] == 0
