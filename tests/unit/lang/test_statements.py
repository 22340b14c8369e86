"""Statements: if/else, while, switch, return/exit/drop, route(), core and
module calls, assignments (spec sections 3.1-3.5, 3.8, 6; checklist 8, 9,
13, 15, 16, 20)."""

from __future__ import annotations

import pytest

from sipserver.lang import ast
from sipserver.lang.parser import CORE_FUNCTIONS

from .util import error, errors, kw, num, pv, s, stmt, stmts, var

EXIT = ast.Block([ast.Exit()])
DROP = ast.Block([ast.Drop()])

# ------------------------------------------------------------------ if / else


def test_if_with_and_without_parentheses_and_braces() -> None:
    a = stmt("if ($var(a) == 1) { exit; }")
    b = stmt("if $var(a)==1 exit;")
    expected = ast.If(ast.Compare("==", var("a"), num(1)), EXIT)
    assert a == expected
    assert b == expected


def test_if_else_and_else_if_nesting() -> None:
    node = stmt("if (is_method(\"BYE\")) { setflag(1); } else if (is_method(\"INVITE\")) "
                "record_route(); else drop;")
    assert node == ast.If(
        ast.Call("is_method", [s("BYE")]),
        ast.Block([ast.Call("setflag", [num(1)], core=True)]),
        ast.Block([ast.If(ast.Call("is_method", [s("INVITE")]),
                          ast.Block([ast.Call("record_route")]), DROP)]),
    )


def test_dangling_else_binds_to_nearest_if() -> None:
    node = stmt("if ($var(a)) if ($var(b)) exit; else drop;")
    assert node.orelse is None
    inner = node.then.body[0]
    assert inner.orelse == DROP


def test_semicolon_after_block_is_an_empty_action() -> None:
    items = stmts("if ($var(a)) { exit; };\nif ($var(b)) { drop; } ;;\nxlog(\"x\");")
    assert [type(i).__name__ for i in items] == ["If", "If", "Call"]


def test_empty_branches() -> None:
    node = stmt("if ($var(a)) {} else ;")
    assert node == ast.If(var("a"), ast.Block([]), ast.Block([]))


def test_else_without_if() -> None:
    _f, line, col, msg = error("route {\n  if ($var(a)) { exit; };\n  else { drop; }\n}")
    assert (line, col) == (3, 3)
    assert msg.startswith("syntax error: 'else' without a matching 'if'")


def test_statement_locations() -> None:
    node = stmts("  if ($var(a))\n    exit;\n  else\n    drop;")[0]
    assert (node.line, node.col) == (2, 3)
    assert (node.then.body[0].line, node.then.body[0].col) == (3, 5)
    assert (node.orelse.body[0].line, node.orelse.body[0].col) == (5, 5)


# ------------------------------------------------------------------ while


def test_while_with_counter() -> None:
    node = stmt("while ($var(i) < 10) { $var(i) = $var(i) + 1; }")
    assert node == ast.While(
        ast.Compare("<", var("i"), num(10)),
        ast.Block([ast.Assign(var("i"), "=", ast.BinOp("+", var("i"), num(1)))]),
    )


def test_while_single_statement_body() -> None:
    node = stmt("while $var(i) $var(i) = 0;")
    assert node.body == ast.Block([ast.Assign(var("i"), "=", num(0))])


def test_break_is_not_for_loops() -> None:
    _f, line, col, msg = error("route {\n  while ($var(i)) { break; }\n}")
    assert (line, col) == (2, 21)
    assert msg == "'break' is only allowed as the last statement of a 'case' (1.6 has no break for loops)"


# ------------------------------------------------------------------ switch


def test_switch_grouped_labels_fallthrough_and_default() -> None:
    node = stmt(
        "switch ($retcode) {\n"
        "  case -1:\n"
        "  case -3:\n"
        "    t_newtran();\n"
        "    t_reply(\"404\", \"Not Found\");\n"
        "    exit;\n"
        "  case -2:\n"
        "    sl_send_reply(\"405\", \"Method Not Allowed\");\n"
        "    break;\n"
        "  case \"abc\": xlog(\"s\"); esac;\n"
        "  case 4:\n"
        "  default:\n"
        "    drop;\n"
        "}"
    )
    assert node == ast.Switch(
        pv("$retcode", "retcode"),
        [
            ast.Case(num(-1), ast.Block([])),
            ast.Case(num(-3), ast.Block([ast.Call("t_newtran"),
                                         ast.Call("t_reply", [s("404"), s("Not Found")]),
                                         ast.Exit()])),
            ast.Case(num(-2), ast.Block([ast.Call("sl_send_reply",
                                                  [s("405"), s("Method Not Allowed")])]),
                     brk=True),
            ast.Case(s("abc"), ast.Block([ast.Call("xlog", [s("s")], core=True)]), brk=True),
            ast.Case(num(4), ast.Block([])),
        ],
        ast.Case(None, DROP),
    )


def test_switch_case_body_may_be_empty_with_break() -> None:
    node = stmt("switch ($var(x)) { case 1: break; }")
    assert node.cases == [ast.Case(num(1), ast.Block([]), brk=True)]
    assert node.default is None


def test_switch_subject_must_be_a_pvar() -> None:
    _f, line, col, msg = error("route { switch (1) { case 1: exit; } }")
    assert (line, col) == (1, 17)
    assert msg == "syntax error: unexpected '1'; expected a pseudo-variable ($...)"


@pytest.mark.parametrize(
    ("body", "message", "col"),
    [
        ("default: exit; case 1: exit;",
         "'case' after 'default': default must be the last label", 38),
        ("case 1: break; exit;",
         "'break' must be the last statement of a case (start a new 'case' or remove the 'break')",
         38),
        ("case 1: exit; default: xlog(\"d\"); break;",
         "'break' is not allowed in 'default' in 1.6 (default is the last label; just end "
         "the switch)", 57),
        ("exit; case 1: exit;", "statement before the first 'case' of a switch", 23),
        ("default: exit;", "switch needs at least one 'case'", 9),
        ("case 1: exit; default: exit; default: drop;",
         "second 'default' in the same switch", 52),
    ],
)
def test_switch_layout_errors(body: str, message: str, col: int) -> None:
    _f, _line, col_, msg = error("route { switch ($x) { " + body + " } }")
    assert msg == message
    assert col_ == col


def test_break_needs_semicolon() -> None:
    msg = error("route { switch ($x) { case 1: break } }")[3]
    assert msg == "syntax error: missing ';' before '}'"


# ------------------------------------------------------------------ return / exit / drop / route


@pytest.mark.parametrize(
    ("source", "node"),
    [
        ("return;", ast.Return()),
        ("return();", ast.Return()),
        ("return(0);", ast.Return(num(0))),
        ("return(-2);", ast.Return(num(-2))),
        ("return($var(rc));", ast.Return(var("rc"))),
        ("exit;", ast.Exit()),
        ("exit();", ast.Exit()),
        ("drop;", ast.Drop()),
        ("drop();", ast.Drop()),
        ("route(r1);", ast.RouteCall("r1")),
        ("route(\"r1\");", ast.RouteCall("r1")),
        ("route(7);", ast.RouteCall("7")),
    ],
)
def test_control_statements(source: str, node: ast.Node) -> None:
    assert stmt(source) == node


def test_missing_semicolon_after_command() -> None:
    _f, line, col, msg = error("route {\n  sl_send_reply(\"404\", \"Not here\")\n  exit;\n}")
    assert (line, col) == (3, 3)
    assert msg == ("syntax error: missing ';' before 'exit' "
                   "(the statement ending at 2:35 needs one)")


# ------------------------------------------------------------------ core functions


@pytest.mark.parametrize(
    ("source", "call"),
    [
        ("forward();", ast.Call("forward", [], core=True)),
        ("forward(\"udp:10.0.0.1:5060\");", ast.Call("forward", [s("udp:10.0.0.1:5060")], core=True)),
        ("send(\"tcp:gw:5060\");", ast.Call("send", [s("tcp:gw:5060")], core=True)),
        ("log(\"text\");", ast.Call("log", [s("text")], core=True)),
        ("log(-1, \"text\");", ast.Call("log", [num(-1), s("text")], core=True)),
        ("error(\"a\", \"b\");", ast.Call("error", [s("a"), s("b")], core=True)),
        ("setdebug();", ast.Call("setdebug", [], core=True)),
        ("setdebug(4);", ast.Call("setdebug", [num(4)], core=True)),
        ("setflag(31);", ast.Call("setflag", [num(31)], core=True)),
        ("resetflag(1);", ast.Call("resetflag", [num(1)], core=True)),
        ("isflagset(1);", ast.Call("isflagset", [num(1)], core=True)),
        ("setbflag(6);", ast.Call("setbflag", [num(6)], core=True)),
        ("setbranchflag(1, 6);", ast.Call("setbflag", [num(1), num(6)], core=True)),
        ("resetbranchflag(6);", ast.Call("resetbflag", [num(6)], core=True)),
        ("isbranchflagset(2, 6);", ast.Call("isbflagset", [num(2), num(6)], core=True)),
        ("setscriptflag(3);", ast.Call("setsflag", [num(3)], core=True)),
        ("resetsflag(3);", ast.Call("resetsflag", [num(3)], core=True)),
        ("isscriptflagset(3);", ast.Call("issflagset", [num(3)], core=True)),
        ("seth(\"h\");", ast.Call("rewritehost", [s("h")], core=True)),
        ("sethp(\"h:5060\");", ast.Call("rewritehostport", [s("h:5060")], core=True)),
        ("setu(\"u\");", ast.Call("rewriteuser", [s("u")], core=True)),
        ("setup(\"u:p\");", ast.Call("rewriteuserpass", [s("u:p")], core=True)),
        ("setp(\"5070\");", ast.Call("rewriteport", [s("5070")], core=True)),
        ("seturi(\"sip:a@b\");", ast.Call("rewriteuri", [s("sip:a@b")], core=True)),
        ("revert_uri;", ast.Call("revert_uri", [], core=True)),
        ("revert_uri();", ast.Call("revert_uri", [], core=True)),
        ("setduri(\"sip:gw\");", ast.Call("setdsturi", [s("sip:gw")], core=True)),
        ("resetduri;", ast.Call("resetdsturi", [], core=True)),
        ("isduriset();", ast.Call("isdsturiset", [], core=True)),
        ("prefix(\"00\");", ast.Call("prefix", [s("00")], core=True)),
        ("strip(2);", ast.Call("strip", [num(2)], core=True)),
        ("strip_tail(2);", ast.Call("strip_tail", [num(2)], core=True)),
        ("append_branch;", ast.Call("append_branch", [], core=True)),
        ("append_branch(\"sip:x@y\", \"0.5\");",
         ast.Call("append_branch", [s("sip:x@y"), s("0.5")], core=True)),
        ("avp_printf(\"$avp(s:x)\", \"$ru\");",
         ast.Call("pv_printf", [s("$avp(s:x)"), s("$ru")], core=True)),
        ("pv_printf($var(x), \"$ru\");", ast.Call("pv_printf", [var("x"), s("$ru")], core=True)),
        ("add_rport;", ast.Call("force_rport", [], core=True)),
        ("force_local_rport();", ast.Call("force_local_rport", [], core=True)),
        ("force_tcp_alias(5080);", ast.Call("force_tcp_alias", [num(5080)], core=True)),
        ("add_tcp_alias;", ast.Call("force_tcp_alias", [], core=True)),
        ("set_advertised_address(1.2.3.4);",
         ast.Call("set_advertised_address", [ast.IPLit("1.2.3.4")], core=True)),
        ("set_advertised_address(pub.example.com);",
         ast.Call("set_advertised_address", [ast.HostLit("pub.example.com")], core=True)),
        ("set_advertised_address(\"1.2.3.4\");",
         ast.Call("set_advertised_address", [s("1.2.3.4")], core=True)),
        ("set_advertised_port(5080);", ast.Call("set_advertised_port", [num(5080)], core=True)),
        ("force_send_socket(udp:10.0.0.1:5060);",
         ast.Call("force_send_socket",
                  [ast.Socket("udp", ast.IPLit("10.0.0.1"), 5060)], core=True)),
        ("force_send_socket(10.0.0.1);",
         ast.Call("force_send_socket", [ast.Socket(None, ast.IPLit("10.0.0.1"))], core=True)),
        ("force_send_socket(tls:sip.example.com:5061);",
         ast.Call("force_send_socket",
                  [ast.Socket("tls", ast.HostLit("sip.example.com"), 5061)], core=True)),
        ("serialize_branches(1);", ast.Call("serialize_branches", [num(1)], core=True)),
        ("next_branches();", ast.Call("next_branches", [], core=True)),
        ("use_blacklist(\"gw\");", ast.Call("use_blacklist", [s("gw")], core=True)),
        ("unuse_blacklist(\"all\");", ast.Call("unuse_blacklist", [s("all")], core=True)),
        ("cache_store(\"local\", \"k\", \"v\");",
         ast.Call("cache_store", [s("local"), s("k"), s("v")], core=True)),
        ("cache_store(\"local\", \"k\", \"v\", 60);",
         ast.Call("cache_store", [s("local"), s("k"), s("v"), num(60)], core=True)),
        ("cache_store(\"local\", \"k\", \"v\", $var(t));",
         ast.Call("cache_store", [s("local"), s("k"), s("v"), var("t")], core=True)),
        ("cache_fetch(\"local\", \"k\", $avp(s:v));",
         ast.Call("cache_fetch", [s("local"), s("k"), pv("$avp(s:v)", "avp", "s:v")],
                  core=True)),
        ("cache_remove(\"local\", \"k\");", ast.Call("cache_remove", [s("local"), s("k")], core=True)),
        ("xlog(\"msg\");", ast.Call("xlog", [s("msg")], core=True)),
        ("xlog(\"L_ERR\", \"msg\");", ast.Call("xlog", [s("L_ERR"), s("msg")], core=True)),
        ("xdbg(\"msg\");", ast.Call("xdbg", [s("msg")], core=True)),
        ("construct_uri(\"sip\", \"$rU\", \"$rd\", \"\", \"\", $avp(s:u));",
         ast.Call("construct_uri", [s("sip"), s("$rU"), s("$rd"), s(""), s(""),
                                    pv("$avp(s:u)", "avp", "s:u")], core=True)),
    ],
)
def test_core_functions(source: str, call: ast.Call) -> None:
    assert stmt(source) == call


def test_core_call_keeps_written_name() -> None:
    node = stmt("sethost(\"h\");")
    assert (node.name, node.written, node.core) == ("rewritehost", "sethost", True)


def test_every_core_spelling_is_known() -> None:
    spellings = ["forward", "send", "log", "error", "setdebug", "setflag", "resetflag", "isflagset", "setbflag", "setbranchflag", "resetbflag", "resetbranchflag", "isbflagset", "isbranchflagset", "setsflag", "setscriptflag", "resetsflag", "resetscriptflag", "issflagset", "isscriptflagset", "rewritehost", "sethost", "seth", "rewritehostport", "sethostport", "sethp", "rewriteuser", "setuser", "setu", "rewriteuserpass", "setuserpass", "setup", "rewriteport", "setport", "setp", "rewriteuri", "seturi", "revert_uri", "setdsturi", "setduri", "resetdsturi", "resetduri", "isdsturiset", "isduriset", "prefix", "strip", "strip_tail", "append_branch", "pv_printf", "avp_printf", "force_rport", "add_rport", "force_local_rport", "add_local_rport", "force_tcp_alias", "add_tcp_alias", "set_advertised_address", "set_advertised_port", "force_send_socket", "serialize_branches", "next_branches", "use_blacklist", "unuse_blacklist", "cache_store", "cache_fetch", "cache_remove", "xlog", "xdbg", "construct_uri"]
    assert set(spellings) == set(CORE_FUNCTIONS)


@pytest.mark.parametrize(
    ("source", "col", "message"),
    [
        ("setflag(\"1\");", 17, "setflag(): expected an unquoted number, got a quoted string"),
        ("strip(-1);", 15, "strip(): expected an unsigned number, got -1"),
        ("setbflag(1, 2, 3);", 9,
         "setbflag() takes 1 or 2 arguments, not 3: setbflag(a number) or "
         "setbflag(a number, a number)"),
        ("next_branches(1);", 9, "next_branches() takes 0 arguments, not 1: next_branches()"),
        ("xlog();", 9, "xlog() takes 1 or 2 arguments, not 0: xlog(a quoted string) or "
         "xlog(a quoted string, a quoted string)"),
        ("forward;", 9, "forward needs parentheses: forward() or forward(a quoted string)"),
        ("cache_fetch(\"local\", \"k\", \"v\");", 35,
         "cache_fetch(): expected a pseudo-variable, got a quoted string"),
        ("xlog($var(x));", 14, "xlog(): expected a quoted string, got a pseudo-variable"),
    ],
)
def test_core_function_argument_errors(source: str, col: int, message: str) -> None:
    _f, _line, col_, msg = error(f"route {{ {source} }}")
    assert (msg, col_) == (message, col)


@pytest.mark.parametrize("q", ["0", "1", "0.5", ".25", "1.000", "0.1234", " 0.7"])
def test_append_branch_q_values(q: str) -> None:
    node = stmt(f'append_branch("sip:a@b", "{q}");')
    assert node.args[1] == s(q)


@pytest.mark.parametrize("q", ["1.5", "2", "0.", "abc", ""])
def test_append_branch_bad_q_value(q: str) -> None:
    msg = error(f'route {{ append_branch("sip:a@b", "{q}"); }}')[3]
    assert msg == f'append_branch(): bad q value "{q}" (a number from 0 to 1, e.g. "0.5")'


def test_core_string_argument_accepts_unquoted_integer_superset() -> None:
    assert stmt("rewriteport(5070);") == ast.Call("rewriteport", [s("5070")], core=True)


# ------------------------------------------------------------------ module functions


def test_module_calls_zero_to_six_arguments() -> None:
    for n in range(7):
        args = ", ".join(f'"a{i}"' for i in range(n))
        node = stmt(f"mod_func({args});")
        assert node == ast.Call("mod_func", [s(f"a{i}") for i in range(n)])


def test_module_call_unquoted_integer_is_accepted_superset() -> None:
    node = stmt("sl_send_reply(404, \"Not Found\");")
    assert node == ast.Call("sl_send_reply", [num(404), s("Not Found")])


def test_module_call_errors() -> None:
    errs = errors("route {\n  f($var(x));\n  g(foo);\n  h(1.2.3.4);\n"
                  "  k(\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\");\n  t_relay;\n}")
    assert errs == [
        ("t.cfg", 2, 5, 'f(): module function arguments must be quoted strings; write "$var(x)"'),
        ("t.cfg", 3, 5, "g(): bare word 'foo' used as an argument; quote it: \"foo\""),
        ("t.cfg", 4, 5, "h(): unquoted address used as an argument; module function "
                        "arguments must be quoted strings"),
        ("t.cfg", 5, 29, "k(): too many arguments (7); a function takes at most 6"),
        ("t.cfg", 6, 3, "bare word 't_relay' found, command calls need '()' (write t_relay())"),
    ]


def test_module_call_in_condition_and_as_value() -> None:
    node = stmt("if (!lookup(\"location\", \"m\")) { $var(f) = isflagset(1); }")
    assert node.cond == ast.Not(ast.Call("lookup", [s("location"), s("m")]))
    assert node.then.body[0].value == ast.Call("isflagset", [num(1)], core=True)


# ------------------------------------------------------------------ assignments


@pytest.mark.parametrize("op", ["=", ":=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^="])
def test_every_assignment_operator(op: str) -> None:
    node = stmt(f"$var(x) {op} 5;")
    assert node == ast.Assign(var("x"), op, num(5))


@pytest.mark.parametrize(
    ("source", "node"),
    [
        ("$avp(s:x) = NULL;", ast.Assign(pv("$avp(s:x)", "avp", "s:x"), "=", ast.NullLit())),
        ("$avp(s:x) := NULL;", ast.Assign(pv("$avp(s:x)", "avp", "s:x"), ":=", ast.NullLit())),
        ("$du = null;", ast.Assign(pv("$du", "du"), "=", ast.NullLit())),
        ("$var(x) = \"$ru\";", ast.Assign(var("x"), "=", s("$ru"))),
        ("$var(x) = foo;", ast.Assign(var("x"), "=", s("foo"))),
        ("$(avp(s:x)[2]) = 1;", ast.Assign(pv("$(avp(s:x)[2])", "avp", "s:x", 2), "=", num(1))),
    ],
)
def test_assignment_forms(source: str, node: ast.Assign) -> None:
    assert stmt(source) == node


def test_assignment_errors() -> None:
    errs = errors("route {\n  $(ru{uri.user}) = \"x\";\n  $var(x) += NULL;\n"
                  "  $var(y) := NULL;\n  $var(z) = 1 + NULL;\n}")
    assert errs == [
        ("t.cfg", 2, 3, "transformations are not allowed on the left side of an assignment"),
        ("t.cfg", 3, 14, "NULL can only be assigned with '=' or ':=', not '+='"),
        ("t.cfg", 4, 3, "':= NULL' works only on AVPs ($avp(...)); use '= NULL'"),
        ("t.cfg", 5, 17, "NULL can only be assigned ($pv = NULL) or compared (== / !=)"),
    ]


def test_assignment_in_condition() -> None:
    node = stmt("if ($var(x) = $var(y)) exit;")
    assert node.cond == ast.Assign(var("x"), "=", var("y"))


def test_condition_keywords_inside_assignment() -> None:
    node = stmt("$var(m) = method == \"INVITE\";")
    assert node.value == ast.Compare("==", kw("method"), s("INVITE"))
