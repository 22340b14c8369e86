"""SIP over a byte stream: cutting a TCP connection's bytes into messages.

Pure code (no sockets), as 1.6's tcp_read_headers does it:

- between messages, CR and LF are skipped; a CRLFCRLF there is a keep-alive
  ping (RFC 5626), reported as `PING` so the reader can answer with CRLF
  (`tcp_crlf_pingpong`); a lone CRLF (a pong) is just skipped;
- the headers end at the first empty line (CRLFCRLF, or LFLF);
- the body is Content-Length bytes (the compact `l` too); a message without
  Content-Length on a stream cannot be delimited, and neither can one with a
  broken or contradictory value: that is an error (`StreamFramer.error`)
  and the connection is closed;
- a message (headers and body) larger than `max_size` (1.6's TCP buffer,
  65535 bytes) is an error too, as soon as it is known to be.
"""

from __future__ import annotations

import re

__all__ = ["PING", "FramingError", "StreamFramer", "top_via_info"]

PING = b"\r\n\r\n"  # a frame that is this exact value is a keep-alive ping
MAX_MESSAGE = 65535

_CL_RE = re.compile(rb"^(?:content-length|l)[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_EOL = frozenset(b"\r\n")


class FramingError(Exception):
    """The stream cannot be cut into SIP messages; the connection must be closed."""


class StreamFramer:
    """Accumulates the bytes of one connection and returns complete frames.

    `feed(data)` returns the frames completed by `data`, in order: each a
    whole SIP message (bytes), or `PING` for a CRLFCRLF keep-alive. When the
    stream turns out to be unusable, `error` says why (the frames before the
    bad part are still returned); the connection is then to be closed and
    the framer returns nothing more.
    """

    __slots__ = ("_buf", "_end", "error", "max_size")

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self.max_size = max_size
        self.error: str | None = None
        self._buf = bytearray()
        self._end = 0  # when > 0: the end offset of the message whose headers are read

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self.error is not None:
            return []
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        size = len(buf)
        try:
            while pos < size:
                end = self._end
                if end:
                    if size < end:
                        break
                    frames.append(bytes(buf[pos:end]))
                    pos = end
                    self._end = 0
                    continue
                if buf[pos] in _EOL:
                    if buf.startswith(PING, pos):
                        frames.append(PING)
                        pos += 4
                        continue
                    if PING.startswith(buf[pos:]):
                        break  # perhaps the start of a ping: wait for more
                    pos += 1
                    continue
                self._end = self._message_end(buf, pos)
                if not self._end:
                    if size - pos > self.max_size:
                        raise FramingError(f"no end of headers within {self.max_size} bytes")
                    break
        except FramingError as e:
            self.error = str(e)
            self._buf = bytearray()
            self._end = 0
            return frames
        if pos:
            del buf[:pos]
            if self._end:
                self._end -= pos
        return frames

    def _message_end(self, buf: bytearray, pos: int) -> int:
        """Absolute end of the message starting at `pos`; 0 if its headers are incomplete."""
        crlf = buf.find(b"\r\n\r\n", pos)
        lf = buf.find(b"\n\n", pos)
        if crlf < 0 and lf < 0:
            return 0
        if lf < 0 or 0 <= crlf < lf:
            head_end, body_start = crlf, crlf + 4
        else:
            head_end, body_start = lf, lf + 2
        if head_end - pos > self.max_size:
            raise FramingError(f"headers longer than {self.max_size} bytes")
        length = content_length(bytes(buf[pos:head_end]))
        end = body_start + length
        if end - pos > self.max_size:
            raise FramingError(f"message of {end - pos} bytes is larger than {self.max_size}")
        return end


def content_length(head: bytes) -> int:
    """The Content-Length of a header block; FramingError if absent or broken."""
    value: int | None = None
    for m in _CL_RE.finditer(head):
        text = m.group(1).strip()
        if not text.isdigit():
            raise FramingError(f"bad Content-Length {text[:20]!r}")
        n = int(text)
        if value is not None and n != value:
            raise FramingError("contradictory Content-Length headers")
        value = n
    if value is None:
        raise FramingError("no Content-Length in a message on a stream")
    return value


_VIA_RE = re.compile(
    rb"^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*[A-Za-z]+[ \t]+"
    rb"(?:\[[^\]\r\n]*\]|[^:;,\s]+)(?:[ \t]*:[ \t]*(\d+))?([^,\r\n]*)",
    re.IGNORECASE | re.MULTILINE)
_ALIAS_RE = re.compile(rb";[ \t]*alias(?:[ \t]*[;=]|[ \t]*$)", re.IGNORECASE)


def top_via_info(msg: bytes) -> tuple[int | None, bool]:
    """(sent-by port, has `alias`) of the first Via of a message; (None, False) if none.

    A quick look for the TCP reader (connection aliases and reply matching),
    not a parser: the message is parsed for real by the receive path.
    """
    head_end = msg.find(b"\r\n\r\n")
    m = _VIA_RE.search(msg, 0, head_end if head_end >= 0 else len(msg))
    if m is None:
        return None, False
    port = int(m.group(1)) if m.group(1) else None
    if port is not None and not 0 < port < 65536:
        port = None
    return port, _ALIAS_RE.search(m.group(2)) is not None
