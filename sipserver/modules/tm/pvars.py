"""tm's pseudo-variables and PV contexts.

`$T_reply_code` (last reply sent in the request route, the current one in
onreply, the winning one in failure_route; 0 when none), `$T_branch_idx`
(the branch in branch/onreply routes, else null), `$T_ruri` (the R-URI of
the current branch), and the `$(<request>pv)` / `$(<reply>pv)` contexts.
"""

from __future__ import annotations

from typing import Any

from ...core.context import AvpStore, MsgContext
from ...core.exports import BRANCH_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, LoadedModule
from ...lang.pv import PV, PVError, PVNameError, PVSpec
from ...lang.pvars import AvpPV
from ...sip.errors import ParseError
from ...sip.message import parse_message
from .funcs import _reply_code_for, tm_state
from .store import avp_param
from .uac import avps_from_list, avps_to_list

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


def _bavp_home(ctx: MsgContext) -> tuple[Any, Any] | None:
    """Where $bavp lives: (holder, attribute) — the branch being built in a
    branch route, the reply's branch in onreply, the winning one in failure."""
    t = ctx.transaction
    if t is None:
        return None
    rtype = ctx.route_type
    if rtype == BRANCH_ROUTE:
        return (t, "new_bavps") if t.new_bavps is not None else None
    if rtype == ONREPLY_ROUTE:
        i = t.cur_branch
    elif rtype == FAILURE_ROUTE:
        i = t.picked
    else:
        return None
    if i is None or i >= len(t.branches):
        return None
    return t.branches[i], "avps"


class BavpPV(AvpPV):
    """$bavp(name): the per-branch AVPs (B/O/F routes), read-write, indexable
    like $avp; null elsewhere."""

    __slots__ = ()

    def _run(self, ctx: MsgContext, fn: Any) -> Any:
        home = _bavp_home(ctx)
        if home is None:
            return None
        holder, attr = home
        value = getattr(holder, attr)
        store = value if isinstance(value, AvpStore) else avps_from_list(value)
        saved = ctx.avps
        ctx.avps = store
        try:
            return fn()
        finally:
            ctx.avps = saved
            if not isinstance(value, AvpStore):
                setattr(holder, attr, avps_to_list(store))

    def get(self, ctx: MsgContext) -> Any:
        return self._run(ctx, lambda: AvpPV.get(self, ctx))

    def set(self, ctx: MsgContext, value: Any, op: str = "=") -> None:
        if _bavp_home(ctx) is None:
            raise PVError(f"{self.raw}: only in branch, onreply and failure routes")
        self._run(ctx, lambda: AvpPV.set(self, ctx, value, op))


def make_bavp(spec: PVSpec, module: LoadedModule) -> PV:
    if spec.inner_pv is not None:
        return BavpPV(spec.raw, None, spec.inner_pv, spec.index)
    if not spec.inner:
        raise PVNameError(f"{spec.raw}: needs an AVP name")
    config = getattr(module.rt, "config", None)
    try:
        name = avp_param(spec.inner, config.get("avp_aliases") if config else None)
    except ValueError as e:
        raise PVNameError(str(e)) from None
    return BavpPV(spec.raw, name, None, spec.index)


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
