"""SDP bodies (RFC 4566): parse, inspect, rewrite and rebuild.

NAT helpers and media relays rewrite a few fields of an SDP body (addresses,
ports, attributes, codecs) and must leave everything else exactly as the UA
sent it, so the model keeps every line, in order, as raw text: an unmodified
parse turns back into the original text byte for byte, and only the lines a
rewrite touches are regenerated.

Text is a latin-1 `str` (one char per octet), as produced by the message layer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from sipserver.sip.errors import ParseError

__all__ = [
    "DIRECTIONS",
    "Connection",
    "Media",
    "Origin",
    "RtpMap",
    "Sdp",
    "SdpLine",
    "parse_sdp",
]

#: The RFC 4566 / RFC 3264 direction attributes; sendrecv is the default.
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WS = re.compile(r"[ \t]+")
_PORT = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,9}))?\Z")
_NUM = re.compile(r"[0-9]{1,9}\Z")
_BAD_ADDRESS_CHARS = frozenset(" \t\r\n/")
_BAD_VALUE_CHARS = frozenset("\r\n")

# Attributes that are keyed by payload type and die with it.
_PT_ATTRIBUTES = frozenset({"rtpmap", "fmtp", "rtcp-fb"})

# RFC 3551 static payload types, for codec lookups when there is no a=rtpmap.
_STATIC_PT = {
    "0": "PCMU", "3": "GSM", "4": "G723", "5": "DVI4", "6": "DVI4", "7": "LPC",
    "8": "PCMA", "9": "G722", "10": "L16", "11": "L16", "12": "QCELP", "13": "CN",
    "14": "MPA", "15": "G728", "16": "DVI4", "17": "DVI4", "18": "G729",
    "25": "CelB", "26": "JPEG", "28": "nv", "31": "H261", "32": "MPV",
    "33": "MP2T", "34": "H263",
}  # fmt: skip


class Origin(NamedTuple):
    """The fields of an `o=` line."""

    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str


class Connection(NamedTuple):
    """The fields of a `c=` line; `ttl`/`count` come from a multicast `/` suffix."""

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None


class RtpMap(NamedTuple):
    """An `a=rtpmap:<pt> <encoding>/<clock rate>[/<params>]` attribute."""

    payload_type: str
    encoding: str
    clock_rate: int | None
    encoding_params: str | None


class _MLine(NamedTuple):
    media_type: str
    port: int
    port_count: int | None
    proto: str
    formats: tuple[str, ...]


def _fields(value: str) -> list[str]:
    """Split on SP/HT only: str.split() would also split latin-1 octets like 0x85/0xA0."""
    return [f for f in _WS.split(value) if f]


def _parse_origin(value: str) -> Origin:
    f = _fields(value)
    if len(f) != 6:
        raise ParseError("SDP o= line needs 6 fields")
    return Origin(*f)


def _parse_connection(value: str) -> Connection:
    f = _fields(value)
    if len(f) != 3:
        raise ParseError("SDP c= line needs 3 fields")
    nettype, addrtype, address = f
    ttl = count = None
    if addrtype in ("IP4", "IP6") and "/" in address:
        address, *suffix = address.split("/")
        if not address or not all(_NUM.match(s) for s in suffix):
            raise ParseError("bad SDP c= address suffix")
        nums = [int(s) for s in suffix]
        if addrtype == "IP4" and len(nums) <= 2:
            ttl = nums[0]
            count = nums[1] if len(nums) == 2 else None
        elif addrtype == "IP6" and len(nums) == 1:
            count = nums[0]
        else:
            raise ParseError("too many SDP c= address suffixes")
    return Connection(nettype, addrtype, address, ttl, count)


def _parse_mline(value: str) -> _MLine:
    f = _fields(value)
    if len(f) < 3:
        raise ParseError("SDP m= line needs media, port and proto")
    m = _PORT.match(f[1])
    if m is None:
        raise ParseError("bad SDP m= port")
    port = int(m.group(1))
    if port > 65535:
        raise ParseError("SDP m= port out of range")
    count = int(m.group(2)) if m.group(2) is not None else None
    return _MLine(f[0], port, count, f[2], tuple(f[3:]))


def _format_mline(m: _MLine) -> str:
    port = str(m.port) if m.port_count is None else f"{m.port}/{m.port_count}"
    return " ".join([m.media_type, port, m.proto, *m.formats])


def _split_attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    return (name, rest if sep else None)


def _check_address(address: str) -> str:
    """Validate an address given to a rewrite; IPv6 brackets are dropped (SDP has none)."""
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if not address or any(c in _BAD_ADDRESS_CHARS for c in address):
        raise ValueError(f"bad SDP address {address!r}")
    return address


def _addrtype_for(address: str, current: str | None) -> str:
    """IP4/IP6 to match a literal address; a hostname keeps the current type."""
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        return current or "IP4"
    return "IP6" if version == 6 else "IP4"


def _check_value(value: str, what: str) -> None:
    if any(c in _BAD_VALUE_CHARS for c in value):
        raise ValueError(f"CR/LF in SDP {what}")


class SdpLine:
    """One `x=value` line.

    `eol` is the line ending it had in the parsed text; '' (new lines) means
    "the body's usual ending", so a rebuilt body never mixes styles needlessly.
    """

    __slots__ = ("eol", "type", "value")

    def __init__(self, type: str, value: str, eol: str = "") -> None:
        if len(type) != 1 or type not in _LETTERS:
            raise ValueError(f"bad SDP line type {type!r}")
        _check_value(value, "line")
        self.type = type
        self.value = value
        self.eol = eol

    def __str__(self) -> str:
        return f"{self.type}={self.value}"

    def __repr__(self) -> str:
        return f"SdpLine({self.type!r}, {self.value!r})"


class _Section:
    """Lines of one level (session, or one media): attribute and c= handling."""

    __slots__ = ("lines",)

    lines: list[SdpLine]

    # -- attributes ---------------------------------------------------------

    @property
    def attributes(self) -> list[tuple[str, str | None]]:
        """All a= lines of this level as (name, value); value is None for flags."""
        return [_split_attribute(line.value) for line in self.lines if line.type == "a"]

    def get_attributes(self, name: str) -> list[str | None]:
        """Values of every a=<name> line of this level (None for a flag attribute)."""
        return [v for n, v in self.attributes if n == name]

    def get_attribute(self, name: str) -> str | None:
        """Value of the first a=<name>; None if absent or a flag (see has_attribute)."""
        values = self.get_attributes(name)
        return values[0] if values else None

    def has_attribute(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)

    def add_attribute(self, name: str, value: str | None = None) -> None:
        """Append a=<name>[:<value>]; a= lines come last at either level (RFC 4566 order)."""
        self.lines.append(SdpLine("a", self._attribute_text(name, value)))

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Make a=<name> appear once with this value: replace in place, else append."""
        self._replace_attributes({name}, self._attribute_text(name, value))

    def remove_attribute(self, name: str) -> int:
        """Drop every a=<name> line of this level; returns how many went."""
        return self._remove_lines(
            lambda line: line.type == "a" and _split_attribute(line.value)[0] == name
        )

    @staticmethod
    def _attribute_text(name: str, value: str | None) -> str:
        if not name or any(c in ": \t\r\n" for c in name):
            raise ValueError(f"bad SDP attribute name {name!r}")
        if value is None:
            return name
        _check_value(value, "attribute value")
        return f"{name}:{value}"

    def _replace_attributes(self, names: set[str], text: str) -> None:
        idx = [
            i
            for i, line in enumerate(self.lines)
            if line.type == "a" and _split_attribute(line.value)[0] in names
        ]
        if not idx:
            self.lines.append(SdpLine("a", text))
            return
        self.lines[idx[0]].value = text
        for i in reversed(idx[1:]):
            del self.lines[i]

    def _remove_lines(self, predicate) -> int:
        before = len(self.lines)
        self.lines[:] = [line for line in self.lines if line.type == "m" or not predicate(line)]
        return before - len(self.lines)

    # -- direction ----------------------------------------------------------

    @property
    def own_direction(self) -> str | None:
        """The direction attribute set at this level, if any (first one wins)."""
        for name, _ in self.attributes:
            if name in DIRECTIONS:
                return name
        return None

    def set_direction(self, direction: str) -> None:
        """Replace this level's direction attribute(s) with `direction`."""
        if direction not in DIRECTIONS:
            raise ValueError(f"bad SDP direction {direction!r}")
        self._replace_attributes(set(DIRECTIONS), direction)

    # -- connection ---------------------------------------------------------

    @property
    def connections(self) -> list[Connection]:
        """Every c= line of this level (RFC 5118 allows several, e.g. IPv4 and IPv6)."""
        return [_parse_connection(line.value) for line in self.lines if line.type == "c"]

    @property
    def connection(self) -> Connection | None:
        """The first c= line of this level."""
        for line in self.lines:
            if line.type == "c":
                return _parse_connection(line.value)
        return None

    def _rewrite_connections(self, address: str) -> int:
        n = 0
        for line in self.lines:
            if line.type == "c":
                c = _parse_connection(line.value)
                line.value = f"{c.nettype} {_addrtype_for(address, c.addrtype)} {address}"
                n += 1
        return n


class Media(_Section):
    """One media description: its m= line (`lines[0]`) and the lines under it."""

    __slots__ = ("_sdp",)

    def __init__(self, lines: list[SdpLine], sdp: Sdp | None = None) -> None:
        if not lines or lines[0].type != "m":
            raise ValueError("a media section starts with an m= line")
        _parse_mline(lines[0].value)
        self.lines = lines
        self._sdp = sdp

    def __repr__(self) -> str:
        return f"<Media {self.lines[0].value!r}>"

    def _m(self) -> _MLine:
        return _parse_mline(self.lines[0].value)

    @property
    def media_type(self) -> str:
        """audio, video, application, ... as written."""
        return self._m().media_type

    @property
    def port(self) -> int:
        return self._m().port

    @property
    def port_count(self) -> int | None:
        """The `/n` after the port, None when absent (meaning one)."""
        return self._m().port_count

    @property
    def proto(self) -> str:
        return self._m().proto

    @property
    def formats(self) -> list[str]:
        """The formats (RTP payload types for RTP protos) as strings, in order."""
        return list(self._m().formats)

    def set_port(self, port: int) -> None:
        """Rewrite the m= port (a relay's port); a `/n` count is kept."""
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"bad SDP port {port!r}")
        self.lines[0].value = _format_mline(self._m()._replace(port=port))

    def set_formats(self, formats: Iterable[str | int]) -> None:
        """Replace the m= format list (e.g. to reorder codecs); attributes untouched."""
        fmts = tuple(str(f) for f in formats)
        for f in fmts:
            if not f or any(c in " \t\r\n" for c in f):
                raise ValueError(f"bad SDP format {f!r}")
        self.lines[0].value = _format_mline(self._m()._replace(formats=fmts))

    def remove_formats(self, payload_types: Iterable[str | int]) -> int:
        """Drop formats from the m= line with their rtpmap/fmtp/rtcp-fb lines.

        Returns how many formats left the m= line. Removing all of them leaves
        an m= line without formats; rejecting the stream (port 0) is the
        caller's decision.
        """
        drop = {str(p) for p in payload_types}
        m = self._m()
        kept = tuple(f for f in m.formats if f not in drop)
        if len(kept) != len(m.formats):
            self.lines[0].value = _format_mline(m._replace(formats=kept))

        def keyed_by_dropped(line: SdpLine) -> bool:
            if line.type != "a":
                return False
            name, value = _split_attribute(line.value)
            if name not in _PT_ATTRIBUTES or value is None:
                return False
            f = _fields(value)
            return bool(f) and f[0] in drop

        self._remove_lines(keyed_by_dropped)
        return len(m.formats) - len(kept)

    def rtpmap(self, payload_type: str | int) -> RtpMap | None:
        """The a=rtpmap for a payload type (explicit lines only; None if absent/garbled)."""
        pt = str(payload_type)
        for name, value in self.attributes:
            if name != "rtpmap" or value is None:
                continue
            f = _fields(value)
            if len(f) < 2 or f[0] != pt:
                continue
            parts = " ".join(f[1:]).split("/", 2)
            if not parts[0]:
                return None
            rate = int(parts[1]) if len(parts) > 1 and _NUM.match(parts[1]) else None
            params = parts[2] if len(parts) > 2 else None
            return RtpMap(pt, parts[0], rate, params)
        return None

    def fmtp(self, payload_type: str | int) -> str | None:
        """The parameters of a=fmtp:<pt>, None if absent."""
        pt = str(payload_type)
        for name, value in self.attributes:
            if name == "fmtp" and value is not None:
                head, _, rest = value.lstrip(" \t").partition(" ")
                if head == pt:
                    return rest.strip(" \t")
        return None

    def formats_for_encoding(self, encoding: str) -> list[str]:
        """Payload types of this m= line carrying a codec (case-insensitive name).

        Uses a=rtpmap, falling back to the RFC 3551 static payload types, so a
        codec can be removed by name ("PCMA") the way codec filters do.
        """
        wanted = encoding.lower()
        out = []
        for pt in self._m().formats:
            rm = self.rtpmap(pt)
            name = rm.encoding if rm is not None else _STATIC_PT.get(pt)
            if name is not None and name.lower() == wanted:
                out.append(pt)
        return out

    @property
    def direction(self) -> str:
        """Effective direction: this media's, else the session's, else sendrecv."""
        own = self.own_direction
        if own is None and self._sdp is not None:
            own = self._sdp.own_direction
        return own or "sendrecv"

    @property
    def effective_connections(self) -> list[Connection]:
        """This media's c= lines, or the session's when it has none."""
        own = self.connections
        if own or self._sdp is None:
            return own
        return self._sdp.connections

    @property
    def effective_connection(self) -> Connection | None:
        """The media c= if any, else the session c= (RFC 4566 §5.7)."""
        own = self.connection
        if own is not None or self._sdp is None:
            return own
        return self._sdp.connection

    def set_connection_address(self, address: str) -> int:
        """Give this media its own address: rewrite its c= lines, or add one.

        The addrtype follows the new address (IP4/IP6); a multicast `/ttl`
        suffix is dropped since it belongs to the old address. Returns the
        number of c= lines written.
        """
        address = _check_address(address)
        n = self._rewrite_connections(address)
        if n:
            return n
        session = self._sdp.connection if self._sdp is not None else None
        nettype = session.nettype if session is not None else "IN"
        addrtype = _addrtype_for(address, session.addrtype if session is not None else None)
        at = 1
        while at < len(self.lines) and self.lines[at].type == "i":
            at += 1
        self.lines.insert(at, SdpLine("c", f"{nettype} {addrtype} {address}"))
        return 1

    def endpoints(self) -> list[tuple[str, int]]:
        """(address, port) pairs this media advertises; none when the port is 0.

        A `/n` port count expands to n ports, every other port for RTP
        (RFC 4566 §5.14), capped at 65535.
        """
        m = self._m()
        if m.port == 0:
            return []
        step = 2 if "RTP" in m.proto.upper() else 1
        count = m.port_count if m.port_count is not None else 1
        last = min(65535, m.port + (count - 1) * step)
        ports = range(m.port, last + 1, step) if count > 0 else range(0)
        return [(c.address, p) for c in self.effective_connections for p in ports]


class Sdp(_Section):
    """A parsed SDP body: session-level `lines`, then `media` sections.

    Session-level attribute/direction/connection methods come from the shared
    base; per-media ones live on each `Media`. `str(sdp)` rebuilds the body.
    """

    __slots__ = ("_final_eol", "_tail", "eol", "media")

    def __init__(
        self,
        lines: list[SdpLine],
        media: list[Media] | None = None,
        *,
        eol: str = "\r\n",
        final_eol: bool = True,
        tail: str = "",
    ) -> None:
        if not lines or lines[0].type != "v":
            raise ValueError("an SDP body starts with a v= line")
        self.lines = lines
        self.media = media if media is not None else []
        for m in self.media:
            m._sdp = self
        self.eol = eol
        self._final_eol = final_eol
        self._tail = tail

    def __repr__(self) -> str:
        return f"<Sdp {len(self.lines)} session lines, {len(self.media)} media>"

    def __str__(self) -> str:
        out: list[str] = []
        for line in self.iter_lines():
            out += (line.type, "=", line.value, line.eol or self.eol)
        if out and not self._final_eol:
            out.pop()
        out.append(self._tail)
        return "".join(out)

    def iter_lines(self) -> Iterator[SdpLine]:
        """Every line of the body in order, session first."""
        yield from self.lines
        for m in self.media:
            yield from m.lines

    @property
    def origin(self) -> Origin | None:
        for line in self.lines:
            if line.type == "o":
                return _parse_origin(line.value)
        return None

    def set_origin_address(self, address: str) -> bool:
        """Rewrite the o= address (and addrtype); False when there is no o= line."""
        address = _check_address(address)
        for line in self.lines:
            if line.type == "o":
                o = _parse_origin(line.value)
                o = o._replace(address=address, addrtype=_addrtype_for(address, o.addrtype))
                line.value = " ".join(o)
                return True
        return False

    @property
    def direction(self) -> str:
        """Session-level direction, sendrecv by default (each Media may override)."""
        return self.own_direction or "sendrecv"

    def set_connection_address(self, address: str, *, scope: str = "all") -> int:
        """Rewrite c= addresses; the addrtype follows the new address.

        scope="session": the session-level c= lines (one is added if there is
        none). scope="all": every c= line, session and media, plus a session c=
        if some media would otherwise have no connection at all. For a single
        media use `Media.set_connection_address`. Returns lines written.
        """
        if scope not in ("all", "session"):
            raise ValueError(f"bad scope {scope!r}")
        address = _check_address(address)
        n = self._rewrite_connections(address)
        if scope == "all":
            for m in self.media:
                n += m._rewrite_connections(address)
        need_session_c = scope == "session" or any(m.connection is None for m in self.media)
        if self.connection is None and need_session_c:
            at = 0
            while at < len(self.lines) and self.lines[at].type not in "btrzka":
                at += 1
            addrtype = _addrtype_for(address, None)
            self.lines.insert(at, SdpLine("c", f"IN {addrtype} {address}"))
            n += 1
        return n

    def endpoints(self) -> list[tuple[str, int]]:
        """Every (address, port) the body advertises for media, in media order."""
        return [ep for m in self.media for ep in m.endpoints()]


def _split_lines(body: str) -> tuple[list[tuple[str, str]], str]:
    """Cut the text into (content, eol) pairs plus the trailing empty lines."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(body)
    while pos < n:
        nl = body.find("\n", pos)
        if nl < 0:
            content, eol, pos = body[pos:], "", n
        else:
            content, eol, pos = body[pos:nl], "\n", nl + 1
            if content.endswith("\r"):
                content, eol = content[:-1], "\r\n"
        if "\r" in content:
            raise ParseError("bare CR in SDP line")
        out.append((content, eol))
    tail = []
    while out and out[-1][0] == "":
        tail.append(out.pop()[1])
    return out, "".join(reversed(tail))


def parse_sdp(body: str) -> Sdp:
    """Parse an SDP body; raise ParseError for anything that is not line-structured SDP.

    Only the structure and the o=, c= and m= lines (the ones rewrites need) are
    checked; every other line is kept verbatim. Trailing empty lines are kept
    and reproduced.
    """
    if not body.startswith("v="):
        raise ParseError("SDP body must start with v=")
    raw, tail = _split_lines(body)
    session: list[SdpLine] = []
    media: list[Media] = []
    current = session
    for content, eol in raw:
        if content.find("=") != 1:
            raise ParseError("SDP line is not <letter>=<value>")
        kind = content[0]
        if kind not in _LETTERS:
            raise ParseError("SDP line type is not a letter")
        value = content[2:]
        if kind == "o":
            _parse_origin(value)
        elif kind == "c":
            _parse_connection(value)
        line = SdpLine(kind, value, eol)
        if kind == "m":
            current = [line]
            media.append(Media(current))  # validates the m= line
        else:
            current.append(line)
    final_eol = raw[-1][1] != ""
    default_eol = raw[0][1] or "\r\n"
    return Sdp(session, media, eol=default_eol, final_eol=final_eol, tail=tail)
