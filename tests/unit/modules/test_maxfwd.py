"""maxfwd: Max-Forwards insertion, in-place decrement, limits and return codes."""

from __future__ import annotations

import pytest

from sipserver.core.exports import FixupError, Registry
from sipserver.core.modload import ModuleError, load_module
from sipserver.modules import maxfwd

from .util import INVITE, call, fix, loaded, make_ctx

NO_MF = INVITE.replace("Max-Forwards: 70\n", "")


def test_load() -> None:
    mod = load_module(Registry(), "maxfwd.so")
    assert mod.params == {"max_limit": 256}


def test_missing_header_is_inserted_first() -> None:
    ctx = make_ctx(NO_MF)
    assert call(ctx, maxfwd.exports, "mf_process_maxfwd_header", "10") == 2
    assert ctx.msg.build().startswith(
        b"INVITE sip:bob@example.com SIP/2.0\r\nMax-Forwards: 10\r\nVia: SIP/2.0/UDP"
    )
    # the inserted header is a pending change: is_maxfwd_lt does not see it
    assert call(ctx, maxfwd.exports, "is_maxfwd_lt", "5") == -2


@pytest.mark.parametrize(
    ("value", "after"), [("70", "69"), ("10", " 9"), ("1", "0"), ("100", " 99")]
)
def test_decrement_in_place(value: str, after: str) -> None:
    ctx = make_ctx(INVITE.replace("Max-Forwards: 70", f"Max-Forwards: {value}"))
    assert call(ctx, maxfwd.exports, "mf_process_maxfwd_header", "10") == 1
    data = ctx.msg.build()
    assert f"\r\nMax-Forwards: {after}\r\n".encode() in data
    assert len(data) == len(ctx.msg.buf)
    assert ctx.msg.max_forwards == int(after)


def test_second_call_sees_first_decrement() -> None:
    ctx = make_ctx(INVITE.replace("Max-Forwards: 70", "Max-Forwards: 10"))
    assert call(ctx, maxfwd.exports, "mf_process_maxfwd_header", "10") == 1
    assert call(ctx, maxfwd.exports, "mf_process_maxfwd_header", "10") == 1
    assert b"\r\nMax-Forwards:  8\r\n" in ctx.msg.build()
    assert call(ctx, maxfwd.exports, "is_maxfwd_lt", "9") == 1
    assert call(ctx, maxfwd.exports, "is_maxfwd_lt", "8") == -1


def test_zero_and_bad_values() -> None:
    ctx = make_ctx(INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0"))
    assert call(ctx, maxfwd.exports, "mf_process_maxfwd_header", "10") == -1
    assert ctx.msg.build() == ctx.msg.buf


def test_value_above_max_limit_becomes_max_limit() -> None:
    ctx = make_ctx(INVITE)
    mod = loaded(maxfwd.exports, max_limit=16)
    assert call(ctx, maxfwd.exports, "mf_process_maxfwd_header", "10", module=mod) == 1
    assert b"\r\nMax-Forwards: 16\r\n" in ctx.msg.build()


def test_is_maxfwd_lt_codes() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, maxfwd.exports, "is_maxfwd_lt", "71") == 1
    assert call(ctx, maxfwd.exports, "is_maxfwd_lt", "70") == -1
    assert call(make_ctx(NO_MF), maxfwd.exports, "is_maxfwd_lt", "5") == -2


@pytest.mark.parametrize("arg", ["0", "257", "abc", "", "-1"])
def test_fixup_rejects(arg: str) -> None:
    with pytest.raises(FixupError):
        fix(maxfwd.exports, "mf_process_maxfwd_header", arg)


def test_fixup_respects_max_limit() -> None:
    mod = loaded(maxfwd.exports, max_limit=20)
    with pytest.raises(FixupError, match="bigger than max limit"):
        fix(maxfwd.exports, "is_maxfwd_lt", "30", module=mod)
    assert fix(maxfwd.exports, "is_maxfwd_lt", "20", module=mod)[1] == (20,)


def test_mod_init_checks_max_limit() -> None:
    with pytest.raises(ModuleError):
        maxfwd.exports.mod_init(loaded(maxfwd.exports, max_limit=300))
    maxfwd.exports.mod_init(loaded(maxfwd.exports))
