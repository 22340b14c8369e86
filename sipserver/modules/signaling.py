"""signaling: reply statefully when a transaction exists, else statelessly
(OpenSIPS 1.6 module `signaling`).

Script function `send_reply(code, reason)` (both formats, as sl_send_reply),
and `send_reply_api` (1.6's load_sig API) for modules that answer requests
themselves (registrar, auth ...).

Contract with tm (written later): when the `tm` module is loaded, a request
whose `ctx.transaction` is set is answered through the module
`sipserver.modules.tm`'s `t_reply(ctx, code, reason) -> int`; its local
To-tag is read from `ctx.transaction.local_totag` when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    ERROR_ROUTE,
    FAILURE_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
)
from ..core.reply import send_stateless_reply, sl_totag
from ..core.runtime import L_ERR
from .sl import fixup_code_reason, render_code_reason


def _loaded(ctx: MsgContext, name: str) -> bool:
    registry = getattr(ctx.rt, "registry", None)
    return registry is not None and name in registry


def send_reply_api(ctx: MsgContext, code: int, reason: str, to_tag: list[str] | None = None) -> int:
    """Reply through tm when it holds a transaction for the message, else sl.

    1 on success, -1 on failure. When `to_tag` (a list) is given, the To-tag
    of the reply is appended to it. With neither tm nor sl loaded there is
    no way to reply (1.6 refuses to start then; see the fixup).
    """
    if not reason:
        ctx.rt.log(L_ERR, "signaling: empty reason parameter")
        return -1
    if _loaded(ctx, "tm") and ctx.transaction is not None:
        tm = importlib.import_module("sipserver.modules.tm")
        if tm.t_reply(ctx, code, reason) < 0:
            ctx.rt.log(L_ERR, "signaling: failed to send reply with tm module")
            return -1
        if to_tag is not None:
            to_tag.append(getattr(ctx.transaction, "local_totag", ""))
        return 1
    if ctx.rt.registry is not None and not _loaded(ctx, "sl"):
        ctx.rt.log(L_ERR, "signaling: sl module not loaded and no transaction found "
                          "for the message. Can not send reply!")
        return -1
    # 1.6 treats only a negative sl result as failure: an ACK (0) counts as sent.
    if send_stateless_reply(ctx, code, reason) < 0:
        ctx.rt.log(L_ERR, "signaling: failed to send reply with sl module")
        return -1
    if to_tag is not None:
        to_tag.append(sl_totag(ctx))
    return 1


def send_reply(ctx: MsgContext, code: Any, reason: Any) -> int:
    """send_reply(code, reason) from the script."""
    rendered = render_code_reason(ctx, code, reason)
    if rendered is None:
        return -1
    return send_reply_api(ctx, rendered[0], rendered[1])


def _fixup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    registry = getattr(env, "registry", None)
    if registry is not None and "tm" not in registry and "sl" not in registry:
        raise FixupError("neither 'tm' nor 'sl' module loaded! signaling requires "
                         "loading at least one of these two")
    return fixup_code_reason(env, module, args)


exports = ModuleExports(
    name="signaling",
    cmds=[
        CmdExport("send_reply", send_reply, 2, REQUEST_ROUTE | ERROR_ROUTE | FAILURE_ROUTE, _fixup),
    ],
)
