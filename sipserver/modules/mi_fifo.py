"""mi_fifo: the MI over a named pipe, speaking 1.6's text protocol.

One process ("MI FIFO") reads requests from the FIFO `fifo_name`
(`:cmd:reply_name`, one argument per line, an empty line) and answers into
the client's own FIFO `reply_dir` + `reply_name` (spec modules-core
§1.2-1.5). Parameters are 1.6's: fifo_name, fifo_mode, fifo_group and
fifo_user (names or numbers), reply_dir, reply_indent.

Differences from 1.6, all on the safe side: without fifo_name the FIFO is
`/run/sipserver/sipserver_fifo` (root) or the user's runtime directory
(sipserver.mi.paths), never a sticky /tmp; a reply_dir without a trailing
slash gets one; a parse error skips the rest of that request only (1.6 also
swallowed the next request).

Async commands (t_uac_dlg): as in 1.6 the client's reply FIFO is opened
only when a reply is there, and once for every reply (spec §1.7); the
process serves other requests while the answer is pending
(sipserver.mi.pending), polling for it between them.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from typing import Any

from ..core.exports import LoadedModule, ModuleExports, ParamExport, ProcExport
from ..core.modload import ModuleError
from ..core.runtime import L_CRIT, L_DBG, L_ERR, L_INFO, L_WARN
from ..mi import paths
from ..mi.paths import resolve_group, resolve_user
from ..mi.pending import PendingReply, Waiting
from ..mi.procloop import Stopped, StopWatch
from ..mi.registry import mi_registry
from ..mi.text import (
    CMD_INPUT,
    CMD_NO_INPUT,
    CMD_UNKNOWN,
    fifo_error,
    format_reply,
    read_fifo_request,
)
from ..mi.tree import MIReply

DEFAULT_REPLY_DIR = "/tmp/"
FIFO_REPLY_RETRIES = 4
FIFO_REPLY_WAIT = 0.08  # seconds between tries to open a client's reply FIFO
REPLY_WRITE_TIMEOUT = 30.0  # a client that reads nothing for this long is dropped


class FifoState:
    """What mod_init settled, for the FIFO process."""

    def __init__(self, path: str, mode: int, uid: int, gid: int, reply_dir: str,
                 indent: str) -> None:
        self.path = path
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.reply_dir = reply_dir
        self.indent = indent


def _chown_to_config_user(rt: Any, path: str) -> None:
    """Give a directory we created to the `user`/`group` the server runs as."""
    user = rt.config.get("user") if rt is not None else None
    if not user or os.geteuid() != 0:
        return
    uid, gid = resolve_user(user, "user")
    group = rt.config.get("group")
    if group:
        gid = resolve_group(group, "group")
    os.chown(path, uid, gid)


def _mod_init(module: LoadedModule) -> None:
    rt = module.rt
    p = module.params
    path = p.get("fifo_name")
    if path is not None and not isinstance(path, str):
        raise ModuleError("mi_fifo: fifo_name must be a string")
    if path == "":
        raise ModuleError("mi_fifo: no fifo configured (fifo_name is empty)")
    if path is None:
        path = paths.default_fifo_path()
        try:
            paths.ensure_private_dir(os.path.dirname(path))
            _chown_to_config_user(rt, os.path.dirname(path))
        except (OSError, ModuleError) as e:
            raise ModuleError(f"mi_fifo: cannot prepare the FIFO directory: {e}") from None
    else:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ModuleError(f"mi_fifo: fifo_name {path}: directory {parent} does not exist")
    try:
        os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ModuleError(f"mi_fifo: FIFO stat failed for {path}: {e.strerror}") from None
    else:
        try:
            os.unlink(path)
        except OSError as e:
            raise ModuleError(f"mi_fifo: cannot delete old fifo ({path}): {e.strerror}") from None

    reply_dir = p.get("reply_dir") or ""
    if not reply_dir:
        raise ModuleError("mi_fifo: reply_dir parameter is empty")
    if not os.path.isdir(reply_dir):
        why = "does not exist" if not os.path.exists(reply_dir) else "is not a directory"
        raise ModuleError(f"mi_fifo: reply_dir {reply_dir} {why}")
    if not reply_dir.endswith("/"):
        reply_dir += "/"

    mode = p.get("fifo_mode")
    if not isinstance(mode, int) or mode < 0 or mode > 0o7777:
        raise ModuleError(f"mi_fifo: bad fifo_mode {mode!r} (an octal mode such as 0660)")
    if mode == 0:
        if rt is not None:
            rt.log(L_WARN, "mi_fifo: cannot specify fifo_mode = 0, forcing it to rw-------")
        mode = 0o600

    uid, gid = resolve_user(p.get("fifo_user"), "fifo_user")
    group = p.get("fifo_group")
    if group is not None and group != -1:
        gid = resolve_group(group, "fifo_group")

    indent = p.get("reply_indent")
    module.state = FifoState(path, mode, uid, gid, reply_dir, indent or "")


def _destroy(module: LoadedModule) -> None:
    state = module.state
    if isinstance(state, FifoState):
        try:
            if stat.S_ISFIFO(os.lstat(state.path).st_mode):
                os.unlink(state.path)
        except OSError:
            pass


# ------------------------------------------------------------ the process

class _FifoStream:
    """fgets over the server FIFO, waking up for SIGTERM and for async answers."""

    def __init__(self, fd: int, watch: StopWatch, waiting: Waiting | None = None) -> None:
        self.fd = fd
        self.watch = watch
        self.waiting = waiting if waiting is not None else Waiting()
        self.buf = bytearray()

    def _wait_readable(self) -> None:
        """Sleep until the FIFO has data, delivering async answers meanwhile."""
        while True:
            timeout = self.waiting.timeout()
            ready = self.watch.wait({self.fd: select.POLLIN}, timeout)
            self.waiting.service()
            if ready:
                return

    def readline(self, size: int) -> bytes:
        if size <= 1:
            return b""
        limit = size - 1
        while True:
            nl = self.buf.find(b"\n", 0, limit)
            if nl >= 0:
                return self._take(nl + 1)
            if len(self.buf) >= limit:
                return self._take(limit)
            self._wait_readable()
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            if not data:  # no writer at all (ours is gone): nothing more will come
                if self.buf:
                    return self._take(len(self.buf))
                return b""
            self.buf += data

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _check_reply_fifo(fd: int, path: str) -> str | None:
    """1.6's reply FIFO security checks; the problem found, or None."""
    fst = os.fstat(fd)
    if not stat.S_ISFIFO(fst.st_mode):
        return f"{path} is not a fifo"
    if fst.st_nlink > 1:
        return f"security: {path} is hard-linked {fst.st_nlink} times"
    lst = os.lstat(path)
    if stat.S_ISLNK(lst.st_mode):
        return f"security: {path} is a soft link"
    if (lst.st_dev, lst.st_ino) != (fst.st_dev, fst.st_ino):
        return f"security: inode/dev number differ for {path}"
    return None


def open_reply_pipe(rt: Any, path: str) -> int | None:
    """Open a client's reply FIFO for writing, or None (logged)."""
    retries = FIFO_REPLY_RETRIES
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except OSError as e:
            if e.errno == errno.ENXIO and retries > 0:
                time.sleep(FIFO_REPLY_WAIT)
                retries -= 1
                continue
            what = "no client at" if e.errno == errno.ENXIO else f"open error ({e.strerror}):"
            rt.log(L_ERR, f"mi_fifo: {what} {path}")
            return None
    try:
        problem = _check_reply_fifo(fd, path)
    except OSError as e:
        problem = f"cannot check {path}: {e.strerror}"
    if problem:
        rt.log(L_ERR, f"mi_fifo: {problem}")
        os.close(fd)
        return None
    return fd


def _write_all(fd: int, data: bytes, watch: StopWatch) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            if not watch.wait({fd: select.POLLOUT}, REPLY_WRITE_TIMEOUT):
                raise TimeoutError("the client does not read its reply") from None
            continue
        view = view[n:]


class _FifoServer:
    def __init__(self, module: LoadedModule, watch: StopWatch) -> None:
        self.module = module
        self.rt = module.rt
        self.state: FifoState = module.state
        self.watch = watch
        self.mi = mi_registry(self.rt)
        self.waiting = Waiting(lambda text: self.rt.log(L_ERR, f"mi_fifo: {text}"))

    def kind(self, name: str) -> int:
        cmd = self.mi.lookup(name)
        if cmd is None:
            return CMD_UNKNOWN
        return CMD_NO_INPUT if cmd.export.no_input else CMD_INPUT

    def serve(self, stream: _FifoStream) -> None:
        while True:
            try:
                req = read_fifo_request(stream, self.kind, self.state.reply_dir)
            except EOFError:
                self.rt.log(L_ERR, "mi_fifo: the FIFO lost its writer; stopping")
                return
            if req is None:
                continue
            if req.reply_name is None:
                self.rt.log(L_DBG, f"mi_fifo: no reply FIFO given for {req.command}; ignored")
                continue
            try:
                self.answer(req)
            except Exception as e:  # one bad request must not take the MI down
                self.rt.log(L_ERR, f"mi_fifo: {req.command}: {type(e).__name__}: {e}")

    def answer(self, req: Any) -> None:
        path = self.state.reply_dir + req.reply_name
        cmd = self.mi.lookup(req.command) if req.error is None else None
        if cmd is not None and cmd.export.async_:
            self.answer_async(req, cmd, path)
            return
        fd = open_reply_pipe(self.rt, path)
        if fd is None:
            return
        try:
            self.write_reply(fd, path, self.reply_bytes(req))
        finally:
            os.close(fd)

    def answer_async(self, req: Any, cmd: Any, path: str) -> None:
        """1.6 async commands: the reply FIFO is opened only when a reply is there,
        once per reply (each provisional one too); meanwhile other requests are served."""
        result = self.mi.execute(cmd, req.args)
        if not isinstance(result, PendingReply):  # answered at once (a bad argument ...)
            self.deliver(path, self.tree_bytes(req.command, result))
            return

        def deliver(reply: MIReply, final: bool) -> None:
            self.deliver(path, format_reply(reply, self.state.indent))

        self.waiting.add(result, deliver)

    def deliver(self, path: str, data: bytes) -> None:
        fd = open_reply_pipe(self.rt, path)
        if fd is None:
            return
        try:
            self.write_reply(fd, path, data)
        finally:
            os.close(fd)

    def write_reply(self, fd: int, path: str, data: bytes) -> None:
        try:
            if data:
                _write_all(fd, data, self.watch)
        except (BrokenPipeError, TimeoutError) as e:
            self.rt.log(L_ERR, f"mi_fifo: reply to {path} lost: {e}")
        except OSError as e:
            self.rt.log(L_ERR, f"mi_fifo: reply to {path} failed: {e.strerror}")

    def tree_bytes(self, command: str, reply: MIReply | None) -> bytes:
        if reply is None:
            self.rt.log(L_ERR, f"mi_fifo: command ({command}) processing failed")
            return fifo_error("failed", command)
        return format_reply(reply, self.state.indent)

    def reply_bytes(self, req: Any) -> bytes:
        if req.error is not None:
            if req.error == "not available":
                self.rt.log(L_ERR, f"mi_fifo: command {req.command} is not available")
            return fifo_error(req.error, req.command)
        cmd = self.mi.lookup(req.command)
        if cmd is None:  # gone meanwhile: cannot happen, the table is fixed
            return fifo_error("not available", req.command)
        reply = self.mi.execute(cmd, req.args)
        if isinstance(reply, PendingReply):  # only async commands answer one, not seen here
            reply = reply.wait()
        if cmd.export.no_reply:
            return b""
        return self.tree_bytes(req.command, reply)


def fifo_process(module: LoadedModule, rank: int) -> None:
    """The "MI FIFO" process: create the FIFO and serve it until SIGTERM."""
    rt = module.rt
    st: FifoState = module.state
    try:
        os.mkfifo(st.path, st.mode)
        os.chmod(st.path, st.mode)
        if st.uid != -1 or st.gid != -1:
            os.chown(st.path, st.uid, st.gid)
        rfd = os.open(st.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # our own writer keeps the FIFO from reporting end-of-file between clients
        wfd = os.open(st.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        rt.log(L_CRIT, f"mi_fifo: cannot create FIFO {st.path}: {e.strerror}")
        raise SystemExit(1) from None
    rt.log(L_INFO, f"mi_fifo: listening on {st.path}")
    try:
        with StopWatch() as watch:
            server = _FifoServer(module, watch)
            try:
                server.serve(_FifoStream(rfd, watch, server.waiting))
            except Stopped:
                pass
    finally:
        os.close(rfd)
        os.close(wfd)
        try:
            os.unlink(st.path)
        except OSError:
            pass


exports = ModuleExports(
    name="mi_fifo",
    params=[
        ParamExport("fifo_name", str, None),
        ParamExport("fifo_mode", int, 0o660),
        ParamExport("fifo_group", str, None),
        ParamExport("fifo_group", int, None),
        ParamExport("fifo_user", str, None),
        ParamExport("fifo_user", int, None),
        ParamExport("reply_dir", str, DEFAULT_REPLY_DIR),
        ParamExport("reply_indent", str, "\t"),
    ],
    procs=[ProcExport("MI FIFO", fifo_process, 1)],
    mod_init=_mod_init,
    destroy=_destroy,
)
