"""Shared helpers for the usrloc tests: a runner with usrloc loaded, a fake
clock, MI calls and the bytes a FIFO client reads."""

from __future__ import annotations

from typing import Any

from sipserver.mi.text import format_reply
from sipserver.mi.tree import MINodeArg, MIReply
from sipserver.modules.usrloc import ContactInfo, Usrloc, bind_usrloc
from sipserver.testing import ScriptRunner

NOW = 1_700_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def modparams(**params: Any) -> str:
    out = []
    for k, v in params.items():
        value = f'"{v}"' if isinstance(v, str) else str(v)
        out.append(f'modparam("usrloc", "{k}", {value})\n')
    return "".join(out)


def runner(*, modules: tuple[str, ...] = ("usrloc",), clock: Clock | None = None,
           tables: tuple[str, ...] = ("location",), shm_mb: int = 8,
           **params: Any) -> tuple[ScriptRunner, Usrloc]:
    """A ScriptRunner with usrloc (after `modules`), `params` as modparams
    and `tables` registered (as registrar's mod_init would, before the fork)."""
    r = ScriptRunner(modparams(**params) + "route { exit; }", modules=list(modules),
                     stats=True, shm_mb=shm_mb)
    ul = bind_usrloc(r.compiled.registry)
    if clock is not None:
        ul.clock = clock
    for t in tables:
        ul.register_udomain(t)
    return r, ul


def module(r: ScriptRunner) -> Any:
    return r.compiled.registry.modules["usrloc"]


def args(*values: str) -> list[MINodeArg]:
    return [MINodeArg(None, v) for v in values]


def mi(r: ScriptRunner, name: str, *values: str) -> MIReply | None:
    """Run a usrloc MI command as the MI process does."""
    mod = module(r)
    for e in mod.exports.mi_cmds:
        if e.name == name:
            return e.handler(args(*values), r.rt, mod)
    raise LookupError(name)


def fifo(reply: MIReply | None) -> bytes:
    """What mi_fifo writes for the reply (None: the handler failed)."""
    assert reply is not None, "the command failed"
    return format_reply(reply)


def info(expires: int = 3600, *, now: int = NOW, **kw: Any) -> ContactInfo:
    """A ContactInfo expiring `expires` seconds from `now` (0: permanent)."""
    kw.setdefault("callid", "call-1")
    kw.setdefault("cseq", 1)
    kw.setdefault("last_modified", now)
    return ContactInfo(expires=now + expires if expires else 0, **kw)


def save(ul: Usrloc, aor: str, contact: str, ci: ContactInfo, table: str = "location") -> Any:
    """Insert or update one binding the way registrar's save does."""
    dom = ul.register_udomain(table)
    with dom.record(aor) as rec:
        code, c = rec.get_ucontact(contact, ci.callid, ci.cseq)
        if code == 1:
            return rec.insert_ucontact(contact, ci)
        if code == 0:
            rec.update_ucontact(c, ci)
        return c
