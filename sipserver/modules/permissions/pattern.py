"""Shell wildcard patterns of the address table (1.6: fnmatch(3), FNM_PERIOD).

The `pattern` column of a row is matched against the pattern argument of
check_address/check_source_address with glibc's fnmatch rules: `*` any
text, `?` one character, `[...]` a set (`!` or `^` negates, ranges,
`[:class:]`, a backslash escapes inside it too), `\\c` the character c, an
unterminated `[` is literal, a trailing lone backslash never matches.
FNM_PERIOD: a leading `.` of the text is matched only by a literal `.`.
Matching is case-sensitive and `/` is an ordinary character.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "0-9a-zA-Z", "upper": "A-Z",
    "lower": "a-z", "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "xdigit": "0-9a-fA-F",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "cntrl": "\\x00-\\x1f\\x7f",
    "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e",
}

Matcher = Callable[[str], bool]


def _never(text: str) -> bool:
    return False


def _bracket(p: str, i: int) -> tuple[str, int] | None:
    """The regex set for the `[` at p[i] and the index after it; None when unterminated."""
    j = i + 1
    neg = j < len(p) and p[j] in "!^"
    if neg:
        j += 1
    items: list[str] = []
    first = True
    while j < len(p):
        c = p[j]
        if c == "]" and not first:
            if not items:  # only reversed ranges: matches nothing (or anything, negated)
                return ("." if neg else "(?!)"), j + 1
            return ("[^" if neg else "[") + "".join(items) + "]", j + 1
        first = False
        if c == "[" and p.startswith("[:", j):
            end = p.find(":]", j + 2)
            name = p[j + 2:end] if end > 0 else ""
            if name in _CLASSES:
                items.append(_CLASSES[name])
                j = end + 2
                continue
        if c == "\\" and j + 1 < len(p):
            j += 1
            c = p[j]
        j += 1
        if j + 1 < len(p) and p[j] == "-" and p[j + 1] != "]":
            hi = p[j + 1]
            if hi == "\\" and j + 2 < len(p):
                hi = p[j + 2]
                j += 1
            j += 2
            if ord(hi) >= ord(c):
                items.append(f"{re.escape(c)}-{re.escape(hi)}")
            continue
        items.append(re.escape(c))
    return None


def compile_pattern(pattern: str) -> Matcher:
    """A function telling whether a text matches `pattern` as fnmatch would."""
    out: list[str] = []
    i = 0
    literal_start = pattern.startswith((".", "\\."))
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
            i += 1
        elif c == "?":
            out.append(".")
            i += 1
        elif c == "\\":
            if i + 1 >= len(pattern):
                return _never
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "[":
            found = _bracket(pattern, i)
            if found is None:
                out.append(re.escape(c))
                i += 1
            else:
                out.append(found[0])
                i = found[1]
        else:
            out.append(re.escape(c))
            i += 1
    rx = re.compile("".join(out), re.DOTALL)
    full = rx.fullmatch

    def match(text: str) -> bool:
        if text.startswith(".") and not literal_start:
            return False
        return full(text) is not None

    return match
