"""registrar's tcp_persistent_flag on the wire: a TCP connection a contact was
registered over stays open for the registration's lifetime, although it is
idle longer than tcp_connection_lifetime (1.6 keeps `tcpconn->lifetime`);
without the flag the idle connection is closed."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from .server import SipServer

CFG = """
log_stderror=yes
debug=1
children=1
tcp_children=1
tcp_connection_lifetime=1
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "signaling.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "tcp_persistent_flag", 7)
route {
    if (method == "OPTIONS") { sl_send_reply("200", "Alive"); exit; }
    if ($hdr(X-Keep) == "yes") setflag(7);
    save("location");
}
"""


def register(port: int, user: str, keep: bool) -> bytes:
    return (f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-{user}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\n"
            f"Call-ID: {user}-tcp\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@127.0.0.1:9;transport=tcp>\r\nExpires: 60\r\n"
            f"X-Keep: {'yes' if keep else 'no'}\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def read_reply(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def closed_within(s: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection before `seconds` pass."""
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False


@pytest.fixture
def server(tmp_path: Path):
    srv = SipServer(tmp_path, CFG).start()
    yield srv
    assert srv.stop() == 0


@pytest.mark.parametrize("keep", [True, False])
def test_tcp_persistent_flag_keeps_the_connection_of_a_registration(server: SipServer,
                                                                     keep: bool) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(register(server.port, "keep" if keep else "drop", keep))
        assert read_reply(s).startswith(b"SIP/2.0 200 OK\r\n")
        if keep:
            assert not closed_within(s, 3.5)  # idle 3.5 s > tcp_connection_lifetime
            s.settimeout(5)  # and still usable
            s.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;"
                      b"branch=z9hG4bK-o\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\n"
                      b"Call-ID: o\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
            assert read_reply(s).startswith(b"SIP/2.0 200 Alive\r\n")
        else:
            start = time.monotonic()
            assert closed_within(s, 5)
            assert time.monotonic() - start < 4.5
