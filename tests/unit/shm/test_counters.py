"""Counters: int64 values every process adds to, without lost updates."""

from __future__ import annotations

import pytest

from sipserver.shm import Counters, LockSet, Segment

from .util import in_children


def test_add_get_set_reset() -> None:
    seg = Segment(64 * 1024)
    c = Counters(seg, 8, LockSet(4))
    assert len(c) == 8 and c.values() == [0] * 8
    assert c.add(3) == 1 and c.add(3, 10) == 11 and c.add(3, -20) == -9
    assert c.get(3) == -9
    assert c.set(3, 2**62) == -9 and c.get(3) == 2**62
    assert c.reset(3) == 2**62 and c.get(3) == 0
    for bad in (-1, 8):
        with pytest.raises(IndexError):
            c.add(bad)
        with pytest.raises(IndexError):
            c.get(bad)
    seg.close()


def test_no_update_is_lost_across_processes() -> None:
    seg = Segment(64 * 1024)
    c = Counters(seg, 4, LockSet(2))

    def child(i: int) -> None:
        for _ in range(3000):
            c.add(0)          # every child on the same counter
            c.add(1 + i % 3, 2)

    in_children(4, child)
    assert c.get(0) == 4 * 3000
    assert c.get(1) + c.get(2) + c.get(3) == 4 * 3000 * 2
    seg.close()
