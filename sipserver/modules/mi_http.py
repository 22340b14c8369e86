"""mi_http: the MI as JSON-RPC 2.0 over HTTP, as OpenSIPS 3.x serves it.

Not a 1.6 module: it comes from OpenSIPS 3.x so that 3.x tools (the
`opensips` Python package's `opensips-mi` and MI client classes,
opensips-cli) drive sipserver unchanged::

    loadmodule "httpd.so"
    loadmodule "mi_http.so"
    modparam("httpd", "port", 8888)
    # POST http://<ip>:8888/mi  {"jsonrpc":"2.0","method":"ps","id":1}

It runs in the httpd process. Every MI command of the server answers;
JSON-RPC mapping in sipserver.mi.json. HTTP: POST only (405 otherwise),
an empty body is 400, a notification (no id) gets 202 and no body. An
async command (t_uac_dlg) answers with its final reply only; its request
waits in its own thread while other requests are served.

Parameters: root (the URL path, default "mi"), pretty_printing (0/1).
"""

from __future__ import annotations

import threading
from typing import Any

from ..core.exports import LoadedModule, ModuleExports, ParamExport
from ..core.modload import ModuleError
from ..mi.json import CommandInfo, dumps, handle_request
from ..mi.pending import PendingReply
from ..mi.registry import mi_registry
from ..mi.tree import MINodeArg, MIReply
from . import httpd

CONTENT_TYPE = "application/json"

# the httpd process may serve several clients at once; commands run one at a time
_LOCK = threading.Lock()


class MIHttp:
    def __init__(self, module: LoadedModule, pretty: bool) -> None:
        self.module = module
        self.pretty = pretty

    def lookup(self, name: str) -> CommandInfo | None:
        cmd = mi_registry(self.module.rt).lookup(name)
        if cmd is None:
            return None
        return CommandInfo(cmd.export.no_input, tuple(cmd.export.params))

    def run(self, name: str, args: list[MINodeArg]) -> MIReply | None:
        mi = mi_registry(self.module.rt)
        cmd = mi.lookup(name)
        if cmd is None:
            return None
        with _LOCK:
            reply = mi.execute(cmd, args)
        if isinstance(reply, PendingReply):
            # an async command: this request's thread waits for the final reply
            # (bounded by the command), the other clients are served meanwhile
            return reply.wait()
        return reply

    def page(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        if method != "POST":
            return 405, "text/plain", b"Method Not Allowed\n"
        if not body:
            return 400, "text/plain", b"Bad Request\n"
        out = handle_request(body, self.lookup, self.run)
        if out is None:
            return 202, CONTENT_TYPE, b""
        return 200, CONTENT_TYPE, dumps(out, self.pretty)


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    registry = getattr(rt, "registry", None)
    hmod = registry.modules.get("httpd") if registry is not None else None
    if hmod is None:
        raise ModuleError('mi_http: needs the httpd module (loadmodule "httpd.so" before it)')
    root = module.params.get("root") or ""
    if not root.strip("/"):
        raise ModuleError("mi_http: root must not be empty")
    pretty = module.params.get("pretty_printing")
    if pretty not in (0, 1):
        raise ModuleError(f"mi_http: pretty_printing must be 0 or 1 (got {pretty!r})")
    state = MIHttp(module, bool(pretty))
    module.state = state
    httpd.httpd_api(hmod).register_root(root, module.name, state.page)


exports = ModuleExports(
    name="mi_http",
    params=[
        ParamExport("root", str, "mi"),
        ParamExport("pretty_printing", int, 0),
    ],
    deps=("httpd",),
    mod_init=_mod_init,
)
