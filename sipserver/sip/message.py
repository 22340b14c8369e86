"""SipMsg: a parsed SIP request or reply over the original bytes.

Parsing is split in two, as in OpenSIPS: `parse_message` reads the first line,
indexes every header line (name and value offsets) and checks what a proxy
cannot work without (top Via, From, To, Call-ID, CSeq, Max-Forwards and
Content-Length syntax, the body length); every other header is parsed the
first time something asks for it.

The bytes are decoded as latin-1 into `text`, so every character is one
byte: offsets in `text` are byte offsets in `buf`, any octet survives the
round trip, and `build()` can splice lumps into the original by offset.
"""

from __future__ import annotations

import re
from typing import Any

from .digest import Challenge, Credentials, parse_challenge, parse_credentials
from .errors import ParseError
from .headers import (
    COMPACT_FORMS,
    TOKEN_RE,
    CSeq,
    Event,
    MediaType,
    NameAddr,
    Via,
    header_key,
    is_star_contact,
    parse_cseq,
    parse_event,
    parse_media_type,
    parse_name_addr,
    parse_name_addr_list,
    parse_token_list,
    parse_uint,
    parse_via,
)
from .lumps import Lumps
from .uri import Uri, parse_uri

SIP_VERSION = "SIP/2.0"
# A datagram bigger than this is refused before any parsing (BUF_SIZE in 1.6).
MAX_MESSAGE_SIZE = 65535
_SINGLE_HEADERS = ("from", "to", "call-id", "cseq")
MAX_CONTENT_LENGTH = 2**31 - 1


class Header:
    """One header field line (or folded lines) of the original message.

    `start`/`end` span the whole field including its line ending, `value` is
    the field value without surrounding white space (folds kept inside).
    """

    __slots__ = ("end", "key", "name", "parsed", "start", "value", "value_start")

    def __init__(self, name: str, key: str, value: str, start: int, value_start: int, end: int):
        self.name = name
        self.key = key
        self.value = value
        self.start = start
        self.value_start = value_start
        self.end = end
        self.parsed: Any = None

    @property
    def value_end(self) -> int:
        return self.value_start + len(self.value)

    def __repr__(self) -> str:
        return f"Header({self.name!r}: {self.value!r})"


class SipMsg:
    """A SIP request or reply. Use `parse_message` to make one."""

    __slots__ = (
        "_body_end",
        "_cache",
        "_lumps",
        "_ruri",
        "body_start",
        "buf",
        "eol",
        "first_line_end",
        "headers",
        "headers_end",
        "index",
        "is_request",
        "method",
        "reason",
        "ruri_end",
        "ruri_start",
        "status",
        "text",
        "version",
        "via1",
    )

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._lumps: Lumps | None = None
        self._ruri: Uri | None = None
        self.method = ""
        self.status = 0
        self.reason = ""

    # ------------------------------------------------------------ first line

    @property
    def ruri_text(self) -> str:
        """The Request-URI as received (empty for replies)."""
        return self.text[self.ruri_start : self.ruri_end] if self.is_request else ""

    @property
    def ruri(self) -> Uri | None:
        """The parsed Request-URI as received (None for replies)."""
        return self._ruri

    @property
    def is_reply(self) -> bool:
        return not self.is_request

    @property
    def first_line(self) -> str:
        return self.text[: self.first_line_end].rstrip("\r\n")

    # ------------------------------------------------------------ headers

    def header(self, name: str) -> Header | None:
        """The first header field called `name` (any case, compact forms too)."""
        lst = self.index.get(header_key(name))
        return lst[0] if lst else None

    def headers_named(self, name: str) -> list[Header]:
        """Every header field called `name`, in message order."""
        return self.index.get(header_key(name), [])

    def has_header(self, name: str) -> bool:
        return header_key(name) in self.index

    def header_value(self, name: str) -> str | None:
        h = self.header(name)
        return None if h is None else h.value

    def _parsed(self, key: str, parser):
        """Parse the first `key` header once and keep the result on it."""
        lst = self.index.get(key)
        if not lst:
            return None
        return self._parsed_header(lst[0], parser)

    def _parsed_all(self, key: str, parser) -> list:
        out: list = []
        for h in self.index.get(key, ()):
            out.extend(self._parsed_header(h, parser))
        return out

    # typed views ---------------------------------------------------------

    @property
    def vias(self) -> list[Via]:
        """Every via-parm of the message, top first."""
        return self._parsed_all("via", parse_via)

    @property
    def via2(self) -> Via | None:
        vias = self.vias
        return vias[1] if len(vias) > 1 else None

    @property
    def from_(self) -> NameAddr:
        return self._parsed("from", lambda v: parse_name_addr(v, "From"))

    @property
    def to(self) -> NameAddr:
        return self._parsed("to", lambda v: parse_name_addr(v, "To"))

    @property
    def call_id(self) -> str:
        return self.index["call-id"][0].value

    @property
    def cseq(self) -> CSeq:
        return self._parsed("cseq", parse_cseq)

    @property
    def max_forwards(self) -> int | None:
        return self._parsed("max-forwards", lambda v: parse_uint(v, "Max-Forwards", 255))

    @property
    def content_length(self) -> int | None:
        return self._parsed(
            "content-length", lambda v: parse_uint(v, "Content-Length", MAX_CONTENT_LENGTH)
        )

    @property
    def content_type(self) -> MediaType | None:
        return self._parsed("content-type", parse_media_type)

    @property
    def expires(self) -> int | None:
        return self._parsed("expires", lambda v: parse_uint(v, "Expires", 2**32 - 1))

    @property
    def contact_star(self) -> bool:
        """True when the message carries `Contact: *`."""
        return any(is_star_contact(h.value) for h in self.index.get("contact", ()))

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact of the message ([] for `Contact: *`)."""
        if self.contact_star:
            return []
        return self._parsed_all("contact", lambda v: parse_name_addr_list(v, "Contact"))

    @property
    def routes(self) -> list[NameAddr]:
        return self._parsed_all("route", lambda v: parse_name_addr_list(v, "Route"))

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._parsed_all("record-route", lambda v: parse_name_addr_list(v, "Record-Route"))

    @property
    def event(self) -> Event | None:
        return self._parsed("event", parse_event)

    @property
    def refer_to(self) -> NameAddr | None:
        return self._parsed("refer-to", lambda v: parse_name_addr(v, "Refer-To"))

    def credentials(self, name: str = "authorization") -> list[Credentials]:
        """Parsed Authorization (or Proxy-Authorization) headers, in order."""
        return [self._parsed_header(h, parse_credentials) for h in self.headers_named(name)]

    def challenges(self, name: str = "www-authenticate") -> list[Challenge]:
        """Parsed WWW-Authenticate (or Proxy-Authenticate) headers, in order."""
        return [self._parsed_header(h, parse_challenge) for h in self.headers_named(name)]

    @staticmethod
    def _parsed_header(h: Header, parser):
        """Parse a header field once and keep the result on it."""
        if h.parsed is None:
            h.parsed = parser(h.value)
        return h.parsed

    def token_list(self, name: str) -> list[str]:
        """Supported, Require, Proxy-Require, Allow, Unsupported ... merged."""
        out: list[str] = []
        for h in self.headers_named(name):
            out.extend(parse_token_list(h.value))
        return out

    # ------------------------------------------------------------ body

    @property
    def body(self) -> str:
        return self.text[self.body_start : self._body_end]

    @property
    def body_bytes(self) -> bytes:
        return self.buf[self.body_start : self._body_end]

    @property
    def body_end(self) -> int:
        return self._body_end

    # ------------------------------------------------------------ changes

    @property
    def lumps(self) -> Lumps:
        """The pending changes to this message (created on first use)."""
        if self._lumps is None:
            self._lumps = Lumps(self)
        return self._lumps

    @property
    def has_lumps(self) -> bool:
        return self._lumps is not None and bool(self._lumps)

    def build(self) -> bytes:
        """The message with every lump applied (the original bytes when none)."""
        if self._lumps is None or not self._lumps:
            if self._body_end == len(self.buf):
                return self.buf
            return self.buf[: self._body_end]  # octets after the body are not ours
        return self._lumps.apply()

    def __repr__(self) -> str:
        return f"<SipMsg {self.first_line!r}>"


def parse_message(data: bytes) -> SipMsg:
    """Parse one SIP message (a whole datagram or one framed stream message).

    Raises ParseError for anything a proxy must not act on; ParseError.status
    says which reply fits (400 unless something more precise applies).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_message takes bytes")
    data = bytes(data)
    if not data:
        raise ParseError("empty message")
    if len(data) > MAX_MESSAGE_SIZE:
        raise ParseError("message too large", status=513)
    text = data.decode("latin-1")
    msg = SipMsg()
    msg.buf = data
    msg.text = text

    nl = text.find("\n")
    if nl <= 0:
        raise ParseError("no line end after the first line")
    eol = "\r\n" if text[nl - 1] == "\r" else "\n"
    msg.eol = eol
    first = text[: nl + 1 - len(eol)]
    msg.first_line_end = nl + 1
    _parse_first_line(msg, first)

    # Header block: up to the empty line.
    double = eol + eol
    hdr_block_end = text.find(double, nl + 1 - len(eol))
    if hdr_block_end < 0:
        raise ParseError("no empty line after the headers")
    msg.headers_end = hdr_block_end + len(eol)  # start of the empty line
    msg.body_start = hdr_block_end + len(double)
    _index_headers(msg, text, msg.first_line_end, msg.headers_end, eol)
    _check_mandatory(msg)
    return msg


def dummy_request() -> SipMsg:
    """The message startup_route and timer_route run on, as in 1.6.

    Method ``DUMMY``, Request-URI ``user`` (not a parsable URI), no headers,
    no body: only what a script can look at without a real request.
    """
    text = "DUMMY user SIP/2.0\r\n\r\n"
    msg = SipMsg()
    msg.buf = text.encode("latin-1")
    msg.text = text
    msg.eol = "\r\n"
    msg.first_line_end = text.index("\n") + 1
    msg.is_request = True
    msg.method = "DUMMY"
    msg.version = SIP_VERSION
    msg.ruri_start, msg.ruri_end = 6, 10
    msg.headers_end = msg.first_line_end
    msg.body_start = msg._body_end = len(text)
    msg.headers = []
    msg.index = {}
    msg.via1 = None
    return msg


def _parse_first_line(msg: SipMsg, line: str) -> None:
    if line.startswith("SIP/") or line[:4].upper() == "SIP/":
        msg.is_request = False
        parts = line.split(" ", 2)
        if len(parts) < 2:
            raise ParseError("bad status line")
        version, code = parts[0], parts[1]
        msg.reason = parts[2] if len(parts) == 3 else ""
        if version.upper() != SIP_VERSION:
            raise ParseError(f"unsupported version {version[:16]!r}")
        if len(code) != 3 or not code.isdigit() or not code.isascii():
            raise ParseError(f"bad status code {code[:16]!r}")
        status = int(code)
        if not 100 <= status <= 699:
            raise ParseError(f"status code {status} out of range")
        msg.version = version
        msg.status = status
        msg.ruri_start = msg.ruri_end = 0
        return
    msg.is_request = True
    parts = line.split(" ")
    if len(parts) != 3:
        raise ParseError("bad request line (expected METHOD SP Request-URI SP SIP/2.0)")
    method, ruri, version = parts
    if not (method.isalpha() and method.isascii()) and not TOKEN_RE.match(method):
        raise ParseError(f"bad method {method[:32]!r}")
    if version != SIP_VERSION and version.upper() != SIP_VERSION:
        if version.upper().startswith("SIP/"):
            raise ParseError(f"unsupported SIP version {version[:16]!r}", status=505)
        raise ParseError(f"bad request line version {version[:16]!r}")
    msg.method = method
    msg.version = version
    msg.ruri_start = len(method) + 1
    msg.ruri_end = msg.ruri_start + len(ruri)
    uri = _RURI_CACHE.get(ruri)
    if uri is None:
        uri = parse_uri(ruri)
        if uri.headers is not None and uri.scheme in ("sip", "sips"):
            raise ParseError("Request-URI must not contain headers")
        if len(_RURI_CACHE) >= _MAX_RURI_CACHE:
            _RURI_CACHE.clear()
        _RURI_CACHE[ruri] = uri
    msg._ruri = uri


# Request-URI text -> its parse: Uri objects are immutable and shared, and a
# proxy sees the same few Request-URIs again and again. Only good ones are
# kept, so a bad one is rejected every time as before.
_RURI_CACHE: dict[str, Uri] = {}
_MAX_RURI_CACHE = 1024


def _unfold(lines: list[str], eol: str) -> list[str]:
    """Join folded continuation lines to the line they continue."""
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] = out[-1] + eol + line
        else:
            out.append(line)
    return out


# The header block needs the careful per-line checks when a line (or what
# follows a bare LF) does not start with a token and a colon; almost always
# every line is a plain "Name: value" and they can be skipped. Folded lines
# also take the careful path. Only the LFs are visited: the search skips to
# each one in C.
_TOKEN_COLON_RE = re.compile(r"[A-Za-z0-9!%*_+`'~.\-]+:")
_ODD_LINE_AFTER_LF_RE = re.compile(r"\n(?![A-Za-z0-9!%*_+`'~.\-]+:)")

# Header name as written -> canonical key (lower case, compact forms
# expanded): a bounded cache, names repeat from message to message.
_KEYS: dict[str, str] = {}
_MAX_KEYS = 512


def _new_key(name: str) -> str:
    key = header_key(name)
    if len(_KEYS) >= _MAX_KEYS:
        _KEYS.clear()
    _KEYS[name] = key
    return key


def _index_headers(msg: SipMsg, text: str, pos: int, end: int, eol: str) -> None:
    """Split the header block into Header fields; folded lines stay inside.

    str.split/partition beat a regex scan here by 2-3x: this runs for every
    message, so it is written for speed; lines of the usual shape skip the
    per-part checks.
    """
    headers: list[Header] = []
    index: dict[str, list[Header]] = {}
    eol_len = len(eol)
    block = text[pos : end - eol_len]
    lines = block.split(eol)
    new_header = Header
    index_get = index.get
    append = headers.append
    if _TOKEN_COLON_RE.match(block) is None or _ODD_LINE_AFTER_LF_RE.search(block) is not None:
        if eol + " " in block or eol + "\t" in block:
            lines = _unfold(lines, eol)
        compact = COMPACT_FORMS
        for line in lines:
            name, colon, value = line.partition(":")
            start = pos
            pos += len(line) + eol_len
            name, value, vstart = _careful_header_line(line, name, colon, value, start)
            key = name.lower()
            if len(key) == 1:
                key = compact.get(key, key)
            h = new_header(name, key, value, start, vstart, pos)
            append(h)
            lst = index_get(key)
            if lst is None:
                index[key] = [h]
            else:
                lst.append(h)
    else:
        # every line is "token:value": no fold, no bare LF
        key_get = _KEYS.get
        for line in lines:
            name, _, value = line.partition(":")
            start = pos
            pos += len(line)
            value = value.lstrip(" \t")
            vstart = pos - len(value)
            pos += eol_len
            key = key_get(name)
            if key is None:
                key = _new_key(name)
            h = new_header(name, key, value.rstrip(" \t\r\n"), start, vstart, pos)
            append(h)
            lst = index_get(key)
            if lst is None:
                index[key] = [h]
            else:
                lst.append(h)
    msg.headers = headers
    msg.index = index
    vias = index_get("via")
    if vias is None:
        raise ParseError("no Via header")
    via1_hdr = vias[0]
    via1_hdr.parsed = parse_via(via1_hdr.value)
    msg.via1 = via1_hdr.parsed[0]


def _careful_header_line(line: str, name: str, colon: str, value: str,
                         start: int) -> tuple[str, str, int]:
    """Name, value and value offset of an unusual header line, or ParseError."""
    plain = name if "-" not in name else name.replace("-", "")
    if not colon or not ((plain.isalnum() and plain.isascii())
                         or TOKEN_RE.match(name.rstrip(" \t"))):
        raise ParseError(f"bad header line {line[:40]!r}")
    vstart = start + len(name) + 1
    if name[-1] in " \t":
        name = name.rstrip(" \t")
    if value[:1] in (" ", "\t", "\r", "\n"):
        stripped = value.lstrip(" \t\r\n")
        vstart += len(value) - len(stripped)
        value = stripped
    if value[-1:] in (" ", "\t", "\r", "\n"):
        value = value.rstrip(" \t\r\n")
    return name, value, vstart


# From/To values of the usual shape, which the full name-addr parser is sure
# to accept: checking them with one regex lets the parse wait for first use.
_TOK = r"A-Za-z0-9\-.!%*_+`'~"
_PLAIN_NAMEADDR_RE = re.compile(
    rf'(?:"[^"\\\r\n]*"[ \t]*|[{_TOK} \t]*)<[^<>"\s]+>'
    rf"(?:;[{_TOK}]+(?:=[{_TOK}:\[\]]+)?)*"
)

_plain_name_addr = _PLAIN_NAMEADDR_RE.fullmatch
# From/To values that matched it lately: the messages of a dialog repeat them.
_PLAIN_SEEN: set[str] = set()
_MAX_PLAIN_SEEN = 1024


def _seen_plain(value: str) -> None:
    if len(_PLAIN_SEEN) >= _MAX_PLAIN_SEEN:
        _PLAIN_SEEN.clear()
    _PLAIN_SEEN.add(value)


def _check_mandatory(msg: SipMsg) -> None:
    index = msg.index
    get = index.get
    from_ = get("from")
    to = get("to")
    call_id = get("call-id")
    cseq_hdrs = get("cseq")
    if (from_ is None or to is None or call_id is None or cseq_hdrs is None
            or len(from_) != 1 or len(to) != 1 or len(call_id) != 1 or len(cseq_hdrs) != 1):
        for key in _SINGLE_HEADERS:
            lst = get(key)
            if not lst:
                raise ParseError(f"missing {key.title()} header")
            if len(lst) > 1:
                raise ParseError(f"more than one {key.title()} header")
    if not call_id[0].value:
        raise ParseError("empty Call-ID")
    h = cseq_hdrs[0]
    cseq = h.parsed
    if cseq is None:
        cseq = h.parsed = parse_cseq(h.value)
    if msg.is_request and cseq.method != msg.method:
        raise ParseError(f"CSeq method {cseq.method!r} does not match {msg.method!r}")
    # a bad From/To is a 400; the usual shapes are checked here and parsed on use
    value = from_[0].value
    if value not in _PLAIN_SEEN:
        if _plain_name_addr(value) is None:
            msg.from_  # noqa: B018
        else:
            _seen_plain(value)
    value = to[0].value
    if value not in _PLAIN_SEEN:
        if _plain_name_addr(value) is None:
            msg.to  # noqa: B018
        else:
            _seen_plain(value)
    lst = get("max-forwards")
    if lst is not None:
        if len(lst) > 1:
            raise ParseError("more than one Max-Forwards header")
        h = lst[0]
        if h.parsed is None:
            h.parsed = _uint(h.value, "Max-Forwards", 255)
    available = len(msg.text) - msg.body_start
    lst = get("content-length")
    if lst is not None:
        if len(lst) > 1:
            raise ParseError("more than one Content-Length header")
        h = lst[0]
        length = h.parsed
        if length is None:
            length = h.parsed = _uint(h.value, "Content-Length", MAX_CONTENT_LENGTH)
        if length > available:
            raise ParseError(f"Content-Length {length} larger than the {available} body octets")
        msg._body_end = msg.body_start + length
    else:
        msg._body_end = len(msg.text)


def _uint(value: str, what: str, maximum: int) -> int:
    """parse_uint with a shortcut for the usual few ASCII digits."""
    if len(value) < 6 and value.isdigit() and value.isascii():
        n = int(value)
        if n <= maximum:
            return n
    return parse_uint(value, what, maximum)
