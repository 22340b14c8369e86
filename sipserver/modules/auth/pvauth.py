"""pv_www_authorize / pv_proxy_authorize: digest check against a username and
password (or HA1) the script put in pseudo-variables (username_spec,
password_spec), for setups that fetch them some other way than auth_db."""

from __future__ import annotations

from typing import Any

from ...core.context import MsgContext
from ...lang.pv import PVError
from ...sip.digest import Credentials
from .api import (
    DO_AUTHORIZATION,
    HDR_AUTHORIZATION,
    HDR_PROXYAUTH,
    INVALID_PASSWORD,
    USER_UNKNOWN,
    AuthState,
    calc_ha1,
    check_response,
    post_auth,
    pre_auth,
)


def _pv_text(pv: Any, ctx: MsgContext) -> str | None:
    """A non-empty string value of the PV, else None."""
    if pv is None:
        return None
    try:
        value = pv.get(ctx)
    except PVError:
        return None
    if not isinstance(value, str) or not value:
        return None
    return value


def _get_ha1(state: AuthState, ctx: MsgContext, cred: Credentials, realm: str) -> str | None:
    """The HA1 to check against; None (user unknown) when the username PV is
    empty or differs (case-insensitively) from the digest user."""
    user = _pv_text(state.user_pv, ctx)
    if user is None or user.lower() != (cred.user or "").lower():
        return None
    password = _pv_text(state.passwd_pv, ctx)
    if password is None:
        return None
    if state.calc_ha1:
        return calc_ha1(cred.username or "", realm, password)
    return password


def pv_authorize(state: AuthState, ctx: MsgContext, realm_fmt: Any, key: str) -> int:
    realm = realm_fmt.render(ctx)
    code, realm, m = pre_auth(state, ctx, realm, key)
    if code != DO_AUTHORIZATION or m is None:
        return code
    ha1 = _get_ha1(state, ctx, m.cred, realm)
    if ha1 is None:
        return USER_UNKNOWN
    if check_response(ctx, m.cred, ha1):
        return post_auth(state, ctx, m)
    return INVALID_PASSWORD


def pv_www_authorize(ctx: MsgContext, module: Any, realm_fmt: Any) -> int:
    return pv_authorize(module.state, ctx, realm_fmt, HDR_AUTHORIZATION)


def pv_proxy_authorize(ctx: MsgContext, module: Any, realm_fmt: Any) -> int:
    return pv_authorize(module.state, ctx, realm_fmt, HDR_PROXYAUTH)
