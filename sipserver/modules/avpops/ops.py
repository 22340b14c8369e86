"""avpops' in-memory functions: delete, copy, pushto, check, op, subst,
is_avp_set, print, insert (1.6 avpops_impl.c).

AVP integers behave as 1.6's C ints (32-bit, wrapping; division and modulo
truncate towards zero). Where a function walks the values of a name while
adding to the same name (avp_copy/avp_subst/avp_op with no or the same
destination), it works on the values that were there when it started, as
1.6 does: new values go on top of the stack and are not visited again.
They are addressed from the bottom of the stack (negative indexes), which
new values on top and removed values above do not shift.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...core.context import Branch
from ...core.runtime import L_DBG, L_ERR, L_INFO
from ...lang.actions import rewrite_uri
from ...lang.format import NULL_TEXT
from ...lang.pv import PV, PVError
from ...lang.pvars import AvpPV
from ..textops import SubstExpr, subst_str
from .parse import Value, int32

if TYPE_CHECKING:
    from ...core.context import MsgContext

_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
AVP_NAME_STR = 1 << 0  # 1.6 AVP flags, for avp_print
AVP_VAL_STR = 1 << 1


def _is_int(v: Any) -> bool:
    return type(v) is int or isinstance(v, bool)


def _plain(v: Any) -> int | str:
    """A PV value as an AVP value: ints stay ints, null is 1.6's "<null>" text."""
    if _is_int(v):
        return int(v)
    return NULL_TEXT if v is None else str(v)


def _append_branch(ctx: MsgContext, uri: str | None) -> bool:
    """1.6 append_branch(msg, uri, no dst, no path, no q, no flags, socket)."""
    if ctx.branches_full("avpops: append_branch"):
        return False
    sock = ctx.force_socket if uri else None  # a pushed $br keeps the forced socket
    ctx.branches.append(Branch(uri or ctx.ruri, None, None, None, 0, sock))
    return True


# ---------------------------------------------------------------- avp_delete


def avp_delete(ctx: MsgContext, avp: AvpPV | None, match: str, all_: bool) -> int:
    """avp_delete: the newest value (all with /g) of a name, or every AVP
    whose name type matches the flags (`*`/a any, s strings, i integers)."""
    avps = ctx.avps
    n = 0
    if avp is not None:
        name = avp.name_at(ctx)
        count = len(avps.get_all(name))
        if count:
            n = count if all_ else 1
            avps.delete(name, None if all_ else 0)
    else:
        for name in avps.names():
            if match == "" or (match == "i") == (type(name) is int):
                n += len(avps.get_all(name))
                avps.delete(name, None)
    ctx.rt.log(L_DBG, f"avpops: {n} avps were removed")
    return 1 if n else -1


# ---------------------------------------------------------------- avp_copy


def _str2uint(text: str) -> int | None:
    return int32(int(text)) if text.isascii() and text.isdigit() else None


def avp_copy(ctx: MsgContext, src: AvpPV, dst: AvpPV, flags: str) -> int:
    """avp_copy: the newest value (all with g) under a new name; d moves,
    n/s convert to integer/string."""
    avps = ctx.avps
    n1, n2 = src.name_at(ctx), dst.name_at(ctx)
    total = len(avps.get_all(n1))
    done = 0
    for i in range(total if "g" in flags else min(total, 1)):
        pos = i - total  # from the bottom: stable while we add on top
        v = avps.get(n1, pos)
        if v is None:
            break
        if isinstance(v, str) and "n" in flags:
            num = _str2uint(v)
            if num is None:
                ctx.rt.log(L_ERR, f"avpops: cannot convert str <{v}> to int")
                return -1
            v = num
        elif not isinstance(v, str) and "s" in flags:
            v = str(v)
        avps.add(n2, v)
        done += 1
        if "d" in flags:
            avps.delete(n1, pos)
    return 1 if done else -1


# ---------------------------------------------------------------- avp_pushto


def avp_pushto(ctx: MsgContext, dest: str, src: PV, all_: bool) -> int:
    """avp_pushto: into the R-URI (or its user/host part), $du or a new branch."""
    if isinstance(src, AvpPV):
        values: list[Any] = ctx.avps.get_all(src.name_at(ctx))
        if not values:
            ctx.rt.log(L_DBG, "avpops: no src avp found")
            return -1
        if not all_:
            values = values[:1]
    else:
        v = src.get(ctx)
        if v is None:
            ctx.rt.log(L_ERR, f"avpops: {src.raw} has no value to push")
            return -1
        values = [v]
    for k, v in enumerate(values):
        is_str = not _is_int(v)
        text = str(v) if is_str else str(int(v))
        if dest in ("ruri", "user", "host"):
            if k and not _append_branch(ctx, None):
                return -1
            if dest == "ruri":
                ctx.new_uri = text
                continue
            try:
                ctx.new_uri = rewrite_uri(ctx.ruri, dest, text)
            except ValueError as e:
                ctx.rt.log(L_ERR, f"avpops: pushto {dest} failed: {e}")
                return -1
        elif not is_str:
            return -1
        elif dest == "du":
            ctx.dst_uri = text or None
        elif not _append_branch(ctx, text):
            return -1
    return 1


# ---------------------------------------------------------------- avp_check


def _fnmatch_re(pattern: str, icase: bool) -> re.Pattern[str]:
    """fnmatch(3) with flags 0 (or FNM_CASEFOLD): * ? [..] [!..] and \\ escapes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
                continue
            body = pattern[i:j]
            i = j + 1
            neg = body[:1] in ("!", "^")
            if neg:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[{'^' if neg else ''}{body}]")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.S | (re.I if icase else 0))


def _compare(op: str, a: Any, b: Any, val: Value) -> bool:
    if isinstance(a, str):
        if op == "re":
            return val.regex.search(a) is not None
        if op == "fm":
            return _fnmatch_re(b, val.icase).fullmatch(a) is not None
        if op in ("eq", "ne"):
            same = (a.translate(_LOWER) == b.translate(_LOWER)) if val.icase else a == b
            return same if op == "eq" else not same
        la, lb = a.translate(_LOWER), b.translate(_LOWER)
        if op == "lt":
            return la < lb
        if op == "le":
            return la <= lb
        if op == "gt":
            return la > lb
        if op == "ge":
            return la >= lb
        return False  # and/or/xor have no string meaning
    a, b = int32(a), int32(b)
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b,
            "ge": a >= b, "and": (a & b) != 0, "or": (a | b) != 0,
            "xor": (a ^ b) != 0}.get(op, False)


def _operands(ctx: MsgContext, val: Value, ints_only: bool) -> list[Any] | None:
    """The values of a check/op operand; None (logged) when there are none."""
    if val.pv is None:
        return [val.const]
    if isinstance(val.pv, AvpPV):
        values = ctx.avps.get_all(val.pv.name_at(ctx))
        if ints_only:
            values = [v for v in values if _is_int(v)]
        if not values:
            ctx.rt.log(L_DBG, "avpops: no dst avp found")
            return None
        return values
    v = val.pv.get(ctx)
    if ints_only and not _is_int(v):
        ctx.rt.log(L_ERR, f"avpops: {val.pv.raw} is not an integer")
        return None
    return [_plain(v)]


def avp_check(ctx: MsgContext, src: PV, val: Value) -> int:
    """avp_check: 1 when a value (any, with g) passes op against the value(s)."""
    if isinstance(src, AvpPV):
        values = ctx.avps.get_all(src.name_at(ctx))
        if not values:
            ctx.rt.log(L_DBG, "avpops: no src avp found")
            return -1
        if not val.all:
            values = values[:1]
    else:
        values = [_plain(src.get(ctx))]
    for a in values:
        checks = _operands(ctx, val, False)
        if checks is None:
            return -1
        for b in checks:
            if _is_int(a) != _is_int(b):
                ctx.rt.log(L_DBG, "avpops: value types don't match")
                continue
            if _compare(val.op, a, b, val):
                return 1
    ctx.rt.log(L_DBG, "avpops: no match")
    return -1


# ---------------------------------------------------------------- avp_op


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _arith(ctx: MsgContext, op: str, a: int, b: int) -> int:
    a, b = int32(a), int32(b)
    if op == "add":
        r = a + b
    elif op == "sub":
        r = a - b
    elif op == "mul":
        r = a * b
    elif op == "div":
        if b == 0:
            ctx.rt.log(L_ERR, "avpops: division by 0")
            return 0
        r = _c_div(a, b)
    elif op == "mod":
        if b == 0:
            ctx.rt.log(L_ERR, "avpops: modulo by 0")
            return 0
        r = a - b * _c_div(a, b)
    elif op == "and":
        r = a & b
    elif op == "or":
        r = a | b
    elif op == "xor":
        r = a ^ b
    else:  # not: of the operand, as 1.6 does
        r = ~b
    return int32(r)


def avp_op(ctx: MsgContext, src: AvpPV, dst: AvpPV | None, val: Value) -> int:
    """avp_op: for every integer value of src and every operand value, the
    result goes on top of dst (src by default); d removes what was used."""
    avps = ctx.avps
    n1 = src.name_at(ctx)
    values = avps.get_all(n1)
    if not values:
        ctx.rt.log(L_DBG, "avpops: no src avp found")
        return -1
    total = len(values)
    positions = [i - total for i, v in enumerate(values) if _is_int(v)]
    if not positions and val.op != "not":
        ctx.rt.log(L_DBG, "avpops: no proper avp found")
        return -1
    n3 = dst.name_at(ctx) if dst is not None else n1
    if not positions:  # "not" only looks at the operand
        operands = _operands(ctx, val, True)
        if operands is None:
            return -1
        for b in operands:
            avps.add(n3, _arith(ctx, val.op, 0, b))
        return 1
    for pos in positions:
        a = avps.get(n1, pos)
        operands = _operands(ctx, val, True)
        if operands is None:
            return -1
        for b in operands:
            avps.add(n3, _arith(ctx, val.op, a, b))  # type: ignore[arg-type]
        if val.delete:
            avps.delete(n1, pos)
    return 1


# ---------------------------------------------------------------- avp_subst


def avp_subst(ctx: MsgContext, src: AvpPV, dst: AvpPV | None, flags: str,
              se: SubstExpr) -> int:
    """avp_subst: sed-like substitution on string values; the result goes on
    top of dst (replacing the source when there is no dst, or with d)."""
    avps = ctx.avps
    n1 = src.name_at(ctx)
    total = len(avps.get_all(n1))
    if not total:
        return -1
    n2 = dst.name_at(ctx) if dst is not None else n1
    done = 0
    for i in range(total):
        pos = i - total
        v = avps.get(n1, pos)
        if not isinstance(v, str):
            continue
        result = subst_str(ctx, se, v)
        if result is None:
            continue
        avps.add(n2, result)
        done += 1
        if "d" in flags or dst is None:
            avps.delete(n1, pos)
        if "g" not in flags:
            break
    ctx.rt.log(L_DBG, f"avpops: subst to {done} avps")
    return 1 if done else -1


# ---------------------------------------------------------------- is_avp_set


def is_avp_set(ctx: MsgContext, avp: AvpPV, flags: str) -> int:
    """is_avp_set: the AVP exists (at its index); flags e (empty or 0),
    s (a string), n (an integer)."""
    values = ctx.avps.get_all(avp.name_at(ctx))
    idx = avp.index
    if idx is None or idx == "*":
        pos = 0
    elif type(idx) is int:
        pos = idx
    else:
        v = idx.get(ctx)  # type: ignore[union-attr]
        if not _is_int(v):
            ctx.rt.log(L_ERR, f"avpops: failed to get AVP index of {avp.raw}")
            return -1
        pos = int(v)
    pos = max(pos, 0)  # 1.6: [-1] and [*] look at the newest value
    if pos >= len(values):
        return -1
    if not flags:
        return 1
    v = values[pos]
    if ("s" in flags and _is_int(v)) or ("n" in flags and not _is_int(v)):
        return -1
    if "e" in flags:
        return 1 if (v == 0 if _is_int(v) else v == "") else -1
    return 1


# ---------------------------------------------------------------- avp_print / avp_insert


def avp_print(ctx: MsgContext) -> int:
    """avp_print: every AVP of the message on the log (INFO)."""
    avps = ctx.avps
    for name in avps.names():
        for v, f in zip(avps.get_all(name), avps.flags(name), strict=True):
            flags = f | (AVP_NAME_STR if isinstance(name, str) else 0) | \
                (0 if _is_int(v) else AVP_VAL_STR)
            who = f"name=<{name}>" if isinstance(name, str) else f"id=<{name}>"
            what = f"val_int=<{v}>" if _is_int(v) else f"val_str=<{v} / {len(v)}>"
            ctx.rt.log(L_INFO, f"avp_print: flags=0x{flags:04X} {who} {what}")
    return 1


def avp_insert(ctx: MsgContext, avp: AvpPV, value: Any, index: int) -> int:
    """avp_insert: put a value at position `index` of the stack (0 = on top;
    past the bottom = at the bottom)."""
    if isinstance(value, str):
        v: int | str = value
    elif isinstance(value, PV):
        try:
            v = _plain(value.get(ctx))
        except PVError as e:
            ctx.rt.log(L_ERR, f"avpops: cannot get src value: {e}")
            return -1
    else:  # a Format with text and PVs
        v = value.render(ctx)
    avps = ctx.avps
    name = avp.name_at(ctx)
    values = avps.get_all(name)
    pos = min(index, len(values))
    if pos == 0:
        avps.add(name, v)
        return 1
    flags = avps.flags(name)
    values.insert(pos, v)
    flags.insert(pos, 0)
    avps.delete(name, None)
    for old, f in zip(reversed(values), reversed(flags), strict=True):
        avps.add(name, old, f)
    return 1


__all__ = ["avp_check", "avp_copy", "avp_delete", "avp_insert", "avp_op",
           "avp_print", "avp_pushto", "avp_subst", "is_avp_set"]
