"""permissions' MI commands (1.6 permissions mi.c).

* `address_reload`: 200 OK (also without db_url), or 400
  `Trusted table reload failed` (the table in use stays).
* `address_dump`: 200 OK and one value line per address row,
  `%4d <ip,grp, port, proto, pattern, info>` (bucket, NULL for no
  pattern/info, proto as 1.6 numbers it: 0 any, 1 udp, 2 tcp, 3 tls,
  4 sctp); 500 `Trusted-module not in use` without db_url.
* `subnet_dump`: 200 OK and `%4d <grp, network, netmask, port>` lines
  (1.6 crashed without db_url; here the same 500 as address_dump).
* `allow_uri basename uri contact`: the (uri, contact) pair against the
  allow/deny pair whose allow file is basename+allow_suffix, loaded by the
  script: 200 OK or 403 Forbidden (also when no such file was loaded).
"""

from __future__ import annotations

from typing import Any

from ...core.runtime import L_ERR
from ...mi.tree import MIReply, missing_params
from .routing import allow_test, resolve_path
from .state import PermState

MAX_FILE_LEN = 128
MAX_URI_SIZE = 1024


def _state(module: Any) -> PermState | None:
    st = getattr(module, "state", None)
    return st if isinstance(st, PermState) else None


def mi_address_reload(args: list[Any], rt: Any, module: Any) -> MIReply:
    st = _state(module)
    if st is None or st.store is None:
        return MIReply.ok()
    if st.reload_logged(rt):
        return MIReply.ok()
    return MIReply.error(400, "Trusted table reload failed")


def _dump(module: Any, subnets: bool) -> MIReply:
    st = _state(module)
    tables = st.tables() if st is not None else None
    if tables is None:
        return MIReply.error(500, "Trusted-module not in use")
    rpl = MIReply.ok()
    for line in (tables.subnet_lines() if subnets else tables.hash_lines()):
        rpl.add(None, line)
    return rpl


def mi_address_dump(args: list[Any], rt: Any, module: Any) -> MIReply:
    return _dump(module, False)


def mi_subnet_dump(args: list[Any], rt: Any, module: Any) -> MIReply:
    return _dump(module, True)


def mi_allow_uri(args: list[Any], rt: Any, module: Any) -> MIReply:
    if len(args) != 3:
        return missing_params()
    st = _state(module)
    basename, uri, contact = (a.text for a in args)
    suffix = st.allow_suffix if st is not None else ".allow"
    if len(basename) + len(suffix) + 1 > MAX_FILE_LEN:
        return MIReply.error(404, "Basename is too long")
    if len(uri) > MAX_URI_SIZE:
        return MIReply.error(404, "URI is too long")
    if len(contact) > MAX_URI_SIZE:
        return MIReply.error(404, "Contact is too long")
    if st is None:
        return MIReply.error(403, "Forbidden")
    pair = st.files.by_allow_path(resolve_path(basename + suffix, st.base_dir))
    if pair is None:
        rt.log(L_ERR, f"permissions: file <{basename + suffix}> has not been loaded")
        return MIReply.error(403, "Forbidden")
    if allow_test(pair, uri, contact):
        return MIReply.ok()
    return MIReply.error(403, "Forbidden")
