"""Expiry by the timer process (timer_interval), in memory-only mode."""

from __future__ import annotations

import os

from sipserver.core.timers import Timers

from .helpers import Clock, info, runner, save


def test_timer_removes_expired_contacts_only() -> None:
    clock = Clock()
    r, ul = runner(clock=clock, timer_interval=15)
    dom = ul.register_udomain("location")
    save(ul, "a", "sip:a1@h", info(expires=10))
    save(ul, "a", "sip:a2@h", info(expires=100, callid="c2"))
    save(ul, "b", "sip:b@h", info(expires=10))
    save(ul, "p", "sip:p@h", info(expires=0))  # permanent
    assert r.rt.timers[0][:2] == ("usrloc", 15)
    tick = r.rt.timers[0][2]
    clock.now += 9
    tick()
    assert r.rt.stats.value("location-contacts") == 4
    clock.now += 1  # expires == now: no longer valid
    tick()
    assert [c.contact for c in dom.get_urecord("a").contacts] == ["sip:a2@h"]
    assert dom.get_urecord("b") is None
    assert (r.rt.stats.value("location-users"), r.rt.stats.value("location-contacts"),
            r.rt.stats.value("location-expires")) == (2, 2, 2)
    clock.now += 10**6
    tick()
    assert dom.get_urecord("a") is None
    assert dom.get_urecord("p") is not None
    assert r.rt.stats.value("location-expires") == 3


def test_core_timers_run_usrloc_on_schedule() -> None:
    clock = Clock()
    r, ul = runner(clock=clock, timer_interval=60)
    save(ul, "a", "sip:a@h", info(expires=30))
    mono = Clock(100.0)
    timers = Timers(r.rt, clock=mono)
    clock.now += 31
    mono.now += 59
    timers.run_due()
    assert ul.register_udomain("location").get_urecord("a") is not None  # not due yet
    mono.now += 1
    timers.run_due()
    assert ul.register_udomain("location").get_urecord("a") is None


def test_timer_in_another_process() -> None:
    """The timer process removes the contact; the worker that saved it sees that."""
    clock = Clock()
    r, ul = runner(clock=clock)
    save(ul, "a", "sip:a@h", info(expires=5))
    save(ul, "b", "sip:b@h", info(expires=500))
    clock.now += 6
    pid = os.fork()
    if pid == 0:
        try:
            ul.synchronize_all()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    dom = ul.register_udomain("location")
    assert dom.get_urecord("a") is None
    assert dom.get_urecord("b") is not None
    assert r.rt.stats.value("location-expires") == 1


def test_many_records_one_pass() -> None:
    clock = Clock()
    r, ul = runner(clock=clock)
    for i in range(500):
        save(ul, f"u{i}", "sip:x@h", info(expires=10 + (i % 2) * 1000))
    clock.now += 11
    ul.synchronize_all()
    assert len(ul.register_udomain("location")) == 250
    assert r.rt.stats.value("location-contacts") == 250
