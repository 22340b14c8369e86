"""Transformations ({class.method,params}): every 1.6 method, failures, PV
parameters, chaining and start-up errors.

Expected values marked "1.6.4" were observed on the real 1.6.4 core.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest

from sipserver.lang import transformations as tr
from sipserver.lang.transformations import (
    Param,
    TransformationError,
    TransformationSyntaxError,
    chain,
    class_names,
    compile_transformation,
    method_names,
    register_class,
    set_resolver,
    split_params,
)

# ---------------------------------------------------------------------------
# A fake PV compiler: $var(x), $avp(s:x) and $(var(x){tr}{tr}) read ctx[...]
# ---------------------------------------------------------------------------

_SIMPLE_PV_RE = re.compile(r"\$(var|avp)\(([^()]+)\)")
_NESTED_PV_RE = re.compile(r"\$\((var|avp)\(([^()]+)\)((?:\{.*\})+)\)")

COMPILED: list[str] = []


def _split_braces(text: str) -> list[str]:
    """'{a}{b,$(x{c})}' -> ['a', 'b,$(x{c})'] (test helper, not the parser's)."""
    out: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(text):
        if c == "{":
            if depth == 0:
                start = i + 1
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start:i])
    assert depth == 0, text
    return out


def fake_compile_pv(text: str) -> Callable[[Any], Any]:
    COMPILED.append(text)
    m = _SIMPLE_PV_RE.fullmatch(text)
    if m is not None:
        key = f"{m.group(1)}:{m.group(2)}"
        return lambda ctx: ctx[key]
    m = _NESTED_PV_RE.fullmatch(text)
    if m is not None:
        key = f"{m.group(1)}:{m.group(2)}"
        steps = chain(
            *(compile_transformation(t, fake_compile_pv) for t in _split_braces(m.group(3)))
        )
        return lambda ctx: steps(ctx, ctx[key])
    raise ValueError(f"fake_compile_pv: unknown pseudo-variable {text!r}")


CTX: dict[str, Any] = {
    "var:i": 2,
    "var:s": "3",
    "var:neg": -1,
    "var:null": None,
    "var:e": "",
    "var:n": "b",
    "var:x": "a=1;b=2;c",
    "var:l": "0,2,4",
    "var:t": "a",
    "avp:s:name": "c",
    "avp:i:1": 1,
}


def run(text: str, value: Any, ctx: dict[str, Any] | None = None) -> Any:
    return compile_transformation(text, fake_compile_pv)(CTX if ctx is None else ctx, value)


def check(text: str, value: Any, expected: Any) -> None:
    result = run(text, value)
    assert result == expected
    assert type(result) is type(expected), (text, value, result)


def md5(text: str) -> str:
    return hashlib.md5(text.encode("latin-1")).hexdigest()


# ---------------------------------------------------------------------------
# class s
# ---------------------------------------------------------------------------

S_CASES = [
    ("s.len", "abc", 3),
    ("s.len", "", 0),
    ("s.len", -12, 3),
    ("S.LEN", "ab", 2),
    (" s . len ", "ab", 2),
    ("s.int", "123", 123),
    ("s.int", "-45", -45),
    ("s.int", "007", 7),
    ("s.int", 42, 42),
    ("s.int", "", 0),  # 1.6.4: str2sint accepts the empty text
    ("s.int", "-", 0),  # 1.6.4
    ("s.md5", "AbC", "25aa3ee1c93cad3f274567281066dc18"),  # 1.6.4
    ("s.md5", "", "d41d8cd98f00b204e9800998ecf8427e"),
    ("s.md5", 5, md5("5")),
    ("s.md5", "\xe9", md5("\xe9")),  # one latin-1 octet
    # sipserver fix (§10 row 16): zlib CRC-32; 1.6.4 gives 3388528661 here.
    ("s.crc32", "AbC", "906438634"),
    ("s.crc32", "123456789", "3421780262"),  # the CRC-32 check value
    ("s.crc32", "", "0"),
    ("s.encode.hexa", "AbC", "416243"),
    ("s.encode.hexa", -12, "2d3132"),
    ("s.encode.hexa", "\xff\x00", "ff00"),
    ("s.encode.hexa", "", ""),
    ("s.decode.hexa", "416243", "AbC"),
    ("s.decode.hexa", "4a4B", "JK"),
    ("s.decode.hexa", "414", "A"),  # odd last char ignored
    ("s.decode.hexa", "ff00", "\xff\x00"),
    ("s.decode.hexa", "", ""),
    ("s.decode.hexa", 41, "A"),
    ("s.escape.common", "a'b\"c\\d\0e", "a\\'b\\\"c\\\\d\\0e"),
    ("s.escape.common", "plain", "plain"),
    ("s.unescape.common", "a\\'b\\\"c\\\\d\\0e", "a'b\"c\\d\0e"),
    ("s.unescape.common", "x\\qy\\", "x\\qy\\"),  # 1.6.4: others kept
    ("s.unescape.common", "\\\\0", "\\0"),
    ("s.escape.user", 'a b@c/d:e%f?;="', "a%20b%40c%2fd%3ae%25f?;=%22"),  # 1.6.4
    ("s.escape.user", "-_.!~*'()&=+$,;?", "-_.!~*'()&=+$,;?"),
    ("s.escape.user", "Az09", "Az09"),
    ("s.escape.user", "<#>", "%3c%23%3e"),
    ("s.escape.param", 'a b@c/d:e%f?;="', "a%20b@c/d:e%f%3f%3b%3d%22"),  # 1.6.4
    ("s.escape.param", "x&y,z", "x%26y%2cz"),
    ("s.unescape.user", "%41%62%2f", "Ab/"),
    ("s.unescape.user", "%4a%4B%7e", "JK~"),
    ("s.unescape.user", "a b", "a b"),
    ("s.unescape.param", "a%20b%3d", "a b="),
    ("s.unescape.param", "x%3bq", "x;q"),
    ("s.tolower", "AbC-\xc4Z", "abc-\xc4z"),  # ASCII only
    ("s.tolower", 5, "5"),  # 1.6.4: an int comes back as text
    ("s.toupper", "aBc-\xe4z", "ABC-\xe4Z"),
    ("s.toupper", -3, "-3"),
    # substr: the §7.5 examples, then more
    ("s.substr,2,0", "abcdef", "cdef"),
    ("s.substr,-3,2", "abcdef", "de"),
    ("s.substr,-3,5", "abcdef", "def"),
    ("s.substr,-6,0", "abcdef", "abcdef"),
    ("s.substr,5,1", "abcdef", "f"),
    ("s.substr,1,2", "abcdef", "bc"),
    ("s.substr,0,6", "abcdef", "abcdef"),
    ("s.substr,4,9", "abcdef", "ef"),
    ("s.substr, 1 , 2 ", "abcdef", "bc"),
    ("s.substr,- 2,1", "abcdef", "e"),  # 1.6 allows blanks after the sign
    ("s.substr,+1,1", "abcdef", "b"),
    ("s.substr,0,3", 12345, "123"),
    # select
    ("s.select,0,,", "a,b,,c", "a"),
    ("s.select,1,,", "a,b,,c", "b"),
    ("s.select,2,,", "a,b,,c", ""),
    ("s.select,3,,", "a,b,,c", "c"),
    ("s.select,4,,", "a,b,,c", ""),  # missing field
    ("s.select,-1,,", "a,b,,c", "c"),
    ("s.select,-4,,", "a,b,,c", "a"),
    ("s.select,-5,,", "a,b,,c", ""),
    ("s.select,1, ", "a b c", "b"),  # the separator is the char after ','
    ("s.select,1,;", "x;y", "y"),
    ("s.select,1,; ", "x;y", "y"),
    ("s.select,0,,", "", ""),
    ("s.select,1,.", 1234, ""),
    ("s.select,0,2", 1234, "1"),
]


@pytest.mark.parametrize(("text", "value", "expected"), S_CASES)
def test_string_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


def test_escape_roundtrips() -> None:
    text = 'it\'s "quoted" \\ and\0nul'
    assert run("s.unescape.common", run("s.escape.common", text)) == text
    printable = "".join(chr(c) for c in range(32, 127))
    assert run("s.unescape.user", run("s.escape.user", printable)) == printable
    no_percent = printable.replace("%", "")  # escape.param keeps '%' as it is
    assert run("s.unescape.param", run("s.escape.param", no_percent)) == no_percent
    octets = "".join(chr(c) for c in range(256))
    assert run("s.decode.hexa", run("s.encode.hexa", octets)) == octets


# ---------------------------------------------------------------------------
# class uri
# ---------------------------------------------------------------------------

FULL_URI = (
    "sip:alice:pw@Example.com:05060;transport=TCP;lr;ttl=5;user=ip;maddr=1.2.3.4;"
    "method=INVITE;r2=on;x=Y?h=1&j=2"
)
PHONE_URI = "sip:+1;isub=2@h;user=phone;a=b"

URI_CASES = [
    ("uri.user", FULL_URI, "alice"),
    ("uri.passwd", FULL_URI, "pw"),
    ("uri.host", FULL_URI, "Example.com"),
    ("uri.domain", FULL_URI, "Example.com"),
    ("uri.port", FULL_URI, 5060),
    (
        "uri.params",
        FULL_URI,
        "transport=TCP;lr;ttl=5;user=ip;maddr=1.2.3.4;method=INVITE;r2=on;x=Y",
    ),
    ("uri.param,X", FULL_URI, "Y"),
    ("uri.param,x", FULL_URI, "Y"),
    ("uri.param,transport", FULL_URI, "TCP"),
    ("uri.param,lr", FULL_URI, ""),
    ("uri.param,nope", FULL_URI, ""),
    ("uri.headers", FULL_URI, "h=1&j=2"),
    ("uri.transport", FULL_URI, "TCP"),
    ("uri.ttl", FULL_URI, "5"),
    ("uri.uparam", FULL_URI, "ip"),
    ("uri.maddr", FULL_URI, "1.2.3.4"),
    ("uri.method", FULL_URI, "INVITE"),
    ("uri.lr", FULL_URI, ""),
    ("uri.r2", FULL_URI, "on"),
    ("URI.USER", FULL_URI, "alice"),
    # missing parts -> ''; missing port -> int 0
    ("uri.user", "sip:h", ""),
    ("uri.passwd", "sip:a@h", ""),
    ("uri.port", "sip:h", 0),
    ("uri.params", "sip:h", ""),
    ("uri.param,a", "sip:h", ""),
    ("uri.headers", "sip:h", ""),
    ("uri.transport", "sip:h", ""),
    ("uri.ttl", "sip:h", ""),
    ("uri.uparam", "sip:h", ""),
    ("uri.maddr", "sip:h", ""),
    ("uri.method", "sip:h", ""),
    ("uri.lr", "sip:h", ""),
    ("uri.r2", "sip:h", ""),
    ("uri.lr", "sip:a@b;lr=on;LR", "on"),  # first one wins
    ("uri.host", "sip:[::1]:5060", "[::1]"),
    ("uri.port", "sips:a@b:5061", 5061),
    ("uri.user", "SIP:bob@b", "bob"),
    # 1.6.4: with user=phone the user part's own params become the URI params
    ("uri.user", PHONE_URI, "+1"),
    ("uri.params", PHONE_URI, "isub=2"),
    ("uri.param,isub", PHONE_URI, "2"),
    ("uri.param,a", PHONE_URI, ""),
    ("uri.uparam", PHONE_URI, "phone"),
    # tel: the number is the user, no host
    ("uri.user", "tel:+123;phone-context=x", "+123"),
    ("uri.host", "tel:+123;phone-context=x", ""),
    ("uri.params", "tel:+123;phone-context=x", "phone-context=x"),
]


@pytest.mark.parametrize(("text", "value", "expected"), URI_CASES)
def test_uri_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


# ---------------------------------------------------------------------------
# class param
# ---------------------------------------------------------------------------

PL = "a=1;b=2;c"

PARAM_CASES = [
    ("param.value,a", PL, "1"),
    ("param.value,B", PL, "2"),
    ("param.value,c", PL, ""),
    ("param.value,zz", PL, ""),
    ("param.count", PL, 3),
    # 1.6.4 counts indexes from the end: 0 is the last param, -1 the first
    ("param.name,0", PL, "c"),
    ("param.name,1", PL, "b"),
    ("param.name,2", PL, "a"),
    ("param.name,3", PL, ""),
    ("param.name,-1", PL, "a"),
    ("param.name,-3", PL, "c"),
    ("param.name,-4", PL, ""),
    ("param.valueat,0", PL, ""),
    ("param.valueat,1", PL, "2"),
    ("param.valueat,2", PL, "1"),
    ("param.valueat,-1", PL, "1"),
    ("param.valueat,-2", PL, "2"),
    ("param.valueat,5", PL, ""),
    ("param.value,a", "a=1;a=2", "1"),  # 1.6.4: first match
    ("param.value,a", 'a = 1 ; b="x y"', "1"),
    ("param.value,b", 'a = 1 ; b="x y"', "x y"),  # quotes dropped
    ("param.count", "a=1,b=2", 1),  # 1.6 stops at ','
    ("param.count", ";a", 2),  # an empty first name
    ("param.name,1", ";a", ""),
    ("param.count", "single", 1),
    ("param.count", -12, 1),
    ("param.name,0", -12, "-12"),
]


@pytest.mark.parametrize(("text", "value", "expected"), PARAM_CASES)
def test_param_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


# ---------------------------------------------------------------------------
# class nameaddr
# ---------------------------------------------------------------------------

NAMEADDR_CASES = [
    ("nameaddr.name", "<sip:a@b>", ""),
    ("nameaddr.uri", "<sip:a@b>", "sip:a@b"),
    ("nameaddr.len", "<sip:a@b>", 11),  # 1.6.4: +2 without params
    ("nameaddr.len", "<sip:a@b>;tag=1", 9),  # 1.6.4
    ("nameaddr.param,tag", "<sip:a@b>;tag=1", "1"),
    ("nameaddr.name", '"A" <sip:a@b> ;tag=1', '"A"'),  # quotes kept
    ("nameaddr.len", '"A" <sip:a@b> ;tag=1', 14),  # 1.6.4
    ("nameaddr.name", "  Alice Smith <sip:a@b>  ", "Alice Smith"),
    ("nameaddr.len", "  Alice Smith <sip:a@b>  ", 25),  # 1.6.4
    ("nameaddr.uri", 'sip:a@b;tag=1;x="q y"', "sip:a@b"),
    ("nameaddr.len", 'sip:a@b;tag=1;x="q y"', 7),  # 1.6.4
    ("nameaddr.param,x", 'sip:a@b;tag=1;x="q y"', "q y"),
    ("nameaddr.param,tag", 'sip:a@b;tag=1;x="q y"', "1"),
    ("nameaddr.param,TAG", 'sip:a@b;tag=1;x="q y"', ""),  # case-sensitive
    ("nameaddr.param,tag", "<sip:a@b>;tag=1;tag=2;Foo", "1"),
    ("nameaddr.param,Foo", "<sip:a@b>;tag=1;tag=2;Foo", ""),
    ("nameaddr.param,nope", "<sip:a@b>", ""),
    ("nameaddr.uri", "<sip:a@b;lr>;tag=9", "sip:a@b;lr"),
    ("nameaddr.name", '"Bob \\"B\\"" <sip:b@h>', '"Bob \\"B\\""'),
]


@pytest.mark.parametrize(("text", "value", "expected"), NAMEADDR_CASES)
def test_nameaddr_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


# ---------------------------------------------------------------------------
# class csv
# ---------------------------------------------------------------------------

CSV_CASES = [
    ("csv.count", "a,b,c", 3),
    ("csv.value,0", "a,b,c", "a"),
    ("csv.value,2", "a,b,c", "c"),
    ("csv.value,-1", "a,b,c", "c"),
    ("csv.value,-3", "a,b,c", "a"),
    ("csv.count", '"a"b,c', 3),  # 1.6.4: the char after a quote is eaten
    ("csv.value,0", '"a"b,c', '"a"'),
    ("csv.value,1", '"a"b,c', ""),
    ("csv.count", "a,", 1),  # no empty trailing field
    ("csv.count", '"a",', 1),
    ("csv.count", '"x""y",z', 2),
    ("csv.value,0", '"x""y",z', '"x""y"'),
    ("csv.value,-1", '"x""y",z', "z"),
    ("csv.count", ",a", 2),
    ("csv.value,0", ",a", ""),
    ("csv.value,1", "a, b ,c", " b "),  # no trimming
    ("csv.count", '"a,b",c', 2),
    ("csv.value,0", '"a,b",c', '"a,b"'),
    ("csv.count", 12, 1),
]


@pytest.mark.parametrize(("text", "value", "expected"), CSV_CASES)
def test_csv_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


# ---------------------------------------------------------------------------
# class sdp
# ---------------------------------------------------------------------------

SDP = (
    "v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)

SDP_CASES = [
    ("sdp.line,m", SDP, "m=audio 1 RTP/AVP 0"),
    ("sdp.line,a", SDP, "a=rtpmap:0 PCMU/8000"),
    ("sdp.line,a,0", SDP, "a=rtpmap:0 PCMU/8000"),
    ("sdp.line,a,1", SDP, "a=sendrecv"),
    ("sdp.line,a,2", SDP, ""),
    ("sdp.line,v", SDP, "v=0"),
    ("sdp.line,o", SDP, "o=x 1 1 IN IP4 1.2.3.4"),
    ("sdp.line,z", SDP, ""),
    ("sdp.line,M", SDP, ""),  # the type letter is case-sensitive
    ("sdp.line, m , 0 ", SDP, "m=audio 1 RTP/AVP 0"),
    ("sdp.line,m", "v=0\nm=audio 1\n", "m=audio 1"),
    ("sdp.line,m", "v=0\r\nm=audio 1", "m=audio 1"),
    ("sdp.line,m", "v=0\r\nx m=1\r\n", ""),  # only at a line start
]


@pytest.mark.parametrize(("text", "value", "expected"), SDP_CASES)
def test_sdp_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


# ---------------------------------------------------------------------------
# class ip
# ---------------------------------------------------------------------------

IP_CASES = [
    ("ip.isip", "1.2.3.4", 1),
    ("ip.isip", "::1", 1),
    ("ip.isip", "[2001:db8::A:0]", 1),
    ("ip.isip", "1..2.3", 1),  # 1.6.4: empty octets are 0
    ("ip.isip", "256.1.1.1", 1),  # 1.6.4: octets wrap
    ("ip.isip", "1:2:3:4:5:6:7:", 1),  # 1.6.4
    ("ip.isip", "abc", 0),
    ("ip.isip", "1.2.3", 0),
    ("ip.isip", "1.2.3.4.5", 0),
    ("ip.isip", "1::2::3", 0),
    ("ip.isip", "1:2:3", 0),
    ("ip.isip", "1:2:3:4:5:6:7:8:9", 0),
    ("ip.isip", "[::1", 0),
    ("ip.isip", 5, 0),  # 1.6.4
    ("ip.pton", "1.2.3.4", "\x01\x02\x03\x04"),
    ("ip.pton", "::1", "\x00" * 15 + "\x01"),
    ("ip.pton", "[ff02::1:2]", "\xff\x02" + "\x00" * 10 + "\x00\x01\x00\x02"),
    ("ip.ntop", "\x01\x02\x03\x04", "1.2.3.4"),
    ("ip.ntop", "\xc0\xa8\x00\xff", "192.168.0.255"),
    ("ip.ntop", "\x20\x01\x0d\xb8" + "\x00" * 11 + "\x01", "2001:DB8:0:0:0:0:0:1"),
    ("ip.family", "\x01\x02\x03\x04", "INET"),
    ("ip.family", "\x00" * 16, "INET6"),
    ("ip.resolve", "1.2.3.4", "1.2.3.4"),
    ("ip.resolve", "::1", "0:0:0:0:0:0:0:1"),  # 1.6.4 formatting
    ("ip.resolve", "1..2.3", "1.0.2.3"),  # 1.6.4
    ("ip.resolve", "localhost", "127.0.0.1"),  # system resolver, /etc/hosts
]


@pytest.mark.parametrize(("text", "value", "expected"), IP_CASES)
def test_ip_methods(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


@pytest.mark.parametrize(
    ("ip", "text"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("::1", "0:0:0:0:0:0:0:1"),
        ("[2001:db8::A:0]", "2001:DB8:0:0:0:0:A:0"),  # 1.6.4
        ("1..2.3", "1.0.2.3"),  # 1.6.4
        ("256.1.1.1", "0.1.1.1"),  # 1.6.4
        ("1:2:3:4:5:6:7:", "1:2:3:4:5:6:7:0"),  # 1.6.4
        ("fe80::", "FE80:0:0:0:0:0:0:0"),
        ("::", "0:0:0:0:0:0:0:0"),
        ("1:2:3:4:5:6::7", "1:2:3:4:5:6:0:7"),
    ],
)
def test_ip_pton_ntop_chain(ip: str, text: str) -> None:
    both = chain(
        compile_transformation("ip.pton", fake_compile_pv),
        compile_transformation("ip.ntop", fake_compile_pv),
    )
    assert both(CTX, ip) == text


@pytest.fixture
def resolver() -> Any:
    yield set_resolver
    set_resolver(None)


def test_ip_resolve_uses_the_pluggable_resolver(resolver: Any) -> None:
    asked: list[str] = []
    resolver(lambda host: asked.append(host) or None)
    assert run("ip.resolve", "nowhere.invalid") == ""  # failure: empty text
    assert asked == ["nowhere.invalid"]
    resolver(lambda host: "2001:db8::1")
    assert run("ip.resolve", "v6.example") == "2001:DB8:0:0:0:0:0:1"
    resolver(lambda host: "junk")
    assert run("ip.resolve", "bad.example") == ""
    asked.clear()
    resolver(lambda host: asked.append(host) or None)
    assert run("ip.resolve", "10.0.0.1") == "10.0.0.1"  # IPs never reach it
    assert asked == []


# ---------------------------------------------------------------------------
# Run-time failures
# ---------------------------------------------------------------------------

ALL_METHODS = [
    "s.len",
    "s.int",
    "s.md5",
    "s.crc32",
    "s.encode.hexa",
    "s.decode.hexa",
    "s.escape.common",
    "s.unescape.common",
    "s.escape.user",
    "s.unescape.user",
    "s.escape.param",
    "s.unescape.param",
    "s.tolower",
    "s.toupper",
    "s.substr,0,1",
    "s.select,0,,",
    "uri.user",
    "uri.host",
    "uri.domain",
    "uri.passwd",
    "uri.port",
    "uri.params",
    "uri.param,a",
    "uri.headers",
    "uri.transport",
    "uri.ttl",
    "uri.uparam",
    "uri.maddr",
    "uri.method",
    "uri.lr",
    "uri.r2",
    "param.value,a",
    "param.valueat,0",
    "param.name,0",
    "param.count",
    "nameaddr.name",
    "nameaddr.uri",
    "nameaddr.len",
    "nameaddr.param,tag",
    "csv.count",
    "csv.value,0",
    "sdp.line,m",
    "sdp.line,m,1",
    "ip.pton",
    "ip.ntop",
    "ip.family",
    "ip.isip",
    "ip.resolve",
]


def test_every_documented_method_is_registered() -> None:
    assert class_names() == ["csv", "ip", "nameaddr", "param", "s", "sdp", "uri"]
    registered = {f"{c}.{m}" for c in class_names() for m in method_names(c)}
    documented = {t.split(",")[0] for t in ALL_METHODS}
    assert registered == documented


@pytest.mark.parametrize("text", ALL_METHODS)
def test_null_input_fails(text: str) -> None:
    with pytest.raises(TransformationError):
        run(text, None)


FAILURES = [
    ("s.int", "+5"),  # 1.6.4: only '-' is a sign
    ("s.int", " 5"),
    ("s.int", "5 "),
    ("s.int", "1a"),
    ("s.int", "\u0661"),  # a non-ASCII digit
    ("s.decode.hexa", "4G"),
    ("s.decode.hexa", "zz41"),
    ("s.escape.user", "caf\xe9"),
    ("s.escape.user", "a\tb"),
    ("s.escape.param", "\x7f"),
    ("s.unescape.user", "%7f"),  # not printable
    ("s.unescape.user", "%0a"),
    ("s.unescape.user", "%4"),
    ("s.unescape.user", "%zz"),
    ("s.unescape.user", "ab%"),
    ("s.unescape.param", "%g1"),
    ("s.substr,6,0", "abcdef"),
    ("s.substr,-7,0", "abcdef"),
    ("s.substr,0,0", ""),
    ("s.substr,9,1", 12345),
    ("uri.user", "http://x"),  # 1.6.4: not sip/sips/tel
    ("uri.user", "mailto:a@b"),
    ("uri.user", "not a uri"),
    ("uri.host", "sip:"),
    ("uri.host", ""),
    ("uri.user", 5),
    ("uri.param,a", "sip:h;a="),  # 1.6.4: parse_params wants a value
    ("param.count", "a;"),  # 1.6.4: trailing ';'
    ("param.value,a", "a="),
    ("param.value,a", 'a="x'),
    ("param.value,a", "a=1 b"),
    ("param.count", ""),
    ("nameaddr.uri", "<sip:a@b"),
    ("nameaddr.uri", "<>"),
    ("nameaddr.name", '"A" sip:x'),
    ("nameaddr.len", ""),
    ("nameaddr.uri", "<sip:a@b> junk"),
    ("csv.value,2", '"x""y",z'),  # out of range
    ("csv.value,-3", '"x""y",z'),  # 1.6.4
    ("csv.count", '"abc'),  # unterminated quote
    ("csv.count", '"a""'),
    ("csv.count", ""),
    ("sdp.line,m", ""),
    ("ip.pton", "abc"),
    ("ip.pton", ""),
    ("ip.pton", "1.2.3"),
    ("ip.ntop", "abc"),
    ("ip.ntop", "1.2.3.4"),
    ("ip.ntop", "\u0100bcd"),
    ("ip.family", "abc"),
    ("ip.isip", ""),
]


@pytest.mark.parametrize(("text", "value"), FAILURES)
def test_failures(text: str, value: Any) -> None:
    with pytest.raises(TransformationError):
        run(text, value)


# ---------------------------------------------------------------------------
# PV parameters
# ---------------------------------------------------------------------------

PV_CASES = [
    ("s.substr,$var(i),$var(i)", "abcdef", "cd"),
    ("s.substr,$var(neg),0", "abcdef", "f"),
    ("s.substr,$avp(i:1),0", "abcdef", "bcdef"),
    ("s.select,$var(i),,", "a,b,c", "c"),
    ("s.select,$var(neg), ", "a b", "b"),
    ("param.value,$var(n)", "a=1;b=2", "2"),
    ("param.value,$avp(s:name)", "c=9", "9"),
    ("param.value,$var(i)", "2=x", "x"),  # an int names the param "2"
    ("param.name,$var(i)", PL, "a"),
    ("param.valueat,$var(neg)", PL, "1"),
    ("uri.param,$var(n)", "sip:h;b=1", "1"),
    ("csv.value,$var(i)", "x,y,z", "z"),
    ("sdp.line,$var(t)", SDP, "a=rtpmap:0 PCMU/8000"),
    ("sdp.line,a,$avp(i:1)", SDP, "a=sendrecv"),
    # the §9 item 34 example: a PV parameter with its own transformation
    ("param.value,$(var(x){param.name,1})", "a=10;b=20;c=30", "20"),
    ("param.value, $(var(x){param.name,-1}) ", "a=10;b=20;c=30", "10"),
    # commas and braces inside a nested PV do not split the parameters
    ("s.substr,$(var(x){param.count}),0", "abcdef", "def"),
    ("s.substr,$(var(l){s.select,1,,}{s.int}),1", "abcdef", "c"),
    ("s.substr,1,$(var(l){s.select,-1,,}{s.int})", "abcdef", "bcde"),
]


@pytest.mark.parametrize(("text", "value", "expected"), PV_CASES)
def test_pv_parameters(text: str, value: Any, expected: Any) -> None:
    check(text, value, expected)


PV_FAILURES = [
    ("s.substr,$var(s),1", "abcdef"),  # "3" is text, not an int (as in 1.6)
    ("s.substr,$var(null),1", "abcdef"),
    ("s.substr,1,$var(neg)", "abcdef"),  # negative length at run time
    ("s.select,$var(n),,", "a,b"),
    ("param.value,$var(null)", PL),
    ("param.value,$var(e)", PL),  # empty name
    ("uri.param,$var(null)", "sip:h;a=1"),
    ("csv.value,$var(s)", "a,b"),
    ("sdp.line,$var(e)", SDP),
    ("sdp.line,m,$var(neg)", SDP),
    ("param.value,$(var(null){s.len})", PL),  # the nested PV fails
]


@pytest.mark.parametrize(("text", "value"), PV_FAILURES)
def test_pv_parameter_failures(text: str, value: Any) -> None:
    with pytest.raises(TransformationError):
        run(text, value)


def test_uri_param_without_params_does_not_read_the_pv() -> None:
    # 1.6 answers '' before looking at the parameter name
    assert run("uri.param,$var(null)", "sip:h") == ""


def test_pv_parameters_are_compiled_once_at_compile_time() -> None:
    COMPILED.clear()
    t = compile_transformation("s.substr,$var(i),$(var(l){s.select,0,,}{s.int})", fake_compile_pv)
    assert COMPILED == ["$var(i)", "$(var(l){s.select,0,,}{s.int})"]
    for _ in range(3):
        assert t(CTX, "abcdef") == "cdef"
    assert COMPILED == ["$var(i)", "$(var(l){s.select,0,,}{s.int})"]


def test_pv_values_are_read_per_call() -> None:
    t = compile_transformation("param.value,$var(n)", fake_compile_pv)
    assert t({"var:n": "a"}, PL) == "1"
    assert t({"var:n": "b"}, PL) == "2"


def test_compile_pv_errors_propagate() -> None:
    with pytest.raises(ValueError, match="unknown pseudo-variable"):
        compile_transformation("s.substr,$bogus,1", fake_compile_pv)


# ---------------------------------------------------------------------------
# Chaining
# ---------------------------------------------------------------------------


def compile_chain(*texts: str) -> Callable[[Any, Any], Any]:
    return chain(*(compile_transformation(t, fake_compile_pv) for t in texts))


def test_chain_left_to_right() -> None:
    t = compile_chain("nameaddr.uri", "uri.user", "s.toupper")
    assert t(CTX, '"Al" <sip:alice@h>;tag=1') == "ALICE"
    t = compile_chain("s.select,1,;", "param.value,b", "s.int")
    assert t(CTX, "x;a=1,b=42") == 0  # param stops at ',': b is missing, '' -> 0
    assert compile_chain("s.select,1,|", "param.value,b", "s.int")(CTX, "x|a=1;b=42") == 42
    assert compile_chain("s.encode.hexa", "s.decode.hexa", "s.len")(CTX, "abc") == 3
    assert compile_chain("uri.port", "s.len")(CTX, "sip:h:5060") == 4
    assert compile_chain("s.substr,1,0", "s.substr,1,0", "s.substr,1,0")(CTX, "abcdef") == "def"


def test_chain_failure_in_the_middle_fails_the_whole() -> None:
    t = compile_chain("s.select,5,,", "s.substr,0,1", "s.len")
    with pytest.raises(TransformationError):
        t(CTX, "a,b")  # select gives '' and substr of '' fails


def test_chain_of_one_is_the_transform() -> None:
    t = compile_transformation("s.len", fake_compile_pv)
    assert chain(t) is t


# ---------------------------------------------------------------------------
# Start-up errors
# ---------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("str.len", "did you mean 's.len'"),
    ("url.user", "did you mean 'uri.user'"),
    ("parm.count", "did you mean 'param.count'"),
    ("s.lenght", "did you mean 's.len'"),
    ("uri.usr", "did you mean 'uri.user'"),
    ("s.escape.usr", "did you mean 's.escape.user'"),
    ("json.parse", "known classes: csv, ip, nameaddr, param, s, sdp, uri"),
    ("s.frobnicate", "methods: crc32, decode.hexa"),
    ("s", "expected class.method"),
    (".len", "expected class.method"),
    ("s.", "missing method name"),
    ("{s.len}", "without|braces"),
    ("s.len,1", "s.len takes no parameters"),
    ("s.len,", "takes no parameters"),
    ("s.substr,1", "s.substr takes 2 parameters (offset, length), got 1"),
    ("s.substr,1,2,3", "takes 2 parameters"),
    ("s.substr,1,-1", "length must not be negative"),  # as in 1.6
    ("s.substr,a,1", "offset must be an integer or a pseudo-variable"),
    ("s.substr,,1", "missing offset"),
    ("s.substr,+,1", "must be an integer"),
    ("s.substr,1 2,3", "must be an integer"),
    ("s.substr,0x10,1", "must be an integer"),
    ("s.select,1", "takes 2 parameters"),
    ("s.select,1,", "missing separator"),
    ("s.select,1,ab", "single char"),
    ("s.select,1, ;", "single char"),
    ("s.select,x,;", "index must be an integer"),
    ("uri.param", "uri.param takes 1 parameter (parameter name), got 0"),
    ("uri.param,a b", "cannot contain blanks"),
    ("uri.param,", "missing parameter name"),
    ("uri.user,x", "no parameters"),
    ("param.value", "takes 1 parameter"),
    ("param.name,x", "index must be an integer"),
    ("param.valueat", "takes 1 parameter"),
    ("nameaddr.param,$var(x)", "must be a literal"),
    ("csv.value", "takes 1 parameter"),
    ("csv.value,1,2", "takes 1 parameter"),
    ("sdp.line", "1 or 2 parameters"),
    ("sdp.line,m,1,2", "1 or 2 parameters"),
    ("sdp.line,m,-1", "must not be negative"),
    ("ip.isip,1", "no parameters"),
    ("s.substr,$var(x)junk,1", "unexpected 'junk'"),
    ("s.substr,$(var(x),1", "unbalanced brackets"),
]


@pytest.mark.parametrize(("text", "message"), SYNTAX_ERRORS)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(TransformationSyntaxError, match=re.escape(message).replace("\\|", "|")):
        compile_transformation(text, fake_compile_pv)


def test_syntax_error_names_the_transformation() -> None:
    with pytest.raises(TransformationSyntaxError) as info:
        compile_transformation("s.substr, 1", fake_compile_pv)
    assert "{s.substr, 1}" in str(info.value)


# ---------------------------------------------------------------------------
# Parameter splitting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "raws"),
    [
        ("1,2", ["1", "2"]),
        ("1,,", ["1", "", ""]),
        (" 1 , 2 ", [" 1 ", " 2 "]),
        ("$var(a),x", ["$var(a)", "x"]),
        (" $var(a) , x", [" $var(a) ", " x"]),
        ("$(var(x){s.select,0,,}),2", ["$(var(x){s.select,0,,})", "2"]),
        ("$(avp(i:1)[0]{param.value,$(var(y){s.select,1,,})}),3", None),
        ("$hdr(Via)[1],3", ["$hdr(Via)[1]", "3"]),
        ("$(<request>ru{uri.user}),1", ["$(<request>ru{uri.user})", "1"]),
        ("$ru", ["$ru"]),
        ("$T_branch_idx,0", ["$T_branch_idx", "0"]),
        ("a(b,c", ["a(b", "c"]),  # literals are not bracket-aware, as in 1.6
    ],
)
def test_split_params(text: str, raws: list[str] | None) -> None:
    params = split_params(text, fake_compile_pv)
    if raws is None:
        raws = [text[: text.rindex(",")], "3"]
    assert [p.raw for p in params] == raws


def test_param_helpers() -> None:
    p = Param("  $var(x) ", fake_compile_pv)
    assert p.text == "$var(x)"
    assert p.is_pv
    q = Param(" 12 ", fake_compile_pv)
    assert q.text == "12"
    assert not q.is_pv


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tr, "_CLASSES", dict(tr._CLASSES))


def _compile_times(name: str, params: list[Param]) -> Callable[[Any, Any], Any]:
    tr.expect_params(name, params, 1, "count")
    get_n = tr.int_param(name, params[0], "count", non_negative=True)

    def times(ctx: Any, value: Any) -> str:
        if value is None:
            raise TransformationError(f"{name}: null value")
        return str(value) * get_n(ctx)

    return times


def test_register_a_module_class(scratch_registry: None) -> None:
    register_class("Rep", {"Times": _compile_times})
    assert "rep" in class_names()
    assert method_names("REP") == ["times"]
    assert run("rep.times,3", "ab") == "ababab"
    assert run("REP.TIMES,$var(i)", 7) == "77"
    with pytest.raises(TransformationSyntaxError, match="count must not be negative"):
        compile_transformation("rep.times,-1", fake_compile_pv)
    with pytest.raises(TransformationSyntaxError, match=re.escape("did you mean 'rep.times'")):
        compile_transformation("rep.time,1", fake_compile_pv)


def test_register_twice_needs_replace(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_class("s", {"len": _compile_times})
    register_class("s", {"rep": _compile_times}, replace=True)
    assert method_names("s") == ["rep"]


@pytest.mark.parametrize("name", ["", "a.b", "x y", "{x}"])
def test_register_rejects_bad_class_names(scratch_registry: None, name: str) -> None:
    with pytest.raises(ValueError):
        register_class(name, {"m": _compile_times})


def test_register_rejects_empty_method_table(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="no methods"):
        register_class("empty", {})


def test_compatibility_notes_are_listed() -> None:
    notes = " ".join(tr.COMPATIBILITY_NOTES)
    assert "crc32" in notes
    assert "param.valueat" in notes
    assert "nameaddr.len" in notes
