"""Header names and the typed views of header values.

Values are parsed from the message text itself (latin-1, one char per byte),
and a folded value keeps its CRLF+WS inside: every parser here treats CR and
LF as linear white space. That keeps every offset a parser reports equal to a
byte offset in the original message, which is what lumps need.
"""

from __future__ import annotations

import re

from .errors import ParseError
from .uri import parse_uri

# RFC 3261 §7.3.3 and later RFCs' compact forms -> canonical lower-case names.
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "r": "refer-to",  # RFC 3515
    "b": "referred-by",  # RFC 3892
    "o": "event",  # RFC 3265
    "u": "allow-events",  # RFC 3265
    "x": "session-expires",  # RFC 4028
    "a": "accept-contact",  # RFC 3841
    "j": "reject-contact",  # RFC 3841
    "d": "request-disposition",  # RFC 3841
    "y": "identity",  # RFC 4474
    "n": "identity-info",  # RFC 4474
}


# RFC 3261 §8.1.1.7: branches that start with this are globally unique.
MAGIC_COOKIE = "z9hG4bK"


def header_key(name: str) -> str:
    """The canonical key of a header name: lower case, compact forms expanded."""
    key = name.lower()
    if len(key) == 1:
        return COMPACT_FORMS.get(key, key)
    return key


_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_RE = re.compile(rf"[{_TOKEN_CHARS}]+\Z")
_LWS = r"[ \t\r\n]*"

# ;name[=value] — value is a quoted string, a bracketed IPv6 reference or a
# run of characters that cannot end a parameter.
_PARAM_RE = re.compile(
    rf"{_LWS};{_LWS}([{_TOKEN_CHARS}]+)"
    rf"(?:{_LWS}={_LWS}(\"(?:[^\"\\]|\\.)*\"|\[[0-9A-Fa-f:.]*\]|[^\s;,\"<>]+))?"
)
_SKIP_LWS_RE = re.compile(_LWS)
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_UNESCAPE_QUOTED_RE = re.compile(r"\\(.)", re.S)


def unquote(value: str) -> str:
    """Strip the quotes of a quoted-string and resolve its backslash escapes."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return _UNESCAPE_QUOTED_RE.sub(r"\1", value[1:-1])
    return value


class Param:
    """One `;name=value` parameter, with its span (from the `;`) in the value."""

    __slots__ = ("end", "name", "start", "value")

    def __init__(self, name: str, value: str | None, start: int, end: int) -> None:
        self.name = name
        self.value = value
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.value!r})"


def parse_params(text: str, pos: int) -> tuple[list[Param], int]:
    """Parse `;name[=value]` parameters from `pos`; return them and the end."""
    params: list[Param] = []
    match = _PARAM_RE.match
    while True:
        m = match(text, pos)
        if m is None:
            return params, pos
        params.append(Param(m.group(1), m.group(2), m.start(), m.end()))
        pos = m.end()


def find_param(params: list[Param], name: str) -> Param | None:
    """The first parameter called `name` (case-insensitive), or None."""
    name = name.lower()
    for p in params:
        if p.name.lower() == name:
            return p
    return None


def param_value(params: list[Param], name: str) -> str | None:
    """The value of the first parameter called `name`, or None."""
    p = find_param(params, name)
    return None if p is None else p.value


def _expect_separator(text: str, pos: int, what: str) -> int:
    """After one element of a comma list: skip LWS, return the next element's
    start, or -1 at the end. Anything else is a syntax error."""
    pos = _SKIP_LWS_RE.match(text, pos).end()
    if pos >= len(text):
        return -1
    if text[pos] != ",":
        raise ParseError(f"bad {what}: unexpected {text[pos]!r} at offset {pos}")
    pos += 1
    pos = _SKIP_LWS_RE.match(text, pos).end()
    if pos >= len(text):
        raise ParseError(f"bad {what}: empty element after ','")
    return pos


# ---------------------------------------------------------------- Via

_VIA_RE = re.compile(
    rf"{_LWS}([{_TOKEN_CHARS}]+){_LWS}/{_LWS}([{_TOKEN_CHARS}]+){_LWS}/{_LWS}([{_TOKEN_CHARS}]+)"
    rf"[ \t\r\n]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?:{_LWS}:{_LWS}([0-9]{{1,5}}))?"
)


class Via:
    """One via-parm. Offsets are relative to the header value they came from."""

    __slots__ = (
        "end",
        "host",
        "hostport_end",
        "params",
        "port",
        "protocol",
        "start",
        "transport",
        "version",
    )

    def __init__(self) -> None:
        self.params: list[Param] = []

    def param(self, name: str) -> Param | None:
        return find_param(self.params, name)

    def _value(self, name: str) -> str | None:
        return param_value(self.params, name)

    @property
    def branch(self) -> str | None:
        return self._value("branch")

    @property
    def received(self) -> str | None:
        return self._value("received")

    @property
    def maddr(self) -> str | None:
        return self._value("maddr")

    @property
    def ttl(self) -> str | None:
        return self._value("ttl")

    @property
    def rport(self) -> str | None:
        """None when absent, '' when present without a value."""
        p = find_param(self.params, "rport")
        if p is None:
            return None
        return p.value or ""

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"Via({self.transport} {self.sent_by} {self.params})"


def parse_via(text: str) -> list[Via]:
    """Parse a Via header value (one or more comma-separated via-parms)."""
    vias: list[Via] = []
    pos = 0
    n = len(text)
    via_match = _VIA_RE.match
    param_match = _PARAM_RE.match
    while True:
        m = via_match(text, pos)
        if m is None:
            raise ParseError(f"bad Via: {text[pos:pos + 40].strip()!r}")
        v = Via()
        protocol, version, transport, v.host, port = m.groups()
        v.start = m.start(1)  # after the LWS the pattern starts with
        if (protocol != "SIP" and protocol.upper() != "SIP") or version != "2.0":
            raise ParseError(f"bad Via protocol {protocol}/{version}")
        v.protocol = protocol
        v.version = version
        v.transport = transport if transport.isupper() else transport.upper()
        if port is not None:
            port = int(port)
            if port > 65535:
                raise ParseError(f"bad Via port {port}")
        v.port = port
        v.hostport_end = pos = m.end()
        params = v.params
        while pos < n and (m := param_match(text, pos)) is not None:
            pos = m.end()
            params.append(Param(m.group(1), m.group(2), m.start(), pos))
        v.end = pos
        vias.append(v)
        if pos == n:
            return vias
        pos = _expect_separator(text, pos, "Via")
        if pos < 0:
            return vias


# ---------------------------------------------------------------- name-addr


class NameAddr:
    """A name-addr or addr-spec with header parameters (From, To, Contact, ...).

    The URI is kept as text and parsed on first use of `.uri`.
    """

    __slots__ = ("_uri", "display", "end", "params", "start", "uri_end", "uri_start", "uri_text")

    def __init__(self) -> None:
        self._uri = None
        self.display: str | None = None

    @property
    def uri(self):  # -> Uri
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    def param(self, name: str) -> Param | None:
        return find_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return param_value(self.params, "tag")

    @property
    def expires(self) -> int | None:
        p = find_param(self.params, "expires")
        if p is None or p.value is None or not p.value.isdigit():
            return None
        return int(p.value)

    @property
    def q(self) -> str | None:
        return param_value(self.params, "q")

    @property
    def display_name(self) -> str | None:
        """The display name without quotes and escapes."""
        return None if self.display is None else unquote(self.display)

    def __repr__(self) -> str:
        return f"NameAddr({self.display!r}, {self.uri_text!r}, {self.params})"


_DISPLAY_TOKENS_RE = re.compile(r'[^<"]*(?=<)')
_ADDR_SPEC_RE = re.compile(r"[^\s;,<>\"]+")


def _parse_one_name_addr(text: str, pos: int, what: str, in_list: bool) -> NameAddr:
    na = NameAddr()
    pos = _SKIP_LWS_RE.match(text, pos).end()
    na.start = pos
    if pos >= len(text):
        raise ParseError(f"empty {what}")
    ch = text[pos]
    if ch == '"':
        m = _QUOTED_RE.match(text, pos)
        if m is None:
            raise ParseError(f"bad {what}: unterminated quoted display name")
        na.display = m.group(0)
        pos = _SKIP_LWS_RE.match(text, m.end()).end()
        if pos >= len(text) or text[pos] != "<":
            raise ParseError(f"bad {what}: '<' expected after display name")
    elif ch != "<":
        m = _DISPLAY_TOKENS_RE.match(text, pos)
        stop = text.find(",", pos) if in_list else -1
        if m is not None and (stop < 0 or m.end() < stop):
            display = m.group(0).strip(" \t\r\n")
            na.display = display or None
            pos = m.end()
    if text.startswith("<", pos):
        close = text.find(">", pos + 1)
        if close < 0:
            raise ParseError(f"bad {what}: missing '>'")
        inner = text[pos + 1 : close]
        lead = len(inner) - len(inner.lstrip(" \t\r\n"))
        na.uri_text = inner.strip(" \t\r\n")
        if not na.uri_text:
            raise ParseError(f"bad {what}: empty URI")
        na.uri_start = pos + 1 + lead
        na.uri_end = na.uri_start + len(na.uri_text)
        pos = close + 1
    else:
        m = _ADDR_SPEC_RE.match(text, pos)
        if m is None:
            raise ParseError(f"bad {what}: no URI")
        na.uri_text = m.group(0)
        na.uri_start, na.uri_end = m.start(), m.end()
        pos = m.end()
    na.params, pos = parse_params(text, pos)
    na.end = pos
    return na


def parse_name_addr(text: str, what: str = "header") -> NameAddr:
    """Parse a single-valued name-addr header (From, To, Refer-To, ...)."""
    na = _parse_one_name_addr(text, 0, what, in_list=False)
    rest = text[na.end :].strip(" \t\r\n")
    if rest:
        raise ParseError(f"bad {what}: unexpected {rest[:20]!r}")
    return na


def parse_name_addr_list(text: str, what: str = "header") -> list[NameAddr]:
    """Parse a comma-separated list of name-addrs (Contact, Route, ...)."""
    out: list[NameAddr] = []
    pos = 0
    while True:
        na = _parse_one_name_addr(text, pos, what, in_list=True)
        out.append(na)
        pos = _expect_separator(text, na.end, what)
        if pos < 0:
            return out


def is_star_contact(text: str) -> bool:
    """True for the `Contact: *` of a remove-all REGISTER."""
    return text.strip(" \t\r\n") == "*"


# ---------------------------------------------------------------- scalars

_CSEQ_RE = re.compile(rf"{_LWS}([0-9]+)[ \t\r\n]+([{_TOKEN_CHARS}]+){_LWS}\Z")
MAX_CSEQ = 2**32 - 1


class CSeq:
    __slots__ = ("method", "number")

    def __init__(self, number: int, method: str) -> None:
        self.number = number
        self.method = method

    def __repr__(self) -> str:
        return f"CSeq({self.number}, {self.method!r})"


def parse_cseq(text: str) -> CSeq:
    number, _, method = text.partition(" ")
    # the usual "1 INVITE": digits, one space, letters
    if number.isdigit() and method.isalpha() and len(number) < 10 and text.isascii():
        return CSeq(int(number), method)
    m = _CSEQ_RE.match(text)
    if m is None:
        raise ParseError(f"bad CSeq: {text.strip()[:40]!r}")
    digits = m.group(1)
    if len(digits) > 10 or int(digits) > MAX_CSEQ:
        raise ParseError("bad CSeq: number larger than 2**32-1")
    return CSeq(int(digits), m.group(2))


def parse_uint(text: str, what: str, maximum: int) -> int:
    """A header that is a single unsigned integer (Max-Forwards, Expires, ...)."""
    value = text.strip(" \t\r\n")
    if not value.isdigit() or not value.isascii():
        raise ParseError(f"bad {what}: {value[:20]!r}")
    if len(value) > 12 or int(value) > maximum:
        raise ParseError(f"bad {what}: {value[:20]!r} is out of range")
    return int(value)


def split_commas(text: str) -> list[str]:
    """Split a header value at commas that are outside quotes and <...>."""
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            out.append(text[start:i].strip(" \t\r\n"))
            start = i + 1
        i += 1
    last = text[start:].strip(" \t\r\n")
    if last or out:
        out.append(last)
    return out


def parse_token_list(text: str) -> list[str]:
    """Supported/Require/Proxy-Require/Allow/Unsupported: a list of tokens."""
    return [t for t in (s.strip(" \t\r\n") for s in text.split(",")) if t]


class MediaType:
    """Content-Type / Accept element: type/subtype;params."""

    __slots__ = ("params", "subtype", "type")

    def __init__(self, type_: str, subtype: str, params: list[Param]) -> None:
        self.type = type_
        self.subtype = subtype
        self.params = params

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}".lower()

    def param(self, name: str) -> Param | None:
        return find_param(self.params, name)

    def __repr__(self) -> str:
        return f"MediaType({self.mime!r}, {self.params})"


_MEDIA_RE = re.compile(rf"{_LWS}([{_TOKEN_CHARS}]+){_LWS}/{_LWS}([{_TOKEN_CHARS}]+)")


def parse_media_type(text: str) -> MediaType:
    m = _MEDIA_RE.match(text)
    if m is None:
        raise ParseError(f"bad Content-Type: {text.strip()[:40]!r}")
    params, pos = parse_params(text, m.end())
    if text[pos:].strip(" \t\r\n"):
        raise ParseError(f"bad Content-Type: {text.strip()[:40]!r}")
    return MediaType(m.group(1), m.group(2), params)


class Event:
    """Event header: the package (with template) and its parameters."""

    __slots__ = ("name", "params")

    def __init__(self, name: str, params: list[Param]) -> None:
        self.name = name
        self.params = params

    def param(self, name: str) -> Param | None:
        return find_param(self.params, name)


_EVENT_RE = re.compile(rf"{_LWS}([{_TOKEN_CHARS}]+)")


def parse_event(text: str) -> Event:
    m = _EVENT_RE.match(text)
    if m is None:
        raise ParseError(f"bad Event: {text.strip()[:40]!r}")
    params, pos = parse_params(text, m.end())
    if text[pos:].strip(" \t\r\n"):
        raise ParseError(f"bad Event: {text.strip()[:40]!r}")
    return Event(m.group(1), params)
