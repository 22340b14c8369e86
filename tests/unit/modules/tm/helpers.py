"""Shared helpers for the tm unit tests: a ScriptRunner with tm, a fake clock,
and message builders."""

from __future__ import annotations

from typing import Any

from sipserver.testing import ScriptRunner


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def runner(cfg: str, *, modules: tuple[str, ...] = ("sl", "tm"), params: str = "") -> tuple[ScriptRunner, Any, Clock]:
    r = ScriptRunner(params + cfg, modules=list(modules), stats=True)
    st = r.compiled.registry.modules["tm"].state
    clock = Clock()
    st.clock = clock
    return r, st, clock


def invite(branch: str = "z9hG4bKabc", method: str = "INVITE", cseq: int = 1,
           ruri: str = "sip:bob@127.0.0.5:5080", to_tag: str = "", call_id: str = "c1") -> bytes:
    to = "<sip:bob@x>" + (f";tag={to_tag}" if to_tag else "")
    cseq_method = method
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.2:5070;branch={branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=f1\r\n"
            f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def reply_to(sent: bytes, code: int, reason: str, to_tag: str = "uas1") -> bytes:
    """A downstream reply to a request we sent (all Vias copied)."""
    text = sent.decode("latin-1")
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    keep = []
    for line in head:
        name = line.split(":", 1)[0].strip().lower()
        if name == "to" and code > 100 and ";tag=" not in line:
            line += f";tag={to_tag}"
        if name in ("via", "from", "to", "call-id", "cseq", "record-route"):
            keep.append(line)
    return (f"SIP/2.0 {code} {reason}\r\n" + "\r\n".join(keep)
            + "\r\nContent-Length: 0\r\n\r\n").encode()


def feed_reply(r: ScriptRunner, data: bytes, src: tuple[str, int] = ("127.0.0.5", 5080)) -> bool:
    ctx = r.context(data, src=src)
    return r.rt.reply_hook(ctx)


def first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode()
