"""Transaction callbacks (1.6 register_tmcb): each event fires once, at the
right point of the tm flow, with the right code."""

from __future__ import annotations

from typing import Any

from sipserver.core.errors import E_BUG
from sipserver.modules.tm import callbacks as cb
from sipserver.modules.tm.callbacks import (
    TMCB_E2EACK_IN,
    TMCB_LOCAL_COMPLETED,
    TMCB_LOCAL_RESPONSE_OUT,
    TMCB_MAX,
    TMCB_ON_FAILURE,
    TMCB_REQUEST_BUILT,
    TMCB_REQUEST_FWDED,
    TMCB_REQUEST_IN,
    TMCB_RESPONSE_FWDED,
    TMCB_RESPONSE_IN,
    TMCB_RESPONSE_OUT,
    TMCB_RESPONSE_PRE_OUT,
    TMCB_TRANS_CANCELLED,
    TMCB_TRANS_DELETED,
    register_global_tmcb,
    register_tmcb,
    register_tmcb_function,
)
from sipserver.modules.tm.timer import run_timers

from .helpers import feed_reply, first_line, invite, reply_to, runner

NAMES = {v: k for k, v in vars(cb).items() if k.startswith("TMCB_") and k != "TMCB_MAX"}
EVENTS: list[tuple[str, int, int | None, int | None, str | None]] = []
ALL = TMCB_MAX & ~TMCB_REQUEST_IN


def _record(t: Any, kind: int, ps: Any) -> None:
    req = ps.req.method if ps.req is not None else None
    rpl = ps.rpl.status if ps.rpl is not None else None
    EVENTS.append((NAMES[kind], ps.code, ps.branch, rpl, req))
    assert ps.tid == t.tid


def _on_request(t: Any, kind: int, ps: Any) -> None:
    EVENTS.append((NAMES[kind], ps.code, None, None, ps.req.method))
    assert register_tmcb(t, ps.param if ps.param is not None else ALL, "test:record") == 1


def _count(t: Any, kind: int, ps: Any) -> None:
    ps.param = (ps.param or 0) + 1


def _boom(t: Any, kind: int, ps: Any) -> None:
    raise RuntimeError("module bug")


register_tmcb_function("test:record", _record)
register_tmcb_function("test:reqin", _on_request)
register_tmcb_function("test:count", _count)
register_tmcb_function("test:boom", _boom)

PROXY = """
route {
    if (method == "CANCEL") {
        if (t_check_trans()) t_relay();
        exit;
    }
    t_on_failure("1");
    if (!t_relay()) { sl_reply_error(); }
}
failure_route[1] {
    if (t_was_cancelled()) exit;
    if (t_check_status("486")) {
        rewritehostport("127.0.0.9:5099");
        t_relay();
    }
}
"""


def setup(types: int | None = None, cfg: str = PROXY, params: str = "") -> Any:
    EVENTS.clear()
    r, st, clock = runner(cfg, params=params)
    assert register_global_tmcb(r.rt, TMCB_REQUEST_IN, "test:reqin", types) == 1
    return r, st, clock


def names() -> list[str]:
    out = [e[0] for e in EVENTS]
    EVENTS.clear()
    return out


def ack_2xx(to_tag: str = "uas1", branch: str = "z9hG4bKack1") -> bytes:
    return invite(branch=branch, method="ACK", to_tag=to_tag)


def test_invite_answered_every_event_once() -> None:
    r, st, clock = setup()
    r.request(invite())
    assert EVENTS == [
        ("TMCB_REQUEST_IN", 1, None, None, "INVITE"),
        ("TMCB_REQUEST_FWDED", -1, 0, None, "INVITE"),
        ("TMCB_REQUEST_BUILT", -1, 0, None, "INVITE"),
    ]
    EVENTS.clear()
    r.request(invite())  # retransmission: no new transaction
    assert EVENTS == []
    br0 = r.sent[1][2]
    feed_reply(r, reply_to(br0, 100, "Trying"))
    assert EVENTS == [("TMCB_RESPONSE_IN", 100, 0, 100, "INVITE")]
    EVENTS.clear()
    feed_reply(r, reply_to(br0, 180, "Ringing"))
    assert EVENTS == [("TMCB_RESPONSE_IN", 180, 0, 180, "INVITE"),
                      ("TMCB_RESPONSE_FWDED", 180, 0, 180, "INVITE")]
    EVENTS.clear()
    feed_reply(r, reply_to(br0, 200, "OK"))
    assert EVENTS == [("TMCB_RESPONSE_IN", 200, 0, 200, "INVITE"),
                      ("TMCB_RESPONSE_FWDED", 200, 0, 200, "INVITE"),
                      ("TMCB_RESPONSE_PRE_OUT", 200, None, 200, "INVITE"),
                      ("TMCB_RESPONSE_OUT", 200, None, 200, "INVITE")]
    EVENTS.clear()
    # a retransmitted 200: seen, relayed, but no second RESPONSE_OUT
    feed_reply(r, reply_to(br0, 200, "OK"))
    assert names() == ["TMCB_RESPONSE_IN", "TMCB_RESPONSE_FWDED"]
    # the ACK for the 2xx (a new branch): E2EACK_IN once, its retransmission not
    r.request(ack_2xx())
    assert EVENTS == [("TMCB_E2EACK_IN", -4, None, None, "ACK")]
    EVENTS.clear()
    r.request(ack_2xx())
    assert EVENTS == []
    clock.now += 10
    run_timers(st)
    assert len(st) == 0
    assert names() == ["TMCB_TRANS_DELETED"]
    assert not len(st.params[cb.E2E_KEY])


def test_failure_route_and_local_reply() -> None:
    r, st, clock = setup(params='modparam("tm", "fr_inv_timer", 5)\n')
    r.request(invite())
    names()
    feed_reply(r, reply_to(r.sent[1][2], 486, "Busy Here"))
    # ON_FAILURE before failure_route, which forks branch 1
    assert EVENTS[:2] == [("TMCB_RESPONSE_IN", 486, 0, 486, "INVITE"),
                          ("TMCB_ON_FAILURE", 486, 0, 486, "INVITE")]
    assert [e[:3] for e in EVENTS[2:]] == [("TMCB_REQUEST_FWDED", -1, 1),
                                           ("TMCB_REQUEST_BUILT", -1, 1)]
    EVENTS.clear()
    # branch 1 times out: a faked 408, failure route does not fork: it goes upstream
    clock.now += 31
    run_timers(st)
    assert EVENTS == [("TMCB_ON_FAILURE", 408, 1, None, "INVITE"),
                      ("TMCB_RESPONSE_PRE_OUT", 408, None, None, "INVITE"),
                      ("TMCB_RESPONSE_OUT", 408, None, None, "INVITE")]
    assert first_line(r.sent[-1][2]) == "SIP/2.0 408 Request Timeout"


def test_local_t_reply_reports_response_out() -> None:
    r, _st, _clock = setup(cfg='route { t_reply("404", "Not Here"); }')
    r.request(invite(method="OPTIONS"))
    assert EVENTS == [("TMCB_REQUEST_IN", 32, None, None, "OPTIONS"),
                      ("TMCB_RESPONSE_PRE_OUT", 404, None, None, "OPTIONS"),
                      ("TMCB_RESPONSE_OUT", 404, None, None, "OPTIONS")]


def test_cancel_marks_the_invite() -> None:
    r, _st, _clock = setup(TMCB_TRANS_CANCELLED)
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 180, "Ringing"))
    names()
    r.request(invite(method="CANCEL"))
    # the INVITE's callback (the CANCEL's own transaction got one too, not fired)
    assert names() == ["TMCB_REQUEST_IN", "TMCB_TRANS_CANCELLED"]


def test_local_transaction_callbacks() -> None:
    r, _st, _clock = setup(TMCB_LOCAL_RESPONSE_OUT | TMCB_LOCAL_COMPLETED | TMCB_RESPONSE_OUT,
                          cfg='route { t_replicate("sip:127.0.0.7:5070"); }')
    r.request(invite())
    names()
    out = r.sent[-1][2]
    feed_reply(r, reply_to(out, 180, "Ringing"), src=("127.0.0.7", 5070))
    assert EVENTS == [("TMCB_LOCAL_RESPONSE_OUT", 180, 0, 180, None)]
    EVENTS.clear()
    feed_reply(r, reply_to(out, 200, "OK"), src=("127.0.0.7", 5070))
    assert EVENTS == [("TMCB_LOCAL_COMPLETED", 200, 0, 200, None)]


def test_pending_registration_param_kept_and_errors() -> None:
    r, st, _clock = runner(PROXY)
    ctx = r.context(invite())
    # before the transaction exists: kept for the one this message makes
    assert register_tmcb(ctx, TMCB_RESPONSE_IN, "test:count", 0) == 1
    assert register_tmcb(ctx, TMCB_RESPONSE_IN, "test:boom") == 1  # logged, skipped
    r.run("request", None, ctx)
    t = ctx.transaction
    assert t is not None
    br0 = r.sent[1][2]
    feed_reply(r, reply_to(br0, 180, "Ringing"))
    feed_reply(r, reply_to(br0, 183, "Progress"))
    stored = st.load(t.tid)
    assert [c for c in stored.tmcbs if c[1] == "test:count"] == [(TMCB_RESPONSE_IN, "test:count", 2)]
    assert "test:boom" in r.log_text()
    # on an existing (unlocked) transaction: stored with it
    assert register_tmcb(ctx, TMCB_RESPONSE_OUT, "test:record") == 1
    assert (TMCB_RESPONSE_OUT, "test:record", None) in st.load(t.tid).tmcbs
    # errors (1.6 E_BUG / E_CFG)
    assert register_tmcb(ctx, TMCB_REQUEST_IN, "test:record") == E_BUG
    assert register_tmcb(ctx, 0, "test:record") == E_BUG
    assert register_tmcb(ctx, TMCB_MAX + 1, "test:record") == E_BUG
    assert register_tmcb(ctx, TMCB_RESPONSE_IN, "test:nobody") == E_BUG
    assert register_global_tmcb(r.rt, TMCB_REQUEST_IN | TMCB_RESPONSE_IN, "test:reqin") == E_BUG
    assert register_global_tmcb(r.rt, TMCB_REQUEST_IN, "test:nobody") == E_BUG


def test_type_bits_match_16() -> None:
    assert (TMCB_REQUEST_IN, TMCB_RESPONSE_IN, TMCB_E2EACK_IN, TMCB_REQUEST_FWDED,
            TMCB_RESPONSE_FWDED, TMCB_ON_FAILURE, TMCB_RESPONSE_PRE_OUT, TMCB_RESPONSE_OUT,
            TMCB_LOCAL_COMPLETED, TMCB_LOCAL_RESPONSE_OUT, TMCB_REQUEST_BUILT,
            TMCB_TRANS_CANCELLED, TMCB_TRANS_DELETED, TMCB_MAX) == (
        1, 2, 4, 8, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16383)
    assert cb.TMCB_ON_FAILURE_RO == 32
