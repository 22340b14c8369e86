"""registrar's state and the Address Of Record (1.6 reg_mod.c, common.c).

The state is made from the module parameters on first use (the first
save/lookup fixup, or mod_init): the fixups bind usrloc and register the
tables before the processes fork, as 1.6's domain_fixup does. The AOR
rules are 1.6's: the user part unescaped, `@host` only with usrloc's
use_domain (realm_prefix stripped), the host always lower case, the user
too unless case_sensitive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...core.runtime import L_ERR, L_WARN
from ...lang.pv import PVError
from ...sip.errors import ParseError
from ...sip.uri import parse_uri
from ..usrloc import Q_UNSPECIFIED, UDomain, Usrloc, bind_usrloc
from .rerrno import R_AOR_LEN, R_AOR_PARSE, R_UNESCAPE, RegError

__all__ = ["RegState", "extract_aor", "make_state", "render_flags"]

MAX_AOR_LEN = 256
USERNAME_MAX_SIZE = 64
DOMAIN_MAX_SIZE = 128
MAX_Q = 1000
MIN_Q = 0
_HEX = frozenset("0123456789abcdefABCDEF")

F = TypeVar("F")


def render_flags(ctx: Any, fmt: Any, parse: Callable[[str], tuple[F, list[str]]]) -> F | None:
    """A flags argument given as a format, rendered and parsed for this
    message; unknown flag letters are warned about, None (logged) when it
    cannot be rendered."""
    try:
        text = fmt.render(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"registrar: invalid flags parameter: {e}")
        return None
    parsed, unknown = parse(text)
    for ch in unknown:
        ctx.rt.log(L_WARN, f"registrar: unsupported flag {ch}")
    return parsed


@dataclass(slots=True)
class RegState:
    """registrar's parameters (fixed at start-up), usrloc and the statistics."""

    ul: Usrloc
    default_expires: int = 3600
    default_q: int = Q_UNSPECIFIED
    case_sensitive: bool = True
    tcp_persistent_flag: int = 0  # a message-flag mask, 0: off
    realm_prefix: str = ""
    min_expires: int = 60
    max_expires: int = 0
    rcv_param: str = "received"
    rcv_avp_text: str = ""
    rcv_avp: int | str | None = None  # the AVP name, resolved by the first fixup
    max_contacts: int = 0
    retry_after: int = 0
    sock_hdr_name: str = ""
    accepted: Any = None
    rejected: Any = None
    domains: dict[str, UDomain] = field(default_factory=dict)

    @property
    def use_domain(self) -> bool:
        return self.ul.use_domain

    def now(self) -> int:
        """1.6 act_time: whole seconds, usrloc's clock (tests freeze it)."""
        return self.ul.now()

    def domain(self, name: str) -> UDomain:
        """The usrloc table `name`, registered on first use (1.6 domain_fixup)."""
        dom = self.domains.get(name)
        if dom is None:
            dom = self.domains[name] = self.ul.register_udomain(name)
        return dom


def _int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    try:
        return int(value if value is not None else default)
    except (TypeError, ValueError):
        raise ValueError(f'registrar: parameter "{name}" must be a number, not {value!r}') from None


def make_state(params: dict[str, Any], registry: Any) -> RegState:
    """The state from the module parameters; ValueError for bad ones or no usrloc."""
    ul = bind_usrloc(registry)
    q = _int(params, "default_q", Q_UNSPECIFIED)
    if q != Q_UNSPECIFIED:
        q = min(max(q, MIN_Q), MAX_Q)  # 1.6 normalises it silently
    flag = _int(params, "tcp_persistent_flag", -1)
    if flag >= 32:
        raise ValueError(f"registrar: tcp_persistent_flag {flag} is not a flag index (0..31)")
    return RegState(
        ul=ul,
        default_expires=_int(params, "default_expires", 3600),
        default_q=q,
        case_sensitive=bool(_int(params, "case_sensitive", 1)),
        tcp_persistent_flag=(1 << flag) if flag >= 0 else 0,
        realm_prefix=str(params.get("realm_prefix") or ""),
        min_expires=_int(params, "min_expires", 60),
        max_expires=_int(params, "max_expires", 0),
        rcv_param=str(params.get("received_param") or "received"),
        rcv_avp_text=str(params.get("received_avp") or ""),
        max_contacts=_int(params, "max_contacts", 0),
        retry_after=_int(params, "retry_after", 0),
        sock_hdr_name=str(params.get("sock_hdr_name") or ""),
    )


def _unescape_user(user: str) -> str:
    """1.6 un_escape: %XX to its character; a short or non-hex escape, or
    one outside printable ASCII, is an error."""
    if "%" not in user:
        return user
    out = []
    i = 0
    n = len(user)
    while i < n:
        ch = user[i]
        if ch == "%":
            if i + 2 >= n:
                raise RegError(R_UNESCAPE)
            digits = user[i + 1:i + 3]
            if not all(c in _HEX for c in digits):
                raise RegError(R_UNESCAPE)
            value = int(digits, 16)
            if value < 32 or value > 126:
                raise RegError(R_UNESCAPE)
            out.append(chr(value))
            i += 3
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def extract_aor(st: RegState, uri_text: str) -> str:
    """The AOR of a URI as usrloc keys it (1.6 extract_aor); RegError when
    the URI is unparsable (400), too long (500) or badly escaped (400)."""
    try:
        uri = parse_uri(uri_text)
    except ParseError:
        raise RegError(R_AOR_PARSE) from None
    user = uri.user or ""
    host = uri.host or ""
    if len(user) + len(host) + 1 > MAX_AOR_LEN or len(user) > USERNAME_MAX_SIZE \
            or len(host) > DOMAIN_MAX_SIZE:
        raise RegError(R_AOR_LEN)
    aor = _unescape_user(user)
    user_len = len(aor)
    if st.use_domain:
        if user_len:
            aor += "@"
        prefix = st.realm_prefix
        if prefix and len(prefix) < len(host) and host.startswith(prefix):
            host = host[len(prefix):]
        aor += host
    if st.case_sensitive and user_len:
        return aor[:user_len + 1] + aor[user_len + 1:].lower()
    return aor.lower()
