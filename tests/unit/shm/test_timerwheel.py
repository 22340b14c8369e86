"""TimerWheel: keys scheduled by any process, collected when due by one."""

from __future__ import annotations

import pytest

from sipserver.shm import LockSet, Segment, ShmOutOfMemory
from sipserver.shm.timerwheel import TimerWheel

from .util import fill, in_children


@pytest.fixture
def seg() -> Segment:
    s = Segment(1024 * 1024)
    yield s
    s.close()


def test_keys_come_back_when_due_and_only_once(seg: Segment) -> None:
    w = TimerWheel(seg, slots=16, resolution=0.1, locks=LockSet(4))
    w.add(b"a", 100.05)
    w.add(b"b", 100.25)
    w.add(b"c", 100.25)
    assert w.pop_due(100.0) == []
    assert w.pop_due(100.1) == [b"a"]
    assert w.pop_due(100.2) == []
    assert sorted(w.pop_due(100.3)) == [b"b", b"c"]
    assert w.pop_due(101.0) == [] and len(w) == 0


def test_a_later_time_in_the_current_tick_is_not_skipped(seg: Segment) -> None:
    w = TimerWheel(seg, slots=16, resolution=0.1, locks=LockSet(4))
    assert w.pop_due(50.01) == []
    w.add(b"x", 50.08)  # same tick as the last pop, but not yet due then
    assert w.pop_due(50.05) == []
    assert w.pop_due(50.09) == [b"x"]


def test_times_beyond_one_turn_wait_for_their_turn(seg: Segment) -> None:
    w = TimerWheel(seg, slots=8, resolution=1.0, locks=LockSet(2))  # an 8 s turn
    w.pop_due(0.0)
    w.add(b"far", 20.5)
    w.add(b"near", 4.5)
    got = []
    for now in range(1, 25):
        got += [(now, k) for k in w.pop_due(float(now))]
    assert got == [(5, b"near"), (21, b"far")]


def test_a_stalled_timer_catches_up(seg: Segment) -> None:
    w = TimerWheel(seg, slots=8, resolution=1.0, locks=LockSet(2))
    w.pop_due(0.0)
    for i in range(30):
        w.add(str(i).encode(), 0.5 + i)
    # 100 s later: everything is due, the walk covers each slot once
    assert sorted(w.pop_due(100.0), key=int) == [str(i).encode() for i in range(30)]
    assert len(w) == 0


def test_memory_is_given_back(seg: Segment) -> None:
    w = TimerWheel(seg, slots=64, resolution=0.1, locks=LockSet(4))
    used = seg.used
    for i in range(500):
        w.add(b"k%d" % i, 10.0 + i / 100)
    assert seg.used > used
    assert len(w.pop_due(20.0)) == 500
    assert seg.used == used


def test_out_of_memory_is_reported_and_the_wheel_stays_usable() -> None:
    seg = Segment(64 * 1024)
    try:
        w = TimerWheel(seg, slots=16, resolution=0.1, locks=LockSet(2))
        added = 0
        with pytest.raises(ShmOutOfMemory):
            for i in range(100_000):
                w.add(b"x" * 40, 1.0 + i / 1000)
                added += 1
        assert len(w.pop_due(1000.0)) == added
        w.add(b"y", 1001.0)
        assert w.pop_due(1002.0) == [b"y"]
    finally:
        seg.close()


def test_processes_schedule_and_the_timer_sees_all(seg: Segment) -> None:
    w = TimerWheel(seg, slots=32, resolution=0.1, locks=LockSet(4))
    w.pop_due(0.0)

    def child(i: int) -> None:
        for j in range(200):
            w.add(b"%d-%d" % (i, j), 1.0 + (j % 20) / 10)

    in_children(4, child)
    keys = w.pop_due(5.0)
    assert len(keys) == 800 and len(set(keys)) == 800


def test_a_popped_node_is_requeued_without_allocating_even_when_memory_is_full() -> None:
    seg = Segment(64 * 1024)
    w = TimerWheel(seg, slots=16, resolution=0.1, locks=LockSet(4))
    w.add(b"txn", 100.05)
    ((key, node),) = w.pop_due_nodes(100.1)
    assert key == b"txn" and len(w) == 0
    taken = fill(seg, 32)
    used = seg.used
    w.requeue(node, 102.0)  # a whole turn and more away
    assert seg.used == used and len(w) == 1
    assert w.pop_due(101.0) == []
    ((key, again),) = w.pop_due_nodes(102.05)
    assert key == b"txn" and again == node
    w.release(node)
    assert seg.used < used and len(w) == 0
    for off in taken:
        seg.free(off)
    seg.check()
    seg.close()
