"""The 1.6 table definitions and the DDL generated from them."""

from __future__ import annotations

import datetime

import pytest

from sipserver.ctl.db import create_tables, existing_tables, open_db, table_columns
from sipserver.db import schema

# (table, version, first columns) as the 1.6 create scripts have them
EXPECTED = {
    "location": (1005, ["id", "username", "domain", "contact", "received", "path", "expires",
                        "q", "callid", "cseq", "last_modified", "flags", "cflags",
                        "user_agent", "socket", "methods"]),
    "subscriber": (7, ["id", "username", "domain", "password", "email_address", "ha1", "ha1b",
                       "rpid"]),
    "acc": (6, ["id", "method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason",
                "time", "duration", "setuptime", "created"]),
    "missed_calls": (4, ["id", "method", "from_tag", "to_tag", "callid", "sip_code",
                         "sip_reason", "time"]),
    "address": (5, ["id", "grp", "ip", "mask", "port", "proto", "pattern", "context_info"]),
    "dr_gateways": (4, ["gwid", "type", "address", "strip", "pri_prefix", "attrs", "probe_mode",
                        "description"]),
    "dialog": (4, None), "dispatcher": (4, None), "uri": (2, None), "dbaliases": (2, None),
    "grp": (3, None), "re_grp": (2, None), "usr_preferences": (3, None), "domain": (2, None),
    "aliases": (1005, None), "dr_rules": (3, None), "dr_groups": (2, None),
    "dr_gw_lists": (1, None), "load_balancer": (2, None), "silo": (6, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tables_and_versions(name: str) -> None:
    version, cols = EXPECTED[name]
    tbl = schema.table(name)
    assert tbl.version == version
    if cols is not None:
        assert list(tbl.column_names) == cols
    assert dict(schema.version_rows([name])) == {name: version}


def test_unknown_table() -> None:
    with pytest.raises(KeyError, match="unknown table 'nope'"):
        schema.table("nope")


def test_mysql_ddl_matches_1_6_shape() -> None:
    stmts = schema.ddl("mysql", schema.table("subscriber"))
    assert stmts[0].startswith("CREATE TABLE `subscriber` (\n    `id` INT(10) UNSIGNED "
                               "AUTO_INCREMENT PRIMARY KEY NOT NULL,\n")
    assert "`password` VARCHAR(25) DEFAULT '' NOT NULL" in stmts[0]
    assert "`rpid` VARCHAR(64) DEFAULT NULL," in stmts[0]
    assert "CONSTRAINT `account_idx` UNIQUE (`username`, `domain`)" in stmts[0]
    assert stmts[1] == "CREATE INDEX `username_idx` ON `subscriber` (`username`)"


def test_postgres_ddl_types_and_index_names() -> None:
    stmts = schema.ddl("postgres", schema.table("location"))
    assert '"id" SERIAL PRIMARY KEY NOT NULL' in stmts[0]
    assert "\"expires\" TIMESTAMP WITHOUT TIME ZONE DEFAULT '2020-05-28 21:32:15' NOT NULL" \
        in stmts[0]
    assert '"q" REAL DEFAULT 1.0 NOT NULL' in stmts[0]
    assert stmts[1] == ('CREATE INDEX "location_account_contact_idx" ON "location" '
                        '("username", "domain", "contact")')
    silo = schema.ddl("postgres", schema.table("silo"))[0]
    assert "\"body\" BYTEA DEFAULT '' NOT NULL" in silo
    # unsigned shorts hold every port number
    assert '"port" INTEGER DEFAULT 0 NOT NULL' in schema.ddl("postgres", schema.table("address"))[0]


def test_add_column_gives_not_null_columns_a_default() -> None:
    acc = schema.table("acc")
    assert schema.add_column_ddl("mysql", acc, acc.column("duration")) == \
        "ALTER TABLE `acc` ADD COLUMN `duration` INT(11) UNSIGNED DEFAULT 0 NOT NULL"
    assert schema.add_column_ddl("postgres", acc, acc.column("time")) == (
        "ALTER TABLE \"acc\" ADD COLUMN \"time\" TIMESTAMP WITHOUT TIME ZONE "
        "DEFAULT '1900-01-01 00:00:01' NOT NULL")


def test_every_table_on_sqlite_with_defaults(tmp_path) -> None:
    url = f"sqlite://{tmp_path}/all.db"
    created = create_tables(url)
    assert set(created) == set(schema.TABLES) - {"version"}
    con = open_db(url)
    assert existing_tables(con, "sqlite") >= set(schema.TABLES)
    for tbl in schema.TABLES.values():
        assert table_columns(con, "sqlite", tbl.name) == list(tbl.column_names)
    rows = dict(con.query("version").rows)
    assert rows == dict(schema.version_rows())
    con.insert("location", ["username", "contact"], ["alice", "sip:alice@h"])
    row = con.query("location").dicts()[0]
    assert row["id"] == 1 and row["domain"] is None and row["q"] == 1.0
    assert row["callid"] == "Default-Call-ID" and row["cseq"] == 13
    assert row["expires"] == datetime.datetime(2020, 5, 28, 21, 32, 15)
    con.insert("silo", ["src_addr"], ["x"])
    assert con.query("silo", columns=["body", "ctype"]).rows == [(b"", "text/plain")]
    assert create_tables(url) == []  # existing tables are skipped
