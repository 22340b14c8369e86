"""sipctl's pure parts: connectors, settings, requests, reply filtering, usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipserver.ctl import main as ctl
from sipserver.ctl.mi_client import (
    Connector,
    build_request,
    filter_reply,
    parse_connector,
    reply_code,
)


def test_parse_connector() -> None:
    assert parse_connector("FIFO:/run/sipserver/sipserver_fifo") == \
        Connector("fifo", "/run/sipserver/sipserver_fifo")
    assert parse_connector("unixsock:/tmp/mi.sock") == Connector("unixsock", "/tmp/mi.sock")
    assert parse_connector("UDP:127.0.0.1:8080") == Connector("udp", "127.0.0.1:8080")
    assert parse_connector("/tmp/opensips_fifo") == Connector("fifo", "/tmp/opensips_fifo")
    for bad in ("XMLRPC:1.2.3.4:8000", "UDP:1.2.3.4", "FIFO:", "nonsense"):
        with pytest.raises(ValueError):
            parse_connector(bad)


def test_build_request() -> None:
    assert build_request("ps", [], fifo_reply="r") == b":ps:r\n\n"
    assert build_request("get_statistics", ["core:", ""], fifo_reply="r") == \
        b':get_statistics:r\ncore:\n""\n\n'
    assert build_request("debug", [], fifo_reply=None) == b":debug:\n\n"


def test_filter_reply_like_opensipsctl() -> None:
    assert filter_reply(b"200 OK\nA:: 1\n\n\tB:: 2\n\n") == "A:: 1\n\tB:: 2\n"
    assert filter_reply(b"404 Statistics Not Found\n\n") == "404 Statistics Not Found\n"
    assert reply_code(b"404 Statistics Not Found\n") == 404 and reply_code(b"") is None


def test_settings_precedence(tmp_path: Path) -> None:
    rc = tmp_path / "rc"
    rc.write_text('MI_CONNECTOR="UNIXSOCK:/a b"   # comment\nREPLY_DIR=/var/tmp\nTIMEOUT=3\n')
    env = {"SIPCTL_CONFIG": str(rc)}
    assert ctl.choose_transport(None, env) == (Connector("unixsock", "/a b"), "/var/tmp", 3.0)
    env2 = {**env, "SIPCTL_MI": "UDP:1.2.3.4:9"}
    assert ctl.choose_transport(None, env2)[0] == Connector("udp", "1.2.3.4:9")
    assert ctl.choose_transport("FIFO:/x", env2)[0] == Connector("fifo", "/x")
    rc.write_text("OSIPS_FIFO=/tmp/opensips_fifo\n")
    assert ctl.choose_transport(None, env)[0] == Connector("fifo", "/tmp/opensips_fifo")
    rc.write_text("this is not a setting\n")
    with pytest.raises(ctl.UsageError, match="KEY=value"):
        ctl.choose_transport(None, env)


def test_stats_arguments() -> None:
    assert ctl._stats_args([]) == ["all"]
    assert ctl._stats_args(["core", "tm:rcv", "all", "usrloc:"]) == ["core:", "tm:rcv", "all", "usrloc:"]


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["version"], {}) == 0
    assert capsys.readouterr().out.startswith("sipctl ")
    assert ctl.main([], {}) == 2
    assert ctl.main(["--help"], {}) == 0
    assert "stats [GROUP..]" in capsys.readouterr().out
    assert ctl.main(["frobnicate"], {}) == 2
    assert "unknown command" in capsys.readouterr().err
    assert ctl.main(["fifo"], {}) == 2
    assert ctl.main(["-x", "ps"], {}) == 2
    assert ctl.main(["-t", "abc", "ps"], {}) == 2
