"""group: group membership from a DB table (OpenSIPS 1.6 `group`).

`db_is_user_in(uri, group)` asks the `grp` table (version 3) whether the
user of `uri` belongs to `group`; `db_get_user_group(uri, $avp)` matches
`sip:user@domain` against the regular expressions of the `re_grp` table
(version 2, loaded once at start-up) and adds every matching group id to
the AVP. `uri` is "Request-URI", "To", "From", "Credentials" (the digest
username and realm of credentials an auth function accepted) or any text
with pseudo-variables that yields a URI; both arguments are formats.

Return codes as 1.6: db_is_user_in 1 member, -6 not a member, -5 query
failed, -1 no username or bad argument; db_get_user_group the number of
groups added, -1 none or error. The 1.5 names is_user_in/get_user_group
make start-up fail. aaa_url is accepted; the AAA function comes later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
)
from ..core.runtime import L_DBG, L_ERR, L_WARN
from ..db.api import (
    CAP_QUERY,
    DbBinding,
    DbConnection,
    DbError,
    ProcessConnection,
    check_table_version,
    connection_hooks,
    db_bind,
)
from ..lang.pv import PVError
from ..lang.pvars import AvpPV
from ..sip.errors import ParseError
from ..sip.uri import parse_uri
from .textops import RegexError, compile_posix

TABLE_VERSION = 3
RE_TABLE_VERSION = 2
MAX_URI_SIZE = 1024

# db_is_user_in codes (1.6 group.c)
ERR_QUERY = -5
NOT_MEMBER = -6


@dataclass(slots=True)
class GroupState:
    binding: DbBinding
    table: str
    user_column: str
    domain_column: str
    group_column: str
    use_domain: bool
    multiple_gid: bool
    # (compiled regex, group id) in 1.6's order: the last row read is tried first
    re_list: list[tuple[re.Pattern[str], int]] = field(default_factory=list)
    db: ProcessConnection = field(init=False)  # this process's connection

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)


# ---------------------------------------------------------------- user@domain


def authorized_cred(ctx: MsgContext) -> Any:
    """The credentials an auth function accepted: Authorization's first,
    then Proxy-Authorization's, as 1.6's get_authorized_cred is called."""
    from .auth.api import HDR_AUTHORIZATION, HDR_PROXYAUTH, marked

    m = marked(ctx, HDR_AUTHORIZATION) or marked(ctx, HDR_PROXYAUTH)
    return m.cred if m is not None else None


def cred_realm(cred: Any) -> str:
    """1.6 GET_REALM: the username's @domain when it has one, else the realm."""
    return cred.domain or cred.realm or ""


def _hf_type(text: str) -> int:
    low = text.lower()
    return {"request-uri": 1, "to": 2, "from": 3, "credentials": 4}.get(low, 0)


def get_username_domain(ctx: MsgContext, text: str) -> tuple[str, str] | None:
    """(user, domain) named by a db_is_user_in/db_get_user_group argument;
    None (logged) when it cannot be had."""
    kind = _hf_type(text)
    try:
        if kind == 1:
            uri = ctx.parsed_ruri()
        elif kind == 2:
            to = ctx.msg.to
            if to is None:
                raise ParseError("no To header")
            uri = to.uri
        elif kind == 3:
            fr = ctx.msg.from_
            if fr is None:
                raise ParseError("no From header")
            uri = fr.uri
        elif kind == 4:
            cred = authorized_cred(ctx)
            if cred is None:
                ctx.rt.log(L_ERR, "group: no authorized credentials found (error in scripts)")
                return None
            return cred.user or "", cred_realm(cred)
        else:
            uri = parse_uri(text)
    except (ParseError, ValueError, KeyError) as e:
        what = ("Request-URI", "To URI", "From URI", "", f"URI <{text}>")[kind - 1 if kind else 4]
        ctx.rt.log(L_ERR, f"group: failed to get {what}: {e}")
        return None
    return uri.user or "", uri.host or ""


# ---------------------------------------------------------------- functions


def _checked_user(ctx: MsgContext, uri_fmt: Any) -> tuple[str, str] | None:
    """(user, domain) of the argument, with a username; None (logged) otherwise."""
    ud = get_username_domain(ctx, uri_fmt.render(ctx))
    if ud is None:
        ctx.rt.log(L_ERR, "group: failed to get username@domain")
        return None
    if not ud[0]:
        ctx.rt.log(L_DBG, "group: no username part")
        return None
    return ud


def db_is_user_in(ctx: MsgContext, module: LoadedModule, uri_fmt: Any, grp_fmt: Any) -> int:
    """1 when the user of `uri` is in `group` (grp table), -6 when not."""
    st: GroupState | None = module.state
    if st is None:
        ctx.rt.log(L_ERR, "group: module not initialised")
        return -1
    group = grp_fmt.render(ctx)
    ud = _checked_user(ctx, uri_fmt)
    if ud is None:
        return -1
    user, domain = ud
    n = 3 if st.use_domain else 2
    try:
        res = st.db.get().query(
            st.table, (st.user_column, st.group_column, st.domain_column)[:n], None,
            (user, group, domain)[:n], (st.group_column,))
    except (DbError, OSError) as e:
        ctx.rt.log(L_ERR, f"group: failed to query database: {e}")
        return ERR_QUERY
    if not res.rows:
        ctx.rt.log(L_DBG, f"group: user is not in group '{group}'")
        return NOT_MEMBER
    ctx.rt.log(L_DBG, f"group: user is in group '{group}'")
    return 1


def db_get_user_group(ctx: MsgContext, module: LoadedModule, uri_fmt: Any, avp: AvpPV) -> int:
    """Add the id of every re_grp regex `sip:user@domain` matches to `avp`
    (the first only with multiple_gid=0); the count, or -1 for none."""
    st: GroupState | None = module.state
    if st is None:
        ctx.rt.log(L_ERR, "group: module not initialised")
        return -1
    ud = _checked_user(ctx, uri_fmt)
    if ud is None:
        return -1
    user, domain = ud
    if 4 + len(user) + 1 + len(domain) + 1 > MAX_URI_SIZE:
        ctx.rt.log(L_ERR, "group: URI to large!!")
        return -1
    target = f"sip:{user}@{domain}"
    ctx.rt.log(L_DBG, f"group: getting groups for <{target}>")
    n = 0
    for rx, gid in st.re_list:
        if rx.search(target) is None:
            continue
        ctx.rt.log(L_DBG, f"group: user matched to group {gid}!")
        try:
            avp.set(ctx, gid, "=")
        except PVError as e:
            ctx.rt.log(L_ERR, f"group: setting PV AVP failed: {e}")
            return -1
        n += 1
        if not st.multiple_gid:
            break
    return n if n else -1


# ---------------------------------------------------------------- start-up


def load_re(con: DbConnection, table: str, exp_column: str, gid_column: str
            ) -> list[tuple[re.Pattern[str], int]]:
    """The re_grp rows as (regex, gid), newest-read first as 1.6 keeps them.

    A NULL or non-text expression, a non-integer id or a bad regex is a
    start-up error (ValueError), as in 1.6.
    """
    res = con.query(table, (), None, (), (exp_column, gid_column))
    out: list[tuple[re.Pattern[str], int]] = []
    for exp, gid in res.rows:
        if isinstance(exp, bytes):
            exp = exp.decode("latin-1")
        if not isinstance(exp, str):
            raise ValueError(f"group: empty or non-string value for <{exp_column}>(re) column "
                             f"of table {table}")
        if isinstance(gid, bool) or not isinstance(gid, int):
            raise ValueError(f"group: empty or non-integer value for <{gid_column}>(gid) "
                             f"column of table {table}")
        try:
            rx = compile_posix(exp, icase=True, newline=True)
        except RegexError as e:
            raise ValueError(f"group: bad re {exp!r} in table {table}: {e}") from None
        out.append((rx, gid))
    out.reverse()
    return out


def _mod_init(module: LoadedModule) -> None:
    p = module.params
    rt = module.rt
    url = p.get("db_url")
    if url is None:
        rt.log(L_DBG, "group: db_url is null")
        return
    binding = db_bind(rt.registry, str(url))
    if not binding.caps & CAP_QUERY:
        raise ValueError(f"group: database module {binding.driver} does not implement "
                         "'query' function")
    st = GroupState(
        binding=binding,
        table=str(p.get("table")),
        user_column=str(p.get("user_column")),
        domain_column=str(p.get("domain_column")),
        group_column=str(p.get("group_column")),
        use_domain=bool(int(p.get("use_domain", 0))),
        multiple_gid=bool(int(p.get("multiple_gid", 1))),
    )
    re_table = p.get("re_table") or ""
    con = binding.connect()
    try:
        check_table_version(con, st.table, TABLE_VERSION)
        if re_table:
            check_table_version(con, str(re_table), RE_TABLE_VERSION)
            st.re_list = load_re(con, str(re_table), str(p.get("re_exp_column")),
                                 str(p.get("re_gid_column")))
            rt.log(L_DBG, f"group: {len(st.re_list)} rules were loaded")
    finally:
        con.close()
    if p.get("aaa_url") is not None:
        rt.log(L_WARN, "group: aaa_url is set but the AAA group check is not available yet")
    module.state = st


_child_init, _destroy = connection_hooks("group")


# ---------------------------------------------------------------- fixups


def _need_db(module: LoadedModule) -> None:
    if module.params.get("db_url") is None:
        raise FixupError("no database url (set modparam \"group\" \"db_url\")")


def _fixup_is_user_in(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    _need_db(module)
    return [module, env.compile_format(args[0]), env.compile_format(args[1])]


def _fixup_get_gid(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    _need_db(module)
    pv = env.compile_pv(args[1].strip())
    if not isinstance(pv, AvpPV):
        raise FixupError(f"bad AVP spec <{args[1]}>")
    return [module, env.compile_format(args[0]), pv]


def _obsolete(message: str):
    def fixup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
        raise FixupError(message)

    return fixup


def _never(ctx: MsgContext, *args: Any) -> int:  # the fixup refuses every call
    return -1


_OBS_IS_USER_IN = ("is_user_in is obsolete: use db_is_user_in (DB) or aaa_is_user_in (AAA)")
_OBS_GET_GROUP = "get_user_group has been renamed into db_get_user_group"
_RFBL = REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE

exports = ModuleExports(
    name="group",
    params=[
        ParamExport("aaa_url", str, None),
        ParamExport("db_url", str, None),
        ParamExport("table", str, "grp"),
        ParamExport("user_column", str, "username"),
        ParamExport("domain_column", str, "domain"),
        ParamExport("group_column", str, "grp"),
        ParamExport("use_domain", int, 0),
        ParamExport("re_table", str, None),
        ParamExport("re_exp_column", str, "reg_exp"),
        ParamExport("re_gid_column", str, "group_id"),
        ParamExport("multiple_gid", int, 1),
    ],
    cmds=[
        CmdExport("is_user_in", _never, 2, _RFBL, _obsolete(_OBS_IS_USER_IN)),
        CmdExport("get_user_group", _never, 2, _RFBL, _obsolete(_OBS_GET_GROUP)),
        CmdExport("db_is_user_in", db_is_user_in, 2, _RFBL, _fixup_is_user_in),
        CmdExport("db_get_user_group", db_get_user_group, 2, _RFBL, _fixup_get_gid),
    ],
    mod_init=_mod_init,
    child_init=_child_init,
    destroy=_destroy,
)
