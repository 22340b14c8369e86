"""What a module exports, in one table per module (OpenSIPS's module_exports).

A module file `sipserver/modules/NAME.py` (or package) defines a module-level
`exports = ModuleExports(...)`. The compiler resolves script names against a
`Registry` of these tables handed to it; it never imports a module itself,
and a module never imports the compiler.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Route-type bits, as 1.6 numbers them (a function's allowed-block mask).
REQUEST_ROUTE = 1
FAILURE_ROUTE = 2
ONREPLY_ROUTE = 4
BRANCH_ROUTE = 8
ERROR_ROUTE = 16
LOCAL_ROUTE = 32
STARTUP_ROUTE = 64
TIMER_ROUTE = 128
ALL_ROUTES = 255

ROUTE_TYPE_NAMES = {
    REQUEST_ROUTE: "request route",
    FAILURE_ROUTE: "failure_route",
    ONREPLY_ROUTE: "onreply_route",
    BRANCH_ROUTE: "branch_route",
    ERROR_ROUTE: "error_route",
    LOCAL_ROUTE: "local_route",
    STARTUP_ROUTE: "startup_route",
    TIMER_ROUTE: "timer_route",
}


class FixupError(Exception):
    """A script argument a function cannot accept, found at start-up."""


@dataclass(frozen=True, slots=True)
class ParamExport:
    """A modparam: its type (int or str) and default.

    `on_set`, when given, is called for every modparam line instead of
    storing the value (1.6's USE_FUNC_PARAM, for repeatable parameters).
    """

    name: str
    type: type
    default: Any = None
    on_set: Callable[[Any, Any], None] | None = None


@dataclass(frozen=True, slots=True)
class CmdExport:
    """A script function.

    `func(ctx, *args)` returns the 1.6 code (>0 true, <0 false, 0 stop).
    `fixup(env, module, args)` turns the literal string arguments into what
    `func` takes, once at start-up (`env` is the compiler's CompileEnv:
    `env.compile_format(text)`, `env.compile_pv(text)`), and raises
    FixupError for bad ones; without a fixup the strings are passed as
    they are. A fixup that needs the module's state returns it among the args.
    """

    name: str
    func: Callable[..., int]
    nargs: int = 0
    route_types: int = REQUEST_ROUTE
    fixup: Callable[[Any, LoadedModule, Sequence[str]], Sequence[Any]] | None = None


@dataclass(frozen=True, slots=True)
class MICmdExport:
    """An MI command (1.6 mi_export_t), served by mi_fifo, mi_datagram, mi_http.

    `handler(args, rt, module) -> MIReply | None`: `args` is the list of
    `sipserver.mi.tree.MINodeArg` (flat, in order), `rt` the Runtime of the
    MI process, `module` the LoadedModule exporting the command (None for
    core commands). Returning None means "command failed" (the transport
    answers `500 command '<cmd>' failed`); a handler that raises is logged
    and treated the same way.

    `no_input` (1.6 MI_NO_INPUT_FLAG): argument lines are read and dropped.
    `no_reply`: the text transports write nothing back (1.6 `kill`, whose
    process dies before it answers). `params`: the OpenSIPS 3.x names of the
    arguments, in order, so JSON-RPC named parameters map to positions
    (a list value becomes one argument per element).

    `async_` (1.6 MI_ASYNC_RPL_FLAG): the handler may return a
    `sipserver.mi.pending.PendingReply` instead of a tree; the MI process
    serves other commands until its replies arrive (FIFO and datagram
    write each one; mi_http answers with the final one).
    """

    name: str
    handler: Callable[..., Any]
    no_input: bool = False
    no_reply: bool = False
    params: Sequence[str] = ()
    async_: bool = False


@dataclass(frozen=True, slots=True)
class StatExport:
    """A statistic a module keeps (1.6 stat_export_t), in the `MODULE` group.

    `no_reset` stats ignore reset_statistics; `func(module) -> int`, when
    given, computes the value on read instead of keeping a counter.
    """

    name: str
    no_reset: bool = False
    func: Callable[[Any], int] | None = None


@dataclass(frozen=True, slots=True)
class ProcExport:
    """Extra processes a module needs (1.6 proc_export_t: mi_fifo, mi_datagram, ...).

    The master forks `count` of them after mod_init; each runs
    `run(module, rank)` after child_init, with the process title `name`,
    until it is told to stop (SIGTERM). `count` may be a function of the
    module (its parameters decide).
    """

    name: str
    run: Callable[[Any, int], None]
    count: int | Callable[[Any], int] = 1


@dataclass(frozen=True, slots=True)
class PVarExport:
    """A pseudo-variable a module adds ($T_reply_code, $DLG_status, ...).

    `make(inner, module)` builds the pv object for one script occurrence
    (`inner` is the text in parentheses, or None) at start-up.
    """

    name: str
    make: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class TransformationExport:
    """A transformation class a module adds (`{json.x}` style)."""

    name: str
    compile_method: Callable[..., Any]


@dataclass(slots=True)
class ModuleExports:
    """The whole export table of one module."""

    name: str
    params: Sequence[ParamExport] = ()
    cmds: Sequence[CmdExport] = ()
    mi_cmds: Sequence[MICmdExport] = ()
    pvars: Sequence[PVarExport] = ()
    transformations: Sequence[TransformationExport] = ()
    # `$(<name>pv)` contexts: name -> resolver(ctx) giving the context of
    # another message (tm: <request>, <reply>), or None when there is none
    pv_contexts: Sequence[tuple[str, Callable[[Any], Any]]] = ()
    stats: Sequence[StatExport] = ()
    procs: Sequence[ProcExport] = ()
    deps: Sequence[str] = ()
    # what other modules bind to (1.6 exports db_bind_api, load_tm... as
    # functions): a DB driver's DbDriver, read by db.api.db_bind
    api: Any = None
    # mod_init(module) runs in the master after the script is compiled;
    # child_init(module, rank) in every child after the fork; destroy at exit.
    mod_init: Callable[[LoadedModule], None] | None = None
    child_init: Callable[[LoadedModule, int], None] | None = None
    destroy: Callable[[LoadedModule], None] | None = None


@dataclass(slots=True)
class LoadedModule:
    """A module loaded by the script: its exports, parameters and state."""

    exports: ModuleExports
    path: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    rt: Any = None  # this process's Runtime, set before mod_init (stats, shm, MI, log)

    @property
    def name(self) -> str:
        return self.exports.name

    def param(self, name: str) -> Any:
        return self.params[name]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`, did you mean "x"?` for a near miss, or the empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f', did you mean "{close[0]}"?' if close else ""


class Registry:
    """The loaded modules, in load order, and lookups over their exports."""

    def __init__(self) -> None:
        self.modules: dict[str, LoadedModule] = {}
        self._cmds: dict[str, list[tuple[CmdExport, LoadedModule]]] = {}

    def add(self, exports: ModuleExports, path: str = "") -> LoadedModule:
        if exports.name in self.modules:
            return self.modules[exports.name]
        mod = LoadedModule(exports, path, {p.name: p.default for p in exports.params})
        self.modules[exports.name] = mod
        for cmd in exports.cmds:
            self._cmds.setdefault(cmd.name, []).append((cmd, mod))
        return mod

    def find_cmds(self, name: str) -> list[tuple[CmdExport, LoadedModule]]:
        """Every overload of a script function name (one per arg count)."""
        return self._cmds.get(name, [])

    def cmd_names(self) -> list[str]:
        return list(self._cmds)

    def __contains__(self, name: str) -> bool:
        return name in self.modules
