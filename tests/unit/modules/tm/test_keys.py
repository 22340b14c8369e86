"""Transaction matching keys and our branch format."""

from __future__ import annotations

from sipserver.modules.tm.keys import (
    branch_of,
    cancel_tid,
    parse_our_branch,
    request_key,
    request_tid,
)
from sipserver.sip.message import parse_message

from .helpers import invite


def msg(data: bytes):
    return parse_message(data)


def test_3261_key_uses_branch_sent_by_and_method_class() -> None:
    key = request_key(msg(invite()))
    assert key == "3261|z9hG4bKabc|127.0.0.2:5070|INVITE"


def test_ack_and_cancel_find_their_invite() -> None:
    inv = request_tid(msg(invite()))
    ack = msg(invite(method="ACK"))
    cancel = msg(invite(method="CANCEL"))
    assert request_tid(ack) == inv
    assert cancel_tid(cancel) == inv
    assert request_tid(cancel) != inv  # the CANCEL is a transaction of its own


def test_other_branch_other_transaction() -> None:
    assert request_tid(msg(invite())) != request_tid(msg(invite(branch="z9hG4bKother")))


def test_rfc2543_fallback() -> None:
    a = msg(invite(branch="1234"))
    b = msg(invite(branch="1234", method="ACK", to_tag="xyz"))
    key = request_key(a)
    assert key.startswith("2543|c1|1|f1|INVITE")
    assert request_tid(a) == request_tid(b)  # the ACK to a negative reply matches
    assert request_tid(a) != request_tid(msg(invite(branch="1234", cseq=2)))
    assert request_tid(a) != request_tid(msg(invite(branch="1234", ruri="sip:x@y")))
    assert request_tid(a, ruri_matching=False) == request_tid(
        msg(invite(branch="1234", ruri="sip:x@y")), ruri_matching=False)


def test_branch_roundtrip() -> None:
    tid = request_tid(msg(invite()))
    br = branch_of(tid, 3)
    assert br.startswith("z9hG4bK") and br.endswith(".3") and len(br) == 7 + 32 + 2
    assert parse_our_branch(br) == (tid, 3)
    for bad in (None, "", "z9hG4bKabc", "z9hG4bK" + "g" * 32 + ".0", "xyz" + tid + ".0",
                "z9hG4bK" + tid, "z9hG4bK" + tid + ".x"):
        assert parse_our_branch(bad) is None
