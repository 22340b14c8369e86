"""The grammar itself: LALR conflicts, the cached parser, parse speed, and
how keywords are recognised by context."""

from __future__ import annotations

import logging
import time

import lark
import pytest

from sipserver.lang import ast
from sipserver.lang.parser import GRAMMAR_PATH, get_lark, parse_text

from .util import expr, parse, s, stmt


def test_only_dangling_else_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("lark")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="lark"):
            lark.Lark(GRAMMAR_PATH.read_text(), parser="lalr", lexer="contextual",
                      start=["start", "actions_file"], maybe_placeholders=True, debug=True)
    finally:
        logger.setLevel(old)
    conflicts = [r.getMessage() for r in caplog.records if "conflict" in r.getMessage()]
    assert conflicts, "the dangling else must show up as a (shift-resolved) conflict"
    assert all("Shift/Reduce conflict for terminal ELSE" in c for c in conflicts), conflicts


def test_parser_is_built_once() -> None:
    assert get_lark() is get_lark()


def _big_script(lines: int) -> str:
    head = ('debug=3\nfork=yes\nchildren=4\nlisten=udp:10.0.0.1:5060\nmpath="/usr/lib/opensips/"\n'
            'loadmodule "sl.so"\nloadmodule "tm.so"\nmodparam("tm", "fr_timer", 10)\n'
            "route {\n  route(r0);\n}\n")
    parts = [head]
    i = 0
    while sum(p.count("\n") for p in parts) < lines:
        parts.append(
            f"route[r{i}] {{\n"
            f"    if (is_method(\"INVITE\") && $var(x) == {i}) {{\n"
            f"        $var(y) = $var(x) + {i} * 2 | 4;\n"
            f"        xlog(\"L_INFO\", \"call $ru from $fu [$ci] n={i}\\n\");\n"
            "        if (!t_relay()) { sl_reply_error(); };\n"
            "    } else if (src_ip == 10.0.0.0/8 || uri == myself) {\n"
            "        switch ($retcode) {\n"
            "            case -1: case -3: t_reply(\"404\", \"Not Found\"); exit;\n"
            f"            case 2: route(r{max(i - 1, 0)}); break;\n"
            "            default: drop;\n"
            "        }\n"
            "    }\n"
            "    $(avp(s:x)[*]) = NULL;\n"
            "    while ($var(i) < 10) { $var(i) = $var(i) + 1; }\n"
            "    return(1);\n"
            "}\n"
        )
        i += 1
    return "".join(parts)


def test_500_line_script_parses_well_under_a_second() -> None:
    text = _big_script(500)
    assert text.count("\n") >= 500
    get_lark()
    parse_text(text, "big.cfg")      # warm-up
    start = time.perf_counter()
    script = parse_text(text, "big.cfg")
    elapsed = time.perf_counter() - start
    assert len(script.routes["request"]) > 30
    assert elapsed < 0.5, f"500-line script took {elapsed:.3f}s"


# ------------------------------------------------------------------ keywords by context


def test_keywords_are_reserved_where_they_can_appear() -> None:
    # `myself`, `null`, `yes` are keywords on the right of a comparison / in values
    node = stmt("if ($var(a) == myself) exit;")
    assert node.cond.right == ast.MySelf()
    assert expr("yes") == ast.NumLit(1)
    assert expr("null") == ast.NullLit()


def test_keywords_are_plain_names_where_they_cannot_appear() -> None:
    # a superset of 1.6: words that are keywords elsewhere work as host labels,
    # route names and bare-word values
    script = parse("listen=udp:route.example.com:5060\nroute[method] { exit; }\n"
                   "route { route(method); $var(x) = udp; }")
    assert script.params[0].value[0].host == ast.HostLit("route.example.com")
    assert script.route("request", "method") is not None
    assert script.main_route.body.body[1].value == s("udp")


def test_as_is_a_keyword_only_between_blanks() -> None:
    script = parse("listen=udp:10.0.0.1:5060 as 1.2.3.4\nalias=as.example.com")
    assert script.params[0].value[0].adv_host == ast.IPLit("1.2.3.4")
    assert script.params[1].value[0].host == ast.HostLit("as.example.com")


def test_parameter_name_needs_equal_sign_not_comparison() -> None:
    # `name =` starts a parameter, including across comments and newlines
    script = parse("debug /* level */\n  = 3")
    assert script.params[0].value == ast.NumLit(3)


def test_long_else_if_chain_does_not_hit_the_recursion_limit() -> None:
    chain = " else ".join(f'if ($rU == "{i}") {{ route(r{i}); }}' for i in range(1500))
    script = parse("route { " + chain + " }")
    node = script.main_route.body.body[0]
    depth = 0
    while node.orelse is not None:
        node = node.orelse.body[0]
        depth += 1
    assert depth == 1499
    assert node.then.body == [ast.RouteCall("r1499")]
