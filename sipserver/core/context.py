"""The per-message run-time context: what a route run sees and changes.

One `MsgContext` is made for each message a process handles (and for each
route tm runs on a transaction's behalf). It carries what OpenSIPS keeps in
`struct sip_msg` beside the parsed bytes: the rewritten R-URI, the
destination URI, flags, branches, AVPs, the last return code. The compiled
routes are plain callables taking a MsgContext.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..sip.errors import ParseError
from ..sip.uri import Uri, parse_uri
from .errors import E_TOO_MANY_BRANCHES
from .exports import REQUEST_ROUTE
from .runtime import L_ERR

if TYPE_CHECKING:
    from ..sip.message import SipMsg

MAX_BRANCHES = 12  # 1.6: the R-URI branch plus 11 appended ones
MAX_FLAG = 31

# How a route run ended (MsgContext.stop).
RUN_GO_ON = 0
RUN_EXIT = 1
RUN_DROP = 2


class ScriptExit(Exception):
    """Raised to stop the whole top-level run (exit, drop, a 0 code)."""


class RouteReturn(Exception):
    """Raised by `return(n)` to leave the current route with code n."""

    def __init__(self, code: int) -> None:
        self.code = code


AvpName = int | str
Value = int | str | None


class AvpStore:
    """AVPs of one message/transaction: per name a stack, newest first.

    `$avp(s:x)` is index 0 (the newest), `[-1]` the oldest, as in 1.6.
    A value may carry flag bits (1.6 keeps them in each AVP, e.g. avpops'
    "already in the DB" mark); they follow their value and are dropped when
    it is replaced or deleted. Names without flagged values cost nothing.
    """

    __slots__ = ("_d", "_f")

    def __init__(self) -> None:
        self._d: dict[AvpName, list[int | str]] = {}
        self._f: dict[AvpName, list[int]] = {}  # flags per value, only for names that have some

    def add(self, name: AvpName, value: int | str, flags: int = 0) -> None:
        values = self._d.setdefault(name, [])
        values.insert(0, value)
        f = self._f.get(name)
        if f is not None:
            f.insert(0, flags)
        elif flags:
            self._f[name] = [flags] + [0] * (len(values) - 1)

    def get(self, name: AvpName, index: int = 0) -> Value:
        values = self._d.get(name)
        if not values:
            return None
        try:
            return values[index]
        except IndexError:
            return None

    def get_all(self, name: AvpName) -> list[int | str]:
        return list(self._d.get(name, ()))

    def flags(self, name: AvpName) -> list[int]:
        """The flag bits of each value of `name`, in get_all order."""
        f = self._f.get(name)
        return list(f) if f is not None else [0] * len(self._d.get(name, ()))

    def flagged(self) -> list[tuple[AvpName, list[int]]]:
        """(name, flags of each value) for the names that have any flag set
        (what a transaction keeps besides the values)."""
        return [(n, list(f)) for n, f in self._f.items() if any(f)]

    def set_flags(self, name: AvpName, index: int, flags: int) -> None:
        """OR `flags` into the value at `index` (ignored when there is none)."""
        values = self._d.get(name)
        if not values or not -len(values) <= index < len(values):
            return
        f = self._f.setdefault(name, [0] * len(values))
        f[index] |= flags

    def replace(self, name: AvpName, index: int, value: int | str) -> bool:
        values = self._d.get(name)
        if not values or not -len(values) <= index < len(values):
            return False
        values[index] = value
        f = self._f.get(name)
        if f is not None:
            f[index] = 0
        return True

    def delete(self, name: AvpName, index: int | None = 0) -> None:
        """Delete one value (by index) or, with index None, every value."""
        values = self._d.get(name)
        if not values:
            return
        if index is None:
            del self._d[name]
            self._f.pop(name, None)
            return
        if -len(values) <= index < len(values):
            del values[index]
            f = self._f.get(name)
            if f is not None:
                del f[index]
        if not values:
            del self._d[name]
            self._f.pop(name, None)

    def names(self) -> list[AvpName]:
        return list(self._d)

    def copy(self) -> AvpStore:
        other = AvpStore()
        other._d = {k: list(v) for k, v in self._d.items()}
        other._f = {k: list(v) for k, v in self._f.items()}
        return other

    def __contains__(self, name: AvpName) -> bool:
        return name in self._d

    def __len__(self) -> int:
        return sum(len(v) for v in self._d.values())


@dataclass(slots=True)
class Branch:
    """An appended branch (append_branch, registrar lookup, $branch)."""

    uri: str
    dst_uri: str | None = None
    path: str | None = None
    q: int | None = None  # 0..1000, None when unset (1.6's Q_UNSPECIFIED)
    flags: int = 0
    socket: Any = None


@dataclass(slots=True)
class ErrorInfo:
    """The last core error ($err.*): class 1 is a parser error."""

    eclass: int = 0
    level: int = 0
    info: str = ""
    rcode: int = 0
    rreason: str = ""


class MsgContext:
    """Everything a route run reads and writes besides the message bytes."""

    __slots__ = (
        "adv_address",
        "adv_port",
        "auth_cred",
        "avps",
        "bflags",
        "blacklists",
        "branches",
        "conn",
        "dst_uri",
        "err",
        "flags",
        "force_rport",
        "force_socket",
        "local_rport",
        "msg",
        "msg_id",
        "new_uri",
        "path",
        "proto",
        "q",
        "rc",
        "rcv",
        "reply_lumps",
        "route_depth",
        "route_type",
        "rt",
        "ser_error",
        "sflags",
        "src_ip",
        "src_port",
        "stop",
        "tcp_alias",
        "transaction",
    )

    def __init__(
        self,
        rt: Any,
        msg: SipMsg,
        *,
        src_ip: str = "",
        src_port: int = 0,
        proto: str = "udp",
        rcv: Any = None,
        route_type: int = REQUEST_ROUTE,
        conn: int = 0,
    ) -> None:
        self.rt = rt  # the per-process runtime (route table, $var, transports)
        self.msg = msg
        self.route_type = route_type
        self.src_ip = src_ip
        self.src_port = src_port
        self.proto = proto
        self.rcv = rcv  # the listening socket the message came in on
        # the id of the TCP connection the message came in on (1.6
        # rcv.proto_reserved1); 0 when it did not come over a stream
        self.conn = conn or 0
        self.new_uri: str | None = None  # R-URI after rewrites, None = as received
        self.dst_uri: str | None = None  # $du
        self.path: str | None = None
        self.q: int | None = None
        self.force_socket: Any = None
        self.force_rport = False
        self.local_rport = False  # force_local_rport: ;rport in the Via we add
        self.tcp_alias: int | None = None  # force_tcp_alias port (0 = Via port)
        self.adv_address: str | None = None  # set_advertised_address
        self.adv_port: int | None = None  # set_advertised_port
        self.blacklists: set[str] = set()  # use_blacklist names enabled
        self.msg_id = 0  # $mi
        # the internal error code of the last failed core/tm operation (1.6
        # ser_error, E_* in core/reply.py): sl_reply_error turns it into a reply
        self.ser_error = -1
        self.auth_cred: Any = None  # credentials auth accepted ($Au); set by auth
        self.reply_lumps: list[str] = []  # append_to_reply headers for local replies
        self.flags = 0  # message flags ($mf)
        self.sflags = 0  # script flags ($sf), reset for every top-level run
        self.bflags = 0  # branch flags of the R-URI branch ($bf)
        self.branches: list[Branch] = []
        self.avps = AvpStore()
        self.rc = 1  # $rc / $retcode
        self.stop = RUN_GO_ON
        self.route_depth = 0
        self.err = ErrorInfo()
        self.transaction: Any = None  # set by tm when a transaction holds the message

    @property
    def ruri(self) -> str:
        """The current Request-URI text (rewritten or as received)."""
        return self.new_uri if self.new_uri is not None else self.msg.ruri_text

    def set_ruri(self, uri: str) -> None:
        self.new_uri = uri

    def branches_full(self, who: str) -> bool:
        """No room for another appended branch (1.6 append_branch: at most
        MAX_BRANCHES - 1): logged, and the error sl_reply_error reports
        (500 Forking capacity exceeded) is set."""
        if len(self.branches) < MAX_BRANCHES - 1:
            return False
        self.rt.log(L_ERR, f"{who}: max nr of branches exceeded")
        self.ser_error = E_TOO_MANY_BRANCHES
        return True

    def parsed_ruri(self) -> Uri:
        """The current Request-URI parsed (rewritten or as received);
        ParseError for a reply, a missing R-URI or one that does not parse."""
        if not self.msg.is_request:
            raise ParseError("not a request")
        uri = parse_uri(self.new_uri) if self.new_uri is not None else self.msg.ruri
        if uri is None:
            raise ParseError("no Request-URI")
        return uri

    def reset_for_run(self, route_type: int) -> None:
        """1.6's per top-level run reset: script flags, stop state, error."""
        self.route_type = route_type
        self.sflags = 0
        self.stop = RUN_GO_ON
        self.route_depth = 0
        self.err = ErrorInfo()
        self.blacklists.clear()
