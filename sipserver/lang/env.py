"""The compile environment: what fixups see while a script is compiled.

Core actions, module fixups and PV makers get a `CompileEnv`. It resolves
PV text and formats against the PV table of this compile, knows the core
configuration (global parameters with defaults), the AVP aliases, the
listen sockets and the route names, and collects warnings. A fixup that
rejects its arguments raises `CompileError`; the compiler adds the script
location.
"""

from __future__ import annotations

from typing import Any

from ..core.exports import did_you_mean
from . import ast
from .format import Format, FormatError, compile_format
from .pv import PV, ContextPV, PVNameError, PVSpec, PVTable, TransformedPV
from .pvtoken import PVSyntaxError, PVTokenParts, parse_pv_token
from .transformations import TransformationSyntaxError, chain, compile_transformation

__all__ = ["CompileEnv", "CompileError"]


class CompileError(Exception):
    """A start-up error in one construct; the compiler adds FILE:LINE:COL.

    ``node`` (when known) is the construct the error is about, e.g. the
    string argument holding a bad format; ``offset`` then points inside that
    string's value (a bad PV inside a format).
    """

    def __init__(self, message: str, offset: int | None = None, node: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.node = node


class CompileEnv:
    """Resolution services and settings for one compile of one script."""

    def __init__(
        self,
        *,
        pv_table: PVTable,
        config: dict[str, Any] | None = None,
        registry: Any = None,
        avp_aliases: dict[str, int | str] | None = None,
        sockets: list[Any] | None = None,
        blacklists: set[str] | None = None,
    ) -> None:
        self.pv_table = pv_table
        self.config: dict[str, Any] = dict(config or {})
        self.registry = registry
        self.avp_aliases: dict[str, int | str] = dict(avp_aliases or {})
        self.sockets = list(sockets or [])
        self.blacklists = set(blacklists or ())
        self.warnings: list[str] = []
        self.route_type = 1  # route type of the block being compiled

    # ------------------------------------------------------------ PVs

    def compile_pv(self, source: str | ast.PVar | PVTokenParts) -> PV:
        """A PV object for PV text, an AST node or parsed token parts.

        Raises CompileError for a malformed token, an unknown name, a bad
        inner name or a bad transformation.
        """
        if isinstance(source, str):
            try:
                parts: Any = parse_pv_token(source)
            except PVSyntaxError as e:
                raise CompileError(f"bad pseudo-variable {source}: {e.message}") from None
        else:
            parts = source
        return self._build(parts)

    def _build(self, parts: Any) -> PV:
        name = parts.name
        maker = self.pv_table.makers.get(name)
        if maker is None:
            hint = did_you_mean(f"${name}", [f"${n}" for n in self.pv_table.names()])
            raise CompileError(f"unknown pseudo-variable ${name}{hint}")
        inner_pv = self._build(parts.inner_pvar) if parts.inner_pvar is not None else None
        index = parts.index
        if index is not None and not isinstance(index, (int, str)):
            index = self._build(index)
        spec = PVSpec(name=name, raw=parts.raw, inner=parts.inner, inner_pv=inner_pv, index=index)
        try:
            pv: PV = maker(spec, self)
        except PVNameError as e:
            raise CompileError(f"{parts.raw}: {e}") from None
        if parts.transforms:
            try:
                steps = [compile_transformation(t, self.pv_getter) for t in parts.transforms]
            except TransformationSyntaxError as e:
                raise CompileError(f"{parts.raw}: {e}") from None
            pv = TransformedPV(parts.raw, pv, chain(*steps))
        if parts.context:
            resolve = self.pv_table.contexts.get(parts.context)
            if resolve is None:
                known = list(self.pv_table.contexts)
                hint = did_you_mean(parts.context, known)
                why = hint or (" (contexts come from the tm module)" if not known else "")
                raise CompileError(f"{parts.raw}: unknown context <{parts.context}>{why}")
            pv = ContextPV(parts.raw, pv, resolve)
        return pv

    def pv_getter(self, text: str) -> Any:
        """``ctx -> value`` for PV text (what transformation parameters use)."""
        return self.compile_pv(text).get

    # ------------------------------------------------------------ formats

    def compile_format(self, text: str) -> Format:
        """A compiled format; CompileError (with offset) for a bad PV in it."""
        try:
            return compile_format(text, self._build_format_pv)
        except FormatError as e:
            raise CompileError(str(e), e.offset) from None

    def _build_format_pv(self, parts: PVTokenParts) -> PV:
        try:
            return self._build(parts)
        except CompileError as e:
            raise FormatError(e.message) from None

    # ------------------------------------------------------------ misc

    def warn(self, message: str) -> None:
        self.warnings.append(message)
