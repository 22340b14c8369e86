"""MI over JSON-RPC 2.0, as OpenSIPS 3.x's mi_http serves it; no I/O here.

Request: `{"jsonrpc": "2.0", "method": CMD, "params": [..] | {..}, "id": ID}`.
Positional params become the command's arguments in order; named params are
put in the order of the command's 3.x parameter names (`MICmdExport.params`);
a list value becomes one argument per element (`{"statistics": ["a", "b"]}`),
numbers are written in decimal.

Response, compact as cJSON prints it: `{"jsonrpc":"2.0","result":R,"id":ID}`
or `{"jsonrpc":"2.0","error":{"code":C,"message":M[,"data":D]},"id":ID}`.
A reply whose code is not 2xx is an error with that code and reason (3.x's
init_mi_error); a handler that fails is -32000 "Server error". A request
without an id is a notification: no body (HTTP 202) unless it could not be
parsed or was not a valid request.

A reply tree becomes the result this way (the way 2.x's mi_json and 3.x's
core commands shape it): `reply.json` when the handler set it; "OK" for a
tree without children; a list of values when every child is a bare value
(`which`, `arg`); otherwise an object whose keys are the children's names
(a name seen more than once collects its nodes in a list). A child with
only a value maps to that value; one with attributes or children maps to
an object with `value` (when it has one), its attributes as keys, and its
children's keys (or `children` when those form a list).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .tree import NO_JSON, MINode, MINodeArg, MIReply

PARSE_ERROR = (-32700, "Parse error")
INVALID_REQUEST = (-32600, "Invalid Request")
METHOD_NOT_FOUND = (-32601, "Method not found")
INVALID_PARAMS = (-32602, "Invalid params")
SERVER_ERROR = (-32000, "Server error")

ERR_NO_PARAMS = "Too few or too many parameters"
ERR_MATCH_PARAMS = "Named parameters do not match"
ERR_CMD_NULL = "Command handler returned null"

_ABSENT: Any = object()


@dataclass(slots=True)
class JsonRpcRequest:
    """A parsed request; `id` is _ABSENT for a notification."""

    method: str | None = None
    params: Any = None
    id: Any = _ABSENT
    error: tuple[int, str] | None = None  # PARSE_ERROR or INVALID_REQUEST

    @property
    def is_notification(self) -> bool:
        return self.id is _ABSENT


def parse_request(body: bytes | str) -> JsonRpcRequest:
    """A JSON-RPC request object, checked as 3.x checks it."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return JsonRpcRequest(error=PARSE_ERROR, id=None)
    if not isinstance(obj, dict):
        return JsonRpcRequest(error=INVALID_REQUEST, id=None)
    req = JsonRpcRequest(id=obj.get("id", _ABSENT))
    invalid = False
    if not req.is_notification and (isinstance(req.id, bool) or
                                    not isinstance(req.id, (int, float, str, type(None)))):
        invalid = True
        req.id = None
    if obj.get("jsonrpc") != "2.0":
        invalid = True
    method = obj.get("method")
    if isinstance(method, str):
        req.method = method
    else:
        invalid = True
    params = obj.get("params")
    if params is not None:
        if not isinstance(params, (list, dict)):
            invalid = True
        elif params:
            req.params = params
    if invalid:
        req.error = INVALID_REQUEST
    return req


def _arg_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(value, separators=(",", ":"))


def _flatten(value: Any, out: list[MINodeArg]) -> None:
    if isinstance(value, list):
        for v in value:
            out.append(MINodeArg(None, _arg_text(v)))
    elif value is not None:
        out.append(MINodeArg(None, _arg_text(value)))


def params_to_args(params: Any, names: tuple[str, ...] | list[str] = ()) -> list[MINodeArg] | str:
    """JSON-RPC params as MI arguments, or the `data` text of an Invalid params error."""
    out: list[MINodeArg] = []
    if params is None:
        return out
    if isinstance(params, list):
        for v in params:
            _flatten(v, out)
        return out
    if not names:  # a command without 3.x names: take them as given
        for v in params.values():
            _flatten(v, out)
        return out
    if any(k not in names for k in params):
        return ERR_MATCH_PARAMS
    given = [n in params for n in names]
    # the names given must be the first ones of the list (no hole before the last)
    if any(given[i + 1] and not given[i] for i in range(len(given) - 1)):
        return ERR_MATCH_PARAMS
    for n in names:
        if n in params:
            _flatten(params[n], out)
    return out


# ------------------------------------------------------------ tree -> JSON

def _is_bare(node: MINode) -> bool:
    return node.name is None and not node.attrs and not node.kids


def kids_to_json(kids: list[MINode]) -> Any:
    """A node's children as a list of values or an object."""
    if all(_is_bare(k) for k in kids):
        return [k.value for k in kids]
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for k in kids:
        key = k.name if k.name is not None else ""
        val = node_to_json(k)
        if key not in out:
            out[key] = val
        elif key in repeated:
            out[key].append(val)
        else:
            out[key] = [out[key], val]
            repeated.add(key)
    return out


def node_to_json(node: MINode) -> Any:
    """One node: its value, or an object of value, attributes and children."""
    if not node.attrs and not node.kids:
        return node.value
    out: dict[str, Any] = {}
    if node.value is not None:
        out["value"] = node.value
    for a in node.attrs:
        out[a.name if a.name is not None else ""] = a.value
    if node.kids:
        sub = kids_to_json(node.kids)
        if isinstance(sub, dict):
            for k, v in sub.items():
                out.setdefault(k, v)
        else:
            out["children"] = sub
    return out


def reply_result(reply: MIReply) -> Any:
    """The JSON-RPC `result` of a successful reply."""
    if reply.json is not NO_JSON:
        return reply.json
    if not reply.kids:
        return "OK"
    return kids_to_json(reply.kids)


# ------------------------------------------------------------ responses

def error_object(code: int, message: str, data: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return err


def dumps(obj: Any, pretty: bool = False) -> bytes:
    if pretty:
        text = json.dumps(obj, ensure_ascii=False, indent="\t", separators=(",", ":\t"))
    else:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "replace")


def response(req_id: Any, *, result: Any = _ABSENT, error: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0"}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    out["id"] = None if req_id is _ABSENT else req_id
    return out


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """What the JSON side needs to know about a command."""

    no_input: bool
    params: tuple[str, ...]


def handle_request(
    body: bytes | str,
    lookup: Callable[[str], CommandInfo | None],
    run: Callable[[str, list[MINodeArg]], MIReply | None],
) -> dict[str, Any] | None:
    """Answer one JSON-RPC request; None for a notification that gets no answer.

    `lookup(name)` describes a command (None: unknown), `run(name, args)`
    executes it.
    """
    req = parse_request(body)
    if req.error is not None:
        return response(req.id, error=error_object(*req.error))
    assert req.method is not None
    info = lookup(req.method)
    if info is None:
        out = response(req.id, error=error_object(*METHOD_NOT_FOUND))
    else:
        args: list[MINodeArg] | str = [] if info.no_input else params_to_args(req.params, info.params)
        if isinstance(args, str):
            out = response(req.id, error=error_object(*INVALID_PARAMS, data=args))
        else:
            reply = run(req.method, args)
            if reply is None:
                out = response(req.id, error=error_object(*SERVER_ERROR, data=ERR_CMD_NULL))
            elif not reply.is_ok:
                out = response(req.id, error=error_object(reply.code, reply.reason))
            else:
                out = response(req.id, result=reply_result(reply))
    if req.is_notification:
        return None
    return out
