"""SDP parsing, round-tripping and the rewrites NAT helpers / relays need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipserver.sip.errors import ParseError
from sipserver.sip.sdp import Connection, Origin, RtpMap, SdpLine, parse_sdp

TORTURE = Path("/work/shared/torture")

BASIC = (
    "v=0\r\n"
    "o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.5\r\n"
    "t=0 0\r\n"
    "m=audio 49217 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "m=video 3227 RTP/AVP 31 97\r\n"
    "a=rtpmap:31 LPC\r\n"
    "a=rtpmap:97 H264/90000\r\n"
    "a=fmtp:97 profile-level-id=42e01f\r\n"
    "a=rtcp-fb:97 nack\r\n"
)


def _sdp_bodies() -> list[tuple[str, str]]:
    """(file name, body) for every torture message whose body is SDP."""
    out = []
    if not TORTURE.is_dir():
        return out
    for path in sorted(TORTURE.glob("*.sip")):
        text = path.read_bytes().decode("latin-1")
        head, sep, body = text.partition("\r\n\r\n")
        if not sep:
            continue
        ctype = re.search(r"^(?:content-type|c)[ \t]*:[ \t]*([^\r\n;]*)", head, re.I | re.M)
        if ctype is None or ctype.group(1).strip().lower() != "application/sdp":
            continue
        if body.startswith("v="):
            out.append((path.name, body))
    return out


SDP_BODIES = _sdp_bodies()


def test_torture_corpus_found() -> None:
    if not TORTURE.is_dir():
        pytest.skip("torture corpus not available")
    names = {name for name, _ in SDP_BODIES}
    assert {"sdp01.sip", "ipv6-in-sdp.sip", "mult-ip-in-sdp.sip", "multi01.sip"} <= names
    assert len(SDP_BODIES) >= 20


@pytest.mark.parametrize(("name", "body"), SDP_BODIES, ids=[n for n, _ in SDP_BODIES])
def test_torture_round_trip(name: str, body: str) -> None:
    sdp = parse_sdp(body)
    assert str(sdp) == body
    assert sdp.media, name
    for m in sdp.media:
        assert m.effective_connection is not None, name
        assert m.direction == "sendrecv"
    # A rewrite keeps the result parseable.
    sdp.set_connection_address("198.51.100.7")
    again = parse_sdp(str(sdp))
    assert {c.address for m in again.media for c in m.effective_connections} == {"198.51.100.7"}


def test_torture_dblreq_second_body_is_rejected() -> None:
    """dblreq's trailing (ignored) request carries `m =video`: a multi-char type."""
    text = (TORTURE / "dblreq.sip").read_bytes().decode("latin-1")
    body = text.split("\r\n\r\n")[2]
    assert body.startswith("v=0")
    with pytest.raises(ParseError):
        parse_sdp(body)


def test_torture_multipart_body_is_not_sdp() -> None:
    text = (TORTURE / "mpart01.sip").read_bytes().decode("latin-1")
    with pytest.raises(ParseError):
        parse_sdp(text.partition("\r\n\r\n")[2])


def test_ipv6_in_sdp() -> None:
    body = (TORTURE / "ipv6-in-sdp.sip").read_bytes().decode("latin-1").partition("\r\n\r\n")[2]
    sdp = parse_sdp(body)
    assert sdp.origin == Origin("assistant", "971731711378798081", "0", "IN", "IP6", "2001:db8::20")
    assert sdp.connection == Connection("IN", "IP6", "2001:db8::20")
    assert [m.media_type for m in sdp.media] == ["audio", "video"]
    assert sdp.media[1].rtpmap(107) == RtpMap("107", "H263-1998", 90000, None)
    assert sdp.endpoints() == [("2001:db8::20", 6000), ("2001:db8::20", 6024)]


def test_mult_ip_in_sdp() -> None:
    body = (TORTURE / "mult-ip-in-sdp.sip").read_bytes().decode("latin-1").partition("\r\n\r\n")[2]
    sdp = parse_sdp(body)
    assert sdp.connection is None
    assert sdp.connections == []
    audio, video = sdp.media
    assert audio.connection == Connection("IN", "IP4", "192.0.2.1")
    assert video.effective_connection == Connection("IN", "IP6", "2001:db8::1")
    assert sdp.endpoints() == [("192.0.2.1", 22334), ("2001:db8::1", 6024)]
    # Moving everything to one IPv4 relay fixes the IP6 addrtype too.
    assert sdp.set_connection_address("203.0.113.1") == 2
    assert "c=IN IP6" not in str(sdp)
    assert video.connection == Connection("IN", "IP4", "203.0.113.1")
    assert sdp.connection is None  # every media has its own c=, none added


def test_accessors() -> None:
    sdp = parse_sdp(BASIC)
    assert str(sdp) == BASIC
    assert sdp.eol == "\r\n"
    assert sdp.origin is not None and sdp.origin.address == "192.0.2.5"
    audio, video = sdp.media
    assert audio.media_type == "audio"
    assert audio.port == 49217
    assert audio.port_count is None
    assert audio.proto == "RTP/AVP"
    assert audio.formats == ["0", "8", "101"]
    assert audio.connection is None
    assert audio.effective_connection == Connection("IN", "IP4", "192.0.2.5")
    assert audio.rtpmap("8") == RtpMap("8", "PCMA", 8000, None)
    assert audio.rtpmap(101) == RtpMap("101", "telephone-event", 8000, None)
    assert audio.rtpmap(18) is None
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(0) is None
    assert audio.get_attribute("ptime") == "20"
    assert ("ptime", "20") in audio.attributes
    assert video.rtpmap(31) == RtpMap("31", "LPC", None, None)
    assert video.formats_for_encoding("h264") == ["97"]
    assert audio.formats_for_encoding("PCMU") == ["0"]
    assert [str(line) for line in sdp.iter_lines()][:2] == [
        "v=0",
        "o=mhandley 29739 7272939 IN IP4 192.0.2.5",
    ]


def test_rtpmap_with_channels_and_static_fallback() -> None:
    sdp = parse_sdp("v=0\r\nm=audio 1 RTP/AVP 0 96\r\na=rtpmap:96 opus/48000/2\r\n")
    m = sdp.media[0]
    assert m.rtpmap(96) == RtpMap("96", "opus", 48000, "2")
    assert m.formats_for_encoding("pcmu") == ["0"]
    assert m.effective_connection is None
    assert m.endpoints() == []


def test_port_count_and_multicast_suffixes() -> None:
    body = (
        "v=0\r\n"
        "c=IN IP4 224.2.1.1/127/3\r\n"
        "m=audio 49170/2 RTP/AVP 0\r\n"
        "m=application 5000/3 udp wb\r\n"
        "c=IN IP6 FF15::101/3\r\n"
    )
    sdp = parse_sdp(body)
    assert str(sdp) == body
    assert sdp.connection == Connection("IN", "IP4", "224.2.1.1", 127, 3)
    audio, app = sdp.media
    assert audio.port_count == 2
    assert app.connection == Connection("IN", "IP6", "FF15::101", None, 3)
    assert audio.endpoints() == [("224.2.1.1", 49170), ("224.2.1.1", 49172)]
    assert app.endpoints() == [("FF15::101", 5000), ("FF15::101", 5001), ("FF15::101", 5002)]
    assert len(parse_sdp("v=0\r\nc=IN IP4 a\r\nm=x 65530/999999999 RTP/AVP 0\r\n").endpoints()) == 3


def test_direction() -> None:
    sdp = parse_sdp(BASIC)
    audio, video = sdp.media
    assert sdp.direction == "sendrecv" and sdp.own_direction is None
    sdp.set_direction("sendonly")
    assert audio.direction == "sendonly"
    video.set_direction("inactive")
    assert video.direction == "inactive"
    assert audio.direction == "sendonly"
    video.set_direction("recvonly")
    assert video.get_attributes("inactive") == []
    assert video.lines[-1].value == "recvonly"
    text = str(sdp)
    assert text.count("a=sendonly\r\n") == 1
    assert text.index("a=sendonly") < text.index("m=audio")
    with pytest.raises(ValueError):
        sdp.set_direction("both")


def test_set_direction_replaces_in_place() -> None:
    body = "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\na=ptime:20\r\na=inactive\r\n"
    sdp = parse_sdp(body)
    sdp.media[0].set_direction("sendrecv")
    assert str(sdp) == "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\na=ptime:20\r\n"


def test_set_connection_address_all() -> None:
    sdp = parse_sdp(BASIC)
    assert sdp.set_connection_address("2001:db8::1") == 1
    assert "c=IN IP6 2001:db8::1\r\n" in str(sdp)
    sdp.set_connection_address("[2001:db8::2]")
    assert sdp.connection == Connection("IN", "IP6", "2001:db8::2")
    sdp.set_connection_address("10.0.0.1")
    assert sdp.connection == Connection("IN", "IP4", "10.0.0.1")
    sdp.set_connection_address("relay.example.net")  # a hostname keeps the type
    assert sdp.connection == Connection("IN", "IP4", "relay.example.net")
    for bad in ("", "a b", "1.2.3.4/32", "x\r\n"):
        with pytest.raises(ValueError):
            sdp.set_connection_address(bad)
    with pytest.raises(ValueError):
        sdp.set_connection_address("1.2.3.4", scope="media")


def test_set_connection_address_drops_multicast_suffix() -> None:
    sdp = parse_sdp("v=0\r\nc=IN IP4 224.2.1.1/127\r\nm=audio 1 RTP/AVP 0\r\n")
    sdp.set_connection_address("192.0.2.9")
    assert str(sdp) == "v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 1 RTP/AVP 0\r\n"


def test_set_connection_address_session_scope() -> None:
    body = (TORTURE / "mult-ip-in-sdp.sip").read_bytes().decode("latin-1").partition("\r\n\r\n")[2]
    sdp = parse_sdp(body)
    assert sdp.set_connection_address("192.0.2.50", scope="session") == 1
    # Inserted in RFC 4566 order: before t=.
    assert [line.type for line in sdp.lines] == ["v", "o", "s", "c", "t"]
    assert sdp.media[0].connection == Connection("IN", "IP4", "192.0.2.1")  # untouched


def test_set_connection_address_adds_session_c_when_missing() -> None:
    sdp = parse_sdp("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n")
    assert sdp.set_connection_address("192.0.2.1") == 1
    assert str(sdp) == (
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
    )


def test_media_connection() -> None:
    sdp = parse_sdp(BASIC)
    audio, video = sdp.media
    assert audio.set_connection_address("2001:db8::5") == 1
    assert audio.lines[1].value == "IN IP6 2001:db8::5"
    assert audio.effective_connection == Connection("IN", "IP6", "2001:db8::5")
    assert video.effective_connection == Connection("IN", "IP4", "192.0.2.5")
    assert audio.set_connection_address("192.0.2.6") == 1
    assert audio.connections == [Connection("IN", "IP4", "192.0.2.6")]
    assert sdp.endpoints() == [("192.0.2.6", 49217), ("192.0.2.5", 3227)]
    sdp2 = parse_sdp("v=0\r\nm=audio 1 RTP/AVP 0\r\ni=voice\r\na=x\r\n")
    sdp2.media[0].set_connection_address("192.0.2.1")
    assert str(sdp2) == "v=0\r\nm=audio 1 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 192.0.2.1\r\na=x\r\n"


def test_set_port() -> None:
    sdp = parse_sdp(BASIC)
    sdp.media[0].set_port(35000)
    assert "m=audio 35000 RTP/AVP 0 8 101\r\n" in str(sdp)
    sdp2 = parse_sdp("v=0\r\nm=audio  49170/2   RTP/AVP 0\r\n")
    assert str(sdp2) == "v=0\r\nm=audio  49170/2   RTP/AVP 0\r\n"
    sdp2.media[0].set_port(0)
    assert str(sdp2) == "v=0\r\nm=audio 0/2 RTP/AVP 0\r\n"
    for bad in (-1, 65536, "5"):
        with pytest.raises(ValueError):
            sdp2.media[0].set_port(bad)  # type: ignore[arg-type]


def test_set_origin_address() -> None:
    sdp = parse_sdp(BASIC)
    assert sdp.set_origin_address("2001:db8::9")
    assert sdp.origin == Origin("mhandley", "29739", "7272939", "IN", "IP6", "2001:db8::9")
    assert "o=mhandley 29739 7272939 IN IP6 2001:db8::9\r\n" in str(sdp)
    assert not parse_sdp("v=0\r\n").set_origin_address("1.2.3.4")


def test_attributes_session_and_media() -> None:
    sdp = parse_sdp(BASIC)
    audio = sdp.media[0]
    sdp.add_attribute("direction", "active")
    assert sdp.get_attribute("direction") == "active"
    assert sdp.lines[-1].value == "direction:active"
    audio.add_attribute("nortpproxy", "yes")
    audio.add_attribute("ptime", "30")
    assert audio.get_attributes("ptime") == ["20", "30"]
    audio.set_attribute("ptime", "40")
    assert audio.get_attributes("ptime") == ["40"]
    audio.set_attribute("rtcp-mux")
    assert audio.has_attribute("rtcp-mux") and audio.get_attribute("rtcp-mux") is None
    assert audio.remove_attribute("nortpproxy") == 1
    assert audio.remove_attribute("nortpproxy") == 0
    text = str(sdp)
    assert "a=direction:active\r\nm=audio" in text
    assert "a=ptime:40\r\na=rtcp-mux\r\nm=video" in text
    assert parse_sdp(text).media[0].get_attribute("ptime") == "40"
    for name, value in (("", None), ("a:b", None), ("a b", None), ("x", "y\r\nz=1")):
        with pytest.raises(ValueError):
            audio.add_attribute(name, value)


def test_remove_formats() -> None:
    sdp = parse_sdp(BASIC)
    audio, video = sdp.media
    assert audio.remove_formats([8, "101"]) == 2
    assert audio.formats == ["0"]
    assert [str(line) for line in audio.lines] == [
        "m=audio 49217 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
    ]
    assert video.remove_formats(["97", "13"]) == 1
    assert [str(line) for line in video.lines] == ["m=video 3227 RTP/AVP 31", "a=rtpmap:31 LPC"]
    assert audio.remove_formats(audio.formats_for_encoding("PCMU")) == 1
    assert str(audio.lines[0]) == "m=audio 49217 RTP/AVP"
    audio.set_formats(["18", 4])
    assert audio.formats == ["18", "4"]
    with pytest.raises(ValueError):
        audio.set_formats(["1 2"])


def test_bare_lf_is_kept() -> None:
    body = BASIC.replace("\r\n", "\n")
    sdp = parse_sdp(body)
    assert sdp.eol == "\n"
    assert str(sdp) == body
    sdp.media[1].add_attribute("sendonly")
    sdp.set_connection_address("192.0.2.1", scope="session")
    out = str(sdp)
    assert "\r" not in out
    assert out.endswith("a=sendonly\n")


def test_mixed_line_endings_round_trip() -> None:
    body = "v=0\r\ns=x\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\n"
    sdp = parse_sdp(body)
    assert str(sdp) == body
    sdp.media[0].add_attribute("ptime", "20")
    assert str(sdp) == body + "a=ptime:20\r\n"


def test_trailing_empty_lines_and_missing_final_eol() -> None:
    for body in ("v=0\r\ns=x\r\n\r\n", "v=0\r\ns=x\r\n\r\n\r\n", "v=0\r\ns=x", "v=0", "v=0\n\n"):
        assert str(parse_sdp(body)) == body
    sdp = parse_sdp("v=0\r\nm=audio 1 RTP/AVP 0")
    sdp.media[0].add_attribute("sendonly")
    assert str(sdp) == "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly"
    sdp = parse_sdp("v=0\r\nm=audio 1 RTP/AVP 0\r\n\r\n")
    sdp.media[0].add_attribute("sendonly")
    assert str(sdp) == "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n\r\n"


def test_unknown_lines_untouched() -> None:
    body = (
        "v=0\r\nx=whatever you like\r\nb=AS:64\r\nk=clear:x\r\nz=0 0\r\n"
        "m=audio 1 RTP/AVP 0\r\nY=upper\r\na=odd: value with: colons \r\n"
    )
    sdp = parse_sdp(body)
    assert str(sdp) == body
    assert sdp.media[0].attributes == [("odd", " value with: colons ")]
    sdp.media[0].set_port(2)
    assert str(sdp) == body.replace("m=audio 1 ", "m=audio 2 ")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "s=no version first\r\nv=0\r\n",
        "\r\nv=0\r\n",
        " v=0\r\n",
        "v=0\r\nnoequals\r\n",
        "v=0\r\n\r\ns=empty line in the middle\r\n",
        "v=0\r\nm =video 3227 RTP/AVP 31\r\n",
        "v=0\r\nab=multi-char type\r\n",
        "v=0\r\n=no type\r\n",
        "v=0\r\n1=digit type\r\n",
        "v=0\r\ns=bare\rCR\r\n",
        "v=0\r",
        "v=0\r\nm=audio\r\n",
        "v=0\r\nm=audio 1\r\n",
        "v=0\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\nm=audio 65536 RTP/AVP 0\r\n",
        "v=0\r\nm=audio 1/x RTP/AVP 0\r\n",
        "v=0\r\nm=audio \u00b2 RTP/AVP 0\r\n",
        "v=0\r\nm=audio 1_0 RTP/AVP 0\r\n",
        "v=0\r\nc=IN IP4\r\n",
        "v=0\r\nc=IN IP4 1.2.3.4 extra\r\n",
        "v=0\r\nc=IN IP4 224.2.1.1/x\r\n",
        "v=0\r\nc=IN IP4 224.2.1.1/1/2/3\r\n",
        "v=0\r\nc=IN IP6 ff15::1/1/2\r\n",
        "v=0\r\nc=IN IP4 /127\r\n",
        "v=0\r\no=only three fields\r\n",
        "v=0\r\nm=audio " + "9" * 5000 + " RTP/AVP 0\r\n",
    ],
)
def test_bad_input(body: str) -> None:
    with pytest.raises(ParseError):
        parse_sdp(body)


def test_sdpline_validation() -> None:
    assert str(SdpLine("a", "x")) == "a=x"
    for t, v in (("ab", "x"), ("1", "x"), ("", "x"), ("a", "x\ny")):
        with pytest.raises(ValueError):
            SdpLine(t, v)


def _exercise(text: str) -> None:
    """Parse, and if accepted, check round trip and that accessors never blow up."""
    try:
        sdp = parse_sdp(text)
    except ParseError:
        return
    assert str(sdp) == text
    sdp.origin  # noqa: B018
    sdp.connections  # noqa: B018
    sdp.direction  # noqa: B018
    sdp.endpoints()
    for m in sdp.media:
        m.attributes  # noqa: B018
        m.direction  # noqa: B018
        m.effective_connections  # noqa: B018
        for pt in m.formats:
            m.rtpmap(pt)
            m.fmtp(pt)
        m.formats_for_encoding("PCMU")
    sdp.set_connection_address("192.0.2.1")
    sdp.set_origin_address("2001:db8::1")
    for m in sdp.media:
        m.set_port(1234)
        m.set_direction("sendonly")
        m.remove_formats(m.formats[:1])
    parse_sdp(str(sdp))


_ALPHABET = st.sampled_from(
    [*"vomcatsbik=:/ \t\r\n0123456789.IPN46RTP/AVPaudio-x", "\x00", "\x85", "\xa0", "\xff"]
)


@settings(max_examples=300, deadline=None)
@given(st.text(_ALPHABET, max_size=120))
def test_fuzz_random_text(text: str) -> None:
    _exercise("v=" + text)
    _exercise(text)


_LINE = st.one_of(
    st.tuples(st.sampled_from("ocmasbtiz"), st.text(_ALPHABET, max_size=30)),
    st.tuples(st.just("c"), st.sampled_from(["IN IP4 1.2.3.4", "IN IP6 ::1/2", "IN IP4 h/1/2"])),
    st.tuples(
        st.just("m"), st.sampled_from(["audio 1 RTP/AVP 0 8", "video 0 RTP/AVP", "x 9/3 udp a"])
    ),
    st.tuples(
        st.just("a"), st.sampled_from(["rtpmap:0 PCMU/8000", "fmtp:8", "rtpmap:", "sendonly"])
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_LINE, st.sampled_from(["\r\n", "\n"])), max_size=12),
    st.sampled_from(["", "\r\n", "\n\n"]),
)
def test_fuzz_structured(lines: list, tail: str) -> None:
    text = "v=0\r\n" + "".join(f"{t}={v}{eol}" for (t, v), eol in lines) + tail
    _exercise(text)
