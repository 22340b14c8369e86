"""A timer wheel in shared memory: keys that come due, without scanning them all.

Any process schedules (`add(key, due)`); one process, the timer, collects
what is due (`pop_due(now)`). The wheel is `slots` lists of nodes, one per
`resolution` seconds, wrapping around: a node lands in the slot of its due
time, so a tick walks only the slots that passed since the last one. A due
time beyond the horizon (slots x resolution) stays in its slot through
whole turns until it is reached.

The wheel never removes a node when its owner changes its mind; callers
check the key's current due time when a node comes back (tm reads the
8-byte due in front of each record), which is what 1.6's timer lists avoid
with per-cell links and we avoid with one cheap lookup. tm keeps one
promise: a record due at D has a node due at D or before. A due time that
moves earlier adds a node; one that moves later needs none, since the
early node, when it comes back (`pop_due_nodes`), is put back at the
record's time (`requeue`), which allocates nothing: timers go on when the
segment is full.

A node is one Segment block: next offset, due time (double), key length,
key. Slot heads are an array of offsets guarded by a LockSet (slot s by
lock s % n); the allocator's lock is taken inside a slot lock, never the
other way round.
"""

from __future__ import annotations

import struct

from sipserver.shm.locks import LockSet
from sipserver.shm.segment import Segment

__all__ = ["TimerWheel"]

_N = struct.Struct("<QdH")  # next, due, key length
_NSIZE = _N.size
_n_unpack = _N.unpack_from
_n_pack = _N.pack_into
_Q = struct.Struct("<Q")
_q_unpack = _Q.unpack_from
_q_pack = _Q.pack_into


class TimerWheel:
    """Scheduled keys in the shared segment; made before the fork."""

    __slots__ = ("_acq", "_base", "_buf", "_cursor", "_nl", "_rel", "locks", "resolution",
                 "seg", "slots")

    def __init__(self, segment: Segment, slots: int = 2048, resolution: float = 0.1,
                 locks: LockSet | None = None) -> None:
        if slots < 1 or resolution <= 0:
            raise ValueError("a timer wheel needs slots and a positive resolution")
        self.seg = segment
        self.slots = slots
        self.resolution = resolution
        self.locks = locks or LockSet(64)
        self._nl = self.locks.n
        self._acq = self.locks.acquirers
        self._rel = self.locks.releasers
        self._buf = segment.buf
        self._base = segment.alloc(8 * slots, zero=True)
        self._cursor: int | None = None  # last tick collected (timer process only)

    def _tick(self, t: float) -> int:
        return int(t / self.resolution)

    def add(self, key: bytes, due: float) -> None:
        """Schedule `key` at `due` (ShmOutOfMemory when the segment is full)."""
        s = self._tick(due) % self.slots
        at = self._base + 8 * s
        buf = self._buf
        kl = len(key)
        lk = s % self._nl
        self._acq[lk]()
        try:
            p = self.seg.alloc(_NSIZE + kl)
            _n_pack(buf, p, _q_unpack(buf, at)[0], due, kl)
            buf[p + _NSIZE:p + _NSIZE + kl] = key
            _q_pack(buf, at, p)
        finally:
            self._rel[lk]()

    def pop_due(self, now: float) -> list[bytes]:
        """Keys whose due time is <= now, removed from the wheel (timer process).

        The first call looks at every slot; later ones at the slots passed
        since the previous call (all of them after a stall of a whole turn).
        """
        out = []
        free = self.seg.free
        for key, node in self.pop_due_nodes(now):
            out.append(key)
            free(node)
        return out

    def pop_due_nodes(self, now: float) -> list[tuple[bytes, int]]:
        """As `pop_due`, with each node kept: (key, node) pairs.

        The caller owns the nodes: `requeue` puts one back at a new time
        without allocating (so rescheduling works in a full segment),
        `release` frees it.
        """
        last = self._tick(now)
        first = last - self.slots + 1 if self._cursor is None else self._cursor + 1
        if last - first + 1 > self.slots:
            first = last - self.slots + 1
        out: list[tuple[bytes, int]] = []
        for tick in range(first, last + 1):
            self._collect(tick % self.slots, now, out)
        # the current slot also holds times later in this tick: look again next time
        self._cursor = last - 1
        return out

    def requeue(self, node: int, due: float) -> None:
        """Schedule a node from `pop_due_nodes` again, for its key, at `due`."""
        s = self._tick(due) % self.slots
        at = self._base + 8 * s
        buf = self._buf
        lk = s % self._nl
        self._acq[lk]()
        try:
            _n_pack(buf, node, _q_unpack(buf, at)[0], due, _n_unpack(buf, node)[2])
            _q_pack(buf, at, node)
        finally:
            self._rel[lk]()

    def release(self, node: int) -> None:
        """Free a node from `pop_due_nodes`."""
        self.seg.free(node)

    def _collect(self, s: int, now: float, out: list[tuple[bytes, int]]) -> None:
        buf = self._buf
        link = self._base + 8 * s
        lk = s % self._nl
        self._acq[lk]()
        try:
            p = _q_unpack(buf, link)[0]
            while p:
                nx, due, kl = _n_unpack(buf, p)
                if due <= now:
                    out.append((bytes(buf[p + _NSIZE:p + _NSIZE + kl]), p))
                    _q_pack(buf, link, nx)
                else:  # a later turn of the wheel
                    link = p
                p = nx
        finally:
            self._rel[lk]()

    def __len__(self) -> int:
        """Nodes waiting (a walk under each lock: for tests and MI, not hot paths)."""
        n = 0
        buf = self._buf
        for s in range(self.slots):
            lk = s % self._nl
            self._acq[lk]()
            try:
                p = _q_unpack(buf, self._base + 8 * s)[0]
                while p:
                    n += 1
                    p = _n_unpack(buf, p)[0]
            finally:
                self._rel[lk]()
        return n

    def destroy(self) -> None:
        """Free every node and the slot array (the wheel is unusable after)."""
        buf = self._buf
        for s in range(self.slots):
            p = _q_unpack(buf, self._base + 8 * s)[0]
            while p:
                nx = _n_unpack(buf, p)[0]
                self.seg.free(p)
                p = nx
        self.seg.free(self._base)
