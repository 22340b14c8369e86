"""db_text: plain-text files as a database (OpenSIPS 1.6 module `db_text`).

`db_url = "text:///abs/dir"` (or `text://rel/dir`, relative to the
directory of the config file): the directory is the database, each file in
it a table in 1.6's format (see fileformat.py). Parameter `db_mode` (int,
0): 0 = a table is loaded once per process and reloaded only when another
sipserver process changed it; 1 = a table whose file changed (a hand edit
too) is reloaded before each use.

Deviation from 1.6, on purpose: every change is written to the file at
once (locked, atomically replaced) instead of at shutdown, because our
processes do not share a table cache and a lost row is not an option.
`write_table()` creates an empty table file (for `sipctl db create`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ...core.exports import LoadedModule, ModuleExports, ParamExport
from ...db.api import DbDriver, DbError, DbUrl
from ...shm import Counters, LockSet
from .connection import CAPS, TextConnection
from .fileformat import Column, column, parse_table, write_table
from .store import GEN_SLOTS, TextDatabase

__all__ = ["Column", "TextConnection", "TextDatabase", "column", "exports", "parse_table",
           "write_table"]


@dataclass(slots=True)
class DbTextState:
    """Per process: where relative URLs start, the mode, and one cache per directory."""

    base_dir: str
    mode: int = 0
    gens: Any = None  # shm Counters bumped by writers (db_mode 0 freshness)
    dbs: dict[str, TextDatabase] = field(default_factory=dict)


def _mode(module: LoadedModule | None) -> int:
    mode = int(module.params.get("db_mode", 0)) if module is not None else 0
    if mode not in (0, 1):
        raise DbError(f"db_text: db_mode must be 0 (cache) or 1 (reload changed files), "
                      f"not {mode}")
    return mode


def _base_dir(module: LoadedModule | None) -> str:
    """The config file's directory when the runtime knows it, else the cwd."""
    rt = module.rt if module is not None else None
    return (rt.cfg_dir if rt is not None else "") or os.getcwd()


def _state(module: LoadedModule | None) -> DbTextState:
    state = module.state if module is not None else None
    if isinstance(state, DbTextState):
        return state
    state = DbTextState(_base_dir(module), _mode(module))
    if module is not None:
        module.state = state
    return state


def mod_init(module: LoadedModule) -> None:
    """Check db_mode, fix the base directory before a daemon's chdir, make the counters."""
    state = _state(module)
    shm = getattr(module.rt, "shm", None)
    if shm is not None and state.gens is None:
        state.gens = Counters(shm, GEN_SLOTS, LockSet(4))


def open_connection(url: DbUrl, module: LoadedModule | None = None) -> TextConnection:
    """A connection to the URL's directory (DbDriver.open)."""
    state = _state(module)
    path = url.database
    if not os.path.isabs(path):
        path = os.path.join(state.base_dir, path)
    path = os.path.normpath(path)
    db = state.dbs.get(path)
    if db is None:
        if not os.path.isdir(path):
            raise DbError(f"db_text: database directory {path} does not exist "
                          f"(db_url {url.redacted()})")
        db = state.dbs[path] = TextDatabase(path, state.mode, state.gens)
    return TextConnection(db)


exports = ModuleExports(
    name="db_text",
    params=[ParamExport("db_mode", int, 0)],
    api=DbDriver(CAPS, open_connection),
    mod_init=mod_init,
)
