"""Parse an OpenSIPS 1.6 routing script into the AST of ``ast.py``.

``grammar.lark`` gives the shape of the language; this module turns Lark's
tree into AST nodes and checks everything 1.6 checks while parsing that the
grammar leaves wide on purpose: the argument forms of core functions, the
value form of each global parameter, the operators each condition keyword
accepts, the layout of ``switch`` bodies, route names and redefinitions.
All such problems are collected and raised together as one ``CfgError``;
a syntax error stops parsing at once (1.6 does the same) and is reported
at the offending token with the expected tokens in plain words.

Names of module functions and pseudo-variables are NOT resolved here: that
needs the module registry and is the compiler's job.

The Lark parser is built once per process (``get_lark``); a 500-line script
parses in a few tens of milliseconds.
"""

from __future__ import annotations

import copy
import difflib
import functools
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from . import ast
from .errors import CfgError, ErrorItem
from .pvtoken import PVSyntaxError, PVTokenParts, parse_pv_token

__all__ = [
    "CORE_FUNCTIONS",
    "GLOBAL_PARAMS",
    "get_lark",
    "parse_file",
    "parse_text",
    "unescape_string",
]

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

# include_file nesting limit (also stops include cycles early)
MAX_INCLUDE_DEPTH = 32

# 1.6's BUF_SIZE, the value of `max_len`
MAX_LEN = 65535


@functools.cache
def get_lark() -> Lark:
    """The LALR parser for ``grammar.lark``, built once per process."""
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "actions_file"],
    )


# ======================================================================
# literals


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", '"': '"', "\\": "\\"}
_OCT = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")


def unescape_string(token: str) -> str:
    """Value of a STRING token (quotes included), with 1.6's escape rules.

    Double quotes: ``\\n \\r \\t \\a \\" \\\\``, ``\\xH``/``\\xHH``,
    ``\\NN``/``\\NNN`` (octal), backslash-newline removed; any other
    backslash sequence is kept as written (so ``"^\\d+"`` and ``\\1`` survive).
    Single quotes: raw text.
    """
    quote, body = token[0], token[1:-1]
    if quote == "'" or "\\" not in body:
        return body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "\n":
            i += 2
        elif nxt == "\r" and i + 2 < n and body[i + 2] == "\n":
            i += 3
        elif nxt == "x" and i + 2 < n and body[i + 2] in _HEX:
            j = i + 3 if (i + 3 < n and body[i + 3] in _HEX) else i + 2
            out.append(chr(int(body[i + 2:j + 1], 16)))
            i = j + 1
        elif nxt in _OCT and i + 2 < n and body[i + 2] in _OCT:
            j = i + 3 if (i + 3 < n and body[i + 3] in _OCT) else i + 2
            out.append(chr(int(body[i + 1:j + 1], 8) & 0xFF))
            i = j + 1
        else:
            out.append("\\")
            i += 1
    return "".join(out)


def _to_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


_WORD_NUMBERS = {
    "yes": 1, "true": 1, "on": 1, "enable": 1,
    "no": 0, "false": 0, "off": 0, "disable": 0,
    "inet": 2, "INET": 2, "inet6": 10, "INET6": 10,
}


def _number_value(text: str) -> int:
    """Value of a NUMBER token or a number word, as 1.6 stores it (C int)."""
    if text in _WORD_NUMBERS:
        return _WORD_NUMBERS[text]
    if text[:2] in ("0x", "0X"):
        return _to_int32(int(text[2:], 16))
    if len(text) > 1 and text[0] == "0":
        return _to_int32(int(text, 8))
    return _to_int32(int(text))


# ======================================================================
# core functions (1.6 core actions), checked by argument form
#
# argument kinds: S quoted string, N unsigned number, SN signed number,
# P pseudo-variable, H address (IP, host name or string), K socket
# ([proto:]host[:port]).  A signature list is tried in order.

@dataclass(frozen=True, slots=True)
class CoreFunction:
    """How a core action may be written."""

    name: str
    signatures: tuple[tuple[str, ...], ...]
    bare: bool = False           # may be written without parentheses
    aliases: tuple[str, ...] = ()


_CORE_LIST = [
    CoreFunction("forward", ((), ("S",))),
    CoreFunction("send", (("S",),)),
    CoreFunction("log", (("S",), ("SN", "S"))),
    CoreFunction("error", (("S", "S"),)),
    CoreFunction("setdebug", ((), ("N",))),
    CoreFunction("setflag", (("N",),)),
    CoreFunction("resetflag", (("N",),)),
    CoreFunction("isflagset", (("N",),)),
    CoreFunction("setbflag", (("N",), ("N", "N")), aliases=("setbranchflag",)),
    CoreFunction("resetbflag", (("N",), ("N", "N")), aliases=("resetbranchflag",)),
    CoreFunction("isbflagset", (("N",), ("N", "N")), aliases=("isbranchflagset",)),
    CoreFunction("setsflag", (("N",),), aliases=("setscriptflag",)),
    CoreFunction("resetsflag", (("N",),), aliases=("resetscriptflag",)),
    CoreFunction("issflagset", (("N",),), aliases=("isscriptflagset",)),
    CoreFunction("rewritehost", (("S",),), aliases=("sethost", "seth")),
    CoreFunction("rewritehostport", (("S",),), aliases=("sethostport", "sethp")),
    CoreFunction("rewriteuser", (("S",),), aliases=("setuser", "setu")),
    CoreFunction("rewriteuserpass", (("S",),), aliases=("setuserpass", "setup")),
    CoreFunction("rewriteport", (("S",),), aliases=("setport", "setp")),
    CoreFunction("rewriteuri", (("S",),), aliases=("seturi",)),
    CoreFunction("revert_uri", ((),), bare=True),
    CoreFunction("setdsturi", (("S",),), aliases=("setduri",)),
    CoreFunction("resetdsturi", ((),), bare=True, aliases=("resetduri",)),
    CoreFunction("isdsturiset", ((),), bare=True, aliases=("isduriset",)),
    CoreFunction("prefix", (("S",),)),
    CoreFunction("strip", (("N",),)),
    CoreFunction("strip_tail", (("N",),)),
    CoreFunction("append_branch", ((), ("S",), ("S", "S")), bare=True),
    CoreFunction("pv_printf", (("S", "S"), ("P", "S")), aliases=("avp_printf",)),
    CoreFunction("force_rport", ((),), bare=True, aliases=("add_rport",)),
    CoreFunction("force_local_rport", ((),), bare=True, aliases=("add_local_rport",)),
    CoreFunction("force_tcp_alias", ((), ("N",)), bare=True, aliases=("add_tcp_alias",)),
    CoreFunction("set_advertised_address", (("H",),)),
    CoreFunction("set_advertised_port", (("N",),)),
    CoreFunction("force_send_socket", (("K",),)),
    CoreFunction("serialize_branches", (("N",),)),
    CoreFunction("next_branches", ((),)),
    CoreFunction("use_blacklist", (("S",),)),
    CoreFunction("unuse_blacklist", (("S",),)),
    CoreFunction("cache_store", (("S", "S", "S"), ("S", "S", "S", "N"), ("S", "S", "S", "P"))),
    CoreFunction("cache_remove", (("S", "S"),)),
    CoreFunction("cache_fetch", (("S", "S", "P"),)),
    CoreFunction("xlog", (("S",), ("S", "S"))),
    CoreFunction("xdbg", (("S",),)),
    CoreFunction("construct_uri", (("S", "S", "S", "S", "S", "P"),)),
]

#: every spelling of a core action -> its description
CORE_FUNCTIONS: dict[str, CoreFunction] = {}
for _cf in _CORE_LIST:
    CORE_FUNCTIONS[_cf.name] = _cf
    for _alias in _cf.aliases:
        CORE_FUNCTIONS[_alias] = _cf

_KIND_WORDS = {
    "S": "a quoted string",
    "N": "a number",
    "SN": "a number",
    "P": "a pseudo-variable",
    "H": "an address",
    "K": "[proto:]host[:port]",
}

MAX_MODULE_ARGS = 6

# what 1.6's str2q() accepts as a q value
_Q_VALUE = re.compile(r"[ \t]*(?:0*1(?:\.0+)?|0+|0*\.[0-9]+)")


# ======================================================================
# global parameters: canonical name -> value kind
#
# int: unsigned number; sint: signed number; bool: number or yes/no word;
# str: quoted string; id: bare word; idstr: bare word or string;
# sockets: list of [proto:]addr[:port] [as addr[:port]]; addr: IP, host or
# string; tls_method, tos, blacklist: special forms.

GLOBAL_PARAMS: dict[str, str] = {
    "debug": "sint", "fork": "bool", "log_stderror": "bool", "log_facility": "id",
    "log_name": "str", "avp_aliases": "str", "listen": "sockets", "alias": "sockets",
    "auto_aliases": "bool", "dns": "bool", "rev_dns": "bool", "dns_try_ipv6": "bool",
    "dns_retr_time": "int", "dns_retr_no": "int", "dns_servers_no": "int",
    "dns_use_search_list": "bool", "port": "int", "max_while_loops": "int",
    "maxbuffer": "int", "children": "int", "check_via": "bool", "memlog": "int",
    "memdump": "int", "sip_warning": "bool", "server_signature": "bool",
    "server_header": "str", "user_agent_header": "str", "user": "idstr",
    "group": "idstr", "chroot": "idstr", "workdir": "idstr", "mhomed": "bool",
    "disable_tcp": "bool", "tcp_children": "int", "tcp_accept_aliases": "bool",
    "tcp_send_timeout": "int", "tcp_connect_timeout": "int",
    "tcp_connection_lifetime": "int", "tcp_poll_method": "idstr",
    "tcp_max_connections": "int", "tcp_crlf_pingpong": "bool", "disable_tls": "bool",
    "tls_log": "int", "tls_port_no": "int", "tls_method": "tls_method",
    "tls_verify_client": "bool", "tls_verify_server": "bool",
    "tls_require_client_certificate": "bool", "tls_certificate": "str",
    "tls_private_key": "str", "tls_ca_list": "str", "tls_ciphers_list": "str",
    "tls_handshake_timeout": "int", "tls_send_timeout": "int",
    "tls_client_domain_avp": "int", "advertised_address": "addr",
    "advertised_port": "int", "disable_core_dump": "bool", "open_files_limit": "int",
    "mcast_loopback": "bool", "mcast_ttl": "int", "tos": "tos",
    "disable_dns_failover": "bool", "disable_dns_blacklist": "bool",
    "dst_blacklist": "blacklist", "disable_stateless_fwd": "bool",
    "db_version_table": "str", "disable_503_translation": "bool",
    "xlog_buf_size": "int", "xlog_force_color": "bool", "mpath": "str",
}

#: other spellings 1.6 accepts for a global parameter
PARAM_ALIASES = {
    "mem_log": "memlog", "mem_dump": "memdump", "uid": "user", "gid": "group",
    "wdir": "workdir", "tlslog": "tls_log",
}

TLS_SERVER_KEYS = frozenset({
    "tls_method", "tls_certificate", "tls_private_key", "tls_ca_list", "tls_ciphers_list",
    "tls_verify_client", "tls_require_client_certificate",
})
TLS_CLIENT_KEYS = frozenset({
    "tls_method", "tls_certificate", "tls_private_key", "tls_ca_list", "tls_ciphers_list",
    "tls_verify_server",
})

TLS_METHODS = {
    "sslv23": "SSLv23", "SSLv23": "SSLv23", "SSLV23": "SSLv23",
    "sslv2": "SSLv2", "SSLv2": "SSLv2", "SSLV2": "SSLv2",
    "sslv3": "SSLv3", "SSLv3": "SSLv3", "SSLV3": "SSLv3",
    "tlsv1": "TLSv1", "TLSv1": "TLSv1", "TLSV1": "TLSv1",
}

TOS_NAMES = ("IPTOS_LOWDELAY", "IPTOS_THROUGHPUT", "IPTOS_RELIABILITY",
             "IPTOS_MINCOST", "IPTOS_LOWCOST")

_KIND_EXPECT = {
    "int": "an unsigned number",
    "sint": "a number",
    "bool": "a number or yes/no",
    "str": "a quoted string",
    "id": "a bare word (no quotes)",
    "idstr": "a word or a quoted string",
    "sockets": "one or more [proto:]address[:port] [as address[:port]]",
    "addr": "an IP address, a host name or a quoted string",
    "tls_method": "SSLv23, SSLv2, SSLv3 or TLSv1",
    "tos": "a positive number or IPTOS_LOWDELAY/THROUGHPUT/RELIABILITY/MINCOST/LOWCOST",
    "blacklist": "NAME : { (proto, net, port, \"pattern\"), ... }",
}

ROUTE_KEYWORDS = {
    "route": "request", "failure_route": "failure", "onreply_route": "onreply",
    "branch_route": "branch", "error_route": "error", "local_route": "local",
    "startup_route": "startup", "timer_route": "timer",
}
_KIND_KEYWORD = {v: k for k, v in ROUTE_KEYWORDS.items()}

_EQUAL_OPS = ("==", "!=")
_INT_OPS = ("==", "!=", ">", "<", ">=", "<=")
_MAIN_ROUTE_NAME = re.compile(r"\s*[+-]?0+")


# ======================================================================
# helper values passed between transformer callbacks


@dataclass(slots=True)
class _Spliced:
    """Items produced by include_file, to be flattened into the parent list."""

    items: list[Any]


@dataclass(slots=True)
class _Arg:
    kind: str          # string | number | pvar | socket
    node: Any
    signed: bool = False


@dataclass(slots=True)
class _CaseLabel:
    node: Any          # NumLit | StrLit
    loc: dict[str, Any]


@dataclass(slots=True)
class _DefaultLabel:
    loc: dict[str, Any]


@dataclass(slots=True)
class _Break:
    loc: dict[str, Any]


@dataclass(slots=True)
class _ParamValue:
    form: str          # number | sockets | blacklist
    value: Any
    loc: dict[str, Any]
    extra: Any = None


def _flatten(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for it in items:
        if it is None:
            continue
        if isinstance(it, _Spliced):
            out.extend(it.items)
        else:
            out.append(it)
    return out


def _describe_value(pv: _ParamValue) -> str:
    if pv.form == "number":
        return "a number"
    if pv.form == "blacklist":
        return "a blacklist definition"
    socks = pv.value
    if len(socks) > 1:
        return "a list of addresses"
    s = socks[0]
    if s.proto is not None or s.port is not None or s.adv_host is not None:
        return "a socket address"
    if isinstance(s.host, ast.StrLit):
        return "a quoted string"
    if isinstance(s.host, ast.IPLit):
        return "an IP address"
    return "a bare word"


# ======================================================================
# tree -> AST


@v_args(meta=True)
class _Builder(Transformer_NonRecursive):
    """Turns Lark's tree into AST nodes, collecting semantic errors.

    Non-recursive, so that long ``else if`` chains do not hit Python's
    recursion limit.
    """

    def __init__(self, filename: str, errors: list[ErrorItem],
                 include_stack: tuple[str, ...], includes: list[str]) -> None:
        super().__init__(visit_tokens=False)
        self.filename = filename
        self.errors = errors
        self.include_stack = include_stack
        self.includes = includes

    # ------------------------------------------------------------ utilities

    def _loc(self, where: Any) -> dict[str, Any]:
        if isinstance(where, Token):
            return {"file": self.filename, "line": where.line or 0, "col": where.column or 0}
        if isinstance(where, ast.Node):
            return {"file": where.file, "line": where.line, "col": where.col}
        if isinstance(where, dict):
            return where
        line = getattr(where, "line", 0) or 0
        col = getattr(where, "column", 0) or 0
        return {"file": self.filename, "line": line, "col": col}

    def _err(self, where: Any, message: str) -> None:
        loc = self._loc(where)
        self.errors.append((loc["file"], loc["line"], loc["col"], message))

    def _strlit(self, tok: Token) -> ast.StrLit:
        text = str(tok)
        return ast.StrLit(unescape_string(text), raw=text[1:-1], quote=text[0], **self._loc(tok))

    def _pvar(self, tok: Token) -> ast.PVar:
        text = str(tok)
        loc = self._loc(tok)
        try:
            parts = parse_pv_token(text)
        except PVSyntaxError as exc:
            self._err(self._offset_loc(tok, exc.offset), f"bad pseudo-variable {text}: {exc.message}")
            return ast.PVar(text, name="", **loc)
        return self._pvar_from_parts(parts, tok)

    def _offset_loc(self, tok: Token, offset: int) -> dict[str, Any]:
        text = str(tok)[:offset]
        line = (tok.line or 0) + text.count("\n")
        if "\n" in text:
            col = len(text) - text.rfind("\n")
        else:
            col = (tok.column or 0) + offset
        return {"file": self.filename, "line": line, "col": col}

    def _pvar_from_parts(self, parts: PVTokenParts, tok: Token) -> ast.PVar:
        index: int | str | ast.PVar | None
        if isinstance(parts.index, PVTokenParts):
            index = self._pvar_from_parts(parts.index, tok)
        else:
            index = parts.index
        inner_pv = self._pvar_from_parts(parts.inner_pvar, tok) if parts.inner_pvar else None
        return ast.PVar(parts.raw, name=parts.name, inner=parts.inner, index=index,
                        transforms=list(parts.transforms), context=parts.context,
                        inner_pvar=inner_pv, **self._offset_loc(tok, parts.offset))

    def _value(self, node: Any) -> Any:
        """An operand of an assignment expression: a bare word is a string."""
        if isinstance(node, ast.Call) and not node.parens and not node.core:
            return ast.StrLit(node.written, raw=node.written, quote="", **self._loc(node))
        return node

    def _operand(self, node: Any) -> Any:
        node = self._value(node)
        if isinstance(node, ast.NullLit):
            self._err(node, "NULL can only be assigned ($pv = NULL) or compared (== / !=)")
        return node

    def _check_action(self, node: Any) -> Any:
        if isinstance(node, ast.Call) and not node.parens and not node.core:
            word = node.written
            if word in ("break", "esac"):
                self._err(node, f"'{word}' is only allowed as the last statement of a"
                          " 'case' (1.6 has no break for loops)")
            elif word in ("case", "default"):
                self._err(node, f"'{word}' outside a switch")
            else:
                self._err(node, f"bare word '{word}' found, command calls need '()'"
                          f" (write {word}())")
        return node

    def _check_cond(self, node: Any) -> Any:
        return self._check_action(node)

    # ------------------------------------------------------------ tokens / small rules

    def number(self, meta: Any, children: list[Token]) -> ast.NumLit:
        tok = children[0]
        return ast.NumLit(_number_value(str(tok)), raw=str(tok), **self._loc(tok))

    def sign(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])

    def snumber(self, meta: Any, children: list[Any]) -> ast.NumLit:
        sign, num = children
        if sign is None:
            return num
        value = -num.value if sign == "-" else num.value
        return ast.NumLit(_to_int32(value), raw=sign + num.raw, **self._loc(meta))

    def string(self, meta: Any, children: list[Token]) -> ast.StrLit:
        return self._strlit(children[0])

    def pvar(self, meta: Any, children: list[Token]) -> ast.PVar:
        return self._pvar(children[0])

    def null(self, meta: Any, children: list[Token]) -> ast.NullLit:
        return ast.NullLit(**self._loc(children[0]))

    def proto(self, meta: Any, children: list[Token]) -> ast.ProtoLit:
        return ast.ProtoLit(str(children[0]).lower(), **self._loc(children[0]))

    def port(self, meta: Any, children: list[Token]) -> int:
        text = str(children[0])
        if text == "any":
            return 0
        value = _number_value(text)
        if not 0 <= value <= 65535:
            self._err(children[0], f"invalid port number {text}")
        return value

    def host_sep(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])

    def host(self, meta: Any, children: list[Any]) -> ast.HostLit:
        return ast.HostLit("".join(str(c) for c in children), **self._loc(meta))

    def ipv4(self, meta: Any, children: list[Token]) -> ast.IPLit:
        octets = [_number_value(str(t)) for t in children]
        text = ".".join(str(t) for t in children)
        if any(not 0 <= o <= 255 for o in octets):
            self._err(meta, f"invalid IPv4 address {text}")
            return ast.IPLit(text, 4, **self._loc(meta))
        return ast.IPLit(".".join(str(o) for o in octets), 4, **self._loc(meta))

    def ipv6(self, meta: Any, children: list[Token]) -> ast.IPLit:
        tok = children[0]
        try:
            addr = str(ipaddress.IPv6Address(str(tok)))
        except ValueError:
            self._err(tok, f"bad IPv6 address {tok}")
            addr = str(tok)
        return ast.IPLit(addr, 6, **self._loc(meta))

    def ip(self, meta: Any, children: list[Any]) -> ast.IPLit:
        return children[0]

    def ipnet(self, meta: Any, children: list[Any]) -> ast.NetLit:
        ip, mask = children
        full = 32 if ip.version == 4 else 128
        if mask is None:
            return ast.NetLit(ip, full, **self._loc(meta))
        if isinstance(mask, Token):
            bits = _number_value(str(mask))
            if not 0 <= bits <= full:
                self._err(mask, f"invalid bit number in netmask: {mask} (0..{full})")
            return ast.NetLit(ip, bits, **self._loc(meta))
        if mask.version != ip.version:
            self._err(mask, "netmask and address are not of the same IP version")
            return ast.NetLit(ip, full, mask, **self._loc(meta))
        value = int(ipaddress.ip_address(mask.addr))
        bits = bin(value).count("1")
        contiguous = value == ((1 << full) - 1) ^ ((1 << (full - bits)) - 1)
        return ast.NetLit(ip, bits if contiguous else -1, mask, **self._loc(meta))

    def listen_id(self, meta: Any, children: list[Any]) -> Any:
        item = children[0]
        if isinstance(item, Token):
            return self._strlit(item)
        return item

    def socket_addr(self, meta: Any, children: list[Any]) -> ast.Socket:
        if isinstance(children[0], ast.ProtoLit):
            proto, host, port = children
            return ast.Socket(proto.proto, host, port, **self._loc(meta))
        host, port = children
        return ast.Socket(None, host, port, **self._loc(meta))

    def socket(self, meta: Any, children: list[Any]) -> ast.Socket:
        sock, _as, adv, adv_port = children
        if adv is not None:
            sock.adv_host = adv
            sock.adv_port = adv_port if adv_port is not None else 5060
        return sock

    def cmpop(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])

    def assignop(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])

    def logic_op(self, meta: Any, children: list[Token]) -> str:
        return "and" if str(children[0]) in ("&&", "and") else "or"

    def not_kw(self, meta: Any, children: list[Token]) -> str:
        return "!"

    def bit_op(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])

    arith_op = bit_op
    break_kw = bit_op

    def uri_kw(self, meta: Any, children: list[Token]) -> ast.Keyword:
        written = str(children[0])
        name = "uri" if written == "status" else written
        return ast.Keyword(name, written=written, **self._loc(children[0]))

    def ip_kw(self, meta: Any, children: list[Token]) -> ast.Keyword:
        return ast.Keyword(str(children[0]), written=str(children[0]), **self._loc(children[0]))

    port_kw = ip_kw

    def route_kw(self, meta: Any, children: list[Token]) -> Token:
        return children[0]

    def tls_domain_kw(self, meta: Any, children: list[Token]) -> Token:
        return children[0]

    def route_name(self, meta: Any, children: list[Any]) -> str:
        item = children[0]
        if isinstance(item, ast.NumLit):
            return str(item.value)
        if isinstance(item, Token) and item.type == "STRING":
            return unescape_string(str(item))
        return str(item)

    # ------------------------------------------------------------ conditions

    def boolop(self, meta: Any, children: list[Any]) -> ast.BoolOp:
        left, op, right = children
        return ast.BoolOp(op, self._check_cond(left), self._check_cond(right), **self._loc(meta))

    def not_op(self, meta: Any, children: list[Any]) -> ast.Not:
        return ast.Not(self._check_cond(children[1]), **self._loc(meta))

    def expr_cond(self, meta: Any, children: list[Any]) -> ast.ExprCond:
        return ast.ExprCond(self._operand(children[0]), **self._loc(meta))

    def _compare(self, meta: Any, op: str, left: Any, right: Any, allowed: tuple[str, ...],
                 what: str) -> ast.Compare:
        if op not in allowed:
            ops = " ".join(allowed)
            self._err(meta, f"operator '{op}' cannot be used with {what} (use one of: {ops})")
        return ast.Compare(op, left, right, **self._loc(meta))

    def cmp_pvar(self, meta: Any, children: list[Any]) -> ast.Compare:
        tok, op, rhs = children
        left = self._pvar(tok)
        if isinstance(rhs, Token):
            right = self._pvar(rhs) if rhs.type == "PVAR" else (
                self._strlit(rhs) if rhs.type == "STRING" else
                ast.StrLit(str(rhs), raw=str(rhs), quote="", **self._loc(rhs)))
            if rhs.type == "MYSELF":
                right = ast.MySelf(**self._loc(rhs))
                return self._compare(meta, op, left, right, _EQUAL_OPS, "myself")
            return ast.Compare(op, left, right, **self._loc(meta))
        if isinstance(rhs, ast.NullLit):
            return self._compare(meta, op, left, rhs, _EQUAL_OPS, "NULL")
        return self._compare(meta, op, left, rhs, _INT_OPS, "a number")

    def cmp_method(self, meta: Any, children: list[Any]) -> ast.Compare:
        kw, op, rhs = children
        left = ast.Keyword("method", written="method", **self._loc(kw))
        if rhs.type == "STRING":
            right = self._strlit(rhs)
        else:
            right = ast.StrLit(str(rhs), raw=str(rhs), quote="", **self._loc(rhs))
        return ast.Compare(op, left, right, **self._loc(meta))

    def _rhs_myself_or_str(self, rhs: Any) -> Any:
        if isinstance(rhs, Token):
            if rhs.type == "MYSELF":
                return ast.MySelf(**self._loc(rhs))
            return self._strlit(rhs)
        return rhs

    def cmp_uri(self, meta: Any, children: list[Any]) -> ast.Compare:
        kw, op, rhs = children
        right = self._rhs_myself_or_str(rhs)
        if isinstance(right, ast.MySelf):
            return self._compare(meta, op, kw, right, _EQUAL_OPS, "myself")
        return ast.Compare(op, kw, right, **self._loc(meta))

    def cmp_ip(self, meta: Any, children: list[Any]) -> ast.Compare:
        kw, op, rhs = children
        right = self._rhs_myself_or_str(rhs)
        if isinstance(right, ast.MySelf):
            return self._compare(meta, op, kw, right, _EQUAL_OPS, "myself")
        if isinstance(right, ast.NetLit):
            return self._compare(meta, op, kw, right, _EQUAL_OPS, "an IP address or network")
        return ast.Compare(op, kw, right, **self._loc(meta))

    def cmp_port(self, meta: Any, children: list[Any]) -> ast.Compare:
        kw, op, rhs = children
        return self._compare(meta, op, kw, rhs, _INT_OPS, kw.name)

    def cmp_proto(self, meta: Any, children: list[Any]) -> ast.Compare:
        tok, op, rhs = children
        left = ast.Keyword("proto", written="proto", **self._loc(tok))
        return self._compare(meta, op, left, rhs, _INT_OPS, "proto")

    def cmp_af(self, meta: Any, children: list[Any]) -> ast.Compare:
        tok, op, rhs = children
        left = ast.Keyword("af", written="af", **self._loc(tok))
        return self._compare(meta, op, left, rhs, _INT_OPS, "af")

    def cmp_msglen(self, meta: Any, children: list[Any]) -> ast.Compare:
        tok, op, rhs = children
        left = ast.Keyword("msg:len", written="msg:len", **self._loc(tok))
        if isinstance(rhs, Token):
            rhs = ast.NumLit(MAX_LEN, raw="max_len", **self._loc(rhs))
        return self._compare(meta, op, left, rhs, _INT_OPS, "msg:len")

    def cmp_myself(self, meta: Any, children: list[Any]) -> ast.Compare:
        tok, op, kw = children
        right = ast.MySelf(**self._loc(tok))
        return self._compare(meta, op, kw, right, _EQUAL_OPS, "myself")

    # ------------------------------------------------------------ expressions

    def binop(self, meta: Any, children: list[Any]) -> ast.BinOp:
        left, op, right = children
        return ast.BinOp(op, self._operand(left), self._operand(right), **self._loc(meta))

    def bnot(self, meta: Any, children: list[Any]) -> ast.UnOp:
        return ast.UnOp("~", self._operand(children[0]), **self._loc(meta))

    def assign(self, meta: Any, children: list[Any]) -> ast.Assign:
        tok, op, value = children
        target = self._pvar(tok)
        value = self._value(value)
        if target.transforms:
            self._err(tok, "transformations are not allowed on the left side of an assignment")
        if isinstance(value, ast.NullLit):
            if op not in ("=", ":="):
                self._err(value, f"NULL can only be assigned with '=' or ':=', not '{op}'")
            elif op == ":=" and target.name != "avp":
                self._err(tok, "':= NULL' works only on AVPs ($avp(...)); use '= NULL'")
        return ast.Assign(target, op, value, **self._loc(meta))

    # ------------------------------------------------------------ commands

    def args(self, meta: Any, children: list[_Arg]) -> list[_Arg]:
        return children

    def arg_string(self, meta: Any, children: list[Token]) -> _Arg:
        return _Arg("string", self._strlit(children[0]))

    def arg_number(self, meta: Any, children: list[Any]) -> _Arg:
        num = children[0]
        return _Arg("number", num, signed=num.raw[:1] in "+-")

    def arg_pvar(self, meta: Any, children: list[Token]) -> _Arg:
        return _Arg("pvar", self._pvar(children[0]))

    def arg_socket(self, meta: Any, children: list[Any]) -> _Arg:
        loc = self._loc(meta)
        if isinstance(children[0], ast.ProtoLit):
            proto, host, port = children
            return _Arg("socket", ast.Socket(proto.proto, host, port, **loc))
        host, port = children
        if isinstance(host, Token):
            host = self._strlit(host)
        if port is None:
            return _Arg("host", host)
        return _Arg("socket", ast.Socket(None, host, port, **loc))

    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        name_tok, args = children
        return self._build_call(meta, name_tok, args or [], parens=True)

    def call_bare(self, meta: Any, children: list[Token]) -> ast.Call:
        return self._build_call(meta, children[0], [], parens=False)

    def _build_call(self, meta: Any, name_tok: Token, args: list[_Arg],
                    parens: bool) -> ast.Call:
        written = str(name_tok)
        loc = self._loc(name_tok)
        core = CORE_FUNCTIONS.get(written)
        if core is None:
            if parens:
                return ast.Call(written, self._module_args(written, args), core=False,
                                written=written, parens=True, **loc)
            return ast.Call(written, [], core=False, written=written, parens=False, **loc)
        if not parens:
            if not core.bare:
                self._err(name_tok, f"{written} needs parentheses: "
                           f"{self._forms(written, core)}")
            return ast.Call(core.name, [], core=True, written=written, parens=False, **loc)
        nodes = self._match_core(written, core, args, name_tok)
        if core.name == "append_branch" and len(nodes) == 2 and isinstance(nodes[1], ast.StrLit) \
                and not _Q_VALUE.fullmatch(nodes[1].value):
            self._err(nodes[1], f"append_branch(): bad q value \"{nodes[1].value}\""
                      " (a number from 0 to 1, e.g. \"0.5\")")
        return ast.Call(core.name, nodes, core=True, written=written, parens=True, **loc)

    def _forms(self, written: str, core: CoreFunction) -> str:
        forms = []
        for sig in core.signatures:
            forms.append(f"{written}(" + ", ".join(_KIND_WORDS[k] for k in sig) + ")")
        if core.bare:
            forms.append(written)
        return " or ".join(forms)

    def _match_core(self, written: str, core: CoreFunction, args: list[_Arg],
                    where: Token) -> list[Any]:
        candidates = [s for s in core.signatures if len(s) == len(args)]
        first_problem = None
        for sig in candidates:
            nodes: list[Any] = []
            problem = None
            for kind, arg in zip(sig, args, strict=True):
                node, problem = self._coerce(kind, arg)
                if problem:
                    break
                nodes.append(node)
            if problem is None:
                return nodes
            first_problem = first_problem or problem
        if candidates and first_problem:
            arg_node, text = first_problem
            self._err(arg_node, f"{written}(): {text}")
        else:
            counts = sorted({len(sig) for sig in core.signatures})
            allowed = " or ".join(str(c) for c in counts)
            noun = "argument" if counts == [1] else "arguments"
            self._err(where, f"{written}() takes {allowed} {noun}, not {len(args)}: "
                      f"{self._forms(written, core)}")
        return [a.node for a in args]

    def _coerce(self, kind: str, arg: _Arg) -> tuple[Any, tuple[Any, str] | None]:
        node = arg.node
        if kind == "S":
            if arg.kind == "string":
                return node, None
            if arg.kind == "number":     # superset: unquoted integer
                return ast.StrLit(node.raw, raw=node.raw, quote="", **self._loc(node)), None
            return None, (node, f"expected a quoted string, got {self._arg_desc(arg)}")
        if kind in ("N", "SN"):
            if arg.kind == "number":
                if kind == "N" and arg.signed:
                    return None, (node, f"expected an unsigned number, got {node.raw}")
                return node, None
            return None, (node, f"expected an unquoted number, got {self._arg_desc(arg)}")
        if kind == "P":
            if arg.kind == "pvar":
                return node, None
            return None, (node, f"expected a pseudo-variable, got {self._arg_desc(arg)}")
        if kind == "H":
            if arg.kind in ("string", "host"):
                return node, None
            return None, (node, f"expected an address, got {self._arg_desc(arg)}")
        if kind == "K":
            if arg.kind == "socket":
                return node, None
            if arg.kind in ("string", "host"):
                return ast.Socket(None, node, None, **self._loc(node)), None
            return None, (node, f"expected [proto:]host[:port], got {self._arg_desc(arg)}")
        raise AssertionError(kind)

    @staticmethod
    def _arg_desc(arg: _Arg) -> str:
        return {
            "string": "a quoted string", "number": "a number", "pvar": "a pseudo-variable",
            "socket": "an address", "host": "a bare word",
        }[arg.kind]

    def _module_args(self, name: str, args: list[_Arg]) -> list[Any]:
        out: list[Any] = []
        for arg in args:
            node = arg.node
            if arg.kind in ("string", "number"):
                out.append(node)
            elif arg.kind == "pvar":
                self._err(node, f"{name}(): module function arguments must be quoted strings;"
                           f" write \"{node.raw}\"")
                out.append(node)
            elif arg.kind == "host" and isinstance(node, ast.HostLit):
                self._err(node, f"{name}(): bare word '{node.name}' used as an argument;"
                           f" quote it: \"{node.name}\"")
                out.append(node)
            else:
                self._err(node, f"{name}(): unquoted address used as an argument;"
                           " module function arguments must be quoted strings")
                out.append(node)
        if len(args) > MAX_MODULE_ARGS:
            self._err(args[MAX_MODULE_ARGS].node, f"{name}(): too many arguments "
                       f"({len(args)}); a function takes at most {MAX_MODULE_ARGS}")
        return out

    def route_call(self, meta: Any, children: list[str]) -> ast.RouteCall:
        return ast.RouteCall(children[0], **self._loc(meta))

    def return_stmt(self, meta: Any, children: list[Any]) -> ast.Return:
        value = children[0] if children else None
        if isinstance(value, Token):
            value = self._pvar(value)
        return ast.Return(value, **self._loc(meta))

    def exit_stmt(self, meta: Any, children: list[Any]) -> ast.Exit:
        return ast.Exit(**self._loc(meta))

    def drop_stmt(self, meta: Any, children: list[Any]) -> ast.Drop:
        return ast.Drop(**self._loc(meta))

    # ------------------------------------------------------------ statements

    def block(self, meta: Any, children: list[Any]) -> ast.Block:
        body = [self._check_action(c) for c in _flatten(children)]
        return ast.Block(body, **self._loc(meta))

    def stm(self, meta: Any, children: list[Any]) -> ast.Block:
        if len(children) == 1 and isinstance(children[0], ast.Block):
            return children[0]          # `{ ... }`; an action is never a bare Block
        items = [self._check_action(c) for c in _flatten(children)]
        return ast.Block(items, **self._loc(meta))

    def if_stmt(self, meta: Any, children: list[Any]) -> ast.If:
        cond, then, orelse = children
        return ast.If(self._check_cond(cond), then, orelse, **self._loc(meta))

    def while_stmt(self, meta: Any, children: list[Any]) -> ast.While:
        cond, body = children
        return ast.While(self._check_cond(cond), body, **self._loc(meta))

    def case_label(self, meta: Any, children: list[Any]) -> _CaseLabel:
        label = children[0]
        if isinstance(label, Token):
            label = self._strlit(label)
        return _CaseLabel(label, self._loc(meta))

    def default_label(self, meta: Any, children: list[Any]) -> _DefaultLabel:
        return _DefaultLabel(self._loc(meta))

    def case_break(self, meta: Any, children: list[Any]) -> _Break:
        return _Break(self._loc(meta))

    def switch_stmt(self, meta: Any, children: list[Any]) -> ast.Switch:
        subject = self._pvar(children[0])
        cases: list[ast.Case] = []
        default: ast.Case | None = None
        current: ast.Case | None = None
        for item in _flatten(children[1:]):
            if isinstance(item, _CaseLabel):
                if default is not None:
                    self._err(item.loc, "'case' after 'default': default must be the last label")
                current = ast.Case(item.node, ast.Block([], **item.loc), **item.loc)
                cases.append(current)
            elif isinstance(item, _DefaultLabel):
                if default is not None:
                    self._err(item.loc, "second 'default' in the same switch")
                current = ast.Case(None, ast.Block([], **item.loc), **item.loc)
                default = current
            elif isinstance(item, _Break):
                if current is None:
                    self._err(item.loc, "'break' before the first 'case'")
                elif current is default:
                    self._err(item.loc, "'break' is not allowed in 'default' in 1.6"
                               " (default is the last label; just end the switch)")
                elif current.brk:
                    self._err(item.loc, "'break' must be the last statement of a case"
                               " (this one follows another 'break')")
                else:
                    current.brk = True
            else:
                self._check_action(item)
                if current is None:
                    self._err(item, "statement before the first 'case' of a switch")
                elif current.brk:
                    self._err(item, "'break' must be the last statement of a case"
                               " (start a new 'case' or remove the 'break')")
                else:
                    current.body.body.append(item)
        if not cases:
            self._err(meta, "switch needs at least one 'case'")
        return ast.Switch(subject, cases, default, **self._loc(meta))

    def actions_file(self, meta: Any, children: list[Any]) -> list[Any]:
        return [self._check_action(c) for c in _flatten(children)]

    # ------------------------------------------------------------ include_file

    def _include(self, meta: Any, tok: Token, start: str) -> _Spliced:
        name = unescape_string(str(tok))
        base = os.path.dirname(self.filename) if not self.filename.startswith("<") else ""
        path = name if os.path.isabs(name) else os.path.join(base, name)
        real = os.path.realpath(path)
        if real in self.include_stack:
            self._err(tok, f"include_file \"{name}\" includes itself (include cycle)")
            return _Spliced([])
        if len(self.include_stack) >= MAX_INCLUDE_DEPTH:
            self._err(tok, f"include_file nested deeper than {MAX_INCLUDE_DEPTH} levels")
            return _Spliced([])
        try:
            text = _read_cfg(path)
        except OSError as exc:
            self._err(tok, f"cannot read included file \"{name}\": {exc.strerror or exc}")
            return _Spliced([])
        self.includes.append(path)
        tree = _parse_tree(text, path, start)
        sub = _Builder(path, self.errors, (*self.include_stack, real), self.includes)
        items = _transform(sub, tree)
        return _Spliced(list(items))

    def include(self, meta: Any, children: list[Token]) -> _Spliced:
        return self._include(meta, children[0], "start")

    def include_action(self, meta: Any, children: list[Token]) -> _Spliced:
        return self._include(meta, children[0], "actions_file")

    # ------------------------------------------------------------ top level

    def start(self, meta: Any, children: list[Any]) -> list[Any]:
        return _flatten(children)

    def loadmodule(self, meta: Any, children: list[Token]) -> ast.LoadModule:
        return ast.LoadModule(unescape_string(str(children[0])), **self._loc(meta))

    def modparam(self, meta: Any, children: list[Any]) -> ast.ModParam:
        mod, param, value = children
        if isinstance(value, Token):
            value = self._strlit(value)
        return ast.ModParam(unescape_string(str(mod)), unescape_string(str(param)), value,
                            **self._loc(meta))

    def value_number(self, meta: Any, children: list[Any]) -> _ParamValue:
        return _ParamValue("number", children[0], self._loc(meta))

    def value_sockets(self, meta: Any, children: list[Any]) -> _ParamValue:
        return _ParamValue("sockets", children, self._loc(meta))

    def value_blacklist(self, meta: Any, children: list[Any]) -> _ParamValue:
        name, rules = children
        return _ParamValue("blacklist", name, self._loc(meta), extra=rules or [])

    def bl_rules(self, meta: Any, children: list[Any]) -> list[Any]:
        return children

    def bl_rule(self, meta: Any, children: list[Any]) -> ast.BlacklistRule:
        neg, proto, net, port, pattern = children
        return ast.BlacklistRule(proto.proto, net, port, unescape_string(str(pattern)),
                                 negate=neg is not None, **self._loc(meta))

    def param(self, meta: Any, children: list[Any]) -> ast.GlobalParam | None:
        name_tok, pv = children
        return self._param(name_tok, pv, None)

    def tls_setting(self, meta: Any, children: list[Any]) -> ast.GlobalParam | None:
        name_tok, pv = children
        return self._param(name_tok, pv, "tls")

    def _param(self, name_tok: Token, pv: _ParamValue, scope: str | None
               ) -> ast.GlobalParam | None:
        written = str(name_tok)
        name = PARAM_ALIASES.get(written, written)
        kind = GLOBAL_PARAMS.get(name)
        if kind is None or (scope == "tls" and name not in TLS_SERVER_KEYS | TLS_CLIENT_KEYS):
            known = sorted(set(GLOBAL_PARAMS) | set(PARAM_ALIASES)) if scope is None else \
                sorted(TLS_SERVER_KEYS | TLS_CLIENT_KEYS)
            hint = difflib.get_close_matches(written, known, n=1)
            what = "global parameter" if scope is None else "TLS domain setting"
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            self._err(name_tok, f"unknown {what} '{written}'{extra}")
            return None
        value = self._param_value(written, kind, pv)
        if value is None:
            return None
        return ast.GlobalParam(name, value, written=written, **self._loc(name_tok))

    def _param_value(self, written: str, kind: str, pv: _ParamValue) -> Any:
        def bad() -> None:
            self._err(pv.loc, f"{written} expects {_KIND_EXPECT[kind]}, "
                       f"got {_describe_value(pv)}")

        single = None
        if pv.form == "sockets" and len(pv.value) == 1:
            s = pv.value[0]
            if s.proto is None and s.port is None and s.adv_host is None:
                single = s.host
        if kind in ("int", "sint", "bool"):
            if pv.form != "number":
                bad()
                return None
            num = pv.value
            if kind != "sint" and num.raw[:1] in "+-":
                self._err(pv.loc, f"{written} expects an unsigned number, got {num.raw}"
                           + (" (only debug takes a sign)" if num.raw[:1] == "-" else ""))
                return None
            return num
        if kind == "str":
            if isinstance(single, ast.StrLit):
                return single
            bad()
            return None
        if kind in ("id", "idstr", "tls_method", "tos"):
            if kind == "tos" and pv.form == "number":
                if pv.value.value <= 0:
                    self._err(pv.loc, f"invalid tos value {pv.value.raw} (must be > 0)")
                    return None
                return pv.value
            if isinstance(single, ast.HostLit) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*",
                                                                single.name):
                word = ast.Ident(single.name, **self._loc(single))
                if kind == "tls_method" and single.name not in TLS_METHODS:
                    bad()
                    return None
                if kind == "tls_method":
                    word.name = TLS_METHODS[single.name]
                if kind == "tos" and single.name.upper() not in TOS_NAMES:
                    bad()
                    return None
                return word
            if kind == "idstr" and isinstance(single, ast.StrLit):
                return single
            bad()
            return None
        if kind == "addr":
            if single is not None:
                return single
            bad()
            return None
        if kind == "sockets":
            if pv.form == "sockets":
                return list(pv.value)
            bad()
            return None
        if kind == "blacklist":
            if pv.form != "blacklist":
                bad()
                return None
            name_node = pv.value
            if not (isinstance(name_node, ast.HostLit)
                    and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name_node.name)):
                self._err(name_node, "the blacklist name must be a plain word")
                return None
            if not pv.extra:
                self._err(pv.loc, "a blacklist needs at least one rule")
            return ast.Blacklist(name_node.name, list(pv.extra), **self._loc(name_node))
        raise AssertionError(kind)

    def tls_domain(self, meta: Any, children: list[Any]) -> ast.TLSDomain:
        kw = children[0]
        side = "server" if str(kw) == "tls_server_domain" else "client"
        rest = children[1:]
        address = None
        name = None
        if isinstance(rest[0], Token) and rest[0].type == "STRING":
            if side == "server":
                self._err(rest[0], "tls_server_domain takes [ip:port], not a name")
            name = unescape_string(str(rest[0]))
            settings = rest[1:]
        else:
            address = ast.Socket(None, rest[0], rest[1], **self._loc(rest[0]))
            settings = rest[2:]
        keys = TLS_SERVER_KEYS if side == "server" else TLS_CLIENT_KEYS
        params = []
        for p in settings:
            if p is None:
                continue
            if p.name not in keys:
                self._err(p, f"{p.written} cannot be set in a tls_{side}_domain block")
                continue
            params.append(p)
        if not settings:
            self._err(kw, f"tls_{side}_domain block needs at least one setting")
        return ast.TLSDomain(side, address, name, params, **self._loc(meta))

    def route_spec(self, meta: Any, children: list[Any]) -> tuple[str, Token | None]:
        return children[0], children[1]

    def route_block(self, meta: Any, children: list[Any]) -> ast.Route | None:
        kw, spec, body = children
        keyword = str(kw)
        kind = ROUTE_KEYWORDS[keyword]
        loc = self._loc(meta)
        name: str | None = None
        interval_tok: Token | None = None
        if spec is not None:
            name, interval_tok = spec
        if kind == "timer":
            if spec is None or interval_tok is None:
                self._err(kw, "timer_route needs a name and an interval:"
                           " timer_route[name, seconds] { ... }")
                return None
            interval = _number_value(str(interval_tok))
            return ast.Route(kind, name, body, interval=interval, **loc)
        if interval_tok is not None:
            self._err(interval_tok, f"only timer_route takes an interval; "
                       f"write {keyword}[{name}]")
        if kind in ("failure", "branch") and name is None:
            self._err(kw, f"{keyword} needs a name: {keyword}[NAME] {{ ... }}")
            return None
        if kind in ("error", "local", "startup") and spec is not None:
            self._err(kw, f"{keyword} takes no name: {keyword} {{ ... }}")
            name = None
        if kind == "request" and name is not None and (
                name == "" or _MAIN_ROUTE_NAME.fullmatch(name)):
            name = None        # route[0] is the main route
        return ast.Route(kind, name, body, **loc)


def _transform(builder: _Builder, tree: Tree) -> Any:
    try:
        return builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, CfgError):
            raise exc.orig_exc from None
        raise


# ======================================================================
# syntax errors


_TERMINAL_WORDS = {
    "NAME": "a name",
    "PARAM_NAME": "a parameter name",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "PVAR": "a pseudo-variable ($...)",
    "IPV6ADDR": "an IPv6 address",
    "AS": "'as'",
    "MSGLEN": "'msg:len'",
    "$END": "end of file",
}

_NUMBER_WORDS = frozenset(_WORD_NUMBERS)
_PROTO_WORDS = frozenset({"udp", "UDP", "tcp", "TCP", "tls", "TLS", "sctp", "SCTP", "any"})
_CMP_OPS = frozenset({"==", "!=", "=~", "!~", ">", "<", ">=", "<="})
_ASSIGN_OPS = frozenset({"=", ":=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^="})
_EXPR_OPS = frozenset({"+", "-", "*", "/", "%", "|", "&", "^", "<<", ">>"})


def _terminal_text(name: str) -> str | None:
    """Literal text of a string terminal, None for pattern terminals."""
    lark = get_lark()
    try:
        term = lark.get_terminal(name)
    except KeyError:
        return None
    if term.pattern.type == "str":
        return term.pattern.value
    return None


_PATTERN_ORDER = ["PARAM_NAME", "STRING", "NAME", "PVAR", "NUMBER", "IPV6ADDR", "AS", "MSGLEN",
                  "$END"]


def _expected_words(names: Iterable[str]) -> list[str]:
    order = {n: i for i, n in enumerate(_PATTERN_ORDER)}
    ordered = sorted(names, key=lambda n: (order.get(n, len(order)), n))
    texts: dict[str, str | None] = {n: _terminal_text(n) for n in ordered}
    literal = {t for t in texts.values() if t is not None}
    words: list[str] = []
    statement = {"NAME", "PVAR"} <= set(texts) and "if" in literal
    condition = "(" in literal and "PVAR" in texts and "!" in literal
    expression = not statement and not condition and "~" in literal and "PVAR" in texts
    if statement:
        words.append("a statement")
    elif condition:
        words.append("a condition")
    elif expression:
        words.append("an expression")
        statement = True        # the remaining members are the expression's parts
        literal = literal & {";", ")", "]", ","}
        texts = {n: t for n, t in texts.items() if t in literal}
    for name, text in texts.items():
        if text is None:
            if name in ("NAME", "PVAR") and (statement or condition):
                continue
            if name == "NUMBER":
                continue
            words.append(_TERMINAL_WORDS.get(name, name.lower()))
    if "NUMBER" in texts or literal & _NUMBER_WORDS:
        words.append("a number")
    if literal & _PROTO_WORDS:
        words.append("a protocol (udp, tcp, tls, sctp, any)")
    if literal & _CMP_OPS:
        words.append("a comparison operator")
    if literal & _ASSIGN_OPS and not statement:
        words.append("an assignment operator")
    if literal & (_EXPR_OPS - {"+", "-"}) and not (statement or condition):
        words.append("an operator")
    if {",", ")"} <= literal:
        literal = literal - {":"}
    if "route" in literal and "loadmodule" in literal:
        words.append("a route block")
    skip = _NUMBER_WORDS | _PROTO_WORDS | _CMP_OPS | _ASSIGN_OPS | _EXPR_OPS
    if statement or condition:
        skip = skip | {"if", "while", "switch", "return", "exit", "drop", "route", "(", "!",
                       "not", "[", "{", "+", "-", "~", "method", "uri", "status",
                       "from_uri", "to_uri", "src_ip", "dst_ip", "src_port", "dst_port",
                       "proto", "af", "myself", "include_file", ";", "null", "NULL"}
        if statement and ";" in literal and not condition:
            skip = skip - {";"}
    if "route" in literal and "loadmodule" in literal:
        skip = skip | set(ROUTE_KEYWORDS)
    for text in sorted(literal - skip):
        words.append(f"'{text}'")
    out: list[str] = []
    for w in words:
        if w not in out:
            out.append(w)
    return out


def _join_words(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    if len(words) > 10:
        words = [*words[:9], "..."]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _token_desc(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    text = str(tok)
    if tok.type == "STRING":
        return f"string {text if len(text) <= 30 else text[:27] + '...'}"
    if len(text) > 30:
        text = text[:27] + "..."
    return f"'{text}'"


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """Where the last '{' that is never closed was opened (line, col)."""
    stack: list[tuple[int, int]] = []
    try:
        for tok in get_lark().lex(text):
            if tok.type == "LBRACE":
                stack.append((tok.line or 0, tok.column or 0))
            elif tok.type == "RBRACE" and stack:
                stack.pop()
    except UnexpectedInput:
        pass
    return stack[-1] if stack else None


def _prev_end(exc: UnexpectedToken) -> tuple[int, int] | None:
    """End (line, col) of the last complete construct before the bad token."""
    ip = getattr(exc, "interactive_parser", None)
    stack = getattr(getattr(ip, "parser_state", None), "value_stack", None) if ip else None
    if not stack:
        return None
    last = stack[-1]
    if isinstance(last, Token):
        return last.end_line or 0, last.end_column or 0
    meta = getattr(last, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return meta.end_line, meta.end_column
    return None


def _state_accepts(state: Any) -> set[str]:
    """Terminals that can really follow in ``state`` (a Lark parser state).

    The raw LALR table also lists look-aheads merged in from other contexts;
    like Lark's ``InteractiveParser.accepts`` each candidate is fed to a copy
    of the state (without callbacks) and kept only if it is shifted.
    """
    try:
        table = state.parse_conf.states[state.position]
    except (AttributeError, KeyError):
        return set()
    conf = copy.copy(state.parse_conf)
    conf.callbacks = {}
    accepted = set()
    for name in table:
        if not name.isupper():
            continue
        trial = state.copy(deepcopy_values=False)
        trial.parse_conf = conf
        try:
            trial.feed_token(Token(name, ""))
        except (UnexpectedToken, AssertionError, KeyError):
            continue
        accepted.add(name)
    return accepted


def _lexical_problem(text: str, pos: int) -> str | None:
    """Messages for text no token can start at (strings, comments, `$`)."""
    rest = text[pos:]
    ch = rest[:1]
    if ch in ('"', "'"):
        return f"unterminated string: the {ch} here is never closed"
    if rest.startswith("/*"):
        return "unterminated /* comment (or comments nested more than 6 levels)"
    if ch == "$":
        return ("bad pseudo-variable: '$' must be followed by a name or '(' and its"
                " parentheses must balance")
    return None


def _syntax_error(exc: UnexpectedInput, text: str, filename: str) -> CfgError:
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        msg = _lexical_problem(text, exc.pos_in_stream)
        if msg is None:
            expected = _state_accepts(exc.state) or set(exc.allowed or ())
            words = _expected_words(expected)
            msg = f"unexpected character {text[exc.pos_in_stream]!r}"
            if words:
                msg += f"; expected {_join_words(words)}"
        return CfgError([(filename, line, col, f"syntax error: {msg}")])

    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    if tok.type != "$END" and tok.start_pos is not None:
        problem = _lexical_problem(text, tok.start_pos)
        if problem and str(tok) in ("/", "$"):
            return CfgError([(filename, tok.line or 0, tok.column or 0,
                              f"syntax error: {problem}")])
    expected = set(exc.accepts or exc.expected or ())
    literal = {_terminal_text(n) for n in expected}
    line, col = tok.line or 0, tok.column or 0
    if tok.type == "$END":
        line, col = _eof_position(text)
    top_level = "loadmodule" in literal
    found = _token_desc(tok)

    if tok.type == "$END" and "}" in literal:
        opened = _unclosed_brace(text)
        msg = "unexpected end of file: missing '}'"
        if opened:
            msg += f" to close the '{{' at {opened[0]}:{opened[1]}"
    elif top_level and str(tok) == ";":
        msg = "';' is not allowed at top level (global parameters, loadmodule and" \
              " modparam lines take no ';')"
    elif top_level and str(tok) == "}":
        msg = "unexpected '}': no block is open here"
    elif top_level and tok.type in ("NAME", "PVAR"):
        msg = (f"unexpected {found} at top level; expected a global parameter"
               " (name = value), loadmodule, modparam or a route block")
    elif str(tok) == "{" and _follows_pvar(text, tok):
        msg = ("unexpected '{' after a pseudo-variable: transformations need the $( ) form,"
               " e.g. $(ru{uri.user})")
    elif str(tok) == "(" and _follows_pvar(text, tok):
        msg = "unbalanced '(' in a pseudo-variable"
    elif str(tok) == "else" or (word := _prev_word(exc, "else")) is not None:
        if str(tok) != "else":
            line, col = word.line or 0, word.column or 0
        msg = ("'else' without a matching 'if' (a ';' between the if statement and 'else'"
               " ends the if)")
    elif ";" in literal and str(tok) != ";" and not ("if" in literal and "NAME" in expected):
        prev = _prev_end(exc)
        msg = f"missing ';' before {found}"
        if prev and prev[0] != line:
            msg += f" (the statement ending at {prev[0]}:{prev[1]} needs one)"
    else:
        words = _expected_words(expected)
        msg = f"unexpected {found}"
        if words:
            msg += f"; expected {_join_words(words)}"
        if str(tok) in _CMP_OPS and _prev_is_literal(exc):
            msg += " (a comparison must start with a pseudo-variable or a keyword)"
    return CfgError([(filename, line, col, f"syntax error: {msg}")])


def _eof_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _follows_pvar(text: str, tok: Token) -> bool:
    """True when the '{' token is glued to a `$...` token (`$ru{uri.user}`)."""
    pos = tok.start_pos or 0
    if pos == 0 or text[pos - 1].isspace():
        return False
    chunk = text[:pos].split()
    return bool(chunk) and chunk[-1].startswith("$")


def _prev_word(exc: UnexpectedToken, word: str) -> Token | None:
    """The word just before the bad token, when it is ``word`` (read as a name)."""
    ip = getattr(exc, "interactive_parser", None)
    stack = getattr(getattr(ip, "parser_state", None), "value_stack", None) if ip else None
    if not stack:
        return None
    last = stack[-1]
    if isinstance(last, Tree) and last.data == "call_bare":
        last = last.children[0]
    return last if isinstance(last, Token) and last == word else None


def _prev_is_literal(exc: UnexpectedToken) -> bool:
    ip = getattr(exc, "interactive_parser", None)
    stack = getattr(getattr(ip, "parser_state", None), "value_stack", None) if ip else None
    if not stack:
        return False
    last = stack[-1]
    if isinstance(last, Token):
        return last.type in ("STRING", "NUMBER")
    return isinstance(last, Tree) and last.data in ("snumber", "number")


# ======================================================================
# entry points


def _read_cfg(path: str | os.PathLike[str]) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()


def _parse_tree(text: str, filename: str, start: str) -> Tree:
    try:
        return get_lark().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, filename) from None


def _assemble(items: list[Any], filename: str, errors: list[ErrorItem],
              includes: list[str]) -> ast.Script:
    script = ast.Script(file=filename, line=1, col=1)
    script.includes = includes
    mpath: str | None = None
    for item in items:
        script.items.append(item)
        if isinstance(item, ast.GlobalParam):
            script.params.append(item)
            if item.name == "mpath" and isinstance(item.value, ast.StrLit):
                mpath = item.value.value
                if mpath and not mpath.endswith("/"):
                    mpath += "/"
        elif isinstance(item, ast.LoadModule):
            item.mpath = mpath
            script.loadmodules.append(item)
        elif isinstance(item, ast.ModParam):
            script.modparams.append(item)
        elif isinstance(item, ast.TLSDomain):
            script.tls_domains.append(item)
        elif isinstance(item, ast.Route):
            if item.kind == "timer":
                script.timer_routes.append(item)
                continue
            table = script.routes.setdefault(item.kind, {})
            first = table.get(item.name)
            if first is not None:
                kw = _KIND_KEYWORD[item.kind]
                what = (f"{kw}[{item.name}]" if item.name is not None else
                        "the main route (route / route[0])" if item.kind == "request" else
                        f"the global {kw}" if item.kind == "onreply" else kw)
                errors.append((item.file, item.line, item.col,
                               f"{what} is defined twice (first at {first.where})"))
                continue
            table[item.name] = item
    return script


def parse_text(text: str, filename: str = "<string>") -> ast.Script:
    """Parse a whole configuration held in a string.

    Raises ``CfgError`` listing every error found (a syntax error stops at the
    first one).  ``filename`` is used in locations and to resolve
    ``include_file`` paths.
    """
    tree = _parse_tree(text, filename, "start")
    errors: list[ErrorItem] = []
    includes: list[str] = []
    stack = () if filename.startswith("<") else (os.path.realpath(filename),)
    builder = _Builder(filename, errors, stack, includes)
    items = _transform(builder, tree)
    script = _assemble(items, filename, errors, includes)
    if errors:
        raise CfgError(sorted(errors, key=lambda e: (e[0] != filename, e[0], e[1], e[2])))
    return script


def parse_file(path: str | os.PathLike[str]) -> ast.Script:
    """Parse a configuration file (``sipserver -f FILE``)."""
    name = os.fspath(path)
    try:
        text = _read_cfg(name)
    except OSError as exc:
        raise CfgError(f"cannot read configuration file: {exc.strerror or exc}", name) from None
    return parse_text(text, name)
