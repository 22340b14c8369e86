"""group: db_is_user_in against a real `grp` table and db_get_user_group over
`re_grp` regexes, on SQLite, MariaDB and PostgreSQL (tests/dbfixtures.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sipserver.core.exports import Registry
from sipserver.core.modload import load_module
from sipserver.db.api import DbError
from sipserver.lang.errors import CfgError
from sipserver.modules import group
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .dbscript import AUTH_PARAMS, AUTH_ROUTE, DRIVERS, UNREACHABLE_URL, authorized, close_all
from .dbscript import request as sip_request
from .dbscript import runner as make_runner

GRP = [  # username, domain, grp
    ("alice", "example.com", "local"),
    ("alice", "example.com", "ld"),
    ("alice", "other.org", "int"),
    ("bob", "example.com", "local"),
]
RE_GRP = [  # reg_exp, group_id: 1.6 tries the last row first
    (r"^sip:alice@", 10),
    (r"@EXAMPLE\.com$", 20),  # REG_ICASE
    (r"^sip:[a-c]", 30),
]


@pytest.fixture(scope="module")
def group_db(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["grp", "re_grp"])
    con = connect(db_url)
    try:
        for row in GRP:
            con.insert("grp", ("username", "domain", "grp"), row)
        for row in RE_GRP:
            con.insert("re_grp", ("reg_exp", "group_id"), row)
    finally:
        con.close()
    yield db_url, DRIVERS[db_engine]


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    close_all()


def runner(db: tuple[str, str], params: str, route: str, auth: bool = False) -> ScriptRunner:
    url, driver = db
    mods = ["sl", driver, "group"]
    if auth:
        mods = ["sl", "signaling", "auth", driver, "group"]
        params = AUTH_PARAMS + params
    return make_runner(f'modparam("group", "db_url", "{url}")\n{params}{route}', mods)


# spec and group from headers: the URI argument is a format, and its value may
# itself be one of the keywords
IS_IN = """
route {
    $var(r) = db_is_user_in("$hdr(X-Spec)", "$hdr(X-Grp)");
    xlog("rc=$var(r)\\n");
}
"""


def rc_of(r: ScriptRunner) -> list[str]:
    return re.findall(r"rc=(-?\d+)", r.log_text())


def ask(r: ScriptRunner, spec: str, grp: str, ruri: str = "sip:alice@example.com",
        from_uri: str = "sip:bob@example.com", to_uri: str = "sip:alice@other.org") -> str:
    r.clear()
    r.request(sip_request("INVITE", ruri, from_uri, to_uri,
                          f"X-Spec: {spec}\r\nX-Grp: {grp}\r\n"))
    [rc] = rc_of(r)
    return rc


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "group.so")
    assert mod.params == {
        "aaa_url": None, "db_url": None, "table": "grp", "user_column": "username",
        "domain_column": "domain", "group_column": "grp", "use_domain": 0, "re_table": None,
        "re_exp_column": "reg_exp", "re_gid_column": "group_id", "multiple_gid": 1,
    }
    names = {(c.name, c.nargs): c.route_types for c in group.exports.cmds}
    assert names[("db_is_user_in", 2)] == 1 | 2 | 8 | 32
    assert names[("db_get_user_group", 2)] == 1 | 2 | 8 | 32
    assert ("aaa_is_user_in", 2) not in names


@pytest.mark.parametrize("name", ["is_user_in", "get_user_group"])
def test_obsolete_names_refuse_startup(name: str) -> None:
    with pytest.raises(CfgError, match=r"obsolete|renamed"):
        ScriptRunner(f'route {{ {name}("From", "x"); }}', modules=["group"])


def test_db_functions_need_db_url() -> None:
    for call in ('db_is_user_in("From", "x")', 'db_get_user_group("From", "$avp(s:g)")'):
        with pytest.raises(CfgError, match="no database url"):
            ScriptRunner(f"route {{ {call}; }}", modules=["group"])


def test_membership_per_uri_spec(group_db: tuple[str, str]) -> None:
    r = runner(group_db, "", IS_IN)
    # R-URI alice@example.com; From bob@example.com; To alice@other.org
    assert ask(r, "Request-URI", "local") == "1"
    assert ask(r, "request-uri", "ld") == "1"  # keywords ignore case
    assert ask(r, "Request-URI", "int") == "1"  # domain not compared (use_domain=0)
    assert ask(r, "Request-URI", "nope") == "-6"
    assert ask(r, "From", "local") == "1"
    assert ask(r, "From", "ld") == "-6"
    assert ask(r, "To", "int") == "1"
    assert ask(r, "sip:bob@example.com", "local") == "1"  # a URI given as text
    assert ask(r, "sip:carol@example.com", "local") == "-6"
    assert ask(r, "sip:example.com", "local") == "-1"  # no user part
    assert ask(r, "not a uri", "local") == "-1"
    assert "failed to get username@domain" in r.log_text()
    # the current (rewritten) R-URI counts
    r2 = runner(group_db, "", 'route { $ru = "sip:bob@x.net"; '
                              'if (db_is_user_in("Request-URI", "local")) xlog("rc=1\\n"); '
                              'else xlog("rc=-1\\n"); }')
    r2.request(sip_request(ruri="sip:zed@example.com"))
    assert rc_of(r2) == ["1"]


def test_use_domain(group_db: tuple[str, str]) -> None:
    r = runner(group_db, 'modparam("group", "use_domain", 1)\n', IS_IN)
    assert ask(r, "Request-URI", "local") == "1"
    assert ask(r, "Request-URI", "int") == "-6"  # alice is in "int" only at other.org
    assert ask(r, "To", "int") == "1"
    assert ask(r, "To", "local") == "-6"
    assert ask(r, "sip:alice@other.org;transport=tcp", "int") == "1"


def test_credentials(group_db: tuple[str, str]) -> None:
    route = ("route {\n" + AUTH_ROUTE +
             '    $var(r) = db_is_user_in("Credentials", "$hdr(X-Grp)");\n'
             '    xlog("rc=$var(r)\\n");\n}\n')
    r = runner(group_db, 'modparam("group", "use_domain", 1)\n', route, auth=True)
    # no credentials accepted yet: the script challenges and stops first
    msg = authorized(r, "INVITE", "sip:carol@example.net", "alice", "other.org")
    for grp, rc in (("int", "1"), ("local", "-6")):
        r.clear()
        r.request(msg.replace(b"Content-Length", f"X-Grp: {grp}\r\nContent-Length".encode()))
        assert rc_of(r) == [rc], r.log_text()
    # Proxy-Authorization credentials count too; realm example.com this time
    msg = authorized(r, "INVITE", "sip:carol@example.net", "alice", "example.com", proxy=True)
    r.request(msg.replace(b"Content-Length", b"X-Grp: ld\r\nContent-Length"))
    assert rc_of(r) == ["1"], r.log_text()


def test_credentials_without_authorization(group_db: tuple[str, str]) -> None:
    r = runner(group_db, "", IS_IN)
    assert ask(r, "Credentials", "local") == "-1"
    assert "no authorized credentials found" in r.log_text()


# ---------------------------------------------------------------- regex groups


GET_GID = """
route {
    $var(r) = db_get_user_group("$hdr(X-Spec)", "$avp(s:gid)");
    xlog("rc=$var(r) top=$avp(s:gid)\\n");
}
"""


def gids(r: ScriptRunner, spec: str) -> tuple[str, list[int | str]]:
    r.clear()
    ctx = r.request(sip_request(headers=f"X-Spec: {spec}\r\n"))
    [rc] = rc_of(r)
    return rc, ctx.avps.get_all("gid")


def test_regex_groups_into_avps(group_db: tuple[str, str]) -> None:
    r = runner(group_db, 'modparam("group", "re_table", "re_grp")\n', GET_GID)
    # all three match; 1.6 tries the last loaded row first and adds each id
    # on top, so the newest AVP value is the first row's id
    assert gids(r, "sip:alice@example.com") == ("3", [10, 20, 30])
    assert "top=10" in r.log_text()
    assert gids(r, "sip:bob@example.com") == ("2", [20, 30])
    assert gids(r, "sip:bob@Example.COM") == ("2", [20, 30])  # case-insensitive
    assert gids(r, "sip:dave@example.org") == ("-1", [])
    assert gids(r, "From") == ("3", [10, 20, 30])  # From is alice@example.com
    assert gids(r, "sip:example.com") == ("-1", [])  # no user


def test_regex_first_match_only(group_db: tuple[str, str]) -> None:
    r = runner(group_db, 'modparam("group", "re_table", "re_grp")\n'
                         'modparam("group", "multiple_gid", 0)\n', GET_GID)
    assert gids(r, "sip:alice@example.com") == ("1", [30])
    assert gids(r, "sip:dave@example.com") == ("1", [20])


def test_regex_needs_re_table_and_avp(group_db: tuple[str, str]) -> None:
    r = runner(group_db, "", GET_GID)  # no re_table: nothing loaded
    assert gids(r, "sip:alice@example.com") == ("-1", [])
    with pytest.raises(CfgError, match="bad AVP spec"):
        runner(group_db, "", 'route { db_get_user_group("From", "$var(x)"); }')


def test_bad_regex_row_fails_startup(group_db: tuple[str, str]) -> None:
    url, _ = group_db
    con = connect(url)
    con.insert("re_grp", ("reg_exp", "group_id"), ("^sip:(unclosed", 99))
    try:
        with pytest.raises(ValueError, match="bad re"):
            runner(group_db, 'modparam("group", "re_table", "re_grp")\n', GET_GID)
    finally:
        con.delete("re_grp", ("group_id",), None, (99,))
        con.close()


# ---------------------------------------------------------------- versions and failures


def test_table_versions_checked_at_startup(group_db: tuple[str, str]) -> None:
    url, _ = group_db
    with pytest.raises(DbError, match="version"):
        runner(group_db, 'modparam("group", "table", "grp_copy")\n', IS_IN)
    with pytest.raises(DbError, match="re_grp_copy"):
        runner(group_db, 'modparam("group", "re_table", "re_grp_copy")\n', GET_GID)
    con = connect(url)
    try:
        con.update("version", ("table_name",), None, ("re_grp",), ("table_version",), (1,))
        with pytest.raises(DbError, match=r"found 1, expected 2"):
            runner(group_db, 'modparam("group", "re_table", "re_grp")\n', GET_GID)
    finally:
        con.update("version", ("table_name",), None, ("re_grp",), ("table_version",), (2,))
        con.close()


def test_db_unreachable_gives_error_code(group_db: tuple[str, str]) -> None:
    r = runner(group_db, "", IS_IN)
    st = r.compiled.registry.modules["group"].state
    st.db.close()
    st.db.use(connect(UNREACHABLE_URL))  # the server went away
    assert ask(r, "Request-URI", "local") == "-5"
    assert "group: failed to query database" in r.log_text()
    st.db.close()  # the next use reconnects to the real DB
    assert ask(r, "Request-URI", "local") == "1"


def test_unreachable_db_at_startup_is_an_error(group_db: tuple[str, str]) -> None:
    with pytest.raises(DbError):
        ScriptRunner(f'modparam("group", "db_url", "{UNREACHABLE_URL}")\n{IS_IN}',
                     modules=["db_mysql", "group"])
