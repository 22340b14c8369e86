"""The core pseudo-variable table (spec 3.8, 3.9, 7.2-7.4; checklist 24-28, 30).

Every PV is compiled through `CompileEnv.compile_pv`, so the tests also go
through the token parser, the index handling and transformations.
"""

from __future__ import annotations

import time

import pytest

from sipserver.core.context import MAX_BRANCHES, Branch, MsgContext
from sipserver.core.runtime import Runtime, SocketInfo
from sipserver.lang.env import CompileEnv, CompileError
from sipserver.lang.pv import PV, IntStr, PVError
from sipserver.lang.pvars import CORE_AVP_ALIASES, CORE_PVARS, core_pv_table
from sipserver.sip.digest import parse_credentials
from sipserver.sip.message import parse_message

# ---------------------------------------------------------------- messages

INVITE = (
    "INVITE sip:bob:secret@example.com:5070;transport=tcp;maddr=10.0.0.9 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"
    "v: SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3\r\n"
    'From: "Alice A" <sip:alice@atlanta.com>;tag=1928301774\r\n'
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Max-Forwards: 70\r\n"
    'Contact: "Al" <sip:alice@pc33.atlanta.com>;q=0.7;expires=3600, <sip:a2@h2>\r\n'
    'm: sip:a3@h3;methods="INVITE";received=sip:1.2.3.4\r\n'
    "User-Agent: Test/1.0\r\n"
    'P-Asserted-Identity: "Boss" <sip:boss@corp.com>\r\n'
    'P-Preferred-Identity: "Pref" <sip:pref@corp.example>\r\n'
    'Remote-Party-ID: "R" <sip:rpid@corp.com>;party=calling\r\n'
    "Diversion: <sip:div@corp.com>;reason=unconditional;privacy=full\r\n"
    "Refer-To: <sip:carol@chicago.com>\r\n"
    'Proxy-Authorization: Digest username="alice@atlanta.com", realm="atlanta.com", '
    'nonce="n0nce", uri="sip:bob@biloxi.com", response="0123456789abcdef0123456789abcdef"\r\n'
    "X-Custom: one\r\n"
    "x-custom: two\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "abcd"
).encode("latin-1")

# Only what parse_message insists on; no Content-Length (UDP allows it).
BARE = (
    "OPTIONS sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
    "From: sip:anon@example.com\r\n"
    "To: <sip:example.com>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 7 OPTIONS\r\n"
    "\r\n"
).encode("latin-1")

REPLY = (
    "SIP/2.0 486 Busy Here\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
    "From: <sip:alice@atlanta.com>;tag=a\r\n"
    "To: <sip:bob@biloxi.com>;tag=b\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
).encode("latin-1")

RCV = SocketInfo("udp", "192.0.2.1", 5060)
SOCKETS = [
    RCV,
    SocketInfo("tcp", "192.0.2.1", 5060),
    SocketInfo("tls", "192.0.2.1", 5061),
    SocketInfo("udp", "2001:db8::1", 5080),
    SocketInfo("udp", "10.1.1.1", 5060, adv_host="203.0.113.7", adv_port=5090),
]


def make_ctx(data: bytes = INVITE, rt: Runtime | None = None, **kw) -> MsgContext:
    rt = rt or Runtime(sockets=SOCKETS)
    kw.setdefault("src_ip", "10.0.0.1")
    kw.setdefault("src_port", 5062)
    kw.setdefault("rcv", RCV)
    return MsgContext(rt, parse_message(data), **kw)


ENV = CompileEnv(pv_table=core_pv_table(), avp_aliases={"caller": "who", "Counter": 42})


def pv(text: str) -> PV:
    return ENV.compile_pv(text)


def get(text: str, ctx: MsgContext) -> object:
    return pv(text).get(ctx)


@pytest.fixture
def ctx() -> MsgContext:
    return make_ctx()


@pytest.fixture
def bare() -> MsgContext:
    return make_ctx(BARE)


@pytest.fixture
def reply() -> MsgContext:
    return make_ctx(REPLY)


# ---------------------------------------------------------------- the table

ALL_NAMES = [
    "avp", "hdr", "var", "ai", "adu", "ar", "au", "ad", "an", "auth.resp", "aU", "Au", "bf",
    "bF", "branch", "ci", "cl", "cs", "ct", "ct.fields", "cT", "dd", "di", "dir", "dip", "dp",
    "dP", "ds", "du", "duri", "err.class", "err.level", "err.info", "err.rcode", "err.rreason",
    "fd", "from.domain", "fn", "fs", "ft", "fu", "from", "fU", "from.user", "mb", "mf", "mF",
    "mi", "ml", "od", "op", "oP", "ou", "ouri", "oU", "path", "pd", "pn", "pp", "pr", "proto",
    "pu", "pU", "rb", "rc", "retcode", "rd", "ruri.domain", "re", "rm", "rp", "rP", "rr", "rs",
    "rt", "ru", "ruri", "rU", "ruri.user", "Ri", "Rp", "sf", "sF", "src_ip", "si", "sp", "td",
    "to.domain", "time", "tn", "tt", "tu", "to", "tU", "to.user", "Tf", "Ts", "Tsm", "TS", "ua",
    "C", "argv",
]


def test_table_has_every_core_name() -> None:
    assert set(CORE_PVARS) == set(ALL_NAMES)
    t1, t2 = core_pv_table(), core_pv_table()
    assert t1.makers == CORE_PVARS and t1.makers is not t2.makers
    t1.add("x", CORE_PVARS["ru"])
    assert "x" not in t2.makers


def test_unknown_name_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="unknown pseudo-variable"):
        pv("$nosuchpv")


@pytest.mark.parametrize(
    "text",
    ["$ru(x)", "$ct(x)", "$Ts(1)", "$rc(a)", "$fu(x)", "$err.class(x)"],
)
def test_names_without_inner_reject_one(text: str) -> None:
    with pytest.raises(CompileError, match="takes no name"):
        pv(text)


# ---------------------------------------------------------------- reading a normal INVITE

READS = [
    ("$ru", "sip:bob:secret@example.com:5070;transport=tcp;maddr=10.0.0.9"),
    ("$ruri", "sip:bob:secret@example.com:5070;transport=tcp;maddr=10.0.0.9"),
    ("$rU", "bob"),
    ("$ruri.user", "bob"),
    ("$rd", "example.com"),
    ("$ruri.domain", "example.com"),
    ("$rp", "5070"),
    ("$rP", "tcp"),
    ("$ou", "sip:bob:secret@example.com:5070;transport=tcp;maddr=10.0.0.9"),
    ("$ouri", "sip:bob:secret@example.com:5070;transport=tcp;maddr=10.0.0.9"),
    ("$oU", "bob"),
    ("$od", "example.com"),
    ("$op", "5070"),
    ("$oP", "tcp"),
    ("$fu", "sip:alice@atlanta.com"),
    ("$from", "sip:alice@atlanta.com"),
    ("$fU", "alice"),
    ("$from.user", "alice"),
    ("$fd", "atlanta.com"),
    ("$from.domain", "atlanta.com"),
    ("$fn", '"Alice A"'),
    ("$ft", "1928301774"),
    ("$tu", "sip:bob@biloxi.com"),
    ("$to", "sip:bob@biloxi.com"),
    ("$tU", "bob"),
    ("$to.user", "bob"),
    ("$td", "biloxi.com"),
    ("$to.domain", "biloxi.com"),
    ("$tn", "Bob"),
    ("$ci", "a84b4c76e66710@pc33.atlanta.com"),
    ("$cs", "314159"),
    ("$cl", 4),
    ("$cT", "application/sdp"),
    ("$rb", "abcd"),
    ("$ua", "Test/1.0"),
    ("$ai", "sip:boss@corp.com"),
    ("$pu", "sip:pref@corp.example"),
    ("$pU", "pref"),
    ("$pd", "corp.example"),
    ("$pn", '"Pref"'),
    ("$re", "sip:rpid@corp.com"),
    ("$rt", "sip:carol@chicago.com"),
    ("$di", "sip:div@corp.com"),
    ("$dir", "unconditional"),
    ("$dip", "full"),
    ("$rm", "INVITE"),
    ("$si", "10.0.0.1"),
    ("$src_ip", "10.0.0.1"),
    ("$sp", 5062),
    ("$Ri", "192.0.2.1"),
    ("$Rp", 5060),
    ("$pr", "udp"),
    ("$proto", "udp"),
    ("$ml", len(INVITE)),
    ("$mb", INVITE.decode("latin-1")),
    ("$mf", 0),
    ("$mF", "00000000"),
    ("$sf", 0),
    ("$sF", "00000000"),
    ("$bf", 0),
    ("$bF", "00000000"),
    ("$rc", 1),
    ("$retcode", 1),
    ("$mi", 0),
    ("$err.class", 0),
    ("$err.level", 0),
    ("$err.rcode", 0),
    ("$err.info", ""),
    ("$err.rreason", ""),
    # credentials: the documented meaning (1.6 mixed up $aU/$an/$auth.resp)
    ("$aU", "alice@atlanta.com"),
    ("$au", "alice"),
    ("$ad", "atlanta.com"),
    ("$ar", "atlanta.com"),
    ("$an", "n0nce"),
    ("$auth.resp", "0123456789abcdef0123456789abcdef"),
    ("$adu", "sip:bob@biloxi.com"),
    ("$Au", "alice@atlanta.com"),  # From user@host: nothing authorized yet
    # nothing set yet
    ("$du", None),
    ("$duri", None),
    ("$dd", None),
    ("$dp", None),
    ("$dP", None),
    ("$fs", None),
    ("$ds", None),
    ("$branch", None),
    ("$path", None),
    ("$rs", None),
    ("$rr", None),
    ("$tt", None),
]


@pytest.mark.parametrize(("text", "expected"), READS)
def test_read_on_invite(text: str, expected: object, ctx: MsgContext) -> None:
    value = get(text, ctx)
    assert value == expected
    assert type(value) is type(expected) or isinstance(value, IntStr)


@pytest.mark.parametrize(
    ("text", "text_value", "ival"),
    [
        ("$rp", "5070", 5070),
        ("$rP", "tcp", 2),
        ("$op", "5070", 5070),
        ("$oP", "tcp", 2),
        ("$pr", "udp", 1),
        ("$rm", "INVITE", 1),
        ("$mF", "00000000", 0),
    ],
)
def test_str_int_values(text: str, text_value: str, ival: int, ctx: MsgContext) -> None:
    value = get(text, ctx)
    assert isinstance(value, IntStr)
    assert value == text_value and value.ival == ival


INT_TYPED = [
    "cl", "ml", "mf", "sf", "bf", "rc", "retcode", "mi", "pp", "sp", "Rp", "rs", "Ts", "Tsm",
    "TS", "err.class", "err.level", "err.rcode",
]


@pytest.mark.parametrize("name", INT_TYPED)
def test_int_typed_pvs(name: str) -> None:
    assert pv("$" + name).int_typed


@pytest.mark.parametrize("name", ["ru", "rp", "mF", "sF", "bF", "var(x)", "avp(s:x)", "hdr(To)"])
def test_not_int_typed(name: str) -> None:
    assert not pv("$" + name).int_typed


# ---------------------------------------------------------------- missing values

MISSING = [
    ("$rU", None),  # sip:example.com has no user
    ("$oU", None),
    ("$rp", "5060"),  # default port
    ("$op", "5060"),
    ("$rP", "udp"),  # default transport
    ("$oP", "udp"),
    ("$fn", None),
    ("$ft", None),
    ("$tU", None),
    ("$tn", None),
    ("$cl", None),
    ("$cT", None),
    ("$rb", None),  # no Content-Length header: null, as 1.6
    ("$ua", None),
    ("$ai", None),
    ("$pu", None),
    ("$pU", None),
    ("$pd", None),
    ("$pn", None),
    ("$re", None),
    ("$rt", None),
    ("$di", None),
    ("$dir", None),
    ("$dip", None),
    ("$ct", None),
    ("$ct.fields(uri)", None),
    ("$(ct[*])", None),
    ("$hdr(X-Nothing)", None),
    ("$(hdr(X-Nothing)[*])", None),
    ("$aU", None),
    ("$au", None),
    ("$adu", None),
    ("$an", None),
    ("$auth.resp", None),
    ("$Au", "anon@example.com"),
    ("$rm", "OPTIONS"),
    ("$cs", "7"),
]


@pytest.mark.parametrize(("text", "expected"), MISSING)
def test_missing_values(text: str, expected: object, bare: MsgContext) -> None:
    assert get(text, bare) == expected


def test_body_with_content_length_zero_is_empty_not_null(reply: MsgContext) -> None:
    assert get("$rb", reply) == ""
    assert get("$cl", reply) == 0


def test_sips_default_port() -> None:
    data = BARE.replace(b"OPTIONS sip:example.com", b"OPTIONS sips:example.com")
    c = make_ctx(data)
    assert get("$rp", c) == "5061" and get("$rp", c).ival == 5061
    assert get("$op", c) == "5061"
    assert get("$rP", c) == "udp"


def test_no_receiving_socket(bare: MsgContext) -> None:
    c = make_ctx(BARE, rcv=None)
    assert get("$Ri", c) is None
    assert get("$Rp", c) is None


def test_unknown_protocol_prints_null_text(bare: MsgContext) -> None:
    bare.proto = "ws"
    assert get("$pr", bare) == "<null>"


def test_partial_credentials() -> None:
    data = BARE.replace(
        b"\r\n\r\n", b'\r\nAuthorization: Digest username="joe", realm="r"\r\n\r\n'
    )
    c = make_ctx(data)
    assert get("$aU", c) == "joe"
    assert get("$au", c) == "joe"
    assert get("$ad", c) == ""  # no @domain: empty, not null (1.6)
    assert get("$an", c) == ""
    assert get("$adu", c) is None  # empty uri: null
    assert get("$Au", c) == "anon@example.com"


def test_credentials_ignored_on_ack_and_cancel() -> None:
    data = INVITE.replace(b"INVITE sip:", b"ACK sip:").replace(b"314159 INVITE", b"314159 ACK")
    c = make_ctx(data)
    assert get("$au", c) is None


def test_proxy_authorization_wins_over_authorization() -> None:
    data = INVITE.replace(
        b"X-Custom: one", b'Authorization: Digest username="other", realm="x", nonce="z"'
    )
    c = make_ctx(data)
    assert get("$au", c) == "alice"


def test_non_digest_credentials_are_null() -> None:
    data = BARE.replace(b"\r\n\r\n", b"\r\nAuthorization: Basic YWxhZGRpbjpvcGVu\r\n\r\n")
    assert get("$au", make_ctx(data)) is None


def test_acc_user_from_authorized_credentials() -> None:
    class AuthCtx(MsgContext):  # the auth module records accepted credentials here
        pass

    c = AuthCtx(Runtime(), parse_message(INVITE))
    c.auth_cred = parse_credentials('Digest username="joe", realm="corp.com", nonce="n"')
    assert get("$Au", c) == "joe@corp.com"
    c.auth_cred = parse_credentials('Digest username="joe", nonce="n"')
    assert get("$Au", c) == "joe"


def test_unparsable_header_is_an_error_not_null() -> None:
    data = BARE.replace(b"\r\n\r\n", b"\r\nP-Asserted-Identity: <sip:x@y\r\n\r\n")
    c = make_ctx(data)
    with pytest.raises(PVError):
        get("$ai", c)
    data = BARE.replace(b"\r\n\r\n", b"\r\nContact: <sip:a@b>;q=1, <<bad\r\n\r\n")
    with pytest.raises(PVError):
        get("$ct", make_ctx(data))
    data = BARE.replace(b"\r\n\r\n", b"\r\nProxy-Authorization: Digest\r\n\r\n")
    with pytest.raises(PVError):
        get("$au", make_ctx(data))


def test_unparsable_uri_part_is_an_error(ctx: MsgContext) -> None:
    ctx.new_uri = "not a uri"
    assert get("$ru", ctx) == "not a uri"  # stored as given (1.6 set_ruri)
    for text in ("$rU", "$rd", "$rp", "$rP"):
        with pytest.raises(PVError):
            get(text, ctx)
    assert get("$oU", ctx) == "bob"


# ---------------------------------------------------------------- replies


REPLY_READS = [
    ("$rs", 486),
    ("$rr", "Busy Here"),
    ("$rm", "INVITE"),  # the CSeq method
    ("$ru", None),
    ("$rU", None),
    ("$rd", None),
    ("$rp", None),
    ("$rP", None),
    ("$ou", None),
    ("$oU", None),
    ("$od", None),
    ("$op", None),
    ("$oP", None),
    ("$tt", "b"),
    ("$ft", "a"),
    ("$ci", "c1"),
    ("$branch", None),
]


@pytest.mark.parametrize(("text", "expected"), REPLY_READS)
def test_read_on_reply(text: str, expected: object, reply: MsgContext) -> None:
    assert get(text, reply) == expected


def test_reply_method_id(reply: MsgContext) -> None:
    assert get("$rm", reply).ival == 1


@pytest.mark.parametrize(
    ("method", "ival"),
    [("ACK", 4), ("BYE", 8), ("REGISTER", 128), ("PUBLISH", 8192), ("FOO", 16384)],
)
def test_method_ids(method: str, ival: int) -> None:
    data = BARE.replace(b"OPTIONS", method.encode())
    assert get("$rm", make_ctx(data)).ival == ival


@pytest.mark.parametrize(
    ("text", "value"),
    [("$ru", "sip:x@y"), ("$rU", "x"), ("$rd", "y"), ("$rp", 5062), ("$branch", "sip:a@b")],
)
def test_rewrites_fail_on_replies(text: str, value: object, reply: MsgContext) -> None:
    with pytest.raises(PVError):
        pv(text).set(reply, value)


# ---------------------------------------------------------------- $var


def test_var_default_zero_and_never_null(ctx: MsgContext) -> None:
    assert get("$var(x)", ctx) == 0
    p = pv("$var(x)")
    p.set(ctx, "abc")
    assert p.get(ctx) == "abc"
    p.set(ctx, None)
    assert p.get(ctx) == 0 and type(p.get(ctx)) is int
    p.set(ctx, 7, ":=")
    assert p.get(ctx) == 7


def test_var_is_per_process_not_per_message(ctx: MsgContext) -> None:
    pv("$var(keep)").set(ctx, 5)
    other = MsgContext(ctx.rt, parse_message(BARE))
    assert get("$var(keep)", other) == 5
    assert get("$var(keep)", make_ctx()) == 0  # another process (runtime)


def test_var_stores_str_int_as_text(ctx: MsgContext) -> None:
    p = pv("$var(p)")
    p.set(ctx, get("$rp", ctx))
    v = p.get(ctx)
    assert v == "5070" and type(v) is str


def test_var_names_are_exact(ctx: MsgContext) -> None:
    pv("$var(A)").set(ctx, 1)
    assert get("$var(a)", ctx) == 0


def test_var_needs_a_name() -> None:
    with pytest.raises(CompileError):
        pv("$var")


# ---------------------------------------------------------------- $avp


def test_avp_stack_example_of_the_spec(ctx: MsgContext) -> None:
    p = pv("$avp(i:1)")
    p.set(ctx, 1)
    p.set(ctx, 2)
    p.set(ctx, "three")
    assert get("$avp(i:1)", ctx) == "three"
    assert get("$(avp(i:1)[1])", ctx) == 2
    assert get("$(avp(i:1)[2])", ctx) == 1
    assert get("$(avp(i:1)[-1])", ctx) == 1
    assert get("$(avp(i:1)[*])", ctx) == "three, 2, 1, "
    assert get("$(avp(i:1)[3])", ctx) is None
    assert get("$(avp(i:1)[-4])", ctx) is None
    assert get("$(avp(i:1)[*]{s.len})", ctx) == len("three, 2, 1, ")


def test_avp_missing_is_null(ctx: MsgContext) -> None:
    for text in ("$avp(s:none)", "$(avp(s:none)[*])", "$(avp(s:none)[1])"):
        assert get(text, ctx) is None


def test_avp_names(ctx: MsgContext) -> None:
    pv("$avp(s:x)").set(ctx, "v")
    assert ctx.avps.get("x") == "v"
    pv("$avp(I:10)").set(ctx, 1)
    assert ctx.avps.get(10) == 1
    assert get("$avp(i3:10)", ctx) == 1  # flag digits accepted
    assert get("$avp(S2:x)", ctx) == "v"
    pv("$avp(caller)").set(ctx, "c")  # alias -> s:who
    assert ctx.avps.get("who") == "c"
    assert get("$avp(CALLER)", ctx) == "c"  # aliases match in any case
    pv("$avp(counter)").set(ctx, 3)  # alias -> i:42
    assert ctx.avps.get(42) == 3
    pv("$avp(serial_branch)").set(ctx, "s")  # core alias
    assert ctx.avps.get(CORE_AVP_ALIASES["serial_branch"]) == "s"


def test_avp_value_types(ctx: MsgContext) -> None:
    p = pv("$avp(s:t)")
    p.set(ctx, 5)
    assert type(p.get(ctx)) is int
    p.set(ctx, get("$rp", ctx))  # str+int is stored as its text
    v = p.get(ctx)
    assert v == "5070" and type(v) is str


def test_avp_writes_and_null_rules(ctx: MsgContext) -> None:
    top = pv("$avp(s:w)")
    for v in (1, 2, 3, 4):
        top.set(ctx, v)
    assert ctx.avps.get_all("w") == [4, 3, 2, 1]
    pv("$(avp(s:w)[1])").set(ctx, "x")  # replace the 2nd
    assert ctx.avps.get_all("w") == [4, "x", 2, 1]
    pv("$(avp(s:w)[0])").set(ctx, "y")  # an explicit [0] replaces too
    assert ctx.avps.get_all("w") == ["y", "x", 2, 1]
    with pytest.raises(PVError):
        pv("$(avp(s:w)[9])").set(ctx, "z")
    with pytest.raises(PVError):
        pv("$(avp(s:w)[-1])").set(ctx, "z")
    assert ctx.avps.get_all("w") == ["y", "x", 2, 1]
    top.set(ctx, None)  # NULL deletes the top one
    assert ctx.avps.get_all("w") == ["x", 2, 1]
    pv("$(avp(s:w)[1])").set(ctx, None)  # ... or the indexed one
    assert ctx.avps.get_all("w") == ["x", 1]
    pv("$(avp(s:w)[7])").set(ctx, None)  # missing index: nothing happens
    assert ctx.avps.get_all("w") == ["x", 1]
    with pytest.raises(PVError):
        pv("$(avp(s:w)[-1])").set(ctx, None)
    top.set(ctx, "n", ":=")  # := deletes all, then pushes
    assert ctx.avps.get_all("w") == ["n"]
    for v in (1, 2):
        top.set(ctx, v)
    pv("$(avp(s:w)[*])").set(ctx, None)  # [*] = NULL deletes all
    assert "w" not in ctx.avps
    for v in (1, 2):
        top.set(ctx, v)
    top.set(ctx, None, ":=")  # := NULL deletes all
    assert "w" not in ctx.avps
    for v in (1, 2):
        top.set(ctx, v)
    pv("$(avp(s:w)[*])").set(ctx, 9)  # [*] = v: delete all, push
    assert ctx.avps.get_all("w") == [9]


def test_avp_dynamic_name(ctx: MsgContext) -> None:
    pv("$var(n)").set(ctx, 7)
    pv("$avp($var(n))").set(ctx, "by-int")
    assert ctx.avps.get(7) == "by-int"
    pv("$var(n)").set(ctx, "nm")
    pv("$avp($var(n))").set(ctx, "by-str")
    assert ctx.avps.get("nm") == "by-str"
    assert get("$avp($var(n))", ctx) == "by-str"
    pv("$var(n)").set(ctx, "")
    with pytest.raises(PVError):
        get("$avp($var(n))", ctx)


def test_avp_dynamic_index(ctx: MsgContext) -> None:
    for v in ("a", "b", "c"):
        pv("$avp(s:d)").set(ctx, v)
    ix = pv("$var(i)")
    ix.set(ctx, 2)
    assert get("$(avp(s:d)[$var(i)])", ctx) == "a"
    ix.set(ctx, -3)
    assert get("$(avp(s:d)[$var(i)])", ctx) == "c"
    ix.set(ctx, 1)
    pv("$(avp(s:d)[$var(i)])").set(ctx, "B")
    assert ctx.avps.get_all("d") == ["c", "B", "a"]
    ix.set(ctx, "1")  # a string index is an error
    with pytest.raises(PVError):
        get("$(avp(s:d)[$var(i)])", ctx)
    pv("$var(j)").set(ctx, get("$rp", ctx))  # text "5070": still no integer
    with pytest.raises(PVError):
        get("$(avp(s:d)[$var(j)])", ctx)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$avp(foo)", r"use \$avp\(s:name\).*avp_aliases"),
        ("$avp(x:1)", "use s: or i:"),
        ("$avp(:1)", "use s: or i:"),
        ("$avp(i:abc)", "not a number"),
        ("$avp(i:)", "empty AVP name"),
        ("$avp(s:)", "empty AVP name"),
        ("$avp(ix:1)", "bad AVP flags"),
    ],
)
def test_avp_bad_names(text: str, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        pv(text)


def test_avp_is_indexed_and_writable() -> None:
    p = pv("$avp(s:x)")
    assert p.indexed and p.writable


# ---------------------------------------------------------------- $hdr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$hdr(Via)", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2"),
        ("$hdr(via)", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2"),
        ("$hdr(v)", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2"),
        ("$(hdr(Via)[1])", "SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3"),
        ("$(hdr(Via)[-1])", "SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3"),
        ("$(hdr(Via)[-2])", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2"),
        ("$(hdr(Via)[2])", None),
        ("$(hdr(Via)[-3])", None),
        ("$(hdr(Via)[*])",
         "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2, "
         "SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3"),
        ("$hdr(f)", '"Alice A" <sip:alice@atlanta.com>;tag=1928301774'),
        ("$hdr(FROM)", '"Alice A" <sip:alice@atlanta.com>;tag=1928301774'),
        ("$hdr(Contact)", '"Al" <sip:alice@pc33.atlanta.com>;q=0.7;expires=3600, <sip:a2@h2>'),
        ("$(hdr(m)[1])", 'sip:a3@h3;methods="INVITE";received=sip:1.2.3.4'),
        ("$hdr(X-CUSTOM)", "one"),
        ("$(hdr(x-custom)[*])", "one, two"),
        ("$(hdr(X-Custom)[1]{s.len})", 3),
        ("$(hdr(To){nameaddr.uri}{uri.host})", "biloxi.com"),
        ("$hdr(Via)[1]", "SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3"),  # superset form
    ],
)
def test_hdr(text: str, expected: object, ctx: MsgContext) -> None:
    assert get(text, ctx) == expected


def test_hdr_dynamic_name_and_index(ctx: MsgContext) -> None:
    pv("$var(h)").set(ctx, "v")
    pv("$var(i)").set(ctx, 1)
    assert get("$(hdr($var(h))[$var(i)])", ctx) == "SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3"
    pv("$var(h)").set(ctx, "User-Agent")
    assert get("$hdr($var(h))", ctx) == "Test/1.0"
    pv("$var(h)").set(ctx, "")
    with pytest.raises(PVError):
        get("$hdr($var(h))", ctx)


@pytest.mark.parametrize("text", ["$hdr(a b)", "$hdr(X:Y)", "$hdr(<x>)"])
def test_hdr_bad_names(text: str) -> None:
    with pytest.raises(CompileError, match="bad header name"):
        pv(text)


def test_hdr_is_read_only(ctx: MsgContext) -> None:
    p = pv("$hdr(X-Custom)")
    assert not p.writable and p.indexed
    with pytest.raises(PVError):
        p.set(ctx, "x")


# ---------------------------------------------------------------- $ct


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$ct", '"Al" <sip:alice@pc33.atlanta.com>;q=0.7;expires=3600'),
        ("$(ct[0])", '"Al" <sip:alice@pc33.atlanta.com>;q=0.7;expires=3600'),
        ("$(ct[1])", "<sip:a2@h2>"),
        ("$(ct[2])", 'sip:a3@h3;methods="INVITE";received=sip:1.2.3.4'),
        ("$(ct[-1])", 'sip:a3@h3;methods="INVITE";received=sip:1.2.3.4'),
        ("$(ct[-3])", '"Al" <sip:alice@pc33.atlanta.com>;q=0.7;expires=3600'),
        ("$(ct[3])", None),
        ("$(ct[-4])", None),
        ("$(ct[*])",
         '"Al" <sip:alice@pc33.atlanta.com>;q=0.7;expires=3600, <sip:a2@h2>, '
         'sip:a3@h3;methods="INVITE";received=sip:1.2.3.4'),
        ("$ct.fields(name)", '"Al"'),
        ("$ct.fields(uri)", "sip:alice@pc33.atlanta.com"),
        ("$ct.fields(URI)", "sip:alice@pc33.atlanta.com"),
        ("$ct.fields(q)", "0.7"),
        ("$ct.fields(expires)", "3600"),
        ("$ct.fields(methods)", None),
        ("$ct.fields(received)", None),
        ("$ct.fields(params)", "q=0.7;expires=3600"),
        ("$(ct.fields(name)[1])", None),
        ("$(ct.fields(params)[1])", None),
        ("$(ct.fields(uri)[1])", "sip:a2@h2"),
        ("$(ct.fields(methods)[2])", '"INVITE"'),
        ("$(ct.fields(received)[-1])", "sip:1.2.3.4"),
        ("$(ct.fields(uri)[*])", "sip:alice@pc33.atlanta.com, sip:a2@h2, sip:a3@h3"),
        ("$(ct.fields(uri)[1]{uri.host})", "h2"),
    ],
)
def test_contact(text: str, expected: object, ctx: MsgContext) -> None:
    assert get(text, ctx) == expected


def test_contact_star() -> None:
    data = BARE.replace(b"\r\n\r\n", b"\r\nContact: *\r\n\r\n")
    c = make_ctx(data)
    assert get("$ct", c) == "*"
    assert get("$ct.fields(uri)", c) is None
    assert get("$(ct[1])", c) is None


def test_contact_dynamic_index(ctx: MsgContext) -> None:
    pv("$var(i)").set(ctx, -2)
    assert get("$(ct.fields(uri)[$var(i)])", ctx) == "sip:a2@h2"


@pytest.mark.parametrize("text", ["$ct.fields(foo)", "$ct.fields", "$ct.fields($var(x))"])
def test_contact_bad_field(text: str) -> None:
    with pytest.raises(CompileError):
        pv(text)


# ---------------------------------------------------------------- R-URI writes


def test_ru_write(ctx: MsgContext) -> None:
    p = pv("$ru")
    p.set(ctx, "sip:carol@chicago.com")
    assert ctx.new_uri == "sip:carol@chicago.com"
    assert get("$ru", ctx) == "sip:carol@chicago.com"
    assert get("$rU", ctx) == "carol"
    assert get("$rp", ctx) == "5060"
    assert get("$ou", ctx).startswith("sip:bob:secret@example.com")  # $o* unchanged
    assert get("$oU", ctx) == "bob"
    with pytest.raises(PVError):
        p.set(ctx, None)  # $ru rejects NULL
    with pytest.raises(PVError):
        p.set(ctx, 5)  # needs a string
    assert ctx.new_uri == "sip:carol@chicago.com"


def test_ru_write_takes_str_int(ctx: MsgContext) -> None:
    pv("$ru").set(ctx, IntStr("sip:x@y", 3))
    assert ctx.new_uri == "sip:x@y" and type(ctx.new_uri) is str


def test_ru_user_write(ctx: MsgContext) -> None:
    p = pv("$rU")
    p.set(ctx, "carol")
    assert ctx.new_uri == "sip:carol:secret@example.com:5070;transport=tcp;maddr=10.0.0.9"
    p.set(ctx, None)  # fixed: removes the user (1.6 failed)
    assert ctx.new_uri == "sip:example.com:5070;transport=tcp;maddr=10.0.0.9"
    assert get("$rU", ctx) is None
    p.set(ctx, "dave")
    assert ctx.new_uri == "sip:dave@example.com:5070;transport=tcp;maddr=10.0.0.9"
    p.set(ctx, "")
    assert ctx.new_uri == "sip:example.com:5070;transport=tcp;maddr=10.0.0.9"
    with pytest.raises(PVError):
        p.set(ctx, 12)


def test_ru_user_write_bad_user_fails_unchanged(ctx: MsgContext) -> None:
    with pytest.raises(PVError):
        pv("$rU").set(ctx, "a b")
    assert ctx.new_uri is None


def test_ru_host_write_drops_maddr(ctx: MsgContext) -> None:
    p = pv("$rd")
    p.set(ctx, "new.example.org")
    assert ctx.new_uri == "sip:bob:secret@new.example.org:5070;transport=tcp"
    assert get("$rd", ctx) == "new.example.org"
    with pytest.raises(PVError):
        p.set(ctx, None)  # $rd rejects NULL
    assert get("$od", ctx) == "example.com"


def test_ru_port_write(ctx: MsgContext) -> None:
    p = pv("$rp")
    p.set(ctx, 5080)
    assert ctx.new_uri == "sip:bob:secret@example.com:5080;transport=tcp;maddr=10.0.0.9"
    p.set(ctx, "5090")
    assert get("$rp", ctx) == "5090" and get("$rp", ctx).ival == 5090
    p.set(ctx, None)  # NULL removes the port
    assert ctx.new_uri == "sip:bob:secret@example.com;transport=tcp;maddr=10.0.0.9"
    assert get("$rp", ctx) == "5060"
    p.set(ctx, 5070)
    p.set(ctx, "")
    assert get("$rp", ctx) == "5060"
    for bad in ("abc", 70000, -1):
        with pytest.raises(PVError):
            p.set(ctx, bad)


@pytest.mark.parametrize("text", ["$rP", "$ou", "$oU", "$od", "$op", "$oP"])
def test_original_uri_pvs_are_read_only(text: str, ctx: MsgContext) -> None:
    p = pv(text)
    assert not p.writable
    with pytest.raises(PVError):
        p.set(ctx, "x")


# ---------------------------------------------------------------- $du and parts


def test_du(ctx: MsgContext) -> None:
    p = pv("$du")
    assert pv("$duri").writable
    p.set(ctx, "sip:proxy.example.net:5088;transport=tls")
    assert get("$du", ctx) == "sip:proxy.example.net:5088;transport=tls"
    assert get("$dd", ctx) == "proxy.example.net"
    assert get("$dp", ctx) == "5088" and get("$dp", ctx).ival == 5088
    assert get("$dP", ctx) == "tls" and get("$dP", ctx).ival == 3
    p.set(ctx, None)  # NULL clears
    assert ctx.dst_uri is None and get("$dd", ctx) is None
    with pytest.raises(PVError):
        p.set(ctx, 1)


def test_du_defaults(ctx: MsgContext) -> None:
    ctx.dst_uri = "sip:1.2.3.4"
    assert get("$dp", ctx) == "5060"
    assert get("$dP", ctx) == "udp"
    ctx.dst_uri = "sips:1.2.3.4"
    assert get("$dp", ctx) == "5061"


def test_dd_dp_writes(ctx: MsgContext) -> None:
    dd, dp = pv("$dd"), pv("$dp")
    with pytest.raises(PVError):
        dd.set(ctx, "h")  # no $du to change
    ctx.dst_uri = "sip:1.2.3.4:5070;lr"
    dd.set(ctx, "proxy.net")  # no user: no "sip::@" mangling (fixed)
    assert ctx.dst_uri == "sip:proxy.net:5070;lr"
    dp.set(ctx, 5099)
    assert ctx.dst_uri == "sip:proxy.net:5099;lr"
    dp.set(ctx, None)
    assert ctx.dst_uri == "sip:proxy.net;lr"
    dp.set(ctx, "7000")
    assert ctx.dst_uri == "sip:proxy.net:7000;lr"
    ctx.dst_uri = "sip:u:p@1.2.3.4"
    dd.set(ctx, "h2")
    assert ctx.dst_uri == "sip:u:p@h2"
    with pytest.raises(PVError):
        dd.set(ctx, None)
    with pytest.raises(PVError):
        dd.set(ctx, "")
    assert ctx.dst_uri == "sip:u:p@h2"
    assert not pv("$dP").writable


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("int_pv", "hex_pv", "attr"),
    [("$mf", "$mF", "flags"), ("$sf", "$sF", "sflags"), ("$bf", "$bF", "bflags")],
)
def test_flags(int_pv: str, hex_pv: str, attr: str, ctx: MsgContext) -> None:
    setattr(ctx, attr, (1 << 3) | (1 << 31))
    assert get(int_pv, ctx) == 0x80000008
    h = get(hex_pv, ctx)
    assert h == "80000008" and h.ival == 0x80000008
    pv(int_pv).set(ctx, 0xAB)
    assert getattr(ctx, attr) == 0xAB
    assert get(hex_pv, ctx) == "000000ab"
    pv(hex_pv).set(ctx, 5)  # writing the hex form takes an int
    assert getattr(ctx, attr) == 5
    pv(int_pv).set(ctx, IntStr("00000010", 16))  # str+int carries its int
    assert getattr(ctx, attr) == 16
    pv(int_pv).set(ctx, -1)
    assert getattr(ctx, attr) == 0xFFFFFFFF
    pv(int_pv).set(ctx, None)  # NULL -> 0
    assert getattr(ctx, attr) == 0
    with pytest.raises(PVError):
        pv(hex_pv).set(ctx, "ff")  # a plain string is refused
    assert getattr(ctx, attr) == 0


# ---------------------------------------------------------------- branches


def test_branch_append_and_fields(ctx: MsgContext) -> None:
    b = pv("$branch")
    b.set(ctx, "sip:one@a")
    b.set(ctx, "sip:two@b")
    assert [x.uri for x in ctx.branches] == ["sip:one@a", "sip:two@b"]
    assert get("$branch", ctx) == "sip:one@a"
    assert get("$(branch[1])", ctx) == "sip:two@b"
    assert get("$(branch(uri)[-1])", ctx) == "sip:two@b"
    assert get("$(branch(uri)[*])", ctx) == "sip:one@a, sip:two@b"
    assert get("$(branch(q)[*])", ctx) == "sip:one@a, sip:two@b"  # [*] lists URIs
    assert get("$(branch(uri)[2])", ctx) is None
    assert get("$(branch(uri)[-3])", ctx) is None
    assert get("$branch(duri)", ctx) is None
    assert get("$branch(path)", ctx) is None
    assert get("$branch(q)", ctx) == ""
    assert get("$branch(socket)", ctx) is None
    f = get("$branch(flags)", ctx)
    assert f == "0" and f.ival == 0
    with pytest.raises(PVError):
        b.set(ctx, "")
    with pytest.raises(PVError):
        b.set(ctx, None)


def test_branch_limit(ctx: MsgContext) -> None:
    b = pv("$branch")
    for i in range(MAX_BRANCHES - 1):
        b.set(ctx, f"sip:u{i}@h")
    with pytest.raises(PVError):
        b.set(ctx, "sip:too@many")
    assert len(ctx.branches) == MAX_BRANCHES - 1


def test_branch_field_writes(ctx: MsgContext) -> None:
    ctx.branches = [Branch("sip:one@a"), Branch("sip:two@b")]
    pv("$(branch(uri)[1])").set(ctx, "sip:TWO@b")
    pv("$(branch(duri)[-1])").set(ctx, "sip:proxy")
    pv("$(branch(path)[1])").set(ctx, "<sip:p1;lr>")
    pv("$(branch(q)[1])").set(ctx, 500)
    pv("$(branch(flags)[1])").set(ctx, 6)
    pv("$(branch(socket)[1])").set(ctx, "tcp:192.0.2.1:5060")
    two = ctx.branches[1]
    assert (two.uri, two.dst_uri, two.path, two.q, two.flags) == (
        "sip:TWO@b", "sip:proxy", "<sip:p1;lr>", 500, 6)
    assert two.socket is SOCKETS[1]
    assert get("$(branch(q)[1])", ctx) == "0.5"
    assert get("$(branch(flags)[1])", ctx).ival == 6
    assert get("$(branch(socket)[1])", ctx) == "tcp:192.0.2.1:5060"
    assert get("$(branch(duri)[1])", ctx) == "sip:proxy"
    assert get("$(branch(path)[1])", ctx) == "<sip:p1;lr>"
    # NULL rules: duri/path/socket cleared, q unspecified, flags 0
    for field in ("duri", "path", "socket", "q", "flags"):
        pv(f"$(branch({field})[1])").set(ctx, None)
    assert (two.dst_uri, two.path, two.socket, two.q, two.flags) == (None, None, None, None, 0)
    pv("$branch(q)").set(ctx, 1000)  # no index: the first appended branch
    assert ctx.branches[0].q == 1000 and get("$branch(q)", ctx) == "1"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$(branch(uri)[5])", "sip:x@y"),  # needs an existing branch
        ("$(branch(uri)[-3])", "sip:x@y"),
        ("$(branch(uri)[*])", "sip:x@y"),
        ("$(branch(uri)[0])", None),
        ("$(branch(uri)[0])", ""),
        ("$(branch(q)[0])", "0.5"),  # q takes an int
        ("$(branch(flags)[0])", "3"),
        ("$(branch(duri)[0])", 5),
        ("$(branch(socket)[0])", "udp:9.9.9.9:5060"),  # no such socket
        ("$(branch(socket)[0])", "udp:[bad"),
    ],
)
def test_branch_field_write_errors(text: str, value: object, ctx: MsgContext) -> None:
    ctx.branches = [Branch("sip:one@a"), Branch("sip:two@b")]
    with pytest.raises(PVError):
        pv(text).set(ctx, value)
    assert ctx.branches == [Branch("sip:one@a"), Branch("sip:two@b")]


def test_branch_bad_field() -> None:
    with pytest.raises(CompileError, match="unknown branch field"):
        pv("$branch(zzz)")


@pytest.mark.parametrize(
    ("q", "text"),
    [(None, ""), (1000, "1"), (1500, "1"), (0, "0"), (-5, "0"), (500, "0.5"),
     (50, "0.05"), (123, "0.123"), (120, "0.12"), (7, "0.007")],
)
def test_branch_q_text(q: int | None, text: str, ctx: MsgContext) -> None:
    ctx.branches = [Branch("sip:a@b", q=q)]
    assert get("$branch(q)", ctx) == text


# ---------------------------------------------------------------- $ds


def test_ds(ctx: MsgContext) -> None:
    assert get("$ds", ctx) is None  # nothing rewritten, no branches
    ctx.branches = [Branch("sip:a@x"), Branch("sip:b@y", q=500)]
    assert get("$ds", ctx) == "Contact: sip:a@x, <sip:b@y>;q=0.5"
    ctx.new_uri = "sip:r@z"  # a rewritten R-URI comes first
    assert get("$ds", ctx) == "Contact: sip:r@z, sip:a@x, <sip:b@y>;q=0.5"
    ctx.q = 1000
    assert get("$ds", ctx) == "Contact: <sip:r@z>;q=1, sip:a@x, <sip:b@y>;q=0.5"
    ctx.branches = []
    assert get("$ds", ctx) == "Contact: <sip:r@z>;q=1"


# ---------------------------------------------------------------- $fs, $path, sockets


def test_fs(ctx: MsgContext) -> None:
    p = pv("$fs")
    p.set(ctx, "tcp:192.0.2.1:5060")
    assert ctx.force_socket is SOCKETS[1]
    assert get("$fs", ctx) == "tcp:192.0.2.1:5060"
    p.set(ctx, "192.0.2.1")  # defaults: udp, 5060
    assert ctx.force_socket is SOCKETS[0]
    p.set(ctx, "tls:192.0.2.1")  # tls defaults to 5061
    assert ctx.force_socket is SOCKETS[2]
    p.set(ctx, "[2001:db8:0::1]:5080")
    assert get("$fs", ctx) == "udp:[2001:db8::1]:5080"
    p.set(ctx, "udp:203.0.113.7:5090")  # advertised address and port match too
    assert ctx.force_socket is SOCKETS[4]
    p.set(ctx, None)
    assert ctx.force_socket is None and get("$fs", ctx) is None


def test_fs_no_match_warns_and_keeps(ctx: MsgContext) -> None:
    logged: list[tuple[int, str]] = []
    ctx.rt.logger = lambda level, text: logged.append((level, text))
    p = pv("$fs")
    p.set(ctx, "udp:192.0.2.1:5060")
    p.set(ctx, "udp:9.9.9.9:5060")  # no match: warning, unchanged, no error
    assert ctx.force_socket is SOCKETS[0]
    assert logged and "no socket found" in logged[0][1]
    for bad in ("", 5, "udp:1.2.3.4:x", "udp:1.2.3.4:"):
        with pytest.raises(PVError):
            p.set(ctx, bad)


def test_path(ctx: MsgContext) -> None:
    ctx.path = "<sip:pcscf;lr>"
    assert get("$path", ctx) == "<sip:pcscf;lr>"
    assert not pv("$path").writable


# ---------------------------------------------------------------- script and process state


def test_state_pvs(ctx: MsgContext) -> None:
    ctx.rc = -5
    ctx.msg_id = 17
    ctx.err.eclass, ctx.err.level, ctx.err.rcode = 1, 2, 400
    ctx.err.info, ctx.err.rreason = "parse error", "Bad Request"
    assert get("$rc", ctx) == -5 and get("$retcode", ctx) == -5
    assert get("$mi", ctx) == 17
    assert get("$pp", ctx) == ctx.rt.pid
    assert (get("$err.class", ctx), get("$err.level", ctx), get("$err.rcode", ctx)) == (1, 2, 400)
    assert get("$err.info", ctx) == "parse error"
    assert get("$err.rreason", ctx) == "Bad Request"


def test_time_pvs(ctx: MsgContext) -> None:
    before = int(time.time())
    ts = get("$Ts", ctx)
    assert before <= ts <= int(time.time())
    assert 0 <= get("$Tsm", ctx) < 1_000_000
    assert get("$TS", ctx) == ctx.rt.start_time
    tf = get("$Tf", ctx)
    assert isinstance(tf, IntStr) and tf == time.ctime(tf.ival) and "\n" not in tf
    assert get("$time(%Y)", ctx) == time.strftime("%Y")
    assert get("$time(%H:%M)", ctx) == time.strftime("%H:%M")
    assert get("$(time(%Y){s.len})", ctx) == 4


def test_time_needs_a_format() -> None:
    with pytest.raises(CompileError, match="strftime format"):
        pv("$time")


def test_colour() -> None:
    quiet = make_ctx(rt=Runtime())
    assert get("$C(rb)", quiet) == ""
    loud = make_ctx(rt=Runtime(config={"log_stderror": 1}))
    assert get("$C(rb)", loud) == "\033[0;31;44m"
    assert get("$C(xx)", loud) == "\033[0;39;49m"
    p = pv("$C(Gs)")
    assert p.get(loud) == "\033[1;32;40m"
    assert p.get(loud) == "\033[1;32;40m"  # stays bold (1.6 lost it after one use)
    forced = make_ctx(rt=Runtime(config={"xlog_force_color": 1}))
    assert get("$C(wp)", forced) == "\033[0;37;45m"


@pytest.mark.parametrize("text", ["$C(zz)", "$C(r)", "$C(rbb)", "$C(Xx)", "$C(rB)", "$C"])
def test_colour_bad_names(text: str) -> None:
    with pytest.raises(CompileError):
        pv(text)


def test_argv() -> None:
    c = make_ctx(rt=Runtime(argv={"node": "n1", "empty": ""}))
    assert get("$argv(node)", c) == "n1"
    assert get("$argv(empty)", c) is None
    assert get("$argv(none)", c) is None
    with pytest.raises(CompileError):
        pv("$argv")


# ---------------------------------------------------------------- read-only PVs

WRITABLE = {
    "$var(x)", "$avp(s:x)", "$ru", "$ruri", "$rU", "$ruri.user", "$rd", "$ruri.domain",
    "$rp", "$du", "$duri", "$dd", "$dp", "$fs", "$mf", "$mF", "$sf", "$sF", "$bf", "$bF",
    "$branch", "$branch(uri)", "$branch(duri)", "$branch(q)", "$branch(path)",
    "$branch(flags)", "$branch(socket)",
}  # fmt: skip

SPECIAL_INNER = {
    "avp": "$avp(s:x)", "hdr": "$hdr(To)", "var": "$var(x)", "time": "$time(%H)",
    "C": "$C(rx)", "argv": "$argv(a)", "ct.fields": "$ct.fields(uri)",
}  # fmt: skip


@pytest.mark.parametrize("name", ALL_NAMES)
def test_writable_matches_the_table(name: str, ctx: MsgContext) -> None:
    text = SPECIAL_INNER.get(name, "$" + name)
    p = pv(text)
    assert p.writable == (text in WRITABLE), text
    if not p.writable:
        with pytest.raises(PVError, match="read-only"):
            p.set(ctx, "x")


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_pv_reads_on_every_kind_of_message(
    name: str, ctx: MsgContext, bare: MsgContext, reply: MsgContext
) -> None:
    p = pv(SPECIAL_INNER.get(name, "$" + name))
    for c in (ctx, bare, reply):
        v = p.get(c)
        assert v is None or isinstance(v, int | str)
