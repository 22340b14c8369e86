"""Reply selection (RFC 3261 16.7 with 1.6's preferences)."""

from __future__ import annotations

from sipserver.modules.tm.record import T_CANCELLED, T_NO_NEW_BRANCHES, Txn, UacBranch
from sipserver.modules.tm.select import (
    DISCARD,
    NEGATIVE,
    PUSHED,
    RELAY,
    STORE,
    branch_prio,
    decide,
    pick_branch,
)


def txn(n: int, method: str = "INVITE") -> Txn:
    t = Txn("0" * 32, method)
    t.branches = [UacBranch(f"sip:{i}@h") for i in range(n)]
    return t


def test_prio_order() -> None:
    order = [200, 603, 302, 401, 407, 486, 500, 408, 503]
    prios = [branch_prio(c, False) for c in order]
    assert prios == sorted(prios)
    assert branch_prio(487, True) == 0
    assert branch_prio(487, False) > branch_prio(486, False)


def test_negative_waits_for_the_other_branches() -> None:
    t = txn(2)
    assert decide(t, 0, 486).kind == STORE
    d = decide(t, 1, 404)
    assert d.kind == NEGATIVE and d.branch == 1  # 404 (604 prio) beats 486 (686)
    t2 = txn(2)
    decide(t2, 0, 408)
    assert decide(t2, 1, 486).branch == 1


def test_provisional_and_2xx() -> None:
    t = txn(2)
    assert decide(t, 0, 100).kind == DISCARD and t.branches[0].last == 100
    assert decide(t, 0, 180).kind == RELAY
    d = decide(t, 1, 200)
    assert d.kind == RELAY and d.completed and d.cancel == [0]
    t.uas_status = 200
    assert decide(t, 0, 200).kind == PUSHED  # further 2xx relayed too
    assert decide(t, 0, 486).kind == DISCARD


def test_6xx_stops_and_blocks() -> None:
    t = txn(3)
    decide(t, 0, 180)
    d = decide(t, 1, 603)
    assert d.kind == NEGATIVE and d.branch == 1 and d.cancel == [0, 2]
    assert t.flags & T_NO_NEW_BRANCHES
    t2 = txn(2)
    assert decide(t2, 0, 603, disable_6xx_block=True).kind == STORE


def test_cancelled_prefers_487_and_serial_sets() -> None:
    t = txn(2)
    t.flags |= T_CANCELLED
    decide(t, 0, 487)
    assert decide(t, 1, 200).kind == RELAY
    t = txn(3)
    t.branches[0].last = 486
    t.first_branch = 1  # a new serial step: only branches 1.. count
    decide(t, 1, 500)
    assert decide(t, 2, 480).branch == 2
    assert pick_branch(t) == 2


def test_retransmitted_final_is_discarded() -> None:
    t = txn(1, "OPTIONS")
    assert decide(t, 0, 200).kind == RELAY
    t.uas_status = 200
    assert decide(t, 0, 200).kind == DISCARD  # not an INVITE: nothing after completion
