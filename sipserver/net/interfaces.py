"""Local addresses: what `listen` means when it names an interface or nothing.

1.6 listens on every address of every interface when the cfg has no
`listen`; an interface name (`listen=eth0`) means that interface's
addresses. Linux only (ioctl SIOCGIFADDR and /proc/net/if_inet6).
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

__all__ = ["interface_addresses", "local_addresses"]

_SIOCGIFADDR = 0x8915


def _ipv4_of(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def _ipv6_of(name: str) -> list[str]:
    out = []
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[5] == name:
                    addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
                    if not addr.is_link_local:
                        out.append(str(addr))
    except OSError:
        pass
    return out


def interface_addresses(name: str) -> list[str]:
    """IPv4 then IPv6 (non link-local) addresses of one interface; [] if unknown."""
    v4 = _ipv4_of(name)
    return ([v4] if v4 else []) + _ipv6_of(name)


def local_addresses() -> list[str]:
    """Every address of every interface (loopback included), IPv4 first."""
    v4: list[str] = []
    v6: list[str] = []
    for _, name in socket.if_nameindex():
        a = _ipv4_of(name)
        if a and a not in v4:
            v4.append(a)
        v6 += [x for x in _ipv6_of(name) if x not in v6]
    return v4 + v6
