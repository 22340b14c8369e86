"""rr: Record-Route on the wire (send-time address, double RR, params) and
loose_route over the cases of RFC 3261 16.4/16.6/16.12, as 1.6 handles them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipserver.core.runtime import L_WARN
from sipserver.lang.errors import CfgError
from sipserver.modules import rr
from sipserver.testing import ScriptRunner

INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@10.0.0.1>\r\n"
    "Content-Length: 0\r\n\r\n"
)

TWO_SOCKETS = "listen=udp:127.0.0.1:5060\nlisten=tcp:127.0.0.1:5060\n"
TWO_IPS = "listen=udp:127.0.0.1:5060\nlisten=udp:127.0.0.3:5060\n"


def request(ruri: str = "sip:bob@example.com", *, routes: tuple[str, ...] = (),
            to_tag: str | None = None, from_tag: str | None = "1928301774",
            method: str = "INVITE") -> bytes:
    text = INVITE.replace("INVITE sip:bob@example.com", f"{method} {ruri}")
    text = text.replace("CSeq: 314159 INVITE", f"CSeq: 314159 {method}")
    if to_tag is not None:
        text = text.replace("To: Bob <sip:bob@example.com>", f"To: Bob <sip:bob@example.com>;tag={to_tag}")
    if from_tag != "1928301774":
        tag = f";tag={from_tag}" if from_tag else ""
        text = text.replace(";tag=1928301774", tag)
    route_lines = "".join(f"Route: {r}\r\n" for r in routes)
    text = text.replace("Max-Forwards: 70\r\n", f"Max-Forwards: 70\r\n{route_lines}")
    return text.encode()


def runner(body: str, *, head: str = "listen=udp:127.0.0.1:5060\n", params: str = "") -> ScriptRunner:
    return ScriptRunner(f'{head}loadmodule "rr.so"\n{params}route {{\n{body}\n}}\n')


def header_lines(text: str, name: str) -> list[str]:
    return [line for line in text.split("\r\n") if line.lower().startswith(name.lower() + ":")]


def only_sent(r: ScriptRunner) -> str:
    (text,) = r.sent_text
    return text


# ====================================================================== record_route


def test_record_route_goes_first_with_the_sending_socket_address() -> None:
    r = runner('record_route(); forward("10.0.0.9");')
    r.request(request())
    text = only_sent(r)
    lines = text.split("\r\n")
    # 1.6: port left out for 5060, ftag from the From tag, above our Via
    assert lines[1] == "Record-Route: <sip:127.0.0.1;lr;ftag=1928301774>"
    assert lines[2].startswith("Via: SIP/2.0/UDP 127.0.0.1;branch=")
    # the message the script sees is unchanged (the header exists only when built)
    assert r.sent[0][2].count(b"Record-Route") == 1


def test_record_route_port_and_transport_of_the_outgoing_socket() -> None:
    r = runner('record_route(); forward("10.0.0.9");', head="listen=udp:127.0.0.1:5080\n")
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1:5080;lr;ftag=1928301774>"]

    r = runner('record_route(); forward("tcp:10.0.0.9");',
               head="listen=tcp:127.0.0.1:5070\n", params='modparam("rr", "enable_double_rr", 0)\n')
    r.request(request(), proto="tcp")
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1:5070;transport=tcp;lr;ftag=1928301774>"]


def test_record_route_with_params_format() -> None:
    r = runner('$var(x) = "abc"; record_route(";foo=$var(x);m=$rm"); forward("10.0.0.9");')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;lr;ftag=1928301774;foo=abc;m=INVITE>"]


def test_no_ftag_without_from_tag_or_with_append_fromtag_off() -> None:
    r = runner('record_route(); forward("10.0.0.9");')
    r.request(request(from_tag=""))
    assert header_lines(only_sent(r), "Record-Route") == ["Record-Route: <sip:127.0.0.1;lr>"]

    r = runner('record_route(); forward("10.0.0.9");',
               params='modparam("rr", "append_fromtag", 0)\n')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == ["Record-Route: <sip:127.0.0.1;lr>"]


def test_enable_full_lr() -> None:
    r = runner('record_route(); forward("10.0.0.9");', params='modparam("rr", "enable_full_lr", 1)\n')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;lr=on;ftag=1928301774>"]


def test_add_username_from_ruri_or_rewritten_ruri() -> None:
    r = runner('record_route(); forward("10.0.0.9");', params='modparam("rr", "add_username", 1)\n')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:bob@127.0.0.1;lr;ftag=1928301774>"]

    # no user in the R-URI as received: the rewritten one gives it
    r = runner('$ru = "sip:carol@example.net"; record_route(); forward("10.0.0.9");',
               params='modparam("rr", "add_username", 1)\n')
    r.request(request("sip:example.com"))
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:carol@127.0.0.1;lr;ftag=1928301774>"]


def test_add_rr_param_before_and_after_record_route() -> None:
    r = runner('add_rr_param(";a=1"); record_route(";p=0"); add_rr_param(";b=$rm"); '
               'forward("10.0.0.9");')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;lr;ftag=1928301774;p=0;a=1;b=INVITE>"]


def test_double_record_route_only_when_sockets_differ() -> None:
    body = 'record_route(); add_rr_param(";x=1"); {}forward("10.0.0.9");'
    # same socket: one header, no r2
    r = runner(body.format(""), head=TWO_SOCKETS)
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;lr;ftag=1928301774;x=1>"]
    # out through TCP: the outgoing socket first, then the receiving one, both r2=on
    r = runner(body.format("force_send_socket(tcp:127.0.0.1:5060); "), head=TWO_SOCKETS)
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;transport=tcp;r2=on;lr;ftag=1928301774;x=1>",
        "Record-Route: <sip:127.0.0.1;r2=on;lr;ftag=1928301774;x=1>",
    ]
    # another interface
    r = runner(body.format("force_send_socket(udp:127.0.0.3:5060); "), head=TWO_IPS)
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.3;r2=on;lr;ftag=1928301774;x=1>",
        "Record-Route: <sip:127.0.0.1;r2=on;lr;ftag=1928301774;x=1>",
    ]


def test_same_message_built_for_two_sockets() -> None:
    """The RR text is computed per send: one forward() through each socket."""
    r = runner('record_route(); forward("10.0.0.9"); force_send_socket(udp:127.0.0.3:5060); '
               'forward("10.0.0.9");', head=TWO_IPS)
    r.request(request())
    first, second = r.sent_text
    assert header_lines(first, "Record-Route") == ["Record-Route: <sip:127.0.0.1;lr;ftag=1928301774>"]
    assert header_lines(second, "Record-Route") == [
        "Record-Route: <sip:127.0.0.3;r2=on;lr;ftag=1928301774>",
        "Record-Route: <sip:127.0.0.1;r2=on;lr;ftag=1928301774>",
    ]


def test_double_rr_disabled_gives_one_header_for_the_outgoing_socket() -> None:
    r = runner('record_route(); force_send_socket(tcp:127.0.0.1:5060); forward("10.0.0.9");',
               head=TWO_SOCKETS, params='modparam("rr", "enable_double_rr", 0)\n')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;transport=tcp;lr;ftag=1928301774>"]


def test_advertised_addresses() -> None:
    r = runner('record_route(); forward("10.0.0.9");',
               head='listen=udp:127.0.0.1:5060\nadvertised_address="sip.example.org"\n')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:sip.example.org;lr;ftag=1928301774>"]

    r = runner('set_advertised_address("203.0.113.5"); set_advertised_port(5062); '
               'record_route(); forward("10.0.0.9");')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:203.0.113.5:5062;lr;ftag=1928301774>"]

    # per-socket "as": an advertised port is always written, even 5060
    r = runner('record_route(); forward("10.0.0.9");',
               head="listen=udp:127.0.0.1:5060 as 198.51.100.1:5060\n")
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:198.51.100.1:5060;lr;ftag=1928301774>"]


def test_ipv6_socket_is_bracketed() -> None:
    r = runner('record_route(); forward("10.0.0.9");', head="listen=udp:[::1]:5070\n")
    r.request(request(), src=("::1", 5062))
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:[::1]:5070;lr;ftag=1928301774>"]


def test_second_record_route_fails() -> None:
    r = runner('record_route(); if (record_route()) { $var(r) = 1; } else { $var(r) = 2; } '
               'forward("10.0.0.9");')
    r.request(request())
    assert r.rt.script_vars["r"] == 2
    assert "Double attempt to record-route" in r.log_text()
    assert len(header_lines(only_sent(r), "Record-Route")) == 1


def test_record_route_preset() -> None:
    r = runner('add_rr_param(";a=1"); record_route_preset("192.0.2.10:5090;nat=yes"); '
               'add_rr_param(";b=2"); forward("10.0.0.9");')
    r.request(request())
    # preset: ftag before lr
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:192.0.2.10:5090;nat=yes;ftag=1928301774;lr;a=1;b=2>"]


def test_record_route_preset_two_addresses() -> None:
    r = runner('$var(h) = "192.0.2.20"; record_route_preset("192.0.2.10", "$var(h):5070"); '
               'add_rr_param(";b=2"); forward("10.0.0.9");',
               params='modparam("rr", "enable_full_lr", 1)\nmodparam("rr", "add_username", 1)\n')
    r.request(request())
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:bob@192.0.2.10;ftag=1928301774;lr=on;b=2>",
        "Record-Route: <sip:bob@192.0.2.20:5070;ftag=1928301774;lr=on;b=2>",
    ]


def test_record_route_preset_two_addresses_needs_double_rr() -> None:
    r = runner('if (!record_route_preset("192.0.2.10", "192.0.2.20")) { $var(r) = -1; } '
               'forward("10.0.0.9");', params='modparam("rr", "enable_double_rr", 0)\n')
    r.request(request())
    assert r.rt.script_vars["r"] == -1
    assert header_lines(only_sent(r), "Record-Route") == []


def test_no_forward_no_header_and_build_without_destination() -> None:
    r = runner("record_route(); exit;")
    ctx = r.request(request())
    assert r.sent == []
    # built without a destination, the receiving socket stands in
    assert b"\r\nRecord-Route: <sip:127.0.0.1;lr;ftag=1928301774>\r\n" in ctx.msg.build()


# ====================================================================== exports


def test_arg_counts_route_masks_and_fixups() -> None:
    with pytest.raises(CfgError, match="takes 0 or 1 argument"):
        runner('record_route("a", "b");')
    with pytest.raises(CfgError, match="takes 1 or 2 argument"):
        runner("record_route_preset();")
    with pytest.raises(CfgError, match="takes 0 argument"):
        runner('loose_route("x");')
    with pytest.raises(CfgError, match="cannot be used in"):
        ScriptRunner('loadmodule "rr.so"\nroute { exit; }\nfailure_route[1] { loose_route(); }\n')
    with pytest.raises(CfgError, match="cannot be used in"):
        ScriptRunner('loadmodule "rr.so"\nroute { exit; }\nbranch_route[1] { is_direction("upstream"); }\n')
    # record_route is fine in branch and failure routes
    ScriptRunner('loadmodule "rr.so"\nroute { exit; }\nbranch_route[1] { record_route(); }\n'
                 'failure_route[1] { add_rr_param(";x=1"); record_route_preset("h"); }\n')
    with pytest.raises(CfgError, match="unknown direction"):
        runner('is_direction("sideways");')
    with pytest.raises(CfgError, match="append_fromtag"):
        runner('is_direction("upstream");', params='modparam("rr", "append_fromtag", 0)\n')
    with pytest.raises(CfgError, match="regular expression"):
        runner('check_route_param("a(");')


def test_params_defaults() -> None:
    r = runner("exit;")
    assert r.compiled.registry.modules["rr"].params == {
        "append_fromtag": 1, "enable_double_rr": 1, "enable_full_lr": 0,
        "add_username": 0, "enable_socket_mismatch_warning": 1,
    }
    with pytest.raises(CfgError, match="no parameter"):
        runner("exit;", params='modparam("rr", "ignore_user", "x")\n')


# ====================================================================== loose_route

LR_SCRIPT = """
$var(rc) = 0;
if (loose_route()) { $var(rc) = 1; } else { $var(rc) = -1; }
$var(du) = $du;
$var(ru) = $ru;
$var(rp) = $rr_params;
forward("10.0.0.99");
"""


def run_lr(data: bytes, *, head: str = "listen=udp:127.0.0.1:5060\n", params: str = "",
           body: str = LR_SCRIPT, **kw) -> tuple[ScriptRunner, str]:
    r = runner(body, head=head, params=params)
    r.request(data, **kw)
    return r, only_sent(r)


def test_no_route_header() -> None:
    r, _ = run_lr(request(to_tag="t1"))
    v = r.rt.script_vars
    assert v["rc"] == -1 and v["ru"] == "sip:bob@example.com"
    assert v["du"] in (0, None, "", "<null>")
    assert v["rp"] in (None, "", "<null>", 0)


def test_in_dialog_our_route_and_next_route() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1",
                   routes=("<sip:127.0.0.1;lr;ftag=1928301774>", "<sip:10.0.0.5;lr>"))
    r, text = run_lr(data)
    v = r.rt.script_vars
    assert v["rc"] == 1 and v["du"] == "sip:10.0.0.5;lr" and v["ru"] == "sip:alice@10.0.0.1"
    assert v["rp"] == "lr;ftag=1928301774"
    assert "\r\nMax-Forwards: 70\r\nRoute: <sip:10.0.0.5;lr>\r\nTo: " in text


def test_in_dialog_routes_in_one_header() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1",
                   routes=("<sip:127.0.0.1;lr;ftag=1928301774>, <sip:10.0.0.5;lr>,<sip:10.0.0.6;lr>",))
    r, text = run_lr(data)
    assert r.rt.script_vars["du"] == "sip:10.0.0.5;lr"
    assert header_lines(text, "Route") == ["Route: <sip:10.0.0.5;lr>,<sip:10.0.0.6;lr>"]


def test_in_dialog_last_route_is_ours() -> None:
    data = request("sip:alice@10.0.0.1:5064", to_tag="t1",
                   routes=("<sip:127.0.0.1;lr;ftag=1928301774;foo=bar>",))
    r, text = run_lr(data, body='if (loose_route()) { $var(rc) = 1; } $var(rp) = $rr_params; '
                                "forward();")
    assert r.rt.script_vars["rc"] == 1
    assert r.rt.script_vars["rp"] == "lr;ftag=1928301774;foo=bar"
    assert header_lines(text, "Route") == []
    assert (r.sent[0][1].ip, r.sent[0][1].port) == ("10.0.0.1", 5064)


def test_our_route_by_port_and_alias() -> None:
    # another port is not us
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=("<sip:127.0.0.1:5070;lr>",))
    r, text = run_lr(data)
    assert r.rt.script_vars["du"] == "sip:127.0.0.1:5070;lr"
    assert header_lines(text, "Route") == ["Route: <sip:127.0.0.1:5070;lr>"]
    # an alias is
    data = request("sip:alice@10.0.0.1", to_tag="t1",
                   routes=("<sip:proxy.example.org;lr>", "<sip:10.0.0.5;lr>"))
    r, text = run_lr(data, head='listen=udp:127.0.0.1:5060\nalias="proxy.example.org"\n')
    assert r.rt.script_vars["du"] == "sip:10.0.0.5;lr"


def test_preloaded_lone_route_to_us_is_removed_and_false() -> None:
    data = request(routes=("<sip:127.0.0.1;lr>",))
    r, text = run_lr(data)
    assert r.rt.script_vars["rc"] == -1
    assert header_lines(text, "Route") == []
    assert r.rt.script_vars["rp"] == "lr"


def test_preloaded_route_to_us_then_next() -> None:
    data = request(routes=("<sip:127.0.0.1;lr>", "<sip:10.0.0.5;lr>"))
    r, text = run_lr(data)
    assert r.rt.script_vars["rc"] == 1 and r.rt.script_vars["du"] == "sip:10.0.0.5;lr"
    assert header_lines(text, "Route") == ["Route: <sip:10.0.0.5;lr>"]


def test_top_route_not_ours_loose() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=("<sip:10.0.0.5;lr>",))
    r, text = run_lr(data)
    v = r.rt.script_vars
    assert v["rc"] == 1 and v["du"] == "sip:10.0.0.5;lr" and v["ru"] == "sip:alice@10.0.0.1"
    assert header_lines(text, "Route") == ["Route: <sip:10.0.0.5;lr>"]
    assert (r.sent[0][1].ip, r.sent[0][1].port) == ("10.0.0.99", 5060)


def test_next_hop_strict_router() -> None:
    """Our Route, then a strict router: R-URI into a last Route, the strict
    router's URI into the R-URI (RFC 3261 16.6 step 6)."""
    data = request("sip:alice@10.0.0.1", to_tag="t1",
                   routes=("<sip:127.0.0.1;lr>", "<sip:10.0.0.5>, <sip:10.0.0.6;lr>"))
    r, text = run_lr(data)
    v = r.rt.script_vars
    assert v["rc"] == 1 and v["ru"] == "sip:10.0.0.5"
    assert text.startswith("INVITE sip:10.0.0.5 SIP/2.0\r\n")
    assert header_lines(text, "Route") == [
        "Route: <sip:10.0.0.6;lr>", "Route: <sip:alice@10.0.0.1>"]
    # as in 1.6 the saved R-URI goes after the last header
    assert text.endswith("Content-Length: 0\r\nRoute: <sip:alice@10.0.0.1>\r\n\r\n")


def test_previous_hop_strict_router_next_loose() -> None:
    """R-URI is our RR URI (a strict router put it there): the next Route
    goes to $du, the last Route (remote target) back into the R-URI."""
    data = request("sip:127.0.0.1;lr;ftag=1928301774", to_tag="t1",
                   routes=("<sip:10.0.0.5;lr>", "<sip:alice@10.0.0.1:5064>"))
    r, text = run_lr(data)
    v = r.rt.script_vars
    assert v["rc"] == 1 and v["du"] == "sip:10.0.0.5;lr" and v["ru"] == "sip:alice@10.0.0.1:5064"
    assert v["rp"] == "lr;ftag=1928301774"
    assert header_lines(text, "Route") == ["Route: <sip:10.0.0.5;lr>"]
    assert text.startswith("INVITE sip:alice@10.0.0.1:5064 SIP/2.0\r\n")


def test_previous_hop_strict_router_last_route_in_same_header() -> None:
    data = request("sip:127.0.0.1;lr", to_tag="t1",
                   routes=("<sip:10.0.0.5;lr>, <sip:10.0.0.6;lr>, <sip:alice@10.0.0.1>",))
    r, text = run_lr(data)
    assert r.rt.script_vars["ru"] == "sip:alice@10.0.0.1"
    assert header_lines(text, "Route") == ["Route: <sip:10.0.0.5;lr>, <sip:10.0.0.6;lr>"]


def test_previous_and_next_hop_strict() -> None:
    data = request("sip:127.0.0.1", to_tag="t1",
                   routes=("<sip:10.0.0.5>", "<sip:alice@10.0.0.1>"))
    r, text = run_lr(data)
    v = r.rt.script_vars
    assert v["rc"] == 1 and v["ru"] == "sip:10.0.0.5"
    assert header_lines(text, "Route") == ["Route: <sip:alice@10.0.0.1>"]
    assert rr.ROUTING_SS == 8


def test_double_rr_pair_removed_and_socket_forced() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=(
        "<sip:127.0.0.1;transport=tcp;r2=on;lr;ftag=1928301774>",
        "<sip:127.0.0.1;r2=on;lr;ftag=1928301774>",
        "<sip:10.0.0.5;lr>",
    ))
    r, text = run_lr(data, head=TWO_SOCKETS)
    assert r.rt.script_vars["du"] == "sip:10.0.0.5;lr"
    assert header_lines(text, "Route") == ["Route: <sip:10.0.0.5;lr>"]
    assert r.sent[0][0].name == "udp:127.0.0.1:5060"
    assert r.rt.script_vars["rp"] == "transport=tcp;r2=on;lr;ftag=1928301774"

    # the other direction, both values in one header: out through TCP
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=(
        "<sip:127.0.0.1;r2=on;lr>,<sip:127.0.0.1;transport=tcp;r2=on;lr>",
    ))
    r = runner("if (loose_route()) { $var(rc) = 1; } forward();", head=TWO_SOCKETS)
    ctx = r.request(data)
    assert r.rt.script_vars["rc"] == 1
    assert ctx.force_socket is not None and ctx.force_socket.name == "tcp:127.0.0.1:5060"
    assert header_lines(only_sent(r), "Route") == []


def test_double_rr_second_route_matching_no_socket_warns() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=(
        "<sip:127.0.0.1;r2=on;lr>", "<sip:192.0.2.44;r2=on;lr>", "<sip:10.0.0.5;lr>"))
    r, _ = run_lr(data)
    assert r.rt.script_vars["du"] == "sip:10.0.0.5;lr"
    assert (L_WARN, "rr: no socket found for match second RR") in r.logs
    r, _ = run_lr(data, params='modparam("rr", "enable_socket_mismatch_warning", 0)\n')
    assert not [line for lev, line in r.logs if lev == L_WARN]


def test_r2_ignored_without_double_rr() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=(
        "<sip:127.0.0.1;r2=on;lr>", "<sip:127.0.0.1;transport=tcp;r2=on;lr>"))
    r, _ = run_lr(data, head=TWO_SOCKETS, params='modparam("rr", "enable_double_rr", 0)\n')
    assert r.rt.script_vars["du"] == "sip:127.0.0.1;transport=tcp;r2=on;lr"


def test_maddr_in_route() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1",
                   routes=("<sip:127.0.0.1;lr>", "<sip:proxy.example.net:5070;maddr=10.0.0.7;lr>"))
    r, _ = run_lr(data)
    assert r.rt.script_vars["du"] == "sip:10.0.0.7:5070"


def test_bad_route_header_is_an_error() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1", routes=("<sip:127.0.0.1;lr",))
    r, _ = run_lr(data)
    assert r.rt.script_vars["rc"] == -1


# ====================================================================== route params


ROUTE_BYE_DOWN = request("sip:bob@10.0.0.2", to_tag="t1", method="BYE",
                         routes=("<sip:127.0.0.1;lr;ftag=1928301774;did=a.b>", "<sip:10.0.0.5;lr>"))
ROUTE_BYE_UP = request("sip:alice@10.0.0.1", to_tag="t1", from_tag="calleetag", method="BYE",
                       routes=("<sip:127.0.0.1;lr;ftag=1928301774;did=a.b>",))


def test_check_route_param_and_is_direction() -> None:
    body = """
    $var(c0) = 0; if (check_route_param("did=")) { $var(c0) = 1; }
    loose_route();
    $var(c1) = 0; if (check_route_param("^;lr;ftag=[0-9]+;DID=a\\.b$")) { $var(c1) = 1; }
    $var(c2) = 0; if (check_route_param("nomatch")) { $var(c2) = 1; }
    $var(d) = "none";
    if (is_direction("downstream")) { $var(d) = "down"; }
    if (is_direction("upstream")) { $var(d) = "up"; }
    """
    r = runner(body)
    r.request(ROUTE_BYE_DOWN)
    assert r.rt.script_vars == {"c0": 0, "c1": 1, "c2": 0, "d": "down"}
    r.rt.script_vars.clear()
    r.request(ROUTE_BYE_UP)
    assert r.rt.script_vars == {"c0": 0, "c1": 1, "c2": 0, "d": "up"}


def test_is_direction_without_ftag_is_downstream() -> None:
    data = request("sip:alice@10.0.0.1", to_tag="t1", from_tag="calleetag",
                   routes=("<sip:127.0.0.1;lr>",))
    r = runner('loose_route(); $var(d) = 0; if (is_direction("downstream")) { $var(d) = 1; }')
    r.request(data)
    assert r.rt.script_vars["d"] == 1


def test_api_functions() -> None:
    r = runner("exit;")
    seen: list[tuple[str, object]] = []
    assert rr.register_rrcb(r.rt, lambda ctx, params, p: seen.append((params, p)), "two", 2) == 0
    assert rr.register_rrcb(r.compiled.registry, lambda ctx, params, p: seen.append((params, p)),
                            "one", 1) == 0
    assert rr.register_rrcb(r.rt, lambda ctx, params, p: None, None, -1) == -1
    ctx = r.context(ROUTE_BYE_DOWN)
    assert rr.get_route_params(ctx) is None
    assert rr.add_rr_param(ctx, ";x=1") is True
    assert rr.loose_route(ctx) == 1
    assert seen == [("lr;ftag=1928301774;did=a.b", "one"), ("lr;ftag=1928301774;did=a.b", "two")]
    assert rr.get_route_param(ctx, "did") == "a.b"
    assert rr.get_route_param(ctx, "lr") == ""
    assert rr.get_route_param(ctx, "nope") is None
    assert rr.is_direction(ctx, "downstream") and not rr.is_direction(ctx, rr.RR_FLOW_UPSTREAM)
    assert rr.removed_routes(ctx) == 1 and rr.routing_type(ctx) == rr.ROUTING_LL
    assert rr.get_remote_target(ctx) == "sip:bob@10.0.0.2"
    assert rr.get_route_set(ctx) == ["sip:10.0.0.5;lr"]
    import re
    assert rr.check_route_param(ctx, re.compile("did=a"))

    # a module can record-route too
    ctx = r.context(request())
    assert rr.record_route(ctx, ";m=1") == 1 and rr.record_route(ctx) == -1
    assert b"Record-Route: <sip:127.0.0.1;lr;ftag=1928301774;m=1>\r\n" in ctx.msg.build()


def test_state_does_not_leak_between_messages() -> None:
    r = runner('loose_route(); $var(rp) = $rr_params; add_rr_param(";a=1");')
    r.request(ROUTE_BYE_DOWN)
    assert r.rt.script_vars["rp"] == "lr;ftag=1928301774;did=a.b"
    r2 = 'record_route(); forward("10.0.0.9");'
    r = runner(f'if ($rm == "BYE") {{ loose_route(); add_rr_param(";a=1"); exit; }} {r2}')
    r.request(ROUTE_BYE_DOWN)
    r.request(request())
    # the param added for the BYE did not stay for the INVITE
    assert header_lines(only_sent(r), "Record-Route") == [
        "Record-Route: <sip:127.0.0.1;lr;ftag=1928301774>"]


# ====================================================================== benchmark cfg

STATELESS_ROUTE = """
listen=udp:127.0.0.1:5060
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "rr.so"
route{
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483","Too Many Hops");
		exit;
	}
	if (loose_route()) {
		forward();
		exit;
	}
	rewritehostport("127.0.0.1:5070");
	forward();
	exit;
}
"""
SHARED_CFG = Path("/work/shared/bench/cfg/sipserver-stateless.cfg")


def _stateless_runs(r: ScriptRunner) -> None:
    r.request(request("sip:service@127.0.0.1:5060"))
    (sock, dest, data), = r.sent
    text = data.decode()
    assert sock.name == "udp:127.0.0.1:5060" and (dest.ip, dest.port) == ("127.0.0.1", 5070)
    assert text.startswith("INVITE sip:service@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;")
    assert "\r\nMax-Forwards: 69\r\n" in text
    r.clear()

    # in-dialog BYE with our Route: loose_route() true, Route removed, sent to the R-URI
    bye = request("sip:service@127.0.0.1:5070", to_tag="uas1", method="BYE",
                  routes=("<sip:127.0.0.1;lr;ftag=1928301774>",))
    r.request(bye)
    (_, dest, data), = r.sent
    text = data.decode()
    assert (dest.ip, dest.port) == ("127.0.0.1", 5070)
    assert text.startswith("BYE sip:service@127.0.0.1:5070 SIP/2.0\r\n")
    assert "Route:" not in text
    r.clear()

    # with a further Route: to $du
    bye = request("sip:service@10.0.0.1", to_tag="uas1", method="BYE",
                  routes=("<sip:127.0.0.1;lr;ftag=1928301774>", "<sip:127.0.0.1:5070;lr>"))
    r.request(bye)
    (_, dest, data), = r.sent
    assert (dest.ip, dest.port) == ("127.0.0.1", 5070)
    assert data.decode().startswith("BYE sip:service@10.0.0.1 SIP/2.0\r\n")


def test_stateless_benchmark_route_logic() -> None:
    _stateless_runs(ScriptRunner(STATELESS_ROUTE))


@pytest.mark.skipif(not SHARED_CFG.exists(), reason="shared benchmark cfg not present")
def test_stateless_benchmark_cfg_file() -> None:
    _stateless_runs(ScriptRunner(SHARED_CFG.read_text(), filename=str(SHARED_CFG)))
