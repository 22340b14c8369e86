"""`sipctl ul|alias`, `sipctl online`, `sipctl ping`: usrloc and tm through MI.

The requests are those 1.6's opensipsctl sends: `ul show` is ul_dump
(`brief` with --brief), `ul show <user>` ul_show_contact, `ul rm`
ul_rm / ul_rm_contact, `ul add` ul_add with q 1.00, flags 0, branch
flags 0 and every method (expires 0 = permanent); `alias` does the same
on the usrloc table `aliases`. `ping` sends an OPTIONS with t_uac_dlg
and prints the status line of the answer.
"""

from __future__ import annotations

import os
import re

from .common import (
    ALL_METHODS,
    DOMAIN_RE,
    Ctl,
    CtlError,
    check_uri,
    mi_arg,
    mi_ok,
    split_user,
    usage_error,
)
from .mi_client import filter_reply
from .users import alias_exists, is_user

UL_USAGE = """usage: sipctl ul show [<user[@domain]>]        show the contacts in usrloc (all, or
                                             one AOR's)
       sipctl ul show --brief                 only the AORs
       sipctl ul rm <user[@domain]> [<contact>] remove an AOR, or one of its contacts
       sipctl ul add <user[@domain]> <uri> [<expires>]
                                             add a contact (no expires: permanent)
`sipctl alias ...` takes the same actions on the usrloc table of aliases.
Tables: $UL_TABLE (default location), $ALS_TABLE (default aliases).
"""

PING_USAGE = """usage: sipctl ping <uri>    send an OPTIONS request to <uri> (tm's t_uac_dlg)
The From and Contact user is daemon@$SIP_DOMAIN (else this host's name).
"""

# t_uac_dlg answers when the final reply comes: up to tm's fr_timer (30 s)
PING_TIMEOUT = 40.0


def cmd_usrloc(ctl: Ctl, cmd: str, args: list[str]) -> int:
    """`ul`/`usrloc` (table $UL_TABLE) and `alias` (table $ALS_TABLE)."""
    alias = cmd == "alias"
    table = ctl.table("ALS_TABLE", "aliases") if alias else ctl.table("UL_TABLE", "location")
    if not args:
        raise usage_error(f"{cmd}: too few parameters", UL_USAGE)
    action, rest = args[0], args[1:]
    if action == "show":
        if not rest:
            return ctl.mi_print("ul_dump", [])
        if len(rest) != 1:
            raise usage_error(f"{cmd} show: wrong number of parameters", UL_USAGE)
        if rest[0] == "--brief":
            return ctl.mi_print("ul_dump", ["brief"])
        user, domain = split_user(ctl, rest[0])
        return ctl.mi_print("ul_show_contact", [table, mi_arg(f"{user}@{domain}")])
    if action == "add":
        if len(rest) not in (2, 3):
            raise usage_error(f"{cmd} add: expected <user> <uri> [<expires>]", UL_USAGE)
        expires = rest[2] if len(rest) == 3 else "0"  # 0: a permanent contact
        if not expires.isascii() or not expires.isdigit() or int(expires) > 0xFFFFFFFF:
            raise CtlError(f"{cmd} add: expires must be a number of seconds, not '{expires}'")
        uri = rest[1]
        check_uri(uri, f"'{uri}' is not a valid SIP URI (sip:[user@]domain)")
        user, domain = split_user(ctl, rest[0])
        if alias and is_user(ctl, user, domain):
            raise CtlError(f"alias '{user}@{domain}' would overlap an existing subscriber")
        if alias_exists(ctl, user, domain):
            raise CtlError(f"alias '{user}@{domain}' is already defined" if alias else
                           f"'{user}@{domain}' is an alias")
        return ctl.mi_print("ul_add", [table, mi_arg(f"{user}@{domain}"), mi_arg(uri),
                                       str(int(expires)), "1.00", "0", "0", "0", ALL_METHODS])
    if action == "rm":
        if len(rest) not in (1, 2):
            raise usage_error(f"{cmd} rm: wrong number of parameters", UL_USAGE)
        user, domain = split_user(ctl, rest[0])
        if len(rest) == 1:
            return ctl.mi_print("ul_rm", [table, mi_arg(f"{user}@{domain}")])
        check_uri(rest[1], f"'{rest[1]}' is not a valid SIP URI (sip:[user@]domain)")
        return ctl.mi_print("ul_rm_contact", [table, mi_arg(f"{user}@{domain}"),
                                              mi_arg(rest[1])])
    raise usage_error(f"{cmd}: unknown action '{action}'", UL_USAGE)


def cmd_online(ctl: Ctl, args: list[str]) -> int:
    """The AORs usrloc holds, sorted, each once."""
    if args:
        raise usage_error("online takes no parameters", "usage: sipctl online\n")
    reply = ctl.mi("ul_dump", [])
    if not mi_ok(reply):
        print(filter_reply(reply), end="")
        return 1
    aors = set()
    for line in reply.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.strip().partition("::")
        if sep and name == "AOR":
            aors.add(value.strip())
    for aor in sorted(aors):
        print(aor)
    return 0


_STATUS = re.compile(r"[1-6][0-9][0-9]( |$)")


def cmd_ping(ctl: Ctl, args: list[str]) -> int:
    if len(args) != 1:
        raise usage_error("ping: expected one <uri>", PING_USAGE)
    uri = args[0]
    if not uri or any(c.isspace() or c in '"\\<>' or ord(c) < 0x20 for c in uri):
        raise CtlError(f"ping: invalid URI '{uri}'")
    host = ctl.get("SIP_DOMAIN") or os.uname().nodename
    if not DOMAIN_RE.fullmatch(host):
        raise CtlError(f"ping: invalid SIP_DOMAIN '{host}'")
    hdrs = f"From:sip:daemon@{host}\r\nTo:<{uri}>\r\nContact:sip:daemon@{host}\r\n"
    # quoted, as opensipsctl sends them: the header block spans lines
    reply = ctl.mi("t_uac_dlg", ["OPTIONS", f'"{uri}"', '"."', '"."', f'"{hdrs}"'],
                   timeout=PING_TIMEOUT)
    first = filter_reply(reply).split("\n", 1)[0]
    status = first if _STATUS.match(first) else "200 OK"
    print(status)
    return 0 if status.startswith("2") else 1
