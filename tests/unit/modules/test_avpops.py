"""avpops in-memory functions through real scripts: return codes and the AVPs
they leave, read back with $avp(...) in xlog lines and in headers on the wire
(append_hf + forward). Expected values follow 1.6's avpops_impl.c by hand
(32-bit C ints, new values on top of the stack, 1.6's flag parsing)."""

from __future__ import annotations

import re

import pytest

from sipserver.core.exports import (
    BRANCH_ROUTE,
    ERROR_ROUTE,
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    ONREPLY_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
    Registry,
)
from sipserver.core.modload import load_module
from sipserver.lang.errors import CfgError
from sipserver.modules import avpops
from sipserver.testing import ScriptRunner

from .util import INVITE

MSG = INVITE.replace("\n", "\r\n").encode()
MODULES = ["sl", "textops", "avpops"]


def run(body: str, msg: bytes = MSG, params: str = "") -> tuple[ScriptRunner, list[str], object]:
    """Run `route { body }`; (runner, the `>`-prefixed xlog lines, the context)."""
    r = ScriptRunner(f"{params}route {{\n{body}\n}}\n", modules=MODULES)
    ctx = r.request(msg)
    lines = [t[1:].rstrip("\n") for _, t in r.logs if t.startswith(">")]
    return r, lines, ctx


def rc(call: str) -> str:
    """Script text that logs the return code of `call` as `>rc=N`."""
    return f'$var(rc) = {call}; xlog(">rc=$var(rc)\\n");'


def dump(name: str) -> str:
    return f'xlog(">{name}=$(avp({name})[*])\\n");'


# ---------------------------------------------------------------- exports


def test_exports_params_and_routes() -> None:
    mod = load_module(Registry(), "avpops.so")
    assert mod.params == {
        "db_url": None, "avp_table": "usr_preferences", "use_domain": 0,
        "uuid_column": "uuid", "attribute_column": "attribute", "value_column": "value",
        "type_column": "type", "username_column": "username", "domain_column": "domain",
        "db_scheme": None, "buf_size": 1024,
    }
    want = {("avp_print", 0), ("avp_db_load", 2), ("avp_db_load", 3), ("avp_db_delete", 2),
            ("avp_db_delete", 3), ("avp_db_store", 2), ("avp_db_store", 3),
            ("avp_db_query", 1), ("avp_db_query", 2), ("avp_db_query", 3), ("avp_delete", 1),
            ("avp_copy", 2), ("avp_pushto", 2), ("avp_check", 2), ("avp_op", 2),
            ("avp_subst", 2), ("is_avp_set", 1), ("avp_insert", 3)}
    assert {(c.name, c.nargs) for c in avpops.exports.cmds} == want
    routes = (REQUEST_ROUTE | FAILURE_ROUTE | BRANCH_ROUTE | ONREPLY_ROUTE | LOCAL_ROUTE
              | STARTUP_ROUTE | TIMER_ROUTE)
    for c in avpops.exports.cmds:
        assert c.route_types == routes
        assert not c.route_types & ERROR_ROUTE


# ---------------------------------------------------------------- avp_delete


def test_avp_delete_by_name_and_flags() -> None:
    _, lines, _ = run("""
        $avp(s:a) = 1; $avp(s:a) = 2; $avp(s:a) = 3; $avp(i:7) = "x"; $avp(s:b) = "y";
        """ + rc('avp_delete("$avp(s:a)")') + dump("s:a") + """
        """ + rc('avp_delete("$avp(s:a)/g")') + dump("s:a") + """
        """ + rc('avp_delete("$avp(s:a)")') + """
        $avp(s:a) = 1;
        """ + rc('avp_delete("i")') + dump("i:7") + dump("s:b") + """
        """ + rc('avp_delete("s")') + dump("s:a") + dump("s:b") + """
        """ + rc('avp_delete("a")'))
    assert lines == ["rc=1", "s:a=2, 1, ", "rc=1", "s:a=<null>", "rc=-1",
                     "rc=1", "i:7=<null>", "s:b=y, ",
                     "rc=1", "s:a=<null>", "s:b=<null>", "rc=-1"]


def test_avp_delete_star_deletes_everything() -> None:
    _, lines, _ = run("""
        $avp(s:a) = 1; $avp(i:9) = 2; $avp(i:9) = 3;
        """ + rc('avp_delete("*")') + dump("s:a") + dump("i:9"))
    assert lines == ["rc=1", "s:a=<null>", "i:9=<null>"]


# ---------------------------------------------------------------- avp_copy


def test_avp_copy_first_all_move_and_convert() -> None:
    _, lines, _ = run("""
        $avp(s:src) = "10"; $avp(s:src) = 7; $avp(s:src) = "abc";
        """ + rc('avp_copy("$avp(s:src)", "$avp(s:one)")') + dump("s:one") + """
        """ + rc('avp_copy("$avp(s:src)", "$avp(s:all)/g")') + dump("s:all") + """
        """ + rc('avp_copy("$avp(s:src)", "$avp(i:5)/gs")') + """
        xlog(">i5=$(avp(i:5)[*]) top_is_str=$(avp(i:5){s.len})\\n");
        $avp(s:n) = "42"; $avp(s:n) = "17";
        """ + rc('avp_copy("$avp(s:n)", "$avp(s:num)/gn")') + """
        $var(sum) = $avp(s:num) + $avp(s:num[1]);
        """ + rc('avp_copy("$avp(s:src)", "$avp(s:bad)/gn")') + dump("s:bad") + """
        """ + rc('avp_copy("$avp(s:src)", "$avp(s:moved)/gd")') + dump("s:moved") + dump("s:src") + """
        """ + rc('avp_copy("$avp(s:src)", "$avp(s:x)")'))
    assert lines == [
        "rc=1", "s:one=abc, ",
        "rc=1", "s:all=10, 7, abc, ",  # each copy goes on top: order reversed
        "rc=1", "i5=10, 7, abc,  top_is_str=2",
        "rc=1",
        "rc=-1", "s:bad=<null>",  # "abc" is not a number: nothing copied
        "rc=1", "s:moved=10, 7, abc, ", "s:src=<null>",
        "rc=-1",
    ]


def test_avp_copy_onto_itself_visits_only_the_old_values() -> None:
    _, lines, _ = run("""
        $avp(s:x) = 1; $avp(s:x) = 2;
        """ + rc('avp_copy("$avp(s:x)", "$avp(s:x)/g")') + dump("s:x") + """
        """ + rc('avp_copy("$avp(s:x)", "$avp(s:x)/gd")') + dump("s:x"))
    assert lines == ["rc=1", "s:x=1, 2, 2, 1, ", "rc=1", "s:x=1, 2, 2, 1, "]


# ---------------------------------------------------------------- avp_pushto


def test_avp_pushto_ruri_parts_and_du_on_the_wire() -> None:
    r, lines, _ = run("""
        $avp(s:u) = "sip:carol@gw.example.net;transport=udp";
        """ + rc('avp_pushto("$ru", "$avp(s:u)")') + """
        $avp(s:user) = "dave";
        """ + rc('avp_pushto("$ru/username", "$avp(s:user)")') + """
        """ + rc('avp_pushto("$ru/domain", "$fd")') + """
        $avp(s:du) = "sip:10.1.2.3:5088";
        """ + rc('avp_pushto("$du", "$avp(s:du)")') + """
        """ + rc('avp_pushto("$du", "$avp(s:nothing)")') + """
        forward();
        """)
    assert lines == ["rc=1", "rc=1", "rc=1", "rc=1", "rc=-1"]
    [(_, dest, data)] = r.sent
    assert data.startswith(b"INVITE sip:dave@example.com;transport=udp SIP/2.0\r\n")
    assert (dest.ip, dest.port) == ("10.1.2.3", 5088)


def test_avp_pushto_all_values_makes_branches() -> None:
    _, lines, ctx = run("""
        $avp(s:d) = "c.example"; $avp(s:d) = "b.example"; $avp(s:d) = "a.example";
        """ + rc('avp_pushto("$ru/domain", "$avp(s:d)/g")') + """
        xlog(">ru=$ru\\n");
        $avp(s:br) = "sip:x@y.example"; $avp(s:br) = 5;
        """ + rc('avp_pushto("$br", "$avp(s:br)")') + """
        $avp(s:br) = "sip:z@y.example";
        """ + rc('avp_pushto("$branch", "$avp(s:br)")'))
    assert lines == ["rc=1", "ru=sip:bob@c.example", "rc=-1", "rc=1"]
    # every rewrite after the first one pushed the R-URI of the moment as a branch
    assert [b.uri for b in ctx.branches] == ["sip:bob@a.example", "sip:bob@b.example",
                                             "sip:z@y.example"]


def test_avp_pushto_integer_user() -> None:
    _, lines, _ = run("""
        $avp(i:1) = 4930123;
        """ + rc('avp_pushto("$ru/username", "$avp(i:1)")') + 'xlog(">$ru\\n");')
    assert lines == ["rc=1", "sip:4930123@example.com"]


# ---------------------------------------------------------------- avp_check


@pytest.mark.parametrize(("setup", "check", "want"), [
    ('$avp(s:a) = "Alice";', '"eq/s:Alice"', 1),
    ('$avp(s:a) = "Alice";', '"eq/alice"', -1),
    ('$avp(s:a) = "Alice";', '"eq/alice/i"', 1),
    ('$avp(s:a) = "Alice";', '"ne/alice"', 1),
    ('$avp(s:a) = "Alice";', '"ne/Alice"', -1),
    ('$avp(s:a) = "abc";', '"lt/ABD"', 1),  # ordering is case-insensitive in 1.6
    ('$avp(s:a) = "abc";', '"le/ABC"', 1),
    ('$avp(s:a) = "abc";', '"gt/ab"', 1),
    ('$avp(s:a) = "abc";', '"ge/abd"', -1),
    ('$avp(s:a) = 10;', '"eq/i:10"', 1),
    ('$avp(s:a) = 10;', '"eq/10"', -1),  # "10" is a string: types differ
    ('$avp(s:a) = 10;', '"lt/i:0xb"', 1),
    ('$avp(s:a) = 10;', '"gt/i:-3"', 1),
    ('$avp(s:a) = 10;', '"and/i:4"', -1),
    ('$avp(s:a) = 10;', '"and/i:2"', 1),
    ('$avp(s:a) = 10;', '"xor/i:10"', -1),
    ('$avp(s:a) = 0;', '"or/i:0"', -1),
    ('$avp(s:a) = "sip:bob@bar.net";', '"re/sip:.*@BAR.net"', 1),
    ('$avp(s:a) = "sip:bob@bar.org";', '"re/sip:.*@bar.net"', -1),
    ('$avp(s:a) = "sip:bob@bar.net";', '"fm/sip:*@bar.ne?"', 1),
    ('$avp(s:a) = "sip:bob@BAR.net";', '"fm/sip:*@bar.net"', -1),
    ('$avp(s:a) = "sip:bob@BAR.net";', '"fm/sip:*@bar.net/i"', 1),
    ('$avp(s:a) = "x";', '"fm/[!a-c]"', 1),
    ('$avp(s:a) = "b"; $avp(s:a) = "a";', '"eq/s:b"', -1),
    ('$avp(s:a) = "b"; $avp(s:a) = "a";', '"eq/s:b/g"', 1),
    ('$avp(s:a) = "example.com"; $avp(s:v) = "x"; $avp(s:v) = "example.com";',
     '"eq/$avp(s:v)"', 1),  # every value of an AVP operand is tried
    ('$avp(s:a) = "example.com";', '"eq/$fd"', 1),
    ('$avp(s:a) = "x";', '"eq/$avp(s:none)"', -1),
])
def test_avp_check(setup: str, check: str, want: int) -> None:
    _, lines, _ = run(setup + rc(f'avp_check("$avp(s:a)", {check})'))
    assert lines == [f"rc={want}"]


def test_avp_check_on_other_pvs_and_missing_avp() -> None:
    _, lines, _ = run(rc('avp_check("$fd", "eq/$td/i")') + rc('avp_check("$rU", "eq/bob")')
                      + rc('avp_check("$avp(s:nope)", "eq/x")'))
    assert lines == ["rc=1", "rc=1", "rc=-1"]


# ---------------------------------------------------------------- avp_op


@pytest.mark.parametrize(("value", "op", "want"), [
    (10, "add/i:5", 15), (10, "sub/i:15", -5), (6, "mul/i:7", 42),
    (-7, "div/i:2", -3), (7, "div/i:-2", -3), (-7, "mod/i:2", -1), (7, "mod/i:-2", 1),
    (7, "div/i:0", 0), (7, "mod/i:0", 0),
    (12, "and/i:0xa", 8), (12, "or/i:3", 15), (12, "xor/i:0xf", 3), (12, "not/i:5", -6),
    (2147483647, "add/i:1", -2147483648), (65536, "mul/i:65536", 0),
    (-2147483648, "sub/i:1", 2147483647), (5, "add/i:0xffffffff", 4),
])
def test_avp_op_arithmetic_is_32_bit_c(value: int, op: str, want: int) -> None:
    _, lines, _ = run(f"$avp(s:n) = {value};" + rc(f'avp_op("$avp(s:n)/$avp(s:r)", "{op}")')
                      + dump("s:r"))
    assert lines == ["rc=1", f"s:r={want}, "]


def test_avp_op_in_place_all_values_delete_and_avp_operand() -> None:
    _, lines, _ = run("""
        $avp(s:x) = 3; $avp(s:x) = "skip"; $avp(s:x) = 5;
        """ + rc('avp_op("$avp(s:x)", "add/i:1")') + dump("s:x") + """
        $avp(s:y) = 3; $avp(s:y) = 5;
        """ + rc('avp_op("$avp(s:y)", "mul/i:10/d")') + dump("s:y") + """
        $avp(s:a) = 100; $avp(s:b) = 1; $avp(s:b) = 2;
        """ + rc('avp_op("$avp(s:a)/$avp(s:c)", "sub/$avp(s:b)")') + dump("s:c") + """
        $var(k) = 7;
        """ + rc('avp_op("$avp(s:a)/$avp(s:d)", "add/$var(k)")') + dump("s:d") + """
        $avp(s:str) = "abc";
        """ + rc('avp_op("$avp(s:str)", "add/i:1")') + """
        """ + rc('avp_op("$avp(s:str)/$avp(s:e)", "not/i:0")') + dump("s:e") + """
        """ + rc('avp_op("$avp(s:none)", "add/i:1")') + """
        """ + rc('avp_op("$avp(s:a)", "add/$avp(s:none)")') + """
        """ + rc('avp_op("$avp(s:a)", "add/$fd")'))
    assert lines == [
        "rc=1", "s:x=4, 6, 5, skip, 3, ",  # results on top, the sources stay
        "rc=1", "s:y=30, 50, ",  # d: the sources are gone
        "rc=1", "s:c=99, 98, ",  # one result per operand value
        "rc=1", "s:d=107, ",
        "rc=-1", "rc=1", "s:e=-1, ",  # not needs no integer source
        "rc=-1", "rc=-1", "rc=-1",
    ]


# ---------------------------------------------------------------- avp_subst


def test_avp_subst() -> None:
    _, lines, _ = run(r"""
        $avp(s:m) = "bob@old.net";
        """ + rc(r'avp_subst("$avp(s:m)", "/(.*)@(.*)/\1@$rd/")') + dump("s:m") + r"""
        $avp(s:l) = "b@x"; $avp(s:l) = 5; $avp(s:l) = "a@x";
        """ + rc(r'avp_subst("$avp(s:l)/$avp(s:out)/g", "/@x/@Y/")') + dump("s:out")
        + dump("s:l") + r"""
        """ + rc(r'avp_subst("$avp(s:l)/$avp(s:one)", "/b@/B@/")') + dump("s:one") + r"""
        """ + rc(r'avp_subst("$avp(s:l)/g", "/@x/-/")') + dump("s:l") + r"""
        """ + rc(r'avp_subst("$avp(s:l)/$avp(s:z)/gd", "/^(.)/<\1>/")') + dump("s:z")
        + dump("s:l") + r"""
        """ + rc(r'avp_subst("$avp(s:l)", "/nomatch/x/")') + r"""
        $avp(s:ci) = "ABC";
        """ + rc(r'avp_subst("$avp(s:ci)", "/b/_/i")') + dump("s:ci"))
    assert lines == [
        "rc=1", "s:m=bob@example.com, ",
        "rc=1", "s:out=b@Y, a@Y, ", "s:l=a@x, 5, b@x, ",
        "rc=1", "s:one=B@x, ",  # without g: the first value that matches
        "rc=1", "s:l=b-, a-, 5, ",  # in place: each result replaces its source, on top
        "rc=1", "s:z=<a>-, <b>-, ", "s:l=5, ",  # d: used sources go; 5 is no string
        "rc=-1",
        "rc=1", "s:ci=A_C, ",
    ]


# ---------------------------------------------------------------- is_avp_set, avp_insert, avp_print


def test_is_avp_set_flags_and_index() -> None:
    _, lines, _ = run("""
        $avp(s:i) = 0; $avp(s:s) = ""; $avp(s:s) = "x";
        """ + rc('is_avp_set("$avp(s:i)")') + rc('is_avp_set("$avp(s:i)/n")')
        + rc('is_avp_set("$avp(s:i)/s")') + rc('is_avp_set("$avp(s:i)/e")')
        + rc('is_avp_set("$avp(s:s)/e")') + rc('is_avp_set("$(avp(s:s)[1])/e")')
        + rc('is_avp_set("$(avp(s:s)[2])")') + rc('is_avp_set("$avp(s:s)/se")')
        + rc('is_avp_set("$avp(s:none)")'))
    assert lines == ["rc=1", "rc=1", "rc=-1", "rc=1", "rc=-1", "rc=1", "rc=-1", "rc=-1",
                     "rc=-1"]


def test_avp_insert_positions() -> None:
    _, lines, _ = run("""
        $avp(s:q) = "c"; $avp(s:q) = "b"; $avp(s:q) = "a";
        """ + rc('avp_insert("$avp(s:q)", "top", "0")') + rc('avp_insert("$avp(s:q)", "$rU", "2")')
        + rc('avp_insert("$avp(s:q)", "end-$fU", "99")') + dump("s:q")
        + rc('avp_insert("$avp(s:new)", "$var(none)", "3")') + dump("s:new"))
    assert lines == ["rc=1", "rc=1", "rc=1", "s:q=top, a, bob, b, c, end-alice, ",
                     "rc=1", "s:new=0, "]


def test_avp_print_logs_every_avp() -> None:
    r, lines, _ = run('$avp(s:a) = "xy"; $avp(i:3) = 7;' + rc("avp_print()"))
    assert lines == ["rc=1"]
    printed = [t for _, t in r.logs if t.startswith("avp_print")]
    assert printed == ["avp_print: flags=0x0003 name=<a> val_str=<xy / 2>",
                       "avp_print: flags=0x0000 id=<3> val_int=<7>"]


def test_avp_printf_is_the_core_pv_printf() -> None:
    r, _, _ = run('avp_printf("$avp(s:p)", "$rm to $rU");'
                      'append_hf("X-P: $avp(s:p)\\r\\n"); forward("127.0.0.1:5080");')
    assert "\r\nX-P: INVITE to bob\r\n" in r.sent_text[0]


def test_results_reach_the_wire_in_a_header() -> None:
    r, _, _ = run("""
        $avp(s:v) = 2; $avp(s:v) = 1;
        avp_op("$avp(s:v)", "mul/i:-3/d");
        avp_copy("$avp(s:v)", "$avp(s:w)/gs");
        avp_subst("$avp(s:w)", "/-/minus /");
        append_hf("X-V: $(avp(s:v)[*])\\r\\n");
        append_hf("X-W: $(avp(s:w)[*])\\r\\n");
        forward("127.0.0.1:5080");
        """)
    text = r.sent_text[0]
    assert "\r\nX-V: -6, -3, \r\n" in text
    assert "\r\nX-W: minus 3, -6, \r\n" in text


# ---------------------------------------------------------------- start-up errors


@pytest.mark.parametrize(("call", "why"), [
    ('avp_delete("x")', "expected \\$avp\\(name\\), \\*, a, s or i"),
    ('avp_delete("$avp(s:a)/q")', "bad flag <q>"),
    ('avp_delete("$ru")', "expected \\$avp\\(name\\)"),
    ('avp_copy("$avp(s:a)", "$avp(s:b)/x")', "bad flag <x>"),
    ('avp_copy("$avp(s:a)junk", "$avp(s:b)")', "unexpected 'junk'"),
    ('avp_pushto("$hdr(X)", "$avp(s:a)")', "obsoleted"),
    ('avp_pushto("$du/username", "$avp(s:a)")', "flag"),
    ('avp_pushto("$ru/host", "$avp(s:a)")', "flag"),
    ('avp_pushto("$fu", "$avp(s:a)")', "unsupported destination"),
    ('avp_pushto("$ru", "text")', "expected a pseudo-variable"),
    ('avp_check("$avp(s:a)", "zz/1")', "unknown operation <zz>"),
    ('avp_check("$avp(s:a)", "eq")', "parse error"),
    ('avp_check("$avp(s:a)", "eq/i:12x")', "not an integer"),
    ('avp_check("$avp(s:a)", "eq/1/q")', "unknown flag <q>"),
    ('avp_check("$avp(s:a)", "re/$avp(s:b)")', "constant string regexp"),
    ('avp_check("$avp(s:a)", "re/(")', "bad regexp"),
    ('avp_check("$avp(s:a)", "fm/i:3")', "fm operation"),
    ('avp_op("$avp(s:a)", "add/5")', "must be an integer"),
    ('avp_op("$avp(s:a)", "pow/i:5")', "unknown operation"),
    ('avp_op("$avp(s:a)/$ru", "add/i:5")', "expected \\$avp\\(name\\)"),
    ('avp_op("$avp(s:a)", "add/i:5/x")', "unknown flag <x>"),
    ('avp_subst("$avp(s:a)/x", "/a/b/")', "bad flag <x>"),
    ('avp_subst("$avp(s:a)", "/(/b/")', "bad regular expression"),
    ('is_avp_set("$avp(s:a)/ns")', "invalid flag combination"),
    ('is_avp_set("$avp(s:a)/z")', "bad flag <z>"),
    ('avp_insert("$avp(s:a)", "x", "-1")', "bad index"),
    ('avp_insert("$ru", "x", "1")', "expected \\$avp\\(name\\)"),
    ('avp_db_load("$ru", "$avp(s:a)")', "no db url defined"),
    ('avp_db_query("select 1")', "no db url defined"),
])
def test_bad_arguments_fail_at_startup_with_a_location(call: str, why: str) -> None:
    cfg = f'route {{\n    xlog("x\\n");\n    {call};\n}}\n'
    with pytest.raises(CfgError, match=why) as info:
        ScriptRunner(cfg, modules=MODULES, filename="avp.cfg")
    err = info.value
    assert (err.file, err.line) == ("avp.cfg", 6)  # 3 loadmodule lines, then the route
    assert re.search(r"avp\.cfg:6:\d+: ", str(err))


def test_bad_modparams() -> None:
    with pytest.raises(Exception, match="db_scheme"):
        ScriptRunner('modparam("avpops", "db_scheme", "s1:colour=red")\nroute { exit; }',
                     modules=MODULES)
    with pytest.raises(Exception, match="duplicated scheme"):
        ScriptRunner('modparam("avpops", "db_scheme", "s1:table=t")\n'
                     'modparam("avpops", "db_scheme", "S1:table=u")\nroute { exit; }',
                     modules=MODULES)
    with pytest.raises(Exception, match="defined twice"):
        ScriptRunner('modparam("avpops", "db_url", "sqlite:///tmp/a.db")\n'
                     'modparam("avpops", "db_url", "0 sqlite:///tmp/b.db")\nroute { exit; }',
                     modules=MODULES)


def test_a_driver_without_raw_queries_is_refused_for_avp_db_query(tmp_path) -> None:
    url = f'modparam("avpops", "db_url", "text://{tmp_path}")\n'
    # load/store/delete need no raw queries: db_text is enough for them
    ScriptRunner(url + 'route { avp_db_load("$ru", "s"); }', modules=["db_text", "avpops"])
    with pytest.raises(ValueError, match="raw queries"):
        ScriptRunner(url + 'route { avp_db_query("select 1"); }', modules=["db_text", "avpops"])
