"""The `sipctl` command (opensipsctl-like). Subcommands arrive with the MI."""

from __future__ import annotations

import sys

from .. import __version__

USAGE = """usage: sipctl COMMAND [ARGS]

sipctl drives a running sipserver over its management interface (MI),
like opensipsctl drives OpenSIPS 1.6.

  version      print the sipctl version
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    if argv[0] == "version":
        print(f"sipctl {__version__}")
        return 0
    print(f"sipctl: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
