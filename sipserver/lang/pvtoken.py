"""Split a pseudo-variable token into its parts, following 1.6's pv_parse_spec.

The lexer only finds where a ``$...`` token ends; this module reads its
structure: ``$name``, ``$name(inner)``, ``$(name)``, ``$(name(inner)[idx])``,
``$(name{tr}{tr})``, ``$(<ctx>name...)``, plus the sipserver superset
``$name(inner)[idx]``.  It knows nothing about which names exist (modules
register names later); it only checks the shape, so that a malformed token
is reported where it is written.  It is shared with the compiler, which finds
the same tokens inside format strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PVSyntaxError", "PVTokenParts", "parse_pv_token", "scan_pv"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


class PVSyntaxError(ValueError):
    """Malformed pseudo-variable; ``offset`` is the position inside the token."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(slots=True)
class PVTokenParts:
    """The pieces of one PV token (see ``ast.PVar`` for their meaning).

    ``index`` and ``inner_pvar`` hold nested ``PVTokenParts`` when the index
    or the inner name is itself a PV; ``offset`` of a nested part is its
    position inside the outer token.
    """

    raw: str
    name: str
    inner: str | None = None
    index: int | str | PVTokenParts | None = None
    transforms: list[str] = field(default_factory=list)
    context: str | None = None
    inner_pvar: PVTokenParts | None = None
    offset: int = 0


def _balanced(text: str, pos: int, open_ch: str, close_ch: str) -> int:
    """Index of the ``close_ch`` matching the opener just before ``pos``; -1 if none."""
    depth = 0
    i = pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == close_ch:
            if depth == 0:
                return i
            depth -= 1
        elif c == open_ch:
            depth += 1
        i += 1
    return -1


def _parse_index(text: str, start: int, end: int, base: int) -> int | str | PVTokenParts:
    body = text[start:end]
    if not body:
        raise PVSyntaxError("empty index '[]'", base + start - 1)
    if body == "*":
        return "*"
    if body[0] == "$":
        inner, stop = scan_pv(body, 0, base + start)
        if stop != len(body):
            raise PVSyntaxError(f"invalid index [{body}]", base + start)
        return inner
    digits = body[1:] if body[0] == "-" else body
    if not digits.isdigit() or not digits.isascii():
        raise PVSyntaxError(
            f"invalid index [{body}]: use an integer, '*' or a pseudo-variable", base + start
        )
    return int(body)


def scan_pv(text: str, pos: int = 0, base: int = 0) -> tuple[PVTokenParts, int]:
    """Read one PV starting at ``text[pos] == '$'``; return its parts and the end index.

    In the short form the PV ends after the name or after its ``(inner)``
    (plus an optional ``[idx]``); in the ``$( ... )`` form it ends at the
    matching ``)``.  ``base`` is added to error offsets and to ``offset``.
    """
    n = len(text)
    if pos >= n or text[pos] != "$":
        raise PVSyntaxError("a pseudo-variable starts with '$'", base + pos)
    p = pos + 1
    full = p < n and text[p] == "("
    if full:
        p += 1
    context = None
    if p < n and text[p] == "<":
        q = p + 1
        while q < n and text[q] in _NAME_CHARS:
            q += 1
        if q >= n or text[q] != ">":
            raise PVSyntaxError("context '<...>' is not closed with '>'", base + p)
        context = text[p + 1:q]
        p = q + 1
    name_start = p
    while p < n and text[p] in _NAME_CHARS:
        p += 1
    name = text[name_start:p]
    if not name:
        if p < n and text[p] == "$":
            raise PVSyntaxError("'$$' (a literal dollar) is only meaningful inside strings",
                                base + pos)
        raise PVSyntaxError("missing pseudo-variable name after '$'", base + p)
    parts = PVTokenParts(raw="", name=name, context=context, offset=base + pos)

    if p < n and text[p] == "(":
        close = _balanced(text, p + 1, "(", ")")
        if close < 0:
            raise PVSyntaxError(f"unbalanced '(' in pseudo-variable ${name}(...)", base + p)
        inner = text[p + 1:close]
        if not inner:
            raise PVSyntaxError(f"empty name in ${name}()", base + p)
        parts.inner = inner
        if inner.startswith("$"):
            sub, stop = scan_pv(inner, 0, base + p + 1)
            if stop == len(inner):
                parts.inner_pvar = sub
        p = close + 1

    if p < n and text[p] == "[":
        close = _balanced(text, p + 1, "[", "]")
        if close < 0:
            raise PVSyntaxError("unbalanced '[' in pseudo-variable index", base + p)
        parts.index = _parse_index(text, p + 1, close, base)
        p = close + 1

    if full:
        while p < n and text[p] == "{":
            close = _balanced(text, p + 1, "{", "}")
            if close < 0:
                raise PVSyntaxError("unbalanced '{' in transformation", base + p)
            tr = text[p + 1:close].strip()
            if not tr:
                raise PVSyntaxError("empty transformation '{}'", base + p)
            parts.transforms.append(tr)
            p = close + 1
            q = p
            while q < n and text[q] in " \t":
                q += 1
            if q < n and text[q] == "{":
                p = q
        if p >= n or text[p] != ")":
            if p < n:
                raise PVSyntaxError(
                    f"unexpected {text[p]!r} in pseudo-variable; expected ')'", base + p
                )
            raise PVSyntaxError("missing ')' at the end of the pseudo-variable", base + p)
        p += 1
    parts.raw = text[pos:p]
    return parts, p


def parse_pv_token(token: str) -> PVTokenParts:
    """Split a whole PV token as cut by the lexer; it must be exactly one PV."""
    parts, end = scan_pv(token, 0, 0)
    if end != len(token):
        rest = token[end:]
        if rest.startswith("["):
            raise PVSyntaxError("a second index is not allowed", end)
        raise PVSyntaxError(f"unexpected {rest[0]!r} after the pseudo-variable", end)
    return parts
