"""From a cfg file to a compiled script: parse, load modules, modparams, compile.

This is wiring (it imports modules, which `lang/` never does); `sipserver -c`,
the server start-up and the test harness all go through `load_script`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any

from .core.blacklist import BlacklistRule
from .core.exports import Registry
from .core.modload import ModuleError, load_module, set_modparam
from .core.runtime import DEFAULT_PORTS, Alias, SocketInfo
from .lang import ast
from .lang.compiler import CompiledScript, compile_script, config_from_script
from .lang.errors import CfgError, ErrorItem, format_error
from .lang.parser import parse_file, parse_text
from .lang.values import network

__all__ = [
    "aliases_from_config",
    "blacklists_from_config",
    "check_file",
    "compile_cfg",
    "load_modules",
    "load_script",
    "load_script_text",
    "sockets_from_config",
]


def load_modules(script: ast.Script, registry: Registry, *,
                 load: Callable[[Registry, str], Any] = load_module,
                 modparam: Callable[[Registry, str, str, Any], None] = set_modparam,
                 ) -> list[ErrorItem]:
    """Apply the script's loadmodule and modparam lines in source order.

    `load`/`modparam` default to the real loader; tests pass their own to
    stand in export tables for modules not built yet.
    """
    errors: list[ErrorItem] = []
    failed: set[str] = set()
    for item in script.items:
        if isinstance(item, ast.LoadModule):
            try:
                load(registry, item.path)
            except ModuleError as e:
                errors.append((item.file, item.line, item.col, str(e)))
                failed.add(item.path)
        elif isinstance(item, ast.ModParam):
            value: Any = item.value.value
            try:
                modparam(registry, item.module, item.param, value)
            except ModuleError as e:
                if failed and "no loaded module matches" in str(e):
                    continue  # already reported: the loadmodule failed
                errors.append((item.file, item.line, item.col, str(e)))
    return errors


def _host_text(node: Any) -> str:
    if isinstance(node, ast.IPLit):
        return node.addr
    if isinstance(node, ast.StrLit):
        return node.value
    return getattr(node, "name", str(node))


def sockets_from_config(config: dict[str, Any]) -> list[SocketInfo]:
    """`listen` entries as SocketInfo (names are kept unresolved here)."""
    out: list[SocketInfo] = []
    default_port = int(config.get("port", 5060) or 5060)
    for sock in config.get("listen", []):
        protos = [sock.proto] if sock.proto and sock.proto != "any" else ["udp", "tcp"]
        host = _host_text(sock.host)
        try:
            host = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            pass
        for proto in protos:
            port = sock.port or (DEFAULT_PORTS[proto] if proto == "tls" else default_port)
            adv = _host_text(sock.adv_host) if sock.adv_host is not None else None
            adv_port = sock.adv_port if sock.adv_host is not None else None
            out.append(SocketInfo(proto, host, port, adv, adv_port or (5060 if adv else None)))
    return out


def blacklists_from_config(config: dict[str, Any]) -> dict[str, list[BlacklistRule]]:
    """`dst_blacklist` definitions as rule lists by name."""
    out: dict[str, list[BlacklistRule]] = {}
    for bl in config.get("dst_blacklist", []):
        rules = out.setdefault(bl.name, [])
        for r in bl.rules:
            if r.net.bits >= 0:
                net: Any = ipaddress.ip_network(f"{r.net.ip.addr}/{r.net.bits}", strict=False)
            else:
                net = network(r.net)
            proto = None if r.proto in ("any", "") else r.proto
            rules.append(BlacklistRule(proto, net, r.port, r.pattern, r.negate))
    return out


def aliases_from_config(config: dict[str, Any]) -> list[Alias]:
    return [Alias(_host_text(s.host), s.port or 0, s.proto if s.proto != "any" else None)
            for s in config.get("alias", [])]


def compile_cfg(script: ast.Script,
                loader: Callable[[ast.Script, Registry], list[ErrorItem]] = load_modules,
                ) -> CompiledScript:
    """Load the modules a parsed script names and compile it.

    Raises CfgError listing every error (module, modparam and compile
    errors together, in file order).
    """
    registry = Registry()
    errors = loader(script, registry)
    sockets = sockets_from_config(config_from_script(script))
    compiled = None
    try:
        compiled = compile_script(script, registry, sockets=sockets)
    except CfgError as e:
        errors.extend(e.errors)
    if errors or compiled is None:
        errors.sort(key=lambda e: (e[0], e[1], e[2]))
        raise CfgError(errors)
    return compiled


def load_script(path: str | os.PathLike[str]) -> CompiledScript:
    """Parse and compile a cfg file."""
    return compile_cfg(parse_file(path))


def load_script_text(text: str, filename: str = "<string>") -> CompiledScript:
    """Parse and compile cfg text (tests, benchmarks)."""
    return compile_cfg(parse_text(text, filename))


def check_file(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """`sipserver -c`: (error lines, warning lines) for the script at `path`.

    Every error is ``FILE:LINE:COL: message``; nothing is opened but the
    file itself (no sockets, no databases).
    """
    try:
        compiled = load_script(path)
    except CfgError as e:
        return [format_error(*item) for item in e.errors], []
    except OSError as e:
        return [f"{path}: cannot read the configuration file: {e.strerror or e}"], []
    return [], list(compiled.warnings)
