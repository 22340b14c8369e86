"""The transaction record encoding and the shared store."""

from __future__ import annotations

from sipserver.core.runtime import Runtime
from sipserver.modules.tm.record import T_CANCELLED, Txn, UacBranch
from sipserver.modules.tm.store import TmState
from sipserver.shm import Segment


def sample() -> Txn:
    t = Txn("a" * 32, "INVITE", b"INVITE sip:x SIP/2.0\r\n\r\n", ("1.2.3.4", 5060, "udp"),
            "udp:127.0.0.1:5060", ("udp", "1.2.3.4", 5060), 12.5)
    t.flags = T_CANCELLED
    t.on_failure = "1"
    t.avps = [("s:x", [1, "two"]), (7, ["z"])]
    b = UacBranch("sip:b@h", ("udp", "5.6.7.8", 5080), "udp:127.0.0.1:5060", b"INVITE ...")
    b.last, b.reply, b.fr_due, b.on_reply = 180, b"SIP/2.0 180 x", 99.0, "r1"
    t.branches.append(b)
    t.uas_retr_due = 50.0
    return t


def test_roundtrip() -> None:
    t = sample()
    u = Txn.decode(t.tid, t.encode())
    assert u.encode() == t.encode()
    assert u.cancelled and u.on_failure == "1" and u.avps == t.avps
    assert u.branches[0].dst == ("udp", "5.6.7.8", 5080) and u.branches[0].on_reply == "r1"
    assert u.next_due() == 50.0
    assert u.pending_branches() == [0]


def test_store_save_load_delete_and_due_index() -> None:
    rt = Runtime()
    st = TmState(rt, {}, segment=Segment(2 * 1024 * 1024))
    t = sample()
    assert st.insert(t)
    assert st.load(t.tid).encode() == t.encode()
    assert st.due_now(49.0) == [] and st.due_now(50.0) == [t.tid]
    t.uas_retr_due = 0.0
    t.branches[0].fr_due = 0.0
    st.save(t)
    assert st.due_now(1e9) == []
    st.delete(t.tid)
    assert st.load(t.tid) is None and len(st) == 0


def test_out_of_memory_fails_cleanly() -> None:
    logs: list[str] = []
    rt = Runtime(logger=lambda level, text: logs.append(text))
    st = TmState(rt, {}, segment=Segment(1024 * 1024))
    t = sample()
    t.request = b"x" * (2 * 1024 * 1024)
    assert not st.insert(t)
    assert st.load(t.tid) is None
    assert any("out of shared memory" in x for x in logs)
