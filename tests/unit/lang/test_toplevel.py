"""Top-level statements: global parameters, mpath/loadmodule/modparam, TLS
domains, dst_blacklist, include_file (spec sections 1.1-1.4, 5; checklist 1,
2, 3, 36)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipserver.lang import ast
from sipserver.lang.errors import CfgError
from sipserver.lang.parser import GLOBAL_PARAMS, PARAM_ALIASES, parse_file

from .util import error, num, parse, s


def param(text: str) -> ast.GlobalParam:
    script = parse(text)
    assert len(script.params) == 1, script.params
    return script.params[0]


# ------------------------------------------------------------------ file structure


def test_top_level_items_in_any_order_keep_source_order() -> None:
    script = parse(
        'route { exit; }\n'
        'debug=3\n'
        'loadmodule "sl.so"\n'
        'failure_route[1] { exit; }\n'
        'modparam("sl", "enable_stats", 0)\n'
        'children=4\n'
    )
    kinds = [type(i).__name__ for i in script.items]
    assert kinds == ["Route", "GlobalParam", "LoadModule", "Route", "ModParam", "GlobalParam"]


def test_semicolon_at_top_level_is_rejected() -> None:
    _f, line, col, msg = error("debug=3;\n")
    assert (line, col) == (1, 8)
    assert "';' is not allowed at top level" in msg


def test_empty_script_parses() -> None:
    script = parse("# nothing but a comment\n")
    assert script.items == []


def test_newlines_are_not_significant() -> None:
    script = parse("debug =\n 3 fork\n=\nno")
    assert [(p.name, p.value) for p in script.params] == [("debug", num(3)), ("fork", num(0))]


# ------------------------------------------------------------------ every global parameter

_INT_PARAMS = [n for n, k in GLOBAL_PARAMS.items() if k == "int"]
_BOOL_PARAMS = [n for n, k in GLOBAL_PARAMS.items() if k == "bool"]
_STR_PARAMS = [n for n, k in GLOBAL_PARAMS.items() if k == "str"]
_IDSTR_PARAMS = [n for n, k in GLOBAL_PARAMS.items() if k == "idstr"]


def test_parameter_table_covers_the_spec() -> None:
    # every name of spec section 5 (aliases excluded) is known
    spec_names = ["debug", "fork", "log_stderror", "log_facility", "log_name", "avp_aliases", "listen", "alias", "auto_aliases", "dns", "rev_dns", "dns_try_ipv6", "dns_retr_time", "dns_retr_no", "dns_servers_no", "dns_use_search_list", "port", "maxbuffer", "children", "check_via", "memlog", "memdump", "sip_warning", "server_signature", "server_header", "user_agent_header", "user", "group", "chroot", "workdir", "mhomed", "disable_tcp", "tcp_children", "tcp_accept_aliases", "tcp_send_timeout", "tcp_connect_timeout", "tcp_connection_lifetime", "tcp_poll_method", "tcp_max_connections", "tcp_crlf_pingpong", "disable_tls", "tls_port_no", "tls_log", "tls_method", "tls_verify_client", "tls_verify_server", "tls_require_client_certificate", "tls_certificate", "tls_private_key", "tls_ca_list", "tls_ciphers_list", "tls_handshake_timeout", "tls_send_timeout", "tls_client_domain_avp", "advertised_address", "advertised_port", "disable_core_dump", "open_files_limit", "mcast_loopback", "mcast_ttl", "tos", "disable_dns_failover", "disable_dns_blacklist", "dst_blacklist", "max_while_loops", "disable_stateless_fwd", "db_version_table", "disable_503_translation", "xlog_buf_size", "xlog_force_color", "mpath"]
    assert set(spec_names) == set(GLOBAL_PARAMS)
    assert PARAM_ALIASES == {"mem_log": "memlog", "mem_dump": "memdump", "uid": "user",
                             "gid": "group", "wdir": "workdir", "tlslog": "tls_log"}


@pytest.mark.parametrize("name", _INT_PARAMS)
def test_int_parameters(name: str) -> None:
    p = param(f"{name} = 0x10")
    assert (p.name, p.value) == (name, num(16))
    assert "unsigned number" in error(f"{name} = -1")[3]
    assert "expects an unsigned number, got a quoted string" in error(f'{name} = "1"')[3]


@pytest.mark.parametrize("name", _BOOL_PARAMS)
@pytest.mark.parametrize(("word", "value"), [("yes", 1), ("no", 0), ("on", 1), ("off", 0),
                                             ("true", 1), ("false", 0), ("1", 1), ("0", 0)])
def test_bool_parameters(name: str, word: str, value: int) -> None:
    assert param(f"{name}={word}").value == num(value)


@pytest.mark.parametrize("name", _STR_PARAMS)
def test_string_parameters(name: str) -> None:
    assert param(f'{name} = "some text"').value == s("some text")
    assert "expects a quoted string, got a bare word" in error(f"{name} = word")[3]


@pytest.mark.parametrize("name", _IDSTR_PARAMS)
def test_word_or_string_parameters(name: str) -> None:
    assert param(f"{name} = epoll_lt").value == ast.Ident("epoll_lt")
    assert param(f'{name} = "/some/path"').value == s("/some/path")


def test_debug_takes_a_sign_and_others_do_not() -> None:
    assert param("debug=-1").value == num(-1)
    assert param("debug=4").value == num(4)
    _f, line, col, msg = error("children=-1")
    assert (line, col) == (1, 10)
    assert msg == "children expects an unsigned number, got -1 (only debug takes a sign)"


def test_log_facility_must_be_a_bare_word() -> None:
    assert param("log_facility=LOG_LOCAL0").value == ast.Ident("LOG_LOCAL0")
    msg = error('log_facility="LOG_LOCAL0"')[3]
    assert msg == "log_facility expects a bare word (no quotes), got a quoted string"


@pytest.mark.parametrize(("alias", "name"), sorted(PARAM_ALIASES.items()))
def test_parameter_aliases(alias: str, name: str) -> None:
    kind = GLOBAL_PARAMS[name]
    value = "4" if kind == "int" else "opensips"
    p = param(f"{alias}={value}")
    assert p.name == name
    assert p.written == alias


def test_unknown_parameter_with_suggestion() -> None:
    _f, line, col, msg = error("debug=3\nchidren=4\n")
    assert (line, col) == (2, 1)
    assert msg == "unknown global parameter 'chidren' (did you mean 'children'?)"


def test_tls_method_words() -> None:
    for word, canon in [("SSLv23", "SSLv23"), ("sslv3", "SSLv3"), ("TLSV1", "TLSv1"),
                        ("SSLv2", "SSLv2")]:
        assert param(f"tls_method={word}").value == ast.Ident(canon)
    assert "SSLv23, SSLv2, SSLv3 or TLSv1" in error("tls_method=TLSv12")[3]


def test_tos_number_or_name() -> None:
    assert param("tos=0x10").value == num(16)
    assert param("tos=IPTOS_THROUGHPUT").value == ast.Ident("IPTOS_THROUGHPUT")
    assert "invalid tos value" in error("tos=0")[3]
    assert "expects a positive number or IPTOS_" in error("tos=IPTOS_FAST")[3]


def test_advertised_address_forms() -> None:
    assert param("advertised_address=1.2.3.4").value == ast.IPLit("1.2.3.4")
    assert param("advertised_address=sip.example.com").value == ast.HostLit("sip.example.com")
    assert param('advertised_address="10.0.0.1"').value == s("10.0.0.1")
    assert param("advertised_port=5080").value == num(5080)


# ------------------------------------------------------------------ listen / alias


def sock(proto, host, port=None, adv_host=None, adv_port=None) -> ast.Socket:
    return ast.Socket(proto, host, port, adv_host, adv_port)


@pytest.mark.parametrize(
    ("source", "sockets"),
    [
        ("listen=udp:127.0.0.1:5060", [sock("udp", ast.IPLit("127.0.0.1"), 5060)]),
        ("listen=10.0.0.1", [sock(None, ast.IPLit("10.0.0.1"))]),
        ("listen=10.0.0.1:5070", [sock(None, ast.IPLit("10.0.0.1"), 5070)]),
        ("listen=tcp:eth0", [sock("tcp", ast.HostLit("eth0"))]),
        ("listen=TLS:sip.example.com:5061",
         [sock("tls", ast.HostLit("sip.example.com"), 5061)]),
        ("listen=sctp:host-a.example.com:any", [sock("sctp", ast.HostLit("host-a.example.com"), 0)]),
        ("listen=any:0.0.0.0:5060", [sock("any", ast.IPLit("0.0.0.0"), 5060)]),
        ('listen="my host"', [sock(None, s("my host"))]),
        ("listen=udp:[::1]:5060", [sock("udp", ast.IPLit("::1", 6), 5060)]),
        ("listen=[fe80::1]", [sock(None, ast.IPLit("fe80::1", 6))]),
        ("listen=2001:db8::10", [sock(None, ast.IPLit("2001:db8::10", 6))]),
        ("listen=udp:10.0.0.1:5060 tcp:10.0.0.1:5060",
         [sock("udp", ast.IPLit("10.0.0.1"), 5060), sock("tcp", ast.IPLit("10.0.0.1"), 5060)]),
        ("listen=udp:10.0.0.1:5060 as 1.2.3.4:5080",
         [sock("udp", ast.IPLit("10.0.0.1"), 5060, ast.IPLit("1.2.3.4"), 5080)]),
        ("listen=udp:10.0.0.1 as pub.example.com",
         [sock("udp", ast.IPLit("10.0.0.1"), None, ast.HostLit("pub.example.com"), 5060)]),
        ("listen=010.0.0.1", [sock(None, ast.IPLit("8.0.0.1"))]),  # octal, as in 1.6
    ],
)
def test_listen_forms(source: str, sockets: list[ast.Socket]) -> None:
    p = param(source)
    assert p.name == "listen"
    assert p.value == sockets


def test_socket_list_ends_at_the_next_parameter() -> None:
    script = parse("listen=udp:10.0.0.1:5060 tcp:10.0.0.1:5060\nalias=example.com:5060 "
                   "sip.example.com children=4\nroute{exit;}")
    assert [p.name for p in script.params] == ["listen", "alias", "children"]
    assert script.params[1].value == [sock(None, ast.HostLit("example.com"), 5060),
                                      sock(None, ast.HostLit("sip.example.com"))]
    assert script.main_route is not None


def test_host_label_starting_with_a_digit_needs_quotes() -> None:
    # as in 1.6: `host-1` is a name, a minus and a number
    _f, line, col, msg = error("listen=udp:host-1.example.com")
    assert (line, col) == (1, 17)
    assert msg == "syntax error: unexpected '1'; expected a name"
    assert param('listen=udp:"host-1.example.com"').value == [sock("udp", s("host-1.example.com"))]


def test_invalid_ipv4_octet() -> None:
    _f, line, col, msg = error("listen=udp:10.0.0.300:5060")
    assert (line, col, msg) == (1, 12, "invalid IPv4 address 10.0.0.300")


def test_listen_needs_a_value() -> None:
    _f, line, col, msg = error("listen=\nroute { exit; }")
    assert (line, col) == (2, 7)
    assert msg.startswith("syntax error: unexpected '{'")


def test_as_needs_blanks_around_it() -> None:
    # `as` glued to a name is part of the host name, as in 1.6
    p = param("listen=udp:alias.example.com")
    assert p.value == [sock("udp", ast.HostLit("alias.example.com"))]


# ------------------------------------------------------------------ dst_blacklist, TLS domains


def test_dst_blacklist() -> None:
    p = param('dst_blacklist = gw: { (udp, 10.0.0.0/8, 5060, "INVITE*"),'
              ' !(any, 192.168.1.1, any, ""), (tcp, 10.1.0.0/255.255.0.0, 0, "x") }')
    assert p.value == ast.Blacklist("gw", [
        ast.BlacklistRule("udp", ast.NetLit(ast.IPLit("10.0.0.0"), 8), 5060, "INVITE*"),
        ast.BlacklistRule("any", ast.NetLit(ast.IPLit("192.168.1.1"), 32), 0, "", negate=True),
        ast.BlacklistRule("tcp", ast.NetLit(ast.IPLit("10.1.0.0"), 16,
                                            ast.IPLit("255.255.0.0")), 0, "x"),
    ])


def test_tls_domains() -> None:
    script = parse(
        'tls_server_domain[10.0.0.1:5061] {\n'
        '  tls_method = TLSv1\n  tls_certificate = "/etc/cert.pem"\n'
        '  tls_verify_client = yes tls_require_client_certificate = 0\n}\n'
        'tls_client_domain["gw"] { tls_verify_server = no tls_ca_list = "/ca" }\n'
        'tls_client_domain[10.0.0.2:5061] { tls_private_key = "/k" }\n'
    )
    server, client1, client2 = script.tls_domains
    assert server.side == "server"
    assert server.address == sock(None, ast.IPLit("10.0.0.1"), 5061)
    assert [(p.name, p.value) for p in server.params] == [
        ("tls_method", ast.Ident("TLSv1")), ("tls_certificate", s("/etc/cert.pem")),
        ("tls_verify_client", num(1)), ("tls_require_client_certificate", num(0))]
    assert (client1.side, client1.name, client1.address) == ("client", "gw", None)
    assert client2.address == sock(None, ast.IPLit("10.0.0.2"), 5061)


def test_tls_domain_refuses_other_settings() -> None:
    msg = error('tls_server_domain[10.0.0.1:5061] { tls_verify_server = 1 }')[3]
    assert "tls_verify_server cannot be set in a tls_server_domain block" in msg
    msg = error('tls_client_domain["x"] { children = 1 }')[3]
    assert "unknown TLS domain setting 'children'" in msg


# ------------------------------------------------------------------ mpath / loadmodule / modparam


def test_loadmodule_records_the_mpath_in_force() -> None:
    script = parse('loadmodule "/abs/sl.so"\nmpath="/usr/lib/opensips/modules"\n'
                   'loadmodule "tm.so"\nmpath="/other/"\nloadmodule "rr.so"\n')
    assert [(m.path, m.mpath) for m in script.loadmodules] == [
        ("/abs/sl.so", None), ("tm.so", "/usr/lib/opensips/modules/"), ("rr.so", "/other/")]
    assert script.mpath == "/other/"


def test_loadmodule_needs_a_quoted_name() -> None:
    _f, line, col, msg = error("loadmodule tm.so")
    assert (line, col) == (1, 12)
    assert msg == "syntax error: unexpected 'tm'; expected a quoted string"


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ('modparam("usrloc|registrar", "use_domain", 1)', num(1)),
        ('modparam("tm", "fr_timer", -1)', num(-1)),
        ('modparam("auth_db", "calculate_ha1", yes)', num(1)),
        ('modparam("usrloc", "db_url", "mysql://u:p@h/db")', s("mysql://u:p@h/db")),
        ("modparam('rr', 'x', 'raw\\n')", s("raw\\n")),
    ],
)
def test_modparam_forms(source: str, value: ast.Node) -> None:
    (mp,) = parse(source).modparams
    assert mp.value == value


def test_modparam_regex_is_kept_as_text() -> None:
    (mp,) = parse('modparam("auth.*", "secret", "s3cr3t")').modparams
    assert (mp.module, mp.param) == ("auth.*", "secret")


def test_modparam_wrong_shape() -> None:
    _f, line, col, msg = error('modparam("tm", "fr_timer")')
    assert (line, col) == (1, 26)
    assert msg == "syntax error: unexpected ')'; expected ','"
    assert "syntax error" in error('modparam("tm", "fr_timer", $var(x))')[3]


# ------------------------------------------------------------------ include_file (superset)


def test_include_file_top_level_and_in_blocks(tmp_path: Path) -> None:
    (tmp_path / "params.cfg").write_text('children=2\nloadmodule "sl.so"\n')
    (tmp_path / "routes.cfg").write_text("route[common] {\n  xlog(\"common\");\n}\n")
    (tmp_path / "checks.cfg").write_text('if (!is_method("ACK")) { exit; }\n')
    main = tmp_path / "main.cfg"
    main.write_text('include_file "params.cfg"\ninclude_file "routes.cfg"\n'
                    'route {\n  include_file "checks.cfg"\n  route(common);\n}\n')
    script = parse_file(main)
    assert [p.name for p in script.params] == ["children"]
    assert [m.path for m in script.loadmodules] == ["sl.so"]
    common = script.route("request", "common")
    assert common is not None and common.file == str(tmp_path / "routes.cfg")
    body = script.main_route.body.body
    assert isinstance(body[0], ast.If) and body[0].file == str(tmp_path / "checks.cfg")
    assert body[0].line == 1
    assert body[1] == ast.RouteCall("common")
    assert len(script.includes) == 3


def test_include_errors_point_into_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "bad.cfg").write_text("route[x] {\n  exit\n}\n")
    main = tmp_path / "main.cfg"
    main.write_text('include_file "bad.cfg"\n')
    with pytest.raises(CfgError) as info:
        parse_file(main)
    assert info.value.errors[0][:3] == (str(tmp_path / "bad.cfg"), 3, 1)


def test_include_missing_file_and_cycle(tmp_path: Path) -> None:
    main = tmp_path / "main.cfg"
    main.write_text('include_file "nope.cfg"\n')
    with pytest.raises(CfgError) as info:
        parse_file(main)
    assert 'cannot read included file "nope.cfg"' in info.value.message
    (tmp_path / "a.cfg").write_text('include_file "main.cfg"\n')
    main.write_text('include_file "a.cfg"\n')
    with pytest.raises(CfgError) as info:
        parse_file(main)
    assert "include cycle" in info.value.message


def test_parse_file_missing() -> None:
    with pytest.raises(CfgError) as info:
        parse_file("/nonexistent/opensips.cfg")
    assert str(info.value).startswith("/nonexistent/opensips.cfg: cannot read")
