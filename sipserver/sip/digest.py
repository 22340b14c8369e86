"""HTTP Digest authentication for SIP (RFC 2617, RFC 3261 §22 and §25).

Parses Authorization / Proxy-Authorization credentials and WWW- /
Proxy-Authenticate challenges, builds both (challenges in the exact format of
OpenSIPS 1.6's auth module, credentials in that of its uac module) and
computes / checks MD5 and MD5-sess responses with qop absent, auth or auth-int.

Header values are latin-1 `str` (one char per octet); every hash input is
encoded as latin-1 so the octets hashed are the octets on the wire (text
with characters above U+00FF cannot be hashed and raises ValueError).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sipserver.sip.errors import ParseError

__all__ = [
    "Challenge",
    "Credentials",
    "answer_challenge",
    "build_challenge",
    "build_credentials",
    "calc_ha1",
    "calc_ha1_sess",
    "calc_response",
    "check_response",
    "parse_challenge",
    "parse_credentials",
]

# RFC 3261 §25.1 token characters.
_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_LWS = " \t\r\n"
_ALGORITHMS = ("md5", "md5-sess")
_QOPS = ("auth", "auth-int")

_CREDENTIAL_KEYS = (
    "username", "realm", "nonce", "uri", "response",
    "algorithm", "cnonce", "opaque", "qop", "nc",
)  # fmt: skip
_CHALLENGE_KEYS = ("realm", "nonce", "opaque", "stale", "algorithm", "qop", "domain")


# -- parsing ------------------------------------------------------------------


def _split_scheme(value: str) -> tuple[str, str]:
    """Cut `scheme LWS params`; the scheme must be a token."""
    s = value.strip(_LWS)
    i = 0
    while i < len(s) and s[i] in _TOKEN:
        i += 1
    if i == 0:
        raise ParseError("missing authentication scheme")
    if i < len(s) and s[i] not in _LWS:
        raise ParseError("bad authentication scheme")
    return s[:i], s[i:].lstrip(_LWS)


def _skip_lws(s: str, pos: int) -> int:
    while pos < len(s) and s[pos] in _LWS:
        pos += 1
    return pos


def _parse_quoted(s: str, pos: int) -> tuple[str, int]:
    """Unquote the quoted-string opening at s[pos]; returns (text, index after it)."""
    out: list[str] = []
    pos += 1
    start = pos
    n = len(s)
    while pos < n:
        c = s[pos]
        if c == '"':
            out.append(s[start:pos])
            return "".join(out), pos + 1
        if c == "\\":
            if pos + 1 >= n:
                break
            out.append(s[start:pos])
            out.append(s[pos + 1])
            pos += 2
            start = pos
            continue
        pos += 1
    raise ParseError("unterminated quoted string in auth header")


def _parse_params(s: str) -> dict[str, str]:
    """Parse `name=value` pairs separated by commas (RFC 3261 §25.1 EQUAL / COMMA).

    Names are folded to lower case (they are case-insensitive); values are
    tokens or quoted strings, returned unquoted. Empty list elements are
    skipped (RFC 2616 #rule); a repeated name is rejected, since two
    different `response` or `username` values cannot both be honoured.
    """
    params: dict[str, str] = {}
    pos, n = 0, len(s)
    while True:
        while pos < n and (s[pos] in _LWS or s[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and s[pos] in _TOKEN:
            pos += 1
        if pos == start:
            raise ParseError("bad auth parameter name")
        name = s[start:pos].lower()
        pos = _skip_lws(s, pos)
        if pos >= n or s[pos] != "=":
            raise ParseError(f"auth parameter {name} has no value")
        pos = _skip_lws(s, pos + 1)
        if pos >= n:
            raise ParseError(f"auth parameter {name} has no value")
        if s[pos] == '"':
            value, pos = _parse_quoted(s, pos)
        else:
            start = pos
            while pos < n and s[pos] not in _LWS and s[pos] not in ',"':
                pos += 1
            if pos == start or (pos < n and s[pos] == '"'):
                raise ParseError(f"bad value for auth parameter {name}")
            value = s[start:pos]
        if name in params:
            raise ParseError(f"auth parameter {name} repeated")
        params[name] = value
        pos = _skip_lws(s, pos)
        if pos < n and s[pos] != ",":
            raise ParseError("auth parameters must be separated by commas")
    return params


class Credentials:
    """An Authorization / Proxy-Authorization value.

    For the Digest scheme the RFC 2617 fields are filled (None when absent)
    and unknown parameters land in `params`; any other scheme only keeps
    `scheme` and `raw_params`, because its syntax is its own business.
    """

    __slots__ = (
        "algorithm",
        "cnonce",
        "nc",
        "nonce",
        "opaque",
        "params",
        "qop",
        "raw_params",
        "realm",
        "response",
        "scheme",
        "uri",
        "username",
    )

    def __init__(
        self,
        scheme: str = "Digest",
        *,
        username: str | None = None,
        realm: str | None = None,
        nonce: str | None = None,
        uri: str | None = None,
        response: str | None = None,
        algorithm: str | None = None,
        cnonce: str | None = None,
        opaque: str | None = None,
        qop: str | None = None,
        nc: str | None = None,
        params: dict[str, str] | None = None,
        raw_params: str = "",
    ) -> None:
        self.scheme = scheme
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        self.algorithm = algorithm
        self.cnonce = cnonce
        self.opaque = opaque
        self.qop = qop
        self.nc = nc
        self.params = params if params is not None else {}
        self.raw_params = raw_params

    def __repr__(self) -> str:
        if not self.is_digest:
            return f"Credentials({self.scheme!r}, raw_params={self.raw_params!r})"
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}" for k in _CREDENTIAL_KEYS if getattr(self, k) is not None
        )
        return f"Credentials({self.scheme!r}, {fields})"

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    @property
    def user(self) -> str | None:
        """The username before an '@' (OpenSIPS splits `user@domain` usernames)."""
        if self.username is None or len(self.username) <= 2:
            return self.username
        return self.username.partition("@")[0]

    @property
    def domain(self) -> str | None:
        """The part of the username after the first '@', None without one."""
        if self.username is None or len(self.username) <= 2 or "@" not in self.username:
            return None
        return self.username.partition("@")[2]

    def validate(self, *, check_domain: bool = True) -> list[str]:
        """What makes these credentials unusable for a Digest check (empty if fine).

        Mirrors OpenSIPS 1.6's semantic check: username, realm, nonce, uri
        and response are required; a qop of auth/auth-int needs cnonce and
        nc; and (check_domain) a `user@domain` username must name the realm.
        """
        if not self.is_digest:
            return [f"unsupported scheme {self.scheme}"]
        problems = [
            f"missing {k}"
            for k in ("username", "realm", "nonce", "uri", "response")
            if getattr(self, k) is None
        ]
        if check_domain and self.domain is not None and self.domain != self.realm:
            problems.append("username domain differs from realm")
        if self.qop is not None and self.qop.lower() in _QOPS:
            problems += [f"missing {k}" for k in ("cnonce", "nc") if getattr(self, k) is None]
        return problems


class Challenge:
    """A WWW-Authenticate / Proxy-Authenticate value.

    `qop` is the list of offered qop values (empty when none are offered);
    `domain` is the raw space-separated URI list. Non-Digest schemes keep
    only `scheme` and `raw_params`.
    """

    __slots__ = (
        "algorithm",
        "domain",
        "nonce",
        "opaque",
        "params",
        "qop",
        "raw_params",
        "realm",
        "scheme",
        "stale",
    )

    def __init__(
        self,
        scheme: str = "Digest",
        *,
        realm: str | None = None,
        nonce: str | None = None,
        opaque: str | None = None,
        stale: bool = False,
        algorithm: str | None = None,
        qop: list[str] | None = None,
        domain: str | None = None,
        params: dict[str, str] | None = None,
        raw_params: str = "",
    ) -> None:
        self.scheme = scheme
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.stale = stale
        self.algorithm = algorithm
        self.qop = qop if qop is not None else []
        self.domain = domain
        self.params = params if params is not None else {}
        self.raw_params = raw_params

    def __repr__(self) -> str:
        if not self.is_digest:
            return f"Challenge({self.scheme!r}, raw_params={self.raw_params!r})"
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in _CHALLENGE_KEYS)
        return f"Challenge({self.scheme!r}, {fields})"

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"


def parse_credentials(value: str) -> Credentials:
    """Parse an Authorization / Proxy-Authorization header value.

    A scheme other than Digest is not an error (RFC 4475 regaut01): it comes
    back with only `scheme` and `raw_params` so the caller can ignore it.
    """
    scheme, rest = _split_scheme(value)
    if scheme.lower() != "digest":
        return Credentials(scheme, raw_params=rest)
    params = _parse_params(rest)
    if not params:
        raise ParseError("Digest credentials without parameters")
    known = {k: params.pop(k, None) for k in _CREDENTIAL_KEYS}
    return Credentials(scheme, params=params, raw_params=rest, **known)


def parse_challenge(value: str) -> Challenge:
    """Parse a WWW-Authenticate / Proxy-Authenticate header value (one challenge)."""
    scheme, rest = _split_scheme(value)
    if scheme.lower() != "digest":
        return Challenge(scheme, raw_params=rest)
    params = _parse_params(rest)
    if not params:
        raise ParseError("Digest challenge without parameters")
    qop = params.pop("qop", None)
    stale = params.pop("stale", None)
    return Challenge(
        scheme,
        realm=params.pop("realm", None),
        nonce=params.pop("nonce", None),
        opaque=params.pop("opaque", None),
        stale=stale is not None and stale.strip(_LWS).lower() == "true",
        algorithm=params.pop("algorithm", None),
        qop=[q for q in (p.strip(_LWS) for p in qop.split(",")) if q] if qop else [],
        domain=params.pop("domain", None),
        params=params,
        raw_params=rest,
    )


# -- building -----------------------------------------------------------------


def _quote(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"CR/LF in {what}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _token(value: str, what: str) -> str:
    if not value or any(c not in _TOKEN for c in value):
        raise ValueError(f"bad {what} {value!r}")
    return value


def _qop_list(qop: str) -> str:
    items = [q.strip(" \t") for q in qop.split(",")]
    for q in items:
        _token(q, "qop")
    return ",".join(items)


def _nc_text(nc: str | int) -> str:
    if isinstance(nc, int):
        if not 0 < nc <= 0xFFFFFFFF:
            raise ValueError(f"nonce count out of range: {nc}")
        return f"{nc:08x}"
    return _token(nc, "nc")


def build_challenge(
    realm: str,
    nonce: str,
    *,
    qop: str | None = None,
    algorithm: str | None = None,
    opaque: str | None = None,
    stale: bool = False,
) -> str:
    """A WWW-/Proxy-Authenticate value laid out like OpenSIPS 1.6's auth module.

    `Digest realm="r", nonce="n"[, qop="auth"][, stale=true][, algorithm=MD5]`
    then `[, opaque="o"]` (1.6 never sent opaque; its successors put it last).
    qop may be "auth", "auth-int" or a comma list such as "auth,auth-int".
    """
    out = f"Digest realm={_quote(realm, 'realm')}, nonce={_quote(nonce, 'nonce')}"
    if qop:
        out += f', qop="{_qop_list(qop)}"'
    if stale:
        out += ", stale=true"
    if algorithm:
        out += f", algorithm={_token(algorithm, 'algorithm')}"
    if opaque is not None:
        out += f", opaque={_quote(opaque, 'opaque')}"
    return out


def build_credentials(
    username: str,
    realm: str,
    nonce: str,
    uri: str,
    response: str,
    *,
    algorithm: str | None = "MD5",
    opaque: str | None = None,
    qop: str | None = None,
    nc: str | int | None = None,
    cnonce: str | None = None,
) -> str:
    """An Authorization/Proxy-Authorization value laid out like OpenSIPS 1.6's uac module.

    `Digest username="u", realm="r", nonce="n", uri="x"[, opaque="o"]`
    `[, qop=auth, nc=00000001, cnonce="c"], response="h", algorithm=MD5`.
    qop and nc are tokens (unquoted, RFC 2617 §3.2.2); an int nc is written
    as 8 hex digits. cnonce without qop is allowed for MD5-sess.
    """
    out = (
        f"Digest username={_quote(username, 'username')}, realm={_quote(realm, 'realm')}, "
        f"nonce={_quote(nonce, 'nonce')}, uri={_quote(uri, 'uri')}"
    )
    if opaque is not None:
        out += f", opaque={_quote(opaque, 'opaque')}"
    if qop:
        if nc is None or cnonce is None:
            raise ValueError("qop needs nc and cnonce")
        out += f", qop={_token(qop, 'qop')}, nc={_nc_text(nc)}"
    if cnonce is not None:
        out += f", cnonce={_quote(cnonce, 'cnonce')}"
    out += f", response={_quote(response, 'response')}"
    if algorithm:
        out += f", algorithm={_token(algorithm, 'algorithm')}"
    return out


# -- computing ----------------------------------------------------------------


def _h(*parts: str) -> str:
    """H(p1:p2:...) as lower-case hex; latin-1 keeps the octets as received."""
    return hashlib.md5(":".join(parts).encode("latin-1"), usedforsecurity=False).hexdigest()


def calc_ha1_sess(ha1: str, nonce: str, cnonce: str) -> str:
    """The MD5-sess session key H(H(A1):nonce:cnonce) from a plain (stored) HA1.

    Uses the hex HA1 as RFC 2617 §3.2.2.2 and RFC 7616 §3.4.2 state (OpenSIPS
    1.6 followed RFC 2617's sample code and hashed the binary digest).
    """
    return _h(ha1.lower(), nonce, cnonce)


def calc_ha1(
    username: str,
    realm: str,
    password: str,
    algorithm: str | None = "MD5",
    nonce: str = "",
    cnonce: str = "",
) -> str:
    """H(A1) in hex: H(user:realm:password), or its MD5-sess session key."""
    alg = (algorithm or "MD5").lower()
    if alg not in _ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ha1 = _h(username, realm, password)
    return calc_ha1_sess(ha1, nonce, cnonce) if alg == "md5-sess" else ha1


def calc_response(
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str | int | None = None,
    cnonce: str | None = None,
    body: str = "",
) -> str:
    """The request-digest (RFC 2617 §3.2.2.1) in hex.

    Without qop: H(HA1:nonce:H(A2)) (RFC 2069 compatible); with auth or
    auth-int: H(HA1:nonce:nc:cnonce:qop:H(A2)), where auth-int adds H(body)
    to A2. The qop text is hashed as given, matched case-insensitively.
    """
    int_mode = qop is not None and qop.lower() == "auth-int"
    ha2 = _h(method, uri, _h(body)) if int_mode else _h(method, uri)
    if not qop:
        if qop is not None:
            raise ValueError("empty qop")
        return _h(ha1.lower(), nonce, ha2)
    if qop.lower() not in _QOPS:
        raise ValueError(f"unsupported qop {qop!r}")
    if nc is None or cnonce is None:
        raise ValueError("qop needs nc and cnonce")
    nc_text = f"{nc:08x}" if isinstance(nc, int) else nc
    return _h(ha1.lower(), nonce, nc_text, cnonce, qop, ha2)


def check_response(
    credentials: Credentials,
    method: str,
    password: str | None = None,
    ha1: str | None = None,
    body: str = "",
) -> bool:
    """Does the credentials' response prove knowledge of the password (or HA1)?

    `ha1` is the plain H(user:realm:password), as a subscriber table stores
    it; the MD5-sess key is derived here. Credentials that cannot be checked
    (other scheme or algorithm, missing fields, a response that is not 32
    characters) are simply not valid. Nonce freshness and nc replay are the
    caller's job. The comparison is constant-time.
    """
    if ha1 is None and password is None:
        raise ValueError("check_response needs a password or an HA1")
    c = credentials
    if not c.is_digest:
        return False
    if c.username is None or c.realm is None or c.nonce is None or c.uri is None:
        return False
    if c.response is None or len(c.response) != 32:
        return False
    alg = (c.algorithm or "MD5").lower()
    if alg not in _ALGORITHMS:
        return False
    if c.qop is not None and (c.qop.lower() not in _QOPS or c.nc is None or c.cnonce is None):
        return False
    if alg == "md5-sess" and c.cnonce is None:
        return False
    key = ha1 if ha1 is not None else _h(c.username, c.realm, password or "")
    if alg == "md5-sess":
        key = calc_ha1_sess(key, c.nonce, c.cnonce or "")
    expected = calc_response(
        key, c.nonce, method, c.uri, qop=c.qop, nc=c.nc, cnonce=c.cnonce, body=body
    )
    received = c.response.encode("latin-1", "replace").lower()
    return hmac.compare_digest(expected.encode("latin-1"), received)


def answer_challenge(
    challenge: Challenge,
    method: str,
    uri: str,
    username: str,
    *,
    password: str | None = None,
    ha1: str | None = None,
    cnonce: str | None = None,
    nc: int | str = 1,
    body: str = "",
) -> str:
    """Credentials answering a Digest challenge, as a UAC (the uac module) sends them.

    Picks qop=auth when offered, else auth-int, else none; echoes opaque and
    the algorithm (MD5 when the challenge named none, as 1.6 always wrote
    algorithm=MD5). A random cnonce is made when one is needed and not given.
    """
    if not challenge.is_digest:
        raise ValueError(f"cannot answer a {challenge.scheme} challenge")
    if challenge.realm is None or challenge.nonce is None:
        raise ValueError("challenge lacks realm or nonce")
    if ha1 is None and password is None:
        raise ValueError("answer_challenge needs a password or an HA1")
    alg = (challenge.algorithm or "MD5").lower()
    if alg not in _ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {challenge.algorithm!r}")
    offered = [q.lower() for q in challenge.qop]
    qop = "auth" if "auth" in offered else "auth-int" if "auth-int" in offered else None
    if cnonce is None and (qop or alg == "md5-sess"):
        cnonce = secrets.token_hex(8)
    key = ha1 if ha1 is not None else _h(username, challenge.realm, password or "")
    if alg == "md5-sess":
        key = calc_ha1_sess(key, challenge.nonce, cnonce or "")
    response = calc_response(
        key,
        challenge.nonce,
        method,
        uri,
        qop=qop,
        nc=nc if qop else None,
        cnonce=cnonce if qop else None,
        body=body,
    )
    return build_credentials(
        username,
        challenge.realm,
        challenge.nonce,
        uri,
        response,
        algorithm=challenge.algorithm or "MD5",
        opaque=challenge.opaque,
        qop=qop,
        nc=nc if qop else None,
        cnonce=cnonce if (qop or alg == "md5-sess") else None,
    )
