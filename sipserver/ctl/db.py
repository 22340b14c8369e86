"""`sipctl db create|drop|migrate`: the 1.6 tables on sqlite, MySQL or PostgreSQL.

Like opensipsdbctl: `create` makes the database (on engines that have
databases), every table of sipserver.db.schema and their `version` rows;
`drop` removes the database (or only the tables named); `migrate` brings
an existing database up to date: missing tables are created, missing
columns of older table versions added, version rows set, and whatever
else differs is reported. The functions are also what tests and tools use
to set up a database (`create_tables`, `open_db`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from ..core.exports import Registry
from ..core.modload import ModuleError, load_module
from ..db import schema
from ..db.api import DbConnection, DbDriver, DbError, DbGoneError
from ..db.url import DbUrl, DbUrlError, default_db_url, parse_db_url

USAGE = """usage: sipctl db create|drop|migrate|tables [--db-url URL] [--yes] [TABLE...]

  create    create the database (MySQL/PostgreSQL; the file for SQLite), every
            table (or the TABLEs named; a module name means all its tables)
            and their version rows; changes nothing when a table exists
  drop      drop the database (the SQLite file), or only the TABLEs named;
            asks first unless --yes
  migrate   create missing tables, add the columns older table versions lack,
            set the version rows, and report anything else that differs
  tables    list the tables sipserver knows, with their versions

The URL comes from --db-url, else $SIPSERVER_DB_URL, else the embedded
SQLite database sqlite:///var/lib/sipserver/sipserver.db (./sipserver.db
when /var/lib/sipserver cannot be written).
"""

_ENGINES = {"sqlite": "sqlite", "sqlite3": "sqlite", "mysql": "mysql",
            "postgres": "postgres", "postgresql": "postgres"}


def engine_of(url: str | DbUrl) -> str:
    """sqlite, mysql or postgres; DbUrlError for any other scheme."""
    parsed = parse_db_url(url) if isinstance(url, str) else url
    try:
        return _ENGINES[parsed.scheme]
    except KeyError:
        raise DbUrlError(f'db_url "{parsed.redacted()}": sipctl db handles sqlite, mysql and '
                         "postgres URLs only") from None


def open_db(url: str | DbUrl) -> DbConnection:
    """A connection to `url` through its driver module, modparams at defaults."""
    parsed = parse_db_url(url) if isinstance(url, str) else url
    name = "db_" + _ENGINES.get(parsed.scheme, parsed.scheme)
    registry = Registry()
    try:
        mod = load_module(registry, name)
    except ModuleError as e:
        raise DbUrlError(f'db_url "{parsed.redacted()}": {e}') from None
    if not isinstance(mod.exports.api, DbDriver):
        raise DbUrlError(f'db_url "{parsed.redacted()}": {name} is not a DB driver')
    return mod.exports.api.open(parsed, mod)


def _server(url: DbUrl) -> DbConnection:
    """A connection to the server of `url`, outside the database it names."""
    maintenance = "" if engine_of(url) == "mysql" else "postgres"
    return open_db(dataclasses.replace(url, database=maintenance))


def _sqlite_path(url: DbUrl) -> str:
    from ..modules.db_sqlite import db_path
    return db_path(url)


def database_exists(url: str) -> bool:
    parsed = parse_db_url(url)
    engine = engine_of(parsed)
    if engine == "sqlite":
        return os.path.exists(_sqlite_path(parsed))
    try:  # reachable as it is: exists (works without rights on the server's catalog)
        probe = open_db(parsed)
        try:
            probe.raw_query("SELECT 1")
            return True
        finally:
            probe.close()
    except DbError:
        pass
    con = _server(parsed)
    try:
        if engine == "mysql":
            res = con.raw_query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                "WHERE SCHEMA_NAME=?", (parsed.database,))
        else:
            res = con.raw_query("SELECT datname FROM pg_database WHERE datname=?",
                                (parsed.database,))
        return bool(res and res.rows)
    finally:
        con.close()


def create_database(url: str, exist_ok: bool = False) -> bool:
    """Create the database `url` names; False when it already existed.

    MySQL databases are utf8mb4 with binary collation (string comparisons
    are exact, as on the other engines); PostgreSQL ones UTF8.
    """
    parsed = parse_db_url(url)
    engine = engine_of(parsed)
    if engine == "sqlite":
        path = _sqlite_path(parsed)
        existed = os.path.exists(path)
        if existed and not exist_ok:
            raise DbError(f"database {path} already exists")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as e:
            raise DbGoneError(f"cannot create {os.path.dirname(path)}: {e.strerror}") from None
        con = open_db(url)
        try:
            con.raw_query("SELECT 1")  # creates the file, switches it to WAL
        finally:
            con.close()
        return not existed
    if database_exists(url):
        if not exist_ok:
            raise DbError(f"database {parsed.database} already exists")
        return False
    con = _server(parsed)
    try:
        name = schema.q(engine, parsed.database)
        if engine == "mysql":
            con.raw_query(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        else:
            con.raw_query(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
    finally:
        con.close()
    return True


def drop_database(url: str, force: bool = False) -> bool:
    """Drop the database `url` names (delete the SQLite file); False when absent.

    `force` also ends other sessions on it first (PostgreSQL refuses to
    drop a database in use).
    """
    parsed = parse_db_url(url)
    engine = engine_of(parsed)
    if engine == "sqlite":
        path = _sqlite_path(parsed)
        existed = os.path.exists(path)
        for p in (path, path + "-wal", path + "-shm", path + "-journal"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise DbError(f"cannot remove {p}: {e.strerror}") from None
        return existed
    if not database_exists(url):
        return False
    con = _server(parsed)
    try:
        name = schema.q(engine, parsed.database)
        extra = " WITH (FORCE)" if force and engine == "postgres" else ""
        con.raw_query(f"DROP DATABASE IF EXISTS {name}{extra}")
    finally:
        con.close()
    return True


def existing_tables(con: DbConnection, engine: str) -> set[str]:
    if engine == "sqlite":
        res = con.raw_query("SELECT name FROM sqlite_master WHERE type='table'")
    elif engine == "mysql":
        res = con.raw_query("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema=DATABASE()")
    else:
        res = con.raw_query("SELECT tablename FROM pg_tables WHERE schemaname=current_schema()")
    return {str(r[0]) for r in res.rows} if res else set()


def table_columns(con: DbConnection, engine: str, table: str) -> list[str]:
    """The column names of `table`, in order."""
    if engine == "sqlite":
        res = con.raw_query(f"PRAGMA table_info({schema.q(engine, table)})")
        return [str(r[1]) for r in res.rows] if res else []
    schema_fn = "DATABASE()" if engine == "mysql" else "current_schema()"
    res = con.raw_query("SELECT column_name FROM information_schema.columns WHERE "
                        f"table_schema={schema_fn} AND table_name=? ORDER BY ordinal_position",
                        (table,))
    return [str(r[0]) for r in res.rows] if res else []


def _resolve(tables: Sequence[str] | None) -> list[schema.Table]:
    if not tables:
        return [t for t in schema.TABLES.values() if t.name != "version"]
    out = []
    for name in tables:
        if name in schema.TABLES:
            out.append(schema.TABLES[name])
        elif name in schema.MODULE_TABLES:  # a module's name: all its tables
            out.extend(schema.table(n) for n in schema.MODULE_TABLES[name])
        else:
            try:
                out.append(schema.table(name))
            except KeyError as e:
                raise DbError(str(e.args[0])) from None
    return [t for t in dict.fromkeys(out) if t.name != "version"]


def _create_table(con: DbConnection, engine: str, tbl: schema.Table) -> None:
    for stmt in schema.ddl(engine, tbl):
        con.raw_query(stmt)


def _set_version(con: DbConnection, tbl: schema.Table) -> None:
    if tbl.version is None:
        return
    if con.update("version", ("table_name",), None, (tbl.name,),
                  ("table_version",), (tbl.version,)) == 0:
        con.insert("version", ("table_name", "table_version"), (tbl.name, tbl.version))


def create_tables(url: str, tables: Sequence[str] | None = None, exist_ok: bool = True,
                  report: Callable[[str], None] | None = None) -> list[str]:
    """Create `tables` (names or module names; default all) and their version rows.

    Existing tables are skipped with `exist_ok`, otherwise DbError lists
    them before anything is changed. Returns the tables created.
    """
    engine = engine_of(url)
    wanted = _resolve(tables)
    con = open_db(url)
    try:
        have = existing_tables(con, engine)
        clash = [t.name for t in wanted if t.name in have]
        if clash and not exist_ok:
            raise DbError(f"table(s) already exist: {', '.join(clash)} "
                          "(use `sipctl db migrate` to update them)")
        if "version" not in have:
            _create_table(con, engine, schema.TABLES["version"])
        created = []
        for tbl in wanted:
            if tbl.name in have:
                continue
            _create_table(con, engine, tbl)
            _set_version(con, tbl)
            created.append(tbl.name)
            if report:
                report(f"created table {tbl.name} (version {tbl.version})")
        return created
    finally:
        con.close()


def drop_tables(url: str, tables: Sequence[str]) -> list[str]:
    """Drop the named tables (and their version rows); returns those dropped."""
    engine = engine_of(url)
    wanted = _resolve(tables)
    con = open_db(url)
    try:
        have = existing_tables(con, engine)
        dropped = []
        for tbl in wanted:
            if tbl.name in have:
                con.raw_query(f"DROP TABLE {schema.q(engine, tbl.name)}")
                dropped.append(tbl.name)
            if "version" in have:
                con.delete("version", ("table_name",), None, (tbl.name,))
        return dropped
    finally:
        con.close()


def migrate(url: str, tables: Sequence[str] | None = None,
            report: Callable[[str], None] = lambda s: None) -> int:
    """Bring `url` up to the current table versions; returns the number of
    differences left that need a hand (0 = up to date)."""
    engine = engine_of(url)
    create_database(url, exist_ok=True)
    wanted = _resolve(tables)
    con = open_db(url)
    left = 0
    try:
        have = existing_tables(con, engine)
        if "version" not in have:
            _create_table(con, engine, schema.TABLES["version"])
            report("created table version")
        versions = {str(r[0]): r[1] for r in con.query("version").rows}
        for tbl in wanted:
            if tbl.name not in have:
                _create_table(con, engine, tbl)
                _set_version(con, tbl)
                report(f"created table {tbl.name} (version {tbl.version})")
                continue
            cols = table_columns(con, engine, tbl.name)
            for col in tbl.columns:
                if col.name not in cols:
                    con.raw_query(schema.add_column_ddl(engine, tbl, col))
                    report(f"{tbl.name}: added column {col.name}")
            extra = [c for c in cols if c not in tbl.column_names]
            if extra:
                left += 1
                report(f"{tbl.name}: columns not in version {tbl.version}, left as they are: "
                       f"{', '.join(extra)}")
            found = versions.get(tbl.name)
            if found != tbl.version:
                _set_version(con, tbl)
                report(f"{tbl.name}: version {found if found is not None else 'none'} -> "
                       f"{tbl.version}")
        return left
    finally:
        con.close()


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"sipctl db: {question} Refusing without --yes (stdin is not a terminal)",
              file=sys.stderr)
        return False
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    """`sipctl db ...`; exit 0 on success, 1 on a DB error, 2 on bad usage."""
    env = os.environ if env is None else env
    args: list[str] = []
    url: str | None = None
    yes = False
    rest = list(argv)
    while rest:  # options may come before or after the action
        opt = rest.pop(0)
        if not opt.startswith("-"):
            args.append(opt)
        elif opt in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        elif opt in ("-y", "--yes"):
            yes = True
        elif opt.startswith("--db-url="):
            url = opt.split("=", 1)[1]
        elif opt == "--db-url":
            if not rest:
                return _usage("option --db-url needs a value")
            url = rest.pop(0)
        else:
            return _usage(f"unknown option {opt}")
    if not args:
        return _usage("which action? (create, drop, migrate, tables)")
    action, tables = args[0], args[1:]
    if action == "tables":
        for t in schema.TABLES.values():
            print(f"{t.name} {t.version if t.version is not None else '-'}")
        return 0
    if action not in ("create", "drop", "migrate"):
        return _usage(f"unknown action {action!r}")
    url = url or default_db_url(env)
    try:
        parsed = parse_db_url(url)
        engine_of(parsed)
        where = parsed.redacted()
        if action == "create":
            _resolve(tables)  # unknown table names fail before anything changes
            if create_database(url, exist_ok=True):
                print(f"created database {where}")
            created = create_tables(url, tables, exist_ok=False, report=print)
            print(f"{len(created)} table(s) created in {where}")
        elif action == "drop":
            what = f"tables {' '.join(tables)} of" if tables else "database"
            if not _confirm(f"Drop {what} {where}?", yes):
                return 1
            if tables:
                dropped = drop_tables(url, tables)
                print(f"dropped {len(dropped)} table(s): {' '.join(dropped) or '-'}")
            elif drop_database(url):
                print(f"dropped database {where}")
            else:
                print(f"sipctl db: database {where} does not exist", file=sys.stderr)
                return 1
        else:
            left = migrate(url, tables, report=print)
            print(f"{where} is up to date" if not left else
                  f"{left} table(s) differ in ways migrate leaves alone (see above)")
    except DbUrlError as e:
        return _usage(str(e))
    except DbError as e:
        print(f"sipctl db: {e}", file=sys.stderr)
        return 1
    return 0


def _usage(msg: str) -> int:
    print(f"sipctl db: {msg}\n\n{USAGE}", file=sys.stderr, end="")
    return 2
