"""The generic DB API every DB-backed module uses (1.6 `db_func_t`).

A module takes a `db_url` parameter and never knows which backend serves
it: `db_bind(registry, url)` finds the driver module the URL's scheme
names (`mysql://` -> `db_mysql`, which the script must load, as in 1.6)
and returns a `DbBinding`; each process then opens its own connection
with `binding.connect()` in child_init (connections are never shared
across a fork).

Values cross the API as Python values: None (NULL), int, float, str,
bytes (BLOB) and `datetime.datetime` (DATETIME, naive local time as 1.6
stores it). Statements are always parameterised or escaped by the driver;
a caller never builds SQL from values (raw_query takes `params`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.runtime import L_ERR
from .url import DbUrl, DbUrlError, parse_db_url

__all__ = [
    "CAP_ALL",
    "CAP_DELETE",
    "CAP_INSERT",
    "CAP_INSERT_UPDATE",
    "CAP_LAST_INSERTED_ID",
    "CAP_QUERY",
    "CAP_RAW_QUERY",
    "CAP_REPLACE",
    "CAP_UPDATE",
    "OPS",
    "DbBinding",
    "DbConnection",
    "DbDriver",
    "DbError",
    "DbGoneError",
    "DbResult",
    "DbUrl",
    "DbUrlError",
    "DbValue",
    "check_table_version",
    "connection_hooks",
    "db_bind",
    "parse_db_url",
    "table_version",
]

DbValue = None | int | float | str | bytes | datetime.datetime

# Comparison operators a query/update/delete key may use (1.6 db_op.h).
OPS = frozenset({"=", "<", ">", "<=", ">=", "!=", "<>"})

# What a backend can do (1.6 db_cap.h): a module checks before it relies
# on an operation, e.g. usrloc needs CAP_UPDATE for db_mode 1/2.
CAP_QUERY = 1 << 0
CAP_RAW_QUERY = 1 << 1
CAP_INSERT = 1 << 2
CAP_DELETE = 1 << 3
CAP_UPDATE = 1 << 4
CAP_REPLACE = 1 << 5
CAP_LAST_INSERTED_ID = 1 << 6
CAP_INSERT_UPDATE = 1 << 7
CAP_ALL = (1 << 8) - 1


class DbError(Exception):
    """A statement failed (bad table, constraint, unsupported operation...)."""


class DbGoneError(DbError):
    """The server cannot be reached, even after the driver reconnected.

    Drivers reconnect on a lost connection and retry the statement once
    (1.6 db_mysql); only when that fails too does this reach the module,
    which logs it and answers the request with an error, never crashes.
    """


@dataclass(slots=True)
class DbResult:
    """The rows of a query: `columns` names, `rows` tuples in that order."""

    columns: tuple[str, ...] = ()
    rows: list[tuple[DbValue, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def dicts(self) -> list[dict[str, DbValue]]:
        """The rows as column-name dictionaries (for code off the hot path)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class DbConnection:
    """One process's connection to one database (1.6 db_con_t + db_func_t).

    `keys`/`ops`/`values` select rows: key[i] ops[i] values[i], ANDed;
    `ops=None` means all "="; a value None compared with "=" matches NULL
    (`IS NULL`). `columns=None` means every column (`*`), `order` is one
    column name to sort by (ascending). Every method raises DbError, or
    DbGoneError when the server is unreachable after a reconnect.
    """

    caps: int = CAP_ALL

    def query(self, table: str, keys: Sequence[str] = (), ops: Sequence[str] | None = None,
              values: Sequence[DbValue] = (), columns: Sequence[str] | None = None,
              order: str | None = None) -> DbResult:
        raise NotImplementedError

    def insert(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        raise NotImplementedError

    def update(self, table: str, keys: Sequence[str], ops: Sequence[str] | None,
               values: Sequence[DbValue], ukeys: Sequence[str],
               uvalues: Sequence[DbValue]) -> int:
        """Set ukeys=uvalues on the selected rows; returns how many matched
        (also those whose values were already equal, on every engine)."""
        raise NotImplementedError

    def delete(self, table: str, keys: Sequence[str] = (), ops: Sequence[str] | None = None,
               values: Sequence[DbValue] = ()) -> int:
        """Delete the selected rows (all rows without keys); returns how many."""
        raise NotImplementedError

    def replace(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        """Insert, or overwrite the row with the same unique key (MySQL REPLACE)."""
        raise NotImplementedError

    def insert_update(self, table: str, keys: Sequence[str], values: Sequence[DbValue]) -> None:
        """Insert, or update the other columns on a unique-key clash."""
        raise NotImplementedError

    def raw_query(self, sql: str, params: Sequence[DbValue] = ()) -> DbResult | None:
        """Run backend SQL with `?`-style placeholders filled from params
        (drivers translate the placeholder); returns rows for a SELECT."""
        raise NotImplementedError

    def last_inserted_id(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection; safe to call twice."""


@dataclass(slots=True)
class DbBinding:
    """A URL bound to its driver (1.6 db_bind_mod): connect per process."""

    url: DbUrl
    driver: str  # the driver module's name (db_mysql, ...)
    caps: int
    opener: Callable[[DbUrl], DbConnection]

    def connect(self) -> DbConnection:
        return self.opener(self.url)


# URL scheme -> driver module name, as 1.6 derives "db_" + scheme.
_SCHEME_ALIASES = {"postgresql": "postgres", "sqlite3": "sqlite"}


def db_bind(registry: Any, url: str) -> DbBinding:
    """Bind `url` to the loaded driver module for its scheme.

    The driver module exports its `DbDriver` as `ModuleExports.api`, so
    binding works in any module's mod_init whatever the load order.
    Raises DbUrlError for a malformed URL or a driver module the script
    did not load.
    """
    parsed = parse_db_url(url)
    scheme = _SCHEME_ALIASES.get(parsed.scheme, parsed.scheme)
    name = "db_" + scheme
    mod = registry.modules.get(name) if registry is not None else None
    if mod is None or not isinstance(mod.exports.api, DbDriver):
        raise DbUrlError(f'db_url "{parsed.redacted()}": module {name} is not loaded '
                         f'(add loadmodule "{name}.so")')
    driver = mod.exports.api
    return DbBinding(parsed, name, driver.caps, lambda u: driver.open(u, mod))


@dataclass(slots=True)
class DbDriver:
    """What a driver module exports as `api`: its capabilities and opener.

    `open(url, module)` returns a new DbConnection (the module gives the
    driver its modparams, e.g. db_mysql's timeout_interval).
    """

    caps: int
    open: Callable[[DbUrl, Any], DbConnection]


def table_version(con: DbConnection, table: str) -> int | None:
    """The `version` table's entry for `table`, or None when it has none."""
    res = con.query("version", ("table_name",), None, (table,), ("table_version",))
    if not res.rows:
        return None
    value = res.rows[0][0]
    return int(value) if value is not None else None


def check_table_version(con: DbConnection, table: str, expected: int) -> None:
    """Fail start-up like 1.6 when a table's version is not the one we speak."""
    found = table_version(con, table)
    if found != expected:
        raise DbError(f"invalid table version for {table} (found {found}, "
                      f"expected {expected}): create or migrate it with "
                      "`sipctl db create` / `sipctl db migrate`")


class ProcessConnection:
    """A module's connection in this process: opened on first use, and opened
    anew in a child after a fork (a connection is never shared across one).

    Modules keep one in their state: `get()` on each use, `open_or_log()` in
    child_init (a DB that is down is logged there and retried on use),
    `close()` in destroy.
    """

    __slots__ = ("_con", "_pid", "binding")

    def __init__(self, binding: DbBinding | None) -> None:
        self.binding = binding
        self._con: DbConnection | None = None
        self._pid = 0

    def get(self) -> DbConnection:
        """This process's connection (DbError when no db_url is configured)."""
        pid = os.getpid()
        if self._con is None or self._pid != pid:
            if self.binding is None:
                raise DbError("no database URL is configured")
            self._con = self.binding.connect()
            self._pid = pid
        return self._con

    def use(self, con: DbConnection | None) -> None:
        """Make `con` this process's connection (None: reconnect on next use)."""
        self._con, self._pid = con, os.getpid()

    def open_or_log(self, rt: Any, module: str) -> None:
        """child_init: connect now; a failure is logged and retried on use."""
        if self.binding is None:
            return
        try:
            self.get()
        except DbError as e:
            rt.log(L_ERR, f"{module}: unable to connect to the database: {e}")

    def close(self) -> None:
        """Close this process's connection (one inherited over a fork is only
        forgotten); a connection that fails to close is dropped all the same."""
        con, self._con = self._con, None
        if con is not None and self._pid == os.getpid():
            try:
                con.close()
            except DbError:
                pass


def connection_hooks(name: str) -> tuple[Callable[[Any, int], None], Callable[[Any], None]]:
    """child_init and destroy of a module whose state keeps its
    `ProcessConnection` in `.db` (state None: the module is not in use)."""

    def child_init(module: Any, rank: int) -> None:
        if module.state is not None:
            module.state.db.open_or_log(module.rt, name)

    def destroy(module: Any) -> None:
        if module.state is not None:
            module.state.db.close()

    return child_init, destroy

def as_text(value: DbValue) -> str:
    """A column value as text: NULL is "", BLOBs are latin-1 (1.6 str semantics)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)
