"""Transaction identity: matching keys, transaction ids and our Via branches.

A transaction is stored under its *id* (`tid`): the 32 hex digits of the
MD5 of its matching key. The key follows RFC 3261 §17.2.3 when the top Via
branch carries the magic cookie (branch, sent-by, method class; ACK and
CANCEL name the INVITE they belong to), else the RFC 2543 rules 1.6 uses
(Call-ID, CSeq number, From tag, R-URI when `ruri_matching`, top Via when
`via1_matching`, method class).

The branches of the requests tm forwards are `z9hG4bK<tid>.<N>` (N the
branch index), so a reply coming back names its transaction and branch
directly, whichever process receives it; retransmissions of a request give
the same branches (the same tid).
"""

from __future__ import annotations

import hashlib

from ...sip.headers import MAGIC_COOKIE
from ...sip.message import SipMsg

__all__ = ["BRANCH_PREFIX", "branch_of", "cancel_tid", "parse_our_branch", "request_key",
           "request_tid", "tid_of_key"]

BRANCH_PREFIX = MAGIC_COOKIE
_HEX = frozenset("0123456789abcdef")


def _method_class(method: str) -> str:
    """ACK matches the INVITE transaction; every other method its own."""
    m = method.upper()
    return "INVITE" if m == "ACK" else m


def request_key(msg: SipMsg, *, as_method: str | None = None, ruri_matching: bool = True,
                via1_matching: bool = True) -> str:
    """The matching key of a request (`as_method` overrides the method class:
    a CANCEL looks for its INVITE with ``as_method="INVITE"``)."""
    method = as_method or _method_class(msg.method)
    via = msg.via1
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return f"3261|{branch}|{via.sent_by.lower()}|{method}"
    parts = ["2543", msg.call_id, str(msg.cseq.number), msg.from_.tag or "", method]
    if ruri_matching:
        parts.append(msg.ruri_text)
    if via1_matching:
        parts.append(f"{via.sent_by.lower()}|{branch or ''}")
    return "|".join(parts)


def tid_of_key(key: str) -> str:
    return hashlib.md5(key.encode("latin-1", "replace")).hexdigest()


def request_tid(msg: SipMsg, **kw: bool) -> str:
    """The transaction id of a request (ACK -> its INVITE's)."""
    return tid_of_key(request_key(msg, **kw))


def cancel_tid(msg: SipMsg, **kw: bool) -> str:
    """The id of the INVITE transaction a CANCEL cancels."""
    return tid_of_key(request_key(msg, as_method="INVITE", **kw))


def branch_of(tid: str, index: int) -> str:
    """Our Via branch for branch `index` of transaction `tid`."""
    return f"{BRANCH_PREFIX}{tid}.{index}"


def parse_our_branch(branch: str | None) -> tuple[str, int] | None:
    """(tid, index) of a branch we made, None for anything else."""
    if not branch or not branch.startswith(BRANCH_PREFIX):
        return None
    rest = branch[len(BRANCH_PREFIX):]
    tid, dot, idx = rest.partition(".")
    if not dot or len(tid) != 32 or not idx.isdigit() or len(idx) > 3:
        return None
    if not _HEX.issuperset(tid):
        return None
    return tid, int(idx)
