"""maxfwd: Max-Forwards processing (OpenSIPS 1.6 module `maxfwd`).

`mf_process_maxfwd_header(default)`: 2 = the header was missing and
`Max-Forwards: default` was inserted before the first header; 1 = found and
decremented; -1 = found with value 0; -2 = error. `is_maxfwd_lt(limit)`:
1 below the limit, -1 at or above it, -2 no header, -3 error.

As in 1.6 the decrement is written into the received message in place, in
the same width (`70` -> `69`, `10` -> ` 9`), so later functions, PVs and a
second call see the new value; a header this module inserted is not seen
by them (it is a pending change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
)
from ..core.runtime import L_DBG, L_ERR

MAXFWD_UPPER_LIMIT = 256


def _str2s(text: str) -> int | None:
    """1.6 str2s: an unsigned short in decimal, nothing else."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= 65535 else None


def _fixup_limit(env: Any, module: LoadedModule, args: Sequence[str]) -> list[int]:
    value = _str2s(args[0])
    if value is None:
        raise FixupError(f"bad number <{args[0]}>")
    if not 1 <= value <= MAXFWD_UPPER_LIMIT:
        raise FixupError(f"invalid MAXFWD number <{value}> [1,{MAXFWD_UPPER_LIMIT}]")
    max_limit = module.params.get("max_limit", MAXFWD_UPPER_LIMIT)
    if value > max_limit:
        raise FixupError(f"default value <{value}> bigger than max limit({max_limit})")
    return [value]


def _current(ctx: MsgContext) -> int:
    """The Max-Forwards value: -1 absent, -2 unparsable, else the value."""
    h = ctx.msg.header("max-forwards")
    if h is None:
        return -1
    value = _str2s(h.value.strip(" \t\r\n"))
    if value is None:
        ctx.rt.log(L_ERR, "maxfwd: unable to parse the max forwards number")
        return -2
    return value


def _rewrite(ctx: MsgContext, value: int) -> None:
    """Write `value` over the header value, right-aligned in the same width."""
    msg = ctx.msg
    h = msg.header("max-forwards")
    assert h is not None
    start, end = h.value_start, h.value_end
    width = end - start
    text = str(value).rjust(width)  # never wider: the value only went down
    msg.text = msg.text[:start] + text + msg.text[end:]
    msg.buf = msg.buf[:start] + text.encode("ascii") + msg.buf[end:]
    h.value = text.lstrip(" ")
    h.value_start = start + (len(text) - len(h.value))
    h.parsed = value


def mf_process_maxfwd_header(ctx: MsgContext, default: int, max_limit: int) -> int:
    value = _current(ctx)
    if value == -1:
        ctx.msg.lumps.insert(ctx.msg.first_line_end, f"Max-Forwards: {default}\r\n")
        return 2
    if value == -2:
        return -2
    if value == 0:
        return -1
    if value > max_limit:
        ctx.rt.log(L_DBG, f"maxfwd: value {value} decreased to {max_limit}")
        value = max_limit + 1
    _rewrite(ctx, value - 1)
    return 1


def is_maxfwd_lt(ctx: MsgContext, limit: int) -> int:
    value = _current(ctx)
    if value < 0:
        return value - 1
    return -1 if value >= limit else 1


def _fixup_process(env: Any, module: LoadedModule, args: Sequence[str]) -> list[int]:
    # max_limit is final once the script is compiled (modparams come first).
    return [*_fixup_limit(env, module, args), module.params.get("max_limit", MAXFWD_UPPER_LIMIT)]


def _mod_init(module: LoadedModule) -> None:
    limit = module.params.get("max_limit")
    if not isinstance(limit, int) or not 1 <= limit <= MAXFWD_UPPER_LIMIT:
        from ..core.modload import ModuleError

        raise ModuleError(f"maxfwd: invalid max limit ({limit}) [1,{MAXFWD_UPPER_LIMIT}]")


exports = ModuleExports(
    name="maxfwd",
    params=[ParamExport("max_limit", int, MAXFWD_UPPER_LIMIT)],
    cmds=[
        CmdExport("mf_process_maxfwd_header", mf_process_maxfwd_header, 1, REQUEST_ROUTE, _fixup_process),
        CmdExport("is_maxfwd_lt", is_maxfwd_lt, 1, REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE, _fixup_limit),
    ],
    mod_init=_mod_init,
)
