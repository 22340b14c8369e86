"""Lexical rules of the 1.6 cfg language (spec section 2, checklist 1, 4, 5)."""

from __future__ import annotations

import pytest

from sipserver.lang import ast
from sipserver.lang.parser import unescape_string

from .util import error, expr, num, parse, s, stmt, stmts

# ------------------------------------------------------------------ comments


def test_hash_comment_to_end_of_line_and_at_eof_without_newline() -> None:
    script = parse("debug=3 # a comment\nfork=no # last line, no newline")
    assert [p.name for p in script.params] == ["debug", "fork"]


def test_block_comment_spanning_lines() -> None:
    script = parse("/* line 1\n   line 2 */ debug=3")
    assert script.params[0].value == num(3)
    assert script.params[0].line == 2


def test_block_comments_nest() -> None:
    script = parse("/* outer /* inner */ still comment */ children=2\n"
                   "route { /* a /* b /* c */ */ */ exit; }")
    assert script.params[0].value == num(2)
    assert script.main_route.body.body == [ast.Exit()]


def test_comment_markers_inside_strings_are_text() -> None:
    node = stmt('xlog("a # b /* c */ d // e");')
    assert node.args == [s("a # b /* c */ d // e")]


def test_double_slash_comment_is_accepted_superset() -> None:
    # 1.6 rejects `//`; sipserver accepts it (spec section 10, item 7)
    script = parse("// comment\nroute { exit; // trailing\n}")
    assert script.main_route.body.body == [ast.Exit()]


def test_unterminated_block_comment_is_reported_at_its_start() -> None:
    _f, line, col, msg = error("route {\n  exit;\n  /* never closed\n}\n")
    assert (line, col) == (3, 3)
    assert "unterminated /* comment" in msg


# ------------------------------------------------------------------ strings


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r'"a\nb"', "a\nb"),
        (r'"a\tb"', "a\tb"),
        (r'"a\rb"', "a\rb"),
        (r'"\a"', "\a"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\x41\x4a"', "AJ"),
        (r'"\x4"', "\x04"),
        (r'"\101\12"', "A\n"),
        (r'"^\d+\.$"', r"^\d+\.$"),  # unknown escapes are kept with the backslash
        (r'"\1 back-reference"', r"\1 back-reference"),  # single octal digit kept
        ('"line\\\ncontinued"', "linecontinued"),  # backslash-newline removed
        ('"two\nlines"', "two\nlines"),  # a plain newline is kept
        (r"'raw \n $ru \x41'", r"raw \n $ru \x41"),  # single quotes: no escapes
        ("'multi\nline'", "multi\nline"),
    ],
)
def test_string_escapes(source: str, value: str) -> None:
    assert unescape_string(source) == value
    node = stmt(f"xlog({source});")
    assert node.args[0].value == value


def test_string_keeps_raw_text_and_position() -> None:
    node = stmt('  xlog("L_INFO",\n    "from $fu\\n");')
    arg = node.args[1]
    assert arg.raw == "from $fu\\n"
    assert arg.quote == '"'
    assert (arg.line, arg.col) == (3, 5)


def test_unterminated_string_is_reported_at_the_quote() -> None:
    _f, line, col, msg = error('route {\n  xlog("abc);\n}\n')
    assert (line, col) == (2, 8)
    assert "unterminated string" in msg


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("0x1F", 31),
        ("0xff", 255),
        ("017", 15),  # octal
        ("-5", -5),
        ("+5", 5),
        ("yes", 1),
        ("true", 1),
        ("on", 1),
        ("enable", 1),
        ("no", 0),
        ("false", 0),
        ("off", 0),
        ("disable", 0),
        ("INET", 2),
        ("inet", 2),
        ("INET6", 10),
        ("inet6", 10),
        ("4294967295", -1),  # stored as a C int, like 1.6
    ],
)
def test_number_forms(source: str, value: int) -> None:
    node = expr(source)
    assert node == num(value)
    assert node.raw == source


def test_null_words() -> None:
    assert expr("NULL") == ast.NullLit()
    assert expr("null") == ast.NullLit()


def test_backslash_newline_outside_strings_joins_lines() -> None:
    node = stmt("$var(x) = 1 + \\\n 2;")
    assert node.value == ast.BinOp("+", num(1), num(2))


def test_columns_count_tabs_as_one() -> None:
    node = stmts("\t\texit;")[0]
    assert (node.line, node.col) == (2, 3)


# ------------------------------------------------------------------ words


def test_keywords_are_case_sensitive() -> None:
    # `IF` is not `if`: it is read as a module function name
    _f, line, col, msg = error("route { IF ($a) exit; }")
    assert (line, col) == (1, 17)
    assert msg == "syntax error: missing ';' before 'exit'"


def test_keyword_prefix_is_a_normal_name() -> None:
    node = stmt("routes_helper(); ")
    assert node == ast.Call("routes_helper", [], core=False)
    node = stmt("iffy();")
    assert node.name == "iffy"


def test_bare_word_value_is_a_string() -> None:
    node = expr("INVITE")
    assert node == s("INVITE")
    assert node.quote == ""
