"""avpops' DB side: usr_preferences rows <-> AVPs, and avp_db_query.

A row of the preferences table (1.6 `usr_preferences`, version 3) is one
AVP value of one user: `uuid` or `username`/`domain` say whose,
`attribute` the AVP name, `value` its text, `type` bit 0 "the value is an
integer" and bit 1 "the name is an integer id". AVPs loaded from or stored
to the DB carry AVP_IS_IN_DB, so avp_db_store never writes them twice.

DB errors are logged and make the function return -1 (1.6 returned 1 from
avp_db_delete even when the statement failed).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...core.runtime import L_DBG, L_ERR
from ...db.api import DbBinding, DbConnection, DbError, ProcessConnection
from ...lang.pv import PVError, str_of
from ...sip.errors import ParseError
from ...sip.uri import parse_uri
from .parse import DOMAIN, URI, USERNAME, UUID, DbName, Source, int32

if TYPE_CHECKING:
    from ...core.context import MsgContext
    from ...lang.pvars import AvpPV
    from .query import SqlTemplate

AVP_IS_IN_DB = 1 << 7  # 1.6's AVP flag: loaded from / stored to the DB
DB_VAL_INT = 1 << 0  # `type` column bits
DB_NAME_INT = 1 << 1
MAX_ATTR_LEN = 64  # 1.6 AVPOPS_ATTR_LEN: longest dynamic AVP name used in a query


@dataclass(slots=True)
class DbLink:
    """One `db_url` (id + URL): its binding and this process's connection."""

    idx: int
    url: str
    binding: DbBinding | None = None
    db: ProcessConnection = field(init=False)

    def __post_init__(self) -> None:
        self.db = ProcessConnection(self.binding)

    def connection(self) -> DbConnection:
        """This process's connection (opened on first use after a fork)."""
        return self.db.get()

    def close(self) -> None:
        self.db.close()


@dataclass(slots=True)
class Columns:
    uuid: str = "uuid"
    attribute: str = "attribute"
    value: str = "value"
    type: str = "type"
    username: str = "username"
    domain: str = "domain"


@dataclass(slots=True)
class AvpopsState:
    links: dict[int, DbLink] = field(default_factory=dict)
    default: DbLink | None = None
    table: str = "usr_preferences"
    cols: Columns = field(default_factory=Columns)
    use_domain: bool = False
    buf_size: int = 1024

    def link(self, idx: int | None) -> DbLink | None:
        return self.default if idx is None else self.links.get(idx)


# ---------------------------------------------------------------- helpers


def _who(ctx: MsgContext, src: Source) -> tuple[str | None, str | None, str | None] | None:
    """(uuid, username, domain) the source names; None (logged) when it can't."""
    if src.pv is not None:
        try:
            value = str_of(src.pv.get(ctx))
        except PVError as e:
            ctx.rt.log(L_ERR, f"avpops: cannot get the source value: {e}")
            return None
        if not value:
            ctx.rt.log(L_ERR, "avpops: no value for first param")
            return None
    else:
        value = src.text or ""
    if src.mode == UUID:
        return value, None, None
    try:
        uri = parse_uri(value)
    except ParseError:
        ctx.rt.log(L_ERR, f"avpops: failed to parse uri <{value}>")
        return None
    if not uri.user or not uri.host:
        ctx.rt.log(L_ERR, f"avpops: incomplete uri <{value}>")
        return None
    user = uri.user if src.mode in (URI, USERNAME) else None
    host = uri.host if src.mode in (URI, DOMAIN) else None
    return None, user, host


def _attr(ctx: MsgContext, name: DbName) -> tuple[Any, str | None] | None:
    """(AVP name, its text for the attribute column); (None, None) for flags."""
    if name.avp is None:
        return None, None
    try:
        avp_name = name.avp.name_at(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"avpops: no value for the AVP name: {e}")
        return None
    text = str(avp_name)
    if name.avp.name_pv is not None and len(text) >= MAX_ATTR_LEN:
        ctx.rt.log(L_ERR, f"avpops: name too long [{len(text)}/{text[:16]}...]")
        return None
    return avp_name, text


def _selection(st: AvpopsState, src: Source, who: tuple[str | None, str | None, str | None],
               attr: str | None, scheme: Any = None) -> tuple[list[str], list[Any]]:
    uuid, user, host = who
    keys: list[str] = []
    values: list[Any] = []
    if uuid is not None:
        keys.append(scheme.uuid_col if scheme and scheme.uuid_col else st.cols.uuid)
        values.append(uuid)
    else:
        if user is not None:
            keys.append(scheme.username_col if scheme and scheme.username_col
                        else st.cols.username)
            values.append(user)
        if host is not None and (st.use_domain or src.mode == DOMAIN):
            keys.append(scheme.domain_col if scheme and scheme.domain_col else st.cols.domain)
            values.append(host)
    if attr is not None and scheme is None:
        keys.append(st.cols.attribute)
        values.append(attr)
    return keys, values


def _link(ctx: MsgContext, st: AvpopsState, idx: int | None) -> DbLink | None:
    link = st.link(idx)
    if link is None:
        ctx.rt.log(L_ERR, f"avpops: no db_url with id {idx}")
    return link


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _uint(text: str) -> int | None:
    """An integer as stored in the value column (a sign is accepted)."""
    return int32(int(text)) if _INT_RE.fullmatch(text) else None


def _db_args(ctx: MsgContext, st: AvpopsState, src: Source, name: DbName, idx: int | None
             ) -> tuple[DbLink, tuple[str | None, str | None, str | None],
                        tuple[Any, str | None]] | None:
    """What avp_db_load/store/delete work on: the DB link, the source's
    (uuid, username, domain) and the attribute; None (logged) when one is missing."""
    link = _link(ctx, st, idx)
    who = _who(ctx, src)
    got = _attr(ctx, name)
    if link is None or who is None or got is None:
        return None
    return link, who, got

# ---------------------------------------------------------------- load


def _row_avp(row: tuple[Any, ...], name: DbName, avp_name: Any,
             scheme_int: bool | None) -> tuple[Any, int | str] | None:
    """(AVP name, value) for one row, None to skip it (1.6 dbrow2avp)."""
    if scheme_int is None:
        value, attr, typ = row[0], row[1], row[2]
        if value is None or attr is None or typ is None:
            return None
        if not isinstance(value, str) or not isinstance(attr, str) or type(typ) is not int:
            return None
        name_int = bool(typ & DB_NAME_INT)
        val_int = bool(typ & DB_VAL_INT)
        if (name.match == "i" and not name_int) or (name.match == "s" and name_int):
            return None
        if name.avp is None:
            if name_int:
                n = _uint(attr)
                if n is None:
                    return None
                avp_name = n
            else:
                avp_name = attr
    else:
        value = row[0]
        if value is None or not isinstance(value, str | int) or isinstance(value, bool):
            return None
        val_int = scheme_int
    if val_int:
        if type(value) is int:
            return avp_name, int32(value)
        n = _uint(value)
        return None if n is None else (avp_name, n)
    return avp_name, str(value)


def db_load(ctx: MsgContext, st: AvpopsState, src: Source, name: DbName,
            idx: int | None) -> int:
    """avp_db_load: 1 when at least one AVP was loaded."""
    args = _db_args(ctx, st, src, name, idx)
    if args is None:
        return -1
    link, who, got = args
    avp_name, attr = got
    scheme = name.scheme
    keys, values = _selection(st, src, who, attr, scheme)
    if scheme is not None:
        table = scheme.table or st.table
        columns = [scheme.value_col or st.cols.value]
    else:
        table = name.table or st.table
        columns = [st.cols.value, st.cols.attribute, st.cols.type]
    try:
        res = link.connection().query(table, keys, None, values, columns)
    except DbError as e:
        ctx.rt.log(L_ERR, f"avpops: db_load failed: {e}")
        return -1
    n = 0
    scheme_int = None if scheme is None else scheme.value_int
    for row in res.rows:
        got_avp = _row_avp(row, name, avp_name, scheme_int)
        if got_avp is None:
            ctx.rt.log(L_DBG, f"avpops: db_load: row {row!r} skipped")
            continue
        ctx.avps.add(got_avp[0], got_avp[1], AVP_IS_IN_DB)
        n += 1
    ctx.rt.log(L_DBG, f"avpops: loaded avps = {n}")
    return 1 if n else -1


# ---------------------------------------------------------------- store


def db_store(ctx: MsgContext, st: AvpopsState, src: Source, name: DbName,
             idx: int | None) -> int:
    """avp_db_store: one row per AVP value not yet in the DB; 1 if any was stored."""
    args = _db_args(ctx, st, src, name, idx)
    if args is None:
        return -1
    link, who, got = args
    uuid, user, host = who
    domain = host if (st.use_domain or src.mode == DOMAIN) and host is not None else ""
    c = st.cols
    keys = [c.uuid, c.attribute, c.value, c.type, c.username, c.domain]
    table = name.table or st.table
    avps = ctx.avps
    if name.avp is not None:
        todo = [(got[0], got[1])]
    else:
        todo = [(n, str(n)) for n in avps.names()
                if name.match == "" or (name.match == "i") == (type(n) is int)]
    stored = 0
    for avp_name, attr in todo:
        for i, (value, flags) in enumerate(zip(avps.get_all(avp_name), avps.flags(avp_name),
                                               strict=True)):
            if flags & AVP_IS_IN_DB:
                continue
            typ = (DB_NAME_INT if type(avp_name) is int else 0) | \
                  (DB_VAL_INT if type(value) is int else 0)
            row = [uuid or "", attr, str(value), typ, user or "", domain]
            try:
                link.connection().insert(table, keys, row)
            except DbError as e:
                ctx.rt.log(L_ERR, f"avpops: db_store: insert failed: {e}")
                continue
            avps.set_flags(avp_name, i, AVP_IS_IN_DB)
            stored += 1
    ctx.rt.log(L_DBG, f"avpops: {stored} avps were stored")
    return 1 if stored else -1


# ---------------------------------------------------------------- delete


def db_delete(ctx: MsgContext, st: AvpopsState, src: Source, name: DbName,
              idx: int | None) -> int:
    """avp_db_delete: remove the source's rows (of one attribute when named)."""
    args = _db_args(ctx, st, src, name, idx)
    if args is None:
        return -1
    link, who, got = args
    keys, values = _selection(st, src, who, got[1])
    try:
        link.connection().delete(name.table or st.table, keys, None, values)
    except DbError as e:
        ctx.rt.log(L_ERR, f"avpops: db_delete failed: {e}")
        return -1
    return 1


# ---------------------------------------------------------------- query


def _column_value(value: Any) -> int | str | None:
    """An AVP value from a result column, None to skip it (NULL, empty, float)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if type(value) is int:
        return int32(value)
    if isinstance(value, str):
        return value or None
    if isinstance(value, bytes):
        return value.decode("latin-1") or None
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    return None  # 1.6 drops DOUBLE columns too


def db_query(ctx: MsgContext, st: AvpopsState, tpl: SqlTemplate,
             dest: list[AvpPV] | None, idx: int | None) -> int:
    """avp_db_query: run the statement; columns into AVPs, one value per row."""
    link = _link(ctx, st, idx)
    if link is None:
        return -1
    sql, params, size = tpl.render(ctx)
    if size <= 0 or size >= st.buf_size:
        ctx.rt.log(L_ERR, f"avpops: cannot print the query: {size} bytes "
                          f"(buf_size is {st.buf_size})")
        return -1
    try:
        res = link.connection().raw_query(sql, params)
    except DbError as e:
        ctx.rt.log(L_ERR, f"avpops: raw_query failed: db{link.idx} {sql[:40]}...: {e}")
        return -1
    if res is None or not res.rows or not res.columns:
        ctx.rt.log(L_DBG, "avpops: no result after query")
        return 1
    names: list[Any] = []
    for j in range(len(res.columns)):
        if dest is None:
            names.append(j + 1)
        elif j < len(dest):
            try:
                names.append(dest[j].name_at(ctx))
            except PVError as e:
                ctx.rt.log(L_ERR, f"avpops: cant get avp name [{j}]: {e}")
                names.append(None)
    # last row first, so that the first row ends up on top of each stack
    for row in reversed(res.rows):
        for avp_name, raw in zip(names, row, strict=False):
            value = _column_value(raw)
            if avp_name is None or value is None:
                continue
            ctx.avps.add(avp_name, value)
    return 1
