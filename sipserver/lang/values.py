"""Run-time value rules of the script language (spec 3.7, 3.8, 3.9).

Pure helpers the compiled closures call: 1.6's integer arithmetic (C int
semantics), string comparison (case-insensitive, equal length), regex
flavour, truth of a PV, the typing rule of `+`, and the values of the
condition keywords (`method`, `uri`, `src_ip`, ...).
"""

from __future__ import annotations

import ipaddress
import re
import socket as socketlib
from collections.abc import Callable
from typing import Any

from ..core.context import MsgContext
from ..core.runtime import PROTO_IDS
from ..sip.errors import ParseError
from ..sip.uri import parse_uri
from . import ast
from .pv import int_of, str_of

AF_IDS = {4: socketlib.AF_INET, 6: socketlib.AF_INET6}

Cond = Callable[[MsgContext], int]


class ExprError(Exception):
    """An assignment expression failed (type mismatch, division by zero...)."""


def int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


def truth(value: Any) -> int:
    """Truth of a PV alone in a condition: null, empty and int 0 are false."""
    if value is None:
        return 0
    if type(value) is int:
        return 1 if value else 0
    return 1 if value != "" else 0


def streq(a: str, b: str) -> bool:
    return len(a) == len(b) and a.lower() == b.lower()


def str_order(op: str, a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    return a <= b


def int_cmp(op: str, a: int, b: int) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    return a <= b


def compile_regex(pattern: str) -> re.Pattern[str]:
    """1.6 regexes: POSIX extended, case-insensitive, unanchored."""
    return re.compile(pattern, re.IGNORECASE)


def arith(op: str, left: Any, right: Any, right_is_literal_int: bool) -> Any:
    """One binary operation of an assignment expression (spec 3.8 typing)."""
    if type(left) is int:
        r = 0 if right is None else int_of(right)
        if r is None:
            raise ExprError(f"integer '{op}' needs an integer on the right, got {right!r}")
        if op == "+":
            return int32(left + r)
        if op == "-":
            return int32(left - r)
        if op == "*":
            return int32(left * r)
        if op in ("/", "%"):
            if r == 0:
                raise ExprError("division by zero")
            q = abs(left) // abs(r)
            if (left < 0) != (r < 0):
                q = -q
            return int32(q) if op == "/" else int32(left - q * r)
        if op == "|":
            return int32(left | r)
        if op == "&":
            return int32(left & r)
        if op == "^":
            return int32(left ^ r)
        if op == "<<":
            return int32(left << (r & 31))
        if op == ">>":
            return int32((left & 0xFFFFFFFF) >> (r & 31)) if left >= 0 else int32(left >> (r & 31))
        raise ExprError(f"unknown operator {op}")
    if left is None:
        if op == "+":
            return right
        raise ExprError(f"operator '{op}' on a null value")
    # left is a string
    if op == "+":
        if right is None:
            return ""
        if right_is_literal_int:
            raise ExprError("cannot add a number to a string (quote it)")
        return left + str_of(right)
    if op in ("&", "|", "^") and isinstance(right, str) and len(right) == len(left):
        f = {"&": int.__and__, "|": int.__or__, "^": int.__xor__}[op]
        return "".join(chr(f(ord(a), ord(b)) & 0xFF) for a, b in zip(left, right, strict=True))
    raise ExprError(f"operator '{op}' cannot be used on strings")




def text_result(op: str, v: str, r: str) -> int:
    if op == "==":
        return 1 if streq(v, r) else 0
    if op == "!=":
        return 0 if streq(v, r) else 1
    if op in ("=~", "!~"):
        try:
            hit = compile_regex(r).search(v) is not None
        except re.error:
            return -1
        return 1 if hit == (op == "=~") else 0
    return 1 if str_order(op, v, r) else 0


def network(net: ast.NetLit) -> Any:
    if net.bits >= 0:
        return ipaddress.ip_network(f"{net.ip.addr}/{net.bits}", strict=False)
    # a non-contiguous netmask: keep (ip, mask) and compare by hand
    return MaskNet(net.ip.addr, net.mask.addr if net.mask else net.ip.addr)


class MaskNet:
    """``ip/netmask`` with a netmask that is not a prefix (1.6 allows it)."""

    def __init__(self, ip: str, mask: str) -> None:
        self.ip = int(ipaddress.ip_address(ip))
        self.mask = int(ipaddress.ip_address(mask))
        self.version = ipaddress.ip_address(ip).version

    def __contains__(self, addr: Any) -> bool:
        return addr.version == self.version and (int(addr) & self.mask) == (self.ip & self.mask)


def _method(ctx: MsgContext) -> str | None:
    msg = ctx.msg
    if msg.is_reply:
        return msg.first_line.split(" ", 1)[0]
    return msg.method


def _uri_kw(ctx: MsgContext) -> str | None:
    msg = ctx.msg
    if msg.is_reply:
        return str(msg.status)
    return ctx.ruri


def _from_uri(ctx: MsgContext) -> str | None:
    try:
        return ctx.msg.from_.uri_text
    except (ParseError, AttributeError):
        return None


def _to_uri(ctx: MsgContext) -> str | None:
    try:
        return ctx.msg.to.uri_text
    except (ParseError, AttributeError):
        return None


def _dst_ip(ctx: MsgContext) -> str | None:
    return ctx.rcv.ip if ctx.rcv is not None else None


KEYWORD_STRINGS: dict[str, Callable[[MsgContext], str | None]] = {
    "method": _method,
    "uri": _uri_kw,
    "from_uri": _from_uri,
    "to_uri": _to_uri,
    "src_ip": lambda ctx: ctx.src_ip,
    "dst_ip": _dst_ip,
}

KEYWORD_INTS: dict[str, Callable[[MsgContext], int]] = {
    "src_port": lambda ctx: ctx.src_port,
    "dst_port": lambda ctx: ctx.rcv.port if ctx.rcv is not None else 0,
    "proto": lambda ctx: PROTO_IDS.get(ctx.proto, 0),
    "af": lambda ctx: AF_IDS[6 if ":" in ctx.src_ip else 4],
    "msg:len": lambda ctx: len(ctx.msg.buf),
}


def text_is_myself(ctx: MsgContext, text: str) -> bool:
    """A URI (host:port of it) or a bare host[:port] is one of ours."""
    try:
        uri = parse_uri(text)
    except (ParseError, ValueError):
        uri = None
    if uri is not None and getattr(uri, "host", None):
        port = uri.port or (5061 if uri.scheme == "sips" else 5060)
        return ctx.rt.is_myself(uri.host, port)
    host, _, port_s = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return ctx.rt.is_myself(host, int(port_s) if port_s.isdigit() else 5060)


def uri_myself(getter: Callable[[MsgContext], str | None], want: bool, where: str) -> Cond:
    def cmp(ctx: MsgContext) -> int:
        text = getter(ctx)
        if text is None:
            return -1
        return 1 if text_is_myself(ctx, text) == want else 0
    return cmp


