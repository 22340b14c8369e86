"""Waiting for I/O in a module process until the master says stop.

A module process (mi_fifo, mi_datagram, httpd) runs until SIGTERM. The
handler only sets a flag; `signal.set_wakeup_fd` wakes the poll() the
process sleeps in, so it leaves its loop at once and cleans up, instead of
dying in the middle of a reply or sleeping through the signal.
"""

from __future__ import annotations

import os
import select
import signal
from types import FrameType
from typing import Any

__all__ = ["StopWatch", "Stopped"]


class Stopped(BaseException):
    """The process was told to stop (SIGTERM); not an Exception, so no handler swallows it."""


class StopWatch:
    """Context manager: SIGTERM sets `stopped`; `wait()` raises Stopped."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)) -> None:
        self.signals = signals
        self.stopped = False
        self._r = self._w = -1
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1

    def __enter__(self) -> StopWatch:
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        for s in self.signals:
            self._old_handlers[s] = signal.signal(s, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old_handlers.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(self._old_wakeup)
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopped = True

    def check(self) -> None:
        if self.stopped:
            raise Stopped

    def wait(self, fds: dict[int, int], timeout: float | None = None) -> list[tuple[int, int]]:
        """poll() `fds` ({fd: events}); the (fd, events) ready, [] on timeout."""
        self.check()
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        for fd, ev in fds.items():
            poller.register(fd, ev)
        ready = poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
        out = []
        for fd, ev in ready:
            if fd == self._r:
                try:
                    while os.read(self._r, 512):
                        pass
                except OSError:
                    pass
            else:
                out.append((fd, ev))
        self.check()
        return out
