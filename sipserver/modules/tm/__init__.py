"""tm: the transaction manager (OpenSIPS 1.6 module `tm`).

Stateful proxying: transactions in shared memory, visible to every
receiver and the timer process; request retransmissions absorbed; the
automatic `100 Giving a try`; parallel forking over the destination set and
serial forking from failure_route; request retransmission over UDP; final
response timers with a local 408 (per transaction from fr_timer_avp /
fr_inv_timer_avp); reply selection per RFC 3261 §16.7 (1.6 preferences,
minor_branch_flag, disable_6xx_block); CANCEL of the other branches on a
2xx; upstream CANCEL; the CANCELs tm sends retransmitted over UDP;
hop-by-hop ACKs for negative replies; DNS failover (send failure, 503, or
no reply at all: a new branch to the next address of the same hop);
t_replicate; t_write_req/t_write_unix (`write`); $bavp; replies over TCP
go to the request's connection from any process.

One concern per file: `keys` (matching, ids, branches), `record` (the
record and its encoding), `store` (shared tables, locks, stats), `select`
(which reply wins), `uas` (replies upstream), `uac` (branches downstream,
CANCEL, ACK), `replies` (reply processing, failure route), `timer`,
`funcs` (script functions), `pvars` (PVs and contexts), `write`
(t_write_*).

`callbacks`: transaction callbacks for other modules (1.6 register_tmcb).
`api`: requests tm sends itself (t_uac, t_uac_cancel, t_reply by
`hash:label`) for other modules; `mi`: the MI commands t_uac_dlg,
t_uac_cancel, t_hash, t_reply.
"""

from __future__ import annotations

from typing import Any

from ...core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    LoadedModule,
    MICmdExport,
    ModuleExports,
    ParamExport,
    PVarExport,
    StatExport,
)
from . import api, callbacks, funcs, mi, write
from .funcs import t_reply
from .pvars import (
    make_bavp,
    make_branch_idx,
    make_reply_code,
    make_ruri,
    reply_context,
    request_context,
)
from .replies import process_reply
from .store import STATS, TmState
from .timer import TICK, run_timers

__all__ = ["exports", "t_reply"]

_RF = REQUEST_ROUTE | FAILURE_ROUTE
_RFOB = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE

PARAMS: list[ParamExport] = [
    ParamExport("ruri_matching", int, 1),
    ParamExport("via1_matching", int, 1),
    ParamExport("fr_timer", int, 30),
    ParamExport("fr_inv_timer", int, 120),
    ParamExport("wt_timer", int, 5),
    ParamExport("delete_timer", int, 2),
    ParamExport("T1_timer", int, 500),
    ParamExport("T2_timer", int, 4000),
    ParamExport("unix_tx_timeout", int, 2),
    ParamExport("restart_fr_on_each_reply", int, 1),
    ParamExport("fr_timer_avp", str, None),
    ParamExport("fr_inv_timer_avp", str, None),
    ParamExport("tw_append", str, None, on_set=lambda mod, value: _tw_append(mod, value)),
    ParamExport("enable_stats", int, 1),
    ParamExport("pass_provisional_replies", int, 0),
    ParamExport("syn_branch", int, 1),
    ParamExport("onreply_avp_mode", int, 0),
    ParamExport("disable_6xx_block", int, 0),
    ParamExport("minor_branch_flag", int, -1),
]


def _tw_append(mod: LoadedModule, value: Any) -> None:
    """Repeatable `tw_append` `name:element;...` (checked now, compiled by t_write_*'s fixup)."""
    if not isinstance(value, str):
        raise ValueError(f"bad tw_append {value!r} (name:element;...)")
    name = write.parse_tw_append(value)[0]
    known = mod.params.setdefault("tw_append_list", [])
    if any(write.parse_tw_append(v)[0].lower() == name.lower() for v in known):
        raise ValueError(f"duplicated tw_append name <{name}>")
    known.append(value)


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    if rt is None:
        return
    routes = rt.routes
    if routes is not None:
        for kind, name in module.params.get(funcs.ROUTE_REFS_KEY, ()):
            if not routes.has(kind, name):
                raise ValueError(f"tm: {kind}_route[{name}] is not defined in the script")
    st = TmState(rt, module.params)
    module.state = st
    rt.reply_hook = lambda ctx: process_reply(st, ctx)
    rt.register_timer("tm", TICK, lambda: run_timers(st))
    api.init(st)  # local UAC: shared tables, reply hook wrapper, tm_uac timer
    callbacks.init(st)  # transaction callbacks: the shared e2e ACK index


exports = ModuleExports(
    name="tm",
    params=PARAMS,
    cmds=[
        CmdExport("t_newtran", funcs.w_t_newtran, 0, REQUEST_ROUTE),
        CmdExport("t_reply", funcs.w_t_reply, 2, _RF, funcs.fixup_code_reason_tm),
        CmdExport("t_relay", funcs.w_t_relay, 0, _RF),
        CmdExport("t_relay", funcs.w_t_relay, 1, _RF, funcs.fixup_relay1),
        CmdExport("t_relay", funcs.w_t_relay, 2, _RF, funcs.fixup_relay2),
        CmdExport("t_on_failure", funcs.w_t_on_failure, 1, _RFOB, funcs.route_fixup("failure")),
        CmdExport("t_on_reply", funcs.w_t_on_reply, 1, _RFOB, funcs.route_fixup("onreply")),
        CmdExport("t_on_branch", funcs.w_t_on_branch, 1, _RFOB, funcs.route_fixup("branch")),
        CmdExport("t_check_status", funcs.w_t_check_status, 1, _RFOB, funcs.fixup_regex),
        CmdExport("t_check_trans", funcs.w_t_check_trans, 0, REQUEST_ROUTE | BRANCH_ROUTE),
        CmdExport("t_was_cancelled", funcs.w_t_was_cancelled, 0, FAILURE_ROUTE | ONREPLY_ROUTE),
        CmdExport("t_flush_flags", funcs.w_t_flush_flags, 0, REQUEST_ROUTE | BRANCH_ROUTE),
        CmdExport("t_replicate", funcs.w_t_replicate, 1, REQUEST_ROUTE, funcs.fixup_replicate),
        CmdExport("t_replicate", funcs.w_t_replicate, 2, REQUEST_ROUTE, funcs.fixup_replicate),
        CmdExport("t_write_req", write.w_t_write_req, 2, _RF | BRANCH_ROUTE,
                  write.fixup_t_write),
        CmdExport("t_write_unix", write.w_t_write_unix, 2, _RF | BRANCH_ROUTE,
                  write.fixup_t_write),
        CmdExport("t_local_replied", funcs.w_t_local_replied, 1, _RFOB,
                  funcs.fixup_local_replied),
        CmdExport("t_cancel_branch", funcs.w_t_cancel_branch, 0, ONREPLY_ROUTE),
        CmdExport("t_cancel_branch", funcs.w_t_cancel_branch, 1, ONREPLY_ROUTE,
                  funcs.fixup_cancel_branch),
        CmdExport("t_add_hdrs", funcs.w_t_add_hdrs, 1, REQUEST_ROUTE, funcs.fixup_format),
        CmdExport("t_reply_with_body", funcs.w_t_reply_with_body, 3, REQUEST_ROUTE,
                  funcs.fixup_reply_with_body),
    ],
    pvars=[
        PVarExport("T_reply_code", make_reply_code),
        PVarExport("T_branch_idx", make_branch_idx),
        PVarExport("T_ruri", make_ruri),
        PVarExport("bavp", make_bavp),
    ],
    pv_contexts=[("request", request_context), ("reply", reply_context)],
    stats=[StatExport(name, no_reset=(name == "inuse_transactions")) for name in STATS],
    mod_init=_mod_init,
    mi_cmds=[
        MICmdExport("t_uac_dlg", mi.mi_t_uac_dlg, async_=True,
                    params=("method", "ruri", "next_hop", "socket", "headers", "body")),
        MICmdExport("t_uac_cancel", mi.mi_t_uac_cancel, params=("callid", "cseq")),
        MICmdExport("t_hash", mi.mi_t_hash, no_input=True),
        MICmdExport("t_reply", mi.mi_t_reply,
                    params=("code", "reason", "trans_id", "to_tag", "new_headers", "body")),
    ],
)
