"""avpops: AVP operations and DB-stored user preferences (OpenSIPS 1.6 `avpops`).

DB functions (need `db_url`): avp_db_load / avp_db_store / avp_db_delete
(source `$ru`|`$fu`|`$tu`|`$ou`|PV|string with `/username` `/domain`
`/uri` `/uuid`; name `$avp(..)` or flags `a|s|i` + optional `/table` or
`/$scheme`; optional db_id) and avp_db_query (SQL with PVs, passed as
values — see query.py). Memory functions: avp_delete, avp_copy,
avp_pushto, avp_check, avp_op, avp_subst, is_avp_set, avp_print,
avp_insert. `avp_printf` is the core's `pv_printf`, as in 1.6.

Script flag digits in AVP names and matching flags (`i3`, `$avp(s3:x)`)
are accepted and ignored, as everywhere in sipserver: AVPs carry no
script flags.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ...core.exports import (
    BRANCH_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
    CmdExport,
    FixupError,
    LoadedModule,
    ModuleExports,
    ParamExport,
)
from ...core.runtime import L_ERR, L_INFO
from ...db.api import CAP_DELETE, CAP_INSERT, CAP_QUERY, CAP_RAW_QUERY, DbError, db_bind
from ...db.url import parse_db_url
from ...lang.pvtoken import PVSyntaxError, scan_pv
from .. import textops
from . import db, ops
from .db import AvpopsState, Columns, DbLink
from .parse import (
    compile_avp,
    compile_pv,
    parse_arith,
    parse_check,
    parse_db_name,
    parse_db_scheme,
    parse_db_url_param,
    parse_dest_list,
    parse_flags,
    parse_source,
)
from .query import compile_query

ROUTES = (REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE | ONREPLY_ROUTE | LOCAL_ROUTE
          | STARTUP_ROUTE | TIMER_ROUTE)
_URLS = "avpops.db_urls"  # id -> URL, from the db_url lines
_SCHEMES = "avpops.schemes"  # lower-cased name -> Scheme
_RAW = "avpops.raw_ids"  # db ids avp_db_query uses (they need raw queries)


# ---------------------------------------------------------------- modparams


def _add_db_url(module: LoadedModule, value: Any) -> None:
    idx, url = parse_db_url_param(str(value))
    urls = module.params.setdefault(_URLS, {})
    if idx in urls:
        raise ValueError(f"db_url id {idx} defined twice")
    if not url:
        raise ValueError(f"db_url {value!r} has no URL")
    urls[idx] = url


def _add_db_scheme(module: LoadedModule, value: Any) -> None:
    scheme = parse_db_scheme(str(value))
    schemes = module.params.setdefault(_SCHEMES, {})
    if scheme.name.lower() in schemes:
        raise ValueError(f"duplicated scheme name <{scheme.name}>")
    schemes[scheme.name.lower()] = scheme


# ---------------------------------------------------------------- fixups


def _need_db(module: LoadedModule) -> dict[int, str]:
    urls = module.params.get(_URLS) or {}
    if not urls:
        raise FixupError('no db url defined to be used by this function '
                         '(modparam("avpops", "db_url", ...))')
    return urls


def _db_id(module: LoadedModule, text: str) -> int:
    urls = _need_db(module)
    if not (text.isascii() and text.isdigit()):
        raise FixupError(f"bad db_url number <{text}>")
    idx = int(text)
    if idx not in urls:
        raise FixupError(f"no db_url with id <{text}> (defined: {sorted(urls)})")
    return idx


def _default_id(urls: dict[int, str]) -> int:
    return 0 if 0 in urls else next(iter(urls))


def _fx_db(allow_scheme: bool) -> Any:
    def fixup(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
        _need_db(module)
        src = parse_source(env, args[0])
        name = parse_db_name(env, args[1], module.params.get(_SCHEMES) or {}, allow_scheme)
        idx = _db_id(module, args[2]) if len(args) > 2 else None
        return [module, src, name, idx]

    return fixup


def _fx_query(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    urls = _need_db(module)
    idx = _db_id(module, args[2]) if len(args) > 2 else None
    url = urls[_default_id(urls) if idx is None else idx]
    try:
        mysql = parse_db_url(url).scheme == "mysql"
    except ValueError:
        mysql = False  # mod_init reports the bad URL
    tpl = compile_query(env.compile_format(args[0]), mysql)
    dest = parse_dest_list(env, args[1]) if len(args) > 1 and args[1] else None
    module.params.setdefault(_RAW, set()).add(_default_id(urls) if idx is None else idx)
    return [module, tpl, dest, idx]


def _fx_delete(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    head, _, tail = args[0].partition("/")
    flags = parse_flags(tail, "g", f"avp_delete {args[0]!r}")
    if head.startswith("$"):
        return [compile_avp(env, head, "AVP"), "", "g" in flags]
    if not head or head[0] not in "sSiI*aA" or not (head[1:].isdigit() or not head[1:]):
        raise FixupError(f"bad param {args[0]!r}: expected $avp(name), *, a, s or i "
                         "(+ script flags)")
    match = "s" if head[0] in "sS" else "i" if head[0] in "iI" else ""
    return [None, match, True]  # no name: always every matching AVP (1.6)


def _fx_copy(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    src = compile_avp(env, args[0], "source AVP")
    head, _, tail = args[1].partition("/")
    dst = compile_avp(env, head, "destination AVP")
    return [src, dst, parse_flags(tail, "gdns", f"avp_copy {args[1]!r}")]


_PUSH_DEST = {"ru": "ruri", "ruri": "ruri", "du": "du", "duri": "du", "br": "br",
              "branch": "br"}


def _fx_pushto(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    text = args[0]
    if not text.startswith("$"):
        raise FixupError(f"bad destination {text!r}: expected $ru, $du or $br")
    head, sep, part = text.partition("/")
    try:
        tok, end = scan_pv(head, 0, 0)
    except PVSyntaxError as e:
        raise FixupError(f"bad destination {text!r}: {e.message}") from None
    if tok.name == "hdr":
        raise FixupError("push to header is obsoleted - use append_hf() or "
                         "append_to_reply() from the textops module")
    dest = _PUSH_DEST.get(tok.name)
    if dest is None or end != len(head) or (tok.inner is not None and dest != "br"):
        raise FixupError(f"unsupported destination {text!r}; expected $ru, $du, $br")
    if sep:
        if dest != "ruri" or part.lower() not in ("username", "domain"):
            raise FixupError(f"unknown {head} flag \"{part}\"")
        dest = "user" if part.lower() == "username" else "host"
    shead, _, stail = args[1].partition("/")
    if not shead.startswith("$"):
        raise FixupError(f"bad param 2 {args[1]!r}: expected a pseudo-variable")
    src = compile_pv(env, shead, "source")
    flags = parse_flags(stail, "g", f"avp_pushto {args[1]!r}")
    return [dest, src, "g" in flags]


def _fx_check(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    return [compile_pv(env, args[0], "pseudo-variable"), parse_check(env, args[1])]


def _fx_op(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    head, sep, tail = args[0].partition("/")
    src = compile_avp(env, head, "source AVP")
    dst = compile_avp(env, tail, "destination AVP") if sep and tail else None
    return [src, dst, parse_arith(env, args[1])]


def _fx_subst(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    head, sep, rest = args[0].partition("/")
    src = compile_avp(env, head, "source AVP")
    dst = None
    flags = ""
    if sep and rest:
        if rest.startswith("$"):
            dtext, sep2, ftext = rest.partition("/")
            if len(dtext) > 1:
                dst = compile_avp(env, dtext, "destination AVP")
            flags = ftext if sep2 else ""
        else:
            flags = rest
    flags = parse_flags(flags, "gd", f"avp_subst {args[0]!r}")
    return [src, dst, flags, textops.parse_subst(env, args[1])]


def _fx_is_set(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    head, _, tail = args[0].partition("/")
    avp = compile_avp(env, head, "AVP")
    flags = parse_flags(tail, "ens", f"is_avp_set {args[0]!r}")
    if "n" in flags and "s" in flags:
        raise FixupError(f"invalid flag combination n and s in {args[0]!r}")
    return [avp, flags]


def _fx_insert(env: Any, module: LoadedModule, args: Sequence[str]) -> list[Any]:
    avp = compile_avp(env, args[0], "AVP")
    fmt = env.compile_format(args[1])
    if fmt.static is not None:
        value: Any = fmt.static
    elif len(fmt.parts) == 1:
        value = fmt.parts[0]
    else:
        value = fmt
    if not (args[2].isascii() and args[2].isdigit()):
        raise FixupError(f"bad index {args[2]!r}: must be a positive integer")
    return [avp, value, int(args[2])]


# ---------------------------------------------------------------- script functions


def _state(ctx: Any, module: LoadedModule) -> AvpopsState | None:
    st = module.state
    if st is None:
        ctx.rt.log(L_ERR, "avpops: module not initialised")
    return st


def w_db_load(ctx: Any, module: LoadedModule, src: Any, name: Any, idx: int | None) -> int:
    st = _state(ctx, module)
    return -1 if st is None else db.db_load(ctx, st, src, name, idx)


def w_db_store(ctx: Any, module: LoadedModule, src: Any, name: Any, idx: int | None) -> int:
    st = _state(ctx, module)
    return -1 if st is None else db.db_store(ctx, st, src, name, idx)


def w_db_delete(ctx: Any, module: LoadedModule, src: Any, name: Any, idx: int | None) -> int:
    st = _state(ctx, module)
    return -1 if st is None else db.db_delete(ctx, st, src, name, idx)


def w_db_query(ctx: Any, module: LoadedModule, tpl: Any, dest: Any, idx: int | None) -> int:
    st = _state(ctx, module)
    return -1 if st is None else db.db_query(ctx, st, tpl, dest, idx)


# ---------------------------------------------------------------- init


_NEEDED = CAP_QUERY | CAP_INSERT | CAP_DELETE


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    p = module.params
    rt.log(L_INFO, "avpops: initializing...")
    table = str(p.get("avp_table") or "usr_preferences")
    if not re.fullmatch(r"[^\s]+", table):
        raise ValueError(f"avpops: bad avp_table {table!r}")
    st = AvpopsState(
        table=table,
        cols=Columns(str(p["uuid_column"]), str(p["attribute_column"]), str(p["value_column"]),
                     str(p["type_column"]), str(p["username_column"]), str(p["domain_column"])),
        use_domain=bool(int(p.get("use_domain") or 0)),
        buf_size=int(p.get("buf_size") or 1024),
    )
    urls: dict[int, str] = p.get(_URLS) or {}
    raw_ids = p.get(_RAW) or set()
    for idx, url in urls.items():
        binding = db_bind(rt.registry, url)
        need = _NEEDED | (CAP_RAW_QUERY if idx in raw_ids else 0)
        if binding.caps & need != need:
            raise ValueError(f"avpops: database module {binding.driver} (db_url {idx}) does "
                             "not provide all functions needed by avpops"
                             + (" (avp_db_query needs raw queries)" if idx in raw_ids else ""))
        st.links[idx] = DbLink(idx, url, binding)
    if urls:
        st.default = st.links[_default_id(urls)]
    module.state = st


def _child_init(module: LoadedModule, rank: int) -> None:
    """Open this process's connections; a failure is logged and retried on use."""
    st: AvpopsState | None = module.state
    if st is None:
        return
    for link in st.links.values():
        try:
            link.connection()
        except DbError as e:
            module.rt.log(L_ERR, f"avpops: cannot initialize database connection for "
                                 f"db_url {link.idx}: {e}")


def _destroy(module: LoadedModule) -> None:
    st: AvpopsState | None = module.state
    if st is not None:
        for link in st.links.values():
            link.close()


exports = ModuleExports(
    name="avpops",
    params=[
        ParamExport("db_url", str, None, on_set=_add_db_url),
        ParamExport("avp_table", str, "usr_preferences"),
        ParamExport("use_domain", int, 0),
        ParamExport("uuid_column", str, "uuid"),
        ParamExport("attribute_column", str, "attribute"),
        ParamExport("value_column", str, "value"),
        ParamExport("type_column", str, "type"),
        ParamExport("username_column", str, "username"),
        ParamExport("domain_column", str, "domain"),
        ParamExport("db_scheme", str, None, on_set=_add_db_scheme),
        ParamExport("buf_size", int, 1024),
    ],
    cmds=[
        CmdExport("avp_print", ops.avp_print, 0, ROUTES),
        CmdExport("avp_db_load", w_db_load, 2, ROUTES, _fx_db(True)),
        CmdExport("avp_db_load", w_db_load, 3, ROUTES, _fx_db(True)),
        CmdExport("avp_db_delete", w_db_delete, 2, ROUTES, _fx_db(False)),
        CmdExport("avp_db_delete", w_db_delete, 3, ROUTES, _fx_db(False)),
        CmdExport("avp_db_store", w_db_store, 2, ROUTES, _fx_db(False)),
        CmdExport("avp_db_store", w_db_store, 3, ROUTES, _fx_db(False)),
        CmdExport("avp_db_query", w_db_query, 1, ROUTES, _fx_query),
        CmdExport("avp_db_query", w_db_query, 2, ROUTES, _fx_query),
        CmdExport("avp_db_query", w_db_query, 3, ROUTES, _fx_query),
        CmdExport("avp_delete", ops.avp_delete, 1, ROUTES, _fx_delete),
        CmdExport("avp_copy", ops.avp_copy, 2, ROUTES, _fx_copy),
        CmdExport("avp_pushto", ops.avp_pushto, 2, ROUTES, _fx_pushto),
        CmdExport("avp_check", ops.avp_check, 2, ROUTES, _fx_check),
        CmdExport("avp_op", ops.avp_op, 2, ROUTES, _fx_op),
        CmdExport("avp_subst", ops.avp_subst, 2, ROUTES, _fx_subst),
        CmdExport("is_avp_set", ops.is_avp_set, 1, ROUTES, _fx_is_set),
        CmdExport("avp_insert", ops.avp_insert, 3, ROUTES, _fx_insert),
    ],
    mod_init=_mod_init,
    child_init=_child_init,
    destroy=_destroy,
)
