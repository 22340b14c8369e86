"""Dispatch of sipctl's operator commands (subscribers, usrloc, tables).

Pulls the options these commands share (`--db-url URL`, `--yes`; `--`
ends them, so a password may start with a dash), builds the `Ctl`, runs
the command and turns every CtlError into its message and exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from ..db.api import DbError, DbUrlError
from .common import EXIT_USAGE, Ctl, CtlError, db_message


def split_options(args: list[str]) -> tuple[list[str], str | None, bool]:
    """(the other arguments, --db-url value, --yes) from anywhere in `args`."""
    rest: list[str] = []
    url: str | None = None
    yes = False
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            rest.extend(args[i:])
            break
        if a.startswith("--db-url="):
            url = a.split("=", 1)[1]
        elif a == "--db-url":
            if i >= len(args):
                raise CtlError("option --db-url needs a value", EXIT_USAGE)
            url = args[i]
            i += 1
        elif a == "--yes":
            yes = True
        else:
            rest.append(a)
    return rest, url, yes


def _handler(cmd: str) -> Callable[[Ctl, list[str]], int]:
    from . import tables, ul, users

    table: dict[str, Callable[[Ctl, list[str]], int]] = {
        "add": users.cmd_add, "passwd": users.cmd_passwd, "rm": users.cmd_rm,
        "rpid": users.cmd_rpid, "acl": users.cmd_acl,
        "ul": lambda c, a: ul.cmd_usrloc(c, "ul", a),
        "usrloc": lambda c, a: ul.cmd_usrloc(c, "usrloc", a),
        "alias": lambda c, a: ul.cmd_usrloc(c, "alias", a),
        "online": ul.cmd_online, "ping": ul.cmd_ping,
        "alias_db": tables.cmd_alias_db, "aliasdb": tables.cmd_alias_db,
        "domain": tables.cmd_domain, "address": tables.cmd_address, "avp": tables.cmd_avp,
    }
    return table[cmd]


def run(cmd: str, args: list[str], env: Mapping[str, str], mi_option: str | None,
        timeout: float | None) -> int:
    """Run one operator command; its exit code (errors printed to stderr)."""
    from .main import UsageError, load_settings

    ctl: Ctl | None = None
    try:
        try:
            settings = load_settings(env)
        except UsageError as e:
            raise CtlError(str(e), EXIT_USAGE) from None
        rest, url, yes = split_options(args)
        ctl = Ctl(env, settings, url, mi_option, timeout, yes)
        return _handler(cmd)(ctl, rest)
    except CtlError as e:
        sys.stdout.flush()
        print(f"sipctl: {e}", file=sys.stderr)
        if e.usage:
            print(f"\n{e.usage}", file=sys.stderr, end="")
        return e.code
    except DbUrlError as e:
        print(f"sipctl: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DbError as e:  # a statement no command wrapped
        print(f"sipctl: {db_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sipctl: interrupted", file=sys.stderr)
        return 1
    finally:
        if ctl is not None:
            ctl.close()
