"""tm: timer overrides, onreply AVP mode, t_local_replied, t_cancel_branch,
t_add_hdrs, t_reply_with_body, minor branches, 6xx, CANCEL retransmission,
DNS failover and $bavp (fake clock, recording transport)."""

from __future__ import annotations

import pytest

from sipserver.core.runtime import Destination
from sipserver.modules.tm.timer import run_timers

from .helpers import feed_reply, first_line, invite, reply_to, runner


def sent(r, n: int = 0) -> list[bytes]:
    return [d for _, _, d in r.sent[n:]]


def txn(st):
    (tid,) = [k.decode() for k, _ in st.table.items()]
    return st.load(tid)


# ---------------------------------------------------------------- item 1: timers, AVP mode


def test_fr_timer_avp_overrides_per_transaction() -> None:
    r, st, clock = runner("""
route { if ($rU == "short") $avp(i:24) = 1; t_relay(); }
""", params='modparam("tm", "fr_timer", 10)\nmodparam("tm", "fr_timer_avp", "$avp(i:24)")\n')
    r.request(invite(method="OPTIONS", ruri="sip:short@127.0.0.5:5080"))
    r.request(invite(method="OPTIONS", ruri="sip:long@127.0.0.5:5080", branch="z9hG4bKl",
                     call_id="c2"))
    clock.now += 1.0
    run_timers(st)
    timeouts = [d for d in sent(r) if first_line(d).startswith("SIP/2.0 408")]
    assert len(timeouts) == 1 and b"z9hG4bKabc" in timeouts[0]
    clock.now += 9.0
    run_timers(st)
    assert len([d for d in sent(r) if first_line(d).startswith("SIP/2.0 408")]) == 2


def test_fr_inv_timer_avp_and_plain_avp_name() -> None:
    r, st, clock = runner("""
route { $avp(s:inv) = "3"; t_relay(); }
""", params='modparam("tm", "fr_inv_timer", 100)\nmodparam("tm", "fr_inv_timer_avp", "s:inv")\n')
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 180, "Ringing"))
    clock.now += 2.9
    run_timers(st)
    assert not any(first_line(d).startswith("SIP/2.0 408") for d in sent(r))
    clock.now += 0.2
    run_timers(st)
    assert first_line(r.sent[-1][2]) == "SIP/2.0 408 Request Timeout"


def test_bad_timer_avp_definition_fails_at_startup() -> None:
    with pytest.raises(Exception, match="AVP"):
        runner("route { t_relay(); }", params='modparam("tm", "fr_timer_avp", "$avp(x:1)")\n')


def test_restart_fr_on_each_reply_off() -> None:
    cfg = "route { t_relay(); }"
    for restart, expect_408_at in ((1, 3.5), (0, 2.0)):
        r, st, clock = runner(cfg, params=f'modparam("tm", "fr_inv_timer", 2)\n'
                                          f'modparam("tm", "restart_fr_on_each_reply", {restart})\n')
        r.request(invite())
        br = r.sent[1][2]
        feed_reply(r, reply_to(br, 180, "Ringing"))
        clock.now += 1.5
        feed_reply(r, reply_to(br, 180, "Ringing"))  # same code again: restarts only with 1
        clock.now = 1000.0 + expect_408_at - 0.1
        run_timers(st)
        assert not any(b"408" in d.split(b"\r\n")[0] for d in sent(r)), restart
        clock.now = 1000.0 + expect_408_at + 0.1
        run_timers(st)
        assert any(first_line(d) == "SIP/2.0 408 Request Timeout" for d in sent(r)), restart


ONREPLY_AVPS = """
route { $avp(s:a) = "req"; t_on_reply("1"); t_on_failure("2"); t_relay(); }
onreply_route[1] {
    $var(seen) = $avp(s:a);
    $avp(s:a) = "reply";
}
failure_route[2] { $var(fail) = $avp(s:a); }
"""


@pytest.mark.parametrize("mode,seen,fail", [(0, 0, "req"), (1, "req", "reply")])
def test_onreply_avp_mode(mode: int, seen, fail) -> None:
    r, _st, _clock = runner(ONREPLY_AVPS, params=f'modparam("tm", "onreply_avp_mode", {mode})\n')
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 486, "Busy Here"))
    assert r.rt.script_vars["seen"] == seen
    assert r.rt.script_vars["fail"] == fail


# ---------------------------------------------------------------- item 2: functions


LOCAL = """
route { t_on_failure("1"); t_on_reply("2"); t_relay(); }
onreply_route[2] {
    if (t_local_replied("all")) $var(all) = "yes"; else $var(all) = "no";
}
failure_route[1] {
    if (t_local_replied("branch")) $var(branch) = "local"; else $var(branch) = "remote";
    if (t_local_replied("last")) $var(last) = "local"; else $var(last) = "remote";
}
"""


def test_t_local_replied_after_a_remote_reply() -> None:
    r, _st, _clock = runner(LOCAL)
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 486, "Busy Here"))
    v = r.rt.script_vars
    assert (v["all"], v["branch"], v["last"]) == ("yes", "remote", "remote")


def test_t_local_replied_after_a_timeout() -> None:
    r, st, clock = runner(LOCAL, params='modparam("tm", "fr_timer", 1)\n')
    r.request(invite())
    clock.now += 1.5
    run_timers(st)
    v = r.rt.script_vars
    assert (v["branch"], v["last"]) == ("local", "local")


def test_t_local_replied_in_request_route_and_bad_arg() -> None:
    r, _st, _clock = runner("""
route {
    t_newtran();
    if (t_local_replied("all")) $var(a) = 1;
    t_reply("404", "No");
    if (t_local_replied("last")) $var(l) = 1;
}""")
    r.request(invite(method="MESSAGE"))
    assert r.rt.script_vars["a"] == 1 and r.rt.script_vars["l"] == 1
    with pytest.raises(Exception, match="invalid param"):
        runner('route { t_local_replied("some"); }')


CANCEL_BRANCH = """
route { append_branch("sip:carol@127.0.0.6:5090"); t_on_reply("1"); t_relay(); }
onreply_route[1] {
    if ($rs == "180" && $T_branch_idx == 0) t_cancel_branch();
    if ($rs == "183") t_cancel_branch("o");
    if ($rs == "486") t_cancel_branch("a");
}
"""


def _cancels(out: list[bytes]) -> list[bytes]:
    return [d for d in out if d.startswith(b"CANCEL ")]


def test_t_cancel_branch_current() -> None:
    r, _st, _clock = runner(CANCEL_BRANCH)
    r.request(invite())
    b0, b1 = r.sent[1][2], r.sent[2][2]
    n = len(r.sent)
    feed_reply(r, reply_to(b0, 180, "Ringing"))
    c = _cancels(sent(r, n))
    assert len(c) == 1 and c[0].startswith(b"CANCEL sip:bob@127.0.0.5:5080")
    n = len(r.sent)
    feed_reply(r, reply_to(b1, 180, "Ringing", to_tag="c"))  # branch 1: not cancelled
    assert _cancels(sent(r, n)) == []


def test_t_cancel_branch_others_and_all() -> None:
    r, _st, _clock = runner(CANCEL_BRANCH)
    r.request(invite())
    b0, b1 = r.sent[1][2], r.sent[2][2]
    feed_reply(r, reply_to(b1, 180, "Ringing", to_tag="c"))  # branch 1 provisional
    n = len(r.sent)
    feed_reply(r, reply_to(b0, 183, "Progress"))  # 'o': every other branch
    c = _cancels(sent(r, n))
    assert len(c) == 1 and c[0].startswith(b"CANCEL sip:carol@127.0.0.6:5090")

    r, _st, _clock = runner(CANCEL_BRANCH)
    r.request(invite())
    b0, b1 = r.sent[1][2], r.sent[2][2]
    feed_reply(r, reply_to(b1, 182, "Queued", to_tag="c"))
    n = len(r.sent)
    feed_reply(r, reply_to(b0, 486, "Busy"))  # 'a' with a final reply: all but this one
    c = _cancels(sent(r, n))
    assert len(c) == 1 and c[0].startswith(b"CANCEL sip:carol@")


def test_t_add_hdrs_goes_into_cancel_and_ack() -> None:
    r, _st, _clock = runner("""
route {
    if (method == "CANCEL") { t_relay(); exit; }
    t_newtran();
    t_add_hdrs("X-Extra: $rU\\r\\n");
    t_relay();
}""")
    r.request(invite())
    br = r.sent[0][2]  # t_newtran first: no automatic 100
    assert br.startswith(b"INVITE ")
    feed_reply(r, reply_to(br, 180, "Ringing"))
    n = len(r.sent)
    r.request(invite(method="CANCEL"))
    cancel = _cancels(sent(r, n))[0]
    assert b'text="ORIGINATOR_CANCEL"\r\nX-Extra: bob\r\nUser-Agent: ' in cancel
    n = len(r.sent)
    feed_reply(r, reply_to(br, 487, "Request Terminated"))
    ack = sent(r, n)[0]
    assert ack.startswith(b"ACK ") and b"\r\nX-Extra: bob\r\n" in ack


def test_t_add_hdrs_without_transaction_is_false() -> None:
    r, _st, _clock = runner('route { if (!t_add_hdrs("X: 1\\r\\n")) $var(r) = "no"; }')
    r.request(invite())
    assert r.rt.script_vars["r"] == "no"


def test_t_reply_with_body() -> None:
    r, _st, _clock = runner("""
route {
    append_to_reply("Content-Type: text/plain\\r\\n");
    t_reply_with_body("200", "Here", "hello $rU");
}""", modules=("sl", "tm", "textops"))
    r.request(invite(method="MESSAGE"))
    out = r.sent[0][2]
    assert first_line(out) == "SIP/2.0 200 Here"
    assert out.endswith(b"CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
                        b"Server: OpenSIPS (1.6.4-notls (x86_64/linux))\r\n"
                        b"Content-Length: 9\r\n\r\nhello bob")
    r.request(invite(method="MESSAGE"))  # retransmission: the same reply
    assert r.sent[1][2] == out


def test_t_flush_flags() -> None:
    r, _st, _clock = runner("""
route { t_newtran(); setflag(3); t_flush_flags(); t_on_failure("1"); t_relay(); }
failure_route[1] { if (isflagset(3)) $var(f) = 1; }
""")
    r.request(invite())
    feed_reply(r, reply_to(r.sent[0][2], 404, "Not Found"))
    assert r.rt.script_vars["f"] == 1


# ---------------------------------------------------------------- item 3


def test_minor_branch_is_not_waited_for() -> None:
    r, _st, _clock = runner("""
route {
    append_branch("sip:carol@127.0.0.6:5090");
    t_on_branch("1");
    t_relay();
}
branch_route[1] { if ($ru =~ "carol") setbflag(5); }
""", params='modparam("tm", "minor_branch_flag", 5)\n')
    r.request(invite())
    b0, b1 = r.sent[1][2], r.sent[2][2]
    assert b1.startswith(b"INVITE sip:carol@")
    feed_reply(r, reply_to(b1, 180, "Ringing", to_tag="c"))
    n = len(r.sent)
    feed_reply(r, reply_to(b0, 486, "Busy Here"))
    out = sent(r, n)
    # ACK to the 486, the 486 upstream, CANCEL to the minor branch
    assert out[0].startswith(b"ACK sip:bob@")
    assert any(first_line(d) == "SIP/2.0 486 Busy Here" for d in out)
    assert len(_cancels(out)) == 1 and _cancels(out)[0].startswith(b"CANCEL sip:carol@")


@pytest.mark.parametrize("block", [0, 1])
def test_6xx_blocks_serial_forking_unless_disabled(block: int) -> None:
    r, _st, _clock = runner("""
route { t_on_failure("1"); t_relay(); }
failure_route[1] {
    rewritehostport("127.0.0.9:5099");
    if (t_relay()) $var(r) = "ok"; else $var(r) = "blocked";
}
""", params=f'modparam("tm", "disable_6xx_block", {1 - block})\n')
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 603, "Decline"))
    assert r.rt.script_vars["r"] == ("blocked" if block else "ok")


def test_cancel_is_retransmitted_until_answered() -> None:
    r, st, clock = runner("""
route { if (method == "CANCEL") { t_relay(); exit; } t_relay(); }
""")
    r.request(invite())
    br = r.sent[1][2]
    feed_reply(r, reply_to(br, 180, "Ringing"))
    r.request(invite(method="CANCEL"))
    cancel = _cancels(sent(r))[0]
    for step, count in ((0.4, 1), (0.55, 2), (1.0, 2), (1.6, 3)):
        clock.now = 1000.0 + step
        run_timers(st)
        assert len(_cancels(sent(r))) == count, step
    assert _cancels(sent(r))[-1] == cancel
    feed_reply(r, reply_to(cancel, 200, "OK"))
    clock.now += 10
    run_timers(st)
    assert len(_cancels(sent(r))) == 3


def test_cancel_retransmission_stops_at_fr_timer() -> None:
    r, st, clock = runner("route { if (method == \"CANCEL\") { t_relay(); exit; } t_relay(); }",
                          params='modparam("tm", "fr_timer", 3)\nmodparam("tm", "wt_timer", 20)\n')
    r.request(invite())
    feed_reply(r, reply_to(r.sent[1][2], 180, "Ringing"))
    r.request(invite(method="CANCEL"))
    for i in range(1, 60):
        clock.now = 1000.0 + i * 0.1
        run_timers(st)
    n = len(_cancels(sent(r)))
    assert 3 <= n <= 5  # 0, .5, 1.5, (2.9 cap T2=4 -> no more) until fr at 3 s
    for i in range(60, 150):
        clock.now = 1000.0 + i * 0.1
        run_timers(st)
    assert len(_cancels(sent(r))) == n


class _MultiTransport:
    """Wraps the recording transport: a name resolves to several addresses;
    sends to addresses in `down` fail."""

    def __init__(self, inner, addresses, down=()) -> None:
        self.inner = inner
        self.addresses = addresses
        self.down = set(down)

    def resolve(self, host, port, proto, is_sips=False):
        if host == "multi.example":
            return [Destination("udp", ip, 5060) for ip in self.addresses]
        return self.inner.resolve(host, port, proto, is_sips)

    def choose_socket(self, dest, forced=None):
        return self.inner.choose_socket(dest, forced)

    def send(self, sock, dest, data):
        if dest.ip in self.down:
            return False
        return self.inner.send(sock, dest, data)


def _failover_runner(cfg: str = "", down=(), params: str = ""):
    r, st, clock = runner(cfg or 'route { t_on_failure("1"); t_relay(); }\n'
                          'failure_route[1] { $var(failure) = 1; }', params=params)
    r.rt.transport = _MultiTransport(r.transport, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], down)
    return r, st, clock


def _dests(r, n: int = 0) -> list[str]:
    """Where INVITEs went (retransmissions not repeated)."""
    out: list[str] = []
    for _, d, data in r.sent[n:]:
        if data.startswith(b"INVITE") and d.ip not in out:
            out.append(d.ip)
    return out


def test_dns_failover_on_send_failure() -> None:
    r, st, _clock = _failover_runner(down=["10.0.0.1"])
    r.request(invite(ruri="sip:bob@multi.example"))
    assert _dests(r) == ["10.0.0.2"]
    assert b".0\r\n" in r.sent[1][2]  # the same branch, just another address
    assert len(txn(st).branches) == 1


def test_dns_failover_on_503_and_timeout() -> None:
    r, st, clock = _failover_runner(params='modparam("tm", "fr_timer", 2)\n')
    r.request(invite(ruri="sip:bob@multi.example"))
    first = r.sent[1][2]
    n = len(r.sent)
    feed_reply(r, reply_to(first, 503, "Service Unavailable"))
    assert _dests(r, n) == ["10.0.0.2"]
    second = next(d for _, _, d in r.sent[n:] if d.startswith(b"INVITE"))
    assert b".1\r\n" in second and second.replace(b".1\r\n", b".0\r\n", 1) == first
    assert "failure" not in r.rt.script_vars
    clock.now += 2.5  # no reply at all on the second address: the third one
    run_timers(st)
    assert _dests(r, n) == ["10.0.0.2", "10.0.0.3"]
    clock.now += 2.5  # nothing left: the failure route runs
    run_timers(st)
    assert r.rt.script_vars["failure"] == 1


def test_no_dns_failover_after_a_reply_or_when_disabled() -> None:
    r, st, clock = _failover_runner(params='modparam("tm", "fr_inv_timer", 2)\n')
    r.request(invite(ruri="sip:bob@multi.example"))
    feed_reply(r, reply_to(r.sent[1][2], 180, "Ringing"))
    clock.now += 3
    run_timers(st)  # timed out after a reply: no failover
    assert _dests(r) == ["10.0.0.1"] and r.rt.script_vars["failure"] == 1

    r, _st, _clock = _failover_runner('route { t_relay("0x04"); }')
    r.request(invite(ruri="sip:bob@multi.example"))
    feed_reply(r, reply_to(r.sent[1][2], 503, "Service Unavailable"))
    assert _dests(r) == ["10.0.0.1"]

    r, _st, _clock = _failover_runner("disable_dns_failover=yes\nroute { t_relay(); }")
    r.request(invite(ruri="sip:bob@multi.example"))
    feed_reply(r, reply_to(r.sent[1][2], 503, "Service Unavailable"))
    assert _dests(r) == ["10.0.0.1"]


# ---------------------------------------------------------------- item 5: $bavp


def test_bavp_per_branch() -> None:
    r, _st, _clock = runner("""
route {
    append_branch("sip:carol@127.0.0.6:5090");
    t_on_branch("1"); t_on_reply("2"); t_on_failure("3");
    t_relay();
}
branch_route[1] {
    $bavp(s:who) = $rU;
    $bavp(s:who) = "x" + $rU;
}
onreply_route[2] {
    $var(r) = $bavp(s:who) + "/" + $(bavp(s:who)[1]);
    $(bavp(s:who)[0]) = "seen";
}
failure_route[3] { $var(f) = $bavp(s:who); $var(g) = $(bavp(s:who)[1]); $var(n) = $bavp(s:none); }
""")
    r.request(invite())
    b0, b1 = r.sent[1][2], r.sent[2][2]
    feed_reply(r, reply_to(b1, 480, "Away", to_tag="c"))
    assert r.rt.script_vars["r"] == "xcarol/carol"
    feed_reply(r, reply_to(b0, 404, "Nope"))
    assert r.rt.script_vars["r"] == "xbob/bob"
    # the 404 wins (480 is worse): the failure route sees branch 0's AVPs
    assert r.rt.script_vars["f"] == "seen" and r.rt.script_vars["g"] == "bob"
    assert r.rt.script_vars["n"] == 0


def test_bavp_null_in_request_route() -> None:
    r, _st, _clock = runner('route { if ($bavp(s:x) == NULL) $var(n) = 1; }')
    r.request(invite())
    assert r.rt.script_vars["n"] == 1


# ---------------------------------------------------------------- item 4: t_replicate, t_write_*


def test_t_replicate_keeps_replies_here() -> None:
    r, st, _clock = runner("""
route {
    if (method == "REGISTER") {
        t_replicate("sip:127.0.0.7:5070");
        sl_send_reply("200", "Saved");
        exit;
    }
}""", params='modparam("tm", "fr_timer", 2)\n')
    reg = invite(method="REGISTER", ruri="sip:x.example")
    r.request(reg)
    out = sent(r)
    assert out[0].startswith(b"REGISTER sip:x.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")
    assert r.sent[0][1] == Destination("udp", "127.0.0.7", 5070)
    assert first_line(out[1]) == "SIP/2.0 200 Saved"
    n = len(r.sent)
    feed_reply(r, reply_to(out[0], 200, "OK"), src=("127.0.0.7", 5070))
    assert len(r.sent) == n  # not relayed
    assert txn(st).uas_status == 200
    r2, st2, clock2 = runner('route { t_replicate("sip:127.0.0.7:5070", "0x04"); }',
                             params='modparam("tm", "fr_timer", 1)\n')
    r2.request(invite(method="MESSAGE"))
    clock2.now += 1.5
    run_timers(st2)  # the timeout makes no 408 upstream either
    assert sent(r2) and not any(d.startswith(b"SIP/2.0") for d in sent(r2))


WRITE_CFG = """
modparam("tm", "tw_append", "test: ua=$hdr(User-Agent) ;nope=$hdr(X-None); $rb")
modparam("tm", "tw_append", "other: x=$rm")
route {
    t_newtran();
    if ($rU == "unix") t_write_unix("vm/test", "@PATH@");
    else t_write_req("vm", "@PATH@");
}
"""

INVITE_RR = (
    "INVITE sip:bob@x.example SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKw\r\n"
    "Record-Route: <sip:p1.example;lr>, <sip:p1b.example;lr>\r\n"
    "Record-Route: <sip:p2.example;lr>\r\n"
    "From: \"A\" <sip:a@x>;tag=f1\r\nTo: <sip:bob@x.example>\r\nCall-ID: cw\r\n"
    "CSeq: 7 INVITE\r\nContact: <sip:a@10.0.0.1:5062>\r\nUser-Agent: phone\r\n"
    "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nbody")


def test_t_write_req_fifo_record(tmp_path) -> None:
    import os

    fifo = tmp_path / "vm.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r, st, clock = runner(WRITE_CFG.replace("@PATH@", str(fifo)),
                              params='modparam("tm", "fr_timer", 2)\n')
        r.request(invite(method="MESSAGE"))
        data = os.read(reader, 65536).decode()
    finally:
        os.close(reader)
    t = txn(st)
    from sipserver.modules.tm.write import trans_ident

    assert data == ("0.3\nsip_request.vm\nMESSAGE\nbob\n127.0.0.5\n127.0.0.1\n.\n"
                    "sip:bob@127.0.0.5:5080\nsip:a@x\n<sip:a@x>;tag=f1\n<sip:bob@x>\nc1\nf1\n\n1\n"
                    f"{trans_ident(t.tid)}\n.\n.\nP-MsgFlags: 0\n.\n.\n")
    # nobody answers: the blind branch times out into a 408
    clock.now += 2.5
    run_timers(st)
    assert first_line(r.sent[-1][2]) == "SIP/2.0 408 Request Timeout"


def test_t_write_unix_record_with_append_and_routes(tmp_path) -> None:
    import socket

    path = str(tmp_path / "vm.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    try:
        r, _st, _clock = runner(WRITE_CFG.replace("@PATH@", path))
        r.request(INVITE_RR.replace("sip:bob@", "sip:unix@").encode())
        srv.settimeout(1)
        data = srv.recv(65536).decode()
    finally:
        srv.close()
    lines = data.split("\n")
    assert lines[:9] == ["0.3", "sip_request.vm", "INVITE", "unix", "x.example", "127.0.0.1", ".",
                         "sip:unix@x.example", "sip:a@10.0.0.1:5062"]
    assert lines[9:15] == ['"A" <sip:a@x>;tag=f1', "<sip:unix@x.example>", "cw", "f1", "", "7"]
    # loose first hop: its URI is the next hop; 1.6 skips the rest of the first header
    assert lines[16:18] == ["<sip:p1.example;lr>,<sip:p2.example;lr>", "sip:p1.example;lr"]
    assert data.endswith("\nP-MsgFlags: 0\nua: phone\n.\nbody\n")


def test_t_write_fixup_errors() -> None:
    with pytest.raises(Exception, match="unknown append name"):
        runner('route { t_newtran(); t_write_req("vm/none", "/tmp/x"); }')
    with pytest.raises(Exception, match="duplicated tw_append"):
        runner('route { exit; }', params='modparam("tm", "tw_append", "a: x=$rm")\n'
                                         'modparam("tm", "tw_append", "A: y=$rm")\n')
    r, _st, _clock = runner('route { if (!t_write_req("vm", "/nonexistent/fifo")) $var(r) = -1; }')
    r.request(invite(method="MESSAGE"))
    assert r.rt.script_vars["r"] == -1


# ---------------------------------------------------------------- item 6: TCP


def test_replies_over_tcp_go_on_the_request_connection() -> None:
    r, st, clock = runner("listen=udp:127.0.0.1:5060\nlisten=tcp:127.0.0.1:5060\n"
                          "route { t_relay(); }", params='modparam("tm", "fr_timer", 1)\n')
    tcp = next(s for s in r.transport.sockets if s.proto == "tcp")
    r.request(invite().replace(b"SIP/2.0/UDP 127.0.0.2:5070", b"SIP/2.0/TCP 127.0.0.2:5070"),
              src=("127.0.0.2", 40000), proto="tcp", rcv=tcp, conn=5)
    # the 100 goes on connection 5; were it closed, a new one would go to the
    # source IP and the Via port (no rport), as 1.6 and RFC 3261 18.2.2 do
    assert r.sent[0][1] == Destination("tcp", "127.0.0.2", 5070) and r.transport.conns[0] == 5
    clock.now += 1.5
    run_timers(st)  # the timer process: the 408 takes the same connection
    assert first_line(r.sent[-1][2]) == "SIP/2.0 408 Request Timeout"
    assert r.sent[-1][1] == Destination("tcp", "127.0.0.2", 5070) and r.sent[-1][0] is tcp
    assert r.transport.conns[-1] == 5
