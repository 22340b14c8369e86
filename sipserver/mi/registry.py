"""The MI command table of a running server (1.6 mi/mi.c).

Built from the core commands and every loaded module's `exports.mi_cmds`,
in the order 1.6 registers them: statistics, core, blacklists, then the
modules in load order. A name registered twice keeps its first owner (1.6
logs "already registered" and goes on). Every MI transport of the process
runs commands through the same table (`rt.mi`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.exports import LoadedModule, MICmdExport
from ..core.runtime import L_ERR
from .pending import PendingReply
from .tree import MINodeArg, MIReply


@dataclass(frozen=True, slots=True)
class MICommand:
    """A registered command and the module that exports it (None: core)."""

    export: MICmdExport
    module: LoadedModule | None

    @property
    def name(self) -> str:
        return self.export.name


class MIRegistry:
    """Name -> command, in registration order."""

    def __init__(self, rt: Any = None) -> None:
        self.rt = rt
        self._cmds: dict[str, MICommand] = {}
        self.duplicates: list[tuple[str, str]] = []  # (command, module) refused

    @classmethod
    def from_runtime(cls, rt: Any) -> MIRegistry:
        """Core commands, then the MI commands of `rt.registry`'s modules."""
        from .core_cmds import CORE_COMMANDS

        reg = cls(rt)
        reg.register_all(CORE_COMMANDS, None)
        registry = getattr(rt, "registry", None)
        if registry is not None:
            for mod in registry.modules.values():
                reg.register_all(mod.exports.mi_cmds, mod)
        return reg

    def register_all(self, exports: Iterable[MICmdExport], module: LoadedModule | None) -> None:
        for e in exports:
            self.register(e, module)

    def register(self, export: MICmdExport, module: LoadedModule | None = None) -> bool:
        """Add a command; False (and logged) when the name is taken."""
        if export.name in self._cmds:
            owner = module.name if module is not None else "core"
            self.duplicates.append((export.name, owner))
            self._log(L_ERR, f"MI: command <{export.name}> already registered ({owner})")
            return False
        self._cmds[export.name] = MICommand(export, module)
        return True

    def lookup(self, name: str) -> MICommand | None:
        return self._cmds.get(name)

    def names(self) -> list[str]:
        return list(self._cmds)

    def __contains__(self, name: str) -> bool:
        return name in self._cmds

    def __len__(self) -> int:
        return len(self._cmds)

    def execute(self, cmd: MICommand,
                args: Sequence[MINodeArg] | None) -> MIReply | PendingReply | None:
        """Run one command; None when it failed (it raised or returned None).

        An async command may answer a `PendingReply` (its replies come later,
        see sipserver.mi.pending); any other command must answer a tree.
        """
        try:
            reply = cmd.export.handler(list(args or ()), self.rt, cmd.module)
        except Exception as e:
            self._log(L_ERR, f"MI: command {cmd.name} failed: {type(e).__name__}: {e}")
            return None
        if isinstance(reply, PendingReply) and cmd.export.async_:
            return reply
        if reply is not None and not isinstance(reply, MIReply):
            self._log(L_ERR, f"MI: command {cmd.name} returned {type(reply).__name__}, not a tree")
            return None
        return reply

    def run(self, name: str, args: Sequence[MINodeArg] | None = None) -> MIReply | None:
        """Run a command by name and wait for its final reply; an unknown one
        gets 1.6's answer (500 not available)."""
        cmd = self.lookup(name)
        if cmd is None:
            return MIReply.error(500, f"command '{name}' not available")
        reply = self.execute(cmd, args)
        return reply.wait() if isinstance(reply, PendingReply) else reply

    def _log(self, level: int, text: str) -> None:
        if self.rt is not None and hasattr(self.rt, "log"):
            self.rt.log(level, text)


def mi_registry(rt: Any) -> MIRegistry:
    """This process's MI table: `rt.mi`, built from `rt.registry` on first use."""
    reg = getattr(rt, "mi", None)
    if not isinstance(reg, MIRegistry):
        reg = MIRegistry.from_runtime(rt)
        rt.mi = reg
    return reg
