"""Small helpers shared by the script-language tests."""

from __future__ import annotations

from typing import Any

import pytest

from sipserver.lang import ast
from sipserver.lang.errors import CfgError
from sipserver.lang.parser import parse_text


def parse(text: str, filename: str = "t.cfg") -> ast.Script:
    """Parse a whole script."""
    return parse_text(text, filename)


def stmts(body: str) -> list[Any]:
    """Statements of a main route whose body is ``body``."""
    script = parse("route {\n" + body + "\n}\n")
    route = script.main_route
    assert route is not None
    return route.body.body


def stmt(body: str) -> Any:
    """The single statement of a main route body."""
    items = stmts(body)
    assert len(items) == 1, items
    return items[0]


def cond(text: str) -> Any:
    """The condition of ``if (<text>) exit;``."""
    node = stmt(f"if ({text}) exit;")
    assert isinstance(node, ast.If)
    return node.cond


def expr(text: str) -> Any:
    """The right side of ``$var(x) = <text>;``."""
    node = stmt(f"$var(x) = {text};")
    assert isinstance(node, ast.Assign)
    return node.value


def errors(text: str, filename: str = "t.cfg") -> list[tuple[str, int, int, str]]:
    """The errors a script produces (the test fails if it parses)."""
    with pytest.raises(CfgError) as info:
        parse_text(text, filename)
    return info.value.errors


def error(text: str, filename: str = "t.cfg") -> tuple[str, int, int, str]:
    """The single error a script produces."""
    errs = errors(text, filename)
    assert len(errs) == 1, errs
    return errs[0]


# short constructors for expected shapes
def pv(raw: str, name: str, inner: str | None = None, index: Any = None,
       transforms: list[str] | None = None, context: str | None = None,
       inner_pvar: ast.PVar | None = None) -> ast.PVar:
    return ast.PVar(raw, name, inner, index, transforms or [], context, inner_pvar)


def num(value: int) -> ast.NumLit:
    return ast.NumLit(value)


def s(value: str) -> ast.StrLit:
    return ast.StrLit(value)


def kw(name: str) -> ast.Keyword:
    return ast.Keyword(name)


def var(name: str) -> ast.PVar:
    return pv(f"$var({name})", "var", name)
