"""`sipctl db create|drop|migrate` on sqlite, MariaDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipserver.ctl.db import database_exists, existing_tables, table_columns
from sipserver.ctl.main import main as sipctl
from sipserver.db import schema
from tests.dbfixtures import connect

ROOT = Path(__file__).resolve().parents[3]
ALL = set(schema.TABLES)


@pytest.fixture(scope="module")
def url(db_url: str) -> str:
    """A database next to the fixture's one (which proves the server is up)."""
    return db_url[:-3] + "_ctl.db" if db_url.endswith(".db") else db_url + "_ctl"


def run(*args: str, env: dict[str, str] | None = None) -> int:
    return sipctl(["db", *args], env=env or {})


def _versions(url: str) -> dict[str, int]:
    con = connect(url)
    try:
        return {str(k): int(v) for k, v in con.query("version").rows}
    finally:
        con.close()


def _tables(url: str, engine: str) -> set[str]:
    con = connect(url)
    try:
        return existing_tables(con, engine)
    finally:
        con.close()


def test_create_makes_every_table_with_version_rows(url: str, db_engine: str, capsys) -> None:
    assert not database_exists(url)
    assert run("--db-url", url, "create") == 0
    out = capsys.readouterr().out
    assert f"{len(ALL) - 1} table(s) created" in out
    assert _tables(url, db_engine) >= ALL
    assert _versions(url) == dict(schema.version_rows())
    con = connect(url)
    try:
        for tbl in schema.TABLES.values():
            assert table_columns(con, db_engine, tbl.name) == list(tbl.column_names), tbl.name
    finally:
        con.close()


def test_create_again_fails_and_changes_nothing(url: str, db_engine: str, capsys) -> None:
    con = connect(url)
    con.insert("subscriber", ["username", "domain"], ["alice", "example.com"])
    con.close()
    assert run("--db-url", url, "create") == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "location" in err and "sipctl db migrate" in err
    assert len(connect(url).query("subscriber")) == 1


def test_migrate_up_to_date(url: str, capsys) -> None:
    assert run("--db-url", url, "migrate") == 0
    assert "is up to date" in capsys.readouterr().out


def test_migrate_from_acc_version_5(url: str, db_engine: str, capsys) -> None:
    con = connect(url)
    con.raw_query("DROP TABLE acc")
    old = schema.Table("acc", 5, schema.table("acc").columns[:8],
                       schema.table("acc").indexes)
    for stmt in schema.ddl(db_engine, old):
        con.raw_query(stmt)
    con.update("version", ["table_name"], None, ["acc"], ["table_version"], [5])
    con.insert("acc", ["method", "callid", "time"], ["INVITE", "c1", "2020-01-01 00:00:00"])
    con.raw_query("DROP TABLE silo")
    con.raw_query("ALTER TABLE dispatcher ADD COLUMN local_extra INTEGER")
    con.close()
    assert run("--db-url", url, "migrate") == 0
    out = capsys.readouterr().out
    for what in ("acc: added column duration", "acc: added column setuptime",
                 "acc: added column created", "acc: version 5 -> 6", "created table silo",
                 "dispatcher: columns not in version 4, left as they are: local_extra",
                 "1 table(s) differ"):
        assert what in out
    con = connect(url)
    try:
        assert table_columns(con, db_engine, "acc") == list(schema.table("acc").column_names)
        assert con.query("acc", columns=["callid", "duration", "created"]).rows == \
            [("c1", 0, None)]
        assert _versions(url)["acc"] == 6
        assert "silo" in existing_tables(con, db_engine)
    finally:
        con.close()


def test_drop_tables_needs_yes_off_a_terminal(url: str, db_engine: str, capsys) -> None:
    assert run("--db-url", url, "drop", "acc") == 1
    assert "--yes" in capsys.readouterr().err
    assert "acc" in _tables(url, db_engine)
    assert run("--db-url", url, "--yes", "drop", "acc", "group") == 0
    assert "dropped 3 table(s): acc grp re_grp" in capsys.readouterr().out
    left = _tables(url, db_engine)
    assert not {"acc", "grp", "re_grp"} & left and "missed_calls" in left
    versions = _versions(url)
    assert "acc" not in versions and "missed_calls" in versions


def test_create_only_named_tables_then_drop_database(url: str, capsys) -> None:
    assert run("--db-url", url, "create", "acc") == 0
    assert "created table acc (version 6)" in capsys.readouterr().out
    assert run("--db-url", url, "--yes", "drop") == 0
    assert not database_exists(url)
    assert run("--db-url", url, "--yes", "drop") == 1
    assert "does not exist" in capsys.readouterr().err


def test_unreachable_server_fails_quickly(db_engine: str, capsys) -> None:
    if db_engine == "sqlite":
        pytest.skip("no server")
    scheme = "mysql" if db_engine == "mysql" else "postgres"
    start = time.monotonic()
    assert run("--db-url", f"{scheme}://root@127.0.0.1:1/x", "create") == 1
    assert time.monotonic() - start < 5
    assert "cannot connect" in capsys.readouterr().err


def test_usage_errors(capsys) -> None:
    assert run("create", "--db-url", "text:///tmp/x") == 2
    assert run("--db-url=text:///tmp/x", "create") == 2
    assert "sqlite, mysql and postgres" in capsys.readouterr().err
    assert run("--db-url", "nonsense", "create") == 2
    assert run("frobnicate") == 2
    assert run("create", "--db-url") == 2
    assert run("create", "--bogus") == 2
    assert run() == 2
    assert run("--db-url", "sqlite:///tmp/never-made.db", "create", "nosuchtable") == 1
    assert "unknown table 'nosuchtable'" in capsys.readouterr().err
    assert not os.path.exists("/tmp/never-made.db")


def test_sipctl_command_uses_env_url(tmp_path: Path, db_engine: str) -> None:
    if db_engine != "sqlite":
        pytest.skip("the entry point is engine-independent")
    db = tmp_path / "env.db"
    env = {**os.environ, "SIPSERVER_DB_URL": f"sqlite://{db}"}
    sipctl_bin = Path(sys.executable).parent / "sipctl"
    cmd = [str(sipctl_bin)] if sipctl_bin.exists() else \
        [sys.executable, "-m", "sipserver.ctl.main"]
    p = subprocess.run([*cmd, "db", "create", "usrloc"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "created table location (version 1005)" in p.stdout
    assert _versions(f"sqlite://{db}") == {"location": 1005}
