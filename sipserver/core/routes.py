"""The compiled route table and the top-level route run (1.6's run_top_route).

The compiler fills a `RouteTable` with plain callables ``route(ctx) -> int``;
the receive path and modules (tm's failure/branch/onreply routes, the timer
process) run them through `RouteTable.run`, never through the compiler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .context import RUN_GO_ON, MsgContext, RouteReturn, ScriptExit
from .exports import (
    BRANCH_ROUTE,
    ERROR_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
)

RouteFn = Callable[[MsgContext], int]

#: route kind (as in the AST) -> route-type bit
KIND_TYPES = {
    "request": REQUEST_ROUTE, "failure": FAILURE_ROUTE, "onreply": ONREPLY_ROUTE,
    "branch": BRANCH_ROUTE, "error": ERROR_ROUTE, "local": LOCAL_ROUTE,
    "startup": STARTUP_ROUTE, "timer": TIMER_ROUTE,
}


@dataclass(slots=True)
class TimerRoute:
    """A ``timer_route[name, seconds]`` block."""

    name: str
    interval: int
    fn: RouteFn


@dataclass(slots=True)
class RouteTable:
    """Compiled routes by kind and name (``None`` = the unnamed block)."""

    routes: dict[str, dict[str | None, RouteFn]] = field(default_factory=dict)
    timers: list[TimerRoute] = field(default_factory=list)

    def get(self, kind: str, name: str | None = None) -> RouteFn | None:
        return self.routes.get(kind, {}).get(name)

    def has(self, kind: str, name: str | None = None) -> bool:
        return name in self.routes.get(kind, {})

    @property
    def main(self) -> RouteFn | None:
        return self.get("request", None)

    def run_timer(self, index: int, ctx: MsgContext) -> int:
        """Run one pass of the index-th timer_route (in the timer process)."""
        return self._run_fn(self.timers[index].fn, "timer", ctx)

    def run(self, kind: str, name: str | None, ctx: MsgContext) -> int:
        """Run one top-level route on `ctx` (1.6 run_top_route).

        Resets the script flags, return/exit state and error info first.
        Returns the run's end state (`ctx.stop`: go on, exit or drop); a
        missing route is a no-op.
        """
        return self._run_fn(self.get(kind, name), kind, ctx)

    @staticmethod
    def _run_fn(fn: RouteFn | None, kind: str, ctx: MsgContext) -> int:
        ctx.reset_for_run(KIND_TYPES[kind])
        if fn is None:
            return RUN_GO_ON
        try:
            fn(ctx)
        except ScriptExit:
            pass
        except RouteReturn:
            pass
        return ctx.stop
