"""AST of the OpenSIPS 1.6 routing script.

The parser (``parser.py``) builds these nodes and the compiler consumes them.
They are plain data: no behaviour, no knowledge of modules.

Every node carries ``file``, ``line`` and ``col`` (1-based, tabs count as
one column, as in 1.6) so that every later error can say
``FILE:LINE:COL: message``.  The three location fields are keyword-only and
excluded from ``==`` and ``repr``: two nodes are equal when their shape is
equal, which is what golden tests want to compare.

Conventions:

* Bodies of routes, ``if``/``else``, ``while`` and ``case`` are ``Block``
  nodes (a single statement after ``if`` is wrapped in a one-item block).
* String literals keep their text after escape processing in ``value``;
  pseudo-variables written inside strings are NOT expanded or split here
  (whether a string is a format depends on the consumer, spec 7.6); ``raw`` is
  the text between the quotes as written, and the node location is the
  opening quote.
* Numbers keep the source spelling in ``raw`` (``0x10``, ``yes``, ``INET``,
  ``max_len``) next to the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Assign",
    "BinOp",
    "Blacklist",
    "BlacklistRule",
    "Block",
    "BoolOp",
    "Call",
    "Case",
    "Compare",
    "Drop",
    "Exit",
    "ExprCond",
    "GlobalParam",
    "HostLit",
    "IPLit",
    "Ident",
    "If",
    "Keyword",
    "LoadModule",
    "ModParam",
    "MySelf",
    "NetLit",
    "Node",
    "Not",
    "NullLit",
    "NumLit",
    "PVar",
    "ProtoLit",
    "Return",
    "Route",
    "RouteCall",
    "Script",
    "Socket",
    "StrLit",
    "Switch",
    "TLSDomain",
    "UnOp",
    "While",
]


@dataclass(slots=True)
class Node:
    """Base class: where the construct starts in the source."""

    file: str = field(default="<string>", kw_only=True, compare=False, repr=False)
    line: int = field(default=0, kw_only=True, compare=False, repr=False)
    col: int = field(default=0, kw_only=True, compare=False, repr=False)

    @property
    def where(self) -> str:
        """``FILE:LINE:COL`` of this node, the prefix of every error about it."""
        return f"{self.file}:{self.line}:{self.col}"


# --------------------------------------------------------------- literals


@dataclass(slots=True)
class StrLit(Node):
    """Quoted string (or a bare word used where 1.6 takes a string).

    ``quote`` is ``'"'``, ``"'"`` or ``""`` for a bare word.
    """

    value: str
    raw: str = field(default="", compare=False, repr=False)
    quote: str = field(default='"', compare=False, repr=False)


@dataclass(slots=True)
class NumLit(Node):
    """Integer; ``raw`` is the spelling (``-5``, ``0x1f``, ``017``, ``yes``, ``INET``)."""

    value: int
    raw: str = field(default="", compare=False, repr=False)


@dataclass(slots=True)
class NullLit(Node):
    """``null`` / ``NULL``."""


@dataclass(slots=True)
class MySelf(Node):
    """The ``myself`` keyword on the right of a comparison."""


@dataclass(slots=True)
class Ident(Node):
    """A bare word kept as a word (``log_facility=LOG_LOCAL0``, ``tls_method=TLSv1``)."""

    name: str


@dataclass(slots=True)
class HostLit(Node):
    """Unquoted host name (``foo.bar-baz.com``, an interface name like ``eth0``)."""

    name: str


@dataclass(slots=True)
class IPLit(Node):
    """IPv4/IPv6 address; ``addr`` is normalised (``ipaddress`` text form)."""

    addr: str
    version: int = 4


@dataclass(slots=True)
class NetLit(Node):
    """``ip`` (all bits), ``ip/bits`` or ``ip/netmask``.

    ``bits`` is the prefix length; for a netmask that is not a contiguous
    prefix (1.6 accepts any mask) ``bits`` is -1 and ``mask`` holds it.
    """

    ip: IPLit
    bits: int
    mask: IPLit | None = None


@dataclass(slots=True)
class ProtoLit(Node):
    """Transport word: ``udp``, ``tcp``, ``tls``, ``sctp`` or ``any`` (lower case)."""

    proto: str


@dataclass(slots=True)
class Socket(Node):
    """``[proto:]host[:port] [as host[:port]]``.

    ``port`` 0 means ``any``; ``None`` means not given.
    """

    proto: str | None
    host: HostLit | IPLit | StrLit
    port: int | None = None
    adv_host: HostLit | IPLit | StrLit | None = None
    adv_port: int | None = None


# --------------------------------------------------------------- pseudo-variables


@dataclass(slots=True)
class PVar(Node):
    """A pseudo-variable token, e.g. ``$(avp(s:x)[-1]{s.len})``.

    ``raw`` is the token as written; the rest is its structure:
    ``name`` (``avp``), ``inner`` (``s:x``; ``None`` when there are no
    parentheses), ``inner_pvar`` (the inner name when it is itself a PV, as in
    ``$avp($var(n))``), ``index`` (``None``, an int, ``"*"`` or a ``PVar``),
    ``transforms`` (raw text of each ``{...}`` without the braces, in order)
    and ``context`` (``request``/``reply`` from ``$(<request>ru)``).
    """

    raw: str
    name: str
    inner: str | None = None
    index: int | str | PVar | None = None
    transforms: list[str] = field(default_factory=list)
    context: str | None = None
    inner_pvar: PVar | None = None


# --------------------------------------------------------------- expressions


@dataclass(slots=True)
class Keyword(Node):
    """Core condition keyword on the left of a comparison.

    ``name`` is canonical: ``method uri from_uri to_uri src_ip dst_ip
    src_port dst_port proto af msg:len``; ``written`` keeps ``status`` (which
    1.6 treats as ``uri``).
    """

    name: str
    written: str = field(default="", compare=False, repr=False)


@dataclass(slots=True)
class Compare(Node):
    """``left op right``; op is one of ``== != =~ !~ > < >= <=``.

    ``myself == uri`` is stored as ``uri == myself`` (1.6 does the same).
    """

    op: str
    left: Keyword | PVar
    right: Expr


@dataclass(slots=True)
class BinOp(Node):
    """Arithmetic / bitwise operation of an assignment expression."""

    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class UnOp(Node):
    """``~x`` (bitwise not), the only unary operator of expressions."""

    op: str
    operand: Expr


@dataclass(slots=True)
class BoolOp(Node):
    """``&&`` (op ``"and"``) or ``||`` (op ``"or"``) in a condition."""

    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class Not(Node):
    """``!cond`` / ``not cond``."""

    operand: Expr


@dataclass(slots=True)
class ExprCond(Node):
    """``[ expr ]`` used as a condition: true when the value is non-zero."""

    expr: Expr


# --------------------------------------------------------------- statements


@dataclass(slots=True)
class Block(Node):
    """``{ ... }`` or the body of a route / if / while / case."""

    body: list[Stmt] = field(default_factory=list)


@dataclass(slots=True)
class If(Node):
    """``if cond stm [else stm]``."""

    cond: Expr
    then: Block
    orelse: Block | None = None


@dataclass(slots=True)
class While(Node):
    """``while cond stm``."""

    cond: Expr
    body: Block


@dataclass(slots=True)
class Case(Node):
    """One ``case LABEL:`` (or ``default:`` when ``label`` is ``None``).

    ``brk`` is true when the body ends with ``break;`` / ``esac;``.
    """

    label: NumLit | StrLit | None
    body: Block
    brk: bool = False


@dataclass(slots=True)
class Switch(Node):
    """``switch ($pv) { case ...: ... default: ... }``."""

    subject: PVar
    cases: list[Case] = field(default_factory=list)
    default: Case | None = None


@dataclass(slots=True)
class Return(Node):
    """``return``, ``return()``, ``return(n)``, ``return($pv)``; ``value`` ``None`` = 1."""

    value: NumLit | PVar | None = None


@dataclass(slots=True)
class Exit(Node):
    """``exit`` / ``exit()``."""


@dataclass(slots=True)
class Drop(Node):
    """``drop`` / ``drop()``."""


@dataclass(slots=True)
class RouteCall(Node):
    """``route(NAME)``; ``name`` is text (``route(01)`` gives ``"1"``)."""

    name: str


@dataclass(slots=True)
class Call(Node):
    """A core action or a module function call.

    ``name`` is the canonical name (aliases resolved for core actions:
    ``sethost`` -> ``rewritehost``), ``written`` the spelling in the script,
    ``core`` tells core actions from module functions (which the compiler
    resolves), ``parens`` is false for the paren-less core forms
    (``append_branch;``).  Module call arguments are ``StrLit`` (or ``NumLit``
    for the unquoted-integer superset); core actions may also get ``PVar``,
    ``Socket``, ``HostLit`` or ``IPLit``.
    """

    name: str
    args: list[Expr] = field(default_factory=list)
    core: bool = False
    written: str = field(default="", compare=False, repr=False)
    parens: bool = field(default=True, compare=False, repr=False)


@dataclass(slots=True)
class Assign(Node):
    """``$pv OP expr``; op is one of ``= := += -= *= /= %= &= |= ^=``."""

    target: PVar
    op: str
    value: Expr


# --------------------------------------------------------------- top level


@dataclass(slots=True)
class BlacklistRule(Node):
    """``[!](proto, net, port, "pattern")`` of a ``dst_blacklist``."""

    proto: str
    net: NetLit
    port: int
    pattern: str
    negate: bool = False


@dataclass(slots=True)
class Blacklist(Node):
    """``dst_blacklist = NAME : { rules }``."""

    name: str
    rules: list[BlacklistRule] = field(default_factory=list)


@dataclass(slots=True)
class GlobalParam(Node):
    """``name = value``; ``name`` canonical (``mem_log`` -> ``memlog``).

    ``value`` is a ``NumLit`` (int/bool params), ``StrLit``, ``Ident``,
    ``HostLit``/``IPLit`` (``advertised_address``), ``Blacklist``
    (``dst_blacklist``) or a list of ``Socket`` (``listen``, ``alias``).
    """

    name: str
    value: Node | list[Socket]
    written: str = field(default="", compare=False, repr=False)


@dataclass(slots=True)
class LoadModule(Node):
    """``loadmodule "path"``; ``mpath`` is the ``mpath`` in force at that line."""

    path: str
    mpath: str | None = None


@dataclass(slots=True)
class ModParam(Node):
    """``modparam("module-regex", "param", value)``."""

    module: str
    param: str
    value: StrLit | NumLit


@dataclass(slots=True)
class TLSDomain(Node):
    """``tls_server_domain[ip:port] {...}`` / ``tls_client_domain[ip:port|"name"] {...}``."""

    side: str
    address: Socket | None
    name: str | None
    params: list[GlobalParam] = field(default_factory=list)


ROUTE_KINDS = ("request", "failure", "onreply", "branch", "error", "local", "startup", "timer")


@dataclass(slots=True)
class Route(Node):
    """A route block.

    ``kind`` is one of ``ROUTE_KINDS``.  ``name`` is ``None`` for the blocks
    that have no name: the main request route (``route {}`` or
    ``route[0] {}``), the global ``onreply_route {}``, ``error_route``,
    ``local_route`` and ``startup_route``.  Timer routes carry ``interval``
    (seconds).
    """

    kind: str
    name: str | None
    body: Block
    interval: int | None = None


@dataclass(slots=True)
class Script(Node):
    """A whole configuration.

    ``items`` keeps every top-level statement in source order (order matters:
    ``mpath`` before ``loadmodule``, ``loadmodule`` before ``modparam``); the
    other lists are the same objects sorted by type.  ``routes`` maps a kind
    to ``{name: Route}`` (``None`` is the key of the unnamed block of a
    kind); timer routes, which 1.6 does not identify by name, are in
    ``timer_routes``.
    """

    items: list[Node] = field(default_factory=list)
    params: list[GlobalParam] = field(default_factory=list)
    loadmodules: list[LoadModule] = field(default_factory=list)
    modparams: list[ModParam] = field(default_factory=list)
    tls_domains: list[TLSDomain] = field(default_factory=list)
    routes: dict[str, dict[str | None, Route]] = field(default_factory=dict)
    timer_routes: list[Route] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)

    @property
    def mpath(self) -> str | None:
        """The last ``mpath`` of the script (what 1.6 keeps after parsing)."""
        value = None
        for p in self.params:
            if p.name == "mpath" and isinstance(p.value, StrLit):
                value = p.value.value
        return value

    def param(self, name: str) -> GlobalParam | None:
        """Last assignment of a global parameter (canonical name), if any."""
        found = None
        for p in self.params:
            if p.name == name:
                found = p
        return found

    def route(self, kind: str, name: str | None = None) -> Route | None:
        """Route block of that kind and name (``None`` = the unnamed one)."""
        return self.routes.get(kind, {}).get(name)

    @property
    def main_route(self) -> Route | None:
        """The main request route (``route {}`` / ``route[0] {}``)."""
        return self.route("request", None)


# What can stand where a value or a condition is expected.  (Kept as a
# runtime alias so that other modules can use it in isinstance checks.)
Expr = (
    StrLit | NumLit | NullLit | MySelf | Ident | HostLit | IPLit | NetLit | ProtoLit
    | Socket | PVar | Keyword | Compare | BinOp | UnOp | BoolOp | Not | ExprCond | Block
    | If | Call | RouteCall | Return | Exit | Drop | Assign
)

# A statement of a route body.
Stmt = If | While | Switch | Call | RouteCall | Return | Exit | Drop | Assign
