"""registrar: REGISTER processing over usrloc (OpenSIPS 1.6 module `registrar`).

Script functions: save(table[, flags[, aor_pv]]) stores the bindings of a
REGISTER and answers it; lookup(table[, flags[, aor_pv]]) routes a request
to the bindings of its AOR; registered(table[, aor_pv[, callid_pv]]) tells
whether an AOR has one; add_sock_hdr(name) names the receiving socket in a
header (for a registrar behind a proxy, with save flag `s`).

The tables are usrloc domains, registered by the fixups before the fork
(usrloc must be loaded); replies go through the signaling module (tm when
the REGISTER has a transaction, else sl), which must be loaded too.

One concern per file: `rerrno` (error codes, reply texts), `common`
(parameters, AOR), `sip_msg` (REGISTER checks, expires/q/methods), `path`
(Path vector), `reply` (the reply), `save`, `lookup` (lookup, registered,
add_sock_hdr).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
    StatExport,
)
from ...core.runtime import L_INFO
from ...lang.env import CompileError
from ...lang.pvars import AvpPV
from ..usrloc import UDomain
from .common import RegState, extract_aor, make_state
from .lookup import LookupFlags, add_sock_hdr, lookup, parse_lookup_flags, registered
from .save import SaveFlags, parse_save_flags, save

__all__ = ["RegState", "exports", "extract_aor"]


def _state(module: LoadedModule, registry: Any) -> RegState:
    """The module state, made from the parameters on first use."""
    if not isinstance(module.state, RegState):
        module.state = make_state(module.params, registry)
    return module.state


def _bind(env: Any, module: LoadedModule) -> RegState:
    try:
        return _state(module, getattr(env, "registry", None))
    except ValueError as e:
        raise FixupError(f"can't bind usrloc: {e}") from None


def _domain(st: RegState, name: str) -> UDomain:
    """Register the usrloc table (1.6 domain_fixup)."""
    try:
        return st.domain(name)
    except (ValueError, RuntimeError) as e:
        raise FixupError(f"failed to register domain {name!r}: {e}") from None


def _pv(env: Any, text: str, what: str) -> Any:
    try:
        return env.compile_pv(text.strip())
    except CompileError as e:
        raise FixupError(f"invalid {what} {text!r}: {e.message}") from None


def _received_avp(env: Any, st: RegState) -> None:
    """Resolve received_avp against the script's PVs and AVP aliases (once)."""
    if not st.rcv_avp_text or st.rcv_avp is not None:
        return
    try:
        pv = env.compile_pv(st.rcv_avp_text.strip())
    except CompileError:
        pv = None
    if not isinstance(pv, AvpPV) or pv.name is None or pv.index is not None:
        raise FixupError(f"malformed or non AVP {st.rcv_avp_text} AVP definition "
                         "(modparam received_avp)")
    st.rcv_avp = pv.name


def _flags(env: Any, text: str, parse: Any, static_type: Any) -> Any:
    """A static flags string parsed now, one with PVs at each call."""
    fmt = env.compile_format(text)
    if fmt.static is None:
        return fmt
    value, unknown = parse(fmt.static)
    for ch in unknown:
        env.warn(f"registrar: unsupported flag {ch!r} in {text!r}")
    return static_type(value)


def _fixup_save(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    st = _bind(env, module)
    _received_avp(env, st)
    out: list[Any] = [st, _domain(st, args[0])]
    if len(args) > 1:
        out.append(_flags(env, args[1], parse_save_flags, lambda v: v)
                   if args[1] else SaveFlags())
    if len(args) > 2:
        out.append(_pv(env, args[2], "AOR"))
    return out


def _fixup_lookup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    st = _bind(env, module)
    out: list[Any] = [st, _domain(st, args[0])]
    if len(args) > 1:
        out.append(_flags(env, args[1], parse_lookup_flags, LookupFlags)
                   if args[1] else LookupFlags(0))
    if len(args) > 2:
        out.append(_pv(env, args[2], "AOR"))
    return out


def _fixup_registered(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    st = _bind(env, module)
    out: list[Any] = [st, _domain(st, args[0])]
    if len(args) > 1:
        out.append(_pv(env, args[1], "AOR"))
    if len(args) > 2:
        out.append(_pv(env, args[2], "callid"))
    return out


def _fixup_sock_hdr(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    name = args[0].strip()
    if not name:
        raise FixupError("add_sock_hdr needs a header name")
    return [name]


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    rt.log(L_INFO, "registrar: initializing...")
    registry = getattr(rt, "registry", None)
    if registry is not None and "signaling" not in registry:
        raise ValueError('registrar: can\'t load signaling functions: load the signaling '
                         'module (loadmodule "signaling.so")')
    try:
        st = _state(module, registry)
    except ValueError as e:
        raise ValueError(f"registrar: can't bind usrloc: {e}") from None
    stats = getattr(rt, "stats", None)
    if stats is not None:
        st.accepted = stats.stat("registrar", "accepted_regs")
        st.rejected = stats.stat("registrar", "rejected_regs")


def _static(name: str) -> Any:
    def value(module: Any) -> int:
        st = module.state
        return int(getattr(st, name, 0)) if isinstance(st, RegState) else 0
    return value


_ANY = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE

exports = ModuleExports(
    name="registrar",
    params=[
        ParamExport("default_expires", int, 3600),
        ParamExport("default_q", int, -1),
        ParamExport("case_sensitive", int, 1),
        ParamExport("tcp_persistent_flag", int, -1),
        ParamExport("realm_prefix", str, ""),
        ParamExport("min_expires", int, 60),
        ParamExport("max_expires", int, 0),
        ParamExport("received_param", str, "received"),
        ParamExport("received_avp", str, None),
        ParamExport("max_contacts", int, 0),
        ParamExport("retry_after", int, 0),
        ParamExport("sock_hdr_name", str, None),
    ],
    cmds=[
        *(CmdExport("save", save, n, REQUEST_ROUTE, _fixup_save) for n in (1, 2, 3)),
        *(CmdExport("lookup", lookup, n, REQUEST_ROUTE | FAILURE_ROUTE, _fixup_lookup)
          for n in (1, 2, 3)),
        *(CmdExport("registered", registered, n, _ANY, _fixup_registered) for n in (1, 2, 3)),
        CmdExport("add_sock_hdr", add_sock_hdr, 1, REQUEST_ROUTE, _fixup_sock_hdr),
    ],
    stats=[
        StatExport("max_expires", no_reset=True, func=_static("max_expires")),
        StatExport("max_contacts", no_reset=True, func=_static("max_contacts")),
        StatExport("default_expire", no_reset=True, func=_static("default_expires")),
        StatExport("accepted_regs"),
        StatExport("rejected_regs"),
    ],
    deps=("usrloc", "signaling"),
    mod_init=_mod_init,
)
