"""domain: local-domain checks against a real `domain` table on SQLite,
MariaDB and PostgreSQL, in db_mode 0 (ask the DB) and 1 (shared-memory
cache, MI domain_reload / domain_dump), and `myself` for local domains."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from sipserver.core.exports import Registry
from sipserver.core.modload import load_module
from sipserver.db.api import DbError
from sipserver.mi.registry import mi_registry
from sipserver.mi.text import format_reply
from sipserver.modules import domain
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .dbscript import DRIVERS, UNREACHABLE_URL, close_all
from .dbscript import request as sip_request
from .dbscript import runner as make_runner

# core_case_hash(d, 128) of 1.6, computed with its hash_func.h compiled by gcc:
# other.org 51, lab.test 92, example.com 105, pbx.local 119, x 119,
# voip.example.org 85
DOMAINS = ["example.com", "other.org", "pbx.local", "x", "lab.test"]


@pytest.fixture(scope="module")
def domain_db(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["domain"])
    con = connect(db_url)
    try:
        for d in DOMAINS:
            con.insert("domain", ("domain",), (d,))
    finally:
        con.close()
    yield db_url, DRIVERS[db_engine]


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    close_all()


CHECKS = """
route {
    $var(u) = is_uri_host_local();
    $var(f) = is_from_local();
    $var(d) = is_domain_local("$hdr(X-D)");
    if (uri == myself) $var(m) = 1; else $var(m) = -1;
    xlog("u=$var(u) f=$var(f) d=$var(d) m=$var(m)\\n");
}
"""


def runner(db: tuple[str, str], params: str = "", route: str = CHECKS) -> ScriptRunner:
    url, driver = db
    return make_runner(f'modparam("domain", "db_url", "{url}")\n{params}{route}',
                       ["sl", driver, "domain"])


def ask(r: ScriptRunner, ruri: str, from_uri: str = "sip:a@nowhere.net", d: str = "") -> str:
    r.clear()
    hdr = f"X-D: {d}\r\n" if d else ""
    r.request(sip_request("INVITE", ruri, from_uri, headers=hdr))
    m = re.findall(r"u=.*", r.log_text())
    assert len(m) == 1, r.log_text()
    return m[0]


def mi(r: ScriptRunner, cmd: str) -> bytes:
    reply = mi_registry(r.rt).run(cmd)
    assert reply is not None
    return format_reply(reply)


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "domain.so")
    assert mod.params == {"db_url": "mysql://opensipsro:opensipsro@localhost/opensips",
                          "db_mode": 0, "domain_table": "domain", "domain_col": "domain"}
    masks = {(c.name, c.nargs): c.route_types for c in domain.exports.cmds}
    assert masks == {("is_from_local", 0): 1 | 2 | 8 | 32, ("is_uri_host_local", 0): 1 | 2 | 8 | 32,
                     ("is_domain_local", 1): 1 | 2 | 8 | 32 | 64 | 128}
    assert [(m.name, m.no_input) for m in domain.exports.mi_cmds] == [
        ("domain_reload", True), ("domain_dump", True)]


@pytest.mark.parametrize("mode", [0, 1])
def test_lookups(domain_db: tuple[str, str], mode: int) -> None:
    r = runner(domain_db, f'modparam("domain", "db_mode", {mode})\n')
    assert ask(r, "sip:bob@example.com", "sip:a@other.org", "lab.test") == "u=1 f=1 d=1 m=1"
    assert ask(r, "sip:bob@example.org", "sip:a@nowhere.net", "nowhere") == \
        "u=-1 f=-1 d=-1 m=-1"
    assert ask(r, "sip:bob@pbx.local:5080;transport=tcp") == "u=1 f=-1 d=-1 m=1"
    # an empty or null domain is not local
    assert ask(r, "sip:x") == "u=1 f=-1 d=-1 m=1"
    r.clear()
    r.request(b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKq\r\n"
              b"From: garbage\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
              b"Content-Length: 0\r\n\r\n")
    assert "f=-2" in r.log_text()  # the From URI cannot be parsed


def test_case_in_cache_mode(domain_db: tuple[str, str]) -> None:
    r = runner(domain_db, 'modparam("domain", "db_mode", 1)\n')
    assert ask(r, "sip:bob@EXAMPLE.com", "sip:a@Other.Org", "LAB.test") == "u=1 f=1 d=1 m=1"


def test_db_mode_0_sees_db_changes_at_once(domain_db: tuple[str, str]) -> None:
    url, _ = domain_db
    r = runner(domain_db)
    assert ask(r, "sip:bob@new.example") == "u=-1 f=-1 d=-1 m=-1"
    con = connect(url)
    try:
        con.insert("domain", ("domain",), ("new.example",))
        assert ask(r, "sip:bob@new.example") == "u=1 f=-1 d=-1 m=1"
    finally:
        con.delete("domain", ("domain",), None, ("new.example",))
        con.close()
    # the MI commands need the cache
    assert mi(r, "domain_reload") == b"500 command not activated\n\n"
    assert mi(r, "domain_dump") == b"500 command not activated\n\n"


DUMP = (b"200 OK\n"
        b"other.org\n"  # bucket 51
        b"lab.test\n"  # 92
        b"example.com\n"  # 105
        b"x\n"  # 119, loaded after pbx.local: first
        b"pbx.local\n"
        b"\n")


def test_mi_dump_and_reload(domain_db: tuple[str, str]) -> None:
    url, _ = domain_db
    r = runner(domain_db, 'modparam("domain", "db_mode", 1)\n')
    assert mi(r, "domain_dump") == DUMP
    con = connect(url)
    try:
        con.insert("domain", ("domain",), ("voip.example.org",))
        # cached: the new row is not seen until domain_reload
        assert ask(r, "sip:b@voip.example.org") == "u=-1 f=-1 d=-1 m=-1"
        assert mi(r, "domain_reload") == b"200 OK\n\n"
        assert ask(r, "sip:b@voip.example.org") == "u=1 f=-1 d=-1 m=1"
        assert mi(r, "domain_dump") == DUMP.replace(b"lab.test\n",
                                                    b"voip.example.org\nlab.test\n")
    finally:
        con.delete("domain", ("domain",), None, ("voip.example.org",))
        con.close()
    assert mi(r, "domain_reload") == b"200 OK\n\n"
    assert mi(r, "domain_dump") == DUMP


def test_reload_in_another_process_is_seen(domain_db: tuple[str, str]) -> None:
    """The cache is in shared memory: the MI process reloads, a worker sees it."""
    url, _ = domain_db
    r = runner(domain_db, 'modparam("domain", "db_mode", 1)\n')
    assert ask(r, "sip:b@fork.example") == "u=-1 f=-1 d=-1 m=-1"
    con = connect(url)
    try:
        con.insert("domain", ("domain",), ("fork.example",))
        pid = os.fork()
        if pid == 0:  # the "MI process": its own DB connection, same shared memory
            code = 1
            try:
                reply = mi_registry(r.rt).run("domain_reload")
                code = 0 if reply is not None and reply.code == 200 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert ask(r, "sip:b@fork.example") == "u=1 f=-1 d=-1 m=1"
    finally:
        con.delete("domain", ("domain",), None, ("fork.example",))
        con.close()


def test_reload_failure_keeps_the_old_list(domain_db: tuple[str, str]) -> None:
    r = runner(domain_db, 'modparam("domain", "db_mode", 1)\n')
    st = r.compiled.registry.modules["domain"].state
    st.db.use(connect(UNREACHABLE_URL))
    assert mi(r, "domain_reload") == b"500 Domain table reload failed\n\n"
    assert "domain: error while querying database" in r.log_text()
    assert mi(r, "domain_dump") == DUMP
    assert ask(r, "sip:b@example.com") == "u=1 f=-1 d=-1 m=1"


def test_db_unreachable_gives_error_code(domain_db: tuple[str, str]) -> None:
    # db_mode 0 checks nothing at start-up: the failure shows on use
    r = make_runner(f'modparam("domain", "db_url", "{UNREACHABLE_URL}")\n{CHECKS}',
                    ["sl", "db_mysql", "domain"])
    assert ask(r, "sip:b@example.com", "sip:a@other.org", "x") == "u=-3 f=-3 d=-3 m=-1"
    assert "domain: error while querying database" in r.log_text()


def test_cache_mode_checks_version_and_db_at_startup(domain_db: tuple[str, str]) -> None:
    url, _ = domain_db
    with pytest.raises(DbError):
        ScriptRunner(f'modparam("domain", "db_url", "{UNREACHABLE_URL}")\n'
                     'modparam("domain", "db_mode", 1)\nroute { exit; }',
                     modules=["db_mysql", "domain"])
    con = connect(url)
    try:
        con.update("version", ("table_name",), None, ("domain",), ("table_version",), (1,))
        with pytest.raises(DbError, match=r"found 1, expected 2"):
            runner(domain_db, 'modparam("domain", "db_mode", 1)\n')
        runner(domain_db)  # db_mode 0 does not check
    finally:
        con.update("version", ("table_name",), None, ("domain",), ("table_version",), (2,))
        con.close()


def test_api_for_other_modules(domain_db: tuple[str, str]) -> None:
    r = runner(domain_db, 'modparam("domain", "db_mode", 1)\n')
    mod = r.compiled.registry.modules["domain"]
    api = mod.exports.api(mod)
    assert api.is_domain_local("Example.com") == 1
    assert api.is_domain_local("example.net") == -1


def test_dump_order_matches_1_6_hash() -> None:
    # values from 1.6's core_case_hash compiled with gcc (signed chars)
    for name, bucket in (("example.com", 105), ("Example.COM", 105), ("other.org", 51),
                         ("sip.example.net", 80), ("a.b", 55), ("x", 119),
                         ("dömain.de", 26)):
        assert domain.core_case_hash(name.encode(), 128) == bucket, name
