"""The client side: branches sent downstream, their retransmission, and
the CANCELs and ACKs tm builds itself.

A branch is one copy of the request: the R-URI (or an appended branch),
built by the core's `build_forwarded` with our branch `z9hG4bK<tid>.<N>`,
after the branch route (`t_on_branch`) ran on it. The bytes sent, the
destination and the socket go into the record: retransmissions, CANCEL
and ACK are made from them in whichever process needs them.
"""

from __future__ import annotations

from typing import Any

from ...core.context import RUN_DROP, AvpStore, Branch, MsgContext
from ...core.errors import E_BAD_ADDRESS, E_BAD_URI, E_NO_DESTINATION, E_SEND
from ...core.forward import build_forwarded, next_hop
from ...core.runtime import L_DBG, L_ERR, Destination
from ...sip.builders import build_ack, build_cancel
from ...sip.errors import ParseError
from ...sip.message import parse_message
from . import callbacks
from .keys import branch_of
from .record import CANCEL_PENDING, CANCEL_SENT, T_NO_DNS_FO, T_NO_NEW_BRANCHES, Txn, UacBranch
from .store import TmState

__all__ = ["REASON_ELSEWHERE", "REASON_NO_ANSWER", "REASON_ORIGINATOR", "avps_to_list",
           "cancel_branches", "dns_failover", "forward_branches", "retransmit_branch",
           "retransmit_cancel", "send_ack", "send_branch_bytes"]

MAX_BRANCHES = 12
REASON_ELSEWHERE = 'Reason: SIP ;cause=200 ;text="Call completed elsewhere"\r\n'
REASON_NO_ANSWER = 'Reason: SIP;cause=480;text="NO_ANSWER"\r\n'
REASON_ORIGINATOR = 'Reason: SIP;cause=487;text="ORIGINATOR_CANCEL"\r\n'

# t_on_reply() called from a branch route: the onreply route of that branch only
BRANCH_ONREPLY: list[str | None] = [None]


def _user_agent(rt: Any) -> str | None:
    cfg = rt.config
    return cfg.get("user_agent_header") if cfg.get("server_signature") else None


def _socket_named(rt: Any, name: str) -> Any:
    for s in rt.sockets:
        if s.name == name:
            return s
    return None


def send_branch_bytes(st: TmState, b: UacBranch, data: bytes) -> bool:
    """Send `data` to branch `b`'s destination from its socket."""
    rt = st.rt
    transport = rt.transport
    if transport is None:
        return False
    dest = Destination(*b.dst)
    sock = _socket_named(rt, b.sock) or transport.choose_socket(dest, None)
    if sock is None:
        rt.log(L_ERR, f"tm: no socket to send to {dest.proto}:{dest.ip}")
        return False
    return transport.send(sock, dest, data)


def avps_to_list(store: AvpStore) -> list[tuple[Any, list[Any]]]:
    return [(n, store.get_all(n)) for n in store.names()]


def avps_from_list(avps: list[tuple[Any, list[Any]]]) -> AvpStore:
    store = AvpStore()
    for name, values in avps:
        for v in reversed(values):
            store.add(name, v)
    return store


def failover_on(st: TmState, t: Txn) -> bool:
    """DNS failover allowed: not off by t_relay flag 0x04 nor by the core."""
    return not t.flags & T_NO_DNS_FO and not st.rt.config.get("disable_dns_failover")


def next_address(st: TmState, b: UacBranch) -> bool:
    """Move branch `b` to its next resolved address reachable from the same
    socket (the bytes carry that socket's Via); False when none is left."""
    transport = st.rt.transport
    while b.alt:
        dst = b.alt.pop(0)
        sock = transport.choose_socket(Destination(*dst), _socket_named(st.rt, b.sock))
        if sock is not None and sock.name == b.sock:
            st.rt.log(L_DBG, f"tm: DNS failover to {dst[0]}:{dst[1]}:{dst[2]}")
            b.dst = dst
            return True
    return False


def _send_with_failover(st: TmState, b: UacBranch) -> bool:
    ok = send_branch_bytes(st, b, b.request)
    while not ok and next_address(st, b):
        ok = send_branch_bytes(st, b, b.request)
    return ok


def _arm_branch(st: TmState, t: Txn, b: UacBranch, now: float, fr: float) -> None:
    if b.dst[0] == "udp":
        b.retr_iv = st.t1
        b.retr_due = now + st.t1
    b.fr_due = now + fr
    if not t.completed:
        t.wait_due = 0.0  # the branches' timers decide from now on


def _targets(ctx: MsgContext) -> list[Branch]:
    """The R-URI branch, then the appended ones (1.6's destination set)."""
    first = Branch(ctx.ruri, ctx.dst_uri, ctx.path, ctx.q, ctx.bflags, ctx.force_socket)
    return [first, *ctx.branches]


def _build_one(st: TmState, t: Txn, ctx: MsgContext, target: Branch, index: int
               ) -> tuple[UacBranch | None, int]:
    """Run the branch route and build the copy for one target: (branch, 0)
    or (None, error code); (None, 0) when the branch route dropped it."""
    rt = st.rt
    saved = (ctx.new_uri, ctx.dst_uri, ctx.path, ctx.force_socket, ctx.bflags)
    lumps = ctx.msg.lumps
    mark = lumps.checkpoint()
    try:
        if target.uri != ctx.ruri:
            ctx.new_uri = target.uri
        ctx.dst_uri = target.dst_uri
        ctx.path = target.path
        if target.socket is not None:
            ctx.force_socket = target.socket
        ctx.bflags = target.flags
        BRANCH_ONREPLY[0] = None
        bavps: list[tuple[Any, list[Any]]] = []
        if t.on_branch is not None and rt.routes is not None:
            route_type, stop = ctx.route_type, ctx.stop
            t.cur_branch = index
            t.new_bavps = AvpStore()
            try:
                rt.routes.run("branch", t.on_branch, ctx)
                dropped = ctx.stop == RUN_DROP
                bavps = avps_to_list(t.new_bavps)
            finally:
                t.cur_branch = None
                t.new_bavps = None
                ctx.route_type, ctx.stop = route_type, stop
            if dropped:
                rt.log(L_DBG, f"tm: branch {index} dropped by branch_route")
                return None, 0
        if t.tmcbs:  # last chance to change the branch's request
            callbacks.run_trans_callbacks(st, t, callbacks.TMCB_REQUEST_FWDED, ctx.msg, None,
                                          -callbacks.method_id(t.method), branch=index)
        hop = next_hop(ctx)
        if hop is None:
            rt.log(L_ERR, f"tm: bad URI <{ctx.dst_uri or ctx.ruri}>")
            return None, E_BAD_URI
        proto, host, port, sips = hop
        addresses = rt.transport.resolve(host, port, proto, sips) if rt.transport else []
        if not addresses:
            rt.log(L_ERR, f"tm: could not resolve \"{host}\"")
            return None, E_BAD_ADDRESS
        dest = addresses[0]
        sock = rt.transport.choose_socket(dest, ctx.force_socket)
        if sock is None:
            rt.log(L_ERR, f"tm: no socket for {dest.proto}:{dest.ip}")
            return None, E_SEND
        data = build_forwarded(ctx, sock, dest.proto, branch=branch_of(t.tid, index))
        if t.tmcbs:
            callbacks.run_trans_callbacks(st, t, callbacks.TMCB_REQUEST_BUILT, ctx.msg, None,
                                          -callbacks.method_id(t.method), branch=index,
                                          extra=data)
        b = UacBranch(ctx.ruri, (dest.proto, dest.ip, dest.port), sock.name, data)
        b.bflags = ctx.bflags
        b.on_reply = BRANCH_ONREPLY[0]
        b.avps = bavps
        if len(addresses) > 1 and failover_on(st, t):
            b.alt = [(d.proto, d.ip, d.port) for d in addresses[1:]]
        return b, 0
    finally:
        lumps.rollback(mark)
        ctx.new_uri, ctx.dst_uri, ctx.path, ctx.force_socket, ctx.bflags = saved


def forward_branches(st: TmState, t: Txn, ctx: MsgContext) -> int:
    """t_forward_nonack: one branch per target; 1 when at least one went out.

    The caller holds the transaction's lock and saves the record after.
    """
    rt = st.rt
    if t.flags & T_NO_NEW_BRANCHES:
        rt.log(L_ERR, "tm: no new branches allowed (a 6xx came)")
        return E_NO_DESTINATION
    if t.cancelled:
        rt.log(L_DBG, "tm: transaction cancelled, no new branches")
        return E_NO_DESTINATION
    previous_first = t.first_branch
    t.first_branch = len(t.branches)
    now = st.clock()
    sent = 0
    err = E_NO_DESTINATION
    for target in _targets(ctx):
        index = len(t.branches)
        if index >= MAX_BRANCHES:
            rt.log(L_ERR, "tm: maximum number of branches exceeded")
            break
        b, code = _build_one(st, t, ctx, target, index)
        if b is None:
            if code:
                err = code
            continue
        if not _send_with_failover(st, b):
            rt.log(L_ERR, f"tm: sending branch {index} to {b.dst[1]}:{b.dst[2]} failed")
            err = E_SEND
            continue
        t.branches.append(b)
        _arm_branch(st, t, b, now, st.fr_for(ctx.avps))
        sent += 1
        st.stat("UAC_transactions")
    if not sent:
        t.first_branch = previous_first
        ctx.ser_error = err
        return err
    return 1


def dns_failover(st: TmState, t: Txn, i: int) -> bool:
    """1.6 do_dns_failover: branch `i` failed (a 503, or no reply at all):
    fork a new branch with the same request to the next address of its
    next hop. True when one went out (the failure route waits for it)."""
    b = t.branches[i]
    if not b.alt or not failover_on(st, t) or t.cancelled or t.flags & T_NO_NEW_BRANCHES:
        return False
    index = len(t.branches)
    if index >= MAX_BRANCHES:
        return False
    old, new = branch_of(t.tid, i).encode(), branch_of(t.tid, index).encode()
    nb = UacBranch(b.uri, b.dst, b.sock, b.request.replace(old, new, 1))
    nb.bflags, nb.on_reply, nb.alt = b.bflags, b.on_reply, b.alt
    nb.avps = [(n, list(v)) for n, v in b.avps]
    b.alt = []
    while next_address(st, nb):
        if send_branch_bytes(st, nb, nb.request):
            t.first_branch = index
            t.branches.append(nb)
            _arm_branch(st, t, nb, st.clock(), st.fr_for(avps_from_list(t.avps)))
            st.stat("UAC_transactions")
            return True
    return False


def retransmit_branch(st: TmState, t: Txn, i: int, now: float) -> None:
    """Timer E/A: send the request again, double the interval (cap T2)."""
    b = t.branches[i]
    send_branch_bytes(st, b, b.request)
    b.retr_iv = min(b.retr_iv * 2, st.t2)
    b.retr_due = now + b.retr_iv


def cancel_branches(st: TmState, t: Txn, which: list[int], reason: str) -> None:
    """Send CANCEL on the given pending branches (INVITE only).

    A branch that has not answered at all gets its CANCEL once a
    provisional reply arrives (RFC 3261 §9.1).
    """
    if not t.is_invite:
        return
    for i in which:
        b = t.branches[i]
        if b.last >= 200 or b.cancel == CANCEL_SENT:
            continue
        if b.last < 100:
            b.cancel = CANCEL_PENDING
            st.rt.log(L_DBG, f"tm: branch {i} not answered yet, CANCEL postponed")
            continue
        _send_cancel(st, t, b, reason)


def _send_cancel(st: TmState, t: Txn, b: UacBranch, reason: str) -> None:
    try:
        data = build_cancel(parse_message(b.request), reason + t.extra_hdrs, _user_agent(st.rt))
    except ParseError as e:
        st.rt.log(L_ERR, f"tm: cannot build CANCEL: {e}")
        return
    b.cancel = CANCEL_SENT
    b.retr_due = 0.0
    # the CANCEL is a client transaction of its own: retransmitted over UDP
    # until a reply to it, given up at its final timer
    now = st.clock()
    b.cancel_req = data
    if b.dst[0] == "udp":
        b.cancel_iv = st.t1
        b.cancel_due = now + st.t1
    b.cancel_fr = now + st.fr
    # after a CANCEL the branch still waits (487) until its final timer
    send_branch_bytes(st, b, data)


def retransmit_cancel(st: TmState, b: UacBranch, now: float) -> None:
    """The timers of a CANCEL tm sent: give up at its fr, else resend (T1 doubling, cap T2)."""
    if b.cancel_fr and now >= b.cancel_fr:
        b.cancel_fr = b.cancel_due = 0.0
        return
    if b.cancel_due and now >= b.cancel_due:
        send_branch_bytes(st, b, b.cancel_req)
        b.cancel_iv = min(b.cancel_iv * 2, st.t2)
        b.cancel_due = now + b.cancel_iv


def send_pending_cancel(st: TmState, t: Txn, b: UacBranch, reason: str) -> None:
    if b.cancel == CANCEL_PENDING:
        _send_cancel(st, t, b, reason)


def send_ack(st: TmState, b: UacBranch, reply: Any, extra: str = "") -> None:
    """Hop-by-hop ACK for a non-2xx final reply on branch `b` (t_add_hdrs in `extra`)."""
    try:
        data = build_ack(parse_message(b.request), reply, extra, _user_agent(st.rt))
    except (ParseError, KeyError, IndexError) as e:
        st.rt.log(L_ERR, f"tm: cannot build ACK: {e}")
        return
    send_branch_bytes(st, b, data)

