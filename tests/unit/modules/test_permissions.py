"""permissions without a database: allow/deny rule files (the 1.6 README and
config/ examples), allow_routing / allow_register / allow_uri through
ScriptRunner, MI allow_uri, start-up errors for bad rule files, and the
address-table model (hash buckets as 1.6 numbers them, subnets, fnmatch
patterns, the shared-memory swap seen by a forked process).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sipserver.core.exports import (
    FAILURE_ROUTE,
    LOCAL_ROUTE,
    REQUEST_ROUTE,
    STARTUP_ROUTE,
    TIMER_ROUTE,
    Registry,
)
from sipserver.core.modload import load_module
from sipserver.lang.errors import CfgError
from sipserver.mi.tree import MINodeArg
from sipserver.modules import permissions
from sipserver.modules.permissions.address import (
    AddressLoadError,
    AddressTables,
    bucket_of,
    build_tables,
    encode,
    proto_arg,
    str2ip,
)
from sipserver.modules.permissions.mi import mi_address_dump, mi_allow_uri, mi_subnet_dump
from sipserver.modules.permissions.pattern import compile_pattern
from sipserver.modules.permissions.rules import RuleError, parse_rule_line, parse_rules
from sipserver.modules.permissions.store import AddressStore
from sipserver.shm import Segment
from sipserver.testing import ScriptRunner

from .util import cmd

# the examples of 1.6 modules/permissions/config/permissions.allow, uncommented
PERMISSIONS_ALLOW = r"""# SIP Express Router permissions module config file
#
ALL : "^sip:361[0-9]*@abc\.com$" EXCEPT "^sip:361[0-9]*3@abc\.com$", "^sip:361[0-9]*4@abc\.com$"

	"^sip:3677[0-9]*@abc\.com$" :  "^sip:361[0-9]*@abc\.com$"
"""
PERMISSIONS_DENY = "# deny everything else\nALL : ALL\n"
# 1.6 config/register.deny (and a privileged user in register.allow)
REGISTER_ALLOW = '"^sip:admin@foo\\.bar$" : ALL\n'
REGISTER_DENY = 'ALL : "^sip:.*1\\.2\\.3\\.4$"\n'

RESULT_ROUTE = """
route {
    $var(r) = %s;
    xlog("rc=$var(r)\\n");
}
"""


def fork_and_check(look: Callable[[], Any], change: Callable[[], None]) -> str:
    """`look()` in a forked child, `change()` in this process, `look()` in the
    child again: the repr of the child's two results. Nothing blocks when a
    side fails: the pipes close and the child is reaped."""
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(up_r)
            os.close(down_w)
            seen = [look()]
            os.write(up_w, b"1")
            if os.read(down_r, 1) == b"g":
                seen.append(look())
            os.write(up_w, repr(seen).encode())
        finally:
            os._exit(0)
    os.close(up_w)
    os.close(down_r)
    try:
        assert os.read(up_r, 1) == b"1", "the child failed"
        change()
        os.write(down_w, b"g")
        chunks = []
        while chunk := os.read(up_r, 4096):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(down_w)
        os.close(up_r)
        os.waitpid(pid, 0)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def cfgdir(tmp_path: Path) -> Path:
    write(tmp_path / "permissions.allow", PERMISSIONS_ALLOW)
    write(tmp_path / "permissions.deny", PERMISSIONS_DENY)
    write(tmp_path / "register.allow", REGISTER_ALLOW)
    write(tmp_path / "register.deny", REGISTER_DENY)
    return tmp_path


def runner(cfgdir: Path, call: str, params: str = "", route: str | None = None) -> ScriptRunner:
    text = params + (route if route is not None else RESULT_ROUTE % call)
    return ScriptRunner(text, modules=["permissions"], filename=str(cfgdir / "sipserver.cfg"))


def invite(ruri: str, from_uri: str, from_hf: str | None = None) -> bytes:
    from_hf = from_hf or f"<{from_uri}>;tag=1928301774"
    return (f"INVITE {ruri} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {from_hf}\r\n"
            f"To: <{ruri}>\r\n"
            "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
            "CSeq: 314159 INVITE\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def register(to: str, contacts: list[str]) -> bytes:
    hdrs = "".join(f"Contact: {c}\r\n" for c in contacts)
    return (f"REGISTER sip:foo.bar SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnashds7\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <{to}>;tag=456248\r\n"
            f"To: <{to}>\r\n"
            "Call-ID: 843817637684230@998sdasdh09\r\n"
            "CSeq: 1826 REGISTER\r\n"
            f"{hdrs}"
            "Content-Length: 0\r\n\r\n").encode()


def rcs(r: ScriptRunner) -> list[int]:
    return [int(t.strip()[3:]) for _, t in r.logs if t.startswith("rc=")]


def results(r: ScriptRunner, messages: list[bytes]) -> list[int]:
    r.logs.clear()
    for m in messages:
        r.request(m)
    return rcs(r)


# ---------------------------------------------------------------- exports


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "permissions.so")
    assert mod.params == {
        "default_allow_file": "permissions.allow", "default_deny_file": "permissions.deny",
        "check_all_branches": 1, "allow_suffix": ".allow", "deny_suffix": ".deny",
        "db_url": None, "address_table": "address", "ip_col": "ip", "proto_col": "proto",
        "from_col": "pattern", "info_col": "context_info", "grp_col": "grp",
        "mask_col": "mask", "port_col": "port",
    }
    rfl = REQUEST_ROUTE | FAILURE_ROUTE | LOCAL_ROUTE
    ex = permissions.exports
    for n in (4, 5, 6):
        assert cmd(ex, "check_address", n).route_types == rfl | STARTUP_ROUTE | TIMER_ROUTE
    for n in (1, 2, 3):
        assert cmd(ex, "check_source_address", n).route_types == rfl
    for n in (0, 1, 2):
        assert cmd(ex, "allow_routing", n).route_types == rfl
    for n in (1, 2):
        assert cmd(ex, "allow_register", n).route_types == REQUEST_ROUTE | FAILURE_ROUTE
    assert cmd(ex, "allow_uri", 2).route_types == rfl
    assert cmd(ex, "get_source_group", 1).route_types == rfl
    assert {c.name for c in ex.cmds} == {"check_address", "check_source_address",
                                         "get_source_group", "allow_routing", "allow_register",
                                         "allow_uri"}
    assert [m.name for m in ex.mi_cmds] == ["address_reload", "address_dump", "subnet_dump",
                                            "allow_uri"]


def test_address_functions_need_db_url(cfgdir: Path) -> None:
    for call in ('check_address("1", "10.0.0.1", "0", "any")', "check_source_address(1)",
                 'get_source_group("$var(g)")'):
        with pytest.raises(CfgError, match="needs db_url"):
            runner(cfgdir, call)
    with pytest.raises(CfgError, match="read-only"):
        runner(cfgdir, 'check_source_address(1, "$si")',
               'modparam("permissions", "db_url", "text:///nowhere")\n')


# ---------------------------------------------------------------- rule syntax


def test_rule_line_syntax() -> None:
    r = parse_rule_line('ALL : "^sip:361[0-9]*@abc\\.com$" EXCEPT "^sip:3613", "^sip:3614"')
    assert r is not None and r.left is None and r.left_except == ()
    assert [e.text for e in r.right] == ["^sip:361[0-9]*@abc\\.com$"]
    assert [e.text for e in r.right_except] == ["^sip:3613", "^sip:3614"]
    # a comma or colon inside quotes is part of the expression; the last
    # colon outside quotes splits; # inside quotes is no comment
    r = parse_rule_line('"a, b", c:d : "x#y" # comment')
    assert r is not None
    assert [e.text for e in r.left] == ["a, b", "c:d"]
    assert [e.text for e in r.right] == ["x#y"]
    r = parse_rule_line("ALL EXCEPT \"^sip:bad\" : ALL EXCEPT ALL")
    assert r is not None and r.left is None and [e.text for e in r.left_except] == ["^sip:bad"]
    # after EXCEPT, ALL is a regex (case-insensitive), not the keyword
    assert r.right is None and [e.text for e in r.right_except] == ["ALL"]
    assert r.matches("sip:bob@x", "sip:carol@x")
    assert not r.matches("sip:bob@x", "sip:wall@x")
    assert not r.matches("sip:BAD@x", "sip:carol@x")
    for blank in ("", "   \t", "# only a comment", "  # indented comment"):
        assert parse_rule_line(blank) is None


@pytest.mark.parametrize("line", [
    'ALL "^sip:x"',            # no colon
    ': ALL',                   # nothing before the colon
    'ALL :   ',                # nothing after it
    'ALL : # comment',
    '"a", , "b" : ALL',        # an empty expression
    'ALL : "^sip:[a-"',        # a bad regex
    '"^sip:x" EXCEPT : ALL',   # EXCEPT needs a list
    'ALL : "' + "x" * 260 + '"',  # longer than 1.6's 256 characters
])
def test_malformed_rule_lines(line: str) -> None:
    with pytest.raises(RuleError):
        parse_rule_line(line)


def test_posix_regex_rules() -> None:
    [r] = parse_rules('"^sip:[[:digit:]]+@" : "\\.com$", "^sip:op[.]"')
    assert r.matches("sip:123@a.com", "sip:x@Example.COM")  # case-insensitive, searched
    assert r.matches("SIP:9@x", "sip:op.1@y")
    assert not r.matches("sip:abc@a.com", "sip:x@example.com")
    assert not r.matches("sip:1@a", "sip:opx@y")


# ---------------------------------------------------------------- allow_routing


def test_allow_routing_default_files_from_the_config_directory(cfgdir: Path) -> None:
    r = runner(cfgdir, "allow_routing()")
    assert results(r, [
        invite("sip:3611@abc.com", "sip:alice@x.org"),          # allow rule 1
        invite("sip:3613@abc.com", "sip:alice@x.org"),          # its EXCEPT -> deny ALL:ALL
        invite("sip:36134@abc.com", "sip:alice@x.org"),         # second EXCEPT
        invite("sip:3613@abc.com", "sip:36771@abc.com"),        # allow rule 2
        invite("sip:999@abc.com", "sip:alice@x.org"),           # only the deny file
        invite("sip:3611@ABC.COM:5070;transport=tcp", "sip:alice@x.org"),  # plain, any case
    ]) == [1, -1, -1, 1, -1, 1]
    # the From URI is matched as written, parameters included
    assert results(r, [invite("sip:3613@abc.com", "", '"Bob" <sip:36771@abc.com;user=phone>;tag=1'),
                       invite("sip:3613@abc.com", "", "sip:36771@abc.com;tag=1")]) == [-1, 1]


def test_allow_routing_request_uri_without_user_is_sip_at_host(cfgdir: Path) -> None:
    # 1.6 builds "sip:" user "@" host for the R-URI, so "sip:@gw.net" here
    write(cfgdir / "gw.allow", 'ALL : "^sip:@gw\\.net$"\n')
    write(cfgdir / "gw.deny", "ALL : ALL\n")
    r = runner(cfgdir, 'allow_routing("gw")')
    assert results(r, [invite("sip:gw.net", "sip:a@b"), invite("sip:x@gw.net", "sip:a@b")]) \
        == [1, -1]


def test_missing_files_allow_everything(cfgdir: Path) -> None:
    r = runner(cfgdir, 'allow_routing("nothing_here")')
    assert f"file ({cfgdir}/nothing_here.allow) not found => empty rule set" in r.log_text()
    assert results(r, [invite("sip:999@abc.com", "sip:a@b")]) == [1]
    # an empty allow file and an empty deny file: also no control
    write(cfgdir / "empty.allow", "# nothing\n")
    write(cfgdir / "empty.deny", "\n")
    r = runner(cfgdir, 'allow_routing("empty")')
    assert results(r, [invite("sip:999@abc.com", "sip:a@b")]) == [1]


def test_allow_routing_two_files_and_suffixes(cfgdir: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    allow = write(other / "a.rules", 'ALL : "^sip:1"\n')
    deny = write(other / "d.rules", 'ALL : "^sip:9"\n')
    r = runner(cfgdir, f'allow_routing("{allow}", "{deny}")')
    assert results(r, [invite("sip:1@x", "sip:a@b"), invite("sip:9@x", "sip:a@b"),
                       invite("sip:5@x", "sip:a@b")]) == [1, -1, 1]
    write(cfgdir / "pstn.ok", 'ALL : "^sip:1"\n')
    write(cfgdir / "pstn.no", "ALL : ALL\n")
    r = runner(cfgdir, 'allow_routing("pstn")', 'modparam("permissions", "allow_suffix", ".ok")\n'
                                                'modparam("permissions", "deny_suffix", ".no")\n')
    assert results(r, [invite("sip:1@x", "sip:a@b"), invite("sip:5@x", "sip:a@b")]) == [1, -1]


BRANCH_ROUTE = """
route {
    if ($hdr(X-Branch) == "sip:15@y") append_branch("sip:15@y");
    if ($hdr(X-Branch) == "sip:9@y") append_branch("sip:9@y;transport=tcp");
    if ($hdr(X-Branch) == "sip:6@y") append_branch("sip:6@y");
    if ($hdr(X-Branch) == "sip:1@y") append_branch("sip:1@y");
    $var(r) = allow_routing("br");
    xlog("rc=$var(r)\\n");
}
"""


def with_branch(msg: bytes, branch: str) -> bytes:
    return msg.replace(b"Content-Length", f"X-Branch: {branch}\r\nContent-Length".encode())


@pytest.mark.parametrize("check_all, expected", [(1, [1, -1, 1, -1]), (0, [1, 1, 1, -1])])
def test_check_all_branches(cfgdir: Path, check_all: int, expected: list[int]) -> None:
    write(cfgdir / "br.allow", 'ALL : "^sip:1"\n')
    write(cfgdir / "br.deny", 'ALL : "^sip:9"\n')
    r = runner(cfgdir, "", f'modparam("permissions", "check_all_branches", {check_all})\n',
               BRANCH_ROUTE)
    assert results(r, [
        with_branch(invite("sip:1@x", "sip:a@b"), "sip:15@y"),    # every branch allowed
        with_branch(invite("sip:1@x", "sip:a@b"), "sip:9@y"),  # a denied branch
        with_branch(invite("sip:5@x", "sip:a@b"), "sip:6@y"),     # neither: allowed
        with_branch(invite("sip:9@x", "sip:a@b"), "sip:1@y"),     # R-URI denied
    ]) == expected


# ---------------------------------------------------------------- allow_register


def test_allow_register_pairs_to_and_contacts(cfgdir: Path) -> None:
    r = runner(cfgdir, 'allow_register("register")')
    assert results(r, [
        register("sip:bob@foo.bar", ["<sip:bob@10.0.0.5:5060>"]),
        register("sip:bob@foo.bar", ["<sip:bob@1.2.3.4:5060;transport=udp>;expires=60"]),
        register("sip:bob@foo.bar", ["<sip:bob@10.0.0.5>", "<sip:pstn@1.2.3.4>"]),
        register("sip:bob@foo.bar", ["<sip:bob@10.0.0.5>, <sip:1.2.3.4>"]),
        register("sip:bob@foo.bar", []),                       # no Contact: allowed
        register("sip:bob@foo.bar", ["*"]),                    # Contact: * allowed
        register("sip:admin@foo.bar", ["<sip:gw@1.2.3.4>"]),   # the privileged user
    ]) == [1, -1, -1, -1, 1, 1, 1]


def test_allow_register_without_check_all_branches_checks_deny(cfgdir: Path) -> None:
    # 1.6: an allow match skips the deny file only with check_all_branches
    r = runner(cfgdir, f'allow_register("{cfgdir}/register.allow", "{cfgdir}/register.deny")',
               'modparam("permissions", "check_all_branches", 0)\n')
    assert results(r, [register("sip:admin@foo.bar", ["<sip:gw@1.2.3.4>"]),
                       register("sip:admin@foo.bar", ["<sip:gw@10.0.0.1>"])]) == [-1, 1]


# ---------------------------------------------------------------- allow_uri


URI_ROUTE = """
route {
    $var(uri) = $hdr(X-Target);
    $var(r) = allow_uri("permissions", "$var(uri)");
    xlog("rc=$var(r)\\n");
}
"""


def test_allow_uri_from_and_pv(cfgdir: Path) -> None:
    r = runner(cfgdir, "", route=URI_ROUTE)
    msgs = [invite("sip:x@y", "sip:alice@x.org").replace(
        b"Content-Length", f"X-Target: {t}\r\nContent-Length".encode())
        for t in ("sip:3611@abc.com", "sip:3613@abc.com", "sip:3611@abc.com;user=phone")]
    # the PV's URI is used as it is: the ;user=phone one fails the `$` anchor
    assert results(r, msgs) == [1, -1, -1]


def test_mi_allow_uri(cfgdir: Path) -> None:
    r = runner(cfgdir, "", route=URI_ROUTE)
    mod = r.compiled.registry.modules["permissions"]

    def mi(*values: str) -> tuple[int, str]:
        rep = mi_allow_uri([MINodeArg(None, v) for v in values], r.rt, mod)
        return rep.code, rep.reason

    assert mi("permissions", "sip:alice@x.org", "sip:3611@abc.com") == (200, "OK")
    assert mi("permissions", "sip:alice@x.org", "sip:3613@abc.com") == (403, "Forbidden")
    assert mi("register", "sip:alice@x.org", "sip:3611@abc.com") == (403, "Forbidden")  # not loaded
    assert mi("permissions", "sip:a@b") == (400, "Too few or too many arguments")
    assert mi("x" * 130, "sip:a@b", "sip:c@d") == (404, "Basename is too long")
    assert mi("permissions", "sip:" + "a" * 1030, "sip:c@d") == (404, "URI is too long")


# ---------------------------------------------------------------- start-up errors


def test_malformed_rule_file_is_a_startup_error_naming_file_and_line(cfgdir: Path) -> None:
    bad = write(cfgdir / "bad.allow", '# ok\nALL : ALL\n"^sip:x" "^sip:y"\n')
    with pytest.raises(RuleError, match=f"^{bad}:3: expected `from_list : target_list`"):
        runner(cfgdir, 'allow_routing("bad")')
    write(cfgdir / "permissions.deny", 'ALL : ALL\n\nALL : "sip:(unclosed"\n')
    with pytest.raises(RuleError, match=r"permissions\.deny:3: bad regular expression"):
        runner(cfgdir, "1")  # the default files are read whether used or not, as in 1.6


def test_unreadable_rule_file_is_a_startup_error(cfgdir: Path) -> None:
    (cfgdir / "dir.allow").mkdir()
    with pytest.raises(RuleError, match="cannot read rule file"):
        runner(cfgdir, 'allow_routing("dir")')


# ---------------------------------------------------------------- the address model


def tables(rows: list[tuple]) -> AddressTables:
    full = [(ip, grp, mask, port, proto, pat, info, i) for i, (grp, ip, mask, port, proto, pat,
                                                               info) in enumerate(rows, 1)]
    return AddressTables.decode(encode(*build_tables(full)), {})


def test_str2ip_and_protocols() -> None:
    assert str2ip("10.0.0.1") == 0x0A000001
    assert str2ip("1.2.3.") == 0x01020300  # 1.6: an empty part is 0
    assert str2ip("10.0.0.257") == 0x0A000001  # and each part is taken modulo 256
    for bad in ("10.0.0", "10.0.0.1.2", "10.0.0.x", "::1", " 10.0.0.1", ""):
        assert str2ip(bad) is None
    assert [proto_arg(t) for t in ("", "udp", "U", "tcp", "T", "tls", "SCTP", "any", "x",
                                   "udpx")] == [0, 1, 1, 2, 2, 3, 4, 0, None, None]


def test_hash_buckets_are_the_1_6_ones() -> None:
    # bucket numbers computed with 1.6's core_hash recipe in C (signed chars)
    known = {"10.0.0.1": 23, "10.0.0.2": 24, "192.168.200.250": 85, "255.255.255.255": 15,
             "128.129.130.131": 41, "1.2.3.4": 64, "172.16.254.9": 107, "203.0.113.7": 93,
             "10.0.0.9": 30}
    assert {ip: bucket_of(str2ip(ip)) for ip in known} == known


def test_matching_rules() -> None:
    t = tables([
        (1, "10.0.0.1", 32, 0, "any", None, "a"),
        (1, "10.0.0.1", 32, 5060, "udp", None, "b"),  # newer: looked at first
        (2, "10.0.0.0", 8, 5080, "tcp", "sip:*@x.org", "net"),
        (0, "10.0.0.9", 32, 0, "any", "*.example.com", "any-group"),
        (3, "10.0.0.5", 30, 0, "any", None, None),
    ])
    assert t.match(1, str2ip("10.0.0.1"), 5060, 1, None) == ("b",)
    assert t.match(1, str2ip("10.0.0.1"), 5061, 1, None) == ("a",)
    assert t.match(0, str2ip("10.0.0.1"), 0, 0, None) == ("b",)  # wildcards on the call side
    assert t.match(2, str2ip("10.0.0.1"), 0, 0, None) == ("net",)  # hash group 1 only: subnet
    assert t.match(2, str2ip("10.200.1.1"), 5080, 2, "sip:bob@x.org") == ("net",)
    assert t.match(2, str2ip("10.200.1.1"), 5080, 2, "sip:bob@y.org") is None
    assert t.match(2, str2ip("10.200.1.1"), 5081, 2, None) is None
    assert t.match(2, str2ip("10.200.1.1"), 5080, 1, None) is None
    assert t.match(2, str2ip("11.0.0.1"), 5080, 2, None) is None
    assert t.match(7, str2ip("10.0.0.9"), 1, 3, "www.example.com") == ("any-group",)
    assert t.match(7, str2ip("10.0.0.9"), 1, 3, ".example.com") is None  # FNM_PERIOD
    assert t.match(3, str2ip("10.0.0.6"), 9, 4, None) == (None,)
    assert t.match(3, str2ip("10.0.0.8"), 9, 4, None) is None
    assert t.find_group(str2ip("10.0.0.1"), 7) == 1
    assert t.find_group(str2ip("10.3.3.3"), 5080) == 2
    assert t.find_group(str2ip("10.3.3.3"), 5060) == -1
    # buckets 23 and 30 (1.6's hash of 10.0.0.1 and 10.0.0.9), newest row first
    assert t.hash_lines() == ["  23 <10.0.0.1,1, 5060, 1, NULL, b>",
                              "  23 <10.0.0.1,1, 0, 0, NULL, a>",
                              "  30 <10.0.0.9,0, 0, 0, *.example.com, any-group>"]
    assert t.subnet_lines() == ["   0 <2, 10.0.0.0, 255.0.0.0, 5080>",
                                "   1 <3, 10.0.0.4, 255.255.255.252, 0>"]


def test_bad_rows_fail_the_load_and_odd_rows_are_skipped() -> None:
    base = ("10.0.0.1", 1, 32, 0, "any", None, None, 1)
    for i, bad in ((0, None), (1, -1), (1, None), (2, 0), (2, 33), (3, None), (4, None),
                   (5, 7), (6, 7)):
        row = list(base)
        row[i] = bad
        with pytest.raises(AddressLoadError, match="on row 0"):
            build_tables([tuple(row)])
    hash_rows, subnets = build_tables([("", 1, 32, 0, "any", None, None, 1),
                                       ("host.example.com", 1, 32, 0, "any", None, None, 2),
                                       ("10.0.0.1", 1, 32, 0, "none", None, None, 3),
                                       ("10.0.0.1", 1, 32, 0, "ws", None, None, 4),
                                       ("10.0.0.1", 1, 32, 0, "TCP", "", "", 5)])
    assert hash_rows == [(str2ip("10.0.0.1"), 1, 0, 2, None, None)] and subnets == []


def test_subnets_sorted_by_group_stably() -> None:
    t = tables([(5, "10.1.0.0", 16, 0, "any", None, "five"),
                (2, "10.0.0.0", 8, 0, "any", None, "two-a"),
                (2, "10.2.0.0", 16, 0, "any", None, "two-b")])
    assert [line.split("<")[1] for line in t.subnet_lines()] == [
        "2, 10.0.0.0, 255.0.0.0, 0>", "2, 10.2.0.0, 255.255.0.0, 0>",
        "5, 10.1.0.0, 255.255.0.0, 0>"]
    assert t.match(0, str2ip("10.1.2.3"), 0, 0, None) == ("two-a",)
    assert t.find_group(str2ip("10.1.2.3"), 0) == 2


@pytest.mark.parametrize("pattern, text, expected", [
    ("sip:*@example.com", "sip:bob@example.com", True),
    ("sip:*@example.com", "sip:bob@example.org", False),
    ("sip:?ob@*", "sip:bob@x", True),
    ("sip:[a-c]*", "sip:bob", True),
    ("sip:[!a-c]*", "sip:bob", False),
    ("sip:[^a-c]*", "sip:dan", True),
    ("sip:[[:digit:]]*", "sip:1x", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a[b", "a[b", True),          # an unterminated [ is literal
    ("trailing\\", "trailing\\", False),
    ("*", ".hidden", False),       # FNM_PERIOD
    (".*", ".hidden", True),
    ("*x", "a/b/x", True),         # no FNM_PATHNAME
    ("ABC", "abc", False),
])
def test_fnmatch_patterns(pattern: str, text: str, expected: bool) -> None:
    assert compile_pattern(pattern)(text) is expected


def test_store_swaps_whole_tables_seen_by_a_forked_process() -> None:
    seg = Segment(1 << 20)
    store = AddressStore(seg)
    assert store.current().match(0, str2ip("10.0.0.1"), 0, 0, None) is None
    rows = [("10.0.0.1", 1, 32, 0, "any", None, "one", 1)]
    store.publish(encode(*build_tables(rows)))
    used = seg.used
    def reload() -> None:
        store.publish(encode(*build_tables([("10.0.0.1", 1, 32, 0, "any", None, "two", 1)])))

    out = fork_and_check(lambda: store.current().match(0, str2ip("10.0.0.1"), 0, 0, None),
                         reload)
    assert out == "[('one',), ('two',)]"
    assert store.generation == 2
    assert seg.used == used  # the old table's block was given back
    seg.check()


def test_mi_dumps_without_db_url(cfgdir: Path) -> None:
    r = runner(cfgdir, "1")
    mod = r.compiled.registry.modules["permissions"]
    for handler in (mi_address_dump, mi_subnet_dump):
        rep = handler([], r.rt, mod)
        assert (rep.code, rep.reason) == (500, "Trusted-module not in use")
    assert "disabling allow_address" in r.log_text()


def test_readers_never_see_a_mixed_table() -> None:
    """A process reading while another publishes tables again and again always
    gets one whole table: every row from the same generation."""
    seg = Segment(4 << 20)
    store = AddressStore(seg)

    def table(gen: int) -> bytes:
        rows = [(f"10.0.{i // 250}.{i % 250}", 1, 32, 0, "any", None, f"g{gen}-{i}", i)
                for i in range(500)]
        return encode(*build_tables(rows))

    store.publish(table(0))
    up_r, up_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the reader: until it sees the last table (or 5 s pass)
        try:
            os.close(up_r)
            os.write(up_w, b"1")
            bad, gens, deadline = 0, set(), time.monotonic() + 5
            while "g59" not in gens and time.monotonic() < deadline:
                rows = store.current().hash_rows
                infos = {row[5].partition("-")[0] for row in rows}
                bad += len(infos) != 1 or len(rows) != 500
                gens |= infos
            os.write(up_w, f"{bad} {len(gens)} {'g59' in gens}".encode())
        finally:
            os._exit(0)
    os.close(up_w)
    try:
        assert os.read(up_r, 1) == b"1"
        for gen in range(1, 60):
            store.publish(table(gen))
            time.sleep(0.002)  # let the reader run between two reloads too
        out = os.read(up_r, 100).decode()
    finally:
        os.close(up_r)
        os.waitpid(pid, 0)
    bad, seen, last = out.split()
    assert (bad, last) == ("0", "True")
    assert int(seen) > 2, seen  # it did read while the tables changed
    seg.check()
