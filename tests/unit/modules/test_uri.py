"""uri: the checks that need no DB."""

from __future__ import annotations

import pytest

from sipserver.core.exports import FixupError, Registry
from sipserver.core.modload import load_module
from sipserver.lang.env import CompileError
from sipserver.modules import uri
from sipserver.sip.digest import Credentials

from .util import INVITE, call, cmd, fix, make_ctx


def test_load_and_params() -> None:
    mod = load_module(Registry(), "uri.so")
    assert mod.params["user_column"] == "username"
    assert mod.params["use_uri_table"] == 0
    assert cmd(uri.exports, "tel2sip", 0).route_types == 1


def test_has_totag() -> None:
    assert call(make_ctx(INVITE), uri.exports, "has_totag") == -1
    tagged = INVITE.replace("To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com>;tag=a1")
    assert call(make_ctx(tagged), uri.exports, "has_totag") == 1


def test_uri_param() -> None:
    ctx = make_ctx(INVITE.replace("INVITE sip:bob@example.com", "INVITE sip:bob@example.com;lr;user=phone"))
    assert call(ctx, uri.exports, "uri_param", "lr") == 1
    assert call(ctx, uri.exports, "uri_param", "user") == -1  # has a value
    assert call(ctx, uri.exports, "uri_param", "user", "phone") == 1
    assert call(ctx, uri.exports, "uri_param", "user", "PHONE") == -1  # case-sensitive
    assert call(ctx, uri.exports, "uri_param", "LR") == -1
    assert call(ctx, uri.exports, "uri_param", "maddr") == -1
    ctx.set_ruri("sip:x@y;transport=tcp")  # the current R-URI counts
    assert call(ctx, uri.exports, "uri_param", "transport", "tcp") == 1


def test_add_uri_param() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, uri.exports, "add_uri_param", "user=phone") == 1
    assert ctx.ruri == "sip:bob@example.com;user=phone"
    assert call(ctx, uri.exports, "add_uri_param", "") == 1
    ctx.set_ruri("sip:bob@example.com;a=1?subject=hi")
    assert call(ctx, uri.exports, "add_uri_param", "b") == 1
    assert ctx.ruri == "sip:bob@example.com;a=1;b?subject=hi"


def test_tel2sip() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, uri.exports, "tel2sip") == 1
    assert ctx.new_uri is None  # nothing to convert
    ctx.set_ruri("tel:+4930123;phone-context=x")
    assert call(ctx, uri.exports, "tel2sip") == 1
    assert ctx.ruri == "sip:+4930123;phone-context=x@example.com;user=phone"


def test_is_uri_user_e164() -> None:
    ctx = make_ctx(INVITE)
    for value, want in [
        ("sip:+4930123@x", 1), ("tel:+4930123", 1), ("sip:4930123@x", -1), ("sip:+49ab@x", -1),
        ("sip:+1@x", -1), ("sip:+1234567890123456@x", -1), ("", -1), ("nonsense", -1), (5, -1),
    ]:
        ctx.rt.script_vars["u"] = value
        assert call(ctx, uri.exports, "is_uri_user_e164", "$var(u)") == want, value
    with pytest.raises(CompileError):
        fix(uri.exports, "is_uri_user_e164", "not-a-pv")


def test_is_user() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, uri.exports, "is_user", "alice") == -1  # nothing authorized yet
    uri.mark_authorized(ctx, Credentials(username="alice@example.com", realm="example.com"))
    assert call(ctx, uri.exports, "is_user", "alice") == 1
    assert call(ctx, uri.exports, "is_user", "Alice") == -1


@pytest.mark.parametrize(("name", "nargs"), [("check_to", 0), ("does_uri_exist", 1), ("get_auth_id", 3),
                                             ("does_uri_user_exist", 0)])
def test_obsolete_names_fail_at_startup(name: str, nargs: int) -> None:
    with pytest.raises(FixupError, match=r"renamed|obsolete"):
        fix(uri.exports, name, *["x"] * nargs)
