"""db_sqlite: the embedded default, shared by many processes through one file."""

from __future__ import annotations

import datetime
import multiprocessing
import os
import sqlite3

import pytest

from sipserver.ctl.db import create_tables, open_db
from sipserver.db.api import CAP_ALL, DbError, DbGoneError, check_table_version, db_bind
from sipserver.db.url import DbUrlError, parse_db_url
from sipserver.modules.db_sqlite import SqliteConnection
from sipserver.script import load_script_text


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite://{tmp_path}/s.db"


def test_wal_and_busy_timeout(url: str, tmp_path) -> None:
    con = open_db(url)
    assert con.raw_query("PRAGMA journal_mode").rows == [("wal",)]
    assert con.raw_query("PRAGMA busy_timeout").rows == [(5000,)]
    assert os.path.exists(tmp_path / "s.db")
    con.close()
    con.close()  # twice is fine


def test_relative_path_is_relative_to_cwd(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    con = SqliteConnection(parse_db_url("sqlite://sub.db"))
    assert con.path == str(tmp_path / "sub.db")
    con.raw_query("SELECT 1")
    assert (tmp_path / "sub.db").exists()


def test_loadmodule_modparam_and_bind(url: str) -> None:
    compiled = load_script_text('loadmodule "db_sqlite.so"\n'
                                'modparam("db_sqlite", "busy_timeout", 1234)\n'
                                "route { exit; }\n")
    binding = db_bind(compiled.registry, url)
    assert binding.driver == "db_sqlite" and binding.caps == CAP_ALL
    con = binding.connect()
    assert con.raw_query("PRAGMA busy_timeout").rows == [(1234,)]
    with pytest.raises(DbUrlError, match=r'loadmodule "db_mysql\.so"'):
        db_bind(compiled.registry, "mysql://h/d")


def test_datetime_stored_as_sortable_text(url: str) -> None:
    create_tables(url, ["location"])
    con = open_db(url)
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, 678)
    con.insert("location", ["username", "contact", "expires"], ["a", "sip:a@h", when])
    raw = sqlite3.connect(url[len("sqlite://"):])
    assert raw.execute("SELECT expires FROM location").fetchall() == [("2030-01-02 03:04:05",)]
    res = con.query("location", ["expires"], [">"], [datetime.datetime(2030, 1, 1)],
                    ["expires", "last_modified"])
    assert res.rows == [(datetime.datetime(2030, 1, 2, 3, 4, 5),
                         datetime.datetime(1900, 1, 1, 0, 0, 1))]


def test_version_check(url: str) -> None:
    create_tables(url, ["subscriber"])
    con = open_db(url)
    check_table_version(con, "subscriber", 7)
    with pytest.raises(DbError, match="found 7, expected 6"):
        check_table_version(con, "subscriber", 6)
    with pytest.raises(DbError, match="found None"):
        check_table_version(con, "location", 1005)


def test_unusable_file_is_gone_error(tmp_path) -> None:
    con = open_db(f"sqlite://{tmp_path}/no/such/dir/x.db")
    with pytest.raises(DbGoneError, match="cannot connect"):
        con.query("version")


def test_errors_name_the_statement(url: str) -> None:
    con = open_db(url)
    with pytest.raises(DbError, match=r"no such table: nope .*SELECT \* FROM `nope`"):
        con.query("nope")


def _writer(url: str, tag: int, n: int) -> None:
    con = open_db(url)
    for i in range(n):
        con.insert("silo", ["src_addr", "inc_time"], [f"w{tag}", i])
    con.close()


def test_many_processes_write_one_file(url: str) -> None:
    create_tables(url, ["silo"])
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(url, k, 50)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    res = open_db(url).raw_query("SELECT src_addr, COUNT(*) FROM silo GROUP BY src_addr "
                                 "ORDER BY src_addr")
    assert res.rows == [(f"w{k}", 50) for k in range(4)]


def _use_inherited(con: SqliteConnection) -> None:
    con.insert("silo", ["src_addr"], ["child"])


def test_connection_reopens_after_fork(url: str) -> None:
    create_tables(url, ["silo"])
    con = open_db(url)
    con.insert("silo", ["src_addr"], ["parent"])
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_use_inherited, args=(con,))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    con.insert("silo", ["src_addr"], ["parent2"])  # the parent's handle still works
    assert [r[0] for r in con.query("silo", columns=["src_addr"], order="id").rows] == \
        ["parent", "child", "parent2"]


def test_a_relative_sqlite_path_is_relative_to_the_config_file(tmp_path) -> None:
    from sipserver.db.api import db_bind
    from sipserver.testing import ScriptRunner

    cfg_dir = tmp_path / "etc"
    cfg_dir.mkdir()
    r = ScriptRunner("route { exit; }", modules=["db_sqlite"],
                     filename=str(cfg_dir / "opensips.cfg"))
    con = db_bind(r.compiled.registry, "sqlite://data/s.db").connect()
    assert con.path == str(cfg_dir / "data" / "s.db")
    con.close()
