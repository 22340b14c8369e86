"""Helpers for the module tests: a runtime with a recording transport, a
message context, and fixup + call of an exported function."""

from __future__ import annotations

from typing import Any

from sipserver.core.context import MsgContext
from sipserver.core.exports import CmdExport, LoadedModule, ModuleExports, Registry
from sipserver.core.runtime import RecordingTransport, Runtime, SocketInfo
from sipserver.lang.env import CompileEnv
from sipserver.lang.pv import PV, PVTable
from sipserver.sip.message import parse_message

SOCK = SocketInfo("udp", "192.0.2.1", 5060)


class _VarPV(PV):
    __slots__ = ("name",)
    writable = True

    def __init__(self, raw: str, name: str) -> None:
        super().__init__(raw)
        self.name = name

    def get(self, ctx: MsgContext) -> Any:
        return ctx.rt.script_vars.get(self.name, 0)

    def set(self, ctx: MsgContext, value: Any, op: str = "=") -> None:
        ctx.rt.script_vars[self.name] = value


class _RuPV(PV):
    __slots__ = ()

    def get(self, ctx: MsgContext) -> Any:
        return ctx.ruri


def pv_table() -> PVTable:
    """The core PV table when it is there, with $var and $ru guaranteed."""
    try:
        from sipserver.lang.pvars import core_pv_table

        table = core_pv_table()
    except ImportError:  # pragma: no cover - the core table is written in parallel
        table = PVTable()
    if "var" not in table.makers:
        table.add("var", lambda spec, env: _VarPV(spec.raw, spec.inner or ""))
    if "ru" not in table.makers:
        table.add("ru", lambda spec, env: _RuPV(spec.raw))
    return table


def make_env(registry: Registry | None = None) -> CompileEnv:
    return CompileEnv(pv_table=pv_table(), registry=registry)


def make_ctx(
    data: bytes | str,
    *,
    src_ip: str = "198.51.100.7",
    src_port: int = 40000,
    sock: SocketInfo = SOCK,
    config: dict[str, Any] | None = None,
    registry: Registry | None = None,
    fail: bool = False,
) -> MsgContext:
    if isinstance(data, str):
        data = data.replace("\n", "\r\n").encode("latin-1")
    transport = RecordingTransport(sockets=[sock], fail=fail)
    rt = Runtime(transport=transport, sockets=[sock], config=config, registry=registry)
    return MsgContext(rt, parse_message(data), src_ip=src_ip, src_port=src_port, proto=sock.proto, rcv=sock)


def sent(ctx: MsgContext) -> list[tuple[Any, Any, bytes]]:
    return ctx.rt.transport.sent


def cmd(exports: ModuleExports, name: str, nargs: int) -> CmdExport:
    for c in exports.cmds:
        if c.name == name and c.nargs == nargs:
            return c
    raise LookupError(f"{name}/{nargs} not exported")


def loaded(exports: ModuleExports, **params: Any) -> LoadedModule:
    mod = LoadedModule(exports, "", {p.name: p.default for p in exports.params})
    mod.params.update(params)
    return mod


def fix(exports: ModuleExports, name: str, *args: str, env: CompileEnv | None = None,
        module: LoadedModule | None = None) -> tuple[CmdExport, tuple[Any, ...]]:
    """The export for name/len(args) and its fixed-up arguments."""
    c = cmd(exports, name, len(args))
    if c.fixup is None:
        return c, tuple(args)
    env = env or make_env()
    module = module or loaded(exports)
    return c, tuple(c.fixup(env, module, list(args)))


def call(ctx: MsgContext, exports: ModuleExports, name: str, *args: str, **kw: Any) -> int:
    c, fixed = fix(exports, name, *args, **kw)
    return c.func(ctx, *fixed)


INVITE = """INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Contact: <sip:alice@10.0.0.1>
Content-Length: 0

"""
