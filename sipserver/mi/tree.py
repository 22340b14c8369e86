"""The MI tree: what a command receives and what it answers (1.6 mi/tree.h).

A command receives a flat list of `MINodeArg` (optional name, value) and
answers an `MIReply`: a root with a numeric `code` and a `reason`, whose
children are `MINode`s (optional name, optional value, ordered attributes,
nested children). The text transports (mi_fifo, mi_datagram) print the tree
as 1.6 did (`sipserver.mi.text`); mi_http maps it to JSON
(`sipserver.mi.json`), or sends `reply.json` when the handler set it to the
exact OpenSIPS 3.x result shape.

A name or value of None is "absent" (1.6 NULL): an absent name prints no
`name:: ` prefix, an absent value prints nothing, which is not the same as
an empty string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the reasons 1.6 handlers use (mi/tree.h)
MI_OK = "OK"
MI_INTERNAL_ERR = "Server Internal Error"
MI_MISSING_PARM = "Too few or too many arguments"
MI_BAD_PARM = "Bad parameter"

# `MIReply.json` left unset: mi_http maps the tree instead
NO_JSON: Any = object()


@dataclass(slots=True)
class MINodeArg:
    """One argument of a command: `name::value` or a bare value.

    `name` is None for a bare value (and for `::value`); `value` is None for
    `name::` with nothing after it.
    """

    name: str | None
    value: str | None

    @property
    def text(self) -> str:
        """The value, or "" when absent."""
        return self.value or ""


@dataclass(slots=True)
class MIAttr:
    """An attribute of a reply node, printed ` name=value`."""

    name: str | None
    value: str | None


@dataclass(slots=True)
class MINode:
    """A reply node: optional name and value, attributes, children."""

    name: str | None = None
    value: str | None = None
    attrs: list[MIAttr] = field(default_factory=list)
    kids: list[MINode] = field(default_factory=list)

    def add(self, name: str | None = None, value: Any = None) -> MINode:
        """Append a child (`value` converted with str() unless None)."""
        kid = MINode(name, None if value is None else str(value))
        self.kids.append(kid)
        return kid

    def attr(self, name: str | None, value: Any) -> MINode:
        """Append an attribute; returns self so calls chain."""
        self.attrs.append(MIAttr(name, None if value is None else str(value)))
        return self


@dataclass(slots=True)
class MIReply(MINode):
    """The root of a reply: `code reason` then the children.

    `json`, when set by the handler, is the JSON-RPC `result` mi_http sends
    for a successful reply instead of mapping the tree.
    """

    code: int = 200
    reason: str = MI_OK
    json: Any = NO_JSON

    @classmethod
    def ok(cls) -> MIReply:
        return cls(code=200, reason=MI_OK)

    @classmethod
    def error(cls, code: int, reason: str) -> MIReply:
        return cls(code=code, reason=reason)

    @property
    def is_ok(self) -> bool:
        return 200 <= self.code < 300


def missing_params() -> MIReply:
    """`400 Too few or too many arguments`."""
    return MIReply.error(400, MI_MISSING_PARM)


def bad_param() -> MIReply:
    """`400 Bad parameter`."""
    return MIReply.error(400, MI_BAD_PARM)
