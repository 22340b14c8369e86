"""The DB checks of the `uri` module (1.6 merged the old uri_db into it).

Helper code, not a module of its own: `uri.py` puts these functions,
statistics and hooks in its export table.

* `db_check_to()` / `db_check_from()`: the To/From user against the
  credentials an auth function accepted. Without the uri table the user
  must equal the digest username (case-insensitive); with
  `use_uri_table=1` a `uri` row (username = digest user, domain = its
  realm, uri_user = the URI user) must exist. 1 ok, -1 internal error,
  -2 no authorized credentials, -4 URI without user, -8 DB error,
  -9 spoofed (uri table), -10 no match.
* `db_does_uri_exist()`: the R-URI user (and host with use_domain) is in
  `db_table` (`subscriber`, or `uri` with use_uri_table, by uri_user).
  1 yes, -5 no, -4 query failed, -1 bad R-URI.
* `db_get_auth_id(uri, $auth_user, $auth_realm)`: the username and domain
  of the row for the URI (an AVP or `$var` each). 1 found, -4 not found,
  -8 DB error, -3 non-text columns, -1 bad argument.

Statistics `positive checks` (sic) and `negative_checks` count the
db_check_to/from outcomes. The table version (subscriber 7, uri 2) is
checked at start-up whenever db_url is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    LOCAL_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    StatExport,
)
from ..core.runtime import L_DBG, L_ERR, L_WARN
from ..db.api import (
    CAP_QUERY,
    DbBinding,
    DbError,
    ProcessConnection,
    check_table_version,
    connection_hooks,
    db_bind,
)
from ..lang.pv import PVError
from ..lang.pvars import AvpPV, VarPV
from ..sip.errors import ParseError
from ..sip.uri import Uri, parse_uri

URI_TABLE_VERSION = 2
SUBSCRIBER_TABLE_VERSION = 7

OK = 1
ERR_INTERNAL = -1
ERR_CREDENTIALS = -2
ERR_DBUSE = -3
ERR_USERNOTFOUND = -4
ERR_DBEMPTYRES = -5
ERR_DBQUERY = -8
ERR_SPOOFEDUSER = -9
ERR_NOMATCH = -10

STAT_POSITIVE = "positive checks"
STAT_NEGATIVE = "negative_checks"
STATS = [StatExport(STAT_POSITIVE), StatExport(STAT_NEGATIVE)]

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(slots=True)
class UriDbState:
    binding: DbBinding | None
    table: str
    user_column: str
    domain_column: str
    uriuser_column: str
    use_uri_table: bool
    use_domain: bool
    positive: Any = None  # Stat handles, None without statistics
    negative: Any = None
    db: ProcessConnection = field(init=False)  # this process's connection

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)

    def count(self, ok: bool) -> None:
        h = self.positive if ok else self.negative
        if h is not None:
            h.inc()


def _state(ctx: MsgContext, module: LoadedModule) -> UriDbState | None:
    st = module.state
    if not isinstance(st, UriDbState):
        ctx.rt.log(L_ERR, "uri: module not initialised")
        return None
    return st


def _authorized_cred(ctx: MsgContext) -> Any:
    """Authorization's accepted credentials, else Proxy-Authorization's
    (the order of 1.6's get_authorized_cred calls)."""
    from .auth.api import HDR_AUTHORIZATION, HDR_PROXYAUTH, marked

    m = marked(ctx, HDR_AUTHORIZATION) or marked(ctx, HDR_PROXYAUTH)
    return m.cred if m is not None else None


# ---------------------------------------------------------------- db_check_to/from


def check_username(ctx: MsgContext, st: UriDbState, uri: Uri) -> int:
    cred = _authorized_cred(ctx)
    if cred is None:
        ctx.rt.log(L_ERR, "uri: no authorized credentials found (error in scripts); call "
                          "{www,proxy}_authorize before calling db_check_* functions!")
        st.count(False)
        return ERR_CREDENTIALS
    if not uri.user:
        ctx.rt.log(L_ERR, "uri: username not found in URI")
        return ERR_USERNOTFOUND
    digest_user = cred.user or ""
    if st.use_uri_table:
        realm = cred.domain or cred.realm or ""
        try:
            res = st.db.get().query(
                st.table, (st.user_column, st.domain_column, st.uriuser_column), None,
                (digest_user, realm, uri.user), (st.user_column,))
        except (DbError, OSError) as e:
            ctx.rt.log(L_ERR, f"uri: error while querying database: {e}")
            return ERR_DBQUERY
        if not res.rows:
            ctx.rt.log(L_DBG, f"uri: From/To user '{uri.user}' is spoofed")
            st.count(False)
            return ERR_SPOOFEDUSER
        ctx.rt.log(L_DBG, f"uri: From/To user '{uri.user}' and auth user match")
        st.count(True)
        return OK
    if len(uri.user) == len(digest_user) and uri.user.translate(_FOLD) == digest_user.translate(_FOLD):
        ctx.rt.log(L_DBG, "uri: digest username and URI username match")
        st.count(True)
        return OK
    ctx.rt.log(L_DBG, "uri: digest username and URI username do NOT match")
    st.count(False)
    return ERR_NOMATCH


def _check_header_user(ctx: MsgContext, module: LoadedModule, attr: str, name: str) -> int:
    """db_check_to / db_check_from: the user of the To or From URI (`attr`
    of the message) is the authorized user, or one of its uri-table names."""
    st = _state(ctx, module)
    if st is None:
        return ERR_INTERNAL
    try:
        hdr = getattr(ctx.msg, attr)
        if hdr is None:
            raise ParseError(f"no {name} header")
        uri = hdr.uri
    except (ParseError, ValueError, KeyError) as e:
        ctx.rt.log(L_ERR, f"uri: error while parsing {name} header URI: {e}")
        return ERR_INTERNAL
    return check_username(ctx, st, uri)


def db_check_to(ctx: MsgContext, module: LoadedModule) -> int:
    """The To user is the authorized user (or one of its uri-table names)."""
    return _check_header_user(ctx, module, "to", "To")


def db_check_from(ctx: MsgContext, module: LoadedModule) -> int:
    """The From user is the authorized user (or one of its uri-table names)."""
    return _check_header_user(ctx, module, "from_", "From")


# ---------------------------------------------------------------- db_does_uri_exist


def db_does_uri_exist(ctx: MsgContext, module: LoadedModule) -> int:
    """The user of the current R-URI is in db_table (1) or not (-5)."""
    st = _state(ctx, module)
    if st is None:
        return ERR_INTERNAL
    try:
        uri = ctx.parsed_ruri()
    except ParseError as e:
        ctx.rt.log(L_ERR, f"uri: error while parsing URI: {e}")
        return ERR_INTERNAL
    first = st.uriuser_column if st.use_uri_table else st.user_column
    n = 2 if st.use_domain else 1
    try:
        res = st.db.get().query(st.table, (first, st.domain_column)[:n], None,
                                (uri.user or "", uri.host or "")[:n], (first,))
    except (DbError, OSError) as e:
        ctx.rt.log(L_ERR, f"uri: error while querying database: {e}")
        return ERR_USERNOTFOUND
    if not res.rows:
        ctx.rt.log(L_DBG, "uri: user in request uri does not exist")
        return ERR_DBEMPTYRES
    ctx.rt.log(L_DBG, "uri: user in request uri does exist")
    return OK


# ---------------------------------------------------------------- db_get_auth_id


def db_get_auth_id(ctx: MsgContext, module: LoadedModule, uri_fmt: Any, user_pv: Any,
                   realm_pv: Any) -> int:
    """Write the auth username and realm of the URI's row into two PVs."""
    st = _state(ctx, module)
    if st is None:
        return ERR_INTERNAL
    text = uri_fmt.render(ctx)
    if not text:
        ctx.rt.log(L_WARN, "uri: cannot get string for value")
        return -1
    try:
        uri = parse_uri(text)
    except ParseError:
        uri = None
    if uri is None or not uri.user:
        ctx.rt.log(L_ERR, f"uri: first parameter must be a URI (val = '{text}')")
        return -1
    first = st.uriuser_column if st.use_uri_table else st.user_column
    n = 2 if st.use_domain else 1
    try:
        res = st.db.get().query(st.table, (first, st.domain_column)[:n], None,
                                (uri.user, uri.host or "")[:n],
                                (st.user_column, st.domain_column))
    except (DbError, OSError) as e:
        ctx.rt.log(L_ERR, f"uri: error while querying database: {e}")
        return ERR_DBQUERY
    if not res.rows:
        ctx.rt.log(L_DBG, "uri: user in given uri is not local")
        return ERR_USERNOTFOUND
    if len(res.rows) > 1:
        ctx.rt.log(L_WARN, "uri: multiple entries are matching the given uri; "
                           "consider setting the 'use_domain' param")
    user, realm = res.rows[0]
    for value, col in ((user, st.user_column), (realm, st.domain_column)):
        if not isinstance(value, str):
            ctx.rt.log(L_ERR, f"uri: database '{col}' column is not of type string")
            return ERR_DBUSE
    try:
        user_pv.set(ctx, user, "=")
        realm_pv.set(ctx, realm, "=")
    except PVError as e:
        ctx.rt.log(L_ERR, f"uri: cannot set the result: {e}")
        return -1
    return OK


# ---------------------------------------------------------------- fixups


def _has_db_url(module: LoadedModule) -> bool:
    return bool(module.params.get("db_url"))


_NO_DB = "configuration error - no database URL is configured (modparam \"uri\" \"db_url\")"


def fixup_does_uri_exist(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    if not _has_db_url(module):
        raise FixupError(_NO_DB)
    return [module]


def fixup_check(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """db_check_to/from need the DB only with use_uri_table."""
    if int(module.params.get("use_uri_table") or 0) and not _has_db_url(module):
        raise FixupError(_NO_DB)
    return [module]


def fixup_get_auth_id(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    if not _has_db_url(module):
        raise FixupError("configuration error - 'db_get_auth_id()' requires a configured "
                         "database backend")
    if not args[0]:
        raise FixupError("param 1 is empty string!")
    out: list[Any] = [module, env.compile_format(args[0])]
    for text in args[1:]:
        pv = env.compile_pv(text.strip())
        if not isinstance(pv, AvpPV | VarPV):
            raise FixupError(f"return must be an AVP or SCRIPT VAR! ({text})")
        out.append(pv)
    return out


_RL = REQUEST_ROUTE | LOCAL_ROUTE

CMDS = [
    CmdExport("db_check_to", db_check_to, 0, REQUEST_ROUTE, fixup_check),
    CmdExport("db_check_from", db_check_from, 0, REQUEST_ROUTE, fixup_check),
    CmdExport("db_does_uri_exist", db_does_uri_exist, 0, _RL, fixup_does_uri_exist),
    CmdExport("db_get_auth_id", db_get_auth_id, 3, _RL, fixup_get_auth_id),
]


# ---------------------------------------------------------------- hooks


def mod_init(module: LoadedModule) -> None:
    """Bind the DB and check the table's version (when db_url is set)."""
    p = module.params
    rt = module.rt
    use_uri_table = bool(int(p.get("use_uri_table") or 0))
    url = p.get("db_url")
    table = p.get("db_table") or ("uri" if use_uri_table else "subscriber")
    binding = None
    if url is not None and str(url) == "" and use_uri_table:
        raise ValueError("uri: configuration error - no database URL, but use_uri_table is set!")
    if url:
        binding = db_bind(rt.registry, str(url))
        if not binding.caps & CAP_QUERY:
            raise ValueError(f"uri: database module {binding.driver} does not implement "
                             "the 'query' function")
        con = binding.connect()
        try:
            check_table_version(con, str(table), URI_TABLE_VERSION if use_uri_table
                                else SUBSCRIBER_TABLE_VERSION)
        finally:
            con.close()
    st = UriDbState(
        binding=binding,
        table=str(table),
        user_column=str(p.get("user_column")),
        domain_column=str(p.get("domain_column")),
        uriuser_column=str(p.get("uriuser_column")),
        use_uri_table=use_uri_table,
        use_domain=bool(int(p.get("use_domain") or 0)),
    )
    stats = getattr(rt, "stats", None)
    if stats is not None:
        st.positive = stats.stat("uri", STAT_POSITIVE)
        st.negative = stats.stat("uri", STAT_NEGATIVE)
    module.state = st


child_init, destroy = connection_hooks("uri")
