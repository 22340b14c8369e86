"""What save() reads from a REGISTER, checked the way 1.6 checks it
(modules/registrar/sip_msg.c): To, Call-ID and CSeq present, a numeric
Expires, parsable Contacts, `Contact: *` only alone and with Expires 0;
then per contact its expiry (clamped to min/max_expires), q and methods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...core.context import MsgContext
from ...lang.actions import str2q
from ...sip.errors import ParseError
from ...sip.headers import NameAddr, is_star_contact, parse_name_addr_list
from ..usrloc import ALL_METHODS
from .common import RegState
from .rerrno import (
    R_CID_MISS,
    R_CONTACT_LEN,
    R_CS_MISS,
    R_INV_Q,
    R_PARSE,
    R_PARSE_CONT,
    R_PARSE_EXP,
    R_STAR_CONT,
    R_STAR_EXP,
    R_TO_MISS,
    RegError,
)

__all__ = ["RegMsg", "allow_methods", "calc_contact_expires", "calc_contact_q",
           "contact_methods", "method_id", "parse_methods", "parse_register", "unquote_param"]

CONTACT_MAX_SIZE = 255
RECEIVED_MAX_SIZE = 255

# 1.6 method ids (parser/msg_parser.h); any other token is METHOD_OTHER
METHOD_IDS = {
    "INVITE": 1, "CANCEL": 2, "ACK": 4, "BYE": 8, "INFO": 16, "OPTIONS": 32,
    "UPDATE": 64, "REGISTER": 128, "MESSAGE": 256, "SUBSCRIBE": 512, "NOTIFY": 1024,
    "PRACK": 2048, "REFER": 4096, "PUBLISH": 8192,
}
METHOD_OTHER = 16384
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_LWS = " \t\r\n"


def method_id(method: str) -> int:
    """The 1.6 bit of a request method (METHOD_OTHER when not a known one)."""
    return METHOD_IDS.get(method.upper(), METHOD_OTHER)


def parse_methods(text: str) -> int:
    """A comma list of methods as a bit mask (1.6 parse_methods); ValueError
    when an element is not a token. An empty list allows nothing."""
    s = text.strip(_LWS)
    out = 0
    pos = 0
    n = len(s)
    while pos < n:
        m = _TOKEN_RE.match(s, pos)
        if m is None:
            raise ValueError(f"invalid method list {text!r}")
        out |= method_id(m.group(0))
        pos = m.end()
        while pos < n and s[pos] in _LWS:
            pos += 1
        if pos >= n:
            break
        if s[pos] != ",":
            raise ValueError(f"comma expected in method list {text!r}")
        pos += 1
        while pos < n and s[pos] in _LWS:
            pos += 1
    return out


def unquote_param(value: str | None) -> str:
    """A parameter's value without its surrounding quotes (1.6 keeps the
    inside as it is, escapes included); '' for none."""
    if not value:
        return ""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


@dataclass(slots=True)
class RegMsg:
    """The checked parts of a REGISTER."""

    contacts: list[NameAddr]  # every contact of every Contact header, in order
    star: bool  # `Contact: *`
    expires_hf: int | None  # the Expires header's value; None when absent


def _expires_header(ctx: MsgContext) -> int | None:
    h = ctx.msg.header("expires")
    if h is None:
        return None
    text = h.value.strip(_LWS)
    if not text or not text.isascii() or not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise RegError(R_PARSE_EXP)
    return int(text)


def expires_hf(st: RegState, rm: RegMsg, now: int) -> int:
    """The absolute expiry the Expires header gives (0: remove), or the default
    (1.6 get_expires_hf)."""
    if rm.expires_hf is None:
        return now + st.default_expires
    return rm.expires_hf + now if rm.expires_hf else 0


def parse_register(ctx: MsgContext, st: RegState, now: int) -> RegMsg:
    """Parse and check the REGISTER (1.6 parse_message + check_contacts)."""
    msg = ctx.msg
    if msg.header("to") is None:
        raise RegError(R_TO_MISS)
    if msg.header("call-id") is None:
        raise RegError(R_CID_MISS)
    if msg.header("cseq") is None:
        raise RegError(R_CS_MISS)
    rm = RegMsg([], False, _expires_header(ctx))
    per_header: list[list[NameAddr] | None] = []  # None: a star
    for h in msg.headers_named("contact"):
        if is_star_contact(h.value):
            per_header.append(None)
            continue
        try:
            per_header.append(parse_name_addr_list(h.value, "Contact"))
        except ParseError:
            raise RegError(R_PARSE_CONT) from None
    if not per_header:
        return rm
    if per_header[0] is None:
        if expires_hf(st, rm, now) > 0:
            raise RegError(R_STAR_EXP)
        if len(per_header) > 1:
            raise RegError(R_STAR_CONT)
        rm.star = True
        return rm
    for contacts in per_header[1:]:
        if contacts is None:
            raise RegError(R_STAR_CONT)
        # 1.6 checks the lengths in the Contact headers after the first only
        for na in contacts:
            if len(na.uri_text) > CONTACT_MAX_SIZE or \
                    len(unquote_param(_param(na, "received"))) > RECEIVED_MAX_SIZE:
                raise RegError(R_CONTACT_LEN)
    for contacts in per_header:
        rm.contacts.extend(contacts or ())
    return rm


def _param(na: NameAddr, name: str) -> str | None:
    p = na.param(name)
    return None if p is None else (p.value or "")


def calc_contact_expires(st: RegState, rm: RegMsg, na: NameAddr, now: int) -> int:
    """The absolute expiry of one contact, 0 to remove it (1.6 calc_contact_expires):
    its expires param, else the Expires header, else default_expires;
    clamped to min_expires/max_expires."""
    text = unquote_param(_param(na, "expires"))
    if not text:
        e = expires_hf(st, rm, now)
    else:
        if text.isascii() and text.isdigit() and int(text) <= 0xFFFFFFFF:
            e = int(text)
        else:
            e = st.default_expires
        if e:
            e += now
    if e and e - now < st.min_expires:
        e = st.min_expires + now
    if e and st.max_expires and e - now > st.max_expires:
        e = st.max_expires + now
    return e


def calc_contact_q(st: RegState, na: NameAddr) -> int:
    """The contact's q (0..1000), default_q without one; RegError for a bad one."""
    text = unquote_param(_param(na, "q"))
    if not text:
        return st.default_q
    try:
        return str2q(text)
    except ValueError:
        raise RegError(R_INV_Q) from None


def contact_methods(na: NameAddr) -> int | None:
    """The contact's `methods` param as a mask; None without one."""
    p = na.param("methods")
    if p is None:
        return None
    try:
        return parse_methods(unquote_param(p.value))
    except ValueError:
        raise RegError(R_PARSE) from None


def allow_methods(ctx: MsgContext) -> int:
    """The methods every Allow header lists; all when there is none or one is bad."""
    headers = ctx.msg.headers_named("allow")
    if not headers:
        return ALL_METHODS
    out = 0
    for h in headers:
        try:
            out |= parse_methods(h.value)
        except ValueError:
            return ALL_METHODS
    return out
