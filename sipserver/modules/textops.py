"""textops: operations on the message text (OpenSIPS 1.6 module `textops`).

Every change is a lump on `ctx.msg.lumps`: matching always runs over the
message as received, so one function does not see what an earlier one
changed (as in 1.6), except the codec_* functions, which see each other's
edits of an m= line.

Regular expressions are POSIX extended ones, as 1.6 compiles them
(REG_EXTENDED|REG_ICASE|REG_NEWLINE for the regex arguments; subst's own
flags for `subst*`), translated to Python `re` by `compile_posix`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ..core.context import MsgContext
from ..core.exports import (
    BRANCH_ROUTE,
    ERROR_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
)
from ..core.reply import add_reply_lump
from ..core.runtime import L_DBG, L_ERR
from ..lang.pv import PVError, str_of
from ..lang.pvtoken import PVSyntaxError, scan_pv
from ..sip.errors import ParseError
from ..sip.headers import TOKEN_RE, header_key, unquote
from ..sip.message import SipMsg
from ..sip.uri import parse_uri

_ROFBL = REQUEST_ROUTE | ONREPLY_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE
_ROFB = REQUEST_ROUTE | ONREPLY_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE


# ====================================================================== regex


class RegexError(ValueError):
    """A POSIX regular expression Python cannot be given."""


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
}
_INTERVAL_RE = re.compile(r"\{([0-9]*)(?:(,)([0-9]*))?\}")


def _bracket(p: str, i: int, newline: bool) -> tuple[str, int]:
    """Translate the bracket expression starting at p[i] == '['."""
    n = len(p)
    j = i + 1
    neg = j < n and p[j] == "^"
    if neg:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= n:
            raise RegexError("unmatched [")
        c = p[j]
        if c == "]" and not first:
            j += 1
            break
        first = False
        if c == "[" and j + 1 < n and p[j + 1] in ":.=":
            kind = p[j + 1]
            end = p.find(kind + "]", j + 2)
            if end < 0:
                raise RegexError(f"unterminated [{kind} in bracket expression")
            name = p[j + 2 : end]
            j = end + 2
            if kind == ":":
                if name not in _POSIX_CLASSES:
                    raise RegexError(f"unknown character class [:{name}:]")
                items.append(_POSIX_CLASSES[name])
            elif len(name) == 1:
                items.append(re.escape(name))
            else:
                raise RegexError(f"unknown collating element [{kind}{name}{kind}]")
            continue
        j += 1
        if j + 1 < n and p[j] == "-" and p[j + 1] != "]":
            hi = p[j + 1]
            j += 2
            if ord(hi) < ord(c):
                raise RegexError(f"invalid range {c}-{hi}")
            items.append(f"{re.escape(c)}-{re.escape(hi)}")
        else:
            items.append(re.escape(c))
    body = "".join(items)
    if neg and newline:
        body += "\\n"  # REG_NEWLINE: a non-matching list never matches newline
    return ("[^" if neg else "[") + body + "]", j


def posix_to_python(pattern: str, *, newline: bool = True) -> str:
    """Python `re` syntax for a POSIX extended regex (glibc flavour).

    Handles bracket expressions with [:class:] names (a backslash is literal
    inside them), intervals, the GNU escapes \\w \\W \\s \\S \\b \\B \\< \\>
    \\` \\' and back-references; any other escaped character is literal
    (so `\\d` is a plain 'd', as in glibc). A repetition operator with
    nothing to repeat and a `{` that does not open an interval are errors,
    as in glibc; stacked ones (`a+*`) apply to the whole.
    Without `newline`, `$` only matches at the very end.
    """
    stack: list[list[tuple[str, str]]] = [[]]
    i, n = 0, len(pattern)

    def last_repeatable() -> bool:
        cur = stack[-1]
        return bool(cur) and cur[-1][1] in ("atom", "quant")

    def quantify(q: str) -> None:
        cur = stack[-1]
        text, kind = cur[-1]
        if kind == "quant":
            text = f"(?:{text})"
        cur[-1] = (text + q, "quant")

    while i < n:
        c = pattern[i]
        cur = stack[-1]
        if c == "\\":
            if i + 1 >= n:
                raise RegexError("trailing backslash")
            d = pattern[i + 1]
            i += 2
            if d in "123456789wWsS":  # back-references, word/space classes
                cur.append(("\\" + d, "atom"))
            elif d in "bB":
                cur.append(("\\" + d, "anchor"))
            elif d == "<":
                cur.append((r"\b(?=\w)", "anchor"))
            elif d == ">":
                cur.append((r"\b(?<=\w)", "anchor"))
            elif d == "`":
                cur.append((r"\A", "anchor"))
            elif d == "'":
                cur.append((r"\Z", "anchor"))
            else:
                cur.append((re.escape(d), "atom"))
            continue
        if c == "[":
            text, i = _bracket(pattern, i, newline)
            cur.append((text, "atom"))
            continue
        if c in "*+?":
            if not last_repeatable():
                raise RegexError(f"nothing to repeat before '{c}'")
            quantify(c)
            i += 1
            continue
        if c == "{":
            m = _INTERVAL_RE.match(pattern, i)
            if m is None or not (m.group(1) or m.group(2)):
                raise RegexError("invalid interval")
            if not last_repeatable():
                raise RegexError("nothing to repeat before '{'")
            lo, comma, hi = m.group(1), m.group(2), m.group(3)
            if lo and hi and int(hi) < int(lo):
                raise RegexError("invalid interval")
            quantify("{" + (lo or "0") + (comma or "") + (hi or "") + "}")
            i = m.end()
            continue
        if c == "(":
            stack.append([])
            i += 1
            continue
        if c == ")":
            if len(stack) == 1:
                cur.append(("\\)", "atom"))  # glibc: an unmatched ')' is literal
                i += 1
                continue
            inner = "".join(t for t, _ in stack.pop())
            stack[-1].append((f"({inner})", "atom"))
            i += 1
            continue
        if c == "|":
            cur.append(("|", "alt"))
        elif c == "^":
            cur.append(("^", "anchor"))
        elif c == "$":
            cur.append(("$" if newline else r"\Z", "anchor"))
        elif c == ".":
            cur.append((".", "atom"))
        else:
            cur.append((re.escape(c), "atom"))
        i += 1
    if len(stack) != 1:
        raise RegexError("unmatched (")
    return "".join(t for t, _ in stack[0])


def compile_posix(pattern: str, *, icase: bool = True, newline: bool = True) -> re.Pattern[str]:
    """A compiled POSIX ERE: 1.6's REG_ICASE and REG_NEWLINE as flags.

    With `newline` (REG_NEWLINE) `.` and `[^...]` do not match a newline and
    `^`/`$` match at line boundaries; without it `.` matches anything and
    `^`/`$` only at the ends. Matching is ASCII-only like the C locale.
    Known difference: POSIX picks the longest alternative, Python the first.
    """
    flags = re.ASCII | (re.IGNORECASE if icase else 0) | (re.MULTILINE if newline else re.DOTALL)
    try:
        return re.compile(posix_to_python(pattern, newline=newline), flags)
    except re.error as e:
        raise RegexError(str(e)) from None


# ====================================================================== subst


@dataclass(slots=True)
class SubstExpr:
    """A parsed sed-like `/re/replacement/flags`."""

    regex: re.Pattern[str]
    parts: list[Any]  # str | ("group", n) | ("uri",) | PV
    replace_all: bool
    text: str


def parse_subst(env: Any, text: str) -> SubstExpr:
    """1.6 subst_parser: separator = first char (not '\\'), flags i g s.

    The replacement may hold `\\0`..`\\9` (match groups), `\\u` (the R-URI),
    `\\n \\r \\t \\\\ \\$`, the escaped separator and pseudo-variables.
    """
    if len(text) < 3:
        raise FixupError(f"bad subst. re {text}: expression is too short")
    sep = text[0]
    if sep == "\\":
        raise FixupError(f"bad subst. re {text}: invalid separator char <\\>")
    p = 1
    while p < len(text):
        if text[p] == sep and text[p - 1] != "\\":
            break
        p += 1
    else:
        raise FixupError(f"bad subst. re {text}: no separator found")
    regex_text = text[1:p]
    if len(text) < p + 2:
        raise FixupError(f"bad subst. re {text}: string too short")
    parts: list[Any] = []
    lit: list[str] = []
    q = p + 1
    n = len(text)
    while True:
        if q >= n:
            raise FixupError(f"bad subst. re {text}: missing separator")
        c = text[q]
        if c == "\\":
            if q + 1 >= n:
                raise FixupError(f"bad subst. re {text}: missing separator")
            d = text[q + 1]
            q += 2
            if d in "0123456789":
                if lit:
                    parts.append("".join(lit))
                    lit = []
                parts.append(("group", int(d)))
            elif d == "u":
                if lit:
                    parts.append("".join(lit))
                    lit = []
                parts.append(("uri",))
            else:
                if d not in "nrt\\$" and d != sep and hasattr(env, "warn"):
                    env.warn(f"\\{d} unknown escape in {text}")
                lit.append({"n": "\n", "r": "\r", "t": "\t"}.get(d, d))
            continue
        if c == "$":
            try:
                tok, end = scan_pv(text, q, 0)
            except PVSyntaxError as e:
                raise FixupError(f"bad specifier in replace part {text}: {e.message}") from None
            if lit:
                parts.append("".join(lit))
                lit = []
            parts.append(env.compile_pv(tok))
            q = end
            continue
        if c == sep:
            break
        lit.append(c)
        q += 1
    if lit:
        parts.append("".join(lit))
    icase, newline, replace_all = False, True, False
    for f in text[q + 1 :]:
        if f == "i":
            icase = True
        elif f == "s":
            newline = False
        elif f == "g":
            replace_all = True
        else:
            raise FixupError(f"bad subst. re {text}: unknown flag {f}")
    try:
        regex = compile_posix(regex_text, icase=icase, newline=newline)
    except RegexError as e:
        raise FixupError(f"bad regular expression {regex_text} in {text}: {e}") from None
    return SubstExpr(regex, parts, replace_all, text)


def _replacement(ctx: MsgContext, se: SubstExpr, m: re.Match[str]) -> str:
    out: list[str] = []
    for part in se.parts:
        if type(part) is str:
            out.append(part)
        elif isinstance(part, tuple):
            if part[0] == "group":
                try:
                    g = m.group(part[1])
                except IndexError:
                    g = None
                out.append(g or "")
            elif ctx.msg.is_request:
                out.append(ctx.ruri)
            else:
                ctx.rt.log(L_ERR, "textops: uri substitution on a reply")
        else:
            try:
                out.append(str_of(part.get(ctx)) or "")
            except PVError as e:
                ctx.rt.log(L_ERR, f"textops: item substitution returned error: {e}")
    return "".join(out)


def subst_run(ctx: MsgContext, se: SubstExpr, text: str) -> list[tuple[int, int, str]] | None:
    """(start, end, replacement) for each match in `text` (one unless the g
    flag); [] for no match, None when a match is empty (1.6 gives up)."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    while pos <= len(text):
        m = se.regex.search(text, pos)
        if m is None:
            break
        if m.start() == m.end():
            ctx.rt.log(L_ERR, "textops: matched string is empty... invalid regexp?")
            return None
        out.append((m.start(), m.end(), _replacement(ctx, se, m)))
        pos = m.end()
        if not se.replace_all:
            break
    return out


def subst_str(ctx: MsgContext, se: SubstExpr, text: str) -> str | None:
    """The whole of `text` with the substitutions made; None if no match."""
    edits = subst_run(ctx, se, text)
    if not edits:
        return None
    out: list[str] = []
    cursor = 0
    for start, end, rpl in edits:
        out.append(text[cursor:start])
        out.append(rpl)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


# ====================================================================== helpers


def _body_span(msg: SipMsg) -> tuple[int, int]:
    return msg.body_start, msg.body_end


def _search_all(
    regex: re.Pattern[str], text: str, base: int, *, keep_going: bool
) -> tuple[list[tuple[int, int]], bool]:
    """Matches of `regex` in `text` (offsets + base); ok=False on an empty match."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        m = regex.search(text, pos)
        if m is None:
            break
        if m.start() == m.end():
            return out, False
        out.append((base + m.start(), base + m.end()))
        pos = m.end()
        if not keep_going:
            break
    return out, True


def _find_header(msg: SipMsg, key: str | None):
    if key is None:
        return None
    lst = msg.index.get(key)
    return lst[0] if lst else None


# ====================================================================== fixups


def _fx_regex(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """Regex in the first argument (ICASE|EXTENDED|NEWLINE); others as they are."""
    try:
        regex = compile_posix(args[0])
    except RegexError as e:
        raise FixupError(f"bad regular expression '{args[0]}': {e}") from None
    return [regex, *args[1:]]


def _fx_regex_nl(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """As _fx_regex but without REG_NEWLINE (replace_body_atonce)."""
    try:
        regex = compile_posix(args[0], newline=False)
    except RegexError as e:
        raise FixupError(f"bad regular expression '{args[0]}': {e}") from None
    return [regex, *args[1:]]


def _fx_subst(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [parse_subst(env, args[0])]


def _hname(text: str) -> str:
    """1.6 hname_fixup: a header name, matched by type for known names
    (so compact forms count) and by name otherwise."""
    if not text:
        raise FixupError("empty header name parameter")
    if not TOKEN_RE.match(text):
        raise FixupError(f"error parsing header name <{text}>")
    return header_key(text)


def _fx_hname(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [_hname(args[0])]


def _fx_add_header(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """append_hf/insert_hf: a format, then an optional header name."""
    out: list[Any] = [env.compile_format(args[0])]
    if len(args) > 1:
        out.append(_hname(args[1]))
    return out


def _fx_format(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [env.compile_format(args[0])]


def _fx_add_body2(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """add_body(text, content_type): a format, then a literal content type."""
    if not args[1]:
        raise FixupError("empty content type parameter")
    return [env.compile_format(args[0]), args[1]]


# SIP methods 1.6 knows by id (parse_methods), in their bit order.
KNOWN_METHODS = (
    "INVITE", "CANCEL", "ACK", "BYE", "INFO", "OPTIONS", "UPDATE", "REGISTER",
    "MESSAGE", "SUBSCRIBE", "NOTIFY", "PRACK", "REFER", "PUBLISH",
)  # fmt: skip


def _fx_method(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """is_method: one name (any) or an A|B|C list of known methods only."""
    text = args[0]
    if not text:
        raise FixupError("empty method name")
    names = [m.strip(" \t") for m in text.replace("|", ",").split(",")]
    if any(not m or not TOKEN_RE.match(m) for m in names):
        raise FixupError(f"bad method names <{text}>")
    upper = [m.upper() for m in names]
    if len(names) > 1:
        unknown = [m for m in names if m.upper() not in KNOWN_METHODS]
        if unknown:
            raise FixupError(f"unknown method in list [{text}] - must be only defined methods")
    return [frozenset(upper)]


PRIVACY_VALUES = ("user", "header", "session", "none", "critical", "id", "history")


def _fx_privacy(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    value = args[0]
    if not value:
        raise FixupError("empty privacy value")
    if value.lower() not in PRIVACY_VALUES:
        raise FixupError(f"invalid privacy value <{value}>")
    return [value.lower()]


_MIME_RE = re.compile(r"[ \t]*([A-Za-z0-9!#$&.+^_`{}|~*\-]+)[ \t]*/[ \t]*([A-Za-z0-9!#$&.+^_`{}|~*\-]+)[ \t]*")


def _fx_body_type(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    """has_body/strip_body mime: "type/subtype" (lower-cased), "" for any."""
    text = args[0] if args else ""
    if not text:
        return [None]
    m = _MIME_RE.fullmatch(text)
    if not m:
        if _MIME_RE.match(text):
            raise FixupError("multiple mimes not supported!")
        raise FixupError(f"unsupported mime <{text}>")
    return [f"{m.group(1)}/{m.group(2)}".lower()]


def _fx_codec_re(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return _fx_regex(env, module, args)


# ====================================================================== search / replace


def search(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    """search(re): 1 when the regex matches anywhere in the message."""
    msg = ctx.msg
    return 1 if regex.search(msg.text[: msg.body_end]) else -1


def search_body(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    start, end = _body_span(ctx.msg)
    if start >= end:
        ctx.rt.log(L_DBG, "textops: message body has zero length")
        return -1
    return 1 if regex.search(ctx.msg.text[start:end]) else -1


def _search_append(ctx: MsgContext, regex: re.Pattern[str], text: str, start: int) -> int:
    msg = ctx.msg
    m = regex.search(msg.text[start : msg.body_end])
    if m is None:
        return -1
    msg.lumps.insert(start + m.end(), text)
    return 1


def search_append(ctx: MsgContext, regex: re.Pattern[str], text: str) -> int:
    """Insert `text` after the first match (searching after the first line)."""
    return _search_append(ctx, regex, text, ctx.msg.first_line_end)


def search_append_body(ctx: MsgContext, regex: re.Pattern[str], text: str) -> int:
    start, end = _body_span(ctx.msg)
    if start >= end:
        return -1
    return _search_append(ctx, regex, text, start)


def _replace(ctx: MsgContext, regex: re.Pattern[str], text: str, start: int, all_: bool) -> int:
    msg = ctx.msg
    if not all_:
        m = regex.search(msg.text[start : msg.body_end])
        if m is None:
            return -1
        msg.lumps.replace(start + m.start(), start + m.end(), text)
        return 1
    spans, ok = _search_all(regex, msg.text[start : msg.body_end], start, keep_going=True)
    for s, e in spans:
        msg.lumps.replace(s, e, text)
    if not ok:
        ctx.rt.log(L_ERR, "textops: matched string is empty... invalid regexp?")
        return -1
    return 1 if spans else -1


def replace(ctx: MsgContext, regex: re.Pattern[str], text: str) -> int:
    """Replace the first match after the first line by `text`."""
    return _replace(ctx, regex, text, ctx.msg.first_line_end, False)


def replace_all(ctx: MsgContext, regex: re.Pattern[str], text: str) -> int:
    return _replace(ctx, regex, text, ctx.msg.first_line_end, True)


def replace_body(ctx: MsgContext, regex: re.Pattern[str], text: str) -> int:
    start, end = _body_span(ctx.msg)
    if start >= end:
        return -1
    return _replace(ctx, regex, text, start, False)


def replace_body_all(ctx: MsgContext, regex: re.Pattern[str], text: str) -> int:
    start, end = _body_span(ctx.msg)
    if start >= end:
        return -1
    return _replace(ctx, regex, text, start, True)


replace_body_atonce = replace_body_all  # the regex differs (no REG_NEWLINE)


# ====================================================================== subst


def _subst_at(ctx: MsgContext, se: SubstExpr, start: int) -> int:
    msg = ctx.msg
    edits = subst_run(ctx, se, msg.text[start : msg.body_end])
    if not edits:
        return -1
    for s, e, rpl in edits:
        msg.lumps.replace(start + s, start + e, rpl)
    return 1


def subst(ctx: MsgContext, se: SubstExpr) -> int:
    """subst('/re/repl/flags') over the headers and body (not the first line)."""
    return _subst_at(ctx, se, ctx.msg.first_line_end)


def subst_body(ctx: MsgContext, se: SubstExpr) -> int:
    start, end = _body_span(ctx.msg)
    if start >= end:
        return -1
    return _subst_at(ctx, se, start)


def subst_uri(ctx: MsgContext, se: SubstExpr) -> int:
    """subst on the R-URI: the result becomes the new R-URI."""
    if not ctx.msg.is_request:
        return -1
    result = subst_str(ctx, se, ctx.ruri)
    if result is None:
        return -1
    ctx.rt.log(L_DBG, f"textops: subst_uri match - old uri= [{ctx.ruri}], new uri= [{result}]")
    ctx.set_ruri(result)
    return 1


def set_ruri_user(ctx: MsgContext, user: str) -> int:
    """1.6 rewriteuser on the current R-URI: the text around the user part
    (scheme, password, host, port, params, headers) is kept as written."""
    text = ctx.ruri
    try:
        uri = parse_uri(text)
    except ParseError:
        ctx.rt.log(L_ERR, f"textops: bad uri <{text}>")
        return -1
    colon = text.index(":") + 1
    if uri.scheme == "tel":
        number = uri.user or ""
        new = text[:colon] + user + text[colon + len(number) :]
    else:
        rest = text[colon:]
        password = None
        if uri.user is not None or uri.password is not None:
            at = rest.index("@")
            userinfo, rest = rest[:at], rest[at + 1 :]
            if ":" in userinfo:
                password = userinfo.partition(":")[2]
        new = text[:colon] + user
        if password is not None:
            new += ":" + password
        if user or password is not None:
            new += "@"
        new += rest
    ctx.set_ruri(new)
    return 1


def subst_user(ctx: MsgContext, se: SubstExpr) -> int:
    """subst on the R-URI user part (empty when there is none)."""
    if not ctx.msg.is_request:
        return -1
    try:
        uri = parse_uri(ctx.ruri)
    except ParseError:
        return -1
    result = subst_str(ctx, se, uri.user or "")
    if result is None:
        return -1
    return set_ruri_user(ctx, result)


# ====================================================================== headers


def _add_hf(ctx: MsgContext, text: str, anchor: str | None, insert: bool) -> int:
    msg = ctx.msg
    h = _find_header(msg, anchor)
    if insert:
        offset = h.start if h is not None else msg.first_line_end
    else:
        offset = h.end if h is not None else msg.headers_end
    msg.lumps.insert(offset, text)
    return 1


def append_hf(ctx: MsgContext, fmt: Any, anchor: str | None = None) -> int:
    """Add the text (supply the CRLF yourself) after the last header, or
    after the first `anchor` header when there is one."""
    return _add_hf(ctx, fmt.render(ctx), anchor, False)


def insert_hf(ctx: MsgContext, fmt: Any, anchor: str | None = None) -> int:
    """Add the text before the first header, or before the first `anchor`."""
    return _add_hf(ctx, fmt.render(ctx), anchor, True)


def append_urihf(ctx: MsgContext, prefix: str, suffix: str) -> int:
    """Header text prefix + the R-URI as received + suffix, after the last header."""
    return _add_hf(ctx, prefix + ctx.msg.ruri_text + suffix, None, False)


def remove_hf(ctx: MsgContext, key: str) -> int:
    """Remove every header of that name (compact forms included); 1 if any."""
    msg = ctx.msg
    found = msg.index.get(key, [])
    for h in found:
        msg.lumps.remove_header(h)
    return 1 if found else -1


def is_present_hf(ctx: MsgContext, key: str) -> int:
    return 1 if ctx.msg.index.get(key) else -1


def append_to_reply(ctx: MsgContext, fmt: Any) -> int:
    """Queue the text as header(s) of every reply generated locally for the
    message (supply the CRLF yourself)."""
    try:
        text = fmt.render(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"textops: cannot print the format: {e}")
        return -1
    if not add_reply_lump(ctx, text):
        ctx.rt.log(L_ERR, "textops: unable to add lump_rl")
        return -1
    return 1


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_header(now: float | None = None) -> str:
    """`Date: Sun, 06 Nov 1994 08:49:37 GMT` + CRLF (C-locale strftime)."""
    t = time.gmtime(now)
    return (
        f"Date: {_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year}"
        f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT\r\n"
    )


def append_time(ctx: MsgContext) -> int:
    """Add a Date header to the locally generated replies."""
    return 1 if add_reply_lump(ctx, date_header()) else -1


# ====================================================================== methods, privacy


def is_method(ctx: MsgContext, methods: frozenset[str]) -> int:
    """The request method (for a reply: the CSeq method) is one of the list.

    Known methods compare case-insensitively (1.6 matches them by id), and
    so does a single unknown name.
    """
    msg = ctx.msg
    if msg.is_request:
        method = msg.method
    else:
        try:
            method = msg.cseq.method
        except ParseError:
            ctx.rt.log(L_ERR, "textops: cannot parse cseq header")
            return -1
    return 1 if method.upper() in methods else -1


def is_privacy(ctx: MsgContext, value: str) -> int:
    """The (first) Privacy header lists `value` (a ;-separated priv-value list)."""
    h = ctx.msg.header("privacy")
    if h is None:
        return -1
    values = [v.strip(" \t\r\n").lower() for v in h.value.split(";")]
    if any(v not in PRIVACY_VALUES for v in values):
        ctx.rt.log(L_ERR, "textops: bad Privacy header")
        return -1
    return 1 if value in values else -1


# ====================================================================== bodies


@dataclass(slots=True)
class _Part:
    """One part of a body: its content type and where it lies in msg.text."""

    mime: str | None
    delim_start: int  # where its "--boundary" line starts (the whole body: body start)
    data_start: int  # after the delimiter line (headers of the part)
    data_end: int  # before the CRLF ahead of the next delimiter
    body_start: int  # the part's own body


def _mime_of(value: str) -> str | None:
    m = _MIME_RE.match(value)
    return f"{m.group(1)}/{m.group(2)}".lower() if m else None


def _boundary(msg: SipMsg) -> str | None:
    ct = msg.header("content-type")
    if ct is None:
        return None
    for param in ct.value.split(";")[1:]:
        name, eq, val = param.partition("=")
        if eq and name.strip(" \t").lower() == "boundary":
            return unquote(val.strip(" \t"))
    return None


def _content_length(msg: SipMsg) -> int | None:
    h = msg.header("content-length")
    if h is None:
        return None
    v = h.value.strip()
    return int(v) if v.isdigit() else None


def _delimiters(text: str, start: int, end: int, delim: str) -> list[int]:
    """Offsets of the lines starting with --delim between start and end."""
    out = []
    pos = start
    marker = "--" + delim
    while True:
        i = text.find(marker, pos, end)
        if i < 0:
            return out
        if i == start or text[i - 1] == "\n":
            out.append(i)
        pos = i + 1


def _single_part(text: str, start: int, end: int) -> tuple[str | None, int] | None:
    """Headers of one part: (its mime, default text/plain; body start)."""
    mime = "text/plain"
    pos = start
    while pos < end:
        if text[pos] in "\r\n":
            return mime, min(pos + 2, end)
        nl = text.find("\n", pos, end)
        if nl < 0:
            return None
        while nl + 1 < end and text[nl + 1] in " \t":
            nl = text.find("\n", nl + 1, end)
            if nl < 0:
                return None
        line = text[pos:nl].rstrip("\r")
        name, colon, value = line.partition(":")
        if not colon:
            return None
        if header_key(name.strip(" \t")) == "content-type":
            found = _mime_of(value.strip(" \t"))
            if found is None:
                return None
            mime = found
        pos = nl + 1
    return mime, end


def body_parts(msg: SipMsg) -> tuple[bool, list[_Part]] | None:
    """1.6 get_all_bodies: (is multipart, parts). None without a
    Content-Length or Content-Type, or for a malformed part."""
    cl = _content_length(msg)
    ct = msg.header("content-type")
    if cl is None or ct is None:
        return None
    mime = _mime_of(ct.value)
    if mime is None:
        return None
    start, end = msg.body_start, msg.body_end
    if not mime.startswith("multipart/"):
        return False, [_Part(mime, start, start, end, start)]
    delim = _boundary(msg)
    if not delim:
        return True, []
    text = msg.text
    marks = _delimiters(text, start, end, delim)
    parts = []
    for a, b in pairwise(marks):
        data_start = a + len(delim) + 4
        data_end = b - 2
        parsed = _single_part(text, data_start, data_end)
        if parsed is None:
            return None
        parts.append(_Part(parsed[0], a, data_start, data_end, parsed[1]))
    return True, parts


def has_body(ctx: MsgContext, mime: str | None = None) -> int:
    """A body with Content-Length > 0; with a mime, of that type (the
    message's own type for multipart/*, else any part, one level)."""
    msg = ctx.msg
    cl = _content_length(msg)
    if not cl:
        return -1
    if mime is None:
        return 1
    if mime.startswith("multipart/"):
        ct = msg.header("content-type")
        return 1 if ct is not None and _mime_of(ct.value) == mime else -1
    parsed = body_parts(msg)
    if parsed is None:
        ctx.rt.log(L_ERR, "textops: failed to get bodies")
        return -1
    return 1 if any(p.mime == mime for p in parsed[1]) else -1


def _strip_whole(ctx: MsgContext) -> int:
    msg = ctx.msg
    if msg.header("content-length") is None:
        ctx.rt.log(L_ERR, "textops: very bogus message with body, but no content length hdr")
        return -1
    if not _content_length(msg):
        return -1
    msg.lumps.set_body("")
    ct = msg.header("content-type")
    if ct is not None:
        msg.lumps.remove_header(ct)
    return 1


def strip_body(ctx: MsgContext, mime: str | None = None) -> int:
    """Remove the body and its Content-Type; with a mime only the parts of
    that type (or the whole body when it is of that type)."""
    if mime is None:
        return _strip_whole(ctx)
    msg = ctx.msg
    if not _content_length(msg):
        return -1
    ct = msg.header("content-type")
    own = _mime_of(ct.value) if ct is not None else None
    if mime.startswith("multipart/") or own is None or not own.startswith("multipart/"):
        return _strip_whole(ctx) if own == mime else -1
    parsed = body_parts(msg)
    if parsed is None:
        return -1
    deleted = -1
    for p in parsed[1]:
        if p.mime == mime:
            msg.lumps.delete(p.delim_start, min(p.data_end + 2, msg.body_end))
            deleted = 1
    return deleted


def add_body(ctx: MsgContext, fmt: Any, content_type: str | None = None) -> int:
    """Set the body (replacing any); a Content-Type is needed when there was
    no body, and is replaced when it differs."""
    msg = ctx.msg
    text = fmt.render(ctx)
    if not text:
        ctx.rt.log(L_ERR, "textops: null body parameter")
        return -1
    if msg.body_start >= msg.body_end and content_type is None:
        ctx.rt.log(L_ERR, "textops: no body found and no content-type name given")
        return -1
    msg.lumps.set_body(text)
    if content_type is not None:
        ct = msg.header("content-type")
        if ct is not None:
            if ct.value == content_type:
                return 1
            msg.lumps.remove_header(ct)
        msg.lumps.insert(msg.headers_end, f"Content-Type: {content_type}\r\n")
    return 1


def _find_line_start(text: str, what: str, pos: int, end: int) -> int:
    """1.6 find_line_start: the next CRLF-separated line starting with `what`."""
    while len(what) <= end - pos:
        if text.startswith(what, pos):
            return pos
        cr = text.find("\r", pos, end - 1)
        if cr < 0:
            return -1
        if text[cr + 1] != "\n":
            return -1
        pos = cr + 2
    return -1


def filter_body(ctx: MsgContext, content_type: str) -> int:
    """Keep only the first part of a multipart body with that type.

    A literal port of 1.6: it looks for `Content-Type: <type>` lines and for
    the closing delimiter line starting with `--Boundary`.
    """
    msg = ctx.msg
    text = msg.text
    bstart, end = _body_span(msg)
    if bstart >= end:
        return -1
    pos = bstart
    n = len(content_type)
    while True:
        pos = _find_line_start(text, "Content-Type: ", pos, end)
        if pos < 0:
            return -1
        pos += 14
        if end - pos <= n + 2:
            return -1
        if text[pos : pos + n].lower() != content_type.lower():
            continue
        pos += n
        if text[pos : pos + 2] != "\r\n":
            ctx.rt.log(L_ERR, "textops: no CRLF found after content type")
            return -1
        while end - pos > 3 and text[pos : pos + 4] != "\r\n\r\n":
            pos += 1
        while pos < end and text[pos] in "\r\n":
            pos += 1
        msg.lumps.delete(bstart, pos)
        tail = _find_line_start(text, "--Boundary", pos, end)
        if tail < 0:
            ctx.rt.log(L_ERR, "textops: boundary not found after content")
            return -1
        msg.lumps.delete(tail, end)
        return 1


# ====================================================================== SDP codecs


@dataclass(slots=True)
class _Payload:
    pt: str
    enc: str | None = None
    clock: str | None = None
    rtpmap: tuple[int, int] | None = None  # the whole a=rtpmap line incl. its newline
    fmtp: tuple[int, int] | None = None


@dataclass(slots=True)
class _Stream:
    media: str
    span: tuple[int, int]  # the payload list of the m= line in msg.text
    payloads: list[_Payload] = field(default_factory=list)
    on_hold: bool = False


def _lines(text: str, start: int, end: int) -> list[tuple[int, int, int]]:
    """(line start, content end without CR/LF, end incl. the newline)."""
    out = []
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl + 1
        content_end = stop
        while content_end > pos and text[content_end - 1] in "\r\n":
            content_end -= 1
        out.append((pos, content_end, stop))
        pos = stop
    return out


def _sdp_session(text: str, start: int, end: int) -> list[_Stream] | None:
    """The streams of one SDP session, as 1.6's parse_sdp_session sees them."""
    lines = _lines(text, start, end)
    kinds = [text[s : s + 2] for s, _, _ in lines]
    if "v=" not in kinds or "o=" not in kinds or "m=" not in kinds:
        return None
    first_m = kinds.index("m=")
    session_c = None
    for (s, e, _), k in zip(lines[:first_m], kinds[:first_m], strict=True):
        if k == "c=":
            session_c = text[s + 2 : e].split()
            break
    streams: list[_Stream] = []
    i = first_m
    while i < len(lines):
        s, e, _ = lines[i]
        j = i + 1
        while j < len(lines) and kinds[j] != "m=":
            j += 1
        fields = text[s + 2 : e].split()
        if len(fields) < 3:
            return None
        # the payload list: after media, port, proto
        pos = s + 2
        for _ in range(3):
            while pos < e and text[pos] in " \t":
                pos += 1
            while pos < e and text[pos] not in " \t":
                pos += 1
        while pos < e and text[pos] in " \t":
            pos += 1
        pend = e
        while pend > pos and text[pend - 1] in " \t":
            pend -= 1
        stream = _Stream(fields[0], (pos, pend), [_Payload(pt) for pt in fields[3:]])
        by_pt = {p.pt: p for p in stream.payloads}
        stream_c = None
        for ls, le, lstop in lines[i + 1 : j]:
            line = text[ls:le]
            low = line[:10].lower()
            if line.startswith("c="):
                stream_c = line[2:].split()
            elif low in ("a=inactive", "a=sendonly") and stream.payloads:
                stream.on_hold = True
            elif low.startswith("a=rtpmap:") and stream.payloads:
                rest = line[9:].strip(" \t")
                pt, _, desc = rest.partition(" ")
                desc = desc.lstrip(" \t")
                enc, slash, clock = desc.partition("/")
                p = by_pt.get(pt)
                if p is not None and enc and slash and clock:
                    p.enc, p.clock, p.rtpmap = enc, clock.strip(" \t"), (ls, lstop)
            elif low.startswith("a=fmtp:") and stream.payloads:
                pt = line[7:].strip(" \t").partition(" ")[0]
                p = by_pt.get(pt)
                if p is not None:
                    p.fmtp = (ls, lstop)
        conn = stream_c or session_c
        if conn is None:
            return None
        if not stream.on_hold and len(conn) >= 3 and conn[2] == "0.0.0.0":
            stream.on_hold = True
        streams.append(stream)
        i = j
    return streams


def sdp_streams(msg: SipMsg) -> list[_Stream] | None:
    """Every SDP stream of the message (application/sdp or multipart/mixed
    with SDP parts); None when the message has no parsable SDP."""
    start, end = _body_span(msg)
    if start >= end:
        return None
    ct = msg.header("content-type")
    mime = _mime_of(ct.value) if ct is not None else None
    if mime == "application/sdp":
        return _sdp_session(msg.text, start, end)
    if mime == "multipart/mixed":
        parsed = body_parts(msg)
        if parsed is None:
            return None
        streams: list[_Stream] = []
        for p in parsed[1]:
            if p.mime == "application/sdp":
                got = _sdp_session(msg.text, p.body_start, p.data_end)
                if got is None:
                    return None
                streams.extend(got)
        return streams if parsed[1] else None
    return None


_CODEC_STATE = "textops.codecs"
FIND, DELETE, ADD_TO_FRONT, ADD_TO_BACK = range(4)


def _codec_state(msg: SipMsg) -> tuple[list[_Stream], dict[int, tuple[int, str]]] | None:
    state = msg._cache.get(_CODEC_STATE)
    if state is None:
        streams = sdp_streams(msg)
        if streams is None:
            return None
        state = (streams, {})
        msg._cache[_CODEC_STATE] = state
    return state


def _codec_op(
    ctx: MsgContext,
    op: int,
    match: Callable[[_Payload], bool],
    needs_clock: bool = False,
) -> int:
    """Run one codec operation over every stream (1.6 do_for_all_streams)."""
    msg = ctx.msg
    state = _codec_state(msg)
    if state is None:
        ctx.rt.log(L_DBG, "textops: message has no SDP")
        return -1
    streams, live = state
    found = False
    for idx, stream in enumerate(streams):
        lump = live.get(idx)  # (lump handle, its current text)
        value = lump[1] if lump is not None else msg.text[stream.span[0] : stream.span[1]]
        kept: list[str] = []
        moved: list[str] = []
        hits = 0
        for token in value.split():
            hit = next(
                (p for p in stream.payloads
                 if p.enc is not None and not (needs_clock and p.clock is None)
                 and token == p.pt and match(p)),
                None,
            )
            if hit is None:
                kept.append(token)
                continue
            hits += 1
            if op == FIND:
                break
            if op == DELETE:
                for span in (hit.rtpmap, hit.fmtp):
                    if span is not None:
                        msg.lumps.delete(*span)
            else:
                moved.append(hit.pt)
        if not hits:
            continue
        found = True
        if op == FIND:
            continue
        # One space between formats (1.6 could leave a trailing or double one).
        new = " ".join(moved + kept if op == ADD_TO_FRONT else kept + moved)
        # 1.6 keeps one lump per m= line and edits it on later codec calls
        if lump is None:
            live[idx] = (msg.lumps.replace(stream.span[0], stream.span[1], new), new)
        else:
            msg.lumps.update(lump[0], new)
            live[idx] = (lump[0], new)
    return 1 if found else -1


def _by_name(name: str, clock: str | None = None) -> Callable[[_Payload], bool]:
    lname = name.lower()

    def match(p: _Payload) -> bool:
        if (p.enc or "").lower() != lname:
            return False
        return clock is None or (p.clock or "").lower() == clock.lower()

    return match


def _by_re(regex: re.Pattern[str], complement: bool = False) -> Callable[[_Payload], bool]:
    def match(p: _Payload) -> bool:
        return (regex.search(p.enc or "") is not None) != complement

    return match


def codec_exists(ctx: MsgContext, name: str, clock: str | None = None) -> int:
    return _codec_op(ctx, FIND, _by_name(name, clock), clock is not None)


def codec_exists_re(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    return _codec_op(ctx, FIND, _by_re(regex))


def codec_delete(ctx: MsgContext, name: str, clock: str | None = None) -> int:
    """Drop the codec from every m= line, with its a=rtpmap and a=fmtp lines."""
    return _codec_op(ctx, DELETE, _by_name(name, clock), clock is not None)


def codec_delete_re(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    return _codec_op(ctx, DELETE, _by_re(regex))


def codec_delete_except_re(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    return _codec_op(ctx, DELETE, _by_re(regex, complement=True))


def codec_move_up(ctx: MsgContext, name: str, clock: str | None = None) -> int:
    """Move the codec to the front of every m= line (matches keep their order)."""
    return _codec_op(ctx, ADD_TO_FRONT, _by_name(name, clock), clock is not None)


def codec_move_up_re(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    return _codec_op(ctx, ADD_TO_FRONT, _by_re(regex))


def codec_move_down(ctx: MsgContext, name: str, clock: str | None = None) -> int:
    return _codec_op(ctx, ADD_TO_BACK, _by_name(name, clock), clock is not None)


def codec_move_down_re(ctx: MsgContext, regex: re.Pattern[str]) -> int:
    return _codec_op(ctx, ADD_TO_BACK, _by_re(regex))


def is_audio_on_hold(ctx: MsgContext) -> int:
    """1 when an audio stream is on hold (a=sendonly/inactive, or c= 0.0.0.0)."""
    streams = sdp_streams(ctx.msg)
    if not streams:
        return -1
    return 1 if any(s.media == "audio" and s.on_hold for s in streams) else -1


# ====================================================================== exports

exports = ModuleExports(
    name="textops",
    cmds=[
        CmdExport("search", search, 1, _ROFBL, _fx_regex),
        CmdExport("search_body", search_body, 1, _ROFBL, _fx_regex),
        CmdExport("search_append", search_append, 2, _ROFBL, _fx_regex),
        CmdExport("search_append_body", search_append_body, 2, _ROFBL, _fx_regex),
        CmdExport("replace", replace, 2, _ROFBL, _fx_regex),
        CmdExport("replace_body", replace_body, 2, _ROFBL, _fx_regex),
        CmdExport("replace_all", replace_all, 2, _ROFBL, _fx_regex),
        CmdExport("replace_body_all", replace_body_all, 2, _ROFBL, _fx_regex),
        CmdExport("replace_body_atonce", replace_body_atonce, 2, _ROFBL, _fx_regex_nl),
        CmdExport("append_to_reply", append_to_reply, 1,
                  REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE | ERROR_ROUTE, _fx_format),
        CmdExport("append_hf", append_hf, 1, _ROFBL, _fx_add_header),
        CmdExport("append_hf", append_hf, 2, _ROFBL, _fx_add_header),
        CmdExport("insert_hf", insert_hf, 1, _ROFBL, _fx_add_header),
        CmdExport("insert_hf", insert_hf, 2, _ROFBL, _fx_add_header),
        CmdExport("append_urihf", append_urihf, 2, REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE),
        CmdExport("remove_hf", remove_hf, 1, _ROFBL, _fx_hname),
        CmdExport("is_present_hf", is_present_hf, 1, _ROFBL, _fx_hname),
        CmdExport("subst", subst, 1, _ROFBL, _fx_subst),
        CmdExport("subst_uri", subst_uri, 1, _ROFB, _fx_subst),
        CmdExport("subst_user", subst_user, 1, _ROFB, _fx_subst),
        CmdExport("subst_body", subst_body, 1, _ROFBL, _fx_subst),
        CmdExport("filter_body", filter_body, 1, _ROFBL),
        CmdExport("append_time", append_time, 0, REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE | LOCAL_ROUTE),
        CmdExport("is_method", is_method, 1, _ROFBL, _fx_method),
        CmdExport("has_body", has_body, 0, _ROFBL),
        CmdExport("has_body", has_body, 1, _ROFBL, _fx_body_type),
        CmdExport("is_privacy", is_privacy, 1, _ROFBL, _fx_privacy),
        CmdExport("strip_body", strip_body, 0, _ROFBL),
        CmdExport("strip_body", strip_body, 1, _ROFBL, _fx_body_type),
        CmdExport("add_body", add_body, 1, _ROFBL, _fx_format),
        CmdExport("add_body", add_body, 2, _ROFBL, _fx_add_body2),
        CmdExport("codec_exists", codec_exists, 1, _ROFBL),
        CmdExport("codec_exists", codec_exists, 2, _ROFBL),
        CmdExport("codec_exists_re", codec_exists_re, 1, _ROFBL, _fx_codec_re),
        CmdExport("codec_delete", codec_delete, 1, _ROFBL),
        CmdExport("codec_delete", codec_delete, 2, _ROFBL),
        CmdExport("codec_delete_re", codec_delete_re, 1, _ROFBL, _fx_codec_re),
        CmdExport("codec_delete_except_re", codec_delete_except_re, 1, _ROFBL, _fx_codec_re),
        CmdExport("codec_move_up", codec_move_up, 1, _ROFBL),
        CmdExport("codec_move_up", codec_move_up, 2, _ROFBL),
        CmdExport("codec_move_up_re", codec_move_up_re, 1, _ROFBL, _fx_codec_re),
        CmdExport("codec_move_down", codec_move_down, 1, _ROFBL),
        CmdExport("codec_move_down", codec_move_down, 2, _ROFBL),
        CmdExport("codec_move_down_re", codec_move_down_re, 1, _ROFBL, _fx_codec_re),
        CmdExport("is_audio_on_hold", is_audio_on_hold, 0, _ROFBL),
    ],
)
