"""The process table in shared memory (1.6's ``pt``), read by MI ``ps``.

The master allocates it before forking; every child writes its own slot
(its rank) right after the fork: its pid and a description such as
``udp receiver child=0 udp:127.0.0.1:5060``. Whichever process serves the
MI then lists every process, which no single process could know otherwise
(pids are only known after the fork, and each child learns its own).

A slot is the pid (8 bytes) and the description (128 bytes, NUL padded:
1.6's MAX_PT_DESC, so at most 127 bytes of text). One lock guards the
table so a reader never sees a half-written description.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from sipserver.shm.locks import new_lock
from sipserver.shm.segment import Segment

MAX_PT_DESC = 128
_SLOT = struct.Struct(f"<q{MAX_PT_DESC}s")


class ProcEntry(NamedTuple):
    """One row of the table, as MI ``ps`` prints it.

    ``Process:: ID=<rank> PID=<pid> Type=<desc>``
    """

    rank: int
    pid: int
    desc: str


class ProcessTable:
    """``n`` process slots in shared memory, indexed by rank (0 = attendant)."""

    __slots__ = ("_acquire", "_base", "_buf", "_lock", "_release", "n", "seg")

    def __init__(self, segment: Segment, n: int) -> None:
        if n < 1:
            raise ValueError("a process table needs at least one slot")
        self.seg = segment
        self.n = n
        self._buf = segment.buf
        self._base = segment.alloc(_SLOT.size * n, zero=True)
        self._lock = new_lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release

    def __len__(self) -> int:
        return self.n

    def set(self, rank: int, pid: int | None = None, desc: str = "") -> None:
        """Fill slot ``rank`` (the calling process's pid when ``pid`` is None).

        The description is cut to 127 bytes, as 1.6 cuts it.
        """
        if not 0 <= rank < self.n:
            raise IndexError(f"process rank {rank} out of range (table has {self.n} slots)")
        raw = desc.encode("utf-8", "replace")[:MAX_PT_DESC - 1]
        raw = raw.decode("utf-8", "ignore").encode()  # never cut a character in half
        self._acquire()
        try:
            _SLOT.pack_into(self._buf, self._base + _SLOT.size * rank,
                            os.getpid() if pid is None else pid, raw)
        finally:
            self._release()

    def clear(self, rank: int) -> None:
        """Empty slot ``rank`` (a process that is gone)."""
        self.set(rank, 0, "")

    def get(self, rank: int) -> ProcEntry:
        """Slot ``rank`` (pid 0 and "" when nobody filled it)."""
        if not 0 <= rank < self.n:
            raise IndexError(f"process rank {rank} out of range (table has {self.n} slots)")
        self._acquire()
        try:
            pid, raw = _SLOT.unpack_from(self._buf, self._base + _SLOT.size * rank)
        finally:
            self._release()
        return ProcEntry(rank, pid, raw.rstrip(b"\0").decode("utf-8", "replace"))

    def entries(self) -> list[ProcEntry]:
        """Every slot up to the highest filled one, in rank order.

        Like 1.6, a slot that was never filled (a process not forked yet)
        inside that range is listed with pid 0; empty slots past the last
        filled one are left out, so a table sized generously does not make
        ``ps`` print hundreds of blank rows.
        """
        size = _SLOT.size
        self._acquire()
        try:
            rows = [_SLOT.unpack_from(self._buf, self._base + size * i) for i in range(self.n)]
        finally:
            self._release()
        last = max((i for i, (pid, raw) in enumerate(rows) if pid or raw.strip(b"\0")),
                   default=-1)
        return [ProcEntry(i, pid, raw.rstrip(b"\0").decode("utf-8", "replace"))
                for i, (pid, raw) in enumerate(rows[:last + 1])]

    def rank_of(self, pid: int) -> int | None:
        """The rank whose slot holds ``pid``, if any."""
        for e in self.entries():
            if e.pid == pid:
                return e.rank
        return None

    def ps_lines(self) -> list[str]:
        """The lines MI ``ps`` prints (without the ``200 OK`` line)."""
        return [f"Process:: ID={e.rank} PID={e.pid} Type={e.desc}" for e in self.entries()]
