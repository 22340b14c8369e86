"""Route blocks: every kind, names, the main route, redefinitions
(spec section 1.5, checklist 6)."""

from __future__ import annotations

import pytest

from sipserver.lang import ast

from .util import error, errors, parse


def test_every_route_kind() -> None:
    script = parse(
        "route { exit; }\n"
        "route[sub] { return; }\n"
        "failure_route[fail] { exit; }\n"
        "onreply_route { exit; }\n"
        "onreply_route[rep] { exit; }\n"
        "branch_route[br] { exit; }\n"
        "error_route { exit; }\n"
        "local_route { exit; }\n"
        "startup_route { exit; }\n"
        "timer_route[tick, 30] { exit; }\n"
        "timer_route[tock, 5] { drop; }\n"
    )
    assert {k: sorted(v, key=str) for k, v in script.routes.items()} == {
        "request": [None, "sub"],
        "failure": ["fail"],
        "onreply": [None, "rep"],
        "branch": ["br"],
        "error": [None],
        "local": [None],
        "startup": [None],
    }
    assert [(r.name, r.interval) for r in script.timer_routes] == [("tick", 30), ("tock", 5)]
    assert script.main_route.body == ast.Block([ast.Exit()])
    assert script.route("request", "sub").body == ast.Block([ast.Return()])
    assert script.route("failure", "fail").kind == "failure"
    sub = script.route("request", "sub")
    assert (sub.line, sub.col) == (2, 1)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("route[foo]", "foo"),
        ("route[1]", "1"),
        ('route["1"]', "1"),
        ("route[01]", "1"),  # octal literal, as in 1.6
        ("route[0x10]", "16"),
        ('route["with space"]', "with space"),
    ],
)
def test_route_names_are_text(header: str, name: str) -> None:
    script = parse(f"route {{ exit; }}\n{header} {{ exit; }}")
    assert name in script.routes["request"]


@pytest.mark.parametrize("header", ["route", "route[0]", 'route["0"]', "route[00]"])
def test_main_route_spellings(header: str) -> None:
    script = parse(f"{header} {{ exit; }}")
    assert script.main_route is not None
    assert list(script.routes["request"]) == [None]


def test_main_route_defined_twice() -> None:
    _f, line, col, msg = error("route { exit; }\nroute[0] { exit; }")
    assert (line, col) == (2, 1)
    assert msg == "the main route (route / route[0]) is defined twice (first at t.cfg:1:1)"


def test_named_route_redefined() -> None:
    _f, line, col, msg = error('route[a] { exit; }\nroute["a"] { exit; }')
    assert (line, col, msg) == (2, 1, "route[a] is defined twice (first at t.cfg:1:1)")


def test_same_name_in_different_kinds_is_fine() -> None:
    script = parse("failure_route[1] { exit; } branch_route[1] { exit; }"
                   " onreply_route[1] { exit; } route[1] { exit; }")
    assert all("1" in script.routes[k] for k in ("failure", "branch", "onreply", "request"))


def test_onreply_route_zero_is_a_named_route() -> None:
    script = parse("onreply_route { exit; }\nonreply_route[0] { drop; }")
    assert script.route("onreply", None).body == ast.Block([ast.Exit()])
    assert script.route("onreply", "0").body == ast.Block([ast.Drop()])


def test_global_onreply_route_twice() -> None:
    msg = error("onreply_route { exit; }\nonreply_route { exit; }")[3]
    assert msg == "the global onreply_route is defined twice (first at t.cfg:1:1)"


@pytest.mark.parametrize("kw", ["error_route", "local_route", "startup_route"])
def test_single_blocks(kw: str) -> None:
    msg = error(f"{kw} {{ exit; }}\n{kw} {{ exit; }}")[3]
    assert msg == f"{kw} is defined twice (first at t.cfg:1:1)"
    msg = error(f"{kw}[x] {{ exit; }}")[3]
    assert msg == f"{kw} takes no name: {kw} {{ ... }}"


@pytest.mark.parametrize("kw", ["failure_route", "branch_route"])
def test_failure_and_branch_routes_need_a_name(kw: str) -> None:
    _f, line, col, msg = error(f"\n{kw} {{ exit; }}")
    assert (line, col) == (2, 1)
    assert msg == f"{kw} needs a name: {kw}[NAME] {{ ... }}"


def test_timer_route_needs_name_and_interval() -> None:
    assert error("timer_route[t] { exit; }")[3].startswith("timer_route needs a name and an")
    assert error("timer_route { exit; }")[3].startswith("timer_route needs a name and an")
    msg = error("route[x, 5] { exit; }")[3]
    assert msg == "only timer_route takes an interval; write route[x]"


def test_forward_reference_and_route_calls_parse() -> None:
    # route(x) may come before route[x]; undefined targets are the compiler's job
    script = parse("route { route(later); route(\"later\"); route(2); }\n"
                   "route[later] { exit; }")
    assert script.main_route.body.body == [ast.RouteCall("later"), ast.RouteCall("later"),
                                           ast.RouteCall("2")]


def test_empty_route_body_is_accepted() -> None:
    # 1.6 wants at least one action (`route { ; }`); an empty block is harmless
    assert parse("route { }").main_route.body == ast.Block([])
    assert parse("route { ; }").main_route.body == ast.Block([])


def test_route_block_syntax_errors() -> None:
    _f, line, col, msg = error("route exit;")
    assert (line, col, msg) == (1, 7, "syntax error: unexpected 'exit'; expected '[' or '{'")
    _f, line, col, msg = error("route[x] exit;")
    assert (line, col, msg) == (1, 10, "syntax error: unexpected 'exit'; expected '{'")


def test_several_errors_are_reported_together() -> None:
    errs = errors("failure_route { exit; }\nroute { exit; }\nroute { exit; }\n"
                  "branch_route { exit; }\n")
    assert [(e[1], e[2]) for e in errs] == [(1, 1), (3, 1), (4, 1)]
