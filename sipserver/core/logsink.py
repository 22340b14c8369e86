"""Where log lines go: stderr or syslog, with 1.6's level and facility names.

The Runtime calls its `logger(level, text)`; these build that function
from the core parameters (`log_stderror`, `log_facility`, `log_name`).
"""

from __future__ import annotations

import os
import sys
import syslog
import time
from collections.abc import Callable

from .runtime import L_ALERT, L_CRIT, L_DBG, L_ERR, L_INFO, L_NOTICE, L_WARN, LEVEL_NAMES

__all__ = ["FACILITIES", "stderr_sink", "syslog_sink"]

_SYSLOG_LEVELS = {
    L_ALERT: syslog.LOG_ALERT, L_CRIT: syslog.LOG_CRIT, L_ERR: syslog.LOG_ERR,
    L_WARN: syslog.LOG_WARNING, L_NOTICE: syslog.LOG_NOTICE, L_INFO: syslog.LOG_INFO,
    L_DBG: syslog.LOG_DEBUG,
}

FACILITIES = {
    "LOG_AUTH": syslog.LOG_AUTH, "LOG_CRON": syslog.LOG_CRON, "LOG_DAEMON": syslog.LOG_DAEMON,
    "LOG_KERN": syslog.LOG_KERN, "LOG_LOCAL0": syslog.LOG_LOCAL0,
    "LOG_LOCAL1": syslog.LOG_LOCAL1, "LOG_LOCAL2": syslog.LOG_LOCAL2,
    "LOG_LOCAL3": syslog.LOG_LOCAL3, "LOG_LOCAL4": syslog.LOG_LOCAL4,
    "LOG_LOCAL5": syslog.LOG_LOCAL5, "LOG_LOCAL6": syslog.LOG_LOCAL6,
    "LOG_LOCAL7": syslog.LOG_LOCAL7, "LOG_LPR": syslog.LOG_LPR, "LOG_MAIL": syslog.LOG_MAIL,
    "LOG_NEWS": syslog.LOG_NEWS, "LOG_USER": syslog.LOG_USER, "LOG_UUCP": syslog.LOG_UUCP,
}


def stderr_sink(name: str = "sipserver") -> Callable[[int, str], None]:
    """`Nov 26 07:12:28 [1234] ERROR: text` lines on stderr, as 1.6 with -E."""

    def log(level: int, text: str) -> None:
        stamp = time.strftime("%b %d %H:%M:%S")
        line = text if text.endswith("\n") else text + "\n"
        try:
            sys.stderr.write(f"{stamp} [{os.getpid()}] {LEVEL_NAMES.get(level, level)}: {line}")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr gone (daemon, closed pipe): logging must never kill a worker

    return log


def syslog_sink(name: str, facility: str) -> Callable[[int, str], None]:
    """Lines to syslog with the `log_name` ident and `log_facility`."""
    syslog.openlog(name, syslog.LOG_PID, FACILITIES.get(facility, syslog.LOG_DAEMON))

    def log(level: int, text: str) -> None:
        syslog.syslog(_SYSLOG_LEVELS.get(level, syslog.LOG_ERR),
                      f"{LEVEL_NAMES.get(level, level)}: {text.rstrip()}")

    return log
