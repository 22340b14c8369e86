"""The db_text DbConnection: queries and changes over cached table files.

What 1.6 db_text does, kept: column names and string/blob values compare
without regard to ASCII case (1.6 uses strncasecmp), no default values
(a NOT NULL column without a value is an error, except an auto column,
which gets the next number), and only query/insert/update/delete.
What it does better, since modules here may rely on it: `!=`/`<>` work
(1.6 matched nothing), NULL compares as in SQL (only `= None` and
`!= None` match it; 1.6 sorted NULL below every value), `order` sorts
(1.6 ignored it), and values of a near type are converted (an int for a
double column, a datetime for an int column holding epoch seconds).
"""

from __future__ import annotations

import datetime
import math
import operator
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...db.api import (
    CAP_DELETE,
    CAP_INSERT,
    CAP_QUERY,
    CAP_UPDATE,
    OPS,
    DbConnection,
    DbError,
    DbResult,
    DbValue,
)
from .fileformat import BLOB, DOUBLE, INT, STR, TIME, Column, RowValue, TableData, encode_row
from .store import CachedTable, TextDatabase

CAPS = CAP_QUERY | CAP_INSERT | CAP_DELETE | CAP_UPDATE

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<": operator.lt, ">": operator.gt, "<=": operator.le,
    ">=": operator.ge, "!=": operator.ne, "<>": operator.ne,
}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]*)?")


def _fold(value: Any) -> Any:
    """The form values compare in: ASCII case folded for str and bytes."""
    if isinstance(value, str):
        return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)
    if isinstance(value, bytes):
        return value.lower()
    return value


def _epoch(value: datetime.datetime) -> int:
    """A datetime as epoch seconds (naive = local time, as the DB API says)."""
    if value.tzinfo is None:
        return int(time.mktime(value.timetuple()))
    return int(value.timestamp())


def _coerce(table: str, col: Column, value: DbValue, store: bool) -> RowValue:
    """`value` in the column's stored form; DbError when it cannot be."""
    if value is None:
        return None
    kind = col.kind
    try:
        if kind == STR:
            if isinstance(value, str):
                return value
            if isinstance(value, bytes | bytearray | memoryview):
                return bytes(value).decode("utf-8", "surrogateescape")
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
        elif kind == BLOB:
            if isinstance(value, bytes | bytearray | memoryview):
                return bytes(value)
            if isinstance(value, str):
                return value.encode("utf-8", "surrogateescape")
        elif kind in (INT, TIME):
            if isinstance(value, datetime.datetime):
                return _epoch(value)
            if isinstance(value, int):
                return int(value)
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and _NUMBER.fullmatch(value) and "." not in value:
                return int(value)
        elif kind == DOUBLE and (isinstance(value, int | float) or (
                isinstance(value, str) and _NUMBER.fullmatch(value))):
            v = float(value)
            if store and not math.isfinite(v):
                raise DbError(f"db_text: {table}.{col.name}: cannot store {v}")
            return v
    except (OverflowError, ValueError, OSError) as e:
        raise DbError(f"db_text: {table}.{col.name}: bad value {value!r}: {e}")
    raise DbError(f"db_text: {table}.{col.name} is {col.spelling}: cannot take "
                  f"{type(value).__name__} {value!r}")


def _out_time(table: str, col: Column, value: RowValue) -> DbValue:
    if value is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(int(value))  # type: ignore[arg-type]
    except (OverflowError, ValueError, OSError):
        raise DbError(f"db_text: {table}.{col.name}: {value} is not a valid time")


class TextConnection(DbConnection):
    """A connection to one database directory (cheap: the cache is per directory)."""

    caps = CAPS

    def __init__(self, db: TextDatabase) -> None:
        self._dbase: TextDatabase | None = db

    # ------------------------------------------------------------ helpers

    @property
    def db(self) -> TextDatabase:
        if self._dbase is None:
            raise DbError("db_text: the connection is closed")
        return self._dbase

    @staticmethod
    def _col(t: CachedTable, name: str) -> int:
        i = t.index.get(name.lower())
        if i is None:
            raise DbError(f"db_text: table {t.name} has no column {name}")
        return i

    def _matcher(self, t: CachedTable, keys: Sequence[str], ops: Sequence[str] | None,
                 values: Sequence[DbValue]) -> Callable[[tuple[RowValue, ...]], bool]:
        if len(values) != len(keys) or (ops is not None and len(ops) != len(keys)):
            raise DbError(f"db_text: {t.name}: {len(keys)} keys, {len(values)} values"
                          + ("" if ops is None else f", {len(ops)} operators"))
        conds: list[tuple[int, str, Any]] = []
        for n, key in enumerate(keys):
            op = "=" if ops is None else ops[n]
            if op not in OPS:
                raise DbError(f'db_text: unknown operator "{op}"')
            i = self._col(t, key)
            conds.append((i, op, _fold(_coerce(t.name, t.data.columns[i], values[n], False))))
        if not conds:
            return lambda row: True

        def match(row: tuple[RowValue, ...]) -> bool:
            for i, op, want in conds:
                have = row[i]
                if want is None or have is None:  # SQL: only IS [NOT] NULL matches
                    if have is None and want is None:
                        ok = op == "="
                    else:
                        ok = want is None and op in ("!=", "<>")
                    if not ok:
                        return False
                    continue
                if not _CMP[op](_fold(have), want):
                    return False
            return True

        return match

    # ------------------------------------------------------------ API

    def query(self, table: str, keys: Sequence[str] = (), ops: Sequence[str] | None = None,
              values: Sequence[DbValue] = (), columns: Sequence[str] | None = None,
              order: str | None = None) -> DbResult:
        t = self.db.read(table)
        match = self._matcher(t, keys, ops, values)
        cols = t.data.columns
        if columns is None:
            idx = list(range(len(cols)))
            names = tuple(c.name for c in cols)
        else:
            idx = [self._col(t, c) for c in columns]
            names = tuple(columns)
        rows = [r for r in t.data.rows if match(r)]
        if order is not None:
            o = self._col(t, order)
            rows.sort(key=lambda r: (r[o] is not None, _fold(r[o]) if r[o] is not None else 0))
        times = [(n, cols[i]) for n, i in enumerate(idx) if cols[i].kind == TIME]
        out: list[tuple[DbValue, ...]] = []
        for r in rows:
            picked = [r[i] for i in idx]
            for n, col in times:
                picked[n] = _out_time(table, col, picked[n])
            out.append(tuple(picked))
        return DbResult(names, out)

    def insert(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        if not keys or len(keys) != len(values):
            raise DbError(f"db_text: insert into {table}: {len(keys)} keys, "
                          f"{len(values)} values")

        def change(t: CachedTable) -> tuple[TableData, None]:
            cols = t.data.columns
            row: list[RowValue] = [None] * len(cols)
            given: set[int] = set()
            for key, value in zip(keys, values, strict=True):
                i = self._col(t, key)
                if i in given:
                    raise DbError(f"db_text: insert into {table}: column {key} given twice")
                given.add(i)
                row[i] = _coerce(table, cols[i], value, True)
            auto_val = t.auto_val
            for i, col in enumerate(cols):
                if row[i] is not None:
                    if col.auto:
                        auto_val = max(auto_val, row[i])  # type: ignore[type-var]
                    continue
                if col.auto:
                    auto_val += 1
                    row[i] = auto_val
                elif not col.nullable:
                    raise DbError(f"db_text: insert into {table}: column {col.name} "
                                  "needs a value (not null, and db_text has no defaults)")
            new = tuple(row)
            data = TableData(cols, [*t.data.rows, new], [*t.data.lines, encode_row(cols, new)],
                             t.data.auto_col, auto_val)
            return data, None

        self.db.modify(table, change)

    def update(self, table: str, keys: Sequence[str], ops: Sequence[str] | None,
               values: Sequence[DbValue], ukeys: Sequence[str],
               uvalues: Sequence[DbValue]) -> int:
        if not ukeys or len(ukeys) != len(uvalues):
            raise DbError(f"db_text: update {table}: {len(ukeys)} columns to set, "
                          f"{len(uvalues)} values")

        def change(t: CachedTable) -> tuple[TableData | None, int]:
            match = self._matcher(t, keys, ops, values)
            cols = t.data.columns
            sets: list[tuple[int, RowValue]] = []
            for key, value in zip(ukeys, uvalues, strict=True):
                i = self._col(t, key)
                v = _coerce(table, cols[i], value, True)
                if v is None and not cols[i].nullable:
                    raise DbError(f"db_text: update {table}: column {cols[i].name} "
                                  "cannot be NULL")
                sets.append((i, v))
            rows, lines, count = [], [], 0
            auto_val = t.auto_val
            for row, line in zip(t.data.rows, t.data.lines, strict=True):
                if match(row):
                    new = list(row)
                    for i, v in sets:
                        new[i] = v
                    row = tuple(new)
                    line = encode_row(cols, row)
                    count += 1
                    if t.data.auto_col >= 0:
                        auto_val = max(auto_val, row[t.data.auto_col])  # type: ignore[type-var]
                rows.append(row)
                lines.append(line)
            if not count:
                return None, 0
            return TableData(cols, rows, lines, t.data.auto_col, auto_val), count

        return self.db.modify(table, change)

    def delete(self, table: str, keys: Sequence[str] = (), ops: Sequence[str] | None = None,
               values: Sequence[DbValue] = ()) -> int:
        def change(t: CachedTable) -> tuple[TableData | None, int]:
            match = self._matcher(t, keys, ops, values)
            rows, lines = [], []
            for row, line in zip(t.data.rows, t.data.lines, strict=True):
                if not match(row):
                    rows.append(row)
                    lines.append(line)
            count = len(t.data.rows) - len(rows)
            if not count:
                return None, 0
            return TableData(t.data.columns, rows, lines, t.data.auto_col, t.auto_val), count

        return self.db.modify(table, change)

    def _unsupported(self, what: str) -> DbError:
        return DbError(f"db_text: {what} is not supported (as in 1.6: query, insert, "
                       "update and delete only)")

    def replace(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        raise self._unsupported("replace")

    def insert_update(self, table: str, keys: Sequence[str],
                      values: Sequence[DbValue]) -> None:
        raise self._unsupported("insert_update")

    def raw_query(self, sql: str, params: Sequence[DbValue] = ()) -> DbResult | None:
        raise self._unsupported("raw_query")

    def last_inserted_id(self) -> int:
        raise self._unsupported("last_inserted_id")

    def close(self) -> None:
        self._dbase = None
