"""Run a real sipserver as a subprocess for integration tests, and talk to it.

`SipServer` writes a cfg, starts `sipserver -F -E`, waits until it answers,
and in `stop()` kills it by PID and checks that no child process is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port(proto: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def options_request(port: int, local_port: int, call_id: str = "probe") -> bytes:
    return (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-{call_id}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={call_id}\r\n"
        "To: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: {call_id}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class SipServer:
    """One sipserver process tree."""

    def __init__(self, tmp: Path, cfg: str, *, port: int | None = None,
                 args: list[str] | None = None) -> None:
        self.tmp = tmp
        self.port = port or free_port()
        self.cfg_path = tmp / "test.cfg"
        self.cfg_path.write_text(cfg.replace("@PORT@", str(self.port)))
        self.pid_file = tmp / "sipserver.pid"
        self.log_path = tmp / "sipserver.log"
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> SipServer:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sipserver.cli", "-f", str(self.cfg_path), "-F", "-E",
             "-P", str(self.pid_file), *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Until an OPTIONS gets any answer (the cfg must reply to OPTIONS)."""
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"sipserver exited ({self.proc.returncode}):\n{self.log()}")
                s.sendto(options_request(self.port, s.getsockname()[1]), ("127.0.0.1", self.port))
                try:
                    s.recvfrom(65535)
                    return
                except TimeoutError:
                    continue
        raise RuntimeError(f"sipserver did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> list[int]:
        return children_of(self.pid)

    def wait_children(self, count: int, timeout: float = 10.0) -> list[int]:
        """The sorted child PIDs once there are `count` of them.

        The server answers OPTIONS as soon as its first UDP receiver runs,
        while the master may still be forking the rest (TCP, timer, MI).
        """
        deadline = time.monotonic() + timeout
        kids = sorted(self.children())
        while len(kids) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            kids = sorted(self.children())
        assert len(kids) == count, (kids, self.log())
        return kids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Stop the server; returns its exit code. Fails if a child outlives it."""
        if self.proc is None:
            return 0
        kids = self.children()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        deadline = time.monotonic() + 5
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [k for k in kids if alive(k)]
        for k in left:
            os.kill(k, signal.SIGKILL)
        self._log.close()
        self.proc = None
        assert not left, f"orphan processes left: {left}"
        return code


def udp_exchange(port: int, data: bytes, timeout: float = 2.0) -> bytes | None:
    """Send one datagram to the server, return the first answer (None on timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recvfrom(65535)[0]
        except TimeoutError:
            return None
