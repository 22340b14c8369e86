"""`sipctl add|passwd|rm`, `sipctl rpid` and `sipctl acl`: subscribers and their groups.

As 1.6's opensipsctl: `add` writes username, domain, ha1 =
MD5(user:domain:password), ha1b = MD5(user@domain:domain:password) and
the plain password (unless STORE_PLAINTEXT_PW is not 1; the realm is the
domain), refusing a user or an alias (ALIASES_TYPE=UL or DB) that
exists; `rm` also drops the user's groups (grp), the dbaliases pointing
to it and its usrloc contacts (MI ul_rm).
"""

from __future__ import annotations

import hashlib
import sys

from ..db.api import DbConnection, DbError
from .common import (
    Ctl,
    CtlError,
    check_user_name,
    db_message,
    mi_arg,
    mi_ok,
    now,
    print_rows,
    split_user,
    usage_error,
)
from .mi_client import reply_code

SUBSCRIBER_USAGE = """usage: sipctl add <user[@domain]> <password>   add a subscriber
       sipctl passwd <user[@domain]> <password> change a subscriber's password
       sipctl rm <user[@domain]>                delete a subscriber (with its groups,
                                                the dbaliases to it, its contacts)
Without @domain the domain is $SIP_DOMAIN. STORE_PLAINTEXT_PW=0 leaves the
password column empty (only the hashes are stored).
"""

RPID_USAGE = """usage: sipctl rpid show [<user[@domain]>]       show the Remote-Party-ID of users
       sipctl rpid add <user[@domain]> <rpid>     set a user's rpid
       sipctl rpid rm <user[@domain]>             set a user's rpid to NULL
"""

ACL_USAGE = """usage: sipctl acl show [<user[@domain]>]             show group memberships
       sipctl acl grant [--yes] <user[@domain]> <group>.. add the user to groups
       sipctl acl revoke <user[@domain]> [<group>]      remove memberships
With VERIFY_ACL=1 (the default) only the groups in $ACL_GROUPS are granted
(default: local ld int voicemail free-pstn). --yes grants to a user that is
not a subscriber without asking.
"""

DEFAULT_ACL_GROUPS = "local ld int voicemail free-pstn"


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


def credentials(user: str, domain: str, password: str) -> tuple[str, str]:
    """(ha1, ha1b) with the domain as realm, as opensipsctl computes them."""
    return (md5_hex(f"{user}:{domain}:{password}"),
            md5_hex(f"{user}@{domain}:{domain}:{password}"))


def sub_table(ctl: Ctl) -> str:
    return ctl.table("SUB_TABLE", "subscriber")


def is_user(ctl: Ctl, user: str, domain: str) -> bool:
    """Whether the subscriber table has user@domain."""
    try:
        res = ctl.db().query(sub_table(ctl), ("username", "domain"), None, (user, domain),
                             ("username",))
    except DbError as e:
        raise CtlError(db_message(e)) from None
    return bool(res.rows)


def alias_exists(ctl: Ctl, user: str, domain: str) -> bool:
    """1.6 check_alias: only with ALIASES_TYPE=UL (usrloc table `aliases`) or DB."""
    kind = ctl.get("ALIASES_TYPE").upper()
    if kind == "UL":
        reply = ctl.mi("ul_show_contact", [ctl.table("ALS_TABLE", "aliases"),
                                                mi_arg(f"{user}@{domain}")])
        code = reply_code(reply)
        if code == 404:
            return False
        if code == 200:
            return True
        if code == 400:
            raise CtlError("ul_show_contact answered 400: does sipserver keep aliases in "
                           "usrloc (ALIASES_TYPE=UL)?")
        raise CtlError(f"ul_show_contact: {reply.decode('utf-8', 'replace').splitlines()[0]}"
                       if reply else "ul_show_contact: empty reply")
    if kind == "DB":
        try:
            res = ctl.db().query(ctl.table("DA_TABLE", "dbaliases"),
                                 ("alias_username", "alias_domain"), None, (user, domain),
                                 ("alias_username",))
        except DbError as e:
            raise CtlError(db_message(e)) from None
        return bool(res.rows)
    return False


def _password_column(ctl: Ctl, password: str) -> str:
    if ctl.get("STORE_PLAINTEXT_PW", "1") != "1":
        return ""
    if len(password) > 25:
        raise CtlError("the password has more than 25 characters, more than the subscriber "
                       "table's password column holds (STORE_PLAINTEXT_PW=0 stores only "
                       "the hashes)")
    return password


# -- add / passwd / rm ----------------------------------------------------------

def cmd_add(ctl: Ctl, args: list[str]) -> int:
    if len(args) != 2:
        raise usage_error("add: expected <user[@domain]> <password>", SUBSCRIBER_USAGE)
    user, domain = split_user(ctl, args[0])
    check_user_name(user, domain)
    password = args[1]
    plain = _password_column(ctl, password)
    if is_user(ctl, user, domain):
        raise CtlError(f"user '{user}@{domain}' already exists")
    if alias_exists(ctl, user, domain):
        raise CtlError(f"user '{user}@{domain}' already exists as an alias")
    ha1, ha1b = credentials(user, domain, password)
    try:
        # email_address is the column's default, given for db_text (no defaults)
        ctl.db().insert(sub_table(ctl),
                        ("username", "domain", "ha1", "ha1b", "password", "email_address"),
                        (user, domain, ha1, ha1b, plain, ""))
    except DbError as e:
        raise CtlError(f"adding user '{user}@{domain}' failed: {db_message(e)}") from None
    print(f"new user '{user}@{domain}' added")
    return 0


def cmd_passwd(ctl: Ctl, args: list[str]) -> int:
    if len(args) != 2:
        raise usage_error("passwd: expected <user[@domain]> <password>", SUBSCRIBER_USAGE)
    user, domain = split_user(ctl, args[0])
    password = args[1]
    plain = _password_column(ctl, password)
    if not is_user(ctl, user, domain):
        raise CtlError(f"non-existent user '{user}@{domain}'")
    ha1, ha1b = credentials(user, domain, password)
    try:
        ctl.db().update(sub_table(ctl), ("username", "domain"), None, (user, domain),
                        ("ha1", "ha1b", "password"), (ha1, ha1b, plain))
    except DbError as e:
        raise CtlError(f"password change failed: {db_message(e)}") from None
    print(f"password of '{user}@{domain}' changed")
    return 0


def cmd_rm(ctl: Ctl, args: list[str]) -> int:
    if len(args) != 1:
        raise usage_error("rm: expected <user[@domain]>", SUBSCRIBER_USAGE)
    user, domain = split_user(ctl, args[0])
    if not is_user(ctl, user, domain):
        raise CtlError(f"non-existent user '{user}@{domain}'")
    con = ctl.db()
    try:
        groups = con.delete(ctl.table("ACL_TABLE", "grp"), ("username", "domain"), None,
                            (user, domain))
        aliases = con.delete(ctl.table("DA_TABLE", "dbaliases"), ("username", "domain"), None,
                             (user, domain))
        con.delete(sub_table(ctl), ("username", "domain"), None, (user, domain))
    except DbError as e:
        raise CtlError(f"deleting user '{user}@{domain}' failed: {db_message(e)}") from None
    print(f"user '{user}@{domain}' deleted ({groups} group(s), {aliases} alias(es))")
    # and its registered contacts, as 1.6 runs `ul rm` (a server without
    # usrloc, or without the AOR, has nothing to remove)
    try:
        reply = ctl.mi("ul_rm", [ctl.table("UL_TABLE", "location"), mi_arg(f"{user}@{domain}")])
    except CtlError as e:
        print(f"sipctl: warning: its contacts were not removed from usrloc: {e}",
              file=sys.stderr)
        return 0
    if not mi_ok(reply) and reply_code(reply) != 404 and b"not available" not in reply:
        print("sipctl: warning: ul_rm answered "
              f"{reply.decode('utf-8', 'replace').splitlines()[0]}", file=sys.stderr)
    return 0


# -- rpid -------------------------------------------------------------------------

def cmd_rpid(ctl: Ctl, args: list[str]) -> int:
    if not args:
        raise usage_error("rpid: too few parameters", RPID_USAGE)
    action, rest = args[0], args[1:]
    con = ctl.db()
    table = sub_table(ctl)
    if action == "show":
        if len(rest) > 1:
            raise usage_error("rpid show: too many parameters", RPID_USAGE)
        keys: tuple[str, ...] = ()
        values: tuple[str, ...] = ()
        if rest:
            user, domain = split_user(ctl, rest[0])
            if not is_user(ctl, user, domain):
                raise CtlError(f"rpid - invalid user '{user}@{domain}'")
            keys, values = ("username", "domain"), (user, domain)
        _show(con, table, keys, values, ("username", "domain", "rpid"), "username")
        return 0
    if action not in ("add", "rm"):
        raise usage_error(f"rpid: unknown action '{action}'", RPID_USAGE)
    if len(rest) != (2 if action == "add" else 1):
        raise usage_error(f"rpid {action}: wrong number of parameters", RPID_USAGE)
    user, domain = split_user(ctl, rest[0])
    if not is_user(ctl, user, domain):
        raise CtlError(f"rpid - invalid user '{user}@{domain}'")
    value = rest[1] if action == "add" else None
    try:
        con.update(table, ("username", "domain"), None, (user, domain), ("rpid",), (value,))
    except DbError as e:
        raise CtlError(f"rpid - {db_message(e)}") from None
    _show(con, table, ("username", "domain"), (user, domain), ("username", "domain", "rpid"),
          "username")
    return 0


def _show(con: DbConnection, table: str, keys: tuple[str, ...], values: tuple[str, ...],
          columns: tuple[str, ...] | None, order: str) -> None:
    try:
        res = con.query(table, keys, None, values, columns, order)
    except DbError as e:
        raise CtlError(db_message(e)) from None
    print_rows(res)


# -- acl --------------------------------------------------------------------------

def cmd_acl(ctl: Ctl, args: list[str]) -> int:
    if not args:
        raise usage_error("acl: which action? (show, grant, revoke)", ACL_USAGE)
    action, rest = args[0], args[1:]
    table = ctl.table("ACL_TABLE", "grp")
    if action == "show":
        if len(rest) > 1:
            raise usage_error("acl show: too many parameters", ACL_USAGE)
        if not rest:
            _show(ctl.db(), table, (), (), None, "id")
            return 0
        user, domain = split_user(ctl, rest[0])
        if not is_user(ctl, user, domain):
            print(f"sipctl: warning: '{user}@{domain}' is not a subscriber", file=sys.stderr)
        _show(ctl.db(), table, ("username", "domain"), (user, domain), None, "id")
        return 0
    if action == "grant":
        if len(rest) < 2:
            raise usage_error("acl grant: expected <user> <group>..", ACL_USAGE)
        return _grant(ctl, table, rest[0], rest[1:])
    if action == "revoke":
        if len(rest) not in (1, 2):
            raise usage_error("acl revoke: wrong number of parameters", ACL_USAGE)
        user, domain = split_user(ctl, rest[0])
        keys: tuple[str, ...] = ("username", "domain")
        values: tuple[str, ...] = (user, domain)
        if len(rest) == 2:
            keys, values = (*keys, "grp"), (*values, rest[1])
        try:
            n = ctl.db().delete(table, keys, None, values)
        except DbError as e:
            raise CtlError(f"acl - {db_message(e)}") from None
        print(f"{n} membership(s) of '{user}@{domain}' revoked")
        _show(ctl.db(), table, ("username", "domain"), (user, domain), None, "id")
        return 0
    raise usage_error(f"acl: unknown action '{action}'", ACL_USAGE)


def _grant(ctl: Ctl, table: str, who: str, groups: list[str]) -> int:
    user, domain = split_user(ctl, who)
    if not is_user(ctl, user, domain) and not ctl.confirm(
            f"'{user}@{domain}' is not a subscriber. Grant anyway?"):
        raise CtlError(f"acl - non-existent user '{user}@{domain}' (--yes grants anyway)")
    verify = ctl.get("VERIFY_ACL", "1") == "1"
    allowed = ctl.get("ACL_GROUPS", DEFAULT_ACL_GROUPS).split()
    con = ctl.db()
    inserted = 0
    for group in groups:
        if verify and group not in allowed:
            print(f"sipctl: warning: acl '{group}' is not in ACL_GROUPS ({' '.join(allowed)}): "
                  "ignored", file=sys.stderr)
            continue
        try:
            have = con.query(table, ("username", "domain", "grp"), None, (user, domain, group),
                             ("grp",))
            if have.rows:
                print(f"'{user}@{domain}' is already in group '{group}'")
                continue
            con.insert(table, ("username", "grp", "last_modified", "domain"),
                       (user, group, now(), domain))
        except DbError as e:
            raise CtlError(f"acl - {db_message(e)}") from None
        inserted += 1
    if inserted:
        _show(con, table, ("username", "domain"), (user, domain), None, "id")
    return 0
