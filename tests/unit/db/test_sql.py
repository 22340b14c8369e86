"""SQL building: identifiers quoted, values only as parameters, placeholders translated."""

from __future__ import annotations

import pytest

from sipserver.db.api import DbError
from sipserver.db.sql import (
    MYSQL,
    POSTGRES,
    SQLITE,
    build_delete,
    build_insert,
    build_insert_update,
    build_replace,
    build_select,
    build_update,
    out_value,
    quote_ident,
    translate_placeholders,
)


def test_quote_ident_per_dialect() -> None:
    assert quote_ident(MYSQL, "location") == "`location`"
    assert quote_ident(POSTGRES, "version") == '"version"'
    assert quote_ident(SQLITE, "main.t") == "`main`.`t`"


def test_quote_ident_cannot_be_escaped() -> None:
    assert quote_ident(MYSQL, "a`; DROP TABLE x; --") == "`a``; DROP TABLE x; --`"
    assert quote_ident(POSTGRES, 'a"b') == '"a""b"'
    for bad in ("", "a\0b"):
        with pytest.raises(DbError):
            quote_ident(SQLITE, bad)


def test_select_with_keys_ops_columns_order() -> None:
    sql, params = build_select(MYSQL, "location", ["username", "expires"], ["=", ">"],
                               ["alice", 5], ["contact", "q"], "q")
    assert sql == ("SELECT `contact`,`q` FROM `location` WHERE `username`=? AND "
                   "`expires`>? ORDER BY `q`")
    assert params == ["alice", 5]


def test_select_everything() -> None:
    assert build_select(POSTGRES, "t", [], None, [], None, None) == ('SELECT * FROM "t"', [])


def test_null_matching() -> None:
    sql, params = build_select(SQLITE, "t", ["a", "b", "c"], ["=", "!=", "<>"],
                               [None, None, 1], None, None)
    assert sql == "SELECT * FROM `t` WHERE `a` IS NULL AND `b` IS NOT NULL AND `c`<>?"
    assert params == [1]


def test_unknown_operator_and_length_mismatch() -> None:
    with pytest.raises(DbError, match="unknown operator"):
        build_select(SQLITE, "t", ["a"], ["LIKE"], [1], None, None)
    with pytest.raises(DbError, match="1 column"):
        build_select(SQLITE, "t", ["a"], None, [1, 2], None, None)
    with pytest.raises(DbError, match="operator"):
        build_delete(SQLITE, "t", ["a", "b"], ["="], [1, 2])


def test_insert_update_delete() -> None:
    assert build_insert(MYSQL, "t", ["a", "b"], [1, "x"]) == \
        ("INSERT INTO `t` (`a`,`b`) VALUES (?,?)", [1, "x"])
    assert build_update(POSTGRES, "t", ["id"], None, [3], ["a", "b"], [None, 2]) == \
        ('UPDATE "t" SET "a"=?,"b"=? WHERE "id"=?', [None, 2, 3])
    assert build_delete(SQLITE, "t", [], None, []) == ("DELETE FROM `t`", [])
    with pytest.raises(DbError):
        build_insert(SQLITE, "t", [], [])
    with pytest.raises(DbError):
        build_update(SQLITE, "t", [], None, [], [], [])


def test_replace_and_insert_update_per_dialect() -> None:
    assert build_replace(MYSQL, "t", ["a"], [1])[0] == "REPLACE INTO `t` (`a`) VALUES (?)"
    assert build_replace(SQLITE, "t", ["a"], [1])[0] == "INSERT OR REPLACE INTO `t` (`a`) VALUES (?)"
    assert build_insert_update(MYSQL, "t", ["a", "b"], [1, 2])[0] == (
        "INSERT INTO `t` (`a`,`b`) VALUES (?,?) ON DUPLICATE KEY UPDATE `a`=VALUES(`a`),"
        "`b`=VALUES(`b`)")
    assert build_insert_update(SQLITE, "t", ["a"], [1])[0] == (
        "INSERT INTO `t` (`a`) VALUES (?) ON CONFLICT DO UPDATE SET `a`=excluded.`a`")
    with pytest.raises(DbError, match="not supported by db_postgres"):
        build_replace(POSTGRES, "t", ["a"], [1])
    with pytest.raises(DbError, match="not supported by db_postgres"):
        build_insert_update(POSTGRES, "t", ["a"], [1])


def test_values_never_enter_the_statement() -> None:
    evil = "x'); DROP TABLE location; --"
    for build in (lambda: build_insert(MYSQL, "t", ["a"], [evil]),
                  lambda: build_select(MYSQL, "t", ["a"], None, [evil], None, None),
                  lambda: build_update(MYSQL, "t", ["a"], None, [evil], ["b"], [evil])):
        sql, params = build()
        assert evil not in sql
        assert evil in params


@pytest.mark.parametrize("dialect, sql, n, expect", [
    (SQLITE, "SELECT * FROM t WHERE a=? AND b=?", 2, "SELECT * FROM t WHERE a=? AND b=?"),
    (MYSQL, "SELECT * FROM t WHERE a=? AND b=?", 2, "SELECT * FROM t WHERE a=%s AND b=%s"),
    (POSTGRES, "SELECT '?', a FROM t WHERE a LIKE 'x%' AND b=?", 1,
     "SELECT '?', a FROM t WHERE a LIKE 'x%%' AND b=%s"),
    (MYSQL, "SELECT `a?` FROM t WHERE b=? -- why?\n", 1,
     "SELECT `a?` FROM t WHERE b=%s -- why?\n"),
    (MYSQL, "SELECT 'it\\'s ?' , ?", 1, "SELECT 'it\\'s ?' , %s"),
    (POSTGRES, "SELECT 'it''s ?', \"c?\" /* ? */, ?", 1,
     "SELECT 'it''s ?', \"c?\" /* ? */, %s"),
    (POSTGRES, "SELECT 5 % 3, ?", 1, "SELECT 5 %% 3, %s"),
    (SQLITE, "SELECT 5 % 3, ?", 1, "SELECT 5 % 3, ?"),
])
def test_translate_placeholders(dialect, sql: str, n: int, expect: str) -> None:
    assert translate_placeholders(dialect, sql, n) == expect


def test_placeholder_count_must_match() -> None:
    with pytest.raises(DbError, match="2 placeholder"):
        translate_placeholders(MYSQL, "SELECT ?, ?", 1)
    with pytest.raises(DbError, match="0 placeholder"):
        translate_placeholders(POSTGRES, "SELECT '?'", 1)


def test_out_value_normalises_library_types() -> None:
    import datetime
    from decimal import Decimal

    assert out_value(memoryview(b"ab")) == b"ab"
    assert out_value(bytearray(b"ab")) == b"ab"
    assert out_value(Decimal("5")) == 5 and isinstance(out_value(Decimal("5")), int)
    assert out_value(Decimal("0.5")) == 0.5
    assert out_value(datetime.date(2020, 1, 2)) == datetime.datetime(2020, 1, 2)
    assert out_value(datetime.timedelta(seconds=61)) == 61
    assert out_value(None) is None
