"""alias_db: alias_db_lookup / alias_db_find against a real `dbaliases` table
on SQLite, MariaDB and PostgreSQL; the rewritten R-URI and the appended
branches are checked on the wire (tm forwards every branch)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sipserver.core.exports import Registry
from sipserver.core.modload import load_module
from sipserver.lang.errors import CfgError
from sipserver.modules import alias_db
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .dbscript import DRIVERS, UNREACHABLE_URL, close_all
from .dbscript import request as sip_request
from .dbscript import runner as make_runner

ALIASES = [  # alias_username, alias_domain, username, domain
    ("sales", "example.com", "alice", "example.com"),
    ("support", "example.com", "bob", "example.net"),
    ("team", "example.com", "alice", "example.com"),
    ("team", "other.org", "carol", "other.org"),
    ("4000", "example.com", "dave", "pbx.example.com"),
]


@pytest.fixture(scope="module")
def alias_db_url(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["dbaliases"])
    con = connect(db_url)
    try:
        # dbaliases has a unique (alias_username, alias_domain) key in 1.6; the
        # multi-target rows go to a table without it
        con.raw_query("CREATE TABLE multi_aliases (alias_username VARCHAR(64), "
                      "alias_domain VARCHAR(64), username VARCHAR(64), domain VARCHAR(64))")
        for row in ALIASES:
            con.insert("dbaliases", ("alias_username", "alias_domain", "username", "domain"), row)
        for row in (("team", "example.com", "alice", "example.com"),
                    ("team", "example.com", "bob", "example.net"),
                    ("team", "example.com", "carol", "other.org")):
            con.insert("multi_aliases",
                       ("alias_username", "alias_domain", "username", "domain"), row)
    finally:
        con.close()
    yield db_url, DRIVERS[db_engine]


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    close_all()


def runner(db: tuple[str, str], params: str, route: str) -> ScriptRunner:
    url, driver = db
    return make_runner(f'modparam("alias_db", "db_url", "{url}")\n{params}{route}',
                       ["sl", "tm", driver, "alias_db"])


LOOKUP = """
route {
    $var(r) = alias_db_lookup("$hdr(X-Table)"%s);
    xlog("rc=$var(r) ru=$ru\\n");
    if ($var(r) == 1) t_relay();
}
"""


def lookup(flags: str = "") -> str:
    return LOOKUP % (f', "{flags}"' if flags else "")


def send(r: ScriptRunner, ruri: str, table: str = "dbaliases") -> tuple[str, list[str]]:
    """The rc logged and the request lines forwarded."""
    r.clear()
    r.request(sip_request("INVITE", ruri, headers=f"X-Table: {table}\r\n"))
    m = re.findall(r"rc=(-?\d+)", r.log_text())
    assert len(m) == 1, r.log_text()
    return m[0], [t.split("\r\n", 1)[0] for t in r.sent_text if not t.startswith("SIP/2.0 ")]


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "alias_db.so")
    assert mod.params == {
        "db_url": "mysql://opensipsro:opensipsro@localhost/opensips",
        "user_column": "username", "domain_column": "domain",
        "alias_user_column": "alias_username", "alias_domain_column": "alias_domain",
        "domain_prefix": None, "append_branches": 0,
    }
    masks = {(c.name, c.nargs): c.route_types for c in alias_db.exports.cmds}
    assert masks == {("alias_db_lookup", 1): 3, ("alias_db_lookup", 2): 3,
                     ("alias_db_find", 3): 1 | 2 | 4 | 8 | 32,
                     ("alias_db_find", 4): 1 | 2 | 4 | 8 | 32}


def test_lookup_rewrites_ruri(alias_db_url: tuple[str, str]) -> None:
    r = runner(alias_db_url, "", lookup())
    assert send(r, "sip:sales@example.com") == ("1", ["INVITE sip:alice@example.com SIP/2.0"])
    # parameters and port of the alias are not kept: sip:user@domain only
    assert send(r, "sip:support@example.com:5070;user=phone") == (
        "1", ["INVITE sip:bob@example.net SIP/2.0"])
    assert send(r, "sip:4000@example.com") == ("1", ["INVITE sip:dave@pbx.example.com SIP/2.0"])
    assert send(r, "sip:nobody@example.com") == ("-1", [])
    assert send(r, "sip:sales@other.org") == ("-1", [])  # the domain counts
    assert send(r, "sip:sales@example.com", table="no_such_table") == ("-1", [])
    assert "alias_db: failed to query database" in r.log_text()


def test_flags(alias_db_url: tuple[str, str]) -> None:
    r = runner(alias_db_url, "", lookup("d"))  # user part only
    assert send(r, "sip:sales@other.org") == ("1", ["INVITE sip:alice@example.com SIP/2.0"])
    r = runner(alias_db_url, "", lookup("r"))  # canonical -> alias
    assert send(r, "sip:bob@example.net") == ("1", ["INVITE sip:support@example.com SIP/2.0"])
    assert send(r, "sip:support@example.com") == ("-1", [])
    r = runner(alias_db_url, "", lookup("Rd"))
    assert send(r, "sip:carol@elsewhere") == ("1", ["INVITE sip:team@other.org SIP/2.0"])
    with pytest.raises(CfgError, match="unsupported flag 'x'"):
        runner(alias_db_url, "", lookup("dx"))


def test_domain_prefix(alias_db_url: tuple[str, str]) -> None:
    r = runner(alias_db_url, 'modparam("alias_db", "domain_prefix", "sip.")\n', lookup())
    assert send(r, "sip:sales@SIP.example.com") == ("1", ["INVITE sip:alice@example.com SIP/2.0"])
    assert send(r, "sip:sales@example.com") == ("1", ["INVITE sip:alice@example.com SIP/2.0"])
    assert send(r, "sip:sales@sip.") == ("-1", [])  # the prefix must be shorter than the host


def test_append_branches(alias_db_url: tuple[str, str]) -> None:
    r = runner(alias_db_url, "", lookup())
    # without append_branches only the first target is used
    rc, lines = send(r, "sip:team@example.com", table="multi_aliases")
    assert (rc, lines) == ("1", ["INVITE sip:alice@example.com SIP/2.0"])
    r = runner(alias_db_url, 'modparam("alias_db", "append_branches", 1)\n', lookup())
    rc, lines = send(r, "sip:team@example.com", table="multi_aliases")
    assert rc == "1"
    assert lines == ["INVITE sip:alice@example.com SIP/2.0",
                     "INVITE sip:bob@example.net SIP/2.0",
                     "INVITE sip:carol@other.org SIP/2.0"]
    # the branches carry q=0, as 1.6 appends them
    r2 = runner(alias_db_url, 'modparam("alias_db", "append_branches", 1)\n',
                'route { alias_db_lookup("multi_aliases"); '
                'xlog("b=$(branch(uri)[*]) q=$(branch(q)[0]),$(branch(q)[1])\\n"); }')
    r2.request(sip_request("INVITE", "sip:team@example.com"))
    assert "b=sip:bob@example.net, sip:carol@other.org q=0,0\n" in r2.log_text()


def test_rewritten_ruri_is_looked_up(alias_db_url: tuple[str, str]) -> None:
    r = runner(alias_db_url, "", 'route { $ru = "sip:sales@example.com"; '
                                 'alias_db_lookup("dbaliases"); xlog("ru=$ru\\n"); }')
    r.request(sip_request("INVITE", "sip:x@y.z"))
    assert "ru=sip:alice@example.com" in r.log_text()


FIND = """
route {
    $var(r) = alias_db_find("dbaliases", "$hdr(X-In)", "$avp(s:out)"%s);
    xlog("rc=$var(r) out=$avp(s:out) ru=$ru\\n");
}
"""


def test_find_into_a_pv(alias_db_url: tuple[str, str]) -> None:
    r = runner(alias_db_url, "", FIND % "")
    ctx = r.request(sip_request("INVITE", "sip:sales@example.com",
                                headers="X-In: sip:support@example.com\r\n"))
    assert "rc=1 out=sip:bob@example.net ru=sip:sales@example.com" in r.log_text()
    assert ctx.avps.get_all("out") == ["sip:bob@example.net"]
    r.clear()
    r.request(sip_request(headers="X-In: sip:carol@other.org\r\n"))
    assert "rc=-1 out=<null>" in r.log_text()
    r.clear()
    r.request(sip_request(headers="X-In: garbage\r\n"))
    assert "rc=-1 out=<null>" in r.log_text()
    assert "alias_db: failed to parse uri garbage" in r.log_text()
    r = runner(alias_db_url, "", FIND % ', "r"')
    r.request(sip_request(headers="X-In: sip:carol@other.org\r\n"))
    assert "rc=1 out=sip:team@other.org" in r.log_text()
    with pytest.raises(CfgError, match="cannot be written"):
        runner(alias_db_url, "", 'route { alias_db_find("dbaliases", "$ru", "$ci"); }')


def test_find_with_append_branches(alias_db_url: tuple[str, str]) -> None:
    route = """route {
    $avp(s:out) = "old";
    alias_db_find("multi_aliases", "$ru", "$avp(s:out)");
}"""
    r = runner(alias_db_url, "", route)
    ctx = r.request(sip_request("INVITE", "sip:team@example.com"))
    assert ctx.avps.get_all("out") == ["sip:alice@example.com"]  # ":=" dropped "old"
    r = runner(alias_db_url, 'modparam("alias_db", "append_branches", 1)\n', route)
    ctx = r.request(sip_request("INVITE", "sip:team@example.com"))
    assert ctx.avps.get_all("out") == ["sip:carol@other.org", "sip:bob@example.net",
                                       "sip:alice@example.com"]


def test_db_unreachable_gives_error_code(alias_db_url: tuple[str, str]) -> None:
    r = make_runner(f'modparam("alias_db", "db_url", "{UNREACHABLE_URL}")\n{lookup()}',
                    ["sl", "tm", "db_mysql", "alias_db"])  # no table check: starts
    assert send(r, "sip:sales@example.com") == ("-1", [])
    assert "alias_db: failed to query database" in r.log_text()


def test_needs_the_driver_module() -> None:
    with pytest.raises(ValueError, match="db_postgres"):
        ScriptRunner('modparam("alias_db", "db_url", "postgres://u@h/d")\nroute { exit; }',
                     modules=["alias_db"])
