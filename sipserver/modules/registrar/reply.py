"""The reply to a REGISTER, laid out as 1.6's registrar builds it (reply.c).

A successful save answers 200 with one `Contact:` header listing every
valid binding of the AOR, `<uri>;q=Q;expires=SECS;received="URI"` (q only
when set, received only when stored), joined by `, `. The headers go
out as reply lumps in this order: Contact, then (path flags) Unsupported
and Path, then for an error `P-Registrar-Error: <text>` and, for a 5xx with
retry_after set, `Retry-After`. The reply itself goes through the
signaling API (tm when a transaction exists, else sl), as in 1.6.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...core.context import MsgContext
from ...core.reply import add_reply_lump
from ...core.runtime import L_ERR
from ..signaling import send_reply_api
from ..usrloc import UContact, q2str
from .common import RegState
from .rerrno import CODES, ERROR_INFO, R_FINE, R_PATH_UNSUP, REASONS

__all__ = ["build_contact", "send_reply"]

# save flags that matter here (1.6 reg_mod.h)
REG_SAVE_PATH_STRICT_FLAG = 1 << 3
REG_SAVE_PATH_LAZY_FLAG = 1 << 4
REG_SAVE_PATH_OFF_FLAG = 1 << 5
REG_SAVE_PATH_FLAG = REG_SAVE_PATH_STRICT_FLAG | REG_SAVE_PATH_LAZY_FLAG | REG_SAVE_PATH_OFF_FLAG


def build_contact(st: RegState, contacts: Iterable[UContact], now: int) -> str | None:
    """The `Contact:` header line of the valid bindings, or None when there is none."""
    parts = []
    for c in contacts:
        if not (c.expires > now or c.expires == 0):
            continue
        item = f"<{c.contact}>"
        q = q2str(c.q)
        if q:
            item += f";q={q}"
        item += f";expires={c.expires - now}"
        if c.received:
            item += f';{st.rcv_param}="{c.received}"'
        parts.append(item)
    if not parts:
        return None
    return "Contact: " + ", ".join(parts) + "\r\n"


def _supports_path(ctx: MsgContext) -> bool | None:
    """Whether a Supported header lists `path`; None when there is no Supported."""
    headers = ctx.msg.headers_named("supported")
    if not headers:
        return None
    for h in headers:
        for token in h.value.replace(",", " ").split():
            if token.lower() == "path":
                return True
    return False


def send_reply(ctx: MsgContext, st: RegState, rerr: int, flags: int, contact: str | None,
               path_vec: str) -> int:
    """Queue the registrar headers and send the reply for error code `rerr`
    (1.6 send_reply); 0 when sent, -1 when it could not be."""
    if contact:
        add_reply_lump(ctx, contact)
    if rerr == R_FINE and flags & REG_SAVE_PATH_FLAG and path_vec \
            and not flags & REG_SAVE_PATH_OFF_FLAG:
        supported = _supports_path(ctx)
        if supported:
            add_reply_lump(ctx, f"Path: {path_vec}\r\n")
        elif flags & REG_SAVE_PATH_STRICT_FLAG:
            rerr = R_PATH_UNSUP
            add_reply_lump(ctx, "Unsupported: path\r\n")
            add_reply_lump(ctx, f"Path: {path_vec}\r\n")
    code = CODES[rerr]
    if code != 200:
        add_reply_lump(ctx, f"P-Registrar-Error: {ERROR_INFO[rerr]}\r\n")
        if 500 <= code < 600 and st.retry_after:
            add_reply_lump(ctx, f"Retry-After: {st.retry_after}\r\n")
    reason = REASONS[code]
    if send_reply_api(ctx, code, reason) < 0:
        ctx.rt.log(L_ERR, f"registrar: failed to send {code} {reason}")
        return -1
    return 0
