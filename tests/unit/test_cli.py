"""The sipserver command line: 1.6 options parsed as 1.6 did."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sipserver.cli import Options, UsageError, main, parse_args


def test_combined_flags_and_repeated_listen() -> None:
    o = parse_args(["-dddE", "-f", "x.cfg", "-l", "udp:127.0.0.1:5060", "-l", "tcp:127.0.0.1:5060", "-n", "4", "-m", "64", "-F"])
    assert isinstance(o, Options)
    assert o.debug_level == 3 and o.log_stderr and o.foreground
    assert o.cfg_file == "x.cfg" and o.children == 4 and o.shm_mb == 64
    assert o.listen == ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]


def test_check_flags() -> None:
    o = parse_args(["-c", "-f", "a.cfg"])
    assert o.check_only and not o.check_route_types
    o = parse_args(["-C"])
    assert o.check_only and o.check_route_types


@pytest.mark.parametrize("argv", [["-n", "x"], ["-Q"], ["-f"], ["stray"], ["-m", "0"], ["-n", "-1"]])
def test_bad_usage(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-V"]) == 0
    assert "version: sipserver" in capsys.readouterr().out
    assert main(["-h"]) == 0
    assert "-F" in capsys.readouterr().out
    assert main(["-Z"]) == 2
    assert "Try 'sipserver -h'" in capsys.readouterr().err


def test_console_scripts_installed() -> None:
    out = subprocess.run([sys.executable, "-m", "sipserver.cli", "-V"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("version: sipserver")
