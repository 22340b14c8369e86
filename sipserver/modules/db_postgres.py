"""db_postgres: PostgreSQL through psycopg2 (OpenSIPS 1.6 module `db_postgres`).

URL `postgres://user:password@host[:port]/database` (`postgresql://` too).
No parameters, as 1.6. A connection attempt gives up after
CONNECT_TIMEOUT seconds and TCP keepalives notice a dead server, so an
unreachable server is an error, never a hang. A statement that finds the
connection gone (server restart, pg_terminate_backend) reconnects and is
retried once.

Capabilities as 1.6: query, raw query, insert, update, delete; replace,
insert_update and last_inserted_id raise DbError "not supported by
db_postgres" (PostgreSQL has no key-agnostic REPLACE, and its upsert
needs the conflicting key named).
"""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.extensions

from ..core.exports import ModuleExports
from ..db.api import (
    CAP_DELETE,
    CAP_INSERT,
    CAP_QUERY,
    CAP_RAW_QUERY,
    CAP_UPDATE,
    DbDriver,
    DbUrl,
    DbValue,
)
from ..db.sql import POSTGRES, SqlConnection

DEFAULT_PORT = 5432
CONNECT_TIMEOUT = 5  # seconds

CAPS = CAP_QUERY | CAP_RAW_QUERY | CAP_INSERT | CAP_DELETE | CAP_UPDATE


class PostgresConnection(SqlConnection):
    """One process's connection to one PostgreSQL database."""

    dialect = POSTGRES
    driver = "db_postgres"
    caps = CAPS
    lib_errors = (psycopg2.Error,)

    def _open(self) -> Any:
        u = self.url
        kwargs: dict[str, Any] = {
            "host": u.host, "port": u.port or DEFAULT_PORT, "dbname": u.database,
            "connect_timeout": CONNECT_TIMEOUT, "keepalives": 1, "keepalives_idle": 30,
            "keepalives_interval": 5, "keepalives_count": 3,
            "application_name": "sipserver",
        }
        if u.user:
            kwargs["user"] = u.user
        if u.password:
            kwargs["password"] = u.password
        con = psycopg2.connect(**kwargs)
        con.autocommit = True
        con.set_client_encoding("UTF8")
        return con

    def _is_gone(self, exc: BaseException) -> bool:
        if isinstance(exc, psycopg2.InterfaceError):
            return True  # "connection already closed"
        if not isinstance(exc, psycopg2.OperationalError):
            return False
        code = getattr(exc, "pgcode", None) or ""
        # 08xxx connection exceptions, 57P01-03 admin shutdown / crash / cannot connect now
        return (self._raw is None or self._raw.closed != 0 or code.startswith("08")
                or code in ("57P01", "57P02", "57P03"))

    def _param(self, value: DbValue) -> Any:
        if isinstance(value, bytes):
            return psycopg2.Binary(value)
        return super()._param(value)

    def backend_pid(self) -> int:
        """The server process of this connection (pg_terminate_backend target)."""
        res = self.raw_query("SELECT pg_backend_pid()")
        return int(res.rows[0][0]) if res and res.rows else 0


def _open(url: DbUrl, module: Any) -> PostgresConnection:
    return PostgresConnection(url)


exports = ModuleExports(
    name="db_postgres",
    api=DbDriver(CAPS, _open),
)
