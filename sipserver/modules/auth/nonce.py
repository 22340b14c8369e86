"""Digest nonces as OpenSIPS 1.6's auth module makes them, and one-time use.

A nonce is self-checking so that any process (or any server sharing the
`secret`) can verify it without a lookup:

    8 hex digits  expiry time (epoch seconds, big-endian 32 bit)
    8 hex digits  nonce index (left out when disable_nonce_check=1)
    32 hex digits MD5 over the hex text before it + the secret

48 characters (40 without the index). The index makes each nonce usable
once: `NonceIndex` keeps 1.6's shared bitmap of MAX_NONCE_INDEX slots plus,
per second of the last `nonce_expire` seconds, the last index handed out,
so slots older than a nonce's lifetime are recycled.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable
from typing import Any

from ...shm import ShmOutOfMemory, new_lock

MAX_NONCE_INDEX = 100000
NBUF_LEN = MAX_NONCE_INDEX >> 3
NONCE_LEN = 48  # with the index; 40 without

_HEX = frozenset("0123456789abcdefABCDEF")
_I = struct.Struct("<i")


def _hex8(value: int) -> str:
    return f"{value & 0xFFFFFFFF:08x}"


def hex2int(text: str) -> int:
    """The 8 hex digits at the start of `text`; 0 when any is not hex (as 1.6)."""
    head = text[:8]
    if len(head) < 8 or any(c not in _HEX for c in head):
        return 0
    return int(head, 16)


def calc_nonce(expires: int, index: int, secret: bytes, with_index: bool = True) -> str:
    """The nonce text for an expiry time (and index)."""
    head = _hex8(expires) + (_hex8(index) if with_index else "")
    digest = hashlib.md5(head.encode("ascii") + secret, usedforsecurity=False).hexdigest()
    return head + digest


def nonce_expires(nonce: str) -> int:
    return hex2int(nonce)


def nonce_index(nonce: str) -> int:
    return hex2int(nonce[8:])


def check_nonce(nonce: str | None, secret: bytes, with_index: bool = True) -> int:
    """0 when the nonce is one of ours; -1 none, 1 wrong length, 2 bad signature.

    Expiry is not looked at here (see `is_stale`): 1.6 checks it only after
    the response matched, so a wrong password on an old nonce is still -2.
    """
    if nonce is None:
        return -1
    if len(nonce) != (NONCE_LEN if with_index else NONCE_LEN - 8):
        return 1
    index = nonce_index(nonce) if with_index else 0
    return 0 if calc_nonce(nonce_expires(nonce), index, secret, with_index) == nonce else 2


def is_stale(nonce: str, now: float) -> bool:
    """Has the nonce's expiry time passed?"""
    return nonce_expires(nonce) < int(now)


class NonceIndex:
    """1.6's one-time nonce bookkeeping, in shared memory, under one lock.

    Layout (int32 little-endian): `second` (the tick of the last
    reservation), `next_index` (-1 before the first), `sec_monit[E+1]`
    (per tick of the cycle, the last index given out; -1 = not yet), then
    the bitmap: bit set = slot used (or never handed out).

    Deviation from 1.6: during the very first `nonce_expire` seconds 1.6
    accepted a nonce twice (it skipped the bitmap until the tick ring was
    filled); here a nonce is one-time from the start.
    """

    def __init__(self, nonce_expire: int, segment: Any = None,
                 ticks: Callable[[], float] = time.monotonic) -> None:
        self.expire = nonce_expire
        self.ticks = ticks
        self._monit_at = 8
        self._bits_at = 8 + 4 * (nonce_expire + 1)
        size = self._bits_at + NBUF_LEN
        if segment is not None:
            try:
                self.base = segment.alloc(size)
            except ShmOutOfMemory:
                raise ValueError("auth: out of shared memory for the nonce index") from None
            self.buf = segment.buf
        else:  # single process (tests): private memory
            self.base = 0
            self.buf = bytearray(size)
        b = self.base
        self.buf[b:b + size] = (_I.pack(0) + _I.pack(-1) + _I.pack(-1) * (nonce_expire + 1)
                                + b"\xff" * NBUF_LEN)
        self.lock = new_lock()

    # ------------------------------------------------------------ raw fields

    def _get(self, off: int) -> int:
        return _I.unpack_from(self.buf, self.base + off)[0]

    def _set(self, off: int, value: int) -> None:
        _I.pack_into(self.buf, self.base + off, value)

    def _monit(self, sec: int) -> int:
        return self._get(self._monit_at + 4 * sec)

    def _set_monit(self, sec: int, value: int) -> None:
        self._set(self._monit_at + 4 * sec, value)

    def _bit(self, index: int) -> bool:
        return bool(self.buf[self.base + self._bits_at + (index >> 3)] & (1 << (index & 7)))

    def _mark(self, index: int, used: bool) -> None:
        at = self.base + self._bits_at + (index >> 3)
        if used:
            self.buf[at] |= 1 << (index & 7)
        else:
            self.buf[at] &= ~(1 << (index & 7)) & 0xFF

    # ------------------------------------------------------------ operations

    def reserve(self) -> int:
        """A fresh index for a new nonce, or -1 when every slot is still alive."""
        curr = int(self.ticks()) % (self.expire + 1)
        self.lock.acquire()
        try:
            nxt = self._get(4)
            second = self._get(0)
            if nxt == -1:
                nxt = 0
            elif second != curr:
                # close the ticks since the last reservation with the last index given
                last = MAX_NONCE_INDEX - 1 if nxt == MAX_NONCE_INDEX else nxt - 1
                if curr > second:
                    ticks = range(second, curr)
                else:
                    ticks = [*range(second, self.expire + 1), *range(0, curr)]
                for s in ticks:
                    self._set_monit(s, last)
            self._set(0, curr)
            oldest = self._monit(curr)
            if oldest == -1:  # first cycle: nothing to recycle yet
                if nxt == MAX_NONCE_INDEX:
                    self._set(4, nxt)
                    return -1
            elif nxt <= oldest or nxt == MAX_NONCE_INDEX:
                if nxt == MAX_NONCE_INDEX:
                    nxt = 0
                if nxt == oldest:  # caught up with slots still alive
                    self._set(4, nxt)
                    return -1
            self._mark(nxt, False)
            self._set(4, nxt + 1)
            return nxt
        finally:
            self.lock.release()

    def use(self, index: int) -> bool:
        """Accept `index` once: False when out of the live window or used before."""
        if not 0 <= index < MAX_NONCE_INDEX:
            return False
        self.lock.acquire()
        try:
            nxt = self._get(4)
            oldest = self._monit(self._get(0))
            if oldest == -1:
                if index >= nxt:
                    return False
            elif nxt < oldest:  # the live window wraps round the end
                if not (index >= oldest or index <= nxt):
                    return False
            elif not oldest <= index <= nxt:
                return False
            if self._bit(index):
                return False
            self._mark(index, True)
            return True
        finally:
            self.lock.release()
