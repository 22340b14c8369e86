"""The address table in shared memory, swapped whole on reload.

1.6 keeps two tables and a shared pointer to the current one; here the
table is one encoded block in the segment and a 24-byte header holds
(generation, offset, length) of the current block. A reload writes the
new block first, then swaps the header under a process-shared lock and
frees the old block: a process copies the block under the same lock, so
no process ever decodes a half-written or freed table, and every process
sees the new table on its next lookup.

A lookup reads only the generation (lock-free: a torn read can only
differ from the cached value, which sends it to the locked path) and
decodes the block again when it changed, so the per-message cost is one
8-byte read.
"""

from __future__ import annotations

import struct
from typing import Any

from ...shm import Segment, new_lock
from .address import AddressTables
from .pattern import Matcher

_HDR = struct.Struct("<QQQ")  # generation, offset, length
_GEN = struct.Struct("<Q")


class AddressStore:
    """The shared current table; make it before the processes fork."""

    def __init__(self, seg: Segment) -> None:
        self.seg = seg
        self.hdr = seg.alloc(_HDR.size, zero=True)
        self.lock: Any = new_lock()
        self._gen = 0  # generation of `_tables` in this process (0: none yet)
        self._tables = AddressTables()
        self._patterns: dict[str, Matcher] = {}

    def publish(self, blob: bytes) -> None:
        """Make `blob` the current table. Raises ShmOutOfMemory (nothing changed)."""
        seg = self.seg
        off = seg.alloc(max(len(blob), 1))
        seg.write(off, blob)
        acquire, release = self.lock.acquire, self.lock.release
        acquire()
        try:
            gen, old, _ = _HDR.unpack_from(seg.buf, self.hdr)
            _HDR.pack_into(seg.buf, self.hdr, gen + 1, off, len(blob))
        finally:
            release()
        if old:
            seg.free(old)  # no process copies it any more: copies are made under the lock

    def current(self) -> AddressTables:
        """This process's copy of the current table (decoded again after a reload)."""
        if _GEN.unpack_from(self.seg.buf, self.hdr)[0] == self._gen:
            return self._tables
        self.lock.acquire()
        try:
            gen, off, n = _HDR.unpack_from(self.seg.buf, self.hdr)
            blob = self.seg.read(off, n) if off else b""
        finally:
            self.lock.release()
        if gen != self._gen:
            if len(self._patterns) > 4096:
                self._patterns.clear()
            self._tables = AddressTables.decode(blob, self._patterns) if blob else AddressTables()
            self._gen = gen
        return self._tables

    @property
    def generation(self) -> int:
        return _GEN.unpack_from(self.seg.buf, self.hdr)[0]
