"""Helpers for the tests of the DB-backed modules (group, alias_db, uri, domain):
ScriptRunners on a fixture database whose connections are closed after each
test, SIP requests, and digest credentials computed here with hashlib."""

from __future__ import annotations

import hashlib
import itertools
import re

from sipserver.testing import ScriptRunner

DRIVERS = {"sqlite": "db_sqlite", "mysql": "db_mysql", "postgres": "db_postgres"}

# a MySQL URL where nothing listens: every statement fails with DbGoneError
UNREACHABLE_URL = "mysql://root@127.0.0.1:1/nowhere"

_RUNNERS: list[ScriptRunner] = []
_SEQ = itertools.count(1)


def runner(cfg: str, modules: list[str]) -> ScriptRunner:
    """A ScriptRunner whose modules' destroy hooks `close_all` runs."""
    r = ScriptRunner(cfg, modules=modules, stats=True)
    _RUNNERS.append(r)
    return r


def close_all() -> None:
    """Close every DB connection opened by the runners of this test (the
    fixture drops the database afterwards)."""
    while _RUNNERS:
        for mod in _RUNNERS.pop().compiled.registry.modules.values():
            if mod.exports.destroy is not None and mod.rt is not None:
                mod.exports.destroy(mod)


def request(method: str = "INVITE", ruri: str = "sip:bob@example.com",
            from_uri: str = "sip:alice@example.com", to_uri: str | None = None,
            headers: str = "") -> bytes:
    """A request with its own Via branch and Call-ID (never a retransmission)."""
    to_uri = to_uri or ruri
    n = next(_SEQ)
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK74bf9-{n}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <{from_uri}>;tag=9fxced76sl\r\n"
        f"To: <{to_uri}>\r\n"
        f"Call-ID: 3848276298220188511-{n}@atlanta.example.com\r\n"
        f"CSeq: 2 {method}\r\n"
        f"{headers}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def credentials(nonce: str, user: str, realm: str, password: str, method: str, uri: str,
                name: str = "Authorization") -> str:
    """An RFC 2617 (qop=auth) credentials header line."""
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    resp = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
    return (f'{name}: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{resp}", qop=auth, nc=00000001, cnonce="c0ffee"\r\n')


def nonce_of(reply: str) -> str:
    m = re.search(r'nonce="([^"]+)"', reply)
    assert m is not None, reply
    return m.group(1)


# pv_www_authorize/pv_proxy_authorize against the plain password in $var(pw):
# no subscriber table needed to get authorized credentials
AUTH_PARAMS = (
    'modparam("auth", "username_spec", "$var(user)")\n'
    'modparam("auth", "password_spec", "$var(pw)")\n'
    'modparam("auth", "calculate_ha1", 1)\n'
    'modparam("auth", "disable_nonce_check", 1)\n'
)

AUTH_ROUTE = """
    $var(user) = $au;
    $var(pw) = "secret";
    if ($hdr(X-Auth) == "proxy") {
        if (!pv_proxy_authorize("")) { proxy_challenge("", "1"); exit; }
    } else {
        if (!pv_www_authorize("")) { www_challenge("", "1"); exit; }
    }
"""


def authorized(r: ScriptRunner, method: str, ruri: str, user: str, realm: str,
               from_uri: str | None = None, to_uri: str | None = None,
               proxy: bool = False) -> bytes:
    """The request with credentials for `user`@`realm` (password "secret")
    answering a challenge the script sent for a first, bare request."""
    from_uri = from_uri or f"sip:{user}@{realm}"
    extra = "X-Auth: proxy\r\n" if proxy else ""
    r.clear()
    r.request(request(method, ruri, from_uri, to_uri, extra))
    assert r.sent_text, r.log_text()
    nonce = nonce_of(r.sent_text[-1])
    r.clear()
    name = "Proxy-Authorization" if proxy else "Authorization"
    return request(method, ruri, from_uri, to_uri,
                   extra + credentials(nonce, user, realm, "secret", method, ruri, name))
