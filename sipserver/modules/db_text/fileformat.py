"""The db_text file format, read and written byte-compatibly with OpenSIPS 1.6.

A table is one file. Line 1 defines the columns, separated by spaces:
`name(type)`, `name(type,null)` or `name(int,auto)`. The type is known by
its first letter as 1.6 does (`int`, `double`, `str`/`string`, `blob`,
`time`), plus `datetime`, which we read as a date (1.6 would take it for a
double because of its `d`; 1.6 itself always writes `time`). Every other
line is a row: fields separated by `:`, with `\\n \\r \\t \\\\ \\: \\0`
escaped inside strings and blobs; an empty field is NULL.

Why an empty field in a column *without* `null` reads as "" (str/blob):
1.6 refuses to load such a file, yet writes one itself whenever a module
stores an empty string there; reading it as "" loses nothing and keeps the
table loadable. In a `null` column an empty string and NULL look the same
on disk, so "" comes back as None (a limit of the format).

Doubles are written with two decimals, as 1.6 does, when that loses
nothing; otherwise with as many digits as it takes to read back the same
value (still plain decimal, so 1.6 reads it). Every error names the file
and line.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ...db.api import DbError

# column kinds (what the values are) and the spelling 1.6 writes for each
INT, DOUBLE, STR, BLOB, TIME = "int", "double", "str", "blob", "time"
_SPELLINGS = {"int": INT, "double": DOUBLE, "str": STR, "string": STR, "blob": BLOB,
              "time": TIME, "datetime": TIME}

_COLDEF = re.compile(rb"([^\s(:]+)\s*\(\s*([A-Za-z_]+)\s*(?:,\s*([A-Za-z_]*)\s*)?\)")
_INT = re.compile(rb"-?[0-9]+")
_DOUBLE = re.compile(rb"-?[0-9]+(?:\.[0-9]*)?")
_UNESCAPE = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("\\"): 92, ord(":"): 58, ord("0"): 0}

RowValue = None | int | float | str | bytes  # a TIME column holds the epoch as int


@dataclass(slots=True)
class Column:
    """One column: its name as written, kind, spelling and flags."""

    name: str
    kind: str
    spelling: str  # int, double, str, string, blob, time
    nullable: bool = False
    auto: bool = False

    def definition(self) -> str:
        """`name(type[,null|,auto])` as 1.6 prints it (null wins over auto)."""
        attr = ",null" if self.nullable else ",auto" if self.auto else ""
        return f"{self.name}({self.spelling}{attr})"


@dataclass(slots=True)
class TableData:
    """A parsed table: columns, rows (tuples of RowValue) and each row's line.

    `lines[i]` is row i's text on disk (without the newline); rows nobody
    changed are written back exactly as they were read.
    """

    columns: list[Column]
    rows: list[tuple[RowValue, ...]] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    auto_col: int = -1
    auto_max: int = 0

    def header(self) -> bytes:
        return (" ".join(c.definition() for c in self.columns) + "\n").encode()

    def render(self) -> bytes:
        """The whole file."""
        return self.header() + b"".join(line + b"\n" for line in self.lines)


def column(name: str, type_: str, nullable: bool = False, auto: bool = False) -> Column:
    """A Column from a schema definition; ValueError for what 1.6 cannot store."""
    spelling = type_.lower()
    kind = _SPELLINGS.get(spelling)
    if kind is None:
        raise ValueError(f'column "{name}": unknown type "{type_}" '
                         "(int, double, str, string, blob, datetime)")
    if not name or re.search(r"[\s():,]", name):
        raise ValueError(f'bad column name "{name}"')
    if auto and kind != INT:
        raise ValueError(f'column "{name}": only an int column can be auto')
    # an auto column is never NULL (and 1.6 can only write one of the two flags)
    return Column(name, kind, "time" if kind == TIME else spelling, nullable and not auto, auto)


# ---------------------------------------------------------------- reading


def _coldef(path: str, m: re.Match[bytes], auto_seen: bool) -> Column:
    name = m.group(1).decode("utf-8", "surrogateescape")
    word = m.group(2).decode().lower()
    attr = (m.group(3) or b"").decode().lower()
    if word.startswith("date"):
        kind, spelling = TIME, "time"
    else:
        first = word[0]
        kind = {"i": INT, "d": DOUBLE, "s": STR, "b": BLOB, "t": TIME}.get(first, "")
        if not kind:
            raise DbError(f"{path}:1: column {name}: unknown type \"{word}\"")
        spelling = {INT: "int", DOUBLE: "double", BLOB: "blob", TIME: "time"}.get(kind, "")
        if kind == STR:
            spelling = "string" if "i" in word else "str"
    col = Column(name, kind, spelling)
    if attr.startswith("n"):
        col.nullable = True
    elif attr.startswith("a") and kind == INT and not auto_seen:
        col.auto = True
    elif m.group(3) is not None:
        raise DbError(f"{path}:1: column {name}: bad attribute \"{attr}\" "
                      "(null, or auto on the first auto int column)")
    return col


def parse_header(path: str, line: bytes) -> list[Column]:
    """Line 1 of a table file."""
    if line.endswith(b"\r"):
        raise DbError(f"{path}:1: CRLF line ends are not supported (use LF)")
    columns: list[Column] = []
    pos, end = 0, len(line)
    seen: set[str] = set()
    while True:
        while pos < end and line[pos] in b" \t":
            pos += 1
        if pos >= end:
            break
        m = _COLDEF.match(line, pos)
        if m is None:
            bad = line[pos:pos + 30].decode("utf-8", "replace")
            raise DbError(f'{path}:1: bad column definition at "{bad}" '
                          "(expected name(type[,null|,auto]))")
        col = _coldef(path, m, any(c.auto for c in columns))
        if col.name.lower() in seen:
            raise DbError(f"{path}:1: column {col.name} defined twice")
        seen.add(col.name.lower())
        columns.append(col)
        pos = m.end()
    if not columns:
        raise DbError(f"{path}:1: no column definitions (is this a db_text table?)")
    return columns


def split_fields(path: str, lineno: int, line: bytes) -> list[bytes]:
    """A row line cut at unescaped `:`, escapes resolved."""
    if b"\\" not in line:
        return line.split(b":")
    fields: list[bytes] = []
    cur = bytearray()
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == 92:  # backslash
            if i + 1 >= n or line[i + 1] not in _UNESCAPE:
                esc = line[i:i + 2].decode("utf-8", "replace")
                raise DbError(f'{path}:{lineno}: bad escape "{esc}" '
                              "(known: \\n \\r \\t \\\\ \\: \\0)")
            cur.append(_UNESCAPE[line[i + 1]])
            i += 2
            continue
        if c == 58:  # ':'
            fields.append(bytes(cur))
            cur = bytearray()
        else:
            cur.append(c)
        i += 1
    fields.append(bytes(cur))
    return fields


def parse_value(path: str, lineno: int, col: Column, raw: bytes) -> RowValue:
    """One field; None for an empty field in a `null` (or auto) column."""
    if not raw:
        if col.nullable or col.auto:
            return None
        if col.kind == STR:
            return ""
        if col.kind == BLOB:
            return b""
        raise DbError(f"{path}:{lineno}: column {col.name}: empty value (NULL) "
                      "in a column without the null attribute")
    kind = col.kind
    if kind in (INT, TIME):
        if not _INT.fullmatch(raw):
            raise DbError(f'{path}:{lineno}: column {col.name}: bad integer "{_show(raw)}"')
        return int(raw)
    if kind == DOUBLE:
        if not _DOUBLE.fullmatch(raw):
            raise DbError(f'{path}:{lineno}: column {col.name}: bad number "{_show(raw)}"')
        return float(raw)
    if kind == STR:
        return raw.decode("utf-8", "surrogateescape")
    return raw


def _show(raw: bytes) -> str:
    return raw[:40].decode("utf-8", "replace")


def parse_table(path: str, data: bytes) -> TableData:
    """A whole file; DbError naming `path:line` for anything 1.6 would not load.

    Empty lines are skipped, as in 1.6. An auto column left empty gets the
    next number after the largest one in the file.
    """
    lines = data.split(b"\n")
    columns = parse_header(path, lines[0])
    table = TableData(columns)
    ncols = len(columns)
    table.auto_col = next((i for i, c in enumerate(columns) if c.auto), -1)
    auto_col = table.auto_col
    missing_auto: list[int] = []
    kinds = [c.kind for c in columns]
    fast = all(k == STR and not c.nullable for k, c in zip(kinds, columns, strict=True))
    for lineno, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        raw_fields = split_fields(path, lineno, line)
        if len(raw_fields) != ncols:
            raise DbError(f"{path}:{lineno}: {len(raw_fields)} fields, the header "
                          f"defines {ncols} columns")
        if fast:
            row = tuple(r.decode("utf-8", "surrogateescape") for r in raw_fields)
        else:
            row = tuple(parse_value(path, lineno, c, r)
                        for c, r in zip(columns, raw_fields, strict=True))
        if auto_col >= 0:
            v = row[auto_col]
            if v is None:
                missing_auto.append(len(table.rows))
            elif v > table.auto_max:  # type: ignore[operator]
                table.auto_max = v  # type: ignore[assignment]
        table.rows.append(row)
        table.lines.append(line)
    for i in missing_auto:  # 1.6 numbers them too (from 1, which may clash)
        table.auto_max += 1
        row = list(table.rows[i])
        row[auto_col] = table.auto_max
        table.rows[i] = tuple(row)
        table.lines[i] = encode_row(columns, table.rows[i])
    return table


# ---------------------------------------------------------------- writing


def _escape(raw: bytes) -> bytes:
    if not any(c in raw for c in b"\\:\n\r\t\0"):
        return raw
    return (raw.replace(b"\\", b"\\\\").replace(b":", b"\\:").replace(b"\n", b"\\n")
            .replace(b"\r", b"\\r").replace(b"\t", b"\\t").replace(b"\0", b"\\0"))


def format_double(value: float) -> bytes:
    """1.6's `%.2f` when it keeps the value, else the shortest exact decimal."""
    if not math.isfinite(value):
        raise DbError(f"cannot store {value} in a db_text file")
    two = f"{value:.2f}"
    if float(two) == value:
        return two.encode()
    return format(Decimal(repr(value)), "f").encode()


def encode_value(col: Column, value: RowValue) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return _escape(value.encode("utf-8", "surrogateescape"))
    if isinstance(value, bytes):
        return _escape(value)
    if isinstance(value, float):
        return format_double(value)
    return str(int(value)).encode()


def encode_row(columns: Sequence[Column], row: Sequence[RowValue]) -> bytes:
    return b":".join(encode_value(c, v) for c, v in zip(columns, row, strict=True))


def write_file(path: str, data: bytes, mode: int | None = None) -> os.stat_result:
    """Replace `path` by `data` atomically (temp file, fsync, rename).

    Readers see the old file or the new one, never half of one; `mode`
    keeps the old file's permissions. Returns the new file's stat.
    """
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if mode is not None:
                os.fchmod(f.fileno(), mode & 0o7777)
            else:
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            st = os.fstat(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return st


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def write_table(directory: str | os.PathLike[str], name: str,
                columns: Iterable[tuple[str, str, bool, bool] | Column],
                rows: Iterable[Sequence[RowValue]] = (), *, replace: bool = False) -> str:
    """Create table file `directory/name` from (name, type, nullable, auto) tuples.

    For `sipctl db create` with a text:// URL (and the `version` table, with
    its rows). Types: int, double, str, string, blob, datetime (written as
    1.6's `time`). Row values are Python values (a datetime is stored as
    its epoch seconds, local time).
    Raises FileExistsError unless `replace`; returns the file's path.
    """
    cols = [c if isinstance(c, Column) else column(*c) for c in columns]
    if not cols:
        raise ValueError(f"table {name}: no columns")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f'bad table name "{name}"')
    path = os.path.join(os.fspath(directory), name)
    if not replace and os.path.exists(path):
        raise FileExistsError(f"{path}: table file exists")
    table = TableData(cols)
    for row in rows:
        if len(row) != len(cols):
            raise ValueError(f"table {name}: row {row!r} has {len(row)} values, "
                             f"{len(cols)} columns")
        values: list[RowValue] = []
        for col, value in zip(cols, row, strict=True):
            if isinstance(value, datetime.datetime):
                value = int(time.mktime(value.timetuple()))
            if value is None and not (col.nullable or col.auto):
                raise ValueError(f"table {name}: column {col.name} cannot be NULL")
            values.append(value)
        table.lines.append(encode_row(cols, values))
    write_file(path, table.render())
    return path
