"""tm state transitions over a compiled script, with a fake clock."""

from __future__ import annotations

import re

import pytest

from sipserver.modules.tm.timer import run_timers

from ...shm.util import fill
from .helpers import feed_reply, first_line, invite, reply_to, runner

PROXY = """
route {
    if (method == "CANCEL") {
        if (t_check_trans()) t_relay();
        exit;
    }
    t_on_failure("1");
    t_on_reply("2");
    if (!t_relay()) { sl_reply_error(); }
}
onreply_route[2] {
    $var(seen) = $T_reply_code;
}
failure_route[1] {
    if (t_was_cancelled()) exit;
    if (t_check_status("486")) {
        rewritehostport("127.0.0.9:5099");
        t_relay();
    }
}
"""


def sent_since(r, n: int) -> list[bytes]:
    return [d for _, _, d in r.sent[n:]]


def test_invite_100_branch_and_retransmission_absorbed() -> None:
    r, st, _clock = runner(PROXY)
    r.request(invite())
    out = [d for _, _, d in r.sent]
    assert first_line(out[0]) == "SIP/2.0 100 Giving a try"
    assert out[1].startswith(b"INVITE sip:bob@127.0.0.5:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")
    assert b".0\r\nVia: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKabc" in out[1]
    assert len(st) == 1
    # retransmission: no new branch, the 100 again
    r.request(invite())
    assert len(r.sent) == 3 and first_line(r.sent[2][2]) == "SIP/2.0 100 Giving a try"
    # 180 relayed (our Via gone) and then re-sent for the next retransmission
    assert feed_reply(r, reply_to(out[1], 180, "Ringing"))
    relayed = r.sent[3][2]
    assert first_line(relayed) == "SIP/2.0 180 Ringing"
    assert relayed.count(b"Via:") == 1 and r.sent[3][1].port == 5070
    assert r.rt.script_vars["seen"] == 180
    r.request(invite())
    assert r.sent[4][2] == relayed


@pytest.mark.parametrize("full", [False, True], ids=["memory", "full-segment"])
def test_request_retransmission_timer_and_fr_408(full: bool) -> None:
    """With `full`, the segment has no free byte left after the request:
    rescheduling reuses the timer's wheel node, so the retransmissions, the
    408 and the deletion need no new shared memory."""
    r, st, clock = runner(PROXY, params='modparam("tm", "fr_timer", 2)\n')
    r.request(invite(method="OPTIONS"))
    assert len(r.sent) == 1  # no 100 for non-INVITE
    taken = fill(st.table.seg, 32) if full else []
    for step, expect in ((0.5, 2), (1.0, 2), (1.6, 3)):
        clock.now = 1000.0 + step
        run_timers(st)
        assert len(r.sent) == expect, step
    clock.now = 1002.0
    run_timers(st)
    last = r.sent[-1][2]
    assert first_line(last) == "SIP/2.0 408 Request Timeout"
    assert re.search(rb"\r\nTo: <sip:bob@x>;tag=[0-9a-f]{32}-[0-9a-f]{4}\r\n", last)
    assert len(st) == 1
    clock.now = 1008.0  # wt_timer removes it
    run_timers(st)
    assert len(st) == 0
    for off in taken:
        st.table.seg.free(off)
    st.table.seg.check()


def test_serial_forking_from_failure_route() -> None:
    r, st, _clock = runner(PROXY)
    r.request(invite())
    br0 = r.sent[1][2]
    assert feed_reply(r, reply_to(br0, 486, "Busy Here"))
    new = sent_since(r, 2)
    assert new[0].startswith(b"ACK sip:bob@127.0.0.5:5080 SIP/2.0\r\n")
    assert b"To: <sip:bob@x>;tag=uas1" in new[0]
    assert new[1].startswith(b"INVITE sip:bob@127.0.0.9:5099 SIP/2.0")
    assert b".1\r\n" in new[1].split(b"\r\n\r\n")[0] + b"\r\n"
    assert len(new) == 2  # the 486 was not relayed
    assert feed_reply(r, reply_to(new[1], 200, "OK", to_tag="uas2"))
    ok = r.sent[-1][2]
    assert first_line(ok) == "SIP/2.0 200 OK" and ok.count(b"Via:") == 1
    assert st.stats["2xx_transactions"].get() == 1


def test_upstream_cancel() -> None:
    r, _st, _clock = runner(PROXY)
    r.request(invite())
    br0 = r.sent[1][2]
    feed_reply(r, reply_to(br0, 180, "Ringing"))
    n = len(r.sent)
    r.request(invite(method="CANCEL"))
    out = sent_since(r, n)
    assert first_line(out[0]) == "SIP/2.0 200 canceling"
    assert out[1].startswith(b"CANCEL sip:bob@127.0.0.5:5080 SIP/2.0\r\n")
    assert b'Reason: SIP;cause=487;text="ORIGINATOR_CANCEL"' in out[1]
    assert out[1].split(b"branch=")[1][:41] == br0.split(b"branch=")[1][:41]
    feed_reply(r, reply_to(out[1].replace(b"CSeq: 1 CANCEL", b"CSeq: 1 CANCEL"), 200, "OK"))
    n = len(r.sent)
    feed_reply(r, reply_to(br0, 487, "Request Terminated"))
    out = sent_since(r, n)
    assert out[0].startswith(b"ACK ")
    assert first_line(out[1]) == "SIP/2.0 487 Request Terminated"
    # the ACK from upstream is absorbed
    n = len(r.sent)
    r.request(invite(method="ACK", to_tag="uas1"))
    assert len(r.sent) == n


def test_2xx_cancels_other_branches_with_reason() -> None:
    r, _st, _clock = runner("""
route { append_branch("sip:carol@127.0.0.6:5090"); t_relay(); }
""")
    r.request(invite())
    b0, b1 = r.sent[1][2], r.sent[2][2]
    assert b".0\r\n" in b0 and b".1\r\n" in b1
    feed_reply(r, reply_to(b1, 180, "Ringing", to_tag="c"))
    feed_reply(r, reply_to(b0, 200, "OK"))
    cancel = r.sent[-1][2]
    assert cancel.startswith(b"CANCEL sip:carol@127.0.0.6:5090")
    assert b'Reason: SIP ;cause=200 ;text="Call completed elsewhere"' in cancel
    assert first_line(r.sent[-2][2]) == "SIP/2.0 200 OK"


def test_t_reply_and_503_translation() -> None:
    r, _st, _clock = runner("""
route {
    if (method == "MESSAGE") { t_reply("404", "Nope"); exit; }
    t_relay();
}
""")
    r.request(invite(method="MESSAGE"))
    assert first_line(r.sent[0][2]) == "SIP/2.0 404 Nope"
    r.request(invite(method="MESSAGE"))
    assert r.sent[1][2] == r.sent[0][2]  # retransmission answered again
    r.request(invite(method="OPTIONS", branch="z9hG4bKo"))
    feed_reply(r, reply_to(r.sent[-1][2], 503, "Service Unavailable"))
    assert first_line(r.sent[-1][2]) == "SIP/2.0 500 Service Unavailable"


def test_unknown_reply_is_left_to_the_core() -> None:
    r, _st, _clock = runner("route { t_relay(); }")
    assert not feed_reply(r, reply_to(invite(), 200, "OK"))


def test_unforwarded_transaction_is_not_leaked() -> None:
    r, st, clock = runner("route { t_newtran(); }", params='modparam("tm", "fr_timer", 1)\n')
    r.request(invite(method="MESSAGE"))
    assert len(st) == 1 and r.sent == []
    r.request(invite(method="MESSAGE"))  # retransmission: absorbed, nothing to re-send
    assert r.sent == []
    clock.now += 10
    run_timers(st)
    assert len(st) == 0


def test_timer_wheel_deletes_finished_transactions_on_time_and_no_earlier() -> None:
    r, st, clock = runner("route { t_relay(); }")
    for i in range(40):
        r.request(invite(branch=f"z9hG4bKw{i}", call_id=f"w{i}"))
        fwd = r.sent[-1][2]
        feed_reply(r, reply_to(fwd, 200, "OK"))  # 2xx: the INVITE waits wt_timer (5 s)
    assert len(st) == 40
    clock.now += 4.9
    run_timers(st)
    assert len(st) == 40  # not due yet
    clock.now += 0.2
    run_timers(st)
    assert len(st) == 0
    assert len(st.wheel) == 0  # every wheel entry was used up


def test_a_transaction_whose_timer_moved_later_is_not_fired_early() -> None:
    r, st, clock = runner("route { t_relay(); }", params='modparam("tm", "fr_inv_timer", 3)\n')
    r.request(invite(branch="z9hG4bKmv", call_id="mv"))
    fwd = r.sent[-1][2]
    feed_reply(r, reply_to(fwd, 180, "Ringing"))  # fr_timer (30 s) -> fr_inv_timer (3 s)
    clock.now += 2.0
    feed_reply(r, reply_to(fwd, 183, "Session Progress"))  # restarts fr_inv_timer
    n = len(r.sent)
    clock.now += 1.5  # 3 s after the 180, 1.5 s after the 183
    run_timers(st)
    assert not any(first_line(d).startswith("SIP/2.0 408") for d in sent_since(r, n))
    clock.now += 1.6
    run_timers(st)
    assert any(first_line(d).startswith("SIP/2.0 408") for d in sent_since(r, n))


def test_a_completed_transaction_still_answers_retransmissions_on_both_sides() -> None:
    """Completed records are compacted (tm.record.Txn.compact): what they
    keep must still serve the wait state on the wire."""
    r, st, _clock = runner("route { t_relay(); }")
    r.request(invite())
    fwd = r.sent[1][2]
    feed_reply(r, reply_to(fwd, 486, "Busy Here"))
    out = [d for _, _, d in r.sent[2:]]
    assert out[0].startswith(b"ACK sip:bob@127.0.0.5:5080 SIP/2.0\r\n")
    assert first_line(out[1]) == "SIP/2.0 486 Busy Here"
    (t,) = [st.load(k.decode()) for k in st.table]
    assert t.fwd_req == b"" and t.branches[0].request  # kept to ACK a repeated 486
    # the UAS repeats its 486 (our ACK was lost): ACKed again, not relayed again
    n = len(r.sent)
    assert feed_reply(r, reply_to(fwd, 486, "Busy Here"))
    again = sent_since(r, n)
    assert len(again) == 1 and again[0] == out[0]
    # the caller repeats its INVITE: the stored 486 again
    n = len(r.sent)
    r.request(invite())
    assert sent_since(r, n) == [out[1]]


def test_a_2xx_completed_invite_keeps_its_reply_and_drops_the_copies() -> None:
    r, st, _clock = runner("route { t_relay(); }")
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 200, "OK"))
    ok = r.sent[-1][2]
    assert first_line(ok) == "SIP/2.0 200 OK"
    (t,) = [st.load(k.decode()) for k in st.table]
    assert t.fwd_req == b"" and t.branches[0].request == b"" and t.request
    n = len(r.sent)
    r.request(invite())  # a late INVITE retransmission gets the 200
    assert sent_since(r, n) == [ok]


def test_t_relay_out_of_memory_forwards_nothing_and_fails_as_16() -> None:
    """1.6: no memory for the transaction, t_relay returns an error before
    anything is sent; here the script answers with sl_reply_error."""
    r, st, _clock = runner("route { if (!t_relay()) { sl_reply_error(); } }")
    seg = st.table.seg
    taken = fill(seg, 256)
    r.request(invite())
    out = [d for _, _, d in r.sent]
    assert len(out) == 1 and first_line(out[0]).startswith("SIP/2.0 500 "), out
    assert len(st) == 0
    for off in taken:
        seg.free(off)
    r.request(invite(branch="z9hG4bKnext", call_id="c2"))  # memory back: stateful again
    assert [first_line(d) for _, _, d in r.sent[1:]][:2] == [
        "SIP/2.0 100 Giving a try", "INVITE sip:bob@127.0.0.5:5080 SIP/2.0"]
    assert len(st) == 1


def test_a_reply_in_a_full_segment_keeps_the_transaction() -> None:
    """The 486's later due time needs no new wheel node, so its save cannot
    fail for want of one: the transaction stays and absorbs the ACK."""
    r, st, clock = runner("route { t_relay(); }")
    r.request(invite())
    fwd = r.sent[1][2]
    taken = fill(st.table.seg, 32)
    clock.now = 1000.1
    assert feed_reply(r, reply_to(fwd, 486, "Busy Here"))
    assert [first_line(d) for _, _, d in r.sent[2:]] == [
        "ACK sip:bob@127.0.0.5:5080 SIP/2.0", "SIP/2.0 486 Busy Here"]
    assert len(st) == 1
    n = len(r.sent)
    r.request(invite(method="ACK", to_tag="uas1"))  # hop-by-hop: absorbed
    assert len(r.sent) == n and len(st) == 1
    for off in taken:
        st.table.seg.free(off)
