"""Allow/deny rule files (1.6 permissions parse_config.c + rule.c).

One rule a line, in the tcpd hosts.allow style::

    from_list [EXCEPT from_list] : target_list [EXCEPT target_list]

A list is comma-separated expressions, each optionally in double quotes,
compiled as case-insensitive POSIX extended regexes and searched anywhere
in the subject; `ALL` alone (before any EXCEPT) matches everything. `#`
outside quotes starts a comment. The rule splits at the last colon outside
quotes and at the first " EXCEPT " (with its spaces, case-sensitive); an
exception list has no `ALL`. A rule matches a (left, right) pair when the
left list and the right list match and neither exception list does.

Where 1.6 logged a malformed line and skipped it (so a typo silently
widened or narrowed a policy), loading stops with FILE:LINE and the reason.
A missing file is an empty rule set, as in 1.6; one that exists but cannot
be read is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..textops import RegexError, compile_posix

EXPRESSION_LENGTH = 256  # 1.6 rule.h: longest expression, and longest subject
_EXCEPT = " EXCEPT "
_BLANKS = " \t\n\r\f\v"  # C isspace()


class RuleError(ValueError):
    """A rule line or rule file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Expression:
    text: str
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Rule:
    """One line: `left`/`right` None means ALL; exceptions () means none."""

    left: tuple[Expression, ...] | None
    left_except: tuple[Expression, ...]
    right: tuple[Expression, ...] | None
    right_except: tuple[Expression, ...]

    def matches(self, left: str, right: str) -> bool:
        return ((self.left is None or _any(self.left, left))
                and not _any(self.left_except, left)
                and (self.right is None or _any(self.right, right))
                and not _any(self.right_except, right))


def _any(exprs: Sequence[Expression], value: str) -> bool:
    return any(e.regex.search(value) is not None for e in exprs)


def search_rule(rules: Sequence[Rule], left: str, right: str) -> bool:
    """True when some rule matches the pair (1.6 search_rule)."""
    return any(r.matches(left, right) for r in rules)


# ---------------------------------------------------------------- parsing


def _expression(text: str) -> Expression:
    if len(text) + 1 > EXPRESSION_LENGTH:
        raise RuleError(f"expression too long <{text}>({len(text)})")
    try:
        return Expression(text, compile_posix(text, icase=True, newline=False))
    except RegexError as e:
        raise RuleError(f"bad regular expression: {text} ({e})") from None


def parse_expression_list(text: str) -> tuple[Expression, ...]:
    """`a, "b", c`: commas inside quotes do not split; one quote is taken
    off each end of a word and blanks around it; an empty word is an error."""
    out: list[Expression] = []
    start = 0
    quoted = False
    for i in range(len(text) + 1):
        c = text[i] if i < len(text) else ""
        if c == '"':
            quoted = not quoted
            continue
        if c == "," and quoted:
            continue
        if c not in (",", ""):
            continue
        while start < len(text) and text[start] in " \t":
            start += 1
        if start < len(text) and text[start] == '"':
            start += 1
        j = i - 1
        while j > 0 and text[j] in " \t":
            j -= 1
        if j > 0 and text[j] == '"':
            j -= 1
        if start > j:
            raise RuleError(f"empty expression in list <{text.strip()}>")
        out.append(_expression(text[start:j + 1]))
        start = i + 1
    return tuple(out)


def parse_expression(text: str) -> tuple[tuple[Expression, ...] | None, tuple[Expression, ...]]:
    """`list [EXCEPT list]` -> (expressions or None for ALL, exceptions)."""
    head, sep, tail = text.partition(_EXCEPT)
    exceptions = parse_expression_list(tail) if sep else ()
    head = head.strip(_BLANKS)
    if head == "ALL":
        return None, exceptions
    return parse_expression_list(head), exceptions


def parse_rule_line(line: str) -> Rule | None:
    """One line -> a Rule, None for a blank or comment line; RuleError if malformed."""
    quoted = False
    colon = -1
    content = False
    end = len(line)
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
            content = True
        elif c == ":":
            if not quoted:
                colon = i
            content = True
        elif (c == "#" and not quoted) or c == "\n":
            end = i
            break
        elif c not in " \t":
            content = True
    if not content:
        return None
    if not (colon > 0 and colon + 1 < end):
        raise RuleError("expected `from_list : target_list`")
    left, left_except = parse_expression(line[:colon])
    right, right_except = parse_expression(line[colon + 1:end])
    return Rule(left, left_except, right, right_except)


def parse_rules(text: str, filename: str = "<rules>") -> list[Rule]:
    """Every rule of a file's text; RuleError names `filename:line`."""
    rules: list[Rule] = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            rule = parse_rule_line(line.rstrip("\r"))
        except RuleError as e:
            raise RuleError(f"{filename}:{n}: {e}: {line.strip()}") from None
        if rule is not None:
            rules.append(rule)
    return rules


def load_rule_file(path: str) -> list[Rule] | None:
    """The rules of `path`; None when the file does not exist (an empty set)."""
    try:
        with open(path, encoding="latin-1") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RuleError(f"{path}: cannot read rule file: {e.strerror or e}") from None
    return parse_rules(text, path)
