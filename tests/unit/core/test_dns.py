"""Next-hop DNS resolution (RFC 3263 as 1.6 does it), against a real DNS server on loopback.

Covers: IP literals (no query), NAPTR -> SRV -> A chains and the resulting
order, NAPTR filtering, SRV priority and weights, port given (A only),
transport given (which SRV name), SIPS, IPv6 fall-back, the TTL cache and
negative cache with an injected clock, SERVFAIL, timeouts, PTR, the hosts
file, the core-parameter mapping and the fail-over blacklist.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from sipserver.core.dns import (
    DNS_BLACKLIST_EXPIRE,
    SipResolver,
    SrvRecord,
    default_port,
    ip_literal,
    order_srv,
)
from sipserver.core.runtime import CORE_DEFAULTS, Destination
from tests.dnsserver import DnsTestServer, silent_udp_port

ZONE = """
$TTL 300
@                  IN SOA   ns.test. hostmaster.test. 1 3600 600 86400 60
@                  IN NS    ns.test.
ns                 IN A     127.0.0.1

; NAPTR -> SRV -> A
example            IN NAPTR 20 10 "s" "SIP+D2U"  "" _sip._udp.example.test.
example            IN NAPTR 10 10 "s" "SIP+D2T"  "" _sip._tcp.example.test.
example            IN NAPTR 5  10 "s" "SIPS+D2T" "" _sips._tcp.example.test.
example            IN NAPTR 1  10 ""  "SIP+D2U"  "" _bad._udp.example.test.
example            IN NAPTR 1  20 "s" "SIP+D2U"  "!^.*$!sip:x@bad.test!" .
example            IN NAPTR 1  30 "s" "SIPS+D2U" "" _bad._udp.example.test.
example            IN NAPTR 1  40 "s" "E2U+sip"  "" _bad._udp.example.test.
example            IN A     10.0.0.9
_sip._tcp.example  IN SRV   20 0 5080 pbx2.example.test.
_sip._tcp.example  IN SRV   10 0 5070 pbx1.example.test.
_sip._udp.example  IN SRV   10 0 5060 pbx3.example.test.
_sips._tcp.example IN SRV   10 0 5061 pbx1.example.test.
_bad._udp.example  IN SRV   10 0 9999 bad.example.test.
pbx1.example       IN A     10.0.0.1
pbx1.example       IN A     10.0.0.2
pbx2.example       IN A     10.0.0.3
pbx3.example       IN A     10.0.0.4
bad.example        IN A     10.9.9.9

; SRV only, one per transport
_sip._udp.srvonly  IN SRV   10 0 5062 pbx3.example.test.
_sip._tcp.srvonly  IN SRV   10 0 5063 pbx2.example.test.
_sips._tcp.srvonly IN SRV   10 0 5064 pbx1.example.test.
srvonly            IN A     10.0.0.99

; A only
plain              IN A     10.0.0.5
short          60  IN A     10.0.0.6
alias          20  IN CNAME pbx3.example.test.

; IPv6
v6only             IN AAAA  2001:db8:0:0::1
dual               IN A     10.0.0.7
dual               IN AAAA  2001:db8::7
_sip._udp.v6srv    IN SRV   10 0 5070 v6only.test.

; weights
_sip._udp.weights  IN SRV   10 90 5060 heavy.test.
_sip._udp.weights  IN SRV   10 10 5060 light.test.
_sip._udp.weights  IN SRV   5  0  5060 first.test.
_sip._udp.weights  IN SRV   20 50 5060 last.test.
heavy              IN A     10.1.0.1
light              IN A     10.1.0.2
first              IN A     10.1.0.3
last               IN A     10.1.0.4

; "." target and a partially unreachable SRV set
_sip._udp.dot      IN SRV   10 0 0 .
dot                IN A     10.0.0.8
_sip._udp.partial  IN SRV   10 0 5060 pbx1.example.test.
_sip._udp.partial  IN SRV   20 0 5060 slow.test.
slow               IN A     10.0.0.10
"""

REV_ZONE = ("0.0.10.in-addr.arpa.", """
$TTL 300
@  IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@  IN NS  ns.test.
1  IN PTR pbx1.example.test.
""")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def server():
    with DnsTestServer(ZONE, REV_ZONE, servfail=["broken.test"],
                       drop=["timeout.test", "slow.test"]) as srv:
        yield srv


@pytest.fixture
def srv(server: DnsTestServer) -> DnsTestServer:
    server.reset_counts()
    return server


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(srv: DnsTestServer, clock: Clock | None = None, **kw) -> SipResolver:
    kw.setdefault("hosts_file", None)
    kw.setdefault("timeout", 0.3)
    kw.setdefault("retries", 1)
    return SipResolver(nameservers=[srv.address], clock=clock or Clock(), **kw)


def D(proto: str, ip: str, port: int) -> Destination:
    return Destination(proto, ip, port)


# ------------------------------------------------------------ IP literals


class Boom:
    """Stands in for dnspython: any query is a test failure."""

    def __init__(self) -> None:
        self.calls = 0

    def resolve(self, *a, **kw):
        self.calls += 1
        raise AssertionError("DNS queried for an IP literal")


@pytest.mark.parametrize(("host", "port", "proto", "sips", "want"), [
    ("192.0.2.1", None, None, False, D("udp", "192.0.2.1", 5060)),
    ("192.0.2.1", 5070, "tcp", False, D("tcp", "192.0.2.1", 5070)),
    ("192.0.2.1", None, "tls", False, D("tls", "192.0.2.1", 5061)),
    ("192.0.2.1", None, None, True, D("tls", "192.0.2.1", 5061)),
    ("[2001:db8::1]", None, None, False, D("udp", "2001:db8::1", 5060)),
    ("2001:DB8:0::1", 5080, "TCP", False, D("tcp", "2001:db8::1", 5080)),
    ("[::1]", 0, "udp", False, D("udp", "::1", 5060)),
])
def test_ip_literal_never_queries(srv, host, port, proto, sips, want):
    r = make(srv, protos=("udp", "tcp", "tls"))
    boom = r._dns = Boom()
    assert r.resolve(host, port, proto, sips) == [want]
    assert boom.calls == 0 and r.queries == 0 and srv.total() == 0


def test_ip_literal_parsing():
    assert ip_literal("10.0.0.1") == "10.0.0.1"
    assert ip_literal("[fe80::1]") == "fe80::1"
    assert ip_literal("3com.com") is None
    assert ip_literal("1.2.3") is None
    assert ip_literal("[1.2.3.4]") is None
    assert ip_literal("example.com") is None
    assert ip_literal("") is None
    assert default_port("tls") == 5061 and default_port("udp", True) == 5061
    assert default_port("tcp") == 5060


# ------------------------------------------------------- NAPTR -> SRV -> A


def test_naptr_srv_a_chain_order(srv):
    r = make(srv)
    assert r.resolve("example.test", None, None) == [
        D("tcp", "10.0.0.1", 5070), D("tcp", "10.0.0.2", 5070),
        D("tcp", "10.0.0.3", 5080),
        D("udp", "10.0.0.4", 5060),
    ]
    # SIPS+D2T skipped (no TLS); non-terminal, regexp, SIPS+D2U and E2U records skipped
    assert srv.count("_sips._tcp.example.test") == 0
    assert srv.count("_bad._udp.example.test") == 0
    assert srv.count("bad.example.test") == 0
    # NAPTR answered: no direct SRV / A fall-back for the domain itself
    assert srv.count("example.test", "A") == 0


def test_naptr_with_tls_puts_sips_first(srv):
    r = make(srv, protos=("udp", "tcp", "tls"))
    assert r.resolve("example.test", None, None)[:3] == [
        D("tls", "10.0.0.1", 5061), D("tls", "10.0.0.2", 5061), D("tcp", "10.0.0.1", 5070)]


def test_naptr_filtered_to_supported_transports(srv):
    r = make(srv, protos=("udp",))
    assert r.resolve("example.test", None, None) == [D("udp", "10.0.0.4", 5060)]
    assert srv.count("_sip._tcp.example.test") == 0


def test_sips_uses_only_sips_naptr(srv):
    r = make(srv, protos=("udp", "tcp", "tls"))
    assert r.resolve("example.test", None, None, True) == [
        D("tls", "10.0.0.1", 5061), D("tls", "10.0.0.2", 5061)]


def test_sips_without_tls_support_fails(srv):
    r = make(srv)
    assert r.resolve("example.test", None, None, True) == []
    assert "TLS" in r.last_error
    assert srv.total() == 0


def test_failover_disabled_keeps_first_target_only(srv):
    r = make(srv, failover=False)
    assert r.resolve("example.test", None, None) == [
        D("tcp", "10.0.0.1", 5070), D("tcp", "10.0.0.2", 5070)]
    assert srv.count("pbx2.example.test") == 0
    assert srv.count("_sip._udp.example.test") == 0


# ----------------------------------------------------------- SRV, then A


def test_no_naptr_falls_back_to_udp_srv(srv):
    r = make(srv)
    assert r.resolve("srvonly.test", None, None) == [D("udp", "10.0.0.4", 5062)]
    assert srv.count("srvonly.test", "NAPTR") == 1
    assert srv.count("srvonly.test", "A") == 0


def test_proto_given_uses_its_srv_name(srv):
    r = make(srv, protos=("udp", "tcp", "tls"))
    assert r.resolve("srvonly.test", None, "tcp") == [D("tcp", "10.0.0.3", 5063)]
    assert r.resolve("srvonly.test", None, "tls") == [
        D("tls", "10.0.0.1", 5064), D("tls", "10.0.0.2", 5064)]
    assert srv.count("srvonly.test", "NAPTR") == 0
    assert srv.count("_sip._udp.srvonly.test") == 0
    assert srv.count("_sip._tcp.srvonly.test", "SRV") == 1
    assert srv.count("_sips._tcp.srvonly.test", "SRV") == 1


def test_sips_without_proto_uses_sips_srv(srv):
    r = make(srv, protos=("udp", "tcp", "tls"))
    assert r.resolve("srvonly.test", None, None, True) == [
        D("tls", "10.0.0.1", 5064), D("tls", "10.0.0.2", 5064)]


def test_sips_with_non_tls_proto_fails(srv):
    r = make(srv, protos=("udp", "tcp", "tls"))
    assert r.resolve("srvonly.test", None, "tcp", True) == []
    assert srv.total() == 0


def test_unsupported_proto_fails(srv):
    r = make(srv, protos=("udp",))
    assert r.resolve("srvonly.test", None, "tcp") == []
    assert "unsupported" in r.last_error


def test_no_srv_falls_back_to_a_with_default_port(srv):
    r = make(srv, protos=("udp", "tcp", "tls"))
    assert r.resolve("plain.test", None, None) == [D("udp", "10.0.0.5", 5060)]
    assert r.resolve("plain.test", None, "tcp") == [D("tcp", "10.0.0.5", 5060)]
    assert r.resolve("plain.test", None, None, True) == [D("tls", "10.0.0.5", 5061)]


def test_port_given_skips_naptr_and_srv(srv):
    r = make(srv)
    assert r.resolve("example.test", 5099, None) == [D("udp", "10.0.0.9", 5099)]
    assert r.resolve("srvonly.test", 5098, "tcp") == [D("tcp", "10.0.0.99", 5098)]
    assert srv.count("example.test", "NAPTR") == 0
    assert srv.count("srvonly.test", "NAPTR") == 0
    assert srv.count("_sip._udp.example.test") == 0
    assert srv.count("_sip._tcp.srvonly.test") == 0


def test_srv_target_dot_means_not_available(srv):
    r = make(srv)
    assert r.resolve("dot.test", None, "udp") == [D("udp", "10.0.0.8", 5060)]


def test_cname_followed(srv, clock):
    r = make(srv, clock)
    assert r.resolve("alias.test", 5060, None) == [D("udp", "10.0.0.4", 5060)]
    clock.t += 19
    r.resolve("alias.test", 5060, None)
    assert srv.count("alias.test", "A") == 1
    clock.t += 2  # the CNAME's 20 s TTL bounds the cached answer
    r.resolve("alias.test", 5060, None)
    assert srv.count("alias.test", "A") == 2


def test_case_and_trailing_dot(srv):
    r = make(srv)
    assert r.resolve("PLAIN.Test.", 5060, "udp") == [D("udp", "10.0.0.5", 5060)]


# ------------------------------------------------------------ SRV weights


def test_srv_priority_and_weights_statistically(srv):
    r = make(srv, rng=random.Random(1234))
    firsts: Counter[str] = Counter()
    for _ in range(2000):
        got = r.resolve("weights.test", None, "udp")
        assert got[0] == D("udp", "10.1.0.3", 5060)  # priority 5
        assert got[-1] == D("udp", "10.1.0.4", 5060)  # priority 20
        assert {d.ip for d in got[1:3]} == {"10.1.0.1", "10.1.0.2"}
        firsts[got[1].ip] += 1
    share = firsts["10.1.0.1"] / 2000
    assert 0.85 < share < 0.95  # weight 90 of 100
    # everything came from the cache after the first round
    assert srv.count("_sip._udp.weights.test", "SRV") == 1
    assert srv.count("heavy.test", "A") == 1


class FixedRng:
    def __init__(self, value_of_total):
        self.f = value_of_total

    def randint(self, a: int, b: int) -> int:
        return self.f(b)


def test_srv_weights_with_injected_rng(srv):
    r = make(srv, rng=FixedRng(lambda total: total))  # always the last running sum
    got = r.resolve("weights.test", None, "udp")
    assert [d.ip for d in got] == ["10.1.0.3", "10.1.0.2", "10.1.0.1", "10.1.0.4"]
    r = make(srv, rng=FixedRng(lambda total: 0))
    got = r.resolve("weights.test", None, "udp")
    assert [d.ip for d in got] == ["10.1.0.3", "10.1.0.1", "10.1.0.2", "10.1.0.4"]


def test_order_srv_zero_weights():
    recs = [SrvRecord(1, 0, 1, "a"), SrvRecord(1, 5, 2, "b"), SrvRecord(0, 0, 3, "c"),
            SrvRecord(1, 0, 4, "d")]
    # draw 0: the zero-weight records (placed first) win, in answer order
    got = order_srv(recs, FixedRng(lambda total: 0))
    assert [x.target for x in got] == ["c", "a", "d", "b"]
    got = order_srv(recs, FixedRng(lambda total: total))
    assert [x.target for x in got] == ["c", "b", "a", "d"]


# ------------------------------------------------------------------ IPv6


def test_ipv6_only_with_try_ipv6(srv):
    assert make(srv).resolve("v6only.test", 5060, None) == []
    r = make(srv, try_ipv6=True)
    assert r.resolve("v6only.test", 5060, None) == [D("udp", "2001:db8::1", 5060)]
    assert r.resolve("v6srv.test", None, "udp") == [D("udp", "2001:db8::1", 5070)]


def test_ipv6_not_used_when_a_exists(srv):
    r = make(srv, try_ipv6=True)
    assert r.resolve("dual.test", 5060, None) == [D("udp", "10.0.0.7", 5060)]
    assert srv.count("dual.test", "AAAA") == 0


# ------------------------------------------------------------------ cache


def test_cache_honours_ttl(srv, clock):
    r = make(srv, clock)
    want = [D("udp", "10.0.0.6", 5060)]
    assert r.resolve("short.test", 5060, None) == want
    clock.t += 59
    assert r.resolve("short.test", 5060, None) == want
    assert srv.count("short.test", "A") == 1
    assert r.cache_hits == 1
    clock.t += 2
    assert r.resolve("short.test", 5060, None) == want
    assert srv.count("short.test", "A") == 2


def test_whole_chain_cached(srv, clock):
    r = make(srv, clock)
    first = r.resolve("example.test", None, None)
    n = srv.total()
    assert r.resolve("example.test", None, None) == first
    assert srv.total() == n
    clock.t += 301
    assert r.resolve("example.test", None, None) == first
    assert srv.total() == 2 * n


def test_negative_cache_nxdomain(srv, clock):
    r = make(srv, clock, negative_ttl=30)
    assert r.resolve("nope.test", 5060, None) == []
    assert "no such domain" in r.last_error
    clock.t += 29
    r.last_error = ""
    assert r.resolve("nope.test", 5060, None) == []
    assert "nope.test" in r.last_error  # a cached failure still says why
    assert srv.count("nope.test", "A") == 1
    clock.t += 2
    r.resolve("nope.test", 5060, None)
    assert srv.count("nope.test", "A") == 2


def test_negative_cache_uses_soa_ttl_below_cap(srv, clock):
    r = make(srv, clock, negative_ttl=1000)
    r.resolve("nope.test", 5060, None)
    clock.t += 59  # SOA minimum is 60
    r.resolve("nope.test", 5060, None)
    assert srv.count("nope.test", "A") == 1
    clock.t += 2
    r.resolve("nope.test", 5060, None)
    assert srv.count("nope.test", "A") == 2


def test_nodata_cached_so_missing_naptr_costs_one_query(srv, clock):
    r = make(srv, clock)
    for _ in range(5):
        assert r.resolve("plain.test", None, None) == [D("udp", "10.0.0.5", 5060)]
    assert srv.count("plain.test", "NAPTR") == 1
    assert srv.count("_sip._udp.plain.test", "SRV") == 1


def test_clear_cache(srv):
    r = make(srv)
    r.resolve("plain.test", 5060, None)
    r.clear_cache()
    r.resolve("plain.test", 5060, None)
    assert srv.count("plain.test", "A") == 2


# ----------------------------------------------------------------- errors


def test_servfail_gives_empty_and_is_not_cached(srv, clock):
    r = make(srv, clock)
    assert r.resolve("broken.test", 5060, None) == []
    assert "failure" in r.last_error and "SERVFAIL" in r.last_error
    assert r.resolve("broken.test", 5060, None) == []
    assert srv.count("broken.test", "A") == 2


def test_servfail_cached_with_error_ttl(srv, clock):
    r = make(srv, clock, error_ttl=5)
    r.resolve("broken.test", 5060, None)
    r.resolve("broken.test", 5060, None)
    assert srv.count("broken.test", "A") == 1


def test_timeout_gives_empty_within_timeout(srv):
    r = make(srv, timeout=0.2, retries=1)
    start = time.monotonic()
    assert r.resolve("timeout.test", None, None) == []
    assert time.monotonic() - start < 1.0
    assert "timeout" in r.last_error
    # the resolution stopped at the first timeout: no SRV or A queries after it
    assert srv.count("timeout.test", "NAPTR") >= 1
    assert srv.count("_sip._udp.timeout.test") == 0
    assert srv.count("timeout.test", "A") == 0


def test_silent_server_times_out():
    sock = silent_udp_port()
    try:
        r = SipResolver(nameservers=[("127.0.0.1", sock.getsockname()[1])], timeout=0.2,
                        retries=1, hosts_file=None)
        start = time.monotonic()
        assert r.resolve("anything.test", None, None) == []
        assert time.monotonic() - start < 1.0
        assert r.resolve_host("anything.test") == []
        assert r.reverse("10.0.0.1") == []
    finally:
        sock.close()


def test_timeout_keeps_addresses_found_before(srv):
    r = make(srv, timeout=0.2, retries=1)
    assert r.resolve("partial.test", None, "udp") == [
        D("udp", "10.0.0.1", 5060), D("udp", "10.0.0.2", 5060)]


def test_bad_names_never_raise(srv):
    r = make(srv)
    assert r.resolve("", None, None) == []
    assert r.resolve("a..b", None, None) == []
    assert r.resolve("x" * 300 + ".test", 5060, None) == []
    assert r.last_error


# -------------------------------------------------- reverse, hosts, helpers


def test_reverse_ptr(srv):
    r = make(srv)
    assert r.reverse("10.0.0.1") == ["pbx1.example.test"]
    assert r.reverse("10.0.0.2") == []
    assert r.reverse("not-an-ip") == []


def test_resolve_host(srv):
    r = make(srv, try_ipv6=True)
    assert r.resolve_host("pbx1.example.test") == ["10.0.0.1", "10.0.0.2"]
    assert r.resolve_host("v6only.test") == ["2001:db8::1"]
    assert r.resolve_host("[::1]") == ["::1"]
    assert srv.count("pbx1.example.test", "NAPTR") == 0


def test_hosts_file_first(srv, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n10.7.7.7  MyHost myalias  # trailing\n::7 v6host\n"
                     "10.0.0.42 plain.test\n")
    r = make(srv, hosts_file=str(hosts), try_ipv6=True)
    assert r.resolve("myhost", 5060, None) == [D("udp", "10.7.7.7", 5060)]
    assert r.resolve("plain.test", 5060, None) == [D("udp", "10.0.0.42", 5060)]
    assert r.resolve("v6host", 5060, "tcp") == [D("tcp", "::7", 5060)]
    assert r.reverse("10.7.7.7") == ["MyHost", "myalias"]
    assert srv.count("myhost") == 0 and srv.count("plain.test") == 0


def test_search_list(srv):
    r = make(srv, search=["example.test"])
    assert r.resolve("pbx3", 5060, None) == [D("udp", "10.0.0.4", 5060)]
    r = make(srv, search=["example.test"], use_search_list=False)
    assert r.resolve("pbx3", 5060, None) == []


def test_from_config():
    cfg = dict(CORE_DEFAULTS, dns_try_ipv6=1, disable_dns_failover=1, dns_retr_time=3,
               dns_retr_no=4, dns_servers_no=1, disable_tcp=1, disable_tls=0,
               dns_use_search_list=0, disable_dns_blacklist=0)
    r = SipResolver.from_config(cfg, nameservers=[("127.0.0.1", 53), ("127.0.0.2", 53)])
    assert r.try_ipv6 and not r.failover and not r.use_search_list and r.blacklist_enabled
    assert r.protos == {"udp", "tls"}
    assert len(r._dns.nameservers) == 1
    assert r._dns.timeout == 3 and r._dns.lifetime == 12

    r = SipResolver.from_config(CORE_DEFAULTS, nameservers=["127.0.0.1"])
    assert r.protos == {"udp", "tcp"}
    assert r.failover and not r.try_ipv6 and r.use_search_list and not r.blacklist_enabled
    assert r._dns.lifetime == r._dns.timeout * 2


def test_default_nameservers_from_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch example.test\n")
    r = SipResolver(resolv_conf=str(conf), servers_no=1)
    assert [str(n) for n in r._dns.nameservers] == ["192.0.2.53"]
    r = SipResolver(resolv_conf=str(tmp_path / "missing"))
    assert [str(n) for n in r._dns.nameservers] == ["127.0.0.1"]


def test_dns_blacklist(clock):
    d = D("udp", "10.0.0.1", 5060)
    r = SipResolver(nameservers=["127.0.0.1"], clock=clock, blacklist=True)
    assert not r.is_blacklisted(d)
    r.mark_failed(d)
    assert r.is_blacklisted(d)
    assert not r.is_blacklisted(D("tcp", "10.0.0.1", 5060))
    clock.t += DNS_BLACKLIST_EXPIRE + 1
    assert not r.is_blacklisted(d)
    off = SipResolver(nameservers=["127.0.0.1"], clock=clock)
    off.mark_failed(d)
    assert not off.is_blacklisted(d)
