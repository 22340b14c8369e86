"""Statistics: 1.6 groups, get/reset semantics and the MI get_statistics lines."""

from __future__ import annotations

import socket

import pytest

from sipserver.core.exports import LoadedModule, ModuleExports, StatExport
from sipserver.core.runtime import SocketInfo
from sipserver.core.stats import CORE_STATS, Statistics
from sipserver.shm import Segment

from .util import in_children


@pytest.fixture
def stats() -> Statistics:
    seg = Segment(1024 * 1024)
    yield Statistics(seg)
    seg.close()


def _module(name: str = "tm", state: int = 7) -> LoadedModule:
    exp = ModuleExports(name, stats=(
        StatExport("received_replies"),
        StatExport("inuse_transactions", no_reset=True),
        StatExport("waiting", func=lambda mod: mod.state),
    ))
    return LoadedModule(exp, state=state)


def test_core_groups_in_1_6_order(stats: Statistics) -> None:
    assert stats.groups() == ["core", "shmem", "net"]
    assert [s.name for s in stats.group("core")] == [*CORE_STATS, "timestamp"]
    code, reason, lines = stats.get_statistics(["core:"])
    assert (code, reason) == (200, "OK")
    assert lines == [
        "core:rcv_requests = 0", "core:rcv_replies = 0", "core:fwd_requests = 0",
        "core:fwd_replies = 0", "core:drop_requests = 0", "core:drop_replies = 0",
        "core:err_requests = 0", "core:err_replies = 0", "core:bad_URIs_rcvd = 0",
        "core:unsupported_methods = 0", "core:bad_msg_hdr = 0", "core:timestamp = 0",
    ]


def test_shmem_group_reads_the_segment(stats: Statistics) -> None:
    info = stats.seg.info()
    _c, _r, lines = stats.get_statistics(["shmem:"])
    assert lines == [f"shmem:{k} = {info[k]}" for k in (
        "total_size", "used_size", "real_used_size", "max_used_size", "free_size", "fragments")]
    off = stats.seg.alloc(10_000)
    assert stats.value("used_size") == info["used_size"] + stats.seg.capacity(off)
    assert stats.reset_statistics(["max_used_size"]) == (200, "OK")  # a function: unchanged
    assert stats.value("max_used_size") >= info["max_used_size"] + 10_000


def test_counting_and_the_hot_path_forms(stats: Statistics) -> None:
    stats.core.rcv_requests.inc()
    stats.core_inc("rcv_requests", 2)
    stats.inc(stats.core.rcv_requests)
    stats.core.drop_replies.inc(-1)
    assert stats.value("rcv_requests") == 4
    assert stats.get("rcv_requests") == [("core", "rcv_requests", 4)]
    # 1.6 kept unsigned 32-bit counters: below zero prints wrapped
    assert stats.get_statistics(["drop_replies"])[2] == ["core:drop_replies = 4294967295"]
    assert stats.value("drop_replies") == -1


def test_get_statistics_arguments(stats: Statistics) -> None:
    mod = _module()
    stats.register_module(mod)
    stats.stat("tm", "received_replies").inc(3)
    assert stats.get_statistics([]) == (400, "Too few or too many arguments", [])
    assert stats.get_statistics(["nothing", "nope:"]) == (404, "Statistics Not Found", [])
    assert stats.get_statistics(["ALL"])[0] == 404  # "all" is lower case only
    assert stats.get_statistics([":"])[0] == 404
    # names and groups ignore case; the group prints as registered; argument order kept
    assert stats.get_statistics(["RECEIVED_replies", "", "TM:", "nothing"]) == (200, "OK", [
        "tm:received_replies = 3",
        "tm:received_replies = 3", "tm:inuse_transactions = 0", "tm:waiting = 7",
    ])
    all_lines = stats.get_statistics(["all"])[2]
    assert [ln.split(":")[0] for ln in all_lines] == ["core"] * 12 + ["shmem"] * 6 + \
        ["net"] * 2 + ["tm"] * 3
    assert stats.get("tm:") == [("tm", "received_replies", 3), ("tm", "inuse_transactions", 0),
                                ("tm", "waiting", 7)]
    mod.state = 9
    assert stats.value("waiting") == 9


def test_reset_honours_no_reset(stats: Statistics) -> None:
    handles = stats.register_module(_module())
    handles["received_replies"].inc(5)
    handles["inuse_transactions"].inc(5)
    assert stats.reset_statistics([]) == (400, "Too few or too many arguments")
    assert stats.reset_statistics(["tm:"]) == (404, "Statistics Not Found")  # names only
    assert stats.reset_statistics(["nothing"]) == (404, "Statistics Not Found")
    assert stats.reset_statistics(["received_replies", "inuse_transactions", "waiting",
                                   "x"]) == (200, "OK")
    assert stats.value("received_replies") == 0
    assert stats.value("inuse_transactions") == 5
    assert stats.value("waiting") == 7
    assert stats.reset("Received_Replies") == 1 and stats.reset("nothing") == 0
    assert stats.reset(["received_replies", "", "nothing", "waiting"]) == 2


def test_registration_rules(stats: Statistics) -> None:
    a = stats.register("dialog", "active_dialogs")
    assert stats.register("Dialog", "ACTIVE_dialogs") is a  # same stat again
    b = stats.register("other", "active_dialogs")
    assert b is not a
    assert stats.lookup("active_dialogs") is a  # a bare name finds the first one
    assert stats.stat("other", "active_dialogs") is b
    assert stats.stat("nothing", "x") is None and stats.stat("other", "x") is None
    assert stats.group("nothing") == [] and stats.value("nothing") is None
    with pytest.raises(ValueError):
        stats.register("", "x")
    small = Statistics(stats.seg, capacity=len(CORE_STATS) + 1)
    small.register("m", "one")
    with pytest.raises(RuntimeError, match="too many statistics"):
        small.register("m", "two")
    small.register("m", "f", func=lambda: 1)  # functions need no counter


def test_function_failure_reads_zero_and_logs() -> None:
    seg = Segment(256 * 1024)
    logged = []
    stats = Statistics(seg, logger=lambda level, text: logged.append(text))
    stats.register("m", "broken", func=lambda: 1 // 0)
    stats.register("m", "negative", func=lambda: -1)
    assert stats.get_statistics(["m:"])[2] == ["m:broken = 0",
                                               "m:negative = 18446744073709551615"]
    assert "m:broken" in logged[0]
    seg.close()


def test_timestamp_counts_seconds_since_start(stats: Statistics) -> None:
    stats.start -= 42
    assert stats.value("timestamp") == 42


def test_counts_from_every_process_add_up(stats: Statistics) -> None:
    stats.register_module(_module())

    def child(i: int) -> None:
        for _ in range(2000):
            stats.core.rcv_requests.inc()
            stats.stat("tm", "received_replies").inc(2)
        with pytest.raises(RuntimeError, match="after the processes forked"):
            stats.register("late", "stat")

    in_children(3, child)
    assert stats.value("rcv_requests") == 6000
    assert stats.value("received_replies") == 12000
    assert stats.groups() == ["core", "shmem", "net", "tm"]


def test_waiting_udp_counts_unread_datagrams(stats: Statistics) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert stats.value("waiting_udp") == 0  # no sockets known
        stats.sockets = lambda: [SocketInfo("udp", "127.0.0.1", port)]
        assert stats.value("waiting_udp") == 0
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(3):
            out.sendto(b"x" * 500, ("127.0.0.1", port))
        out.close()
        assert stats.value("waiting_udp") >= 1500
        assert stats.value("waiting_tcp") == 0
    finally:
        s.close()
