"""sipctl's MI clients: the 1.6 text protocol over the FIFO or a datagram socket.

The transport is a connector string, as opensipsctlrc's MI_CONNECTOR:
`FIFO:/path`, `UNIXSOCK:/path` or `UDP:ip:port` (a bare path is a FIFO).
Problems reaching the server raise MIClientError with a message that says
what to check.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import shutil
import socket
import stat
import tempfile
import time
from dataclasses import dataclass

from ..mi import paths

DEFAULT_TIMEOUT = 10.0
DEFAULT_REPLY_DIR = "/tmp/"


class MIClientError(Exception):
    """The server could not be reached or did not answer."""


@dataclass(frozen=True, slots=True)
class Connector:
    kind: str  # "fifo", "unixsock", "udp"
    target: str  # a path, or "ip:port"

    def __str__(self) -> str:
        return f"{self.kind.upper()}:{self.target}"


def parse_connector(text: str) -> Connector:
    kind, sep, rest = text.partition(":")
    k = kind.lower()
    if sep and k in ("fifo", "unixsock", "udp"):
        if not rest:
            raise ValueError(f"empty address in MI connector {text!r}")
        if k == "udp":
            host, _, port = rest.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"bad UDP address in MI connector {text!r} (UDP:ip:port)")
        return Connector(k, rest)
    if text.startswith("/") or text.startswith("."):
        return Connector("fifo", text)
    raise ValueError(f"bad MI connector {text!r} (FIFO:/path, UNIXSOCK:/path or UDP:ip:port)")


def default_connector() -> Connector:
    """The server's default FIFO (its own user's, else root's)."""
    mine = paths.default_fifo_path()
    system = os.path.join(paths.SYSTEM_RUN_DIR, paths.FIFO_BASENAME)
    if not os.path.exists(mine) and os.path.exists(system):
        return Connector("fifo", system)
    return Connector("fifo", mine)


def build_request(command: str, args: list[str], *, fifo_reply: str | None) -> bytes:
    """`:cmd:reply` (or `:cmd:`), one line per argument, then an empty line.

    An empty argument is sent as `""` (an empty line would end the request).
    """
    head = f":{command}:{fifo_reply or ''}\n"
    lines = "".join(f"{a if a else chr(34) * 2}\n" for a in args)
    return (head + lines + "\n").encode("utf-8", "surrogateescape")


_counter = itertools.count()


def _sticky_hint(path: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    while d and d != "/":
        try:
            if os.stat(d).st_mode & stat.S_ISVTX:
                return (f" ({path} sits in the sticky directory {d}: with fs.protected_fifos a "
                        "FIFO there owned by another user cannot be opened; move fifo_name "
                        "to a directory sipserver owns)")
        except OSError:
            break
        d = os.path.dirname(d)
    return ""


def fifo_call(fifo: str, command: str, args: list[str], *, reply_dir: str = DEFAULT_REPLY_DIR,
              timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Send one request through the server FIFO; the raw reply (read to EOF)."""
    try:
        st = os.stat(fifo)
    except FileNotFoundError:
        raise MIClientError(
            f"{fifo} does not exist: is sipserver running with mi_fifo loaded, and is "
            f'this its fifo_name (modparam("mi_fifo", "fifo_name", "{fifo}"))?') from None
    except PermissionError:
        raise MIClientError(f"cannot reach {fifo}: permission denied") from None
    if not stat.S_ISFIFO(st.st_mode):
        raise MIClientError(f"{fifo} is not a FIFO")
    if not os.path.isdir(reply_dir):
        raise MIClientError(f"reply directory {reply_dir} does not exist")
    name = f"sipctl_reply_{os.getpid()}_{next(_counter)}"
    reply_path = os.path.join(reply_dir, name)
    try:
        os.unlink(reply_path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise MIClientError(f"cannot remove the stale reply FIFO {reply_path}: {e.strerror}") from None
    try:
        os.mkfifo(reply_path, 0o600)
        os.chmod(reply_path, 0o622)  # the server may run as another user: it only writes
    except OSError as e:
        raise MIClientError(f"cannot create the reply FIFO {reply_path}: {e.strerror}") from None
    try:
        rfd = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            _fifo_send(fifo, build_request(command, args, fifo_reply=name))
            return _fifo_read(rfd, timeout, reply_dir)
        finally:
            os.close(rfd)
    finally:
        try:
            os.unlink(reply_path)
        except OSError:
            pass


def _fifo_send(fifo: str, data: bytes) -> None:
    try:
        wfd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise MIClientError(f"sipserver is not running (nobody reads {fifo})") from None
        if e.errno == errno.EACCES:
            raise MIClientError(f"cannot write to {fifo}: permission denied"
                                f"{_sticky_hint(fifo)}") from None
        raise MIClientError(f"cannot open {fifo}: {e.strerror}") from None
    try:
        os.set_blocking(wfd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view):]
    except BrokenPipeError:
        raise MIClientError(f"sipserver closed {fifo} while we wrote the request") from None
    finally:
        os.close(wfd)


def _fifo_read(rfd: int, timeout: float, reply_dir: str) -> bytes:
    poller = select.poll()
    poller.register(rfd, select.POLLIN)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1):
            if time.monotonic() < deadline:
                continue
            raise MIClientError(
                f"no reply from sipserver within {timeout:g} s (is it busy? can it write "
                f"to {reply_dir}, mi_fifo's reply_dir?)")
        try:
            data = os.read(rfd, 65536)
        except BlockingIOError:
            continue
        if not data:  # the server closed its end: the reply is complete
            return b"".join(chunks)
        chunks.append(data)


def datagram_call(conn: Connector, command: str, args: list[str], *,
                  timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Send one request datagram; the reply datagram."""
    data = build_request(command, args, fifo_reply=None)
    if conn.kind == "udp":
        host, _, port = conn.target.rpartition(":")
        host = host.strip("[]")
        try:
            info = socket.getaddrinfo(host, int(port), socket.AF_UNSPEC, socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise MIClientError(f"cannot resolve {host}: {e.strerror}") from None
        family, _, _, _, addr = info[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        tmpdir = None
        where = f"udp:{conn.target}"
    else:
        if not os.path.exists(conn.target):
            raise MIClientError(
                f"{conn.target} does not exist: is sipserver running with mi_datagram loaded "
                f'(modparam("mi_datagram", "socket_name", "{conn.target}"))?')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        tmpdir = tempfile.mkdtemp(prefix="sipctl-")
        os.chmod(tmpdir, 0o711)
        me = os.path.join(tmpdir, "reply.sock")
        sock.bind(me)
        os.chmod(me, 0o622)  # the server may run as another user
        addr = conn.target
        where = conn.target
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            sock.send(data)
            return sock.recv(1 << 16)
        except (ConnectionRefusedError, FileNotFoundError):
            raise MIClientError(f"sipserver is not running (nothing answers on {where})") from None
        except PermissionError:
            raise MIClientError(f"cannot send to {where}: permission denied") from None
        except TimeoutError:
            raise MIClientError(f"no reply from sipserver on {where} within {timeout:g} s") from None
        except OSError as e:
            raise MIClientError(f"cannot talk to {where}: {e.strerror or e}") from None
    finally:
        sock.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def mi_call(conn: Connector, command: str, args: list[str], *, reply_dir: str = DEFAULT_REPLY_DIR,
            timeout: float = DEFAULT_TIMEOUT) -> bytes:
    if conn.kind == "fifo":
        return fifo_call(conn.target, command, args, reply_dir=reply_dir, timeout=timeout)
    return datagram_call(conn, command, args, timeout=timeout)


def reply_code(reply: bytes) -> int | None:
    """The code on a reply's first line (`200 OK` -> 200), None if there is none."""
    first = reply.split(b"\n", 1)[0]
    code = first.split(b" ", 1)[0]
    return int(code) if code.isdigit() else None


def filter_reply(reply: bytes) -> str:
    """What opensipsctl shows: no leading `200 OK` line, no empty lines."""
    lines = reply.decode("utf-8", "replace").split("\n")
    if lines and lines[0].lower().startswith("200 ok"):
        lines = lines[1:]
    return "".join(f"{line}\n" for line in lines if line)
