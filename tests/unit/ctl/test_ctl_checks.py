"""sipctl's operator-command helpers: user/AOR/URI checks, MI argument quoting,
option splitting, settings precedence and the hashes."""

from __future__ import annotations

import hashlib

import pytest

from sipserver.ctl import commands, main
from sipserver.ctl.common import (
    Ctl,
    CtlError,
    check_uri,
    check_user_name,
    is_aor,
    mi_arg,
    split_user,
)
from sipserver.ctl.users import credentials


def test_split_user_takes_sip_domain() -> None:
    ctl = Ctl({"SIP_DOMAIN": "example.com"})
    assert split_user(ctl, "alice") == ("alice", "example.com")
    assert split_user(ctl, "alice@") == ("alice", "example.com")
    assert split_user(ctl, "alice@other.org") == ("alice", "other.org")
    # the config file is read after the environment
    assert split_user(Ctl({}, {"SIP_DOMAIN": "rc.org"}), "bob") == ("bob", "rc.org")
    assert split_user(Ctl({"SIP_DOMAIN": "env.org"}, {"SIP_DOMAIN": "rc.org"}), "b")[1] == "env.org"
    for bad in ("alice", "a@b@c.org", "a b@c.org", '"a"@c.org', "@c.org"):
        with pytest.raises(CtlError):
            split_user(Ctl({}), bad)


def test_user_names_and_aors() -> None:
    check_user_name("+49-30_a.b!~*'()&=+$,;?/%2F", "example.com")
    for bad in ("a:b", "a b", "ü", "%2", "a<b"):
        with pytest.raises(CtlError):
            check_user_name(bad, "example.com")
    assert is_aor("alice@example.com") and not is_aor("alice@localhost")
    assert not is_aor("alice") and not is_aor("a@b@c.org")


def test_sip_uris() -> None:
    for good in ("sip:alice@192.0.2.1:5060", "sips:example.com", "sip:a@h.org;transport=tcp",
                 "sip:alice@[2001:db8::1]:5060"):
        check_uri(good, "bad")
    for bad in ("http://a.org", "sip:alice@host", "sip:a b@c.org", "tel:+4930"):
        with pytest.raises(CtlError, match="bad"):
            check_uri(bad, "bad")


def test_mi_arguments_are_quoted_only_when_needed() -> None:
    assert mi_arg("alice@example.com") == "alice@example.com"
    assert mi_arg("sip:alice@[2001:db8::1]") == '"sip:alice@[2001:db8::1]"'  # `::` names
    assert mi_arg('say "hi"') == '"say \\"hi\\""'
    assert mi_arg(" x") == '" x"'
    for bad in ("a\nb", "a\rb", 'x"\\'):
        with pytest.raises(CtlError):
            mi_arg(bad)


def test_split_options() -> None:
    assert commands.split_options(["add", "--db-url", "sqlite:///x", "a@b.c", "pw"]) == \
        (["add", "a@b.c", "pw"], "sqlite:///x", False)
    assert commands.split_options(["--yes", "--db-url=mysql://h/d", "x"]) == \
        (["x"], "mysql://h/d", True)
    assert commands.split_options(["a@b.c", "--", "--yes", "-pw"]) == \
        (["a@b.c", "--yes", "-pw"], None, False)
    with pytest.raises(CtlError):
        commands.split_options(["--db-url"])


def test_every_operator_command_has_a_handler() -> None:
    for cmd in main.OPERATOR_COMMANDS:
        assert callable(commands._handler(cmd))


def test_credentials_are_the_1_6_hashes() -> None:
    ha1, ha1b = credentials("alice", "example.com", "pw")
    assert ha1 == hashlib.md5(b"alice:example.com:pw").hexdigest()
    assert ha1b == hashlib.md5(b"alice@example.com:example.com:pw").hexdigest()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"SIPCTL_CONFIG": "/dev/null"}
    for argv in (["add"], ["ul"], ["alias_db"], ["avp"], ["domain"], ["address", "x"],
                 ["ping"], ["acl", "show", "a", "b"]):
        assert main.main(argv, env) == 2, argv
        assert "usage: sipctl" in capsys.readouterr().err
