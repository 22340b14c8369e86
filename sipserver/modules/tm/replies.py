"""Replies from downstream: matching, onreply route, choosing, relaying,
and the failure route when every branch ended negatively.

`reply_hook` is installed as `Runtime.reply_hook`: the receive path offers
it every reply after the global onreply_route; True means the reply
belonged to a transaction (relayed, stored or absorbed here).
"""

from __future__ import annotations

import re

from ...core.context import RUN_DROP, MsgContext
from ...core.exports import FAILURE_ROUTE, ONREPLY_ROUTE
from ...core.runtime import L_DBG, L_ERR
from ...sip.builders import build_reply, remove_top_via
from ...sip.errors import ParseError
from ...sip.message import SipMsg, parse_message
from . import callbacks
from .keys import parse_our_branch
from .record import B_RECV, CANCEL_PENDING, T_REPLICATED, Txn
from .select import DISCARD, NEGATIVE, PUSHED, RELAY, STORE, decide
from .store import TmState
from .uac import (
    REASON_ELSEWHERE,
    REASON_ORIGINATOR,
    avps_from_list,
    avps_to_list,
    cancel_branches,
    dns_failover,
    send_ack,
    send_pending_cancel,
)
from .uas import error_text, set_completed, tm_totag, update_uas

__all__ = ["failure_context", "finish_negative", "handle_code", "process_reply"]

_STATUS_503 = re.compile(rb"^(SIP/2\.0[ \t]+)503")


def _relay_msg(st: TmState, t: Txn, reply: SipMsg) -> bool:
    """Relay a downstream reply upstream without our Via (503 -> 500)."""
    try:
        remove_top_via(reply)
        data = reply.build()
    except (ParseError, KeyError, IndexError) as e:
        st.rt.log(L_ERR, f"tm: cannot build the relayed reply: {e}")
        return False
    code = reply.status
    if code == 503 and not st.rt.config.get("disable_503_translation"):
        data = _STATUS_503.sub(rb"\g<1>500", data, count=1)
        code = 500
    return update_uas(st, t, code, data, local=False, rpl=reply)


def _relay_faked(st: TmState, t: Txn, code: int) -> bool:
    """A reply tm made up for a branch (timeout 408, 487): built from the request."""
    req = t.request_msg()
    tag = None
    if code >= 180 and not req.to.tag:
        tag = t.totag = tm_totag(st.rt, req)
    config = st.rt.config
    server = config.get("server_header") if config.get("server_signature") else None
    try:
        data = build_reply(req, code, error_text(code), to_tag=tag, source=(t.src[0], t.src[1]),
                           server_header=server)
    except (ParseError, ValueError) as e:
        st.rt.log(L_ERR, f"tm: cannot build a {code} reply: {e}")
        return False
    return update_uas(st, t, code, data, local=True)


def relay_branch(st: TmState, t: Txn, i: int, current: SipMsg | None) -> bool:
    """Send branch `i`'s reply upstream: the one in hand, the stored one, or a faked one."""
    b = t.branches[i]
    if t.flags & T_REPLICATED:  # replies to a replicated request stop here
        if b.last >= 200 and t.uas_status < 200:
            t.uas_status = b.last
            set_completed(st, t, b.last)
            t.uas_retr_due = 0.0
            t.wait_due = st.clock() + st.wt
            if t.tmcbs:
                callbacks.run_trans_callbacks(st, t, callbacks.TMCB_LOCAL_COMPLETED, None,
                                              current, b.last, branch=i)
        elif t.tmcbs and current is not None and current.status < 200:
            callbacks.run_trans_callbacks(st, t, callbacks.TMCB_LOCAL_RESPONSE_OUT, None,
                                          current, current.status, branch=i)
        return True
    if current is not None:
        return _relay_msg(st, t, current)
    if b.reply:
        try:
            msg = parse_message(b.reply)
        except ParseError as e:
            st.rt.log(L_ERR, f"tm: stored reply unreadable: {e}")
            return False
        return _relay_msg(st, t, msg)
    return _relay_faked(st, t, b.last)


def failure_context(st: TmState, t: Txn, picked: int | None) -> MsgContext:
    """The request as the failure route sees it (flags, AVPs, R-URI restored)."""
    rt = st.rt
    data = t.fwd_req or t.request
    msg = parse_message(data)
    sock = next((s for s in rt.sockets if s.name == t.rcv), None)
    ctx = MsgContext(rt, msg, src_ip=t.src[0], src_port=t.src[1], proto=t.src[2], rcv=sock,
                     route_type=FAILURE_ROUTE)
    ctx.flags = t.msg_flags
    for name, values in t.avps:
        for v in reversed(values):
            ctx.avps.add(name, v)
    for name, flags in t.avp_flags:  # e.g. avpops' "came from the DB" mark
        for i, bits in enumerate(flags):
            if bits:
                ctx.avps.set_flags(name, i, bits)
    uri = t.branches[picked].uri if picked is not None and picked < len(t.branches) else t.ruri
    if uri and uri != msg.ruri_text:
        ctx.new_uri = uri
    ctx.transaction = t
    return ctx


def _save_script_state(t: Txn, ctx: MsgContext) -> None:
    t.msg_flags = ctx.flags
    t.avps = [(n, ctx.avps.get_all(n)) for n in ctx.avps.names()]
    t.avp_flags = ctx.avps.flagged()


def finish_negative(st: TmState, t: Txn, picked: int, current: SipMsg | None,
                    current_branch: int | None) -> None:
    """Every branch ended negatively: run the failure route, then relay the
    winner unless the route replied itself or started new branches."""
    rt = st.rt
    route = t.on_failure
    if t.tmcbs and not t.flags & T_REPLICATED and callbacks.has_tmcbs(t, callbacks.TMCB_ON_FAILURE):
        _failure_callbacks(st, t, picked, current if current_branch == picked else None)
    if route is not None and rt.routes is not None:
        t.on_failure = None  # must be armed again for a further failure
        before = len(t.branches)
        t.picked = picked
        if current is not None and current_branch == picked:
            t.branches[picked].reply = current.buf  # the winner as $(<reply>...) sees it
        ctx = failure_context(st, t, picked)
        try:
            rt.routes.run("failure", route, ctx)
        except Exception as e:  # a route bug must not leave the transaction hanging
            rt.log(L_ERR, f"tm: failure_route[{route}] failed: {e!r}")
        finally:
            t.picked = None
        _save_script_state(t, ctx)
        if t.uas_status >= 200:
            return  # replied from the failure route
        if len(t.branches) > before and t.pending_branches():
            rt.log(L_DBG, "tm: failure_route forked new branches")
            return
    relay_branch(st, t, picked, current if current_branch == picked else None)


def _failure_callbacks(st: TmState, t: Txn, picked: int, current: SipMsg | None) -> None:
    """TMCB_ON_FAILURE: the failure route's request, the winning reply."""
    b = t.branches[picked]
    rpl = current
    if rpl is None and b.reply:
        try:
            rpl = parse_message(b.reply)
        except ParseError:
            rpl = None
    try:
        req = failure_context(st, t, picked).msg
    except ParseError:
        req = None
    callbacks.run_trans_callbacks(st, t, callbacks.TMCB_ON_FAILURE, req, rpl, b.last,
                                  branch=picked)


def _is_3263_failure(t: Txn, i: int) -> bool:
    """RFC 3263 failover case: a received 503, or a timeout with no reply at all."""
    b = t.branches[i]
    if b.last == 408:
        return not b.rflags & B_RECV
    return b.last == 503 and bool(b.rflags & B_RECV)


def handle_code(st: TmState, t: Txn, i: int, code: int, current: SipMsg | None) -> None:
    """Apply one (received or faked) final/provisional code on branch `i`."""
    d = decide(t, i, code, disable_6xx_block=bool(st.params.get("disable_6xx_block", 0)),
               minor_mask=st.minor_mask)
    if d.kind == DISCARD:
        return
    if d.kind == STORE:
        if current is not None:
            t.branches[i].reply = current.buf
        return
    if d.kind in (RELAY, PUSHED):
        if (t.tmcbs and current is not None and code < 300 and d.branch == i
                and not t.flags & T_REPLICATED):
            callbacks.run_trans_callbacks(st, t, callbacks.TMCB_RESPONSE_FWDED, t.request_msg(),
                                          current, code, branch=i)
        relay_branch(st, t, i, current)
        if d.cancel:  # after the 2xx went upstream, as 1.6 does
            cancel_branches(st, t, d.cancel, REASON_ELSEWHERE)
        return
    if d.kind == NEGATIVE:
        if current is not None:
            t.branches[i].reply = current.buf
        if d.cancel:
            for j in d.cancel:  # minor branches not waited for (1.6 cleanup_uac_timers)
                t.branches[j].retr_due = t.branches[j].fr_due = 0.0
            cancel_branches(st, t, d.cancel, REASON_ORIGINATOR if t.cancelled else "")
        if _is_3263_failure(t, d.branch) and dns_failover(st, t, d.branch):
            return  # a new branch to the next address: wait for it
        finish_negative(st, t, d.branch, current, i)


def process_reply(st: TmState, ctx: MsgContext) -> bool:
    """The reply hook: True when the reply belonged to one of our transactions."""
    msg = ctx.msg
    try:
        parsed = parse_our_branch(msg.via1.branch)
    except (ParseError, AttributeError):
        return False
    if parsed is None:
        return False
    tid, idx = parsed
    rt = st.rt
    st.lock(tid)
    try:
        t = st.load(tid)
        if t is None:
            return False
        st.stat("received_replies")
        if idx >= len(t.branches):
            rt.log(L_DBG, f"tm: reply for unknown branch {idx}; dropped")
            return True
        try:
            cseq_method = msg.cseq.method.upper()
        except ParseError:
            return True
        code = msg.status
        b = t.branches[idx]
        if cseq_method == "CANCEL" and t.method != "CANCEL":
            # the answer to a CANCEL we sent: hop-by-hop, it stops its timers
            b.cancel_due = 0.0
            if code >= 200:
                b.cancel_fr = 0.0
            st.save(t)
            return True
        if t.tmcbs and not t.flags & T_REPLICATED:
            callbacks.run_trans_callbacks(st, t, callbacks.TMCB_RESPONSE_IN, t.request_msg(),
                                          msg, code, branch=idx)
        now = st.clock()
        last = b.last
        b.retr_due = 0.0  # any reply stops the retransmission (1.6 too)
        if code >= 200:
            b.fr_due = 0.0
            if t.is_invite and code >= 300:
                send_ack(st, b, msg, t.extra_hdrs)
        route = b.on_reply or t.on_reply
        if route is not None and rt.routes is not None:
            t.cur_branch, t.cur_code = idx, code
            ctx.transaction = t
            avp_mode = st.params.get("onreply_avp_mode", 0)
            if avp_mode:  # the route sees and changes the transaction's AVPs
                ctx.avps = avps_from_list(t.avps)
            try:
                rt.routes.run("onreply", route, ctx)
            finally:
                t.cur_branch = None
                ctx.route_type = ONREPLY_ROUTE
                if avp_mode:
                    t.avps = avps_to_list(ctx.avps)
            if ctx.stop == RUN_DROP and code < 200:
                rt.log(L_DBG, "tm: provisional reply dropped by onreply_route")
                b.last = max(b.last, code)
                st.save(t)
                return True
        b.rflags |= B_RECV
        if code < 200:
            if t.is_invite:
                if b.fr_due and (st.params.get("restart_fr_on_each_reply", 1)
                                 or (last < code and (code >= 180 or last == 0))):
                    b.fr_due = now + st.fr_inv_for(t)
            elif b.dst[0] == "udp":  # non-INVITE: on, slowly
                b.retr_iv = st.t2
                b.retr_due = now + st.t2
            if b.cancel == CANCEL_PENDING:
                b.last = max(b.last, code)
                send_pending_cancel(st, t, b, REASON_ORIGINATOR if t.cancelled else REASON_ELSEWHERE)
        handle_code(st, t, idx, code, msg)
        st.save(t)
        return True
    except Exception as e:
        rt.log(L_ERR, f"tm: error while handling a reply: {e!r}")
        return True
    finally:
        st.unlock(tid)
