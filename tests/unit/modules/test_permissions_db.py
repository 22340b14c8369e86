"""permissions with a real `address` table on SQLite, MariaDB and PostgreSQL
(tests/dbfixtures.py): check_address with subnets, ports, protocols and
patterns, context_info into a PV, check_source_address, get_source_group,
the MI dumps in 1.6's format, address_reload seen by a forked process, a
failed reload keeping the table in use, and the version check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sipserver.db.api import DbConnection, DbError
from sipserver.mi.tree import MIReply
from sipserver.modules.permissions.mi import (
    mi_address_dump,
    mi_address_reload,
    mi_subnet_dump,
)
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .test_permissions import fork_and_check

DRIVERS = {"sqlite": "db_sqlite", "mysql": "db_mysql", "postgres": "db_postgres"}
COLUMNS = ("grp", "ip", "mask", "port", "proto", "pattern", "context_info")
ROWS = [
    (1, "10.0.0.1", 32, 0, "any", None, "gw-any"),
    (1, "10.0.0.2", 32, 5060, "udp", None, "gw-udp"),
    (2, "10.0.0.2", 32, 0, "tcp", "sip:*@example.com", "gw-tcp-pattern"),
    (2, "192.168.0.0", 16, 0, "any", None, "lan"),
    (3, "172.16.5.9", 12, 5080, "tls", None, None),
    (0, "203.0.113.7", 32, 0, "any", "", "any-group"),
    (4, "198.51.100.1", 32, 0, "none", None, "never"),
    (4, "gw.example.com", 32, 0, "any", None, "not-an-ip"),
]

ROUTES = """
route[ca4] {
    $var(r) = check_address("$var(g)", "$var(ip)", "$var(port)", "$var(proto)");
}
route[ca5] {
    $avp(s:info) = "unset";
    $var(r) = check_address("$var(g)", "$var(ip)", "$var(port)", "$var(proto)", "$avp(s:info)");
}
route[ca6] {
    $avp(s:info) = "unset";
    $var(r) = check_address("$var(g)", "$var(ip)", "$var(port)", "$var(proto)", "$avp(s:info)",
                            "$var(pattern)");
}
route[src1] { $var(r) = check_source_address("$var(g)"); }
route[src2] {
    $avp(s:info) = "unset";
    $var(r) = check_source_address("$var(g)", "$avp(s:info)");
}
route[group] { $var(r) = get_source_group("$var(found)"); }
route { route(ca4); }
"""

OPTIONS = (b"OPTIONS sip:p@example.com SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKopt1\r\n"
           b"Max-Forwards: 70\r\n"
           b"From: <sip:a@example.com>;tag=1\r\n"
           b"To: <sip:p@example.com>\r\n"
           b"Call-ID: perm-1@x\r\n"
           b"CSeq: 1 OPTIONS\r\n"
           b"Content-Length: 0\r\n\r\n")

_RUNNERS: list[ScriptRunner] = []


def fill(con: DbConnection, rows: list[tuple]) -> None:
    con.delete("address")
    for row in rows:
        con.insert("address", COLUMNS, row)


@pytest.fixture(scope="module")
def address_db(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["address"])
    yield db_url, DRIVERS[db_engine]


@pytest.fixture
def db(address_db: tuple[str, str]) -> Iterator[tuple[str, str, DbConnection]]:
    """The base rows for each test; connections and runners closed afterwards."""
    url, driver = address_db
    con = connect(url)
    fill(con, ROWS)
    try:
        yield url, driver, con
    finally:
        while _RUNNERS:
            for mod in _RUNNERS.pop().compiled.registry.modules.values():
                if mod.exports.destroy is not None and mod.rt is not None:
                    mod.exports.destroy(mod)
        con.close()


def runner(db: tuple[str, str, Any], params: str = "") -> ScriptRunner:
    url, driver, _ = db
    r = ScriptRunner(f'modparam("permissions", "db_url", "{url}")\n{params}{ROUTES}',
                     modules=[driver, "permissions"])
    _RUNNERS.append(r)
    return r


def run(r: ScriptRunner, route: str, src: tuple[str, int] = ("127.0.0.2", 5070),
        transport: str = "udp", **vars: Any) -> tuple[int, Any]:
    """Run route[route] with $var values; ($var(r), $avp(s:info))."""
    r.rt.script_vars.clear()
    r.rt.script_vars.update(vars)
    ctx = r.context(OPTIONS, src=src, proto=transport)
    r.route(route, ctx)
    return r.rt.script_vars["r"], ctx.avps.get("info")


def ca(r: ScriptRunner, g: Any, ip: str, port: str = "0", proto: str = "any",
       pattern: str | None = None) -> tuple[int, Any]:
    route = "ca5" if pattern is None else "ca6"
    kw = {} if pattern is None else {"pattern": pattern}
    return run(r, route, g=g, ip=ip, port=port, proto=proto, **kw)


def lines(rep: MIReply) -> list[str]:
    assert (rep.code, rep.reason) == (200, "OK")
    return [k.value for k in rep.kids]


def module(r: ScriptRunner) -> Any:
    return r.compiled.registry.modules["permissions"]


# ---------------------------------------------------------------- check_address


def test_check_address_hash_rows(db: Any) -> None:
    r = runner(db)
    assert ca(r, 1, "10.0.0.1") == (1, "gw-any")
    assert ca(r, 1, "10.0.0.1", "9999", "tcp") == (1, "gw-any")  # port 0 / any in the row
    assert ca(r, 2, "10.0.0.1") == (-1, "unset")                 # wrong group
    assert ca(r, "1", "10.0.0.1", "", "") == (1, "gw-any")       # "" port/proto: any
    assert ca(r, 0, "10.0.0.2", "5060", "udp") == (1, "gw-udp")  # group 0: any group
    assert ca(r, 1, "10.0.0.2", "5061", "udp") == (-1, "unset")
    assert ca(r, 1, "10.0.0.2", "5060", "tcp") == (-1, "unset")
    assert ca(r, 1, "10.0.0.2", "5060", "U") == (1, "gw-udp")    # 1.6 compares a prefix
    assert ca(r, 7, "203.0.113.7", "1", "tls") == (1, "any-group")  # group 0 in the row
    assert ca(r, 4, "198.51.100.1") == (-1, "unset")             # proto "none": never
    assert run(r, "ca4", g=1, ip="10.0.0.1", port="0", proto="any")[0] == 1


def test_check_address_patterns(db: Any) -> None:
    r = runner(db)
    assert ca(r, 2, "10.0.0.2", "0", "tcp", "sip:bob@example.com") == (1, "gw-tcp-pattern")
    assert ca(r, 2, "10.0.0.2", "0", "tcp", "sip:bob@example.org") == (-1, "unset")
    assert ca(r, 2, "10.0.0.2", "0", "tcp") == (1, "gw-tcp-pattern")  # no pattern given
    assert ca(r, 2, "10.0.0.2", "0", "", "") == (-1, "unset")  # "" matches no "sip:*"
    assert ca(r, 1, "10.0.0.1", "0", "any", "whatever") == (1, "gw-any")  # row without one
    assert ca(r, 0, "203.0.113.7", "0", "any", "x") == (1, "any-group")  # "" in the row: none


def test_check_address_subnets(db: Any) -> None:
    r = runner(db)
    assert ca(r, 2, "192.168.44.5") == (1, "lan")
    assert ca(r, 0, "192.168.255.255", "5", "sctp") == (1, "lan")
    assert ca(r, 1, "192.168.44.5") == (-1, "unset")
    assert ca(r, 2, "192.169.0.1") == (-1, "unset")
    assert ca(r, 3, "172.31.255.1", "5080", "tls") == (1, "")  # NULL context_info: empty
    assert ca(r, 3, "172.31.255.1", "5081", "tls") == (-1, "unset")
    assert ca(r, 3, "172.31.255.1", "5080", "udp") == (-1, "unset")
    assert ca(r, 3, "172.32.0.1", "5080", "tls") == (-1, "unset")
    assert ca(r, 2, "10.0.0.2", "5060", "tcp") == (1, "gw-tcp-pattern")


def test_check_address_bad_arguments(db: Any) -> None:
    r = runner(db)
    for args in ((-1, "10.0.0.1", "0", "any"), ("x", "10.0.0.1", "0", "any"),
                 (1, "", "0", "any"), (1, "10.0.0", "0", "any"), (1, "::1", "0", "any"),
                 (1, "10.0.0.1", "50x", "any"), (1, "10.0.0.1", "0", "ws")):
        assert ca(r, *args) == (-1, "unset"), args
    text = r.log_text()
    assert "invalid group value" in text and "unknown protocol ws" in text
    assert "invalid port value" in text and "source ip is not set" in text


def test_check_source_address_and_group(db: Any) -> None:
    r = runner(db)
    assert run(r, "src2", src=("10.0.0.2", 5060), g=1) == (1, "gw-udp")
    assert run(r, "src2", src=("10.0.0.2", 5070), g=1) == (-1, "unset")
    assert run(r, "src2", src=("10.0.0.2", 5070), transport="tcp", g=2) == (1, "gw-tcp-pattern")
    assert run(r, "src2", src=("192.168.1.1", 1), transport="tcp", g="2") == (1, "lan")
    assert run(r, "src1", src=("127.0.0.2", 5070), g=0)[0] == -1
    assert run(r, "src1", src=("172.20.0.1", 5080), transport="udp", g=3)[0] == -1  # tls row
    for src, group in ((("10.0.0.2", 5060), 2), (("10.0.0.2", 9), 2), (("10.0.0.1", 9), 1),
                       (("192.168.3.3", 1), 2), (("172.16.0.1", 5080), 3),
                       (("172.16.0.1", 5060), -1), (("8.8.8.8", 5060), -1)):
        r.rt.script_vars.clear()
        ctx = r.context(OPTIONS, src=src)
        r.route("group", ctx)
        # newest row first in the hash: 10.0.0.2's group-2 row, whatever the proto
        assert (r.rt.script_vars["r"], r.rt.script_vars["found"]) == (1, group), src


# ---------------------------------------------------------------- MI


def test_mi_dumps_in_1_6_format(db: Any) -> None:
    r = runner(db)
    mod = module(r)
    # buckets from 1.6's core_hash: 10.0.0.1 -> 23, 10.0.0.2 -> 24, 203.0.113.7 -> 93;
    # proto numbers 0 any, 1 udp, 2 tcp
    assert lines(mi_address_dump([], r.rt, mod)) == [
        "  23 <10.0.0.1,1, 0, 0, NULL, gw-any>",
        "  24 <10.0.0.2,2, 0, 2, sip:*@example.com, gw-tcp-pattern>",
        "  24 <10.0.0.2,1, 5060, 1, NULL, gw-udp>",
        "  93 <203.0.113.7,0, 0, 0, NULL, any-group>",
    ]
    assert lines(mi_subnet_dump([], r.rt, mod)) == [
        "   0 <2, 192.168.0.0, 255.255.0.0, 0>",
        "   1 <3, 172.16.0.0, 255.240.0.0, 5080>",
    ]


def test_reload_is_seen_by_a_forked_process(db: Any) -> None:
    r = runner(db)
    _, _, con = db
    mod = module(r)

    def change() -> None:  # in the MI process: the DB changes, then address_reload
        con.insert("address", COLUMNS, (5, "10.1.1.0", 24, 0, "any", None, "new-net"))
        con.delete("address", ("ip",), None, ("10.0.0.1",))
        assert ca(r, 5, "10.1.1.1") == (-1, "unset")  # not before the reload
        rep = mi_address_reload([], r.rt, mod)
        assert (rep.code, rep.reason) == (200, "OK")

    # a worker checks 10.1.1.0/24 and 10.0.0.1 before and after the reload
    out = fork_and_check(lambda: (ca(r, 5, "10.1.1.1"), ca(r, 1, "10.0.0.1")), change)
    assert out == ("[((-1, 'unset'), (1, 'gw-any')), "
                   "((1, 'new-net'), (-1, 'unset'))]")
    assert ca(r, 5, "10.1.1.1") == (1, "new-net")
    assert "   2 <5, 10.1.1.0, 255.255.255.0, 0>" in lines(mi_subnet_dump([], r.rt, mod))


def test_failed_reload_keeps_the_table_in_use(db: Any) -> None:
    r = runner(db)
    _, _, con = db
    mod = module(r)
    before = lines(mi_address_dump([], r.rt, mod))
    # a row 1.6 refuses (mask 33) fails the whole reload
    con.insert("address", COLUMNS, (1, "10.9.9.9", 33, 0, "any", None, "bad-mask"))
    con.delete("address", ("ip",), None, ("10.0.0.1",))
    rep = mi_address_reload([], r.rt, mod)
    assert (rep.code, rep.reason) == (400, "Trusted table reload failed")
    assert "invalid mask column type on row" in r.log_text()
    assert ca(r, 1, "10.0.0.1") == (1, "gw-any")
    assert lines(mi_address_dump([], r.rt, mod)) == before
    # the table is gone: a DB error, same answer, same table
    con.delete("address", ("mask",), None, (33,))
    con.raw_query("ALTER TABLE address RENAME TO address_away")
    try:
        rep = mi_address_reload([], r.rt, mod)
        assert (rep.code, rep.reason) == (400, "Trusted table reload failed")
        assert "failed to query database" in r.log_text()
        assert ca(r, 1, "10.0.0.1") == (1, "gw-any")
    finally:
        con.raw_query("ALTER TABLE address_away RENAME TO address")
    # and once the DB is fine again the next reload works
    assert (mi_address_reload([], r.rt, mod).code, ca(r, 1, "10.0.0.1")) == (200, (-1, "unset"))


def test_table_in_the_servers_shared_memory(db: Any) -> None:
    url, driver, _ = db
    r = ScriptRunner(f'modparam("permissions", "db_url", "{url}")\n{ROUTES}',
                     modules=[driver, "permissions"], stats=True)
    _RUNNERS.append(r)
    st = module(r).state
    assert st.store.seg is r.rt.shm
    used = r.rt.shm.used
    for _ in range(3):
        assert mi_address_reload([], r.rt, module(r)).code == 200
    assert r.rt.shm.used == used  # every old table given back
    assert ca(r, 2, "192.168.1.1") == (1, "lan")


# ---------------------------------------------------------------- start-up


def test_version_and_column_names_are_checked_at_startup(db: Any) -> None:
    _, _, con = db
    con.update("version", ("table_name",), None, ("address",), ("table_version",), (4,))
    try:
        with pytest.raises(DbError, match="invalid table version for address"):
            runner(db)
    finally:
        con.update("version", ("table_name",), None, ("address",), ("table_version",), (5,))
    with pytest.raises(ValueError, match="failed to query database"):
        runner(db, 'modparam("permissions", "from_col", "no_such_column")\n')


def test_custom_column_names(db: Any) -> None:
    # the parameters name the columns read; here two are swapped on purpose
    r = runner(db, 'modparam("permissions", "info_col", "pattern")\n'
                   'modparam("permissions", "from_col", "context_info")\n')
    assert ca(r, 2, "10.0.0.2", "0", "tcp") == (1, "sip:*@example.com")
    assert ca(r, 2, "10.0.0.2", "0", "tcp", "gw-tcp-pattern") == (1, "sip:*@example.com")
    assert ca(r, 2, "10.0.0.2", "0", "tcp", "other") == (-1, "unset")
