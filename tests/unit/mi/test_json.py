"""JSON-RPC 2.0 as OpenSIPS 3.x's mi_http: requests, params, tree mapping, errors."""

from __future__ import annotations

import json

import pytest

from sipserver.mi.json import (
    CommandInfo,
    dumps,
    handle_request,
    params_to_args,
    parse_request,
    reply_result,
)
from sipserver.mi.tree import MINodeArg, MIReply

COMMANDS = {
    "echo": CommandInfo(False, ()),
    "get_statistics": CommandInfo(False, ("statistics",)),
    "cache_store": CommandInfo(False, ("system", "attr", "value", "expire")),
    "ps": CommandInfo(True, ()),
    "fail": CommandInfo(False, ()),
    "err": CommandInfo(False, ()),
}
seen: list[tuple[str, list[MINodeArg]]] = []


def run(name: str, args: list[MINodeArg]) -> MIReply | None:
    seen.append((name, args))
    if name == "fail":
        return None
    if name == "err":
        return MIReply.error(404, "Statistics Not Found")
    r = MIReply.ok()
    for a in args:
        r.add(None, a.value)
    return r


def call(body: object) -> dict | None:
    seen.clear()
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return handle_request(text, COMMANDS.get, run)


def req(method: str, params: object = None, id: object = "7") -> dict:
    out: dict = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        out["params"] = params
    return out


def test_result_and_id_echo() -> None:
    assert call(req("echo", ["a", 1, 2.0, True])) == {
        "jsonrpc": "2.0", "result": ["a", "1", "2", "1"], "id": "7"}
    assert call(req("echo", [], id=5))["id"] == 5  # type: ignore[index]
    assert call(req("echo", id=None)) == {"jsonrpc": "2.0", "result": "OK", "id": None}


def test_named_params_follow_the_3x_names() -> None:
    call(req("cache_store", {"value": "v", "attr": "a", "system": "local"}))
    assert [a.value for a in seen[0][1]] == ["local", "a", "v"]
    call(req("get_statistics", {"statistics": ["core:", "tm:rcv"]}))
    assert [a.value for a in seen[0][1]] == ["core:", "tm:rcv"]
    call(req("get_statistics", [["all"]]))
    assert [a.value for a in seen[0][1]] == ["all"]
    # no 3.x names: the values in the order given
    call(req("echo", {"x": "1", "y": "2"}))
    assert [a.value for a in seen[0][1]] == ["1", "2"]


def test_named_params_that_do_not_match() -> None:
    out = call(req("cache_store", {"system": "local", "bogus": 1}))
    assert out == {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params",
                                                "data": "Named parameters do not match"}, "id": "7"}
    assert seen == []
    # a hole before the last name given
    assert params_to_args({"system": "s", "value": "v"}, ("system", "attr", "value")) == \
        "Named parameters do not match"


def test_no_input_commands_ignore_params() -> None:
    call(req("ps", ["x"]))
    assert seen == [("ps", [])]


def test_errors() -> None:
    assert call(req("nope")) == {"jsonrpc": "2.0", "error": {"code": -32601,
                                                              "message": "Method not found"}, "id": "7"}
    assert call(req("fail"))["error"] == {"code": -32000, "message": "Server error",  # type: ignore[index]
                                          "data": "Command handler returned null"}
    assert call(req("err"))["error"] == {"code": 404, "message": "Statistics Not Found"}  # type: ignore[index]
    assert call(b"{nope") == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                              "id": None}
    for bad in ({"jsonrpc": "1.0", "method": "echo", "id": 1}, {"jsonrpc": "2.0", "id": 1},
                {"jsonrpc": "2.0", "method": "echo", "params": "x", "id": 1},
                {"jsonrpc": "2.0", "method": "echo", "id": [1]}, [1, 2]):
        out = call(bad)
        assert out is not None and out["error"]["code"] == -32600, bad


def test_notifications_get_no_answer_unless_invalid() -> None:
    assert call({"jsonrpc": "2.0", "method": "echo"}) is None
    assert call({"jsonrpc": "2.0", "method": "nope"}) is None
    assert call({"jsonrpc": "2.0"})["error"]["code"] == -32600  # type: ignore[index]


def test_parse_request_empty_params_are_no_params() -> None:
    assert parse_request(json.dumps(req("echo", {}))).params is None
    assert parse_request(json.dumps(req("echo", []))).params is None


def tree(*kids: tuple) -> MIReply:
    r = MIReply.ok()
    for name, value, attrs in kids:
        n = r.add(name, value)
        for a in attrs:
            n.attr(*a)
    return r


def test_tree_mapping() -> None:
    assert reply_result(MIReply.ok()) == "OK"
    assert reply_result(tree((None, "a", ()), (None, "b", ()))) == ["a", "b"]
    assert reply_result(tree(("Now", "x", ()), ("Up time", "3 [sec]", ()))) == \
        {"Now": "x", "Up time": "3 [sec]"}
    assert reply_result(tree(("Process", None, [("ID", 0), ("PID", 9)]),
                             ("Process", None, [("ID", 1), ("PID", 10)]))) == \
        {"Process": [{"ID": "0", "PID": "9"}, {"ID": "1", "PID": "10"}]}
    r = MIReply.ok()
    aor = r.add("AOR", "alice").attr("expires", 30)
    aor.add("Contact", "sip:a@b").attr("q", "1")
    aor.add(None, "x")
    assert reply_result(r) == {"AOR": {"value": "alice", "expires": "30",
                                       "Contact": {"value": "sip:a@b", "q": "1"}, "": "x"}}
    r = MIReply.ok()
    r.add("L", "v").add(None, "only")
    assert reply_result(r) == {"L": {"value": "v", "children": ["only"]}}
    r = MIReply.ok()
    r.json = {"exact": 1}
    assert reply_result(r) == {"exact": 1}


@pytest.mark.parametrize("pretty", [False, True])
def test_dumps_is_compact_or_tabbed(pretty: bool) -> None:
    text = dumps({"jsonrpc": "2.0", "result": "é"}, pretty)
    assert json.loads(text) == {"jsonrpc": "2.0", "result": "é"}
    assert (b"\n\t" in text) is pretty
    if not pretty:
        assert text == '{"jsonrpc":"2.0","result":"é"}'.encode()
