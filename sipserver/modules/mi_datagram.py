"""mi_datagram: the MI over datagrams (UNIX socket or UDP), 1.6's text protocol.

One request per datagram (`:cmd:\\n` then the arguments), one reply datagram
back to the sender, sent from the receiving socket, without the FIFO's
final empty line (spec modules-core §1.3, §1.4, §1.6). The socket is bound
in mod_init, in the master, so the `children_count` "MI Datagram"
processes share it, as in 1.6.

Parameters: socket_name (a path, or `udp:IP:port` with port 1024-65535),
children_count, socket_timeout (ms to send a reply), unix_socket_mode,
unix_socket_group / unix_socket_user (names or numbers), reply_indent.

An async command (t_uac_dlg) leaves the process free: each of its replies
is sent, as its own datagram to the requester, when it arrives (1.6), and
other requests are answered meanwhile (sipserver.mi.pending).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import stat
from collections.abc import Callable
from typing import Any

from ..core.exports import LoadedModule, ModuleExports, ParamExport, ProcExport
from ..core.modload import ModuleError
from ..core.runtime import L_DBG, L_ERR, L_INFO, L_WARN
from ..mi.paths import resolve_group, resolve_user
from ..mi.pending import PendingReply, Waiting
from ..mi.procloop import Stopped, StopWatch
from ..mi.registry import mi_registry
from ..mi.text import (
    DATAGRAM_SOCK_BUF_SIZE,
    DGRAM_FAILED,
    DGRAM_NOT_AVAILABLE,
    DGRAM_PARSE_ERROR,
    MIParseError,
    datagram_command,
    format_datagram_reply,
    parse_datagram_args,
)
from ..mi.tree import MIReply

MAX_NB_PORT = 65535


class DatagramState:
    def __init__(self, sock: socket.socket, unix_path: str | None, indent: str,
                 timeout_ms: int) -> None:
        self.sock = sock
        self.unix_path = unix_path
        self.indent = indent
        self.timeout_ms = timeout_ms


def parse_socket_name(name: str) -> tuple[str, Any]:
    """("unix", path) or ("udp", (family, ip, port)) for a socket_name value."""
    if not name.startswith("udp:"):
        return "unix", name
    rest = name[4:]
    if not rest:
        raise ModuleError(f"mi_datagram: malformed ip address in socket_name {name!r}")
    host, sep, port_s = rest.rpartition(":")
    if not sep or not host:
        raise ModuleError(f"mi_datagram: no port specified in socket_name {name!r} "
                          '(expected "udp:IP:port")')
    if not port_s.isdigit():
        raise ModuleError(f"mi_datagram: there is not a valid number port in {name!r}")
    port = int(port_s)
    if port < 1024 or port > MAX_NB_PORT:
        raise ModuleError(f"mi_datagram: invalid port number {port}; must be in [1024,{MAX_NB_PORT}]")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return "udp", (family, str(ip), port)
    except ValueError:
        pass
    try:
        info = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except socket.gaierror:
        raise ModuleError(f"mi_datagram: failed to resolve {host}") from None
    family, _, _, _, addr = info[0]
    return "udp", (family, addr[0], port)


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    p = module.params
    name = p.get("socket_name")
    if not name:
        raise ModuleError("mi_datagram: no DATAGRAM_ socket configured (set socket_name)")
    children = p.get("children_count")
    if not isinstance(children, int) or children < 1:
        raise ModuleError(f"mi_datagram: bad children_count {children!r} (must be 1 or more)")
    timeout = p.get("socket_timeout")
    if not isinstance(timeout, int) or timeout < 0:
        raise ModuleError(f"mi_datagram: bad socket_timeout {timeout!r} (milliseconds)")
    kind, where = parse_socket_name(name)
    unix_path: str | None = None
    if kind == "udp":
        family, ip, port = where
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((ip, port))
        except OSError as e:
            sock.close()
            raise ModuleError(f"mi_datagram: bind udp:{ip}:{port}: {e.strerror}") from None
    else:
        unix_path = where
        mode = p.get("unix_socket_mode")
        if not isinstance(mode, int) or mode < 0 or mode > 0o7777:
            raise ModuleError(f"mi_datagram: bad unix_socket_mode {mode!r}")
        if mode == 0:
            if rt is not None:
                rt.log(L_WARN, "mi_datagram: cannot specify unix_socket_mode = 0, "
                               "forcing it to rw-------")
            mode = 0o600
        uid, gid = resolve_user(p.get("unix_socket_user"), "unix_socket_user")
        group = p.get("unix_socket_group")
        if group is not None and group != -1:
            gid = resolve_group(group, "unix_socket_group")
        try:
            os.lstat(unix_path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise ModuleError(f"mi_datagram: socket stat failed: {e.strerror}") from None
        else:
            if rt is not None:
                rt.log(L_INFO, f"mi_datagram: the socket {unix_path} already exists, deleting it")
            try:
                os.unlink(unix_path)
            except OSError as e:
                raise ModuleError(f"mi_datagram: cannot delete old socket: {e.strerror}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(unix_path)
            st = os.lstat(unix_path)
            if not stat.S_ISSOCK(st.st_mode) or st.st_nlink > 1:
                raise OSError(errno.EPERM, f"{unix_path} is not a plain socket")
            os.chmod(unix_path, mode)
            if uid != -1 or gid != -1:
                os.chown(unix_path, uid, gid)
        except OSError as e:
            sock.close()
            raise ModuleError(f"mi_datagram: cannot set up socket {unix_path}: "
                              f"{e.strerror or e}") from None
    sock.setblocking(False)
    indent = p.get("reply_indent")
    module.state = DatagramState(sock, unix_path, indent or "", timeout)


def _destroy(module: LoadedModule) -> None:
    st = module.state
    if isinstance(st, DatagramState):
        try:
            st.sock.close()
        except OSError:
            pass
        if st.unix_path:
            try:
                if stat.S_ISSOCK(os.lstat(st.unix_path).st_mode):
                    os.unlink(st.unix_path)
            except OSError:
                pass


def answer(mi: Any, data: bytes, indent: str) -> bytes | PendingReply | None:
    """The reply datagram for one request datagram (None: send nothing), or
    the pending answer of an async command (its replies are sent as they come)."""
    first = datagram_command(data)
    cmd = mi.lookup(first[0]) if first is not None else None
    if first is None or cmd is None:
        return DGRAM_NOT_AVAILABLE
    args = None
    if not cmd.export.no_input:
        try:
            args = parse_datagram_args(first[1])
        except MIParseError:
            return DGRAM_PARSE_ERROR
    reply = mi.execute(cmd, args)
    if isinstance(reply, PendingReply):
        return reply
    if cmd.export.no_reply:
        return None
    if reply is None:
        return DGRAM_FAILED
    return format_datagram_reply(reply, indent)


def _send(st: DatagramState, watch: StopWatch, data: bytes, addr: Any) -> None:
    sock = st.sock
    for attempt in range(2):
        try:
            sock.sendto(data, addr)
            return
        except BlockingIOError:
            if attempt or not watch.wait({sock.fileno(): select.POLLOUT}, st.timeout_ms / 1000):
                raise TimeoutError("send timed out") from None


def _reply(rt: Any, st: DatagramState, watch: StopWatch, data: bytes, addr: Any) -> None:
    try:
        _send(st, watch, data, addr)
    except (OSError, TimeoutError) as e:
        rt.log(L_ERR, f"mi_datagram: failed to send the response: {e}")


def _deliverer(rt: Any, st: DatagramState, watch: StopWatch,
               addr: Any) -> Callable[[MIReply, bool], None]:
    """Sends each reply of an async command as its own datagram (1.6)."""
    def deliver(reply: MIReply, final: bool) -> None:
        data = format_datagram_reply(reply, st.indent)
        if data is None:  # too big for a datagram: 1.6 sends nothing
            rt.log(L_ERR, "mi_datagram: the reply does not fit in a datagram")
            return
        _reply(rt, st, watch, data, addr)
    return deliver


def datagram_process(module: LoadedModule, rank: int) -> None:
    """One "MI Datagram" process: answer requests until SIGTERM."""
    rt = module.rt
    st: DatagramState = module.state
    mi = mi_registry(rt)
    fd = st.sock.fileno()
    waiting = Waiting(lambda text: rt.log(L_ERR, f"mi_datagram: {text}"))
    with StopWatch() as watch:
        try:
            while True:
                ready = watch.wait({fd: select.POLLIN}, waiting.timeout())
                waiting.service()
                if not ready:
                    continue
                try:
                    data, addr = st.sock.recvfrom(DATAGRAM_SOCK_BUF_SIZE)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    rt.log(L_ERR, f"mi_datagram: recvfrom: {e.strerror}")
                    continue
                if not data:
                    continue
                try:
                    reply = answer(mi, data, st.indent)
                except Exception as e:  # one bad request must not take the MI down
                    rt.log(L_ERR, f"mi_datagram: {type(e).__name__}: {e}")
                    reply = DGRAM_FAILED
                if reply is None:
                    continue
                if not addr:
                    rt.log(L_DBG, "mi_datagram: the client has no address to answer to")
                    continue
                if isinstance(reply, PendingReply):
                    waiting.add(reply, _deliverer(rt, st, watch, addr))
                    continue
                _reply(rt, st, watch, reply, addr)
        except Stopped:
            pass


def _children(module: LoadedModule) -> int:
    return int(module.params.get("children_count") or 1)


exports = ModuleExports(
    name="mi_datagram",
    params=[
        ParamExport("children_count", int, 1),
        ParamExport("socket_name", str, None),
        ParamExport("socket_timeout", int, 2000),
        ParamExport("unix_socket_mode", int, 0o660),
        ParamExport("unix_socket_group", str, None),
        ParamExport("unix_socket_group", int, None),
        ParamExport("unix_socket_user", str, None),
        ParamExport("unix_socket_user", int, None),
        ParamExport("reply_indent", str, "\t"),
    ],
    procs=[ProcExport("MI Datagram", datagram_process, _children)],
    mod_init=_mod_init,
    destroy=_destroy,
)
