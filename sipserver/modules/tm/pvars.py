"""tm's pseudo-variables and PV contexts.

`$T_reply_code` (last reply sent in the request route, the current one in
onreply, the winning one in failure_route; 0 when none), `$T_branch_idx`
(the branch in branch/onreply routes, else null), `$T_ruri` (the R-URI of
the current branch), and the `$(<request>pv)` / `$(<reply>pv)` contexts.
"""

from __future__ import annotations

from typing import Any

from ...core.context import MsgContext
from ...core.exports import FAILURE_ROUTE, LoadedModule
from ...lang.pv import PV, PVNameError, PVSpec
from ...sip.errors import ParseError
from ...sip.message import parse_message
from .funcs import _reply_code_for, tm_state

__all__ = ["make_bavp", "make_branch_idx", "make_reply_code", "make_ruri", "reply_context",
           "request_context"]


class _TmPV(PV):
    __slots__ = ()


class ReplyCodePV(_TmPV):
    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Any:
        return _reply_code_for(ctx)


class BranchIdxPV(_TmPV):
    __slots__ = ()
    int_typed = True

    def get(self, ctx: MsgContext) -> Any:
        t = ctx.transaction
        if t is None or t.cur_branch is None:
            return None
        return t.cur_branch


class TRuriPV(_TmPV):
    __slots__ = ()

    def get(self, ctx: MsgContext) -> Any:
        t = ctx.transaction
        if t is None:
            return None
        if t.cur_branch is not None and t.cur_branch < len(t.branches):
            return t.branches[t.cur_branch].uri
        if ctx.route_type == FAILURE_ROUTE and t.picked is not None:
            return t.branches[t.picked].uri
        return t.ruri or None


def _no_name(spec: PVSpec) -> None:
    if spec.inner is not None:
        raise PVNameError(f"{spec.raw}: takes no name")


def make_reply_code(spec: PVSpec, module: LoadedModule) -> PV:
    _no_name(spec)
    return ReplyCodePV(spec.raw)


def make_branch_idx(spec: PVSpec, module: LoadedModule) -> PV:
    _no_name(spec)
    return BranchIdxPV(spec.raw)


def make_ruri(spec: PVSpec, module: LoadedModule) -> PV:
    _no_name(spec)
    return TRuriPV(spec.raw)


class BavpPV(_TmPV):
    """$bavp(name): per-branch AVPs are not kept yet; reads null."""

    __slots__ = ()

    def get(self, ctx: MsgContext) -> Any:
        return None


def make_bavp(spec: PVSpec, module: LoadedModule) -> PV:
    if spec.inner is None:
        raise PVNameError(f"{spec.raw}: needs an AVP name")
    return BavpPV(spec.raw)


def request_context(ctx: MsgContext) -> MsgContext | None:
    """`<request>`: the transaction's request (the message itself in R/F routes)."""
    if ctx.msg.is_request:
        return ctx
    t = ctx.transaction
    st = tm_state(ctx)
    if t is None or st is None:
        return None
    from .replies import failure_context

    return failure_context(st, t, None)


def reply_context(ctx: MsgContext) -> MsgContext | None:
    """`<reply>`: the reply in hand (onreply), the winning one (failure_route)."""
    if ctx.msg.is_reply:
        return ctx
    t = ctx.transaction
    if t is None or t.picked is None:
        return None
    data = t.branches[t.picked].reply
    if not data:
        return None
    try:
        msg = parse_message(data)
    except ParseError:
        return None
    other = MsgContext(ctx.rt, msg, src_ip=ctx.src_ip, src_port=ctx.src_port, rcv=ctx.rcv,
                       route_type=ctx.route_type)
    other.transaction = t
    return other
