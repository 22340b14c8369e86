"""Pseudo-variable tokens (spec sections 2.7, 7.1; checklist 25, 26, 34, 35)."""

from __future__ import annotations

import pytest

from sipserver.lang import ast
from sipserver.lang.pvtoken import PVSyntaxError, parse_pv_token, scan_pv

from .util import error, expr, pv, stmt, var


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("$ru", pv("$ru", "ru")),
        ("$ruri.user", pv("$ruri.user", "ruri.user")),
        ("$T_reply_code", pv("$T_reply_code", "T_reply_code")),
        ("$DLG_status", pv("$DLG_status", "DLG_status")),
        ("$err.class", pv("$err.class", "err.class")),
        ("$var(x)", pv("$var(x)", "var", "x")),
        ("$avp(s:x)", pv("$avp(s:x)", "avp", "s:x")),
        ("$avp(i:3)", pv("$avp(i:3)", "avp", "i:3")),
        ("$avp(i3:10)", pv("$avp(i3:10)", "avp", "i3:10")),
        ("$avp(serial_branch)", pv("$avp(serial_branch)", "avp", "serial_branch")),
        ("$hdr(Via)", pv("$hdr(Via)", "hdr", "Via")),
        ("$time(%H:%M)", pv("$time(%H:%M)", "time", "%H:%M")),
        ("$C(rb)", pv("$C(rb)", "C", "rb")),
        ("$json(a/b[0])", pv("$json(a/b[0])", "json", "a/b[0]")),
        ("$dlg_val(caller)", pv("$dlg_val(caller)", "dlg_val", "caller")),
        ("$(ru)", pv("$(ru)", "ru")),
        ("$(avp(s:x)[*])", pv("$(avp(s:x)[*])", "avp", "s:x", "*")),
        ("$(avp(i:1)[2])", pv("$(avp(i:1)[2])", "avp", "i:1", 2)),
        ("$(avp(i:1)[-1])", pv("$(avp(i:1)[-1])", "avp", "i:1", -1)),
        ("$(hdr(Via)[1])", pv("$(hdr(Via)[1])", "hdr", "Via", 1)),
        ("$(ru{uri.user})", pv("$(ru{uri.user})", "ru", transforms=["uri.user"])),
        ("$(ru{uri.user}{s.len})",
         pv("$(ru{uri.user}{s.len})", "ru", transforms=["uri.user", "s.len"])),
        ("$(hdr(To){nameaddr.uri}{uri.host})",
         pv("$(hdr(To){nameaddr.uri}{uri.host})", "hdr", "To",
            transforms=["nameaddr.uri", "uri.host"])),
        ("$(avp(s:x)[0]{s.substr,0,2})",
         pv("$(avp(s:x)[0]{s.substr,0,2})", "avp", "s:x", 0, ["s.substr,0,2"])),
        ("$(var(x){s.select,1,,})", pv("$(var(x){s.select,1,,})", "var", "x",
                                       transforms=["s.select,1,,"])),
        ("$(<request>ru)", pv("$(<request>ru)", "ru", context="request")),
        ("$(<reply>hdr(Contact)[0])",
         pv("$(<reply>hdr(Contact)[0])", "hdr", "Contact", 0, context="reply")),
        # superset (spec section 10, item 6): index without the $( ) wrapper
        ("$hdr(Via)[1]", pv("$hdr(Via)[1]", "hdr", "Via", 1)),
        ("$avp(s:x)[*]", pv("$avp(s:x)[*]", "avp", "s:x", "*")),
    ],
)
def test_pv_token_forms(token: str, expected: ast.PVar) -> None:
    node = expr(token)
    assert node == expected
    assert node.raw == token


def test_dynamic_inner_name_and_index() -> None:
    node = expr("$avp($var(n))")
    assert node == pv("$avp($var(n))", "avp", "$var(n)", inner_pvar=var("n"))
    node = expr("$(avp(s:x)[$var(i)])")
    assert node.index == var("i")
    node = expr("$hdr($var(h))")
    assert node.inner_pvar == var("h")


def test_transformation_with_pv_parameter() -> None:
    token = "$(var(x){param.value,$(var(y){param.name,1})})"
    node = expr(token)
    assert node.transforms == ["param.value,$(var(y){param.name,1})"]


def test_transformations_separated_by_blanks() -> None:
    parts = parse_pv_token("$(ru{uri.user} {s.len})")
    assert parts.transforms == ["uri.user", "s.len"]


def test_pvar_location() -> None:
    node = stmt("  $var(a) = $(avp(s:x)[1]);")
    assert (node.target.line, node.target.col) == (2, 3)
    assert (node.value.line, node.value.col) == (2, 13)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("$(ru", "missing ')' at the end of the pseudo-variable"),
        ("$(avp(s:x)[])", "empty index '[]'"),
        ("$(avp(s:x)[a])", "invalid index [a]: use an integer, '*' or a pseudo-variable"),
        ("$(ru{})", "empty transformation '{}'"),
        ("$var()", "empty name in $var()"),
        ("$(ru:x)", "unexpected ':' in pseudo-variable; expected ')'"),
        ("$()", "missing pseudo-variable name after '$'"),
        ("$$", "'$$' (a literal dollar) is only meaningful inside strings"),
        ("$(<request ru)", "context '<...>' is not closed with '>'"),
    ],
)
def test_pv_token_errors(token: str, message: str) -> None:
    with pytest.raises(PVSyntaxError) as info:
        parse_pv_token(token)
    assert info.value.message == message


def test_bad_pvar_in_script_is_located() -> None:
    _f, line, col, msg = error("route {\n  $var(x) = $(avp(s:x)[oops]);\n}")
    assert (line, col) == (2, 24)
    assert msg == ("bad pseudo-variable $(avp(s:x)[oops]): invalid index [oops]: use an "
                   "integer, '*' or a pseudo-variable")


def test_transformation_needs_wrapper_hint() -> None:
    _f, line, col, msg = error("route {\n  $var(x) = $ru{uri.user};\n}")
    assert (line, col) == (2, 16)
    assert "transformations need the $( ) form, e.g. $(ru{uri.user})" in msg


def test_unbalanced_parenthesis() -> None:
    _f, line, col, msg = error("route { $var(x) = $hdr(Via; }")
    assert (line, col, msg) == (1, 23, "syntax error: unbalanced '(' in a pseudo-variable")


def test_token_ends_at_operators_and_blanks() -> None:
    node = stmt("$var(a)=$var(b)+$ru;")
    assert node.value == ast.BinOp("+", var("b"), pv("$ru", "ru"))
    node = stmt("if($rc<0)exit;")
    assert node.cond == ast.Compare("<", pv("$rc", "rc"), ast.NumLit(0))


def test_scan_pv_inside_text_for_formats() -> None:
    text = "from $fu to $(tu{uri.user}) ok"
    parts, end = scan_pv(text, 5)
    assert (parts.name, end) == ("fu", 8)
    parts, end = scan_pv(text, 12)
    assert (parts.name, parts.transforms, text[end:]) == ("tu", ["uri.user"], " ok")
