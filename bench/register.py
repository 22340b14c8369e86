#!/usr/bin/env python3
"""REGISTER/s with digest authentication through a real sipserver, per DB engine and usrloc db_mode.

    .venv/bin/python bench/register.py [--engines sqlite,mysql] [--modes 0,1]
        [--children 2] [--users 100000] [--rates 50,100,...] [--port 5160]

For each engine (SQLite file, MariaDB at --mysql) and usrloc db_mode
(0 memory only, 1 write-through), in a fresh database: the `subscriber`
and `location` tables (`sipctl db`'s schema), --users subscribers written
with the DB API (ha1/ha1b as `sipctl add` computes them), then a server
(`--children` receivers, auth_db against `subscriber`, save("location"))
and SIPp running tests/integration/scenarios/bench_register_auth.xml:
REGISTER, 401, REGISTER with credentials, 200. Every step gets its own
slice of the subscribers (an injection file), so each registration is a
new binding (an INSERT in db_mode 1), never a refresh.

The method is ../shared/bench/run-sip-bench's: a warm-up step, a CPU step
at a fixed rate (server CPU seconds per 1,000 registrations: utime+stime
of the server's whole process tree from /proc), then a rate ladder up to
the first step that is not sustained and a few bisection steps. A step at
R registrations/s (R*--step-seconds of them) is sustained when SIPp exits
0 with every registration successful, none failed, no unexpected message,
retransmissions under 1 % of the REGISTERs sent (2 per registration), at
least 95 % of the offered rate achieved, and no server process died.

Prints one line per step and per configuration a line

    RESULT engine=sqlite db_mode=0 max_reg_s=N cpu_s_per_1k=X ...

(a registration is 2 REGISTERs and 2 replies). A figure, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sipserver.ctl.db import create_database, create_tables, drop_database, open_db
from sipserver.ctl.users import credentials

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "integration" / "scenarios" / "bench_register_auth.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DOMAIN = "example.com"

CFG = """
debug=-1
log_stderror=yes
children=@CHILDREN@
listen=udp:127.0.0.1:@PORT@
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no

loadmodule "signaling.so"
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "@DBMOD@.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("auth_db", "db_url", "@DB@")
modparam("usrloc", "db_url", "@DB@")
modparam("usrloc", "db_mode", @MODE@)

route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (is_method("REGISTER")) {
        if (!www_authorize("", "subscriber")) {
            www_challenge("", "1");
            exit;
        }
        consume_credentials();
        if (!save("location"))
            sl_reply_error();
        exit;
    }
    sl_send_reply("404", "Not here");
}
"""


# ---------------------------------------------------------------- /proc


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime ticks) of pid, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if rest[0] == "Z":
        return None
    return int(rest[1]), int(rest[11]) + int(rest[12])


def tree_cpu(root: int) -> tuple[int, int]:
    """CPU ticks of `root` and all its descendants, and how many processes."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := proc_stat(int(name))) is not None:
            table[int(name)] = st
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    total, count, todo, seen = 0, 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        count += 1
        todo.extend(kids.get(pid, []))
    return total, count


def udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- database


@contextlib.contextmanager
def fresh_db(engine: str, mysql: str, work: Path) -> Iterator[str]:
    """A new empty database of `engine` (dropped afterwards)."""
    if engine == "sqlite":
        yield f"sqlite://{work / 'bench.db'}"
        return
    url = f"{mysql.rstrip('/')}/sipbench_p{os.getpid()}_{uuid.uuid4().hex[:8]}"
    create_database(url)
    try:
        yield url
    finally:
        drop_database(url, force=True)


def add_subscribers(url: str, n: int) -> float:
    """n subscribers u000000.. (password p000000..) in batches; seconds taken."""
    t0 = time.perf_counter()
    create_tables(url, ["subscriber", "location"])
    con = open_db(url)
    try:
        batch = 150  # 750 parameters: under old SQLite's 999
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(start + batch, n)):
                user, pw = f"u{i:06d}", f"p{i:06d}"
                ha1, ha1b = credentials(user, DOMAIN, pw)
                rows.append((user, DOMAIN, pw, ha1, ha1b))
            marks = ",".join(["(?,?,?,?,?)"] * len(rows))
            con.raw_query("INSERT INTO subscriber (username, domain, password, ha1, ha1b) "
                          f"VALUES {marks}", [v for r in rows for v in r])
    finally:
        con.close()
    return time.perf_counter() - t0


# ---------------------------------------------------------------- one configuration


class Run:
    """One server (engine, db_mode) and the SIPp steps against it."""

    def __init__(self, o: argparse.Namespace, engine: str, mode: int, url: str,
                 work: Path) -> None:
        self.o = o
        self.engine = engine
        self.mode = mode
        self.url = url
        self.work = work
        self.next_user = 0
        self.wrapped = False
        self.registered = 0  # successful registrations over all steps
        self.step_no = 0
        self.server: subprocess.Popen[bytes] | None = None
        self.nprocs = 0

    # -- server
    def start(self) -> None:
        o = self.o
        cfg = self.work / "bench.cfg"
        dbmod = "db_sqlite" if self.engine == "sqlite" else "db_mysql"
        cfg.write_text(CFG.replace("@CHILDREN@", str(o.children)).replace("@PORT@", str(o.port))
                       .replace("@DBMOD@", dbmod).replace("@DB@", self.url)
                       .replace("@MODE@", str(self.mode)))
        self.log = open(self.work / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "sipserver.cli", "-f", str(cfg), "-F", "-E",
             "-n", str(o.children), "-m", str(o.shm_mb)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + 20
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.3)
            probe = (f"OPTIONS sip:127.0.0.1:{o.port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP 127.0.0.1:{s.getsockname()[1]};branch=z9hG4bK-probe\r\n"
                     "From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\n"
                     "Call-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
            while True:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start, see {self.work / 'server.log'}")
                s.sendto(probe, ("127.0.0.1", o.port))
                try:
                    s.recvfrom(65535)
                    break
                except TimeoutError:
                    continue
        time.sleep(1.0)
        self.nprocs = tree_cpu(self.server.pid)[1]

    def stop(self) -> None:
        if self.server is None:
            return
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)  # its own session: only its tree
                self.server.wait(5)
        self.log.close()
        self.server = None

    # -- users
    def users_file(self, n: int) -> Path:
        """An injection file with the next n subscribers (wrapping around if
        needed): the user, and the [authentication] keyword with its password."""
        path = self.work / f"users_{self.step_no:02d}.csv"
        lines = ["SEQUENTIAL"]
        for _ in range(n):
            if self.next_user >= self.o.users:
                self.next_user = 0
                self.wrapped = True
            i = self.next_user
            self.next_user += 1
            lines.append(f"u{i:06d};[authentication username=u{i:06d} password=p{i:06d}];")
        path.write_text("\n".join(lines) + "\n")
        return path

    # -- one SIPp step
    def step(self, rate: int, calls: int, label: str) -> dict[str, object]:
        o = self.o
        assert self.server is not None
        self.step_no += 1
        tag = f"{self.step_no:02d}-{label}-r{rate}"
        stf = self.work / f"uac_{tag}_stat.csv"
        errf = self.work / f"uac_{tag}_err.log"
        timeout = int(calls / rate * 1.5 + 10)
        argv = ["sipp", f"127.0.0.1:{o.port}", "-sf", str(SCENARIO),
                "-inf", str(self.users_file(calls)), "-i", "127.0.0.1", "-p", str(o.port + 10),
                "-r", str(rate), "-rp", "1000", "-m", str(calls),
                "-l", str(max(int(calls / rate * 1.2) + 1, 50, rate * 3)),
                "-nostdin", "-max_recv_loops", "10000", "-max_sched_loops", "10000",
                "-buff_size", "4194304", "-timeout", f"{timeout}s", "-timeout_error",
                "-trace_stat", "-stf", str(stf), "-fd", "1", "-trace_err", "-error_file", str(errf)]
        if self.step_no == 1:
            print("# uac:", " ".join(argv), flush=True)
        cpu0, n0 = tree_cpu(self.server.pid)
        t0 = time.monotonic()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=self.work, timeout=timeout + 30, check=False)
        wall = time.monotonic() - t0
        cpu1, n1 = tree_cpu(self.server.pid)
        s = read_stats(stf)
        ok_calls = ival(s, "SuccessfulCall(C)")
        self.registered += ok_calls
        failed = ival(s, "FailedCall(C)")
        unexpected = ival(s, "FailedUnexpectedMessage(C)") + ival(s, "OutOfCallMsgs(C)")
        retrans = ival(s, "Retransmissions(C)")
        retrans_pct = 100.0 * retrans / max(calls * 2, 1)
        achieved = min(ok_calls, calls) / max(wall - 0.1, 1e-3)
        cpu_s = (cpu1 - cpu0) / CLK_TCK
        why = []
        if p.returncode != 0:
            why.append(f"rc={p.returncode}")
        if ok_calls != calls:
            why.append(f"success={ok_calls}/{calls}")
        if failed:
            why.append(f"failed={failed}")
        if unexpected:
            why.append(f"unexpected={unexpected}")
        if retrans_pct >= 1.0:
            why.append(f"retrans={retrans_pct:.2f}%")
        if achieved < 0.95 * rate:
            why.append(f"achieved={achieved:.0f}<{0.95 * rate:.0f}")
        if n1 < max(n0, self.nprocs) or self.server.poll() is not None:
            why.append(f"server processes {n0}->{n1}")
        r = dict(rate=rate, calls=calls, ok=not why, wall=wall, achieved=achieved,
                 cpu_s=cpu_s, why=",".join(why))
        print(f"step {self.step_no:2d} {label:7s} rate={rate:<5d} regs={calls:<6d} "
              f"{'OK' if not why else 'FAIL':4s} wall={wall:.2f}s achieved={achieved:.0f}/s "
              f"retrans={retrans_pct:.2f}% rtt={stats_ms(s, 'ResponseTime1(C)')}ms "
              f"srv_cpu={100 * cpu_s / max(wall, 1e-3):.0f}% {r['why']}", flush=True)
        time.sleep(o.settle)
        return r

    def ncalls(self, rate: int) -> int:
        return int(min(max(rate * self.o.step_seconds, self.o.min_calls), self.o.max_calls))

    def bench(self) -> dict[str, object]:
        o = self.o
        warm = self.step(o.warmup_rate, o.warmup_calls, "warmup")
        if not warm["ok"]:
            raise SystemExit(f"warm-up failed ({warm['why']}): see {self.work}")
        cpu = self.step(o.cpu_rate, o.cpu_calls, "cpu")
        best, fail = 0, None
        rates = [int(x) for x in o.rates.split(",") if x.strip()]
        for rate in rates:
            if self.step(rate, self.ncalls(rate), "search")["ok"]:
                best = rate
            else:
                fail = rate
                break
        lo, hi = best, fail
        for _ in range(o.refine):
            if not lo or not hi or hi - lo <= max(lo * 0.05, 1):
                break
            mid = (lo + hi) // 2
            if self.step(mid, self.ncalls(mid), "refine")["ok"]:
                lo = best = mid
            else:
                hi = mid
        rows = -1
        if self.mode == 1:  # write-through: every registration is a row by now
            con = open_db(self.url)
            try:
                rows = len(con.query("location", columns=["id"]).rows)
            finally:
                con.close()
        return dict(max_reg_s=best, first_fail=hi,
                    cpu_s_per_1k=round(float(cpu["cpu_s"]) / o.cpu_calls * 1000, 3),
                    cpu_step_ok=int(bool(cpu["ok"])), capped=int(best == max(rates)),
                    users_reused=int(self.wrapped), registered=self.registered,
                    location_rows=rows)


def read_stats(path: Path) -> dict[str, str]:
    """The last complete row of a SIPp -trace_stat file."""
    try:
        lines = path.read_text(errors="replace").split("\n")
    except OSError:
        return {}
    if not lines or not lines[0].startswith("StartTime"):
        return {}
    head = lines[0].rstrip(";").split(";")
    for line in reversed(lines[1:]):
        vals = line.rstrip(";").split(";")
        if len(vals) >= len(head) - 1 and len(vals) > 60:
            return dict(zip(head, vals, strict=False))
    return {}


def ival(stats: dict[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


def stats_ms(stats: dict[str, str], key: str) -> str:
    try:
        h, m, s, us = stats.get(key, "").split(":")
        return f"{(int(h) * 3600 + int(m) * 60 + int(s)) * 1000 + int(us) / 1000:.2f}"
    except ValueError:
        return "?"


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="sqlite,mysql")
    ap.add_argument("--modes", default="0,1", help="usrloc db_mode values")
    ap.add_argument("--mysql", default=os.environ.get("SIPSERVER_TEST_MYSQL",
                                                      "mysql://root@127.0.0.1:3306"))
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--shm-mb", type=int, default=128, help="server -m (shared memory, MB)")
    ap.add_argument("--users", type=int, default=100_000, help="subscribers to create")
    ap.add_argument("--rates", default="50,100,200,300,400,500,700,1000,1400,2000")
    ap.add_argument("--step-seconds", type=float, default=6.0)
    ap.add_argument("--min-calls", type=int, default=300)
    ap.add_argument("--max-calls", type=int, default=20_000)
    ap.add_argument("--refine", type=int, default=3)
    ap.add_argument("--warmup-rate", type=int, default=50)
    ap.add_argument("--warmup-calls", type=int, default=100)
    ap.add_argument("--cpu-rate", type=int, default=100)
    ap.add_argument("--cpu-calls", type=int, default=1500)
    ap.add_argument("--settle", type=float, default=1.5, help="pause between steps")
    ap.add_argument("--port", type=int, default=5160, help="server port (SIPp: port+10)")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    o = ap.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp (Debian package sip-tester) is not installed")
    for port in (o.port, o.port + 10):
        if not udp_port_free(port):
            raise SystemExit(f"UDP port {port} is in use (use --port)")
    results = []
    for engine in o.engines.split(","):
        for mode in (int(m) for m in o.modes.split(",")):
            work = Path(tempfile.mkdtemp(prefix=f"regbench-{engine}-m{mode}-"))
            print(f"# {engine} db_mode={mode}: work directory {work}", flush=True)
            with fresh_db(engine, o.mysql, work) as url:
                took = add_subscribers(url, o.users)
                print(f"# {o.users} subscribers written in {took:.1f}s", flush=True)
                run = Run(o, engine, mode, url, work)
                try:
                    run.start()
                    res = run.bench()
                finally:
                    run.stop()
            line = (f"RESULT engine={engine} db_mode={mode} children={o.children} "
                    + " ".join(f"{k}={v}" for k, v in res.items()))
            print(line, flush=True)
            results.append(line)
            if not o.keep:
                shutil.rmtree(work, ignore_errors=True)
    print("# summary")
    for line in results:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
