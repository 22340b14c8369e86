"""Script transformations: the ``{class.method,params}`` suffixes of a PV.

``$(pv{s.substr,1,2}{uri.user})`` runs each transformation on the value of
the one before.  This module compiles the text inside one pair of braces
into a plain function ``(ctx, value) -> value``.  All text parsing, parameter
splitting and pseudo-variable (PV) compilation happen once, at start-up;
the run-time closures only do the work itself.

Values follow the interpreter's model: ``None`` (null), ``str`` (latin-1,
one char per octet) or ``int``.  An ``int`` input is first turned into its
decimal text, because in 1.6 integer PVs always carry their text as well.
A failing transformation raises :class:`TransformationError`; the caller
then treats the whole PV as failed (nothing in formats, false in
conditions, assignment fails).

Behaviour is OpenSIPS 1.6.4's (``transformations.c`` and the parsers it
calls), checked against the real 1.6.4 core where the two disagree with
the reference text.  Deliberate differences are listed in
:data:`COMPATIBILITY_NOTES`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import socket
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sipserver.sip.errors import ParseError
from sipserver.sip.headers import parse_name_addr
from sipserver.sip.uri import parse_uri

__all__ = [
    "COMPATIBILITY_NOTES",
    "CompilePv",
    "Getter",
    "MethodCompiler",
    "Param",
    "Transform",
    "TransformationError",
    "TransformationSyntaxError",
    "chain",
    "class_names",
    "compile_transformation",
    "expect_params",
    "int_param",
    "method_names",
    "register_class",
    "set_resolver",
    "split_params",
    "str_param",
]

Getter = Callable[[Any], Any]
"""ctx -> value: reads a PV used as a parameter, at run time."""

Transform = Callable[[Any, Any], Any]
"""(ctx, value) -> new value; raises TransformationError on failure."""

CompilePv = Callable[[str], Getter]
"""Compiles PV text such as ``$var(x)`` or ``$(avp(i:1){s.len})``."""

MethodCompiler = Callable[[str, "list[Param]"], Transform]
"""(``"class.method"``, parameters) -> Transform; raises
TransformationSyntaxError for bad parameters."""

COMPATIBILITY_NOTES = (
    "s.crc32 is the standard zlib CRC-32 (1.6 omits the final inversion).",
    "param.valueat/param.name count like 1.6 really does: index 0 is the LAST "
    "parameter and -1 the first (1.6 reverses an index meant for a list it "
    "no longer builds backwards).",
    "nameaddr.len is 1.6's value: without header params it counts 2 more "
    "chars than the text (1.6 parses the value with a CRLF appended).",
    "s.int accepts only '-' as sign; '' and '-' give 0 (1.6's str2sint).",
    "sdp.line searches the value itself (1.6 starts the search at the "
    "parameter text: plainly broken); lines may end in CRLF, LF or CR.",
    "A numeric literal needs digits: a lone '+' or '-' is a start-up error (1.6 reads it as 0).",
    "nameaddr.param with a PV name is a start-up error (1.6 fails at run time).",
    "sdp.line's type letter may be a PV: the first char of its value (1.6 misreads a PV there).",
    "URIs and name-addrs are parsed by sipserver.sip, not 1.6's more lenient "
    "state machines.  uri.port is a plain int: 0 without a port (1.6 prints "
    "that as empty text) and 5060 for ':05060' (1.6 keeps the text too).",
    "Results are unbounded Python ints; 1.6 wraps at 32 bits.  1.6's 64 KiB "
    "transformation buffer limit is not reproduced.",
)


class TransformationError(Exception):
    """A transformation failed at run time; the whole PV evaluation fails."""


class TransformationSyntaxError(Exception):
    """A transformation is invalid: unknown class or method, bad parameters.

    Raised at start-up so the script is rejected before it handles traffic;
    the message names the problem and, when it can, the likely intended name.
    """


_BLANKS = " \t\r\n"
_PV_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
_OPENERS = "({["
_CLOSERS = ")}]"

# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """One comma-separated transformation parameter, as written.

    `raw` keeps surrounding blanks (``s.select`` needs them: its separator
    may be a space).  Method compilers turn a Param into a value source with
    :func:`int_param` / :func:`str_param`, which compile a PV parameter with
    `compile_pv`.
    """

    raw: str
    compile_pv: CompilePv

    @property
    def text(self) -> str:
        """The parameter without surrounding blanks."""
        return self.raw.strip(_BLANKS)

    @property
    def is_pv(self) -> bool:
        """Whether the parameter is a pseudo-variable (read at run time)."""
        return self.raw.lstrip(_BLANKS).startswith("$")


def _bracket_end(text: str, pos: int) -> int:
    """Index just past the bracket matching the opener at `pos`.

    (), {} and [] are counted together: a PV parameter may hold an index and
    transformations of its own, e.g. ``$(avp(i:1)[0]{s.select,1,,})``.
    """
    depth = 0
    for k in range(pos, len(text)):
        c = text[k]
        if c in _OPENERS:
            depth += 1
        elif c in _CLOSERS:
            depth -= 1
            if depth == 0:
                return k + 1
    raise TransformationSyntaxError(f"unbalanced brackets in parameter {text[pos - 1 :]!r}")


def _pv_end(text: str, pos: int) -> int:
    """Index just past the PV starting with the '$' at `pos`."""
    n = len(text)
    j = pos + 1
    if j < n and text[j] == "$":
        return j + 1
    if j < n and text[j] == "(":
        return _bracket_end(text, j)
    while j < n and text[j] in _PV_NAME_CHARS:
        j += 1
    if j < n and text[j] == "(":
        j = _bracket_end(text, j)
    if j < n and text[j] == "[":  # sipserver superset: $hdr(Via)[1]
        j = _bracket_end(text, j)
    return j


def split_params(text: str, compile_pv: CompilePv) -> list[Param]:
    """Split the text after ``class.method,`` into parameters.

    A literal runs up to the next comma; a PV runs to its end, so commas
    and braces inside ``$(var(x){s.select,0,,})`` do not split it.  Text
    after a PV other than blanks is an error.
    """
    params: list[Param] = []
    n = len(text)
    i = 0
    while True:
        j = i
        while j < n and text[j] in _BLANKS:
            j += 1
        if j < n and text[j] == "$":
            end = _pv_end(text, j)
            k = end
            while k < n and text[k] in _BLANKS:
                k += 1
            if k < n and text[k] != ",":
                junk = text[k:].split(",", 1)[0]
                raise TransformationSyntaxError(
                    f"unexpected {junk!r} after pseudo-variable {text[j:end]!r}"
                )
        else:
            k = text.find(",", i)
            if k < 0:
                k = n
        params.append(Param(text[i:k], compile_pv))
        if k >= n:
            return params
        i = k + 1


def expect_params(name: str, params: list[Param], count: int, what: str = "") -> None:
    """Check the number of parameters; `what` names them in the message."""
    if len(params) == count:
        return
    if count == 0:
        raise TransformationSyntaxError(f"{name} takes no parameters, got {len(params)}")
    noun = "parameter" if count == 1 else "parameters"
    detail = f" ({what})" if what else ""
    raise TransformationSyntaxError(f"{name} takes {count} {noun}{detail}, got {len(params)}")


_INT_LITERAL_RE = re.compile(r"([+-]?)[ \t\r\n]*([0-9]+)")


def int_param(
    name: str, param: Param, what: str, *, non_negative: bool = False
) -> Callable[[Any], int]:
    """Getter for a numeric parameter: a signed integer literal or a PV.

    A PV must hold an int at run time (a string, even "3", fails, as in
    1.6).  With `non_negative`, a negative literal is a start-up error and a
    negative PV value a run-time failure.
    """
    text = param.text
    if not text:
        raise TransformationSyntaxError(f"{name}: missing {what}")
    if param.is_pv:
        get = param.compile_pv(text)

        def pv_int(ctx: Any) -> int:
            v = get(ctx)
            if type(v) is not int:
                v = getattr(v, "ival", None)  # a str+int value (IntStr) carries one
                if v is None:
                    raise TransformationError(f"{name}: {what} {text} is not an integer")
            if non_negative and v < 0:
                raise TransformationError(f"{name}: {what} {text} is negative: {v}")
            return v

        return pv_int
    m = _INT_LITERAL_RE.fullmatch(text)
    if m is None:
        raise TransformationSyntaxError(
            f"{name}: {what} must be an integer or a pseudo-variable, got {text!r}"
        )
    value = int(m.group(2))
    if m.group(1) == "-":
        value = -value
    if non_negative and value < 0:
        raise TransformationSyntaxError(f"{name}: {what} must not be negative, got {value}")
    return lambda ctx: value


def str_param(name: str, param: Param, what: str) -> Callable[[Any], str]:
    """Getter for a string parameter: a word without blanks or commas, or a PV.

    A PV value must be non-empty text (an int counts as its decimal text).
    """
    text = param.text
    if not text:
        raise TransformationSyntaxError(f"{name}: missing {what}")
    if param.is_pv:
        get = param.compile_pv(text)

        def pv_str(ctx: Any) -> str:
            v = get(ctx)
            if isinstance(v, str):
                if v:
                    return v
            elif v is not None:
                return str(int(v))
            raise TransformationError(f"{name}: {what} {text} is null or empty")

        return pv_str
    if any(c in _BLANKS for c in text):
        raise TransformationSyntaxError(f"{name}: {what} cannot contain blanks: {text!r}")
    return lambda ctx: text


# ---------------------------------------------------------------------------
# Registry and compilation
# ---------------------------------------------------------------------------

_CLASSES: dict[str, dict[str, MethodCompiler]] = {}


def register_class(
    name: str, methods: Mapping[str, MethodCompiler], *, replace: bool = False
) -> None:
    """Make transformation class `name` available to scripts.

    `methods` maps each method name (dots allowed, e.g. ``encode.hexa``) to
    a compiler called as ``compiler("class.method", params)``.  Names are
    case-insensitive.  Modules call this when loaded; registering a name
    twice is an error unless `replace` is set.
    """
    key = name.strip().lower()
    if not key or "." in key or any(c in _BLANKS or c in ",{}" for c in key):
        raise ValueError(f"invalid transformation class name {name!r}")
    if key in _CLASSES and not replace:
        raise ValueError(f"transformation class {key!r} is already registered")
    if not methods:
        raise ValueError(f"transformation class {key!r} has no methods")
    _CLASSES[key] = {m.strip().lower(): f for m, f in methods.items()}


def class_names() -> list[str]:
    """Registered class names, sorted (for messages and documentation)."""
    return sorted(_CLASSES)


def method_names(cls: str) -> list[str]:
    """Method names of class `cls`, sorted; [] for an unknown class."""
    return sorted(_CLASSES.get(cls.lower(), ()))


def _suggest(word: str, candidates: list[str], cutoff: float = 0.6) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    return found[0] if found else None


def _unknown_class(cls: str, method: str, text: str) -> TransformationSyntaxError:
    msg = f"unknown transformation class {cls!r} in {{{text}}}"
    hint = _suggest(cls, class_names(), 0.5)
    if hint is not None and not method:
        msg += f"; did you mean '{hint}'?"
    elif hint is not None:
        msg += f"; did you mean '{hint}.{method}'?"
    else:
        owners = [c for c in class_names() if method and method in _CLASSES[c]]
        if owners:
            msg += f"; did you mean '{owners[0]}.{method}'?"
        else:
            msg += f" (known classes: {', '.join(class_names())})"
    return TransformationSyntaxError(msg)


def _unknown_method(cls: str, method: str, text: str) -> TransformationSyntaxError:
    if not method:
        return TransformationSyntaxError(f"missing method name in {{{text}}}")
    names = method_names(cls)
    msg = f"unknown method {method!r} of transformation class {cls!r} in {{{text}}}"
    hint = _suggest(method, names)
    if hint is not None:
        msg += f"; did you mean '{cls}.{hint}'?"
    else:
        msg += f" (methods: {', '.join(names)})"
    return TransformationSyntaxError(msg)


def compile_transformation(text: str, compile_pv: CompilePv) -> Transform:
    """Compile the inside of one ``{...}`` (without the braces).

    Parameter PVs are compiled here through `compile_pv`; its exceptions
    propagate unchanged.  Raises TransformationSyntaxError for anything
    wrong with the transformation itself.
    """
    # Trailing blanks may matter: {s.select,1, } splits on a space.
    body = text.lstrip(_BLANKS)
    if body.startswith("{"):
        raise TransformationSyntaxError(
            f"transformation text must not include the braces: {text!r}"
        )
    dot = body.find(".")
    if dot <= 0:
        raise TransformationSyntaxError(
            f"invalid transformation {{{body}}}: expected class.method[,params]"
        )
    cls = body[:dot].strip(_BLANKS).lower()
    rest = body[dot + 1 :]
    comma = rest.find(",")
    if comma < 0:
        method, ptext = rest, None
    else:
        method, ptext = rest[:comma], rest[comma + 1 :]
    method = method.strip(_BLANKS).lower()
    methods = _CLASSES.get(cls)
    if methods is None:
        raise _unknown_class(cls, method, body)
    compiler = methods.get(method)
    if compiler is None:
        raise _unknown_method(cls, method, body)
    try:
        params = [] if ptext is None else split_params(ptext, compile_pv)
        return compiler(f"{cls}.{method}", params)
    except TransformationSyntaxError as e:
        raise TransformationSyntaxError(f"{e} (in {{{body}}})") from None


def chain(*transforms: Transform) -> Transform:
    """One Transform applying `transforms` left to right, as ``{a}{b}`` does."""
    if len(transforms) == 1:
        return transforms[0]
    steps = tuple(transforms)

    def run(ctx: Any, value: Any) -> Any:
        for step in steps:
            value = step(ctx, value)
        return value

    return run


# ---------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------


def _text(name: str, value: Any) -> str:
    """The value as text: ints become decimal text, null fails."""
    if isinstance(value, str):
        return value
    if value is None:
        raise TransformationError(f"{name}: null value")
    if isinstance(value, int):
        return str(int(value))
    raise TransformationError(f"{name}: unsupported value {value!r}")


def _nonempty(name: str, value: Any) -> str:
    """Text for the parsing classes (uri, param, ...): empty text fails too."""
    text = value if isinstance(value, str) else _text(name, value)
    if not text:
        raise TransformationError(f"{name}: empty value")
    return text


def _octets(text: str) -> bytes:
    """The octets a latin-1 text stands for (UTF-8 for anything wider)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _no_params(transform: Transform) -> MethodCompiler:
    """Compiler for a method without parameters: the transform itself."""

    def compile_(name: str, params: list[Param]) -> Transform:
        expect_params(name, params, 0)
        return transform

    return compile_


# ---------------------------------------------------------------------------
# class s
# ---------------------------------------------------------------------------


def _s_len(ctx: Any, value: Any) -> int:
    return len(_text("s.len", value))


def _s_int(ctx: Any, value: Any) -> int:
    if type(value) is int:
        return value
    ival = getattr(value, "ival", None)  # str+int values (IntStr) convert to their integer
    if ival is not None:
        return ival
    text = _text("s.int", value)
    # 1.6's str2sint: only '-' as sign, digits only; '' and '-' give 0.
    digits = text[1:] if text[:1] == "-" else text
    if not digits:
        return 0
    if not (digits.isascii() and digits.isdigit()):
        raise TransformationError(f"s.int: not an integer: {text[:40]!r}")
    n = int(digits)
    return -n if len(digits) < len(text) else n


def _s_md5(ctx: Any, value: Any) -> str:
    return hashlib.md5(_octets(_text("s.md5", value))).hexdigest()


def _s_crc32(ctx: Any, value: Any) -> str:
    # sipserver fix (§10 row 16): standard CRC-32, where 1.6 left out the
    # final XOR.
    return str(zlib.crc32(_octets(_text("s.crc32", value))))


def _s_encode_hexa(ctx: Any, value: Any) -> str:
    return _octets(_text("s.encode.hexa", value)).hex()


_HEX_VALUES = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}


def _s_decode_hexa(ctx: Any, value: Any) -> str:
    text = _text("s.decode.hexa", value)
    hv = _HEX_VALUES
    out = []
    for i in range(0, len(text) - 1, 2):  # an odd last char is ignored
        hi, lo = hv.get(text[i]), hv.get(text[i + 1])
        if hi is None or lo is None:
            raise TransformationError(f"s.decode.hexa: not hex: {text[i : i + 2]!r}")
        out.append(chr(hi << 4 | lo))
    return "".join(out)


_ESCAPE_COMMON = str.maketrans({"'": "\\'", '"': '\\"', "\\": "\\\\", "\0": "\\0"})
_UNESCAPE_COMMON_RE = re.compile(r"\\(['\"\\0])")
_UNESCAPE_COMMON = {"'": "'", '"': '"', "\\": "\\", "0": "\0"}


def _s_escape_common(ctx: Any, value: Any) -> str:
    return _text("s.escape.common", value).translate(_ESCAPE_COMMON)


def _s_unescape_common(ctx: Any, value: Any) -> str:
    # Any other backslash, and a trailing one, stays as it is.
    text = _text("s.unescape.common", value)
    if "\\" not in text:
        return text
    return _UNESCAPE_COMMON_RE.sub(lambda m: _UNESCAPE_COMMON[m.group(1)], text)


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_USER_KEEP = frozenset(_ALNUM + "-_.!~*'()&=+$,;?")
_PARAM_ESCAPED = frozenset(' ?&=,;"')
_USER_TABLE = {i: f"%{i:02x}" for i in range(32, 127) if chr(i) not in _USER_KEEP}
_PARAM_TABLE = {ord(c): f"%{ord(c):02x}" for c in _PARAM_ESCAPED}
_PRINTABLE_RE = re.compile(r"[ -~]*")


def _s_escape_user(ctx: Any, value: Any) -> str:
    text = _text("s.escape.user", value)
    if not _PRINTABLE_RE.fullmatch(text):
        raise TransformationError("s.escape.user: only printable ASCII can be escaped")
    return text.translate(_USER_TABLE)


def _s_escape_param(ctx: Any, value: Any) -> str:
    text = _text("s.escape.param", value)
    if not _PRINTABLE_RE.fullmatch(text):
        raise TransformationError("s.escape.param: only printable ASCII can be escaped")
    return text.translate(_PARAM_TABLE)


def _unescape(name: str, value: Any) -> str:
    """%xx decoding shared by unescape.user and unescape.param (as in 1.6)."""
    text = _text(name, value)
    if "%" not in text:
        return text
    hv = _HEX_VALUES
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        hi = hv.get(text[i + 1]) if i + 1 < n else None
        lo = hv.get(text[i + 2]) if i + 2 < n else None
        if hi is None or lo is None:
            raise TransformationError(f"{name}: bad escape {text[i : i + 3]!r}")
        code = hi << 4 | lo
        if code < 32 or code > 126:
            raise TransformationError(f"{name}: escaped char %{code:02x} is not printable")
        out.append(chr(code))
        i += 3
    return "".join(out)


def _s_unescape_user(ctx: Any, value: Any) -> str:
    return _unescape("s.unescape.user", value)


def _s_unescape_param(ctx: Any, value: Any) -> str:
    return _unescape("s.unescape.param", value)


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _s_tolower(ctx: Any, value: Any) -> str:
    return _text("s.tolower", value).translate(_LOWER)


def _s_toupper(ctx: Any, value: Any) -> str:
    return _text("s.toupper", value).translate(_UPPER)


def _compile_substr(name: str, params: list[Param]) -> Transform:
    expect_params(name, params, 2, "offset, length")
    get_off = int_param(name, params[0], "offset")
    get_len = int_param(name, params[1], "length", non_negative=True)

    def substr(ctx: Any, value: Any) -> str:
        text = _text(name, value)
        off = get_off(ctx)
        length = get_len(ctx)
        size = len(text)
        if off >= 0:
            if off >= size:
                raise TransformationError(f"{name}: offset {off} out of range (length {size})")
        else:
            if -off > size:
                raise TransformationError(f"{name}: offset {off} out of range (length {size})")
            off += size
        if length == 0:  # 0 means "to the end"; so does running past it
            return text[off:]
        return text[off : off + length]

    return substr


def _compile_select(name: str, params: list[Param]) -> Transform:
    if len(params) < 2:
        raise TransformationSyntaxError(
            f"{name} takes 2 parameters (index, separator char), got {len(params)}"
        )
    get_idx = int_param(name, params[0], "index")
    # The separator is the one char right after the comma, blanks included;
    # it may itself be a comma: {s.select,1,,}.
    raw = ",".join(p.raw for p in params[1:])
    if not raw:
        raise TransformationSyntaxError(f"{name}: missing separator char")
    if raw[1:].strip(_BLANKS):
        raise TransformationSyntaxError(f"{name}: the separator must be a single char, got {raw!r}")
    sep = raw[0]

    def select(ctx: Any, value: Any) -> str:
        fields = _text(name, value).split(sep)
        i = get_idx(ctx)
        if i < 0:
            i += len(fields)
            if i < 0:
                return ""
        elif i >= len(fields):
            return ""
        return fields[i]

    return select


register_class(
    "s",
    {
        "len": _no_params(_s_len),
        "int": _no_params(_s_int),
        "md5": _no_params(_s_md5),
        "crc32": _no_params(_s_crc32),
        "encode.hexa": _no_params(_s_encode_hexa),
        "decode.hexa": _no_params(_s_decode_hexa),
        "escape.common": _no_params(_s_escape_common),
        "unescape.common": _no_params(_s_unescape_common),
        "escape.user": _no_params(_s_escape_user),
        "unescape.user": _no_params(_s_unescape_user),
        "escape.param": _no_params(_s_escape_param),
        "unescape.param": _no_params(_s_unescape_param),
        "tolower": _no_params(_s_tolower),
        "toupper": _no_params(_s_toupper),
        "substr": _compile_substr,
        "select": _compile_select,
    },
)

# ---------------------------------------------------------------------------
# Parameter lists "a=1;b=2;c" (1.6's parse_params) -- used by uri.param and param.*
# ---------------------------------------------------------------------------

_PARAM_NAME_END = frozenset(" \t\r\n;,=")
_TOKEN_END = frozenset(" \t\r\n;,")


def _skip_blanks(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _BLANKS:
        i += 1
    return i


@lru_cache(maxsize=256)
def _param_list(s: str) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` pairs in text order; a quoted value loses its quotes.

    Parsing stops at ',' or '>' (header/URI parameter ends), as in 1.6.
    Raises ValueError where 1.6's parser fails: ``a=`` with no value, a
    trailing ``;``, an unterminated quote, junk after a value.
    """
    out: list[tuple[str, str]] = []
    n = len(s)
    i = 0
    while True:
        start = i
        while i < n and s[i] not in _PARAM_NAME_END:
            i += 1
        name = s[start:i]
        body = ""
        i = _skip_blanks(s, i)
        if i >= n:
            out.append((name, body))
            return tuple(out)
        if s[i] == "=":
            i = _skip_blanks(s, i + 1)
            if i >= n:
                raise ValueError(f"parameter {name!r} has no value")
            if s[i] == '"':
                end = s.find('"', i + 1)
                if end < 0:
                    raise ValueError(f"unterminated quoted value of parameter {name!r}")
                body = s[i + 1 : end]
                i = end + 1
            else:
                start = i
                while i < n and s[i] not in _TOKEN_END:
                    i += 1
                if i == start:
                    raise ValueError(f"parameter {name!r} has no value")
                body = s[start:i]
            i = _skip_blanks(s, i)
            if i >= n:
                out.append((name, body))
                return tuple(out)
        if s[i] in ",>":
            out.append((name, body))
            return tuple(out)
        if s[i] != ";":
            raise ValueError(f"';' expected, found {s[i]!r}")
        i = _skip_blanks(s, i + 1)
        if i >= n:
            raise ValueError("parameter name missing after ';'")
        out.append((name, body))


def _params_of(name: str, text: str) -> tuple[tuple[str, str], ...]:
    try:
        return _param_list(text)
    except ValueError as e:
        raise TransformationError(f"{name}: {e}") from None


def _find_param(params: tuple[tuple[str, str], ...], key: str) -> str:
    """Value of the first parameter named `key` (case-insensitive), or ''."""
    key = key.lower()
    for pname, body in params:
        if len(pname) == len(key) and pname.lower() == key:
            return body
    return ""


# ---------------------------------------------------------------------------
# class uri
# ---------------------------------------------------------------------------


class _UriParts:
    """What uri.* reads from one URI; parsed once per distinct text."""

    __slots__ = ("headers", "host", "named", "params", "passwd", "port", "user")

    def __init__(self, text: str) -> None:
        try:
            uri = parse_uri(text)
        except ParseError as e:
            raise TransformationError(f"uri: invalid URI {text[:60]!r}: {e.reason}") from None
        if uri.opaque is not None:
            raise TransformationError(f"uri: not a SIP URI: {text[:60]!r}")
        named: dict[str, str] = {}
        for pname, pvalue in uri.params:
            named.setdefault(pname.lower(), pvalue or "")
        user = uri.user or ""
        params = ";".join(p if v is None else f"{p}={v}" for p, v in uri.params)
        if uri.scheme in ("sip", "sips") and named.get("user", "").lower() == "phone":
            # 1.6 moves the user part's own ";..." into the URI params.
            semi = user.find(";")
            if semi >= 0:
                user, params = user[:semi], user[semi + 1 :]
        self.user = user
        self.host = uri.host
        self.passwd = uri.password or ""
        self.port = uri.port or 0
        self.params = params
        self.headers = uri.headers or ""
        self.named = named


@lru_cache(maxsize=256)
def _uri_parts(text: str) -> _UriParts:
    return _UriParts(text)


def _uri_getter(field: str) -> Transform:
    name = f"uri.{field}"

    def get(ctx: Any, value: Any) -> Any:
        return getattr(_uri_parts(_nonempty(name, value)), field)

    get.__name__ = f"_uri_{field}"
    return get


def _uri_named(pname: str, name: str) -> Transform:
    def get(ctx: Any, value: Any) -> str:
        return _uri_parts(_nonempty(name, value)).named.get(pname, "")

    return get


def _compile_uri_param(name: str, params: list[Param]) -> Transform:
    expect_params(name, params, 1, "parameter name")
    get_key = str_param(name, params[0], "parameter name")

    def uri_param(ctx: Any, value: Any) -> str:
        text = _uri_parts(_nonempty(name, value)).params
        if not text:
            return ""
        return _find_param(_params_of(name, text), get_key(ctx))

    return uri_param


register_class(
    "uri",
    {
        "user": _no_params(_uri_getter("user")),
        "host": _no_params(_uri_getter("host")),
        "domain": _no_params(_uri_getter("host")),
        "passwd": _no_params(_uri_getter("passwd")),
        "port": _no_params(_uri_getter("port")),
        "params": _no_params(_uri_getter("params")),
        "param": _compile_uri_param,
        "headers": _no_params(_uri_getter("headers")),
        "transport": _no_params(_uri_named("transport", "uri.transport")),
        "ttl": _no_params(_uri_named("ttl", "uri.ttl")),
        "uparam": _no_params(_uri_named("user", "uri.uparam")),
        "maddr": _no_params(_uri_named("maddr", "uri.maddr")),
        "method": _no_params(_uri_named("method", "uri.method")),
        "lr": _no_params(_uri_named("lr", "uri.lr")),
        "r2": _no_params(_uri_named("r2", "uri.r2")),
    },
)

# ---------------------------------------------------------------------------
# class param
# ---------------------------------------------------------------------------


def _compile_param_value(name: str, params: list[Param]) -> Transform:
    expect_params(name, params, 1, "parameter name")
    get_key = str_param(name, params[0], "parameter name")

    def param_value(ctx: Any, value: Any) -> str:
        plist = _params_of(name, _nonempty(name, value))
        return _find_param(plist, get_key(ctx))

    return param_value


def _compile_param_at(field: int) -> MethodCompiler:
    """param.valueat (field 1) / param.name (field 0), indexed as 1.6 does.

    1.6 counts a non-negative index from the END of the list and a negative
    one from the start (index 0 = last parameter, -1 = first); verified
    against the 1.6.4 core.  Out of range gives ''.
    """

    def compile_(name: str, params: list[Param]) -> Transform:
        expect_params(name, params, 1, "index")
        get_idx = int_param(name, params[0], "index")

        def param_at(ctx: Any, value: Any) -> str:
            plist = _params_of(name, _nonempty(name, value))
            i = get_idx(ctx)
            pos = -i - 1 if i < 0 else len(plist) - 1 - i
            if 0 <= pos < len(plist):
                return plist[pos][field]
            return ""

        return param_at

    return compile_


def _param_count(ctx: Any, value: Any) -> int:
    return len(_params_of("param.count", _nonempty("param.count", value)))


register_class(
    "param",
    {
        "value": _compile_param_value,
        "valueat": _compile_param_at(1),
        "name": _compile_param_at(0),
        "count": _no_params(_param_count),
    },
)

# ---------------------------------------------------------------------------
# class nameaddr
# ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _nameaddr_parts(text: str) -> tuple[str, str, int, tuple[tuple[str, str], ...]]:
    """(display with quotes, URI text, 1.6's len, header params)."""
    try:
        na = parse_name_addr(text, "name-addr")
    except ParseError as e:
        raise TransformationError(f"nameaddr: {e.reason}") from None
    params: list[tuple[str, str]] = []
    for p in na.params:
        v = p.value or ""
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        params.append((p.name, v))
    if na.params:
        length = text.index(";", na.params[0].start) - na.start
    else:
        # 1.6 parses the value with CRLF appended and counts it in.
        length = len(text) - na.start + 2
    return na.display or "", na.uri_text, length, tuple(params)


def _nameaddr_name(ctx: Any, value: Any) -> str:
    return _nameaddr_parts(_nonempty("nameaddr.name", value))[0]


def _nameaddr_uri(ctx: Any, value: Any) -> str:
    return _nameaddr_parts(_nonempty("nameaddr.uri", value))[1]


def _nameaddr_len(ctx: Any, value: Any) -> int:
    return _nameaddr_parts(_nonempty("nameaddr.len", value))[2]


def _compile_nameaddr_param(name: str, params: list[Param]) -> Transform:
    expect_params(name, params, 1, "parameter name")
    if params[0].is_pv:
        raise TransformationSyntaxError(
            f"{name}: the parameter name must be a literal, not a pseudo-variable"
        )
    key = str_param(name, params[0], "parameter name")(None)

    def nameaddr_param(ctx: Any, value: Any) -> str:
        for pname, body in _nameaddr_parts(_nonempty(name, value))[3]:
            if pname == key:  # case-sensitive, as in 1.6
                return body
        return ""

    return nameaddr_param


register_class(
    "nameaddr",
    {
        "name": _no_params(_nameaddr_name),
        "uri": _no_params(_nameaddr_uri),
        "len": _no_params(_nameaddr_len),
        "param": _compile_nameaddr_param,
    },
)

# ---------------------------------------------------------------------------
# class csv
# ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _csv_fields(text: str) -> tuple[str, ...]:
    """Fields as 1.6 splits them (quoted fields keep quotes and inner ``""``).

    The char right after a closing quote is skipped as if it were the
    comma, and a trailing comma adds no empty field.
    """
    nul = text.find("\0")
    if nul >= 0:
        text = text[:nul]
    out: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        if text[i] == '"':
            j = i + 1
            while True:
                j = text.find('"', j)
                if j < 0:
                    raise TransformationError(f"csv: unterminated quoted field in {text[:60]!r}")
                if j + 1 < n and text[j + 1] == '"':
                    j += 2
                    continue
                break
            out.append(text[i : j + 1])
            i = j + 2
        else:
            j = text.find(",", i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            i = j + 1
    return tuple(out)


def _csv_count(ctx: Any, value: Any) -> int:
    return len(_csv_fields(_nonempty("csv.count", value)))


def _compile_csv_value(name: str, params: list[Param]) -> Transform:
    expect_params(name, params, 1, "index")
    get_idx = int_param(name, params[0], "index")

    def csv_value(ctx: Any, value: Any) -> str:
        fields = _csv_fields(_nonempty(name, value))
        i = get_idx(ctx)
        pos = i + len(fields) if i < 0 else i
        if 0 <= pos < len(fields):
            return fields[pos]
        raise TransformationError(f"{name}: index {i} out of range ({len(fields)} fields)")

    return csv_value


register_class("csv", {"count": _no_params(_csv_count), "value": _compile_csv_value})

# ---------------------------------------------------------------------------
# class sdp
# ---------------------------------------------------------------------------

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")


@lru_cache(maxsize=64)
def _sdp_lines(body: str) -> tuple[str, ...]:
    return tuple(_LINE_BREAK_RE.split(body))


def _compile_sdp_line(name: str, params: list[Param]) -> Transform:
    if not 1 <= len(params) <= 2:
        raise TransformationSyntaxError(
            f"{name} takes 1 or 2 parameters (line type, [index]), got {len(params)}"
        )
    get_type = str_param(name, params[0], "line type")
    if len(params) == 2:
        get_nth = int_param(name, params[1], "index", non_negative=True)
    else:
        get_nth = lambda ctx: 0  # noqa: E731

    def sdp_line(ctx: Any, value: Any) -> str:
        lines = _sdp_lines(_nonempty(name, value))
        head = get_type(ctx)[0] + "="
        nth = get_nth(ctx)
        for line in lines:
            if line.startswith(head):
                if nth == 0:
                    return line
                nth -= 1
        return ""

    return sdp_line


register_class("sdp", {"line": _compile_sdp_line})

# ---------------------------------------------------------------------------
# class ip
# ---------------------------------------------------------------------------


def _str2ip(text: str) -> bytes | None:
    """1.6's lenient dotted-quad parser: empty octets are 0, octets wrap."""
    octets = [0, 0, 0, 0]
    i = 0
    for c in text:
        if c == ".":
            i += 1
            if i > 3:
                return None
        elif "0" <= c <= "9":
            octets[i] = (octets[i] * 10 + ord(c) - 48) & 0xFF
        else:
            return None
    if i < 3:
        return None
    return bytes(octets)


def _str2ip6(text: str) -> bytes | None:
    """1.6's IPv6 parser: hex groups, one '::', optional [brackets]."""
    if text and text[0] == "[":
        if text[-1] != "]":
            return None
        text = text[1:-1]
    head = [0] * 8
    tail = [0] * 8
    groups = head
    i = idx1 = colons = 0
    after_colon = False
    hv = _HEX_VALUES
    for c in text:
        if c == ":":
            colons += 1
            if colons > 7:
                return None
            if after_colon:  # '::'
                if groups is tail:
                    return None
                idx1, i = i, 0
                groups = tail
            else:
                after_colon = True
                i += 1
        else:
            h = hv.get(c)
            if h is None:
                return None
            groups[i] = (groups[i] * 16 + h) & 0xFFFF
            after_colon = False
    if not after_colon:
        i += 1
    if groups is tail:
        rest = 8 - i - idx1
        if rest < 0:
            return None
        head[idx1 + rest : idx1 + rest + i] = tail[:i]
    elif colons < 7:
        return None
    return b"".join(g.to_bytes(2, "big") for g in head)


def _parse_ip(text: str) -> bytes | None:
    return _str2ip(text) or _str2ip6(text)


def _ip_text(raw: bytes) -> str:
    """1.6's ip_addr2a: IPv6 as 8 upper-case groups, no '::' compression."""
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    return ":".join(f"{int.from_bytes(raw[k : k + 2], 'big'):X}" for k in range(0, 16, 2))


def _ip_pton(ctx: Any, value: Any) -> str:
    raw = _parse_ip(_nonempty("ip.pton", value))
    if raw is None:
        raise TransformationError(f"ip.pton: not an IP address: {value!r}")
    return raw.decode("latin-1")


def _raw_ip(name: str, value: Any) -> bytes:
    text = _nonempty(name, value)
    if len(text) not in (4, 16):
        raise TransformationError(f"{name}: expected a 4 or 16 byte binary address")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise TransformationError(f"{name}: expected a binary address") from None


def _ip_ntop(ctx: Any, value: Any) -> str:
    return _ip_text(_raw_ip("ip.ntop", value))


def _ip_family(ctx: Any, value: Any) -> str:
    return "INET" if len(_raw_ip("ip.family", value)) == 4 else "INET6"


def _ip_isip(ctx: Any, value: Any) -> int:
    return 1 if _parse_ip(_nonempty("ip.isip", value)) is not None else 0


def _system_resolver(host: str) -> str | None:
    """First IPv4 address of `host` from the system resolver (1.6's
    gethostbyname), or None."""
    try:
        return socket.gethostbyname(host)
    except (OSError, UnicodeError, ValueError):
        return None


_resolver: Callable[[str], str | None] = _system_resolver


def set_resolver(resolver: Callable[[str], str | None] | None) -> None:
    """Replace the name lookup used by ip.resolve (None restores the system one).

    For the core (e.g. to honour ``dns_try_ipv6``) and for tests.  The
    function gets a host name and returns one address as text, or None.
    """
    global _resolver
    _resolver = resolver or _system_resolver


def _ip_resolve(ctx: Any, value: Any) -> str:
    text = _nonempty("ip.resolve", value)
    raw = _parse_ip(text)
    if raw is None:
        found = _resolver(text)
        if not found:
            return ""
        raw = _parse_ip(found)
        if raw is None:
            return ""
    return _ip_text(raw)


register_class(
    "ip",
    {
        "pton": _no_params(_ip_pton),
        "ntop": _no_params(_ip_ntop),
        "family": _no_params(_ip_family),
        "isip": _no_params(_ip_isip),
        "resolve": _no_params(_ip_resolve),
    },
)
