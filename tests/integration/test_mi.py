"""MI transports as real processes: mi_fifo, mi_datagram (UNIX and UDP), mi_http, sipctl.

Each server is the module's process function in a forked child, with a
Runtime built for the test; clients talk to it the way opensipsctl (FIFO,
datagram), the `opensips` package (HTTP) and sipctl do. Children are
stopped with SIGTERM and must exit cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipserver.core.exports import LoadedModule, Registry
from sipserver.core.modload import ModuleError, load_module, set_modparam
from sipserver.core.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class FakeStats:
    values = {"core:rcv_requests": 3, "core:fwd_requests": 1, "tm:UAS_transactions": 7}

    def lines(self, names: list[str]) -> list[str]:
        return [f"{k} = {v}" for n in names for k, v in self.values.items()
                if n == "all" or (n.endswith(":") and k.startswith(n)) or k.split(":")[1] == n]

    def reset(self, names: list[str]) -> int:
        return sum(1 for n in names for k in self.values if k.split(":")[1] == n)


def build(modules: dict[str, dict[str, Any]], **config: Any) -> Runtime:
    """A Runtime whose registry has `modules` loaded, their params set, mod_init run."""
    reg = Registry()
    rt = Runtime(registry=reg, config=config, logger=lambda level, text: None)
    for name, params in modules.items():
        load_module(reg, name)
        for k, v in params.items():
            set_modparam(reg, name, k, v)
    for mod in reg.modules.values():
        mod.rt = rt
    for mod in reg.modules.values():
        if mod.exports.mod_init:
            mod.exports.mod_init(mod)
    rt.stats = FakeStats()
    rt.procs = [(0, os.getpid(), "attendant"), (1, 4242, "MI FIFO")]
    return rt


def destroy(rt: Runtime) -> None:
    for mod in rt.registry.modules.values():
        if mod.exports.destroy:
            mod.exports.destroy(mod)


@contextlib.contextmanager
def forked(module: LoadedModule, rank: int = 1) -> Iterator[int]:
    """Run the module's process function in a child; SIGTERM it afterwards."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            module.rt.rank = rank
            module.exports.procs[0].run(module, rank)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _wait_sigterm_handler(pid)
    try:
        yield pid
    finally:
        stop(pid)


def _wait_sigterm_handler(pid: int, timeout: float = 5.0) -> None:
    """Until the child catches SIGTERM (its process loop is set up), so that
    stopping it right away tests the clean exit, not the default action."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        except (OSError, StopIteration):
            return
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)


def stop(pid: int) -> int | None:
    """SIGTERM a child and return its exit code (None if it had to be killed)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # already reaped
            return None
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def wait_for(cond: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------ a FIFO client, as opensipsctl

def fifo_ready(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


_n = 0


def fifo_request(fifo: Path, reply_dir: Path, data_for: Any, timeout: float = 5.0) -> bytes:
    """mkfifo a reply FIFO, write the request, read the reply to EOF."""
    global _n
    _n += 1
    name = f"opensips_receiver_{os.getpid()}_{_n}"
    path = reply_dir / name
    os.mkfifo(path, 0o666)
    rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with open(fifo, "wb") as f:
            f.write(data_for(name))
        poller = select.poll()
        poller.register(rfd, select.POLLIN)
        out = b""
        deadline = time.monotonic() + timeout
        while True:
            if not poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                raise AssertionError(f"no reply (got {out!r} so far)")
            chunk = os.read(rfd, 65536)
            if not chunk:
                return out
            out += chunk
    finally:
        os.close(rfd)
        os.unlink(path)


@pytest.fixture
def fifo_server(tmp_path: Path) -> Iterator[tuple[Path, Path, Runtime]]:
    fifo = tmp_path / "sipserver_fifo"
    replies = tmp_path / "replies"
    replies.mkdir()
    rt = build({"mi_fifo": {"fifo_name": str(fifo), "reply_dir": str(replies)}})
    mod = rt.registry.modules["mi_fifo"]
    try:
        with forked(mod) as pid:
            wait_for(lambda: fifo_ready(fifo), "the FIFO")
            yield fifo, replies, rt
            assert stop(pid) == 0  # SIGTERM: a clean exit
            assert not fifo.exists()
    finally:
        destroy(rt)


def test_fifo_commands(fifo_server: tuple[Path, Path, Runtime]) -> None:
    fifo, replies, _ = fifo_server
    ask = lambda text: fifo_request(fifo, replies, lambda n: text.replace(b"@", n.encode()))  # noqa: E731
    assert ask(b":ps:@\n\n") == (f"200 OK\nProcess::  ID=0 PID={os.getpid()} Type=attendant\n"
                                 "Process::  ID=1 PID=4242 Type=MI FIFO\n\n").encode()
    assert ask(b":get_statistics:@\nrcv_requests\ntm:\n\n") == \
        b"200 OK\ncore:rcv_requests = 3\ntm:UAS_transactions = 7\n\n"
    assert ask(b":get_statistics:@\n\n") == b"400 Too few or too many arguments\n\n"
    assert ask(b":version:@\nignored\n\n") == b"200 OK\nServer:: OpenSIPS (1.6.4-notls (x86_64/linux))\n\n"
    assert ask(b":debug:@\n7\n\n") == b"200 OK\nDEBUG:: 7\n\n"
    assert ask(b":nosuch:@\na\n\n") == b"500 command 'nosuch' not available\n"
    assert ask(b':debug:@\nbad"arg\n\n') == b"400 parse error in command 'debug'\n"
    # the server is still in step after the errors
    assert ask(b":uptime:@\n\n").startswith(b"200 OK\nNow:: ")
    which = ask(b":which:@\n\n").decode().split("\n")
    assert which[:3] == ["200 OK", "get_statistics", "reset_statistics"] and which[-2:] == ["", ""]


OPENSIPSCTL_FIFO_CMD = r"""
name=opensips_receiver_$$
path=$REPLY_DIR/$name
mkfifo $path && chmod a+w $path || exit 3
CMD=":$1:$name\n"
shift
while [ -n "$1" ]; do CMD="${CMD}${1}\n"; shift; done
CMD="${CMD}\n"
cat < $path | awk 'BEGIN {line=0;IGNORECASE=1;} {line++} NR == 1 && /^200 OK/ { next } /^$/ { next } { print }' &
printf "$CMD" > $OSIPS_FIFO
wait
rm $path
"""


def test_fifo_with_opensipsctls_shell_client(fifo_server: tuple[Path, Path, Runtime]) -> None:
    """The fifo_cmd function of 1.6's opensipsctl.fifo, run by /bin/sh."""
    fifo, replies, _ = fifo_server
    env = {"PATH": os.environ.get("PATH", ""), "OSIPS_FIFO": str(fifo), "REPLY_DIR": str(replies)}

    def ctl(*args: str) -> str:
        out = subprocess.run(["sh", "-c", OPENSIPSCTL_FIFO_CMD, "fifo_cmd", *args], env=env,
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert ctl("ps") == (f"Process::  ID=0 PID={os.getpid()} Type=attendant\n"
                         "Process::  ID=1 PID=4242 Type=MI FIFO\n")
    assert ctl("get_statistics", "core:") == "core:rcv_requests = 3\ncore:fwd_requests = 1\n"
    assert ctl("debug", "x") == "400 Bad parameter\n"


def test_fifo_requests_back_to_back(fifo_server: tuple[Path, Path, Runtime]) -> None:
    """Two requests in one write, and a reply-less one: each answered in turn."""
    fifo, replies, _ = fifo_server
    os.mkfifo(replies / "r1", 0o666)
    os.mkfifo(replies / "r2", 0o666)
    r1 = os.open(replies / "r1", os.O_RDONLY | os.O_NONBLOCK)
    r2 = os.open(replies / "r2", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with open(fifo, "wb") as f:
            f.write(b":ps:\n\n:version:r1\n\n\n   \n:get_statistics:r2\nall\n\n")

        def read_all(fd: int) -> bytes:
            out = b""
            p = select.poll()
            p.register(fd, select.POLLIN)
            while p.poll(5000):
                chunk = os.read(fd, 65536)
                if not chunk:
                    return out
                out += chunk
            raise AssertionError("no EOF")

        assert read_all(r1).startswith(b"200 OK\nServer:: ")
        assert read_all(r2).count(b" = ") == 3
    finally:
        os.close(r1)
        os.close(r2)


def test_fifo_kill_answers_nothing_and_signals_the_master(tmp_path: Path) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    fifo = tmp_path / "f"
    rt = build({"mi_fifo": {"fifo_name": str(fifo), "reply_dir": str(tmp_path)}},
               master_pid=victim.pid)
    try:
        with forked(rt.registry.modules["mi_fifo"]):
            wait_for(lambda: fifo_ready(fifo), "the FIFO")
            assert fifo_request(fifo, tmp_path, lambda n: f":kill:{n}\n\n".encode()) == b""
            assert victim.wait(timeout=5) == -signal.SIGTERM
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
        destroy(rt)


def test_fifo_mod_init_checks(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="reply_dir"):
        build({"mi_fifo": {"fifo_name": str(tmp_path / "f"), "reply_dir": str(tmp_path / "no")}})
    with pytest.raises(ModuleError, match="does not exist"):
        build({"mi_fifo": {"fifo_name": str(tmp_path / "no" / "f")}})
    with pytest.raises(ModuleError, match="no such user"):
        build({"mi_fifo": {"fifo_name": str(tmp_path / "f"), "fifo_user": "no-such-user-x"}})
    with pytest.raises(ModuleError, match="no such group"):
        build({"mi_fifo": {"fifo_name": str(tmp_path / "f"), "fifo_group": "no-such-group-x"}})
    with pytest.raises(ModuleError, match="no fifo configured"):
        build({"mi_fifo": {"fifo_name": ""}})
    # an old FIFO is removed; mode 0 becomes 0600; numeric owner forms are accepted
    os.mkfifo(tmp_path / "old")
    rt = build({"mi_fifo": {"fifo_name": str(tmp_path / "old"), "fifo_mode": 0,
                            "fifo_user": os.getuid(), "fifo_group": str(os.getgid())}})
    st = rt.registry.modules["mi_fifo"].state
    assert not (tmp_path / "old").exists() and st.mode == 0o600 and st.uid == os.getuid()
    assert st.reply_dir == "/tmp/"


def test_fifo_default_path_is_not_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sipserver.mi import paths

    assert paths.runtime_dir(0) == "/run/sipserver"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert paths.runtime_dir(12345) == str(tmp_path / "sipserver")
    monkeypatch.setattr(paths, "runtime_dir", lambda uid=None: str(tmp_path / "run"))
    rt = build({"mi_fifo": {}})
    st = rt.registry.modules["mi_fifo"].state
    assert st.path == str(tmp_path / "run" / "sipserver_fifo")
    assert (tmp_path / "run").is_dir() and not (os.stat(tmp_path / "run").st_mode & 0o022)


# ------------------------------------------------------------ datagram

def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unix_dgram(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "mi.sock"
    rt = build({"mi_datagram": {"socket_name": str(path), "children_count": 2}})
    mod = rt.registry.modules["mi_datagram"]
    assert mod.exports.procs[0].count(mod) == 2  # type: ignore[operator]
    try:
        with forked(mod) as p1, forked(mod, 2) as p2:
            yield str(path), tmp_path
            assert stop(p1) == 0 and stop(p2) == 0
    finally:
        destroy(rt)
    assert not path.exists()


def dgram_ask(sock: socket.socket, addr: Any, data: bytes) -> bytes:
    sock.sendto(data, addr)
    reply, src = sock.recvfrom(70000)
    assert src == addr  # sent from the receiving socket
    return reply


def test_datagram_over_a_unix_socket(unix_dgram: tuple[str, Path]) -> None:
    server, tmp = unix_dgram
    assert os.stat(server).st_mode & 0o777 == 0o660
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
        c.bind(str(tmp / "client.sock"))
        c.settimeout(5)
        assert dgram_ask(c, server, b":ps:\n") == \
            f"200 OK\nProcess::  ID=0 PID={os.getpid()} Type=attendant\n" \
            "Process::  ID=1 PID=4242 Type=MI FIFO\n".encode()
        assert dgram_ask(c, server, b":get_statistics:\ncore:\n") == \
            b"200 OK\ncore:rcv_requests = 3\ncore:fwd_requests = 1\n"
        assert dgram_ask(c, server, b":get_statistics:\n") == b"400 parse error in command\n"
        assert dgram_ask(c, server, b":get_statistics:\n\n") == b"400 Too few or too many arguments\n"
        assert dgram_ask(c, server, b":nosuch:\n") == b"500 command not available\n"
        assert dgram_ask(c, server, b"ps\n") == b"500 command not available\n"
        assert dgram_ask(c, server, b':debug:\n"5"  \n') == b"200 OK\nDEBUG:: 5\n"
        assert dgram_ask(c, server, b":debug:\nx\"\n") == b"400 parse error in command\n"


def test_datagram_over_udp() -> None:
    port = free_port()
    rt = build({"mi_datagram": {"socket_name": f"udp:127.0.0.1:{port}", "reply_indent": "  "}})
    try:
        with forked(rt.registry.modules["mi_datagram"]), \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(5)
            addr = ("127.0.0.1", port)
            assert dgram_ask(c, addr, b":version:\n") == \
                b"200 OK\nServer:: OpenSIPS (1.6.4-notls (x86_64/linux))\n"
            assert dgram_ask(c, addr, b":uptime:\n").count(b"\n") == 4
    finally:
        destroy(rt)


def test_datagram_mod_init_checks(tmp_path: Path) -> None:
    for name, msg in (("udp:127.0.0.1:80", "invalid port"), ("udp:127.0.0.1", "no port"),
                      ("udp:", "malformed"), ("udp:127.0.0.1:x", "not a valid number")):
        with pytest.raises(ModuleError, match=msg):
            build({"mi_datagram": {"socket_name": name}})
    with pytest.raises(ModuleError, match="no DATAGRAM_ socket"):
        build({"mi_datagram": {}})
    with pytest.raises(ModuleError, match="children_count"):
        build({"mi_datagram": {"socket_name": str(tmp_path / "s"), "children_count": 0}})


# ------------------------------------------------------------ HTTP, driven by the opensips package

@pytest.fixture
def http_server() -> Iterator[int]:
    port = free_port(socket.SOCK_STREAM)
    rt = build({"httpd": {"ip": "127.0.0.1", "port": port}, "mi_http": {}})
    try:
        with forked(rt.registry.modules["httpd"]) as pid:
            yield port
            assert stop(pid) == 0
    finally:
        destroy(rt)


def test_mi_http_with_the_opensips_package(http_server: int) -> None:
    from opensips.mi import OpenSIPSMI, OpenSIPSMIException

    mi = OpenSIPSMI("http", url=f"http://127.0.0.1:{http_server}/mi")
    assert mi.execute("ps") == {"Processes": [{"ID": 0, "PID": os.getpid(), "Type": "attendant"},
                                              {"ID": 1, "PID": 4242, "Type": "MI FIFO"}]}
    assert mi.execute("get_statistics", {"statistics": ["core:"]}) == \
        {"core:rcv_requests": 3, "core:fwd_requests": 1}
    assert mi.execute("get_statistics", [["tm:"]]) == {"tm:UAS_transactions": 7}
    assert mi.execute("version") == {"Server": "OpenSIPS (1.6.4-notls (x86_64/linux))"}
    assert set(mi.execute("uptime")) == {"Now", "Up since", "Up time"}
    which = mi.execute("which")
    assert which[0] == "get_statistics" and "httpd_list_root_path" in which
    assert mi.execute("httpd_list_root_path") == [{"http_root": "mi", "module": "mi_http"}]
    assert mi.execute("reset_statistics", {"statistics": ["rcv_requests"]}) == "OK"
    with pytest.raises(OpenSIPSMIException, match="-32601: Method not found"):
        mi.execute("nosuch")
    with pytest.raises(OpenSIPSMIException, match="404: Statistics Not Found"):
        mi.execute("get_statistics", ["nothing"])
    with pytest.raises(OpenSIPSMIException, match="-32602: Invalid params"):
        mi.execute("get_statistics", {"bogus": 1})
    assert mi.valid()[0]


def test_opensips_mi_command_line(http_server: int, tmp_path: Path) -> None:
    out = subprocess.run([str(BIN / "opensips-mi"), "-t", "http", "-i", "127.0.0.1",
                          "-p", str(http_server), "-s", "core:"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=20)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"core:rcv_requests": 3, "core:fwd_requests": 1}
    out = subprocess.run([str(BIN / "opensips-mi"), "-t", "http", "-i", "127.0.0.1",
                          "-p", str(http_server), "ps"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=20)
    assert json.loads(out.stdout)["Processes"][1]["PID"] == 4242


def test_http_status_codes(http_server: int) -> None:
    import urllib.error
    import urllib.request

    base = f"http://127.0.0.1:{http_server}"

    def status(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    assert status(base + "/mi")[0] == 405  # GET
    assert status(base + "/mi", b"", "POST")[0] == 400
    assert status(base + "/other", b"{}")[0] == 404
    assert status(base + "/mi", b'{"jsonrpc":"2.0","method":"ps"}') == (202, b"")
    code, body = status(base + "/mi", b'{"jsonrpc":"2.0","method":"version","id":1}')
    assert code == 200 and body == \
        b'{"jsonrpc":"2.0","result":{"Server":"OpenSIPS (1.6.4-notls (x86_64/linux))"},"id":1}'


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_mi_https(tmp_path: Path) -> None:
    from opensips.mi import OpenSIPSMI

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=30)
    port = free_port(socket.SOCK_STREAM)
    rt = build({"httpd": {"ip": "127.0.0.1", "port": port, "tls_cert_file": str(cert),
                          "tls_key_file": str(key)}, "mi_http": {}})
    try:
        with forked(rt.registry.modules["httpd"]) as pid:
            idle = socket.create_connection(("127.0.0.1", port))  # a client that says nothing
            mi = OpenSIPSMI("http", url=f"https://127.0.0.1:{port}/mi")
            assert mi.execute("version") == {"Server": "OpenSIPS (1.6.4-notls (x86_64/linux))"}
            idle.close()
            assert stop(pid) == 0
    finally:
        destroy(rt)


def test_http_mod_init_checks() -> None:
    with pytest.raises(ModuleError, match="needs the httpd module"):
        build({"mi_http": {}})
    with pytest.raises(ModuleError, match="bad port"):
        build({"httpd": {"port": 0}})
    port = free_port(socket.SOCK_STREAM)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(ModuleError, match="cannot listen"):
            build({"httpd": {"ip": "127.0.0.1", "port": port}})


# ------------------------------------------------------------ sipctl

def sipctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "SIPCTL_CONFIG": os.devnull, **(env or {})}
    return subprocess.run([sys.executable, "-m", "sipserver.ctl.main", *args], capture_output=True,
                          text=True, env=full, cwd=ROOT, timeout=20)


def test_sipctl_over_the_fifo(fifo_server: tuple[Path, Path, Runtime]) -> None:
    fifo, replies, _ = fifo_server
    env = {"SIPCTL_MI": f"FIFO:{fifo}", "SIPCTL_REPLY_DIR": str(replies)}
    out = sipctl("ps", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (f"Process::  ID=0 PID={os.getpid()} Type=attendant\n"
                          "Process::  ID=1 PID=4242 Type=MI FIFO\n")
    out = sipctl("stats", "core", env=env)
    assert out.stdout == "core:rcv_requests = 3\ncore:fwd_requests = 1\n"
    assert sipctl("stats", env=env).stdout.count(" = ") == 3
    assert sipctl("uptime", env=env).stdout.startswith("Now:: ")
    out = sipctl("fifo", "get_statistics", "nothing", env=env)
    assert out.returncode == 1 and out.stdout == "404 Statistics Not Found\n"
    out = sipctl("-m", f"FIFO:{fifo}", "fifo", "debug", "4", env={"SIPCTL_REPLY_DIR": str(replies)})
    assert out.stdout == "DEBUG:: 4\n"
    assert list(replies.iterdir()) == []  # sipctl removed its reply FIFO


def test_sipctl_over_datagrams(unix_dgram: tuple[str, Path]) -> None:
    server, _ = unix_dgram
    out = sipctl("-m", f"UNIXSOCK:{server}", "unixsock", "debug")
    assert out.returncode == 0 and out.stdout.startswith("DEBUG:: "), out.stderr
    assert sipctl("-m", f"UNIXSOCK:{server}", "stats", "tm").stdout == "tm:UAS_transactions = 7\n"


def test_sipctl_when_the_server_is_not_running(tmp_path: Path) -> None:
    out = sipctl("-m", f"FIFO:{tmp_path}/none", "ps")
    assert out.returncode == 3 and "does not exist" in out.stderr and "mi_fifo" in out.stderr
    os.mkfifo(tmp_path / "orphan")
    out = sipctl("-m", f"FIFO:{tmp_path}/orphan", "ps")
    assert out.returncode == 3 and "not running" in out.stderr
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(tmp_path / "dead.sock"))
    out = sipctl("-m", f"UNIXSOCK:{tmp_path}/dead.sock", "ps")
    assert out.returncode == 3 and "not running" in out.stderr
    out = sipctl("-m", f"UDP:127.0.0.1:{free_port()}", "-t", "1", "ps")
    assert out.returncode == 3 and ("not running" in out.stderr or "no reply" in out.stderr)


def test_sipctl_config_file(tmp_path: Path, fifo_server: tuple[Path, Path, Runtime]) -> None:
    fifo, replies, _ = fifo_server
    rc = tmp_path / "sipctlrc"
    rc.write_text(f'# sipctl settings\nMI_CONNECTOR="FIFO:{fifo}"\nREPLY_DIR={replies}\n')
    out = sipctl("ps", env={"SIPCTL_CONFIG": str(rc)})
    assert out.returncode == 0 and "Type=attendant" in out.stdout, out.stderr
    rc.write_text("MI_CONNECTOR=bogus\n")
    out = sipctl("ps", env={"SIPCTL_CONFIG": str(rc)})
    assert out.returncode == 2 and "bad MI connector" in out.stderr
