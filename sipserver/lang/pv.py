"""Pseudo-variables at run time: the value model and the PV protocol.

A script occurrence of a PV (``$ru``, ``$(avp(s:x)[1]{s.len})``) is
compiled once, at start-up, into a `PV` object; the per-message path only
calls ``pv.get(ctx)`` / ``pv.set(ctx, value, op)``.

Values (spec 3.9) are ``None`` (null), ``int``, ``str`` or `IntStr` (a
string that also carries an integer, 1.6's PV_VAL_STR|PV_VAL_INT: ports,
protocol, method id, hex flags).  An ``int`` always has a decimal string
form; an ``IntStr`` acts as a string in arithmetic but compares as a number.

PV names are resolved through a `PVTable`: the core table
(`pvars.CORE_PVARS`) plus what the loaded modules export.  A maker
``make(spec, env)`` gets the parsed occurrence (`PVSpec`) and the compile
environment, checks the inner name and returns the PV; a bad inner name is
a `PVNameError` (a start-up error).  Index, transformations and
``<request>``/``<reply>`` contexts are wrapped around the PV by the
compiler, except that a maker declaring ``indexed = True`` on its PV
handles ``spec.index`` itself (``$avp``, ``$hdr``, ``$ct``, ``$branch``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .transformations import TransformationError

if TYPE_CHECKING:
    from ..core.context import MsgContext

__all__ = [
    "PV",
    "ContextPV",
    "IntStr",
    "PVError",
    "PVMaker",
    "PVNameError",
    "PVSpec",
    "PVTable",
    "TransformedPV",
    "Value",
    "int_of",
    "str_of",
]

Value = int | str | None


class IntStr(str):
    """A string value that also has an integer value (``$rp``, ``$mF``, ``$rm``).

    ``ival`` is the integer (for ``$mF`` the flags, not the hex text).
    """

    ival: int

    def __new__(cls, text: str, ival: int) -> IntStr:
        s = super().__new__(cls, text)
        s.ival = ival
        return s


def int_of(value: Value) -> int | None:
    """The integer a value carries, or None (strings never convert implicitly)."""
    if type(value) is int:
        return value
    if isinstance(value, IntStr):
        return value.ival
    if isinstance(value, bool):
        return int(value)
    return None


def str_of(value: Value) -> str | None:
    """The string form of a value (decimal text for integers), or None if null."""
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    return value  # type: ignore[return-value]


class PVError(Exception):
    """Reading or writing a PV failed at run time (bad header, wrong type ...).

    The enclosing action fails (negative code), a condition is false, a
    format prints nothing for it; the message says why for the log.
    """


class PVNameError(Exception):
    """An unknown PV name or a bad inner name: a start-up error."""


@dataclass(slots=True)
class PVSpec:
    """One parsed PV occurrence handed to a maker.

    ``inner`` is the text in parentheses (``None`` without them) and
    ``inner_pv`` the compiled PV when the inner name is itself a PV
    (``$avp($var(n))``, ``$hdr($var(h))``).  ``index`` is ``None``, an
    int, ``"*"`` or a compiled PV giving the index at run time.
    """

    name: str
    raw: str
    inner: str | None = None
    inner_pv: PV | None = None
    index: int | str | PV | None = None


class PV:
    """A compiled pseudo-variable occurrence.

    Subclasses implement `get`; writable ones set ``writable = True`` and
    implement `set`.  ``indexed`` tells the compiler the PV handles
    ``spec.index`` itself.  ``int_typed`` marks PVs whose values are
    integers (spec 7.4 *int*): an assignment expression starting with one
    does integer arithmetic.
    """

    __slots__ = ("raw",)
    writable = False
    indexed = False
    int_typed = False

    def __init__(self, raw: str = "") -> None:
        self.raw = raw

    def get(self, ctx: MsgContext) -> Value:
        """The value, ``None`` for null; raises PVError on failure."""
        raise NotImplementedError

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        """Store `value` (``None`` = NULL); op is ``"="`` or ``":="``.

        Raises PVError when the value cannot be stored (the target is
        then unchanged).
        """
        raise PVError(f"{self.raw} is read-only")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.raw}>"


class TransformedPV(PV):
    """``$(pv{tr}...)``: the base value run through the transformations."""

    __slots__ = ("base", "transform")

    def __init__(self, raw: str, base: PV, transform: Callable[[Any, Any], Any]) -> None:
        super().__init__(raw)
        self.base = base
        self.transform = transform

    def get(self, ctx: MsgContext) -> Value:
        value = self.base.get(ctx)
        try:
            return self.transform(ctx, value)
        except TransformationError as e:
            raise PVError(f"{self.raw}: {e}") from None


class ContextPV(PV):
    """``$(<request>pv)`` / ``$(<reply>pv)``: the PV read on another message.

    ``resolve(ctx)`` returns the context of that message or None when it is
    not available (then the value is null and writes fail).
    """

    __slots__ = ("base", "resolve")

    def __init__(self, raw: str, base: PV, resolve: Callable[[MsgContext], Any]) -> None:
        super().__init__(raw)
        self.base = base
        self.resolve = resolve

    @property
    def writable(self) -> bool:  # type: ignore[override]
        return self.base.writable

    def get(self, ctx: MsgContext) -> Value:
        other = self.resolve(ctx)
        return None if other is None else self.base.get(other)

    def set(self, ctx: MsgContext, value: Value, op: str = "=") -> None:
        other = self.resolve(ctx)
        if other is None:
            raise PVError(f"{self.raw}: no such message in this route")
        self.base.set(other, value, op)


PVMaker = Callable[[PVSpec, Any], PV]
"""(spec, compile env) -> PV; raises PVNameError for a bad inner name."""


class PVTable:
    """PV names -> makers, and ``<ctx>`` names -> message resolvers.

    Built per compile from the core table and the loaded modules' exports;
    nothing here is global.
    """

    def __init__(self) -> None:
        self.makers: dict[str, PVMaker] = {}
        self.contexts: dict[str, Callable[[MsgContext], Any]] = {}

    def add(self, name: str, maker: PVMaker) -> None:
        self.makers[name] = maker

    def add_context(self, name: str, resolve: Callable[[MsgContext], Any]) -> None:
        self.contexts[name] = resolve

    def names(self) -> list[str]:
        return list(self.makers)
