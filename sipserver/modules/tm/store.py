"""Where transactions live: a shared hash of records plus a due-time index.

Made in the master (mod_init) before the fork, so every receiver and the
timer process see the same transactions:

* `table` — tid -> next due time (8 bytes, 0: none) + encoded `Txn`:
  one shared-memory write per save;
* `wheel` — a timer wheel of tids by due time: a save that moves the due
  time adds the tid to it, and the timer process collects only what
  came due (then checks each record's own due time: a moved one is
  skipped), instead of scanning every live transaction each tick;
* `locks` — per-transaction locks (striped by tid). Everything that reads
  a record, changes it and writes it back holds the transaction's lock for
  the whole time (1.6's REPLY_LOCK), script routes included, so a reply
  handled in one process and a timer firing in another never interleave.
  Never hold two of these locks at once.

Out of shared memory: `save` logs and returns False; callers fail the
operation (-1 / 500) and nothing crashes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

from ...core.runtime import L_ERR
from ...shm import LockSet, Segment, SharedHash, ShmOutOfMemory
from ...shm.timerwheel import TimerWheel
from .record import Txn

__all__ = ["STATS", "TmState"]

STATS = ("received_replies", "relayed_replies", "local_replies", "UAS_transactions",
         "UAC_transactions", "2xx_transactions", "3xx_transactions", "4xx_transactions",
         "5xx_transactions", "6xx_transactions", "inuse_transactions")

_FINAL_STATS = {k: f"{k}xx_transactions" for k in range(2, 7)}
_D = struct.Struct("<d")
TABLE_BUCKETS = 4096
LOCK_STRIPES = 64
WHEEL_SLOTS = 4096        # x WHEEL_RESOLUTION: a 409.6 s turn
WHEEL_RESOLUTION = 0.1    # the timer process's tick


def _record_room(t: Txn) -> int:
    """Bytes a new record will grow to: itself, the script's copy of the
    request, the copy sent on a branch and a reply, each about the request's
    size (a completed record gives back what it no longer needs)."""
    return 4 * len(t.request) + 1024


def _tid_hash(key: bytes) -> int:
    """Fork-independent and spread: the tid is already an MD5 in hex."""
    return int(key[:15], 16)


def avp_param(text: Any, aliases: str | None = None) -> int | str | None:
    """An AVP named by a module parameter: `$avp(i:24)`, `i:24`, `s:x` or an alias."""
    if text is None or not str(text).strip():
        return None
    from types import SimpleNamespace

    from ...lang.compiler import parse_avp_aliases
    from ...lang.pv import PVNameError
    from ...lang.pvars import _avp_name

    spec = str(text).strip()
    if spec.startswith("$avp(") and spec.endswith(")"):
        spec = spec[5:-1]
    try:
        env = SimpleNamespace(avp_aliases=parse_avp_aliases(aliases) if aliases else {})
        return _avp_name(spec, env)
    except PVNameError as e:
        raise ValueError(f"tm: bad AVP definition {text!r}: {e}") from None


def _minor_mask(flag: Any) -> int:
    """minor_branch_flag: a branch flag index (-1: none) -> mask."""
    n = int(flag if flag is not None else -1)
    if n < 0:
        return 0
    if n > 31:
        raise ValueError(f"tm: invalid minor_branch_flag {n}")
    return 1 << n


class TmState:
    """The module's per-process view of the shared transaction store."""

    def __init__(self, rt: Any, params: dict[str, Any], *, segment: Segment | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.params = params
        self.clock = clock
        seg = segment or rt.shm
        if seg is None:  # no shared memory (unit tests): a private segment
            seg = Segment(8 * 1024 * 1024)
        self.seg = seg
        self.table = SharedHash(seg, TABLE_BUCKETS, LockSet(LOCK_STRIPES), _tid_hash)
        self.wheel = TimerWheel(seg, WHEEL_SLOTS, WHEEL_RESOLUTION, LockSet(LOCK_STRIPES))
        self.locks = LockSet(LOCK_STRIPES * 2)
        self._acq = self.locks.acquirers
        self._rel = self.locks.releasers
        self.held: set[str] = set()  # transactions whose lock this process holds
        self.stats: dict[str, Any] = {}
        if params.get("enable_stats", 1) and rt.stats is not None:
            for name in STATS:
                h = rt.stats.stat("tm", name)
                if h is not None:
                    self.stats[name] = h
        self._inc = {name: h.inc for name, h in self.stats.items()}
        # seconds, from the parameters
        self.t1 = max(int(params.get("T1_timer", 500)), 1) / 1000.0
        self.t2 = max(int(params.get("T2_timer", 4000)), 1) / 1000.0
        self.fr = float(params.get("fr_timer", 30))
        self.fr_inv = float(params.get("fr_inv_timer", 120))
        self.wt = float(params.get("wt_timer", 5))
        # fr_timer_avp / fr_inv_timer_avp: the AVP names (None: not set)
        aliases = rt.config.get("avp_aliases") if rt.config is not None else None
        self.fr_avp = avp_param(params.get("fr_timer_avp"), aliases)
        self.fr_inv_avp = avp_param(params.get("fr_inv_timer_avp"), aliases)
        self.minor_mask = _minor_mask(params.get("minor_branch_flag", -1))

    # ------------------------------------------------------------ timer values

    def _avp_timer(self, name: Any, value: Any, default: float) -> float:
        if value is None:
            return default
        try:
            return float(int(value))
        except (TypeError, ValueError):
            self.rt.log(L_ERR, f"tm: AVP {name}: {value!r} is not a number of seconds")
            return default

    def fr_for(self, avps: Any) -> float:
        """fr_timer for a branch being sent: the fr_timer_avp of the current
        message's AVPs (an AvpStore) when set, else the parameter."""
        if self.fr_avp is None:
            return self.fr
        return self._avp_timer(self.fr_avp, avps.get(self.fr_avp), self.fr)

    def fr_inv_for(self, t: Txn) -> float:
        """fr_inv_timer after a provisional reply: the transaction's AVP or the parameter."""
        if self.fr_inv_avp is None:
            return self.fr_inv
        for name, values in t.avps:
            if name == self.fr_inv_avp and values:
                return self._avp_timer(name, values[0], self.fr_inv)
        return self.fr_inv

    # ------------------------------------------------------------ stats

    def stat(self, name: str, n: int = 1) -> None:
        inc = self._inc.get(name)
        if inc is not None:
            inc(n)  # a negative n subtracts

    def stat_final(self, code: int) -> None:
        if code >= 200:
            self.stat(_FINAL_STATS[min(code // 100, 6)])

    # ------------------------------------------------------------ locks

    def _stripe(self, tid: str) -> int:
        return int(tid[:8], 16) % self.locks.n

    def lock(self, tid: str) -> None:
        self._acq[self._stripe(tid)]()
        self.held.add(tid)

    def unlock(self, tid: str) -> None:
        self.held.discard(tid)
        self._rel[self._stripe(tid)]()

    # ------------------------------------------------------------ records

    def load(self, tid: str) -> Txn | None:
        """The transaction (hold its lock when you mean to change it)."""
        data = self.table.get(tid.encode())
        if data is None or len(data) <= _D.size:
            return None  # none, or one being created (reserve)
        try:
            with memoryview(data) as mv:
                t = Txn.decode(tid, mv[8:])
        except (ValueError, TypeError, EOFError) as e:
            self.rt.log(L_ERR, f"tm: broken transaction record {tid}: {e}")
            return None
        t.due_indexed = _D.unpack_from(data)[0]
        return t

    def exists(self, tid: str) -> bool:
        return tid.encode() in self.table

    def _put(self, t: Txn, room: int = 0, fit: bool = False, node: int = 0) -> bool:
        """Write the record; keep the wheel's promise for it.

        The promise: a record due at D has a wheel node due at D or before
        (`due_now` moves a node that comes early to the record's time). So
        a due time that moves later needs no new node, one that moves
        earlier (or is armed anew) does; `node`, one the timer popped for
        this record, is put back instead of allocating one (or freed), and
        is this call's to handle whatever happens.
        """
        due = t.next_due()
        try:
            value = _D.pack(due) + t.encode()
        except Exception:
            if node:  # the node is ours to keep scheduled: try again in a second
                self.wheel.requeue(node, self.clock() + 1.0)
            raise
        key = t.tid.encode()
        try:
            # the wheel first: a node whose record is missing is dropped when
            # it comes due, a record without its node would never come due
            if node:
                if due:
                    self.wheel.requeue(node, due)
                else:
                    self.wheel.release(node)
            elif due and (not t.due_indexed or due < t.due_indexed):
                self.wheel.add(key, due)
            self.table.put(key, value, max(room, len(value)) if room else 0, fit)
        except ShmOutOfMemory:
            self.rt.log(L_ERR, "tm: out of shared memory (transaction not stored)")
            return False
        t.due_indexed = due
        return True

    def save(self, t: Txn, node: int = 0) -> bool:
        """Write the record back (under its lock) with its next due time.

        A completed transaction is compacted on the way (`Txn.compact`).
        When the record cannot be written (it grew, memory is full), the
        stored one is stale: its timers would still fire (a 408 after a
        relayed 200), so it is removed and the transaction goes on
        statelessly, as one that could not be stored at all. `node`: the
        timer's wheel node for it (`due_now`), rescheduled or freed here.
        """
        if self._put(t, fit=t.compact(), node=node):
            return True
        self.delete(t.tid)
        return False

    def reserve(self, t: Txn) -> bool:
        """Take the block a new transaction will be stored in (its lock held).

        t_relay forwards before it writes the record, once; taking the
        memory first lets it fail as 1.6 does when memory is short
        (E_OUT_OF_MEM: nothing forwarded, the script may answer 500)
        instead of after the request went out. Until `insert` the record
        is an empty placeholder, which `load` reports as absent. The block
        has room for what forwarding adds (the request copies, a reply) so
        the saves that follow write in place.
        """
        try:
            self.table.put(t.tid.encode(), _D.pack(0.0), _D.size + _record_room(t), strict=True)
        except ShmOutOfMemory:
            self.rt.log(L_ERR, "tm: out of shared memory (no new transaction)")
            return False
        return True

    def insert(self, t: Txn) -> bool:
        """Store a new transaction (in its `reserve`d block, if any); counts it
        in inuse_transactions. False, and nothing stored, when memory is short."""
        if not self._put(t, _record_room(t)):
            self.table.pop(t.tid.encode())  # a reserve left behind
            return False
        self.stat("inuse_transactions")
        return True

    def delete(self, tid: str) -> None:
        if self.table.pop(tid.encode()) is not None:
            self.stat("inuse_transactions", -1)

    def due_now(self, now: float) -> list[tuple[str, int]]:
        """The transactions with a timer due at `now` (timer process), each
        with the wheel node that brought it: the caller hands the node to
        `save` (which reschedules it) or frees it (`wheel.release`).

        A node whose record is gone, has no timer, or was seen already in
        this pass is freed; one whose record is due later (its due time
        moved on) is put back at that time: rescheduling never allocates,
        so timers go on in a full segment.
        """
        out = []
        seen = set()
        get = self.table.get
        release = self.wheel.release
        for key, node in self.wheel.pop_due_nodes(now):
            data = get(key) if key not in seen else None
            due = _D.unpack_from(data)[0] if data is not None and len(data) > _D.size else 0.0
            if not due:
                release(node)
            elif due > now:
                self.wheel.requeue(node, due)
            else:
                seen.add(key)
                out.append((key.decode(), node))
        return out

    def __len__(self) -> int:
        return len(self.table)
