"""tm's UAC API (t_uac, t_uac_cancel, t_reply by hash:label) and the MI
commands' argument checks, over a ScriptRunner with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from sipserver.core.runtime import SocketInfo
from sipserver.mi.tree import MINodeArg
from sipserver.modules.tm import api, mi
from sipserver.modules.tm.timer import run_timers
from sipserver.modules.tm.write import trans_ident
from sipserver.sip.message import parse_message

from .helpers import feed_reply, first_line, invite, reply_to, runner

CFG = """
route {
    if (method == "INVITE") { t_newtran(); exit; }
    t_relay();
}
"""

HDRS = "From: <sip:mi@127.0.0.1>\r\nTo: <sip:peer@127.0.0.9>\r\n"
SEEN: list[tuple[Any, int, Any]] = []


def _seen(reply: Any, code: int, param: Any) -> None:
    SEEN.append((reply, code, param))


api.register_uac_callback("test:seen", _seen)


def args(*values: str) -> list[MINodeArg]:
    return [MINodeArg(None, v) for v in values]


@pytest.fixture
def tm() -> Any:
    SEEN.clear()
    r, st, clock = runner(CFG, params='modparam("tm", "fr_timer", 3)\n')
    return r, st, clock


def test_request_built_like_1_6(tm: Any) -> None:
    r, st, _ = tm
    tid = api.t_uac(r.rt, "OPTIONS", "sip:peer@127.0.0.9:5099", HDRS)
    assert st.exists(tid)
    _, dest, data = r.sent[-1]
    assert (dest.ip, dest.port) == ("127.0.0.9", 5099)
    msg = parse_message(data)
    lines = data.decode().split("\r\n")
    assert lines[0] == "OPTIONS sip:peer@127.0.0.9:5099 SIP/2.0"
    assert lines[1] == f"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{tid}.0"
    assert lines[2] == "To: sip:peer@127.0.0.9"  # 1.6: <> only with a name or tag
    assert lines[3].startswith("From: <sip:mi@127.0.0.1>;tag=")
    tag = msg.from_.tag
    assert len(tag) == 37 and tag[32] == "-"
    assert lines[4] == "CSeq: 10 OPTIONS"
    assert lines[5].startswith("Call-ID: ") and "@127.0.0.1" in lines[5]
    assert "Content-Length: 0" in lines
    assert "Max-Forwards" not in data.decode()  # 1.6 adds none


def test_given_ids_kept_extra_headers_body_and_substitution(tm: Any) -> None:
    r, _, _ = tm
    hdrs = ('From: "Me" <sip:mi@x>;tag=abc\r\nTo: sip:p@y\r\nCall-ID: cid-1\r\n'
            "CSeq: 7 MESSAGE\r\nContact: <sip:!!>\r\nContent-Type: text/plain\r\n")
    api.t_uac(r.rt, "MESSAGE", "sip:p@127.0.0.9", hdrs, "hello", max_forwards=70)
    data = r.sent[-1][2].decode()
    assert ('To: sip:p@y\r\nFrom: "Me" <sip:mi@x>;tag=abc\r\nCSeq: 7 MESSAGE\r\n'
            "Call-ID: cid-1\r\nMax-Forwards: 70\r\nContent-Length: 5\r\nUser-Agent: ") in data
    assert "Contact: <sip:127.0.0.1:5060>\r\nContent-Type: text/plain\r\n\r\nhello" in data
    assert "Content-Length: 5\r\n" in data


@pytest.mark.parametrize(("hdrs", "body", "reason"), [
    ("To: <sip:a@b>\r\n", "", "From missing"),
    ("From: <sip:a@b>\r\n", "", "To missing"),
    (HDRS + "CSeq: x OPTIONS\r\n", "", "Bad CSeq number"),
    (HDRS + "CSeq: 3 INVITE\r\n", "", "CSeq method mismatch"),
    (HDRS, "body", "Content-Type missing"),
    (HDRS + "Content-Type: a/b\r\nContent-Length: 4\r\n", "body", "Content-Length disallowe"),
    ("no colon here\r\n", "", "Bad headers"),
])
def test_header_checks(tm: Any, hdrs: str, body: str, reason: str) -> None:
    r, _, _ = tm
    with pytest.raises(api.UacError) as e:
        api.t_uac(r.rt, "OPTIONS", "sip:p@127.0.0.9", hdrs, body)
    assert (e.value.status, e.value.reason) == (400, reason)


def test_callback_on_final_reply_in_hook(tm: Any) -> None:
    r, st, _ = tm
    tid = api.t_uac(r.rt, "OPTIONS", "sip:p@127.0.0.9", HDRS, callback="test:seen", cb_param=[1])
    sent = r.sent[-1][2]
    assert feed_reply(r, reply_to(sent, 100, "Trying"))
    assert SEEN == []
    assert feed_reply(r, reply_to(sent, 200, "OK"))
    assert [(c, p) for _, c, p in SEEN] == [(200, [1])]
    assert SEEN[0][0].status == 200
    assert feed_reply(r, reply_to(sent, 200, "OK"))  # retransmission: once only
    assert len(SEEN) == 1
    assert st.load(tid).uas_status == 200
    assert not [d for _, d_, d in r.sent if first_line(d).startswith("SIP/2.0")]


def test_timeout_reported_by_the_timer(tm: Any) -> None:
    r, _, clock = tm
    api.t_uac(r.rt, "OPTIONS", "sip:p@127.0.0.9", HDRS, callback="test:seen")
    n = len(r.sent)
    clock.now += 0.6
    run_timers(r.compiled.registry.modules["tm"].state)
    assert len(r.sent) == n + 1  # retransmitted
    clock.now += 3
    st = r.compiled.registry.modules["tm"].state
    run_timers(st)
    api.local_uac(st).check_ended()
    assert [(rep, c) for rep, c, _ in SEEN] == [(None, 408)]


def test_negative_invite_reply_acked_and_reported(tm: Any) -> None:
    r, st, _ = tm
    api.t_uac(r.rt, "INVITE", "sip:p@127.0.0.9", HDRS, callback="test:seen")
    sent = r.sent[-1][2]
    assert feed_reply(r, reply_to(sent, 486, "Busy Here"))
    assert first_line(r.sent[-1][2]) == "ACK sip:p@127.0.0.9 SIP/2.0"
    api.local_uac(st).check_ended()
    assert [c for _, c, _ in SEEN] == [486]


def test_uac_cancel(tm: Any) -> None:
    r, _, _ = tm
    hdrs = HDRS + "Call-ID: cc1\r\nCSeq: 5 INVITE\r\n"
    api.t_uac(r.rt, "INVITE", "sip:p@127.0.0.9", hdrs)
    sent = r.sent[-1][2]
    assert not api.t_uac_cancel(r.rt, "cc1", 6)
    assert feed_reply(r, reply_to(sent, 180, "Ringing"))
    assert api.t_uac_cancel(r.rt, "cc1", "5")
    assert first_line(r.sent[-1][2]) == "CANCEL sip:p@127.0.0.9 SIP/2.0"
    mod = r.compiled.registry.modules["tm"]
    assert mi.mi_t_uac_cancel(args("cc1", "5"), r.rt, mod).code == 200
    assert mi.mi_t_uac_cancel(args("nope", "5"), r.rt, mod).reason == "No such transaction"
    assert mi.mi_t_uac_cancel(args("nope"), r.rt, mod).code == 400


def test_reply_by_ident_and_mi_t_reply(tm: Any) -> None:
    r, st, _ = tm
    r.request(invite())
    tid = next(iter(st.table)).decode()
    ident = trans_ident(tid)
    mod = r.compiled.registry.modules["tm"]
    bad = [
        (args("1", "2"), 400, "Too few or too many arguments"),
        (args("abc", "x", ident, "t", "."), 400, "Invalid reply code"),
        (args("700", "x", ident, "t", "."), 400, "Invalid reply code"),
        (args("200", "x", "12", "t", "."), 400, "Invalid trans_id"),
        (args("200", "x", "a:1", "t", "."), 400, "Invalid index in trans_id"),
        (args("200", "x", "1:b", "t", "."), 400, "Invalid label in trans_id"),
        (args("200", "x", "1:1", "t", "."), 404, "Transaction not found"),
    ]
    for a, code, reason in bad:
        rep = mi.mi_t_reply(a, r.rt, mod)
        assert (rep.code, rep.reason) == (code, reason)
    n = len(r.sent)
    rep = mi.mi_t_reply(args("603", "Go Away", ident, "tt1", "X-A: 1", "hi"), r.rt, mod)
    assert (rep.code, rep.reason) == (200, "OK")
    out = r.sent[n][2].decode()
    assert out.startswith("SIP/2.0 603 Go Away\r\n")
    assert ";tag=tt1\r\n" in out and "X-A: 1\r\n" in out and out.endswith("\r\n\r\nhi")
    assert api.t_reply_ident(r.rt, "9:9", 200, "OK") == -2


def test_t_hash(tm: Any) -> None:
    r, st, _ = tm
    r.request(invite())
    tid = next(iter(st.table)).decode()
    rep = mi.mi_t_hash([], r.rt, r.compiled.registry.modules["tm"])
    assert len(rep.kids) == 65536
    node = rep.kids[int(tid[:4], 16)]
    assert [(a.name, a.value) for a in node.attrs] == [("Current", "1"), ("Total", "1")]
    assert rep.kids[0].value == "0"


def test_mi_t_uac_dlg_errors(tm: Any) -> None:
    r, _, _ = tm
    mod = r.compiled.registry.modules["tm"]
    cases = [
        (args("OPTIONS", "sip:a@b"), 400, "Too few or too many arguments"),
        (args("OPTIONS", "bad uri", ".", ".", HDRS), 400, "Invalid RURI"),
        (args("OPTIONS", "sip:a@b", "nope", ".", HDRS), 400, "Invalid NEXTHOP"),
        (args("OPTIONS", "sip:a@b", ".", "udp:10.9.9.9:5060", HDRS), 404,
         "Local socket not found"),
        (args("OPTIONS", "sip:a@b", ".", ".", "."), 400, "To missing"),
        (args("OPTIONS", "sip:a@b", ".", ".", HDRS, "body"), 400, "Content-Type missing"),
    ]
    for a, code, reason in cases:
        rep = mi.mi_t_uac_dlg(a, r.rt, mod)
        assert (rep.code, rep.reason) == (code, reason)


def test_uac_reply_tree_formats() -> None:
    sent = (b"OPTIONS sip:p@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:p@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n")
    ok = (reply_to(sent, 200, "OK").replace(b"Content-Length", b"Contact: <sip:p@9.9.9.9>\r\n"
          b"Record-Route: <sip:p2;lr>\r\nRecord-Route: <sip:p1;lr>\r\nContent-Length"))
    tree = mi.uac_reply_tree(200, parse_message(ok))
    values = [k.value for k in tree.kids]
    assert values[:4] == ["200 OK", "sip:p@9.9.9.9", "sip:p1;lr", "Route: <sip:p1;lr>, <sip:p2;lr>"]
    assert values[4].startswith("Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n")
    faked = mi.uac_reply_tree(408, None)
    assert [k.value for k in faked.kids] == ["408 Request Timeout", ".", ".", ".", "."]
    busy = mi.uac_reply_tree(486, parse_message(reply_to(sent, 486, "Busy Here")))
    assert [k.value for k in busy.kids][:4] == ["486 Busy Here", ".", ".", "."]


def test_2xx_missed_by_the_receiver_is_reported_by_the_timer(tm: Any) -> None:
    from sipserver.modules.tm.replies import process_reply

    r, st, clock = tm
    api.t_uac(r.rt, "OPTIONS", "sip:p@127.0.0.9", HDRS, callback="test:seen", cb_param="x")
    sent = r.sent[-1][2]
    process_reply(st, r.context(reply_to(sent, 202, "Accepted"), src=("127.0.0.9", 5060)))
    lu = api.local_uac(st)
    lu.check_ended()
    assert SEEN == []  # the receiver's turn
    clock.now += 1
    lu.check_ended()
    assert [(c, p) for _, c, p in SEEN] == [(202, "x")]


def test_local_route_sees_and_changes_requests_tm_builds() -> None:
    r, _st, _ = runner('local_route { if (is_method("OPTIONS")) append_hf("X-Local: $rm\\r\\n"); '
                      'remove_hf("X-Secret"); }\n' + CFG, modules=("sl", "tm", "textops"))
    api.t_uac(r.rt, "OPTIONS", "sip:peer@127.0.0.9:5099", HDRS + "X-Secret: 1\r\n")
    _, _, data = r.sent[-1]
    text = data.decode()
    assert "\r\nX-Local: OPTIONS\r\n" in text and "X-Secret" not in text
    msg = parse_message(data)  # still a well-formed request after the route
    assert msg.method == "OPTIONS"
    api.t_uac(r.rt, "MESSAGE", "sip:peer@127.0.0.9:5099", HDRS + "Content-Type: text/plain\r\n", "hi")
    assert "X-Local" not in r.sent[-1][2].decode()


def test_tm_replies_use_the_request_connection_id() -> None:
    r, _st, _ = runner('route { t_reply("404", "Nobody"); }\n')
    tcp = SocketInfo("tcp", "127.0.0.1", 5060)
    r.request(invite(), src=("127.0.0.2", 5070), proto="tcp", rcv=tcp, conn=77)
    _, dest, data = r.sent[-1]
    assert data.startswith(b"SIP/2.0 404 Nobody\r\n") and dest.proto == "tcp"
    assert r.transport.conns[-1] == 77
