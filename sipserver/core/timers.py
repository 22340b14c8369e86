"""The timer process: timer_route blocks and module timers, on schedule.

1.6 runs both in a dedicated process; so does sipserver. In the single
process mode (`-D` / `fork=no`) the receive loop calls `run_due` between
messages instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..sip.message import dummy_request
from .context import MsgContext
from .runtime import L_ERR, Runtime

__all__ = ["TimerTask", "Timers"]


@dataclass(slots=True)
class TimerTask:
    name: str
    interval: float
    fn: Callable[[], None]
    due: float = 0.0


class Timers:
    """Every timer of this server, with its next due time."""

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.clock = clock
        now = clock()
        self.tasks: list[TimerTask] = []
        for index, tr in enumerate(rt.routes.timers if rt.routes is not None else []):
            self.tasks.append(TimerTask(f"timer_route[{tr.name}]", max(tr.interval, 1),
                                        self._route_runner(index), now + max(tr.interval, 1)))
        for name, interval, fn in rt.timers:
            self.tasks.append(TimerTask(name, interval, fn, now + interval))

    def _route_runner(self, index: int) -> Callable[[], None]:
        def run() -> None:
            ctx = MsgContext(self.rt, dummy_request())
            self.rt.routes.run_timer(index, ctx)
        return run

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def next_delay(self) -> float:
        """Seconds until the next task is due (1 s when there is none)."""
        if not self.tasks:
            return 1.0
        return max(0.0, min(t.due for t in self.tasks) - self.clock())

    def run_due(self) -> None:
        """Run every task that is due; a failing task is logged, never fatal."""
        now = self.clock()
        for t in self.tasks:
            if t.due <= now:
                try:
                    t.fn()
                except Exception as e:  # a module timer bug must not stop the others
                    self.rt.log(L_ERR, f"timer {t.name} failed: {type(e).__name__}: {e}")
                # no catch-up storms after a long task: schedule from now
                t.due = max(t.due + t.interval, now)

    def loop(self, stopping: Callable[[], bool]) -> None:
        """The timer process body."""
        while not stopping():
            time.sleep(min(self.next_delay(), 1.0))
            self.run_due()
