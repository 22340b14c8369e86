"""The MI commands, checked on the bytes mi_fifo writes (opensipsctl parses them)."""

from __future__ import annotations

from sipserver.core.runtime import SocketInfo

from .helpers import NOW, Clock, fifo, info, mi, runner, save


def setup(**params):
    clock = Clock()
    r, ul = runner(clock=clock, **params)
    return r, ul, clock


def test_ul_dump_full_and_brief() -> None:
    r, ul, clock = setup()
    sock = r.rt.sockets[0]
    save(ul, "alice", "sip:alice@192.0.2.1", info(expires=3600, q=500, callid="c-a", cseq=7,
                                                  user_agent="Phone/1", sock=sock, flags=1,
                                                  cflags=64, methods=0x1F))
    save(ul, "alice", "sip:alice@192.0.2.2", info(expires=0, received="sip:198.51.100.2:5060",
                                                  path="<sip:edge;lr>", callid="c-b"))
    save(ul, "bob", "sip:bob@192.0.2.3", info(expires=30, q=1000))
    clock.now += 40  # bob's contact has expired (still there until the timer runs)
    assert fifo(mi(r, "ul_dump")) == (
        b"200 OK\n"
        b"Domain:: location table=512 records=2\n"
        b"\tAOR:: bob\n"
        b"\t\tContact:: sip:bob@192.0.2.3 Q=1\n"
        b"\t\t\tExpires:: expired\n"
        b"\t\t\tCallid:: call-1\n"
        b"\t\t\tCseq:: 1\n"
        b"\t\t\tState:: CS_NEW\n"
        b"\t\t\tFlags:: 0\n"
        b"\t\t\tCflag:: 0\n"
        b"\t\t\tMethods:: 4294967295\n"
        b"\tAOR:: alice\n"
        b"\t\tContact:: sip:alice@192.0.2.1 Q=0.5\n"
        b"\t\t\tExpires:: 3560\n"
        b"\t\t\tCallid:: c-a\n"
        b"\t\t\tCseq:: 7\n"
        b"\t\t\tUser-agent:: Phone/1\n"
        b"\t\t\tState:: CS_NEW\n"
        b"\t\t\tFlags:: 1\n"
        b"\t\t\tCflag:: 64\n"
        b"\t\t\tSocket:: udp:127.0.0.1:5060\n"
        b"\t\t\tMethods:: 31\n"
        b"\t\tContact:: sip:alice@192.0.2.2 Q=\n"
        b"\t\t\tExpires:: permanent\n"
        b"\t\t\tCallid:: c-b\n"
        b"\t\t\tCseq:: 1\n"
        b"\t\t\tReceived:: sip:198.51.100.2:5060\n"
        b"\t\t\tPath:: <sip:edge;lr>\n"
        b"\t\t\tState:: CS_NEW\n"
        b"\t\t\tFlags:: 0\n"
        b"\t\t\tCflag:: 0\n"
        b"\t\t\tMethods:: 4294967295\n"
        b"\n")
    # records in 1.6's order: hash slot of the AOR (bob 143, alice 477 of 512)
    assert fifo(mi(r, "ul_dump", "BRIEF")) == (
        b"200 OK\nDomain:: location table=512 records=2\n\tAOR:: bob\n\tAOR:: alice\n\n")
    assert fifo(mi(r, "ul_dump", "brief", "x")) == b"400 Too few or too many arguments\n\n"


def test_ul_dump_tables_newest_first_and_empty() -> None:
    r, _ul = runner(tables=("location", "aliases"))
    assert fifo(mi(r, "ul_dump")) == (
        b"200 OK\nDomain:: aliases table=512 records=0\n"
        b"Domain:: location table=512 records=0\n\n")


def test_ul_show_contact() -> None:
    r, ul, clock = setup()
    save(ul, "alice", "sip:alice@192.0.2.1;transport=tcp",
         info(expires=600, q=100, flags=2, cflags=0x80000001, methods=0x3F,
              sock=SocketInfo("tcp", "10.0.0.1", 5060), received="sip:198.51.100.2:1234",
              user_agent="Soft UA", path="<sip:p1;lr>"))
    save(ul, "alice", "sip:alice@192.0.2.9", info(expires=5, callid="c2"))
    save(ul, "alice", "sip:alice@192.0.2.8", info(expires=0, callid="c3"))
    clock.now += 10
    assert fifo(mi(r, "ul_show_contact", "location", "alice@example.com")) == (
        b"200 OK\n"
        b"Contact:: <sip:alice@192.0.2.1;transport=tcp>;q=0.1;expires=590;flags=0x2;"
        b"cflags=0x80000001;socket=<tcp:10.0.0.1:5060>;methods=0x3F;"
        b"received=<sip:198.51.100.2:1234>;user_agent=<Soft UA>;path=<<sip:p1;lr>>\n"
        + f"Contact:: <sip:alice@192.0.2.8>;q=;expires={-(NOW + 10)};flags=0x0;cflags=0x0;"
          "socket=<NULL>;methods=0xFFFFFFFF\n\n".encode())
    assert fifo(mi(r, "ul_show_contact", "location", "nobody")) == b"404 AOR not found\n\n"
    assert fifo(mi(r, "ul_show_contact", "nope", "alice")) == b"404 Table not found\n\n"
    assert fifo(mi(r, "ul_show_contact", "location")) == b"400 Too few or too many arguments\n\n"
    clock.now += 1000
    save(ul, "bob", "sip:b@h", info(expires=1, now=int(clock.now)))
    clock.now += 5
    # 1.6 sends this reason one character short
    assert fifo(mi(r, "ul_show_contact", "location", "bob")) == b"404 AOR has no contact\n\n"


def test_ul_add_then_update() -> None:
    r, ul, _clock = setup()
    assert fifo(mi(r, "ul_add", "location", "carol@example.com", "sip:carol@192.0.2.4",
                   "3600", "0.75", "0", "1", "4", "4294967295")) == b"200 OK\n\n"
    rec = ul.register_udomain("location").get_urecord("carol")  # use_domain=0: @... dropped
    c = rec.contacts[0]
    assert (c.expires, c.q, c.callid, c.cseq, c.user_agent, c.flags, c.cflags, c.methods,
            c.last_modified) == (NOW + 3600, 750, "dfjrewr12386fd6-343@opensips.mi", 1,
                                 "OpenSIPS MI Server", 1, 4, 0xFFFFFFFF, 0)
    # the same contact again updates it; expires 0 is permanent
    assert mi(r, "ul_add", "location", "carol", "sip:carol@192.0.2.4", "0", "1", "x", "0", "0",
              "0").code == 200
    rec = ul.register_udomain("location").get_urecord("carol")
    assert len(rec.contacts) == 1 and (rec.contacts[0].expires, rec.contacts[0].q) == (0, 1000)
    assert r.rt.stats.value("location-contacts") == 1


def test_ul_add_errors() -> None:
    r, ul, _clock = setup()
    good = ["location", "u", "sip:u@h", "60", "0.5", "0", "0", "0", "0"]
    assert fifo(mi(r, "ul_add", *good[:8])) == b"400 Too few or too many arguments\n\n"
    for i, bad in ((3, "-1"), (3, "abc"), (4, "1.5"), (4, ""), (6, "x"), (7, "4294967296"),
                   (8, "0x1")):
        a = list(good)
        a[i] = bad
        assert fifo(mi(r, "ul_add", *a)) == b"400 Bad parameter\n\n", (i, bad)
    a = list(good)
    a[0] = "missing"
    assert fifo(mi(r, "ul_add", *a)) == b"404 Table not found\n\n"
    assert ul.register_udomain("location").get_urecord("u") is None


def test_use_domain_needs_domain_in_aor() -> None:
    r, ul, _clock = setup(use_domain=1)
    for cmd, extra in (("ul_show_contact", ()), ("ul_rm", ()), ("ul_rm_contact", ("sip:x",)),
                       ("ul_add", ("sip:x", "0", "1", "0", "0", "0", "0"))):
        assert fifo(mi(r, cmd, "location", "alice", *extra)) == b"400 Domain missing in AOR\n\n"
    assert mi(r, "ul_add", "location", "alice@d", "sip:x", "0", "1", "0", "0", "0", "0").code == 200
    assert ul.register_udomain("location").get_urecord("alice@d") is not None


def test_ul_rm_and_rm_contact() -> None:
    r, ul, _clock = setup()
    save(ul, "alice", "sip:a1@h", info())
    save(ul, "alice", "sip:a2@h", info(callid="c2"))
    assert fifo(mi(r, "ul_rm_contact", "location", "alice", "sip:a1@h")) == b"200 OK\n\n"
    assert fifo(mi(r, "ul_rm_contact", "location", "alice", "sip:a1@h")) == (
        b"404 Contact not found\n\n")
    assert fifo(mi(r, "ul_rm_contact", "location", "bob", "sip:a1@h")) == b"404 AOR not found\n\n"
    assert fifo(mi(r, "ul_rm_contact", "location", "alice")) == (
        b"400 Too few or too many arguments\n\n")
    assert [c.contact for c in ul.register_udomain("location").get_urecord("alice").contacts] == [
        "sip:a2@h"]
    assert fifo(mi(r, "ul_rm", "location", "alice")) == b"200 OK\n\n"
    assert ul.register_udomain("location").get_urecord("alice") is None
    assert fifo(mi(r, "ul_rm", "location", "alice")) == b"200 OK\n\n"  # gone already: 200 too
    assert fifo(mi(r, "ul_rm", "other", "alice")) == b"404 Table not found\n\n"
    assert fifo(mi(r, "ul_rm", "location")) == b"400 Too few or too many arguments\n\n"
    assert r.rt.stats.value("location-users") == 0


def test_ul_rm_contact_of_a_mi_contact_with_mi_cseq() -> None:
    """1.6 looks the contact up with MI's Call-ID and CSeq 2: a contact that
    ul_add made with a higher CSeq cannot be matched (the command fails)."""
    r, ul, _clock = setup()
    save(ul, "a", "sip:a@h", info(callid="dfjrewr12386fd6-343@opensips.mi", cseq=5))
    assert mi(r, "ul_rm_contact", "location", "a", "sip:a@h") is None


def test_ul_flush_runs_the_timer() -> None:
    r, ul, clock = setup()
    save(ul, "a", "sip:a@h", info(expires=10))
    clock.now += 11
    assert fifo(mi(r, "ul_flush")) == b"200 OK\n\n"
    assert ul.register_udomain("location").get_urecord("a") is None
    assert r.rt.stats.value("location-expires") == 1


def test_commands_are_registered_with_1_6_names() -> None:
    r, _ul = runner()
    names = [e.name for e in r.compiled.registry.modules["usrloc"].exports.mi_cmds]
    assert names == ["ul_rm", "ul_rm_contact", "ul_dump", "ul_flush", "ul_add", "ul_show_contact"]
    flush = next(e for e in r.compiled.registry.modules["usrloc"].exports.mi_cmds
                 if e.name == "ul_flush")
    assert flush.no_input


def test_through_the_mi_registry_and_stats_command() -> None:
    from sipserver.mi.registry import mi_registry

    r, ul, _clock = setup()
    save(ul, "a", "sip:a@h", info())
    reg = mi_registry(r.rt)
    assert reg.run("ul_dump", []).kids[0].attrs[1].value == "1"
    assert r.rt.stats.get_statistics(["usrloc:"]) == (200, "OK", [
        "usrloc:registered_users = 1", "usrloc:location-users = 1",
        "usrloc:location-contacts = 1", "usrloc:location-expires = 0"])
