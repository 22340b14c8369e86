"""domain: the list of local domains, from a DB table (OpenSIPS 1.6 `domain`).

`is_from_local()` (the From URI's host), `is_uri_host_local()` (the
current R-URI's host) and `is_domain_local(pv)` answer 1 when the host is
in the `domain` column of `domain_table`, -1 when not; -3 when the DB
query fails, -2 (is_from_local) / -1 when the URI cannot be parsed.

`db_mode=0` asks the DB every time (its collation decides case);
`db_mode=1` loads the table (version 2 checked) once into shared memory,
where every process reads it and the MI process replaces it on
`domain_reload`; the lookup ignores ASCII case, as 1.6's hash does.
`domain_dump` lists the cached domains in 1.6's order (hash bucket,
then the last loaded first). Both MI commands answer
`500 command not activated` in db_mode 0.

As in 1.6 the module also makes `myself` true for the local domains
(1.6 register_alias_fct). Other modules bind to it through `exports.api`
(`bind_domain(loaded_module)` -> an object with `is_domain_local(host)`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
    CmdExport,
    LoadedModule,
    MICmdExport,
    ModuleExports,
    ParamExport,
)
from ..core.runtime import L_DBG, L_ERR
from ..db.api import (
    DbBinding,
    DbError,
    ProcessConnection,
    check_table_version,
    db_bind,
)
from ..lang.pv import PVError, str_of
from ..mi.tree import MIReply
from ..shm.locks import new_lock
from ..shm.segment import Segment, ShmOutOfMemory
from ..sip.errors import ParseError

TABLE_VERSION = 2
DEFAULT_RODB_URL = "mysql://opensipsro:opensipsro@localhost/opensips"
DOM_HASH_SIZE = 128
PRIVATE_SHM = 1024 * 1024  # the segment used when the runtime has none (unit tests)

ERR_DB = -3

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_U32 = 0xFFFF_FFFF
_HDR = struct.Struct("<QQ")  # blob offset (0 = none), generation
_LEN = struct.Struct("<I")


def fold(text: str) -> str:
    """ASCII-only lower case (1.6 compares with strncasecmp in the C locale)."""
    return text.translate(_FOLD)


def core_case_hash(data: bytes, size: int = 0) -> int:
    """1.6 core_case_hash over one string: ASCII letters folded, bytes taken
    as signed chars (x86), the slot order domain_dump lists domains in."""
    sb = [(x | 0x20) if 65 <= x <= 90 else (x - 256 if x > 127 else x) for x in data]
    h = 0
    n = len(sb)
    p = 0
    while p <= n - 4:
        v = ((sb[p] << 24) + (sb[p + 1] << 16) + (sb[p + 2] << 8) + sb[p + 3]) & _U32
        h = (h + (v ^ (v >> 3))) & _U32
        p += 4
    v = 0
    while p < n:
        v = ((v << 8) + sb[p]) & _U32
        p += 1
    h = (h + (v ^ (v >> 3))) & _U32
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & _U32
    return h & (size - 1) if size else h


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def dump_order(domains: Iterable[str]) -> list[str]:
    """The domains as 1.6's hash table holds them: by bucket, and inside a
    bucket the one installed last first."""
    buckets: list[list[str]] = [[] for _ in range(DOM_HASH_SIZE)]
    for d in domains:
        buckets[core_case_hash(_enc(d), DOM_HASH_SIZE)].insert(0, d)
    return [d for b in buckets for d in b]


class SharedDomains:
    """The cached domain list in shared memory (1.6's two swapped hash tables).

    One header block holds the offset of the current list and a generation
    number; a reload writes a new list block and swaps it in under the
    lock, so a reader sees the old list or the new one, never a mix. Each
    process decodes a list once per generation.
    """

    __slots__ = ("_cache", "_gen", "_hdr", "_lock", "seg")

    def __init__(self, seg: Segment) -> None:
        self.seg = seg
        self._lock = new_lock()
        self._hdr = seg.alloc(_HDR.size, zero=True)
        self._gen = -1
        self._cache: tuple[list[str], frozenset[str]] = ([], frozenset())

    def install(self, domains: list[str]) -> None:
        """Make `domains` (in dump order) the current list; ShmOutOfMemory
        leaves the old one in place."""
        parts = [_LEN.pack(len(domains))]
        for d in domains:
            raw = _enc(d)
            parts.append(_LEN.pack(len(raw)))
            parts.append(raw)
        blob = b"".join(parts)
        seg = self.seg
        off = seg.alloc(len(blob))
        seg.write(off, blob)
        self._lock.acquire()
        try:
            old, gen = _HDR.unpack_from(seg.buf, self._hdr)
            _HDR.pack_into(seg.buf, self._hdr, off, gen + 1)
        finally:
            self._lock.release()
        if old:
            seg.free(old)

    def snapshot(self) -> tuple[list[str], frozenset[str]]:
        """(domains in dump order, their folded set) as currently installed."""
        seg = self.seg
        self._lock.acquire()
        try:
            off, gen = _HDR.unpack_from(seg.buf, self._hdr)
            if gen == self._gen:
                return self._cache
            blob = bytes(seg.buf[off:off + seg.capacity(off)]) if off else b""
        finally:
            self._lock.release()
        names: list[str] = []
        if blob:
            (n,) = _LEN.unpack_from(blob, 0)
            pos = 4
            for _ in range(n):
                (ln,) = _LEN.unpack_from(blob, pos)
                pos += 4
                names.append(blob[pos:pos + ln].decode("utf-8", "surrogateescape"))
                pos += ln
        self._cache = (names, frozenset(fold(d) for d in names))
        self._gen = gen
        return self._cache

    def lookup(self, host: str) -> int:
        return 1 if fold(host) in self.snapshot()[1] else -1


@dataclass(slots=True)
class DomainState:
    binding: DbBinding
    db_mode: int
    table: str
    column: str
    shared: SharedDomains | None = None
    db: ProcessConnection = field(init=False)  # this process's connection

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)


# ---------------------------------------------------------------- lookups


def is_domain_local(st: DomainState, rt: Any, host: str) -> int:
    """1 when `host` is a local domain, -1 when not, -3 on a DB error."""
    if st.db_mode == 0:
        try:
            res = st.db.get().query(st.table, (st.column,), None, (host,), (st.column,))
        except (DbError, OSError) as e:
            rt.log(L_ERR, f"domain: error while querying database: {e}")
            return ERR_DB
        if not res.rows:
            rt.log(L_DBG, f"domain: realm '{host}' is not local")
            return -1
        rt.log(L_DBG, f"domain: realm '{host}' is local")
        return 1
    assert st.shared is not None
    return st.shared.lookup(host)


def reload_domain_table(st: DomainState, rt: Any) -> bool:
    """Read the table into shared memory; False (logged, old list kept) on failure."""
    assert st.shared is not None
    try:
        res = st.db.get().query(st.table, (), None, (), (st.column,))
    except (DbError, OSError) as e:
        rt.log(L_ERR, f"domain: error while querying database: {e}")
        return False
    rt.log(L_DBG, f"domain: number of rows in domain table: {len(res.rows)}")
    domains: list[str] = []
    for (value,) in res.rows:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if not isinstance(value, str):
            rt.log(L_ERR, f"domain: database problem: a non-text value in column "
                          f"{st.column} of {st.table}")
            return False
        domains.append(value)
    try:
        st.shared.install(dump_order(domains))
    except ShmOutOfMemory:
        rt.log(L_ERR, "domain: out of shared memory for the domain table")
        return False
    return True


def _state(ctx: MsgContext, module: LoadedModule) -> DomainState | None:
    st = module.state
    if not isinstance(st, DomainState):
        ctx.rt.log(L_ERR, "domain: module not initialised")
        return None
    return st


def is_from_local(ctx: MsgContext, module: LoadedModule) -> int:
    """The host of the From URI is local."""
    st = _state(ctx, module)
    if st is None:
        return -1
    try:
        fr = ctx.msg.from_
        if fr is None:
            raise ParseError("no From header")
        host = fr.uri.host
    except (ParseError, ValueError, KeyError) as e:
        ctx.rt.log(L_ERR, f"domain: error while parsing From header: {e}")
        return -2
    return is_domain_local(st, ctx.rt, host or "")


def is_uri_host_local(ctx: MsgContext, module: LoadedModule) -> int:
    """The host of the current R-URI is local."""
    st = _state(ctx, module)
    if st is None:
        return -1
    try:
        uri = ctx.parsed_ruri()
    except ParseError as e:
        ctx.rt.log(L_ERR, f"domain: error while parsing R-URI: {e}")
        return -1
    return is_domain_local(st, ctx.rt, uri.host or "")


def w_is_domain_local(ctx: MsgContext, module: LoadedModule, pv: Any) -> int:
    """The domain name the pseudo-variable holds is local."""
    st = _state(ctx, module)
    if st is None:
        return -1
    try:
        value = str_of(pv.get(ctx))
    except PVError:
        ctx.rt.log(L_DBG, "domain: cannot get pseudo variable value")
        return -1
    if value is None:
        ctx.rt.log(L_DBG, "domain: pseudo variable value is not string")
        return -1
    if not value:
        ctx.rt.log(L_DBG, "domain: missing domain name")
        return -1
    return is_domain_local(st, ctx.rt, value)


class DomainApi:
    """What another module gets from `bind_domain` (1.6's domain_api_t)."""

    __slots__ = ("_module",)

    def __init__(self, module: LoadedModule) -> None:
        self._module = module

    def is_domain_local(self, host: str) -> int:
        st = self._module.state
        if not isinstance(st, DomainState):
            return -1
        return is_domain_local(st, self._module.rt, host)


def bind_domain(module: LoadedModule) -> DomainApi:
    """1.6 bind_domain: the API of the loaded domain module `module`."""
    return DomainApi(module)


# ---------------------------------------------------------------- MI


def mi_domain_reload(args: list[Any], rt: Any, module: LoadedModule) -> MIReply:
    st = module.state
    if not isinstance(st, DomainState) or st.db_mode == 0:
        return MIReply.error(500, "command not activated")
    if reload_domain_table(st, rt):
        return MIReply.ok()
    return MIReply.error(500, "Domain table reload failed")


def mi_domain_dump(args: list[Any], rt: Any, module: LoadedModule) -> MIReply:
    st = module.state
    if not isinstance(st, DomainState) or st.db_mode == 0:
        return MIReply.error(500, "command not activated")
    assert st.shared is not None
    reply = MIReply.ok()
    for d in st.shared.snapshot()[0]:
        reply.add(None, d)
    return reply


# ---------------------------------------------------------------- start-up


def _fixup_module(env: Any, module: LoadedModule, args: list[str]) -> list[Any]:
    return [module]


def _fixup_pv(env: Any, module: LoadedModule, args: list[str]) -> list[Any]:
    return [module, env.compile_pv(args[0].strip())]


def _mod_init(module: LoadedModule) -> None:
    p = module.params
    rt = module.rt
    binding = db_bind(rt.registry, str(p.get("db_url") or DEFAULT_RODB_URL))
    st = DomainState(binding, int(p.get("db_mode") or 0), str(p.get("domain_table")),
                     str(p.get("domain_col")))
    if st.db_mode != 0:
        seg = getattr(rt, "shm", None) or Segment(PRIVATE_SHM)
        st.shared = SharedDomains(seg)
        try:
            check_table_version(st.db.get(), st.table, TABLE_VERSION)
            if not reload_domain_table(st, rt):
                raise ValueError("domain: domain table reload failed")
        finally:
            _close(st)  # no connection crosses the fork
    module.state = st

    def is_alias(name: str, port: int, proto: str | None) -> bool:
        return is_domain_local(st, rt, name) == 1

    fns = getattr(rt, "alias_fns", None)
    if fns is not None:
        fns.append(is_alias)


def _close(st: DomainState) -> None:
    st.db.close()


def _child_init(module: LoadedModule, rank: int) -> None:
    st = module.state
    if not isinstance(st, DomainState) or st.db_mode != 0:
        return
    st.db.open_or_log(module.rt, "domain")


def _destroy(module: LoadedModule) -> None:
    st = module.state
    if isinstance(st, DomainState):
        _close(st)


_RBFL = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE | LOCAL_ROUTE

exports = ModuleExports(
    name="domain",
    params=[
        ParamExport("db_url", str, DEFAULT_RODB_URL),
        ParamExport("db_mode", int, 0),
        ParamExport("domain_table", str, "domain"),
        ParamExport("domain_col", str, "domain"),
    ],
    cmds=[
        CmdExport("is_from_local", is_from_local, 0, _RBFL, _fixup_module),
        CmdExport("is_uri_host_local", is_uri_host_local, 0, _RBFL, _fixup_module),
        CmdExport("is_domain_local", w_is_domain_local, 1,
                  _RBFL | STARTUP_ROUTE | TIMER_ROUTE, _fixup_pv),
    ],
    mi_cmds=[
        MICmdExport("domain_reload", mi_domain_reload, no_input=True),
        MICmdExport("domain_dump", mi_domain_dump, no_input=True),
    ],
    api=bind_domain,
    mod_init=_mod_init,
    child_init=_child_init,
    destroy=_destroy,
)
