"""auth_db: www/proxy_authorize against a real `subscriber` table on SQLite,
MariaDB and PostgreSQL (tests/dbfixtures.py), HA1 and plain-password
columns, HA1B for user@domain, use_domain, load_credentials AVPs, table
version check and DB failures.

Digests are computed here with hashlib, independently of the module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest

from sipserver.core.exports import REQUEST_ROUTE, Registry
from sipserver.core.modload import load_module
from sipserver.db.api import DbError
from sipserver.modules import auth_db
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .util import cmd

SECRET = "s3cr3t"
T0 = 1_700_000_000
DRIVERS = {"sqlite": "db_sqlite", "mysql": "db_mysql", "postgres": "db_postgres"}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def nonce_for(index: int, expires: int = T0 + 30) -> str:
    head = f"{expires:08x}{index:08x}"
    return head + md5(head + SECRET)


SUBSCRIBERS = [
    # username, domain, password, email, ha1, ha1b, rpid
    ("alice", "example.com", "secret", "alice@example.com",
     md5("alice:example.com:secret"), md5("alice@example.com:example.com:secret"),
     "<sip:+4930111@example.com>"),
    ("bob", "other.org", "bobpw", "bob@other.org",
     md5("bob:other.org:bobpw"), md5("bob@other.org:other.org:bobpw"), None),
    ("carol", "example.com", "c4rol", "", md5("carol:example.com:c4rol"), "", None),
]


@pytest.fixture(scope="module")
def subscriber_db(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["subscriber"])
    con = connect(db_url)
    try:
        for row in SUBSCRIBERS:
            con.insert("subscriber", ("username", "domain", "password", "email_address",
                                      "ha1", "ha1b", "rpid"), row)
    finally:
        con.close()
    yield db_url, DRIVERS[db_engine]


ROUTE = """
route {
    if (method == "INVITE") {
        $var(r) = proxy_authorize("", "subscriber");
    } else {
        $var(r) = www_authorize("", "subscriber");
    }
    xlog("rc=$var(r) rpid=$avp(s:rpid) email=$avp(i:1)\\n");
    if ($var(r) == 1) {
        consume_credentials();
        forward("127.0.0.1:5080");
        exit;
    }
    if (method == "INVITE") proxy_challenge("", "1"); else www_challenge("", "1");
}
"""


_RUNNERS: list[ScriptRunner] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Run the modules' destroy hooks after each test: the DB connections
    must be closed before the fixture drops the database."""
    yield
    while _RUNNERS:
        for mod in _RUNNERS.pop().compiled.registry.modules.values():
            if mod.exports.destroy is not None and mod.rt is not None:
                mod.exports.destroy(mod)


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def runner(db: tuple[str, str], params: str = "", route: str = ROUTE) -> tuple[ScriptRunner, Clock]:
    url, driver = db
    cfg = (f'modparam("auth_db", "db_url", "{url}")\n'
           f'modparam("auth", "secret", "{SECRET}")\n{params}{route}')
    r = ScriptRunner(cfg, modules=["sl", "signaling", driver, "auth", "auth_db"])
    _RUNNERS.append(r)
    clock = Clock()
    st = r.compiled.registry.modules["auth"].state
    st.clock = clock
    st.index.ticks = clock
    return r, clock


def request(method: str = "REGISTER", auth_hf: str = "", user: str = "alice",
            domain: str = "example.com") -> bytes:
    ruri = "sip:example.com" if method == "REGISTER" else f"sip:dave@{domain}"
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK74bf9\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{domain}>;tag=9fxced76sl\r\n"
        f"To: <sip:{user}@{domain}>\r\n"
        "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
        f"CSeq: 2 {method}\r\n"
        f"{auth_hf}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def credentials(nonce: str, user: str = "alice", password: str = "secret",
                realm: str = "example.com", method: str = "REGISTER",
                uri: str = "sip:example.com", qop: bool = True,
                name: str = "Authorization") -> str:
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    if qop:
        resp = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
        extra = ', qop=auth, nc=00000001, cnonce="c0ffee"'
    else:
        resp = md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    return (f'{name}: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{resp}"{extra}\r\n')


def logs(r: ScriptRunner) -> list[str]:
    return re.findall(r"rc=.*", r.log_text())


def challenge(r: ScriptRunner, method: str = "REGISTER", **kw: str) -> str:
    """Get a challenge; the nonce in it (checked against the 1.6 recipe)."""
    r.clear()
    r.request(request(method, **kw))
    m = re.search(r'nonce="([0-9a-f]{48})"', r.sent_text[-1])
    assert m is not None
    return m.group(1)


# ---------------------------------------------------------------- exports


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "auth_db.so")
    assert mod.params == {
        "db_url": "mysql://opensipsro:opensipsro@localhost/opensips",
        "user_column": "username", "domain_column": "domain", "password_column": "ha1",
        "password_column_2": "ha1b", "calculate_ha1": 0, "use_domain": 0,
        "load_credentials": "rpid", "skip_version_check": 0,
    }
    assert cmd(auth_db.exports, "www_authorize", 2).route_types == REQUEST_ROUTE
    assert cmd(auth_db.exports, "proxy_authorize", 2).route_types == REQUEST_ROUTE


def test_load_credentials_parsing() -> None:
    from sipserver.modules.auth.pvparam import param_env

    class Rt:
        registry = None
        config: dict = {}

    env = param_env(Rt())
    parsed = auth_db.parse_credentials_list("$avp(i:1)=email_address; rpid ;$avp(s:x)=ha1;",
                                            env)
    assert [(c.avp, c.column) for c in parsed] == [("x", "ha1"), ("rpid", "rpid"),
                                                  (1, "email_address")]
    assert auth_db.parse_credentials_list("", env) == []
    for bad in ("rpid;;email", ";rpid", "=rpid", "$avp(s:x)=", "$ru=rpid", "rpid; "):
        with pytest.raises(ValueError):
            auth_db.parse_credentials_list(bad, env)


# ---------------------------------------------------------------- authorization


def test_no_credentials_then_correct_ones(subscriber_db: tuple[str, str]) -> None:
    r, _ = runner(subscriber_db)
    nonce = challenge(r)
    assert nonce == nonce_for(0)
    assert logs(r) == ["rc=-4 rpid=<null> email=<null>"]
    text = r.sent_text[0]
    assert text.startswith("SIP/2.0 401 Unauthorized\r\n")
    assert f'\r\nWWW-Authenticate: Digest realm="example.com", nonce="{nonce}", qop="auth"\r\n' \
        in text
    r.clear()
    r.request(request(auth_hf=credentials(nonce)))
    # authorized; load_credentials' default "rpid" filled $avp(s:rpid)
    assert logs(r) == ["rc=1 rpid=<sip:+4930111@example.com> email=<null>"]
    [fwd] = r.sent_text
    assert fwd.startswith("REGISTER sip:example.com SIP/2.0\r\n")
    assert "Authorization" not in fwd  # consume_credentials


def test_wrong_password_unknown_user_stale(subscriber_db: tuple[str, str]) -> None:
    r, clock = runner(subscriber_db)
    nonce = challenge(r)
    r.request(request(auth_hf=credentials(nonce, password="nope")))
    r.request(request(auth_hf=credentials(nonce, user="zed"), user="zed"))
    r.request(request(auth_hf=credentials(nonce, qop=False)))  # no qop: RFC 2069 digest
    r.request(request(auth_hf=credentials(nonce)))  # the nonce was used just now
    codes = [line.split()[0] for line in logs(r)]
    assert codes == ["rc=-4", "rc=-2", "rc=-1", "rc=1", "rc=-3"]
    assert "stale=true" in r.sent_text[-1]
    assert "stale=true" not in r.sent_text[-2]  # the -1 challenge
    nonce = challenge(r)
    clock.now += 31
    r.clear()
    r.request(request(auth_hf=credentials(nonce)))
    assert logs(r)[-1].startswith("rc=-3 ")
    assert ', qop="auth", stale=true\r\n' in r.sent_text[0]


def test_ha1b_column_for_user_at_domain(subscriber_db: tuple[str, str]) -> None:
    r, _ = runner(subscriber_db)
    nonce = challenge(r)
    # the client hashes "alice@example.com" as its username: only ha1b matches
    r.request(request(auth_hf=credentials(nonce, user="alice@example.com")))
    assert logs(r)[-1].startswith("rc=1 ")
    # carol has no ha1b: wrong password, though her ha1 is fine
    nonce = challenge(r, user="carol")
    r.request(request(auth_hf=credentials(nonce, user="carol@example.com", password="c4rol"),
                      user="carol"))
    assert logs(r)[-1].startswith("rc=-2 ")


def test_calculate_ha1_from_plain_password(subscriber_db: tuple[str, str]) -> None:
    r, _ = runner(subscriber_db, 'modparam("auth_db", "calculate_ha1", 1)\n'
                                 'modparam("auth_db", "password_column", "password")\n')
    for user, password, rc in (("alice", "secret", "rc=1"),
                               ("alice@example.com", "secret", "rc=1"),
                               ("alice", "secreT", "rc=-2")):
        nonce = challenge(r)
        r.request(request(auth_hf=credentials(nonce, user=user, password=password)))
        assert logs(r)[-1].split()[0] == rc


def test_calculate_ha1_needs_the_password_column(subscriber_db: tuple[str, str]) -> None:
    # 1.6 keeps password_column=ha1 with calculate_ha1=1: the HA1 text is
    # taken as the password, so nothing matches
    r, _ = runner(subscriber_db, 'modparam("auth_db", "calculate_ha1", 1)\n')
    nonce = challenge(r)
    r.request(request(auth_hf=credentials(nonce)))
    assert logs(r)[-1].startswith("rc=-2 ")


def test_use_domain(subscriber_db: tuple[str, str]) -> None:
    # bob exists only in other.org
    r, _ = runner(subscriber_db)
    nonce = challenge(r, user="bob")
    r.request(request(auth_hf=credentials(nonce, user="bob", password="bobpw"), user="bob"))
    assert logs(r)[-1].startswith("rc=-2 ")  # found by username alone; HA1 is for other.org
    r, _ = runner(subscriber_db, 'modparam("auth_db", "use_domain", 1)\n')
    nonce = challenge(r, user="bob")
    r.request(request(auth_hf=credentials(nonce, user="bob", password="bobpw"), user="bob"))
    assert logs(r)[-1].startswith("rc=-1 ")
    nonce = challenge(r, user="bob", domain="other.org")
    r.request(request(auth_hf=credentials(nonce, user="bob", password="bobpw",
                                          realm="other.org"), user="bob", domain="other.org"))
    assert logs(r)[-1].startswith("rc=1 ")


def test_load_credentials_avps(subscriber_db: tuple[str, str]) -> None:
    r, _ = runner(subscriber_db,
                  'modparam("auth_db", "load_credentials", "$avp(i:1)=email_address;rpid")\n')
    nonce = challenge(r)
    r.request(request(auth_hf=credentials(nonce)))
    assert logs(r)[-1] == "rc=1 rpid=<sip:+4930111@example.com> email=alice@example.com"
    # NULL rpid and an empty email make no AVP
    nonce = challenge(r, user="carol")
    r.request(request(auth_hf=credentials(nonce, user="carol", password="c4rol"), user="carol"))
    assert logs(r)[-1] == "rc=1 rpid=<null> email=<null>"


def test_proxy_authorize(subscriber_db: tuple[str, str]) -> None:
    r, _ = runner(subscriber_db)
    nonce = challenge(r, "INVITE")
    assert r.sent_text[0].startswith("SIP/2.0 407 Proxy Authentication Required\r\n")
    assert f'\r\nProxy-Authenticate: Digest realm="example.com", nonce="{nonce}", qop="auth"' \
        in r.sent_text[0]
    r.clear()
    r.request(request("INVITE", auth_hf=credentials(
        nonce, method="INVITE", uri="sip:dave@example.com", name="Proxy-Authorization")))
    assert logs(r)[-1].startswith("rc=1 ")
    assert "Proxy-Authorization" not in r.sent_text[0]
    assert r.sent_text[0].startswith("INVITE sip:dave@example.com SIP/2.0\r\n")


def test_db_failure_sends_500_and_stops(subscriber_db: tuple[str, str]) -> None:
    r, _ = runner(subscriber_db, 'modparam("auth_db", "skip_version_check", 1)\n',
                  route='route { www_authorize("", "no_such_table"); xlog("after\\n"); }')
    nonce = nonce_for(0)
    r.request(request())  # no credentials: -4 before any query
    assert "after" in r.log_text()
    r.clear()
    r.request(request(auth_hf=credentials(nonce)))
    assert r.sent_text[0].startswith("SIP/2.0 500 Server Internal Error\r\n")
    assert "after" not in r.log_text()
    assert "auth_db: failed to query database" in r.log_text()


def test_table_version_is_checked_at_startup(subscriber_db: tuple[str, str]) -> None:
    route = 'route { www_authorize("", "subscriber_copy"); }'
    with pytest.raises(DbError, match="version"):
        runner(subscriber_db, route=route)
    runner(subscriber_db, 'modparam("auth_db", "skip_version_check", 1)\n', route=route)


def test_needs_auth_and_driver_modules(subscriber_db: tuple[str, str]) -> None:
    url, driver = subscriber_db
    with pytest.raises(ValueError, match="auth"):
        ScriptRunner(f'modparam("auth_db", "db_url", "{url}")\nroute {{ exit; }}',
                     modules=["sl", "signaling", driver, "auth_db"])
    with pytest.raises(ValueError, match="db_"):
        ScriptRunner('modparam("auth_db", "db_url", "text:///nowhere")\nroute { exit; }',
                     modules=["sl", "signaling", "auth", "auth_db"])
