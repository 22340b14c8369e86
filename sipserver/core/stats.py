"""The statistics registry (1.6 ``statistics.c``), values in shared memory.

Every process counts (a UDP receiver counts ``rcv_requests``, the timer
counts expired transactions) and the MI process reads the sums, so the
values are counters in the shared segment. The registry itself (which
groups and names exist, in which order, which counter each uses) is plain
Python built in the master before forking: every child inherits the same
copy, and registering after the fork is refused, as it would only be seen
by the process that did it.

1.6 semantics kept:

* groups ("modules" in 1.6) in registration order: ``core``, ``shmem``,
  ``net``, then each module with statistics in load order; stats in
  registration order inside a group;
* a stat is a counter or a function computed on read; functions and
  ``no_reset`` stats ignore resets;
* lookups of a single name and of ``group:`` ignore case; ``all`` must be
  lower case; when two groups have a stat of the same name, the name finds
  the first registered;
* MI ``get_statistics`` prints ``group:name = value`` per stat for each
  argument (``all``, ``group:`` or a name; unknown ones are skipped), 404
  ``Statistics Not Found`` when nothing matched; ``reset_statistics``
  takes names only.

Counters are 64-bit here; 1.6 kept 32-bit unsigned counters and printed
them unsigned, so a counter that went below zero prints as 2**32 + value,
as it would have in 1.6.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

from sipserver.shm.counters import Counters
from sipserver.shm.locks import LockSet
from sipserver.shm.segment import Segment

_C = struct.Struct("<q")
_c_unpack = _C.unpack_from
_c_pack = _C.pack_into

# 1.6 core_stats[], in order ("timestamp" is a function: seconds since start)
CORE_STATS = (
    "rcv_requests", "rcv_replies", "fwd_requests", "fwd_replies",
    "drop_requests", "drop_replies", "err_requests", "err_replies",
    "bad_URIs_rcvd", "unsupported_methods", "bad_msg_hdr",
)
SHMEM_STATS = ("total_size", "used_size", "real_used_size", "max_used_size",
               "free_size", "fragments")
NET_STATS = ("waiting_udp", "waiting_tcp")  # waiting_tls: 1.6 built without TLS

MI_OK = (200, "OK")
MI_MISSING_PARM = (400, "Too few or too many arguments")
MI_NOT_FOUND = (404, "Statistics Not Found")

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class Stat:
    """A counter statistic: the handle modules keep and bump (1.6 ``stat_var``).

    ``inc()`` is the hot path: one Python call, one semaphore pair, two
    struct calls.
    """

    __slots__ = ("_acq", "_at", "_buf", "_rel", "group", "index", "name", "no_reset")

    func: Callable[[], int] | None = None

    def __init__(self, group: str, name: str, no_reset: bool, index: int,
                 counters: Counters | None) -> None:
        self.group = group
        self.name = name
        self.no_reset = no_reset
        self.index = index
        if counters is not None:
            self._at, self._buf, self._acq, self._rel = counters.handle(index)

    def inc(self, n: int = 1) -> None:
        """Add ``n`` (1.6 ``update_stat``; negative ``n`` subtracts)."""
        self._acq()
        try:
            _c_pack(self._buf, self._at, _c_unpack(self._buf, self._at)[0] + n)
        finally:
            self._rel()

    def dec(self, n: int = 1) -> None:
        """Subtract ``n`` (gauges such as ``inuse_transactions``)."""
        self.inc(-n)

    def get(self) -> int:
        """The current value."""
        self._acq()
        try:
            return _c_unpack(self._buf, self._at)[0]
        finally:
            self._rel()

    def reset(self) -> None:
        """Set to 0 unless the stat is ``no_reset`` (1.6 ``reset_stat``)."""
        if self.no_reset:
            return
        self._acq()
        try:
            _c_pack(self._buf, self._at, 0)
        finally:
            self._rel()

    def shown(self) -> int:
        """The value as 1.6 prints it (unsigned 32-bit for a counter)."""
        v = self.get()
        return v & _U32 if v < 0 else v

    def __repr__(self) -> str:
        return f"<Stat {self.group}:{self.name}>"


class FuncStat(Stat):
    """A statistic computed on read (1.6 ``STAT_IS_FUNC``); never counts, never resets."""

    __slots__ = ("func", "log")

    def __init__(self, group: str, name: str, func: Callable[[], int],
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(group, name, True, -1, None)
        self.func = func
        self.log = log

    def inc(self, n: int = 1) -> None:
        """Nothing: 1.6 ignores updates of function statistics."""

    def reset(self) -> None:
        """Nothing: function statistics cannot be reset."""

    def get(self) -> int:
        """The function's value now (0, logged, when it fails)."""
        try:
            return int(self.func())
        except Exception as e:
            if self.log is not None:
                self.log(f"statistics: {self.group}:{self.name} failed: {type(e).__name__}: {e}")
            return 0

    def shown(self) -> int:
        """The value as 1.6 prints it (unsigned long)."""
        v = self.get()
        return v & _U64 if v < 0 else v


class CoreStats:
    """The ``core`` group's handles as attributes: ``stats.core.rcv_requests.inc()``."""

    __slots__ = (*CORE_STATS, "timestamp")

    def __init__(self, handles: dict[str, Stat]) -> None:
        for name, h in handles.items():
            setattr(self, name, h)


class Statistics:
    """All statistics of the server; create it in the master before forking.

    The constructor registers the 1.6 core groups (``core``, ``shmem``,
    ``net``); modules follow through ``register_module()``, called before
    ``mod_init`` so a module can fetch its handles there with ``stat()``.
    ``sockets`` gives the listening sockets for ``net:waiting_*`` (a list
    or a function returning one; settable later).
    """

    def __init__(self, segment: Segment, locks: LockSet | None = None, *,
                 capacity: int = 1024, logger: Callable[[int, str], None] | None = None,
                 sockets: Iterable[Any] | Callable[[], Iterable[Any]] | None = None) -> None:
        self.seg = segment
        self.locks = locks if locks is not None else LockSet(32)
        self.counters = Counters(segment, capacity, self.locks)
        self.capacity = capacity
        self.logger = logger
        self.sockets = sockets
        self.start = time.monotonic()
        self._owner = os.getpid()
        self._used = 0
        self._stats: list[Stat] = []
        self._groups: dict[str, tuple[str, list[Stat]]] = {}  # lower name -> (name, stats)
        self._names: dict[str, Stat] = {}  # lower stat name -> first registered
        core = {n: self.register("core", n) for n in CORE_STATS}
        core["timestamp"] = self.register("core", "timestamp", func=self._ticks)
        self.core = CoreStats(core)
        self._core = core
        for n in SHMEM_STATS:
            self.register("shmem", n, func=self._shm_figure(n))
        self.register("net", "waiting_udp", func=lambda: self._waiting("udp"))
        self.register("net", "waiting_tcp", func=lambda: self._waiting("tcp"))

    # ------------------------------------------------------------ registering

    def register(self, group: str, name: str, no_reset: bool = False,
                 func: Callable[[], int] | None = None) -> Stat:
        """Add statistic ``group:name``; its handle.

        Registering the same group and name again returns the first handle.
        Raises RuntimeError after the fork (other processes would never see
        it) or when the counter space (``capacity``) is used up.
        """
        if not group or not name:
            raise ValueError("a statistic needs a group and a name")
        if os.getpid() != self._owner:
            raise RuntimeError(f"statistic {group}:{name} registered after the processes forked")
        key = group.lower()
        entry = self._groups.get(key)
        if entry is not None:
            for st in entry[1]:
                if st.name.lower() == name.lower():
                    return st
        if func is not None:
            st: Stat = FuncStat(entry[0] if entry else group, name, func, self._log_error)
        else:
            if self._used >= self.capacity:
                raise RuntimeError(f"too many statistics (capacity {self.capacity}): "
                                   f"cannot add {group}:{name}")
            st = Stat(entry[0] if entry else group, name, no_reset, self._used, self.counters)
            self._used += 1
            self.counters.set(st.index, 0)
        if entry is None:
            entry = self._groups[key] = (group, [])
        entry[1].append(st)
        self._stats.append(st)
        self._names.setdefault(name.lower(), st)
        return st

    def register_module(self, module: Any) -> dict[str, Stat]:
        """Register a loaded module's ``StatExport`` list in group ``module.name``.

        A ``func`` stat is called as ``func(module)`` on read. Returns the
        handles by stat name (also reachable later with ``stat()``).
        """
        out: dict[str, Stat] = {}
        for exp in module.exports.stats:
            func = None
            if exp.func is not None:
                func = _bind(exp.func, module)
            out[exp.name] = self.register(module.name, exp.name, exp.no_reset, func)
        return out

    # ------------------------------------------------------------ hot path

    def inc(self, handle: Stat, n: int = 1) -> None:
        """Add ``n`` to a statistic (``handle.inc(n)`` is the same, one call less)."""
        handle.inc(n)

    def core_inc(self, name: str, n: int = 1) -> None:
        """Add ``n`` to core statistic ``name`` (``rcv_requests``, ...)."""
        self._core[name].inc(n)

    # ------------------------------------------------------------ lookups

    def stat(self, group: str, name: str) -> Stat | None:
        """The handle of ``group:name`` (case-insensitive), if registered."""
        entry = self._groups.get(group.lower())
        if entry is None:
            return None
        low = name.lower()
        for st in entry[1]:
            if st.name.lower() == low:
                return st
        return None

    def lookup(self, name: str) -> Stat | None:
        """The statistic called ``name`` in any group (1.6 ``get_stat``)."""
        return self._names.get(name.lower())

    def groups(self) -> list[str]:
        """Group names in registration order."""
        return [g for g, _stats in self._groups.values()]

    def group(self, group: str) -> list[Stat]:
        """The statistics of one group (case-insensitive; [] when unknown)."""
        entry = self._groups.get(group.lower())
        return list(entry[1]) if entry else []

    def select(self, arg: str) -> list[Stat]:
        """What one ``get_statistics`` argument names: ``all``, ``group:`` or a name."""
        if not arg:
            return []
        if arg == "all":
            return list(self._stats_in_group_order())
        if len(arg) > 1 and arg.endswith(":"):
            return self.group(arg[:-1])
        st = self.lookup(arg)
        return [st] if st is not None else []

    def get(self, group_or_name: str) -> list[tuple[str, str, int]]:
        """``(group, name, value)`` for ``all``, ``group:`` or a single name."""
        return [(st.group, st.name, st.get()) for st in self.select(group_or_name)]

    def value(self, name: str) -> int | None:
        """The value of statistic ``name`` (any group), None when unknown."""
        st = self.lookup(name)
        return None if st is None else st.get()

    def reset(self, names: str | Iterable[str]) -> int:
        """Reset statistics by name (1.6 ``reset_stat``); how many of the names exist.

        ``no_reset`` and function statistics are found but keep their value.
        """
        found = 0
        for name in [names] if isinstance(names, str) else names:
            st = self.lookup(name) if name else None
            if st is not None:
                st.reset()
                found += 1
        return found

    # ------------------------------------------------------------ MI

    def lines(self, args: Iterable[str]) -> list[str]:
        """``group:name = value`` lines for the arguments, in argument order."""
        return [f"{st.group}:{st.name} = {st.shown()}"
                for arg in args for st in self.select(arg)]

    def get_statistics(self, args: list[str]) -> tuple[int, str, list[str]]:
        """MI ``get_statistics``: (code, reason, value lines)."""
        if not args:
            return (*MI_MISSING_PARM, [])
        out = self.lines(args)
        if not out:
            return (*MI_NOT_FOUND, [])
        return (*MI_OK, out)

    def reset_statistics(self, args: list[str]) -> tuple[int, str]:
        """MI ``reset_statistics``: (code, reason); names only, as in 1.6."""
        if not args:
            return MI_MISSING_PARM
        return MI_OK if self.reset(args) else MI_NOT_FOUND

    # ------------------------------------------------------------ internals

    def _stats_in_group_order(self) -> Iterable[Stat]:
        for _g, stats in self._groups.values():
            yield from stats

    def _log_error(self, text: str) -> None:
        if self.logger is not None:
            self.logger(-1, text)  # L_ERR

    def _ticks(self) -> int:
        return int(time.monotonic() - self.start)

    def _shm_figure(self, name: str) -> Callable[[], int]:
        seg = self.seg
        return lambda: seg.info()[name]

    def _waiting(self, proto: str) -> int:
        socks = self.sockets() if callable(self.sockets) else self.sockets
        if not socks:
            return 0
        ours = {(_norm_ip(s.ip), int(s.port)) for s in socks if s.proto == proto}
        return bytes_waiting(proto, ours) if ours else 0


def _bind(func: Callable[[Any], int], module: Any) -> Callable[[], int]:
    return lambda: func(module)


def _norm_ip(ip: str) -> str:
    ip = ip.strip("[]")
    try:
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return socket.inet_ntop(fam, socket.inet_pton(fam, ip))
    except OSError:
        return ip


def _proc_addr(hexaddr: str) -> str:
    """An address from /proc/net/{udp,tcp}[6] (host-order 32-bit words) as text."""
    if len(hexaddr) == 8:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hexaddr, 16)))
    words = [int(hexaddr[i:i + 8], 16) for i in range(0, 32, 8)]
    return socket.inet_ntop(socket.AF_INET6, struct.pack("<4I", *words))


def bytes_waiting(proto: str, ours: set[tuple[str, int]]) -> int:
    """Bytes queued for reading on our sockets (1.6 ``get_total_bytes_waiting``).

    Sums the receive queues the kernel reports in /proc/net/{proto}[6] for
    the lines whose local address is one of ``ours``; 0 where /proc is
    not available.
    """
    total = 0
    for path in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            with open(path, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) < 5:
                        continue
                    try:
                        addr, port = fields[1].split(":")
                        rx = int(fields[4].split(":")[1], 16)
                        if (_proc_addr(addr), int(port, 16)) in ours:
                            total += rx
                    except (ValueError, IndexError, OSError):
                        continue
        except OSError:
            continue
    return total
