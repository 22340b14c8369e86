"""Path headers (RFC 3327) as 1.6's registrar handles them (path.c).

On save (flags p0/p1/p2) every Path header body is joined with `,` into
the path vector stored with the contacts; its first URI must be a loose
router. With flag `v` that URI's `received` parameter is taken as the
contact's received address. On lookup the first URI of a stored path is
where the request goes ($du), and the whole vector becomes the Route set.
"""

from __future__ import annotations

from ...core.context import MsgContext
from ...sip.errors import ParseError
from ...sip.headers import parse_name_addr_list
from ...sip.uri import parse_uri
from .rerrno import R_PARSE_PATH, RegError
from .sip_msg import unquote_param

__all__ = ["MAX_PATH_SIZE", "build_path_vector", "path_dst_uri"]

MAX_PATH_SIZE = 255


def build_path_vector(ctx: MsgContext, want_received: bool) -> tuple[str, str]:
    """(path vector, received from the first hop or ''); RegError when the Path
    headers are too long, unparsable, or the first hop is not a loose router."""
    parts: list[str] = []
    size = 0
    for h in ctx.msg.headers_named("path"):
        body = h.value
        if size + len(body) + 1 >= MAX_PATH_SIZE:
            raise RegError(R_PARSE_PATH)
        if parts:
            size += 1
        parts.append(body)
        size += len(body)
    if not parts:
        return "", ""
    path = ",".join(parts)
    try:
        first = parse_uri(parse_name_addr_list(path, "Path")[0].uri_text)
    except ParseError:
        raise RegError(R_PARSE_PATH) from None
    if not first.lr:
        raise RegError(R_PARSE_PATH)
    received = ""
    if want_received:
        value = first.get_param("received")
        received = unquote_param(value) if isinstance(value, str) else ""
    return path, received


def path_dst_uri(path: str) -> str:
    """The first URI of a stored path vector (1.6 get_path_dst_uri); ParseError if none."""
    return parse_name_addr_list(path, "Path")[0].uri_text
