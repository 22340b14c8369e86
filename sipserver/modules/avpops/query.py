"""avp_db_query's SQL text: pseudo-variables go in as values, never as SQL.

1.6 printed the PVs into the statement and told the operator to escape
them. Here the format is split once, at start-up, along the SQL quoting
of its static text, and each PV is placed according to where it sits:

* inside a string literal (`'...$fU...'`, and `"..."` on MySQL, where it
  is a string): the whole literal becomes one bound parameter holding its
  text with the PV values in it, so `'$fU'` compares with the value exactly
  as written, quotes and backslashes included;
* inside a quoted identifier (`` `...` ``, and `"..."` elsewhere): the
  value is put in with that quote doubled (an identifier cannot be left);
* outside quotes: an integer, a number or a plain identifier
  (`[A-Za-z_][A-Za-z0-9_.]*`, e.g. a table name) is written in as text, as
  1.6 did; any other value, and NULL, is a bound parameter.

A `?` outside quotes in the static text is taken as a placeholder by the
DB API and makes the call fail (there is no value for it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...core.exports import FixupError
from ...core.runtime import L_ERR
from ...lang.format import NULL_TEXT
from ...lang.pv import PV, PVError, str_of

if TYPE_CHECKING:
    from ...core.context import MsgContext
    from ...lang.format import Format

_SAFE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

# piece kinds
_SQL, _VAL, _LIT, _IDENT = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class SqlTemplate:
    """A compiled avp_db_query statement (see the module docstring)."""

    text: str
    pieces: tuple[tuple[Any, ...], ...]

    def render(self, ctx: MsgContext) -> tuple[str, list[Any], int]:
        """(SQL with `?` placeholders, parameters, length of 1.6's printed text)."""
        out: list[str] = []
        params: list[Any] = []
        size = 0
        for piece in self.pieces:
            kind = piece[0]
            if kind == _SQL:
                out.append(piece[1])
                size += len(piece[1])
            elif kind == _VAL:
                v = _value(ctx, piece[1])
                if type(v) is int:
                    s = str(v)
                    out.append(s)
                    size += len(s)
                elif v is None:
                    out.append("?")
                    params.append(None)
                    size += len(NULL_TEXT)
                else:
                    s = str(v)
                    size += len(s)
                    if _SAFE.fullmatch(s):
                        out.append(s)
                    else:
                        out.append("?")
                        params.append(s)
            else:
                quote, parts = piece[1], piece[2]
                text = "".join(p if type(p) is str else _text(ctx, p) for p in parts)
                size += len(text) + 2
                if kind == _LIT:
                    out.append("?")
                    params.append(text)
                else:
                    out.append(quote + text.replace(quote, quote + quote) + quote)
        return "".join(out), params, size


def _value(ctx: MsgContext, pv: PV) -> Any:
    try:
        return pv.get(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"avpops: query: {e}")
        return ""


def _text(ctx: MsgContext, pv: PV) -> str:
    s = str_of(_value(ctx, pv))
    return NULL_TEXT if s is None else s


_MYSQL_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def compile_query(fmt: Format, mysql: bool) -> SqlTemplate:
    """Split a compiled format along the SQL quoting of its static text.

    `mysql`: backslash escapes inside quotes and `"..."` as a string (MySQL's
    defaults); otherwise `"..."` quotes an identifier (PostgreSQL, SQLite).
    """
    string_quotes = "'\"" if mysql else "'"
    ident_quotes = "`" if mysql else "`\""
    pieces: list[tuple[Any, ...]] = []
    sql: list[str] = []
    quote = ""  # the open quote, "" outside
    raw: list[str] = []  # the literal as written (kept when it holds no PV)
    parts: list[Any] = []  # its text (unescaped) and PVs
    lit: list[str] = []
    has_pv = False
    comment = ""  # "--" or "/*" while inside a comment

    def flush_sql() -> None:
        if sql:
            pieces.append((_SQL, "".join(sql)))
            sql.clear()

    for part in fmt.parts:
        if not isinstance(part, str):
            if quote:
                if lit:
                    parts.append("".join(lit))
                    lit.clear()
                parts.append(part)
                has_pv = True
            else:
                flush_sql()
                pieces.append((_VAL, part))
            continue
        i, n = 0, len(part)
        while i < n:
            ch = part[i]
            if comment:
                end = part.find("\n" if comment == "--" else "*/", i)
                if end < 0:
                    sql.append(part[i:])
                    break
                stop = end + (1 if comment == "--" else 2)
                sql.append(part[i:stop])
                i = stop
                comment = ""
                continue
            if not quote:
                if ch in string_quotes or ch in ident_quotes:
                    quote, raw, parts, lit, has_pv = ch, [ch], [], [], False
                elif part.startswith("--", i) or (mysql and ch == "#"):
                    comment = "--"
                    sql.append(ch)
                elif part.startswith("/*", i):
                    comment = "/*"
                    sql.append("/*")
                    i += 2
                    continue
                else:
                    sql.append(ch)
                i += 1
                continue
            # inside a quoted run
            if mysql and ch == "\\" and quote != "`" and i + 1 < n:
                nxt = part[i + 1]
                raw.append(part[i:i + 2])
                lit.append(_MYSQL_ESCAPES.get(nxt, nxt) if nxt not in "%_" else "\\" + nxt)
                i += 2
                continue
            if ch == quote:
                if i + 1 < n and part[i + 1] == quote:  # a doubled quote stays inside
                    raw.append(quote * 2)
                    lit.append(quote)
                    i += 2
                    continue
                raw.append(ch)
                if has_pv:
                    if lit:
                        parts.append("".join(lit))
                    flush_sql()
                    kind = _LIT if quote in string_quotes else _IDENT
                    pieces.append((kind, quote, tuple(parts)))
                else:
                    sql.append("".join(raw))
                quote = ""
                i += 1
                continue
            raw.append(ch)
            lit.append(ch)
            i += 1
    if quote:
        raise FixupError(f"unterminated {quote}...{quote} in query {fmt.text!r}")
    flush_sql()
    return SqlTemplate(fmt.text, tuple(pieces))
