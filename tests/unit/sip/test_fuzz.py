"""Mutated real messages: only a SipMsg or a ParseError may ever come out.

Also touches every lazy view of what did parse, since a header that is bad
only shows up when somebody asks for it, and builds the message with lumps.
"""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipserver.sip import ParseError, SipMsg, parse_message
from sipserver.sip.builders import add_via, build_reply, make_branch, make_via, remove_top_via

TORTURE = Path(__file__).resolve().parents[3].parent / "shared" / "torture"
CORPUS = [p.read_bytes() for p in sorted(TORTURE.glob("*.sip"))]
assert CORPUS, f"no torture corpus under {TORTURE}"

# Accessors that parse lazily: each may raise ParseError, nothing else.
VIEWS = (
    "vias", "from_", "to", "cseq", "max_forwards", "content_length", "content_type",
    "expires", "contacts", "routes", "record_routes", "event", "body", "ruri",
)


def _exercise(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except ParseError as e:
        assert isinstance(e.reason, str) and "\n" not in e.reason
        return
    assert isinstance(msg, SipMsg)
    for name in VIEWS:
        try:
            getattr(msg, name)
        except ParseError:
            pass
    for na_list in ("contacts", "routes"):
        try:
            for na in getattr(msg, na_list):
                na.uri  # noqa: B018
        except ParseError:
            pass
    try:
        msg.from_.uri  # noqa: B018
        msg.to.uri  # noqa: B018
    except ParseError:
        pass
    if msg.is_request:
        build_reply(msg, 404, "Not Found", to_tag="x", source=("192.0.2.1", 5060))
        add_via(msg, make_via("UDP", "127.0.0.1", 5060, make_branch(msg)))
        msg.lumps.add_header("X-Fuzz: 1")
        out = msg.build()
    else:
        try:
            remove_top_via(msg)
        except ParseError:
            pass
        out = msg.build()
    assert isinstance(out, bytes)


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            break
        p = pos % len(buf)
        if kind == 0:  # byte flip
            buf[p] = val
        elif kind == 1:  # truncate
            del buf[p:]
        elif kind == 2:  # insert a NUL / CR / LF / SP / HT / colon / comma / quote
            buf[p:p] = bytes([b"\x00\r\n \t:,\"<>;="[val % 12]])
        elif kind == 3:  # delete a span
            del buf[p : p + 1 + val % 16]
        elif kind == 4:  # duplicate a span
            buf[p:p] = buf[p : p + 1 + val]
    return bytes(buf)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
)
def test_mutated_torture_messages(data: bytes, ops: list[tuple[int, int, int]]) -> None:
    _exercise(_mutate(data, ops))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _exercise(data)


def _bounded(data: bytes, seconds: float = 1.0) -> None:
    t0 = time.perf_counter()
    _exercise(data)
    assert time.perf_counter() - t0 < seconds, "parsing took too long"


def test_huge_header_line() -> None:
    base = CORPUS[0]
    for line in (b"X-Long: " + b"a" * 65000, b"Subject: " + b"\t" * 30000, b"X: " + b"\x00" * 60000):
        head, sep, body = base.partition(b"\r\n\r\n")
        _bounded(head + b"\r\n" + line + sep + body)


def test_many_headers_and_vias() -> None:
    msg = (
        b"OPTIONS sip:a@b SIP/2.0\r\n"
        + b"Via: SIP/2.0/UDP h;branch=z9hG4bK1" + b", SIP/2.0/UDP h2" * 3000 + b"\r\n"
        + b"X-A: 1\r\n" * 2000
        + b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    _bounded(msg[:65535])


def test_pathological_quotes_and_brackets() -> None:
    evil = b'"' * 20000 + b"<" * 20000
    msg = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: " + evil + b"\r\nTo: <sip:a@b>\r\nContact: " + evil + b"\r\n"
        b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    _bounded(msg)


def test_oversized_datagram_is_refused() -> None:
    try:
        parse_message(b"x" * 70000)
    except ParseError as e:
        assert e.status == 513
    else:  # pragma: no cover
        raise AssertionError("a 70 KB message must be refused")
