"""The per-process runtime: core parameter defaults, myself checks."""

from __future__ import annotations

from sipserver.core.runtime import CORE_DEFAULTS, Alias, Runtime, SocketInfo
from sipserver.lang.parser import GLOBAL_PARAMS


def test_every_core_parameter_has_a_default() -> None:
    missing = set(GLOBAL_PARAMS) - set(CORE_DEFAULTS) - {"listen", "alias", "dst_blacklist",
                                                         "tls_log"}
    assert not missing


def test_is_myself() -> None:
    rt = Runtime(sockets=[SocketInfo("udp", "192.0.2.1", 5060, "sip.example.com", 5060)],
                 aliases=[Alias("Example.ORG"), Alias("pbx.example.net", 5080, "tcp")])
    assert rt.is_myself("192.0.2.1", 5060)
    assert rt.is_myself("192.0.2.1", None)
    assert not rt.is_myself("192.0.2.1", 5061)
    assert rt.is_myself("sip.example.com", 5060)
    assert rt.is_myself("example.org", 9999)
    assert rt.is_myself("pbx.example.net", 5080, "tcp")
    assert not rt.is_myself("pbx.example.net", 5080, "udp")
    assert not rt.is_myself("192.0.2.2", 5060)
