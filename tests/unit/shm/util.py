"""Run test code in real forked children (the way the server's processes share memory)."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any


def in_children(n: int, fn: Callable[[int], None], timeout: float = 20.0) -> None:
    """Fork ``n`` children running ``fn(i)`` at once; fail if any of them fails.

    Children start together (a pipe acts as the starting gun) so they really
    overlap; a child that hangs is killed after ``timeout`` seconds.
    """
    go_r, go_w = os.pipe()
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                os.read(go_r, 1)
                fn(i)
                code = 0
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(go_r)
    os.write(go_w, b"x" * n)
    os.close(go_w)
    deadline = time.monotonic() + timeout
    failed = []
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    failed.append(pid)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                failed.append(pid)
                break
            time.sleep(0.002)
    assert not failed, f"{len(failed)} of {n} children failed (see stderr)"


def fill(seg: Any, size: int) -> list[int]:
    """Allocate blocks of ``size`` bytes until the segment is full; their offsets."""
    taken = []
    try:
        while True:
            taken.append(seg.alloc(size))
    except MemoryError:  # ShmOutOfMemory
        return taken
