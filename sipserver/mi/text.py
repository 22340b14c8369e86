"""The 1.6 MI text protocol of mi_fifo and mi_datagram, without any I/O.

FIFO request (spec modules-core §1.2)::

    :<command>:<reply_name>\\n
    <argument line>\\n        (0..n)
    \\n                       (a truly empty line ends the request)

Datagram request (§1.4): first line exactly `:<command>:\\n`, the arguments
run to the end of the datagram. Argument lines: `name::value` or a bare
value, leading blanks skipped, blank-only lines ignored, `"quoted"` values
that may span lines with `\\"` for a quote.

Replies (§1.3): `<code> <reason>\\n`, one line per node (depth-first,
`reply_indent` per level, `Name:: value attr=val`), and for the FIFO a final
empty line. Transport errors are single lines.

The FIFO side reads through a line source with C `fgets` semantics
(`readline(size)` returns at most size-1 bytes, stopping after a newline),
so line-length limits behave as in 1.6: the command line must fit in 1024
bytes and all argument lines of one request share one 8192-byte buffer.
Text is decoded as UTF-8 with surrogateescape, so any byte round-trips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .tree import MINode, MINodeArg, MIReply

MAX_MI_FIFO_BUFFER = 1024  # the command line (and lines read while skipping)
MAX_MI_FIFO_READ = 8192  # all argument lines of one request
MAX_MI_FILENAME = 128  # reply_dir + reply name
DATAGRAM_SOCK_BUF_SIZE = 65457  # largest request and reply datagram

DGRAM_NOT_AVAILABLE = b"500 command not available\n"
DGRAM_PARSE_ERROR = b"400 parse error in command\n"
DGRAM_FAILED = b"500 command failed\n"
DGRAM_INTERNAL_ERROR = b"500 Internal server error\n"

_SPACE = frozenset(b" \t\n\v\f\r")  # C isspace()


def _dec(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "surrogateescape")


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class MIParseError(Exception):
    """An argument list 1.6 would refuse (`400 parse error in command`)."""


class LineSource(Protocol):
    def readline(self, size: int) -> bytes:
        """fgets: at most size-1 bytes, up to and including a newline; b"" at EOF."""
        ...


class BytesLineSource:
    """A LineSource over bytes already received (tests, sipctl's checks)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def readline(self, size: int) -> bytes:
        if size <= 1:
            return b""
        end = self.data.find(b"\n", self.pos, self.pos + size - 1)
        stop = end + 1 if end >= 0 else min(len(self.data), self.pos + size - 1)
        chunk = self.data[self.pos:stop]
        self.pos = stop
        return chunk


def read_line(src: LineSource, size: int) -> bytes | None:
    """One line as 1.6's mi_read_line: None when it did not fit in `size`.

    A chunk counts as a whole line when it ends in a newline (or CR).
    Raises EOFError when the source is exhausted.
    """
    chunk = src.readline(size)
    if not chunk:
        raise EOFError
    if chunk[-1] not in (0x0A, 0x0D):
        return None
    return chunk


def consume_request(src: LineSource, size: int = MAX_MI_FIFO_BUFFER) -> None:
    """Skip the rest of a request: read lines up to the empty line."""
    while True:
        line = read_line(src, size)
        if line is not None and len(line) <= 1:
            return


# ---------------------------------------------------------------- arguments

class _QuotedValue:
    """Accumulates a quoted value over one or more lines."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, text: bytes, pos: int) -> tuple[int, int | None]:
        """Scan `text[pos:]` (one line without its newline).

        Returns (escapes on this line, index after the closing quote) or
        (escapes, None) when the value goes on past this line.
        """
        esc = 0
        n = len(text)
        j = pos
        while j < n:
            c = text[j]
            if c == 0x22:  # "
                if self.buf and self.buf[-1] == 0x5C:  # \" -> "
                    self.buf[-1] = 0x22
                    esc += 1
                    j += 1
                    continue
                return esc, j + 1
            self.buf.append(c)
            j += 1
        return esc, None


def _line_node(text: bytes, start: int, end: int,
               error: type[Exception]) -> tuple[MINodeArg | None, bytes | None, int]:
    """One argument line of the 1.6 MI text format, `text[start:end]` (blanks
    before `start` already skipped): `[name::] value`.

    (node, None, 0) when the line holds the whole node (an unquoted value or
    none); (None, name, qpos) when a quoted value starts at `qpos`, which the
    FIFO and datagram readers then take over lines or to the buffer's end.
    `error` is raised for a `"` inside an unquoted name or value.
    """
    name: bytes | None = None
    if text[start] == 0x22:
        return None, None, start
    p = mark = start
    sep = -1
    while p < end:
        if text[p] == 0x3A and p + 1 < end and text[p + 1] == 0x3A:
            sep = p
            break
        if text[p] not in _SPACE:
            if text[p] == 0x22:
                raise error('" in an unquoted name or value')
            mark = p
        p += 1
    if sep < 0:
        return MINodeArg(None, _dec(text[start:mark + 1])), None, 0
    if sep != start:
        name = text[start:mark + 1]
    p = sep + 2
    while p < end and text[p] in _SPACE:
        p += 1
    if p >= end:
        return MINodeArg(_opt(name), None), None, 0
    if text[p] != 0x22:
        vstart = mark = p
        while p < end:
            if text[p] not in _SPACE:
                if text[p] == 0x22:
                    raise error('" in an unquoted value')
                mark = p
            p += 1
        return MINodeArg(_opt(name), _dec(text[vstart:mark + 1])), None, 0
    return None, name, p


def _fifo_node(src: LineSource, remaining: int) -> tuple[MINodeArg | None, int]:
    """Parse one argument (1.6 mi_parse_node); (None, 0) at the end of the request.

    `remaining` is what is left of the shared 8192-byte parse buffer; the
    second value returned is how much of it this node used.
    """
    while True:
        if remaining <= 1:
            raise _TooLong
        line = read_line(src, remaining)
        if line is None:
            raise _TooLong
        if len(line) == 1:
            return None, 0
        text = line[:-1]
        start = 0
        while start < len(text) and text[start] in _SPACE:
            start += 1
        if start < len(text):
            break
    n = len(text)
    arg, name, qpos = _line_node(text, start, n, _ParseErrorConsume)
    if arg is not None:
        return arg, n
    # a quoted value, maybe over several lines (their newlines are kept)
    value = _QuotedValue()
    used = 0
    cur, pos, last = text, qpos + 1, line[-1:]
    while True:
        esc, end = value.feed(cur, pos)
        if end is not None:
            if any(c not in _SPACE for c in cur[end:]):
                raise _ParseErrorConsume("only blanks may follow a closing quote")
            return MINodeArg(_opt(name), _dec(value.buf)), used + len(cur) - esc
        value.buf += last
        used += len(cur) + 1 - esc
        if remaining - used <= 1:
            raise _TooLong
        line = read_line(src, remaining - used)
        if line is None:
            raise _TooLong
        if len(line) == 1:  # the empty line: the request is over, nothing to skip
            raise MIParseError("the request ended inside a quoted value")
        cur, pos, last = line[:-1], 0, line[-1:]


def _opt(raw: bytes | None) -> str | None:
    return None if raw is None else _dec(raw)


class _TooLong(Exception):
    """A line that does not fit: the rest of the request must be skipped."""


class _ParseErrorConsume(Exception):
    """A parse error in the middle of a request: skip the rest of it."""


def parse_fifo_args(src: LineSource, bufsize: int = MAX_MI_FIFO_READ) -> list[MINodeArg]:
    """Read a FIFO request's argument lines up to the empty line.

    On a parse error the rest of the request is consumed (unless the error
    was the empty line itself, inside a quoted value) and MIParseError is
    raised.
    """
    args: list[MINodeArg] = []
    remaining = bufsize
    try:
        while True:
            node, used = _fifo_node(src, remaining)
            if node is None:
                return args
            args.append(node)
            remaining -= used
    except _TooLong:
        consume_request(src, bufsize)
        raise MIParseError("argument line too long") from None
    except _ParseErrorConsume as e:
        consume_request(src, bufsize)
        raise MIParseError(str(e)) from None


# ---------------------------------------------------------------- FIFO request

@dataclass(slots=True)
class FifoRequest:
    """One FIFO request, read to its end.

    `error` is None, "not available" (unknown command) or "parse" (bad
    arguments); `args` is None for commands that take no input.
    """

    command: str
    reply_name: str | None
    args: list[MINodeArg] | None = None
    error: str | None = None


# what a command name is to the FIFO reader: unknown, known without input, known with input
CMD_UNKNOWN, CMD_NO_INPUT, CMD_INPUT = 0, 1, 2


def read_fifo_request(src: LineSource, kind: Callable[[str], int],
                      reply_dir: str = "/tmp/") -> FifoRequest | None:
    """Read one request from the server FIFO, as 1.6's mi_fifo_server does.

    Returns None when the input was not a request (an empty or too-short
    line, a line not starting with ':', a bad reply name): what followed it
    up to the empty line has been skipped, and nothing is answered. Raises
    EOFError when the source is exhausted.
    """
    line = read_line(src, MAX_MI_FIFO_BUFFER)
    if line is None:  # command line longer than 1023 bytes
        return None
    line = line.rstrip(b"\n\r \t")
    if not line or len(line) < 3:
        return None
    if line[0] != 0x3A:
        consume_request(src)
        return None
    sep = line.find(b":", 1)
    if sep <= 1:  # no second ':' or an empty command name
        consume_request(src)
        return None
    command = _dec(line[1:sep])
    reply_raw = line[sep + 1:]
    reply_name: str | None = None
    if reply_raw:
        if any(c in reply_raw for c in b"./\\") or \
                len(_enc(reply_dir)) + len(reply_raw) + 1 > MAX_MI_FILENAME:
            consume_request(src)
            return None
        reply_name = _dec(reply_raw)
    k = kind(command)
    if k == CMD_UNKNOWN:
        consume_request(src)
        return FifoRequest(command, reply_name, error="not available")
    if k == CMD_NO_INPUT:
        consume_request(src)
        return FifoRequest(command, reply_name)
    try:
        args = parse_fifo_args(src)
    except MIParseError:
        return FifoRequest(command, reply_name, error="parse")
    return FifoRequest(command, reply_name, args)


def fifo_error(kind: str, command: str) -> bytes:
    """The single-line FIFO answers of the transport itself."""
    if kind == "not available":
        return _enc(f"500 command '{command}' not available\n")
    if kind == "parse":
        return _enc(f"400 parse error in command '{command}'\n")
    if kind == "failed":
        return _enc(f"500 command '{command}' failed\n")
    return b"500 Internal server error\n"


# ---------------------------------------------------------------- datagram request

def datagram_command(data: bytes) -> tuple[str, bytes] | None:
    """(command, rest) from a datagram's first line `:<command>:\\n`, or None.

    None is answered `500 command not available`, like an unknown command.
    """
    if not data or data[0] != 0x3A:
        return None
    nul = data.find(b"\0", 1)
    limit = nul if nul >= 0 else len(data)
    p = data.find(b":", 1, limit)
    if p < 0 or p + 1 >= len(data) or data[p + 1] != 0x0A:
        return None
    return _dec(data[1:p]), data[p + 2:]


def parse_datagram_args(rest: bytes) -> list[MINodeArg]:
    """The arguments after a datagram's first line (1.6 mi_datagram_parse_tree).

    An empty rest is a parse error in 1.6 (a command that takes input must
    get at least a line, even a blank one).
    """
    if not rest or rest[0] == 0:
        raise MIParseError("no data after the command line")
    buf = rest
    n = len(buf)
    pos = 0
    args: list[MINodeArg] = []
    while True:
        i = pos
        while i < n and buf[i] in _SPACE:
            i += 1
        if i == n:
            return args
        eol = buf.find(b"\n", i)
        line_end = eol if eol >= 0 else n
        arg, name, qpos = _line_node(buf, i, line_end, MIParseError)
        if arg is not None:
            args.append(arg)
            pos = line_end
            continue
        value = _QuotedValue()
        _, end = value.feed(buf, qpos + 1)
        if end is None:
            raise MIParseError("no closing quote")
        k = end
        while k < n and buf[k] in _SPACE and buf[k] != 0x0A:
            k += 1
        if k < n and buf[k] != 0x0A:
            raise MIParseError("only blanks may follow a closing quote")
        args.append(MINodeArg(_opt(name), _dec(value.buf)))
        pos = k


# ---------------------------------------------------------------- replies

def _node_lines(nodes: list[MINode], indent: str, level: int, out: list[str]) -> None:
    for node in nodes:
        parts = [indent * level]
        if node.name is not None:
            parts.append(f"{node.name}:: ")
        if node.value is not None:
            parts.append(node.value)
        for a in node.attrs:
            if a.name is not None:
                parts.append(f" {a.name}=")
            if a.value is not None:
                parts.append(a.value)
        parts.append("\n")
        out.append("".join(parts))
        if node.kids:
            _node_lines(node.kids, indent, level + 1, out)


def format_reply(reply: MIReply, indent: str | None = "\t", *, fifo: bool = True) -> bytes:
    """A reply tree as mi_fifo (`fifo=True`, final empty line) or mi_datagram prints it."""
    out = [f"{reply.code % (1 << 64)} {reply.reason}\n"]
    _node_lines(reply.kids, indent or "", 0, out)
    if fifo:
        out.append("\n")
    return _enc("".join(out))


def format_datagram_reply(reply: MIReply, indent: str | None = "\t") -> bytes | None:
    """The reply datagram, or None when it does not fit (1.6 then sends nothing)."""
    data = format_reply(reply, indent, fifo=False)
    if len(data) >= DATAGRAM_SOCK_BUF_SIZE:
        return None
    return data
