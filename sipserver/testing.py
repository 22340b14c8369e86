"""A scripting harness: compile a cfg, run its routes over messages, look at the results.

For unit tests and benchmarks only. Messages go out through a
`RecordingTransport` (nothing touches the network); log lines are kept in
`ScriptRunner.logs`.

    runner = ScriptRunner('route { sl_send_reply("404", "Not here"); }',
                          modules=["sl"])
    ctx = runner.request(INVITE_BYTES)
    assert runner.sent_text[0].startswith("SIP/2.0 404 Not here")
"""

from __future__ import annotations

from typing import Any

from .core.context import MsgContext
from .core.exports import REQUEST_ROUTE
from .core.routes import KIND_TYPES
from .core.runtime import RecordingTransport, Runtime, SocketInfo
from .core.stats import Statistics
from .lang.compiler import CompiledScript
from .script import (
    aliases_from_config,
    blacklists_from_config,
    load_script_text,
    sockets_from_config,
)
from .shm.segment import Segment
from .sip.message import SipMsg, dummy_request, parse_message

__all__ = ["ScriptRunner"]

DEFAULT_SOCKET = SocketInfo("udp", "127.0.0.1", 5060)


class ScriptRunner:
    """A compiled script with its own Runtime and a recording transport."""

    def __init__(self, cfg: str, *, modules: list[str] | None = None,
                 filename: str = "<test>", argv: dict[str, str] | None = None,
                 stats: bool = False, shm_mb: int = 4) -> None:
        head = "".join(f'loadmodule "{m}.so"\n' for m in modules or [])
        self.compiled: CompiledScript = load_script_text(head + cfg, filename)
        config = self.compiled.config
        sockets = sockets_from_config(config) or [DEFAULT_SOCKET]
        self.transport = RecordingTransport(sockets=sockets)
        self.logs: list[tuple[int, str]] = []
        self.rt = Runtime(
            config={k: v for k, v in config.items() if k not in ("listen", "alias")},
            transport=self.transport,
            sockets=sockets,
            aliases=aliases_from_config(config),
            logger=lambda level, text: self.logs.append((level, text)),
            registry=self.compiled.registry,
            argv=argv,
        )
        self.rt.debug = 4
        self.rt.routes = self.compiled.routes
        self.rt.blacklists = blacklists_from_config(config)
        if stats:  # statistics in a small shared-memory segment, as the server has them
            self.rt.shm = Segment(shm_mb * 1024 * 1024)
            self.rt.stats = Statistics(self.rt.shm)
        for mod in self.compiled.registry.modules.values():
            mod.rt = self.rt
            if self.rt.stats is not None:
                self.rt.stats.register_module(mod)
        for mod in self.compiled.registry.modules.values():
            if mod.exports.mod_init is not None:
                mod.exports.mod_init(mod)
            if mod.exports.child_init is not None:
                mod.exports.child_init(mod, 1)

    # ------------------------------------------------------------ running

    def context(self, data: bytes | SipMsg, *, src: tuple[str, int] = ("127.0.0.2", 5070),
                proto: str = "udp", rcv: SocketInfo | None = None,
                conn: int = 0) -> MsgContext:
        msg = parse_message(data) if isinstance(data, bytes) else data
        ctx = MsgContext(self.rt, msg, src_ip=src[0], src_port=src[1], proto=proto,
                         rcv=rcv or self.transport.sockets[0], conn=conn)
        ctx.msg_id = self.rt.next_msg_id()
        return ctx

    def run(self, kind: str, name: str | None, ctx: MsgContext) -> int:
        """Run a top-level route; returns the end state (go on / exit / drop)."""
        return self.compiled.routes.run(kind, name, ctx)

    def request(self, data: bytes | SipMsg, **kw: Any) -> MsgContext:
        """Run the main request route over a request (after the pre-script hooks, as
        the receive path does: sl absorbs ACKs to its own replies there)."""
        ctx = self.context(data, **kw)
        for cb in self.rt.pre_script:
            if not cb(ctx):
                return ctx
        self.run("request", None, ctx)
        return ctx

    def reply(self, data: bytes | SipMsg, **kw: Any) -> MsgContext:
        """Run the global onreply_route over a reply."""
        ctx = self.context(data, **kw)
        ctx.route_type = KIND_TYPES["onreply"]
        self.run("onreply", None, ctx)
        return ctx

    def startup(self) -> MsgContext:
        """Run startup_route on the 1.6 dummy request."""
        ctx = self.context(dummy_request(), src=("", 0))
        self.run("startup", None, ctx)
        return ctx

    def timer(self, index: int = 0) -> MsgContext:
        """Run one pass of the index-th timer_route on the dummy request."""
        ctx = self.context(dummy_request(), src=("", 0))
        ctx.reset_for_run(KIND_TYPES["timer"])
        self.compiled.routes.run_timer(index, ctx)
        return ctx

    def route(self, name: str, ctx: MsgContext) -> int:
        """Run sub-route `name` as a top-level request route (for tests)."""
        fn = self.compiled.routes.get("request", name)
        assert fn is not None, f"no route[{name}]"
        ctx.reset_for_run(REQUEST_ROUTE)
        return self.compiled.routes.run("request", name, ctx)

    # ------------------------------------------------------------ results

    @property
    def sent(self) -> list[tuple[SocketInfo, Any, bytes]]:
        return self.transport.sent

    @property
    def sent_text(self) -> list[str]:
        return [data.decode("latin-1") for _, _, data in self.transport.sent]

    def log_text(self) -> str:
        return "\n".join(text for _, text in self.logs)

    def clear(self) -> None:
        self.transport.sent.clear()
        self.logs.clear()
