"""Process-shared locks, created before fork and usable in every child.

Why POSIX semaphores through ``multiprocessing``: the semaphore lives in
shared memory the kernel set up, so a lock taken in one process blocks
every other process that inherited it across ``fork()``; an uncontended
acquire/release pair is a ``sem_trywait``/``sem_post`` in user space
(~60 ns, see ``bench/shm.py``), and a contended one sleeps on a futex
instead of spinning. They are made from the explicit "fork" context so the
semaphore name is unlinked at once (nothing left in /dev/shm, no resource
tracker process).

Rules for callers (the same as 1.6's ``lock_get``/``lock_release``):
not re-entrant, hold them for a few struct reads and writes only, and never
take a container lock inside a signal handler.  Use ``acquire()`` /
``release()`` with ``try/finally``: the ``with`` form costs ~6x more.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

_FORK = multiprocessing.get_context("fork")


def new_lock() -> Any:
    """One process-shared lock (a ``multiprocessing`` Lock, fork context).

    Create it before forking: a lock made after the fork is private to the
    process that made it.
    """
    return _FORK.Lock()


class LockSet:
    """N process-shared locks for lock striping (1.6's ``gen_lock_set_t``).

    A container with many buckets maps bucket ``b`` to lock ``b % n``:
    fewer kernel objects than one lock per bucket, and two processes
    working on different stripes never wait for each other.
    """

    __slots__ = ("acquirers", "locks", "n", "releasers")

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("a lock set needs at least one lock")
        self.n = n
        self.locks = [new_lock() for _ in range(n)]
        # bound C methods, looked up once: the hot paths index these lists
        self.acquirers: list[Callable[..., bool]] = [lk.acquire for lk in self.locks]
        self.releasers: list[Callable[[], None]] = [lk.release for lk in self.locks]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.locks[i]

    def lock_for(self, h: int) -> Any:
        """The lock that guards hash value (or bucket index) ``h``."""
        return self.locks[h % self.n]

    def index_for(self, h: int) -> int:
        """The stripe number for hash value (or bucket index) ``h``."""
        return h % self.n
