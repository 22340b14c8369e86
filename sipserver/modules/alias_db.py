"""alias_db: aliases kept in a DB table (OpenSIPS 1.6 `alias_db`).

`alias_db_lookup(table[, flags])` looks the current R-URI's user@host up
in the `alias_username`/`alias_domain` columns of `table` (normally
`dbaliases`) and rewrites the R-URI to `sip:username@domain` of the first
row; with `append_branches=1` every further row becomes a branch (q=0, as
1.6 appends them). `alias_db_find(table, in_pv, out_pv[, flags])` does the
same lookup for the URI in `in_pv` and writes the result(s) to `out_pv`,
leaving the R-URI alone. `table` is a format.

Flags: `d` match the user part only (no domain), `r` reverse lookup
(canonical user -> alias). `domain_prefix` is stripped from the looked-up
host when the host starts with it. Returns 1 found, -1 not found or
error. 1.6 dropped the `use_domain` parameter (flag `d` replaces it) and
does not check the table's version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.context import Branch, MsgContext
from ..core.exports import (
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
)
from ..core.runtime import L_DBG, L_ERR, L_INFO
from ..db.api import (
    CAP_QUERY,
    DbBinding,
    DbError,
    ProcessConnection,
    as_text,
    connection_hooks,
    db_bind,
)
from ..lang.pv import PVError
from ..sip.errors import ParseError
from ..sip.uri import Uri, parse_uri

DEFAULT_RODB_URL = "mysql://opensipsro:opensipsro@localhost/opensips"
MIN_Q = 0  # the q 1.6 gives the branches it appends

FLAG_REVERT = 1 << 0
FLAG_NO_DOMAIN = 1 << 1


@dataclass(slots=True)
class AliasState:
    binding: DbBinding
    user_column: str
    domain_column: str
    alias_user_column: str
    alias_domain_column: str
    domain_prefix: str
    append_branches: bool
    db: ProcessConnection = field(init=False)  # this process's connection

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)


SetAlias = Callable[[MsgContext, str, int], bool]


def alias_db_query(ctx: MsgContext, st: AliasState, table: str, uri: Uri, flags: int,
                   set_alias: SetAlias) -> int:
    """Look `uri` up in `table` and hand each result URI to `set_alias`."""
    if flags & FLAG_REVERT:  # canonical user -> alias
        keys = (st.user_column, st.domain_column)
        cols = (st.alias_user_column, st.alias_domain_column)
    else:
        keys = (st.alias_user_column, st.alias_domain_column)
        cols = (st.user_column, st.domain_column)
    values: list[str] = [uri.user or ""]
    if not flags & FLAG_NO_DOMAIN:
        host = uri.host or ""
        prefix = st.domain_prefix
        if prefix and len(prefix) < len(host) and host[:len(prefix)].lower() == prefix.lower():
            host = host[len(prefix):]
        values.append(host)
    try:
        res = st.db.get().query(table, keys[:len(values)], None, values, cols)
    except (DbError, OSError) as e:
        ctx.rt.log(L_ERR, f"alias_db: failed to query database: {e}")
        return -1
    if not res.rows or res.rows[0][0] is None:
        ctx.rt.log(L_DBG, "alias_db: no alias found for R-URI")
        return -1
    for i, (user, domain) in enumerate(res.rows):
        alias = f"sip:{as_text(user)}@{as_text(domain)}"
        ctx.rt.log(L_DBG, f"alias_db: new URI [{i}] is [{alias}]")
        if not set_alias(ctx, alias, i):
            ctx.rt.log(L_ERR, "alias_db: error while setting alias")
            return -1
    return 1


def _table(ctx: MsgContext, fmt: Any) -> str | None:
    table = fmt.render(ctx)
    if not table:
        ctx.rt.log(L_ERR, "alias_db: invalid table parameter")
        return None
    return table


# ---------------------------------------------------------------- functions


def alias_db_lookup(ctx: MsgContext, module: LoadedModule, table_fmt: Any, flags: int = 0) -> int:
    """Rewrite the R-URI to the canonical URI of its alias (1 found, -1 not)."""
    st: AliasState | None = module.state
    if st is None:
        ctx.rt.log(L_ERR, "alias_db: module not initialised")
        return -1
    try:
        uri = ctx.parsed_ruri()
    except ParseError as e:
        ctx.rt.log(L_ERR, f"alias_db: bad R-URI: {e}")
        return -1
    table = _table(ctx, table_fmt)
    if table is None:
        return -1

    def to_ruri(c: MsgContext, alias: str, no: int) -> bool:
        if no == 0:
            c.set_ruri(alias)
            return True
        if not st.append_branches:
            return True
        if c.branches_full("alias_db"):
            return False
        c.branches.append(Branch(alias, None, None, MIN_Q, 0, None))
        return True

    return alias_db_query(ctx, st, table, uri, flags, to_ruri)


def alias_db_find(ctx: MsgContext, module: LoadedModule, table_fmt: Any, in_pv: Any,
                  out_pv: Any, flags: int = 0) -> int:
    """Look up the URI in `in_pv`; the result goes to `out_pv` (all results,
    the first on top, with append_branches)."""
    st: AliasState | None = module.state
    if st is None:
        ctx.rt.log(L_ERR, "alias_db: module not initialised")
        return -1
    try:
        value = in_pv.get(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"alias_db: failed to get PV value: {e}")
        return -1
    if value is None:
        ctx.rt.log(L_ERR, "alias_db: PV vals is not string")
        return -1
    text = str(value)
    try:
        uri = parse_uri(text)
    except ParseError:
        ctx.rt.log(L_ERR, f"alias_db: failed to parse uri {text}")
        return -1
    table = _table(ctx, table_fmt)
    if table is None:
        return -1

    def to_pv(c: MsgContext, alias: str, no: int) -> bool:
        if no and not st.append_branches:
            return True
        try:
            out_pv.set(c, alias, "=" if no else ":=")
        except PVError as e:
            c.rt.log(L_ERR, f"alias_db: setting PV AVP failed: {e}")
            return False
        return True

    return alias_db_query(ctx, st, table, uri, flags, to_pv)


# ---------------------------------------------------------------- fixups and init


def parse_flags(text: str) -> int:
    """`r`/`R` reverse, `d`/`D` no domain; anything else is a start-up error."""
    flags = 0
    for c in text:
        if c in "rR":
            flags |= FLAG_REVERT
        elif c in "dD":
            flags |= FLAG_NO_DOMAIN
        else:
            raise FixupError(f"unsupported flag '{c}'")
    return flags


def _fixup_lookup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    out: list[Any] = [module, env.compile_format(args[0])]
    if len(args) > 1:
        out.append(parse_flags(args[1]))
    return out


def _fixup_find(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    in_pv = env.compile_pv(args[1].strip())
    out_pv = env.compile_pv(args[2].strip())
    if not out_pv.writable:
        raise FixupError(f"{args[2]} (param 3) cannot be written")
    out: list[Any] = [module, env.compile_format(args[0]), in_pv, out_pv]
    if len(args) > 3:
        out.append(parse_flags(args[3]))
    return out


def _mod_init(module: LoadedModule) -> None:
    p = module.params
    rt = module.rt
    rt.log(L_INFO, "alias_db: initializing...")
    binding = db_bind(rt.registry, str(p.get("db_url") or DEFAULT_RODB_URL))
    if not binding.caps & CAP_QUERY:
        raise ValueError(f"alias_db: database module {binding.driver} does not provide "
                         "all functions needed by alias_db module")
    module.state = AliasState(
        binding=binding,
        user_column=str(p.get("user_column")),
        domain_column=str(p.get("domain_column")),
        alias_user_column=str(p.get("alias_user_column")),
        alias_domain_column=str(p.get("alias_domain_column")),
        domain_prefix=str(p.get("domain_prefix") or ""),
        append_branches=bool(int(p.get("append_branches", 0))),
    )


_child_init, _destroy = connection_hooks("alias_db")


_RF = REQUEST_ROUTE | FAILURE_ROUTE
_ALL5 = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE

exports = ModuleExports(
    name="alias_db",
    params=[
        ParamExport("db_url", str, DEFAULT_RODB_URL),
        ParamExport("user_column", str, "username"),
        ParamExport("domain_column", str, "domain"),
        ParamExport("alias_user_column", str, "alias_username"),
        ParamExport("alias_domain_column", str, "alias_domain"),
        ParamExport("domain_prefix", str, None),
        ParamExport("append_branches", int, 0),
    ],
    cmds=[
        CmdExport("alias_db_lookup", alias_db_lookup, 1, _RF, _fixup_lookup),
        CmdExport("alias_db_lookup", alias_db_lookup, 2, _RF, _fixup_lookup),
        CmdExport("alias_db_find", alias_db_find, 3, _ALL5, _fixup_find),
        CmdExport("alias_db_find", alias_db_find, 4, _ALL5, _fixup_find),
    ],
    mod_init=_mod_init,
    child_init=_child_init,
    destroy=_destroy,
)
