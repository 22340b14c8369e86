"""The transaction record kept in shared memory, and its compact encoding.

A `Txn` is what 1.6 keeps in `struct cell`: the request as received (to
build local replies, CANCELs and the failure-route copy), where replies go
upstream, the last reply sent upstream (for retransmissions), the script
state the failure route needs (flags, AVPs, armed routes, R-URI), the
timers' due times, and one `UacBranch` per forwarded copy (the bytes sent,
the destination, the last code received, a stored final reply).

Records are encoded with `marshal` as a flat tuple: no pickling of
classes, a few hundred bytes plus the messages themselves. Times are
`time.monotonic()` values (the clock is system-wide, the same in every
process); 0 means "not armed".
"""

from __future__ import annotations

import marshal
from typing import Any

from ...sip.message import parse_message

__all__ = ["B_RECV", "FORMAT", "T_CANCELLED", "T_CANCEL_REASON", "T_IS_CANCEL", "T_NO_100",
           "T_NO_DNS_FO", "T_NO_NEW_BRANCHES", "T_REPLICATED", "T_UAS_ACKED", "Txn", "UacBranch"]

FORMAT = 4

# transaction flags
T_CANCELLED = 0x01        # a CANCEL came from upstream
T_NO_NEW_BRANCHES = 0x02  # a 6xx blocked further forking
T_NO_DNS_FO = 0x04        # t_relay flag 0x04
T_CANCEL_REASON = 0x08    # t_relay flag 0x08
T_UAS_ACKED = 0x10        # the ACK for our non-2xx final reply came
T_IS_CANCEL = 0x20        # a CANCEL transaction answered locally (200)
T_NO_100 = 0x40
T_REPLICATED = 0x80       # t_replicate: replies are not relayed upstream (1.6 T_IS_LOCAL)

# UacBranch.cancel
CANCEL_NONE = 0
CANCEL_PENDING = 1  # to be sent when a provisional reply arrives
CANCEL_SENT = 2

# UacBranch.rflags
B_RECV = 0x01  # a reply was received on this branch (1.6 T_UAC_HAS_RECV_REPLY)


class UacBranch:
    """One client transaction (a copy of the request sent downstream)."""

    __slots__ = ("alt", "avps", "bflags", "cancel", "cancel_due", "cancel_fr", "cancel_iv",
                 "cancel_req", "dst", "fr_due", "last", "on_reply", "reply", "request",
                 "retr_due", "retr_iv", "rflags", "sock", "uri")

    def __init__(self, uri: str = "", dst: tuple[str, str, int] = ("udp", "", 0),
                 sock: str = "", request: bytes = b"") -> None:
        self.uri = uri
        self.dst = dst
        self.sock = sock
        self.request = request
        self.last = 0           # last code received (0: none yet)
        self.reply = b""        # stored final reply (b"" with last>=200: a faked one)
        self.retr_due = 0.0
        self.retr_iv = 0.0
        self.fr_due = 0.0
        self.cancel = CANCEL_NONE
        self.on_reply: str | None = None
        self.bflags = 0
        self.rflags = 0
        # the CANCEL tm sent on this branch, retransmitted over UDP until a
        # reply to it or its final timer
        self.cancel_req = b""
        self.cancel_due = 0.0
        self.cancel_iv = 0.0
        self.cancel_fr = 0.0
        self.alt: list[tuple[str, str, int]] = []  # further addresses (DNS failover)
        self.avps: list[tuple[Any, list[Any]]] = []  # $bavp

    def pack(self) -> tuple[Any, ...]:
        return (self.uri, tuple(self.dst), self.sock, self.request, self.last, self.reply,
                self.retr_due, self.retr_iv, self.fr_due, self.cancel, self.on_reply,
                self.bflags, self.rflags, self.cancel_req, self.cancel_due, self.cancel_iv,
                self.cancel_fr, [tuple(a) for a in self.alt], [(n, list(v)) for n, v in self.avps])

    @classmethod
    def unpack(cls, t: tuple[Any, ...]) -> UacBranch:
        b = cls.__new__(cls)
        (b.uri, dst, b.sock, b.request, b.last, b.reply, b.retr_due, b.retr_iv,
         b.fr_due, b.cancel, b.on_reply, b.bflags, b.rflags, b.cancel_req, b.cancel_due,
         b.cancel_iv, b.cancel_fr, alt, avps) = t
        # marshal gives back the tuples and lists pack() wrote: no copies
        b.dst, b.alt, b.avps = dst, alt, avps
        return b

    @property
    def pending(self) -> bool:
        """No final reply yet."""
        return self.last < 200

    def __repr__(self) -> str:
        return f"UacBranch({self.uri!r} -> {self.dst}, last={self.last})"


class Txn:
    """A transaction (server side + its client branches)."""

    __slots__ = (
        # per process, never stored
        "_req_msg",
        # persistent
        "avp_flags",
        "avps",
        "branches",
        "created",
        "cur_branch",
        "cur_code",
        "due_indexed",  # per process: the due time the store's wheel has for it
        "extra_hdrs",
        "first_branch",
        "flags",
        "fwd_req",
        "method",
        "msg_flags",
        "new_bavps",  # per process
        "on_branch",
        "on_failure",
        "on_reply",
        "picked",
        "rcv",
        "reply_dst",
        "request",
        "ruri",
        "src",
        "tid",
        "tmcb_keys",
        "tmcbs",
        "totag",
        "uas_local",
        "uas_reply",
        "uas_retr_due",
        "uas_retr_iv",
        "uas_status",
        "wait_due",
    )

    def __init__(self, tid: str = "", method: str = "", request: bytes = b"",
                 src: tuple[str, int, str] | tuple[str, int, str, int] = ("", 0, "udp"),
                 rcv: str = "",
                 reply_dst: tuple[str, str, int] = ("udp", "", 0), created: float = 0.0) -> None:
        self.tid = tid
        self.method = method
        self.request = request
        self.fwd_req = b""  # the request with the script's changes (b"": as received)
        self.src = src
        self.rcv = rcv
        self.reply_dst = reply_dst
        self.created = created
        self.uas_status = 0
        self.uas_reply = b""
        self.uas_local = False
        self.totag = ""
        self.flags = 0
        self.on_failure: str | None = None
        self.on_reply: str | None = None
        self.on_branch: str | None = None
        self.msg_flags = 0
        self.avps: list[tuple[Any, list[Any]]] = []
        self.avp_flags: list[tuple[Any, list[int]]] = []  # flag bits of flagged AVPs (avpops)
        self.ruri = ""
        self.first_branch = 0
        self.uas_retr_due = 0.0
        self.uas_retr_iv = 0.0
        self.wait_due = 0.0
        self.extra_hdrs = ""  # t_add_hdrs: added to the CANCELs and ACKs tm builds
        self.branches: list[UacBranch] = []
        # callbacks.register_tmcb: (types, function name, param); e2e ACK index keys
        self.tmcbs: list[tuple[int, str, Any]] = []
        self.tmcb_keys: list[bytes] = []
        self._init_transient()

    def _init_transient(self) -> None:
        self._req_msg = None
        self.due_indexed = 0.0
        self.cur_branch: int | None = None  # branch of the reply being handled (O/B routes)
        self.cur_code = 0                   # code of that reply
        self.picked: int | None = None      # winning branch (failure route)
        self.new_bavps: Any = None          # $bavp of the branch a branch route builds

    # ------------------------------------------------------------ encoding

    def encode(self) -> bytes:
        return marshal.dumps((
            FORMAT, self.method, self.request, self.fwd_req, tuple(self.src), self.rcv, tuple(self.reply_dst),
            self.created, self.uas_status, self.uas_reply, self.uas_local, self.totag,
            self.flags, self.on_failure, self.on_reply, self.on_branch, self.msg_flags,
            [(n, list(v)) for n, v in self.avps], self.ruri, self.first_branch,
            self.uas_retr_due, self.uas_retr_iv, self.wait_due,
            [b.pack() for b in self.branches], self.extra_hdrs,
            [tuple(c) for c in self.tmcbs], self.tmcb_keys, self.avp_flags,
        ))

    @classmethod
    def decode(cls, tid: str, data: bytes) -> Txn:
        t = cls.__new__(cls)
        values = marshal.loads(data)
        if values[0] != FORMAT:
            raise ValueError(f"unknown transaction record format {values[0]}")
        (_, t.method, t.request, t.fwd_req, src, t.rcv, reply_dst, t.created, t.uas_status,
         t.uas_reply, t.uas_local, t.totag, t.flags, t.on_failure, t.on_reply, t.on_branch,
         t.msg_flags, avps, t.ruri, t.first_branch, t.uas_retr_due, t.uas_retr_iv,
         t.wait_due, branches, t.extra_hdrs, tmcbs, t.tmcb_keys, t.avp_flags) = values
        t.tid = tid
        # marshal gives back the tuples and lists encode() wrote: no copies
        t.src, t.reply_dst, t.avps, t.tmcbs = src, reply_dst, avps, tmcbs
        unpack = UacBranch.unpack
        t.branches = [unpack(b) for b in branches]
        t._req_msg = None
        t.due_indexed = 0.0
        t.cur_branch = None
        t.cur_code = 0
        t.picked = None
        t.new_bavps = None
        return t

    # ------------------------------------------------------------ views

    @property
    def is_invite(self) -> bool:
        return self.method == "INVITE"

    @property
    def cancelled(self) -> bool:
        return bool(self.flags & T_CANCELLED)

    @property
    def completed(self) -> bool:
        """A final reply went upstream."""
        return self.uas_status >= 200

    def compact(self) -> bool:
        """Drop what a completed transaction no longer needs; whether anything went.

        Once a final reply went upstream the failure route cannot run again,
        so the script's copy of the request (`fwd_req`) is done with; a
        branch with a final reply is never retransmitted or cancelled, and
        needs its request only to ACK a repeated non-2xx final of an INVITE.
        A transaction spends most of its life waiting (wt_timer) in this
        state, so this is most of the shared memory a busy proxy holds.
        """
        if self.uas_status < 200:
            return False
        dropped = False
        if self.fwd_req:
            self.fwd_req = b""
            dropped = True
        invite = self.method == "INVITE"
        for b in self.branches:
            if b.request and b.last >= 200 and (not invite or b.last < 300):
                b.request = b""
                dropped = True
        return dropped

    @property
    def local_totag(self) -> str:
        """The To-tag of our local replies (signaling's send_reply_api reads it)."""
        return self.totag

    def pending_branches(self) -> list[int]:
        return [i for i in range(self.first_branch, len(self.branches))
                if self.branches[i].pending]

    def next_due(self) -> float:
        """The earliest armed timer (0: none)."""
        best = 0.0
        for d in (self.uas_retr_due, self.wait_due):
            if d > 0 and (best == 0.0 or d < best):
                best = d
        for b in self.branches:
            for d in ((b.retr_due, b.fr_due, b.cancel_due, b.cancel_fr) if b.cancel_req
                      else (b.retr_due, b.fr_due)):
                if d > 0 and (best == 0.0 or d < best):
                    best = d
        return best

    def request_msg(self) -> Any:
        """The stored request, parsed (cached in this process)."""
        if self._req_msg is None:
            self._req_msg = parse_message(self.request)
        return self._req_msg

    def __repr__(self) -> str:
        return f"Txn({self.tid[:8]} {self.method} status={self.uas_status} {self.branches})"
