"""One behavioural suite for db_sqlite, db_mysql and db_postgres on real servers.

Every test runs once per engine (the `db_url` fixture of tests/dbfixtures.py
gives each engine a fresh database for this module).
"""

from __future__ import annotations

import datetime
import socket
import time

import pytest

from sipserver.db import schema
from sipserver.db.api import (
    CAP_INSERT_UPDATE,
    CAP_LAST_INSERTED_ID,
    CAP_REPLACE,
    DbConnection,
    DbError,
    DbGoneError,
)
from tests.dbfixtures import connect, create_schema, kill_session, server_url

# a table with one nullable column of every value type, made by our DDL generator
TYPED = schema.Table("typed", None, (
    schema.Column("id", "id"),
    schema.Column("k", "string", 64, ""),
    schema.Column("i", "int", null=True),
    schema.Column("f", "double", null=True),
    schema.Column("s", "string", 255, null=True),
    schema.Column("b", "blob", null=True),
    schema.Column("d", "datetime", null=True),
), (schema.Index("k_idx", ("k",), unique=True),))


@pytest.fixture(scope="module")
def con(db_url: str, db_engine: str):
    create_schema(db_url, ["location", "subscriber"])
    c = connect(db_url)
    for stmt in schema.ddl(db_engine, TYPED):
        c.raw_query(stmt)
    yield c
    c.close()


@pytest.fixture
def typed(con: DbConnection) -> DbConnection:
    con.delete("typed")
    return con


def _fill(con: DbConnection) -> None:
    for k, i, s in [("a", 1, "x"), ("b", 2, None), ("c", 3, "x"), ("d", None, "y")]:
        con.insert("typed", ["k", "i", "s"], [k, i, s])


def test_query_keys_ops_columns_order(typed: DbConnection) -> None:
    _fill(typed)
    assert typed.query("typed", ["s"], None, ["x"], ["k"], "k").rows == [("a",), ("c",)]
    assert typed.query("typed", ["i"], [">="], [2], ["k", "i"], "i").rows == [("b", 2), ("c", 3)]
    assert typed.query("typed", ["i", "s"], ["<", "="], [3, "x"], ["k"]).rows == [("a",)]
    assert typed.query("typed", ["k"], ["!="], ["a"], ["k"], "k").rows == \
        [("b",), ("c",), ("d",)]
    assert typed.query("typed", ["k"], ["<>"], ["a"], ["k"], "k").rows == \
        [("b",), ("c",), ("d",)]
    assert typed.query("typed", ["i"], ["<="], [1], ["k"]).rows == [("a",)]
    res = typed.query("typed", columns=["k", "i"], order="k")
    assert res.columns == ("k", "i")
    assert [r[0] for r in res] == ["a", "b", "c", "d"]
    assert len(typed.query("typed")) == 4
    full = typed.query("typed", ["k"], None, ["a"])
    assert full.columns == TYPED.column_names
    assert full.dicts()[0]["s"] == "x"


def test_null_matching(typed: DbConnection) -> None:
    _fill(typed)
    assert typed.query("typed", ["s"], None, [None], ["k"]).rows == [("b",)]
    assert typed.query("typed", ["i"], ["="], [None], ["k"]).rows == [("d",)]
    assert typed.query("typed", ["s"], ["!="], [None], ["k"], "k").rows == \
        [("a",), ("c",), ("d",)]
    assert typed.query("typed", ["i"], [">"], [None], ["k"]).rows == []
    assert typed.update("typed", ["s"], None, [None], ["s"], ["z"]) == 1
    assert typed.query("typed", ["k"], None, ["b"], ["s"]).rows == [("z",)]


def test_typed_values_round_trip(typed: DbConnection) -> None:
    blob = bytes(range(256)) + b"\x00end"
    when = datetime.datetime(2024, 2, 29, 23, 59, 58)
    row = ["r", -42, 3.25, "h\u00e9llo \u2603 'q' \"dq\" \\ %s ?", blob, when]
    typed.insert("typed", ["k", "i", "f", "s", "b", "d"], row)
    got = typed.query("typed", ["k"], None, ["r"], ["k", "i", "f", "s", "b", "d"]).rows
    assert got == [tuple(row)]
    _k, i, f, s, b, d = got[0]
    assert type(i) is int and type(f) is float and type(s) is str
    assert type(b) is bytes and type(d) is datetime.datetime
    typed.insert("typed", ["k", "i", "f", "s", "b", "d"], ["n", None, None, None, None, None])
    assert typed.query("typed", ["k"], None, ["n"], ["i", "f", "s", "b", "d"]).rows == \
        [(None,) * 5]
    typed.update("typed", ["k"], None, ["n"], ["f", "d"], [1e300, when.replace(year=2000)])
    assert typed.query("typed", ["d"], ["<"], [when], ["k", "f"]).rows == [("n", 1e300)]
    for edge in (2**31 - 1, -(2**31), 0, True):
        typed.raw_query("UPDATE typed SET i=? WHERE k=?", [edge, "n"])
        assert typed.query("typed", ["k"], None, ["n"], ["i"]).rows == [(edge,)]


def test_datetime_is_whole_seconds(typed: DbConnection) -> None:
    typed.insert("typed", ["k", "d"], ["t", datetime.datetime(2020, 1, 1, 10, 0, 0, 999999)])
    assert typed.query("typed", ["k"], None, ["t"], ["d"]).rows == \
        [(datetime.datetime(2020, 1, 1, 10, 0, 0),)]


def test_insert_update_delete_counts(typed: DbConnection) -> None:
    _fill(typed)
    assert typed.update("typed", ["s"], None, ["x"], ["f"], [1.5]) == 2
    # rows matched count even when the value does not change
    assert typed.update("typed", ["s"], None, ["x"], ["f"], [1.5]) == 2
    assert typed.update("typed", ["k"], None, ["nope"], ["f"], [1.0]) == 0
    assert typed.delete("typed", ["i"], [">"], [1]) == 2
    assert typed.delete("typed", ["k"], None, ["zzz"]) == 0
    assert typed.delete("typed") == 2
    assert typed.query("typed").rows == []


@pytest.mark.parametrize("bad", [2**70, {"a": 1}, object()])
def test_unsupported_values_are_errors(typed: DbConnection, bad: object) -> None:
    with pytest.raises(DbError) as e:
        typed.insert("typed", ["k", "i"], ["bad", bad])
    assert not isinstance(e.value, DbGoneError)
    assert typed.query("typed", ["k"], None, ["bad"]).rows == []


def test_unique_key_violation_is_an_error(typed: DbConnection) -> None:
    typed.insert("typed", ["k"], ["dup"])
    with pytest.raises(DbError) as e:
        typed.insert("typed", ["k"], ["dup"])
    assert not isinstance(e.value, DbGoneError)
    assert typed.query("typed", ["k"], None, ["dup"], ["k"]).rows == [("dup",)]  # still usable


def test_replace(typed: DbConnection, db_engine: str) -> None:
    typed.insert("typed", ["k", "i", "s"], ["r", 1, "old"])
    if not typed.caps & CAP_REPLACE:
        assert db_engine == "postgres"
        with pytest.raises(DbError, match="not supported by db_postgres"):
            typed.replace("typed", ["k", "i"], ["r", 2])
        return
    typed.replace("typed", ["k", "i"], ["r", 2])
    assert typed.query("typed", ["k"], None, ["r"], ["id"]).rows == [(typed.last_inserted_id(),)]
    typed.replace("typed", ["k", "i"], ["r2", 3])
    # REPLACE deletes and re-inserts: the columns not given are back to their defaults
    assert typed.query("typed", columns=["k", "i", "s"], order="k").rows == \
        [("r", 2, None), ("r2", 3, None)]


def test_insert_update(typed: DbConnection, db_engine: str) -> None:
    typed.insert("typed", ["k", "i", "s"], ["u", 1, "keep"])
    if not typed.caps & CAP_INSERT_UPDATE:
        assert db_engine == "postgres"
        with pytest.raises(DbError, match="not supported by db_postgres"):
            typed.insert_update("typed", ["k", "i"], ["u", 2])
        return
    typed.insert_update("typed", ["k", "i"], ["u", 2])
    typed.insert_update("typed", ["k", "i"], ["u2", 5])
    assert typed.query("typed", columns=["k", "i", "s"], order="k").rows == \
        [("u", 2, "keep"), ("u2", 5, None)]


def test_last_inserted_id(typed: DbConnection, db_engine: str) -> None:
    if not typed.caps & CAP_LAST_INSERTED_ID:
        assert db_engine == "postgres"
        typed.insert("typed", ["k"], ["li"])
        with pytest.raises(DbError, match="not supported by db_postgres"):
            typed.last_inserted_id()
        return
    typed.insert("typed", ["k"], ["li1"])
    first = typed.last_inserted_id()
    typed.insert("typed", ["k"], ["li2"])
    second = typed.last_inserted_id()
    assert second > first > 0
    assert typed.query("typed", ["id"], None, [second], ["k"]).rows == [("li2",)]


def test_raw_query_with_params(typed: DbConnection) -> None:
    _fill(typed)
    res = typed.raw_query("SELECT k, i FROM typed WHERE i > ? AND s = ? ORDER BY k", [1, "x"])
    assert res is not None and res.rows == [("c", 3)]
    res = typed.raw_query("SELECT k FROM typed WHERE s = '?' OR k = ? ORDER BY k", ["a"])
    assert res.rows == [("a",)]
    assert typed.raw_query("SELECT COUNT(*) FROM typed WHERE k LIKE 'a%'").rows == [(1,)]
    assert typed.raw_query("UPDATE typed SET s=? WHERE k=?", ["w", "a"]) is None
    with pytest.raises(DbError, match="placeholder"):
        typed.raw_query("SELECT ? FROM typed", [])


EVIL = [
    "x'); DROP TABLE typed; --",
    "Robert'; DELETE FROM typed WHERE '1'='1",
    "back\\slash\\' and \\\" quotes",
    "%s %d %(name)s ?? ?",
    "`; DROP TABLE typed; `",
    "\" OR \"\"=\"",
    "line\nbreak\ttab\r\n",
]


@pytest.mark.parametrize("evil", EVIL)
def test_injection_attempt_is_stored_verbatim(typed: DbConnection, evil: str) -> None:
    typed.insert("typed", ["k", "s"], ["inj", evil])
    assert typed.query("typed", ["s"], None, [evil], ["k", "s"]).rows == [("inj", evil)]
    assert typed.update("typed", ["s"], None, [evil], ["k"], [evil[:60]]) == 1
    assert typed.raw_query("SELECT k FROM typed WHERE s=?", [evil]).rows == [(evil[:60],)]
    assert typed.delete("typed", ["k"], None, [evil[:60]]) == 1
    assert typed.query("typed").rows == []


def test_hostile_identifiers_are_errors_not_statements(typed: DbConnection) -> None:
    typed.insert("typed", ["k"], ["stay"])
    with pytest.raises(DbError):
        typed.query("typed; DROP TABLE typed")
    with pytest.raises(DbError):
        typed.query("typed", ["k`=k OR 1=1; --"], None, ["x"])
    with pytest.raises(DbError):
        typed.query('typed" WHERE 1=1; --')
    assert typed.query("typed", columns=["k"]).rows == [("stay",)]


def test_reconnect_after_server_closes_connection(db_url: str, db_engine: str,
                                                  con: DbConnection) -> None:
    if db_engine == "sqlite":
        pytest.skip("sqlite has no server connection to lose")
    c = connect(db_url)
    try:
        c.insert("typed", ["k"], ["before"])
        first = c.thread_id() if db_engine == "mysql" else c.backend_pid()
        assert kill_session(db_url, c)
        # the next statement reconnects and succeeds, unseen by the caller
        assert c.query("typed", ["k"], None, ["before"], ["k"]).rows == [("before",)]
        c.insert("typed", ["k"], ["after"])
        second = c.thread_id() if db_engine == "mysql" else c.backend_pid()
        assert second != first
        assert kill_session(db_url, c)
        assert c.update("typed", ["k"], None, ["after"], ["s"], ["ok"]) == 1
        assert c.delete("typed", ["k"], None, ["before"]) == 1
    finally:
        c.delete("typed")
        c.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def test_unreachable_server_is_gone_error_quickly(db_engine: str, tmp_path) -> None:
    if db_engine == "sqlite":
        url = f"sqlite://{tmp_path}/missing-dir/x.db"
    else:
        url = server_url(db_engine, "x").replace(
            ":3306/" if db_engine == "mysql" else ":5432/", f":{_closed_port()}/")
    c = connect(url)  # connecting is lazy: no error yet
    start = time.monotonic()
    with pytest.raises(DbGoneError, match="cannot connect"):
        c.query("version")
    with pytest.raises(DbGoneError):
        c.insert("version", ["table_name"], ["x"])
    assert time.monotonic() - start < 3


def test_mysql_read_timeout_is_an_error_not_a_hang(db_url: str, db_engine: str) -> None:
    if db_engine != "mysql":
        pytest.skip("timeout_interval is a db_mysql parameter")
    from sipserver.db.url import parse_db_url
    from sipserver.modules.db_mysql import MysqlConnection

    c = MysqlConnection(parse_db_url(db_url), timeout=1)
    start = time.monotonic()
    with pytest.raises(DbGoneError, match="connection lost"):
        c.raw_query("SELECT SLEEP(5)")
    assert time.monotonic() - start < 4  # two 1 s attempts, as 1.6 retries once
    assert c.raw_query("SELECT 1").rows == [(1,)]  # and it reconnects afterwards
    c.close()


def test_version_rows_from_create_schema(con: DbConnection) -> None:
    assert dict(con.query("version").rows) == {"location": 1005, "subscriber": 7}
