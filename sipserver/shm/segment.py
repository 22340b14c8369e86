"""The shared memory segment and the allocator that lives inside it.

One anonymous ``MAP_SHARED`` mapping, created by the master before it forks
and inherited by every child (1.6's ``shm_mem_init`` with ``-m`` MB, default
32). Nothing here is per process: the allocator's bookkeeping (free lists,
top pointer, counters) is stored in the first bytes of the segment, so a
block allocated by one process can be read, written and freed by any other.
One process-shared lock serialises alloc/free, as 1.6's ``mem_lock`` does.

Layout::

    0      magic, size
    16     meta: top, used, real_used, max_real_used, free blocks, bitmap (2 words)
    128    128 free-list heads (8 bytes each)
    1152   heap: blocks, then the untouched "top" area up to the end

A block is ``[header 8][payload]``; its size (header included) is a
multiple of 16, at least 32. The header word holds the size and two flags:
"this block is in use" and "the block before is in use". A free block also
holds ``next``/``prev`` free-list links after its header and its size again
in its last 8 bytes, so freeing a block merges it with free neighbours on
both sides in constant time (boundary tags, as dlmalloc and 1.6's q_malloc
do): memory freed in small pieces is whole again once its neighbours are
freed. A free block that touches the top area is given back to it.

Free lists are segregated by size: one list per exact size below 1 KB (16
byte steps) and one per power of two above; a 128-bit bitmap says which
lists are non-empty, so finding a block is a few integer operations, not a
scan. Allocation order: the exact list, else the smallest non-empty larger
list (the block is split, the rest goes back to a list), else first fit in
its own power-of-two list, else the top area. When none fits,
``ShmOutOfMemory`` is raised and nothing has changed: the caller logs "out
of shared memory" and fails the one operation.

Figures (the 1.6 ``shmem:`` statistics): ``real_used`` counts whole blocks
plus the segment's own bookkeeping, ``used`` counts payload capacity,
``free = size - real_used``, ``fragments`` the number of free pieces
(free-list blocks, plus the top area when it is not empty).
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

from sipserver.shm.locks import new_lock

MB = 1024 * 1024
# 1.6's SHM_MEM_SIZE is 32. A stateful proxy keeps each call's two
# transactions for wt_timer (5 s) after they end, about 2.8 KB a call here
# (a quarter of 1.6's cells), so 32 MB would hold it near 2,000 calls/s;
# 64 MB is Kamailio's default too. -m sets it as in 1.6.
DEFAULT_MB = 64

MAGIC = 0x5348_4D53_4547_3031  # "SHMSEG01"
META_AT = 16
HEADS_AT = 128
NCLASSES = 128
HEAP_AT = HEADS_AT + 8 * NCLASSES  # 1152, a multiple of 16
MIN_BLOCK = 32
MIN_SIZE = 4096

INUSE = 1
PREV_INUSE = 2
SIZE_MASK = ~15
M64 = (1 << 64) - 1

_Q = struct.Struct("<Q")
_QQ = struct.Struct("<QQ")
_META = struct.Struct("<7Q")
_q_unpack = _Q.unpack_from
_q_pack = _Q.pack_into


class ShmError(Exception):
    """Misuse of the segment (bad offset, double free, inconsistency)."""


class ShmOutOfMemory(MemoryError):
    """No room left in the shared memory segment for an allocation.

    Callers log it ("out of shared memory") and fail the one operation;
    the segment is unchanged and stays usable.
    """


def _cls(size: int) -> int:
    """Free-list index for a block size (a multiple of 16, >= 32)."""
    return size >> 4 if size < 1024 else 53 + size.bit_length()


class Segment:
    """An anonymous shared mapping of ``size`` bytes with an allocator in it.

    Create it in the master before forking; children use the inherited
    object as it is. ``buf`` is the raw mapping for containers that read
    and write their records with ``struct`` (offsets come from ``alloc``).
    """

    __slots__ = ("_acquire", "_lock", "_release", "buf", "size")

    def __init__(self, size: int) -> None:
        size &= ~15
        if size < MIN_SIZE:
            raise ValueError(f"shared memory segment too small ({size} bytes, minimum {MIN_SIZE})")
        self.size = size
        self.buf = mmap.mmap(-1, size, flags=mmap.MAP_SHARED,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._lock = new_lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        _QQ.pack_into(self.buf, 0, MAGIC, size)
        _META.pack_into(self.buf, META_AT, HEAP_AT, 0, HEAP_AT, HEAP_AT, 0, 0, 0)

    @classmethod
    def from_mb(cls, mb: int = DEFAULT_MB) -> Segment:
        """A segment of ``mb`` megabytes, as the ``-m`` option gives it."""
        if mb <= 0:
            raise ValueError(f"bad shared memory size: {mb} MB")
        return cls(mb * MB)

    def close(self) -> None:
        """Unmap (tests only; every process must be done with it)."""
        self.buf.close()

    # ------------------------------------------------------------ allocator

    def alloc(self, n: int, zero: bool = False) -> int:
        """Allocate ``n`` bytes; the payload offset into ``buf``.

        Raises ShmOutOfMemory when no block fits (nothing changed). The
        payload holds old data unless ``zero`` is set.
        """
        if n < 0:
            raise ValueError("negative allocation size")
        need = (n + 23) & SIZE_MASK
        if need < MIN_BLOCK:
            need = MIN_BLOCK
        idx = need >> 4 if need < 1024 else 53 + need.bit_length()
        buf = self.buf
        self._acquire()
        try:
            top, used, rused, mused, nfree, lo, hi = _META.unpack_from(buf, META_AT)
            bm = lo | (hi << 64)
            b = 0
            size = need
            if idx < 64 and (bm >> idx) & 1:
                b = _q_unpack(buf, HEADS_AT + 8 * idx)[0]
            else:
                m = bm >> (idx + 1)
                if m:
                    idx += (m & -m).bit_length()
                    b = _q_unpack(buf, HEADS_AT + 8 * idx)[0]
                    size = _q_unpack(buf, b)[0] & SIZE_MASK
                elif idx >= 64 and (bm >> idx) & 1:
                    p = _q_unpack(buf, HEADS_AT + 8 * idx)[0]
                    while p:
                        s = _q_unpack(buf, p)[0] & SIZE_MASK
                        if s >= need:
                            b = p
                            size = s
                            break
                        p = _q_unpack(buf, p + 8)[0]
            if b:
                bm = _unlink(buf, b, idx, bm)
                nfree -= 1
                rem = size - need
                if rem >= MIN_BLOCK:
                    f = b + need
                    _q_pack(buf, f, rem | PREV_INUSE)
                    _q_pack(buf, f + rem - 8, rem)
                    bm = _insert(buf, f, rem, bm)
                    nfree += 1
                    size = need
                else:
                    nxt = b + size
                    if nxt != top:
                        _q_pack(buf, nxt, _q_unpack(buf, nxt)[0] | PREV_INUSE)
            else:
                if top + need > self.size:
                    raise ShmOutOfMemory(
                        f"out of shared memory: {n} bytes requested, "
                        f"{self.size - rused} of {self.size} free in {nfree + (top < self.size)} "
                        f"fragments")
                b = top
                top += need
            _q_pack(buf, b, size | INUSE | PREV_INUSE)
            used += size - 8
            rused += size
            if rused > mused:
                mused = rused
            _META.pack_into(buf, META_AT, top, used, rused, mused, nfree, bm & M64, bm >> 64)
        finally:
            self._release()
        if zero:
            buf[b + 8:b + size] = bytes(size - 8)
        return b + 8

    def free(self, off: int) -> None:
        """Give back the block whose payload starts at ``off``.

        Raises ShmError for an offset that is not an allocated block
        (double free), leaving the segment unchanged.
        """
        b = off - 8
        if b < HEAP_AT or (b - HEAP_AT) & 15:
            raise ShmError(f"free of a bad shared memory offset {off}")
        buf = self.buf
        self._acquire()
        try:
            top, used, rused, mused, nfree, lo, hi = _META.unpack_from(buf, META_AT)
            if b >= top:
                raise ShmError(f"free of a bad shared memory offset {off}")
            hdr = _q_unpack(buf, b)[0]
            if not hdr & INUSE:
                raise ShmError(f"free of shared memory block {off} not in use (double free?)")
            bm = lo | (hi << 64)
            size = hdr & SIZE_MASK
            used -= size - 8
            rused -= size
            nxt = b + size
            if not hdr & PREV_INUSE:
                psize = _q_unpack(buf, b - 8)[0]
                b -= psize
                bm = _unlink(buf, b, _cls(psize), bm)
                nfree -= 1
                size += psize
            if nxt == top:
                top = b
            else:
                nh = _q_unpack(buf, nxt)[0]
                if nh & INUSE:
                    _q_pack(buf, nxt, nh & ~PREV_INUSE)
                else:
                    nsize = nh & SIZE_MASK
                    bm = _unlink(buf, nxt, _cls(nsize), bm)
                    nfree -= 1
                    size += nsize
                _q_pack(buf, b, size | PREV_INUSE)
                _q_pack(buf, b + size - 8, size)
                bm = _insert(buf, b, size, bm)
                nfree += 1
            _META.pack_into(buf, META_AT, top, used, rused, mused, nfree, bm & M64, bm >> 64)
        finally:
            self._release()

    def capacity(self, off: int) -> int:
        """Usable bytes of the allocated block at ``off`` (>= what was asked)."""
        return (_q_unpack(self.buf, off - 8)[0] & SIZE_MASK) - 8

    # ------------------------------------------------------------ raw access

    def read(self, off: int, n: int) -> bytes:
        """``n`` bytes at ``off`` (a copy)."""
        return self.buf[off:off + n]

    def write(self, off: int, data: bytes) -> None:
        """Write ``data`` at ``off`` (the caller owns the block)."""
        self.buf[off:off + len(data)] = data

    # ------------------------------------------------------------ figures

    def info(self) -> dict[str, int]:
        """The 1.6 ``shmem:`` figures, read under the allocator lock."""
        self._acquire()
        try:
            top, used, rused, mused, nfree, _lo, _hi = _META.unpack_from(self.buf, META_AT)
        finally:
            self._release()
        return {
            "total_size": self.size,
            "used_size": used,
            "real_used_size": rused,
            "max_used_size": mused,
            "free_size": self.size - rused,
            "fragments": nfree + (1 if top < self.size else 0),
        }

    @property
    def used(self) -> int:
        """Payload bytes in allocated blocks."""
        return self.info()["used_size"]

    @property
    def real_used(self) -> int:
        """Bytes taken by allocated blocks plus the segment's bookkeeping."""
        return self.info()["real_used_size"]

    @property
    def free_size(self) -> int:
        """Bytes not in allocated blocks (possibly split in fragments)."""
        return self.info()["free_size"]

    @property
    def fragments(self) -> int:
        """Number of free pieces (1 for a fresh segment)."""
        return self.info()["fragments"]

    def check(self) -> dict[str, Any]:
        """Walk every block and verify the allocator's invariants (tests, debugging).

        Raises ShmError on the first inconsistency; returns counts found.
        """
        buf = self.buf
        self._acquire()
        try:
            top, used, rused, _mused, nfree, lo, hi = _META.unpack_from(buf, META_AT)
            bm = lo | (hi << 64)
            p = HEAP_AT
            prev_inuse = True
            n_used = n_free = s_used = s_payload = 0
            free_blocks: set[int] = set()
            while p < top:
                hdr = _q_unpack(buf, p)[0]
                size = hdr & SIZE_MASK
                if size < MIN_BLOCK or p + size > top:
                    raise ShmError(f"bad block size {size} at {p}")
                if bool(hdr & PREV_INUSE) != prev_inuse:
                    raise ShmError(f"wrong prev-in-use bit at {p}")
                if hdr & INUSE:
                    n_used += 1
                    s_used += size
                    s_payload += size - 8
                    prev_inuse = True
                else:
                    if not prev_inuse:
                        raise ShmError(f"two free blocks side by side at {p}")
                    if _q_unpack(buf, p + size - 8)[0] != size:
                        raise ShmError(f"bad footer at {p}")
                    n_free += 1
                    free_blocks.add(p)
                    prev_inuse = False
                p += size
            if p != top:
                raise ShmError("blocks overrun the top")
            if not prev_inuse:
                raise ShmError("free block just below the top")
            listed: set[int] = set()
            for i in range(NCLASSES):
                q = _q_unpack(buf, HEADS_AT + 8 * i)[0]
                if bool(q) != bool((bm >> i) & 1):
                    raise ShmError(f"bitmap wrong for list {i}")
                back = 0
                while q:
                    if q not in free_blocks or q in listed:
                        raise ShmError(f"list {i} holds {q}, not a free block")
                    nx, pv = _QQ.unpack_from(buf, q + 8)
                    if pv != back or _cls(_q_unpack(buf, q)[0] & SIZE_MASK) != i:
                        raise ShmError(f"bad links or class at {q}")
                    listed.add(q)
                    back = q
                    q = nx
            if listed != free_blocks or n_free != nfree:
                raise ShmError("free lists and free blocks disagree")
            if s_used + HEAP_AT != rused or s_payload != used:
                raise ShmError("usage counters disagree with the blocks")
        finally:
            self._release()
        return {"used_blocks": n_used, "free_blocks": n_free, "top": top}


def _unlink(buf: Any, b: int, idx: int, bm: int) -> int:
    """Take free block ``b`` off list ``idx``; the updated bitmap."""
    nx, pv = _QQ.unpack_from(buf, b + 8)
    if pv:
        _q_pack(buf, pv + 8, nx)
    else:
        _q_pack(buf, HEADS_AT + 8 * idx, nx)
        if not nx:
            bm &= ~(1 << idx)
    if nx:
        _q_pack(buf, nx + 16, pv)
    return bm


def _insert(buf: Any, b: int, size: int, bm: int) -> int:
    """Push free block ``b`` on the list for ``size``; the updated bitmap."""
    idx = _cls(size)
    at = HEADS_AT + 8 * idx
    h = _q_unpack(buf, at)[0]
    _QQ.pack_into(buf, b + 8, h, 0)
    if h:
        _q_pack(buf, h + 16, b)
    else:
        bm |= 1 << idx
    _q_pack(buf, at, b)
    return bm
