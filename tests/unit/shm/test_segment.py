"""The segment's allocator: reuse, splitting, merging, out of memory, and use across fork."""

from __future__ import annotations

import os
import random

import pytest

from sipserver.shm.segment import HEAP_AT, MB, Segment, ShmError, ShmOutOfMemory

from .util import fill, in_children


@pytest.fixture
def seg() -> Segment:
    s = Segment(256 * 1024)
    yield s
    s.close()


def test_fresh_segment_figures(seg: Segment) -> None:
    info = seg.info()
    assert info == {"total_size": 256 * 1024, "used_size": 0, "real_used_size": HEAP_AT,
                     "max_used_size": HEAP_AT, "free_size": 256 * 1024 - HEAP_AT,
                     "fragments": 1}
    assert Segment.from_mb(1).size == MB
    with pytest.raises(ValueError):
        Segment(1000)
    with pytest.raises(ValueError):
        Segment.from_mb(0)


def test_alloc_write_read_and_capacity(seg: Segment) -> None:
    a = seg.alloc(100)
    assert seg.capacity(a) >= 100
    seg.write(a, b"x" * 100)
    assert seg.read(a, 100) == b"x" * 100
    b = seg.alloc(0)
    assert b != a and seg.capacity(b) >= 0
    z = seg.alloc(64, zero=True)
    assert seg.read(z, 64) == bytes(64)
    assert seg.used == seg.capacity(a) + seg.capacity(b) + seg.capacity(z)
    seg.check()


def test_freed_block_is_reused(seg: Segment) -> None:
    a = seg.alloc(100)
    guard = seg.alloc(10)
    seg.free(a)
    assert seg.fragments == 2  # the freed block and the top
    assert seg.alloc(100) == a
    assert seg.fragments == 1
    seg.free(guard)
    seg.check()


def test_big_free_block_is_split(seg: Segment) -> None:
    a = seg.alloc(4000)
    guard = seg.alloc(10)
    seg.free(a)
    b = seg.alloc(100)
    assert b == a  # carved from the front of the free block
    c = seg.alloc(200)
    assert a < c < guard  # the rest of it serves the next request
    seg.check()


def test_neighbours_merge_when_freed(seg: Segment) -> None:
    blocks = [seg.alloc(200) for _ in range(3)]
    guard = seg.alloc(10)
    whole = 3 * (seg.capacity(blocks[0]) + 8) - 8  # one block over all three
    seg.free(blocks[0])
    seg.free(blocks[2])
    assert seg.check()["free_blocks"] == 2
    seg.free(blocks[1])  # merges with both sides
    assert seg.check()["free_blocks"] == 1
    assert seg.alloc(whole) == blocks[0]
    seg.free(guard)
    seg.check()


def test_freeing_the_last_block_gives_memory_back_to_the_top(seg: Segment) -> None:
    before = seg.info()
    a = seg.alloc(1000)
    b = seg.alloc(1000)
    seg.free(a)
    seg.free(b)
    after = seg.info()
    assert after["used_size"] == 0 and after["fragments"] == 1
    assert after["free_size"] == before["free_size"]
    assert after["max_used_size"] > before["max_used_size"]  # the peak is remembered
    assert seg.check() == {"used_blocks": 0, "free_blocks": 0, "top": HEAP_AT}


def test_out_of_memory_raises_and_changes_nothing(seg: Segment) -> None:
    blocks = []
    with pytest.raises(ShmOutOfMemory, match="out of shared memory"):
        while True:
            blocks.append(seg.alloc(1000))
    before = seg.info()
    with pytest.raises(ShmOutOfMemory):
        seg.alloc(1000)
    with pytest.raises(ShmOutOfMemory):
        seg.alloc(10 * MB)
    assert seg.info() == before
    seg.check()
    # still usable: free one, allocate again
    seg.free(blocks.pop())
    blocks.append(seg.alloc(1000))
    for b in blocks:
        seg.free(b)
    assert seg.used == 0
    seg.check()


def test_fragmented_memory_cannot_serve_a_big_block_until_it_merges(seg: Segment) -> None:
    small = fill(seg, 100)
    for b in small[::2]:
        seg.free(b)
    info = seg.info()
    assert info["free_size"] > 100_000 and info["fragments"] > 1000
    with pytest.raises(ShmOutOfMemory):
        seg.alloc(50_000)  # lots free, but in 112-byte pieces
    assert seg.alloc(100) in small[::2]  # small requests are served from the pieces
    seg.check()
    for b in small[1::2]:
        seg.free(b)
    big = seg.alloc(50_000)  # everything merged again
    seg.free(big)
    seg.check()


def test_bad_frees_are_refused(seg: Segment) -> None:
    a = seg.alloc(100)
    guard = seg.alloc(100)
    seg.free(a)
    before = seg.info()
    with pytest.raises(ShmError, match="double free"):
        seg.free(a)
    for bad in (0, 5, HEAP_AT + 3, seg.size + 8):
        with pytest.raises(ShmError):
            seg.free(bad)
    assert seg.info() == before
    seg.free(guard)
    with pytest.raises(ShmError):
        seg.free(guard)  # now beyond the top
    seg.check()
    with pytest.raises(ValueError):
        seg.alloc(-1)


def test_random_alloc_free_keeps_data_and_invariants(seg: Segment) -> None:
    rnd = random.Random(42)
    live: dict[int, bytes] = {}
    for i in range(4000):
        if live and rnd.random() < 0.48:
            off = rnd.choice(list(live))
            assert seg.read(off, len(live[off])) == live[off]
            seg.free(off)
            del live[off]
        else:
            n = rnd.choice((0, 7, 24, 100, 300, 1000, 1500, 5000, 20000))
            try:
                off = seg.alloc(n)
            except ShmOutOfMemory:
                continue
            data = rnd.randbytes(n)
            seg.write(off, data)
            live[off] = data
        if i % 500 == 0:
            seg.check()
    for off, data in live.items():
        assert seg.read(off, len(data)) == data
        seg.free(off)
    assert seg.check()["used_blocks"] == 0


def test_blocks_are_shared_across_fork(seg: Segment) -> None:
    a = seg.alloc(64, zero=True)
    r, w = os.pipe()

    def child(_i: int) -> None:
        b = seg.alloc(32)
        seg.write(b, b"from the child".ljust(32))
        seg.write(a, b.to_bytes(8, "little"))

    in_children(1, child)
    os.close(r)
    os.close(w)
    b = int.from_bytes(seg.read(a, 8), "little")
    assert seg.read(b, 14) == b"from the child"
    seg.free(b)  # a block allocated by a child is freed by the parent
    seg.free(a)
    assert seg.used == 0
    seg.check()


def test_concurrent_alloc_free_from_children() -> None:
    seg = Segment(4 * MB)

    def child(i: int) -> None:
        rnd = random.Random(i)
        mine = []
        for _ in range(2000):
            if mine and rnd.random() < 0.5:
                off, tag = mine.pop(rnd.randrange(len(mine)))
                assert seg.read(off, 8) == tag
                seg.free(off)
            else:
                off = seg.alloc(rnd.choice((8, 40, 200, 1200)))
                tag = os.urandom(8)
                seg.write(off, tag)
                mine.append((off, tag))
        for off, tag in mine:
            assert seg.read(off, 8) == tag
            seg.free(off)

    in_children(3, child)
    assert seg.check()["used_blocks"] == 0
    assert seg.used == 0
    seg.close()
