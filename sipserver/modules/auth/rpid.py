"""Remote-Party-ID helpers (1.6 rpid.c): the RPID comes in an AVP (rpid_avp,
filled by auth_db's load_credentials or by AAA) and is put into the request
or checked for an E.164 user."""

from __future__ import annotations

from typing import Any

from ...core.context import MsgContext
from ...core.runtime import L_DBG, L_ERR
from ...sip.errors import ParseError
from ...sip.uri import parse_uri
from .api import AuthState

RPID_HF_NAME = "Remote-Party-ID: "


def _rpid_value(state: AuthState, ctx: MsgContext) -> str | None:
    """The newest rpid AVP when it is a non-empty string, else None (logged)."""
    if state.rpid_avp is None:
        ctx.rt.log(L_ERR, "auth: rpid avp not defined")
        return None
    value = ctx.avps.get(state.rpid_avp)
    if value is None:
        ctx.rt.log(L_DBG, "auth: no rpid AVP")
        return None
    if not isinstance(value, str) or not value:
        ctx.rt.log(L_DBG, "auth: empty or non-string rpid, nothing to append")
        return None
    return value


def _append(ctx: MsgContext, prefix: str, rpid: str, suffix: str) -> int:
    msg = ctx.msg
    msg.lumps.insert(msg.headers_end, f"{RPID_HF_NAME}{prefix}{rpid}{suffix}\r\n")
    return 1


def append_rpid_hf(ctx: MsgContext, module: Any) -> int:
    """Add `Remote-Party-ID: <rpid_prefix><rpid><rpid_suffix>` after the last
    header; -1 when there is no RPID."""
    state: AuthState = module.state
    rpid = _rpid_value(state, ctx)
    if rpid is None:
        return -1
    return _append(ctx, state.rpid_prefix, rpid, state.rpid_suffix)


def append_rpid_hf_p(ctx: MsgContext, module: Any, prefix: str, suffix: str) -> int:
    """append_rpid_hf(prefix, suffix): the same with the given texts."""
    rpid = _rpid_value(module.state, ctx)
    if rpid is None:
        return -1
    return _append(ctx, prefix, rpid, suffix)


def _find_unquoted(text: str, ch: str) -> int:
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and quoted:
            i += 1
        elif c == ch and not quoted:
            return i
        i += 1
    return -1


def is_e164(user: str | None) -> bool:
    """`+` followed by 2 to 15 digits (1.6's length window: 3..16 characters)."""
    if user is None or not 2 < len(user) < 17 or user[0] != "+":
        return False
    return all("0" <= c <= "9" for c in user[1:])


def is_rpid_user_e164(ctx: MsgContext, module: Any) -> int:
    """1 when the user part of the RPID URI is an E.164 number, else -1."""
    rpid = _rpid_value(module.state, ctx)
    if rpid is None:
        return -1
    uri_text = rpid
    lt = _find_unquoted(rpid, "<")
    if lt >= 0:
        gt = rpid.find(">", lt + 1)
        if gt < 0:
            ctx.rt.log(L_ERR, "auth: failed to parse RPID")
            return -1
        uri_text = rpid[lt + 1:gt].strip()
    try:
        uri = parse_uri(uri_text)
    except ParseError:
        ctx.rt.log(L_ERR, "auth: failed to parse RPID URI")
        return -1
    return 1 if is_e164(uri.user) else -1
