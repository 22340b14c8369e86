"""Asynchronous MI answers (1.6 MI_ASYNC_RPL_FLAG), for commands such as t_uac_dlg.

An async command (`MICmdExport(async_=True)`) may answer at once (an
`MIReply`, e.g. for a bad argument) or return a `PendingReply`: an answer
still to come, because it depends on something another process does (a
SIP reply received by a SIP worker). The MI process keeps its pending
answers in a `Waiting` set and, between requests, asks each for what has
arrived (`Waiting.service`), so it serves other commands meanwhile; the
transport delivers every reply it is given (1.6 writes one FIFO reply or
one datagram per reply). Every wait is bounded: at the deadline the
pending answer gives its final timeout reply.

Results cross processes through shared memory, which cannot wake a
process up, so the MI loop polls while something is pending, every
`POLL_INTERVAL` seconds, and sleeps on its socket alone otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .tree import MIReply

__all__ = ["POLL_INTERVAL", "PendingReply", "Waiting"]

POLL_INTERVAL = 0.01

# deliver(reply, final): write one answer to the client that asked
Deliver = Callable[[MIReply, bool], None]


class PendingReply:
    """An answer an async command still owes; subclasses say what arrived (`fetch`).

    `deadline` is a time.monotonic() value; past it the answer is
    `expired()` (a subclass gives the command's own timeout reply).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = False

    def fetch(self) -> list[tuple[MIReply, bool]]:
        """The replies that arrived since the last call, each with "is it the final one"."""
        raise NotImplementedError

    def expired(self) -> MIReply:
        """The final reply when nothing final came before the deadline."""
        return MIReply.error(500, "command timed out")

    def check(self, now: float | None = None) -> list[tuple[MIReply, bool]]:
        """What to deliver now: the replies that arrived, or the timeout reply.

        Nothing comes after a final reply; once one was returned, `done` is set.
        """
        if self.done:
            return []
        out: list[tuple[MIReply, bool]] = []
        for reply, final in self.fetch():
            out.append((reply, final))
            if final:
                self.done = True
                return out
        if (time.monotonic() if now is None else now) >= self.deadline:
            self.done = True
            out.append((self.expired(), True))
        return out

    def wait(self) -> MIReply:
        """Block until the final reply (for callers without an event loop)."""
        while True:
            for reply, final in self.check():
                if final:
                    return reply
            time.sleep(POLL_INTERVAL)


class Waiting:
    """The pending answers of one MI process, and where each goes."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._items: list[tuple[PendingReply, Deliver]] = []
        self._on_error = on_error

    def __len__(self) -> int:
        return len(self._items)

    def add(self, pending: PendingReply, deliver: Deliver) -> None:
        self._items.append((pending, deliver))

    def timeout(self, now: float | None = None) -> float | None:
        """How long the MI loop may sleep on its socket: None (nothing pending) or seconds."""
        if not self._items:
            return None
        now = time.monotonic() if now is None else now
        soonest = min(p.deadline for p, _ in self._items)
        return max(0.0, min(POLL_INTERVAL, soonest - now))

    def service(self, now: float | None = None) -> int:
        """Deliver what has arrived; forget the answers that are complete. Returns deliveries."""
        if not self._items:
            return 0
        n = 0
        keep: list[tuple[PendingReply, Deliver]] = []
        for pending, deliver in self._items:
            try:
                ready = pending.check(now)
            except Exception as e:  # a broken pending answer must not stop the MI process
                self._error(f"MI: async reply failed: {type(e).__name__}: {e}")
                ready = [(MIReply.error(500, "Server Internal Error"), True)]
                pending.done = True
            for reply, final in ready:
                n += 1
                try:
                    deliver(reply, final)
                except Exception as e:
                    self._error(f"MI: async reply not delivered: {type(e).__name__}: {e}")
            if not pending.done:
                keep.append((pending, deliver))
        self._items = keep
        return n

    def _error(self, text: str) -> None:
        if self._on_error is not None:
            self._on_error(text)
