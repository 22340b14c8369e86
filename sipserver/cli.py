"""The `sipserver` command: OpenSIPS 1.6's command line.

Options are read with getopt and the 1.6 option string, so `-dddE` and
`-l udp:127.0.0.1:5060 -l tcp:...` behave as they did; `-F` (from later
OpenSIPS) keeps the master in the foreground while still forking workers.
Unlike 1.6, a command-line option wins over the same setting in the cfg.
"""

from __future__ import annotations

import getopt
import sys
from dataclasses import dataclass, field

from . import SERVER_SIGNATURE, __version__

DEFAULT_CFG = "/etc/sipserver/opensips.cfg"
OPTIONS = "f:cCm:b:l:n:N:rRvdDETSVhw:t:u:g:P:G:W:o:F"

HELP = f"""Usage: sipserver -l address [-l address ...] [options]
Options:
    -f file      Configuration file (default {DEFAULT_CFG})
    -c           Check configuration file for errors
    -C           Same as -c (sipserver always checks the route types of
                 functions along the route() call graph)
    -l address   Listen on the specified address ([proto:]addr[:port],
                 proto=udp|tcp); several -l mean several addresses
    -n processes Number of child processes to fork per interface (default 8)
    -r           Use DNS to decide whether received= is needed in a Via
    -R           Same as -r but with reverse DNS
    -v           Turn on Via host checking when forwarding replies
    -d           Debugging mode (each -d raises the level)
    -D           Do not fork into daemon mode (1.6: no worker processes)
    -F           Daemon-less: fork the workers, keep the master in the
                 foreground (what systemd, tests and `make run` use)
    -E           Log to stderr
    -T           Disable TCP
    -N processes Number of TCP worker processes (default: as -n)
    -W method    Poll method (accepted for compatibility)
    -V           Version number
    -h           This help message
    -b nr        Maximum receive buffer size
    -m nr        Size of shared memory in megabytes (default 64)
    -w dir       Change the working directory to dir (default /)
    -t dir       Chroot to dir
    -u uid       Change uid
    -g gid       Change gid
    -P file      Create a pid file
    -G file      Create a pgid file
    -o name=val  Set a script argument, read with $argv(name)
Command-line options override the same settings in the configuration file.
"""


@dataclass
class Options:
    """What the command line asked for; None means 'not given'."""

    cfg_file: str = DEFAULT_CFG
    check_only: bool = False
    check_route_types: bool = False
    listen: list[str] = field(default_factory=list)
    children: int | None = None
    tcp_children: int | None = None
    dns: bool | None = None
    rev_dns: bool | None = None
    check_via: bool | None = None
    debug_level: int | None = None
    no_daemon: bool = False
    foreground: bool = False
    log_stderr: bool | None = None
    disable_tcp: bool | None = None
    poll_method: str | None = None
    maxbuffer: int | None = None
    shm_mb: int | None = None
    workdir: str | None = None
    chroot: str | None = None
    user: str | None = None
    group: str | None = None
    pid_file: str | None = None
    pgid_file: str | None = None
    argv: dict[str, str] = field(default_factory=dict)


class UsageError(Exception):
    pass


def _int(opt: str, value: str) -> int:
    try:
        n = int(value, 0)
    except ValueError:
        raise UsageError(f"bad number {value!r} for -{opt}")
    if n < 0:
        raise UsageError(f"-{opt} must not be negative")
    return n


# Option letter -> (Options field, how its value is read). "flag" sets True,
# "int"/"str" take the argument, "append" collects repeated ones.
_OPTION_TABLE: dict[str, tuple[str, str]] = {
    "f": ("cfg_file", "str"),
    "c": ("check_only", "flag"),
    "m": ("shm_mb", "int"),
    "b": ("maxbuffer", "int"),
    "l": ("listen", "append"),
    "n": ("children", "int"),
    "N": ("tcp_children", "int"),
    "r": ("dns", "flag"),
    "R": ("rev_dns", "flag"),
    "v": ("check_via", "flag"),
    "D": ("no_daemon", "flag"),
    "F": ("foreground", "flag"),
    "E": ("log_stderr", "flag"),
    "T": ("disable_tcp", "flag"),
    "W": ("poll_method", "str"),
    "w": ("workdir", "str"),
    "t": ("chroot", "str"),
    "u": ("user", "str"),
    "g": ("group", "str"),
    "P": ("pid_file", "str"),
    "G": ("pgid_file", "str"),
}


def parse_args(argv: list[str]) -> Options | str:
    """Options, or the text to print and exit with (-h, -V)."""
    try:
        pairs, rest = getopt.getopt(argv, OPTIONS)
    except getopt.GetoptError as e:
        raise UsageError(str(e))
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    o = Options()
    for flag, value in pairs:
        c = flag[1]
        if c == "V":
            return f"version: {SERVER_SIGNATURE}\nsipserver {__version__}\n"
        if c == "h":
            return HELP
        if c == "C":
            o.check_only = o.check_route_types = True
        elif c == "d":
            o.debug_level = (o.debug_level or 0) + 1
        elif c == "S":
            pass  # SCTP is not supported; 1.6 accepted -S only when built with it
        elif c == "o":
            name, sep, val = value.partition("=")
            if not sep or not name:
                raise UsageError(f"-o takes name=value (got {value!r})")
            o.argv[name] = val
        else:
            attr, kind = _OPTION_TABLE[c]
            if kind == "flag":
                setattr(o, attr, True)
            elif kind == "int":
                setattr(o, attr, _int(c, value))
            elif kind == "append":
                getattr(o, attr).append(value)
            else:
                setattr(o, attr, value)
    if o.shm_mb == 0:
        raise UsageError("-m must be at least 1 (MB)")
    return o


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        result = parse_args(argv)
    except UsageError as e:
        print(f"sipserver: {e}\nTry 'sipserver -h' for help.", file=sys.stderr)
        return 2
    if isinstance(result, str):
        sys.stdout.write(result)
        return 0
    return run(result)


def run(opts: Options) -> int:
    """Check the configuration, or start the server."""
    from .lang.errors import CfgError
    from .script import check_file, load_script
    from .server import ServerOptions, StartupError, run_server

    if opts.check_only:
        errors, warnings = check_file(opts.cfg_file)
        for line in errors + warnings:
            print(line, file=sys.stderr)
        if errors:
            print(f"{opts.cfg_file}: {len(errors)} error(s) in the configuration",
                  file=sys.stderr)
            return 1
        print(f"{opts.cfg_file}: config file ok, exiting...", file=sys.stderr)
        return 0
    try:
        compiled = load_script(opts.cfg_file)
    except CfgError as e:
        print(str(e), file=sys.stderr)
        print(f"{opts.cfg_file}: {len(e.errors)} error(s) in the configuration, not starting",
              file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{opts.cfg_file}: cannot read the configuration file: {e.strerror or e}",
              file=sys.stderr)
        return 1
    for w in compiled.warnings:
        print(w, file=sys.stderr)
    so = ServerOptions(
        listen=opts.listen, children=opts.children, tcp_children=opts.tcp_children,
        debug_bump=opts.debug_level or 0, foreground=opts.foreground, no_fork=opts.no_daemon,
        log_stderr=opts.log_stderr, disable_tcp=opts.disable_tcp, dns=opts.dns,
        rev_dns=opts.rev_dns, check_via=opts.check_via, maxbuffer=opts.maxbuffer,
        shm_mb=opts.shm_mb, workdir=opts.workdir, chroot=opts.chroot, user=opts.user,
        group=opts.group, pid_file=opts.pid_file, pgid_file=opts.pgid_file, argv=opts.argv,
    )
    try:
        return run_server(compiled, so)
    except StartupError as e:
        print(f"sipserver: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
