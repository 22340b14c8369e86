"""What the SQL drivers share: statement building and reconnect-and-retry.

Statements are built from identifiers (quoted, never trusted) and `?`
placeholders; values only ever travel as parameters, so a value cannot
change a statement. `SqlConnection` runs them on a DB-API connection of
the driver's library: it connects lazily (and again after a fork, so two
processes never share a socket), and when the server has gone away it
reconnects once and retries the statement once, as 1.6 db_mysql does,
raising DbGoneError only when that fails too.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .api import (
    CAP_INSERT_UPDATE,
    CAP_LAST_INSERTED_ID,
    CAP_REPLACE,
    OPS,
    DbConnection,
    DbError,
    DbGoneError,
    DbResult,
    DbUrl,
    DbValue,
)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one engine spells the parts of a statement that differ."""

    name: str
    quote: str  # identifier quote: ` or "
    placeholder: str  # what `?` becomes: ? or %s
    backslash_escapes: bool = False  # \ escapes inside '...' (MySQL)
    replace_verb: str | None = None  # REPLACE INTO / INSERT OR REPLACE INTO
    upsert: str | None = None  # "mysql" (ON DUPLICATE KEY) / "sqlite" (ON CONFLICT)


# SQLite takes an unknown "name" for a string literal (its double-quoted
# string misfeature); a backquoted name is always an identifier.
SQLITE = Dialect("sqlite", "`", "?", replace_verb="INSERT OR REPLACE INTO", upsert="sqlite")
MYSQL = Dialect("mysql", "`", "%s", backslash_escapes=True, replace_verb="REPLACE INTO",
                upsert="mysql")
POSTGRES = Dialect("postgres", '"', "%s")


def quote_ident(dialect: Dialect, name: str) -> str:
    """`name` as a quoted identifier (`schema.table` quotes each part).

    The quote character is doubled inside, so no name can end the
    identifier early; empty names and NULs are refused.
    """
    if not isinstance(name, str) or not name or "\0" in name:
        raise DbError(f"bad identifier {name!r}")
    q = dialect.quote
    return ".".join(q + part.replace(q, q + q) + q for part in name.split("."))


def translate_placeholders(dialect: Dialect, sql: str, nparams: int) -> str:
    """Turn `?` placeholders into the library's, leaving quoted text alone.

    For libraries using `%s` a literal `%` is doubled (they format the
    whole statement). The number of placeholders must match `nparams`.
    """
    pyformat = dialect.placeholder == "%s"
    out: list[str] = []
    count = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = _skip_quoted(sql, i, ch, dialect.backslash_escapes and ch != "`")
            chunk = sql[i:end]
            out.append(chunk.replace("%", "%%") if pyformat else chunk)
            i = end
            continue
        if (ch == "-" and sql.startswith("--", i)) or (ch == "#" and dialect.name == "mysql"):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            chunk = sql[i:end]
            out.append(chunk.replace("%", "%%") if pyformat else chunk)
            i = end
            continue
        if ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            chunk = sql[i:end]
            out.append(chunk.replace("%", "%%") if pyformat else chunk)
            i = end
            continue
        if ch == "?":
            out.append(dialect.placeholder)
            count += 1
        elif ch == "%" and pyformat:
            out.append("%%")
        else:
            out.append(ch)
        i += 1
    if count != nparams:
        raise DbError(f"raw query has {count} placeholder(s) but {nparams} parameter(s)")
    return "".join(out)


def _skip_quoted(sql: str, start: int, quote: str, backslash: bool) -> int:
    """Index just past the quoted run starting at `start` (doubled quotes stay inside)."""
    i, n = start + 1, len(sql)
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _check_pairs(what: str, keys: Sequence[str], values: Sequence[Any]) -> None:
    if len(keys) != len(values):
        raise DbError(f"{what}: {len(keys)} column(s) but {len(values)} value(s)")


def where_clause(dialect: Dialect, keys: Sequence[str], ops: Sequence[str] | None,
                 values: Sequence[DbValue]) -> tuple[str, list[DbValue]]:
    """` WHERE k1=? AND k2 IS NULL ...` and its parameters ('' for no keys).

    A None value with "=" means IS NULL and with "!="/"<>" IS NOT NULL;
    with an ordering operator it matches nothing, as NULL does in SQL.
    """
    _check_pairs("where", keys, values)
    if ops is not None and len(ops) != len(keys):
        raise DbError(f"where: {len(keys)} column(s) but {len(ops)} operator(s)")
    if not keys:
        return "", []
    terms: list[str] = []
    params: list[DbValue] = []
    for i, key in enumerate(keys):
        op = "=" if ops is None else ops[i]
        if op not in OPS:
            raise DbError(f"unknown operator {op!r}")
        col = quote_ident(dialect, key)
        value = values[i]
        if value is None and op == "=":
            terms.append(f"{col} IS NULL")
        elif value is None and op in ("!=", "<>"):
            terms.append(f"{col} IS NOT NULL")
        else:
            terms.append(f"{col}{op}?")
            params.append(value)
    return " WHERE " + " AND ".join(terms), params


def build_select(dialect: Dialect, table: str, keys: Sequence[str], ops: Sequence[str] | None,
                 values: Sequence[DbValue], columns: Sequence[str] | None,
                 order: str | None) -> tuple[str, list[DbValue]]:
    cols = "*" if not columns else ",".join(quote_ident(dialect, c) for c in columns)
    where, params = where_clause(dialect, keys, ops, values)
    sql = f"SELECT {cols} FROM {quote_ident(dialect, table)}{where}"
    if order:
        sql += f" ORDER BY {quote_ident(dialect, order)}"
    return sql, params


def build_insert(dialect: Dialect, table: str, keys: Sequence[str], values: Sequence[DbValue],
                 verb: str = "INSERT INTO") -> tuple[str, list[DbValue]]:
    _check_pairs("insert", keys, values)
    if not keys:
        raise DbError("insert: no columns")
    cols = ",".join(quote_ident(dialect, k) for k in keys)
    marks = ",".join("?" * len(keys))
    return f"{verb} {quote_ident(dialect, table)} ({cols}) VALUES ({marks})", list(values)


def build_update(dialect: Dialect, table: str, keys: Sequence[str], ops: Sequence[str] | None,
                 values: Sequence[DbValue], ukeys: Sequence[str],
                 uvalues: Sequence[DbValue]) -> tuple[str, list[DbValue]]:
    _check_pairs("update", ukeys, uvalues)
    if not ukeys:
        raise DbError("update: no columns to set")
    sets = ",".join(f"{quote_ident(dialect, k)}=?" for k in ukeys)
    where, params = where_clause(dialect, keys, ops, values)
    return f"UPDATE {quote_ident(dialect, table)} SET {sets}{where}", [*uvalues, *params]


def build_delete(dialect: Dialect, table: str, keys: Sequence[str], ops: Sequence[str] | None,
                 values: Sequence[DbValue]) -> tuple[str, list[DbValue]]:
    where, params = where_clause(dialect, keys, ops, values)
    return f"DELETE FROM {quote_ident(dialect, table)}{where}", params


def build_replace(dialect: Dialect, table: str, keys: Sequence[str],
                  values: Sequence[DbValue]) -> tuple[str, list[DbValue]]:
    if dialect.replace_verb is None:
        raise DbError(f"replace is not supported by db_{dialect.name}")
    return build_insert(dialect, table, keys, values, dialect.replace_verb)


def build_insert_update(dialect: Dialect, table: str, keys: Sequence[str],
                        values: Sequence[DbValue]) -> tuple[str, list[DbValue]]:
    """Insert, or on a unique-key clash set every given column to its new value."""
    sql, params = build_insert(dialect, table, keys, values)
    cols = [quote_ident(dialect, k) for k in keys]
    if dialect.upsert == "mysql":
        sets = ",".join(f"{c}=VALUES({c})" for c in cols)
        return f"{sql} ON DUPLICATE KEY UPDATE {sets}", params
    if dialect.upsert == "sqlite":
        sets = ",".join(f"{c}=excluded.{c}" for c in cols)
        return f"{sql} ON CONFLICT DO UPDATE SET {sets}", params
    raise DbError(f"insert_update is not supported by db_{dialect.name}")


def to_datetime_text(value: datetime.datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS`: how a DATETIME travels as text (whole seconds, as 1.6)."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def out_value(value: Any) -> DbValue:
    """A library's column value as one of the API's value types."""
    if value is None or isinstance(value, int | float | str | bytes | datetime.datetime):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 \
            else float(value)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds())
    return str(value)


class SqlConnection(DbConnection):
    """A DbConnection over one DB-API connection, shared by the SQL drivers.

    Subclasses say how to open the library's connection (`_open`), which
    library errors mean "the server is gone" (`_is_gone`), and may adapt
    parameter values (`_param`).
    """

    dialect: Dialect = SQLITE
    driver: str = "db_sql"
    lib_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: DbUrl) -> None:
        self.url = url
        self._raw: Any = None
        self._pid = 0
        self._last_id = 0
        # a process's MI thread (mi_http) may share a module's connection
        self._lock = threading.Lock()

    # -- hooks -----------------------------------------------------------
    def _open(self) -> Any:
        """A new DB-API connection in autocommit mode (raise the library's error)."""
        raise NotImplementedError

    def _is_gone(self, exc: BaseException) -> bool:
        """Whether `exc` means the connection is lost (reconnect and retry)."""
        return False

    def _param(self, value: DbValue) -> Any:
        """A value as the library should send it: whole-second datetimes
        (1.6 keeps time_t), bools as the integers they stand for."""
        if isinstance(value, datetime.datetime):
            return value.replace(microsecond=0)
        if isinstance(value, bool):
            return int(value)
        return value

    def _lastrowid(self, cursor: Any) -> int:
        return int(cursor.lastrowid or 0)

    # -- running statements ---------------------------------------------
    def _where(self) -> str:
        return f"{self.driver} ({self.url.redacted()})"

    def _connect(self) -> None:
        try:
            self._raw = self._open()
        except self.lib_errors as e:
            self._raw = None
            raise DbGoneError(f"{self._where()}: cannot connect: {_msg(e)}") from None
        except OSError as e:
            self._raw = None
            raise DbGoneError(f"{self._where()}: cannot connect: {e}") from None
        self._pid = os.getpid()

    def _forget(self) -> None:
        """Drop the current connection after it broke (closing may fail: ignore)."""
        raw, self._raw = self._raw, None
        if raw is not None and self._pid == os.getpid():
            try:
                raw.close()
            except Exception:
                pass

    def execute(self, sql: str, params: Sequence[DbValue] = (), fetch: bool = False,
                translated: bool = False) -> tuple[DbResult | None, int]:
        """Run one statement (`?` placeholders); (rows or None, affected count).

        Reconnects and retries once when the server went away.
        """
        if not translated:
            sql = translate_placeholders(self.dialect, sql, len(params))
        args = tuple(self._param(v) for v in params)
        with self._lock:
            return self._run(sql, args, fetch)

    def _run(self, sql: str, args: tuple[Any, ...], fetch: bool) -> tuple[DbResult | None, int]:
        for attempt in (1, 2):
            if self._raw is None or self._pid != os.getpid():
                if self._raw is not None:
                    _inherited.append(self._raw)  # the parent's: never close it here
                    self._raw = None
                self._connect()
            try:
                cur = self._raw.cursor()
                try:
                    cur.execute(sql, args)
                    result = None
                    if fetch or cur.description is not None:
                        if cur.description is None:
                            result = DbResult()
                        else:
                            cols = tuple(d[0] for d in cur.description)
                            rows = [tuple(out_value(v) for v in row) for row in cur.fetchall()]
                            result = DbResult(cols, rows)
                    count = cur.rowcount if cur.rowcount is not None else -1
                    if sql.lstrip()[:7].upper().startswith(("INSERT", "REPLACE")):
                        self._last_id = self._lastrowid(cur)
                    return result, count
                finally:
                    try:
                        cur.close()
                    except Exception:
                        pass
            except (TypeError, ValueError, OverflowError) as e:  # a value the library refuses
                raise DbError(f"{self._where()}: bad value: {_msg(e)} [{sql}]") from None
            except self.lib_errors as e:
                if not self._is_gone(e):
                    raise DbError(f"{self._where()}: {_msg(e)} [{sql}]") from None
                self._forget()
                if attempt == 2:
                    raise DbGoneError(f"{self._where()}: connection lost: {_msg(e)}") from None
        raise AssertionError("unreachable")

    # -- the DbConnection API -------------------------------------------
    def query(self, table: str, keys: Sequence[str] = (), ops: Sequence[str] | None = None,
              values: Sequence[DbValue] = (), columns: Sequence[str] | None = None,
              order: str | None = None) -> DbResult:
        sql, params = build_select(self.dialect, table, keys, ops, values, columns, order)
        res, _ = self.execute(sql, params, fetch=True)
        return res if res is not None else DbResult()

    def insert(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        self.execute(*build_insert(self.dialect, table, keys, values))

    def update(self, table: str, keys: Sequence[str], ops: Sequence[str] | None,
               values: Sequence[DbValue], ukeys: Sequence[str],
               uvalues: Sequence[DbValue]) -> int:
        return self.execute(*build_update(self.dialect, table, keys, ops, values, ukeys,
                                          uvalues))[1]

    def delete(self, table: str, keys: Sequence[str] = (), ops: Sequence[str] | None = None,
               values: Sequence[DbValue] = ()) -> int:
        return self.execute(*build_delete(self.dialect, table, keys, ops, values))[1]

    def replace(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        if not self.caps & CAP_REPLACE:
            raise DbError(f"replace is not supported by {self.driver}")
        self.execute(*build_replace(self.dialect, table, keys, values))

    def insert_update(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        if not self.caps & CAP_INSERT_UPDATE:
            raise DbError(f"insert_update is not supported by {self.driver}")
        self.execute(*build_insert_update(self.dialect, table, keys, values))

    def raw_query(self, sql: str, params: Sequence[DbValue] = ()) -> DbResult | None:
        return self.execute(sql, params)[0]

    def last_inserted_id(self) -> int:
        if not self.caps & CAP_LAST_INSERTED_ID:
            raise DbError(f"last_inserted_id is not supported by {self.driver}")
        return self._last_id

    def close(self) -> None:
        self._forget()


# Connections a forked child inherited from its parent: kept referenced so
# that their finalizers never run here (closing them would end the parent's
# session on the server). Per-process runtime state.
_inherited: list[Any] = []


def _msg(exc: BaseException) -> str:
    text = " ".join(str(a) for a in exc.args) if exc.args else type(exc).__name__
    return " ".join(text.split()) or type(exc).__name__
