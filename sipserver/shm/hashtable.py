"""A lock-striped hash table of byte records in the shared segment.

What tm (transactions, looked up on every reply), usrloc, dialog and
``$shv`` keep: a key and a value, both ``bytes`` (callers encode their
records, e.g. with ``struct``), reachable from every process. The bucket
array and every entry are blocks of the ``Segment``; bucket ``b`` is
guarded by lock ``b % len(locks)`` of a ``LockSet``, so processes working
on different stripes never wait for each other (1.6's tm hash table with
its per-entry locks is the model).

An entry is one block: ``next`` offset, the key's hash, key length, value
length, key bytes, value bytes. The hash is stored so a chain walk compares
two integers before it compares keys. A new value that fits the block's
capacity (and does not leave most of it empty) is written in place, so a
counter or status update allocates nothing.

Keys hash with Python's ``hash()`` by default: fast, and the same in every
process forked from the master (the hash seed is inherited); pass
``hash_func`` (returning an int that fits 64 signed bits) when a
fork-independent or externally visible index is wanted. The number of
buckets is fixed at creation, before forking; size it for the expected
population (1.6's tm uses 65536).

Everything a method does happens under one bucket lock; the allocator's
lock is taken inside it when needed (always in that order, so no
deadlock). ``update()`` calls the caller's function under the bucket lock:
it must be quick and must not touch the same table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from sipserver.shm.locks import LockSet
from sipserver.shm.segment import SIZE_MASK, Segment, ShmOutOfMemory

_E = struct.Struct("<QqII")  # next, hash, key length, value length
_ESIZE = _E.size
_e_unpack = _E.unpack_from
_e_pack = _E.pack_into
_Q = struct.Struct("<Q")
_q_unpack = _Q.unpack_from
_q_pack = _Q.pack_into
_I = struct.Struct("<I")
_C = struct.Struct("<q")
_FIT_SLACK = 64  # put(fit=True) leaves a block alone when it is at most this much too big


class SharedHash:
    """``bytes -> bytes`` map in shared memory, usable from every forked process."""

    __slots__ = ("_acq", "_buf", "_counts", "_counts_all", "_hash", "_heads", "_nb", "_nl", "_rel",
                 "locks", "nbuckets", "seg")

    def __init__(self, segment: Segment, buckets: int, locks: LockSet,
                 hash_func: Callable[[bytes], int] | None = None) -> None:
        if buckets < 1:
            raise ValueError("a hash table needs at least one bucket")
        self.seg = segment
        self.nbuckets = buckets
        self.locks = locks
        self._nb = buckets
        self._nl = locks.n
        self._acq = locks.acquirers
        self._rel = locks.releasers
        self._hash = hash_func or hash
        self._buf = segment.buf
        self._heads = segment.alloc(8 * buckets, zero=True)
        self._counts_all = struct.Struct(f"<{locks.n}q")
        try:
            self._counts = segment.alloc(8 * locks.n, zero=True)
        except ShmOutOfMemory:
            segment.free(self._heads)
            raise

    # ------------------------------------------------------------ lookups

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        """The value stored for ``key``, else ``default``."""
        h = self._hash(key)
        b = h % self._nb
        s = b % self._nl
        self._acq[s]()
        try:
            _link, p, _nx, value = self._find(b, h, key)
            return value if p else default
        finally:
            self._rel[s]()

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        """Entries in the table (summed over stripes without locking: a snapshot)."""
        return sum(self._counts_all.unpack_from(self._buf, self._counts))

    # ------------------------------------------------------------ changes

    def put(self, key: bytes, value: bytes, reserve: int = 0, fit: bool = False,
            strict: bool = False) -> None:
        """Store ``value`` for ``key`` (insert or replace).

        ``reserve``: when a new block is needed, room for a value of that
        many bytes (a record expected to grow is then rewritten in place);
        the exact size is taken when memory is too short for it, unless
        ``strict``: then the reserve is required (memory taken up front
        for what the record will hold) and ShmOutOfMemory says it is not
        there. ``fit``: the record is done growing (it shrank for good): move it
        to a block of its size when its block is larger, giving the rest
        back (in place when memory is too short to move).

        Raises ShmOutOfMemory when the record does not fit; the table then
        holds what it held before.
        """
        h = self._hash(key)
        b = h % self._nb
        s = b % self._nl
        self._acq[s]()
        try:
            link, p, nx, _ = self._find(b, h, key, value=False)
            self._store(s, b, link, p, nx, h, key, value, reserve, fit, strict)
        finally:
            self._rel[s]()

    def update(self, key: bytes,
               fn: Callable[[bytes | None], bytes | None]) -> bytes | None:
        """Read-modify-write ``key`` under its bucket lock; the new value.

        ``fn(old)`` gets the current value (None when absent) and returns
        the value to store, or None to delete the entry (or leave it
        absent). If ``fn`` raises, or the new value does not fit in
        memory (ShmOutOfMemory), the entry keeps its old value.
        """
        h = self._hash(key)
        b = h % self._nb
        s = b % self._nl
        self._acq[s]()
        try:
            link, p, nx, old = self._find(b, h, key)
            new = fn(old)
            if new is None:
                if p:
                    self._unlink(s, link, p, nx)
                return None
            self._store(s, b, link, p, nx, h, key, new)
            return new
        finally:
            self._rel[s]()

    def pop(self, key: bytes, default: bytes | None = None) -> bytes | None:
        """Remove ``key``; its value, else ``default``."""
        h = self._hash(key)
        b = h % self._nb
        s = b % self._nl
        self._acq[s]()
        try:
            link, p, nx, value = self._find(b, h, key)
            if not p:
                return default
            self._unlink(s, link, p, nx)
            return value
        finally:
            self._rel[s]()

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; whether it was there."""
        return self.pop(key) is not None

    def clear(self) -> None:
        """Remove every entry (stripe by stripe)."""
        buf = self._buf
        for s in range(self._nl):
            self._acq[s]()
            try:
                for b in range(s, self._nb, self._nl):
                    link = self._heads + 8 * b
                    p = _q_unpack(buf, link)[0]
                    while p:
                        nx = _q_unpack(buf, p)[0]
                        self._unlink(s, link, p, nx)
                        p = nx
            finally:
                self._rel[s]()

    # ------------------------------------------------------------ dumps

    def items(self) -> list[tuple[bytes, bytes]]:
        """A snapshot of every entry (for MI dumps).

        Each stripe is read under its lock, so every entry is consistent;
        the table as a whole may move on while later stripes are read.
        """
        return self._scan(None)

    def heads(self, n: int) -> list[tuple[bytes, bytes]]:
        """Like ``items()``, with only the first ``n`` bytes of each value
        (a scan for a fixed-size field at the front of the records)."""
        return self._scan(n)

    def _scan(self, n: int | None) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        buf = self._buf
        nb = self._nb
        nl = self._nl
        for s in range(min(nl, nb)):
            self._acq[s]()
            try:
                with memoryview(buf) as mv, \
                        mv[self._heads:self._heads + 8 * nb].cast("Q") as heads:
                    firsts = heads[s::nl].tolist()
                for p in firsts:
                    while p:
                        nx, _eh, ekl, evl = _e_unpack(buf, p)
                        k = p + _ESIZE
                        v = k + ekl
                        out.append((buf[k:v], buf[v:v + (evl if n is None else min(n, evl))]))
                        p = nx
            finally:
                self._rel[s]()
        return out

    def keys(self) -> list[bytes]:
        """A snapshot of the keys."""
        return [k for k, _v in self.items()]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys())

    def destroy(self) -> None:
        """Free every entry and the table itself (the object is unusable after)."""
        self.clear()
        self.seg.free(self._counts)
        self.seg.free(self._heads)

    # ------------------------------------------------------------ internals

    def _alloc(self, need: int, want: int, strict: bool = False) -> int:
        """A block of ``want`` bytes, else (not ``strict``) of ``need`` (ShmOutOfMemory)."""
        if strict:
            return self.seg.alloc(max(need, want))
        if want > need:
            try:
                return self.seg.alloc(want)
            except ShmOutOfMemory:
                pass
        return self.seg.alloc(need)

    def _find(self, b: int, h: int, key: bytes,
              value: bool = True) -> tuple[int, int, int, bytes | None]:
        """Walk bucket ``b`` (its stripe lock held) for ``key``.

        Returns (address of the pointer to the entry, entry (0: none), the
        entry's next, its value (None: none, or not asked for)) — what get,
        put, update and pop each need.
        """
        buf = self._buf
        kl = len(key)
        link = self._heads + 8 * b
        p = _q_unpack(buf, link)[0]
        while p:
            nx, eh, ekl, evl = _e_unpack(buf, p)
            if eh == h and ekl == kl:
                k = p + _ESIZE
                if buf[k:k + kl] == key:
                    return link, p, nx, buf[k + kl:k + kl + evl] if value else None
            link = p
            p = nx
        return link, 0, 0, None

    def _store(self, s: int, b: int, link: int, p: int, nx: int, h: int,
               key: bytes, value: bytes, reserve: int = 0, fit: bool = False,
               strict: bool = False) -> None:
        """Write ``value`` for ``key`` under stripe lock ``s``.

        ``p`` is the existing entry (0: none) and ``link`` the address of
        the pointer to it; in place when the value fits the block.
        """
        buf = self._buf
        kl = len(key)
        need = _ESIZE + kl + len(value)
        if p:
            cap = (_q_unpack(buf, p - 8)[0] & SIZE_MASK) - 8
            # in place unless the block is far too big (a reserved block,
            # put(reserve=), must survive the smaller writes before it fills)
            if need <= cap <= (need + _FIT_SLACK if fit else 4 * need + 4096):
                _I.pack_into(buf, p + 20, len(value))
                buf[p + _ESIZE + kl:p + need] = value
                return
            try:
                q = self._alloc(need, 0 if fit else _ESIZE + kl + reserve, strict)
            except ShmOutOfMemory:
                if need > cap:
                    raise
                # shrinking with no room to move: keep the big block
                _I.pack_into(buf, p + 20, len(value))
                buf[p + _ESIZE + kl:p + need] = value
                return
            buf[q:q + need] = _E.pack(nx, h, kl, len(value)) + key + value
            _q_pack(buf, link, q)
            self.seg.free(p)
            return
        q = self._alloc(need, _ESIZE + kl + reserve, strict)
        at = self._heads + 8 * b
        buf[q:q + need] = _E.pack(_q_unpack(buf, at)[0], h, kl, len(value)) + key + value
        _q_pack(buf, at, q)
        c = self._counts + 8 * s
        _C.pack_into(buf, c, _C.unpack_from(buf, c)[0] + 1)

    def _unlink(self, s: int, link: int, p: int, nx: int) -> None:
        """Drop entry ``p`` (whose pointer is at ``link``) under stripe lock ``s``."""
        buf = self._buf
        _q_pack(buf, link, nx)
        self.seg.free(p)
        c = self._counts + 8 * s
        _C.pack_into(buf, c, _C.unpack_from(buf, c)[0] - 1)
