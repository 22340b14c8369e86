"""Compile a parsed script (``ast.Script``) into plain Python callables.

Everything that can be resolved at start-up is resolved here, as 1.6's
fixups do: module functions (by name and argument count, against the
`Registry` handed in; the compiler never imports a module), their allowed
route types (checked along the call graph), pseudo-variables, formats,
regexes and route names.  The result is a `RouteTable` of closures; the
per-message path never walks the syntax tree.

Run-time semantics follow 1.6's ``action.c`` (spec 3.5-3.8):

* every action returns an int code; 0 stops the whole script, also from a
  function used in a condition;
* ``$rc`` is the code of the previous action, except that ``if`` leaves the
  code of its branch (or the condition's value when no branch ran) and
  ``route()`` the sub-route's result;
* conditions evaluate to 1 (true), 0 (false) or -1 (error, which counts
  as false but stops ``||``);
* ``exit``/``drop``/a 0 code raise `ScriptExit`; ``return(n)`` raises
  `RouteReturn`, caught by the route call.

A failure at run time (a module function raising, a header that does not
parse) never escapes: the action fails with a negative code and the script
location is logged.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.context import RUN_DROP, RUN_EXIT, ErrorInfo, MsgContext, RouteReturn, ScriptExit
from ..core.exports import (
    ERROR_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    ROUTE_TYPE_NAMES,
    FixupError,
    Registry,
    did_you_mean,
)
from ..core.routes import KIND_TYPES, RouteTable, TimerRoute
from ..core.runtime import L_ERR, L_INFO, L_WARN, PROTO_IDS
from ..sip.errors import ParseError
from . import ast
from .env import CompileEnv, CompileError
from .errors import CfgError, ErrorItem
from .parser import CORE_FUNCTIONS
from .pv import PV, PVError, PVTable, int_of, str_of
from .values import (
    AF_IDS,
    KEYWORD_INTS,
    KEYWORD_STRINGS,
    ExprError,
    arith,
    compile_regex,
    int32,
    int_cmp,
    network,
    streq,
    text_is_myself,
    text_result,
    truth,
    uri_myself,
)

__all__ = ["CompiledScript", "ExprError", "compile_script", "config_from_script",
           "parse_avp_aliases"]

Action = Callable[[MsgContext], int]
Cond = Callable[[MsgContext], int]
Expr = Callable[[MsgContext], Any]

MAX_ROUTE_DEPTH = 100
# route types after which the error_route is not run (1.6 run_action_list)
_NO_ERROR_ROUTE = ERROR_ROUTE | ONREPLY_ROUTE | LOCAL_ROUTE


@dataclass(slots=True)
class CompiledScript:
    """The result of a compile: routes, core configuration, warnings."""

    routes: RouteTable
    config: dict[str, Any]
    registry: Registry
    env: CompileEnv
    warnings: list[str] = field(default_factory=list)


# ======================================================================
# configuration helpers


def parse_avp_aliases(text: str) -> dict[str, int | str]:
    """``"a=i:1;b=s:name"`` -> ``{"a": 1, "b": "name"}`` (ValueError if malformed)."""
    out: dict[str, int | str] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        alias, sep, spec = item.partition("=")
        alias, spec = alias.strip(), spec.strip()
        m = re.fullmatch(r"([is])[0-9]*:(.+)", spec)
        if not sep or not alias or not m:
            raise ValueError(f'bad avp alias "{item}" (expected name=i:N or name=s:text)')
        if m.group(1) == "i":
            if not m.group(2).isdigit():
                raise ValueError(f'bad avp alias "{item}": i: needs a number')
            out[alias] = int(m.group(2))
        else:
            out[alias] = m.group(2)
    return out


def _param_value(value: Any) -> Any:
    if isinstance(value, list):
        return value
    if isinstance(value, ast.NumLit):
        return value.value
    if isinstance(value, ast.StrLit):
        return value.value
    if isinstance(value, (ast.Ident, ast.HostLit)):
        return value.name
    if isinstance(value, ast.IPLit):
        return value.addr
    return value


def config_from_script(script: ast.Script) -> dict[str, Any]:
    """Global parameter values as set in the script (last one wins; lists append)."""
    cfg: dict[str, Any] = {}
    if script.file and not script.file.startswith("<"):
        # modules resolve relative paths (db_text URLs, permissions files)
        # against the config file's directory, as 1.6 does
        cfg["cfg_file"] = os.path.abspath(script.file)
    for p in script.params:
        v = _param_value(p.value)
        if p.name in ("listen", "alias"):
            cfg.setdefault(p.name, []).extend(v)
        elif p.name in ("avp_aliases", "dst_blacklist"):
            cfg.setdefault(p.name, []).append(v)
        else:
            cfg[p.name] = v
    return cfg


# ======================================================================
# the compiler

# how C (and later OpenSIPS) binds operators; 1.6 binds left to right
_C_PRECEDENCE = {"*": 9, "/": 9, "%": 9, "+": 8, "-": 8, "<<": 7, ">>": 7, "&": 6, "^": 5,
                 "|": 4, "and": 2, "or": 1}


@dataclass(slots=True)
class _RouteRef:
    """A route called by name; filled once every route is compiled."""

    kind: str
    name: str
    fn: Action | None = None


@dataclass(slots=True)
class _RouteInfo:
    """What a route uses, for the call-graph route-type check."""

    node: ast.Route
    label: str
    cmds: list[tuple[str, int, ast.Node]] = field(default_factory=list)
    calls: list[tuple[str, ast.Node]] = field(default_factory=list)


class Compiler:
    """One compile of one script."""

    def __init__(self, script: ast.Script, registry: Registry, env: CompileEnv) -> None:
        self.script = script
        self.registry = registry
        self.env = env
        self.errors: list[ErrorItem] = []
        self.refs: dict[str, _RouteRef] = {}
        self.info: _RouteInfo | None = None
        self.infos: dict[tuple[str, str | None], _RouteInfo] = {}
        self.has_error_route = script.route("error") is not None
        self._error_holder: list[Action | None] = [None]  # filled after all routes compile
        self.max_while = int(env.config.get("max_while_loops", 100))
        from .actions import CORE_ACTIONS

        self.core_actions = CORE_ACTIONS

    # ------------------------------------------------------------ errors

    def error(self, node: ast.Node, message: str) -> None:
        self.errors.append((node.file, node.line, node.col, message))

    def located_error(self, e: CompileError, fallback: ast.Node) -> None:
        """Record `e` where it belongs: its node (inside a string: the PV), else `fallback`."""
        node = e.node if isinstance(e.node, ast.Node) else fallback
        if e.offset is not None and isinstance(node, ast.StrLit):
            line, col = _string_position(node, e.offset)
            self.errors.append((node.file, line, col, e.message))
        else:
            self.error(node, e.message)

    def warn(self, node: ast.Node, message: str) -> None:
        self.env.warn(f"{node.where}: warning: {message}")

    # ------------------------------------------------------------ top level

    def compile(self) -> RouteTable:
        table = RouteTable()
        for kind, named in self.script.routes.items():
            for name, route in named.items():
                fn = self.compile_route(route)
                table.routes.setdefault(kind, {})[name] = fn
        for route in self.script.timer_routes:
            fn = self.compile_route(route)
            table.timers.append(TimerRoute(route.name or "", route.interval or 0, fn))
        for ref in self.refs.values():
            ref.fn = table.get(ref.kind, ref.name)
        self._error_holder[0] = table.get("error")
        self.check_route_types()
        return table

    def compile_route(self, route: ast.Route) -> Action:
        label = self._route_label(route)
        self.info = _RouteInfo(route, label)
        key = (route.kind, route.name if route.kind != "timer" else f"{route.name}")
        self.infos[key] = self.info
        self.env.route_type = KIND_TYPES[route.kind]
        return self.block(route.body)

    @staticmethod
    def _route_label(route: ast.Route) -> str:
        kw = "route" if route.kind == "request" else f"{route.kind}_route"
        return kw if route.name is None else f"{kw}[{route.name}]"

    # ------------------------------------------------------------ blocks

    def block(self, block: ast.Block) -> Action:
        items: list[tuple[Action, bool]] = []
        for stmt in block.body:
            try:
                fn, plain = self.stmt(stmt)
            except CompileError as e:
                self.located_error(e, stmt)
                continue
            items.append((fn, plain))
        return self._runner(tuple(items))

    def _runner(self, items: tuple[tuple[Action, bool], ...]) -> Action:
        if not items:
            return _empty_block
        if self.has_error_route:
            holder = self._error_holder

            def run_checked(ctx: MsgContext) -> int:
                ret = 1
                for fn, plain in items:
                    ret = fn(ctx)
                    if plain:
                        ctx.rc = ret
                    if ret == 0:
                        ctx.stop = ctx.stop or RUN_EXIT
                        raise ScriptExit
                    if ctx.err.eclass and not ctx.route_type & _NO_ERROR_ROUTE:
                        _run_error_route(ctx, holder[0])
                return ret

            return run_checked

        # without an error_route the per-action error check is left out entirely
        def run(ctx: MsgContext) -> int:
            ret = 1
            for fn, plain in items:
                ret = fn(ctx)
                if plain:
                    ctx.rc = ret
                if ret == 0:
                    ctx.stop = ctx.stop or RUN_EXIT
                    raise ScriptExit
            return ret

        return run

    # ------------------------------------------------------------ statements

    def stmt(self, node: Any) -> tuple[Action, bool]:
        """(action, plain): plain actions have their code stored in $rc by the block."""
        if isinstance(node, ast.If):
            return self.if_stmt(node), False
        if isinstance(node, ast.RouteCall):
            return self.route_call(node), False
        if isinstance(node, ast.While):
            return self.while_stmt(node), True
        if isinstance(node, ast.Switch):
            return self.switch_stmt(node), True
        if isinstance(node, ast.Call):
            return self.call(node), True
        if isinstance(node, ast.Assign):
            return self.assign(node), True
        if isinstance(node, ast.Return):
            return self.return_stmt(node), True
        if isinstance(node, ast.Exit):
            return _exit, True
        if isinstance(node, ast.Drop):
            return _drop, True
        if isinstance(node, ast.Block):
            return self.block(node), True
        raise CompileError(f"unexpected statement {type(node).__name__}")

    def if_stmt(self, node: ast.If) -> Action:
        cond = self.cond(node.cond)
        then = self.block(node.then) if node.then.body else None
        orelse = self.block(node.orelse) if node.orelse is not None and node.orelse.body else None
        where = node.where

        def run_if(ctx: MsgContext) -> int:
            v = cond(ctx)
            if v < 0:
                ctx.rt.log(L_WARN, f"{where}: error in expression")
            if v > 0:
                if then is not None:
                    ret = then(ctx)
                    ctx.rc = ret
                    return ret
            elif orelse is not None:
                ret = orelse(ctx)
                ctx.rc = ret
                return ret
            ctx.rc = v
            return 1

        return run_if

    def while_stmt(self, node: ast.While) -> Action:
        cond = self.cond(node.cond)
        body = self.block(node.body) if node.body.body else None
        cap = self.max_while
        where = node.where

        def run_while(ctx: MsgContext) -> int:
            ret = 1
            n = 0
            while True:
                if n >= cap:
                    ctx.rt.log(L_INFO, f"{where}: max while loops ({cap}) reached, loop stopped")
                    return ret
                n += 1
                v = cond(ctx)
                if v < 0:
                    ctx.rt.log(L_WARN, f"{where}: error in expression")
                ret = 1
                if v > 0 and body is not None:
                    ret = body(ctx)
                    ctx.rc = ret
                else:
                    ctx.rc = v
                    return ret

        return run_while

    def switch_stmt(self, node: ast.Switch) -> Action:
        subject = self.pv(node.subject)
        cases: list[tuple[str | int, Action | None, bool]] = []
        for case in node.cases:
            label = case.label
            key: str | int = label.value if isinstance(label, (ast.StrLit, ast.NumLit)) else ""
            body = self.block(case.body) if case.body.body else None
            cases.append((key, body, case.brk))
        default = None
        if node.default is not None and node.default.body.body:
            default = self.block(node.default.body)
        frozen = tuple(cases)
        where = node.where

        def run_switch(ctx: MsgContext) -> int:
            try:
                value = subject.get(ctx)
            except PVError as e:
                ctx.rt.log(L_ERR, f"{where}: switch: {e}")
                return -1
            sval = str_of(value)
            ival = int_of(value)
            rc = 1
            matched = False
            for key, body, brk in frozen:
                if not matched:
                    if type(key) is str:
                        matched = sval is not None and streq(sval, key)
                    else:
                        matched = ival is not None and ival == key
                if matched:
                    if body is not None:
                        rc = body(ctx)
                    if brk:
                        break
            if not matched and default is not None:
                rc = default(ctx)
            return rc

        return run_switch

    def return_stmt(self, node: ast.Return) -> Action:
        value = node.value
        if value is None:
            def ret1(ctx: MsgContext) -> int:
                raise RouteReturn(1)
            return ret1
        if isinstance(value, ast.NumLit):
            code = value.value

            def ret_n(ctx: MsgContext) -> int:
                raise RouteReturn(code)
            return ret_n
        pv = self.pv(value)

        def ret_pv(ctx: MsgContext) -> int:
            try:
                v = pv.get(ctx)
            except PVError:
                v = None
            if v is None:
                raise RouteReturn(-1)
            i = int_of(v)
            raise RouteReturn(1 if i is None else i)
        return ret_pv

    def route_call(self, node: ast.RouteCall) -> Action:
        name = node.name
        if not self.script.route("request", name):
            known = [n for n in self.script.routes.get("request", {}) if n is not None]
            raise CompileError(f'route "{name}" is not defined{did_you_mean(name, known)}',
                               node=node)
        if self.info is not None:
            self.info.calls.append((name, node))
        ref = self.refs.setdefault(name, _RouteRef("request", name))
        where = node.where

        def call_route(ctx: MsgContext) -> int:
            if ctx.route_depth >= MAX_ROUTE_DEPTH:
                ctx.rt.log(L_ERR, f"{where}: too many recursive route() calls"
                           f" ({MAX_ROUTE_DEPTH}), giving up")
                ctx.rc = -1
                return -1
            ctx.route_depth += 1
            try:
                ret = ref.fn(ctx)  # type: ignore[misc]
            except RouteReturn as r:
                ret = r.code
            finally:
                ctx.route_depth -= 1
            ctx.rc = ret
            return ret

        return call_route

    # ------------------------------------------------------------ calls

    def call(self, node: ast.Call) -> Action:
        try:
            if not node.core:
                return self.module_call(node)
            compiler = self.core_actions.get(node.name)
            if compiler is None:
                raise CompileError(f"core function {node.written}() is not implemented")
            return _guarded_call(compiler(node, self.env), (), node.written, node.where)
        except CompileError as e:
            prefix = f"{node.written}(): "
            msg = e.message if e.message.startswith(prefix) or not node.core else prefix + e.message
            raise CompileError(msg, e.offset, e.node or node) from None

    def module_call(self, node: ast.Call) -> Action:
        name = node.name
        overloads = self.registry.find_cmds(name)
        if not node.parens:
            raise CompileError(f"bare word \"{name}\" found, command calls need '()'")
        if not overloads:
            hint = did_you_mean(name, self.registry.cmd_names() + list(CORE_FUNCTIONS))
            raise CompileError(f"unknown command {name}(){hint or ', missing loadmodule?'}")
        nargs = len(node.args)
        match = [(c, m) for c, m in overloads if c.nargs == nargs]
        if not match:
            counts = " or ".join(str(c.nargs) for c, _ in overloads)
            raise CompileError(f"{name}() takes {counts} argument(s), {nargs} given")
        cmd, mod = match[0]
        if self.info is not None:
            self.info.cmds.append((name, cmd.route_types, node))
        texts = [a.value if isinstance(a, ast.StrLit) else str(a.value) for a in node.args]
        args: tuple[Any, ...]
        if cmd.fixup is not None:
            try:
                args = tuple(cmd.fixup(self.env, mod, texts))
            except CompileError as e:
                raise CompileError(f"{name}(): {e.message}", e.offset,
                                   e.node or _format_arg(node, e)) from None
            except (FixupError, ValueError) as e:
                raise CompileError(f"{name}(): {e}") from None
        else:
            args = tuple(texts)
        func = cmd.func
        where = node.where
        return _guarded_call(func, args, name, where)

    # ------------------------------------------------------------ assignments

    def assign(self, node: ast.Assign) -> Action:
        target = self.pv(node.target)
        if not target.writable:
            raise CompileError(f"invalid left operand in assignment: {node.target.raw} is read-only")
        op = node.op
        where = node.where
        if isinstance(node.value, ast.NullLit):
            def assign_null(ctx: MsgContext) -> int:
                try:
                    target.set(ctx, None, op)
                except PVError as e:
                    ctx.rt.log(L_ERR, f"{where}: assignment failed: {e}")
                    return -1
                return 1
            return assign_null
        value = self.expr(node.value)
        if op in ("=", ":="):
            set_op = op

            def assign_value(ctx: MsgContext) -> int:
                try:
                    v = value(ctx)
                    target.set(ctx, v, set_op)
                except (PVError, ExprError) as e:
                    ctx.rt.log(L_ERR, f"{where}: assignment failed: {e}")
                    return -1
                return 0 if ctx.stop else 1  # a function in the value returned 0
            return assign_value
        # Decision (spec 10, item 3): compound operators really combine.
        self.warn(node, f"'{op}' combines old and new value; OpenSIPS 1.6 treated it as '='")
        bop = op[:-1]
        literal_int = isinstance(node.value, ast.NumLit)

        def assign_compound(ctx: MsgContext) -> int:
            try:
                new = arith(bop, target.get(ctx), value(ctx), literal_int)
                target.set(ctx, new, "=")
            except (PVError, ExprError) as e:
                ctx.rt.log(L_ERR, f"{where}: assignment failed: {e}")
                return -1
            return 0 if ctx.stop else 1  # a function in the value returned 0
        return assign_compound

    # ------------------------------------------------------------ expressions

    def expr(self, node: Any) -> Expr:
        """A value-producing closure; raises ExprError/PVError at run time."""
        if isinstance(node, ast.NumLit):
            v = node.value
            return lambda ctx: v
        if isinstance(node, ast.StrLit):
            s = node.value
            return lambda ctx: s
        if isinstance(node, ast.Ident):
            s = node.name
            return lambda ctx: s
        if isinstance(node, ast.PVar):
            return self.pv(node).get
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnOp):
            operand = self.expr(node.operand)

            def bnot(ctx: MsgContext) -> int:
                v = int_of(operand(ctx))
                if v is None:
                    raise ExprError("'~' needs an integer")
                return int32(~v)
            return bnot
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.Not, ast.ExprCond, ast.Keyword)):
            cond = self.cond(node)
            return lambda ctx: 1 if cond(ctx) > 0 else 0
        if isinstance(node, ast.NullLit):
            return lambda ctx: None
        # an action used as a value: its code
        action, plain = self.stmt(node)

        def action_value(ctx: MsgContext) -> int:
            ret = action(ctx)
            if plain:
                ctx.rc = ret
            if ret == 0:  # as in 1.6, a 0 code stops the script, here once
                ctx.stop = ctx.stop or RUN_EXIT  # the statement using it is done
            return ret
        return action_value

    def _warn_precedence(self, node: ast.BinOp | ast.BoolOp) -> None:
        """Warn where 1.6's flat precedence differs from what C (and readers) expect.

        `a || b && c` is `(a || b) && c` and `1+2*3` is 9 in 1.6 (spec 10,
        items 1-2). A left operand that starts where the whole expression
        starts was written without parentheses.
        """
        left = node.left
        if type(left) is not type(node) or (left.line, left.col) != (node.line, node.col):
            return
        if _C_PRECEDENCE.get(node.op, 0) > _C_PRECEDENCE.get(left.op, 0):
            self.warn(node, f"'{left.op}' before '{node.op}' is evaluated first in 1.6"
                            " (no operator precedence); add parentheses to make it clear")

    def binop(self, node: ast.BinOp) -> Expr:
        self._warn_precedence(node)
        left = self.expr(node.left)
        right = self.expr(node.right)
        op = node.op
        literal_int = isinstance(node.right, ast.NumLit)

        def run_binop(ctx: MsgContext) -> Any:
            return arith(op, left(ctx), right(ctx), literal_int)
        return run_binop

    # ------------------------------------------------------------ conditions

    def cond(self, node: Any) -> Cond:
        """A closure returning 1 (true), 0 (false) or -1 (error)."""
        if isinstance(node, ast.BoolOp):
            self._warn_precedence(node)
            left, right = self.cond(node.left), self.cond(node.right)
            if node.op == "and":
                def cond_and(ctx: MsgContext) -> int:
                    v = left(ctx)
                    return right(ctx) if v == 1 else v
                return cond_and

            def cond_or(ctx: MsgContext) -> int:
                v = left(ctx)
                return right(ctx) if v == 0 else v
            return cond_or
        if isinstance(node, ast.Not):
            inner = self.cond(node.operand)

            def cond_not(ctx: MsgContext) -> int:
                v = inner(ctx)
                return v if v < 0 else 1 - v
            return cond_not
        if isinstance(node, ast.NumLit):
            v = 1 if node.value else 0
            return lambda ctx: v
        if isinstance(node, ast.PVar):
            pv = self.pv(node)
            where = node.where

            def cond_pv(ctx: MsgContext) -> int:
                try:
                    return truth(pv.get(ctx))
                except PVError as e:
                    ctx.rt.log(L_ERR, f"{where}: {e}")
                    return -1
            return cond_pv
        if isinstance(node, ast.ExprCond):
            expr = self.expr(node.expr)
            where = node.where

            def cond_expr(ctx: MsgContext) -> int:
                try:
                    v = expr(ctx)
                except (ExprError, PVError) as e:
                    ctx.rt.log(L_ERR, f"{where}: {e}")
                    return -1
                if v is None:
                    return 0
                if type(v) is int:
                    return 1 if v else 0
                return 1
            return cond_expr
        if isinstance(node, ast.Compare):
            return self.compare(node)
        # an action as condition atom: its code decides; 0 stops the script
        action, plain = self.stmt(node)

        def cond_action(ctx: MsgContext) -> int:
            ret = action(ctx)
            if plain:
                ctx.rc = ret
            if ret == 0:
                ctx.stop = ctx.stop or RUN_EXIT
                raise ScriptExit
            return 1 if ret > 0 else 0
        return cond_action

    # ------------------------------------------------------------ comparisons

    def compare(self, node: ast.Compare) -> Cond:
        left, op, right = node.left, node.op, node.right
        where = node.where
        if isinstance(left, ast.PVar):
            return self.compare_pv(self.pv(left), op, right, where)
        name = left.name
        if name in ("method", "uri", "from_uri", "to_uri"):
            getter = KEYWORD_STRINGS[name]
            if isinstance(right, ast.MySelf):
                return uri_myself(getter, op == "==", where)
            return self._compare_text(getter, op, right, where)
        if name in ("src_ip", "dst_ip"):
            return self._compare_ip(name, op, right, where)
        if name in ("src_port", "dst_port", "proto", "af", "msg:len"):
            getter_i = KEYWORD_INTS[name]
            rv = self._int_rhs(name, right)

            def cmp_int(ctx: MsgContext) -> int:
                v = getter_i(ctx)
                return 1 if int_cmp(op, v, rv) else 0
            return cmp_int
        raise CompileError(f"unknown keyword {left.written or name}")

    def _int_rhs(self, name: str, right: Any) -> int:
        if isinstance(right, ast.ProtoLit):
            return PROTO_IDS.get(right.proto, 0)
        if isinstance(right, ast.NumLit):
            if name == "af" and right.raw.upper() in ("INET", "INET6"):
                return AF_IDS[4 if right.raw.upper() == "INET" else 6]
            if name == "af" and right.value in (4, 6):
                return AF_IDS[right.value]
            return right.value
        raise CompileError(f"{name} must be compared with a number")

    def _compare_text(self, getter: Callable[[MsgContext], str | None], op: str, right: Any,
                      where: str) -> Cond:
        if isinstance(right, ast.PVar):
            pv = self.pv(right)

            def rhs(ctx: MsgContext) -> Any:
                return pv.get(ctx)
        else:
            text = right.value if isinstance(right, ast.StrLit) else getattr(right, "name", None)
            if text is None:
                text = getattr(right, "addr", "")
            if op in ("=~", "!~"):
                try:
                    rx = compile_regex(text)
                except re.error as e:
                    raise CompileError(f'bad regular expression "{text}": {e}') from None

                def cmp_rx(ctx: MsgContext) -> int:
                    v = getter(ctx)
                    if v is None:
                        return -1
                    hit = rx.search(v) is not None
                    return 1 if hit == (op == "=~") else 0
                return cmp_rx
            const = text

            def rhs(ctx: MsgContext) -> Any:
                return const

        def cmp_text(ctx: MsgContext) -> int:
            v = getter(ctx)
            if v is None:
                return -1
            try:
                r = str_of(rhs(ctx))
            except PVError:
                return -1
            if r is None:
                return -1
            return text_result(op, v, r)
        return cmp_text

    def _compare_ip(self, name: str, op: str, right: Any, where: str) -> Cond:
        get_ip = KEYWORD_STRINGS[name]
        if isinstance(right, ast.MySelf):
            want = op == "=="

            def ip_myself(ctx: MsgContext) -> int:
                ip = get_ip(ctx)
                mine = bool(ip) and ctx.rt.is_myself(ip, None)
                return 1 if mine == want else 0
            return ip_myself
        net: Any = None
        if isinstance(right, ast.NetLit):
            net = network(right)
        elif isinstance(right, ast.IPLit):
            net = ipaddress.ip_network(right.addr)
        elif isinstance(right, ast.StrLit) and op in ("==", "!="):
            try:
                net = ipaddress.ip_network(right.value.strip("[]"))
            except ValueError:
                net = None
        if net is not None:
            equal = op == "=="

            def ip_in_net(ctx: MsgContext) -> int:
                ip = get_ip(ctx)
                try:
                    inside = ipaddress.ip_address(ip) in net
                except ValueError:
                    return -1
                return 1 if inside == equal else 0
            return ip_in_net
        if isinstance(right, ast.HostLit) or (isinstance(right, ast.StrLit) and op in ("==", "!=")):
            host = right.name if isinstance(right, ast.HostLit) else right.value
            equal = op == "=="

            def ip_host(ctx: MsgContext) -> int:
                ip = get_ip(ctx) or ""
                hit = streq(ip, host)
                if not hit and ctx.rt.transport is not None:
                    try:
                        hit = any(d.ip == ip for d in ctx.rt.transport.resolve(host, None, None))
                    except Exception:  # a resolver failure is a non-match
                        hit = False
                return 1 if hit == equal else 0
            return ip_host
        return self._compare_text(get_ip, op, right, where)

    def compare_pv(self, pv: PV, op: str, right: Any, where: str) -> Cond:
        if isinstance(right, ast.NullLit):
            want_null = op == "=="

            def cmp_null(ctx: MsgContext) -> int:
                try:
                    v = pv.get(ctx)
                except PVError:
                    return -1
                return 1 if (v is None) == want_null else 0
            return cmp_null
        if isinstance(right, ast.MySelf):
            # Decision (spec 10, item 12): `$pv == myself` works (1.6 always failed).
            want = op == "=="

            def cmp_myself(ctx: MsgContext) -> int:
                try:
                    v = str_of(pv.get(ctx))
                except PVError:
                    return -1
                if v is None:
                    return -1
                return 1 if text_is_myself(ctx, v) == want else 0
            return cmp_myself
        if isinstance(right, ast.NumLit):
            num = right.value

            def cmp_num(ctx: MsgContext) -> int:
                try:
                    v = pv.get(ctx)
                except PVError:
                    return -1
                if v is None:
                    return 1 if op == "!=" else 0
                i = int_of(v)
                if i is None:
                    return -1
                return 1 if int_cmp(op, i, num) else 0
            return cmp_num
        if isinstance(right, ast.PVar):
            rpv = self.pv(right)

            def cmp_pvs(ctx: MsgContext) -> int:
                try:
                    a = pv.get(ctx)
                    b = rpv.get(ctx)
                except PVError:
                    return -1
                if a is None or b is None:
                    both = a is None and b is None
                    if op == "==":
                        return 1 if both else 0
                    if op == "!=":
                        return 0 if both else 1
                    return 0
                if op in ("=~", "!~"):
                    sa, sb = str_of(a), str_of(b)
                    try:
                        hit = compile_regex(sb).search(sa) is not None  # type: ignore[arg-type]
                    except re.error:
                        return -1
                    return 1 if hit == (op == "=~") else 0
                ia, ib = int_of(a), int_of(b)
                if ia is not None and ib is not None:
                    return 1 if int_cmp(op, ia, ib) else 0
                return text_result(op, str_of(a), str_of(b))  # type: ignore[arg-type]
            return cmp_pvs
        # string (quoted or bare word) on the right
        text = right.value if isinstance(right, ast.StrLit) else str(getattr(right, "name", ""))
        if op in ("=~", "!~"):
            try:
                rx = compile_regex(text)
            except re.error as e:
                raise CompileError(f'bad regular expression "{text}": {e}') from None
            match = op == "=~"

            def cmp_rx(ctx: MsgContext) -> int:
                try:
                    v = pv.get(ctx)
                except PVError:
                    return -1
                if v is None:
                    return 0 if match else 1
                return 1 if (rx.search(str_of(v)) is not None) == match else 0  # type: ignore[arg-type]
            return cmp_rx

        def cmp_str(ctx: MsgContext) -> int:
            try:
                v = pv.get(ctx)
            except PVError:
                return -1
            if v is None:
                return 1 if op == "!=" else 0
            return text_result(op, str_of(v), text)  # type: ignore[arg-type]
        return cmp_str

    # ------------------------------------------------------------ PVs

    def pv(self, node: ast.PVar) -> PV:
        try:
            return self.env.compile_pv(node)
        except CompileError as e:
            raise CompileError(e.message, e.offset, e.node or node) from None

    # ------------------------------------------------------------ route types

    def check_route_types(self) -> None:
        """Functions reached through route() must allow the caller's block type.

        This is 1.6's `-C` check, always on (spec 10, item 9); a sub-route
        no top-level route calls is checked as a request route, as 1.6
        checks every sub-route.
        """
        reached: set[str] = set()
        reported: set[tuple[int, int]] = set()
        for (kind, name), info in self.infos.items():
            if kind == "request" and name is not None:
                continue
            rtype = KIND_TYPES[kind]
            self._check_tree(info, rtype, [info.label], reached, reported, set())
        for (kind, name), info in self.infos.items():
            if kind == "request" and name is not None and name not in reached:
                self._check_tree(info, REQUEST_ROUTE, [info.label], reached, reported, set())

    def _check_tree(self, info: _RouteInfo, rtype: int, chain: list[str], reached: set[str],
                    reported: set[tuple[int, int]], seen: set[str]) -> None:
        for name, mask, node in info.cmds:
            if mask & rtype:
                continue
            key = (id(node), rtype)
            if key in reported:
                continue
            reported.add(key)
            allowed = ", ".join(n for b, n in ROUTE_TYPE_NAMES.items() if mask & b)
            via = f" (reached via {' -> '.join(chain)})" if len(chain) > 1 else ""
            self.error(node, f"{name}() cannot be used in {ROUTE_TYPE_NAMES[rtype]}{via};"
                             f" allowed in: {allowed}")
        for callee, _node in info.calls:
            reached.add(callee)
            if callee in seen:
                continue
            sub = self.infos.get(("request", callee))
            if sub is None:
                continue
            self._check_tree(sub, rtype, [*chain, sub.label], reached, reported, seen | {callee})


# ======================================================================
# run-time helpers used by the closures


def _format_arg(node: ast.Call, e: CompileError) -> ast.Node | None:
    """The string argument a module's format error (with an offset) is about."""
    if e.offset is None:
        return None
    hits = [a for a in node.args if isinstance(a, ast.StrLit)
            and e.offset < len(a.value) and a.value[e.offset] == "$"]
    for a in hits:
        word = a.value[e.offset:].split()[0] if a.value[e.offset:].split() else ""
        if word and word[:4] in e.message:
            return a
    return hits[0] if hits else None


def _string_position(node: ast.StrLit, offset: int) -> tuple[int, int]:
    """Line and column of `offset` (into the unescaped value) inside a string literal.

    The value and the text as written differ where there are escapes; the
    PV that failed is looked up in the written text, near the same place.
    """
    raw, value = node.raw or node.value, node.value
    pos = offset
    if raw != value:
        word_end = offset + 1
        while word_end < len(value) and (value[word_end].isalnum() or value[word_end] in "_.("):
            word_end += 1
        found = raw.find(value[offset:word_end], max(0, offset - (len(value) - len(raw)) - 8))
        pos = found if found >= 0 else 0
    before = raw[:pos]
    nl = before.rfind("\n")
    if nl < 0:
        return node.line, node.col + 1 + pos
    return node.line + before.count("\n"), pos - nl


def _empty_block(ctx: MsgContext) -> int:
    return 1


def _fail(ctx: MsgContext) -> int:
    return -1


def _exit(ctx: MsgContext) -> int:
    ctx.stop = ctx.stop or RUN_EXIT
    raise ScriptExit


def _drop(ctx: MsgContext) -> int:
    ctx.stop = RUN_DROP
    raise ScriptExit


def _run_error_route(ctx: MsgContext, error_fn: Action | None) -> None:
    """Run error_route after an action that hit a parse error (spec 1.8).

    The route type is left as "error" afterwards, as in 1.6.
    """
    if error_fn is None:
        return
    ctx.route_type = ERROR_ROUTE
    try:
        error_fn(ctx)
    except RouteReturn:
        pass
    ctx.err = ErrorInfo()


def _set_parse_error(ctx: MsgContext, e: ParseError) -> None:
    ctx.err = ErrorInfo(eclass=1, level=1, info=f"parse error: {e}", rcode=e.status,
                        rreason="Bad Request" if e.status == 400 else "Server Internal Error")


def _guarded_call(func: Callable[..., int], args: tuple[Any, ...], name: str,
                  where: str) -> Action:
    """A module call that never lets an exception out of the route."""

    def call_module(ctx: MsgContext) -> int:
        try:
            return func(ctx, *args)
        except (ScriptExit, RouteReturn):
            raise
        except ParseError as e:
            _set_parse_error(ctx, e)
            ctx.rt.log(L_ERR, f"{where}: {name}(): bad message: {e}")
            return -1
        except PVError as e:
            ctx.rt.log(L_ERR, f"{where}: {name}(): {e}")
            return -1
        except Exception as e:  # a module bug must not kill the worker
            ctx.rt.log(L_ERR, f"{where}: {name}() failed: {type(e).__name__}: {e}")
            return -1

    call_module.__name__ = f"call_{name}"
    return call_module


# ======================================================================
# entry point


def compile_script(
    script: ast.Script,
    registry: Registry,
    *,
    pv_table: PVTable | None = None,
    sockets: list[Any] | None = None,
) -> CompiledScript:
    """Compile `script` against the modules loaded in `registry`.

    Raises CfgError listing every error found (with FILE:LINE:COL).
    """
    config = config_from_script(script)
    errors: list[ErrorItem] = []
    aliases: dict[str, int | str] = {}
    for p in script.params:
        if p.name == "avp_aliases":
            try:
                aliases.update(parse_avp_aliases(_param_value(p.value)))
            except ValueError as e:
                errors.append((p.file, p.line, p.col, str(e)))
    if pv_table is None:
        from .pvars import core_pv_table

        pv_table = core_pv_table()
    for mod in registry.modules.values():
        for pvx in mod.exports.pvars:
            pv_table.add(pvx.name, _module_maker(pvx.make, mod))
        for ctx_name, resolve in mod.exports.pv_contexts:
            pv_table.add_context(ctx_name, resolve)
    blacklists = {getattr(b, "name", "") for b in config.get("dst_blacklist", [])}
    env = CompileEnv(pv_table=pv_table, config=config, registry=registry,
                     avp_aliases=aliases, sockets=sockets, blacklists=blacklists)
    compiler = Compiler(script, registry, env)
    table = compiler.compile()
    errors.extend(compiler.errors)
    if errors:
        errors.sort(key=lambda e: (e[0], e[1], e[2]))
        raise CfgError(errors)
    return CompiledScript(table, config, registry, env, list(env.warnings))


def _module_maker(make: Callable[..., PV], mod: Any) -> Callable[..., PV]:
    def maker(spec: Any, env: CompileEnv) -> PV:
        return make(spec, mod)
    return maker

