"""Run SIPp (Debian package sip-tester) from tests, bounded in time, by PID."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

SCENARIOS = Path(__file__).with_name("scenarios")


def have_sipp() -> bool:
    return shutil.which("sipp") is not None


class Uas:
    """A SIPp UAS running a scenario in the background until stop()."""

    def __init__(self, tmp: Path, port: int, scenario: str = "uas.xml",
                 transport: str = "u1") -> None:
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
             "-t", transport, "-nostdin", "-trace_err", "-error_file", str(tmp / "uas_err.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run_uac(tmp: Path, target: str, *, calls: int, rate: int, scenario: str = "uac.xml",
            transport: str = "u1", local_port: int = 0, timeout: float = 60) -> dict[str, int]:
    """Run a UAC to completion; returns SIPp's final counters."""
    stat = tmp / "uac_stat.csv"
    args = ["sipp", target, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1",
            "-m", str(calls), "-r", str(rate), "-t", transport, "-nostdin",
            "-timeout", f"{int(timeout)}s", "-timeout_error", "-recv_timeout", "5s",
            "-trace_stat", "-stf", str(stat), "-trace_err",
            "-error_file", str(tmp / "uac_err.log")]
    if local_port:
        args += ["-p", str(local_port)]
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp,
                          timeout=timeout + 30, check=False)
    rows = list(csv.reader(stat.read_text().splitlines(), delimiter=";"))
    head, last = rows[0], rows[-1]
    values = dict(zip(head, last, strict=False))
    return {
        "exit": proc.returncode,
        "successful": int(values["SuccessfulCall(C)"]),
        "failed": int(values["FailedCall(C)"]),
        "retransmissions": int(values["Retransmissions(C)"]),
        "unexpected": int(values.get("FailedUnexpectedMessage(C)", 0)),
    }
