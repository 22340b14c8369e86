"""www_challenge / proxy_challenge and consume_credentials (1.6 challenge.c).

A challenge is a 401/407 reply carrying one header laid out exactly as 1.6
writes it: `WWW-Authenticate: Digest realm="R", nonce="N"[, qop="auth"]
[, stale=true]` (stale when the credentials pre_auth marked had a bad,
expired or reused nonce). The functions return 0 once the reply is sent,
which stops the script.
"""

from __future__ import annotations

from typing import Any

from ...core.context import MsgContext
from ...core.reply import add_reply_lump
from ...core.runtime import L_ERR
from ...sip.digest import build_challenge
from .api import (
    HDR_AUTHORIZATION,
    HDR_PROXYAUTH,
    MESSAGE_400,
    AuthState,
    get_realm,
    marked,
    send_resp,
    strip_realm,
)
from .nonce import calc_nonce

MESSAGE_401 = "Unauthorized"
MESSAGE_407 = "Proxy Authentication Required"
WWW_AUTH_CHALLENGE = "WWW-Authenticate"
PROXY_AUTH_CHALLENGE = "Proxy-Authenticate"


def build_auth_hf(state: AuthState, realm: str, qop: bool, stale: bool,
                  hf_name: str) -> str | None:
    """The challenge header line (CRLF included) with a fresh nonce; None
    when no nonce index is free or the realm cannot go in a header."""
    index = 0
    if state.nonce_check and state.index is not None:
        index = state.index.reserve()
        if index < 0:
            return None
    nonce = calc_nonce(int(state.clock()) + state.nonce_expire, index, state.secret,
                       state.nonce_check)
    try:
        value = build_challenge(realm, nonce, qop="auth" if qop else None, stale=stale)
    except ValueError:
        return None
    return f"{hf_name}: {value}\r\n"


def challenge(state: AuthState, ctx: MsgContext, realm_fmt: Any, qop: int, code: int,
              reason: str, hf_name: str) -> int:
    key = HDR_AUTHORIZATION if code == 401 else HDR_PROXYAUTH
    m = marked(ctx, key)
    realm = realm_fmt.render(ctx) if realm_fmt is not None else ""
    if not realm:
        host = get_realm(ctx, key)
        if host is None:
            ctx.rt.log(L_ERR, "auth: failed to extract URI for the realm")
            return 0 if send_resp(ctx, 400, MESSAGE_400) > 0 else -1
        realm = strip_realm(state, host)
    hf = build_auth_hf(state, realm, bool(qop), m.stale if m is not None else False, hf_name)
    if hf is None:
        ctx.rt.log(L_ERR, "auth: failed to generate nonce (no free nonce index or "
                          "bad realm)")
        return -1
    if not add_reply_lump(ctx, hf) or send_resp(ctx, code, reason) < 0:
        ctx.rt.log(L_ERR, "auth: failed to send the response")
        return -1
    return 0


def www_challenge(ctx: MsgContext, module: Any, realm_fmt: Any, qop: int) -> int:
    """401 Unauthorized with WWW-Authenticate; 0 (stop) when sent, -1 on failure."""
    return challenge(module.state, ctx, realm_fmt, qop, 401, MESSAGE_401, WWW_AUTH_CHALLENGE)


def proxy_challenge(ctx: MsgContext, module: Any, realm_fmt: Any, qop: int) -> int:
    """407 with Proxy-Authenticate; 0 (stop) when sent, -1 on failure."""
    return challenge(module.state, ctx, realm_fmt, qop, 407, MESSAGE_407, PROXY_AUTH_CHALLENGE)


def consume_credentials(ctx: MsgContext, module: Any) -> int:
    """Remove the authorized Authorization (else Proxy-Authorization) header
    from the request that is forwarded; -1 when nothing was authorized."""
    m = marked(ctx, HDR_AUTHORIZATION) or marked(ctx, HDR_PROXYAUTH)
    if m is None:
        if ctx.msg.method.upper() not in ("ACK", "CANCEL"):
            ctx.rt.log(L_ERR, "auth: no authorized credentials found (error in scripts)")
        return -1
    ctx.msg.lumps.remove_header(m.header)
    return 1

