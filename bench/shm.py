#!/usr/bin/env python3
"""µs per operation on the shared-memory containers, alone and under contention.

    .venv/bin/python bench/shm.py [--rounds N] [--ops N]

A transaction-table-like load: 10,000 records (40-byte key, 120-byte value)
in a SharedHash of 65,536 buckets striped over 256 locks, in a 32 MB
segment. Single process: get (hit), put (replace, in place), update
(read-modify-write), put+delete of a new key, Counters.add, Stat.inc,
alloc+free. Then two forked processes run the same loop at the same time
on the same table: once on random keys (the normal case: they rarely meet
on a stripe) and once both on one key (every operation contends).

Figures are WALL time per operation (time.perf_counter), median and
minimum over the rounds: under contention the time a caller waits for a
lock is what matters, and CPU time would not show it. Run on a quiet box;
with fewer than two free cores the contended figures measure the
scheduler. A figure, not a test.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import statistics
import sys
import time
from collections.abc import Callable

from sipserver.core.stats import Statistics
from sipserver.shm import Counters, LockSet, Segment, SharedHash

NKEYS = 10_000


def make_keys() -> list[bytes]:
    rnd = random.Random(7)
    return [b"%032x;z9hG4bK%06d" % (rnd.getrandbits(128), i) for i in range(NKEYS)]


VALUE = bytes(range(120))


def timed(fn: Callable[[int], None], ops: int, rounds: int) -> list[float]:
    """µs per op for each round."""
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(ops)
        out.append((time.perf_counter() - t0) / ops * 1e6)
    return out


def workloads(table: SharedHash, counters: Counters, stats: Statistics, seg: Segment,
              keys: list[bytes], seed: int) -> dict[str, Callable[[int], None]]:
    """The measured loops; the key choice is precomputed outside the timing."""
    rnd = random.Random(seed)
    picks = [keys[rnd.randrange(NKEYS)] for _ in range(4096)]
    one = keys[0]
    stat = stats.core.rcv_requests

    def get(n: int) -> None:
        g = table.get
        for i in range(n):
            g(picks[i & 4095])

    def put(n: int) -> None:
        p = table.put
        for i in range(n):
            p(picks[i & 4095], VALUE)

    def bump(old: bytes | None) -> bytes:
        return VALUE if old is None else old[1:] + old[:1]

    def update(n: int) -> None:
        u = table.update
        for i in range(n):
            u(picks[i & 4095], bump)

    def put_delete(n: int) -> None:
        p = table.put
        d = table.delete
        tag = b"new%d-" % seed
        for i in range(n):
            k = tag + picks[i & 4095]
            p(k, VALUE)
            d(k)

    def counter(n: int) -> None:
        a = counters.add
        for i in range(n):
            a(i & 15, 1)

    def stat_inc(n: int) -> None:
        inc = stat.inc
        for _ in range(n):
            inc()

    def alloc_free(n: int) -> None:
        al = seg.alloc
        fr = seg.free
        for _ in range(n):
            fr(al(160))

    def get_one(n: int) -> None:
        g = table.get
        for _ in range(n):
            g(one)

    def update_one(n: int) -> None:
        u = table.update
        for _ in range(n):
            u(one, bump)

    return {"get": get, "put (replace)": put, "update": update, "put+delete": put_delete,
            "Counters.add": counter, "Stat.inc": stat_inc, "alloc+free": alloc_free,
            "get, same key": get_one, "update, same key": update_one}


def run_children(names: list[str], ops: int, rounds: int, build: Callable[[int], dict]) -> dict:
    """Fork two children that run each workload at the same time; their figures."""
    go_r, go_w = os.pipe()
    results: list[dict[str, list[float]]] = []
    pids = []
    pipes = []
    for c in range(2):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(go_w)
            loads = build(100 + c)
            figures = {}
            for name in names:
                os.read(go_r, 1)  # both children start each workload together
                figures[name] = timed(loads[name], ops, rounds)
            os.write(w, pickle.dumps(figures))
            os._exit(0)
        os.close(w)
        pids.append(pid)
        pipes.append(r)
    for _name in names:
        time.sleep(0.05)
        os.write(go_w, b"xx")
    for r in pipes:
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        results.append(pickle.loads(data))
        os.close(r)
    for pid in pids:
        os.waitpid(pid, 0)
    merged = {}
    for name in names:
        merged[name] = [x for res in results for x in res[name]]
    return merged


def show(title: str, figures: dict[str, list[float]]) -> None:
    print(title)
    for name, xs in figures.items():
        print(f"  {name:18s} median {statistics.median(xs):6.2f} µs   min {min(xs):6.2f} µs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ops", type=int, default=20_000)
    a = ap.parse_args()

    seg = Segment.from_mb(32)
    locks = LockSet(256)
    table = SharedHash(seg, 65536, locks)
    counters = Counters(seg, 16, locks)
    stats = Statistics(seg)
    keys = make_keys()
    for k in keys:
        table.put(k, VALUE)

    def build(seed: int) -> dict:
        return workloads(table, counters, stats, seg, keys, seed)

    print(f"shared memory containers, {a.rounds} rounds x {a.ops} ops, wall time per op "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    loads = build(1)
    show("one process:", {name: timed(fn, a.ops, a.rounds) for name, fn in loads.items()})
    names = list(loads)
    show("two processes at once, same table (per op, as each process sees it):",
         run_children(names, a.ops, a.rounds, build))
    before = counters.get(0)
    print(f"  (check: records {len(table)}, counter 0 = {before}, "
          f"segment used {seg.info()['real_used_size'] // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
