"""The OpenSIPS 1.6 tables, once, for every SQL engine.

Each table is described engine-neutrally (columns in 1.6 order, type,
size, default, NULL-ability, keys and indexes, table version); `ddl()`
turns a description into CREATE statements for sqlite, mysql or
postgres, so the three engines can never drift apart. `sipctl db` and
the test fixtures create tables from here.

Deviations from the 1.6 DDL, all so that one value behaves the same on
every engine: strings are VARCHAR on MySQL too (CHAR strips trailing
spaces), MySQL tables use the server's default engine (InnoDB: MyISAM's
1000-byte keys are too short for utf8mb4), and on PostgreSQL unsigned
ints are BIGINT and unsigned shorts INTEGER (1.6's INTEGER/SMALLINT
overflow on valid values such as port 65535).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ENGINES = ("sqlite", "mysql", "postgres")

_NO_DEFAULT = object()


@dataclass(frozen=True, slots=True)
class Column:
    """One column. `type` is one of: id (auto-increment primary key), int,
    uint, ushort, tinyint, float, double, string, text, blob, datetime."""

    name: str
    type: str
    size: int | None = None
    default: Any = _NO_DEFAULT  # a value, or None for DEFAULT NULL
    null: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    version: int | None  # None: no row in `version` (the version table itself)
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = field(default=())

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


# -- shorthands for the table list below ---------------------------------
def _id(name: str = "id") -> Column:
    return Column(name, "id")


def _s(name: str, size: int, default: Any = _NO_DEFAULT, null: bool = False) -> Column:
    return Column(name, "string", size, default, null)


def _sn(name: str, size: int) -> Column:
    """A string column that may be NULL and defaults to NULL."""
    return Column(name, "string", size, None, True)


def _i(name: str, default: Any = _NO_DEFAULT, null: bool = False, type: str = "int") -> Column:
    return Column(name, type, None, default, null)


def _u(name: str, default: Any = _NO_DEFAULT, null: bool = False) -> Column:
    return Column(name, "uint", None, default, null)


def _dt(name: str, default: Any = _NO_DEFAULT, null: bool = False) -> Column:
    return Column(name, "datetime", None, default, null)


def _t(name: str, default: Any = _NO_DEFAULT, null: bool = False) -> Column:
    return Column(name, "text", None, default, null)


def _idx(name: str, *cols: str) -> Index:
    return Index(name, cols)


def _uniq(name: str, *cols: str) -> Index:
    return Index(name, cols, unique=True)


_LAST_MOD = "1900-01-01 00:00:01"


def _contact_table(name: str, index: str) -> Table:
    """usrloc's location and registrar's aliases share one layout."""
    return Table(name, 1005, (
        _id(), _s("username", 64, ""), _sn("domain", 64), _s("contact", 255, ""),
        _sn("received", 128), _sn("path", 128), _dt("expires", "2020-05-28 21:32:15"),
        Column("q", "float", None, 1.0), _s("callid", 255, "Default-Call-ID"),
        _i("cseq", 13), _dt("last_modified", _LAST_MOD), _i("flags", 0), _i("cflags", 0),
        _s("user_agent", 255, ""), _sn("socket", 64), _i("methods", None, null=True),
    ), (_idx(index, "username", "domain", "contact"),))


def _acc_columns() -> tuple[Column, ...]:
    return (_id(), _s("method", 16, ""), _s("from_tag", 64, ""), _s("to_tag", 64, ""),
            _s("callid", 64, ""), _s("sip_code", 3, ""), _s("sip_reason", 32, ""),
            _dt("time"))


_TABLE_LIST: tuple[Table, ...] = (
    Table("version", None, (
        _s("table_name", 32), Column("table_version", "uint", None, 0),
    ), (_uniq("t_name_idx", "table_name"),)),
    _contact_table("location", "account_contact_idx"),
    _contact_table("aliases", "alias_idx"),
    Table("subscriber", 7, (
        _id(), _s("username", 64, ""), _s("domain", 64, ""), _s("password", 25, ""),
        _s("email_address", 64, ""), _s("ha1", 64, ""), _s("ha1b", 64, ""), _sn("rpid", 64),
    ), (_uniq("account_idx", "username", "domain"), _idx("username_idx", "username"))),
    Table("uri", 2, (
        _id(), _s("username", 64, ""), _s("domain", 64, ""), _s("uri_user", 64, ""),
        _dt("last_modified", _LAST_MOD),
    ), (_uniq("account_idx", "username", "domain", "uri_user"),)),
    Table("dbaliases", 2, (
        _id(), _s("alias_username", 64, ""), _s("alias_domain", 64, ""),
        _s("username", 64, ""), _s("domain", 64, ""),
    ), (_uniq("alias_idx", "alias_username", "alias_domain"),
        _idx("target_idx", "username", "domain"))),
    Table("grp", 3, (
        _id(), _s("username", 64, ""), _s("domain", 64, ""), _s("grp", 64, ""),
        _dt("last_modified", _LAST_MOD),
    ), (_uniq("account_group_idx", "username", "domain", "grp"),)),
    Table("re_grp", 2, (
        _id(), _s("reg_exp", 128, ""), _i("group_id", 0),
    ), (_idx("group_idx", "group_id"),)),
    Table("usr_preferences", 3, (
        _id(), _s("uuid", 64, ""), _s("username", 128, "0"), _s("domain", 64, ""),
        _s("attribute", 32, ""), _i("type", 0), _s("value", 128, ""),
        _dt("last_modified", _LAST_MOD),
    ), (_idx("ua_idx", "uuid", "attribute"), _idx("uda_idx", "username", "domain", "attribute"),
        _idx("value_idx", "value"))),
    Table("address", 5, (
        _id(), Column("grp", "ushort", 5, 0), _s("ip", 50), Column("mask", "tinyint", None, 32),
        Column("port", "ushort", 5, 0), _s("proto", 4, "any"), _sn("pattern", 64),
        _sn("context_info", 32),
    )),
    Table("domain", 2, (
        _id(), _s("domain", 64, ""), _dt("last_modified", _LAST_MOD),
    ), (_uniq("domain_idx", "domain"),)),
    Table("acc", 6, (
        *_acc_columns(), _u("duration", 0), _u("setuptime", 0), _dt("created", None, null=True),
    ), (_idx("callid_idx", "callid"),)),
    Table("missed_calls", 4, _acc_columns(), (_idx("callid_idx", "callid"),)),
    Table("dialog", 4, (
        _id(), _u("hash_entry"), _u("hash_id"), _s("callid", 255), _s("from_uri", 128),
        _s("from_tag", 64), _s("to_uri", 128), _s("to_tag", 64), _s("caller_cseq", 11),
        _s("callee_cseq", 11), _t("caller_route_set", null=True),
        _t("callee_route_set", null=True), _s("caller_contact", 128),
        _s("callee_contact", 128), _s("caller_sock", 64), _s("callee_sock", 64),
        _u("state"), _u("start_time"), _u("timeout"), _t("vars", None, null=True),
        _t("profiles", None, null=True), _u("script_flags", 0),
    ), (_idx("hash_idx", "hash_entry", "hash_id"),)),
    Table("dispatcher", 4, (
        _id(), _i("setid", 0), _s("destination", 192, ""), _i("flags", 0), _i("weight", 1),
        _s("attrs", 128, ""), _s("description", 64, ""),
    )),
    Table("dr_gateways", 4, (
        _id("gwid"), _u("type", 0), _s("address", 128), _u("strip", 0), _sn("pri_prefix", 16),
        _sn("attrs", 255), _u("probe_mode", 0), _s("description", 128, ""),
    )),
    Table("dr_rules", 3, (
        _id("ruleid"), _s("groupid", 255), _s("prefix", 64), _s("timerec", 255),
        _i("priority", 0), _s("routeid", 255), _s("gwlist", 255), _sn("attrs", 255),
        _s("description", 128, ""),
    )),
    Table("dr_gw_lists", 1, (
        _id(), _s("gwlist", 255), _s("description", 128, ""),
    )),
    Table("dr_groups", 2, (
        _id(), _s("username", 64), _s("domain", 128, ""), _u("groupid", 0),
        _s("description", 128, ""),
    )),
    Table("load_balancer", 2, (
        _id(), _u("group_id", 0), _s("dst_uri", 128), _s("resources", 255),
        _u("probe_mode", 0), _s("description", 128, ""),
    ), (_idx("dsturi_idx", "dst_uri"),)),
    Table("silo", 6, (
        _id(), _s("src_addr", 128, ""), _s("dst_addr", 128, ""), _s("username", 64, ""),
        _s("domain", 64, ""), _i("inc_time", 0), _i("exp_time", 0), _i("snd_time", 0),
        _s("ctype", 32, "text/plain"), Column("body", "blob", None, b""),
    ), (_idx("account_idx", "username", "domain"),)),
    Table("dialplan", 2, (
        _id(), _i("dpid"), _i("pr"), _i("match_op"), _s("match_exp", 64), _i("match_len"),
        _s("subst_exp", 64), _s("repl_exp", 32), _s("attrs", 32),
    )),
    Table("pdt", 2, (
        _id(), _s("sdomain", 128), _s("prefix", 32), _s("domain", 128, ""),
    ), (_uniq("sdomain_prefix_idx", "sdomain", "prefix"),)),
    Table("speed_dial", 3, (
        _id(), _s("username", 64, ""), _s("domain", 64, ""), _s("sd_username", 64, ""),
        _s("sd_domain", 64, ""), _s("new_uri", 128, ""), _s("fname", 64, ""),
        _s("lname", 64, ""), _s("description", 64, ""),
    ), (_uniq("speed_dial_idx", "username", "domain", "sd_domain", "sd_username"),)),
    Table("sip_trace", 3, (
        _id(), _dt("time_stamp", _LAST_MOD), _s("callid", 255, ""), _sn("traced_user", 128),
        _t("msg"), _s("method", 32, ""), _sn("status", 128), _s("fromip", 50, ""),
        _s("toip", 50, ""), _s("fromtag", 64, ""), _s("direction", 4, ""),
    ), (_idx("traced_user_idx", "traced_user"), _idx("date_idx", "time_stamp"),
        _idx("fromip_idx", "fromip"), _idx("callid_idx", "callid"))),
    Table("userblacklist", 2, (
        _id(), _s("username", 64, ""), _s("domain", 64, ""), _s("prefix", 64, ""),
        _i("whitelist", 0, type="tinyint"),
    ), (_idx("userblacklist_idx", "username", "domain", "prefix"),)),
    Table("globalblacklist", 2, (
        _id(), _s("prefix", 64, ""), _i("whitelist", 0, type="tinyint"),
        _sn("description", 255),
    ), (_idx("globalblacklist_idx", "prefix"),)),
    Table("nh_sockets", 0, (
        _id(), _t("rtpproxy_sock"), _u("set_id"),
    )),
    Table("b2b_entities", 1, (
        _id(), _i("type"), _i("state"), _s("ruri", 128, null=True), _s("from_uri", 128),
        _s("to_uri", 128), _s("from_dname", 64, null=True), _s("to_dname", 64, null=True),
        _s("tag0", 64), _s("tag1", 64, null=True), _s("callid", 64), _i("cseq0"),
        _i("cseq1", null=True), _s("contact0", 128), _s("contact1", 128, null=True),
        _t("route0", null=True), _t("route1", null=True), _s("sockinfo_srv", 64, null=True),
        _s("param", 128), _i("lm"), _i("lrc", null=True), _i("lic", null=True),
        _i("leg_cseq", null=True), _t("leg_route", null=True), _s("leg_tag", 64, null=True),
        _s("leg_contact", 128, null=True), _s("leg_sockinfo", 128, null=True),
    ), (_uniq("b2b_entities_idx", "type", "tag0", "tag1", "callid"),)),
    Table("b2b_logic", 1, (
        _id(), _s("si_key", 64), _s("scenario", 64), _i("sstate", null=True),
        _i("next_sstate", null=True), *(_s(f"sparam{i}", 64) for i in range(5)), _t("sdp"),
        *(c for n in (1, 2, 3) for c in (
            _i(f"e{n}_type", null=True), _s(f"e{n}_sid", 64), _s(f"e{n}_from", 128),
            _s(f"e{n}_to", 128), _s(f"e{n}_key", 64))),
    ), (_uniq("b2b_logic_idx", "si_key"),)),
)

TABLES: dict[str, Table] = {t.name: t for t in _TABLE_LIST}

# Which module uses which tables (opensipsdbctl's per-module create scripts).
MODULE_TABLES: dict[str, tuple[str, ...]] = {
    "usrloc": ("location",), "registrar": ("aliases",), "auth_db": ("subscriber",),
    "uri": ("uri",), "alias_db": ("dbaliases",), "group": ("grp", "re_grp"),
    "avpops": ("usr_preferences",), "permissions": ("address",), "domain": ("domain",),
    "acc": ("acc", "missed_calls"), "dialog": ("dialog",), "dispatcher": ("dispatcher",),
    "drouting": ("dr_gateways", "dr_rules", "dr_gw_lists", "dr_groups"),
    "load_balancer": ("load_balancer",), "msilo": ("silo",), "dialplan": ("dialplan",),
    "pdt": ("pdt",), "speeddial": ("speed_dial",), "siptrace": ("sip_trace",),
    "userblacklist": ("userblacklist", "globalblacklist"), "nathelper": ("nh_sockets",),
    "b2b": ("b2b_entities", "b2b_logic"),
}


def table(name: str) -> Table:
    """The 1.6 table `name`; KeyError names the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r} (known: {', '.join(sorted(TABLES))})") from None


# -- DDL ------------------------------------------------------------------
_QUOTE = {"sqlite": "`", "mysql": "`", "postgres": '"'}  # sqlite: see db.sql.SQLITE

_TYPES: dict[str, dict[str, str]] = {
    "mysql": {"int": "INT(11)", "uint": "INT(11) UNSIGNED", "ushort": "SMALLINT(5) UNSIGNED",
              "tinyint": "TINYINT", "float": "FLOAT(10,2)", "double": "DOUBLE",
              "string": "VARCHAR({size})", "text": "TEXT", "blob": "BLOB",
              "datetime": "DATETIME"},
    "postgres": {"int": "INTEGER", "uint": "BIGINT", "ushort": "INTEGER", "tinyint": "SMALLINT",
                 "float": "REAL", "double": "DOUBLE PRECISION", "string": "VARCHAR({size})",
                 "text": "TEXT", "blob": "BYTEA", "datetime": "TIMESTAMP WITHOUT TIME ZONE"},
    "sqlite": {"int": "INTEGER", "uint": "INTEGER", "ushort": "INTEGER", "tinyint": "INTEGER",
               "float": "REAL", "double": "REAL", "string": "VARCHAR({size})", "text": "TEXT",
               "blob": "BLOB", "datetime": "DATETIME"},
}

_ID = {"mysql": "INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL",
       "postgres": "SERIAL PRIMARY KEY NOT NULL",
       "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"}


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown SQL engine {engine!r}")


def q(engine: str, name: str) -> str:
    """An identifier quoted for `engine`."""
    ch = _QUOTE[engine]
    return ch + name.replace(ch, ch + ch) + ch


def literal(engine: str, value: Any) -> str:
    """A DEFAULT value as SQL text (only schema constants ever get here)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        if engine == "postgres":
            return "'\\x" + value.hex() + "'::bytea" if value else "''"
        return "X'" + value.hex() + "'"
    text = str(value).replace("'", "''")
    if engine == "mysql":
        text = text.replace("\\", "\\\\")
    return f"'{text}'"


def column_ddl(engine: str, col: Column) -> str:
    """`name TYPE [DEFAULT x] [NOT NULL]` for one column."""
    _check_engine(engine)
    if col.type == "id":
        return f"{q(engine, col.name)} {_ID[engine]}"
    sqltype = _TYPES[engine][col.type].format(size=col.size or 255)
    out = f"{q(engine, col.name)} {sqltype}"
    if col.has_default:
        out += f" DEFAULT {literal(engine, col.default)}"
    if not col.null:
        out += " NOT NULL"
    return out


def index_name(engine: str, tbl: Table, idx: Index) -> str:
    """Index names are per table in MySQL but per schema elsewhere: prefix them there."""
    return idx.name if engine == "mysql" else f"{tbl.name}_{idx.name}"


def ddl(engine: str, tbl: Table) -> list[str]:
    """CREATE TABLE (with its unique keys) and CREATE INDEX statements."""
    _check_engine(engine)
    parts = [column_ddl(engine, c) for c in tbl.columns]
    for idx in tbl.indexes:
        if idx.unique:
            cols = ", ".join(q(engine, c) for c in idx.columns)
            parts.append(f"CONSTRAINT {q(engine, index_name(engine, tbl, idx))} UNIQUE ({cols})")
    body = ",\n    ".join(parts)
    out = [f"CREATE TABLE {q(engine, tbl.name)} (\n    {body}\n)"]
    for idx in tbl.indexes:
        if not idx.unique:
            cols = ", ".join(q(engine, c) for c in idx.columns)
            out.append(f"CREATE INDEX {q(engine, index_name(engine, tbl, idx))} "
                       f"ON {q(engine, tbl.name)} ({cols})")
    return out


def add_column_ddl(engine: str, tbl: Table, col: Column) -> str:
    """ALTER TABLE ... ADD COLUMN for a column an older table version lacks.

    A NOT NULL column without a default gets its type's zero value as
    default, so existing rows stay valid (1.6's upgrade scripts relied on
    MySQL doing that implicitly).
    """
    if not col.null and not col.has_default and col.type != "id":
        zero: Any = {"string": "", "text": "", "blob": b"",
                     "datetime": "1900-01-01 00:00:01"}.get(col.type, 0)
        col = Column(col.name, col.type, col.size, zero, col.null)
    return f"ALTER TABLE {q(engine, tbl.name)} ADD COLUMN {column_ddl(engine, col)}"


def version_rows(names: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """(table_name, table_version) rows for `names` (default: every table)."""
    tables = [table(n) for n in names] if names is not None else list(TABLES.values())
    return [(t.name, t.version) for t in tables if t.version is not None]
