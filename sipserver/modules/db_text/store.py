"""One database directory as a process sees it: tables cached, kept true to disk.

1.6 keeps every table in shared memory and writes changed tables back only
at shutdown. We run many processes without a shared table cache, so a
change is written through at once instead: the table file is locked
(`flock`) across read-modify-write, re-read if anyone changed it, changed,
written to a temporary file and renamed over the old one. No process loses
another's rows, and a crash loses nothing that was acknowledged.

Reads use this process's cache. `db_mode` 1 checks the file before every
use and reloads it when it changed (any edit). `db_mode` 0 loads a table
once and then reloads it only when another sipserver process wrote it: a
writer bumps a generation counter in shared memory (`gens`, made in the
master), the cheap way to see what 1.6's shared cache showed every process;
hand edits are picked up at the next write (merged, never overwritten).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ...db.api import DbError
from .fileformat import TableData, parse_table, write_file

GEN_SLOTS = 64  # generation counters, shared by the tables whose paths hash alike
LOCK_WAIT = 10.0  # seconds to wait for another writer before giving up

R = TypeVar("R")
FileKey = tuple[int, int, int, int]


def _file_key(st: os.stat_result) -> FileKey:
    """What changes when a file is replaced or edited in place."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(slots=True)
class CachedTable:
    """A loaded table with its column index and auto-increment high-water mark."""

    name: str
    data: TableData
    key: FileKey
    gen: int
    index: dict[str, int]  # lower-cased column name -> position (1.6 matches names caselessly)
    auto_val: int


class TextDatabase:
    """A database directory: table cache, locking and atomic write-back."""

    def __init__(self, path: str, mode: int = 0, gens: Any = None) -> None:
        self.path = path
        self.mode = mode
        self.gens = gens  # sipserver.shm.Counters, or None (single process, tests)
        self.tables: dict[str, CachedTable] = {}

    def table_path(self, name: str) -> str:
        if not name or "/" in name or "\0" in name or name.startswith("."):
            raise DbError(f'db_text: bad table name "{name}"')
        return os.path.join(self.path, name)

    def _slot(self, path: str) -> int:
        return zlib.crc32(path.encode("utf-8", "surrogateescape")) % GEN_SLOTS

    def _gen(self, path: str) -> int:
        return self.gens.get(self._slot(path)) if self.gens is not None else 0

    def _missing(self, name: str, path: str) -> DbError:
        self.tables.pop(name, None)
        return DbError(f"db_text: table {name} does not exist (no file {path})")

    def _load(self, name: str, path: str, raw: bytes, st: os.stat_result,
              gen: int) -> CachedTable:
        data = parse_table(path, raw)
        old = self.tables.get(name)
        auto_val = max(data.auto_max, old.auto_val if old is not None else 0)
        index = {c.name.lower(): i for i, c in enumerate(data.columns)}
        table = CachedTable(name, data, _file_key(st), gen, index, auto_val)
        self.tables[name] = table
        return table

    def read(self, name: str) -> CachedTable:
        """The table for a query, reloaded when `db_mode` says it may be stale."""
        path = self.table_path(name)
        cached = self.tables.get(name)
        if cached is not None and self.mode == 0 and (
                self.gens is None or self.gens.get(self._slot(path)) == cached.gen):
            return cached
        gen = self._gen(path)  # before the file: a write after this is seen next time
        try:
            st = os.stat(path)
            if cached is not None and cached.key == _file_key(st):
                cached.gen = gen
                return cached
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                raw = f.read()
        except FileNotFoundError:
            raise self._missing(name, path)
        except OSError as e:
            raise DbError(f"db_text: cannot read {path}: {e.strerror or e}")
        return self._load(name, path, raw, st, gen)

    def modify(self, name: str,
               change: Callable[[CachedTable], tuple[TableData | None, R]]) -> R:
        """Run `change` on the current table under the file lock; write its result.

        `change` returns (new table data or None when nothing changed, result)
        and must not alter the table it is given (the cache stays valid if
        the write fails).
        """
        path = self.table_path(name)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                f = open(path, "rb")  # noqa: SIM115 - held across the retry loop
            except FileNotFoundError:
                raise self._missing(name, path)
            except OSError as e:
                raise DbError(f"db_text: cannot open {path}: {e.strerror or e}")
            try:
                self._lock(f.fileno(), path, deadline)
                st = os.fstat(f.fileno())
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    raise self._missing(name, path)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    continue  # replaced while we waited: lock the new file
                table = self.tables.get(name)
                if table is None or table.key != _file_key(st):
                    table = self._load(name, path, f.read(), st, self._gen(path))
                new_data, result = change(table)
                if new_data is not None:
                    self._write(table, path, new_data, st)
                return result
            except OSError as e:
                raise DbError(f"db_text: cannot update {path}: {e.strerror or e}")
            finally:
                f.close()  # releases the lock

    def _lock(self, fd: int, path: str, deadline: float) -> None:
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() > deadline:
                raise DbError(f"db_text: {path} stayed locked for {LOCK_WAIT:.0f}s")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def _write(self, table: CachedTable, path: str, data: TableData,
               old: os.stat_result) -> None:
        # a symlinked table keeps its link: the file it points to is replaced
        st = write_file(os.path.realpath(path), data.render(), old.st_mode)
        gen = self.gens.add(self._slot(path)) if self.gens is not None else 0
        auto_val = max(table.auto_val, data.auto_max)
        self.tables[table.name] = CachedTable(table.name, data, _file_key(st), gen,
                                              table.index, auto_val)
