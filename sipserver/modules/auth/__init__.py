"""auth: the digest authentication framework (OpenSIPS 1.6 module `auth`).

Challenges (www_challenge, proxy_challenge) with self-signed one-time
nonces, the credential checks backends build on (`api.bind_auth`, used by
auth_db and auth_aaa), pv_www_authorize / pv_proxy_authorize against
script variables, consume_credentials, and the Remote-Party-ID helpers.

The secret that signs nonces is made in mod_init, before the fork, so
every process (and every server given the same `secret`) accepts the
nonces any other one issued. Replies go out through the signaling module
(tm when the request has a transaction, else sl), which must be loaded.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ...core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
)
from ...core.runtime import L_INFO
from .api import AuthState, bind_auth
from .challenge import consume_credentials, proxy_challenge, www_challenge
from .nonce import NonceIndex
from .pvauth import pv_proxy_authorize, pv_www_authorize
from .pvparam import param_env, parse_avp, parse_pv
from .rpid import append_rpid_hf, append_rpid_hf_p, is_rpid_user_e164

__all__ = ["bind_auth", "exports"]

RAND_SECRET_LEN = 32
DEF_RPID_SUFFIX = ";party=calling;id-type=subscriber;screen=yes"


# ---------------------------------------------------------------- fixups


def _fix_module(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [module]


def _fix_realm(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [module, env.compile_format(args[0])]


def _fix_challenge(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """realm: a format; qop: an unsigned number (non-zero offers qop=auth)."""
    qop = args[1].strip()
    if not qop.isascii() or not qop.isdigit():
        raise FixupError(f'qop must be a number ("0" or "1"), got "{args[1]}"')
    return [module, env.compile_format(args[0]), int(qop)]


def _fix_str_str(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [module, args[0], args[1]]


# ---------------------------------------------------------------- init


def _random_secret() -> bytes:
    """32 printable characters, as 1.6 draws them (32..126)."""
    return bytes(32 + secrets.randbelow(95) for _ in range(RAND_SECRET_LEN))


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    p = module.params
    registry = getattr(rt, "registry", None)
    if registry is not None and "signaling" not in registry:
        raise ValueError('can\'t load signaling functions: load the signaling module '
                         '(loadmodule "signaling.so")')
    rt.log(L_INFO, "auth: initializing...")
    expire = int(p.get("nonce_expire", 30))
    if expire < 0:
        raise ValueError(f"nonce_expire must not be negative (got {expire})")
    sec = p.get("secret")
    secret = _random_secret() if sec is None else str(sec).encode("utf-8", "surrogateescape")
    env = param_env(rt)
    rpid_avp_text = p.get("rpid_avp") or ""
    rpid_avp = parse_avp(env, rpid_avp_text, "rpid_avp") if rpid_avp_text else None
    user_spec = p.get("username_spec")
    passwd_spec = p.get("password_spec")
    nonce_check = not int(p.get("disable_nonce_check", 0))
    module.state = AuthState(
        secret=secret,
        nonce_expire=expire,
        nonce_check=nonce_check,
        index=NonceIndex(expire, getattr(rt, "shm", None)) if nonce_check else None,
        realm_prefix=p.get("realm_prefix") or "",
        rpid_prefix=p.get("rpid_prefix") or "",
        rpid_suffix=p.get("rpid_suffix") or "",
        rpid_avp=rpid_avp,
        user_pv=parse_pv(env, user_spec, "username_spec") if user_spec else None,
        passwd_pv=parse_pv(env, passwd_spec, "password_spec") if passwd_spec else None,
        calc_ha1=bool(int(p.get("calculate_ha1", 0))),
    )


_RBF = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE

exports = ModuleExports(
    name="auth",
    params=[
        ParamExport("secret", str, None),
        ParamExport("nonce_expire", int, 30),
        ParamExport("rpid_prefix", str, ""),
        ParamExport("rpid_suffix", str, DEF_RPID_SUFFIX),
        ParamExport("realm_prefix", str, ""),
        ParamExport("rpid_avp", str, "$avp(s:rpid)"),
        ParamExport("username_spec", str, None),
        ParamExport("password_spec", str, None),
        ParamExport("calculate_ha1", int, 0),
        ParamExport("disable_nonce_check", int, 0),
    ],
    cmds=[
        CmdExport("www_challenge", www_challenge, 2, REQUEST_ROUTE, _fix_challenge),
        CmdExport("proxy_challenge", proxy_challenge, 2, REQUEST_ROUTE, _fix_challenge),
        CmdExport("pv_www_authorize", pv_www_authorize, 1, REQUEST_ROUTE, _fix_realm),
        CmdExport("pv_proxy_authorize", pv_proxy_authorize, 1, REQUEST_ROUTE, _fix_realm),
        CmdExport("consume_credentials", consume_credentials, 0, REQUEST_ROUTE, _fix_module),
        CmdExport("is_rpid_user_e164", is_rpid_user_e164, 0, REQUEST_ROUTE, _fix_module),
        CmdExport("append_rpid_hf", append_rpid_hf, 0, _RBF, _fix_module),
        CmdExport("append_rpid_hf", append_rpid_hf_p, 2, _RBF, _fix_str_str),
    ],
    deps=("signaling",),
    mod_init=_mod_init,
)
