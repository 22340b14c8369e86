"""t_uac_dlg's pending answer (tm/mi.py UacDlgReply): what the MI loop collects.

The handler returns at once after sending; the replies tm reports through
the named callback (in the receiver, or the timer for a timeout) become the
answer's trees: each 1xx with pass_provisional_replies, the final one, or
the 408 at the deadline.
"""

from __future__ import annotations

import time
from typing import Any

from sipserver.mi.pending import PendingReply
from sipserver.mi.tree import MINodeArg
from sipserver.modules.tm import api, mi
from sipserver.modules.tm.timer import run_timers

from .helpers import feed_reply, reply_to, runner

CFG = "route { t_relay(); }"
HDRS = "From: <sip:mi@127.0.0.1>\r\nTo: <sip:peer@127.0.0.9>\r\n"
RURI = "sip:peer@127.0.0.9:5099"


def start(provisional: int = 1) -> tuple[Any, Any, Any, Any]:
    r, st, clock = runner(CFG, params=f'modparam("tm", "fr_timer", 3)\n'
                                      f'modparam("tm", "pass_provisional_replies", {provisional})\n')
    mod = r.compiled.registry.modules["tm"]
    pending = mi.mi_t_uac_dlg([MINodeArg(None, v) for v in ("OPTIONS", RURI, ".", ".", HDRS)],
                              r.rt, mod)
    assert isinstance(pending, PendingReply)
    return r, st, clock, pending


def kids(tree: Any) -> list[str]:
    return [k.value for k in tree.kids]


def test_the_handler_returns_before_any_reply_and_collects_each_one() -> None:
    r, _, _, pending = start()
    sent = r.sent[-1][2]
    assert sent.startswith(f"OPTIONS {RURI} SIP/2.0\r\n".encode())
    assert pending.check() == []
    ringing = reply_to(sent, 180, "Ringing")
    assert feed_reply(r, ringing)
    (tree, final), = pending.check()
    assert not final and tree.code == 200
    assert kids(tree) == ["180 Ringing", ".", ".", ".",
                          ringing.decode().split("\r\n", 1)[1]]
    ok = reply_to(sent, 200, "Fine").replace(b"Content-Length",
                                             b"Contact: <sip:peer@127.0.0.9:5099>\r\nContent-Length")
    assert feed_reply(r, ok)
    (tree, final), = pending.check()
    assert final and pending.done
    assert kids(tree) == ["200 Fine", RURI, RURI, ".", ok.decode().split("\r\n", 1)[1]]
    assert pending.check() == []
    assert len(api.local_uac(r.compiled.registry.modules["tm"].state).results) == 0


def test_provisional_replies_are_not_reported_unless_asked() -> None:
    r, _, _, pending = start(provisional=0)
    sent = r.sent[-1][2]
    assert feed_reply(r, reply_to(sent, 180, "Ringing"))
    assert pending.check() == []
    assert feed_reply(r, reply_to(sent, 404, "Nobody"))
    api.local_uac(r.compiled.registry.modules["tm"].state).check_ended()
    (tree, final), = pending.check()
    assert final and kids(tree)[:4] == ["404 Nobody", ".", ".", "."]


def test_the_timeout_tm_makes_up_is_the_answer() -> None:
    _, st, clock, pending = start()
    clock.now += 3.5
    run_timers(st)
    api.local_uac(st).check_ended()
    (tree, final), = pending.check()
    assert final and kids(tree) == ["408 Request Timeout", ".", ".", ".", "."]


def test_the_deadline_bounds_the_wait() -> None:
    r, _, _, pending = start()
    # fr_timer (3 s) and a margin: tm's own 408 normally comes first
    assert 4.5 < pending.deadline - time.monotonic() <= 5.0
    (tree, final), = pending.check(now=pending.deadline)
    assert final and kids(tree) == ["408 Request Timeout", ".", ".", ".", "."]
    assert feed_reply(r, reply_to(r.sent[-1][2], 200, "Late"))
    assert pending.check() == []  # nothing after the final answer
