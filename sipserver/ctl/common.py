"""What sipctl's operator commands share: settings, the DB, MI calls, checks, output.

The commands (users.py, ul.py, tables.py) get a `Ctl` holding the
environment, the sipctlrc settings, the DB URL and the MI transport
options; they raise `CtlError` (message and exit code) instead of
printing errors themselves, so every failure ends the same way: one
`sipctl: ...` line on stderr and a documented exit code, never a
traceback.

Settings 1.6 read from opensipsctlrc (SIP_DOMAIN, STORE_PLAINTEXT_PW,
ALIASES_TYPE, VERIFY_ACL, ACL_GROUPS, the table names) come from the
environment, else from the sipctlrc files `sipctl` already reads.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..db.api import DbConnection, DbError, DbResult, DbUrlError, DbValue
from ..db.url import default_db_url, parse_db_url
from .mi_client import MIClientError, filter_reply, mi_call, reply_code

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

# A user part as 1.6's opensipsctl accepts it (RFC 3261 user characters),
# plus %HH escapes.
USER_RE = re.compile(r"(?:[-a-zA-Z0-9&=+$,;?/_.!~*'()]|%[0-9a-fA-F]{2})+")
# A domain: no blanks, controls, `@` or quotes (they would break an MI line or an AOR).
DOMAIN_RE = re.compile(r"[^\s@\"\\\x00-\x1f\x7f]+")
# 1.6 check_uri: sip: or sips:, an optional user@, then something with a dot
# (or, beyond 1.6, a bracketed IPv6 address).
SIP_URI_RE = re.compile(r"sips?:(?:" + USER_RE.pattern + r"@)?"
                        r"(?:[^\s\"]*\.[^\s\"]*|\[[0-9a-fA-F:.]+\][^\s\"]*)")

ALL_METHODS = "4294967295"


class CtlError(Exception):
    """A command failed: the message for stderr and the exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR, usage: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.usage = usage


def usage_error(message: str, usage: str) -> CtlError:
    """Wrong arguments: exit 2 with the command group's usage text."""
    return CtlError(message, EXIT_USAGE, usage)


@dataclass
class Ctl:
    """One sipctl invocation: where settings, the DB and the server are."""

    env: Mapping[str, str]
    settings: Mapping[str, str] = field(default_factory=dict)
    db_url: str | None = None
    mi_option: str | None = None
    timeout: float | None = None
    yes: bool = False
    _con: DbConnection | None = None

    # -- settings ---------------------------------------------------------
    def get(self, key: str, default: str = "") -> str:
        """A setting: the environment first, then sipctlrc, then `default`."""
        value = self.env.get(key)
        if value is None or value == "":
            value = self.settings.get(key) or ""
        return value or default

    def table(self, key: str, default: str) -> str:
        return self.get(key, default)

    # -- the database -----------------------------------------------------
    def url(self) -> str:
        return self.db_url or default_db_url(self.env)

    def db(self) -> DbConnection:
        """The connection (opened on first use, for the whole command)."""
        if self._con is None:
            from . import db as ctl_db  # the DB drivers load only when needed

            url = self.url()
            try:
                parsed = parse_db_url(url)
                if parsed.scheme in ("sqlite", "sqlite3") and not ctl_db.database_exists(url):
                    raise CtlError(f"database {parsed.redacted()} does not exist "
                                   "(create it with `sipctl db create`)")
                self._con = ctl_db.open_db(parsed)
            except DbUrlError as e:
                raise CtlError(str(e), EXIT_USAGE) from None
            except DbError as e:
                raise CtlError(db_message(e)) from None
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # -- the server -------------------------------------------------------
    def mi(self, command: str, args: Sequence[str], timeout: float | None = None) -> bytes:
        """Send one MI command; the raw reply. CtlError(exit 3) when unreachable."""
        from .main import UsageError, choose_transport

        try:
            conn, reply_dir, configured = choose_transport(self.mi_option, self.env)
        except UsageError as e:
            raise CtlError(str(e), EXIT_USAGE) from None
        if self.timeout is not None:  # -t
            wait = self.timeout
        elif timeout is not None and not self.get("SIPCTL_TIMEOUT") and \
                not self.settings.get("TIMEOUT"):
            wait = timeout  # the command's own default (ping waits for tm's fr_timer)
        else:
            wait = configured
        try:
            return mi_call(conn, command, list(args), reply_dir=reply_dir, timeout=wait)
        except MIClientError as e:
            raise CtlError(str(e), EXIT_UNREACHABLE) from None

    def mi_print(self, command: str, args: Sequence[str]) -> int:
        """Send a command and print its reply as opensipsctl does; the exit code."""
        reply = self.mi(command, args)
        sys.stdout.write(filter_reply(reply))
        return EXIT_OK if mi_ok(reply) else EXIT_ERROR

    def confirm(self, question: str) -> bool:
        """Ask on a terminal; without one only --yes says yes."""
        if self.yes:
            return True
        if not sys.stdin.isatty():
            return False
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")


def mi_ok(reply: bytes) -> bool:
    code = reply_code(reply)
    return code is None or 200 <= code < 300


def mi_arg(value: str) -> str:
    """An MI argument line: quoted when the plain form would be misread
    (a `::` naming it, a quote, blanks at either end)."""
    if "\n" in value or "\r" in value:
        raise CtlError(f"a line break cannot be sent in an MI argument: {value!r}")
    if "::" in value or '"' in value or value != value.strip() or value.startswith('"'):
        if value.endswith("\\"):
            raise CtlError(f"cannot send {value!r} over MI (a quoted value cannot end in \\)")
        return '"' + value.replace('"', '\\"') + '"'
    return value


def db_message(e: DbError) -> str:
    """A DB error, with a hint when the table is missing."""
    text = str(e)
    low = text.lower()
    if "no such table" in low or "doesn't exist" in low or ("relation" in low and
                                                            "does not exist" in low):
        text += " (create the tables with `sipctl db create`)"
    return text


# -- users, AORs and URIs ---------------------------------------------------

def split_user(ctl: Ctl, text: str) -> tuple[str, str]:
    """`user@domain` (or `user` and $SIP_DOMAIN) as (user, domain), 1.6 set_user."""
    user, _, domain = text.partition("@")
    if not domain:
        domain = ctl.get("SIP_DOMAIN")
    if not domain:
        raise CtlError(f"no domain in '{text}': give user@domain or set SIP_DOMAIN")
    if not user:
        raise CtlError(f"no user name in '{text}'")
    if not DOMAIN_RE.fullmatch(domain):
        raise CtlError(f"invalid domain '{domain}' in '{text}'")
    if any(c.isspace() or ord(c) < 0x20 or c == '"' for c in user):
        raise CtlError(f"invalid user name '{user}' in '{text}'")
    return user, domain


def check_user_name(user: str, domain: str) -> None:
    """The user part of a new account: RFC 3261 user characters, sizes that fit."""
    if not USER_RE.fullmatch(user):
        raise CtlError(f"invalid user name '{user}': only letters, digits, %HH escapes "
                       "and -_.!~*'()&=+$,;?/ are allowed")
    if len(user) > 64 or len(domain) > 64:
        raise CtlError(f"'{user}@{domain}': user and domain may have 64 characters each")


def is_aor(text: str) -> bool:
    """1.6 is_aor: user@domain where the domain has a dot."""
    user, at, domain = text.partition("@")
    return bool(at and USER_RE.fullmatch(user) and DOMAIN_RE.fullmatch(domain)
                and "." in domain)


def check_aor(text: str, what: str) -> tuple[str, str]:
    if not is_aor(text):
        raise CtlError(f"{what} - '{text}' is not a valid AoR (user@domain)")
    user, _, domain = text.partition("@")
    return user, domain


def check_uri(text: str, message: str) -> None:
    if not SIP_URI_RE.fullmatch(text):
        raise CtlError(message)


# -- output -------------------------------------------------------------------

def value_text(value: DbValue) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def print_rows(res: DbResult, columns: Sequence[str] | None = None) -> None:
    """A header line and one line per row, tab-separated (the mysql client's
    batch output, which opensipsctl prints when not on a terminal)."""
    print("\t".join(columns or res.columns))
    for row in res.rows:
        print("\t".join(value_text(v) for v in row))


def now() -> datetime.datetime:
    """last_modified values: local time, whole seconds (1.6 NOW())."""
    return datetime.datetime.now().replace(microsecond=0)
