"""sl module and core/reply.py: stateless replies byte for byte."""

from __future__ import annotations

import hashlib

import pytest

from sipserver.core import errors, reply
from sipserver.core.context import MsgContext
from sipserver.core.exports import ERROR_ROUTE, REQUEST_ROUTE, FixupError, Registry
from sipserver.core.modload import load_module
from sipserver.core.reply import crc_suffix, err2reason, send_stateless_reply
from sipserver.core.runtime import Destination, SocketInfo
from sipserver.modules import sl, textops
from sipserver.sip.message import parse_message

from .util import INVITE, call, cmd, fix, make_ctx, sent

TAG_PREFIX = "8a9ef3343ed82c892f44ee4222bd1e51"  # md5("OpenSIPS-stateless" "192.0.2.1" "5060")
SL_TAG = TAG_PREFIX + ".2bff"  # crc-ccitt of "10.0.0.1" "5060" "z9hG4bK776asdhds"


def wire(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def test_exports_and_load() -> None:
    mod = load_module(Registry(), "sl.so")
    assert mod.name == "sl"
    assert mod.params == {"enable_stats": 1}
    c = cmd(sl.exports, "sl_send_reply", 2)
    assert c.route_types == REQUEST_ROUTE | ERROR_ROUTE
    assert cmd(sl.exports, "sl_reply_error", 0).route_types == REQUEST_ROUTE


def test_send_reply_exact_bytes() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, sl.exports, "sl_send_reply", "404", "Not Here") == 1
    [(sock, dest, data)] = sent(ctx)
    assert sock is ctx.rcv
    assert dest == Destination("udp", "198.51.100.7", 5060)  # source IP, Via port
    assert data == wire(
        "SIP/2.0 404 Not Here\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;received=198.51.100.7;branch=z9hG4bK776asdhds\n"
        f"To: Bob <sip:bob@example.com>;tag={SL_TAG}\n"
        "From: Alice <sip:alice@example.com>;tag=1928301774\n"
        "Call-ID: a84b4c76e66710@pc33\n"
        "CSeq: 314159 INVITE\n"
        "Server: OpenSIPS (1.6.4-notls (x86_64/linux))\n"
        "Content-Length: 0\n"
        "\n"
    )


def test_tag_recipe() -> None:
    assert hashlib.md5(b"OpenSIPS-stateless192.0.2.15060").hexdigest() == TAG_PREFIX
    # values from 1.6's crcitt_string_array (lowest nibble first, '0'-padded)
    assert crc_suffix(["10.0.0.1", "5060", "z9hG4bK776asdhds"]) == "2bff"
    assert crc_suffix(["[::1]", "", "abc"]) == "0b21"
    assert crc_suffix(["host.example.com", "5060", "z9hG4bKabc"]) == "e510"
    assert crc_suffix(["", "5060", "z9hG4bKabc"]) == "5862"


def test_tag_uses_first_udp_socket_and_via_port_text() -> None:
    v6 = SocketInfo("udp", "2001:db8::1", 5062)
    ctx = make_ctx(INVITE.replace("10.0.0.1:5060", "10.0.0.1:05060"), sock=v6)
    ctx.rt.sockets.insert(0, SocketInfo("tcp", "192.0.2.9", 5060))
    prefix = hashlib.md5(b"OpenSIPS-stateless[2001:db8::1]5062").hexdigest()
    assert reply.sl_totag(ctx) == prefix + "." + crc_suffix(["10.0.0.1", "05060", "z9hG4bK776asdhds"])


def test_rport_and_received() -> None:
    ctx = make_ctx(INVITE.replace(";branch=z9hG4bK776asdhds", ";rport;branch=z9hG4bK776asdhds"))
    assert call(ctx, sl.exports, "sl_send_reply", "200", "OK") == 1
    [(_, dest, data)] = sent(ctx)
    assert dest == Destination("udp", "198.51.100.7", 40000)
    assert b"Via: SIP/2.0/UDP 10.0.0.1:5060;received=198.51.100.7;rport=40000;branch=z9hG4bK776asdhds\r\n" in data


def test_force_rport_uses_source_port() -> None:
    ctx = make_ctx(INVITE, src_ip="10.0.0.1", src_port=5070)
    ctx.force_rport = True
    assert call(ctx, sl.exports, "sl_send_reply", "200", "OK") == 1
    [(_, dest, data)] = sent(ctx)
    assert dest == Destination("udp", "10.0.0.1", 5070)
    assert b";received=10.0.0.1;rport=5070;branch" in data


def test_via_without_port_defaults_to_5060_even_with_maddr() -> None:
    ctx = make_ctx(INVITE.replace("10.0.0.1:5060;", "pc33.example.com;maddr=10.9.9.9;"))
    assert call(ctx, sl.exports, "sl_send_reply", "486", "Busy") == 1
    assert sent(ctx)[0][1] == Destination("udp", "198.51.100.7", 5060)


def test_no_tag_below_180_and_existing_tag_kept() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, sl.exports, "sl_send_reply", "100", "Trying") == 1
    assert b"To: Bob <sip:bob@example.com>\r\n" in sent(ctx)[0][2]
    ctx = make_ctx(INVITE.replace("To: Bob <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=abc"))
    assert call(ctx, sl.exports, "sl_send_reply", "481", "No Such Call") == 1
    assert b"To: <sip:bob@example.com>;tag=abc\r\n" in sent(ctx)[0][2]


def test_ack_is_never_answered() -> None:
    ack = INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK")
    ctx = make_ctx(ack)
    assert call(ctx, sl.exports, "sl_send_reply", "404", "Not Found") == 0
    assert sent(ctx) == []


def test_code_and_reason_formats() -> None:
    ctx = make_ctx(INVITE)
    ctx.rt.script_vars["c"] = "486"
    assert call(ctx, sl.exports, "sl_send_reply", "$var(c)", "Busy at $ru") == 1
    assert sent(ctx)[0][2].startswith(b"SIP/2.0 486 Busy at sip:bob@example.com\r\n")
    for bad in ("99", "700", "4x4", ""):
        ctx.rt.script_vars["c"] = bad
        assert call(ctx, sl.exports, "sl_send_reply", "$var(c)", "x") == -1
    ctx.rt.script_vars["r"] = ""
    assert call(ctx, sl.exports, "sl_send_reply", "404", "$var(r)") == -1
    assert len(sent(ctx)) == 1


@pytest.mark.parametrize(("code", "reason"), [("700", "x"), ("99", "x"), ("+200", "x"), ("", "x"), ("200", "")])
def test_fixup_rejects(code: str, reason: str) -> None:
    with pytest.raises(FixupError):
        fix(sl.exports, "sl_send_reply", code, reason)


def test_redirect_lists_destination_set() -> None:
    ctx = make_ctx(INVITE)
    ctx.set_ruri("sip:bob@10.1.1.1")
    ctx.q = 500
    from sipserver.core.context import Branch

    ctx.branches.append(Branch("sip:bob@10.2.2.2"))
    ctx.branches.append(Branch("sip:bob@10.3.3.3", q=25))
    assert call(ctx, sl.exports, "sl_send_reply", "302", "Moved") == 1
    data = sent(ctx)[0][2]
    assert (
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:bob@10.1.1.1>;q=0.5, sip:bob@10.2.2.2, <sip:bob@10.3.3.3>;q=0.025\r\n"
        b"Server: " in data
    )


def test_reply_lumps_server_and_warning() -> None:
    ctx = make_ctx(INVITE, config={"server_signature": 0, "sip_warning": 1})
    assert call(ctx, textops.exports, "append_to_reply", "X-Hint: $ru\r\n") == 1
    assert call(ctx, sl.exports, "sl_send_reply", "403", "Forbidden") == 1
    data = sent(ctx)[0][2].decode()
    assert "Server:" not in data
    head = data.split("CSeq: 314159 INVITE\r\n", 1)[1]
    assert head.startswith("X-Hint: sip:bob@example.com\r\nContent-Length: 0\r\nWarning: 392 192.0.2.1:5060 ")
    assert '"Noisy feedback tells: pid=' in head
    assert "req_src_ip=198.51.100.7 req_src_port=40000 in_uri=sip:bob@example.com" in head
    assert head.endswith(' via_cnt==1"\r\n\r\n')


def test_explicit_tag_headers_and_body() -> None:
    ctx = make_ctx(INVITE)
    ret = send_stateless_reply(ctx, 200, "OK", to_tag="t1", extra_headers="X-A: 1\r\n", body="hello")
    assert ret == 1
    data = sent(ctx)[0][2]
    assert b"To: Bob <sip:bob@example.com>;tag=t1\r\n" in data
    assert data.endswith(b"X-A: 1\r\nServer: OpenSIPS (1.6.4-notls (x86_64/linux))\r\nContent-Length: 5\r\n\r\nhello")


def test_send_failure() -> None:
    ctx = make_ctx(INVITE, fail=True)
    assert call(ctx, sl.exports, "sl_send_reply", "404", "Not Found") == -1


def test_no_receiving_socket_picks_one() -> None:
    ctx = make_ctx(INVITE)
    ctx.rcv = None
    assert call(ctx, sl.exports, "sl_send_reply", "404", "Not Found") == 1
    assert sent(ctx)[0][0] == ctx.rt.transport.sockets[0]


class _ErrCtx(MsgContext):
    __slots__ = ("ser_error",)


def test_sl_reply_error() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, sl.exports, "sl_reply_error") == 1
    assert sent(ctx)[0][2].startswith(b"SIP/2.0 500 Server error occurred (1/SL)\r\n")
    ctx2 = _ErrCtx(ctx.rt, parse_message(wire(INVITE)), src_ip="198.51.100.7", src_port=1, rcv=ctx.rcv)
    ctx2.ser_error = errors.E_BAD_URI
    assert call(ctx2, sl.exports, "sl_reply_error") == 1
    assert sent(ctx)[1][2].startswith(b"SIP/2.0 475 Bad URI (475/SL)\r\n")


def test_err2reason() -> None:
    assert err2reason(errors.E_BAD_TO) == (400, "Bad To (13/SL)")
    assert err2reason(errors.E_TOO_MANY_BRANCHES) == (500, "Forking capacity exceeded (12/SL)")
    assert err2reason(errors.E_SEND) == (477, "Send failed (477/SL)")
    assert err2reason(errors.E_OUT_OF_MEM) == (500, "Server error occurred (2/SL)")


def test_ack_to_our_reply_is_absorbed() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, sl.exports, "sl_send_reply", "404", "Not Found") == 1
    ack = (INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK")
           .replace("To: Bob <sip:bob@example.com>", f"To: Bob <sip:bob@example.com>;tag={SL_TAG}"))
    assert sl.filter_ack(make_ctx(ack)) == 0
    other = ack.replace(SL_TAG, TAG_PREFIX + ".0000")
    assert sl.filter_ack(make_ctx(other)) == 1
    assert sl.filter_ack(make_ctx(INVITE)) == 1
