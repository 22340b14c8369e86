"""tm's script functions (1.6 names, argument counts, route masks, codes).

A transaction found or made for the message in hand is `ctx.transaction`.
In the request route it is not locked: each function that changes it
takes its lock, reloads it, changes it and stores it. In the onreply,
failure and timer paths the lock is already held by the caller
(`TmState.held`) and the object is changed in place; the caller stores it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ...core.context import MsgContext
from ...core.errors import (
    E_BAD_ADDRESS,
    E_BAD_REQ,
    E_BAD_TO,
    E_BAD_TUPEL,
    E_BAD_URI,
    E_INVALID_PARAMS,
    E_IP_BLOCKED,
    E_NO_DESTINATION,
    E_NO_SOCKET,
    E_OUT_OF_MEM,
    E_SCRIPT,
    E_SEND,
)
from ...core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    FixupError,
    LoadedModule,
)
from ...core.forward import forward_request, parse_phostport
from ...core.reply import err2reason, reply_destination
from ...core.runtime import L_DBG, L_ERR
from ...sip.errors import ParseError
from ..sl import fixup_code_reason, render_code_reason
from . import callbacks, uac
from .keys import cancel_tid, request_tid
from .record import (
    B_RECV,
    T_CANCEL_REASON,
    T_CANCELLED,
    T_IS_CANCEL,
    T_NO_100,
    T_NO_DNS_FO,
    T_REPLICATED,
    T_UAS_ACKED,
    Txn,
)
from .select import which_cancel
from .store import TmState
from .uac import REASON_ELSEWHERE, REASON_ORIGINATOR, cancel_branches, forward_branches
from .uas import local_reply, send_upstream

__all__ = ["t_reply", "tm_state"]

F_NO_100 = 0x01
F_NO_ERR_REPLY = 0x02
F_NO_DNS_FO = 0x04
F_CANCEL_REASON = 0x08
F_REPLICATE = 0x100  # internal: t_replicate

# t_on_* called before the transaction exists: kept for the message in hand
_pending: dict[str, Any] = {"msg": None, "failure": None, "reply": None, "branch": None}
ROUTE_REFS_KEY = "_route_refs"  # module.params entry: (kind, name) named by fixups


def tm_state(ctx: MsgContext) -> TmState | None:
    registry = ctx.rt.registry
    mod = registry.modules.get("tm") if registry is not None else None
    return mod.state if mod is not None else None


def _pending_for(ctx: MsgContext) -> dict[str, Any]:
    if _pending["msg"] is not ctx.msg:
        _pending.update(msg=ctx.msg, failure=None, reply=None, branch=None)
    return _pending


def _match_opts(st: TmState) -> dict[str, bool]:
    return {"ruri_matching": bool(st.params.get("ruri_matching", 1)),
            "via1_matching": bool(st.params.get("via1_matching", 1))}


# the id of the request in hand (t_check_trans then t_relay compute it once)
_last_tid: list[Any] = [None, None, ""]


def _request_tid(st: TmState, msg: Any) -> str:
    opts = _match_opts(st)
    key = (opts["ruri_matching"], opts["via1_matching"])
    last = _last_tid
    if last[0] is msg and last[1] == key:
        return last[2]
    tid = request_tid(msg, **opts)
    last[0], last[1], last[2] = msg, key, tid
    return tid


def inerr2scripterr(err: int) -> int:
    """1.6 t_relay_inerr2scripterr: internal error -> script code."""
    if err in (E_BAD_URI, E_BAD_REQ, E_BAD_TO, E_INVALID_PARAMS):
        return -2
    if err == E_NO_DESTINATION:
        return -3
    if err == E_BAD_ADDRESS:
        return -4
    if err == E_IP_BLOCKED:
        return -5
    if err in (E_NO_SOCKET, E_SEND):
        return -6
    return -1


# ---------------------------------------------------------------- core ops


def _newtran_locked(st: TmState, ctx: MsgContext, tid: str,
                    store: bool = True) -> tuple[int, Txn | None]:
    """1.6 t_newtran with the lock of `tid` held.

    (1, txn) new transaction; (1, None) an ACK with no transaction to
    absorb it (or an end-to-end ACK): forward it statelessly; (0, None) a
    retransmission (the last reply re-sent) or an absorbed hop-by-hop ACK.
    With `store=False` only the record's memory is taken (`st.reserve`):
    the caller, who keeps the lock until it calls `st.insert`, writes the
    record once after forwarding (any other process looks a transaction up
    under its lock, so it cannot miss it meanwhile).
    """
    msg = ctx.msg
    method = msg.method.upper()
    t = st.load(tid)
    now = st.clock()
    if t is not None:
        if method == "ACK":
            if t.is_invite and 200 <= t.uas_status < 300:
                callbacks.e2e_ack(st, ctx, t)
                return 1, None  # end-to-end ACK (RFC 2543 matching): goes on statelessly
            if not t.flags & T_UAS_ACKED:
                t.flags |= T_UAS_ACKED
                t.uas_retr_due = 0.0
                t.wait_due = now + st.wt if not t.wait_due else min(t.wait_due, now + st.wt)
                st.save(t)
            return 0, None
        if t.uas_reply:
            send_upstream(st, t, t.uas_reply)
        st.rt.log(L_DBG, f"tm: {method} retransmission absorbed")
        return 0, None
    if method == "ACK":
        callbacks.e2e_ack(st, ctx, None)
        return 1, None
    # core/replydest.py; over a stream the reply takes the request's connection by
    # its id (t.src[3], uas.py) and `dest` is where a new one goes if it closed
    dest = reply_destination(ctx)
    if dest is None:  # no Via (logged)
        return E_BAD_REQ, None
    rcv = ctx.rcv.name if ctx.rcv is not None else ""
    t = Txn(tid, method, msg.buf, (ctx.src_ip, ctx.src_port, ctx.proto, ctx.conn or 0), rcv,
            (dest.proto, dest.ip, dest.port), now)
    t.ruri = ctx.ruri
    t.msg_flags = ctx.flags
    t._req_msg = msg  # this process already has it parsed (100 Trying, replies)
    # a safety net for a transaction nobody forwards or answers (t_newtran
    # alone, t_relay with flag 0x02 failing): forwarding disarms it
    t.wait_due = now + st.fr + st.wt
    pend = _pending_for(ctx)
    t.on_failure, t.on_reply, t.on_branch = pend["failure"], pend["reply"], pend["branch"]
    if not store and not st.reserve(t):
        return E_OUT_OF_MEM, None
    ctx.transaction = t
    callbacks.on_new_transaction(st, t, ctx)
    if store and not st.insert(t):
        ctx.transaction = None
        return E_OUT_OF_MEM, None
    st.stat("UAS_transactions")
    return 1, t


def _snapshot_script_state(t: Txn, ctx: MsgContext) -> None:
    """What the failure route will need of this request: flags, AVPs, the
    request with the script's header changes, the R-URI."""
    t.msg_flags = ctx.flags
    t.avps = [(n, ctx.avps.get_all(n)) for n in ctx.avps.names()]
    t.avp_flags = ctx.avps.flagged()
    t.ruri = ctx.ruri
    msg = ctx.msg
    if msg.has_lumps and msg.lumps:
        lumps = msg.lumps
        mark = lumps.checkpoint()
        try:
            lumps.new_ruri = None
            t.fwd_req = lumps.apply()
        except Exception as e:  # a send-time lump that cannot render without a socket
            ctx.rt.log(L_DBG, f"tm: request changes not kept for failure_route: {e!r}")
        finally:
            lumps.rollback(mark)


def _with_txn(st: TmState, ctx: MsgContext, fn: Callable[[Txn], int]) -> int:
    """Run fn on ctx.transaction, locking and reloading it unless already held."""
    t = ctx.transaction
    if t.tid in st.held:
        return fn(t)
    st.lock(t.tid)
    try:
        fresh = st.load(t.tid)
        if fresh is None:
            ctx.rt.log(L_ERR, "tm: the transaction is gone")
            return -1
        ctx.transaction = fresh
        ret = fn(fresh)
        if not st.save(fresh):
            return -1
        return ret
    finally:
        st.unlock(t.tid)


def _kill_transaction(st: TmState, t: Txn, ctx: MsgContext) -> int:
    """A negative reply after a failed forward (1.6 kill_transaction); 1 when sent."""
    code, reason = err2reason(ctx.ser_error, "TM")
    return local_reply(st, t, ctx, code, reason)


def _dest_uri(dest: tuple[str | None, str, int | None]) -> str:
    proto, host, port = dest
    uri = f"sip:{host}" + (f":{port}" if port else "")
    return uri + (f";transport={proto}" if proto else "")


def _forward(st: TmState, t: Txn, ctx: MsgContext, dest: Any) -> int:
    saved = ctx.dst_uri
    if dest is not None:
        ctx.dst_uri = _dest_uri(dest)
    try:
        return forward_branches(st, t, ctx)
    finally:
        ctx.dst_uri = saved


def _e2e_cancel(st: TmState, ctx: MsgContext, flags: int) -> bool:
    """A CANCEL for a known INVITE: mark it cancelled and CANCEL its branches."""
    inv = cancel_tid(ctx.msg, **_match_opts(st))
    st.lock(inv)
    try:
        ti = st.load(inv)
        if ti is None:
            return False
        ti.flags |= T_CANCELLED
        reason = REASON_ORIGINATOR
        if flags & F_CANCEL_REASON:
            h = ctx.msg.header("reason")
            if h is not None:
                reason = ctx.msg.text[h.start:h.end]
        cancel_branches(st, ti, uac_pending(ti), reason)
        if ti.tmcbs:
            callbacks.run_trans_callbacks(st, ti, callbacks.TMCB_TRANS_CANCELLED, ctx.msg)
        st.save(ti)
        return True
    finally:
        st.unlock(inv)


def uac_pending(t: Txn) -> list[int]:
    return [i for i, b in enumerate(t.branches) if b.last < 200]


def t_relay_impl(ctx: MsgContext, dest: Any = None, flags: int = 0) -> int:
    st = tm_state(ctx)
    if st is None:
        return -1
    rt = ctx.rt
    msg = ctx.msg
    method = msg.method.upper()
    t = ctx.transaction
    if t is not None:
        if ctx.route_type not in (REQUEST_ROUTE, FAILURE_ROUTE):
            rt.log(L_ERR, "tm: t_relay: unsupported route type")
            return 0
        if method == "ACK":
            return 1

        def go(tx: Txn) -> int:
            if flags & F_NO_DNS_FO:
                tx.flags |= T_NO_DNS_FO
            if flags & F_CANCEL_REASON:
                tx.flags |= T_CANCEL_REASON
            if ctx.route_type != FAILURE_ROUTE:
                _snapshot_script_state(tx, ctx)
            r = _forward(st, tx, ctx, dest)
            return r if r > 0 else inerr2scripterr(r)
        return _with_txn(st, ctx, go)
    if ctx.route_type == FAILURE_ROUTE:
        rt.log(L_ERR, "tm: BUG - undefined transaction in failure route")
        return -1
    try:
        tid = _request_tid(st, msg)
    except (ParseError, KeyError, IndexError, AttributeError):
        return -2
    st.lock(tid)
    try:
        ret, t = _newtran_locked(st, ctx, tid, store=False)
        if ret < 0:
            return inerr2scripterr(ret)
        if ret == 0:
            return 1
        if t is None:  # an ACK nobody absorbs: stateless
            r = forward_request(ctx, dest)
            return 1 if r >= 0 else inerr2scripterr(r)
        ret = _relay_new(st, ctx, t, dest, flags, method)
    finally:
        st.unlock(tid)
    if ret is None:  # a CANCEL for a known INVITE: now cancel that one (other lock)
        _e2e_cancel(st, ctx, flags)
        return 1
    return ret


def _relay_new(st: TmState, ctx: MsgContext, t: Txn, dest: Any, flags: int,
               method: str) -> int | None:
    """t_relay of a request that just made transaction `t` (lock held, record
    not stored yet): 100 Trying, forwarding, then one write of the record.
    None: a CANCEL whose INVITE the caller must cancel after unlocking."""
    msg = ctx.msg
    try:
        if flags & F_REPLICATE:  # no 100, no error reply, replies stop here
            t.flags |= T_REPLICATED
            flags |= F_NO_100 | F_NO_ERR_REPLY
        if flags & F_NO_100:
            t.flags |= T_NO_100
        if flags & F_NO_DNS_FO:
            t.flags |= T_NO_DNS_FO
        if flags & F_CANCEL_REASON:
            t.flags |= T_CANCEL_REASON
        if method == "CANCEL" and st.exists(cancel_tid(msg, **_match_opts(st))):
            local_reply(st, t, ctx, 200, "canceling")
            t.flags |= T_IS_CANCEL
            return None
        if method == "INVITE" and not flags & F_NO_100:
            local_reply(st, t, ctx, 100, "Giving a try")
        _snapshot_script_state(t, ctx)
        r = _forward(st, t, ctx, dest)
        if r <= 0:
            ret = inerr2scripterr(r)
            if not flags & F_NO_ERR_REPLY and _kill_transaction(st, t, ctx) > 0:
                ret = 0
            return ret if ret else 1
        return 1
    finally:
        if not st.insert(t):  # outgrew its reserve, memory short: replies pass statelessly
            ctx.transaction = None


def t_reply(ctx: MsgContext, code: int, reason: str, body: str = "") -> int:
    """Reply statefully (also signaling's entry point): 1 sent, -1 error,
    0 for an ACK or a retransmission (the script stops)."""
    st = tm_state(ctx)
    if st is None:
        return -1
    msg = ctx.msg
    if not msg.is_request or msg.method.upper() == "ACK":
        return 0
    if ctx.transaction is None:
        if ctx.route_type == FAILURE_ROUTE:
            ctx.rt.log(L_ERR, "tm: BUG - no transaction found in failure route")
            return -1
        try:
            tid = _request_tid(st, msg)
        except (ParseError, KeyError, IndexError, AttributeError):
            return -1
        st.lock(tid)
        try:
            ret, t = _newtran_locked(st, ctx, tid)
            if ret == 0:
                return 0
            if ret < 0 or t is None:
                ctx.rt.log(L_ERR, "tm: could not create a new transaction")
                return -1
            r = local_reply(st, t, ctx, code, reason, body)
            st.save(t)
            return r
        finally:
            st.unlock(tid)
    return _with_txn(st, ctx, lambda t: local_reply(st, t, ctx, code, reason, body))


# ---------------------------------------------------------------- script wrappers


def w_t_newtran(ctx: MsgContext) -> int:
    st = tm_state(ctx)
    if st is None:
        return -1
    if ctx.transaction is not None:
        ctx.rt.log(L_ERR, "tm: transaction already in process")
        return E_SCRIPT
    try:
        tid = _request_tid(st, ctx.msg)
    except (ParseError, KeyError, IndexError, AttributeError):
        return E_BAD_TUPEL
    st.lock(tid)
    try:
        ret, _t = _newtran_locked(st, ctx, tid)
        if _t is not None:
            _snapshot_script_state(_t, ctx)
            st.save(_t)
        return ret
    finally:
        st.unlock(tid)


def w_t_relay(ctx: MsgContext, *args: Any) -> int:
    dest = None
    flags = 0
    for a in args:
        if isinstance(a, int):
            flags = a
        else:
            dest = a
    return t_relay_impl(ctx, dest, flags)


def w_t_reply(ctx: MsgContext, code: Any, reason: Any) -> int:
    rendered = render_code_reason(ctx, code, reason)
    if rendered is None:
        return -1
    return t_reply(ctx, rendered[0], rendered[1])


def w_t_check_trans(ctx: MsgContext) -> int:
    st = tm_state(ctx)
    if st is None:
        return -1
    msg = ctx.msg
    method = msg.method.upper()
    try:
        if method == "CANCEL":
            return 1 if st.exists(cancel_tid(msg, **_match_opts(st))) else -1
        if ctx.transaction is not None:
            return 1
        tid = _request_tid(st, msg)
    except (ParseError, KeyError, IndexError, AttributeError):
        return 0
    t = st.load(tid)
    if t is None:
        return -1
    if method == "ACK":
        return 1
    if t.uas_reply:
        send_upstream(st, t, t.uas_reply)
    return 0


def w_t_was_cancelled(ctx: MsgContext) -> int:
    t = ctx.transaction
    if t is None:
        ctx.rt.log(L_ERR, "tm: t_was_cancelled: no transaction")
        return -1
    st = tm_state(ctx)
    if st is not None and t.tid not in st.held:
        fresh = st.load(t.tid)
        t = fresh or t
    return 1 if t.cancelled else -1


def _reply_code_for(ctx: MsgContext) -> int:
    """$T_reply_code / t_check_status: last sent (R), current (O), winning (F)."""
    t = ctx.transaction
    if ctx.route_type == ONREPLY_ROUTE:
        return ctx.msg.status if ctx.msg.is_reply else (t.cur_code if t else 0)
    if t is None:
        return 0
    if ctx.route_type == FAILURE_ROUTE and t.picked is not None:
        return t.branches[t.picked].last
    st = tm_state(ctx)
    if st is not None and t.tid not in st.held:
        fresh = st.load(t.tid)
        if fresh is not None:
            return fresh.uas_status
    return t.uas_status


def w_t_check_status(ctx: MsgContext, rx: re.Pattern[str]) -> int:
    code = _reply_code_for(ctx)
    if not code:
        return -1
    return 1 if rx.search(str(code)) else -1


def _arm(kind: str) -> Callable[[MsgContext, str], int]:
    def arm(ctx: MsgContext, name: str) -> int:
        if kind == "reply" and ctx.route_type == BRANCH_ROUTE:
            uac.BRANCH_ONREPLY[0] = name  # this branch only (new in 1.6)
            return 1
        t = ctx.transaction
        if t is None:
            _pending_for(ctx)[kind] = name
            return 1
        st = tm_state(ctx)
        if st is None:
            return -1

        def set_route(tx: Txn) -> int:
            setattr(tx, f"on_{kind}", name)
            return 1
        return _with_txn(st, ctx, set_route)
    return arm


def route_fixup(kind: str) -> Callable[[Any, LoadedModule, Sequence[str]], list[Any]]:
    def fixup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
        name = args[0].strip()
        if not name:
            raise FixupError("empty route name")
        module.params.setdefault(ROUTE_REFS_KEY, []).append((kind, name))
        return [name]
    return fixup


def fixup_regex(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    try:
        return [re.compile(args[0])]
    except re.error as e:
        raise FixupError(f"bad regular expression {args[0]!r}: {e}") from None


def _flags_value(text: str) -> int | None:
    t = text.strip().lower()
    try:
        return int(t, 16) if t.startswith("0x") else int(t)
    except ValueError:
        return None


def fixup_relay1(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """One argument: a number is the flags, anything else a destination."""
    flags = _flags_value(args[0])
    if flags is not None:
        return [flags]
    return [_dest(args[0])]


def fixup_relay2(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    flags = _flags_value(args[1])
    if flags is None:
        raise FixupError(f"bad flags {args[1]!r} (decimal or hex number)")
    return [_dest(args[0]), flags]


def _dest(text: str) -> Any:
    try:
        return parse_phostport(text)
    except ValueError as e:
        raise FixupError(f"bad destination {text!r}: {e}") from None


fixup_code_reason_tm = fixup_code_reason
w_t_on_failure = _arm("failure")
w_t_on_reply = _arm("reply")
w_t_on_branch = _arm("branch")


def w_t_flush_flags(ctx: MsgContext) -> int:
    """t_flush_flags(): the message flags go into the transaction."""
    st = tm_state(ctx)
    if st is None or ctx.transaction is None:
        return -1

    def flush(tx: Txn) -> int:
        tx.msg_flags = ctx.flags
        return 1
    return _with_txn(st, ctx, flush)


def w_t_replicate(ctx: MsgContext, fmt: Any, flags: int = 0) -> int:
    """t_replicate(uri[, flags]): send a copy of the request statefully to
    `uri` (its R-URI kept; appended branches go to their own URIs); the
    replies stay here. Only flag 0x04 (no DNS failover) matters."""
    dest = fmt.render(ctx)
    if not dest:
        return -1
    ctx.dst_uri = dest
    for b in ctx.branches:  # 1.6 branch_uri2dset
        b.dst_uri, b.uri = b.uri, ctx.ruri
    t = ctx.transaction
    if t is None:
        return t_relay_impl(ctx, None, (flags & F_NO_DNS_FO) | F_REPLICATE)
    if ctx.msg.method.upper() == "ACK":
        return -1
    st = tm_state(ctx)
    if st is None:
        return -1

    def go(tx: Txn) -> int:
        tx.flags |= T_REPLICATED
        _snapshot_script_state(tx, ctx)
        r = forward_branches(st, tx, ctx)
        return r if r > 0 else inerr2scripterr(r)
    return _with_txn(st, ctx, go)


def fixup_replicate(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    out: list[Any] = [env.compile_format(args[0])]
    if len(args) > 1:
        flags = _flags_value(args[1])
        if flags is None:
            raise FixupError(f"bad flags <{args[1]}>")
        out.append(flags)
    return out


def w_t_reply_with_body(ctx: MsgContext, code: Any, reason: Any, body: Any) -> int:
    """t_reply_with_body(code, reason, body): t_reply with a body (Content-Type
    comes from append_to_reply); an empty body is an error, as in 1.6."""
    rendered = render_code_reason(ctx, code, reason)
    if rendered is None:
        return -1
    text = body.render(ctx)
    if not text:
        return -1
    return t_reply(ctx, rendered[0], rendered[1], text)


def fixup_reply_with_body(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    if not args[2]:
        raise FixupError("no param 3!")
    return [*fixup_code_reason(env, module, args[:2]), env.compile_format(args[2])]


def fixup_format(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [env.compile_format(args[0])]


LOCAL_ALL, LOCAL_BRANCH, LOCAL_LAST = 0, 1, 2


def fixup_local_replied(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    modes = {"all": LOCAL_ALL, "branch": LOCAL_BRANCH, "last": LOCAL_LAST}
    mode = modes.get(args[0].strip().lower())
    if mode is None:
        raise FixupError(f'invalid param "{args[0]}" ("all", "branch" or "last")')
    return [mode]


def _current(ctx: MsgContext) -> Txn | None:
    """ctx.transaction, re-read unless this process holds its lock."""
    t = ctx.transaction
    st = tm_state(ctx)
    if t is None or st is None or t.tid in st.held:
        return t
    return st.load(t.tid) or t


def w_t_local_replied(ctx: MsgContext, mode: int) -> int:
    """t_local_replied: all replies / the winning branch / the last reply were local."""
    t = _current(ctx)
    if t is None:
        ctx.rt.log(L_ERR, "tm: t_local_replied: no transaction created")
        return -1
    if mode == LOCAL_ALL:
        for i in range(t.first_branch, len(t.branches)):
            if t.branches[i].rflags & B_RECV:
                return -1
        return 1
    in_failure = ctx.route_type == FAILURE_ROUTE
    if in_failure and (t.picked is None or t.picked >= len(t.branches)):
        ctx.rt.log(L_ERR, "tm: t_local_replied: no picked branch in failure_route")
        return -1
    if mode == LOCAL_BRANCH:
        if in_failure:
            return -1 if t.branches[t.picked].rflags & B_RECV else 1
        return -1
    if in_failure:  # was the winning reply made up (a timeout)?
        return -1 if t.branches[t.picked].reply else 1
    return 1 if t.uas_local and t.uas_status else -1


CANCEL_ALL, CANCEL_OTHERS = 0x01, 0x02


def fixup_cancel_branch(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    flags = 0
    for c in args[0]:
        if c in "aA":
            flags |= CANCEL_ALL
        elif c in "oO":
            flags |= CANCEL_OTHERS
        else:
            raise FixupError(f"unsupported flag '{c}' (a, o)")
    return [flags]


def w_t_cancel_branch(ctx: MsgContext, flags: int = 0) -> int:
    """t_cancel_branch([a|o]) from an onreply route: CANCEL this branch (while
    provisional), all pending ones ('a', minus this one when its reply is
    final) or all but this one ('o')."""
    t = ctx.transaction
    st = tm_state(ctx)
    if t is None or st is None or t.cur_branch is None:
        ctx.rt.log(L_ERR, "tm: cannot cancel a reply with no transaction")
        return -1
    if not t.is_invite:
        return -1
    cur = t.cur_branch
    code = ctx.msg.status if ctx.msg.is_reply else t.cur_code
    if flags & CANCEL_ALL:
        which = which_cancel(t, cur if code >= 200 else None)
    elif flags & CANCEL_OTHERS:
        which = which_cancel(t, cur)
    else:
        which = [cur] if code < 200 else []
    cancel_branches(st, t, which, REASON_ELSEWHERE if 200 <= t.uas_status < 300 else "")
    return 1


def w_t_add_hdrs(ctx: MsgContext, fmt: Any) -> int:
    """t_add_hdrs(str): header lines for the CANCELs/ACKs tm builds for this transaction."""
    st = tm_state(ctx)
    if st is None or ctx.transaction is None:
        return -1
    text = fmt.render(ctx)

    def store(tx: Txn) -> int:
        tx.extra_hdrs = text
        return 1
    return _with_txn(st, ctx, store)
