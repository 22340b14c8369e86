"""records: q printing, 1.6 ordering, the shared-memory encoding, core_hash."""

from __future__ import annotations

from dataclasses import astuple

import pytest

from sipserver.core.runtime import SocketInfo
from sipserver.modules.usrloc.records import (
    ALL_METHODS,
    CS_DIRTY,
    HEAD,
    HEAD_UNSYNCED,
    Q_UNSPECIFIED,
    ContactInfo,
    SocketCodec,
    UContact,
    core_hash,
    decode_record,
    encode_record,
    place_contact,
    reposition,
    sock_text,
)
from sipserver.modules.usrloc.records import q2str as q2s

S1 = SocketInfo("udp", "127.0.0.1", 5060)
S2 = SocketInfo("tcp", "10.0.0.1", 5070, adv_host="203.0.113.9", adv_port=5080)


@pytest.mark.parametrize(("q", "text"), [(Q_UNSPECIFIED, ""), (1000, "1"), (0, "0"), (500, "0.5"),
                                         (250, "0.25"), (125, "0.125"), (10, "0.01"), (1, "0.001")])
def test_q2str(q: int, text: str) -> None:
    assert q2s(q) == text


def c(contact: str, q: int = Q_UNSPECIFIED, **kw: object) -> UContact:
    return UContact("a", contact, q=q, **kw)  # type: ignore[arg-type]


def test_insert_order_by_q_then_registration() -> None:
    lst: list[UContact] = []
    for name, q in (("a", 500), ("b", 1000), ("c", 500), ("d", Q_UNSPECIFIED), ("e", 0)):
        place_contact(lst, c(name, q), False)
    # highest q first; equal q keeps registration order; unspecified last
    assert [x.contact for x in lst] == ["b", "a", "c", "e", "d"]


def test_insert_desc_time_order_newest_first() -> None:
    lst: list[UContact] = []
    for name, q in (("a", 1000), ("b", 0), ("c", 500)):
        place_contact(lst, c(name, q), True)
    assert [x.contact for x in lst] == ["c", "b", "a"]


def test_reposition_after_q_change() -> None:
    lst: list[UContact] = []
    for name, q in (("a", 1000), ("b", 500), ("c", 300)):
        place_contact(lst, c(name, q), False)
    lst[1].q = 200  # b now below c
    reposition(lst, lst[1], False)
    assert [x.contact for x in lst] == ["a", "c", "b"]
    lst[2].q = 1000  # b ties with a: goes after it
    reposition(lst, lst[2], False)
    assert [x.contact for x in lst] == ["a", "b", "c"]
    reposition(lst, lst[2], True)  # desc_time_order: updated one first
    assert [x.contact for x in lst] == ["c", "a", "b"]


def test_encode_decode_round_trip() -> None:
    codec = SocketCodec([S1, S2])
    contacts = [
        UContact("alice", "sip:alice@1.2.3.4;ob", 1_700_003_600, 500, "cid-1", 42, 1, 0x80000001,
                 "Phone/1.0 \u00e9", "sip:9.9.9.9:5060", "<sip:p1>,<sip:p2>", S2, 0x1F,
                 1_700_000_000, CS_DIRTY),
        UContact("alice", "sip:alice@h\udcff", 0, Q_UNSPECIFIED, "c", 0, 0, 0, "", "", "",
                 None, ALL_METHODS, 0),
        UContact("alice", "sip:x", 1_700_000_060, 1000, "c2", 7, 0, 0, "", "", "",
                 SocketInfo("udp", "192.0.2.7", 5060), 0, 5),
    ]
    data = encode_record(contacts, codec, True)
    nexp, flags = HEAD.unpack_from(data)
    assert nexp == 1_700_000_060  # the earliest non-permanent expiry
    assert flags == HEAD_UNSYNCED
    back = decode_record("alice", data, codec)
    assert [astuple(x) for x in back[:2]] == [astuple(x) for x in contacts[:2]]
    assert back[1].sock is None
    assert back[0].sock is S2  # our own socket object again
    # a socket that is not ours is kept by its text
    assert back[2].sock is not None and sock_text(back[2].sock) == "udp:192.0.2.7:5060"
    assert back[2].methods == 0
    # memory only: no sync flag
    assert HEAD.unpack_from(encode_record(contacts, codec, False))[1] == 0


def test_encoding_is_small() -> None:
    codec = SocketCodec([S1])
    one = UContact("alice", "sip:alice@192.0.2.10:5060", 1_700_003_600, 1000,
                   "a84b4c76e66710@pc33.atlanta.com", 1, 0, 0, "Phone/1.0", "", "", S1)
    data = encode_record([one], codec, False)
    strings = len(one.contact) + len(one.callid) + len(one.user_agent)
    assert len(data) - strings <= 48  # fixed part per record + contact


def test_socket_codec_and_text() -> None:
    codec = SocketCodec([S1, S2])
    assert codec.find("udp:127.0.0.1:5060") is S1
    assert codec.find("tcp:203.0.113.9:5080") is S2  # advertised address
    assert codec.find("udp:127.0.0.1:5061") is None
    assert codec.find("garbage") is None
    assert sock_text(S2) == "tcp:203.0.113.9:5080"
    assert sock_text(S1) == "udp:127.0.0.1:5060"
    assert sock_text(SocketInfo("udp", "::1", 5060)) == "udp:[::1]:5060"
    assert codec.find("udp:[::1]:5060") is None


def test_contact_info_and_apply_keeps_callid() -> None:
    u = UContact.new("a", "sip:a@h", ContactInfo(expires=5, callid="first", cseq=1))
    u.apply(ContactInfo(expires=9, callid="second", cseq=2, received="sip:r", q=300))
    assert (u.callid, u.cseq, u.expires, u.received, u.q) == ("first", 2, 9, "sip:r", 300)
    assert u.uri == "sip:r"
    assert u.valid(8) and not u.valid(9)
    assert UContact("a", "x", expires=0).valid(10**9)


@pytest.mark.parametrize(("text", "h", "slot"), [
    # values from 1.6's core_hash (computed by a C build of it)
    (b"alice", 1834153949, 477), (b"bob@example.com", 1457026995, 435), (b"abc", 7167810, 322),
    (b"caf\xe9x", 1864279228, 188), (b"1234567", 928033265, 497),
])
def test_core_hash_matches_16(text: bytes, h: int, slot: int) -> None:
    assert core_hash(text) == h
    assert core_hash(text, 512) == slot
