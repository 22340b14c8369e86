"""tm's timers, run by the timer process every TICK seconds.

The store's timer wheel names the transactions that came due; each is
then handled under its lock: request retransmissions (timers A/E), final-reply
retransmissions upstream (timer G), final-response timeouts (fr_timer /
fr_inv_timer: CANCEL the ringing branch, fake a 408 — a 487 when the
transaction was cancelled — and go through reply selection and the
failure route), and the removal of finished transactions (wt_timer).
"""

from __future__ import annotations

from ...core.runtime import L_DBG, L_ERR
from . import callbacks
from .record import CANCEL_SENT, T_UAS_ACKED, Txn
from .replies import handle_code
from .store import TmState
from .uac import REASON_NO_ANSWER, cancel_branches, retransmit_branch, retransmit_cancel
from .uas import send_upstream

__all__ = ["TICK", "run_timers", "txn_timers"]

TICK = 0.1


def txn_timers(st: TmState, t: Txn, now: float) -> bool:
    """Fire what is due on one transaction (lock held); False = delete it."""
    if t.wait_due and now >= t.wait_due:
        return False
    if t.uas_retr_due and now >= t.uas_retr_due:
        if t.flags & T_UAS_ACKED or t.uas_status < 300:
            t.uas_retr_due = 0.0
        else:
            send_upstream(st, t, t.uas_reply)
            t.uas_retr_iv = min(t.uas_retr_iv * 2, st.t2)
            t.uas_retr_due = now + t.uas_retr_iv
    for i, b in enumerate(t.branches):
        if b.retr_due and now >= b.retr_due:
            retransmit_branch(st, t, i, now)
        if b.cancel_req and (b.cancel_due or b.cancel_fr):
            retransmit_cancel(st, b, now)
    for i in range(len(t.branches)):  # DNS failover may add branches
        b = t.branches[i]
        if b.fr_due and now >= b.fr_due:
            b.fr_due = 0.0
            b.retr_due = 0.0
            if b.last >= 200:
                continue
            if t.is_invite and b.last >= 100 and b.cancel != CANCEL_SENT:
                cancel_branches(st, t, [i], REASON_NO_ANSWER)
            code = 487 if t.cancelled else 408
            st.rt.log(L_DBG, f"tm: final response timer of branch {i} fired; {code}")
            handle_code(st, t, i, code, None)
    return True


def run_timers(st: TmState) -> None:
    """One timer pass over every transaction with something due."""
    now = st.clock()
    for tid, node in st.due_now(now):
        st.lock(tid)
        try:
            t = st.load(tid)
            if t is None:
                st.wheel.release(node)
                node = 0
                continue
            if txn_timers(st, t, now):
                kept, node = node, 0
                st.save(t, node=kept)  # its node goes back on the wheel
            else:
                if t.tmcbs or t.tmcb_keys:
                    callbacks.on_delete(st, t)
                st.delete(tid)
                st.wheel.release(node)
                node = 0
        except Exception as e:  # one bad record must not stop the others
            st.rt.log(L_ERR, f"tm: timer on transaction {tid}: {e!r}")
            if node:  # try again in a second
                st.wheel.requeue(node, now + 1.0)
        finally:
            st.unlock(tid)
