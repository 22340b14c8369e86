"""Lumps: the pending changes to a received message, applied once on build.

As in OpenSIPS, script functions never rewrite the message in place: each
change is recorded as an insert/delete/replace at an offset of the original
text, and `apply()` splices them in one pass. Parts nobody touched are
copied byte for byte, and later lookups in the message still see the
original (so `is_present_hf` does not see a header `append_hf` added, as in
1.6).

Send-time lumps: the text of a change may also be a function of a
`SendInfo` (the outgoing socket, transport and advertised address, plus the
receiving socket), called when the message is built for one destination --
1.6's SUBST lumps (the address of the socket a request leaves through, for
Record-Route) and conditional lumps (included only when the outgoing and
receiving sockets differ). The function returns the text to insert, ""
for nothing. It is called with None when the message is built without a
destination (`SipMsg.build()`); it must then fall back on something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ParseError

if TYPE_CHECKING:
    from .message import Header, SipMsg


@dataclass(frozen=True, slots=True)
class SendInfo:
    """Where a built message goes: what send-time lumps are computed from.

    `sock` is the outgoing listening socket (a `SocketInfo`), `proto` the
    transport, `rcv` the socket the message came in on (None for a message
    we made ourselves). `host`/`port` are what we advertise for `sock` (our
    Via sent-by): the advertised address when one applies, else the socket
    address; `port` is None when it is not to be written (5060, nothing
    advertised).
    """

    sock: Any
    proto: str
    rcv: Any = None
    host: str = ""
    port: int | None = None

    @property
    def realms_differ(self) -> bool:
        """1.6's COND_IF_DIFF_REALMS: the receiving and sending sockets are not
        the same (address, port or transport). False without a receiving socket."""
        rcv, snd = self.rcv, self.sock
        if rcv is None or rcv is snd:
            return False
        if snd is None:
            return True
        return (rcv.proto, rcv.ip, rcv.port) != (snd.proto, snd.ip, snd.port)


#: the text of a change: fixed, or computed from the SendInfo at build time
LumpText = str | Callable[[SendInfo | None], str]


class Lumps:
    """Changes recorded against one SipMsg."""

    __slots__ = ("_ops", "_seq", "msg", "new_body", "new_ruri")

    def __init__(self, msg: SipMsg) -> None:
        self.msg = msg
        # (start, end, seq, text): replace text[start:end] by `text`;
        # start == end is an insert. `seq` keeps inserts at one offset in order.
        self._ops: list[tuple[int, int, int, LumpText]] = []
        self._seq = 0
        self.new_ruri: str | None = None
        self.new_body: str | None = None

    def __bool__(self) -> bool:
        return bool(self._ops) or self.new_ruri is not None or self.new_body is not None

    def __len__(self) -> int:
        return len(self._ops)

    # ------------------------------------------------------------ primitives

    def replace(self, start: int, end: int, text: LumpText) -> int:
        """Replace the original text[start:end] by `text`.

        `text` may be a function of the SendInfo (a send-time lump, see the
        module docstring). Returns a handle for `update` (a later change of
        the same lump, as 1.6's codec functions edit the lump over one m= line).
        """
        if not 0 <= start <= end <= len(self.msg.text):
            raise ParseError(f"lump out of range: {start}..{end}")
        self._ops.append((start, end, self._seq, text))
        self._seq += 1
        return self._seq - 1

    def update(self, handle: int, text: LumpText) -> None:
        """Give the change `replace` returned `handle` for a new text."""
        for i, (start, end, seq, _) in enumerate(self._ops):
            if seq == handle:
                self._ops[i] = (start, end, seq, text)
                return
        raise KeyError(f"no lump {handle}")

    def checkpoint(self) -> tuple[object, ...]:
        """A mark to `rollback` to: changes made after it can be undone.

        Forwarding adds its Via and R-URI for one build only; the script's
        own changes must survive for the next branch.
        """
        return (len(self._ops), self._seq, self.new_ruri, self.new_body)

    def rollback(self, mark: tuple[object, ...]) -> None:
        """Undo every change recorded after `checkpoint` returned `mark`."""
        n_ops, seq, new_ruri, new_body = mark
        del self._ops[n_ops:]  # type: ignore[misc]
        self._seq = seq  # type: ignore[assignment]
        self.new_ruri = new_ruri  # type: ignore[assignment]
        self.new_body = new_body  # type: ignore[assignment]

    def insert(self, offset: int, text: LumpText) -> int:
        return self.replace(offset, offset, text)

    def delete(self, start: int, end: int) -> int:
        return self.replace(start, end, "")

    # ------------------------------------------------------------ headers

    def _line(self, text: str) -> str:
        eol = self.msg.eol
        return text if text.endswith("\n") else text + eol

    def add_header(self, text: str) -> None:
        """Append a header line after the last header (`append_hf`)."""
        self.insert(self.msg.headers_end, self._line(text))

    def insert_header_first(self, text: str) -> None:
        """Insert a header line before the first header (`insert_hf`)."""
        self.insert(self.msg.first_line_end, self._line(text))

    def insert_header_before(self, hdr: Header, text: str) -> None:
        self.insert(hdr.start, self._line(text))

    def insert_header_after(self, hdr: Header, text: str) -> None:
        self.insert(hdr.end, self._line(text))

    def remove_header(self, hdr: Header) -> None:
        """Delete a whole header field, folded lines and line end included."""
        self.delete(hdr.start, hdr.end)

    def replace_header_value(self, hdr: Header, value: str) -> None:
        self.replace(hdr.value_start, hdr.value_end, value)

    # ------------------------------------------------------------ first line, body

    def set_ruri(self, uri: str) -> None:
        """The Request-URI the built message carries (last call wins)."""
        if not self.msg.is_request:
            raise ParseError("a reply has no Request-URI")
        self.new_ruri = uri

    def set_body(self, body: str, content_type: str | None = None) -> None:
        """Replace the whole body; Content-Length follows on build.

        Changes recorded inside the old body are dropped with it.
        """
        self.new_body = body
        if content_type is not None:
            ct = self.msg.header("content-type")
            if ct is not None:
                self.replace_header_value(ct, content_type)
            else:
                self.add_header(f"Content-Type: {content_type}")

    # ------------------------------------------------------------ build

    def apply(self, ensure_content_length: bool = False, send: SendInfo | None = None) -> bytes:
        """The message with every change applied, Content-Length fixed.

        `send` is what send-time lumps are computed from (None when the
        message is not built for a particular destination).
        """
        msg = self.msg
        text = msg.text
        body_start, body_end = msg.body_start, msg.body_end
        ops: list[tuple[int, int, int, str]] = [
            (start, end, seq, new if isinstance(new, str) else new(send))
            for start, end, seq, new in self._ops
        ]
        if self.new_ruri is not None:
            ops.append((msg.ruri_start, msg.ruri_end, -1, self.new_ruri))
        if self.new_body is not None:
            ops = [op for op in ops if op[1] <= body_start or op[0] > body_end]
            ops.append((body_start, body_end, self._seq, self.new_body))
        # Body length after the changes: fix Content-Length when it moved.
        body_delta = 0
        for start, end, _, new in ops:
            if start >= body_start:
                body_delta += len(to_wire(new)) - (end - start)
        new_len = body_end - body_start + body_delta
        cl = msg.header("content-length")
        if cl is not None:
            if body_delta:
                ops.append((cl.value_start, cl.value_end, self._seq + 1, str(new_len)))
        elif body_delta or ensure_content_length:
            line = f"Content-Length: {new_len}{msg.eol}"
            ops.append((msg.headers_end, msg.headers_end, self._seq + 2, line))
        ops.sort(key=lambda op: (op[0], op[2]))
        out: list[bytes] = []
        cursor = 0
        for start, end, _, new in ops:
            if start < cursor:
                # Overlaps an earlier deletion: keep only what is left of it.
                if end <= cursor:
                    continue
                start = cursor
            out.append(text[cursor:start].encode("latin-1"))
            out.append(to_wire(new))
            cursor = end
        out.append(text[cursor:body_end].encode("latin-1"))
        return b"".join(out)


def to_wire(text: str) -> bytes:
    """Bytes for text that is to go on the wire.

    Text from a message is latin-1 (one char per byte); text made up by a
    script or a module may hold characters above 255, which only UTF-8 can
    carry.
    """
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")
