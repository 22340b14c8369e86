"""`sipctl alias_db|domain|address|avp`: the provisioning tables modules read.

The rows are those 1.6's opensipsctl writes (dbaliases, domain with
last_modified, address, usr_preferences); `domain reload|show` and
`address reload|dump` ask the running server (domain_reload,
domain_dump, address_reload, address_dump), which only sees table
changes after a reload.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from ..db.api import DbError, DbResult, DbValue
from .common import (
    DOMAIN_RE,
    Ctl,
    CtlError,
    check_aor,
    db_message,
    is_aor,
    now,
    print_rows,
    usage_error,
)

ALIAS_DB_USAGE = """usage: sipctl alias_db show <alias>           the user an alias points to
       sipctl alias_db list [<user@domain>]   the aliases of a user (all without one)
       sipctl alias_db add <alias> <user@domain>  add an alias
       sipctl alias_db rm <alias>             remove an alias
Aliases and users are AoRs (user@domain, the domain with a dot); table
$DA_TABLE (default dbaliases).
"""

DOMAIN_USAGE = """usage: sipctl domain show            the domains sipserver holds (MI domain_dump)
       sipctl domain reload          reload them from the database (MI domain_reload)
       sipctl domain showdb          the domains in the database
       sipctl domain add <domain>    add a domain to the database
       sipctl domain rm <domain>     remove a domain from the database
Table $DOMAIN_TABLE (default domain); reload after add or rm.
"""

ADDRESS_USAGE = """usage: sipctl address show            the address table
       sipctl address dump            what sipserver holds (MI address_dump)
       sipctl address reload          reload the table (MI address_reload)
       sipctl address add <grp> <ip> <mask> <port> <proto> [<context_info>] [<pattern>]
                                      add an entry (proto: any udp tcp tls sctp none)
       sipctl address rm <grp> <ip> <mask> <port>   remove the matching entries
Table $ADDRESS_TABLE (default address); reload after add or rm.
"""

AVP_USAGE = """usage: sipctl avp list [-T table] [-u <user@domain|uuid>] [-a attribute] [-v value]
                     [-t type]                      list AVPs
       sipctl avp add [-T table] <user@domain|uuid> <attribute> <type> <value>
                                                    add an AVP
       sipctl avp rm [-T table] [-u <user@domain|uuid>] [-a attribute] [-v value]
                     [-t type]                      remove AVPs (one filter at least)
type: 0 (str name, str value), 1 (str:int), 2 (int:str), 3 (int:int). Table
$AVP_TABLE (default usr_preferences).
"""

PROTOS = ("any", "udp", "tcp", "tls", "sctp", "none")


def _query(ctl: Ctl, table: str, keys: tuple[str, ...] = (), values: tuple[DbValue, ...] = (),
           columns: tuple[str, ...] | None = None, order: str | None = "id") -> DbResult:
    try:
        return ctl.db().query(table, keys, None, values, columns, order)
    except DbError as e:
        raise CtlError(db_message(e)) from None


def _write(what: str, fn: Callable[..., int | None], *args: Any) -> int:
    try:
        return fn(*args) or 0
    except DbError as e:
        raise CtlError(f"{what} - {db_message(e)}") from None


# -- alias_db ---------------------------------------------------------------------

def cmd_alias_db(ctl: Ctl, args: list[str]) -> int:
    if not args:
        raise usage_error("alias_db: too few parameters", ALIAS_DB_USAGE)
    action, rest = args[0], args[1:]
    table = ctl.table("DA_TABLE", "dbaliases")
    if action == "help":
        print(ALIAS_DB_USAGE, end="")
        return 0
    if action == "list":
        if len(rest) > 1:
            raise usage_error("alias_db list: wrong number of parameters", ALIAS_DB_USAGE)
        if not rest:
            res = _query(ctl, table, columns=("alias_username", "alias_domain", "username",
                                              "domain"))
            print_rows(res)
            return 0
        user, domain = check_aor(rest[0], "alias_db")
        res = _query(ctl, table, ("username", "domain"), (user, domain),
                     ("alias_username", "alias_domain"))
        print("ALIAS")
        for au, ad in res.rows:
            print(f"{au}@{ad}")
        return 0
    if action == "show":
        if len(rest) != 1:
            raise usage_error("alias_db show: wrong number of parameters", ALIAS_DB_USAGE)
        user, domain = check_aor(rest[0], "alias_db")
        res = _query(ctl, table, ("alias_username", "alias_domain"), (user, domain),
                     ("username", "domain"))
        if not res.rows:
            raise CtlError(f"alias_db - no alias '{user}@{domain}'")
        print("SIP-ID")
        for u, d in res.rows:
            print(f"{u}@{d}")
        return 0
    if action == "add":
        if len(rest) != 2:
            raise usage_error("alias_db add: expected <alias> <user@domain>", ALIAS_DB_USAGE)
        a_user, a_domain = check_aor(rest[0], "alias_db")
        user, domain = check_aor(rest[1], "alias_db")
        have = _query(ctl, table, ("alias_username", "alias_domain"), (a_user, a_domain),
                      ("username", "domain"), None)
        if have.rows:
            u, d = have.rows[0]
            print(f"alias '{a_user}@{a_domain}' is already in {table} (for {u}@{d})")
            return 0
        _write("alias_db", ctl.db().insert, table,
               ("username", "domain", "alias_username", "alias_domain"),
               (user, domain, a_user, a_domain))
        print(f"alias '{a_user}@{a_domain}' of '{user}@{domain}' added")
        return 0
    if action == "rm":
        if len(rest) != 1:
            raise usage_error("alias_db rm: wrong number of parameters", ALIAS_DB_USAGE)
        a_user, a_domain = check_aor(rest[0], "alias_db")
        n = _write("alias_db", ctl.db().delete, table, ("alias_username", "alias_domain"), None,
                   (a_user, a_domain))
        print(f"alias '{a_user}@{a_domain}' removed" if n else
              f"no alias '{a_user}@{a_domain}' in {table}")
        return 0
    raise usage_error(f"alias_db: unknown action '{action}'", ALIAS_DB_USAGE)


# -- domain -----------------------------------------------------------------------

def cmd_domain(ctl: Ctl, args: list[str]) -> int:
    if not args:
        raise usage_error("domain: which action?", DOMAIN_USAGE)
    action, rest = args[0], args[1:]
    table = ctl.table("DOMAIN_TABLE", "domain")
    if action in ("reload", "show"):
        if rest:
            raise usage_error(f"domain {action} takes no parameters", DOMAIN_USAGE)
        return ctl.mi_print("domain_reload" if action == "reload" else "domain_dump", [])
    if action == "showdb":
        if rest:
            raise usage_error("domain showdb takes no parameters", DOMAIN_USAGE)
        print_rows(_query(ctl, table))
        return 0
    if action in ("add", "rm"):
        if len(rest) != 1:
            raise usage_error(f"domain {action}: expected one <domain>", DOMAIN_USAGE)
        name = rest[0]
        if not DOMAIN_RE.fullmatch(name) or len(name) > 64:
            raise CtlError(f"domain - invalid domain '{name}'")
        if action == "add":
            if _query(ctl, table, ("domain",), (name,), ("domain",), None).rows:
                print(f"domain '{name}' is already in {table}")
                return 0
            _write("domain", ctl.db().insert, table, ("domain", "last_modified"), (name, now()))
            print(f"domain '{name}' added")
        else:
            n = _write("domain", ctl.db().delete, table, ("domain",), None, (name,))
            print(f"domain '{name}' removed" if n else f"no domain '{name}' in {table}")
        print("run `sipctl domain reload` to load the change into sipserver")
        return 0
    raise usage_error(f"domain: unknown action '{action}'", DOMAIN_USAGE)


# -- address ----------------------------------------------------------------------

def _number(text: str, what: str, top: int) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > top:
        raise CtlError(f"address - {what} must be a number from 0 to {top}, not '{text}'")
    return int(text)


def _ip(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise CtlError(f"address - '{text}' is not an IP address") from None
    return text


def cmd_address(ctl: Ctl, args: list[str]) -> int:
    if not args:
        raise usage_error("address: which action?", ADDRESS_USAGE)
    action, rest = args[0], args[1:]
    table = ctl.table("ADDRESS_TABLE", "address")
    if action in ("reload", "dump"):
        if rest:
            raise usage_error(f"address {action} takes no parameters", ADDRESS_USAGE)
        return ctl.mi_print(f"address_{action}", [])
    if action == "show":
        if rest:
            raise usage_error("address show takes no parameters", ADDRESS_USAGE)
        print_rows(_query(ctl, table))
        return 0
    if action == "add":
        if not 5 <= len(rest) <= 7:
            raise usage_error("address add: expected <grp> <ip> <mask> <port> <proto> "
                              "[<context_info>] [<pattern>]", ADDRESS_USAGE)
        key = _address_key(rest)
        proto = rest[4]
        if proto not in PROTOS:
            raise CtlError(f"address - unknown protocol '{proto}' ({' '.join(PROTOS)})")
        names = ("grp", "ip", "mask", "port")
        if _query(ctl, table, names, key, ("ip",), None).rows:
            print(f"{rest[1]}/{key[2]} port {key[3]} is already in group {key[0]} of {table}")
            return 0
        cols: tuple[str, ...] = (*names, "proto")
        vals: tuple[DbValue, ...] = (*key, proto)
        if len(rest) >= 6:
            cols, vals = (*cols, "context_info"), (*vals, rest[5])
        if len(rest) == 7:
            cols, vals = (*cols, "pattern"), (*vals, rest[6])
        _write("address", ctl.db().insert, table, cols, vals)
        print(f"address {rest[1]}/{key[2]} port {key[3]} added to group {key[0]}")
        print("run `sipctl address reload` to load the change into sipserver")
        return 0
    if action == "rm":
        if len(rest) != 4:
            raise usage_error("address rm: expected <grp> <ip> <mask> <port>", ADDRESS_USAGE)
        key = _address_key(rest)
        n = _write("address", ctl.db().delete, table, ("grp", "ip", "mask", "port"), None, key)
        print(f"{n} address entr{'y' if n == 1 else 'ies'} removed")
        print("run `sipctl address reload` to load the change into sipserver")
        return 0
    raise usage_error(f"address: unknown action '{action}'", ADDRESS_USAGE)


def _address_key(rest: list[str]) -> tuple[int, str, int, int]:
    return (_number(rest[0], "the group", 65535), _ip(rest[1]),
            _number(rest[2], "the mask", 128), _number(rest[3], "the port", 65535))


# -- avp --------------------------------------------------------------------------

def _avp_filters(ctl: Ctl, what: str, opts: list[str]) -> tuple[str, list[str], list[DbValue]]:
    """(table, keys, values) from -T/-u/-a/-v/-t options."""
    table = ctl.table("AVP_TABLE", "usr_preferences")
    keys: list[str] = []
    values: list[DbValue] = []
    names = {"-T": "table name", "-u": "user id or uuid", "-a": "attribute name",
             "-v": "value", "-t": "type"}
    i = 0
    while i < len(opts):
        opt = opts[i]
        if opt not in names:
            raise usage_error(f"avp {what}: unknown parameter '{opt}'", AVP_USAGE)
        if i + 1 >= len(opts) or opts[i + 1] == "":
            raise usage_error(f"avp {what}: the {names[opt]} is missing after {opt}", AVP_USAGE)
        value = opts[i + 1]
        i += 2
        if opt == "-T":
            table = value
        elif opt == "-u":
            if is_aor(value):
                user, _, domain = value.partition("@")
                keys += ["username", "domain"]
                values += [user, domain]
            else:
                keys.append("uuid")
                values.append(value)
        elif opt == "-a":
            keys.append("attribute")
            values.append(value)
        elif opt == "-v":
            keys.append("value")
            values.append(value)
        else:
            keys.append("type")
            values.append(_avp_type(value))
    return table, keys, values


def _avp_type(text: str) -> int:
    if text not in ("0", "1", "2", "3"):
        raise CtlError(f"avp - the type must be 0, 1, 2 or 3, not '{text}'")
    return int(text)


def cmd_avp(ctl: Ctl, args: list[str]) -> int:
    if not args:
        raise usage_error("avp: too few parameters", AVP_USAGE)
    action, rest = args[0], args[1:]
    if action == "help":
        print(AVP_USAGE, end="")
        return 0
    if action == "list":
        table, keys, values = _avp_filters(ctl, "list", rest)
        print_rows(_query(ctl, table, tuple(keys), tuple(values),
                          ("uuid", "username", "domain", "attribute", "type", "value")))
        return 0
    if action == "add":
        table = ctl.table("AVP_TABLE", "usr_preferences")
        if len(rest) == 6 and rest[0] == "-T":
            table, rest = rest[1], rest[2:]
        elif len(rest) == 6:
            raise usage_error(f"avp add: unknown parameter '{rest[0]}'", AVP_USAGE)
        if len(rest) != 4:
            raise usage_error("avp add: wrong number of parameters", AVP_USAGE)
        who, attribute, type_, value = rest
        uuid, user, domain = who, "", ""
        if is_aor(who):
            uuid = ""
            user, _, domain = who.partition("@")
        _write("avp add", ctl.db().insert, table,
               ("uuid", "username", "domain", "attribute", "type", "value", "last_modified"),
               (uuid, user, domain, attribute, _avp_type(type_), value, now()))
        print("avp add - attribute added")
        return 0
    if action == "rm":
        table, keys, values = _avp_filters(ctl, "rm", rest)
        if not keys:
            raise usage_error("avp rm: give at least one of -u, -a, -v, -t (refusing to "
                              "remove every AVP)", AVP_USAGE)
        n = _write("avp rm", ctl.db().delete, table, tuple(keys), None, tuple(values))
        print(f"avp rm - {n} AVP(s) deleted")
        return 0
    raise usage_error(f"avp: unknown action '{action}'", AVP_USAGE)
