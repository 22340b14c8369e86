"""SIP, SIPS and tel URIs: parsing, rebuilding and RFC 3261 comparison.

Covers RFC 3261 section 19 and 25 (sip/sips), RFC 3966 (tel), RFC 5118
(IPv6 references) and, for every other scheme, RFC 3261's absoluteURI kept as
opaque text.  This runs on every message a proxy handles, so acceptance is
decided by a single precompiled regular expression (possessive quantifiers
keep it linear on hostile input); only rejected input takes a slower path
whose sole job is to explain *why* it was rejected.

Text is ``str`` decoded as latin-1 by the message layer: one char per octet,
so nothing here encodes or decodes UTF-8.  Every problem with an input string
is reported as :class:`~sipserver.sip.errors.ParseError`.

Deliberate tolerances beyond the strict ABNF (each one seen in real traffic
or required by RFC 5118): ``;name=`` with an empty value, '_' in host name
labels, ``[2001:db8:::192.0.2.1]`` (RFC 5118 4.10), ports written with
leading zeros, and tel local numbers without a phone-context.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from sipserver.sip.errors import ParseError

__all__ = [
    "Uri",
    "build_uri",
    "escape_param",
    "escape_user",
    "parse_uri",
    "unescape",
    "uri_equal",
]

Param = tuple[str, str | None]

# --------------------------------------------------------------------------
# Character sets (RFC 3261 section 25), as regex character-class bodies.
# --------------------------------------------------------------------------

_ALNUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
_USER_UNRESERVED = r"&=+$,;?/"
_PASSWORD_EXTRA = r"&=+$,"
_PARAM_UNRESERVED = r"\[\]/:&+$"
_HNV_UNRESERVED = r"\[\]/?:+$"
# RFC 3986 reserved + unreserved: what an opaque (non sip/tel) URI may hold.
_URIC = _UNRESERVED + r":/?#\[\]@$&+,;="

_HEX = "0-9A-Fa-f"


def _one_or_more(chars: str) -> str:
    """Regex for 1*(chars / escaped), possessive so it never backtracks.

    '%' is simply one more allowed char here: escapes are checked once for
    the whole text (see _BAD_ESCAPE_RE), which is much cheaper than an
    alternation per char.
    """
    return f"[{chars}%]++"


def _zero_or_more(chars: str) -> str:
    return f"[{chars}%]*+"


_USER = _one_or_more(_UNRESERVED + _USER_UNRESERVED)
_PASSWORD = _zero_or_more(_UNRESERVED + _PASSWORD_EXTRA)
_PCHARS = _UNRESERVED + _PARAM_UNRESERVED
_PNAME = _one_or_more(_PCHARS)
_PVALUE = _zero_or_more(_PCHARS)
_HCHARS = _UNRESERVED + _HNV_UNRESERVED
_HNAME = _one_or_more(_HCHARS)
_HVALUE = _zero_or_more(_HCHARS)

# ``;name`` / ``;name=value``; ``;name=`` (empty value) is tolerated although
# RFC 3261 wants 1*paramchar there: it is common in the wild and harmless.
_PARAMS = f"(?:;{_PNAME}(?:={_PVALUE})?)*+"
_HEADERS = f"{_HNAME}={_HVALUE}(?:&{_HNAME}={_HVALUE})*+"

_OCTET = "(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"  # 1*3DIGIT, value <= 255
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
# Hostname labels: alnum runs joined by hyphen runs (no leading/trailing '-').
# '_' is tolerated in labels: it shows up in real deployments' host names.
_LABEL = "[A-Za-z0-9_]++(?:-++[A-Za-z0-9_]++)*+"
_TOPLABEL = "[A-Za-z][A-Za-z0-9_]*+(?:-++[A-Za-z0-9_]++)*+"
_HOSTNAME = rf"(?:{_LABEL}\.)*{_TOPLABEL}\.?"
# Only the alphabet is checked here; _valid_ipv6() checks the structure.
_IPV6REF_LOOSE = r"\[[0-9A-Fa-f:.]++\]"
_HOST = f"{_IPV6REF_LOOSE}|{_IPV4}|{_HOSTNAME}"

_SIP_URI_RE = re.compile(
    "([Ss][Ii][Pp][Ss]?):"
    f"(?:({_USER})(?::({_PASSWORD}))?@)?"
    f"({_HOST})"
    "(?::([0-9]++))?"
    f"({_PARAMS})"
    rf"(?:\?({_HEADERS}))?",
    re.ASCII,
)

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*", re.ASCII)
_IPV4_RE = re.compile(_IPV4, re.ASCII)
_HOST_RE = re.compile(f"{_IPV4}|{_HOSTNAME}", re.ASCII)
_IPV6REF_LOOSE_RE = re.compile(_IPV6REF_LOOSE, re.ASCII)
_HEX4_RE = re.compile(f"[{_HEX}]{{1,4}}", re.ASCII)

# tel (RFC 3966): global-number-digits / local-number-digits, then params.
_PHONE_SEP = r"().\-"
_GLOBAL_NUMBER = rf"\+[{_PHONE_SEP}]*+[0-9][0-9{_PHONE_SEP}]*+"
_LOCAL_NUMBER = rf"[{_PHONE_SEP}]*+[{_HEX}*#][{_HEX}*#{_PHONE_SEP}]*+"
_TEL_PNAME = "[A-Za-z0-9-]++"
_TEL_PARAMS = f"(?:;{_TEL_PNAME}(?:={_PVALUE})?)*+"
_TEL_NUMBER_RE = re.compile(f"{_GLOBAL_NUMBER}|{_LOCAL_NUMBER}", re.ASCII)
_TEL_RE = re.compile(f"({_GLOBAL_NUMBER}|{_LOCAL_NUMBER})({_TEL_PARAMS})", re.ASCII)

_OPAQUE_RE = re.compile(_one_or_more(_URIC), re.ASCII)
_BAD_ESCAPE_RE = re.compile(f"%(?![{_HEX}]{{2}})", re.ASCII)


def _bad_re(chars: str) -> re.Pattern[str]:
    """Finds the first char outside `chars` or a '%' not starting an escape."""
    return re.compile(f"%(?![{_HEX}]{{2}})|[^{chars}%]", re.ASCII)


_BAD_USER_RE = _bad_re(_UNRESERVED + _USER_UNRESERVED)
_BAD_PASSWORD_RE = _bad_re(_UNRESERVED + _PASSWORD_EXTRA)
_BAD_PARAM_RE = _bad_re(_PCHARS)
_BAD_HEADER_RE = _bad_re(_HCHARS)
_BAD_OPAQUE_RE = _bad_re(_URIC)
_BAD_HOST_RE = re.compile("[^A-Za-z0-9_.-]", re.ASCII)
_IPV6ISH_RE = re.compile("[0-9A-Fa-f:.]+", re.ASCII)
_BAD_TEL_PNAME_RE = re.compile("[^A-Za-z0-9-]", re.ASCII)
# Whitespace, CTLs and anything outside ASCII are never part of a URI.
_BAD_OCTET_RE = re.compile(r"[^\x21-\x7e]")

_ESC_RE = re.compile(f"%([{_HEX}]{{2}})", re.ASCII)
_UNESCAPE_TABLE = {
    a + b: chr(int(a + b, 16)) for a in "0123456789abcdefABCDEF" for b in "0123456789abcdefABCDEF"
}

# RFC 2396 "reserved": escaped forms of these are NOT equivalent to the char
# itself (RFC 3261 19.1.4).  '%' is kept escaped too, so that normalising
# "%253B" cannot collide with "%3B".
_KEEP_ESCAPED = frozenset(";/?:@&=+$,%")
_NORM_TABLE = {
    k: ("%" + k.upper() if v in _KEEP_ESCAPED else v) for k, v in _UNESCAPE_TABLE.items()
}

# Parameters that make two URIs differ when only one of them carries it.
_STRICT_PARAMS = frozenset(("user", "ttl", "method", "maddr", "transport"))

_FIELDS = ("scheme", "user", "password", "host", "port", "params", "headers", "opaque")


# --------------------------------------------------------------------------
# Escaping helpers.
# --------------------------------------------------------------------------


def unescape(s: str) -> str:
    """Decode %XX escapes to the octet they name (one latin-1 char each).

    A '%' not followed by two hex digits is left alone: callers use this on
    text that was already accepted, and on header values that may not be.
    """
    if "%" not in s:
        return s
    return _ESC_RE.sub(lambda m: _UNESCAPE_TABLE[m.group(1)], s)


def _escape_table(safe: str) -> dict[int, str]:
    return {i: f"%{i:02X}" for i in range(256) if chr(i) not in safe}


_UNRESERVED_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()"
_USER_ESCAPES = _escape_table(_UNRESERVED_CHARS + "&=+$,;?/")
_PARAM_ESCAPES = _escape_table(_UNRESERVED_CHARS + "[]/:&+$")


def _escape(s: str, table: dict[int, str]) -> str:
    if not s.isascii() and max(s) > "\xff":
        raise ParseError("character outside latin-1 cannot be escaped as one octet")
    return s.translate(table)


def escape_user(s: str) -> str:
    """%-escape `s` so it can be used verbatim as the user part of a sip URI.

    Keeps RFC 3261's unreserved and user-unreserved chars; everything else,
    '%' included, becomes %XX.  Chars above U+00FF raise ParseError.
    """
    return _escape(s, _USER_ESCAPES)


def escape_param(s: str) -> str:
    """%-escape `s` for use as a uri-parameter name or value (paramchar set)."""
    return _escape(s, _PARAM_ESCAPES)


def _norm(s: str) -> str:
    """Escape-normalised form for RFC 3261 19.1.4: unreserved escapes decoded."""
    if "%" not in s:
        return s
    return _ESC_RE.sub(lambda m: _NORM_TABLE[m.group(1)], s)


# --------------------------------------------------------------------------
# The Uri object.
# --------------------------------------------------------------------------


class Uri:
    """One parsed URI.  Treat it as immutable: `replace()` and friends return
    new objects, so a Uri can be shared between a message and its copies.

    Build instances with :func:`parse_uri`, :func:`build_uri` or
    :meth:`replace`; the constructor itself does not validate anything.

    ``==`` is exact structural equality (same fields); RFC 3261 equivalence
    is :func:`uri_equal`, which is not transitive and so cannot be ``==``.
    """

    __slots__ = (
        "_params",
        "_pkeys",
        "_ptext",
        "headers",
        "host",
        "opaque",
        "password",
        "port",
        "raw",
        "scheme",
        "user",
    )

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    headers: str | None
    opaque: str | None
    raw: str

    def __init__(
        self,
        scheme: str,
        user: str | None,
        password: str | None,
        host: str,
        port: int | None,
        params_text: str,
        headers: str | None,
        opaque: str | None,
        raw: str,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.headers = headers
        self.opaque = opaque
        self.raw = raw
        # Parameters are split on first use: many URIs (From, To, ...) are
        # parsed on every message but never asked for a parameter.
        self._ptext = params_text  # validated ";a=1;b" text, or ""
        self._params: tuple[Param, ...] | None = None
        self._pkeys: tuple[str, ...] | None = None

    @property
    def params(self) -> tuple[Param, ...]:
        """``((name, value or None), ...)`` in order, as written (still escaped)."""
        params = self._params
        if params is None:
            self._load_params()
            params = self._params
        return params  # type: ignore[return-value]

    def _load_params(self) -> tuple[str, ...]:
        """Split the parameter text once; also keep the lookup keys."""
        params: list[Param] = []
        keys: list[str] = []
        if self._ptext:
            for p in self._ptext[1:].split(";"):
                name, eq, value = p.partition("=")
                params.append((name, value if eq else None))
                keys.append(unescape(name).lower() if "%" in name else name.lower())
        self._params = tuple(params)
        self._pkeys = key_tuple = tuple(keys)
        return key_tuple

    # -- text ---------------------------------------------------------------

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Uri({self.raw!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle as text: compact, and re-validated on the other side.
        return (parse_uri, (self.raw,))

    def _key(self) -> tuple[Any, ...]:
        return (
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            self.params,
            self.headers,
            self.opaque,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Uri):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # -- parameters -----------------------------------------------------------

    def get_param(self, name: str, default: Any = None) -> Any:
        """Value of the first parameter called `name`, or `default` if absent.

        Names match case-insensitively and after %-unescaping (``%6C%72`` is
        ``lr``).  The value is returned as written (still escaped); a
        parameter without ``=value`` yields None, so use `has_param` (or a
        sentinel default) when that difference matters.
        """
        keys = self._pkeys
        if keys is None:
            keys = self._load_params()
        name = name.lower()
        if name in keys:
            return self._params[keys.index(name)][1]  # type: ignore[index]
        return default

    def has_param(self, name: str) -> bool:
        """Whether a parameter called `name` is present (case-insensitive)."""
        keys = self._pkeys
        if keys is None:
            keys = self._load_params()
        return name.lower() in keys

    @property
    def transport(self) -> str | None:
        """The transport param, unescaped and lowercased; None if absent/empty."""
        v = self.get_param("transport")
        if not v:
            return None
        return (unescape(v) if "%" in v else v).lower()

    @property
    def lr(self) -> bool:
        """True for a loose-routing URI (``;lr`` present, with any value)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        """The maddr param, unescaped; None if absent or valueless."""
        v = self.get_param("maddr")
        return unescape(v) if v else None

    @property
    def ttl(self) -> int | None:
        """The ttl param as an int, or None when absent or not 1*3DIGIT <= 255."""
        v = self.get_param("ttl")
        if v and len(v) <= 3 and v.isdigit() and v.isascii():
            n = int(v)
            if n <= 255:
                return n
        return None

    @property
    def user_param(self) -> str | None:
        """The ``user=`` param (e.g. 'phone', 'ip'), unescaped and lowercased."""
        v = self.get_param("user")
        return unescape(v).lower() if v else None

    @property
    def method(self) -> str | None:
        """The ``method=`` param, unescaped; case kept (methods are case-sensitive)."""
        v = self.get_param("method")
        return unescape(v) if v else None

    # -- host ---------------------------------------------------------------

    @property
    def host_type(self) -> str | None:
        """'ipv6', 'ipv4' or 'name'; None for URIs without a host (tel, opaque)."""
        host = self.host
        if not host:
            return None
        if host[0] == "[":
            return "ipv6"
        if _IPV4_RE.fullmatch(host):
            return "ipv4"
        return "name"

    @property
    def hostport(self) -> str:
        """``host`` or ``host:port`` as it would appear in the URI."""
        if self.port is None:
            return self.host
        return f"{self.host}:{self.port}"

    # -- derived URIs --------------------------------------------------------

    def replace(self, **fields: Any) -> Uri:
        """A new Uri with `fields` changed, its text rebuilt canonically.

        Accepted fields: scheme, user, password, host, port, params, headers,
        opaque.  Values are used verbatim (escape them first, e.g. with
        `escape_user`); the rebuilt text is re-parsed, so anything that would
        not make a valid URI raises ParseError.  Fields that the resulting
        scheme has no place for (e.g. `opaque` for sip) are ignored.
        """
        unknown = fields.keys() - set(_FIELDS)
        if unknown:
            raise TypeError(f"Uri.replace() got unknown fields: {', '.join(sorted(unknown))}")
        values = {f: getattr(self, f) for f in _FIELDS}
        values.update(fields)
        return build_uri(**values)

    def with_param(self, name: str, value: str | None = None) -> Uri:
        """A new Uri with parameter `name` set to `value` (None: no ``=value``).

        An existing parameter of that name keeps its position (later
        duplicates are dropped); otherwise the parameter is appended.
        """
        key = unescape(name).lower()
        keys = self._pkeys or self._load_params()
        out: list[Param] = []
        done = False
        for k, p in zip(keys, self.params, strict=True):
            if k != key:
                out.append(p)
            elif not done:
                out.append((name, value))
                done = True
        if not done:
            out.append((name, value))
        return self.replace(params=out)

    def without_param(self, name: str) -> Uri:
        """A new Uri without any parameter called `name` (self if none)."""
        key = unescape(name).lower()
        keys = self._pkeys or self._load_params()
        if key not in keys:
            return self
        out = [p for k, p in zip(keys, self.params, strict=True) if k != key]
        return self.replace(params=out)


# --------------------------------------------------------------------------
# Parsing.
# --------------------------------------------------------------------------


def parse_uri(text: str) -> Uri:
    """Parse one URI (no surrounding whitespace or angle brackets).

    sip/sips/tel URIs are split into their parts; any other syntactically
    valid scheme gives an opaque Uri.  Raises ParseError for anything else.
    """
    m = _sip_fullmatch(text)
    if m is None or ("%" in text and _bad_escape_search(text)):
        return _parse_slow(text)
    scheme, user, password, host, port_s, params_s, headers = m.groups()
    if scheme != "sip" and scheme != "sips":
        scheme = scheme.lower()
    if host[0] == "[" and not _valid_ipv6(host[1:-1]):
        raise ParseError("invalid IPv6 address")
    if port_s is None:
        port = None
    elif len(port_s) > 5 or (port := int(port_s)) > 65535:
        port = _port(port_s)
    return Uri(scheme, user, password, host, port, params_s, headers, None, text)


_sip_fullmatch = _SIP_URI_RE.fullmatch
_bad_escape_search = _BAD_ESCAPE_RE.search


def _port(s: str) -> int:
    if len(s) > 5:
        s = s.lstrip("0") or "0"
        if len(s) > 5:
            raise ParseError("port out of range")
    n = int(s)
    if n > 65535:
        raise ParseError("port out of range")
    return n


def _valid_ipv6(s: str) -> bool:
    """Structure check of an IPv6 address (without brackets).

    Tolerates RFC 5118 4.10's ``2001:db8:::192.0.2.1``: RFC 3261's ABNF
    allows a third colon between '::' and an embedded IPv4 address.
    """
    groups = 8
    if "." in s:
        i = s.rfind(":")
        if i < 0 or not _IPV4_RE.fullmatch(s, i + 1):
            return False
        head = s[: i + 1]
        if head.endswith(":::"):
            head = head[:-1]
        s = head if head.endswith("::") else head[:-1]
        groups = 6
    if "::" in s:
        left, right = s.split("::", 1)
        parts = (left.split(":") if left else []) + (right.split(":") if right else [])
        if len(parts) > groups - 1:
            return False
    else:
        parts = s.split(":")
        if len(parts) != groups:
            return False
    return all(_HEX4_RE.fullmatch(p) for p in parts)


def _parse_slow(text: str) -> Uri:
    """Everything the sip fast path did not accept: tel, opaque, or errors."""
    colon = text.find(":")
    if colon < 0:
        raise ParseError("missing URI scheme")
    scheme = text[:colon]
    if not _SCHEME_RE.fullmatch(scheme):
        raise ParseError("invalid URI scheme")
    lscheme = scheme.lower()
    rest = text[colon + 1 :]
    if lscheme == "sip" or lscheme == "sips":
        raise ParseError(_sip_problem(rest) or "malformed SIP URI")
    if lscheme == "tel":
        return _parse_tel(text, rest)
    if not rest:
        raise ParseError("empty URI after scheme")
    if not _OPAQUE_RE.fullmatch(rest) or ("%" in rest and _bad_escape_search(rest)):
        raise ParseError(_char_problem(rest, _BAD_OPAQUE_RE, "URI") or "malformed URI")
    return Uri(lscheme, None, None, "", None, "", None, rest, text)


def _parse_tel(text: str, rest: str) -> Uri:
    m = _TEL_RE.fullmatch(rest)
    if m is None or ("%" in rest and _bad_escape_search(rest)):
        raise ParseError(_tel_problem(rest) or "malformed tel URI")
    number, params_s = m.groups()
    return Uri("tel", number, None, "", None, params_s, None, None, text)


def _octet_problem(s: str, where: str) -> str | None:
    """Whitespace, CTLs and non-ASCII chars: never acceptable in any URI."""
    bad = _BAD_OCTET_RE.search(s)
    if bad is None:
        return None
    c = bad.group()
    what = "whitespace" if c.isspace() else "control" if c < " " or c == "\x7f" else "non-ASCII"
    return f"{what} character {c!r} in {where}"


def _char_problem(s: str, bad_re: re.Pattern[str], where: str) -> str | None:
    """First char of `s` outside the set `bad_re` encodes, or a broken escape."""
    problem = _octet_problem(s, where)
    if problem:
        return problem
    bad = bad_re.search(s)
    if bad is None:
        return None
    if bad.group() == "%":
        return f"invalid %-escape in {where}"
    return f"invalid character {bad.group()!r} in {where}"


def _params_problem(s: str, tel: bool = False) -> str | None:
    """Why ';'-separated parameter text `s` (without the first ';') is bad."""
    for p in s.split(";"):
        name, eq, value = p.partition("=")
        if not name:
            return "empty parameter name"
        if tel:
            if _BAD_TEL_PNAME_RE.search(name):
                return "invalid character in tel parameter name"
        else:
            problem = _char_problem(name, _BAD_PARAM_RE, "parameter name")
            if problem:
                return problem
        if eq and value:
            problem = _char_problem(value, _BAD_PARAM_RE, "parameter value")
            if problem:
                return problem
    return None


def _sip_problem(rest: str) -> str | None:
    """Why `rest` (a sip/sips URI after 'scheme:') is not acceptable.

    Must reject exactly what the fast path rejects; the tests check that.
    """
    problem = _octet_problem(rest, "URI")
    if problem:
        return problem
    at = rest.find("@")
    if at >= 0:
        userinfo, hp = rest[:at], rest[at + 1 :]
        user, colon, password = userinfo.partition(":")
        if not user:
            return "empty user part"
        problem = _char_problem(user, _BAD_USER_RE, "user part")
        if problem:
            return problem
        if colon:
            problem = _char_problem(password, _BAD_PASSWORD_RE, "password")
            if problem:
                return problem
    else:
        hp = rest
    hp, qmark, headers = hp.partition("?")
    hostport, semi, params = hp.partition(";")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return "unterminated IPv6 reference"
        host, after = hostport[: end + 1], hostport[end + 1 :]
        if not _IPV6REF_LOOSE_RE.fullmatch(host) or not _valid_ipv6(host[1:-1]):
            return "invalid IPv6 address"
        if after and after[0] != ":":
            return "unexpected text after IPv6 reference"
        port_s = after[1:] if after else None
    else:
        host, colon, port_s = hostport.partition(":")
        if not host:
            return "missing host"
        if colon and ":" in port_s:
            if _IPV6ISH_RE.fullmatch(hostport):
                return "IPv6 address must be enclosed in []"
            return "invalid port"
        if not _HOST_RE.fullmatch(host):
            return _char_problem(host, _BAD_HOST_RE, "host") or "invalid host name"
        if not colon:
            port_s = None
    if port_s is not None:
        if not port_s:
            return "empty port"
        if not (port_s.isascii() and port_s.isdigit()):
            return "invalid port"
        try:
            _port(port_s)
        except ParseError as e:
            return e.reason
    if semi:
        problem = _params_problem(params)
        if problem:
            return problem
    if qmark:
        for h in headers.split("&"):
            name, eq, value = h.partition("=")
            if not eq:
                return "URI header without '='"
            if not name:
                return "empty URI header name"
            problem = _char_problem(name, _BAD_HEADER_RE, "URI header") or _char_problem(
                value, _BAD_HEADER_RE, "URI header"
            )
            if problem:
                return problem
    return None


def _tel_problem(rest: str) -> str | None:
    problem = _octet_problem(rest, "tel URI")
    if problem:
        return problem
    number, semi, params = rest.partition(";")
    if not number:
        return "empty telephone number"
    if not _TEL_NUMBER_RE.fullmatch(number):
        return "invalid telephone number"
    if semi:
        return _params_problem(params, tel=True)
    return None


# --------------------------------------------------------------------------
# Building.
# --------------------------------------------------------------------------


def build_uri(
    scheme: str = "sip",
    user: str | None = None,
    password: str | None = None,
    host: str = "",
    port: int | None = None,
    params: Iterable[Param] = (),
    headers: str | None = None,
    opaque: str | None = None,
) -> Uri:
    """Build a Uri from its parts: canonical text, then `parse_uri` to check it.

    Parts are used verbatim (already escaped).  For sip/sips the text is
    ``scheme:user:password@host:port;p=v;p2?headers``; for tel it is
    ``tel:number;params`` (the number is `user`); for any other scheme it is
    ``scheme:opaque``.  Parts the scheme has no place for are ignored, except
    that a tel URI with a host, port, password or headers is a ParseError.
    """
    scheme = scheme.lower()
    if scheme == "sip" or scheme == "sips" or scheme == "tel":
        parts = [scheme, ":"]
        if scheme == "tel":
            if host or port is not None or password is not None or headers is not None:
                raise ParseError("a tel URI has no host, port, password or headers")
            parts.append(user or "")
        else:
            if user is not None:
                parts.append(user)
                if password is not None:
                    parts += (":", password)
                parts.append("@")
            elif password is not None:
                raise ParseError("password without user")
            parts.append(host)
            if port is not None:
                if isinstance(port, bool) or not isinstance(port, int):
                    raise ParseError("port must be an int")
                parts += (":", str(port))
        for name, value in params:
            parts += (";", name) if value is None else (";", name, "=", value)
        if headers is not None and scheme != "tel":
            parts += ("?", headers)
        text = "".join(parts)
    else:
        if opaque is None:
            raise ParseError(f"a {scheme!r} URI needs its opaque text")
        text = f"{scheme}:{opaque}"
    return parse_uri(text)


# --------------------------------------------------------------------------
# Comparison.
# --------------------------------------------------------------------------


def _as_uri(u: Uri | str) -> Uri:
    return u if isinstance(u, Uri) else parse_uri(u)


def _host_key(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        inner = host[1:-1].replace(":::", "::")
        try:
            return "[" + ipaddress.IPv6Address(inner).compressed + "]"
        except ValueError:
            return "[" + inner + "]"
    return host


def _param_map(params: tuple[Param, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, value in params:
        key = _norm(name).lower()
        if key not in out:
            out[key] = None if value is None else _norm(value).lower()
    return out


def _header_list(headers: str | None) -> list[tuple[str, str]]:
    if not headers:
        return []
    out = []
    for h in headers.split("&"):
        name, _, value = h.partition("=")
        out.append((_norm(name).lower(), _norm(value)))
    out.sort()
    return out


def _tel_digits(number: str) -> str:
    return number.translate(_NO_SEPARATORS).lower()


_NO_SEPARATORS = str.maketrans("", "", "().-")


def uri_equal(a: Uri | str, b: Uri | str) -> bool:
    """URI equivalence per RFC 3261 19.1.4 (sip/sips), RFC 3966 4 (tel).

    sip/sips: userinfo compared case-sensitively, host case-insensitively
    (IPv6 by address value), escapes of unreserved chars equal the chars,
    a missing port never equals an explicit one, user/ttl/method/maddr/
    transport present in only one URI make them differ, other params present
    in only one are ignored, params in both compare case-insensitively, and
    header components must all match (in any order).  Other schemes compare
    their opaque text exactly.  Strings are parsed first (ParseError if bad).
    """
    ua, ub = _as_uri(a), _as_uri(b)
    if ua.scheme != ub.scheme:
        return False
    if ua.scheme == "tel":
        return _tel_digits(ua.user or "") == _tel_digits(ub.user or "") and _tel_params(
            ua
        ) == _tel_params(ub)
    if ua.opaque is not None or ub.opaque is not None:
        return ua.opaque == ub.opaque
    if ua.port != ub.port:
        return False
    if (ua.user is None) != (ub.user is None) or (ua.password is None) != (ub.password is None):
        return False
    if ua.user is not None and _norm(ua.user) != _norm(ub.user or ""):
        return False
    if ua.password is not None and _norm(ua.password) != _norm(ub.password or ""):
        return False
    if ua.host != ub.host and _host_key(ua.host) != _host_key(ub.host):
        return False
    if ua.params or ub.params:
        pa, pb = _param_map(ua.params), _param_map(ub.params)
        for key, value in pa.items():
            if key in pb:
                if pb[key] != value:
                    return False
            elif key in _STRICT_PARAMS:
                return False
        for key in pb:
            if key not in pa and key in _STRICT_PARAMS:
                return False
    return ua.headers == ub.headers or _header_list(ua.headers) == _header_list(ub.headers)


def _tel_params(u: Uri) -> dict[str, str | None]:
    params = _param_map(u.params)
    ctx = params.get("phone-context")
    if ctx and ctx.startswith("+"):
        params["phone-context"] = _tel_digits(ctx)
    return params
