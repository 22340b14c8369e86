"""sl: stateless replies (OpenSIPS 1.6 module `sl`).

Script functions `sl_send_reply(code, reason)` (both formats) and
`sl_reply_error()`. The reply itself is built and sent by
`core.reply.send_stateless_reply`. `filter_ack` is the pre-script hook that
absorbs ACKs to our own replies (1.6 registers it at mod_init).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    ERROR_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
    StatExport,
)
from ..core.reply import err2reason, is_local_ack, send_stateless_reply
from ..core.runtime import L_DBG


def _str2int(text: str) -> int | None:
    """1.6 str2int: only decimal digits, nothing else (no sign, no spaces)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def fixup_code_reason(env: Any, module: LoadedModule | None, args: Sequence[str]) -> list[Any]:
    """Both arguments are formats; a code without PVs must be 100..699.

    Returns [code, reason]: the code as an int when it is static, else its
    Format; the reason as a Format. Shared with signaling's send_reply.
    """
    out: list[Any] = []
    for i, text in enumerate(args, 1):
        if not text:
            raise FixupError(f"no param {i}!")
        fmt = env.compile_format(text)
        if i == 1 and fmt.static is not None:
            code = _str2int(fmt.static)
            if code is None or not 100 <= code <= 699:
                raise FixupError(f"wrong value [{text}] for param no 1! allowed values: 1xx - 6xx only")
            out.append(code)
        else:
            out.append(fmt)
    return out


def render_code_reason(ctx: MsgContext, code: Any, reason: Any) -> tuple[int, str] | None:
    """Run-time half of `fixup_code_reason`: (code, reason) or None when a PV
    gives a code outside 100..699 or an empty reason."""
    if not isinstance(code, int):
        code = _str2int(code.render(ctx))
        if code is None or not 100 <= code <= 699:
            return None
    if reason.static is not None:
        text = reason.static
    else:
        text = reason.render(ctx)
        if not text:
            return None
    return code, text


_STATS = ("1xx_replies", "2xx_replies", "3xx_replies", "4xx_replies", "5xx_replies",
          "6xx_replies", "sent_replies", "sent_err_replies", "received_ACKs")


def _reply(ctx: MsgContext, code: int, text: str) -> int:
    ret = send_stateless_reply(ctx, code, text)
    stats = _stats_of(ctx)
    if stats is not None:
        if ret > 0:
            stats[code // 100 - 1].inc()
            stats[6].inc()
        elif ret < 0:
            stats[7].inc()
    return ret


def _stats_of(ctx: MsgContext) -> Any:
    registry = ctx.rt.registry
    mod = registry.modules.get("sl") if registry is not None else None
    return mod.state if mod is not None else None


def sl_send_reply(ctx: MsgContext, code: Any, reason: Any) -> int:
    """sl_send_reply(code, reason): 1 sent, -1 error, 0 for an ACK (stops)."""
    rendered = render_code_reason(ctx, code, reason)
    if rendered is None:
        return -1
    return _reply(ctx, rendered[0], rendered[1])


def sl_reply_error(ctx: MsgContext) -> int:
    """sl_reply_error(): reply with the code and text of the last internal error.

    The error is the one the previous action left (1.6 prev_ser_error), read
    from `ctx.ser_error` (E_UNSPEC when unset: a 500).
    """
    code, text = err2reason(ctx.ser_error, "SL")
    ctx.rt.log(L_DBG, f"sl: error text is {text}")
    return _reply(ctx, code, text)


def filter_ack(ctx: MsgContext) -> int:
    """Pre-script hook: 0 drops an ACK that answers our own stateless reply,
    1 lets the message through (1.6 sl_filter_ACK)."""
    if is_local_ack(ctx):
        ctx.rt.log(L_DBG, "sl: local ACK found -> dropping it")
        stats = _stats_of(ctx)
        if stats is not None:
            stats[8].inc()
        return 0
    return 1


def _mod_init(module: LoadedModule) -> None:
    """Install the ACK filter and fetch the statistics handles (enable_stats)."""
    rt = module.rt
    if rt is None:
        return
    rt.pre_script.append(lambda ctx: filter_ack(ctx) != 0)
    if module.params.get("enable_stats", 1) and rt.stats is not None:
        module.state = tuple(rt.stats.stat("sl", name) for name in _STATS)


exports = ModuleExports(
    name="sl",
    params=[ParamExport("enable_stats", int, 1)],
    stats=[StatExport(name) for name in _STATS],
    mod_init=_mod_init,
    cmds=[
        CmdExport("sl_send_reply", sl_send_reply, 2, REQUEST_ROUTE | ERROR_ROUTE, fixup_code_reason),
        CmdExport("sl_reply_error", sl_reply_error, 0, REQUEST_ROUTE),
    ],
)
