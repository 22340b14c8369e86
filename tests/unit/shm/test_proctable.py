"""The process table: each child fills its slot, any process lists them (MI ps)."""

from __future__ import annotations

import os

import pytest

from sipserver.core.proctable import ProcEntry, ProcessTable
from sipserver.shm import Segment

from .util import in_children


@pytest.fixture
def table() -> ProcessTable:
    seg = Segment(256 * 1024)
    yield ProcessTable(seg, 16)
    seg.close()


def test_set_get_and_ps_lines(table: ProcessTable) -> None:
    assert table.entries() == [] and table.ps_lines() == []
    table.set(0, desc="attendant")
    table.set(2, 4242, "udp receiver child=0 udp:127.0.0.1:5060")
    assert table.get(0) == ProcEntry(0, os.getpid(), "attendant")
    assert table.get(1) == ProcEntry(1, 0, "")
    assert table.ps_lines() == [
        f"Process:: ID=0 PID={os.getpid()} Type=attendant",
        "Process:: ID=1 PID=0 Type=",
        "Process:: ID=2 PID=4242 Type=udp receiver child=0 udp:127.0.0.1:5060",
    ]
    assert table.rank_of(4242) == 2 and table.rank_of(1) is None
    table.clear(2)
    assert len(table.entries()) == 1
    with pytest.raises(IndexError):
        table.set(16, 1, "x")
    with pytest.raises(IndexError):
        table.get(-1)


def test_descriptions_are_cut_like_1_6(table: ProcessTable) -> None:
    table.set(1, 1, "x" * 300)
    assert table.get(1).desc == "x" * 127
    table.set(1, 1, "é" * 100)  # 200 bytes: cut on a character boundary
    assert table.get(1).desc == "é" * 63


def test_children_fill_their_own_slots(table: ProcessTable) -> None:
    table.set(0, desc="attendant")

    def child(i: int) -> None:
        table.set(i + 1, desc=f"udp receiver child={i} udp:127.0.0.1:5060")

    in_children(4, child)
    rows = table.entries()
    assert [r.rank for r in rows] == [0, 1, 2, 3, 4]
    assert len({r.pid for r in rows}) == 5 and all(r.pid for r in rows)
    assert rows[3].desc == "udp receiver child=2 udp:127.0.0.1:5060"
