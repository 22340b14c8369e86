"""Formats: strings with embedded pseudo-variables (xlog, pv_printf, sl_send_reply ...).

A format is compiled once into a list of literal pieces and PVs. At run
time a null PV prints ``<null>`` and a PV that fails prints nothing
(spec 7.5/7.6). ``$$`` is a literal dollar; any other ``$`` starts a PV and
an invalid one is a start-up error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .pv import PV, PVError, str_of
from .pvtoken import PVSyntaxError, PVTokenParts, scan_pv

if TYPE_CHECKING:
    from ..core.context import MsgContext

__all__ = ["NULL_TEXT", "Format", "FormatError", "compile_format"]

NULL_TEXT = "<null>"


class FormatError(Exception):
    """A bad PV inside a format; ``offset`` is where in the format text."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


class Format:
    """A compiled format. ``static`` is the text when there is no PV in it."""

    __slots__ = ("parts", "static", "text")

    def __init__(self, text: str, parts: list[str | PV]) -> None:
        self.text = text
        self.parts = tuple(parts)
        self.static: str | None = None
        if all(isinstance(p, str) for p in parts):
            self.static = "".join(parts)  # type: ignore[arg-type]

    def render(self, ctx: MsgContext) -> str:
        if self.static is not None:
            return self.static
        out: list[str] = []
        for p in self.parts:
            if type(p) is str:
                out.append(p)
                continue
            try:
                v = p.get(ctx)  # type: ignore[union-attr]
            except PVError as e:
                ctx.rt.log(-1, f"format: {e}")
                continue
            s = str_of(v)
            out.append(NULL_TEXT if s is None else s)
        return "".join(out)

    @property
    def pvs(self) -> list[PV]:
        return [p for p in self.parts if not isinstance(p, str)]

    def __repr__(self) -> str:
        return f"Format({self.text!r})"


def compile_format(text: str, compile_parts: Callable[[PVTokenParts], PV]) -> Format:
    """Split `text` into literal text and PVs compiled by `compile_parts`.

    `compile_parts` raises for unknown names; its message is re-raised as a
    FormatError carrying the offset of the PV in `text`.
    """
    parts: list[str | PV] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        d = text.find("$", i)
        if d < 0:
            buf.append(text[i:])
            break
        buf.append(text[i:d])
        if d + 1 < n and text[d + 1] == "$":
            buf.append("$")
            i = d + 2
            continue
        try:
            tok, end = scan_pv(text, d, 0)
        except PVSyntaxError as e:
            raise FormatError(f"bad pseudo-variable in format: {e.message}", e.offset) from None
        try:
            pv = compile_parts(tok)
        except Exception as e:  # an unknown name: report it where the PV starts
            raise FormatError(str(e), d) from None
        if buf:
            parts.append("".join(buf))
            buf = []
        parts.append(pv)
        i = end
    if buf:
        parts.append("".join(buf))
    return Format(text, parts)

