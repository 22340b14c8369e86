"""The TCP stream framer: SIP messages cut out of a byte stream, as 1.6 reads them."""

from __future__ import annotations

import pytest

from sipserver.net.tcp_framing import PING, StreamFramer, content_length, top_via_info


def msg(body: bytes = b"", cl: str | None = None, name: str = "Content-Length",
        call: str = "c1") -> bytes:
    length = str(len(body)) if cl is None else cl
    return (b"INVITE sip:bob@example.com SIP/2.0\r\n"
            b"Via: SIP/2.0/TCP 10.0.0.1:5062;branch=z9hG4bK1\r\n"
            b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n"
            b"Call-ID: " + call.encode() + b"\r\nCSeq: 1 INVITE\r\n"
            + name.encode() + b": " + length.encode() + b"\r\n\r\n" + body)


def test_one_message_in_one_read() -> None:
    f = StreamFramer()
    m = msg(b"v=0\r\n")
    assert f.feed(m) == [m]
    assert f.pending == 0 and f.error is None


@pytest.mark.parametrize("step", [1, 2, 3, 7, 50])
def test_split_reads_at_every_size(step: int) -> None:
    m1, m2 = msg(b"hello body", call="a"), msg(call="b")
    stream = m1 + m2
    f = StreamFramer()
    out: list[bytes] = []
    for i in range(0, len(stream), step):
        out += f.feed(stream[i:i + step])
    assert out == [m1, m2]
    assert f.pending == 0


def test_split_between_headers_and_body() -> None:
    m = msg(b"0123456789")
    cut = m.index(b"\r\n\r\n") + 4
    f = StreamFramer()
    assert f.feed(m[:cut]) == []
    assert f.feed(m[cut:cut + 4]) == []
    assert f.feed(m[cut + 4:]) == [m]


def test_several_messages_and_a_partial_one_in_one_read() -> None:
    a, b, c = msg(b"x" * 10, call="a"), msg(call="b"), msg(b"yy", call="c")
    f = StreamFramer()
    assert f.feed(a + b + c[:20]) == [a, b]
    assert f.pending == 20
    assert f.feed(c[20:]) == [c]


def test_body_bytes_that_look_like_the_next_message_are_body() -> None:
    body = b"\r\n\r\nINVITE sip:x SIP/2.0\r\n\r\n"
    m = msg(body)
    assert StreamFramer().feed(m + m) == [m, m]


def test_compact_and_odd_case_content_length() -> None:
    m = msg(b"abc", name="l")
    assert StreamFramer().feed(m) == [m]
    m2 = msg(b"abcd", name="CONTENT-length")
    assert StreamFramer().feed(m2) == [m2]
    head = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h\r\nContent-Length :  2 \r\n\r\nok"
    assert StreamFramer().feed(head) == [head]


def test_lf_only_line_ends() -> None:
    m = b"OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h\nContent-Length: 2\n\nab"
    assert StreamFramer().feed(m + m) == [m, m]


def test_crlf_keepalives() -> None:
    m = msg()
    f = StreamFramer()
    # a ping (CRLFCRLF) between messages is reported; a lone CRLF (pong) is skipped
    assert f.feed(PING + m + b"\r\n" + m + PING + PING) == [PING, m, m, PING, PING]
    # a ping split over reads
    assert f.feed(b"\r\n") == []
    assert f.feed(b"\r") == []
    assert f.feed(b"\n") == [PING]
    # a pong followed later by a message
    assert f.feed(b"\r\n") == []
    assert f.feed(m) == [m]
    assert f.pending == 0


def test_missing_content_length_is_an_error() -> None:
    f = StreamFramer()
    good = msg(call="ok")
    bad = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nCall-ID: x\r\n\r\n"
    assert f.feed(good + bad + good) == [good]
    assert f.error is not None and "Content-Length" in f.error
    assert f.feed(good) == []  # nothing more once broken


@pytest.mark.parametrize("value", ["abc", "-1", "1 2", "0x10", ""])
def test_broken_content_length_is_an_error(value: str) -> None:
    f = StreamFramer()
    assert f.feed(msg(cl=value)) == []
    assert f.error is not None


def test_contradictory_content_lengths() -> None:
    m = msg(b"ab").replace(b"Content-Length: 2\r\n", b"Content-Length: 2\r\nl: 5\r\n")
    f = StreamFramer()
    assert f.feed(m) == []
    assert f.error is not None


def test_oversize_message_is_an_error_as_soon_as_known() -> None:
    f = StreamFramer(max_size=1000)
    assert f.feed(msg(cl="5000")) == []
    assert f.error is not None and "larger" in f.error


def test_garbage_without_end_of_headers_is_an_error_past_the_limit() -> None:
    f = StreamFramer(max_size=1000)
    assert f.feed(b"\x00\x01garbage" * 50) == []
    assert f.error is None  # could still be a message
    assert f.feed(b"\xff" * 700) == []
    assert f.error is not None
    assert f.pending == 0


def test_garbage_with_an_empty_line_has_no_content_length() -> None:
    f = StreamFramer()
    assert f.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []
    assert f.error is not None


def test_message_of_exactly_the_limit_passes() -> None:
    m = msg()
    body_len = 2000 - len(m) - 3  # the Content-Length value grows from 1 to 4 digits
    m = msg(b"z" * body_len)
    assert len(m) == 2000
    assert StreamFramer(max_size=2000).feed(m) == [m]
    assert StreamFramer(max_size=1999).feed(m) == []


def test_content_length_helper() -> None:
    assert content_length(b"X sip:a SIP/2.0\r\nl: 12") == 12
    assert content_length(b"X sip:a SIP/2.0\r\nContent-Length: 3\r\nContent-Length: 3") == 3


def test_top_via_info() -> None:
    assert top_via_info(msg()) == (5062, False)
    m = (b"OPTIONS sip:x SIP/2.0\r\nv: SIP / 2.0 / TCP [::1]:7000 ;branch=z;alias\r\n"
         b"Via: SIP/2.0/TCP other:9\r\n\r\n")
    assert top_via_info(m) == (7000, True)
    assert top_via_info(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP host;aliasx=1\r\n\r\n") \
        == (None, False)
    assert top_via_info(b"OPTIONS sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n") == (None, False)
