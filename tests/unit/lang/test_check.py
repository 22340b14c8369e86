"""`sipserver -c -f FILE` on valid and broken scripts, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipserver.cli", "-c", "-f", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_example_config_is_valid() -> None:
    out = _check(ROOT / "opensips.cfg.example")
    assert out.returncode == 0, out.stderr
    assert "config file ok" in out.stderr


def test_errors_are_listed_with_locations(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('debug=3\nroute {\n    sl_send_reply("404", "Not Found")\n    exit;\n}\n')
    out = _check(cfg)
    assert out.returncode == 1
    first = out.stderr.splitlines()[0]
    assert first.startswith(f"{cfg}:4:5: ")
    assert "missing ';'" in first


def test_unknown_global_parameter_suggests(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.cfg"
    cfg.write_text("chidren=4\nroute { exit; }\n")
    out = _check(cfg)
    assert out.returncode == 1
    assert f"{cfg}:1:1:" in out.stderr and "children" in out.stderr


def test_missing_file(tmp_path: Path) -> None:
    out = _check(tmp_path / "nope.cfg")
    assert out.returncode == 1
    assert "cannot read" in out.stderr and "No such file" in out.stderr
