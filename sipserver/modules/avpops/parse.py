"""avpops argument syntax, read once at start-up (1.6 avpops_parse.c and the fixups).

Every function argument is turned into a small frozen description here;
anything 1.6 refuses is a `FixupError` (the compiler adds FILE:LINE:COL).
One deliberate strictness: where 1.6 silently ignored text after a
pseudo-variable (``$avp(s:x)junk``), it is an error here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...core.exports import FixupError
from ...lang.pv import PV
from ...lang.pvars import AvpPV
from ...lang.pvtoken import PVSyntaxError, scan_pv

# source modes of avp_db_* (1.6 AVPOPS_FLAG_UUID0/URI0/USER0/DOMAIN0)
UUID, URI, USERNAME, DOMAIN = "uuid", "uri", "username", "domain"
# PVs whose value is a URI: their default mode is "uri" (1.6 PVT_RURI/FROM/TO/OURI)
URI_PVS = frozenset({"ru", "ruri", "fu", "from", "tu", "to", "ou", "ouri"})

# avp_check operators, in 1.6's matching order (name, characters compared)
CHECK_OPS = (("eq", 2), ("ne", 2), ("lt", 2), ("le", 2), ("gt", 2), ("ge", 2),
             ("re", 2), ("fm", 2), ("and", 3), ("or", 2), ("xor", 3))
# avp_op operators, likewise
ARITH_OPS = (("add", 3), ("sub", 3), ("mul", 3), ("div", 3), ("mod", 3), ("and", 3),
             ("or", 2), ("xor", 3), ("not", 3))

_U32 = 0xFFFFFFFF


def int32(n: int) -> int:
    """`n` as a C int (two's complement wrap), as 1.6 keeps AVP integers."""
    n &= _U32
    return n - (1 << 32) if n & 0x80000000 else n


@dataclass(frozen=True, slots=True)
class Source:
    """avp_db_* first argument: whose preferences (a constant or a PV, and a mode)."""

    mode: str  # UUID, URI, USERNAME or DOMAIN
    text: str | None = None
    pv: PV | None = None


@dataclass(frozen=True, slots=True)
class Scheme:
    """A `db_scheme`: other columns/table, one value column, one value type."""

    name: str
    uuid_col: str | None = None
    username_col: str | None = None
    domain_col: str | None = None
    value_col: str | None = None
    table: str | None = None
    value_int: bool = False


@dataclass(frozen=True, slots=True)
class DbName:
    """avp_db_* second argument: an AVP (or name-type flags) and a table/scheme.

    `match` is "s" or "i" when only string/integer names qualify, "" for any.
    """

    avp: AvpPV | None
    match: str
    table: str | None = None
    scheme: Scheme | None = None


@dataclass(frozen=True, slots=True)
class Value:
    """A value operand: a PV, or a constant int/str; `ops`/flags around it."""

    op: str
    pv: PV | None = None
    const: int | str | None = None
    all: bool = False  # g
    icase: bool = False  # i (avp_check)
    delete: bool = False  # d (avp_op)
    regex: Any = None  # compiled `re` pattern (avp_check re)


# ---------------------------------------------------------------- helpers


def compile_pv(env: Any, text: str, what: str) -> PV:
    """The PV `text` must be exactly; FixupError naming `what` otherwise."""
    try:
        tok, end = scan_pv(text, 0, 0)
    except PVSyntaxError as e:
        raise FixupError(f"bad {what} {text!r}: {e.message}") from None
    if end != len(text):
        raise FixupError(f"bad {what} {text!r}: unexpected {text[end:]!r} after the "
                         "pseudo-variable")
    try:
        return env.compile_pv(tok)
    except Exception as e:  # CompileError: unknown name, bad AVP name ...
        raise FixupError(f"bad {what} {text!r}: {getattr(e, 'message', e)}") from None


def compile_avp(env: Any, text: str, what: str) -> AvpPV:
    """`text` must be one `$avp(...)` (name, alias or `$avp($pv)`)."""
    if not text.startswith("$"):
        raise FixupError(f"bad {what} {text!r}: expected $avp(name)")
    pv = compile_pv(env, text, what)
    if not isinstance(pv, AvpPV):
        raise FixupError(f"bad {what} {text!r}: expected $avp(name), not another "
                         "pseudo-variable")
    return pv


def name_kind(avp: AvpPV) -> str:
    """"i"/"s" for a fixed integer/string AVP name, "" for a dynamic one."""
    if avp.name_pv is not None:
        return ""
    return "i" if type(avp.name) is int else "s"


def _type_flags(text: str, what: str) -> str:
    """1.6 matching flags `a|A|*|i|I|s|S` + optional script-flag digits."""
    c = text[0]
    if c in "sS":
        kind = "s"
    elif c in "iI":
        kind = "i"
    elif c in "*aA":
        kind = ""
    else:
        raise FixupError(f"bad {what} {text!r}: expected $avp(name), or one of the AVP "
                         "flags *, a, s, i")
    rest = text[1:]
    if rest and not (rest.isascii() and rest.isdigit()):
        raise FixupError(f"bad {what} {text!r}: bad avp flags {rest!r}")
    return kind


def _split(text: str) -> tuple[str, str | None]:
    head, sep, tail = text.partition("/")
    return head, (tail if sep else None)


# ---------------------------------------------------------------- avp_db_*


def parse_source(env: Any, text: str) -> Source:
    """`(pvar|string)['/'(username|domain|uri|uuid)]`."""
    head, flag = _split(text)
    mode = None
    if flag is not None:
        mode = flag.lower()
        if mode not in (UUID, URI, USERNAME, DOMAIN):
            raise FixupError(f"unknown source flag <{flag}> in {text!r}: use /username, "
                             "/domain, /uri or /uuid")
    if not head.startswith("$"):
        return Source(mode or UUID, text=head)
    pv = compile_pv(env, head, "source")
    tok_name = scan_pv(head, 0, 0)[0].name
    default = URI if tok_name in URI_PVS else UUID
    return Source(mode or default, pv=pv)


def parse_db_name(env: Any, text: str, schemes: dict[str, Scheme], allow_scheme: bool) -> DbName:
    """`(flags|$avp(name))['/'(table|'$'scheme)]` (1.6 parse_avp_db)."""
    head, tail = _split(text)
    if not head:
        raise FixupError(f"bad AVP {text!r}: expected $avp(name), *, s or i")
    if head.startswith("$"):
        avp: AvpPV | None = compile_avp(env, head, "AVP")
        match = name_kind(avp)  # type: ignore[arg-type]
    else:
        avp = None
        match = _type_flags(head, "AVP")
    if tail is None:
        return DbName(avp, match)
    if tail.startswith("$"):
        if not allow_scheme:
            raise FixupError(f"{text!r}: this function doesn't support DB schemes")
        if avp is None:
            raise FixupError(f"{text!r}: a DB scheme needs a complete AVP name, not flags")
        name = tail[1:]
        if not name:
            raise FixupError(f"{text!r}: empty scheme name")
        scheme = schemes.get(name.lower())
        if scheme is None:
            known = ", ".join(sorted(s.name for s in schemes.values())) or "none defined"
            raise FixupError(f"{text!r}: scheme <{name}> not found (db_scheme: {known})")
        return DbName(avp, match, scheme=scheme)
    if not tail:
        raise FixupError(f"{text!r}: empty table name after '/'")
    return DbName(avp, match, table=tail)


_SCHEME_KEYS = {"uuid_col": "uuid_col", "username_col": "username_col",
                "domain_col": "domain_col", "value_col": "value_col", "table": "table"}
_SCHEME_RE = re.compile(r"\s*([^\s:]+)\s*:\s*(.*)\Z", re.S)
_ELEM_RE = re.compile(r"([^\s=]+)\s*=\s*([^\s;]+)\s*(?:;\s*|\Z)")


def parse_db_scheme(text: str) -> Scheme:
    """`name':'element[';'element]*`, elements `uuid_col=` `username_col=`
    `domain_col=` `value_col=` `value_type=integer|string` `table=`."""
    m = _SCHEME_RE.match(text or "")
    if m is None or not m.group(2):
        raise ValueError(f"db_scheme: parse error in {text!r} (expected name:element;...)")
    name, body = m.group(1), m.group(2)
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(body):
        em = _ELEM_RE.match(body, pos)
        if em is None:
            raise ValueError(f"db_scheme: parse error in {text!r} around "
                             f"{len(text) - len(body) + pos}")
        key, value = em.group(1).lower(), em.group(2)
        pos = em.end()
        if key == "value_type":
            if value.lower() == "integer":
                fields["value_int"] = True
            elif value.lower() == "string":
                fields["value_int"] = False
            else:
                raise ValueError(f"db_scheme {name}: unknown value type <{value}> "
                                 "(integer or string)")
            continue
        field = _SCHEME_KEYS.get(key)
        if field is None:
            raise ValueError(f"db_scheme {name}: unknown attribute <{em.group(1)}>")
        if field in fields:
            raise ValueError(f"db_scheme {name}: {key} given twice")
        fields[field] = value
    return Scheme(name, **fields)


def parse_db_url_param(text: str) -> tuple[int, str]:
    """`[id] URL` of a `db_url` modparam (no id: 0, the default URL)."""
    s = text.lstrip()
    m = re.match(r"[+-]?\d+", s)
    if m is None:
        return 0, s
    return int(m.group()), s[m.end():].lstrip()


def parse_dest_list(env: Any, text: str) -> list[AvpPV] | None:
    """avp_db_query's `$avp(a);$avp(b);...` (separators: ; , blank); None for ""."""
    out: list[AvpPV] = []
    pos, n = 0, len(text)
    while pos < n:
        while pos < n and text[pos] in " \t,;":
            pos += 1
        if pos >= n:
            break
        if text[pos] != "$":
            raise FixupError(f"bad AVP list {text!r}: expected $avp(name) at {text[pos:]!r}")
        try:
            end = scan_pv(text, pos, 0)[1]
        except PVSyntaxError as e:
            raise FixupError(f"bad AVP list {text!r}: {e.message}") from None
        out.append(compile_avp(env, text[pos:end], "AVP in list"))
        pos = end
    return out or None


# ---------------------------------------------------------------- values


def parse_intstr(text: str) -> int | str:
    """A constant `i:N` (decimal, or hex `i:0x..`), `s:text` or plain text."""
    if len(text) > 1 and text[1] == ":":
        kind = text[0]
        if kind not in "iIsS":
            raise FixupError(f"unknown value type <{kind}> in {text!r}")
        body = text[2:]
        if not body:
            raise FixupError(f"empty value in {text!r}")
        if kind in "sS":
            return body
        if len(body) > 2 and body[:2] in ("0x", "0X"):
            digits = body[2:]
            if not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise FixupError(f"value is not a hex integer as its type says: {text!r}")
            return int32(int(digits, 16))
        if not re.fullmatch(r"[+-]?[0-9]+", body):
            raise FixupError(f"value is not an integer as its type says: {text!r}")
        return int32(int(body))
    return text


def _operator(text: str, table: tuple[tuple[str, int], ...], what: str) -> tuple[str, int]:
    """(operator, index of the '/' after it), matched the way 1.6 does."""
    slash = text.find("/")
    if slash not in (2, 3):
        raise FixupError(f"parse error in {what} {text!r}: expected operator/value[/flags]")
    low = text[:slash].lower()
    for name, size in table:
        if low[:size] == name:
            return name, slash
    raise FixupError(f"unknown operation <{text[:slash]}> in {what} {text!r}")


def _value_and_flags(env: Any, text: str, start: int, allowed: str,
                     what: str) -> tuple[PV | None, int | str | None, str]:
    """The value after the operator and its flag letters (checked against `allowed`)."""
    if start >= len(text):
        raise FixupError(f"parse error in {what} {text!r}: missing value")
    slash = text.find("/", start)
    body = text[start:] if slash < 0 else text[start:slash]
    flags = ""
    if slash >= 0:
        flags = text[slash + 1:]
        if not flags:
            raise FixupError(f"parse error in {what} {text!r}: empty flags after '/'")
        for f in flags:
            if f.lower() not in allowed:
                raise FixupError(f"unknown flag <{f}> in {what} {text!r}")
    if body.startswith("$"):
        return compile_pv(env, body, f"value in {what}"), None, flags.lower()
    if not body:
        raise FixupError(f"parse error in {what} {text!r}: missing value")
    return None, parse_intstr(body), flags.lower()


def parse_check(env: Any, text: str) -> Value:
    """avp_check's `op/value[/flags]`: flags g (all values), i (ignore case)."""
    op, slash = _operator(text, CHECK_OPS, "check")
    pv, const, flags = _value_and_flags(env, text, slash + 1, "gi", "check")
    regex = None
    if op == "re":
        if not isinstance(const, str):
            raise FixupError(f"{text!r}: the re operation needs a constant string regexp")
        from ..textops import RegexError, compile_posix

        try:
            regex = compile_posix(const, icase=True, newline=True)
        except RegexError as e:
            raise FixupError(f"bad regexp <{const}> in {text!r}: {e}") from None
    elif op == "fm" and pv is None and not isinstance(const, str):
        raise FixupError(f"{text!r}: the fm operation needs a string value or a "
                         "pseudo-variable")
    return Value(op, pv, const, all="g" in flags, icase="i" in flags, regex=regex)


def parse_arith(env: Any, text: str) -> Value:
    """avp_op's `op/value[/flags]`: the value is `i:N` or a PV; flags g, d."""
    op, slash = _operator(text, ARITH_OPS, "operation")
    pv, const, flags = _value_and_flags(env, text, slash + 1, "gd", "operation")
    if pv is None and type(const) is not int:
        raise FixupError(f"{text!r}: the value must be an integer (i:N) or a "
                         "pseudo-variable")
    return Value(op, pv, const, all="g" in flags, delete="d" in flags)


def parse_flags(text: str | None, allowed: str, what: str) -> str:
    """Flag letters after a '/' (lower case); FixupError for others."""
    if not text:
        return ""
    for f in text:
        if f.lower() not in allowed:
            raise FixupError(f"bad flag <{f}> in {what}")
    return text.lower()
