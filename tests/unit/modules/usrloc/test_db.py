"""usrloc's DB modes on real databases (SQLite, MariaDB, PostgreSQL via the
`db_url` fixture): rows written, flushed, reloaded after a restart, read in
db_mode 3, and a DB that goes away and comes back."""

from __future__ import annotations

import datetime
import os
import signal
import time
from typing import Any

import pytest

from sipserver.db.api import DbBinding, DbConnection, DbGoneError
from sipserver.modules.usrloc import CS_DIRTY, CS_NEW, CS_SYNC, UL_EXPIRED_TIME, ContactInfo

from ....dbfixtures import connect, create_schema
from .helpers import NOW, Clock, fifo, info, mi, runner, save


@pytest.fixture
def db(db_url: str, db_engine: str) -> dict[str, Any]:
    """An empty `location` table on the engine, and how to start usrloc on it."""
    create_schema(db_url, ["location"])
    con = connect(db_url)
    con.delete("location")
    state: dict[str, Any] = {"url": db_url, "con": con, "driver": f"db_{db_engine}",
                             "started": []}
    yield state
    for ul in state["started"]:  # every connection closed: the database can be dropped
        if ul.db is not None:
            ul.db.close()
    con.close()


def start(db: dict[str, Any], mode: int, clock: Clock | None = None, **params: Any):
    r, ul = runner(modules=(db["driver"], "usrloc"), clock=clock or Clock(), db_mode=mode,
                   db_url=db["url"], **params)
    db["started"].append(ul)
    return r, ul


def rows(db: dict[str, Any]) -> list[dict[str, Any]]:
    res = db["con"].query("location", order="contact")
    return res.dicts()


def dt(t: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t)


def test_write_through_rows(db: dict[str, Any]) -> None:
    r, ul = start(db, 1)
    sock = r.rt.sockets[0]
    save(ul, "alice", "sip:alice@192.0.2.1", info(q=500, callid="c1", cseq=3, flags=0,
                                                  cflags=0x80000002, user_agent="UA/1",
                                                  sock=sock, received="sip:198.51.100.1:5060",
                                                  methods=0x1F))
    [row] = rows(db)
    assert {k: row[k] for k in ("username", "domain", "contact", "received", "path", "expires",
                                "callid", "cseq", "last_modified", "flags", "user_agent",
                                "socket", "methods")} == {
        "username": "alice", "domain": None, "contact": "sip:alice@192.0.2.1",
        "received": "sip:198.51.100.1:5060", "path": None, "expires": dt(NOW + 3600),
        "callid": "c1", "cseq": 3, "last_modified": dt(NOW), "flags": 0, "user_agent": "UA/1",
        "socket": "udp:127.0.0.1:5060", "methods": 31}
    assert float(row["q"]) == 0.5
    assert row["cflags"] & 0xFFFFFFFF == 0x80000002
    dom = ul.register_udomain("location")
    assert dom.get_urecord("alice").contacts[0].state == CS_SYNC
    # an update rewrites the row (the Call-ID of the binding stays)
    save(ul, "alice", "sip:alice@192.0.2.1", info(expires=60, q=1000, callid="c1", cseq=4))
    [row] = rows(db)
    assert (row["expires"], float(row["q"]), row["cseq"], row["received"], row["methods"],
            row["socket"]) == (dt(NOW + 60), 1.0, 4, None, None, None)
    # a permanent contact; then a delete removes its row
    save(ul, "alice", "sip:alice@192.0.2.2", info(expires=0, callid="c2"))
    assert [r_["expires"] for r_ in rows(db)] == [dt(NOW + 60), dt(0)]
    with dom.record("alice") as rec:
        rec.delete_ucontact(rec.contacts[0])
    assert [r_["contact"] for r_ in rows(db)] == ["sip:alice@192.0.2.2"]
    assert fifo(mi(r, "ul_rm", "location", "alice")) == b"200 OK\n\n"
    assert rows(db) == []


def test_write_through_use_domain_and_memory_only_flag(db: dict[str, Any]) -> None:
    r, ul = start(db, 1, use_domain=1)
    save(ul, "bob@example.com", "sip:bob@h", info())
    save(ul, "bob@example.com", "sip:bob@mem", info(flags=1, callid="c2"))  # FL_MEM: no row
    assert [(x["username"], x["domain"], x["contact"]) for x in rows(db)] == [
        ("bob", "example.com", "sip:bob@h")]
    assert fifo(mi(r, "ul_rm_contact", "location", "bob@example.com", "sip:bob@h")) == b"200 OK\n\n"
    assert rows(db) == []


def test_write_through_timer_deletes_expired_rows(db: dict[str, Any]) -> None:
    clock = Clock()
    r, ul = start(db, 1, clock)
    save(ul, "a", "sip:a@h", info(expires=10))
    save(ul, "a", "sip:b@h", info(expires=100, callid="c2"))
    clock.now += 11
    ul.synchronize_all()
    assert [x["contact"] for x in rows(db)] == ["sip:b@h"]
    assert r.rt.stats.value("location-expires") == 1


def test_write_back_flush_and_reload_after_restart(db: dict[str, Any]) -> None:
    clock = Clock()
    r, ul = start(db, 2, clock)
    dom = ul.register_udomain("location")
    save(ul, "a", "sip:a1@h", info(q=1000))
    save(ul, "a", "sip:a2@h", info(q=100, callid="c2", path="<sip:edge;lr>"))
    save(ul, "b", "sip:b@h", info(expires=0, user_agent="B"))
    assert rows(db) == []  # nothing written until the timer runs
    assert b"State:: CS_NEW" in fifo(mi(r, "ul_dump"))
    ul.synchronize_all()
    assert [x["contact"] for x in rows(db)] == ["sip:a1@h", "sip:a2@h", "sip:b@h"]
    assert all(c.state == CS_SYNC for c in dom.get_urecord("a").contacts)
    # update: dirty until the next flush
    save(ul, "a", "sip:a1@h", info(expires=500, cseq=2, q=1000))
    assert dom.get_urecord("a").contacts[0].state == CS_DIRTY
    assert rows(db)[0]["expires"] == dt(NOW + 3600)
    # delete of a synced contact: kept as "deleted" until the timer removes its row
    with dom.record("b") as rec:
        rec.delete_ucontact(rec.contacts[0])
    assert dom.get_urecord("b").contacts[0].expires == UL_EXPIRED_TIME
    assert b"Expires:: deleted" in fifo(mi(r, "ul_dump"))
    assert fifo(mi(r, "ul_flush")) == b"200 OK\n\n"
    assert [(x["contact"], x["expires"]) for x in rows(db)] == [
        ("sip:a1@h", dt(NOW + 500)), ("sip:a2@h", dt(NOW + 3600))]
    assert dom.get_urecord("b") is None
    # "restart": a new server loads the table into shared memory at start
    r2, ul2 = start(db, 2, Clock(NOW + 1))
    rec = ul2.register_udomain("location").get_urecord("a")
    assert [(c.contact, c.q, c.expires, c.cseq, c.path, c.state) for c in rec.contacts] == [
        ("sip:a1@h", 1000, NOW + 500, 2, "", CS_SYNC),
        ("sip:a2@h", 100, NOW + 3600, 1, "<sip:edge;lr>", CS_SYNC)]
    assert r2.rt.stats.value("location-contacts") == 2
    assert "2 contacts loaded from table location" in r2.log_text()


def test_write_back_shutdown_flushes_everything(db: dict[str, Any]) -> None:
    clock = Clock()
    r, ul = start(db, 2, clock)
    for i in range(30):
        save(ul, f"u{i}", "sip:x@h", info(callid=f"c{i}"))
    ul.synchronize_all()
    save(ul, "u0", "sip:x@h", info(callid="c0", cseq=2, expires=99))  # dirty
    save(ul, "late", "sip:late@h", info())  # new
    # a timer killed after writing a row, before marking the contact synced
    save(ul, "half", "sip:half@h", info())
    c = ul.register_udomain("location").get_urecord("half").contacts[0]
    assert ul.db.insert("location", c)
    module = r.compiled.registry.modules["usrloc"]
    module.exports.destroy(module)
    all_rows = rows(db)
    got = {x["username"]: x for x in all_rows}
    assert len(got) == len(all_rows) == 32  # no row twice
    assert got["u0"]["expires"] == dt(NOW + 99) and "late" in got and "half" in got


def test_write_back_nothing_lost_when_workers_are_killed(db: dict[str, Any]) -> None:
    """kill -TERM during load: workers die mid-save (maybe holding locks);
    the master's final flush writes every contact they had saved."""
    r, ul = start(db, 2)
    dom = ul.register_udomain("location")
    pids = []
    for w in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                i = 0
                while True:
                    save(ul, f"w{w}-{i}", "sip:x@h", info())
                    i += 1
                    time.sleep(0.001)  # a REGISTER every ms: a few hundred before the kill
            finally:
                os._exit(0)
        pids.append(pid)
    time.sleep(0.25)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    for pid in pids:
        os.waitpid(pid, 0)
    module = r.compiled.registry.modules["usrloc"]
    module.exports.destroy(module)  # frees the locks a dead worker may hold, then flushes
    in_memory = {rec.aor for rec in dom.records()}
    assert len(in_memory) > 10
    assert {x["username"] for x in rows(db)} == in_memory


def test_db_only_mode(db: dict[str, Any]) -> None:
    clock = Clock()
    r, ul = start(db, 3, clock)
    dom = ul.register_udomain("location")
    assert dom.table is None
    save(ul, "a", "sip:a1@h", info(q=100))
    save(ul, "a", "sip:a2@h", info(q=900, callid="c2"))
    assert len(rows(db)) == 2
    rec = dom.get_urecord("a")  # read from the DB each time, ordered by q
    assert [(c.contact, c.state) for c in rec.contacts] == [("sip:a2@h", CS_SYNC),
                                                             ("sip:a1@h", CS_SYNC)]
    save(ul, "a", "sip:a1@h", info(q=100, cseq=2, expires=20))
    assert rows(db)[0]["expires"] == dt(NOW + 20)
    assert fifo(mi(r, "ul_show_contact", "location", "a")).count(b"Contact::") == 2
    assert fifo(mi(r, "ul_dump")) == b"200 OK\nDomain:: location table=512 records=0\n\n"
    save(ul, "b", "sip:b@h", info(expires=0))
    clock.now += 30
    ul.synchronize_all()  # the timer drops expired rows; permanent ones stay
    assert [x["contact"] for x in rows(db)] == ["sip:a2@h", "sip:b@h"]
    nat = ul.get_all_ucontacts()
    assert [n.uri for n in nat] == ["sip:a2@h"]  # 1.6: expires > now, so not permanent ones
    assert fifo(mi(r, "ul_rm_contact", "location", "a", "sip:a2@h")) == b"200 OK\n\n"
    assert fifo(mi(r, "ul_rm", "location", "b")) == b"200 OK\n\n"
    assert rows(db) == []
    assert dom.get_urecord("a") is None


def test_version_and_table_checks(db: dict[str, Any]) -> None:
    db["con"].update("version", ["table_name"], None, ["location"], ["table_version"], [1004])
    try:
        with pytest.raises(ValueError, match="version"):
            start(db, 1)
    finally:
        db["con"].update("version", ["table_name"], None, ["location"], ["table_version"], [1005])
    with pytest.raises(ValueError, match="nosuch"):
        start(db, 1, user_column="nosuch")
    _r, ul = start(db, 0)  # memory only: the table is not looked at
    assert ul.db is None


def test_preload_skips_unusable_rows(db: dict[str, Any]) -> None:
    base = {"username": "u", "contact": "sip:u@h", "expires": dt(NOW + 60), "q": 1.0,
            "callid": "c", "cseq": 1, "flags": 0, "cflags": 0, "user_agent": "",
            "last_modified": dt(NOW), "socket": "udp:192.0.2.99:5060"}
    for change in ({}, {"username": ""}, {"contact": ""}, {"callid": "", "contact": "sip:c@h"}):
        row = {**base, **change}
        db["con"].insert("location", list(row), list(row.values()))
    r, ul = start(db, 1)
    rec = ul.register_udomain("location").get_urecord("u")
    assert [c.contact for c in rec.contacts] == ["sip:u@h"]
    assert rec.contacts[0].sock is None  # not one of our sockets
    assert rec.contacts[0].methods == 0xFFFFFFFF
    assert "row skipped" in r.log_text()


class Flaky(DbConnection):
    """A connection that fails as a vanished server does while `down` is set."""

    down = [False]

    def __init__(self, real: DbConnection) -> None:
        self.real = real

    def _call(self, name: str, *a: Any) -> Any:
        if self.down[0]:
            raise DbGoneError("server has gone away")
        return getattr(self.real, name)(*a)

    def query(self, *a: Any, **k: Any) -> Any:
        return self._call("query", *a)

    def insert(self, *a: Any) -> Any:
        return self._call("insert", *a)

    def update(self, *a: Any) -> Any:
        return self._call("update", *a)

    def delete(self, *a: Any) -> Any:
        return self._call("delete", *a)

    def close(self) -> None:
        self.real.close()


def flaky(ul: Any) -> list[bool]:
    b = ul.db.binding
    ul.db.binding = DbBinding(b.url, b.driver, b.caps, lambda u: Flaky(b.opener(u)))
    ul.db.close()
    Flaky.down[0] = False
    return Flaky.down


@pytest.mark.parametrize("mode", [1, 2])
def test_db_gone_then_back(db: dict[str, Any], mode: int) -> None:
    clock = Clock()
    r, ul = start(db, mode, clock)
    down = flaky(ul)
    dom = ul.register_udomain("location")
    save(ul, "a", "sip:a@h", info())
    ul.synchronize_all()
    assert len(rows(db)) == 1
    down[0] = True
    # memory keeps serving: saves work, lookups see them
    save(ul, "b", "sip:b@h", info())
    save(ul, "a", "sip:a@h", info(cseq=2, expires=77))
    with dom.record("a") as rec:
        pass
    assert dom.get_urecord("b").contacts[0].state == CS_NEW
    ul.synchronize_all()  # fails, logged, nothing lost
    assert "server has gone away" in r.log_text() or "failed" in r.log_text()
    assert dom.get_urecord("b").contacts[0].state == CS_NEW
    # a delete while the DB is away: hidden at once, its row removed later
    save(ul, "c", "sip:c@h", info())
    down[0] = False
    clock.now += 6  # past the reconnect delay
    ul.synchronize_all()
    down[0] = True
    with dom.record("c") as rec:
        rec.delete_ucontact(rec.contacts[0])
    assert dom.get_urecord("c").valid_contacts() == []
    clock.now += 6
    ul.synchronize_all()
    down[0] = False
    clock.now += 6
    ul.synchronize_all()
    got = {x["username"]: x for x in rows(db)}
    assert sorted(got) == ["a", "b"]
    assert got["a"]["expires"] == dt(NOW + 77) and got["a"]["cseq"] == 2
    assert dom.get_urecord("c") is None
    assert all(c.state == CS_SYNC for aor in ("a", "b") for c in dom.get_urecord(aor).contacts)


def test_write_through_insert_missed_then_update_inserts(db: dict[str, Any]) -> None:
    clock = Clock()
    _r, ul = start(db, 1, clock)
    down = flaky(ul)
    down[0] = True
    save(ul, "x", "sip:x@h", info())
    assert rows(db) == []
    down[0] = False
    clock.now += 6
    save(ul, "x", "sip:x@h", info(cseq=2, expires=50))  # the refresh writes the row
    assert [(x["contact"], x["cseq"]) for x in rows(db)] == [("sip:x@h", 2)]
    assert ul.register_udomain("location").get_urecord("x").contacts[0].state == CS_SYNC


def test_db_down_at_start_is_a_clear_error(db: dict[str, Any], tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="usrloc"):
        runner(modules=("db_sqlite", "usrloc"), db_mode=1,
               db_url=f"sqlite://{tmp_path}/missing/dir/x.db")
    with pytest.raises(ValueError, match="db_mysql"):
        runner(db_mode=1, db_url="mysql://u:p@127.0.0.1/x")  # driver module not loaded


def test_contact_info_defaults_roundtrip(db: dict[str, Any]) -> None:
    _r, ul = start(db, 1)
    save(ul, "z", "sip:z@h", ContactInfo(expires=NOW + 5, callid="c", cseq=1))
    _r2, ul2 = start(db, 1, Clock(NOW))
    c = ul2.register_udomain("location").get_urecord("z").contacts[0]
    assert (c.q, c.methods, c.user_agent, c.received, c.path, c.sock, c.last_modified) == (
        -1, 0xFFFFFFFF, "", "", "", None, 0)
