"""The `sipctl` command (opensipsctl-like): MI commands to a running sipserver."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping

from .. import __version__
from .mi_client import (
    DEFAULT_REPLY_DIR,
    DEFAULT_TIMEOUT,
    Connector,
    MIClientError,
    default_connector,
    filter_reply,
    mi_call,
    parse_connector,
    reply_code,
)

USAGE = """usage: sipctl [-m CONNECTOR] [-t SECONDS] COMMAND [ARGS]

sipctl drives a running sipserver over its management interface (MI),
like opensipsctl drives OpenSIPS 1.6.

  fifo CMD [ARGS]   send a raw MI command, one argument per line
                    (also: unixsock, mi)
  ps                list the server's processes
  uptime            show how long the server has been running
  stats [GROUP..]   show statistics: all, or of the groups given
                    (core, tm, usrloc...; GROUP:NAME for one)
  version           print the sipctl version
  db create|drop|migrate [--db-url URL] [TABLE..]
                    create, drop or update the database tables
                    (sipctl db --help for more)

  add <user[@domain]> <password>      add a subscriber
  passwd <user[@domain]> <password>   change a subscriber's password
  rm <user[@domain]>                  delete a subscriber (its groups,
                                      dbaliases and contacts too)
  rpid show|add|rm ..                 a subscriber's Remote-Party-ID
  acl show|grant|revoke ..            group membership (grp table)
  ul show|add|rm ..                   contacts in usrloc (MI ul_*)
  alias show|add|rm ..                the same on the usrloc aliases table
  online                              the AORs usrloc holds
  ping <uri>                          send an OPTIONS (MI t_uac_dlg)
  alias_db show|list|add|rm ..        the dbaliases table
  domain show|reload|showdb|add|rm .. local domains (domain table, MI)
  address show|dump|reload|add|rm ..  the permissions address table
  avp list|add|rm ..                  AVPs in usr_preferences
                    (run one without arguments for its usage)
  The DB commands take --db-url URL (else $SIPSERVER_DB_URL, else the
  embedded SQLite database) and --yes (no questions); `--` ends options.
  Settings from the environment or the config file: SIP_DOMAIN (the
  domain of a bare user name and of ping's From), STORE_PLAINTEXT_PW (1:
  keep the plain password too, the default), ALIASES_TYPE (UL or DB: add
  checks aliases), VERIFY_ACL, ACL_GROUPS, and the table names UL_TABLE,
  ALS_TABLE, SUB_TABLE, ACL_TABLE, DA_TABLE, DOMAIN_TABLE, ADDRESS_TABLE,
  AVP_TABLE.

The MI transport (CONNECTOR) is FIFO:/path, UNIXSOCK:/path or UDP:ip:port.
It comes from -m, else $SIPCTL_MI, else MI_CONNECTOR in the config file
($SIPCTL_CONFIG, else /etc/sipserver/sipctlrc and ~/.sipctlrc), else the
server's default FIFO.
"""

# sipctl.commands (kept here so that `sipctl ps` imports nothing more)
OPERATOR_COMMANDS = frozenset({
    "add", "passwd", "rm", "rpid", "acl", "ul", "usrloc", "alias", "online", "ping",
    "alias_db", "aliasdb", "domain", "address", "avp",
})

SYSTEM_CONFIG = "/etc/sipserver/sipctlrc"
USER_CONFIG = "~/.sipctlrc"

EXIT_OK, EXIT_MI_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    pass


def read_config_file(path: str) -> dict[str, str]:
    """`KEY=value` lines (shell-like quoting, # comments), as opensipsctlrc."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key = key.strip()
            if key.startswith("export "):
                key = key[7:].strip()
            if not sep or not key.isidentifier():
                raise UsageError(f"{path}:{lineno}: expected KEY=value")
            try:
                parts = shlex.split(value, comments=True)
            except ValueError as e:
                raise UsageError(f"{path}:{lineno}: {e}") from None
            out[key] = parts[0] if parts else ""
    return out


def load_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The config file settings (later files override earlier ones)."""
    files = [env["SIPCTL_CONFIG"]] if env.get("SIPCTL_CONFIG") else \
        [SYSTEM_CONFIG, os.path.expanduser(USER_CONFIG)]
    settings: dict[str, str] = {}
    for path in files:
        if env.get("SIPCTL_CONFIG") or os.path.exists(path):
            try:
                settings.update(read_config_file(path))
            except OSError as e:
                raise UsageError(f"cannot read {path}: {e.strerror}") from None
    return settings


def choose_transport(option: str | None, env: Mapping[str, str]) -> tuple[Connector, str, float]:
    """(connector, FIFO reply directory, timeout) from option, environment, config."""
    settings = load_settings(env)
    text = option or env.get("SIPCTL_MI") or settings.get("MI_CONNECTOR")
    if not text and settings.get("OSIPS_FIFO"):
        text = "FIFO:" + settings["OSIPS_FIFO"]
    try:
        conn = parse_connector(text) if text else default_connector()
    except ValueError as e:
        raise UsageError(str(e)) from None
    reply_dir = env.get("SIPCTL_REPLY_DIR") or settings.get("REPLY_DIR") or DEFAULT_REPLY_DIR
    timeout_s = env.get("SIPCTL_TIMEOUT") or settings.get("TIMEOUT")
    timeout = DEFAULT_TIMEOUT
    if timeout_s:
        try:
            timeout = float(timeout_s)
        except ValueError:
            raise UsageError(f"bad timeout {timeout_s!r}") from None
    return conn, reply_dir, timeout


def _stats_args(args: list[str]) -> list[str]:
    if not args:
        return ["all"]
    return [a if (":" in a or a == "all") else f"{a}:" for a in args]


def run_mi(conn: Connector, reply_dir: str, timeout: float, command: str, args: list[str]) -> int:
    try:
        reply = mi_call(conn, command, args, reply_dir=reply_dir, timeout=timeout)
    except MIClientError as e:
        print(f"sipctl: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    sys.stdout.write(filter_reply(reply))
    code = reply_code(reply)
    return EXIT_OK if code is None or 200 <= code < 300 else EXIT_MI_ERROR


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    option: str | None = None
    timeout_opt: float | None = None
    try:
        while argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
            opt = argv.pop(0)
            if opt in ("-m", "--mi", "-t", "--timeout"):
                if not argv:
                    raise UsageError(f"option {opt} needs a value")
                value = argv.pop(0)
                if opt in ("-m", "--mi"):
                    option = value
                else:
                    try:
                        timeout_opt = float(value)
                    except ValueError:
                        raise UsageError(f"bad timeout {value!r}") from None
            else:
                raise UsageError(f"unknown option {opt}")
        if not argv or argv[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return EXIT_OK if argv else EXIT_USAGE
        cmd, args = argv[0], argv[1:]
        if cmd == "version":
            print(f"sipctl {__version__}")
            return EXIT_OK
        if cmd == "db":
            from . import db  # the DB drivers load only for this command
            return db.main(args, env)
        if cmd in OPERATOR_COMMANDS:
            from . import commands  # the DB drivers load only for these
            return commands.run(cmd, args, env, option, timeout_opt)
        if cmd in ("fifo", "unixsock", "mi"):
            if not args:
                raise UsageError(f"{cmd}: which MI command? (sipctl {cmd} CMD [ARGS])")
            mi_cmd, mi_args = args[0], args[1:]
        elif cmd == "ps":
            mi_cmd, mi_args = "ps", []
        elif cmd == "uptime":
            mi_cmd, mi_args = "uptime", []
        elif cmd in ("stats", "statistics"):
            mi_cmd, mi_args = "get_statistics", _stats_args(args)
        else:
            raise UsageError(f"unknown command {cmd!r}")
        conn, reply_dir, timeout = choose_transport(option, env)
    except UsageError as e:
        print(f"sipctl: {e}\n\n{USAGE}", file=sys.stderr, end="")
        return EXIT_USAGE
    return run_mi(conn, reply_dir, timeout if timeout_opt is None else timeout_opt, mi_cmd, mi_args)


if __name__ == "__main__":
    sys.exit(main())
