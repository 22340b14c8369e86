"""The per-process runtime: what every route run in this process shares.

One `Runtime` exists per process. It holds the compiled route table, the
core configuration (global parameters), this process's `$var` values, the
transport the core actions send through, the log sink, and the cache
backends modules register. `MsgContext.rt` points at it.

The transport is an interface (`Transport`): the network layer fills it
in for a running server; unit tests hand in a recording fake.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# log levels, numbered as 1.6 numbers them
L_ALERT = -3
L_CRIT = -2
L_ERR = -1
L_WARN = 1
L_NOTICE = 2
L_INFO = 3
L_DBG = 4

LEVEL_NAMES = {
    L_ALERT: "ALERT", L_CRIT: "CRITICAL", L_ERR: "ERROR", L_WARN: "WARNING",
    L_NOTICE: "NOTICE", L_INFO: "INFO", L_DBG: "DBG",
}

PROTO_IDS = {"udp": 1, "tcp": 2, "tls": 3, "sctp": 4}
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061, "sctp": 5060}


@dataclass(slots=True)
class SocketInfo:
    """A local listening socket (1.6's socket_info).

    ``adv_host``/``adv_port`` are the per-socket advertised address
    (``listen = udp:1.2.3.4:5060 as 5.6.7.8``).
    """

    proto: str
    ip: str
    port: int
    adv_host: str | None = None
    adv_port: int | None = None
    handle: Any = None  # the real socket object, filled by the net layer

    @property
    def name(self) -> str:
        """``proto:ip:port`` as 1.6 prints a socket (IPv6 in brackets)."""
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.proto}:{host}:{self.port}"

    @property
    def af(self) -> int:
        """4 or 6."""
        return 6 if ":" in self.ip else 4


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a message goes: transport, IP address and port (resolved)."""

    proto: str
    ip: str
    port: int


class Transport(Protocol):
    """What the core actions need from the network layer."""

    def resolve(self, host: str, port: int | None, proto: str | None,
                is_sips: bool = False) -> list[Destination]:
        """Next-hop addresses for a host (RFC 3263); [] when it does not resolve."""
        ...

    def choose_socket(self, dest: Destination, forced: SocketInfo | None = None) -> SocketInfo | None:
        """The local socket to send to `dest` from (the forced one if usable)."""
        ...

    def send(self, sock: SocketInfo, dest: Destination, data: bytes,
             conn: int | None = None) -> bool:
        """Send one message; False when sending failed.

        `conn` (TCP only) names the connection to send on (1.6's connection
        id): the one a request came in on, when still open; otherwise the
        connection is found, or opened, by the destination address.
        """
        ...


class CacheBackend(Protocol):
    """A `cache_store`/`cache_fetch`/`cache_remove` system (localcache, memcached)."""

    def store(self, name: str, value: str, expires: int) -> bool: ...
    def fetch(self, name: str) -> str | None: ...
    def remove(self, name: str) -> bool: ...


# 1.6 core parameter defaults (spec section 5); a script's values override them.
# None means "not set" (the OS, resolver or library default applies).
CORE_DEFAULTS: dict[str, Any] = {
    "debug": L_NOTICE, "fork": 1, "log_stderror": 0, "log_facility": "LOG_DAEMON",
    "log_name": "sipserver", "avp_aliases": None, "auto_aliases": 1,
    "dns": 0, "rev_dns": 0, "dns_try_ipv6": 0, "dns_retr_time": None, "dns_retr_no": None,
    "dns_servers_no": None, "dns_use_search_list": 1, "port": 5060, "maxbuffer": 262144,
    "children": 8, "check_via": 0, "memlog": 14, "memdump": 14, "sip_warning": 0,
    "server_signature": 1,
    "server_header": "Server: OpenSIPS (1.6.4-notls (x86_64/linux))",
    "user_agent_header": "User-Agent: OpenSIPS (1.6.4-notls (x86_64/linux))",
    "user": None, "group": None, "chroot": None, "workdir": None, "mhomed": 0,
    "disable_tcp": 0, "tcp_children": None, "tcp_accept_aliases": 0, "tcp_send_timeout": 10,
    "tcp_connect_timeout": 10, "tcp_connection_lifetime": 120, "tcp_poll_method": None,
    "tcp_max_connections": 2048, "tcp_crlf_pingpong": 1,
    "disable_tls": 1, "tls_port_no": 5061, "tls_method": "SSLv23", "tls_verify_client": 1,
    "tls_verify_server": 1, "tls_require_client_certificate": 1, "tls_certificate": None,
    "tls_private_key": None, "tls_ca_list": None, "tls_ciphers_list": None,
    "tls_handshake_timeout": 30, "tls_send_timeout": 30, "tls_client_domain_avp": 0,
    "advertised_address": None, "advertised_port": None, "disable_core_dump": 0,
    "open_files_limit": -1, "mcast_loopback": 0, "mcast_ttl": None, "tos": 0x10,
    "disable_dns_failover": 0, "disable_dns_blacklist": 1, "max_while_loops": 100,
    "disable_stateless_fwd": None, "db_version_table": "version",
    "disable_503_translation": 0, "xlog_buf_size": 4096, "xlog_force_color": 0,
    "mpath": None,
}


def stderr_logger(level: int, text: str) -> None:
    """Default log sink: one line on stderr, like 1.6 with log_stderror."""
    sys.stderr.write(f"{LEVEL_NAMES.get(level, str(level))}: {text}\n")


@dataclass(slots=True)
class Alias:
    """An ``alias=`` entry: a name (or IP) and an optional port (0 = any)."""

    host: str
    port: int = 0
    proto: str | None = None


class Runtime:
    """Per-process shared state of the routing engine."""

    def __init__(
        self,
        *,
        config: dict[str, Any] | None = None,
        transport: Transport | None = None,
        sockets: list[SocketInfo] | None = None,
        aliases: list[Alias] | None = None,
        logger: Callable[[int, str], None] = stderr_logger,
        registry: Any = None,
        argv: dict[str, str] | None = None,
    ) -> None:
        self.config: dict[str, Any] = dict(CORE_DEFAULTS)
        if config:
            self.config.update(config)
        self.transport = transport
        self.sockets: list[SocketInfo] = list(sockets or [])
        self.aliases: list[Alias] = list(aliases or [])
        self.logger = logger
        self.registry = registry
        self.argv = dict(argv or {})
        self._debug_global = int(self.config["debug"])
        self.debug_local: int | None = None  # setdebug(n) in this process; None = global
        # set by the server: a shared cell (Counters) holding the global level,
        # so that MI `debug` reaches every process
        self.shared_debug: Any = None
        self.script_vars: dict[str, int | str] = {}  # $var(...)
        self.routes: Any = None  # the compiled RouteTable
        self.caches: dict[str, CacheBackend] = {}
        # shared-memory objects made by the master before forking (sipserver/shm,
        # core/stats.py): `shm` the segment, `stats`, `procs` the process table
        self.shm: Any = None
        self.stats: Any = None
        self.procs: Any = None
        self.mi: Any = None  # the MI command registry (sipserver/mi)
        self.rank = 0  # this process's rank (0 = master/attendant)
        # hooks modules install in mod_init: callbacks run before the script
        # on every request (False drops it; sl's ACK filter), the reply
        # matcher of tm (True = the reply belonged to a transaction), and
        # functions the timer process runs every `interval` seconds
        self.pre_script: list[Callable[[Any], bool]] = []
        self.reply_hook: Callable[[Any], bool] | None = None
        self.timers: list[tuple[str, float, Callable[[], None]]] = []
        self.blacklists: dict[str, Any] = {}
        self.start_time = int(time.time())
        self.msg_counter = 0
        self._myself_cache: dict[tuple[str, int, str | None], bool] = {}
        # 1.6 register_alias_fct: module checks (domain's table) asked after the
        # sockets and aliases; their answers change at run time, so never cached
        self.alias_fns: list[Callable[[str, int, str | None], bool]] = []
        self.pid = os.getpid()

    # ------------------------------------------------------------ logging

    @property
    def debug(self) -> int:
        """The log level in force here: setdebug's, else the (shared) global one."""
        if self.debug_local is not None:
            return self.debug_local
        if self.shared_debug is not None:
            return self.shared_debug.get(0)
        return self._debug_global

    @debug.setter
    def debug(self, level: int) -> None:
        """Set the global level (MI `debug`, -d, tests); every process sees it."""
        self._debug_global = level
        if self.shared_debug is not None:
            self.shared_debug.set(0, level)

    def log(self, level: int, text: str) -> None:
        """Log `text` if `level` passes this process's debug level."""
        if level <= self.debug:
            self.logger(level, text)

    def log_enabled(self, level: int) -> bool:
        return level <= self.debug

    # ------------------------------------------------------------ myself

    @property
    def cfg_dir(self) -> str:
        """The config file's directory ("" when the script came from text):
        modules resolve relative file names against it, as 1.6 does."""
        cfg = self.config.get("cfg_file") if self.config else None
        return os.path.dirname(os.path.abspath(str(cfg))) if cfg else ""

    def is_myself(self, host: str, port: int | None, proto: str | None = None) -> bool:
        """1.6's check_self (see `_check_self`), remembered per (host, port, proto).

        Listen sockets and aliases do not change after start-up, and the same
        few hosts come back in every Route and R-URI.
        """
        key = (host, port or 0, proto)
        found = self._myself_cache.get(key)
        if found is None:
            found = self._check_self(host, port, proto)
            if len(self._myself_cache) < 4096:
                self._myself_cache[key] = found
        if not found and self.alias_fns:
            name = host[1:-1] if host[:1] == "[" and host[-1:] == "]" else host
            return any(fn(name, port or 0, proto) for fn in self.alias_fns)
        return found

    def _check_self(self, host: str, port: int | None, proto: str | None = None) -> bool:
        """1.6's check_self: `host` (+ port, 5060 when 0/None) is ours.

        An IP matches a listen address; a name matches an alias
        case-insensitively. ``port`` None/0 means "any port" for aliases
        and the default port for listen sockets.
        """
        h = host.strip("[]").lower()
        try:
            h = str(ipaddress.ip_address(h))
        except ValueError:
            pass
        want_port = port or 0
        for s in self.sockets:
            if proto is not None and s.proto != proto:
                continue
            adv = (s.adv_host or "").strip("[]").lower()
            if h in (s.ip, adv) and (not want_port or want_port in (s.port, s.adv_port)):
                return True
        for a in self.aliases:
            if proto is not None and a.proto is not None and a.proto != proto:
                continue
            if a.host.strip("[]").lower() == h and (not a.port or not want_port or a.port == want_port):
                return True
        return False

    def register_timer(self, name: str, interval: float, fn: Callable[[], None]) -> None:
        """Run `fn` every `interval` seconds in the timer process (call before fork)."""
        self.timers.append((name, interval, fn))

    def next_msg_id(self) -> int:
        self.msg_counter += 1
        return self.msg_counter


@dataclass(slots=True)
class RecordingTransport:
    """A transport that records what would be sent (for tests and `-c`).

    Every name resolves to itself as an address (unless `resolver` is set);
    the first socket of the runtime (or a default 127.0.0.1:5060) sends.
    """

    sockets: list[SocketInfo] = field(default_factory=lambda: [SocketInfo("udp", "127.0.0.1", 5060)])
    sent: list[tuple[SocketInfo, Destination, bytes]] = field(default_factory=list)
    conns: list[int | None] = field(default_factory=list)  # the conn of each `sent` entry
    fail: bool = False
    resolver: Any = None  # a core.dns.SipResolver when a test wants real DNS

    def resolve(self, host: str, port: int | None, proto: str | None,
                is_sips: bool = False) -> list[Destination]:
        if self.resolver is not None:
            return list(self.resolver.resolve(host, port, proto, is_sips))
        p = proto or ("tls" if is_sips else "udp")
        return [Destination(p, host.strip("[]"), port or DEFAULT_PORTS.get(p, 5060))]

    def choose_socket(self, dest: Destination, forced: SocketInfo | None = None) -> SocketInfo | None:
        if forced is not None:
            return forced
        for s in self.sockets:
            if s.proto == dest.proto:
                return s
        return self.sockets[0] if self.sockets else None

    def send(self, sock: SocketInfo, dest: Destination, data: bytes,
             conn: int | None = None) -> bool:
        if self.fail:
            return False
        self.sent.append((sock, dest, data))
        self.conns.append(conn)
        return True
