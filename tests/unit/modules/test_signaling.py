"""signaling: send_reply through sl (tm comes later) and the load_sig API."""

from __future__ import annotations

import pytest

from sipserver.core.exports import FixupError, Registry
from sipserver.core.modload import load_module
from sipserver.modules import signaling

from .util import INVITE, call, fix, make_ctx, make_env, sent


def registry(*names: str) -> Registry:
    reg = Registry()
    for n in names:
        load_module(reg, f"{n}.so")
    return reg


def test_load() -> None:
    assert load_module(Registry(), "signaling.so").name == "signaling"


def test_send_reply_via_sl() -> None:
    reg = registry("sl", "signaling")
    ctx = make_ctx(INVITE, registry=reg)
    assert call(ctx, signaling.exports, "send_reply", "404", "Not $ru", env=make_env(reg)) == 1
    assert sent(ctx)[0][2].startswith(b"SIP/2.0 404 Not sip:bob@example.com\r\n")


def test_api_returns_to_tag() -> None:
    ctx = make_ctx(INVITE, registry=registry("sl"))
    tags: list[str] = []
    assert signaling.send_reply_api(ctx, 180, "Ringing", tags) == 1
    assert tags and tags[0].endswith(".2bff")
    assert f";tag={tags[0]}".encode() in sent(ctx)[0][2]


def test_ack_counts_as_sent() -> None:
    ack = INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK")
    ctx = make_ctx(ack, registry=registry("sl"))
    assert call(ctx, signaling.exports, "send_reply", "200", "OK") == 1
    assert sent(ctx) == []


def test_needs_sl_or_tm() -> None:
    with pytest.raises(FixupError, match="neither"):
        fix(signaling.exports, "send_reply", "200", "OK", env=make_env(registry("signaling")))
    ctx = make_ctx(INVITE, registry=registry("signaling"))
    assert signaling.send_reply_api(ctx, 200, "OK") == -1


def test_bad_code() -> None:
    with pytest.raises(FixupError):
        fix(signaling.exports, "send_reply", "1000", "x")
