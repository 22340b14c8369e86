"""Digest authentication: header parsing/building and response computation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipserver.sip.digest import (
    Challenge,
    Credentials,
    answer_challenge,
    build_challenge,
    build_credentials,
    calc_ha1,
    calc_ha1_sess,
    calc_response,
    check_response,
    parse_challenge,
    parse_credentials,
)
from sipserver.sip.errors import ParseError

TORTURE = Path("/work/shared/torture")


def md5(text: str) -> str:
    return hashlib.md5(text.encode("latin-1")).hexdigest()


# RFC 2617 §3.5
RFC2617_CHALLENGE = (
    "Digest\r\n"
    '                 realm="testrealm@host.com",\r\n'
    '                 qop="auth,auth-int",\r\n'
    '                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
    '                 opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_CREDENTIALS = (
    'Digest username="Mufasa",\r\n'
    '                 realm="testrealm@host.com",\r\n'
    '                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
    '                 uri="/dir/index.html",\r\n'
    "                 qop=auth,\r\n"
    "                 nc=00000001,\r\n"
    '                 cnonce="0a4f113b",\r\n'
    '                 response="6629fae49393a05397450978507c4ef1",\r\n'
    '                 opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


# -- parsing ------------------------------------------------------------------


def test_parse_rfc2617_challenge() -> None:
    ch = parse_challenge(RFC2617_CHALLENGE)
    assert ch.is_digest
    assert ch.realm == "testrealm@host.com"
    assert ch.nonce == "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    assert ch.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert ch.qop == ["auth", "auth-int"]
    assert ch.stale is False
    assert ch.algorithm is None
    assert ch.domain is None
    assert ch.params == {}


def test_parse_rfc2617_credentials() -> None:
    cr = parse_credentials(RFC2617_CREDENTIALS)
    assert cr.is_digest
    assert (cr.username, cr.realm, cr.uri) == ("Mufasa", "testrealm@host.com", "/dir/index.html")
    assert cr.nonce == "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    assert (cr.qop, cr.nc, cr.cnonce) == ("auth", "00000001", "0a4f113b")
    assert cr.response == "6629fae49393a05397450978507c4ef1"
    assert cr.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert cr.algorithm is None
    assert cr.params == {}
    assert cr.validate() == []


def test_regaut01_unknown_scheme() -> None:
    value = "NoOneKnowsThisScheme opaque-data=here"
    if TORTURE.is_dir():
        text = (TORTURE / "regaut01.sip").read_bytes().decode("latin-1")
        line = next(ln for ln in text.split("\r\n") if ln.startswith("Authorization:"))
        value = line.partition(":")[2].strip()
    cr = parse_credentials(value)
    assert cr.scheme == "NoOneKnowsThisScheme"
    assert not cr.is_digest
    assert cr.raw_params == "opaque-data=here"
    assert cr.username is None
    assert cr.validate() == ["unsupported scheme NoOneKnowsThisScheme"]
    assert not check_response(cr, "REGISTER", password="x")
    basic = parse_challenge('Basic realm="x"')
    assert basic.scheme == "Basic" and basic.raw_params == 'realm="x"' and basic.realm is None
    assert parse_credentials("Bearer").raw_params == ""


def test_case_insensitive_names_and_scheme() -> None:
    cr = parse_credentials('dIGEST USERNAME="bob", Realm=atlanta.com, NONCE="n", Uri="sip:a"')
    assert cr.is_digest and cr.scheme == "dIGEST"
    assert (cr.username, cr.realm, cr.nonce, cr.uri) == ("bob", "atlanta.com", "n", "sip:a")


def test_quoted_strings_escapes_and_commas() -> None:
    cr = parse_credentials(
        r'Digest username="a\"b\\c", realm="x, y", nonce="n,=\"", uri="sip:u@h;a=\"b\""'
        ', foo=bar, X-Extra="q v"'
    )
    assert cr.username == 'a"b\\c'
    assert cr.realm == "x, y"
    assert cr.nonce == 'n,="'
    assert cr.uri == 'sip:u@h;a="b"'
    assert cr.params == {"foo": "bar", "x-extra": "q v"}


def test_whitespace_tolerance() -> None:
    cr = parse_credentials(' \tDigest\t username = "u" ,realm="r",,  nonce =n ,\r\n uri="x" , ')
    assert (cr.username, cr.realm, cr.nonce, cr.uri) == ("u", "r", "n", "x")


def test_challenge_fields() -> None:
    ch = parse_challenge(
        'Digest realm="atlanta.com", domain="sip:ss1.carrier.com sip:a.com", '
        'nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=TRUE, algorithm=MD5, '
        "qop=auth, charset=utf-8"
    )
    assert ch.realm == "atlanta.com"
    assert ch.domain == "sip:ss1.carrier.com sip:a.com"
    assert ch.opaque == ""
    assert ch.stale is True
    assert ch.algorithm == "MD5"
    assert ch.qop == ["auth"]
    assert ch.params == {"charset": "utf-8"}
    assert parse_challenge('Digest realm="r", nonce="n", stale="false"').stale is False
    assert parse_challenge('Digest realm="r", qop=" auth , , auth-int "').qop == [
        "auth",
        "auth-int",
    ]


def test_user_domain_split() -> None:
    cr = parse_credentials('Digest username="alice@example.com", realm="example.com"')
    assert (cr.user, cr.domain) == ("alice", "example.com")
    assert "missing nonce" in cr.validate()
    assert "username domain differs from realm" not in cr.validate()
    cr.realm = "other.com"
    assert "username domain differs from realm" in cr.validate()
    assert "username domain differs from realm" not in cr.validate(check_domain=False)
    short = parse_credentials('Digest username="a@"')
    assert (short.user, short.domain) == ("a@", None)


def test_validate_qop_needs_cnonce_and_nc() -> None:
    cr = parse_credentials(
        'Digest username="u", realm="r", nonce="n", uri="x", response="r", qop=auth'
    )
    assert cr.validate() == ["missing cnonce", "missing nc"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        ",Digest realm=x",
        '"Digest" realm=x',
        "Digest",
        "Digest ,, ",
        'Digest realm="unterminated',
        'Digest realm="ends in backslash\\',
        "Digest realm",
        "Digest realm=",
        "Digest realm= ,nonce=x",
        "Digest =x",
        'Digest realm=a"b',
        'Digest realm="a"b',
        'Digest realm="a" nonce="b"',
        'Digest realm="a", realm="b"',
        'Digest Realm="a", REALM="b"',
        "Digest realm=x, Basic realm=y",
        "Digest@ realm=x",
        "Digest realm=x;y=z z",
    ],
)
def test_bad_header_values(value: str) -> None:
    with pytest.raises(ParseError):
        parse_credentials(value)
    with pytest.raises(ParseError):
        parse_challenge(value)


# -- building -----------------------------------------------------------------


def test_build_challenge_opensips16_format() -> None:
    assert (
        build_challenge("example.com", "4cad1a2b") == 'Digest realm="example.com", nonce="4cad1a2b"'
    )
    assert (
        build_challenge("example.com", "4cad1a2b", qop="auth", stale=True)
        == 'Digest realm="example.com", nonce="4cad1a2b", qop="auth", stale=true'
    )
    assert (
        build_challenge("r", "n", qop="auth, auth-int", algorithm="MD5", opaque='o"p', stale=True)
        == 'Digest realm="r", nonce="n", qop="auth,auth-int", stale=true, algorithm=MD5, '
        'opaque="o\\"p"'
    )
    assert build_challenge("r", "n", stale=False, qop=None) == 'Digest realm="r", nonce="n"'


def test_build_challenge_round_trip() -> None:
    value = build_challenge('we"ird\\realm', "n0nce", qop="auth-int", opaque="", stale=True)
    ch = parse_challenge(value)
    assert ch.realm == 'we"ird\\realm'
    assert ch.nonce == "n0nce"
    assert ch.qop == ["auth-int"]
    assert ch.opaque == ""
    assert ch.stale is True


def test_build_challenge_rejects_bad_input() -> None:
    for kwargs in ({"qop": 'auth"'}, {"qop": "auth,"}, {"algorithm": "MD 5"}):
        with pytest.raises(ValueError):
            build_challenge("r", "n", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_challenge("r\r\nX-Injected: 1", "n")


def test_build_credentials_opensips16_format() -> None:
    assert (
        build_credentials("alice", "example.com", "abc", "sip:example.com", "0123abcd")
        == 'Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com", '
        'response="0123abcd", algorithm=MD5'
    )
    assert (
        build_credentials(
            "alice", "r", "n", "sip:x", "resp", opaque="op", qop="auth", nc=1, cnonce="cn"
        )
        == 'Digest username="alice", realm="r", nonce="n", uri="sip:x", opaque="op", '
        'qop=auth, nc=00000001, cnonce="cn", response="resp", algorithm=MD5'
    )
    assert (
        build_credentials(
            "a", "r", "n", "u", "x", algorithm=None, qop="auth", nc="0000000a", cnonce="c"
        )
        == 'Digest username="a", realm="r", nonce="n", uri="u", qop=auth, nc=0000000a, '
        'cnonce="c", response="x"'
    )
    with pytest.raises(ValueError):
        build_credentials("a", "r", "n", "u", "x", qop="auth")
    with pytest.raises(ValueError):
        build_credentials("a", "r", "n", "u", "x", qop="auth", nc=0, cnonce="c")


def test_build_credentials_round_trip() -> None:
    value = build_credentials(
        'd\\"u', "r", "n", "sip:u@h", "r" * 32, opaque="o", qop="auth-int", nc=255, cnonce="c"
    )
    cr = parse_credentials(value)
    assert cr.username == 'd\\"u'
    assert (cr.opaque, cr.qop, cr.nc, cr.cnonce, cr.algorithm) == (
        "o",
        "auth-int",
        "000000ff",
        "c",
        "MD5",
    )


# -- computing ----------------------------------------------------------------


def test_rfc2617_example() -> None:
    ha1 = calc_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert ha1 == "939e7578ed9e3c518a452acee763bce9"
    resp = calc_response(
        ha1,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "GET",
        "/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert resp == "6629fae49393a05397450978507c4ef1"
    cr = parse_credentials(RFC2617_CREDENTIALS)
    assert check_response(cr, "GET", password="Circle Of Life")
    assert check_response(cr, "GET", ha1=ha1)
    assert check_response(cr, "GET", ha1=ha1.upper())
    assert not check_response(cr, "GET", password="Circle of Life")
    assert not check_response(cr, "POST", password="Circle Of Life")


def test_rfc7616_md5_example() -> None:
    ha1 = calc_ha1("Mufasa", "http-auth@example.org", "Circle of Life")
    resp = calc_response(
        ha1,
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "GET",
        "/dir/index.html",
        qop="auth",
        nc=1,
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert resp == "8ca523f5e9506fed4657c9700eebdbec"


def test_sip_register_without_qop() -> None:
    ha1 = md5("alice:example.com:secret")
    expected = md5(f"{ha1}:4cad1a2b5f:{md5('REGISTER:sip:example.com')}")
    assert calc_ha1("alice", "example.com", "secret") == ha1
    assert calc_response(ha1, "4cad1a2b5f", "REGISTER", "sip:example.com") == expected
    value = build_credentials("alice", "example.com", "4cad1a2b5f", "sip:example.com", expected)
    cr = parse_credentials(value)
    assert check_response(cr, "REGISTER", password="secret")
    assert check_response(cr, "REGISTER", ha1=ha1)
    assert not check_response(cr, "INVITE", password="secret")
    cr.response = expected.upper()
    assert check_response(cr, "REGISTER", password="secret")
    cr.response = expected[:-1]
    assert not check_response(cr, "REGISTER", password="secret")


def test_sip_invite_auth_int() -> None:
    body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    ha1 = md5("bob:biloxi.com:zanzibar")
    ha2 = md5(f"INVITE:sip:bob@biloxi.com:{md5(body)}")
    expected = md5(f"{ha1}:nonce1:0000000a:c0ffee:auth-int:{ha2}")
    resp = calc_response(
        ha1,
        "nonce1",
        "INVITE",
        "sip:bob@biloxi.com",
        qop="auth-int",
        nc=10,
        cnonce="c0ffee",
        body=body,
    )
    assert resp == expected
    cr = parse_credentials(
        build_credentials(
            "bob",
            "biloxi.com",
            "nonce1",
            "sip:bob@biloxi.com",
            resp,
            qop="auth-int",
            nc=10,
            cnonce="c0ffee",
        )
    )
    assert check_response(cr, "INVITE", password="zanzibar", body=body)
    assert not check_response(cr, "INVITE", password="zanzibar", body=body + "a=x\r\n")
    # qop=auth ignores the body.
    auth = calc_response(ha1, "n", "INVITE", "sip:b", qop="auth", nc=1, cnonce="c", body=body)
    assert auth == calc_response(ha1, "n", "INVITE", "sip:b", qop="auth", nc=1, cnonce="c")
    # The qop text is hashed as sent, recognised case-insensitively.
    upper = calc_response(ha1, "n", "INVITE", "sip:b", qop="AUTH-INT", nc=1, cnonce="c", body=body)
    assert upper == md5(f"{ha1}:n:00000001:c:AUTH-INT:{md5('INVITE:sip:b:' + md5(body))}")


def test_md5_sess() -> None:
    plain = md5("carol:chicago.com:pw")
    sess = md5(f"{plain}:srvnonce:clinonce")
    assert calc_ha1("carol", "chicago.com", "pw", "MD5-sess", "srvnonce", "clinonce") == sess
    assert calc_ha1_sess(plain, "srvnonce", "clinonce") == sess
    resp = calc_response(
        sess, "srvnonce", "REGISTER", "sip:chicago.com", qop="auth", nc=1, cnonce="clinonce"
    )
    value = build_credentials(
        "carol", "chicago.com", "srvnonce", "sip:chicago.com", resp,
        algorithm="MD5-sess", qop="auth", nc=1, cnonce="clinonce",
    )  # fmt: skip
    cr = parse_credentials(value)
    assert check_response(cr, "REGISTER", password="pw")
    assert check_response(cr, "REGISTER", ha1=plain)  # stored HA1 is the plain one
    assert not check_response(cr, "REGISTER", ha1=sess)
    cr.cnonce = None
    assert not check_response(cr, "REGISTER", password="pw")


def test_calc_errors() -> None:
    with pytest.raises(ValueError):
        calc_ha1("u", "r", "p", "SHA-256")
    with pytest.raises(ValueError):
        calc_response("0" * 32, "n", "M", "u", qop="auth")
    with pytest.raises(ValueError):
        calc_response("0" * 32, "n", "M", "u", qop="bogus", nc=1, cnonce="c")
    with pytest.raises(ValueError):
        calc_response("0" * 32, "n", "M", "u", qop="")
    with pytest.raises(ValueError):
        check_response(Credentials(), "REGISTER")


def test_latin1_octets_are_hashed_as_is() -> None:
    ha1 = calc_ha1("j\xfcrgen", "r", "p\xe4ss")
    assert ha1 == hashlib.md5(b"j\xfcrgen:r:p\xe4ss").hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"algorithm": "SHA-256"},
        {"qop": "auth-conf"},
        {"qop": ""},
        {"nc": None},
        {"uri": None},
        {"response": None},
        {"scheme": "Basic"},
    ],
)
def test_check_response_unusable_credentials(change: dict) -> None:
    cr = parse_credentials(RFC2617_CREDENTIALS)
    for k, v in change.items():
        setattr(cr, k, v)
    assert not check_response(cr, "GET", password="Circle Of Life")


def test_answer_challenge() -> None:
    ch = parse_challenge(RFC2617_CHALLENGE)
    value = answer_challenge(
        ch, "GET", "/dir/index.html", "Mufasa", password="Circle Of Life", cnonce="0a4f113b"
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5'
    )
    # No qop offered: RFC 2069 style; random cnonce not sent.
    ch2 = parse_challenge(build_challenge("example.com", "abc"))
    cr = parse_credentials(
        answer_challenge(ch2, "REGISTER", "sip:example.com", "al", password="pw")
    )
    assert cr.qop is None and cr.cnonce is None and cr.nc is None
    assert check_response(cr, "REGISTER", password="pw")
    # auth-int only, MD5-sess, HA1 instead of a password.
    ch3 = parse_challenge(build_challenge("r", "n", qop="auth-int", algorithm="MD5-sess"))
    cr = parse_credentials(
        answer_challenge(ch3, "INVITE", "sip:b@r", "al", ha1=md5("al:r:pw"), nc=3, body="x")
    )
    assert (cr.qop, cr.nc, cr.algorithm) == ("auth-int", "00000003", "MD5-sess")
    assert cr.cnonce
    assert check_response(cr, "INVITE", password="pw", body="x")
    with pytest.raises(ValueError):
        answer_challenge(Challenge("Basic"), "INVITE", "sip:x", "u", password="p")
    with pytest.raises(ValueError):
        answer_challenge(Challenge(realm="r"), "INVITE", "sip:x", "u", password="p")
    with pytest.raises(ValueError):
        answer_challenge(
            Challenge(realm="r", nonce="n", algorithm="AKAv1-MD5"), "M", "u", "u", password="p"
        )


# -- fuzz ---------------------------------------------------------------------

_CHARS = st.sampled_from(
    [*'Digest usernamrlcoqp=",\\ \t\r\nabcAB01-@:;/', "\x00", "\x85", "\xa0", "\xff"]
)


@settings(max_examples=300, deadline=None)
@given(st.text(_CHARS, max_size=80))
def test_fuzz_parsers(text: str) -> None:
    for value in (text, "Digest " + text):
        try:
            cr = parse_credentials(value)
        except ParseError:
            pass
        else:
            cr.validate()
            repr(cr)
            assert check_response(cr, "REGISTER", password="p") in (True, False)
            assert check_response(cr, "REGISTER", ha1="0" * 32, body=text) in (True, False)
        try:
            ch = parse_challenge(value)
        except ParseError:
            pass
        else:
            repr(ch)
            assert isinstance(ch.qop, list)


_VALUE = st.text(st.sampled_from([*'ab"\\,= \t:@;x\xe9\xff']), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_VALUE, _VALUE, _VALUE, _VALUE, st.booleans())
def test_fuzz_build_parse_round_trip(
    user: str, realm: str, nonce: str, uri: str, stale: bool
) -> None:
    ch = parse_challenge(build_challenge(realm, nonce, qop="auth", opaque=uri, stale=stale))
    assert (ch.realm, ch.nonce, ch.opaque, ch.stale, ch.qop) == (realm, nonce, uri, stale, ["auth"])
    value = answer_challenge(ch, "INVITE", uri, user, password="pw", cnonce="cn")
    cr = parse_credentials(value)
    assert (cr.username, cr.realm, cr.nonce, cr.uri) == (user, realm, nonce, uri)
    assert check_response(cr, "INVITE", password="pw")
    assert not check_response(cr, "INVITE", password="pW")
