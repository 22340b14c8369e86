"""The auth module's API (1.6 `bind_auth`): what auth_db, auth_aaa and the
pv_*_authorize functions share.

`pre_auth` finds the credentials for a realm, checks they are complete and
that the nonce is ours; the backend then fetches the HA1 and calls
`check_response`; `post_auth` finally rejects an expired or replayed
nonce. Return codes are 1.6's `auth_result_t`.

Credentials that pass `pre_auth`'s completeness check are "marked" on the
message (1.6 sets `authorized` on the parsed header, before the nonce or
the password is checked): www/proxy_challenge read the stale flag from the
mark, consume_credentials removes the marked header, `$Au` and uri's
is_user read the marked credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...core.context import MsgContext
from ...core.runtime import L_DBG, L_ERR
from ...sip import digest
from ...sip.digest import Credentials, parse_credentials
from ...sip.errors import ParseError
from ...sip.message import Header
from ..signaling import send_reply_api
from ..uri import mark_authorized
from .nonce import NonceIndex, check_nonce, is_stale, nonce_index

# 1.6 auth_result_t
AUTH_ERROR = -5  # error, no reply sent
NO_CREDENTIALS = -4
STALE_NONCE = -3
INVALID_PASSWORD = -2
USER_UNKNOWN = -1
ERROR = 0  # error, a reply was sent: the script stops
AUTHORIZED = 1
DO_AUTHORIZATION = 2  # pre_auth only: go on with the backend check

HDR_AUTHORIZATION = "authorization"  # www_* (401 challenges)
HDR_PROXYAUTH = "proxy-authorization"  # proxy_* (407 challenges)

MESSAGE_400 = "Bad Request"
MESSAGE_500 = "Server Internal Error"

_MARKS_KEY = "auth.marks"


@dataclass(slots=True)
class AuthState:
    """The auth module's settings and shared nonce index (made in mod_init)."""

    secret: bytes
    nonce_expire: int = 30
    nonce_check: bool = True  # not disable_nonce_check
    index: NonceIndex | None = None
    realm_prefix: str = ""
    rpid_prefix: str = ""
    rpid_suffix: str = ";party=calling;id-type=subscriber;screen=yes"
    rpid_avp: int | str | None = "rpid"
    user_pv: Any = None
    passwd_pv: Any = None
    calc_ha1: bool = False
    clock: Callable[[], float] = field(default=time.time)


@dataclass(slots=True)
class Mark:
    """Credentials pre_auth accepted on one header type of a message."""

    header: Header
    cred: Credentials
    stale: bool = False


# ---------------------------------------------------------------- marks


def _marks(ctx: MsgContext) -> dict[str, Mark]:
    return ctx.msg._cache.setdefault(_MARKS_KEY, {})


def marked(ctx: MsgContext, key: str) -> Mark | None:
    """The mark on Authorization (HDR_AUTHORIZATION) or Proxy-Authorization."""
    marks = ctx.msg._cache.get(_MARKS_KEY)
    return marks.get(key) if marks else None


def _mark(ctx: MsgContext, key: str, header: Header, cred: Credentials) -> Mark:
    m = _marks(ctx)[key] = Mark(header, cred)
    # $Au and is_user prefer Proxy-Authorization, as 1.6's cred_user() does
    best = marked(ctx, HDR_PROXYAUTH) or m
    ctx.auth_cred = best.cred
    mark_authorized(ctx, best.cred)
    return m


# ---------------------------------------------------------------- helpers


def send_resp(ctx: MsgContext, code: int, reason: str) -> int:
    """Reply through the signaling API (tm when there is a transaction, else sl)."""
    return send_reply_api(ctx, code, reason)


def strip_realm(state: AuthState, realm: str) -> str:
    """Drop realm_prefix from the front of a realm derived from a URI."""
    p = state.realm_prefix
    if p and realm.startswith(p):
        return realm[len(p):]
    return realm


def get_realm(ctx: MsgContext, key: str) -> str | None:
    """The host a realm defaults to: the To URI's for a REGISTER checked
    with Authorization, the From URI's otherwise; None when unparsable."""
    msg = ctx.msg
    try:
        if msg.method.upper() == "REGISTER" and key == HDR_AUTHORIZATION:
            na = msg.to
        else:
            na = msg.from_
        if na is None:
            return None
        return na.uri.host
    except (ParseError, KeyError, ValueError) as e:
        ctx.rt.log(L_ERR, f"auth: cannot get the realm from the request: {e}")
        return None


def _is_ack_or_cancel(ctx: MsgContext) -> bool:
    return ctx.msg.method.upper() in ("ACK", "CANCEL")


def _find_credentials(ctx: MsgContext, realm: str, key: str) -> tuple[int, Header | None]:
    """The first Digest header of that type whose realm matches (case-insensitively).

    (0, header) found; (1, None) none for the realm; (-1, None) malformed.
    """
    want = realm.lower()
    for h in ctx.msg.headers_named(key):
        cred = h.parsed
        if cred is None:
            try:
                cred = h.parsed = parse_credentials(h.value)
            except ParseError as e:
                ctx.rt.log(L_ERR, f"auth: failed to parse credentials: {e}")
                return -1, None
        if cred.is_digest and cred.realm is not None and cred.realm.lower() == want:
            return 0, h
    return 1, None


# ---------------------------------------------------------------- the API


def pre_auth(state: AuthState, ctx: MsgContext, realm: str,
             key: str) -> tuple[int, str, Mark | None]:
    """Find and check the credentials for `realm` ("" = derive it).

    Returns (code, realm used, mark): DO_AUTHORIZATION with the mark when
    the backend should check the response; otherwise a final code
    (AUTHORIZED for ACK/CANCEL, NO_CREDENTIALS, STALE_NONCE, or ERROR after
    a 400/500 reply was sent).
    """
    if _is_ack_or_cancel(ctx):
        return AUTHORIZED, realm, None
    if not realm:
        host = get_realm(ctx, key)
        if host is None:
            send_resp(ctx, 400, MESSAGE_400)
            return ERROR, realm, None
        realm = strip_realm(state, host)
    found, h = _find_credentials(ctx, realm, key)
    if found < 0:
        send_resp(ctx, 400, MESSAGE_400)
        return ERROR, realm, None
    if h is None:
        ctx.rt.log(L_DBG, "auth: credentials with given realm not found")
        return NO_CREDENTIALS, realm, None
    cred: Credentials = h.parsed
    problems = cred.validate(check_domain=True)
    if problems:
        ctx.rt.log(L_DBG, f"auth: received credentials are not filled properly: "
                          f"{', '.join(problems)}")
        send_resp(ctx, 400, MESSAGE_400)
        return ERROR, realm, None
    m = _mark(ctx, key, h, cred)
    if check_nonce(cred.nonce, state.secret, state.nonce_check) != 0:
        ctx.rt.log(L_DBG, "auth: invalid nonce value received")
        m.stale = True
        return STALE_NONCE, realm, m
    return DO_AUTHORIZATION, realm, m


def post_auth(state: AuthState, ctx: MsgContext, m: Mark) -> int:
    """After a matching response: STALE_NONCE when the nonce expired or was
    used before, else AUTHORIZED."""
    if _is_ack_or_cancel(ctx):
        return AUTHORIZED
    nonce = m.cred.nonce or ""
    if is_stale(nonce, state.clock()):
        ctx.rt.log(L_DBG, "auth: response is OK, but nonce is stale")
        m.stale = True
        return STALE_NONCE
    index = state.index if state.nonce_check else None
    if index is not None and not index.use(nonce_index(nonce)):
        ctx.rt.log(L_DBG, "auth: nonce index not valid (reused or too old)")
        m.stale = True
        return STALE_NONCE
    return AUTHORIZED


def check_response(ctx: MsgContext, cred: Credentials, ha1: str) -> bool:
    """Does the response match the HA1 (qop none/auth/auth-int, MD5/MD5-sess)?"""
    return digest.check_response(cred, ctx.msg.method, ha1=ha1, body=ctx.msg.body)


def calc_ha1(username: str, realm: str, password: str) -> str:
    """H(username:realm:password) in lower-case hex."""
    return digest.calc_ha1(username, realm, password)


class AuthApi:
    """What `bind_auth` hands a backend module (auth_db, auth_aaa).

    Holds the auth LoadedModule, so it may be bound before auth's mod_init
    ran; the state is read at call time.
    """

    __slots__ = ("_module",)

    def __init__(self, module: Any) -> None:
        self._module = module

    @property
    def state(self) -> AuthState:
        st = self._module.state
        if st is None:
            raise RuntimeError("auth module not initialised")
        return st

    @property
    def rpid_avp(self) -> int | str | None:
        return self.state.rpid_avp

    def pre_auth(self, ctx: MsgContext, realm: str, key: str) -> tuple[int, str, Mark | None]:
        return pre_auth(self.state, ctx, realm, key)

    def post_auth(self, ctx: MsgContext, m: Mark) -> int:
        return post_auth(self.state, ctx, m)

    check_response = staticmethod(check_response)
    calc_ha1 = staticmethod(calc_ha1)


def bind_auth(registry: Any) -> AuthApi:
    """The API of the loaded auth module; ValueError when it is not loaded."""
    mod = registry.modules.get("auth") if registry is not None else None
    if mod is None:
        raise ValueError('unable to find bind_auth function: load the auth module '
                         '(loadmodule "auth.so")')
    return AuthApi(mod)
