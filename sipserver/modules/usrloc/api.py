"""usrloc's API for other modules (1.6 usrloc_api_t / ul_bind_usrloc).

registrar (and later nathelper, pua_usrloc) binds once, at start-up::

    ul = bind_usrloc(env.registry)          # in a fixup or mod_init
    dom = ul.register_udomain("location")   # before the fork

and then, per REGISTER, under one lock::

    dom.lock(aor)
    try:
        r = dom.get_urecord(aor) or dom.insert_urecord(aor)
        code, c = r.get_ucontact(uri, callid, cseq)
        if code == 1:
            r.insert_ucontact(uri, ContactInfo(expires=..., q=..., ...))
        elif code == 0:
            r.update_ucontact(c, ContactInfo(...))
        dom.release_urecord(r)              # one shared-memory write
    finally:
        dom.unlock(aor)

(`with dom.record(aor) as r:` does the same). Contacts of a record are
`r.contacts`, highest q first; `r.valid_contacts()` leaves out expired
ones. `Usrloc` is also the module's state (`LoadedModule.state`): its
parameters, its domains, its DB handle and the timer.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ...core.runtime import L_ERR, L_NOTICE, SocketInfo
from ...db.api import DbError, DbUrlError, db_bind
from .dbsync import NEEDED_CAPS, UlDb
from .records import (
    CS_SYNC,
    SocketCodec,
    UContact,
    core_hash,
    decode_record,
    place_contact,
)
from .store import DB_ONLY, NO_DB, WRITE_BACK, WRITE_THROUGH, UDomain

__all__ = ["NatContact", "Usrloc", "bind_usrloc"]

DEFAULT_DB_URL = "mysql://opensips:opensipsrw@localhost/opensips"
PRIVATE_SHM = 16 * 1024 * 1024  # when the runtime has no segment (unit tests)


class NatContact(NamedTuple):
    """A contact to keep alive (1.6 get_all_ucontacts): where to send, from which socket."""

    uri: str  # the received address if stored, else the contact
    sock: SocketInfo | None
    cflags: int
    path: str


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    try:
        return int(value if value is not None else default)
    except (TypeError, ValueError):
        raise ValueError(f'usrloc: parameter "{name}" must be a number, not {value!r}') from None


class Usrloc:
    """The usrloc module in one process: parameters, domains, DB, timer."""

    def __init__(self, params: dict[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.params = params
        self.clock = clock
        self.db_mode = _int_param(params, "db_mode", 0)
        if self.db_mode not in (NO_DB, WRITE_THROUGH, WRITE_BACK, DB_ONLY):
            raise ValueError(f"usrloc: invalid db_mode {self.db_mode} (0, 1, 2 or 3)")
        self.use_domain = bool(_int_param(params, "use_domain", 0))
        self.desc_time_order = bool(_int_param(params, "desc_time_order", 0))
        self.matching_mode = _int_param(params, "matching_mode", 0)
        if self.matching_mode not in (0, 1):
            raise ValueError(f"usrloc: invalid matching_mode {self.matching_mode} "
                             "(0 contact only, 1 contact and Call-ID)")
        self.cseq_delay = _int_param(params, "cseq_delay", 20)
        self.timer_interval = _int_param(params, "timer_interval", 60)
        if self.timer_interval <= 0:
            raise ValueError(f"usrloc: invalid timer_interval {self.timer_interval}")
        if self.db_mode != NO_DB and _int_param(params, "fetch_rows", 2000) <= 0:
            raise ValueError(f"usrloc: invalid fetch_rows {params.get('fetch_rows')}")
        hs = _int_param(params, "hash_size", 9)
        if hs > 24:
            raise ValueError(f"usrloc: hash_size {hs} too big (at most 24)")
        self.hash_slots = 512 if hs <= 1 else 1 << hs
        bflag = _int_param(params, "nat_bflag", -1)
        if bflag >= 32:
            raise ValueError(f"usrloc: bflag index ({bflag}) too big!")
        self.nat_flag = 0 if bflag < 0 else 1 << bflag
        self.db_url = str(params.get("db_url") or DEFAULT_DB_URL)
        self.domains: dict[str, UDomain] = {}
        self.callbacks: list[tuple[int, Callable[[UContact, int], None]]] = []
        self.db: UlDb | None = None
        self.rt: Any = None
        self.socks = SocketCodec([])
        self._seg: Any = None
        self._owner = os.getpid()
        self.ready = False  # mod_init done: new domains are made at once

    # ------------------------------------------------------------ helpers

    def now(self) -> int:
        """The current time in whole seconds (1.6 act_time)."""
        return int(self.clock())

    def log(self, level: int, text: str) -> None:
        if self.rt is not None:
            self.rt.log(level, text)

    def log_err(self, text: str) -> None:
        self.log(L_ERR, text)

    # ------------------------------------------------------------ start-up

    def init(self, rt: Any) -> None:
        """mod_init: shared tables of the domains named so far, the DB, the timer."""
        self.rt = rt
        self.socks = SocketCodec(rt.sockets)
        seg = rt.shm
        if seg is None:
            from ...shm import Segment
            seg = Segment(PRIVATE_SHM)
        self._seg = seg
        if self.db_mode != NO_DB:
            try:
                binding = db_bind(rt.registry, self.db_url)
            except DbUrlError as e:
                raise ValueError(f"usrloc: {e}") from None
            if binding.caps & NEEDED_CAPS != NEEDED_CAPS:
                raise ValueError(f"usrloc: database module {binding.driver} does not implement "
                                 "all functions needed by the module")
            self.db = UlDb(binding, self.params, self.use_domain, lambda: self.socks,
                           rt.log, self.now)
        self.ready = True
        try:
            for dom in self.domains.values():
                self._make(dom)
        finally:
            if self.db is not None:
                self.db.close()  # no connection crosses the fork
        rt.register_timer("usrloc", self.timer_interval, self.synchronize_all)

    def register_udomain(self, name: str) -> UDomain:
        """The domain (table) `name`, made on first use (1.6 register_udomain).

        Call it before the processes fork (a fixup or mod_init): its shared
        table, locks and statistics must exist in every process. In db_mode
        1/2/3 the table's version is checked, and in 1/2 its rows loaded.
        """
        name = str(name)
        dom = self.domains.get(name)
        if dom is not None:
            return dom
        if not name:
            raise ValueError("usrloc: empty table name")
        if os.getpid() != self._owner:
            raise RuntimeError(f"usrloc: table {name} registered after the processes forked")
        dom = UDomain(self, name)
        if self.ready:
            try:
                self._make(dom)
            finally:
                if self.db is not None:
                    self.db.close()
        self.domains[name] = dom
        return dom

    def _make(self, dom: UDomain) -> None:
        dom.attach(self._seg, getattr(self.rt, "stats", None))
        if self.db is None:
            return
        try:
            self.db.check_table(dom.name)
        except DbError as e:
            raise ValueError(f"usrloc: table {dom.name}: {e}") from None
        if self.db_mode in (WRITE_THROUGH, WRITE_BACK):
            self._preload(dom)

    def _preload(self, dom: UDomain) -> None:
        """Load the table's rows into shared memory (1.6 preload_udomain)."""
        assert self.db is not None
        rows = self.db.load_all(dom.name)
        if rows is None:
            raise ValueError(f"usrloc: failed to load table {dom.name}")
        n = 0
        for aor, contact, ci in rows:
            dom.lock(aor)
            try:
                r = dom.get_urecord(aor) or dom.insert_urecord(aor)
                place_contact(r.contacts, UContact.new(aor, contact, ci, CS_SYNC),
                              self.desc_time_order)
                r.dirty = True
                if not dom.release_urecord(r):
                    raise ValueError(f"usrloc: out of shared memory loading table {dom.name}")
            finally:
                dom.unlock(aor)
            n += 1
        self.log(L_NOTICE, f"usrloc: {n} contacts loaded from table {dom.name}")

    def child_init(self, rank: int) -> None:
        """Nothing to open now: each process connects on its first DB statement."""

    def destroy(self) -> None:
        """Shutdown in the master: write every unsynced contact (db_mode 1/2)."""
        if self.db is None or os.getpid() != self._owner:
            return
        now = self.now()
        for dom in self.domains.values():
            try:
                if self.db_mode == DB_ONLY:
                    dom.timer(now)
                else:
                    dom.final_flush(now)
            except Exception as e:  # shutdown goes on for the other tables
                self.log(L_ERR, f"usrloc: flushing table {dom.name} failed: "
                                f"{type(e).__name__}: {e}")
        self.db.close()

    # ------------------------------------------------------------ timer, MI

    def synchronize_all(self) -> None:
        """The timer (and MI ul_flush): expire contacts, sync the DB (1.6
        synchronize_all_udomains)."""
        now = self.now()
        for dom in self.domains.values():
            dom.timer(now)

    def number_of_users(self) -> int:
        """registered_users: the users of every domain."""
        return sum(d.users.get() for d in self.domains.values() if d.users is not None)

    def find_domain(self, name: str) -> UDomain | None:
        return self.domains.get(name)

    # ------------------------------------------------------------ other modules

    def register_ulcb(self, types: int, fn: Callable[[UContact, int], None]) -> None:
        """Call `fn(contact, type)` on UL_CONTACT_INSERT/UPDATE/DELETE/EXPIRE
        (1.6 register_ulcb); register before the fork."""
        if not types:
            raise ValueError("usrloc: callback without types")
        self.callbacks.append((types, fn))

    def get_all_ucontacts(self, flags: int = 0, part_idx: int = 0,
                          part_max: int = 1) -> list[NatContact]:
        """Valid contacts whose cflags include every bit of `flags`, of the
        partition `part_idx` of `part_max` (by AOR), for NAT keep-alives."""
        part_max = max(part_max, 1)
        now = self.now()
        out: list[NatContact] = []
        for dom in self.domains.values():
            if self.db_mode == DB_ONLY:
                rows = self.db.load_valid(dom.name, now) if self.db is not None else None
                for aor, contact, ci in rows or ():
                    if (ci.cflags & flags) != flags:
                        continue
                    if core_hash(aor.encode("utf-8", "surrogatepass")) % part_max != part_idx:
                        continue
                    out.append(NatContact(ci.received or contact, ci.sock, ci.cflags, ci.path))
                continue
            if dom.table is None:
                continue
            for key, data in dom.table.items():
                if part_max > 1 and core_hash(key, dom.size) % part_max != part_idx:
                    continue
                try:
                    contacts = decode_record("", data, self.socks)
                except (ValueError, struct.error, UnicodeDecodeError):
                    continue
                for c in contacts:
                    if (c.cflags & flags) == flags and c.valid(now):
                        out.append(NatContact(c.uri, c.sock, c.cflags, c.path))
        return out


def bind_usrloc(registry: Any) -> Usrloc:
    """usrloc's API from the loaded modules (1.6 load_ul_api); raises
    ValueError when the script does not load usrloc."""
    mod = registry.modules.get("usrloc") if registry is not None else None
    if mod is None:
        raise ValueError('usrloc module is not loaded (add loadmodule "usrloc.so")')
    if mod.state is None:
        mod.state = Usrloc(mod.params)
    return mod.state
