"""Async MI answers (sipserver.mi.pending) and how the registry treats them.

PendingReply: replies in arrival order, nothing after the final one, the
timeout reply at the deadline. Waiting: how long the MI loop may sleep,
delivery, a broken pending answer or a failing delivery. Registry: only
commands flagged `async_` may answer later; `run` waits for the final reply.
"""

from __future__ import annotations

from typing import Any

from sipserver.core.exports import MICmdExport
from sipserver.mi.pending import POLL_INTERVAL, PendingReply, Waiting
from sipserver.mi.registry import MIRegistry
from sipserver.mi.tree import MIReply


def tree(text: str) -> MIReply:
    r = MIReply.ok()
    r.add(None, text)
    return r


class Queue(PendingReply):
    """Answers pushed by the test, as shared memory would hand them over."""

    def __init__(self, deadline: float) -> None:
        super().__init__(deadline)
        self.queue: list[tuple[MIReply, bool]] = []
        self.fetches = 0

    def fetch(self) -> list[tuple[MIReply, bool]]:
        self.fetches += 1
        out, self.queue = self.queue, []
        return out


def values(items: list[tuple[MIReply, bool]]) -> list[tuple[str | None, bool]]:
    return [(r.kids[0].value if r.kids else r.reason, final) for r, final in items]


def test_replies_come_in_order_and_stop_after_the_final_one() -> None:
    p = Queue(deadline=100.0)
    assert p.check(1.0) == [] and not p.done
    p.queue = [(tree("180"), False)]
    assert values(p.check(2.0)) == [("180", False)]
    p.queue = [(tree("183"), False), (tree("200"), True), (tree("late"), False)]
    assert values(p.check(3.0)) == [("183", False), ("200", True)]
    assert p.done
    p.queue = [(tree("more"), True)]
    assert p.check(4.0) == []


def test_the_deadline_gives_the_timeout_reply() -> None:
    p = Queue(deadline=10.0)
    p.queue = [(tree("100"), False)]
    assert values(p.check(9.9)) == [("100", False)]
    got = p.check(10.0)
    assert values(got) == [("command timed out", True)] and got[0][0].code == 500
    assert p.done and p.check(11.0) == []


def test_a_final_reply_at_the_deadline_wins() -> None:
    p = Queue(deadline=10.0)
    p.queue = [(tree("200"), True)]
    assert values(p.check(50.0)) == [("200", True)]


def test_wait_blocks_until_the_final_reply() -> None:
    class Later(Queue):
        def fetch(self) -> list[tuple[MIReply, bool]]:
            self.fetches += 1
            if self.fetches == 3:
                return [(tree("180"), False), (tree("200"), True)]
            return []

    p = Later(deadline=float("inf"))
    assert p.wait().kids[0].value == "200" and p.fetches == 3


def test_waiting_timeout_tells_the_loop_how_long_to_sleep() -> None:
    w = Waiting()
    assert w.timeout(0.0) is None  # nothing pending: sleep on the socket alone
    w.add(Queue(deadline=5.0), lambda r, f: None)
    assert w.timeout(0.0) == POLL_INTERVAL
    assert w.timeout(4.999) <= 0.001 + 1e-9
    assert w.timeout(6.0) == 0.0


def test_waiting_delivers_and_forgets_complete_answers() -> None:
    errors: list[str] = []
    w = Waiting(errors.append)
    got: dict[str, list[tuple[str | None, bool]]] = {"a": [], "b": []}
    a, b = Queue(deadline=100.0), Queue(deadline=10.0)
    w.add(a, lambda r, f: got["a"].append((r.kids[0].value if r.kids else r.reason, f)))
    w.add(b, lambda r, f: got["b"].append((r.kids[0].value if r.kids else r.reason, f)))
    a.queue = [(tree("180"), False)]
    assert w.service(1.0) == 1 and len(w) == 2
    a.queue = [(tree("200"), True)]
    assert w.service(2.0) == 1 and len(w) == 1  # a is complete
    assert w.service(10.0) == 1 and len(w) == 0  # b timed out
    assert got == {"a": [("180", False), ("200", True)], "b": [("command timed out", True)]}
    assert errors == [] and w.service(11.0) == 0


def test_a_broken_answer_or_delivery_does_not_stop_the_loop() -> None:
    errors: list[str] = []
    w = Waiting(errors.append)

    class Broken(Queue):
        def fetch(self) -> list[tuple[MIReply, bool]]:
            raise RuntimeError("shm gone")

    delivered: list[tuple[int, bool]] = []
    w.add(Broken(deadline=100.0), lambda r, f: delivered.append((r.code, f)))

    def refuse(r: MIReply, f: bool) -> None:
        raise BrokenPipeError("client left")

    ok = Queue(deadline=100.0)
    ok.queue = [(tree("200"), True)]
    w.add(ok, refuse)
    assert w.service(1.0) == 2
    assert delivered == [(500, True)] and len(w) == 0
    assert any("shm gone" in e for e in errors) and any("client left" in e for e in errors)


def _registry(**flags: Any) -> tuple[MIRegistry, list[str]]:
    logs: list[str] = []

    class Rt:
        def log(self, level: int, text: str) -> None:
            logs.append(text)

    def later(args: list[Any], rt: Any, module: Any) -> PendingReply:
        p = Queue(deadline=float("inf"))
        p.queue = [(tree("180"), False), (tree("done"), True)]
        return p

    reg = MIRegistry(Rt())
    reg.register(MICmdExport("later", later, **flags))
    return reg, logs


def test_only_async_commands_may_answer_later() -> None:
    reg, logs = _registry(async_=True)
    cmd = reg.lookup("later")
    assert cmd is not None
    assert isinstance(reg.execute(cmd, []), PendingReply)
    reply = reg.run("later")  # run() waits for the final reply
    assert reply is not None and reply.kids[0].value == "done"

    reg, logs = _registry()
    cmd = reg.lookup("later")
    assert cmd is not None and reg.execute(cmd, []) is None
    assert "returned Queue, not a tree" in logs[0]
