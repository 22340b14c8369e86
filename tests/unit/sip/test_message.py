"""SipMsg parsing, lumps and builders on ordinary messages."""

from __future__ import annotations

import pytest

from sipserver.sip import ParseError, parse_message
from sipserver.sip.builders import (
    add_received_lumps,
    add_via,
    build_ack,
    build_cancel,
    build_reply,
    make_branch,
    make_via,
    remove_top_via,
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKold\r\n"
    b"Max-Forwards: 70\r\n"
    b"Record-Route: <sip:p1.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>, \"Other, Alice\" <sip:a2@h>;q=0.5\r\n"
    b"Route: <sip:p2.example.com;lr>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_first_line_and_core_headers() -> None:
    m = parse_message(INVITE)
    assert m.is_request and m.method == "INVITE"
    assert m.ruri_text == "sip:bob@biloxi.example.com"
    assert m.ruri.user == "bob"
    assert m.via1.host == "pc33.atlanta.example.com" and m.via1.rport == ""
    assert m.via2.port == 5062
    assert m.to.display == "Bob" and m.to.tag is None
    assert m.from_.tag == "1928301774" and m.from_.display_name == "Alice"
    assert m.cseq.number == 314159
    assert m.max_forwards == 70
    assert [c.uri.user for c in m.contacts] == ["alice", "a2"]
    assert m.contacts[1].display_name == "Other, Alice" and m.contacts[1].q == "0.5"
    assert m.content_type.mime == "application/sdp"
    assert m.body == "v=0\n"


def test_header_lookup_is_case_insensitive_with_compact_forms() -> None:
    m = parse_message(INVITE.replace(b"Call-ID:", b"i:"))
    assert m.call_id.startswith("a84b4c76")
    assert m.header("CALL-ID").name == "i"
    assert m.header("i") is m.header("call-id")
    assert m.has_header("cOnTeNt-TyPe")


def test_missing_content_length_takes_rest_of_datagram() -> None:
    data = INVITE.replace(b"Content-Length: 4\r\n", b"") + b"more"
    m = parse_message(data)
    assert m.body == "v=0\nmore"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"INVITE",
        b"INVITE sip:a@b SIP/2.0\r\n\r\n",
        INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"),
        INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE"),
        INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"),
        INVITE.replace(b"Via: SIP/2.0/UDP pc33", b"Via: SIP/3.0/UDP pc33"),
        INVITE.replace(b"To: Bob", b"To: \"Bob"),
        INVITE.replace(b"\r\n\r\n", b"\r\n"),
        INVITE.replace(b"Max-Forwards: 70\r\n", b"Max Forwards 70\r\n"),
        b"SIP/2.0 99 Too Low\r\nVia: SIP/2.0/UDP h\r\n\r\n",
    ],
)
def test_bad_messages_raise_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(data)


def test_build_without_lumps_is_the_original() -> None:
    m = parse_message(INVITE)
    assert m.build() == INVITE


def test_lumps_add_remove_header_and_ruri() -> None:
    m = parse_message(INVITE)
    m.lumps.add_header("X-Added: 1")
    m.lumps.insert_header_first("X-First: 2")
    m.lumps.remove_header(m.header("record-route"))
    m.lumps.set_ruri("sip:bob@192.0.2.4:5070")
    out = m.build().decode()
    assert out.startswith("INVITE sip:bob@192.0.2.4:5070 SIP/2.0\r\nX-First: 2\r\nVia:")
    assert "Record-Route" not in out
    assert out.endswith("Content-Length: 4\r\nX-Added: 1\r\n\r\nv=0\n")
    again = parse_message(out.encode())
    assert again.header_value("x-added") == "1"


def test_lumps_body_change_fixes_content_length() -> None:
    m = parse_message(INVITE)
    m.lumps.set_body("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n")
    out = parse_message(m.build())
    assert out.content_length == len("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n")
    assert out.body.startswith("v=0\r\no=")


def test_lumps_insert_in_body_without_content_length_adds_one() -> None:
    data = INVITE.replace(b"Content-Length: 4\r\n", b"")
    m = parse_message(data)
    m.lumps.insert(m.body_end, "a=x\n")
    out = parse_message(m.build())
    assert out.content_length == 8 and out.body == "v=0\na=x\n"


def test_overlapping_deletes_do_not_corrupt() -> None:
    m = parse_message(INVITE)
    h = m.header("route")
    m.lumps.remove_header(h)
    m.lumps.remove_header(h)
    m.lumps.delete(h.start + 2, h.end + 5)
    out = m.build()
    assert b"Route: <sip:p2" not in out
    assert out.count(b"\r\n\r\n") == 1


def test_forward_via_and_received() -> None:
    m = parse_message(INVITE)
    add_received_lumps(m, "192.0.2.1", 5099)
    branch = make_branch(m)
    assert branch.startswith("z9hG4bK") and branch.endswith(".0")
    assert make_branch(parse_message(INVITE)) == branch  # retransmission
    assert make_branch(m, 1) != branch
    add_via(m, make_via("udp", "10.1.1.1", 5060, branch))
    out = parse_message(m.build())
    assert out.via1.host == "10.1.1.1" and out.via1.branch == branch
    v2 = out.vias[1]
    raw = out.header("via").value if len(out.headers_named("via")) == 1 else out.headers_named("via")[1].value
    assert raw == (
        "SIP/2.0/UDP pc33.atlanta.example.com;received=192.0.2.1;"
        "branch=z9hG4bK776asdhds;rport=5099"
    )
    assert v2.received == "192.0.2.1" and v2.rport == "5099"


def test_remove_top_via_from_reply() -> None:
    reply = (
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKours.0, SIP/2.0/UDP a.example.com;branch=z9hG4bKx\r\n"
        b"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKy\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    m = parse_message(reply)
    remove_top_via(m)
    out = parse_message(m.build())
    assert [v.host for v in out.vias] == ["a.example.com", "b.example.com"]
    m2 = parse_message(m.build())
    remove_top_via(m2)
    assert [v.host for v in parse_message(m2.build()).vias] == ["b.example.com"]


def test_build_reply_like_opensips() -> None:
    m = parse_message(INVITE)
    raw = build_reply(
        m, 180, "Ringing", to_tag="abc", source=("192.0.2.1", 5099),
        headers="X-Extra: 1\r\n", server_header="Server: sipserver",
    )
    text = raw.decode()
    assert text.startswith("SIP/2.0 180 Ringing\r\n")
    lines = text.split("\r\n")
    assert lines[1] == (
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;received=192.0.2.1;"
        "branch=z9hG4bK776asdhds;rport=5099"
    )
    assert lines[2] == "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKold"
    assert lines[3] == "Record-Route: <sip:p1.example.com;lr>"
    assert lines[4] == "To: Bob <sip:bob@biloxi.example.com>;tag=abc"
    assert lines[5].startswith("From:") and lines[6].startswith("Call-ID:")
    assert lines[7] == "CSeq: 314159 INVITE"
    assert lines[8:12] == ["X-Extra: 1", "Server: sipserver", "Content-Length: 0", ""]
    r = parse_message(raw)
    assert r.status == 180 and r.to.tag == "abc"


def test_build_reply_no_rr_on_error_and_keeps_existing_to_tag() -> None:
    m = parse_message(INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"To: <sip:b@h>;tag=old"))
    text = build_reply(m, 404, "Not Found", body="hi", source=("192.0.2.7", 5060)).decode()
    assert "Record-Route" not in text
    assert "To: <sip:b@h>;tag=old\r\n" in text
    assert text.endswith("Content-Length: 2\r\n\r\nhi")
    assert "pc33.atlanta.example.com;received=192.0.2.7;branch=z9hG4bK776asdhds;rport=5060\r\n" in text


def test_received_not_added_when_source_matches_and_no_rport() -> None:
    m = parse_message(INVITE.replace(b"pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport", b"192.0.2.1:5060;branch=z9hG4bK1"))
    text = build_reply(m, 200, "OK", source=("192.0.2.1", 5060)).decode()
    assert "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" in text


def test_cancel_and_ack() -> None:
    sent = parse_message(INVITE)
    cancel = parse_message(build_cancel(sent, extra_headers='Reason: SIP;cause=487;text="ORIGINATOR_CANCEL"\r\n', user_agent="User-Agent: sipserver"))
    assert cancel.method == "CANCEL" and cancel.ruri_text == sent.ruri_text
    assert len(cancel.vias) == 1 and cancel.via1.branch == sent.via1.branch
    assert cancel.cseq.number == 314159 and cancel.cseq.method == "CANCEL"
    assert [h.name for h in cancel.headers] == [
        "Via", "From", "Call-ID", "To", "CSeq", "Max-Forwards", "Route", "Reason", "User-Agent", "Content-Length",
    ]
    reply = parse_message(
        b"SIP/2.0 486 Busy Here\r\n"
        + b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
        + b"To: Bob <sip:bob@biloxi.example.com>;tag=xyz\r\n"
        + b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
        + b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\r\n"
    )
    ack = parse_message(build_ack(sent, reply))
    assert ack.method == "ACK" and ack.to.tag == "xyz" and ack.cseq.method == "ACK"
    assert ack.max_forwards == 70 and ack.content_length == 0
    assert ack.via1.branch == "z9hG4bK776asdhds"


def test_auth_refer_event_and_token_lists() -> None:
    data = INVITE.replace(
        b"Route: <sip:p2.example.com;lr>\r\n",
        b'Proxy-Authorization: Digest username="alice", realm="atlanta.example.com",\r\n'
        b' nonce="abc", uri="sip:bob@biloxi.example.com", response="0123456789abcdef0123456789abcdef"\r\n'
        b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\n'
        b"r: <sip:carol@example.com>\r\n"
        b"o: presence;id=7\r\n"
        b"k: replaces, timer\r\nSupported: 100rel\r\n",
    )
    m = parse_message(data)
    (cred,) = m.credentials("proxy-authorization")
    assert cred.username == "alice" and cred.nonce == "abc"
    (ch,) = m.challenges()
    assert ch.realm == "r" and ch.qop == ["auth"]
    assert m.refer_to.uri.user == "carol"
    assert m.event.name == "presence" and m.event.param("id").value == "7"
    assert m.token_list("supported") == ["replaces", "timer", "100rel"]
    assert m.credentials() == []


def test_contact_star() -> None:
    m = parse_message(INVITE.replace(b"Contact: <sip:alice@pc33.atlanta.example.com>, \"Other, Alice\" <sip:a2@h>;q=0.5", b"Contact: *"))
    assert m.contact_star and m.contacts == []


def test_header_names_must_be_ascii_tokens() -> None:
    base = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
    )
    for bad in (b"X-\xe9t\xe9: 1\r\n", b"X Y: 1\r\n", b": 1\r\n", b"X@Y: 1\r\n"):
        with pytest.raises(ParseError):
            parse_message(base + bad + b"\r\n")
    ok = parse_message(base + b"X-A.b!%*_+`'~: 1\r\nMax-Forwards  : 5\r\n\r\n")
    assert ok.max_forwards == 5 and ok.header_value("x-a.b!%*_+`'~") == "1"


def test_lump_update_and_rollback() -> None:
    m = parse_message(INVITE)
    handle = m.lumps.insert(m.headers_end, "X-A: 1\r\n")
    m.lumps.update(handle, "X-A: 2\r\n")
    mark = m.lumps.checkpoint()
    m.lumps.add_header("X-B: 1")
    m.lumps.set_ruri("sip:other@example.net")
    built = m.build()
    assert b"X-A: 2\r\nX-B: 1\r\n" in built and built.startswith(b"INVITE sip:other@example.net ")
    m.lumps.rollback(mark)
    built = m.build()
    assert b"X-A: 2\r\n" in built and b"X-B" not in built and b"other@" not in built
