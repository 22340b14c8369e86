"""Registrations are not lost: a real server (2 receivers), SIPp, a real DB.

* Nothing lost at shutdown: SIPp registers unique users at a steady rate
  while the test stops the server with SIGTERM. Every REGISTER SIPp saw a
  200 for must be in the `location` table once the server has exited
  (db_mode 1 wrote it at once, db_mode 2 at the latest in the master's
  shutdown flush), on SQLite and MariaDB; a server started again on the
  same DB shows every one of them in MI ul_dump.
* The DB goes away: the server reaches MariaDB through a TCP forwarder
  the test owns (`DbLink`), so the test can cut it (connections closed,
  new ones refused), stall it (connections accepted, nothing answered)
  and restore it. With usrloc db_mode 1, REGISTERs keep getting 200 from
  memory while the DB is cut, no process dies, and after the restore the
  contacts reach the DB (the ones saved during the cut too: the timer
  retries them). auth_db answers a REGISTER with credentials with
  `500 Server Internal Error` (1.6) when its query fails, within the
  driver's timeout when the DB hangs, and 200 again after the restore.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import selectors
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sipserver.ctl.db import create_database, drop_database
from sipserver.ctl.mi_client import MIClientError, fifo_call
from sipserver.ctl.users import credentials
from sipserver.db.api import DbGoneError
from tests.dbfixtures import MYSQL_SERVER, connect, create_schema, server_url

from .server import SipServer, alive, free_port, udp_exchange
from .sipp import SCENARIOS, have_sipp

pytestmark = pytest.mark.skipif(not have_sipp(), reason="sipp (sip-tester) is not installed")

CFG = """
log_stderror=yes
debug=2
children=2
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "signaling.so"
loadmodule "@DBMOD@.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "mi_fifo.so"
@EXTRA@
modparam("mi_fifo", "fifo_name", "@FIFO@")
modparam("mi_fifo", "reply_dir", "@DIR@/")
modparam("usrloc", "db_url", "@DB@")
modparam("usrloc", "db_mode", @MODE@)
modparam("usrloc", "timer_interval", @TIMER@)
route {
    if (method == "OPTIONS") {
        sl_send_reply("200", "Alive");
        exit;
    }
    if (method != "REGISTER") {
        sl_send_reply("404", "Not here");
        exit;
    }
    @AUTH@
    save("location");
}
"""

# users whose name starts with "auth" must authenticate first (test_db_cut_auth_db)
AUTH_EXTRA = """
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("db_mysql", "timeout_interval", 1)
modparam("auth_db", "db_url", "@DB@")
"""
AUTH_ROUTE = """
    if ($tU =~ "^auth") {
        if (!www_authorize("", "subscriber")) {
            www_challenge("", "1");
            exit;
        }
        consume_credentials();
    }
"""


def config(tmp: Path, db_url: str, mode: int, timer: int = 60, auth: bool = False) -> str:
    dbmod = "db_sqlite" if db_url.startswith("sqlite") else "db_mysql"
    return (CFG.replace("@EXTRA@", AUTH_EXTRA if auth else "")
            .replace("@AUTH@", AUTH_ROUTE if auth else "")
            .replace("@DBMOD@", dbmod).replace("@DB@", db_url)
            .replace("@FIFO@", str(tmp / "sipserver_fifo")).replace("@DIR@", str(tmp))
            .replace("@MODE@", str(mode)).replace("@TIMER@", str(timer)))


# ---------------------------------------------------------------- databases


def _mysql_db() -> Iterator[str]:
    """A fresh MariaDB database (named as tests/dbfixtures.py names them, so a
    killed run's leftover is swept), dropped afterwards."""
    url = server_url("mysql", f"sipt_regpersist_p{os.getpid()}_{uuid.uuid4().hex[:8]}")
    try:
        create_database(url)
    except DbGoneError as e:
        pytest.skip(f"mysql server not reachable: {e}")
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the engine named by the parameter."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'ul.db'}"
        return
    yield from _mysql_db()


@pytest.fixture
def mysql_db() -> Iterator[str]:
    yield from _mysql_db()


def location_rows(url: str) -> list[tuple[str, str]]:
    con = connect(url)
    try:
        return [(str(u), str(c)) for u, c in
                con.query("location", columns=["username", "contact"]).rows]
    finally:
        con.close()


# ---------------------------------------------------------------- SIPp


class RegisterLoad:
    """SIPp registering users `<prefix>0..<prefix>N-1` (one new AOR per call)
    in the background; `confirmed()` lists the (user, contact) pairs SIPp
    got a 200 for, from the log lines the scenario writes."""

    def __init__(self, tmp: Path, port: int, n: int, rate: int, prefix: str = "user") -> None:
        self.tmp = tmp
        self.n = n
        users = tmp / "users.csv"
        users.write_text("SEQUENTIAL\n" + "".join(f"{prefix}{i};\n" for i in range(n)))
        self.log = tmp / "sipp_logs.log"
        self.stat = tmp / "sipp_stat.csv"
        timeout = int(n / rate) + 20
        self.proc = subprocess.Popen(
            ["sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "persist_register.xml"),
             "-inf", str(users), "-i", "127.0.0.1", "-p", str(free_port()),
             "-m", str(n), "-r", str(rate),
             "-l", str(rate * 3), "-nostdin", "-timeout", f"{timeout}s",
             "-trace_logs", "-log_file", str(self.log),
             "-trace_stat", "-stf", str(self.stat), "-fd", "1",
             "-trace_err", "-error_file", str(tmp / "sipp_err.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        self.deadline = time.monotonic() + timeout + 10

    def wait(self) -> int:
        try:
            return self.proc.wait(max(self.deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("SIPp did not finish in time") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def confirmed(self) -> list[tuple[str, str]]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(r"^REGISTERED (\S+) (\S+)$", text, re.M)

    def counters(self) -> dict[str, int]:
        lines = self.stat.read_text().splitlines()
        head = lines[0].rstrip(";").split(";")
        last = lines[-1].rstrip(";").split(";")
        values = dict(zip(head, last, strict=False))
        return {"successful": int(values["SuccessfulCall(C)"]),
                "failed": int(values["FailedCall(C)"])}


# ---------------------------------------------------------------- MI


def ul_dump(tmp: Path) -> dict[str, list[tuple[str, str]]]:
    """AOR -> [(contact, state)] from MI ul_dump over the server's FIFO (the
    MI process may still be creating it when the receivers already answer)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            reply = fifo_call(str(tmp / "sipserver_fifo"), "ul_dump", [], reply_dir=f"{tmp}/",
                              timeout=10).decode()
            break
        except MIClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert reply.startswith("200 "), reply[:300]
    out: dict[str, list[tuple[str, str]]] = {}
    aor = ""
    contact = ""
    for line in reply.splitlines():
        m = re.match(r"\s*(AOR|Contact|State):: (\S+)", line)
        if m is None:
            continue
        kind, value = m.groups()
        if kind == "AOR":
            aor = value
            out[aor] = []
        elif kind == "Contact":
            contact = value
        else:
            out[aor].append((contact, value))
    return out


# ---------------------------------------------------------------- nothing lost


@pytest.mark.parametrize(
    ("db", "mode", "timer"),
    [("sqlite", 2, 60), ("sqlite", 1, 60), ("mysql", 2, 60), ("mysql", 1, 60),
     ("mysql", 2, 1)],
    ids=["sqlite-wb", "sqlite-wt", "mysql-wb", "mysql-wt", "mysql-wb-timer1s"],
    indirect=["db"])
def test_sigterm_under_load_loses_no_confirmed_registration(
        tmp_path: Path, db: str, mode: int, timer: int) -> None:
    """db_mode 2 with timer_interval 60: every row comes from the shutdown
    flush; with 1 s the timer writes while the load runs and may be killed
    half-way (the flush then replaces what it wrote)."""
    create_schema(db, ["location"])
    n, rate = 600, 150
    srv = SipServer(tmp_path, config(tmp_path, db, mode, timer)).start()
    load = RegisterLoad(tmp_path, srv.port, n, rate)
    try:
        time.sleep(n / rate / 2)
        code = srv.stop()  # SIGTERM; fails if a child outlives the master
        load.wait()
    finally:
        load.stop()
        srv.stop()
    log = srv.log()
    assert code == 0, log
    assert "could not be written" not in log and "Traceback" not in log, log

    confirmed = load.confirmed()
    counters = load.counters()
    assert counters["successful"] == len(confirmed), (counters, len(confirmed))
    # the SIGTERM landed in the middle of the run
    assert n // 5 <= len(confirmed) < n, (len(confirmed), counters, log)

    rows = location_rows(db)
    assert len(rows) == len(set(rows)), "a contact was written twice"
    assert len({u for u, _ in rows}) == len(rows), "an AOR got two contacts"
    stored = set(rows)
    lost = [c for c in confirmed if c not in stored]
    assert not lost, f"{len(lost)} of {len(confirmed)} confirmed registrations lost: {lost[:5]}"
    # no row that SIPp did not send (a REGISTER processed just before the
    # SIGTERM may be stored without its 200 having reached SIPp)
    assert all(re.fullmatch(r"user(\d+)", u) and int(u[4:]) < n for u, _ in rows), rows[:5]

    (tmp_path / "again").mkdir()
    again = SipServer(tmp_path / "again", config(tmp_path, db, mode, timer),
                      port=srv.port).start()
    try:
        dumped = ul_dump(tmp_path)
    finally:
        assert again.stop() == 0
    assert {(aor, c) for aor, cs in dumped.items() for c, _ in cs} == stored
    assert {state for cs in dumped.values() for _, state in cs} == {"CS_SYNC"}
    assert "contacts loaded from table location" in again.log()


# ---------------------------------------------------------------- the DB goes away


class DbLink(threading.Thread):
    """A TCP forwarder on loopback between the server and the real DB.

    `cut()` closes every connection and closes each new one at once (the
    DB went down); `stall()` drops the DB side but keeps the server's
    side open, unanswered, and holds new connections the same way (the DB
    host hangs); `restore()` forwards again. All socket work happens in
    the forwarder's thread; the calls return once it has been done.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.mode = "open"
        self.peer: dict[socket.socket, socket.socket] = {}  # both directions
        self.upstream: set[socket.socket] = set()  # the DB sides
        self.held: list[socket.socket] = []
        self.refused = 0  # connections closed or held since the last restore
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._cmds: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self._stopped = False
        self.start()

    def run(self) -> None:
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        while not self._stopped:
            for key, _ in self.sel.select(0.5):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._wake_r.recv(64)
                    self._apply()
                else:
                    self._forward(key.fileobj)  # type: ignore[arg-type]
        self._drop_all()
        self.sel.close()
        self.listener.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        if self.mode == "cut":
            self.refused += 1
            conn.close()
            return
        if self.mode == "stall":
            self.refused += 1
            self.held.append(conn)
            return
        try:
            up = socket.create_connection(self.target, timeout=2)
        except OSError:
            conn.close()
            return
        conn.setblocking(True)
        self.peer[conn] = up
        self.peer[up] = conn
        self.upstream.add(up)
        self.sel.register(conn, selectors.EVENT_READ, "data")
        self.sel.register(up, selectors.EVENT_READ, "data")

    def _forward(self, s: socket.socket) -> None:
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        other = self.peer.get(s)
        if other is None:
            return
        if data:
            try:
                other.sendall(data)
                return
            except OSError:
                pass
        self._close_pair(s)

    def _close_pair(self, s: socket.socket) -> None:
        for x in (s, self.peer.pop(s, None)):
            if x is None:
                continue
            self.peer.pop(x, None)
            self.upstream.discard(x)
            try:
                self.sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _drop_all(self) -> None:
        for s in list(self.peer):
            self._close_pair(s)
        for s in self.held:
            s.close()
        self.held = []

    def _apply(self) -> None:
        while not self._cmds.empty():
            mode, done = self._cmds.get()
            if mode == "stall":
                # the server's ends stay open and unanswered
                for up in list(self.upstream):
                    s = self.peer.pop(up)
                    self.peer.pop(s, None)
                    self.sel.unregister(s)
                    self.held.append(s)
                    self._close_pair(up)
            else:
                self._drop_all()
            if mode == "open":
                self.refused = 0
            self.mode = mode
            done.set()

    def _command(self, mode: str) -> None:
        done = threading.Event()
        self._cmds.put((mode, done))
        self._wake_w.send(b"x")
        assert done.wait(5), "DbLink thread does not answer"

    def cut(self) -> None:
        self._command("cut")

    def stall(self) -> None:
        self._command("stall")

    def restore(self) -> None:
        self._command("open")

    def close(self) -> None:
        self._stopped = True
        self._wake_w.send(b"x")
        self.join(5)
        self._wake_r.close()
        self._wake_w.close()


def linked(url: str) -> tuple[DbLink, str]:
    """A DbLink to the MariaDB server of `url`, and `url` through it."""
    real = urlsplit(MYSQL_SERVER)
    link = DbLink((real.hostname or "127.0.0.1", real.port or 3306))
    u = urlsplit(url)
    return link, f"mysql://{u.username or 'root'}@127.0.0.1:{link.port}{u.path}"


def all_alive(srv: SipServer, kids: list[int]) -> bool:
    return srv.proc is not None and srv.proc.poll() is None and all(alive(k) for k in kids)


def test_db_cut_registrations_answered_from_memory_and_synced_after_restore(
        tmp_path: Path, mysql_db: str) -> None:
    create_schema(mysql_db, ["location"])
    link, via = linked(mysql_db)
    srv = SipServer(tmp_path, config(tmp_path, via, mode=1, timer=1))
    n, rate = 250, 50
    load = None
    try:
        srv.start()
        kids = srv.children()
        load = RegisterLoad(tmp_path, srv.port, n, rate)
        time.sleep(1.2)
        link.cut()
        time.sleep(2.0)
        assert link.refused > 0, "nobody tried the DB while it was cut"
        link.restore()
        restored = time.monotonic()
        assert load.wait() == 0
        assert all_alive(srv, kids), srv.log()
        counters = load.counters()
        assert counters == {"successful": n, "failed": 0}, (counters, srv.log())
        assert len(load.confirmed()) == n
        # the cut was seen by the write-through path
        assert "usrloc: insert of a contact failed" in srv.log() \
            or "usrloc: cannot connect" in srv.log(), srv.log()

        # every contact reaches the DB: the ones saved during the cut through
        # the timer's retries (a process waits 5 s after a DB failure)
        want = set(load.confirmed())
        deadline = restored + 12
        rows: set[tuple[str, str]] = set()
        while time.monotonic() < deadline:
            rows = set(location_rows(mysql_db))
            if rows >= want:
                break
            time.sleep(0.5)
        assert rows >= want, f"{len(want - rows)} contacts never reached the DB"

        # and a new registration is written through at once (once the 5 s
        # without DB attempts that followed each process's last failure, at
        # the latest at the restore, are over)
        time.sleep(max(0.0, restored + 6.5 - time.monotonic()))
        reply = udp_exchange(srv.port, register("late1", srv.port))
        assert reply is not None and reply.startswith(b"SIP/2.0 200 OK\r\n"), reply
        assert ("late1", "sip:late1@127.0.0.1:5999") in location_rows(mysql_db)
        assert all_alive(srv, kids), srv.log()
    finally:
        if load is not None:
            load.stop()
        code = srv.stop()
        link.close()
    assert code == 0, srv.log()
    assert "Traceback" not in srv.log(), srv.log()


# ---------------------------------------------------------------- auth_db


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def register(user: str, port: int, cseq: int = 1, auth: str = "") -> bytes:
    return (
        f"REGISTER sip:example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-{user}-{cseq}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@example.com>;tag=t{cseq}\r\n"
        f"To: <sip:{user}@example.com>\r\n"
        f"Call-ID: persist-{user}@127.0.0.1\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:5999>\r\n"
        f"{auth}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answer(user: str, password: str, challenge: bytes) -> str:
    m = re.search(rb'WWW-Authenticate: Digest realm="example.com", nonce="([^"]+)"', challenge)
    assert m is not None, challenge
    nonce = m.group(1).decode()
    ha1 = md5(f"{user}:example.com:{password}")
    ha2 = md5("REGISTER:sip:example.com")
    resp = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
    return (f'Authorization: Digest username="{user}", realm="example.com", '
            f'nonce="{nonce}", uri="sip:example.com", qop=auth, nc=00000001, '
            f'cnonce="c0ffee", response="{resp}"\r\n')


def authed_register(port: int, user: str, password: str, cseq: int,
                    timeout: float = 8.0) -> tuple[bytes | None, float]:
    """Challenge, then the answer: (the reply to the answer, seconds it took)."""
    challenge = udp_exchange(port, register(user, port, cseq))
    assert challenge is not None and challenge.startswith(b"SIP/2.0 401 Unauthorized\r\n"), \
        challenge
    t0 = time.monotonic()
    reply = udp_exchange(port, register(user, port, cseq + 1, answer(user, password, challenge)),
                         timeout=timeout)
    return reply, time.monotonic() - t0


def test_db_cut_auth_db_answers_500_then_200_after_restore(
        tmp_path: Path, mysql_db: str) -> None:
    create_schema(mysql_db, ["location", "subscriber"])
    con = connect(mysql_db)
    try:
        ha1, ha1b = credentials("authbob", "example.com", "s3cret")
        con.insert("subscriber", ("username", "domain", "password", "ha1", "ha1b"),
                   ("authbob", "example.com", "", ha1, ha1b))
    finally:
        con.close()
    link, via = linked(mysql_db)
    srv = SipServer(tmp_path, config(tmp_path, via, mode=1, timer=1, auth=True))
    try:
        srv.start()
        kids = srv.children()
        ok, _ = authed_register(srv.port, "authbob", "s3cret", 1)
        assert ok is not None and ok.startswith(b"SIP/2.0 200 OK\r\n"), (ok, srv.log())

        link.cut()  # the DB is down: the query fails at once
        reply, took = authed_register(srv.port, "authbob", "s3cret", 3)
        assert reply is not None and reply.startswith(
            b"SIP/2.0 500 Server Internal Error\r\n"), (reply, srv.log())
        assert took < 3, took
        assert all_alive(srv, kids), srv.log()

        link.restore()
        ok, _ = authed_register(srv.port, "authbob", "s3cret", 5)
        assert ok is not None and ok.startswith(b"SIP/2.0 200 OK\r\n"), (ok, srv.log())

        link.stall()  # the DB host hangs: the driver's 1 s timeouts end the wait
        reply, took = authed_register(srv.port, "authbob", "s3cret", 7)
        assert reply is not None and reply.startswith(
            b"SIP/2.0 500 Server Internal Error\r\n"), (reply, srv.log())
        assert took < 5, took
        assert all_alive(srv, kids), srv.log()

        link.restore()
        ok, _ = authed_register(srv.port, "authbob", "s3cret", 9)
        assert ok is not None and ok.startswith(b"SIP/2.0 200 OK\r\n"), (ok, srv.log())
        assert b"\r\nContact: <sip:authbob@127.0.0.1:5999>;expires=" in ok
        assert ("authbob", "sip:authbob@127.0.0.1:5999") in location_rows(mysql_db)
        assert "auth_db: failed to query database" in srv.log()
        assert all_alive(srv, kids), srv.log()
    finally:
        code = srv.stop()
        link.close()
    assert code == 0, srv.log()


def test_dblink_forwards_cuts_and_restores(mysql_db: str) -> None:
    """The forwarder itself: a query through it works, fails while cut, works after."""
    link, via = linked(mysql_db)
    try:
        con = connect(via)
        assert con.raw_query("SELECT 1").rows == [(1,)]
        link.cut()
        with pytest.raises(DbGoneError):
            con.raw_query("SELECT 1")
        link.restore()
        assert con.raw_query("SELECT 2").rows == [(2,)]
        con.close()
    finally:
        link.close()

