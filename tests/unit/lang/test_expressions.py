"""Conditions and expressions with 1.6 precedence, core condition keywords
(spec sections 3.7, 3.8, 4; checklist 10, 17, 18, 19, 21, 22, 23)."""

from __future__ import annotations

import pytest

from sipserver.lang import ast

from .util import cond, error, expr, kw, num, pv, s, stmt, var

A, B, C = var("a"), var("b"), var("c")


def And(left: ast.Node, right: ast.Node) -> ast.BoolOp:
    return ast.BoolOp("and", left, right)


def Or(left: ast.Node, right: ast.Node) -> ast.BoolOp:
    return ast.BoolOp("or", left, right)


def Bin(op: str, left: ast.Node, right: ast.Node) -> ast.BinOp:
    return ast.BinOp(op, left, right)


# ------------------------------------------------------------------ logical operators


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        # && and || share one level and associate to the left (checklist 10)
        ("1 || 0 && 0", And(Or(num(1), num(0)), num(0))),
        ("$var(a) && $var(b) || $var(c)", Or(And(A, B), C)),
        ("$var(a) || $var(b) && $var(c)", And(Or(A, B), C)),
        ("$var(a) and $var(b) or $var(c)", Or(And(A, B), C)),
        # ! binds tightest
        ("!0 && 0", And(ast.Not(num(0)), num(0))),
        ("not $var(a) || $var(b)", Or(ast.Not(A), B)),
        ("!!$var(a)", ast.Not(ast.Not(A))),
        # parentheses group
        ("($var(a) || $var(b)) && $var(c)", And(Or(A, B), C)),
        ("$var(a) || ($var(b) && $var(c))", Or(A, And(B, C))),
        ("!($var(a) && $var(b))", ast.Not(And(A, B))),
        # `!uri==myself` is `!(uri==myself)`: comparisons are atoms
        ("!uri==myself", ast.Not(ast.Compare("==", kw("uri"), ast.MySelf()))),
    ],
)
def test_logical_precedence(source: str, tree: ast.Node) -> None:
    assert cond(source) == tree


def test_condition_atoms() -> None:
    assert cond("1") == num(1)
    assert cond("-1") == num(-1)
    assert cond("$var(a)") == A
    assert cond("[$var(a) & 4]") == ast.ExprCond(Bin("&", A, num(4)))
    assert cond("route(check)") == ast.RouteCall("check")
    assert cond("{ xlog(\"x\"); }") == ast.Block([ast.Call("xlog", [s("x")], core=True)])
    assert cond("isdsturiset") == ast.Call("isdsturiset", [], core=True)


def test_comparison_cannot_start_with_a_literal() -> None:
    _f, line, col, msg = error("route { if (1 == 1) exit; }")
    assert (line, col) == (1, 15)
    assert msg == ("syntax error: unexpected '=='; expected '&&', ')', 'and', 'or' or '||' "
                   "(a comparison must start with a pseudo-variable or a keyword)")


def test_bare_word_in_condition_is_an_error() -> None:
    msg = error("route { if (has_totag) exit; }")[3]
    assert msg == "bare word 'has_totag' found, command calls need '()' (write has_totag())"


# ------------------------------------------------------------------ arithmetic (checklist 21)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("1+2*3", Bin("*", Bin("+", num(1), num(2)), num(3))),  # = 9 in 1.6
        ("7+1-3*2", Bin("*", Bin("-", Bin("+", num(7), num(1)), num(3)), num(2))),  # = 10
        ("7|1<<2", Bin("<<", Bin("|", num(7), num(1)), num(2))),  # = 28
        ("2+3|4", Bin("|", Bin("+", num(2), num(3)), num(4))),  # = 5
        ("4|2+3", Bin("|", num(4), Bin("+", num(2), num(3)))),  # bit ops below arithmetic
        ("~0", ast.UnOp("~", num(0))),
        ("~1+2", Bin("+", ast.UnOp("~", num(1)), num(2))),
        ("(1+2)*3", Bin("*", Bin("+", num(1), num(2)), num(3))),
        ("-7%3", Bin("%", num(-7), num(3))),
        ("10 / 0", Bin("/", num(10), num(0))),
        ("1 - -2", Bin("-", num(1), num(-2))),
        ("8 >> 1 ^ 3 & 1", Bin("&", Bin("^", Bin(">>", num(8), num(1)), num(3)), num(1))),
    ],
)
def test_arithmetic_precedence(source: str, tree: ast.Node) -> None:
    assert expr(source) == tree


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ('"n=" + $var(i)', Bin("+", s("n="), var("i"))),
        ('"a" + 1', Bin("+", s("a"), num(1))),
        ('$var(i) + "1"', Bin("+", var("i"), s("1"))),
        ('"$ru"', s("$ru")),  # literal text, not expanded
        ("sip_domain", s("sip_domain")),  # bare word = string
        ("$ru + \"@\" + $rd", Bin("+", Bin("+", pv("$ru", "ru"), s("@")), pv("$rd", "rd"))),
        ("isflagset(3)", ast.Call("isflagset", [num(3)], core=True)),
        ("$var(a) == 2", ast.Compare("==", A, num(2))),
        ("$var(a) + $var(b) == 2", Bin("+", A, ast.Compare("==", B, num(2)))),
    ],
)
def test_expression_operands(source: str, tree: ast.Node) -> None:
    assert expr(source) == tree


def test_no_unary_minus_on_pseudo_variables() -> None:
    assert error("route { $var(x) = -$var(y); }")[3].startswith("syntax error: unexpected")


# ------------------------------------------------------------------ pseudo-variable comparisons


@pytest.mark.parametrize(
    ("source", "right"),
    [
        ("$var(a) == $var(b)", B),
        ('$var(a) == "str"', s("str")),
        ("$var(a) == word", s("word")),
        ("$var(a) == 5", num(5)),
        ("$var(a) == -5", num(-5)),
        ("$var(a) == NULL", ast.NullLit()),
        ("$var(a) == myself", ast.MySelf()),
    ],
)
def test_pvar_comparison_right_sides(source: str, right: ast.Node) -> None:
    assert cond(source) == ast.Compare("==", A, right)


@pytest.mark.parametrize("op", ["==", "!=", "=~", "!~", ">", "<", ">=", "<="])
def test_pvar_comparison_operators(op: str) -> None:
    assert cond(f'$var(a) {op} "x"') == ast.Compare(op, A, s("x"))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$var(a) =~ 5", "operator '=~' cannot be used with a number (use one of: == != > < >= <=)"),
        ("$var(a) > NULL", "operator '>' cannot be used with NULL (use one of: == !=)"),
        ("$var(a) !~ myself", "operator '!~' cannot be used with myself (use one of: == !=)"),
        ("uri > myself", "operator '>' cannot be used with myself (use one of: == !=)"),
        ("src_ip =~ 10.0.0.0/8",
         "operator '=~' cannot be used with an IP address or network (use one of: == !=)"),
        ("src_port =~ 5060",
         "operator '=~' cannot be used with src_port (use one of: == != > < >= <=)"),
        ("proto =~ udp", "operator '=~' cannot be used with proto (use one of: == != > < >= <=)"),
        ("myself > uri", "operator '>' cannot be used with myself (use one of: == !=)"),
    ],
)
def test_operator_checks(source: str, message: str) -> None:
    _f, _line, col, msg = error(f"route {{ if ({source}) exit; }}")
    assert msg == message
    assert col == 13


# ------------------------------------------------------------------ core keywords (section 4)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ('method == "INVITE"', ast.Compare("==", kw("method"), s("INVITE"))),
        ("method == INVITE", ast.Compare("==", kw("method"), s("INVITE"))),
        ('method =~ "^(INVITE|ACK)$"', ast.Compare("=~", kw("method"), s("^(INVITE|ACK)$"))),
        ('uri =~ "sip:\\+?[0-9]+@.*"', ast.Compare("=~", kw("uri"), s("sip:\\+?[0-9]+@.*"))),
        ("uri == myself", ast.Compare("==", kw("uri"), ast.MySelf())),
        ("uri != sip.example.com", ast.Compare("!=", kw("uri"), ast.HostLit("sip.example.com"))),
        ('status == "200"', ast.Compare("==", kw("uri"), s("200"))),
        ('status =~ "^18"', ast.Compare("=~", kw("uri"), s("^18"))),
        ("from_uri == myself", ast.Compare("==", kw("from_uri"), ast.MySelf())),
        ('to_uri =~ "@example"', ast.Compare("=~", kw("to_uri"), s("@example"))),
        ("src_ip == 10.0.0.1", ast.Compare("==", kw("src_ip"),
                                            ast.NetLit(ast.IPLit("10.0.0.1"), 32))),
        ("src_ip == 10.0.0.0/8", ast.Compare("==", kw("src_ip"),
                                              ast.NetLit(ast.IPLit("10.0.0.0"), 8))),
        ("src_ip != 10.0.0.0/255.0.0.0",
         ast.Compare("!=", kw("src_ip"), ast.NetLit(ast.IPLit("10.0.0.0"), 8,
                                                    ast.IPLit("255.0.0.0")))),
        ("src_ip == 10.0.0.0/255.0.255.0",
         ast.Compare("==", kw("src_ip"), ast.NetLit(ast.IPLit("10.0.0.0"), -1,
                                                    ast.IPLit("255.0.255.0")))),
        ('src_ip == "192.168.0.10"', ast.Compare("==", kw("src_ip"), s("192.168.0.10"))),
        ("src_ip == backup.foo.bar", ast.Compare("==", kw("src_ip"),
                                                  ast.HostLit("backup.foo.bar"))),
        ('dst_ip =~ "^10\\."', ast.Compare("=~", kw("dst_ip"), s("^10\\."))),
        ("dst_ip == ::1", ast.Compare("==", kw("dst_ip"), ast.NetLit(ast.IPLit("::1", 6), 128))),
        ("dst_ip == [2001:db8::1]",
         ast.Compare("==", kw("dst_ip"), ast.NetLit(ast.IPLit("2001:db8::1", 6), 128))),
        ("dst_ip == fe80::/10",
         ast.Compare("==", kw("dst_ip"), ast.NetLit(ast.IPLit("fe80::", 6), 10))),
        ("dst_ip == myself", ast.Compare("==", kw("dst_ip"), ast.MySelf())),
        ("src_port == 5060", ast.Compare("==", kw("src_port"), num(5060))),
        ("dst_port >= 1024", ast.Compare(">=", kw("dst_port"), num(1024))),
        ("proto == udp", ast.Compare("==", kw("proto"), ast.ProtoLit("udp"))),
        ("proto != TLS", ast.Compare("!=", kw("proto"), ast.ProtoLit("tls"))),
        ("proto == any", ast.Compare("==", kw("proto"), ast.ProtoLit("any"))),
        ("af == INET", ast.Compare("==", kw("af"), num(2))),
        ("af == inet6", ast.Compare("==", kw("af"), num(10))),
        ("af == 2", ast.Compare("==", kw("af"), num(2))),
        ("msg:len >= 2048", ast.Compare(">=", kw("msg:len"), num(2048))),
        ("msg:len < max_len", ast.Compare("<", kw("msg:len"), num(65535))),
        ("myself == uri", ast.Compare("==", kw("uri"), ast.MySelf())),
        ("myself != status", ast.Compare("!=", kw("uri"), ast.MySelf())),
        ("myself == src_ip", ast.Compare("==", kw("src_ip"), ast.MySelf())),
        ("myself != to_uri", ast.Compare("!=", kw("to_uri"), ast.MySelf())),
    ],
)
def test_core_keyword_comparisons(source: str, tree: ast.Node) -> None:
    assert cond(source) == tree


def test_status_keeps_its_spelling() -> None:
    left = cond('status == "200"').left
    assert (left.name, left.written) == ("uri", "status")


def test_keyword_right_side_errors() -> None:
    assert error("route { if (src_port == \"5060\") exit; }")[3] == \
        'syntax error: unexpected string "5060"; expected a number'
    assert error("route { if (proto == foo) exit; }")[3] == \
        "syntax error: unexpected 'foo'; expected a protocol (udp, tcp, tls, sctp, any)"
    assert error("route { if (src_ip == 10.0.0.0/33) exit; }")[3] == \
        "invalid bit number in netmask: 33 (0..32)"


def test_host_and_network_only_in_conditions() -> None:
    # 1.6 accepts `uri == host` / `src_ip == net` in conditions, not in assignments
    assert error("route { $var(x) = src_ip == 10.0.0.1; }")[3].startswith("syntax error")
    node = stmt('$var(x) = uri == "sip:a@b";')
    assert node.value == ast.Compare("==", kw("uri"), s("sip:a@b"))
