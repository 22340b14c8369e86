"""registrar: REGISTER replies byte for byte, bindings kept in usrloc,
lookup's R-URI and branches as they go out through tm, return codes,
Path, received, the save/lookup flags and the parameters.

Expected replies are written out here from 1.6's reply layout; usrloc is
read through its API only to check what was stored.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from sipserver.core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    Registry,
)
from sipserver.core.modload import load_module
from sipserver.core.runtime import SocketInfo
from sipserver.lang.compiler import CfgError
from sipserver.modules import registrar
from sipserver.modules.registrar.save import parse_save_flags
from sipserver.modules.usrloc import FL_MEM, Q_UNSPECIFIED, bind_usrloc
from sipserver.testing import ScriptRunner

from ...dbfixtures import connect, create_schema
from .util import cmd

NOW = 1_700_000_000
MODULES = ["sl", "tm", "signaling", "usrloc", "registrar"]
SERVER = "Server: OpenSIPS (1.6.4-notls (x86_64/linux))\r\n"

PROXY = """
{params}
route {{
    if (method == "OPTIONS") {{ sl_send_reply("200", "OK"); exit; }}
    if (method == "REGISTER") {{
        $var(rc) = save({save});
        xlog("save=$var(rc)\\n");
        exit;
    }}
    $var(rc) = lookup({lookup});
    xlog("lookup=$var(rc)\\n");
    if ($var(rc) < 0) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(params: str = "", save: str = '"location"', lookup: str = '"location"',
         cfg: str | None = None, modules: list[str] | None = None,
         ) -> tuple[ScriptRunner, Clock]:
    text = cfg if cfg is not None else PROXY.format(params=params, save=save, lookup=lookup)
    r = ScriptRunner(text, modules=modules or MODULES, stats=True)
    clock = Clock()
    bind_usrloc(r.compiled.registry).clock = clock
    return r, clock


def register(contacts: list[str] | None = None, *, aor: str = "sip:alice@example.com",
             callid: str = "reg-1", cseq: int = 1, expires: int | None = None,
             extra: str = "", branch: str | None = None) -> bytes:
    lines = [
        "REGISTER sip:example.com SIP/2.0",
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch or f'z9hG4bKreg{callid}{cseq}'}",
        "Max-Forwards: 70",
        f"From: <{aor}>;tag=fr1",
        f"To: <{aor}>",
        f"Call-ID: {callid}",
        f"CSeq: {cseq} REGISTER",
    ]
    lines += [f"Contact: {c}" for c in contacts or []]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    text = "\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n"
    return text.encode()


def invite(ruri: str = "sip:alice@example.com", method: str = "INVITE",
           branch: str = "z9hG4bKinv1") -> bytes:
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.9:5060;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:bob@example.com>;tag=b1\r\n"
            "To: <sip:alice@example.com>\r\n"
            f"Call-ID: call-{branch}\r\n"
            f"CSeq: 1 {method}\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def reply_head(text: str, code: str, callid: str = "reg-1", cseq: int = 1,
               branch: str | None = None) -> str:
    """The part of a registrar reply before its own headers (To tag read back)."""
    m = re.search(r"\r\nTo: <([^>]*)>;tag=([0-9a-f]{32}\.[0-9a-f]{4})\r\n", text)
    assert m, text
    b = branch or f"z9hG4bKreg{callid}{cseq}"
    return (f"SIP/2.0 {code}\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5060;received=127.0.0.2;branch={b}\r\n"
            f"From: <{m.group(1)}>;tag=fr1\r\n"
            f"To: <{m.group(1)}>;tag={m.group(2)}\r\n"
            f"Call-ID: {callid}\r\n"
            f"CSeq: {cseq} REGISTER\r\n")


TAIL = SERVER + "Content-Length: 0\r\n\r\n"


def last(r: ScriptRunner) -> str:
    return r.sent_text[-1]


def rcs(r: ScriptRunner, what: str = "save") -> list[int]:
    return [int(m) for m in re.findall(rf"{what}=(-?\d+)", r.log_text())]


def record(r: ScriptRunner, aor: str = "alice", table: str = "location") -> Any:
    return bind_usrloc(r.compiled.registry).register_udomain(table).get_urecord(aor)


def forwarded(r: ScriptRunner) -> list[tuple[Any, str]]:
    """(destination, text) of every request sent (not the 100)."""
    return [(dest, data.decode()) for _, dest, data in r.sent
            if not data.startswith(b"SIP/2.0 ")]


def stat(r: ScriptRunner, name: str) -> int:
    return r.rt.stats.value(name)


# ---------------------------------------------------------------- exports


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "registrar.so")
    assert mod.params == {
        "default_expires": 3600, "default_q": -1, "case_sensitive": 1,
        "tcp_persistent_flag": -1, "realm_prefix": "", "min_expires": 60, "max_expires": 0,
        "received_param": "received", "received_avp": None, "max_contacts": 0,
        "retry_after": 0, "sock_hdr_name": None,
    }
    for n in (1, 2, 3):
        assert cmd(registrar.exports, "save", n).route_types == REQUEST_ROUTE
        assert cmd(registrar.exports, "lookup", n).route_types == REQUEST_ROUTE | FAILURE_ROUTE
        assert cmd(registrar.exports, "registered", n).route_types == (
            REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE)
    assert cmd(registrar.exports, "add_sock_hdr", 1).route_types == REQUEST_ROUTE
    assert [s.name for s in registrar.exports.stats] == [
        "max_expires", "max_contacts", "default_expire", "accepted_regs", "rejected_regs"]


def test_startup_needs_usrloc_and_signaling() -> None:
    with pytest.raises(CfgError, match="usrloc module is not loaded"):
        ScriptRunner('route { save("location"); }', modules=["sl", "signaling", "registrar"])
    with pytest.raises(ValueError, match="signaling"):
        ScriptRunner('route { save("location"); }', modules=["sl", "usrloc", "registrar"])
    with pytest.raises(CfgError, match="received_avp"):
        ScriptRunner('modparam("registrar", "received_avp", "$var(x)")\n'
                     'route { save("location"); }', modules=MODULES)


def test_static_stats() -> None:
    r, _ = make('modparam("registrar", "max_expires", 7200)\n'
                'modparam("registrar", "max_contacts", 3)\n'
                'modparam("registrar", "default_expires", 1800)\n')
    assert stat(r, "max_expires") == 7200
    assert stat(r, "max_contacts") == 3
    assert stat(r, "default_expire") == 1800


def test_save_flag_parsing() -> None:
    f, bad = parse_save_flags("mrsc12fp2v")
    assert (f.flags, f.max_contacts, bad) == (0x01 | 0x02 | 0x04 | 0x80 | 0x08 | 0x40, 12, [])
    f, bad = parse_save_flags("c")
    assert (f.max_contacts, bad) == (0, [])
    f, bad = parse_save_flags("p1xp")
    assert (f.flags, bad) == (0x10, ["x", "p"])
    f, bad = parse_save_flags("p9m")
    assert (f.flags, bad) == (0x01, ["9"])


# ---------------------------------------------------------------- save: the 200 list


def test_register_two_contacts_exact_200() -> None:
    r, _ = make()
    r.request(register(["<sip:alice@10.0.0.1:5060>;q=0.5",
                        '"Alice" <sip:alice@10.0.0.2;transport=tcp>;expires=120'],
                       expires=300))
    text = last(r)
    assert text == reply_head(text, "200 OK") + (
        "Contact: <sip:alice@10.0.0.1:5060>;q=0.5;expires=300, "
        "<sip:alice@10.0.0.2;transport=tcp>;expires=120\r\n") + TAIL
    assert rcs(r) == [1]
    rec = record(r)
    [c1, c2] = rec.contacts
    assert (c1.contact, c1.q, c1.expires) == ("sip:alice@10.0.0.1:5060", 500, NOW + 300)
    assert (c2.contact, c2.q, c2.expires) == ("sip:alice@10.0.0.2;transport=tcp",
                                             Q_UNSPECIFIED, NOW + 120)
    assert (c1.callid, c1.cseq, c1.user_agent, c1.flags) == ("reg-1", 1, "n/a", 0)
    assert c1.sock == r.transport.sockets[0] and c1.last_modified == NOW
    assert stat(r, "accepted_regs") == 1 and stat(r, "rejected_regs") == 0


def test_one_contact_header_per_reply_and_q_formats() -> None:
    r, _ = make()
    r.request(register(["<sip:a@h1>;q=1.0", "<sip:a@h2>;q=0", "<sip:a@h3>;q=0.25"]))
    text = last(r)
    assert text.count("\r\nContact: ") == 1
    assert ("Contact: <sip:a@h1>;q=1;expires=3600, <sip:a@h3>;q=0.25;expires=3600, "
            "<sip:a@h2>;q=0;expires=3600\r\n") in text


def test_reregister_updates_expires_and_keeps_others() -> None:
    r, clock = make()
    r.request(register(["<sip:alice@10.0.0.1>"], expires=600))
    r.request(register(["<sip:alice@10.0.0.2>"], callid="other", expires=600))
    clock.now += 100
    r.request(register(["<sip:alice@10.0.0.1>"], cseq=2, expires=900,
                       extra="User-Agent: phone/1.0\r\n"))
    text = last(r)
    assert text == reply_head(text, "200 OK", cseq=2) + (
        "Contact: <sip:alice@10.0.0.1>;expires=900, <sip:alice@10.0.0.2>;expires=500\r\n"
    ) + TAIL
    c = record(r).contacts[0]
    assert (c.cseq, c.expires, c.user_agent, c.last_modified) == (2, NOW + 1000, "phone/1.0",
                                                                  NOW + 100)


def test_expires_zero_removes_one_and_star_removes_all() -> None:
    r, _ = make()
    r.request(register(["<sip:alice@h1>", "<sip:alice@h2>", "<sip:alice@h3>"]))
    r.request(register(["<sip:alice@h2>;expires=0"], cseq=2))
    text = last(r)
    assert "Contact: <sip:alice@h1>;expires=3600, <sip:alice@h3>;expires=3600\r\n" in text
    r.request(register(["*"], cseq=3, expires=0))
    text = last(r)
    assert text == reply_head(text, "200 OK", cseq=3) + TAIL
    assert record(r) is None
    # removing what is not there is fine too, and a new AOR with expires 0 makes nothing
    r.request(register(["<sip:alice@h9>"], cseq=4, expires=0))
    assert last(r) == reply_head(last(r), "200 OK", cseq=4) + TAIL
    assert record(r) is None
    assert rcs(r) == [1, 1, 1, 1]


def test_star_errors() -> None:
    r, _ = make()
    r.request(register(["*"]))  # no Expires: the default is not zero
    text = last(r)
    assert text == reply_head(text, "400 Bad Request") + (
        "P-Registrar-Error: * used in contact and expires is not zero\r\n") + TAIL
    r.request(register(["*", "<sip:alice@h1>"], expires=0, cseq=2))
    text = last(r)
    assert text == reply_head(text, "400 Bad Request", cseq=2) + (
        "P-Registrar-Error: * used in contact and more than 1 contact\r\n") + TAIL
    r.request(register(["<sip:alice@h1>", "*"], expires=0, cseq=3))
    assert "P-Registrar-Error: * used in contact and more than 1 contact\r\n" in last(r)
    # the script stopped after each failed save (0 returned: no log line)
    assert rcs(r) == []
    assert stat(r, "rejected_regs") == 3


def test_query_without_contact_lists_bindings() -> None:
    r, clock = make()
    r.request(register([]))
    assert last(r) == reply_head(last(r), "200 OK") + TAIL
    r.request(register(["<sip:alice@h1>;expires=100"], cseq=2))
    clock.now += 40
    r.request(register([], cseq=3))
    assert last(r) == reply_head(last(r), "200 OK", cseq=3) + (
        "Contact: <sip:alice@h1>;expires=60\r\n") + TAIL


def test_min_max_and_default_expires() -> None:
    r, _ = make('modparam("registrar", "max_expires", 1000)\n'
                'modparam("registrar", "min_expires", 30)\n'
                'modparam("registrar", "default_expires", 500)\n')
    r.request(register(["<sip:a@h1>;expires=5", "<sip:a@h2>;expires=5000", "<sip:a@h3>",
                        "<sip:a@h4>;expires=junk", "<sip:a@h5>;expires"]))
    assert ("Contact: <sip:a@h1>;expires=30, <sip:a@h2>;expires=1000, <sip:a@h3>;expires=500, "
            "<sip:a@h4>;expires=500, <sip:a@h5>;expires=500\r\n") in last(r)
    r.request(register(["<sip:b@h1>"], aor="sip:bob@example.com", expires=10))
    assert "Contact: <sip:b@h1>;expires=30\r\n" in last(r)


def test_default_q_param() -> None:
    r, _ = make('modparam("registrar", "default_q", 2000)\n')
    r.request(register(["<sip:a@h1>", "<sip:a@h2>;q=0.3"]))
    assert "Contact: <sip:a@h1>;q=1;expires=3600, <sip:a@h2>;q=0.3;expires=3600\r\n" in last(r)


@pytest.mark.parametrize(("contacts", "extra", "code", "info"), [
    (["<sip:a@h1>;q=2"], "", "400 Bad Request", "Invalid q param in contact"),
    (["<sip:a@h1>;q=abc"], "", "400 Bad Request", "Invalid q param in contact"),
    (["<sip:a@h1"], "", "400 Bad Request", "Contact parse error"),
    (["<sip:a@h1>"], "Expires: soon\r\n", "400 Bad Request", "Expires parse error"),
    (["<sip:a@h1>;methods=\"INVITE;BYE\""], "", "400 Bad Request", "Message parse error"),
    (["<sip:a@h1>", "<sip:" + "x" * 260 + "@h>"], "", "400 Bad Request",
     "Contact/received too long"),
])
def test_bad_register_replies(contacts: list[str], extra: str, code: str, info: str) -> None:
    r, _ = make()
    r.request(register(contacts, extra=extra))
    text = last(r)
    assert text == reply_head(text, code) + f"P-Registrar-Error: {info}\r\n" + TAIL
    assert record(r) is None and rcs(r) == []


def test_aor_errors() -> None:
    r, _ = make()
    r.request(register(["<sip:a@h1>"], aor="sip:al%01ice@example.com"))
    assert "400 Bad Request" in last(r)
    assert "P-Registrar-Error: Error while unescaping username\r\n" in last(r)
    r.request(register(["<sip:a@h1>"], aor="sip:" + "u" * 65 + "@example.com", cseq=2))
    assert last(r).startswith("SIP/2.0 500 Server Internal Error\r\n")
    assert "P-Registrar-Error: Address Of Record too long\r\n" in last(r)


def test_callid_too_long_keeps_list_of_known_aor() -> None:
    r, _ = make()
    r.request(register(["<sip:a@h1>"]))
    r.request(register(["<sip:a@h2>"], callid="c" * 256))
    text = last(r)
    assert text == reply_head(text, "400 Bad Request", callid="c" * 256) + (
        "Contact: <sip:a@h1>;expires=3600\r\n"
        "P-Registrar-Error: Callid too long\r\n") + TAIL


# ---------------------------------------------------------------- CSeq checks


def test_cseq_order_retransmission_and_old_cseq() -> None:
    r, clock = make()
    r.request(register(["<sip:alice@h1>"], cseq=5, expires=600))
    clock.now += 5
    # the same CSeq within usrloc's cseq_delay: a retransmission, binding untouched
    r.request(register(["<sip:alice@h1>"], cseq=5, expires=100, branch="z9hG4bKre"))
    text = last(r)
    assert text == reply_head(text, "200 OK", cseq=5, branch="z9hG4bKre") + (
        "Contact: <sip:alice@h1>;expires=595\r\n") + TAIL
    # an older CSeq: 400 with the current list
    r.request(register(["<sip:alice@h1>"], cseq=4))
    text = last(r)
    assert text == reply_head(text, "400 Bad Request", cseq=4) + (
        "Contact: <sip:alice@h1>;expires=595\r\n"
        "P-Registrar-Error: Invalid CSeq number\r\n") + TAIL
    # the same CSeq later than cseq_delay: 400 too
    clock.now += 30
    r.request(register(["<sip:alice@h1>"], cseq=5, branch="z9hG4bKlate"))
    assert "P-Registrar-Error: Invalid CSeq number\r\n" in last(r)
    # another Call-ID is not checked
    r.request(register(["<sip:alice@h1>"], cseq=1, callid="new", expires=200))
    assert "Contact: <sip:alice@h1>;expires=200\r\n" in last(r)
    assert rcs(r) == [1, 1, 1]


# ---------------------------------------------------------------- max contacts


def test_max_contacts_new_aor_503() -> None:
    r, _ = make('modparam("registrar", "max_contacts", 2)\n'
                'modparam("registrar", "retry_after", 30)\n')
    r.request(register(["<sip:a@h1>", "<sip:a@h2>", "<sip:a@h3>"]))
    text = last(r)
    assert text == reply_head(text, "503 Service Unavailable") + (
        "P-Registrar-Error: Too many registered contacts\r\n"
        "Retry-After: 30\r\n") + TAIL
    assert record(r) is None  # nothing of the refused REGISTER is kept
    assert stat(r, "rejected_regs") == 1


def test_max_contacts_known_aor_503_lists_bindings() -> None:
    r, _ = make(save='"location", "c2"')
    r.request(register(["<sip:a@h1>", "<sip:a@h2>"]))
    r.request(register(["<sip:a@h3>"], callid="c2"))
    text = last(r)
    assert text == reply_head(text, "503 Service Unavailable", callid="c2") + (
        "Contact: <sip:a@h1>;expires=3600, <sip:a@h2>;expires=3600\r\n"
        "P-Registrar-Error: Too many registered contacts\r\n") + TAIL
    # refreshing one that is there is not a new one
    r.request(register(["<sip:a@h2>"], cseq=2))
    assert last(r).startswith("SIP/2.0 200 OK\r\n")


def test_flag_c0_overrides_global_and_force_drops_first() -> None:
    r, _ = make('modparam("registrar", "max_contacts", 1)\n', save='"location", "c0"')
    r.request(register(["<sip:a@h1>", "<sip:a@h2>"]))
    assert last(r).startswith("SIP/2.0 200 OK\r\n")
    r, _ = make(save='"location", "c2f"')
    r.request(register(["<sip:a@h1>;q=0.9", "<sip:a@h2>;q=0.5"]))
    r.request(register(["<sip:a@h3>;q=0.1"], callid="c2"))
    assert "Contact: <sip:a@h2>;q=0.5;expires=3600, <sip:a@h3>;q=0.1;expires=3600\r\n" \
        in last(r)
    r.request(register(["<sip:b@h1>", "<sip:b@h2>", "<sip:b@h3>"], aor="sip:bob@x"))
    assert "Contact: <sip:b@h2>;expires=3600, <sip:b@h3>;expires=3600\r\n" in last(r)


# ---------------------------------------------------------------- flags and parameters


def test_noreply_flag_and_script_goes_on() -> None:
    r, _ = make(save='"location", "r"')
    r.request(register(["<sip:a@h1>"]))
    assert r.sent == [] and rcs(r) == [1]
    r.request(register(["<sip:a@h1>;q=9"], cseq=2))
    assert r.sent == [] and rcs(r) == [1]  # the error stops the script, no reply


def test_flags_from_a_variable() -> None:
    cfg = ('route { $var(f) = "c1"; if (!save("location", "$var(f)")) xlog("false\\n"); '
           'xlog("after\\n"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:a@h1>", "<sip:a@h2>"]))
    assert last(r).startswith("SIP/2.0 503 Service Unavailable\r\n")
    assert "after" not in r.log_text()


def test_aor_from_pv_and_use_domain() -> None:
    cfg = ('modparam("usrloc", "use_domain", 1)\n'
           'modparam("registrar", "realm_prefix", "sip.")\n'
           'route { if (method == "REGISTER") { $var(a) = "sip:Carol@sip.Example.COM"; '
           'save("location", "", "$var(a)"); exit; } '
           'if (registered("location")) xlog("reg=yes\\n"); else xlog("reg=no\\n"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:c@h1>"]))
    assert last(r).startswith("SIP/2.0 200 OK\r\n")
    assert record(r, "Carol@example.com") is not None
    r.request(invite("sip:Carol@sip.example.com"))
    r.request(invite("sip:carol@example.com", branch="z9hG4bKx"))
    assert re.findall(r"reg=(\w+)", r.log_text()) == ["yes", "no"]


def test_case_insensitive_aor_and_escapes() -> None:
    r, _ = make('modparam("registrar", "case_sensitive", 0)\n')
    r.request(register(["<sip:a@h1>"], aor="sip:Al%69ce@Example.com"))
    assert record(r, "alice") is not None


def test_memory_flag_on_contacts(tmp_path: Any) -> None:
    url = f"sqlite://{tmp_path / 'ul.db'}"
    create_schema(url, ["location"])
    params = (f'modparam("usrloc", "db_mode", 1)\nmodparam("usrloc", "db_url", "{url}")\n')
    cfg = (params + 'route { if ($rU == "mem") save("location", "m"); '
           'else save("location"); }')
    r, _ = make(cfg=cfg, modules=["sl", "signaling", "db_sqlite", "usrloc", "registrar"])
    try:
        r.request(register(["<sip:a@h1>"], aor="sip:alice@x").replace(
            b"REGISTER sip:example.com", b"REGISTER sip:disk@example.com"))
        r.request(register(["<sip:b@h1>"], aor="sip:bob@x").replace(
            b"REGISTER sip:example.com", b"REGISTER sip:mem@example.com"))
        assert record(r, "bob").contacts[0].flags == FL_MEM
        con = connect(url)
        try:
            rows = con.query("location", columns=["username", "contact"]).rows
            assert [tuple(x) for x in rows] == [("alice", "sip:a@h1")]
        finally:
            con.close()
    finally:
        ul = bind_usrloc(r.compiled.registry)
        if ul.db is not None:
            ul.db.close()


def test_user_agent_methods_and_flags_stored() -> None:
    cfg = 'route { setbflag(3); save("location"); }'
    r, _ = make(cfg=cfg)
    r.request(register(['<sip:a@h1>;methods="INVITE, MESSAGE"', "<sip:a@h2>"],
                       extra="User-Agent: Softphone 2.1\r\nAllow: INVITE, ACK, BYE, FOO\r\n"))
    c1, c2 = record(r).contacts
    assert c1.methods == 1 | 256
    assert c2.methods == 1 | 4 | 8 | 16384
    assert c1.user_agent == "Softphone 2.1" and c1.cflags == 1 << 3


def test_received_avp_and_param_in_reply() -> None:
    cfg = ('modparam("registrar", "received_avp", "$avp(s:rcv)")\n'
           'modparam("registrar", "received_param", "rcvd")\n'
           'route { if (method == "REGISTER") { $avp(s:rcv) = "sip:192.0.2.7:5062"; '
           'save("location"); exit; } lookup("location"); t_relay(); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:alice@10.1.1.1:5060>"]))
    assert 'Contact: <sip:alice@10.1.1.1:5060>;expires=3600;rcvd="sip:192.0.2.7:5062"\r\n' \
        in last(r)
    r.clear()
    r.request(invite())
    [(dest, text)] = forwarded(r)
    assert text.startswith("INVITE sip:alice@10.1.1.1:5060 SIP/2.0\r\n")
    assert (dest.ip, dest.port) == ("192.0.2.7", 5062)


def test_received_param_in_contact_carries_over_like_1_6() -> None:
    r, _ = make()
    r.request(register(['<sip:a@h1>;received="sip:1.2.3.4:5070"', "<sip:a@h2>"]))
    c1, c2 = record(r).contacts
    assert c1.received == c2.received == "sip:1.2.3.4:5070"


def test_socket_header_flag() -> None:
    cfg = ('listen=udp:127.0.0.1:5060\nlisten=udp:127.0.0.1:5070\n'
           'modparam("registrar", "sock_hdr_name", "X-Sock")\n'
           'route { save("location", "s"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:a@h1>"], extra="X-Sock: udp:127.0.0.1:5070\r\n"))
    assert record(r).contacts[0].sock.port == 5070
    r.request(register(["<sip:b@h1>"], aor="sip:bob@x", extra="X-Sock: udp:10.9.9.9:5070\r\n"))
    assert record(r, "bob").contacts[0].sock.port == 5060  # not ours: the receiving one


def test_add_sock_hdr_on_forwarded_request() -> None:
    cfg = ('listen=udp:127.0.0.1:5060 as 203.0.113.5:5099\n'
           'route { add_sock_hdr("X-Sock"); forward("127.0.0.9:5080"); }')
    r, _ = make(cfg=cfg)
    r.request(invite())
    assert "\r\nX-Sock: udp:203.0.113.5:5099\r\n\r\n" in r.sent_text[0]


# ---------------------------------------------------------------- lookup


def test_lookup_rewrites_ruri_and_branches_in_q_order() -> None:
    r, _ = make()
    r.request(register(["<sip:alice@127.0.0.11:5061>;q=0.2", "<sip:alice@127.0.0.12:5062>;q=0.9",
                        "<sip:alice@127.0.0.13:5063>"]))
    r.clear()
    r.request(invite())
    out = forwarded(r)
    assert [t.split("\r\n", 1)[0] for _, t in out] == [
        "INVITE sip:alice@127.0.0.12:5062 SIP/2.0",
        "INVITE sip:alice@127.0.0.11:5061 SIP/2.0",
        "INVITE sip:alice@127.0.0.13:5063 SIP/2.0",
    ]
    assert [(d.ip, d.port) for d, _ in out] == [("127.0.0.12", 5062), ("127.0.0.11", 5061),
                                                ("127.0.0.13", 5063)]
    assert rcs(r, "lookup") == [1]


def test_lookup_not_found_and_expired() -> None:
    r, clock = make()
    r.request(invite("sip:nobody@example.com"))
    assert last(r).startswith("SIP/2.0 404 Not Found\r\n")
    r.request(register(["<sip:alice@h1>;expires=100"]))
    clock.now += 101
    r.request(invite(branch="z9hG4bKi2"))
    assert rcs(r, "lookup") == [-1, -1]


def test_lookup_method_filtering() -> None:
    r, _ = make(lookup='"location", "m"')
    r.request(register(['<sip:alice@127.0.0.11>;methods="MESSAGE"']))
    r.request(invite())
    r.request(invite(method="MESSAGE", branch="z9hG4bKm1"))
    assert rcs(r, "lookup") == [-2, 1]
    # without the flag the methods are not looked at
    r, _ = make()
    r.request(register(['<sip:alice@127.0.0.11>;methods="MESSAGE"']))
    r.request(invite())
    assert rcs(r, "lookup") == [1]


def test_lookup_skips_disallowed_first_contact() -> None:
    r, _ = make(lookup='"location", "m"')
    r.request(register(["<sip:alice@127.0.0.11>;q=0.9", "<sip:alice@127.0.0.12>;q=0.5"],
                       extra="Allow: MESSAGE\r\n"))
    r.request(register(["<sip:alice@127.0.0.13>;q=0.1"], callid="c2",
                       extra="Allow: INVITE, MESSAGE\r\n"))
    r.clear()
    r.request(invite())
    assert [t.split("\r\n", 1)[0] for _, t in forwarded(r)] == [
        "INVITE sip:alice@127.0.0.13 SIP/2.0"]


def test_lookup_no_branches_flag() -> None:
    r, _ = make(lookup='"location", "b"')
    r.request(register(["<sip:alice@127.0.0.11>;q=0.9", "<sip:alice@127.0.0.12>;q=0.5"]))
    r.clear()
    r.request(invite())
    assert [t.split("\r\n", 1)[0] for _, t in forwarded(r)] == [
        "INVITE sip:alice@127.0.0.11 SIP/2.0"]


def test_lookup_sets_q_flags_and_socket() -> None:
    cfg = ('listen=udp:127.0.0.1:5060\nlisten=udp:127.0.0.1:5070\n'
           'route { if (method == "REGISTER") { setbflag(2); save("location"); exit; } '
           'lookup("location", "b"); xlog("bf=$bF ru=$ru fs=$fs\\n"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:alice@h1>;q=0.7"]), rcv=SocketInfo("udp", "127.0.0.1", 5070))
    r.request(invite())
    assert "bf=00000004 ru=sip:alice@h1 fs=udp:127.0.0.1:5070" in r.log_text()


def test_lookup_bad_aor_is_error() -> None:
    cfg = 'route { $var(u) = "not a uri"; $var(rc) = lookup("location", "", "$var(u)"); ' \
          'xlog("lookup=$var(rc)\\n"); }'
    r, _ = make(cfg=cfg)
    r.request(invite())
    assert rcs(r, "lookup") == [-3]


def test_registered_with_callid() -> None:
    cfg = ('route { if (method == "REGISTER") { save("location"); exit; } '
           '$var(cid) = "reg-1"; $var(other) = "x"; $var(aor) = "sip:alice@example.com"; '
           'if (registered("location")) xlog("r1\\n"); '
           'if (registered("location", "$var(aor)", "$var(cid)")) xlog("r2\\n"); '
           'if (!registered("location", "$var(aor)", "$var(other)")) xlog("r3\\n"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:alice@h1>"]))
    r.request(invite())
    log = r.log_text()
    assert "r1" in log and "r2" in log and "r3" in log


# ---------------------------------------------------------------- Path


PATH = "Path: <sip:edge.example.net:5088;lr>\r\nPath: <sip:core.example.net;lr>\r\n"


def test_path_lazy_echoed_only_when_supported() -> None:
    r, _ = make(save='"location", "p1"')
    r.request(register(["<sip:alice@10.0.0.1>"], extra=PATH + "Supported: path\r\n"))
    text = last(r)
    assert text == reply_head(text, "200 OK") + (
        "Contact: <sip:alice@10.0.0.1>;expires=3600\r\n"
        "Path: <sip:edge.example.net:5088;lr>,<sip:core.example.net;lr>\r\n") + TAIL
    assert record(r).contacts[0].path == \
        "<sip:edge.example.net:5088;lr>,<sip:core.example.net;lr>"
    r.request(register(["<sip:alice@10.0.0.1>"], cseq=2, extra=PATH))
    assert "Path:" not in last(r) and last(r).startswith("SIP/2.0 200 OK\r\n")


def test_path_strict_without_support_420_but_saved() -> None:
    r, _ = make(save='"location", "p2"')
    r.request(register(["<sip:alice@10.0.0.1>"], extra=PATH))
    text = last(r)
    assert text == reply_head(text, "420 Bad Extension") + (
        "Contact: <sip:alice@10.0.0.1>;expires=3600\r\n"
        "Unsupported: path\r\n"
        "Path: <sip:edge.example.net:5088;lr>,<sip:core.example.net;lr>\r\n"
        "P-Registrar-Error: No support for found Path indicated\r\n") + TAIL
    assert record(r) is not None and rcs(r) == [1]


def test_path_off_and_no_flag() -> None:
    r, _ = make(save='"location", "p0"')
    r.request(register(["<sip:alice@10.0.0.1>"], extra=PATH + "Supported: path\r\n"))
    assert "Path:" not in last(r)
    assert record(r).contacts[0].path.startswith("<sip:edge")
    r, _ = make()
    r.request(register(["<sip:alice@10.0.0.1>"], extra=PATH + "Supported: path\r\n"))
    assert record(r).contacts[0].path == ""


def test_path_first_hop_must_be_loose() -> None:
    r, _ = make(save='"location", "p1"')
    r.request(register(["<sip:alice@10.0.0.1>"], extra="Path: <sip:edge.example.net>\r\n"))
    text = last(r)
    assert text == reply_head(text, "400 Bad Request") + (
        "P-Registrar-Error: Path parse error\r\n") + TAIL


def test_lookup_routes_through_path() -> None:
    r, _ = make(save='"location", "p1"')
    r.request(register(["<sip:alice@10.0.0.1>"],
                       extra="Path: <sip:127.0.0.20:5088;lr>\r\nPath: <sip:core.example.net;lr>\r\n"))
    r.clear()
    r.request(invite())
    [(dest, text)] = forwarded(r)
    assert text.startswith("INVITE sip:alice@10.0.0.1 SIP/2.0\r\n")
    assert "\r\nRoute: <sip:127.0.0.20:5088;lr>,<sip:core.example.net;lr>\r\n" in text
    assert (dest.ip, dest.port) == ("127.0.0.20", 5088)


def test_path_received_flag_sets_received_and_nat_flag() -> None:
    cfg = ('modparam("usrloc", "nat_bflag", 5)\n'
           'route { if (method == "REGISTER") { save("location", "p0v"); exit; } '
           'lookup("location"); xlog("du=$du bf=$bF\\n"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:alice@10.0.0.1>"],
                       extra="Path: <sip:127.0.0.20;lr;received=sip:198.51.100.9:41000>\r\n"))
    c = record(r).contacts[0]
    assert c.received == "sip:198.51.100.9:41000" and c.cflags == 1 << 5
    assert "received=" in last(r)
    r.request(invite())
    # the Path wins over received for $du
    assert "du=sip:127.0.0.20;lr;received=sip:198.51.100.9:41000 bf=00000020" in r.log_text()


# ---------------------------------------------------------------- through tm, PV AOR


def test_reply_goes_through_tm_when_a_transaction_exists() -> None:
    r, _ = make(cfg='route { t_newtran(); save("location"); }')
    r.request(register(["<sip:a@h1>"]))
    [text] = r.sent_text
    # tm's To-tag (md5-crc) instead of sl's (md5.crc), same registrar headers
    tag = re.search(r"\r\nTo: <sip:alice@example.com>;tag=([0-9a-f]{32}-[0-9a-f]{4})\r\n",
                    text)
    assert tag is not None, text
    assert "\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@h1>;expires=3600\r\n" + SERVER in text
    # a retransmission is answered by tm with the same reply, not by a new save
    r.request(register(["<sip:a@h1>"]))
    assert r.sent_text == [text, text]


def test_lookup_aor_from_pv_keeps_its_own_ruri_user() -> None:
    cfg = ('route { if (method == "REGISTER") { save("location"); exit; } '
           '$var(a) = "sip:alice@anywhere"; $var(rc) = lookup("location", "", "$var(a)"); '
           'xlog("lookup=$var(rc) ru=$ru\\n"); }')
    r, _ = make(cfg=cfg)
    r.request(register(["<sip:alice@h1>"]))
    r.request(invite("sip:somebody-else@example.com"))
    assert "lookup=1 ru=sip:alice@h1" in r.log_text()


def test_registered_in_reply_needs_an_aor() -> None:
    cfg = ('route { exit; } onreply_route { $var(rc) = registered("location"); '
           'xlog("reg=$var(rc)\\n"); }')
    r, _ = make(cfg=cfg)
    r.reply(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n"
            b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\n"
            b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    assert "reg=-1" in r.log_text()
    assert "no AOR and called for a reply" in r.log_text()


def test_retry_after_only_on_5xx_and_stats() -> None:
    r, _ = make('modparam("registrar", "retry_after", 30)\n')
    r.request(register(["<sip:a@h1>;q=9"]))
    assert "Retry-After" not in last(r)
    r.request(register(["<sip:a@h1>"], cseq=2))
    r.request(register(["<sip:a@h2>"], cseq=3))
    assert (stat(r, "accepted_regs"), stat(r, "rejected_regs")) == (2, 1)


def test_known_aor_limit_counts_bindings_before_the_register_like_1_6() -> None:
    # 1.6 compares each new contact with the bindings the AOR had before this
    # REGISTER, so one REGISTER may add several new ones under the limit
    r, _ = make(save='"location", "c2"')
    r.request(register(["<sip:a@h1>"]))
    r.request(register(["<sip:a@h2>", "<sip:a@h3>"], callid="c2"))
    assert last(r).startswith("SIP/2.0 200 OK\r\n")
    assert len(record(r).contacts) == 3
