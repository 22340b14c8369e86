"""auth_db: digest authentication against a DB table (OpenSIPS 1.6 `auth_db`).

`www_authorize(realm, table)` / `proxy_authorize(realm, table)` check the
Authorization / Proxy-Authorization credentials for `realm` ("" = the
To/From host, as auth derives it) against `table` (normally `subscriber`,
version 7), through the auth module's API:

* the row is looked up by `user_column` = the digest user (and, with
  `use_domain`, `domain_column` = the username's @domain, else the realm);
* `password_column` holds HA1 = MD5(user:realm:password), or with
  `calculate_ha1=1` the plain password; a `user@domain` digest username
  reads `password_column_2` (HA1B, MD5(user@domain:realm:password))
  unless calculate_ha1 is set;
* on success the `load_credentials` columns are copied into AVPs.

Returns 1 authorized, -1 unknown user, -2 wrong password, -3 stale nonce,
-4 no credentials for the realm, -5 error; 0 (stop) after a 400/500 reply
the module sent itself (malformed credentials, DB failure). ACK and
CANCEL are always authorized.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
)
from ..core.runtime import L_DBG, L_ERR, L_INFO
from ..db.api import (
    DbBinding,
    DbError,
    ProcessConnection,
    as_text,
    check_table_version,
    connection_hooks,
    db_bind,
)
from .auth.api import (
    AUTH_ERROR,
    DO_AUTHORIZATION,
    ERROR,
    HDR_AUTHORIZATION,
    HDR_PROXYAUTH,
    INVALID_PASSWORD,
    USER_UNKNOWN,
    AuthApi,
    bind_auth,
    send_resp,
)
from .auth.pvparam import param_env, parse_avp

TABLE_VERSION = 7
DEFAULT_RODB_URL = "mysql://opensipsro:opensipsro@localhost/opensips"
MESSAGE_500 = "Server Internal Error"
_TABLES_KEY = "auth_db.tables"  # tables named by the script, version-checked in mod_init


@dataclass(slots=True)
class CredAvp:
    """One load_credentials item: copy `column` into AVP `avp`."""

    avp: int | str
    column: str


@dataclass(slots=True)
class AuthDbState:
    api: AuthApi
    binding: DbBinding
    creds: list[CredAvp]
    user_column: str
    domain_column: str
    pass_column: str
    pass_column_2: str
    calc_ha1: bool
    use_domain: bool
    db: ProcessConnection = field(init=False)  # this process's connection

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)


# ---------------------------------------------------------------- load_credentials


def parse_credentials_list(text: str, env: Any) -> list[CredAvp]:
    """`[$avp(...)=]column` items separated by `;` (1.6 parse_aaa_avps).

    An empty item is an error, except after a trailing `;`. A column
    without an AVP goes to the string AVP of the same name. The list comes
    back in 1.6's order (reversed: 1.6 prepends each item).
    """
    out: list[CredAvp] = []
    if not text:
        return out
    items = text.split(";")
    if items[-1] == "":
        items.pop()
    for item in items:
        avp_text, eq, column = item.partition("=")
        if not eq:
            avp_text, column = "", item
        column = column.strip()
        if not column or (eq and not avp_text.strip()):
            raise ValueError(f'load_credentials: parse failed in "{text}" at "{item}"')
        if eq:
            avp = parse_avp(env, avp_text.strip(), "load_credentials")
        else:
            avp = column
        out.append(CredAvp(avp, column))
    out.reverse()
    return out


# ---------------------------------------------------------------- DB access


def get_ha1(st: AuthDbState, cred: Any, realm: str, table: str) -> tuple[str, tuple] | None:
    """(HA1, the row) for the digest username, None when no row matches.

    Raises DbError when the query fails.
    """
    domain = cred.domain
    column = st.pass_column_2 if (domain and not st.calc_ha1) else st.pass_column
    keys = [st.user_column, st.domain_column]
    values = [cred.user or "", domain if domain else realm]
    n = 2 if st.use_domain else 1
    res = st.db.get().query(table, keys[:n], None, values[:n],
                            [column] + [c.column for c in st.creds])
    if not res.rows:
        return None
    row = res.rows[0]
    secret = as_text(row[0])
    if st.calc_ha1:
        return st.api.calc_ha1(cred.username or "", realm, secret), row
    return secret, row


def generate_avps(st: AuthDbState, ctx: MsgContext, row: Sequence[Any]) -> None:
    """Copy the load_credentials columns of the row into AVPs (NULL and
    empty strings skipped; strings and integers only)."""
    for i, c in enumerate(st.creds, 1):
        value = row[i]
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            if isinstance(value, bytes | bytearray):
                value = bytes(value).decode("latin-1")
                if not value:
                    continue
            else:
                ctx.rt.log(L_ERR, f"auth_db: column `{c.column}' has unsupported type "
                                  f"{type(value).__name__}: only string or int columns "
                                  "are supported by load_credentials")
                continue
        ctx.avps.add(c.avp, value)
        ctx.rt.log(L_DBG, f"auth_db: set AVP {c.avp!r} = {value!r}")


def authorize(ctx: MsgContext, module: LoadedModule, realm_fmt: Any, table: str,
              key: str) -> int:
    st: AuthDbState | None = module.state
    if st is None:
        ctx.rt.log(L_ERR, "auth_db: module not initialised")
        return AUTH_ERROR
    realm = realm_fmt.render(ctx)
    code, realm, m = st.api.pre_auth(ctx, realm, key)
    if code != DO_AUTHORIZATION or m is None:
        return code
    try:
        found = get_ha1(st, m.cred, realm, table)
    except (DbError, OSError) as e:
        ctx.rt.log(L_ERR, f"auth_db: failed to query database: {e}")
        send_resp(ctx, 500, MESSAGE_500)
        return ERROR
    if found is None:
        ctx.rt.log(L_DBG, f"auth_db: no result for user '{m.cred.user}@{realm}'")
        return USER_UNKNOWN
    ha1, row = found
    if not st.api.check_response(ctx, m.cred, ha1):
        return INVALID_PASSWORD
    code = st.api.post_auth(ctx, m)
    if code == 1:
        generate_avps(st, ctx, row)
    return code


def www_authorize(ctx: MsgContext, module: LoadedModule, realm_fmt: Any, table: str) -> int:
    """www_authorize(realm, table): check Authorization credentials."""
    return authorize(ctx, module, realm_fmt, table, HDR_AUTHORIZATION)


def proxy_authorize(ctx: MsgContext, module: LoadedModule, realm_fmt: Any, table: str) -> int:
    """proxy_authorize(realm, table): check Proxy-Authorization credentials."""
    return authorize(ctx, module, realm_fmt, table, HDR_PROXYAUTH)


# ---------------------------------------------------------------- fixup and init


_TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*\Z")


def _fixup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """realm: a format; table: a literal name (its version is checked at start)."""
    table = args[1].strip()
    if not _TABLE_RE.match(table):
        raise FixupError(f'invalid table name "{args[1]}"')
    module.params.setdefault(_TABLES_KEY, set()).add(table)
    return [module, env.compile_format(args[0]), table]


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    p = module.params
    rt.log(L_INFO, "auth_db: initializing...")
    registry = rt.registry
    binding = db_bind(registry, str(p.get("db_url") or DEFAULT_RODB_URL))
    api = bind_auth(registry)
    if registry is not None and "signaling" not in registry:
        raise ValueError('can\'t load signaling functions: load the signaling module '
                         '(loadmodule "signaling.so")')
    creds = parse_credentials_list(str(p.get("load_credentials") or ""), param_env(rt))
    tables = sorted(p.get(_TABLES_KEY, ()))
    if tables and not int(p.get("skip_version_check", 0)):
        con = binding.connect()
        try:
            for table in tables:
                check_table_version(con, table, TABLE_VERSION)
        finally:
            con.close()
    module.state = AuthDbState(
        api=api,
        binding=binding,
        creds=creds,
        user_column=str(p.get("user_column")),
        domain_column=str(p.get("domain_column")),
        pass_column=str(p.get("password_column")),
        pass_column_2=str(p.get("password_column_2")),
        calc_ha1=bool(int(p.get("calculate_ha1", 0))),
        use_domain=bool(int(p.get("use_domain", 0))),
    )


_child_init, _destroy = connection_hooks("auth_db")


exports = ModuleExports(
    name="auth_db",
    params=[
        ParamExport("db_url", str, DEFAULT_RODB_URL),
        ParamExport("user_column", str, "username"),
        ParamExport("domain_column", str, "domain"),
        ParamExport("password_column", str, "ha1"),
        ParamExport("password_column_2", str, "ha1b"),
        ParamExport("calculate_ha1", int, 0),
        ParamExport("use_domain", int, 0),
        ParamExport("load_credentials", str, "rpid"),
        ParamExport("skip_version_check", int, 0),
    ],
    cmds=[
        CmdExport("www_authorize", www_authorize, 2, REQUEST_ROUTE, _fixup),
        CmdExport("proxy_authorize", proxy_authorize, 2, REQUEST_ROUTE, _fixup),
    ],
    deps=("auth", "signaling"),
    mod_init=_mod_init,
    child_init=_child_init,
    destroy=_destroy,
)
