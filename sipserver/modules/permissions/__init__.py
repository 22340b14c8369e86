"""permissions: call, registration and address permissions (OpenSIPS 1.6 `permissions`).

Two independent halves, as in 1.6:

* allow/deny rule files (hosts.allow style, see rules.py) checked by
  `allow_routing()` / `allow_routing(basename)` / `allow_routing(allow, deny)`,
  `allow_register(basename)` / `allow_register(allow, deny)` and
  `allow_uri(basename, pv)` (see routing.py for the pairs and the order);
  files are read once at start-up, relative names from the config file's
  directory; the default pair is `permissions.allow` / `permissions.deny`.
* the `address` DB table (version 5), cached in shared memory at start-up
  and on MI `address_reload`, checked by
  `check_address(grp, ip, port, proto [, info_pv [, pattern]])`,
  `check_source_address(grp [, info_pv [, pattern]])` and
  `get_source_group(pv)` (see address.py for the matching rules).

Return codes: 1 allowed / matched, -1 denied / not matched / error.
`get_source_group` stores the group (-1 when none) and returns 1.
The address functions need `db_url` (a start-up error without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.context import MsgContext
from ...core.exports import (
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    MICmdExport,
    ModuleExports,
    ParamExport,
)
from ...core.runtime import L_DBG, L_ERR, L_INFO
from ...db.api import CAP_QUERY, check_table_version, db_bind
from ...lang.pv import PVError
from ...shm import Segment
from .address import PROTOS, proto_arg, str2ip
from .mi import mi_address_dump, mi_address_reload, mi_allow_uri, mi_subnet_dump
from .routing import check_register, check_routing, check_uri
from .state import TABLE_VERSION, AddressDb, PermState
from .store import AddressStore

__all__ = ["exports"]

PRIVATE_SHM = 4 * 1024 * 1024  # without the server's segment (unit tests): a private one


def _state(module: LoadedModule) -> PermState:
    """The module's state, made by the first fixup (before mod_init) if need be."""
    st = module.state
    if not isinstance(st, PermState):
        st = module.state = PermState()
    return st


# ---------------------------------------------------------------- value helpers


def str2sint(text: str) -> int | None:
    """1.6 str2sint: an optional '-' then digits ("" is 0); None otherwise."""
    body = text[1:] if text.startswith("-") else text
    if body and not (body.isascii() and body.isdigit()):
        return None
    value = int(body) if body else 0
    return -value if text.startswith("-") else value


def str2int(text: str) -> int | None:
    """1.6 str2int: digits only ("" is 0)."""
    if text and not (text.isascii() and text.isdigit()):
        return None
    return int(text) if text else 0


def _group(ctx: MsgContext, grp: Any) -> int | None:
    """The group argument: an int, or a PV's integer value; None (logged) if invalid."""
    if isinstance(grp, int):
        value: Any = grp
    else:
        try:
            value = grp.get(ctx)
        except PVError as e:
            ctx.rt.log(L_ERR, f"permissions: cannot get group value: {e}")
            return None
        if isinstance(value, str):
            value = str2sint(value) if value else None
        if not isinstance(value, int):
            ctx.rt.log(L_ERR, "permissions: cannot get group value: no valid PV value found")
            return None
    if value < 0:
        ctx.rt.log(L_ERR, "permissions: invalid group value")
        return None
    return value


def _set_info(ctx: MsgContext, pv: Any, info: str | None) -> bool:
    if pv is None:
        return True
    try:
        pv.set(ctx, info or "", "=")
    except PVError as e:
        ctx.rt.log(L_ERR, f"permissions: setting of context info failed: {e}")
        return False
    return True


def _match(ctx: MsgContext, st: PermState, grp: int, ip: int, port: int, proto: int,
           info_pv: Any, pattern: str | None) -> int:
    tables = st.tables()
    if tables is None:
        ctx.rt.log(L_ERR, "permissions: address table not loaded (db_url not set)")
        return -1
    found = tables.match(grp, ip, port, proto, pattern)
    if found is None:
        ctx.rt.log(L_DBG, "permissions: no match in the address tables")
        return -1
    return 1 if _set_info(ctx, info_pv, found[0]) else -1


# ---------------------------------------------------------------- script functions


def allow_routing(ctx: MsgContext, module: LoadedModule, idx: int) -> int:
    st = _state(module)
    return check_routing(ctx, st.files.pairs[idx], st.check_all_branches)


def allow_register(ctx: MsgContext, module: LoadedModule, idx: int) -> int:
    st = _state(module)
    return check_register(ctx, st.files.pairs[idx], st.check_all_branches)


def allow_uri(ctx: MsgContext, module: LoadedModule, idx: int, pv: Any) -> int:
    return check_uri(ctx, _state(module).files.pairs[idx], pv)


def check_address(ctx: MsgContext, module: LoadedModule, grp: Any, ip_fmt: Any, port_fmt: Any,
                  proto_fmt: Any, info_pv: Any = None, pattern_fmt: Any = None) -> int:
    """check_address(grp, ip, port, proto [, info_pv [, pattern]])."""
    group = _group(ctx, grp)
    if group is None:
        return -1
    ip_text = ip_fmt.render(ctx)
    ip = str2ip(ip_text) if ip_text else None
    if ip is None:
        ctx.rt.log(L_ERR, f"permissions: source ip is not set! ({ip_text!r})")
        return -1
    proto_text = proto_fmt.render(ctx)
    proto = proto_arg(proto_text)
    if proto is None:
        ctx.rt.log(L_ERR, f"permissions: unknown protocol {proto_text}")
        return -1
    port = str2int(port_fmt.render(ctx))
    if port is None:
        ctx.rt.log(L_ERR, "permissions: invalid port value")
        return -1
    pattern = pattern_fmt.render(ctx) if pattern_fmt is not None else None
    return _match(ctx, _state(module), group, ip, port, proto, info_pv, pattern)


def check_source_address(ctx: MsgContext, module: LoadedModule, grp: Any, info_pv: Any = None,
                         pattern_fmt: Any = None) -> int:
    """check_source_address(grp [, info_pv [, pattern]]): $si, $sp and $proto."""
    group = _group(ctx, grp)
    if group is None:
        return -1
    ip = str2ip(ctx.src_ip)
    if ip is None:
        ctx.rt.log(L_DBG, f"permissions: source {ctx.src_ip} is not an IPv4 address")
        return -1
    pattern = pattern_fmt.render(ctx) if pattern_fmt is not None else None
    return _match(ctx, _state(module), group, ip, ctx.src_port, PROTOS.get(ctx.proto, 0),
                  info_pv, pattern)


def get_source_group(ctx: MsgContext, module: LoadedModule, pv: Any) -> int:
    """get_source_group(pv): the group of the first row for $si/$sp, -1 if none."""
    tables = _state(module).tables()
    ip = str2ip(ctx.src_ip)
    group = tables.find_group(ip, ctx.src_port) if tables is not None and ip is not None else -1
    ctx.rt.log(L_DBG, f"permissions: source group of {ctx.src_ip}:{ctx.src_port} is {group}")
    try:
        pv.set(ctx, group, "=")
    except PVError as e:
        ctx.rt.log(L_ERR, f"permissions: setting of pvar failed: {e}")
        return -1
    return 1


# ---------------------------------------------------------------- fixups


def _fixup_default(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    _state(module)
    return [module, 0]


def _fixup_basename(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    p = module.params
    name = args[0]
    idx = _state(module).files.register(name + str(p.get("allow_suffix") or ""),
                                        name + str(p.get("deny_suffix") or ""))
    return [module, idx]


def _fixup_files(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [module, _state(module).files.register(args[0], args[1])]


def _fixup_allow_uri(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [*_fixup_basename(env, module, args), env.compile_pv(args[1])]


def _need_db(module: LoadedModule, name: str) -> None:
    if not module.params.get("db_url"):
        raise FixupError(f'{name} needs db_url to be set! (modparam("permissions", "db_url", ...))')


def _igp(env: Any, text: str) -> Any:
    """1.6 fixup_igp: a PV when it starts with `$`, else a signed integer."""
    if text.startswith("$"):
        return env.compile_pv(text)
    value = str2sint(text)
    if value is None:
        raise FixupError(f"Bad number <{text}>")
    return value


def _writable_pv(env: Any, text: str) -> Any:
    pv = env.compile_pv(text)
    if not pv.writable:
        raise FixupError(f"{text} is read-only, a variable to store the result is needed")
    return pv


def _optional(text: str | None, make: Any) -> Any:
    return make(text) if text else None


def _fixup_check_address(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    _need_db(module, "check_address")
    out = [module, _igp(env, args[0])]
    out += [env.compile_format(a) for a in args[1:4]]
    out.append(_optional(args[4] if len(args) > 4 else None, lambda t: _writable_pv(env, t)))
    out.append(_optional(args[5] if len(args) > 5 else None, env.compile_format))
    return out


def _fixup_check_source(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    _need_db(module, "check_source_address")
    return [module, _igp(env, args[0]),
            _optional(args[1] if len(args) > 1 else None, lambda t: _writable_pv(env, t)),
            _optional(args[2] if len(args) > 2 else None, env.compile_format)]


def _fixup_source_group(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    _need_db(module, "get_source_group()")
    return [module, _writable_pv(env, args[0])]


# ---------------------------------------------------------------- init


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    p = module.params
    st = _state(module)
    st.check_all_branches = bool(int(p.get("check_all_branches", 1)))
    st.allow_suffix = str(p.get("allow_suffix") or "")
    st.deny_suffix = str(p.get("deny_suffix") or "")
    st.base_dir = rt.cfg_dir
    st.files.load(str(p.get("default_allow_file") or ""), str(p.get("default_deny_file") or ""),
                  st.base_dir, rt.log)
    url = p.get("db_url")
    if not url:
        rt.log(L_INFO, "permissions: db_url parameter of permissions module not set, "
                       "disabling allow_address")
        return
    binding = db_bind(rt.registry, str(url))
    if not binding.caps & CAP_QUERY:
        raise ValueError(f"permissions: database module {binding.driver} does not implement "
                         "'query' function")
    table = str(p.get("address_table"))
    names = ("ip_col", "grp_col", "mask_col", "port_col", "proto_col", "from_col", "info_col")
    columns = (*(str(p.get(name)) for name in names), "id")
    db = AddressDb(binding, table, columns)
    store = AddressStore(rt.shm if rt.shm is not None else Segment(PRIVATE_SHM))
    st.db, st.store = db, store
    try:
        check_table_version(db.connection(), table, TABLE_VERSION)
        why = st.reload(rt)
    finally:
        db.drop()  # no connection crosses the fork
    if why is not None:
        raise ValueError(f"permissions: reload of address table failed: {why}")


def _destroy(module: LoadedModule) -> None:
    st = module.state
    if isinstance(st, PermState) and st.db is not None:
        st.db.drop()


_RFL = REQUEST_ROUTE | FAILURE_ROUTE | LOCAL_ROUTE
_RF = REQUEST_ROUTE | FAILURE_ROUTE

exports = ModuleExports(
    name="permissions",
    params=[
        ParamExport("default_allow_file", str, "permissions.allow"),
        ParamExport("default_deny_file", str, "permissions.deny"),
        ParamExport("check_all_branches", int, 1),
        ParamExport("allow_suffix", str, ".allow"),
        ParamExport("deny_suffix", str, ".deny"),
        ParamExport("db_url", str, None),
        ParamExport("address_table", str, "address"),
        ParamExport("ip_col", str, "ip"),
        ParamExport("proto_col", str, "proto"),
        ParamExport("from_col", str, "pattern"),  # 1.6's name for the pattern column
        ParamExport("info_col", str, "context_info"),
        ParamExport("grp_col", str, "grp"),
        ParamExport("mask_col", str, "mask"),
        ParamExport("port_col", str, "port"),
    ],
    cmds=[
        CmdExport("check_address", check_address, 4, _RFL | STARTUP_ROUTE | TIMER_ROUTE,
                  _fixup_check_address),
        CmdExport("check_address", check_address, 5, _RFL | STARTUP_ROUTE | TIMER_ROUTE,
                  _fixup_check_address),
        CmdExport("check_address", check_address, 6, _RFL | STARTUP_ROUTE | TIMER_ROUTE,
                  _fixup_check_address),
        CmdExport("check_source_address", check_source_address, 1, _RFL, _fixup_check_source),
        CmdExport("check_source_address", check_source_address, 2, _RFL, _fixup_check_source),
        CmdExport("check_source_address", check_source_address, 3, _RFL, _fixup_check_source),
        CmdExport("get_source_group", get_source_group, 1, _RFL, _fixup_source_group),
        CmdExport("allow_routing", allow_routing, 0, _RFL, _fixup_default),
        CmdExport("allow_routing", allow_routing, 1, _RFL, _fixup_basename),
        CmdExport("allow_routing", allow_routing, 2, _RFL, _fixup_files),
        CmdExport("allow_register", allow_register, 1, _RF, _fixup_basename),
        CmdExport("allow_register", allow_register, 2, _RF, _fixup_files),
        CmdExport("allow_uri", allow_uri, 2, _RFL, _fixup_allow_uri),
    ],
    mi_cmds=[
        MICmdExport("address_reload", mi_address_reload, no_input=True),
        MICmdExport("address_dump", mi_address_dump, no_input=True),
        MICmdExport("subnet_dump", mi_subnet_dump, no_input=True),
        MICmdExport("allow_uri", mi_allow_uri, params=("basename", "uri", "contact")),
    ],
    mod_init=_mod_init,
    destroy=_destroy,
)
