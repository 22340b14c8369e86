"""Real databases for tests: one fresh, uniquely named database per test module.

Every test that takes the `db_url` fixture runs three times, on SQLite (a
temporary file), MariaDB/MySQL (127.0.0.1:3306, root) and PostgreSQL
(127.0.0.1:5432, postgres). The database is created before the module's
first test and dropped after its last; an engine whose server is not
reachable is skipped with the reason. `tests/conftest.py` registers this
file as a plugin, so a test only names the fixture:

    from tests.dbfixtures import connect, create_schema, kill_session

    def test_x(db_url):
        create_schema(db_url, ["location"])      # tables + version rows
        con = connect(db_url)
        ...
        kill_session(db_url, con)   # the next statement must reconnect

`db_engine` gives the engine name of the current parameter. The servers
can be moved with SIPSERVER_TEST_MYSQL (e.g. `mysql://root@127.0.0.1:3306`)
and SIPSERVER_TEST_POSTGRES (e.g. `postgres://postgres@127.0.0.1:5432`).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator

import pytest

from sipserver.ctl.db import create_database, create_tables, drop_database, open_db
from sipserver.db.api import DbConnection, DbError, DbGoneError

ENGINES = ("sqlite", "mysql", "postgres")

MYSQL_SERVER = os.environ.get("SIPSERVER_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
POSTGRES_SERVER = os.environ.get("SIPSERVER_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")

_unreachable: dict[str, str] = {}  # engine -> why, remembered for the session


def _db_name(nodeid: str) -> str:
    """`sipt_<module>_p<pid>_<random>`: unique, lower case, within 63 characters."""
    stem = re.sub(r"[^a-z0-9]+", "_", nodeid.rsplit("/", 1)[-1].lower()).strip("_")
    return f"sipt_{stem[:32]}_p{os.getpid()}_{uuid.uuid4().hex[:8]}"


_STALE = re.compile(r"sipt_.*_p(\d+)_[0-9a-f]{8}")
_swept: set[str] = set()


def _sweep_stale(engine: str) -> None:
    """Drop test databases left by runs that were killed before their teardown
    (their pytest process is gone), once per engine and session."""
    if engine in _swept:
        return
    _swept.add(engine)
    maintenance = "mysql" if engine == "mysql" else "postgres"
    con = open_db(server_url(engine, maintenance))
    try:
        if engine == "mysql":
            res = con.raw_query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                "WHERE SCHEMA_NAME LIKE 'sipt\\_%'")
        else:
            res = con.raw_query("SELECT datname FROM pg_database WHERE datname LIKE 'sipt\\_%'")
    finally:
        con.close()
    for (name,) in res.rows if res else []:
        m = _STALE.fullmatch(str(name))
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            try:
                drop_database(server_url(engine, str(name)), force=True)
            except DbError:
                pass


def server_url(engine: str, database: str) -> str:
    """The URL of `database` on the test server for `engine` (mysql/postgres)."""
    base = MYSQL_SERVER if engine == "mysql" else POSTGRES_SERVER
    return f"{base.rstrip('/')}/{database}"


@pytest.fixture(scope="module", params=ENGINES)
def db_engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def db_url(db_engine: str, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of an empty database of engine `db_engine`, dropped afterwards."""
    name = _db_name(request.node.nodeid)
    if db_engine == "sqlite":
        path = tmp_path_factory.mktemp("db") / f"{name}.db"
        yield f"sqlite://{path}"
        return
    if db_engine in _unreachable:
        pytest.skip(_unreachable[db_engine])
    url = server_url(db_engine, name)
    try:
        _sweep_stale(db_engine)
        create_database(url)
    except DbGoneError as e:  # any other error fails the tests
        _unreachable[db_engine] = f"{db_engine} server not reachable: {e}"
        pytest.skip(_unreachable[db_engine])
    try:
        yield url
    finally:
        drop_database(url)


def create_schema(url: str, tables: Iterable[str]) -> None:
    """Create the named 1.6 tables (and `version` with their rows) in `url`."""
    create_tables(url, list(tables))


def connect(url: str) -> DbConnection:
    """A connection to `url` without a script (driver modparams at defaults)."""
    return open_db(url)


def kill_session(url: str, con: DbConnection) -> bool:
    """End `con`'s session on its server from a second connection, as a server
    restart would (MySQL KILL, PostgreSQL pg_terminate_backend). The next
    statement on `con` must reconnect. False for sqlite (no server)."""
    engine = url.split("://", 1)[0]
    if engine.startswith("sqlite"):
        return False
    victim = con.thread_id() if engine == "mysql" else con.backend_pid()  # type: ignore[attr-defined]
    other = connect(url)
    try:
        if engine == "mysql":
            other.raw_query(f"KILL {int(victim)}")
        else:
            other.raw_query("SELECT pg_terminate_backend(?)", [victim])
    finally:
        other.close()
    time.sleep(0.2)  # let the server finish closing it
    return True
