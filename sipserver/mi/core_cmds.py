"""The core MI commands of 1.6 (mi/mi_core.c, statistics.c, blacklists.c).

Registered in 1.6's order: get_statistics, reset_statistics, uptime,
version, pwd, arg, which, ps, kill, debug, cache_store, cache_fetch,
cache_remove, list_blacklists. Replies are the 1.6 trees; where OpenSIPS 3.x
answers JSON-RPC with a different shape (`ps`, `get_statistics`) the handler
also sets `reply.json`.

What they read from the Runtime:

* `rt.stats`: `lines(names) -> list[str]` gives the `group:name = value`
  lines for the names asked (`all`, `group:` or one statistic, unknown ones
  skipped); `reset(names)` resets those statistics and returns how many it
  found (a falsy number answers 404; None is taken as "found").
* `rt.procs`: the process table, `entries()` or an iterable of
  `(id, pid, description)`.
* `rt.start_time`, `rt.debug`, `rt.caches` (name -> cache backend),
  `rt.blacklists` (name -> rules), `rt.config["master_pid"]` (for `kill`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable
from typing import Any

from ..core.exports import MICmdExport
from ..core.runtime import CORE_DEFAULTS, L_ERR, L_NOTICE
from .tree import MINodeArg, MIReply, bad_param, missing_params

# 1.6 protocol numbers, as list_blacklists prints them
_PROTO_NO = {None: 0, "udp": 1, "tcp": 2, "tls": 3, "sctp": 4}
_BL_CORE_ID = 13  # owner of the lists a script defines
_BL_READONLY_LIST = 1
_BLR_APPLY_CONTRARY = 1


def _values(args: list[MINodeArg]) -> list[str]:
    """The non-empty argument values (1.6 skips empty ones)."""
    return [a.value for a in args if a.value]


def _str2int(text: str | None) -> int | None:
    """1.6 str2int: decimal digits only."""
    if text is None or not text.isascii() or (text and not text.isdigit()):
        return None
    return int(text) if text else 0


def _str2sint(text: str | None) -> int | None:
    """1.6 str2sint: an optional '-' then decimal digits."""
    if not text:
        return None
    neg = text.startswith("-")
    digits = text[1:] if neg else text
    value = _str2int(digits)
    if value is None:
        return None
    return -value if neg else value


# ------------------------------------------------------------ statistics

def _stat_json(lines: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        name, sep, value = line.rpartition(" = ")
        if not sep:
            continue
        out[name] = int(value) if value.lstrip("-").isdigit() else value
    return out


def mi_get_statistics(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    if not args:
        return missing_params()
    names = _values(args)
    stats = getattr(rt, "stats", None)
    lines = list(stats.lines(names)) if stats is not None and names else []
    if not lines:
        return MIReply.error(404, "Statistics Not Found")
    reply = MIReply.ok()
    for line in lines:
        reply.add(None, line)
    reply.json = _stat_json(lines)
    return reply


def mi_reset_statistics(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    if not args:
        return missing_params()
    names = _values(args)
    stats = getattr(rt, "stats", None)
    if stats is None or not names:
        return MIReply.error(404, "Statistics Not Found")
    found = stats.reset(names)
    if found is not None and not found:
        return MIReply.error(404, "Statistics Not Found")
    return MIReply.ok()


# ------------------------------------------------------------ core

def _ctime(t: float) -> str:
    return time.ctime(t)


def mi_uptime(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    now = time.time()
    start = getattr(rt, "start_time", now)
    reply = MIReply.ok()
    reply.add("Now", _ctime(now))
    reply.add("Up since", _ctime(start))
    reply.add("Up time", f"{max(0, int(now - start))} [sec]")
    return reply


def server_string() -> str:
    """What `version` prints: 1.6's SERVER_HDR without `Server: `."""
    return str(CORE_DEFAULTS["server_header"])[len("Server: "):]


def mi_version(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    reply = MIReply.ok()
    reply.add("Server", server_string())
    return reply


def mi_pwd(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    try:
        cwd = os.getcwd()
    except OSError as e:
        if rt is not None:
            rt.log(L_ERR, f"getcwd failed = {e.strerror}")
        return None
    reply = MIReply.ok()
    reply.add("WD", cwd)
    return reply


def mi_arg(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    reply = MIReply.ok()
    for a in sys.argv:
        reply.add(None, a)
    return reply


def mi_which(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    from .registry import mi_registry

    reply = MIReply.ok()
    for name in mi_registry(rt).names():
        reply.add(None, name)
    return reply


def _proc_rows(procs: Any) -> list[tuple[int, int, str]]:
    if procs is None:
        return []
    rows = procs.entries() if hasattr(procs, "entries") else procs
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def mi_ps(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    reply = MIReply.ok()
    rows = _proc_rows(getattr(rt, "procs", None))
    for ident, pid, desc in rows:
        reply.add("Process").attr("ID", ident).attr("PID", pid).attr("Type", desc)
    reply.json = {"Processes": [{"ID": i, "PID": p, "Type": d} for i, p, d in rows]}
    return reply


def master_pid(rt: Any) -> int:
    """The attendant's pid: `rt.config["master_pid"]`, else our parent (a child's master)."""
    pid = rt.config.get("master_pid") if rt is not None else None
    if pid:
        return int(pid)
    return os.getppid() if getattr(rt, "rank", 0) else os.getpid()


def mi_kill(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    pid = master_pid(rt)
    if rt is not None:
        rt.log(L_NOTICE, f"MI kill: sending SIGTERM to the attendant (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    return MIReply.ok()


def mi_debug(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    if args:
        level = _str2sint(args[0].value)
        if level is None:
            return bad_param()
    else:
        level = int(rt.debug)
    reply = MIReply.ok()
    reply.add("DEBUG", level)
    reply.json = {"DEBUG": level}
    rt.debug = level
    return reply


def _cache(rt: Any, system: str) -> Any:
    return (getattr(rt, "caches", None) or {}).get(system)


def mi_cache_store(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    if len(args) < 1:
        return MIReply.error(404, "Too few arguments")
    if not args[0].value:
        return MIReply.error(404, "Empty memory cache id")
    if len(args) < 2:
        return MIReply.error(404, "Too few arguments")
    if not args[1].value:
        return MIReply.error(404, "Empty attribute name")
    if len(args) < 3:
        return MIReply.error(404, "Too few arguments")
    if not args[2].value:
        return MIReply.error(404, "Empty value argument")
    expires = 0
    if len(args) > 3:
        if not args[3].value:
            return MIReply.error(404, "Empty expires argument")
        value = _str2int(args[3].value)
        if value is None:
            return MIReply.error(404, "Bad format for expires argument")
        expires = value
        if len(args) > 4:
            return MIReply.error(404, "Too many parameters")
    backend = _cache(rt, args[0].value)
    if backend is None or not backend.store(args[1].value, args[2].value, expires):
        return MIReply.error(500, "Cache store command failed")
    return MIReply.ok()


def _cache_key_args(args: list[MINodeArg], too_many: str) -> MIReply | None:
    if len(args) < 1:
        return MIReply.error(404, "Too few arguments")
    if not args[0].value:
        return MIReply.error(404, "Empty memory cache id")
    if len(args) < 2:
        return MIReply.error(404, "Too few arguments")
    if not args[1].value:
        return MIReply.error(404, "Empty attribute name")
    if len(args) > 2:
        return MIReply.error(404, too_many)
    return None


def mi_cache_fetch(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    err = _cache_key_args(args, "Too many arguments")
    if err is not None:
        return err
    system, attr = args[0].text, args[1].text
    backend = _cache(rt, system)
    if backend is None:
        return MIReply.error(500, "Cache fetch command failed")
    value = backend.fetch(attr)
    reply = MIReply.ok()
    if not value:
        reply.add(None, "Value not found")
    else:
        reply.add(None, f"{attr} = [{value}]")
        reply.json = {"key": attr, "value": value}
    return reply


def mi_cache_remove(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    err = _cache_key_args(args, "Too many parameters")
    if err is not None:
        return err
    backend = _cache(rt, args[0].text)
    if backend is None or not backend.remove(args[1].text):
        return MIReply.error(500, "Cache remove command failed")
    return MIReply.ok()


# ------------------------------------------------------------ blacklists

def mi_list_blacklists(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    reply = MIReply.ok()
    for name, rules in (getattr(rt, "blacklists", None) or {}).items():
        node = reply.add("List", name).attr("owner", _BL_CORE_ID).attr("flags", _BL_READONLY_LIST)
        for rule in rules:
            r = node.add("Rule").attr("flags", _BLR_APPLY_CONTRARY if rule.negate else 0)
            net = rule.network
            r.add("IP", getattr(net, "network_address", net))
            r.add("Mask", getattr(net, "netmask", ""))
            r.add("Proto", _PROTO_NO.get(rule.proto, 0))
            r.add("Port", rule.port)
            if rule.pattern:
                r.add("Match", rule.pattern)
    return reply


STATS_PARAMS = ("statistics",)

CORE_COMMANDS: tuple[MICmdExport, ...] = (
    MICmdExport("get_statistics", mi_get_statistics, params=STATS_PARAMS),
    MICmdExport("reset_statistics", mi_reset_statistics, params=STATS_PARAMS),
    MICmdExport("uptime", mi_uptime, no_input=True),
    MICmdExport("version", mi_version, no_input=True),
    MICmdExport("pwd", mi_pwd, no_input=True),
    MICmdExport("arg", mi_arg, no_input=True),
    MICmdExport("which", mi_which, no_input=True),
    MICmdExport("ps", mi_ps, no_input=True),
    MICmdExport("kill", mi_kill, no_input=True, no_reply=True),
    MICmdExport("debug", mi_debug, params=("level",)),
    MICmdExport("cache_store", mi_cache_store, params=("system", "attr", "value", "expire")),
    MICmdExport("cache_fetch", mi_cache_fetch, params=("system", "attr")),
    MICmdExport("cache_remove", mi_cache_remove, params=("system", "attr")),
    MICmdExport("list_blacklists", mi_list_blacklists, no_input=True),
)
