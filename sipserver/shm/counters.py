"""An array of int64 counters in shared memory.

Statistics, pike, dialog/transaction gauges: numbers every process bumps
and any process reads. Python has no atomic add on shared memory, so each
read-modify-write happens under a lock; counter ``i`` is guarded by lock
``i % len(locks)`` (striping: two processes bumping different counters
rarely meet on the same lock). The cost of ``add`` is one uncontended
semaphore pair and two ``struct`` calls (~0.3 µs, see ``bench/shm.py``).
"""

from __future__ import annotations

import struct

from sipserver.shm.locks import LockSet
from sipserver.shm.segment import Segment

_C = struct.Struct("<q")
_c_unpack = _C.unpack_from
_c_pack = _C.pack_into


class Counters:
    """``n`` signed 64-bit counters, created before fork, shared by every process."""

    __slots__ = ("_acq", "_base", "_buf", "_nl", "_rel", "locks", "n", "seg")

    def __init__(self, segment: Segment, n: int, locks: LockSet) -> None:
        if n < 1:
            raise ValueError("need at least one counter")
        self.seg = segment
        self.n = n
        self.locks = locks
        self._nl = locks.n
        self._acq = locks.acquirers
        self._rel = locks.releasers
        self._buf = segment.buf
        self._base = segment.alloc(8 * n, zero=True)

    def __len__(self) -> int:
        return self.n

    def add(self, i: int, delta: int = 1) -> int:
        """Add ``delta`` (may be negative) to counter ``i``; the new value."""
        if not 0 <= i < self.n:
            raise IndexError(f"counter {i} out of range")
        s = i % self._nl
        at = self._base + 8 * i
        buf = self._buf
        self._acq[s]()
        try:
            v = _c_unpack(buf, at)[0] + delta
            _c_pack(buf, at, v)
        finally:
            self._rel[s]()
        return v

    def get(self, i: int) -> int:
        """The value of counter ``i``."""
        if not 0 <= i < self.n:
            raise IndexError(f"counter {i} out of range")
        s = i % self._nl
        self._acq[s]()
        try:
            return _c_unpack(self._buf, self._base + 8 * i)[0]
        finally:
            self._rel[s]()

    def set(self, i: int, value: int) -> int:
        """Set counter ``i``; its previous value."""
        if not 0 <= i < self.n:
            raise IndexError(f"counter {i} out of range")
        s = i % self._nl
        at = self._base + 8 * i
        buf = self._buf
        self._acq[s]()
        try:
            old = _c_unpack(buf, at)[0]
            _c_pack(buf, at, value)
        finally:
            self._rel[s]()
        return old

    def reset(self, i: int) -> int:
        """Set counter ``i`` to 0; its previous value."""
        return self.set(i, 0)

    def values(self) -> list[int]:
        """Every counter (each read under its lock)."""
        return [self.get(i) for i in range(self.n)]

    def handle(self, i: int) -> tuple[int, object, object, object]:
        """What an inlined hot-path increment needs: (offset, buf, acquire, release).

        ``core/stats.py`` uses it so ``Stat.inc()`` costs one Python call.
        """
        if not 0 <= i < self.n:
            raise IndexError(f"counter {i} out of range")
        s = i % self._nl
        return self._base + 8 * i, self._buf, self._acq[s], self._rel[s]
