"""The transaction record encoding and the shared store."""

from __future__ import annotations

import marshal

from sipserver.core.runtime import Runtime
from sipserver.modules.tm.record import T_CANCELLED, Txn, UacBranch
from sipserver.modules.tm.store import TmState
from sipserver.shm import Segment

from ...shm.util import fill


def same(a: Txn, b: Txn) -> bool:
    """Equal records (marshal's bytes also depend on reference counts)."""
    return marshal.loads(a.encode()) == marshal.loads(b.encode())


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
    assert same(u, t)
    assert u.cancelled and u.on_failure == "1" and u.avps == t.avps
    assert u.branches[0].dst == ("udp", "5.6.7.8", 5080) and u.branches[0].on_reply == "r1"
    assert u.next_due() == 50.0
    assert u.pending_branches() == [0]


def test_store_save_load_delete_and_due_index() -> None:
    rt = Runtime()
    st = TmState(rt, {}, segment=Segment(2 * 1024 * 1024))
    t = sample()
    assert st.insert(t)
    assert same(st.load(t.tid), t)
    assert st.due_now(49.0) == []
    ((tid, node),) = st.due_now(50.0)
    assert tid == t.tid
    st.wheel.release(node)
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


def test_compact_drops_only_what_a_completed_transaction_cannot_use() -> None:
    t = sample()
    t.fwd_req = b"INVITE sip:changed SIP/2.0\r\n\r\n"
    t.branches[0].last = 200
    assert not t.compact() and t.fwd_req and t.branches[0].request  # still proceeding
    t.uas_status = 200
    negative = UacBranch("sip:c@h", ("udp", "5.6.7.9", 5080), "udp:127.0.0.1:5060", b"INVITE c")
    negative.last = 486  # a repeated 486 must still be ACKed from this request
    pending = UacBranch("sip:d@h", ("udp", "5.6.7.10", 5080), "udp:127.0.0.1:5060", b"INVITE d")
    pending.last = 180  # a CANCEL is still built from it
    t.branches += [negative, pending]
    assert t.compact()
    assert t.fwd_req == b"" and t.branches[0].request == b""
    assert t.branches[1].request == b"INVITE c" and t.branches[2].request == b"INVITE d"
    assert t.request  # retransmissions and RFC 2543 matching still need it
    assert not t.compact()  # nothing left to drop
    bye = Txn("b" * 32, "BYE", b"BYE sip:x SIP/2.0\r\n\r\n", ("1.2.3.4", 5060, "udp"),
              "udp:127.0.0.1:5060", ("udp", "1.2.3.4", 5060), 12.5)
    done = UacBranch("sip:b@h", ("udp", "5.6.7.8", 5080), "udp:127.0.0.1:5060", b"BYE b")
    done.last = 481  # non-INVITE: nothing is ever sent on a finished branch
    bye.branches.append(done)
    bye.uas_status = 481
    assert bye.compact() and done.request == b""


def test_a_completed_transaction_shrinks_in_shared_memory() -> None:
    seg = Segment(2 * 1024 * 1024)
    st = TmState(Runtime(), {}, segment=seg)
    t = sample()
    t.fwd_req = b"f" * 600
    t.branches[0].request = b"r" * 700
    assert st.insert(t)
    grown = seg.used
    t.branches[0].last = 200
    t.uas_status = 200
    t.uas_reply = b"SIP/2.0 200 OK\r\n\r\n"
    assert st.save(t)
    assert seg.used <= grown - 1250  # the two copies (1,300 bytes) went back
    assert same(st.load(t.tid), t)
    seg.check()


def test_a_record_that_cannot_be_saved_is_removed_not_left_stale() -> None:
    logs: list[str] = []
    seg = Segment(256 * 1024)
    st = TmState(Runtime(logger=lambda level, text: logs.append(text)), {}, segment=seg)
    t = sample()
    assert st.insert(t)
    filler = fill(seg, 512)
    # a reply that does not fit: the stored record (fr timer armed) would
    # otherwise fire a 408 for a call that was answered
    t.branches[0].reply = b"SIP/2.0 200 OK\r\n" + b"x" * 8192
    t.branches[0].fr_due = 0.0
    t.wait_due = 60.0
    assert not st.save(t)
    assert st.load(t.tid) is None and len(st) == 0
    assert st.due_now(1e9) == []
    assert any("out of shared memory" in x for x in logs)
    for off in filler:
        seg.free(off)
    seg.check()


def test_a_due_time_that_moves_later_needs_no_new_wheel_node() -> None:
    st = TmState(Runtime(), {}, segment=Segment(2 * 1024 * 1024))
    t = sample()  # due at 50 (uas_retr_due)
    assert st.insert(t) and len(st.wheel) == 1
    t.uas_retr_due = 0.0  # next: the branch's fr at 99
    assert st.save(t) and len(st.wheel) == 1
    assert st.due_now(60.0) == []  # the early node moved itself to 99
    assert len(st.wheel) == 1
    ((tid, node),) = st.due_now(99.0)
    assert tid == t.tid
    t = st.load(tid)
    t.branches[0].fr_due = 130.0
    assert st.save(t, node=node) and len(st.wheel) == 1  # the timer's node, moved
    t = st.load(tid)
    t.branches[0].fr_due = 120.0  # earlier than the record's time: a node of its own
    assert st.save(t) and len(st.wheel) == 2
    assert [tid for tid, _ in st.due_now(120.0)] == [t.tid]
