"""uri's DB checks (db_check_to/from, db_does_uri_exist, db_get_auth_id)
against real `subscriber` and `uri` tables on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sipserver.core.exports import Registry
from sipserver.core.modload import load_module
from sipserver.db.api import DbError
from sipserver.lang.errors import CfgError
from sipserver.modules import uri
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .dbscript import AUTH_PARAMS, AUTH_ROUTE, DRIVERS, UNREACHABLE_URL, authorized, close_all
from .dbscript import request as sip_request
from .dbscript import runner as make_runner

SUBSCRIBERS = [("alice", "example.com"), ("bob", "example.com"), ("alice", "other.org")]
URIS = [  # username, domain, uri_user
    ("alice", "example.com", "alice"),
    ("alice", "example.com", "4000"),
    ("alice", "example.com", "sales"),
    ("bob", "example.com", "4001"),
    ("carol", "other.org", "4000"),
]


@pytest.fixture(scope="module")
def uri_db(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["subscriber", "uri"])
    con = connect(db_url)
    try:
        for user, domain in SUBSCRIBERS:
            con.insert("subscriber", ("username", "domain", "password", "ha1", "ha1b"),
                       (user, domain, "secret", "", ""))
        for row in URIS:
            con.insert("uri", ("username", "domain", "uri_user"), row)
    finally:
        con.close()
    yield db_url, DRIVERS[db_engine]


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    close_all()


def runner(db: tuple[str, str], params: str, route: str, auth: bool = False) -> ScriptRunner:
    url, driver = db
    mods = ["sl", driver, "uri"]
    if auth:
        mods = ["sl", "signaling", "auth", driver, "uri"]
        params = AUTH_PARAMS + params
    return make_runner(f'modparam("uri", "db_url", "{url}")\n{params}{route}', mods)


def codes(r: ScriptRunner, key: str) -> list[str]:
    return re.findall(key + r"=(-?\d+)", r.log_text())


def stats(r: ScriptRunner) -> tuple[int, int]:
    s = r.rt.stats
    return s.stat("uri", "positive checks").get(), s.stat("uri", "negative_checks").get()


def test_exports() -> None:
    mod = load_module(Registry(), "uri.so")
    assert mod.params["db_url"] is None and mod.params["db_table"] is None
    masks = {(c.name, c.nargs): c.route_types for c in uri.exports.cmds}
    assert masks[("db_check_to", 0)] == 1
    assert masks[("db_check_from", 0)] == 1
    assert masks[("db_does_uri_exist", 0)] == 1 | 32
    assert masks[("db_get_auth_id", 3)] == 1 | 32
    assert [s.name for s in uri.exports.stats] == ["positive checks", "negative_checks"]


# ---------------------------------------------------------------- db_check_to/from

CHECK = "route {\n" + AUTH_ROUTE + """
    $var(t) = db_check_to();
    $var(f) = db_check_from();
    xlog("to=$var(t) from=$var(f)\\n");
}
"""


def check(r: ScriptRunner, from_uri: str, to_uri: str, user: str = "alice",
          realm: str = "example.com") -> tuple[str, str]:
    msg = authorized(r, "INVITE", "sip:x@example.net", user, realm, from_uri, to_uri)
    r.request(msg)
    [t], [f] = codes(r, "to"), codes(r, "from")
    return t, f


def test_check_against_digest_username(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, "", CHECK, auth=True)
    assert check(r, "sip:alice@example.com", "sip:alice@example.com") == ("1", "1")
    assert stats(r) == (2, 0)
    # case-insensitive; the host is not compared
    assert check(r, "sip:alice@example.com", "sip:ALICE@elsewhere.net") == ("1", "1")
    assert check(r, "sip:alice@example.com", "sip:bob@example.com") == ("-10", "1")
    assert check(r, "sip:alice@example.com", "sip:alicex@example.com") == ("-10", "1")
    assert check(r, "sip:alice@example.com", "sip:example.com") == ("-4", "1")  # no user
    assert stats(r) == (7, 2)  # no-user is counted neither way, as in 1.6


def test_check_needs_authorized_credentials(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, "", 'route { $var(t) = db_check_to(); xlog("to=$var(t)\\n"); }')
    r.request(sip_request())
    assert codes(r, "to") == ["-2"]
    assert "no authorized credentials found" in r.log_text()
    assert stats(r) == (0, 1)


def test_check_with_uri_table(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, 'modparam("uri", "use_uri_table", 1)\n', CHECK, auth=True)
    assert check(r, "sip:alice@example.com", "sip:4000@example.com") == ("1", "1")
    assert check(r, "sip:alice@example.com", "sip:sales@x.y") == ("1", "1")
    assert check(r, "sip:alice@example.com", "sip:4001@example.com") == ("-9", "1")  # bob's
    assert stats(r) == (5, 1)
    # the realm is part of the key: carol's 4000 is in other.org
    r2 = runner(uri_db, 'modparam("uri", "use_uri_table", 1)\n', CHECK, auth=True)
    assert check(r2, "sip:carol@other.org", "sip:4000@other.org", "carol", "other.org") == \
        ("1", "-9")  # no "carol" uri_user row


def test_check_with_uri_table_db_failure(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, 'modparam("uri", "use_uri_table", 1)\n', CHECK, auth=True)
    st = r.compiled.registry.modules["uri"].state
    st.db.close()
    st.db.use(connect(UNREACHABLE_URL))
    assert check(r, "sip:alice@example.com", "sip:4000@example.com") == ("-8", "-8")
    assert "uri: error while querying database" in r.log_text()


def test_check_fixups() -> None:
    # db_check_to/from need the DB only with the uri table
    ScriptRunner("route { db_check_to(); db_check_from(); }", modules=["uri"])
    with pytest.raises(CfgError, match="no database URL"):
        ScriptRunner('modparam("uri", "use_uri_table", 1)\nroute { db_check_to(); }',
                     modules=["uri"])


# ---------------------------------------------------------------- db_does_uri_exist

EXISTS = 'route { $var(e) = db_does_uri_exist(); xlog("e=$var(e)\\n"); }'


def exists(r: ScriptRunner, ruri: str) -> str:
    r.clear()
    r.request(sip_request("INVITE", ruri))
    [e] = codes(r, "e")
    return e


def test_does_uri_exist_in_subscriber(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, "", EXISTS)
    assert exists(r, "sip:alice@example.com") == "1"
    assert exists(r, "sip:alice@nowhere.net") == "1"  # use_domain=0: user only
    assert exists(r, "sip:zed@example.com") == "-5"
    assert exists(r, "sip:4000@example.com") == "-5"
    assert exists(r, "sip:example.com") == "-5"
    r = runner(uri_db, 'modparam("uri", "use_domain", 1)\n', EXISTS)
    assert exists(r, "sip:alice@other.org") == "1"
    assert exists(r, "sip:bob@other.org") == "-5"
    r = runner(uri_db, "", 'route { $ru = "sip:bob@example.com"; ' + EXISTS[8:])
    assert exists(r, "sip:zed@example.com") == "1"  # the rewritten R-URI counts


def test_does_uri_exist_in_uri_table(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, 'modparam("uri", "use_uri_table", 1)\n', EXISTS)
    assert exists(r, "sip:4000@example.com") == "1"
    assert exists(r, "sip:sales@example.com") == "1"
    assert exists(r, "sip:bob@example.com") == "-5"  # bob is a username, not a uri_user
    r = runner(uri_db, 'modparam("uri", "use_uri_table", 1)\nmodparam("uri", "use_domain", 1)\n',
               EXISTS)
    assert exists(r, "sip:4001@example.com") == "1"
    assert exists(r, "sip:4001@other.org") == "-5"


def test_does_uri_exist_db_failure(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, "", EXISTS)
    st = r.compiled.registry.modules["uri"].state
    st.db.close()
    st.db.use(connect(UNREACHABLE_URL))
    assert exists(r, "sip:alice@example.com") == "-4"  # 1.6's code for a failed query
    assert "uri: error while querying database" in r.log_text()
    st.db.close()
    assert exists(r, "sip:alice@example.com") == "1"


def test_does_uri_exist_needs_db_url() -> None:
    with pytest.raises(CfgError, match="no database URL"):
        ScriptRunner("route { db_does_uri_exist(); }", modules=["uri"])


# ---------------------------------------------------------------- db_get_auth_id

AUTH_ID = """route {
    $var(r) = db_get_auth_id("$hdr(X-Uri)", "$avp(s:au)", "$var(ar)");
    xlog("r=$var(r) au=$avp(s:au) ar=$var(ar)\\n");
}"""


def auth_id(r: ScriptRunner, value: str) -> str:
    r.clear()
    r.rt.script_vars.pop("ar", None)
    r.request(sip_request(headers=f"X-Uri: {value}\r\n"))
    m = re.search(r"r=.*", r.log_text())
    assert m is not None
    return m.group(0)


def test_get_auth_id(uri_db: tuple[str, str]) -> None:
    r = runner(uri_db, 'modparam("uri", "use_uri_table", 1)\nmodparam("uri", "use_domain", 1)\n',
               AUTH_ID)
    assert auth_id(r, "sip:4000@other.org") == "r=1 au=carol ar=other.org"
    assert auth_id(r, "sip:sales@example.com") == "r=1 au=alice ar=example.com"
    assert auth_id(r, "sip:9999@example.com") == "r=-4 au=<null> ar=0"
    assert auth_id(r, "example.com") == "r=-1 au=<null> ar=0"
    r = runner(uri_db, "", AUTH_ID)  # subscriber table, by username only
    assert auth_id(r, "sip:bob@anything") == "r=1 au=bob ar=example.com"
    st = r.compiled.registry.modules["uri"].state
    st.db.close()
    st.db.use(connect(UNREACHABLE_URL))
    assert auth_id(r, "sip:bob@anything") == "r=-8 au=<null> ar=0"


def test_get_auth_id_fixups(uri_db: tuple[str, str]) -> None:
    with pytest.raises(CfgError, match="requires a configured database"):
        ScriptRunner('route { db_get_auth_id("$ru", "$avp(s:a)", "$avp(s:b)"); }',
                     modules=["uri"])
    with pytest.raises(CfgError, match="AVP or SCRIPT VAR"):
        runner(uri_db, "", 'route { db_get_auth_id("$ru", "$avp(s:a)", "$du"); }')


# ---------------------------------------------------------------- start-up


def test_table_version_checked(uri_db: tuple[str, str]) -> None:
    with pytest.raises(DbError, match=r"found 7, expected 2"):
        runner(uri_db, 'modparam("uri", "use_uri_table", 1)\n'
                       'modparam("uri", "db_table", "subscriber")\n', EXISTS)
    with pytest.raises(DbError, match=r"found 2, expected 7"):
        runner(uri_db, 'modparam("uri", "db_table", "uri")\n', EXISTS)
    with pytest.raises(ValueError, match="use_uri_table"):
        ScriptRunner('modparam("uri", "db_url", "")\nmodparam("uri", "use_uri_table", 1)\n'
                     "route { exit; }", modules=["uri"])
    with pytest.raises(DbError):
        ScriptRunner(f'modparam("uri", "db_url", "{UNREACHABLE_URL}")\n{EXISTS}',
                     modules=["db_mysql", "uri"])
