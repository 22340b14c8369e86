"""Start a server from a compiled script and the command line (wiring).

Order, as 1.6 does it: configuration (the cfg's globals, then the command
line on top), log sink, sockets bound, shared memory, runtime, every
module's mod_init, startup_route, daemonize, then the master forks the
children. Everything that can fail for an operator's reason (port in use,
bad parameter, no permission) fails before daemonizing, with a message on
stderr and exit code 1.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import select
import signal
import socket
from dataclasses import dataclass, field
from typing import Any

from .core.context import MsgContext
from .core.dns import SipResolver
from .core.logsink import stderr_sink, syslog_sink
from .core.master import Master, daemonize
from .core.proctable import ProcessTable
from .core.receive import Receiver
from .core.runtime import DEFAULT_PORTS, L_ERR, L_NOTICE, Runtime, SocketInfo
from .core.stats import Statistics
from .core.timers import Timers
from .lang.compiler import CompiledScript
from .mi.registry import MIRegistry
from .net.interfaces import interface_addresses, local_addresses
from .net.transport import NetTransport
from .net.udp import BindError, bind_udp, serve_udp
from .script import aliases_from_config, blacklists_from_config, sockets_from_config
from .shm import DEFAULT_MB, Counters, LockSet, Segment
from .sip.message import dummy_request

__all__ = ["ServerOptions", "StartupError", "run_server"]


class StartupError(Exception):
    """A reason the server cannot start, worded for the operator."""


@dataclass
class ServerOptions:
    """What the command line adds on top of the cfg (None = not given)."""

    listen: list[str] = field(default_factory=list)
    children: int | None = None
    tcp_children: int | None = None
    debug_bump: int = 0
    foreground: bool = False  # -F: fork workers, master stays in the foreground
    no_fork: bool = False  # -D: one process, no daemon (1.6's dont_fork)
    log_stderr: bool | None = None
    disable_tcp: bool | None = None
    dns: bool | None = None
    rev_dns: bool | None = None
    check_via: bool | None = None
    maxbuffer: int | None = None
    shm_mb: int | None = None
    workdir: str | None = None
    chroot: str | None = None
    user: str | None = None
    group: str | None = None
    pid_file: str | None = None
    pgid_file: str | None = None
    argv: dict[str, str] = field(default_factory=dict)


def _apply_options(config: dict[str, Any], o: ServerOptions) -> dict[str, Any]:
    cfg = {k: v for k, v in config.items() if k not in ("listen", "alias")}
    for key, value in (("children", o.children), ("tcp_children", o.tcp_children),
                       ("log_stderror", o.log_stderr), ("disable_tcp", o.disable_tcp),
                       ("dns", o.dns), ("rev_dns", o.rev_dns), ("check_via", o.check_via),
                       ("maxbuffer", o.maxbuffer), ("workdir", o.workdir),
                       ("chroot", o.chroot), ("user", o.user), ("group", o.group)):
        if value is not None:
            cfg[key] = int(value) if isinstance(value, bool) else value
    if o.debug_bump:
        cfg["debug"] = min(4, 2 + o.debug_bump)
    if o.no_fork:
        cfg["fork"] = 0
    return cfg


def _parse_listen(text: str, default_port: int) -> list[SocketInfo]:
    """A `-l [proto:]addr[:port]` argument."""
    proto = None
    rest = text
    head, sep, tail = text.partition(":")
    if sep and head.lower() in ("udp", "tcp", "tls", "sctp"):
        proto, rest = head.lower(), tail
    host, port = rest, None
    if rest.startswith("["):
        end = rest.find("]")
        host, after = rest[1:end], rest[end + 1:]
        if after.startswith(":"):
            port = int(after[1:])
    elif rest.count(":") == 1:
        host, p = rest.split(":")
        port = int(p)
    protos = [proto] if proto else ["udp", "tcp"]
    return [SocketInfo(p, host, port or (DEFAULT_PORTS[p] if p == "tls" else default_port))
            for p in protos]


def _expand_sockets(sockets: list[SocketInfo]) -> list[SocketInfo]:
    """Interface names and host names in `listen` become addresses."""
    out: list[SocketInfo] = []
    for s in sockets:
        try:
            ipaddress.ip_address(s.ip)
            addrs = [s.ip]
        except ValueError:
            addrs = interface_addresses(s.ip)
            if not addrs:
                try:
                    addrs = [socket.gethostbyname(s.ip)]
                except OSError:
                    raise StartupError(f"listen: cannot resolve {s.ip!r} (not an address,"
                                       " an interface or a known host name)") from None
        for a in addrs:
            info = SocketInfo(s.proto, a, s.port, s.adv_host, s.adv_port)
            if all((x.proto, x.ip, x.port) != (info.proto, info.ip, info.port) for x in out):
                out.append(info)
    return out


def build_sockets(compiled: CompiledScript, config: dict[str, Any],
                  o: ServerOptions) -> list[SocketInfo]:
    port = int(config.get("port", 5060) or 5060)
    if o.listen:
        sockets = [s for text in o.listen for s in _parse_listen(text, port)]
    else:
        sockets = sockets_from_config(compiled.config)
    if not sockets:
        sockets = [SocketInfo(p, a, port) for a in local_addresses() for p in ("udp", "tcp")]
    sockets = _expand_sockets(sockets)
    if config.get("disable_tcp"):
        sockets = [s for s in sockets if s.proto != "tcp"]
    unsupported = sorted({s.proto for s in sockets} - {"udp", "tcp"})
    if unsupported:
        raise StartupError(f"listen: {', '.join(unsupported)} is not supported")
    return sockets


def _drop_privileges(config: dict[str, Any]) -> None:
    group, user = config.get("group"), config.get("user")
    if config.get("chroot"):
        os.chroot(str(config["chroot"]))
        os.chdir("/")
    if group:
        gid = int(group) if str(group).isdigit() else grp.getgrnam(str(group)).gr_gid
        os.setgroups([])
        os.setgid(gid)
    if user:
        pw = pwd.getpwuid(int(user)) if str(user).isdigit() else pwd.getpwnam(str(user))
        if not group:
            os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)


def run_server(compiled: CompiledScript, o: ServerOptions) -> int:
    """Start the server and supervise it; returns the process exit code."""
    config = _apply_options(compiled.config, o)
    to_stderr = bool(config.get("log_stderror")) or o.foreground or o.no_fork
    if o.log_stderr is False:
        to_stderr = False
    logger = (stderr_sink(str(config.get("log_name") or "sipserver")) if to_stderr
              else syslog_sink(str(config.get("log_name") or "sipserver"),
                               str(config.get("log_facility") or "LOG_DAEMON")))
    sockets = build_sockets(compiled, config, o)
    tcp_layer = _tcp_layer()
    for s in sockets:
        try:
            if s.proto == "udp":
                bind_udp(s, int(config.get("maxbuffer") or 262144))
            elif s.proto == "tcp" and tcp_layer is not None:
                tcp_layer.bind_tcp(s, config)
        except BindError as e:
            raise StartupError(str(e)) from None
    if tcp_layer is None:
        sockets = [s for s in sockets if s.proto != "tcp"]
    protos = tuple(sorted({s.proto for s in sockets}))
    resolver = SipResolver.from_config(config, protos=protos)
    transport = NetTransport(sockets, resolver=resolver,
                             try_ipv6=bool(config.get("dns_try_ipv6")))
    rt = Runtime(config=config, transport=transport, sockets=sockets,
                 aliases=aliases_from_config(compiled.config), logger=logger,
                 registry=compiled.registry, argv=o.argv)
    rt.routes = compiled.routes
    rt.blacklists = blacklists_from_config(compiled.config)
    rt.config["master_pid"] = os.getpid()
    _init_shared(rt, config, o)
    _init_modules(rt)
    rt.mi = MIRegistry.from_runtime(rt)
    try:
        _drop_privileges(config)
    except (OSError, KeyError) as e:
        raise StartupError(f"cannot change user/group: {e}") from None
    if compiled.routes.has("startup", None):
        ctx = MsgContext(rt, dummy_request())
        compiled.routes.run("startup", None, ctx)
    if not config.get("fork", 1):
        return _run_single(rt)
    if not o.foreground:
        daemonize(str(config.get("workdir") or "/"), keep_stderr=to_stderr)
    master = _make_master(rt, config, o)
    return master.run()


def _init_shared(rt: Runtime, config: dict[str, Any], o: ServerOptions) -> None:
    """Shared memory, statistics and the process table, before any fork."""
    size = (o.shm_mb or DEFAULT_MB) * 1024 * 1024
    rt.shm = Segment(size)
    rt.stats = Statistics(rt.shm, logger=rt.log, sockets=lambda: rt.sockets)
    for mod in rt.registry.modules.values() if rt.registry is not None else ():
        rt.stats.register_module(mod)  # before mod_init: modules fetch their handles there
    rt.procs = ProcessTable(rt.shm, 256)
    level = rt.debug
    rt.shared_debug = Counters(rt.shm, 1, LockSet(1))  # MI `debug` reaches every process
    rt.shared_debug.set(0, level)


def _init_modules(rt: Runtime) -> None:
    if rt.registry is None:
        return
    for mod in rt.registry.modules.values():
        mod.rt = rt
        if mod.exports.mod_init is None:
            continue
        try:
            mod.exports.mod_init(mod)
        except Exception as e:
            raise StartupError(f"module {mod.name}: initialization failed: {e}") from None


def _destroy_modules(rt: Runtime) -> None:
    """Module `destroy` hooks, in the master at shutdown (FIFO removal & co.)."""
    for mod in rt.registry.modules.values() if rt.registry is not None else ():
        if mod.exports.destroy is not None:
            try:
                mod.exports.destroy(mod)
            except Exception as e:
                rt.log(L_ERR, f"module {mod.name}: destroy failed: {e}")


def _child_init(rt: Runtime, rank: int) -> None:
    for mod in rt.registry.modules.values() if rt.registry is not None else ():
        if mod.exports.child_init is not None:
            mod.exports.child_init(mod, rank)


def _never() -> bool:
    return False


def _make_master(rt: Runtime, config: dict[str, Any], o: ServerOptions) -> Master:
    master = Master(rt, pid_file=o.pid_file, pgid_file=o.pgid_file,
                    name=str(config.get("log_name") or "sipserver"),
                    child_init=lambda rank: _child_init(rt, rank))
    master.on_exit.append(lambda: _destroy_modules(rt))
    children = int(config.get("children") or 8)
    for s in rt.sockets:
        if s.proto != "udp":
            continue
        for _ in range(children):
            master.add_child(f"SIP receiver {s.name}", _udp_runner(rt, s))
    timers = Timers(rt)
    master.add_child("timer", lambda: timers.loop(_never))
    for mod in rt.registry.modules.values() if rt.registry is not None else ():
        for proc in mod.exports.procs:
            count = proc.count(mod) if callable(proc.count) else proc.count
            for i in range(count):
                master.add_child(f"{proc.name} {i}" if count > 1 else proc.name,
                                 _proc_runner(proc, mod))
    tcp_layer = _tcp_layer()
    if tcp_layer is not None and any(s.proto == "tcp" for s in rt.sockets):
        tcp_layer.add_children(master, rt, config)
    return master


def _tcp_layer() -> Any:
    try:
        from .net import tcp
    except ImportError:
        return None
    return tcp


def _udp_runner(rt: Runtime, sock: SocketInfo) -> Any:
    def run() -> None:
        receiver = Receiver(rt)
        serve_udp(sock, receiver.handle, _never)
    return run


def _proc_runner(proc: Any, mod: Any) -> Any:
    def run() -> None:
        proc.run(mod, mod.rt.rank)
    return run


def _run_single(rt: Runtime) -> int:
    """`-D` / `fork=no`: one process reads the first UDP socket and runs the timers."""
    udp = [s for s in rt.sockets if s.proto == "udp"]
    if not udp:
        raise StartupError("fork=no needs a UDP listen address")
    sock = udp[0]
    if any(s.proto == "tcp" for s in rt.sockets):
        rt.log(L_NOTICE, "single process mode: TCP is not served (as in 1.6 without fork)")
    _child_init(rt, 1)
    receiver = Receiver(rt)
    timers = Timers(rt)
    stop = []

    def on_signal(signum: int, frame: Any) -> None:
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rt.log(L_NOTICE, f"single process mode on udp:{sock.ip}:{sock.port}")
    handle = sock.handle
    while not stop:
        try:
            ready, _, _ = select.select([handle], [], [], min(timers.next_delay(), 1.0))
        except InterruptedError:
            continue
        if ready:
            try:
                data, addr = handle.recvfrom(65535)
            except OSError as e:
                rt.log(L_ERR, f"receive: {e}")
                continue
            if len(data) > 1:
                receiver.handle(data, addr[0], addr[1], sock)
        timers.run_due()
    # the destroy hooks run here as in the master (usrloc db_mode 2 flushes)
    _destroy_modules(rt)
    return 0
