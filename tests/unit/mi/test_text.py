"""The 1.6 MI text protocol: request parsing and reply formatting (spec §1.2-1.4)."""

from __future__ import annotations

import pytest

from sipserver.mi.text import (
    CMD_INPUT,
    CMD_NO_INPUT,
    CMD_UNKNOWN,
    DGRAM_NOT_AVAILABLE,
    BytesLineSource,
    MIParseError,
    datagram_command,
    fifo_error,
    format_datagram_reply,
    format_reply,
    parse_datagram_args,
    parse_fifo_args,
    read_fifo_request,
)
from sipserver.mi.tree import MINodeArg, MIReply

KINDS = {"get_statistics": CMD_INPUT, "debug": CMD_INPUT, "ps": CMD_NO_INPUT}


def kind(name: str) -> int:
    return KINDS.get(name, CMD_UNKNOWN)


def args_of(text: bytes) -> list[tuple[str | None, str | None]]:
    return [(a.name, a.value) for a in parse_fifo_args(BytesLineSource(text))]


def requests(data: bytes, reply_dir: str = "/tmp/") -> list[object]:
    src = BytesLineSource(data)
    out = []
    while True:
        try:
            out.append(read_fifo_request(src, kind, reply_dir))
        except EOFError:
            return out


# ------------------------------------------------------------ FIFO arguments

def test_bare_and_named_values() -> None:
    assert args_of(b"foo\n  bar baz  \nname::value\n  n  ::   v w \n\n") == [
        (None, "foo"), (None, "bar baz"), ("name", "value"), ("n", "v w")]


def test_empty_name_and_empty_value() -> None:
    # `::value`: no name (1.6 NULL); `name::`: no value
    assert args_of(b"::value\nname::\nname::   \n\n") == [
        (None, "value"), ("name", None), ("name", None)]


def test_value_may_contain_colons_after_the_separator() -> None:
    assert args_of(b"uri::sip:a@b:5060\nsip:x@y\n\n") == [("uri", "sip:a@b:5060"), (None, "sip:x@y")]


def test_whitespace_only_lines_are_skipped_not_the_end() -> None:
    assert args_of(b"a\n   \n\t\n\r\nb\n\n") == [(None, "a"), (None, "b")]


def test_quoted_values() -> None:
    assert args_of(b'"a b "\nn::"x"  \n""\n"say \\"hi\\""\n\n') == [
        (None, "a b "), ("n", "x"), (None, ""), (None, 'say "hi"')]


def test_quoted_value_spans_lines_keeping_newlines() -> None:
    data = b'"From: <sip:a@b>\r\nTo: <sip:c@d>\r\n"\nnext\n\n'
    assert args_of(data) == [(None, "From: <sip:a@b>\r\nTo: <sip:c@d>\r\n"), (None, "next")]
    assert args_of(b'"line1\n  line2 "\n\n') == [(None, "line1\n  line2 ")]


def test_backslash_only_escapes_a_quote() -> None:
    assert args_of(b'"a\\\\b\\n"\n\n') == [(None, "a\\\\b\\n")]


@pytest.mark.parametrize("bad", [
    b'foo"bar\n',          # quote in an unquoted value
    b'na"me::v\n',         # quote in a name
    b'n::v"x\n',           # quote in an unquoted value after a name
    b'"abc" x\n',          # something after the closing quote
])
def test_quote_errors_skip_the_rest_of_the_request(bad: bytes) -> None:
    src = BytesLineSource(bad + b"more\nlines\n\n:ps:r\n\n")
    with pytest.raises(MIParseError):
        parse_fifo_args(src)
    # the rest of the request is consumed: the next one is intact
    req = read_fifo_request(src, kind)
    assert req is not None and req.command == "ps" and req.reply_name == "r"


def test_request_ending_inside_a_quoted_value() -> None:
    src = BytesLineSource(b'"open\n\n:ps:r\n\n')
    with pytest.raises(MIParseError):
        parse_fifo_args(src)
    req = read_fifo_request(src, kind)  # the empty line was the end: nothing more skipped
    assert req is not None and req.command == "ps"


def test_argument_lines_share_an_8192_byte_buffer() -> None:
    # each value line uses its length without the newline; the end line needs 2 bytes
    line = b"x" * 99 + b"\n"
    ok = line * 81 + b"\n"  # 81 * 99 = 8019 used, fine
    assert len(args_of(ok)) == 81
    too_many = line * 83 + b"\n"  # 83 * 99 = 8217 > 8192
    src = BytesLineSource(too_many + b":ps:r\n\n")
    with pytest.raises(MIParseError):
        parse_fifo_args(src)
    assert read_fifo_request(src, kind).command == "ps"  # type: ignore[union-attr]


def test_one_argument_line_longer_than_the_buffer() -> None:
    src = BytesLineSource(b"y" * 9000 + b"\nz\n\n:ps:r\n\n")
    with pytest.raises(MIParseError):
        parse_fifo_args(src)
    assert read_fifo_request(src, kind).command == "ps"  # type: ignore[union-attr]


# ------------------------------------------------------------ FIFO first line

def test_first_line() -> None:
    r = requests(b":get_statistics:reply_1\nall\n\n")
    assert len(r) == 1
    req = r[0]
    assert req.command == "get_statistics" and req.reply_name == "reply_1"  # type: ignore[attr-defined]
    assert req.args == [MINodeArg(None, "all")] and req.error is None  # type: ignore[attr-defined]


def test_first_line_trims_blanks_and_cr() -> None:
    (req,) = requests(b":ps:name \t\r\n\n")
    assert req.reply_name == "name"  # type: ignore[attr-defined]


def test_no_input_command_drops_its_argument_lines() -> None:
    (req,) = requests(b":ps:r\nfoo\nbar\n\n")
    assert req.args is None and req.error is None  # type: ignore[attr-defined]


def test_unknown_command_is_read_to_its_end() -> None:
    r = requests(b":nope:r\na\nb\n\n:ps:r\n\n")
    assert r[0].error == "not available" and r[1].command == "ps"  # type: ignore[attr-defined]


def test_empty_reply_name() -> None:
    (req,) = requests(b":ps:\n\n")
    assert req.reply_name is None  # type: ignore[attr-defined]


def test_parse_error_is_reported() -> None:
    (req,) = requests(b':debug:r\n"x\n\n')
    assert req.error == "parse"  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [
    b"\n",                      # empty line: skipped silently
    b"ab\n",                    # shorter than 3 characters
])
def test_ignored_short_lines(data: bytes) -> None:
    r = requests(data + b":ps:r\n\n")
    assert r[0] is None and r[-1].command == "ps"  # type: ignore[union-attr]


@pytest.mark.parametrize("first", [
    b"ps:r",                    # does not start with ':'
    b":ps",                     # no second ':'
    b"::r",                     # empty command
    b":ps:a.b",                 # '.' in the reply name
    b":ps:a/b",                 # '/' in the reply name
    b":ps:a\\b",                # '\' in the reply name
])
def test_bad_first_lines_skip_the_request(first: bytes) -> None:
    r = requests(first + b"\nx\n\n:ps:ok\n\n")
    assert r[0] is None
    assert r[1].command == "ps" and r[1].reply_name == "ok"  # type: ignore[union-attr]


def test_reply_path_must_fit_in_128_bytes() -> None:
    name = b"n" * 123  # "/tmp/" + 123 + NUL = 129 > 128
    r = requests(b":ps:" + name + b"\n\n")
    assert r == [None]
    r = requests(b":ps:" + name[:-1] + b"\n\n")
    assert r[0].reply_name == "n" * 122  # type: ignore[union-attr]


def test_command_line_longer_than_1023_bytes_is_refused() -> None:
    r = requests(b":ps:" + b"r" * 1100 + b"\n\n")
    assert all(x is None for x in r)


def test_fifo_error_lines() -> None:
    assert fifo_error("not available", "foo") == b"500 command 'foo' not available\n"
    assert fifo_error("parse", "foo") == b"400 parse error in command 'foo'\n"
    assert fifo_error("failed", "foo") == b"500 command 'foo' failed\n"


# ------------------------------------------------------------ datagram

def test_datagram_first_line() -> None:
    assert datagram_command(b":ps:\n") == ("ps", b"")
    assert datagram_command(b":get_statistics:\nall\n") == ("get_statistics", b"all\n")
    for bad in (b"", b"ps:\n", b":ps\n", b":ps:x\n", b":ps:", b":p\0s:\n"):
        assert datagram_command(bad) is None


def dargs(data: bytes) -> list[tuple[str | None, str | None]]:
    return [(a.name, a.value) for a in parse_datagram_args(data)]


def test_datagram_arguments() -> None:
    assert dargs(b"a\n  b c \n\nn::v\n::w\nm::\nlast") == [
        (None, "a"), (None, "b c"), ("n", "v"), (None, "w"), ("m", None), (None, "last")]
    assert dargs(b'"multi\nline" \n"q\\"q"\n""') == [(None, "multi\nline"), (None, 'q"q'), (None, "")]
    assert dargs(b"\n") == []


def test_datagram_empty_arguments_are_a_parse_error() -> None:
    with pytest.raises(MIParseError):
        parse_datagram_args(b"")


@pytest.mark.parametrize("bad", [b'a"b\n', b'"open\n', b'"x" y\n', b'n::a"\n'])
def test_datagram_parse_errors(bad: bytes) -> None:
    with pytest.raises(MIParseError):
        parse_datagram_args(bad)


def test_datagram_error_lines() -> None:
    assert DGRAM_NOT_AVAILABLE == b"500 command not available\n"


# ------------------------------------------------------------ replies

def sample_tree() -> MIReply:
    r = MIReply.ok()
    s = r.add("SET").attr("i", 0).attr("name", "set1")
    s.add("URI", "sip:10.0.0.1:5060").attr("flags", "AP")
    s.add(None, "bare")
    r.add("Now", "Wed Nov 26 07:12:00 2025")
    r.add(None, "core:rcv_requests = 3")
    return r


def test_reply_format_fifo() -> None:
    assert format_reply(sample_tree()) == (
        b"200 OK\n"
        b"SET::  i=0 name=set1\n"
        b"\tURI:: sip:10.0.0.1:5060 flags=AP\n"
        b"\tbare\n"
        b"Now:: Wed Nov 26 07:12:00 2025\n"
        b"core:rcv_requests = 3\n"
        b"\n")


def test_reply_format_indent_and_datagram() -> None:
    assert format_reply(sample_tree(), "  ", fifo=False).splitlines()[2] == b"  URI:: sip:10.0.0.1:5060 flags=AP"
    assert format_reply(sample_tree(), "", fifo=False).splitlines()[2] == b"URI:: sip:10.0.0.1:5060 flags=AP"
    assert format_datagram_reply(MIReply.ok()) == b"200 OK\n"
    assert format_reply(MIReply.error(404, "Statistics Not Found")) == b"404 Statistics Not Found\n\n"


def test_reply_empty_reason_and_attr_without_name() -> None:
    r = MIReply(code=500, reason="")
    r.add("A", "").attr(None, "x")
    assert format_reply(r) == b"500 \nA:: x\n\n"


def test_datagram_reply_too_big_is_not_sent() -> None:
    r = MIReply.ok()
    r.add(None, "x" * 70000)
    assert format_datagram_reply(r) is None


def test_bytes_round_trip_through_surrogateescape() -> None:
    (arg,) = parse_fifo_args(BytesLineSource(b"\xff\xfe\n\n"))
    r = MIReply.ok()
    r.add("v", arg.value)
    assert format_reply(r) == b"200 OK\nv:: \xff\xfe\n\n"
