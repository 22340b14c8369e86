"""A usrloc domain (1.6 `udomain_t`: a table such as `location`) in shared memory.

Every record is one entry of a `SharedHash` made by the master before the
fork (AOR -> encoded record, see `records`), so every process sees every
contact. A record is read into a `URecord` (plain Python), changed there,
and written back with one `put` when it is released: saving a REGISTER is
lock, get, put, unlock. The lock is the AOR's stripe of the domain's own
`LockSet` (1.6 lock_udomain), held by the caller around the whole
read-change-write; never hold two at once.

db_mode decides what a change does besides memory: 1 writes each change
to the DB at once (a failed write stays unsynced and the timer retries
it), 2 only marks it and the timer writes it, 3 keeps no memory at all
(every get reads the DB, every change writes it).

Statistics (1.6): `<name>-users`, `<name>-contacts` (counted when a record
is written back) and `<name>-expires` (contacts removed by the timer).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ...core.runtime import L_DBG, L_ERR, L_WARN
from ...shm import LockSet, Segment, SharedHash, ShmOutOfMemory
from .records import (
    CS_DIRTY,
    CS_NEW,
    CS_SYNC,
    HEAD,
    HEAD_UNSYNCED,
    UL_EXPIRED_TIME,
    ContactInfo,
    UContact,
    core_hash,
    decode_record,
    encode_record,
    place_contact,
    reposition,
    run_callbacks,
)

if TYPE_CHECKING:
    from .api import Usrloc

__all__ = ["UL_CONTACT_DELETE", "UL_CONTACT_EXPIRE", "UL_CONTACT_INSERT", "UL_CONTACT_UPDATE",
           "UDomain", "URecord"]

NO_DB, WRITE_THROUGH, WRITE_BACK, DB_ONLY = 0, 1, 2, 3

# callback types (1.6 ul_callback.h)
UL_CONTACT_INSERT = 1 << 0
UL_CONTACT_UPDATE = 1 << 1
UL_CONTACT_DELETE = 1 << 2
UL_CONTACT_EXPIRE = 1 << 3

MIN_BUCKETS = 16384  # the shared table's chains stay short up to ~100k AORs
LOCK_STRIPES = 64
_ENC = "utf-8"
_ERRS = "surrogatepass"


class URecord:
    """An AOR and its contacts, ordered as 1.6 orders them (1.6 urecord_t).

    Changes made through the methods are kept here until the record is
    released (`UDomain.release_urecord`, or `unlock` of its AOR), which
    writes the whole record back with one shared-memory write.
    """

    __slots__ = ("_n0", "aor", "contacts", "dirty", "domain", "stored")

    def __init__(self, domain: UDomain, aor: str, contacts: list[UContact] | None = None,
                 stored: bool = False) -> None:
        self.domain = domain
        self.aor = aor
        self.contacts: list[UContact] = contacts if contacts is not None else []
        self.stored = stored  # the record exists in shared memory
        self.dirty = False  # changed since read
        self._n0 = len(self.contacts) if stored else 0

    def __repr__(self) -> str:
        return f"<URecord {self.domain.name}:{self.aor} {len(self.contacts)} contacts>"

    def valid_contacts(self, now: int | None = None) -> list[UContact]:
        """The contacts not expired (nor deleted) at `now` (default: the current time)."""
        t = self.domain.ul.now() if now is None else now
        return [c for c in self.contacts if c.expires > t or c.expires == 0]

    def get_ucontact(self, contact: str, callid: str, cseq: int) -> tuple[int, UContact | None]:
        """Find a binding as 1.6 get_ucontact does.

        Returns (0, contact) found; (1, None) not found; (-1, contact) found
        with a CSeq that is too old; (-2, contact) found with the same CSeq
        less than cseq_delay seconds after its last update (a retransmission).
        The CSeq is checked only when the Call-ID is the same (always, in
        matching_mode 1, where the Call-ID is part of the match).
        """
        ul = self.domain.ul
        by_callid = ul.matching_mode == 1
        found = None
        for c in self.contacts:
            if c.contact == contact and (not by_callid or c.callid == callid):
                found = c
                break
        if found is None:
            return 1, None
        if by_callid or found.callid == callid:
            if cseq < found.cseq:
                return -1, found
            if cseq == found.cseq:
                return (-2 if found.last_modified + ul.cseq_delay > ul.now() else -1), found
        return 0, found

    def insert_ucontact(self, contact: str, ci: ContactInfo) -> UContact:
        """Add a binding (1.6 insert_ucontact); db_mode 1/3 write it to the DB now."""
        return self.domain._insert_ucontact(self, contact, ci)

    def update_ucontact(self, c: UContact, ci: ContactInfo) -> None:
        """Refresh a binding with a new REGISTER's values (the Call-ID stays)."""
        self.domain._update_ucontact(self, c, ci)

    def delete_ucontact(self, c: UContact) -> None:
        """Remove a binding (1.6 delete_ucontact; in db_mode 2 a contact
        already in the DB stays, marked deleted, until the timer removes it)."""
        self.domain._delete_ucontact(self, c)


class UDomain:
    """One usrloc table (1.6 udomain_t), shared by every process."""

    def __init__(self, ul: Usrloc, name: str) -> None:
        self.ul = ul
        self.name = name
        self.size = ul.hash_slots  # what ul_dump calls `table`
        self.table: SharedHash | None = None
        self.locks: LockSet | None = None
        self._acq: list[Any] = []
        self._rel: list[Any] = []
        self._open: dict[str, URecord] = {}  # records of AORs this process holds locked
        self._locked: set[str] = set()  # AORs this process holds locked
        self.users: Any = None
        self.contacts: Any = None
        self.expires: Any = None

    def __repr__(self) -> str:
        return f"<UDomain {self.name}>"

    # ------------------------------------------------------------ set-up (master, before fork)

    def attach(self, seg: Segment, stats: Any) -> None:
        """Make the shared table, the locks and the statistics of this domain."""
        self.locks = LockSet(LOCK_STRIPES)
        self._acq = self.locks.acquirers
        self._rel = self.locks.releasers
        if self.ul.db_mode != DB_ONLY:
            buckets = max(self.size, MIN_BUCKETS)
            try:
                self.table = SharedHash(seg, buckets, LockSet(LOCK_STRIPES))
            except ShmOutOfMemory as e:
                raise ValueError(f"usrloc: no shared memory for table {self.name} "
                                 f"({buckets} buckets): {e}") from None
        if stats is not None:
            self.users = stats.register("usrloc", f"{self.name}-users", no_reset=True)
            self.contacts = stats.register("usrloc", f"{self.name}-contacts", no_reset=True)
            self.expires = stats.register("usrloc", f"{self.name}-expires")

    def _stat(self, handle: Any, n: int) -> None:
        if handle is not None and n:
            handle.inc(n)

    # ------------------------------------------------------------ locks

    @staticmethod
    def _key(aor: str) -> bytes:
        return aor.encode(_ENC, _ERRS)

    def _stripe(self, key: bytes) -> int:
        return hash(key) % LOCK_STRIPES

    def lock(self, aor: str) -> None:
        """Take the lock of `aor` (1.6 lock_udomain); pair with `unlock`.

        While it is held, `get_urecord` hands out the same URecord each time.
        Not re-entrant: one process holds one AOR lock at a time.
        """
        self._acq[self._stripe(self._key(aor))]()
        self._locked.add(aor)

    def unlock(self, aor: str) -> None:
        """Write back a changed record of `aor` not yet released, then free the lock."""
        try:
            self._locked.discard(aor)
            r = self._open.pop(aor, None)
            if r is not None and r.dirty:
                self.release_urecord(r)
        finally:
            self._rel[self._stripe(self._key(aor))]()

    @contextmanager
    def record(self, aor: str) -> Iterator[URecord]:
        """`with dom.record(aor) as r:` locks, gets (or starts) the record and
        writes it back at the end: one REGISTER's whole save. Nothing is
        written when the block raises."""
        self.lock(aor)
        try:
            r = self.get_urecord(aor) or self.insert_urecord(aor)
            try:
                yield r
            except BaseException:
                self._open.pop(aor, None)
                raise
            self.release_urecord(r)
        finally:
            self.unlock(aor)

    # ------------------------------------------------------------ records

    def _read(self, aor: str, drop_broken: bool = True) -> URecord | None:
        """The record as shared memory holds it now (a fresh copy), or None."""
        assert self.table is not None
        data = self.table.get(self._key(aor))
        if data is None:
            return None
        try:
            contacts = decode_record(aor, data, self.ul.socks)
        except (ValueError, struct.error, UnicodeDecodeError) as e:
            self.ul.log(L_ERR, f"usrloc: broken record {self.name}:{aor}: {e}")
            if drop_broken:
                self.table.delete(self._key(aor))
            return None
        return URecord(self, aor, contacts, stored=True)

    def get_urecord(self, aor: str) -> URecord | None:
        """The record of `aor`, or None (1.6 get_urecord; db_mode 3 reads the DB)."""
        r = self._open.get(aor)
        if r is not None:
            return r
        if self.ul.db_mode == DB_ONLY:
            db = self.ul.db
            rows = db.load_aor(self.name, aor, self.ul.desc_time_order) if db else None
            if not rows:
                return None
            r = URecord(self, aor)
            for contact, ci in rows:
                place_contact(r.contacts, UContact.new(aor, contact, ci, CS_SYNC),
                              self.ul.desc_time_order)
        else:
            r = self._read(aor)
            if r is None:
                return None
        if aor in self._locked:
            self._open[aor] = r
        return r

    def insert_urecord(self, aor: str) -> URecord:
        """A new, empty record for `aor` (stored when it gets a contact)."""
        r = URecord(self, aor)
        if aor in self._locked:
            self._open[aor] = r
        return r

    def release_urecord(self, r: URecord) -> bool:
        """Write a changed record back (an empty one is removed); False when
        shared memory is full (logged; the record keeps its old value)."""
        if not r.dirty:
            return True
        r.dirty = False
        if self.ul.db_mode == DB_ONLY or self.table is None:
            return True
        key = self._key(r.aor)
        n = len(r.contacts)
        if n:
            try:
                data = encode_record(r.contacts, self.ul.socks,
                                     self.ul.db_mode in (WRITE_THROUGH, WRITE_BACK))
            except (struct.error, OverflowError):
                self.ul.log(L_ERR, f"usrloc: a field of {self.name}:{r.aor} is too long "
                                   "(64 KB at most), record not saved")
                return False
            try:
                self.table.put(key, data)
            except ShmOutOfMemory:
                self.ul.log(L_ERR, f"usrloc: out of shared memory, {self.name}:{r.aor} "
                                   "not saved")
                return False
            if not r.stored:
                self._stat(self.users, 1)
        elif r.stored:
            self.table.delete(key)
            self._stat(self.users, -1)
        self._stat(self.contacts, n - r._n0)
        r._n0 = n
        r.stored = n > 0
        return True

    def delete_urecord(self, aor: str, r: URecord | None = None) -> bool:
        """Remove an AOR and all its contacts (1.6 delete_urecord); True when done."""
        if self.ul.db_mode == DB_ONLY:
            db = self.ul.db
            ok = db.delete_aor(self.name, aor) if db else False
            self._open.pop(aor, None)
            return ok
        if r is None:
            r = self.get_urecord(aor)
            if r is None:
                return True
        for c in list(r.contacts):
            self._delete_ucontact(r, c)
        return self.release_urecord(r)

    def records(self) -> list[URecord]:
        """Every record, in 1.6's order (hash slot, then AOR): MI ul_dump."""
        if self.table is None:
            return []
        out = []
        socks = self.ul.socks
        for key, data in self.table.items():
            aor = key.decode(_ENC, _ERRS)
            try:
                out.append(URecord(self, aor, decode_record(aor, data, socks), stored=True))
            except (ValueError, struct.error, UnicodeDecodeError):
                continue
        size = self.size
        out.sort(key=lambda r: (core_hash(self._key(r.aor), size), self._key(r.aor)))
        return out

    def aors(self) -> list[str]:
        """Every AOR, in the order of `records` (MI ul_dump brief: no contact decoded)."""
        if self.table is None:
            return []
        size = self.size
        keys = sorted((k for k, _ in self.table.heads(0)), key=lambda k: (core_hash(k, size), k))
        return [k.decode(_ENC, _ERRS) for k in keys]

    def __len__(self) -> int:
        """Records in the table now."""
        return len(self.table) if self.table is not None else 0

    # ------------------------------------------------------------ contacts

    def _insert_ucontact(self, r: URecord, contact: str, ci: ContactInfo) -> UContact:
        ul = self.ul
        c = UContact.new(r.aor, contact, ci)
        place_contact(r.contacts, c, ul.desc_time_order)
        r.dirty = True
        if ul.callbacks:
            run_callbacks(ul.callbacks, UL_CONTACT_INSERT, c, ul.log_err)
        if ul.db_mode in (WRITE_THROUGH, DB_ONLY) and ul.db is not None \
                and ul.db.insert(self.name, c):
            c.state = CS_SYNC
        return c

    def _update_ucontact(self, r: URecord, c: UContact, ci: ContactInfo) -> None:
        ul = self.ul
        c.apply(ci)
        r.dirty = True
        if ul.callbacks:
            run_callbacks(ul.callbacks, UL_CONTACT_UPDATE, c, ul.log_err)
        if ul.db_mode != DB_ONLY and c in r.contacts:
            reposition(r.contacts, c, ul.desc_time_order)
        if c.state == CS_SYNC and ul.db_mode in (WRITE_THROUGH, WRITE_BACK):
            c.state = CS_DIRTY
        if ul.db_mode in (WRITE_THROUGH, DB_ONLY) and ul.db is not None:
            # a contact whose insert failed is inserted now (1.6 updated a row
            # that did not exist and took it as written)
            write = ul.db.insert if c.state == CS_NEW else ul.db.update
            if write(self.name, c):
                c.state = CS_SYNC

    def _delete_ucontact(self, r: URecord, c: UContact) -> None:
        ul = self.ul
        if ul.callbacks:
            run_callbacks(ul.callbacks, UL_CONTACT_DELETE, c, ul.log_err)
        r.dirty = True
        if c.state != CS_NEW:
            if ul.db_mode == WRITE_BACK:
                c.expires = UL_EXPIRED_TIME  # the timer deletes it from the DB, then here
                return
            if ul.db_mode in (WRITE_THROUGH, DB_ONLY) and ul.db is not None \
                    and not ul.db.delete(self.name, c) and ul.db_mode == WRITE_THROUGH:
                # kept, marked deleted: the timer tries the DB again
                c.expires = UL_EXPIRED_TIME
                return
        if c in r.contacts:
            r.contacts.remove(c)

    # ------------------------------------------------------------ timer

    def timer(self, now: int) -> None:
        """Remove expired contacts; in db_mode 1/2 write unsynced ones to the DB.

        Reads 8 bytes per record to find the ones due (expiry reached or not
        in sync), then handles each under its lock, as 1.6's timer does
        slot by slot.
        """
        if self.ul.db_mode == DB_ONLY:
            if self.ul.db is not None:
                self.ul.db.delete_expired(self.name, now)
            return
        if self.table is None:
            return
        sync = self.ul.db_mode in (WRITE_THROUGH, WRITE_BACK)
        unpack = HEAD.unpack_from
        due = []
        for key, head in self.table.heads(HEAD.size):
            nexp, flags = unpack(head)
            if (nexp and nexp <= now) or (sync and flags & HEAD_UNSYNCED):
                due.append(key)
        failed: list[str] = []
        for key in due:
            aor = key.decode(_ENC, _ERRS)
            s = self._stripe(key)
            self._acq[s]()
            try:
                r = self._read(aor)
                if r is not None and self._timer_record(r, now, sync, failed):
                    r.dirty = True
                    self.release_urecord(r)
            finally:
                self._rel[s]()
        if failed:
            self.ul.log(L_WARN, f"usrloc: {len(failed)} DB writes of table {self.name} failed,"
                                f" retried at the next run (first: {failed[0]})")

    def _timer_record(self, r: URecord, now: int, sync: bool, failed: list[str]) -> bool:
        """One record's expiry and DB sync; True when it changed."""
        ul = self.ul
        db = ul.db if sync else None
        changed = False
        for c in list(r.contacts):
            if not (c.expires > now or c.expires == 0):
                if sync and c.state != CS_NEW and (db is None or not db.delete(self.name, c)):
                    failed.append(f"delete {r.aor} {c.contact}")
                    continue  # kept (invalid, so unseen) until the DB has it gone
                if ul.callbacks:
                    run_callbacks(ul.callbacks, UL_CONTACT_EXPIRE, c, ul.log_err)
                ul.log(L_DBG, f"usrloc: binding '{r.aor}','{c.contact}' has expired")
                r.contacts.remove(c)
                self._stat(self.expires, 1)
                changed = True
            elif sync and c.state != CS_SYNC:
                if db is None:
                    failed.append(f"write {r.aor} {c.contact}")
                    continue
                ok = db.insert(self.name, c) if c.state == CS_NEW else db.update(self.name, c)
                if ok:
                    c.state = CS_SYNC
                    changed = True
                else:
                    failed.append(f"{'insert' if c.state == CS_NEW else 'update'} "
                                  f"{r.aor} {c.contact}")
        return changed

    def final_flush(self, now: int) -> None:
        """Write every unsynced contact to the DB without touching shared memory
        (the master at shutdown: the children are gone and may have died
        holding locks, so only reads are done, and stuck locks are freed)."""
        if self.table is None or self.ul.db is None:
            return
        for lk in list(self.table.locks.locks) + list(self.locks.locks if self.locks else ()):
            if lk.acquire(timeout=0.5):
                lk.release()
            else:  # held by a child that is no longer there
                try:
                    lk.release()
                except ValueError:
                    pass
        db = self.ul.db
        failed = 0
        unpack = HEAD.unpack_from
        for key, head in self.table.heads(HEAD.size):
            nexp, flags = unpack(head)
            if not (flags & HEAD_UNSYNCED or (nexp and nexp <= now)):
                continue
            r = self._read(key.decode(_ENC, _ERRS), drop_broken=False)
            if r is None:
                continue
            for c in r.contacts:
                if not (c.expires > now or c.expires == 0):
                    ok = c.state == CS_NEW or db.delete(self.name, c)
                elif c.state == CS_NEW:
                    ok = db.insert(self.name, c, replace=True)
                elif c.state == CS_DIRTY:
                    ok = db.update(self.name, c)
                else:
                    continue
                failed += not ok
        if failed:
            self.ul.log(L_ERR, f"usrloc: {failed} contacts of table {self.name} could not be "
                               "written to the DB at shutdown")
