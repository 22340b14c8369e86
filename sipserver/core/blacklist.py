"""Destination blacklists (`dst_blacklist`, `use_blacklist`), as 1.6 checks them.

A rule matches a destination when its protocol (or any), network, port (or
0 = any) and shell-glob pattern over the outgoing message all match; a
``!`` rule matches when they do not. A destination is blocked when any rule
of any list the message enabled matches it.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = ["BlacklistRule", "is_blocked"]


@dataclass(frozen=True, slots=True)
class BlacklistRule:
    """One ``[!](proto, net, port, "pattern")`` entry."""

    proto: str | None  # None = any
    network: Any  # an ipaddress network, or anything with __contains__(ip_address)
    port: int  # 0 = any
    pattern: str  # "" = any message
    negate: bool = False

    def matches(self, proto: str, ip: str, port: int, text: str) -> bool:
        hit = ((self.port == 0 or self.port == port)
               and (self.proto is None or self.proto == proto)
               and _in(ip, self.network)
               and (not self.pattern or self._regex.match(text) is not None))
        return hit != self.negate

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        # fnmatch(3) with no flags: '*' also crosses newlines, case matters
        return re.compile(fnmatch.translate(self.pattern), re.DOTALL)


def _in(ip: str, network: Any) -> bool:
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def is_blocked(lists: dict[str, list[BlacklistRule]], enabled: set[str], proto: str,
               ip: str, port: int, data: bytes) -> bool:
    """True when a rule of an enabled list matches this destination and message."""
    text = data.decode("latin-1")
    for name in enabled:
        for rule in lists.get(name, ()):
            if rule.matches(proto, ip, port, text):
                return True
    return False
