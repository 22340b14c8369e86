"""The module's state: rule files, the shared address table and its DB.

The table is read from the DB in mod_init (before the fork) and again on
MI `address_reload` in whatever process serves MI, through that process's
own connection (opened on first use, dropped after a failure so the next
reload starts afresh). A reload that fails (DB error, bad row, out of
shared memory) changes nothing: the table in use stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...core.runtime import L_DBG, L_ERR
from ...db.api import DbBinding, DbConnection, DbError, ProcessConnection
from ...shm import ShmOutOfMemory
from .address import AddressLoadError, AddressTables, build_tables, encode
from .routing import RuleFiles
from .store import AddressStore

TABLE_VERSION = 5


@dataclass(slots=True)
class AddressDb:
    """Where the address table comes from (1.6 params: table and column names)."""

    binding: DbBinding
    table: str
    columns: tuple[str, ...]  # ip, grp, mask, port, proto, pattern, info, id
    db: ProcessConnection = field(init=False)  # this process's connection

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)

    def connection(self) -> DbConnection:
        return self.db.get()

    def drop(self) -> None:
        """Close this process's connection (after a failure; at exit)."""
        self.db.close()

    def rows(self) -> list[tuple[Any, ...]]:
        res = self.connection().query(self.table, columns=self.columns)
        return list(res.rows)


@dataclass(slots=True)
class PermState:
    files: RuleFiles = field(default_factory=RuleFiles)
    check_all_branches: bool = True
    allow_suffix: str = ".allow"
    deny_suffix: str = ".deny"
    base_dir: str = ""
    db: AddressDb | None = None
    store: AddressStore | None = None

    def tables(self) -> AddressTables | None:
        """This process's view of the current address table (None without db_url)."""
        return self.store.current() if self.store is not None else None

    def reload(self, rt: Any) -> str | None:
        """Read the table and make it current; None on success, else why not."""
        if self.db is None or self.store is None:
            return "no db_url"
        try:
            rows = self.db.rows()
        except DbError as e:
            self.db.drop()
            return f"failed to query database: {e}"
        try:
            hash_rows, subnets = build_tables(rows, lambda text: rt.log(L_DBG, f"permissions: {text}"))
            self.store.publish(encode(hash_rows, subnets))
        except AddressLoadError as e:
            return f"table {self.db.table}: {e}"
        except ShmOutOfMemory as e:
            return str(e)
        rt.log(L_DBG, f"permissions: address table reloaded: {len(hash_rows)} addresses, "
                      f"{len(subnets)} subnets")
        return None

    def reload_logged(self, rt: Any) -> bool:
        why = self.reload(rt)
        if why is not None:
            rt.log(L_ERR, f"permissions: address table reload failed: {why}")
        return why is None
