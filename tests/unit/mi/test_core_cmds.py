"""The MI registry and the 1.6 core commands, run directly."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time

from sipserver.core.blacklist import BlacklistRule
from sipserver.core.exports import MICmdExport, ModuleExports, Registry
from sipserver.core.runtime import Runtime
from sipserver.mi.registry import MIRegistry, mi_registry
from sipserver.mi.text import format_reply
from sipserver.mi.tree import MINodeArg, MIReply


class FakeStats:
    def __init__(self) -> None:
        self.values = {"core:rcv_requests": 3, "core:fwd_requests": 1, "tm:UAS_transactions": 7}
        self.resets: list[list[str]] = []

    def lines(self, names: list[str]) -> list[str]:
        out = []
        for n in names:
            for k, v in self.values.items():
                if n == "all" or (n.endswith(":") and k.startswith(n)) or k.split(":")[1] == n:
                    out.append(f"{k} = {v}")
        return out

    def reset(self, names: list[str]) -> int:
        self.resets.append(names)
        return sum(1 for n in names for k in self.values if k.split(":")[1] == n)


class FakeCache:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def store(self, name: str, value: str, expires: int) -> bool:
        self.data[name] = value
        return True

    def fetch(self, name: str) -> str | None:
        return self.data.get(name)

    def remove(self, name: str) -> bool:
        return self.data.pop(name, None) is not None


def make_rt(**config: object) -> Runtime:
    reg = Registry()
    reg.add(ModuleExports("demo", mi_cmds=[
        MICmdExport("demo_echo", lambda args, rt, mod: _echo(args, mod)),
        MICmdExport("demo_boom", lambda args, rt, mod: 1 / 0),
        MICmdExport("demo_null", lambda args, rt, mod: None),
        MICmdExport("ps", lambda args, rt, mod: MIReply.ok()),  # taken by the core
    ]))
    rt = Runtime(registry=reg, config=dict(config), logger=lambda lvl, text: None)
    rt.stats = FakeStats()
    rt.procs = [(0, 100, "attendant"), (1, 101, "MI FIFO")]
    rt.caches["local"] = FakeCache()
    return rt


def _echo(args: list[MINodeArg], mod: object) -> MIReply:
    r = MIReply.ok()
    for a in args:
        r.add(a.name, a.value)
    r.add("module", getattr(mod, "name", None))
    return r


def run(rt: Runtime, name: str, *values: str) -> bytes:
    reply = mi_registry(rt).run(name, [MINodeArg(None, v) for v in values])
    return b"<none>" if reply is None else format_reply(reply)


def test_order_of_which_is_1_6s_then_modules() -> None:
    rt = make_rt()
    names = mi_registry(rt).names()
    assert names[:14] == ["get_statistics", "reset_statistics", "uptime", "version", "pwd", "arg",
                          "which", "ps", "kill", "debug", "cache_store", "cache_fetch",
                          "cache_remove", "list_blacklists"]
    assert names[14:] == ["demo_echo", "demo_boom", "demo_null"]
    assert mi_registry(rt).duplicates == [("ps", "demo")]
    assert run(rt, "which").startswith(b"200 OK\nget_statistics\nreset_statistics\nuptime\n")


def test_module_commands_get_args_and_module() -> None:
    rt = make_rt()
    assert run(rt, "demo_echo", "a", "b") == b"200 OK\na\nb\nmodule:: demo\n\n"


def test_unknown_failing_and_raising_commands() -> None:
    rt = make_rt()
    assert run(rt, "nope") == b"500 command 'nope' not available\n\n"
    assert run(rt, "demo_null") == b"<none>"
    assert run(rt, "demo_boom") == b"<none>"


def test_get_statistics() -> None:
    rt = make_rt()
    assert run(rt, "get_statistics", "rcv_requests", "tm:") == \
        b"200 OK\ncore:rcv_requests = 3\ntm:UAS_transactions = 7\n\n"
    assert run(rt, "get_statistics") == b"400 Too few or too many arguments\n\n"
    assert run(rt, "get_statistics", "nothing") == b"404 Statistics Not Found\n\n"
    reply = mi_registry(rt).run("get_statistics", [MINodeArg(None, "all")])
    assert reply is not None and reply.json == {
        "core:rcv_requests": 3, "core:fwd_requests": 1, "tm:UAS_transactions": 7}


def test_reset_statistics() -> None:
    rt = make_rt()
    assert run(rt, "reset_statistics", "rcv_requests") == b"200 OK\n\n"
    assert rt.stats.resets == [["rcv_requests"]]
    assert run(rt, "reset_statistics", "unknown") == b"404 Statistics Not Found\n\n"
    assert run(rt, "reset_statistics") == b"400 Too few or too many arguments\n\n"


def test_uptime_version_pwd_arg() -> None:
    rt = make_rt()
    rt.start_time = int(time.time()) - 42
    out = run(rt, "uptime").decode()
    assert re.fullmatch(r"200 OK\nNow:: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"
                        r"Up since:: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"
                        r"Up time:: 4[2-4] \[sec\]\n\n", out), out
    assert run(rt, "version") == b"200 OK\nServer:: OpenSIPS (1.6.4-notls (x86_64/linux))\n\n"
    assert run(rt, "pwd") == f"200 OK\nWD:: {os.getcwd()}\n\n".encode()
    assert run(rt, "arg").decode().splitlines()[1] == sys.argv[0]


def test_ps() -> None:
    rt = make_rt()
    assert run(rt, "ps") == (b"200 OK\nProcess::  ID=0 PID=100 Type=attendant\n"
                             b"Process::  ID=1 PID=101 Type=MI FIFO\n\n")
    reply = mi_registry(rt).run("ps")
    assert reply is not None and reply.json == {"Processes": [
        {"ID": 0, "PID": 100, "Type": "attendant"}, {"ID": 1, "PID": 101, "Type": "MI FIFO"}]}


def test_debug() -> None:
    rt = make_rt()
    rt.debug = 3
    assert run(rt, "debug") == b"200 OK\nDEBUG:: 3\n\n"
    assert run(rt, "debug", "-1") == b"200 OK\nDEBUG:: -1\n\n"
    assert rt.debug == -1
    assert run(rt, "debug", "x") == b"400 Bad parameter\n\n"
    assert rt.debug == -1


def test_kill_signals_the_master() -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        rt = make_rt(master_pid=victim.pid)
        reply = mi_registry(rt).run("kill")
        assert reply is not None and reply.is_ok
        assert victim.wait(timeout=5) == -signal.SIGTERM
        assert mi_registry(rt).lookup("kill").export.no_reply  # type: ignore[union-attr]
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def test_cache_commands() -> None:
    rt = make_rt()
    assert run(rt, "cache_store", "local", "k", "v") == b"200 OK\n\n"
    assert run(rt, "cache_store", "local", "k2", "v", "60") == b"200 OK\n\n"
    assert run(rt, "cache_fetch", "local", "k") == b"200 OK\nk = [v]\n\n"
    assert run(rt, "cache_remove", "local", "k") == b"200 OK\n\n"
    assert run(rt, "cache_fetch", "local", "k") == b"200 OK\nValue not found\n\n"
    assert run(rt, "cache_store", "local", "k") == b"404 Too few arguments\n\n"
    assert run(rt, "cache_store", "local", "k", "v", "x") == b"404 Bad format for expires argument\n\n"
    assert run(rt, "cache_store", "local", "k", "v", "1", "2") == b"404 Too many parameters\n\n"
    assert run(rt, "cache_fetch", "local", "k", "x") == b"404 Too many arguments\n\n"
    assert run(rt, "cache_store", "nosuch", "k", "v") == b"500 Cache store command failed\n\n"
    assert run(rt, "cache_remove", "local", "gone") == b"500 Cache remove command failed\n\n"


def test_list_blacklists() -> None:
    rt = make_rt()
    rt.blacklists = {"bad": [BlacklistRule("udp", ipaddress.ip_network("10.0.0.0/8"), 5060, "*INVITE*"),
                             BlacklistRule(None, ipaddress.ip_network("1.2.3.4/32"), 0, "", True)]}
    assert run(rt, "list_blacklists") == (
        b"200 OK\nList:: bad owner=13 flags=1\n"
        b"\tRule::  flags=0\n\t\tIP:: 10.0.0.0\n\t\tMask:: 255.0.0.0\n\t\tProto:: 1\n"
        b"\t\tPort:: 5060\n\t\tMatch:: *INVITE*\n"
        b"\tRule::  flags=1\n\t\tIP:: 1.2.3.4\n\t\tMask:: 255.255.255.255\n\t\tProto:: 0\n"
        b"\t\tPort:: 0\n\n")


def test_registry_is_cached_on_the_runtime() -> None:
    rt = make_rt()
    assert mi_registry(rt) is mi_registry(rt) and isinstance(rt.mi, MIRegistry)
