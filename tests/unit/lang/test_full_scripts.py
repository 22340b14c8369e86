"""Two complete 1.6-style scripts (written for these tests, using the
constructs of 1.6's etc/opensips.cfg and examples/) parse into the expected
AST; every node carries its location (checklist 40)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipserver.lang import ast
from sipserver.lang.parser import parse_file

from .util import kw, num, pv, s, var

SCRIPTS = Path(__file__).with_name("scripts")


def walk(node: object) -> Iterator[ast.Node]:
    """Every AST node below (and including) ``node``."""
    if isinstance(node, ast.Node):
        yield node
        for f in dataclasses.fields(node):
            yield from walk(getattr(node, f.name))
    elif isinstance(node, list | tuple):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from walk(item)


@pytest.fixture(scope="module")
def residential() -> ast.Script:
    return parse_file(SCRIPTS / "residential.cfg")


@pytest.fixture(scope="module")
def edge() -> ast.Script:
    return parse_file(SCRIPTS / "edge_gateway.cfg")


@pytest.mark.parametrize("name", ["residential.cfg", "edge_gateway.cfg"])
def test_every_node_has_a_location(name: str) -> None:
    path = SCRIPTS / name
    script = parse_file(path)
    lines = path.read_text().count("\n") + 1
    nodes = list(walk(script.items))
    assert len(nodes) > 300
    for node in nodes:
        assert node.file == str(path), node
        assert 1 <= node.line <= lines, node
        assert node.col >= 1, node


# ------------------------------------------------------------------ residential.cfg


def test_residential_top_level(residential: ast.Script) -> None:
    params = {p.name: p.value for p in residential.params}
    assert params["log_facility"] == ast.Ident("LOG_LOCAL1")
    assert params["children"] == num(8)
    assert params["rev_dns"] == num(0)
    assert params["listen"] == [ast.Socket("udp", ast.IPLit("192.0.2.10"), 5060),
                                ast.Socket("tcp", ast.IPLit("192.0.2.10"), 5060)]
    assert params["alias"] == [ast.Socket(None, ast.HostLit("voip.example.net"), 5060),
                               ast.Socket(None, ast.HostLit("example.net"))]
    assert len(residential.loadmodules) == 16
    assert {m.mpath for m in residential.loadmodules} == {"/usr/lib/opensips/modules/"}
    db_url = residential.modparams[4]
    assert (db_url.module, db_url.param) == ("usrloc|auth_db|msilo", "db_url")
    assert residential.modparams[-1].value == num(-1)


def test_residential_routes(residential: ast.Script) -> None:
    assert {k: sorted(v, key=str) for k, v in residential.routes.items()} == {
        "request": [None, "presence", "relay", "store_message"],
        "branch": ["per_branch"],
        "onreply": ["nat_reply"],
        "failure": ["missed"],
    }


def test_residential_main_route_details(residential: ast.Script) -> None:
    body = residential.main_route.body.body
    # msg:len check
    assert body[1].cond == ast.Compare(">=", kw("msg:len"), num(4096))
    # xlog with a string spanning two lines
    preload = body[6]
    xlog = preload.then.body[0]
    assert xlog == ast.Call("xlog", [s("L_ERR"), s(
        "Attempt to route with preloaded Route's [$fu/$tu/$ru/$ci]\n")], core=True)
    # !(method=="REGISTER") && from_uri==myself
    auth = body[7]
    assert auth.cond == ast.BoolOp(
        "and",
        ast.Not(ast.Compare("==", kw("method"), s("REGISTER"))),
        ast.Compare("==", kw("from_uri"), ast.MySelf()),
    )
    # !uri==myself
    assert body[10].cond == ast.Not(ast.Compare("==", kw("uri"), ast.MySelf()))
    # $rU==NULL
    assert body[13].cond == ast.Compare("==", pv("$rU", "rU"), ast.NullLit())
    # AVP alias assignment
    assert body[14] == ast.Assign(pv("$avp(caller)", "avp", "caller"), "=", pv("$fu", "fu"))
    # switch($retcode) with grouped case -1 / case -3
    lookup = body[15]
    switch = lookup.then.body[0]
    assert isinstance(switch, ast.Switch)
    assert [c.label for c in switch.cases] == [num(-1), num(-3), num(-2)]
    assert switch.cases[0].body.body == []
    assert switch.cases[1].body.body[-1] == ast.Exit()
    assert body[-1] == ast.RouteCall("relay")


def test_residential_sub_routes(residential: ast.Script) -> None:
    relay = residential.route("request", "relay").body.body
    assert relay[0].then.body[:3] == [
        ast.Call("t_on_branch", [s("per_branch")]),
        ast.Call("t_on_reply", [s("nat_reply")]),
        ast.Call("t_on_failure", [s("missed")]),
    ]
    presence = residential.route("request", "presence").body.body
    # `if (...) {...} else if (...) {...}` written over several lines
    assert presence[1].orelse.body[0].cond == ast.Call("is_method", [s("SUBSCRIBE")])
    reply = residential.route("onreply", "nat_reply").body.body
    assert reply[0].cond == ast.BoolOp(
        "and", ast.Call("isbflagset", [num(6)], core=True),
        ast.Compare("=~", kw("uri"), s("(183)|2[0-9][0-9]")))
    missed = residential.route("failure", "missed").body.body
    retry = missed[1].then.body
    assert [c.name for c in retry if isinstance(c, ast.Call)] == [
        "setflag", "revert_uri", "prefix", "rewritehostport", "append_branch", "t_on_failure",
        "t_relay"]


# ------------------------------------------------------------------ edge_gateway.cfg


def test_edge_top_level(edge: ast.Script) -> None:
    params = {p.name: p for p in edge.params}
    assert params["memdump"].written == "mem_dump"
    assert params["workdir"].value == s("/var/run/edge")
    assert params["user"].value == ast.Ident("opensips")
    assert params["group"].value == s("opensips")
    assert params["tos"].value == ast.Ident("IPTOS_LOWDELAY")
    listens = [p.value for p in edge.params if p.name == "listen"]
    assert listens == [
        [ast.Socket("udp", ast.IPLit("198.51.100.5"), 5060),
         ast.Socket("tcp", ast.IPLit("198.51.100.5"), 5060, ast.IPLit("203.0.113.5"), 5060)],
        [ast.Socket("tls", ast.IPLit("198.51.100.5"), 5061)],
        [ast.Socket("udp", ast.IPLit("2001:db8::5", 6), 5060)],
    ]
    assert params["alias"].value == [ast.Socket(None, s("edge.example.org"), 5060),
                                     ast.Socket(None, ast.HostLit("edge.example.org"))]
    bl = params["dst_blacklist"].value
    assert (bl.name, [r.negate for r in bl.rules]) == ("carriers_down", [False, True, False])
    assert [d.side for d in edge.tls_domains] == ["server", "client"]
    assert edge.modparams[-4].value == num(0x3840)


def test_edge_special_routes(edge: ast.Script) -> None:
    assert edge.route("startup") is not None
    assert edge.route("error") is not None
    assert edge.route("local") is not None
    assert [(t.name, t.interval) for t in edge.timer_routes] == [("gw_probe", 60),
                                                                  ("stats_dump", 300)]
    probe = edge.timer_routes[0].body.body
    assert probe[2] == ast.Assign(var("hour"), "=", ast.BinOp("%", var("ticks"), num(60)))
    assert probe[3].cond == ast.BoolOp(
        "and", ast.Compare("==", var("hour"), num(0)),
        ast.ExprCond(ast.BinOp("&", var("ticks"), num(1))))


def test_edge_main_route(edge: ast.Script) -> None:
    body = edge.main_route.body.body
    acl = body[2].cond
    assert isinstance(acl, ast.Not)
    assert acl.operand == ast.BoolOp(
        "or",
        ast.BoolOp("or", ast.BoolOp(
            "or",
            ast.Compare("==", kw("src_ip"), ast.NetLit(ast.IPLit("10.20.0.0"), 16)),
            ast.Compare("==", kw("src_ip"), ast.NetLit(ast.IPLit("192.0.2.0"), 24))),
            ast.Compare("==", kw("src_ip"), ast.MySelf())),
        ast.Compare("==", kw("dst_ip"), ast.NetLit(ast.IPLit("2001:db8::5", 6), 128)),
    )
    assert body[3].cond == ast.BoolOp("and", ast.Compare("==", kw("proto"), ast.ProtoLit("tls")),
                                      ast.Compare("==", kw("af"), num(2)))
    assert body[3].orelse.body[0].then.body == [ast.Call("force_tcp_alias", [], core=True)]
    assigns = [b for b in body if isinstance(b, ast.Assign)]
    assert assigns[0].value == pv("$(fu{uri.user})", "fu", transforms=["uri.user"])
    assert assigns[1].value.transforms == ["nameaddr.uri", "uri.host"]
    assert [a.value.index for a in assigns[2:5]] == [0, -1, "*"]
    assert assigns[5].value == ast.BinOp(
        "+", ast.BinOp("+", pv("$(ft{s.select,0,-})", "ft", transforms=["s.select,0,-"]),
                       s("-")), pv("$ci", "ci"))


def test_edge_gateway_selection(edge: ast.Script) -> None:
    body = edge.route("request", "pick_gateway").body.body
    assert body[0] == ast.Assign(pv("$avp(s:gw)", "avp", "s:gw"), ":=", ast.NullLit())
    loop = body[5]
    assert isinstance(loop, ast.While)
    assert loop.body.body[0].cond == ast.Compare(
        "!=", pv("$(avp(s:gw)[$var(i)])", "avp", "s:gw", var("i")), ast.NullLit())
    by_count, by_method = body[6], body[7]
    assert by_count.default.body.body[-1] == ast.Call("serialize_branches", [num(1)], core=True)
    assert [c.label for c in by_method.cases] == [s("INVITE"), s("OPTIONS")]
    assert [c.brk for c in by_method.cases] == [True, False]
    failure = edge.route("failure", "next_gw").body.body
    assert failure[2].then.body[1] == ast.Call(
        "force_send_socket", [ast.Socket("tcp", ast.IPLit("198.51.100.5"), 5060)], core=True)
