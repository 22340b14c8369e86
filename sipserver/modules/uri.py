"""uri: URI checks (OpenSIPS 1.6 module `uri`), the functions without a DB.

`has_totag()`, `is_user(name)`, `uri_param(name[, value])`,
`add_uri_param("name=value")`, `tel2sip()`, `is_uri_user_e164(pv)`, plus the
1.6 obsolete names that make start-up fail with a hint. The DB checks
(db_check_to/from, db_does_uri_exist, db_get_auth_id) live in `uri_db.py`;
the aaa_* functions come with the AAA layer.

`is_user` needs the credentials an auth function authorized: the auth
module records them with `mark_authorized(ctx, credentials)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
)
from ..core.runtime import L_DBG, L_ERR
from ..lang.pv import PVError
from ..sip.errors import ParseError
from ..sip.uri import Uri, parse_uri
from . import uri_db

MAX_URI_SIZE = 1024
_AUTHORIZED_KEY = "auth.authorized"


def mark_authorized(ctx: MsgContext, credentials: Any) -> None:
    """Record the credentials www/proxy_authorize accepted (1.6 sets
    `authorized` on the parsed header); is_user() reads them."""
    ctx.msg._cache[_AUTHORIZED_KEY] = credentials


def authorized_credentials(ctx: MsgContext) -> Any:
    """The credentials an auth function authorized for this message, or None."""
    return ctx.msg._cache.get(_AUTHORIZED_KEY)


def _current_ruri(ctx: MsgContext) -> Uri | None:
    """The parsed current R-URI (rewritten or as received); None if unparsable."""
    try:
        return ctx.parsed_ruri()
    except ParseError:
        return None


# ---------------------------------------------------------------- functions


def has_totag(ctx: MsgContext) -> int:
    """1 when the To header has a (non-empty) tag."""
    try:
        tag = ctx.msg.to.tag
    except ParseError:
        ctx.rt.log(L_ERR, "uri: To parsing failed")
        return -1
    return 1 if tag else -1


def is_user(ctx: MsgContext, name: str) -> int:
    """1 when the authorized digest username (its user part) is exactly `name`."""
    cred = authorized_credentials(ctx)
    if cred is None:
        ctx.rt.log(L_ERR, "uri: no authorized credentials found (error in scripts); "
                          "call {www,proxy}_authorize before calling is_user function")
        return -1
    user = cred.user
    if not user:
        return -1
    return 1 if user == name else -1


def uri_param(ctx: MsgContext, name: str, value: str | None = None) -> int:
    """1 when the R-URI has parameter `name` without a value (or with `value`).

    Names and values compare case-sensitively, as 1.6 does; only the first
    parameter of that name counts.
    """
    uri = _current_ruri(ctx)
    if uri is None:
        ctx.rt.log(L_ERR, "uri: ruri parsing failed")
        return -1
    for pname, pvalue in uri.params:
        if pname != name:
            continue
        if value is not None:
            return 1 if (pvalue or "") == value else -1
        return 1 if not pvalue else -1
    return -1


def add_uri_param(ctx: MsgContext, param: str) -> int:
    """Append `;param` to the R-URI (before its `?headers` when it has some)."""
    if not param:
        return 1
    uri = _current_ruri(ctx)
    if uri is None:
        ctx.rt.log(L_ERR, "uri: ruri parsing failed")
        return -1
    cur = ctx.ruri
    if uri.headers is None:
        new = f"{cur};{param}"
    else:
        q = cur.rfind("?")
        new = f"{cur[:q]};{param}{cur[q:]}"
    if len(new) > MAX_URI_SIZE:
        ctx.rt.log(L_ERR, "uri: new ruri too long")
        return -1
    ctx.set_ruri(new)
    return 1


def tel2sip(ctx: MsgContext) -> int:
    """tel:NUMBER R-URI -> sip:NUMBER@<From host>;user=phone; 1 also when not tel."""
    ruri = ctx.ruri
    if len(ruri) < 4 or ruri[:4].lower() != "tel:":
        return 1
    try:
        from_host = ctx.msg.from_.uri.host
    except (ParseError, AttributeError):
        ctx.rt.log(L_ERR, "uri: parsing From header failed")
        return -1
    ctx.set_ruri(f"sip:{ruri[4:]}@{from_host};user=phone")
    return 1


def _e164(user: str | None) -> bool:
    return bool(user) and 2 < len(user) < 17 and user[0] == "+" and user[1:].isdigit() and user.isascii()


def is_uri_user_e164(ctx: MsgContext, pv: Any) -> int:
    """1 when the user part of the URI in `pv` is `+` and 2..15 digits."""
    try:
        value = pv.get(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"uri: failed to get pseudo variable value: {e}")
        return -1
    if not isinstance(value, str):
        ctx.rt.log(L_ERR, "uri: pseudo variable value is not string")
        return -1
    if not value:
        ctx.rt.log(L_DBG, "uri: missing uri")
        return -1
    try:
        uri = parse_uri(value)
    except ParseError:
        ctx.rt.log(L_ERR, "uri: parsing URI failed")
        return -1
    return 1 if _e164(uri.user) else -1


# ---------------------------------------------------------------- fixups


def _fixup_pv(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [env.compile_pv(args[0])]


def _obsolete(message: str):
    def fixup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
        raise FixupError(message)

    return fixup


def _never(ctx: MsgContext, *args: Any) -> int:  # the fixup refuses every call
    return -1


_OBS_RENAMED = ('obsolete function: "check_to", "check_from", "does_uri_exist", "get_auth_id" '
                'have been renamed with the "db_" prefix')
_OBS_EXIST = ("does_uri_exist is obsolete: use db_does_uri_exist (DB) or "
              "aaa_does_uri_exist (AAA)")
_OBS_USER = "does_uri_user_exist has been renamed into aaa_does_uri_user_exist"

_RL = REQUEST_ROUTE | LOCAL_ROUTE

exports = ModuleExports(
    name="uri",
    params=[
        ParamExport("aaa_url", str, None),
        ParamExport("db_url", str, None),
        ParamExport("db_table", str, None),
        ParamExport("user_column", str, "username"),
        ParamExport("domain_column", str, "domain"),
        ParamExport("uriuser_column", str, "uri_user"),
        ParamExport("use_uri_table", int, 0),
        ParamExport("use_domain", int, 0),
        ParamExport("service_type", int, -1),
        ParamExport("use_sip_uri_host", int, 0),
    ],
    cmds=[
        CmdExport("check_to", _never, 0, REQUEST_ROUTE, _obsolete(_OBS_RENAMED)),
        CmdExport("check_from", _never, 0, REQUEST_ROUTE, _obsolete(_OBS_RENAMED)),
        CmdExport("does_uri_exist", _never, 0, _RL, _obsolete(_OBS_EXIST)),
        CmdExport("does_uri_exist", _never, 1, _RL, _obsolete(_OBS_EXIST)),
        CmdExport("get_auth_id", _never, 3, _RL, _obsolete(_OBS_RENAMED)),
        CmdExport("does_uri_user_exist", _never, 0, _RL, _obsolete(_OBS_USER)),
        CmdExport("does_uri_user_exist", _never, 1, _RL, _obsolete(_OBS_USER)),
        CmdExport("is_user", is_user, 1, _RL),
        CmdExport("has_totag", has_totag, 0, _RL),
        CmdExport("uri_param", uri_param, 1, _RL),
        CmdExport("uri_param", uri_param, 2, _RL),
        CmdExport("add_uri_param", add_uri_param, 1, REQUEST_ROUTE),
        CmdExport("tel2sip", tel2sip, 0, REQUEST_ROUTE),
        CmdExport("is_uri_user_e164", is_uri_user_e164, 1, REQUEST_ROUTE | FAILURE_ROUTE | LOCAL_ROUTE,
                  _fixup_pv),
        *uri_db.CMDS,
    ],
    stats=uri_db.STATS,
    mod_init=uri_db.mod_init,
    child_init=uri_db.child_init,
    destroy=uri_db.destroy,
)
