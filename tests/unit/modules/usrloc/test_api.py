"""The API registrar uses: records, contacts, matching, locks, stats, callbacks,
and every process seeing the same table."""

from __future__ import annotations

import os

import pytest

from sipserver.core.runtime import SocketInfo
from sipserver.modules.usrloc import (
    CS_NEW,
    UL_CONTACT_DELETE,
    UL_CONTACT_EXPIRE,
    UL_CONTACT_INSERT,
    UL_CONTACT_UPDATE,
    bind_usrloc,
)
from sipserver.modules.usrloc.store import UDomain
from sipserver.script import load_script_text

from .helpers import NOW, Clock, info, runner, save


def stat(r, name: str) -> int:
    return r.rt.stats.value(name)


def test_save_lookup_and_order() -> None:
    r, ul = runner(clock=Clock())
    dom = ul.register_udomain("location")
    assert ul.register_udomain("location") is dom
    save(ul, "alice", "sip:a1@h", info(q=500))
    save(ul, "alice", "sip:a2@h", info(q=1000, callid="call-2"))
    save(ul, "alice", "sip:a3@h", info(q=500, callid="call-3"))
    rec = dom.get_urecord("alice")
    assert rec is not None
    assert [c.contact for c in rec.contacts] == ["sip:a2@h", "sip:a1@h", "sip:a3@h"]
    assert dom.get_urecord("bob") is None
    assert stat(r, "location-users") == 1
    assert stat(r, "location-contacts") == 3
    assert stat(r, "registered_users") == 1


def test_get_ucontact_codes() -> None:
    clock = Clock()
    _r, ul = runner(clock=clock)
    dom = ul.register_udomain("location")
    save(ul, "bob", "sip:b@h", info(callid="cid", cseq=10))
    rec = dom.get_urecord("bob")
    assert rec.get_ucontact("sip:other@h", "cid", 11) == (1, None)
    code, c = rec.get_ucontact("sip:b@h", "cid", 11)
    assert code == 0 and c is rec.contacts[0]
    assert rec.get_ucontact("sip:b@h", "cid", 9)[0] == -1  # older CSeq
    assert rec.get_ucontact("sip:b@h", "cid", 10)[0] == -2  # retransmission within cseq_delay
    clock.now += 20
    assert rec.get_ucontact("sip:b@h", "cid", 10)[0] == -1  # same CSeq, too late
    assert rec.get_ucontact("sip:b@h", "other-call", 1)[0] == 0  # another Call-ID: no CSeq check


def test_matching_mode_callid() -> None:
    _r, ul = runner(clock=Clock(), matching_mode=1)
    save(ul, "bob", "sip:b@h", info(callid="c1", cseq=5))
    save(ul, "bob", "sip:b@h", info(callid="c2", cseq=1))  # a second binding, same URI
    rec = ul.register_udomain("location").get_urecord("bob")
    assert [c.callid for c in rec.contacts] == ["c1", "c2"]
    assert rec.get_ucontact("sip:b@h", "c1", 4)[0] == -1
    assert rec.get_ucontact("sip:b@h", "c3", 4) == (1, None)


def test_update_keeps_callid_and_moves_by_q() -> None:
    r, ul = runner(clock=Clock())
    save(ul, "a", "sip:1@h", info(q=1000, callid="x"))
    save(ul, "a", "sip:2@h", info(q=500, callid="y"))
    c = save(ul, "a", "sip:1@h", info(q=100, callid="new-call", cseq=2, user_agent="UA2"))
    rec = ul.register_udomain("location").get_urecord("a")
    assert [x.contact for x in rec.contacts] == ["sip:2@h", "sip:1@h"]
    assert (c.callid, rec.contacts[1].callid, rec.contacts[1].user_agent) == ("x", "x", "UA2")
    assert stat(r, "location-contacts") == 2


def test_desc_time_order() -> None:
    _r, ul = runner(clock=Clock(), desc_time_order=1)
    for i in range(3):
        save(ul, "a", f"sip:{i}@h", info(q=1000 - 100 * i, callid=f"c{i}"))
    save(ul, "a", "sip:0@h", info(q=1000, callid="c0", cseq=2))
    rec = ul.register_udomain("location").get_urecord("a")
    assert [x.contact for x in rec.contacts] == ["sip:0@h", "sip:2@h", "sip:1@h"]


def test_delete_contact_and_record() -> None:
    r, ul = runner(clock=Clock())
    dom = ul.register_udomain("location")
    save(ul, "a", "sip:1@h", info())
    save(ul, "a", "sip:2@h", info(callid="c2"))
    save(ul, "b", "sip:3@h", info())
    dom.lock("a")
    try:
        rec = dom.get_urecord("a")
        rec.delete_ucontact(rec.contacts[0])
        assert dom.get_urecord("a") is rec  # the same object while locked
    finally:
        dom.unlock("a")  # writes the change back
    assert [c.contact for c in dom.get_urecord("a").contacts] == ["sip:2@h"]
    assert stat(r, "location-contacts") == 2
    dom.lock("a")
    try:
        assert dom.delete_urecord("a")
    finally:
        dom.unlock("a")
    assert dom.get_urecord("a") is None
    assert dom.delete_urecord("nobody")
    assert (stat(r, "location-users"), stat(r, "location-contacts")) == (1, 1)
    assert len(dom) == 1


def test_read_without_lock_is_a_snapshot() -> None:
    _r, ul = runner(clock=Clock())
    dom = ul.register_udomain("location")
    save(ul, "a", "sip:1@h", info())
    snap = dom.get_urecord("a")
    save(ul, "a", "sip:2@h", info(callid="c2"))
    assert len(snap.contacts) == 1
    assert len(dom.get_urecord("a").contacts) == 2


def test_record_block_that_raises_writes_nothing() -> None:
    _r, ul = runner(clock=Clock())
    dom = ul.register_udomain("location")
    with pytest.raises(RuntimeError), dom.record("a") as rec:
        rec.insert_ucontact("sip:1@h", info())
        raise RuntimeError("registrar failed")
    assert dom.get_urecord("a") is None
    dom.lock("a")  # the lock was released
    dom.unlock("a")


def test_valid_contacts_and_state() -> None:
    clock = Clock()
    _r, ul = runner(clock=clock)
    save(ul, "a", "sip:1@h", info(expires=10))
    save(ul, "a", "sip:2@h", info(expires=0, callid="c2"))  # permanent
    rec = ul.register_udomain("location").get_urecord("a")
    assert len(rec.valid_contacts()) == 2
    clock.now += 10
    assert [c.contact for c in rec.valid_contacts()] == ["sip:2@h"]
    assert all(c.state == CS_NEW for c in rec.contacts)  # db_mode 0 never syncs


def test_use_domain_aors() -> None:
    _r, ul = runner(clock=Clock(), use_domain=1)
    save(ul, "alice@example.com", "sip:a@h", info())
    dom = ul.register_udomain("location")
    assert dom.get_urecord("alice@example.com") is not None
    assert dom.get_urecord("alice") is None
    assert ul.use_domain


def test_callbacks() -> None:
    seen = []
    r, ul = runner(clock=Clock())
    ul.register_ulcb(UL_CONTACT_INSERT | UL_CONTACT_UPDATE | UL_CONTACT_DELETE | UL_CONTACT_EXPIRE,
                     lambda c, t: seen.append((t, c.contact)))
    ul.register_ulcb(UL_CONTACT_INSERT, lambda c, t: 1 / 0)  # a broken one is logged only
    save(ul, "a", "sip:1@h", info(expires=5))
    save(ul, "a", "sip:1@h", info(expires=5, cseq=2))
    save(ul, "a", "sip:2@h", info(callid="c2"))
    dom = ul.register_udomain("location")
    with dom.record("a") as rec:
        rec.delete_ucontact(rec.contacts[1])
    ul.clock.now += 10
    ul.synchronize_all()
    assert seen == [(UL_CONTACT_INSERT, "sip:1@h"), (UL_CONTACT_UPDATE, "sip:1@h"),
                    (UL_CONTACT_INSERT, "sip:2@h"), (UL_CONTACT_DELETE, "sip:2@h"),
                    (UL_CONTACT_EXPIRE, "sip:1@h")]
    assert "ZeroDivisionError" in r.log_text()
    with pytest.raises(ValueError):
        ul.register_ulcb(0, print)


def test_get_all_ucontacts_nat_flag_and_partitions() -> None:
    r, ul = runner(clock=Clock(), nat_bflag=3)
    assert ul.nat_flag == 8
    sock = r.rt.sockets[0]
    save(ul, "a", "sip:a@10.0.0.1", info(cflags=8 | 1, received="sip:198.51.100.1:4000",
                                         sock=sock, path="<sip:edge;lr>"))
    save(ul, "b", "sip:b@10.0.0.2", info(cflags=0))
    save(ul, "c", "sip:c@10.0.0.3", info(cflags=8, expires=0))
    for i in range(20):
        save(ul, f"u{i}", f"sip:u{i}@h", info(cflags=8))
    nat = ul.get_all_ucontacts(ul.nat_flag)
    assert len(nat) == 22
    first = next(n for n in nat if n.uri == "sip:198.51.100.1:4000")
    assert (first.sock, first.cflags, first.path) == (sock, 9, "<sip:edge;lr>")
    assert len(ul.get_all_ucontacts()) == 23
    parts = [ul.get_all_ucontacts(8, i, 3) for i in range(3)]
    assert sorted(n.uri for p in parts for n in p) == sorted(n.uri for n in nat)
    assert all(parts)
    ul.clock.now += 4000  # expired contacts are not pinged
    assert [n.uri for n in ul.get_all_ucontacts(8)] == ["sip:c@10.0.0.3"]


def test_socket_stored_by_index() -> None:
    r, ul = runner(clock=Clock())
    sock = r.rt.sockets[0]
    save(ul, "a", "sip:1@h", info(sock=sock))
    save(ul, "a", "sip:2@h", info(sock=SocketInfo("tcp", "192.0.2.1", 5060), callid="c2"))
    rec = ul.register_udomain("location").get_urecord("a")
    assert rec.contacts[0].sock is sock
    assert rec.contacts[1].sock.name == "tcp:192.0.2.1:5060"


def test_forked_child_insert_is_seen_by_parent() -> None:
    r, ul = runner(clock=Clock())
    dom = ul.register_udomain("location")
    save(ul, "parent", "sip:p@h", info())
    pid = os.fork()
    if pid == 0:  # the child: a SIP worker saving a REGISTER
        code = 1
        try:
            if dom.get_urecord("parent") is not None:
                save(ul, "child", "sip:c@h", info(user_agent="forked"))
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    rec = dom.get_urecord("child")
    assert rec is not None and rec.contacts[0].user_agent == "forked"
    assert r.rt.stats.value("location-users") == 2


def test_register_after_fork_is_refused() -> None:
    _r, ul = runner(clock=Clock())
    pid = os.fork()
    if pid == 0:
        try:
            ul.register_udomain("late")
            os._exit(1)
        except RuntimeError:
            os._exit(0)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_table_named_at_compile_time_made_at_mod_init() -> None:
    """registrar's fixup runs before mod_init: the domain is made then."""
    from sipserver.core.runtime import Runtime
    from sipserver.core.stats import Statistics
    from sipserver.shm import Segment

    compiled = load_script_text('loadmodule "usrloc.so"\nroute { exit; }', "<t>")
    ul = bind_usrloc(compiled.registry)
    dom = ul.register_udomain("aliases")
    assert dom.table is None and not ul.ready
    rt = Runtime(registry=compiled.registry)
    rt.shm = Segment(4 * 1024 * 1024)
    rt.stats = Statistics(rt.shm)
    mod = compiled.registry.modules["usrloc"]
    mod.rt = rt
    rt.stats.register_module(mod)
    mod.exports.mod_init(mod)
    assert dom.table is not None
    assert rt.stats.value("aliases-users") == 0
    assert [t[0] for t in rt.timers] == ["usrloc"] and rt.timers[0][1] == 60


def test_out_of_shared_memory_fails_the_save_only() -> None:
    r, ul = runner(clock=Clock(), shm_mb=1)
    dom = ul.register_udomain("location")
    big = "U" * 60000
    saved = 0
    for i in range(40):
        with dom.record(f"u{i}") as rec:
            rec.insert_ucontact("sip:x@h", info(user_agent=big))
            ok = dom.release_urecord(rec)
        if not ok:
            break
        saved += 1
    assert 0 < saved < 40
    assert "out of shared memory" in r.log_text()
    assert dom.get_urecord(f"u{saved}") is None  # the failed one holds nothing
    assert dom.get_urecord("u0").contacts[0].user_agent == big
    assert r.rt.stats.value("location-contacts") == saved
    # what was refused was only that record: a small one still fits after a delete
    assert dom.delete_urecord("u0")
    save(ul, "small", "sip:s@h", info())
    assert dom.get_urecord("small") is not None


def test_field_too_long_for_a_record_fails_the_save() -> None:
    r, ul = runner(clock=Clock())
    dom = ul.register_udomain("location")
    with dom.record("a") as rec:
        rec.insert_ucontact("sip:" + "x" * 70000, info())
        assert dom.release_urecord(rec) is False
    assert dom.get_urecord("a") is None
    assert "too long" in r.log_text()


@pytest.mark.parametrize(("param", "value", "text"), [
    ("db_mode", 4, "invalid db_mode"), ("matching_mode", 2, "invalid matching_mode"),
    ("nat_bflag", 32, "too big"), ("timer_interval", 0, "invalid timer_interval"),
    ("hash_size", 30, "too big"),
])
def test_bad_parameters_are_clear_errors(param: str, value: int, text: str) -> None:
    with pytest.raises(ValueError, match=text):
        runner(**{param: value})


def test_hash_size_is_the_dumped_table_size() -> None:
    for hs, size in ((9, 512), (1, 512), (4, 16), (12, 4096)):
        _r, ul = runner(hash_size=hs)
        assert ul.register_udomain("location").size == size


def test_bind_without_usrloc_loaded() -> None:
    compiled = load_script_text("route { exit; }", "<t>")
    with pytest.raises(ValueError, match="usrloc"):
        bind_usrloc(compiled.registry)


def test_domain_repr() -> None:
    _r, ul = runner()
    dom = ul.register_udomain("location")
    assert isinstance(dom, UDomain) and "location" in repr(dom)
    assert NOW > 0
