"""Where a reply goes: the one computation behind every reply the core sends.

Three senders need it: a reply we make to a request we received (sl,
tm's server transactions, the 400 for a broken request) and a reply we
relay statelessly along the Via below ours. RFC 3261 18.2.2 and RFC 3581
say how; OpenSIPS 1.6 splits it in two (`update_sock_struct_from_ip` for
local replies, `update_sock_struct_from_via` for relayed ones), and so
does `reply_destination`, by whether the request's source is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .runtime import DEFAULT_PORTS, L_ERR, L_NOTICE, Destination

if TYPE_CHECKING:
    from ..sip.headers import Via

__all__ = ["STREAM_PROTOS", "ReplyRoute", "reply_destination"]

SIP_PORT = 5060
STREAM_PROTOS = frozenset({"tcp", "tls"})


@dataclass(frozen=True, slots=True)
class ReplyRoute:
    """A reply's destination, and the stream connection to try first (0: none).

    Over TCP/TLS the transport sends on connection `conn` while it is open
    and opens a new one to `dest` otherwise (1.6 tcp_send with an id).
    """

    dest: Destination
    conn: int = 0


def _rport_value(rt: Any, via: Via) -> int:
    """The port an upstream hop filled into `rport`; 0 when absent, empty or bad."""
    text = via.rport
    if not text:
        return 0
    if text.isdigit() and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    rt.log(L_NOTICE, f"reply: bad rport value ({text}) ignored")
    return 0


def reply_destination(rt: Any, via: Via | None, *, source: tuple[str, int] | None = None,
                      proto: str | None = None, conn: int = 0,
                      force_rport: bool = False) -> ReplyRoute | None:
    """Where a reply to the request that carried `via` is sent; None: nowhere (logged).

    Local reply (`source` = the request's source address, `via` its top
    Via, `proto` the transport it came in on, `conn` its connection):

    * the address is always the request's source IP. `received` in the Via
      is ignored (the sender wrote it, not a proxy we trust), and so are
      `maddr` and the sent-by host, which is therefore never resolved (1.6);
    * the port is the source port when the Via has `rport` (with a value or
      without: a value there was not written for us) or the script called
      force_rport(); else the sent-by port; else 5060 (1.6: 5060 for every
      transport);
    * the transport is the one the request came in on, whatever the Via
      says; over TCP/TLS `conn` is the connection to answer on, and `dest`
      (sent-by port unless rport) where a new connection goes if it closed
      (RFC 3261 18.2.2).

    Relayed reply (`source` None, `via` the Via below ours):

    * the transport is the Via's;
    * the port is the `rport` value when an upstream proxy filled it in
      (RFC 3581); `rport` without a value, a non-number or a value over
      65535 (logged) counts as absent;
    * the address is `maddr` when present (1.6 prefers it to `received`),
      else `received` (RFC 3261 18.2.2), else the sent-by host. With maddr
      or received and no rport value the port is the sent-by port, else the
      transport's default (no SRV for these);
    * a sent-by host that is a name is resolved as 1.6's sip_resolvehost
      does (through `rt.transport.resolve`, core/dns.py's resolver in a
      server): with a port, its A record; without one, the SRV record of
      the Via's transport, then the A record with the default port. The
      first address is used; none is a NOTICE and None (1.6 drops the reply);
    * `conn` (the connection id of our own Via's `i` parameter) is kept for
      TCP/TLS only.

    No Via (a message without one cannot be answered: 1.6 drops such a
    request before the script) gives None, logged.
    """
    if via is None:
        rt.log(L_ERR, "reply: the request has no Via; no reply sent")
        return None
    if source is not None:
        ip, src_port = source
        if force_rport or via.rport is not None:
            port = src_port
        else:
            port = via.port or SIP_PORT
        p = (proto or "udp").lower()
        return ReplyRoute(Destination(p, ip.strip("[]"), port), conn if p in STREAM_PROTOS else 0)

    p = (via.transport or "UDP").lower()
    port: int | None = _rport_value(rt, via) or None
    name = via.maddr or via.received
    if name:
        if port is None:
            port = via.port or DEFAULT_PORTS.get(p, SIP_PORT)
    else:
        name = via.host
        if port is None:
            port = via.port  # None: an SRV lookup for a name, the default port for an IP
    transport = rt.transport
    found = transport.resolve(name, port, p) if transport is not None else []
    if not found:
        why = getattr(getattr(transport, "resolver", None), "last_error", "") or "no address"
        rt.log(L_NOTICE, f"reply: cannot resolve {name} ({why}); reply dropped")
        return None
    dest = found[0]
    if dest.proto != p:  # the resolver keeps the Via's transport; be sure of it
        dest = Destination(p, dest.ip, dest.port)
    return ReplyRoute(dest, conn if p in STREAM_PROTOS else 0)
