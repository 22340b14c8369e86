"""SharedHash: a bytes -> bytes table in shared memory, used from forked processes."""

from __future__ import annotations

import struct

import pytest

from sipserver.shm import LockSet, Segment, SharedHash, ShmOutOfMemory

from .util import in_children


@pytest.fixture
def seg() -> Segment:
    s = Segment(1024 * 1024)
    yield s
    s.close()


def test_put_get_replace_delete(seg: Segment) -> None:
    h = SharedHash(seg, 64, LockSet(4))
    assert h.get(b"a") is None and h.get(b"a", b"dflt") == b"dflt"
    h.put(b"a", b"1")
    h.put(b"b", b"")
    assert h.get(b"a") == b"1" and h.get(b"b") == b""
    assert b"b" in h and b"c" not in h
    h.put(b"a", b"one")
    assert h.get(b"a") == b"one" and len(h) == 2
    assert h.pop(b"a") == b"one" and h.pop(b"a") is None and h.pop(b"a", b"x") == b"x"
    assert h.delete(b"b") and not h.delete(b"b")
    assert len(h) == 0
    seg.check()


def test_many_keys_and_snapshot(seg: Segment) -> None:
    h = SharedHash(seg, 128, LockSet(8))
    want = {b"key-%d" % i: b"value-%d" % i * (i % 7) for i in range(2000)}
    for k, v in want.items():
        h.put(k, v)
    assert len(h) == 2000
    assert dict(h.items()) == want
    assert sorted(h.keys()) == sorted(want) == sorted(h)
    for k in list(want)[::2]:
        assert h.delete(k)
        del want[k]
    assert dict(h.items()) == want and len(h) == 1000
    for k, v in want.items():
        assert h.get(k) == v


def test_colliding_keys_share_a_chain(seg: Segment) -> None:
    h = SharedHash(seg, 16, LockSet(2), hash_func=lambda k: 5)
    for i in range(50):
        h.put(b"k%d" % i, b"v%d" % i)
    assert h.pop(b"k25") == b"v25"  # from the middle of the chain
    assert h.pop(b"k49") == b"v49"  # the chain's head
    assert h.pop(b"k0") == b"v0"    # its tail
    assert len(h) == 47
    assert all(h.get(b"k%d" % i) == b"v%d" % i for i in range(1, 49) if i != 25)
    # same hash, same length, different bytes
    h.put(b"xa", b"1")
    h.put(b"xb", b"2")
    assert (h.get(b"xa"), h.get(b"xb")) == (b"1", b"2")
    seg.check()


def test_values_grow_and_shrink_without_leaking(seg: Segment) -> None:
    h = SharedHash(seg, 64, LockSet(4))
    base = seg.used
    for size in (10, 10, 5, 200, 3000, 40, 0, 100_000, 8):
        h.put(b"k", b"v" * size)
        assert h.get(b"k") == b"v" * size
        seg.check()
    h.put(b"k", b"v" * 9)  # fits in place: no new block
    assert seg.used - base < 200
    h.clear()
    assert len(h) == 0 and h.get(b"k") is None
    assert seg.used == base
    h.destroy()
    assert seg.used == 0
    seg.check()


def test_update_reads_modifies_writes(seg: Segment) -> None:
    h = SharedHash(seg, 64, LockSet(4))
    assert h.update(b"n", lambda old: b"1" if old is None else old + b"1") == b"1"
    assert h.update(b"n", lambda old: b"1" if old is None else old + b"1") == b"11"
    assert h.update(b"n", lambda old: None) is None  # None deletes
    assert h.get(b"n") is None and len(h) == 0
    assert h.update(b"absent", lambda old: None) is None and len(h) == 0
    h.put(b"n", b"keep")

    def boom(old: bytes | None) -> bytes:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        h.update(b"n", boom)
    assert h.get(b"n") == b"keep"
    h.update(b"n", lambda old: old * 1000)  # moves to a bigger block
    assert h.get(b"n") == b"keep" * 1000
    seg.check()


def test_out_of_memory_keeps_the_table_intact() -> None:
    seg = Segment(64 * 1024)
    h = SharedHash(seg, 64, LockSet(4))
    stored = []
    with pytest.raises(ShmOutOfMemory):
        for i in range(10_000):
            h.put(b"key%d" % i, b"x" * 100)
            stored.append(b"key%d" % i)
    assert len(h) == len(stored)
    h.put(stored[0], b"small")  # a replace that fits in place still works
    with pytest.raises(ShmOutOfMemory):
        h.put(stored[1], b"y" * 60_000)  # does not fit: the old value stays
    assert h.get(stored[1]) == b"x" * 100
    with pytest.raises(ShmOutOfMemory):
        h.update(stored[2], lambda old: old * 1000)
    assert h.get(stored[2]) == b"x" * 100
    for k in stored[3:20]:
        h.delete(k)
    h.put(b"new", b"z" * 100)  # usable again once memory is freed
    assert h.get(b"new") == b"z" * 100
    seg.check()
    seg.close()


def test_table_too_big_for_the_segment() -> None:
    seg = Segment(8192)
    with pytest.raises(ShmOutOfMemory):
        SharedHash(seg, 100_000, LockSet(1))
    assert seg.used == 0


def test_children_see_and_change_the_same_table(seg: Segment) -> None:
    h = SharedHash(seg, 256, LockSet(16))
    h.put(b"from-parent", b"p")

    def child(i: int) -> None:
        assert h.get(b"from-parent") == b"p"
        for j in range(300):
            h.put(b"c%d-%d" % (i, j), b"v%d" % j)
        for j in range(0, 300, 3):
            assert h.pop(b"c%d-%d" % (i, j)) == b"v%d" % j

    in_children(3, child)
    assert len(h) == 1 + 3 * 200
    for i in range(3):
        for j in range(300):
            assert h.get(b"c%d-%d" % (i, j)) == (None if j % 3 == 0 else b"v%d" % j)
    seg.check()


def test_concurrent_updates_lose_nothing(seg: Segment) -> None:
    h = SharedHash(seg, 8, LockSet(2))  # few stripes: the children collide a lot
    keys = [b"ctr%d" % i for i in range(10)]
    for k in keys:
        h.put(k, struct.pack("<q", 0))

    def bump(old: bytes | None) -> bytes:
        return struct.pack("<q", struct.unpack("<q", old)[0] + 1)

    def child(i: int) -> None:
        for n in range(1500):
            h.update(keys[(n + i) % len(keys)], bump)
            if n % 50 == 0:  # allocation churn at the same time
                h.put(b"tmp%d" % i, b"t" * (n % 300))

    in_children(3, child)
    total = sum(struct.unpack("<q", h.get(k))[0] for k in keys)
    assert total == 3 * 1500
    assert all(struct.unpack("<q", h.get(k))[0] == 450 for k in keys)
    seg.check()


def test_heads_reads_the_front_of_each_value(seg: Segment) -> None:
    h = SharedHash(seg, 64, LockSet(4))
    for i in range(20):
        h.put(f"k{i}".encode(), struct.pack("<d", float(i)) + b"x" * i)
    got = {k: struct.unpack("<d", v)[0] for k, v in h.heads(8)}
    assert got == {f"k{i}".encode(): float(i) for i in range(20)}
    assert all(len(v) == 8 for _, v in h.heads(8))


def test_reserve_keeps_growing_records_in_place(seg: Segment) -> None:
    h = SharedHash(seg, 16, LockSet(2))
    h.put(b"t", b"a" * 100, reserve=400)
    used = seg.used
    for n in (150, 250, 390):
        h.put(b"t", b"b" * n)  # fits the reserved block: no new allocation
        assert seg.used == used
    assert h.get(b"t") == b"b" * 390
    h.put(b"t", b"c" * 2000)  # beyond the reserve: moved, still correct
    assert h.get(b"t") == b"c" * 2000
    seg.check()


def test_fit_gives_back_the_rest_of_a_reserved_block(seg: Segment) -> None:
    h = SharedHash(seg, 16, LockSet(2))
    h.put(b"t", b"a" * 100, reserve=3000)
    reserved = seg.used
    h.put(b"t", b"b" * 2000)  # in place, as the reserve is for
    assert seg.used == reserved
    h.put(b"t", b"c" * 600, fit=True)  # done growing: moved to a block its size
    assert seg.used < reserved - 2000
    assert h.get(b"t") == b"c" * 600
    fitted = seg.used
    h.put(b"t", b"d" * 590, fit=True)  # close enough: stays
    assert seg.used == fitted and h.get(b"t") == b"d" * 590
    seg.check()


def test_strict_reserve_is_all_or_nothing() -> None:
    seg = Segment(64 * 1024)
    h = SharedHash(seg, 16, LockSet(2))
    h.put(b"loose", b"x", reserve=1_000_000)  # too big: the exact size is taken
    assert h.get(b"loose") == b"x"
    used = seg.used
    with pytest.raises(ShmOutOfMemory):
        h.put(b"strict", b"x", reserve=1_000_000, strict=True)
    assert h.get(b"strict") is None and seg.used == used
    h.put(b"strict", b"x", reserve=4000, strict=True)
    assert seg.used >= used + 4000
    seg.check()
    seg.close()
