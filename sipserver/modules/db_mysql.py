"""db_mysql: MySQL / MariaDB through pymysql (OpenSIPS 1.6 module `db_mysql`).

URL `mysql://user:password@host[:port]/database`. Params as 1.6:
`ping_interval` (int s, 300: accepted, unused, as in 1.6) and
`timeout_interval` (int s, 2: the connect, read and write timeout, so a
dead server costs seconds, never a hang). The library's auto-reconnect
is off; a statement that finds the server gone (errors 2006, 2013, ...
or a killed connection) reconnects and is retried once, as in 1.6.

Capabilities: all (replace = REPLACE INTO, insert_update = INSERT ... ON
DUPLICATE KEY UPDATE, last_inserted_id). An update reports the rows it
matched (CLIENT_FOUND_ROWS), like the other engines, not only the rows
whose value changed.
"""

from __future__ import annotations

from typing import Any

import pymysql
from pymysql.constants import CLIENT

from ..core.exports import LoadedModule, ModuleExports, ParamExport
from ..db.api import CAP_ALL, DbDriver, DbUrl
from ..db.sql import MYSQL, SqlConnection

DEFAULT_PORT = 3306
DEFAULT_TIMEOUT = 2

# client and server error codes meaning "this connection is gone"
_GONE_CODES = frozenset({
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync
    2055,  # lost connection (system error)
    1053,  # server shutdown in progress
    1927,  # connection was killed (MariaDB)
    4031,  # disconnected by the server for inactivity (MySQL 8)
})


class MysqlConnection(SqlConnection):
    """One process's connection to one MySQL/MariaDB database."""

    dialect = MYSQL
    driver = "db_mysql"
    caps = CAP_ALL
    lib_errors = (pymysql.Error,)

    def __init__(self, url: DbUrl, timeout: int = DEFAULT_TIMEOUT) -> None:
        super().__init__(url)
        self.timeout = max(1, int(timeout))

    def _open(self) -> Any:
        u = self.url
        return pymysql.connect(
            host=u.host, port=u.port or DEFAULT_PORT, user=u.user or None,
            password=u.password, database=u.database or None, charset="utf8mb4",
            connect_timeout=self.timeout, read_timeout=self.timeout,
            write_timeout=self.timeout, autocommit=True,
            client_flag=CLIENT.FOUND_ROWS)

    def _is_gone(self, exc: BaseException) -> bool:
        if isinstance(exc, pymysql.err.InterfaceError):
            return True  # the library's "connection already closed"
        if isinstance(exc, pymysql.err.OperationalError) and exc.args:
            return exc.args[0] in _GONE_CODES
        return False

    def thread_id(self) -> int:
        """The server's id of this connection (KILL target), connecting if needed."""
        res = self.raw_query("SELECT CONNECTION_ID()")
        return int(res.rows[0][0]) if res and res.rows else 0


def _open(url: DbUrl, module: Any) -> MysqlConnection:
    timeout = DEFAULT_TIMEOUT
    if module is not None and getattr(module, "params", None):
        timeout = module.params.get("timeout_interval", timeout)
    return MysqlConnection(url, timeout)


def _mod_init(module: LoadedModule) -> None:
    if module.param("timeout_interval") <= 0:
        raise ValueError("timeout_interval must be > 0")


exports = ModuleExports(
    name="db_mysql",
    params=[ParamExport("ping_interval", int, 300),
            ParamExport("timeout_interval", int, DEFAULT_TIMEOUT)],
    api=DbDriver(CAP_ALL, _open),
    mod_init=_mod_init,
)
