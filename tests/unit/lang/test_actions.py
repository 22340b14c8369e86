"""Core actions (spec section 6; checklist 14, 29-33): compile-time checks,
run-time effects and 1.6 return codes."""

from __future__ import annotations

from typing import Any

import pytest

from sipserver.core.context import MAX_BRANCHES, Branch, MsgContext
from sipserver.core.exports import BRANCH_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE
from sipserver.core.runtime import (
    L_ALERT,
    L_DBG,
    L_ERR,
    L_INFO,
    L_NOTICE,
    L_WARN,
    RecordingTransport,
    Runtime,
    SocketInfo,
)
from sipserver.lang import ast
from sipserver.lang.actions import CORE_ACTIONS, SERIAL_AVP, rewrite_uri, str2q
from sipserver.lang.env import CompileEnv, CompileError
from sipserver.lang.parser import _CORE_LIST, parse_text
from sipserver.lang.pv import PV, PVError, PVNameError, PVSpec, PVTable
from sipserver.sip.message import parse_message

INVITE = (
    b"INVITE sip:alice@example.com;transport=udp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc\r\n"
    b"From: <sip:bob@example.org>;tag=1\r\n"
    b"To: <sip:alice@example.com>\r\n"
    b"Call-ID: x@y\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)


# ------------------------------------------------------------------ fakes


class VarPV(PV):
    """``$var(name)``: per-process script variable."""

    __slots__ = ("name",)
    writable = True

    def __init__(self, raw: str, name: str) -> None:
        super().__init__(raw)
        self.name = name

    def get(self, ctx: Any) -> Any:
        return ctx.rt.script_vars.get(self.name, 0)

    def set(self, ctx: Any, value: Any, op: str = "=") -> None:
        ctx.rt.script_vars[self.name] = 0 if value is None else value


class AvpPV(PV):
    """``$avp(s:x)`` / ``$avp(i:N)`` / ``$avp(serial_branch)``."""

    __slots__ = ("name",)
    writable = True

    def __init__(self, raw: str, name: int | str) -> None:
        super().__init__(raw)
        self.name = name

    def get(self, ctx: Any) -> Any:
        return ctx.avps.get(self.name)

    def set(self, ctx: Any, value: Any, op: str = "=") -> None:
        if op == ":=":
            ctx.avps.delete(self.name, None)
        ctx.avps.add(self.name, value)


class RuPV(PV):
    """``$ru``, read-only here."""

    def get(self, ctx: Any) -> Any:
        return ctx.ruri


class FailPV(PV):
    """``$fail``: reading always fails."""

    def get(self, ctx: Any) -> Any:
        raise PVError("no such thing")


def _var(spec: PVSpec, env: Any) -> PV:
    return VarPV(spec.raw, spec.inner or "")


def _avp(spec: PVSpec, env: Any) -> PV:
    inner = spec.inner or ""
    if inner == "serial_branch":
        return AvpPV(spec.raw, SERIAL_AVP)
    kind, _, name = inner.partition(":")
    if kind == "i":
        return AvpPV(spec.raw, int(name))
    if kind == "s":
        return AvpPV(spec.raw, name)
    raise PVNameError(f"bad AVP name {inner}")


def make_env(**kw: Any) -> CompileEnv:
    table = PVTable()
    table.add("var", _var)
    table.add("avp", _avp)
    table.add("ru", lambda spec, env: RuPV(spec.raw))
    table.add("fail", lambda spec, env: FailPV(spec.raw))
    return CompileEnv(pv_table=table, **kw)


class FakeCache:
    """A tiny cache backend."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, int]] = {}

    def store(self, name: str, value: str, expires: int) -> bool:
        self.data[name] = (value, expires)
        return True

    def fetch(self, name: str) -> str | None:
        item = self.data.get(name)
        return None if item is None else item[0]

    def remove(self, name: str) -> bool:
        return self.data.pop(name, None) is not None


# ------------------------------------------------------------------ helpers


def call_node(src: str) -> ast.Call:
    script = parse_text("route {\n" + src + "\n}\n")
    node = script.main_route.body.body[0]
    assert isinstance(node, ast.Call) and node.core, node
    return node


def compile_action(src: str, env: CompileEnv | None = None):
    node = call_node(src)
    return CORE_ACTIONS[node.name](node, env or make_env())


def compile_error(src: str, env: CompileEnv | None = None) -> str:
    with pytest.raises(CompileError) as info:
        compile_action(src, env)
    return info.value.message


class Ctx:
    """A message context plus what its runtime logged and sent."""

    def __init__(self, data: bytes = INVITE, **rt_kw: Any) -> None:
        self.logs: list[tuple[int, str]] = []
        self.transport = RecordingTransport()
        config = {"debug": L_DBG, **rt_kw.pop("config", {})}
        self.rt = Runtime(config=config, transport=self.transport,
                          logger=lambda lev, text: self.logs.append((lev, text)), **rt_kw)
        self.ctx = MsgContext(self.rt, parse_message(data), src_ip="10.0.0.1", src_port=5060)

    def run(self, src: str, env: CompileEnv | None = None) -> int:
        return compile_action(src, env)(self.ctx)

    def texts(self, level: int | None = None) -> list[str]:
        return [t for lev, t in self.logs if level is None or lev == level]


@pytest.fixture
def c() -> Ctx:
    return Ctx()


def test_every_core_function_has_an_action() -> None:
    assert {cf.name for cf in _CORE_LIST} == set(CORE_ACTIONS)


# ------------------------------------------------------------------ log, xlog, error, setdebug


def test_log_default_level_is_debug_and_text_is_literal(c: Ctx) -> None:
    assert c.run('log("ru=$ru\\n");') == 1
    assert c.logs == [(L_DBG, "ru=$ru\n")]


def test_log_with_level(c: Ctx) -> None:
    assert c.run('log(-1, "bad");') == 1
    assert c.run('log(1, "warn");') == 1
    assert c.logs == [(L_ERR, "bad"), (L_WARN, "warn")]


def test_log_respects_debug_level() -> None:
    c = Ctx(config={"debug": L_NOTICE})
    assert c.run('log("hidden");') == 1
    assert c.logs == []


def test_xlog_one_arg_logs_at_err_and_returns_minus_5(c: Ctx) -> None:
    assert c.run('xlog("R-URI is $ru, $$5 and $var(x)\\n");') == -5
    assert c.logs == [(L_ERR, "R-URI is sip:alice@example.com;transport=udp, $5 and 0\n")]


@pytest.mark.parametrize(
    ("level", "expected"),
    [("L_ALERT", L_ALERT), ("L_CRIT", -2), ("L_ERR", L_ERR), ("L_WARN", L_WARN),
     ("L_NOTICE", L_NOTICE), ("L_INFO", L_INFO), ("L_DBG", L_DBG),
     ("L_DEBUG", L_DBG), ("xxI", L_INFO)],
)
def test_xlog_levels_by_third_character(c: Ctx, level: str, expected: int) -> None:
    assert c.run(f'xlog("{level}", "m");') == -5
    assert c.logs == [(expected, "m")]


def test_xlog_level_from_pv(c: Ctx) -> None:
    c.rt.script_vars["l"] = 3
    assert c.run('xlog("$var(l)", "info");') == -5
    c.rt.script_vars["l"] = "3"  # a string is not a level
    assert c.run('xlog("$var(l)", "never");') == -5
    assert c.logs[0] == (L_INFO, "info")
    assert "invalid log level" in c.logs[1][1]
    assert len(c.logs) == 2


def test_xlog_level_filtered_by_debug() -> None:
    c = Ctx(config={"debug": L_WARN})
    assert c.run('xlog("L_INFO", "no");') == -5
    assert c.run('xdbg("no");') == -5
    assert c.run('xlog("L_WARN", "yes");') == -5
    assert c.logs == [(L_WARN, "yes")]


def test_xdbg(c: Ctx) -> None:
    assert c.run('xdbg("d $ru");') == -5
    assert c.logs == [(L_DBG, "d sip:alice@example.com;transport=udp")]


def test_xlog_null_and_failing_pv(c: Ctx) -> None:
    c.run('xlog("[$avp(s:none)][$fail]");')
    assert (L_ERR, "[<null>][]") in c.logs


def test_xlog_buffer_overflow_logs_nothing() -> None:
    c = Ctx(config={"xlog_buf_size": 8})
    assert c.run('xlog("1234567");') == -5
    assert c.run('xlog("12345678");') == -5
    assert c.logs[0] == (L_ERR, "1234567")
    assert "buffer overflow" in c.logs[1][1]


@pytest.mark.parametrize(
    ("src", "message"),
    [('xlog("");', "empty format"),
     ('xlog("", "x");', "empty log level"),
     ('xlog("L", "x");', "unknown log level"),
     ('xlog("L_Q", "x");', "unknown log level"),
     ('xlog("$nosuch", "x");', "unknown pseudo-variable"),
     ('xlog("a $nosuch b");', "unknown pseudo-variable"),
     ('xdbg("");', "empty format")],
)
def test_xlog_start_up_errors(src: str, message: str) -> None:
    assert message in compile_error(src)


def test_error_action_logs_and_returns_1(c: Ctx) -> None:
    assert c.run('error("a", "b");') == 1
    assert c.logs == [(L_ERR, 'error("a", "b") not implemented yet')]


def test_setdebug_clamps_and_resets() -> None:
    c = Ctx(config={"debug": L_NOTICE})
    assert c.run("setdebug(9);") == 1
    assert c.rt.debug == L_DBG
    assert c.run("setdebug(1);") == 1
    assert c.rt.debug == 1
    assert c.run("setdebug();") == 1
    assert c.rt.debug == L_NOTICE


# ------------------------------------------------------------------ flags


def test_message_flags(c: Ctx) -> None:
    assert c.run("isflagset(3);") == -1
    assert c.run("setflag(3);") == 1
    assert c.run("setflag(31);") == 1
    assert c.ctx.flags == (1 << 3) | (1 << 31)
    assert c.run("isflagset(3);") == 1
    assert c.run("resetflag(3);") == 1
    assert c.run("isflagset(3);") == -1
    assert c.ctx.flags == 1 << 31


def test_script_flags(c: Ctx) -> None:
    assert c.run("setsflag(0);") == 1
    assert c.run("isscriptflagset(0);") == 1
    assert c.ctx.sflags == 1
    assert c.run("resetscriptflag(0);") == 1
    assert c.run("issflagset(0);") == -1


def test_branch_flags_index_semantics(c: Ctx) -> None:
    assert c.run("setbflag(2);") == 1  # branch 0 = R-URI
    assert c.ctx.bflags == 4
    assert c.run("isbflagset(0, 2);") == 1
    assert c.run("setbflag(1, 5);") == -1  # no appended branch yet
    c.ctx.branches.append(Branch("sip:b@x"))
    assert c.run("setbranchflag(1, 5);") == 1
    assert c.ctx.branches[0].flags == 32
    assert c.run("isbranchflagset(1, 5);") == 1
    assert c.run("isbflagset(1, 2);") == -1
    assert c.run("resetbflag(1, 5);") == 1
    assert c.ctx.branches[0].flags == 0
    assert c.run("resetbranchflag(2);") == 1
    assert c.ctx.bflags == 0
    assert c.run("isbflagset(2, 0);") == -1


@pytest.mark.parametrize("src", ["setflag(32);", "resetflag(40);", "isflagset(32);",
                                 "setsflag(32);", "setbflag(32);", "setbflag(1, 32);",
                                 "isbflagset(0, 99);"])
def test_flag_out_of_range_is_a_start_up_error(src: str) -> None:
    assert "out of range 0..31" in compile_error(src)


# ------------------------------------------------------------------ R-URI rewrites


@pytest.mark.parametrize(
    ("ruri", "src", "expected"),
    [
        ("sip:alice@example.com:5070;transport=tcp?X=1", 'rewritehost("h.net");',
         "sip:alice@h.net:5070;transport=tcp?X=1"),
        ("sip:alice@example.com;maddr=1.2.3.4;lr", 'sethost("h.net");', "sip:alice@h.net;lr"),
        ("sip:alice@example.com:5070;maddr=1.2.3.4", 'rewritehostport("h.net:6000");',
         "sip:alice@h.net:6000"),
        ("sip:alice@example.com:5070;x=1", 'sethp("h.net");', "sip:alice@h.net;x=1"),
        ("sip:alice@example.com:5070;maddr=1.2.3.4", 'setport("9");',
         "sip:alice@example.com:9;maddr=1.2.3.4"),
        ("sip:alice@example.com:5070", 'rewriteport("");', "sip:alice@example.com"),
        ("sip:alice:pw@example.com", 'rewriteuser("bob");', "sip:bob:pw@example.com"),
        ("sip:alice@example.com;p", 'setu("");', "sip:example.com;p"),
        ("sip:example.com", 'setuser("bob");', "sip:bob@example.com"),
        ("sip:zz:old@c", 'setuserpass("u:p");', "sip:u:p@c"),
        ("sip:zz:old@c", 'rewriteuserpass("pw");', "sip:pw@c"),
        ("sip:zz@c", 'setup("");', "sip:c"),
        ("sip:123@example.com", 'prefix("00");', "sip:00123@example.com"),
        ("sip:example.com", 'prefix("+49");', "sip:+49@example.com"),
        ("sip:12345@x", "strip(2);", "sip:345@x"),
        ("sip:12345@x", "strip(5);", "sip:x"),
        ("sip:12345@x", "strip(9);", "sip:x"),
        ("sip:12345@x", "strip_tail(2);", "sip:123@x"),
        ("sip:12345@x", "strip_tail(7);", "sip:x"),
        ("sip:x", "strip(1);", "sip:x"),
        ("sips:a@[::1]:5061;transport=tls", 'rewritehost("[2001:db8::1]");',
         "sips:a@[2001:db8::1]:5061;transport=tls"),
        ("sip:a@x", 'rewriteuri("whatever:not-checked");', "whatever:not-checked"),
        ("sip:a@x", 'seturi("sip:b@y");', "sip:b@y"),
    ],
)
def test_rewrites(ruri: str, src: str, expected: str) -> None:
    c = Ctx()
    c.ctx.new_uri = ruri
    assert c.run(src) == 1
    assert c.ctx.new_uri == expected
    assert c.ctx.msg.ruri_text == "sip:alice@example.com;transport=udp"  # $ou untouched


def test_rewrites_apply_to_the_current_ruri(c: Ctx) -> None:
    assert c.run('rewriteuser("bob");') == 1
    assert c.run('prefix("9");') == 1
    assert c.run('sethost("h");') == 1
    assert c.ctx.ruri == "sip:9bob@h;transport=udp"
    assert c.run("revert_uri();") == 1
    assert c.ctx.new_uri is None
    assert c.ctx.ruri == "sip:alice@example.com;transport=udp"


def test_strip_too_long_warns(c: Ctx) -> None:
    assert c.run("strip(20);") == 1
    assert c.ctx.new_uri == "sip:example.com;transport=udp"
    assert any("too long strip" in t for t in c.texts(L_WARN))


def test_rewrite_on_bad_uri_fails(c: Ctx) -> None:
    c.ctx.new_uri = "not a uri"
    assert c.run('sethost("h");') == -1
    assert c.run("strip(1);") == -1
    assert c.ctx.new_uri == "not a uri"
    assert any("bad uri" in t for t in c.texts(L_ERR))


def test_rewrite_uri_helper_rejects_unknown_part() -> None:
    with pytest.raises(ValueError):
        rewrite_uri("sip:a@b", "nope", "x")


# ------------------------------------------------------------------ $du


def test_dst_uri_set_reset_test(c: Ctx) -> None:
    assert c.run("isdsturiset();") == -1
    assert c.run('setdsturi("sip:proxy.net;lr");') == 1
    assert c.ctx.dst_uri == "sip:proxy.net;lr"
    assert c.run("isduriset;") == 1
    assert c.run("resetduri;") == 1
    assert c.ctx.dst_uri is None
    assert c.run('setduri("");') == 1
    assert c.run("isdsturiset;") == -1


# ------------------------------------------------------------------ append_branch


def test_append_branch_bare_moves_main_branch_settings(c: Ctx) -> None:
    sock = SocketInfo("udp", "127.0.0.1", 5060)
    c.ctx.new_uri = "sip:a@b"
    c.ctx.dst_uri = "sip:p"
    c.ctx.path = "<sip:path;lr>"
    c.ctx.q = 500
    c.ctx.bflags = 6
    c.ctx.force_socket = sock
    assert c.run("append_branch;") == 1
    assert c.ctx.branches == [Branch("sip:a@b", "sip:p", "<sip:path;lr>", 500, 6, sock)]
    assert (c.ctx.dst_uri, c.ctx.path, c.ctx.q, c.ctx.bflags, c.ctx.force_socket) == \
        (None, None, None, 0, None)
    assert c.ctx.new_uri == "sip:a@b"  # the R-URI itself stays
    assert c.run("append_branch();") == 1
    assert c.ctx.branches[1] == Branch("sip:a@b")


def test_append_branch_with_uri_leaves_main_branch(c: Ctx) -> None:
    c.ctx.dst_uri = "sip:p"
    c.ctx.bflags = 2
    assert c.run('append_branch("sip:x@y");') == 1
    assert c.run('append_branch("sip:z@y", "0.5");') == 1
    assert c.run('append_branch("", "1");') == 1
    assert c.ctx.branches == [
        Branch("sip:x@y", "sip:p", None, None, 2),
        Branch("sip:z@y", "sip:p", None, 500, 2),
        Branch("sip:alice@example.com;transport=udp", "sip:p", None, 1000, 2),
    ]
    assert (c.ctx.dst_uri, c.ctx.bflags) == ("sip:p", 2)


def test_append_branch_limit_counts_the_ruri(c: Ctx) -> None:
    for _ in range(MAX_BRANCHES - 1):
        assert c.run('append_branch("sip:x@y");') == 1
    assert c.run('append_branch("sip:x@y");') == -1
    assert len(c.ctx.branches) == MAX_BRANCHES - 1 == 11
    assert any("max nr of branches" in t for t in c.texts(L_ERR))
    c.ctx.dst_uri = "sip:p"
    assert c.run("append_branch;") == -1
    assert c.ctx.dst_uri is None  # reset happens even when the append failed


def test_str2q() -> None:
    assert [str2q(t) for t in ("0", "1", "1.000", "0.5", ".25", " 0.1239", "00.05", "01")] == \
        [0, 1000, 1000, 500, 250, 123, 50, 1000]
    for bad in ("", "2", "1.5", "0.", "a", "0.5x", "-1"):
        with pytest.raises(ValueError):
            str2q(bad)


# ------------------------------------------------------------------ serial forking


def _serial_setup(c: Ctx) -> None:
    c.ctx.new_uri = "sip:r@x"
    c.ctx.q = 1000
    c.ctx.branches = [Branch("sip:b1@x", q=500), Branch("sip:b2@x", "sip:d2", q=1000, flags=4),
                      Branch("sip:b3@x", q=500), Branch("sip:b4@x", q=100)]


def test_serialize_and_next_branches_request_route(c: Ctx) -> None:
    _serial_setup(c)
    assert c.run("serialize_branches(1);") == 1
    assert c.ctx.branches == []
    assert (c.ctx.q, c.ctx.bflags) == (None, 0)
    assert len(c.ctx.avps.get_all(SERIAL_AVP)) == 5
    # read back newest first: the highest q group, and among equal q the
    # R-URI first (1.6 inserts a later branch before earlier ones of equal q)
    assert c.run("next_branches();") == 1
    assert c.ctx.new_uri == "sip:r@x"
    assert (c.ctx.dst_uri, c.ctx.q, c.ctx.bflags) == (None, 1000, 0)
    assert c.ctx.branches == [Branch("sip:b2@x", "sip:d2", None, 1000, 4)]
    c.ctx.branches.clear()
    # second group: q=500 (b3 was appended after b1, so b1 is read first)
    assert c.run("next_branches();") == 1
    assert c.ctx.new_uri == "sip:b1@x"
    assert c.ctx.q == 500
    assert [b.uri for b in c.ctx.branches] == ["sip:b3@x"]
    c.ctx.branches.clear()
    # last group
    assert c.run("next_branches();") == 2
    assert c.ctx.new_uri == "sip:b4@x"
    assert c.ctx.branches == []
    # nothing left
    assert c.run("next_branches();") == -1


def test_serialize_noop_cases(c: Ctx) -> None:
    assert c.run("serialize_branches(0);") == 1  # no branches
    c.ctx.q = 500
    c.ctx.branches = [Branch("sip:a@x", q=500)]
    assert c.run("serialize_branches(0);") == 1  # all the same q
    assert c.ctx.branches == [Branch("sip:a@x", q=500)]
    assert SERIAL_AVP not in c.ctx.avps


def test_serialize_clean_flag(c: Ctx) -> None:
    c.ctx.avps.add(SERIAL_AVP, "old")
    _serial_setup(c)
    assert c.run("serialize_branches(0);") == 1
    assert "old" in c.ctx.avps.get_all(SERIAL_AVP)
    c.ctx.avps.delete(SERIAL_AVP, None)
    c.ctx.avps.add(SERIAL_AVP, "old")
    _serial_setup(c)
    assert c.run("serialize_branches(1);") == 1
    assert "old" not in c.ctx.avps.get_all(SERIAL_AVP)


def test_next_branches_in_failure_route_and_wrong_route(c: Ctx) -> None:
    _serial_setup(c)
    c.run("serialize_branches(1);")
    c.ctx.route_type = BRANCH_ROUTE
    assert c.run("next_branches();") == -1
    c.ctx.route_type = ONREPLY_ROUTE
    assert c.run("next_branches();") == -1
    c.ctx.route_type = FAILURE_ROUTE
    assert c.run("next_branches();") == 1
    assert c.ctx.new_uri == "sip:r@x"
    assert [b.uri for b in c.ctx.branches] == ["sip:b2@x"]


def test_next_branches_keeps_the_socket_by_name() -> None:
    sock = SocketInfo("udp", "10.1.1.1", 5060)
    c = Ctx(sockets=[sock])
    _serial_setup(c)
    c.ctx.branches[1].socket = sock
    c.run("serialize_branches(1);")
    assert c.run("next_branches();") == 1
    assert c.ctx.force_socket is None
    assert c.ctx.branches[0].socket is sock


def test_next_branches_bad_avp_value(c: Ctx) -> None:
    c.ctx.avps.add(SERIAL_AVP, "garbage")
    assert c.run("next_branches();") == -1


# ------------------------------------------------------------------ pv_printf, construct_uri


def test_pv_printf(c: Ctx) -> None:
    assert c.run('pv_printf("$var(x)", "u=$ru;");') == 1
    assert c.rt.script_vars["x"] == "u=sip:alice@example.com;transport=udp;"
    assert c.run('avp_printf($avp(s:a), "[$var(x)]");') == 1
    assert c.ctx.avps.get("a") == "[u=sip:alice@example.com;transport=udp;]"


@pytest.mark.parametrize(
    ("src", "message"),
    [('pv_printf("$ru", "x");', "read-only"),
     ("pv_printf($ru, \"x\");", "read-only"),
     ('pv_printf("$nosuch", "x");', "unknown pseudo-variable"),
     ('pv_printf("$var(x)", "$nosuch");', "unknown pseudo-variable")],
)
def test_pv_printf_start_up_errors(src: str, message: str) -> None:
    assert message in compile_error(src)


def test_construct_uri(c: Ctx) -> None:
    c.rt.script_vars["u"] = "bob"
    src = 'construct_uri("sip", "$var(u)", "example.com", "5070", "transport=tcp", $avp(s:r));'
    assert c.run(src) == -5  # 1.6 leaves E_BUG as the code
    assert c.ctx.avps.get("r") == "sip:bob@example.com:5070;transport=tcp"
    assert c.run('construct_uri("sips", "", "h", "", "", $avp(s:r));') == -5
    assert c.ctx.avps.get_all("r")[0] == "sips:h"


def test_construct_uri_failures(c: Ctx) -> None:
    c.rt.script_vars["e"] = ""
    assert c.run('construct_uri("sip", "$var(e)", "h", "", "", $avp(s:r));') == -1
    assert c.run('construct_uri("", "u", "h", "", "", $avp(s:r));') == -5
    assert c.run('construct_uri("sip", "u", "", "", "", $avp(s:r));') == -5
    assert "r" not in c.ctx.avps
    assert "must be an AVP" in compile_error('construct_uri("a", "b", "c", "d", "e", $var(x));')


# ------------------------------------------------------------------ transport settings


def test_rport_and_advertised(c: Ctx) -> None:
    assert c.run("force_rport;") == 1
    assert c.run("add_local_rport();") == 1
    assert c.run("set_advertised_address(adv.example.net);") == 1
    assert c.run('set_advertised_address("1.2.3.4");') == 1
    assert c.run("set_advertised_port(5080);") == 1
    ctx = c.ctx
    assert (ctx.force_rport, ctx.local_rport, ctx.adv_address, ctx.adv_port) == \
        (True, True, "1.2.3.4", 5080)
    c.run("set_advertised_address(10.0.0.9);")
    assert ctx.adv_address == "10.0.0.9"


def test_force_tcp_alias_only_on_tcp(c: Ctx) -> None:
    assert c.run("force_tcp_alias();") == 1
    assert c.ctx.tcp_alias is None
    c.ctx.proto = "tcp"
    assert c.run("force_tcp_alias;") == 1
    assert c.ctx.tcp_alias == 5060  # the Via port
    assert c.run("add_tcp_alias(5090);") == 1
    assert c.ctx.tcp_alias == 5090


SOCKS = [SocketInfo("udp", "10.0.0.5", 5060), SocketInfo("tcp", "10.0.0.5", 5060),
         SocketInfo("udp", "10.0.0.5", 5080, adv_host="pub.example.com")]


def test_force_send_socket_matches_listen_sockets() -> None:
    env = make_env(sockets=SOCKS)
    c = Ctx(sockets=SOCKS)
    assert c.run("force_send_socket(udp:10.0.0.5:5060);", env) == 1
    assert c.ctx.force_socket is SOCKS[0]
    assert c.run("force_send_socket(tcp:10.0.0.5);", env) == 1
    assert c.ctx.force_socket is SOCKS[1]
    assert c.run("force_send_socket(10.0.0.5:5080);", env) == 1
    assert c.ctx.force_socket is SOCKS[2]
    assert c.run('force_send_socket("pub.example.com":5080);', env) == 1
    assert c.ctx.force_socket is SOCKS[2]


def test_force_send_socket_unknown_is_a_start_up_error() -> None:
    env = make_env(sockets=SOCKS)
    assert "not one of the listen sockets" in compile_error(
        "force_send_socket(udp:10.0.0.6:5060);", env)
    assert "not one of the listen sockets" in compile_error(
        "force_send_socket(tls:10.0.0.5:5060);", env)


def test_force_send_socket_without_listen_sockets_is_checked_at_run_time() -> None:
    env = make_env()  # -c without listen: accepted
    action = compile_action("force_send_socket(udp:10.0.0.5:5080);", env)
    c = Ctx(sockets=SOCKS)
    assert action(c.ctx) == 1
    assert c.ctx.force_socket is SOCKS[2]
    c2 = Ctx()
    assert action(c2.ctx) == -1


def test_blacklists(c: Ctx) -> None:
    env = make_env(blacklists={"bl1", "bl2"})
    assert c.run('use_blacklist("bl1");', env) == -5
    assert c.ctx.blacklists == {"bl1"}
    assert c.run('use_blacklist("ALL");', env) == -5
    assert c.ctx.blacklists == {"bl1", "bl2"}
    assert c.run('unuse_blacklist("bl2");', env) == -5
    assert c.ctx.blacklists == {"bl1"}
    assert c.run('unuse_blacklist("all");', env) == -5
    assert c.ctx.blacklists == set()
    assert "not configured" in compile_error('use_blacklist("nope");', env)


# ------------------------------------------------------------------ cache


def test_cache_store_fetch_remove() -> None:
    c = Ctx()
    cache = FakeCache()
    c.rt.caches["local"] = cache
    c.rt.script_vars["k"] = "key"
    c.rt.script_vars["t"] = 30
    assert c.run('cache_store("local", "n_$var(k)", "v=$ru");') == 1
    assert cache.data["n_key"] == ("v=sip:alice@example.com;transport=udp", 0)
    assert c.run('cache_store("local", "a", "b", 60);') == 1
    assert cache.data["a"] == ("b", 60)
    assert c.run('cache_store("local", "a", "c", $var(t));') == 1
    assert cache.data["a"] == ("c", 30)
    assert c.run('cache_fetch("local", "n_$var(k)", $avp(s:got));') == 1
    assert c.ctx.avps.get("got") == "v=sip:alice@example.com;transport=udp"
    assert c.run('cache_fetch("local", "missing", $avp(s:got));') == -2
    assert c.run('cache_remove("local", "a");') == 1
    assert c.run('cache_remove("local", "a");') == 1
    assert "a" not in cache.data


def test_cache_unknown_system_and_empty_names() -> None:
    c = Ctx()
    assert c.run('cache_store("nope", "a", "b");') == -1
    assert c.run('cache_fetch("nope", "a", $avp(s:x));') == -1
    assert c.run('cache_remove("nope", "a");') == -1
    c.rt.caches["local"] = FakeCache()
    c.rt.script_vars["e"] = ""
    assert c.run('cache_store("local", "$var(e)", "b");') == -5
    assert c.run('cache_fetch("local", "$var(e)", $avp(s:x));') == -5


@pytest.mark.parametrize(
    ("src", "message"),
    [('cache_store("local", "", "b");', "name"),
     ('cache_store("local", "a", "");', "value"),
     ('cache_fetch("local", "a", $var(x));', "must be an AVP"),
     ('cache_remove("local", "$bad(");', "pseudo-variable")],
)
def test_cache_start_up_errors(src: str, message: str) -> None:
    assert message in compile_error(src)


# ------------------------------------------------------------------ forward, send


def test_forward_to_ruri_adds_via_and_received() -> None:
    c = Ctx()
    c.ctx.src_ip = "192.0.2.7"
    c.ctx.src_port = 5070
    assert c.run("forward();") == 1
    [(_sock, dest, data)] = c.transport.sent
    assert (dest.proto, dest.ip, dest.port) == ("udp", "example.com", 5060)
    text = data.decode()
    lines = text.split("\r\n")
    assert lines[0] == "INVITE sip:alice@example.com;transport=udp SIP/2.0"
    assert lines[1].startswith("Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK")
    assert lines[2] == "Via: SIP/2.0/UDP 10.0.0.1:5060;received=192.0.2.7;branch=z9hG4bKabc"
    # the message itself is left as the script saw it
    assert not c.ctx.msg.has_lumps


def test_forward_uses_rewritten_ruri_and_du() -> None:
    c = Ctx()
    c.run('rewritehostport("new.example.net:5099");')
    assert c.run("forward();") == 1
    dest, data = c.transport.sent[0][1:]
    assert (dest.ip, dest.port) == ("new.example.net", 5099)
    assert data.startswith(b"INVITE sip:alice@new.example.net:5099;transport=udp SIP/2.0\r\n")
    c.run('setdsturi("sip:outbound.example.org:5080;transport=tcp");')
    assert c.run("forward();") == 1
    dest, data = c.transport.sent[1][1:]
    assert (dest.proto, dest.ip, dest.port) == ("tcp", "outbound.example.org", 5080)
    assert b"\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=" in data
    assert data.startswith(b"INVITE sip:alice@new.example.net:5099;transport=udp SIP/2.0\r\n")


def test_forward_literal_destination(c: Ctx) -> None:
    assert c.run('forward("tcp:10.1.2.3:5071");') == 1
    assert c.run('forward("10.1.2.4");') == 1
    assert c.run('forward("tls:proxy.example.com");') == 1
    dests = [(d.proto, d.ip, d.port) for _, d, _ in c.transport.sent]
    assert dests == [("tcp", "10.1.2.3", 5071), ("udp", "10.1.2.4", 5060),
                     ("tls", "proxy.example.com", 5061)]


@pytest.mark.parametrize("arg", ["foo:bar:5060", "udp:h:x", "a:b:c:d", "h:", "", "[::1"])
def test_forward_bad_literal_is_a_start_up_error(arg: str) -> None:
    assert "bad destination" in compile_error(f'forward("{arg}");')


def test_forward_refused_when_stateless_forwarding_is_disabled() -> None:
    env = make_env(config={"disable_stateless_fwd": 1})
    assert "disable_stateless_fwd" in compile_error("forward();", env)


def test_forward_failures(c: Ctx) -> None:
    c.transport.fail = True
    assert c.run("forward();") == -1
    c.ctx.dst_uri = "garbage uri"
    assert c.run("forward();") == -475


def test_send_passes_the_received_message_unchanged(c: Ctx) -> None:
    c.run('rewritehost("elsewhere");')
    assert c.run('send("udp:10.9.9.9:5062");') == 1
    [(_, dest, data)] = c.transport.sent
    assert (dest.proto, dest.ip, dest.port) == ("udp", "10.9.9.9", 5062)
    assert data == INVITE


def test_format_error_names_the_string_and_the_offset() -> None:
    with pytest.raises(CompileError) as info:
        compile_action('xlog("ab $nosuch");')
    assert info.value.offset == 3
    with pytest.raises(CompileError) as info:
        compile_action('xlog("L_ERR", "ab $nosuch");')
    assert info.value.offset == 3
    assert info.value.node.value == "ab $nosuch"
