"""db_sqlite: the embedded default database (stdlib sqlite3; no 1.6 equivalent).

URL `sqlite:///abs/path.db`; a relative path, `sqlite://rel/path.db`, is
relative to the config file's directory in the server (as db_text URLs
are in 1.6), to the working directory elsewhere (sipctl). Many sipserver processes share the
file, so every connection uses WAL journaling (readers never block the
writer) and waits up to `busy_timeout` ms for a lock instead of failing
at once. Each process opens its own connection, lazily and again after a
fork. DATETIME values are stored as `YYYY-MM-DD HH:MM:SS` text, so they
sort and compare like the other engines' datetimes.

Capabilities: all of them (replace = INSERT OR REPLACE, insert_update =
INSERT ... ON CONFLICT DO UPDATE, last_inserted_id = the rowid).
"""

from __future__ import annotations

import datetime
import os
import sqlite3
from typing import Any

from ..core.exports import LoadedModule, ModuleExports, ParamExport
from ..db.api import CAP_ALL, DbDriver, DbUrl, DbUrlError, DbValue
from ..db.sql import SQLITE, SqlConnection, to_datetime_text

DEFAULT_BUSY_TIMEOUT = 5000  # ms a statement waits for another process's lock

# DATETIME columns come back as datetime: the converter is keyed by the
# declared column type, so text columns are never touched.
sqlite3.register_converter("DATETIME", lambda b: _parse_datetime(b.decode()))


def _parse_datetime(text: str) -> datetime.datetime | str:
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return text


def db_path(url: DbUrl, base: str | None = None) -> str:
    """The file a sqlite URL names (`sqlite:///abs` or `sqlite://relative`,
    relative to `base` when given, else to the working directory)."""
    path = url.database
    if not path or path in ("/", "."):
        raise DbUrlError(f'db_url "{url.text}": missing database file')
    if base and not os.path.isabs(path):
        path = os.path.join(base, path)
    return os.path.abspath(path)


class SqliteConnection(SqlConnection):
    """One process's connection to one SQLite file."""

    dialect = SQLITE
    driver = "db_sqlite"
    caps = CAP_ALL
    lib_errors = (sqlite3.Error,)

    def __init__(self, url: DbUrl, busy_timeout: int = DEFAULT_BUSY_TIMEOUT,
                 base: str | None = None) -> None:
        super().__init__(url)
        self.path = db_path(url, base)
        self.busy_timeout = busy_timeout

    def _open(self) -> Any:
        con = sqlite3.connect(self.path, timeout=self.busy_timeout / 1000.0,
                              isolation_level=None, check_same_thread=False,
                              detect_types=sqlite3.PARSE_DECLTYPES)
        try:
            con.execute(f"PRAGMA busy_timeout={int(self.busy_timeout)}")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            con.close()
            raise
        return con

    def _param(self, value: DbValue) -> Any:
        if isinstance(value, datetime.datetime):
            return to_datetime_text(value)
        return super()._param(value)


def _open(url: DbUrl, module: Any) -> SqliteConnection:
    timeout = DEFAULT_BUSY_TIMEOUT
    if module is not None and getattr(module, "params", None):
        timeout = int(module.params.get("busy_timeout", timeout))
    rt = getattr(module, "rt", None)
    return SqliteConnection(url, timeout, (rt.cfg_dir if rt is not None else "") or None)


def _mod_init(module: LoadedModule) -> None:
    if module.param("busy_timeout") < 0:
        raise ValueError("busy_timeout must be >= 0")


exports = ModuleExports(
    name="db_sqlite",
    params=[ParamExport("busy_timeout", int, DEFAULT_BUSY_TIMEOUT)],
    api=DbDriver(CAP_ALL, _open),
    mod_init=_mod_init,
)
