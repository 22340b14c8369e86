"""Module parameters that name pseudo-variables (rpid_avp, username_spec,
auth_db's load_credentials), resolved in mod_init as 1.6 does with
pv_parse_spec: against the core PV table, the modules' PVs and the
script's avp_aliases."""

from __future__ import annotations

from typing import Any

from ...lang.compiler import parse_avp_aliases
from ...lang.env import CompileEnv, CompileError
from ...lang.pv import PV
from ...lang.pvars import AvpPV, core_pv_table


def param_env(rt: Any) -> CompileEnv:
    """A compile environment like the script's, for PV text in modparams."""
    table = core_pv_table()
    registry = getattr(rt, "registry", None)
    for mod in registry.modules.values() if registry is not None else ():
        for pvx in mod.exports.pvars:
            table.add(pvx.name, lambda spec, env, make=pvx.make, m=mod: make(spec, m))
    config = getattr(rt, "config", None) or {}
    aliases: dict[str, int | str] = {}
    raw = config.get("avp_aliases")
    for text in raw if isinstance(raw, list) else [raw] if raw else []:
        aliases.update(parse_avp_aliases(str(text)))
    return CompileEnv(pv_table=table, config=dict(config), registry=registry,
                      avp_aliases=aliases)


def parse_pv(env: CompileEnv, text: str, what: str) -> PV:
    """A PV for modparam `what`; ValueError naming the parameter when bad."""
    try:
        return env.compile_pv(text.strip())
    except CompileError as e:
        raise ValueError(f"invalid {what} {text!r}: {e.message}") from None


def parse_avp(env: CompileEnv, text: str, what: str) -> int | str:
    """The AVP name a `$avp(...)` parameter gives (a fixed name only)."""
    pv = parse_pv(env, text, what)
    if not isinstance(pv, AvpPV) or pv.name is None or pv.index is not None:
        raise ValueError(f"malformed or non AVP {text!r} in {what}")
    return pv.name
