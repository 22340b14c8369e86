"""The master process: start-up, forking the children, supervising them.

Shaped like gunicorn's arbiter. The master binds the sockets, creates the
shared memory, runs every module's mod_init and the startup_route, then
forks: UDP receivers (`children` per UDP socket), the timer process, the
processes modules ask for (MI transports), and whatever the TCP layer
adds. It then only waits: SIGTERM/SIGINT stop every child and remove the
pid file; a child that dies on its own is logged with its status and the
whole server shuts down (1.6 does the same), so no half-working server and
no orphan ever remains. Children also die with the master
(PR_SET_PDEATHSIG), should the master be killed outright.
"""

from __future__ import annotations

import ctypes
import gc
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .runtime import L_ERR, L_INFO, L_NOTICE, Runtime

__all__ = ["ChildSpec", "Master"]

_PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 5.0  # seconds children get after SIGTERM before SIGKILL


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _set_title(title: str) -> None:
    try:
        import setproctitle

        setproctitle.setproctitle(title)
    except ImportError:
        pass


@dataclass(slots=True)
class ChildSpec:
    """One child process: its rank, title and what it runs after child_init."""

    rank: int
    title: str
    run: Callable[[], None]
    pid: int = 0


@dataclass
class Master:
    """Forks and supervises the children of one server."""

    rt: Runtime
    children: list[ChildSpec] = field(default_factory=list)
    pid_file: str | None = None
    pgid_file: str | None = None
    name: str = "sipserver"
    child_init: Callable[[int], None] | None = None
    on_exit: list[Callable[[], None]] = field(default_factory=list)
    _by_pid: dict[int, ChildSpec] = field(default_factory=dict)
    _exit_code: int = 0

    # ------------------------------------------------------------ children

    def add_child(self, title: str, run: Callable[[], None]) -> ChildSpec:
        spec = ChildSpec(len(self.children) + 1, title, run)
        self.children.append(spec)
        return spec

    def _spawn(self, spec: ChildSpec) -> None:
        pid = os.fork()
        if pid:
            spec.pid = pid
            self._by_pid[pid] = spec
            return
        # ---- in the child
        code = 0
        try:
            _die_with_parent()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            if os.getppid() == 1:
                os._exit(0)  # the master is already gone
            _set_title(f"{self.name}: {spec.title}")
            self.rt.rank = spec.rank
            self.rt.pid = os.getpid()
            if self.rt.procs is not None:
                self.rt.procs.set(spec.rank, self.rt.pid, spec.title)
            if self.child_init is not None:
                self.child_init(spec.rank)
            # what was built at start-up (compiled routes, modules) stays put:
            # keep it out of the collector, and collect the short-lived per-message
            # garbage (message <-> lumps cycles) less often
            gc.freeze()
            gc.set_threshold(20000, 20, 20)
            spec.run()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except KeyboardInterrupt:
            code = 0
        except BaseException as e:  # the child must never fall back into the master's code
            try:
                self.rt.log(L_ERR, f"{spec.title} (rank {spec.rank}) failed: "
                                   f"{type(e).__name__}: {e}")
            finally:
                code = 1
        finally:
            os._exit(code)

    # ------------------------------------------------------------ files

    def _write_pid_files(self) -> None:
        for path, value in ((self.pid_file, os.getpid()), (self.pgid_file, os.getpgrp())):
            if not path:
                continue
            try:
                with open(path, "w", encoding="ascii") as f:
                    f.write(f"{value}\n")
            except OSError as e:
                self.rt.log(L_ERR, f"cannot write {path}: {e.strerror}")

    def _remove_pid_files(self) -> None:
        for path in (self.pid_file, self.pgid_file):
            if path:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    # ------------------------------------------------------------ running

    def run(self) -> int:
        """Fork every child and supervise them; returns the exit code.

        Signal handlers only queue the signal and wake the loop (through
        the wakeup fd); the loop itself reaps children, stops on
        SIGTERM/SIGINT and logs statistics on SIGUSR1.
        """
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        queue: list[int] = []

        def on_signal(signum: int, frame: Any) -> None:
            queue.append(signum)

        old_wakeup = signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(sig, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self._write_pid_files()
        if self.rt.procs is not None:
            self.rt.procs.set(0, os.getpid(), "attendant")
        try:
            for spec in self.children:
                self._spawn(spec)
            self.rt.log(L_NOTICE, f"{self.name}: started, {len(self.children)} children")
            self._loop(queue, wake_r)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            self._stop_children()
            for fn in self.on_exit:
                try:
                    fn()
                except Exception as e:
                    self.rt.log(L_ERR, f"shutdown: {type(e).__name__}: {e}")
            self._remove_pid_files()
        return self._exit_code

    def _loop(self, queue: list[int], wake_r: int) -> None:
        while True:
            try:
                select.select([wake_r], [], [], 1.0)
            except InterruptedError:
                pass
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            while queue:
                signum = queue.pop(0)
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self.rt.log(L_NOTICE, f"{self.name}: {signal.Signals(signum).name}"
                                          " received, shutting down")
                    return
                if signum == signal.SIGUSR1:
                    self._log_state()
            if self._reap():
                return

    def _reap(self) -> bool:
        """Collect exited children; True when one died (the server must stop)."""
        died = False
        while self._by_pid:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return died
            if pid == 0:
                return died
            spec = self._by_pid.pop(pid, None)
            if spec is None:
                continue
            self.rt.log(L_ERR, f"{self.name}: child {spec.title} (rank {spec.rank}, pid {pid})"
                               f" {_describe(status)}; shutting down")
            self._exit_code = 1
            died = True
        return died

    def _log_state(self) -> None:
        """SIGUSR1: memory and statistics to the log, whatever the debug level
        (the operator asked for them)."""
        stats = self.rt.stats
        if stats is None:
            return
        for line in stats.lines(["all"]):
            self.rt.logger(L_NOTICE, line)

    def _stop_children(self) -> None:
        for pid in list(self._by_pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self._by_pid.pop(pid, None)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._by_pid and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._by_pid.clear()
                break
            if pid == 0:
                time.sleep(0.02)
                continue
            self._by_pid.pop(pid, None)
        for pid, spec in list(self._by_pid.items()):
            self.rt.log(L_INFO, f"{self.name}: {spec.title} (pid {pid}) did not stop; killing it")
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self._by_pid.pop(pid, None)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by signal {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def daemonize(workdir: str = "/", keep_stderr: bool = False) -> None:
    """Detach from the terminal (double fork, new session, stdio to /dev/null)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir(workdir or "/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if keep_stderr else (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the stream for good
