"""The compiler: control flow, return codes, $rc, conditions, expressions, errors.

Scripts are compiled against a registry holding a small test module
(`probe`) whose functions record their calls and return what they are
told, so that every rule of spec 3.5-3.8 can be observed exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from sipserver.core.context import RUN_DROP, RUN_EXIT, MsgContext
from sipserver.core.exports import (
    ALL_ROUTES,
    FAILURE_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    ModuleExports,
    Registry,
)
from sipserver.core.runtime import RecordingTransport, Runtime, SocketInfo
from sipserver.lang.compiler import compile_script
from sipserver.lang.errors import CfgError
from sipserver.lang.parser import parse_text
from sipserver.sip.errors import ParseError
from sipserver.sip.message import parse_message

INVITE = (
    b"INVITE sip:alice@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Alice <sip:alice@example.com>\r\n"
    b"From: Bob <sip:bob@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@10.0.0.1>\r\n"
    b"Content-Length: 0\r\n\r\n"
)

REPLY = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
    b"To: Alice <sip:alice@example.com>;tag=x\r\n"
    b"From: Bob <sip:bob@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


class Probe:
    """Records calls of the test module's functions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def ret(self, ctx: MsgContext, code: int) -> int:
        self.calls.append(("ret", (code,)))
        return code

    def mark(self, ctx: MsgContext, text: str) -> int:
        self.calls.append(("mark", (text,)))
        return 1

    def boom(self, ctx: MsgContext) -> int:
        self.calls.append(("boom", ()))
        raise RuntimeError("module bug")

    def badmsg(self, ctx: MsgContext) -> int:
        self.calls.append(("badmsg", ()))
        raise ParseError("bad header")

    @property
    def marks(self) -> list[str]:
        return [a[0] for n, a in self.calls if n == "mark"]


def _int_fixup(env: Any, mod: Any, args: Any) -> list[int]:
    try:
        return [int(args[0])]
    except ValueError:
        raise FixupError(f'"{args[0]}" is not a number') from None


def make_registry(probe: Probe) -> Registry:
    reg = Registry()
    reg.add(ModuleExports(
        "probe",
        cmds=[
            CmdExport("ret", probe.ret, 1, ALL_ROUTES, fixup=_int_fixup),
            CmdExport("mark", probe.mark, 1, ALL_ROUTES),
            CmdExport("boom", probe.boom, 0, ALL_ROUTES),
            CmdExport("badmsg", probe.badmsg, 0, ALL_ROUTES),
            CmdExport("req_only", lambda ctx: 1, 0, REQUEST_ROUTE),
            CmdExport("fail_only", lambda ctx: 1, 0, FAILURE_ROUTE | ONREPLY_ROUTE),
        ],
    ))
    return reg


class Script:
    def __init__(self, text: str, config: dict[str, Any] | None = None) -> None:
        self.probe = Probe()
        self.registry = make_registry(self.probe)
        self.compiled = compile_script(parse_text(text, "t.cfg"), self.registry)
        self.logs: list[tuple[int, str]] = []
        self.rt = Runtime(transport=RecordingTransport(), logger=lambda lv, t: self.logs.append((lv, t)),
                          sockets=[SocketInfo("udp", "127.0.0.1", 5060)],
                          config=config or self.compiled.config)
        self.rt.debug = 4
        self.rt.routes = self.compiled.routes

    def ctx(self, data: bytes = INVITE) -> MsgContext:
        return MsgContext(self.rt, parse_message(data), src_ip="10.0.0.1", src_port=5060,
                          rcv=SocketInfo("udp", "127.0.0.1", 5060))

    def run(self, kind: str = "request", name: str | None = None,
            data: bytes = INVITE) -> MsgContext:
        ctx = self.ctx(data)
        self.compiled.routes.run(kind, name, ctx)
        return ctx

    def var(self, name: str) -> Any:
        return self.rt.script_vars.get(name, 0)

    @property
    def marks(self) -> list[str]:
        return self.probe.marks


def errors_of(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(CfgError) as e:
        compile_script(parse_text(text, "t.cfg"), make_registry(Probe()))
    return [(line, col, msg) for _, line, col, msg in e.value.errors]


# ---------------------------------------------------------------- return codes


def test_zero_code_stops_the_script() -> None:
    s = Script('route { mark("a"); ret("0"); mark("b"); }')
    ctx = s.run()
    assert s.marks == ["a"]
    assert ctx.stop == RUN_EXIT


def test_zero_code_in_condition_stops_even_under_not() -> None:
    s = Script('route { if (!ret("0")) { mark("then"); } mark("after"); }')
    s.run()
    assert s.marks == []


def test_zero_code_in_an_assignment_assigns_then_stops() -> None:
    # 1.6: the value is stored, then ACT_FL_EXIT ends the script
    s = Script('route { $var(x) = ret("0"); mark("after"); }')
    ctx = s.run()
    assert s.marks == []
    assert s.var("x") == 0
    assert ctx.stop == RUN_EXIT
    s = Script('route { $var(x) = 5; $var(x) = ret("2"); mark("after"); }')
    s.run()
    assert s.marks == ["after"]
    assert s.var("x") == 2


def test_negative_is_false_and_rc_is_kept_for_the_branch() -> None:
    s = Script('route { if (!ret("-3")) { $var(rc) = $rc; } }')
    s.run()
    assert s.var("rc") == -3


def test_rc_after_if_without_branch_is_condition_value() -> None:
    s = Script("route { if (0) { mark(\"x\"); } $var(a) = $rc; }")
    s.run()
    assert s.var("a") == 0


def test_rc_after_if_is_last_action_of_branch() -> None:
    s = Script('route { if (1) { ret("5"); } $var(a) = $rc; }')
    s.run()
    assert s.var("a") == 5


def test_return_values_of_routes() -> None:
    s = Script("""
route {
    route(r1); $var(a) = $rc;
    route(r2); $var(b) = $rc;
    route(r3); $var(c) = $rc;
    $var(x) = "notint"; route(r4); $var(d) = $rc;
    route(r5); $var(e) = $rc;
}
route[r1] { return; }
route[r2] { return(-7); }
route[r3] { ret("9"); }
route[r4] { return($var(x)); }
route[r5] { return($avp(s:none)); }
""")
    s.run()
    assert (s.var("a"), s.var("b"), s.var("c"), s.var("d"), s.var("e")) == (1, -7, 9, 1, -1)


def test_return_zero_ends_the_whole_script() -> None:
    s = Script('route { route(r); mark("after"); } route[r] { return(0); }')
    ctx = s.run()
    assert s.marks == [] and ctx.stop == RUN_EXIT


def test_exit_in_subroute_stops_everything() -> None:
    s = Script('route { route(r); mark("after"); } route[r] { mark("in"); exit; mark("no"); }')
    s.run()
    assert s.marks == ["in"]


def test_drop_marks_the_run() -> None:
    s = Script('route { drop; mark("no"); }')
    assert s.run().stop == RUN_DROP and s.marks == []


def test_route_result_used_in_condition() -> None:
    s = Script('route { if (route(r)) mark("t"); else mark("f"); } route[r] { return(-1); }')
    s.run()
    assert s.marks == ["f"]


def test_recursion_limit_fails_the_call_and_goes_on() -> None:
    s = Script("""route { $var(n) = 0; route(r); mark("done"); }
route[r] { $var(n) = $var(n) + 1; route(r); }""")
    s.run()
    assert s.var("n") == 100
    assert s.marks == ["done"]
    assert any("recursive" in t for _, t in s.logs)


# ---------------------------------------------------------------- conditions


@pytest.mark.parametrize(("cond", "expected"), [
    ("1 || 0 && 0", False),      # same precedence, left-assoc
    ("!0 && 0", False),
    ("(1 || 0) && 1", True),
    ("0 || 1", True),
    ("!(0 || 0)", True),
])
def test_boolean_precedence(cond: str, expected: bool) -> None:
    s = Script(f'route {{ if ({cond}) mark("t"); else mark("f"); }}')
    s.run()
    assert s.marks == ["t" if expected else "f"]


def test_short_circuit() -> None:
    s = Script('route { if (0 && mark("a")) ; if (1 || mark("b")) ; if (1 && mark("c")) ; }')
    s.run()
    assert s.marks == ["c"]


def test_error_on_left_of_or_makes_it_false_without_right() -> None:
    s = Script('route { $var(s) = "x"; if ($var(s) == 5 || mark("r")) mark("t"); else mark("f"); }')
    s.run()
    assert s.marks == ["f"]


def test_truthiness_of_pvs() -> None:
    s = Script("""route {
    $var(a) = "0"; if ($var(a)) mark("str0");
    $var(b) = 0; if ($var(b)) mark("int0");
    if ($avp(s:nothing)) mark("null");
    $var(c) = ""; if ($var(c)) mark("empty");
    $var(d) = 6; if ([$var(d) & 4]) mark("bits");
}""")
    s.run()
    assert s.marks == ["str0", "bits"]


def test_string_comparisons_are_case_insensitive_and_regex_unanchored() -> None:
    s = Script("""route {
    if (method == "invite") mark("m");
    if ($rm == "INVITE") mark("rm");
    if ($fu =~ "EXAMPLE\\.org") mark("rx");
    if ($fu !~ "^nope") mark("nrx");
    if (uri =~ "^sip:ALICE@") mark("uri");
    if (uri == "sip:alice@example.com") mark("urieq");
}""")
    s.run()
    assert s.marks == ["m", "rm", "rx", "nrx", "uri", "urieq"]


def test_pv_against_number_string_null() -> None:
    s = Script("""route {
    $var(s) = "5"; if ($var(s) == 5) mark("strnum");
    $var(i) = 5; if ($var(i) == "5") mark("intstr");
    if ($var(i) >= 5) mark("ge");
    if ($avp(s:x) == NULL) mark("null");
    if ($avp(s:x) != 5) mark("nullne");
    if ($var(i) != NULL) mark("varnotnull");
    $var(j) = 5; if ($var(i) == $var(j)) mark("pvpv");
    if ($avp(s:x) == $avp(s:y)) mark("nullnull");
}""")
    s.run()
    assert s.marks == ["intstr", "ge", "null", "nullne", "varnotnull", "pvpv", "nullnull"]


def test_assignment_in_condition_is_true() -> None:
    s = Script('route { if ($var(a) = 3) mark("t"); }')
    s.run()
    assert s.marks == ["t"] and s.var("a") == 3


def test_status_keyword_on_reply() -> None:
    s = Script('onreply_route { if (status == "180") mark("s"); if (status =~ "^1") mark("r"); '
               'if (method == "SIP/2.0") mark("m"); } route { exit; }')
    s.run("onreply", None, REPLY)
    assert s.marks == ["s", "r", "m"]


def test_keywords_ip_port_proto() -> None:
    s = Script("""route {
    if (src_ip == 10.0.0.1) mark("ip");
    if (src_ip == 10.0.0.0/8) mark("net");
    if (src_ip == 10.0.0.0/255.0.0.0) mark("mask");
    if (src_ip != 192.168.0.0/16) mark("notnet");
    if (src_ip == "10.0.0.1") mark("qip");
    if (src_port == 5060) mark("port");
    if (dst_port >= 5000) mark("dport");
    if (proto == udp) mark("udp");
    if (af == INET) mark("af");
    if (msg:len < max_len) mark("len");
    if (uri == myself) mark("no-myself");
    if (dst_ip == myself) mark("dst-myself");
}""")
    s.run()
    assert s.marks == ["ip", "net", "mask", "notnet", "qip", "port", "dport", "udp", "af", "len",
                       "dst-myself"]


def test_uri_myself() -> None:
    s = Script('route { if (uri == myself) mark("me"); if (!uri == myself) mark("notme"); }')
    ctx_data = INVITE.replace(b"sip:alice@example.com SIP", b"sip:alice@127.0.0.1 SIP")
    s.run(data=ctx_data)
    assert s.marks == ["me"]


# ---------------------------------------------------------------- control flow


def test_while_counts_and_is_capped() -> None:
    s = Script("route { $var(i) = 0; while ($var(i) < 1000) { $var(i) = $var(i) + 1; } }")
    s.run()
    assert s.var("i") == 100


def test_while_cap_follows_max_while_loops() -> None:
    s = Script("max_while_loops=7\nroute { $var(i) = 0; while (1) { $var(i) = $var(i) + 1; } }")
    s.run()
    assert s.var("i") == 7


def test_switch_fall_through_and_default() -> None:
    text = """route {
    switch ($var(x)) {
        case 1: mark("one");
        case 2: mark("two"); break;
        case "abc": mark("abc");
        case -3:
        case "x": mark("x"); break;
        default: mark("default");
    }
}"""
    for value, marks in [("1", ["one", "two"]), ("2", ["two"]), ('"ABC"', ["abc", "x"]),
                         ("-3", ["x"]), ("9", ["default"]), ('"2"', ["default"])]:
        s = Script(text.replace("route {", f"route {{ $var(x) = {value};"))
        s.run()
        assert s.marks == marks, value


def test_switch_int_matches_string_label_and_rc() -> None:
    s = Script("""route { $var(i) = 2; switch ($var(i)) { case "2": ret("4"); break; }
        $var(r) = $rc; }""")
    s.run()
    assert s.var("r") == 4


def test_switch_on_retcode_grouped_cases() -> None:
    s = Script("""route {
    ret("-3");
    switch ($retcode) { case -1: case -3: mark("neg"); break; default: mark("d"); }
}""")
    s.run()
    assert s.marks == ["neg"]


# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize(("expr", "value"), [
    ("1+2*3", 9), ("7+1-3*2", 10), ("7|1<<2", 28), ("2+3|4", 5), ("~0", -1),
    ("(1+2)*3", 9), ("-7%3", -1), ("-7/2", -3), ("2147483647+1", -2147483648),
])
def test_arithmetic(expr: str, value: int) -> None:
    s = Script(f"route {{ $var(r) = {expr}; }}")
    s.run()
    assert s.var("r") == value


def test_concatenation_typing() -> None:
    s = Script("""route {
    $var(i) = 7;
    $var(a) = "n=" + $var(i);
    $var(b) = "x" + $avp(s:none);
    $var(c) = $avp(s:none) + "x";
    $var(d) = "$ru";
    $var(e) = bareword;
    $var(f) = "keep";
    $var(f) = "a" + 1;
    $var(g) = "keep";
    $var(g) = $var(i) + "1";
    $var(h) = 5;
    $var(h) = 1 / 0;
}""")
    s.run()
    assert s.var("a") == "n=7"
    assert s.var("b") == ""
    assert s.var("c") == "x"
    assert s.var("d") == "$ru"
    assert s.var("e") == "bareword"
    assert s.var("f") == "keep"
    assert s.var("g") == "keep"
    assert s.var("h") == 5


def test_compound_assignment_combines() -> None:
    s = Script("route { $var(b) = 10; $var(b) += 5; $var(s) = \"a\"; $var(s) += \"b\"; }")
    s.run()
    assert s.var("b") == 15 and s.var("s") == "ab"
    assert any("treated it as '='" in w for w in s.compiled.warnings)


def test_assignment_rc() -> None:
    s = Script('route { $var(x) = 1 / 0; $var(r) = $rc; }')
    s.run()
    assert s.var("r") == -1


def test_action_value_in_expression() -> None:
    s = Script('route { $var(f) = ret("3"); }')
    s.run()
    assert s.var("f") == 3


# ---------------------------------------------------------------- runtime failures


def test_module_exception_fails_the_action_and_logs_location() -> None:
    s = Script('route {\n  boom();\n  $var(r) = $rc;\n  mark("after");\n}')
    s.run()
    assert s.var("r") == -1 and s.marks == ["after"]
    assert any("t.cfg:2:3" in t and "module bug" in t for _, t in s.logs)


def test_error_route_runs_after_parse_error() -> None:
    s = Script("""route { badmsg(); mark("after"); }
error_route { $var(cls) = $err.class; mark("err"); }""")
    s.run()
    assert s.marks == ["err", "after"]
    assert s.var("cls") == 1


def test_exit_in_error_route_ends_main_route() -> None:
    s = Script('route { badmsg(); mark("after"); } error_route { exit; }')
    s.run()
    assert s.marks == []


def test_script_flags_reset_per_top_level_run() -> None:
    s = Script('route { if (issflagset(3)) mark("kept"); setsflag(3); }')
    ctx = s.ctx()
    s.compiled.routes.run("request", None, ctx)
    s.compiled.routes.run("request", None, ctx)
    assert s.marks == []


# ---------------------------------------------------------------- start-up errors


def test_unknown_function_with_suggestion() -> None:
    errs = errors_of('route {\n    marc("x");\n}')
    assert errs == [(2, 5, 'unknown command marc(), did you mean "mark"?')]


def test_unknown_function_missing_loadmodule() -> None:
    (_, _, msg), = errors_of("route { t_relay(); }")
    assert "missing loadmodule" in msg


def test_wrong_argument_count() -> None:
    (line, col, msg), = errors_of('route { mark("a", "b"); }')
    assert (line, col) == (1, 9) and "takes 1 argument(s), 2 given" in msg


def test_fixup_error_has_location() -> None:
    (line, col, msg), = errors_of('route {\n  ret("x");\n}')
    assert (line, col) == (2, 3) and 'ret(): "x" is not a number' in msg


def test_all_errors_are_reported() -> None:
    errs = errors_of('route { marc("x"); $nope = 1; route(missing); }\nroute[a] { boom("x"); }')
    assert len(errs) == 4
    assert any("route \"missing\" is not defined" in m for _, _, m in errs)
    assert any("$nope" in m for _, _, m in errs)


def test_read_only_target() -> None:
    (_, _, msg), = errors_of("route { $si = 1; }")
    assert "read-only" in msg


def test_route_type_checked_along_call_graph() -> None:
    # fine: the sub-route is only reached from a failure route
    Script("route { exit; } failure_route[f] { route(x); } route[x] { fail_only(); }")
    # wrong: reached from the request route
    (line, col, msg), = errors_of("route {\n route(x);\n}\nroute[x] {\n fail_only();\n}")
    assert (line, col) == (5, 2)
    assert "cannot be used in request route" in msg and "route -> route[x]" in msg


def test_function_not_allowed_in_top_level_block() -> None:
    (_, _, msg), = errors_of("route { exit; } failure_route[f] { req_only(); }")
    assert "cannot be used in failure_route" in msg


def test_bad_regex_is_a_startup_error() -> None:
    (_, _, msg), = errors_of('route { if ($ru =~ "a(b") exit; }')
    assert "regular expression" in msg


def test_bad_avp_aliases() -> None:
    (_, _, msg), = errors_of('avp_aliases="foo"\nroute { exit; }')
    assert "avp alias" in msg


def test_pv_in_condition_uses_avp_alias() -> None:
    s = Script('avp_aliases="who=s:caller"\nroute { $avp(who) = "bob"; $var(w) = $avp(s:caller); }')
    s.run()
    assert s.var("w") == "bob"


@pytest.mark.parametrize(("text", "warns"), [
    ("1 || 0 && 0", True), ("(1 || 0) && 0", False), ("1 && 0 || 1", False),
])
def test_precedence_warning_in_conditions(text: str, warns: bool) -> None:
    s = Script(f"route {{ if ({text}) exit; }}")
    assert any("no operator precedence" in w for w in s.compiled.warnings) == warns


@pytest.mark.parametrize(("text", "warns"), [
    ("1+2*3", True), ("(1+2)*3", False), ("2*3+1", False), ("7|1<<2", True), ("2+3|4", False),
])
def test_precedence_warning_in_expressions(text: str, warns: bool) -> None:
    s = Script(f"route {{ $var(x) = {text}; }}")
    assert any("no operator precedence" in w for w in s.compiled.warnings) == warns


def test_pv_contexts_come_from_modules() -> None:
    # tm registers <request>/<reply>; a stand-in module resolves <request> to a
    # context over another message
    other: dict[str, MsgContext] = {}
    reg = make_registry(Probe())
    reg.add(ModuleExports("ctxmod", pv_contexts=[("request", lambda ctx: other.get("req"))]))
    compiled = compile_script(parse_text(
        "route { $var(a) = $(<request>rm); $var(b) = $(<request>ru{uri.user}); }", "t.cfg"), reg)
    rt = Runtime(transport=RecordingTransport())
    ctx = MsgContext(rt, parse_message(REPLY))
    compiled.routes.run("request", None, ctx)
    assert rt.script_vars == {"a": 0, "b": 0}  # no such message: null (a $var stores 0)
    other["req"] = MsgContext(rt, parse_message(INVITE))
    compiled.routes.run("request", None, ctx)
    assert rt.script_vars["a"] == "INVITE" and rt.script_vars["b"] == "alice"


def test_unknown_pv_context() -> None:
    (_, _, msg), = errors_of("route { $var(a) = $(<request>rm); }")
    assert "unknown context <request>" in msg and "tm" in msg
