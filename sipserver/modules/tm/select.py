"""Which reply goes upstream (RFC 3261 §16.7, with 1.6's preferences).

`decide` is the pure part of reply processing: given a transaction, the
branch a reply (or a faked one) came in on and its code, it updates the
branch and says what to do: drop it, keep it while other branches are
pending, relay it (provisional, 2xx, or after completion), or — all
branches having ended negatively — which branch won (the caller then runs
the failure route before relaying it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .record import T_NO_NEW_BRANCHES, Txn

__all__ = ["DISCARD", "NEGATIVE", "PUSHED", "RELAY", "STORE", "Decision", "branch_prio",
           "decide", "pick_branch", "which_cancel"]

DISCARD = "discard"    # nothing goes upstream
STORE = "store"        # a negative reply kept while other branches are pending
RELAY = "relay"        # a 1xx (not 100) or a 2xx goes upstream now
PUSHED = "pushed"      # a further 2xx for an INVITE already answered
NEGATIVE = "negative"  # every branch ended negatively: `branch` won


@dataclass(slots=True)
class Decision:
    kind: str
    branch: int = -1
    completed: bool = False
    cancel: list[int] = field(default_factory=list)


def branch_prio(code: int, cancelled: bool) -> int:
    """1.6's ordering of final codes: lower wins.

    2xx, then 6xx, 3xx, the "fixable" 4xx (401, 407, 415, 420, 484), other
    4xx, 5xx, 408 and 503 last; a 487 on a cancelled transaction first.
    """
    cls = code // 100
    if cls in (1, 2):
        return code
    if cls == 6:
        return code - 300
    if cls == 3:
        return code + 100
    if cls == 5:
        return 801 if code == 503 else code + 200
    if cls == 4:
        fixable = {401: 500, 407: 501, 415: 502, 420: 503, 484: 504, 408: 800}
        if code in fixable:
            return fixable[code]
        if code == 487 and cancelled:
            return 0
        return code + 200
    return code + 200


def pick_branch(t: Txn, minor_mask: int = 0) -> int:
    """The winning branch among the current set; -2 while one is pending, -1 if none.

    Pending branches flagged with minor_branch_flag are not waited for.
    """
    best = -1
    best_prio = 0
    for i in range(t.first_branch, len(t.branches)):
        b = t.branches[i]
        if b.last < 200:
            if b.bflags & minor_mask:
                continue
            return -2
        prio = branch_prio(b.last, t.cancelled)
        if best == -1 or prio < best_prio:
            best, best_prio = i, prio
    return best


def which_cancel(t: Txn, skip: int | None = None) -> list[int]:
    """Branches still waiting for a final reply (to be cancelled)."""
    return [i for i in range(len(t.branches))
            if i != skip and t.branches[i].last < 200 and t.branches[i].cancel == 0]


def decide(t: Txn, branch: int, code: int, *, invite_2xx_after: bool = True,
           disable_6xx_block: bool = False, minor_mask: int = 0) -> Decision:
    """Record `code` on `branch` and say what happens with the reply."""
    b = t.branches[branch]
    inv_through = 200 <= code < 300 and t.is_invite
    if t.uas_status >= 200:
        if inv_through and invite_2xx_after:
            b.last = code
            return Decision(PUSHED, branch)
        return Decision(DISCARD)
    if b.last >= 200 and not (inv_through and b.last < 300):
        return Decision(DISCARD)  # a retransmission, or a status rewrite
    if code >= 300:
        b.last = code
        if code >= 600 and not disable_6xx_block:
            t.flags |= T_NO_NEW_BRANCHES
            return Decision(NEGATIVE, branch, completed=True, cancel=which_cancel(t, branch))
        picked = pick_branch(t, minor_mask)
        if picked == -2:
            return Decision(STORE, branch)
        if picked < 0:
            return Decision(DISCARD)
        # minor branches still pending get cancelled
        return Decision(NEGATIVE, picked, completed=True, cancel=which_cancel(t))
    b.last = code
    if code >= 200:
        return Decision(RELAY, branch, completed=True, cancel=which_cancel(t, branch))
    if code == 100:
        return Decision(DISCARD)  # absorbed: only updates the branch
    return Decision(RELAY, branch)
