"""Complete 1.6-style scripts compile against the 1.6 export tables.

Modules sipserver does not ship yet are replaced by the fake tables of
`fake_modules` (exact 1.6 names, argument counts, route masks, modparams),
so these tests check the language side: function resolution, argument
counts, route types along the call graph, PVs in formats, modparams.
Then copies of the scripts with one injected mistake each must fail with
the exact FILE:LINE:COL and message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sipserver.core.exports import Registry
from sipserver.core.modload import available_modules
from sipserver.lang.compiler import CompiledScript
from sipserver.lang.errors import CfgError, ErrorItem
from sipserver.lang.parser import parse_file
from sipserver.script import compile_cfg

from .fake_modules import (
    SHIPPED,
    TABLES,
    apply_modparam,
    load_fake_or_real,
    load_modules,
)

SCRIPTS = Path(__file__).with_name("scripts")
SCRIPT_NAMES = sorted(p.name for p in SCRIPTS.glob("*.cfg"))

# Mistakes in the two scripts written for the parser tests (before the
# compiler could check them); 1.6.4 refuses them too: dialog has no
# "onreply_avp_mode", force_rtp_proxy() was removed in 1.6.1 (use
# rtpproxy_offer/rtpproxy_answer) and presence.so is not loaded.
KNOWN_ERRORS: dict[str, list[tuple[int, int, str]]] = {
    "edge_gateway.cfg": [
        (82, 1, 'modparam: module "dialog" has no parameter "onreply_avp_mode"'),
    ],
    "residential.cfg": [
        (238, 4, 'unknown command force_rtp_proxy(), did you mean "unforce_rtp_proxy"?'),
        (257, 3, "unknown command handle_publish(), missing loadmodule?"),
        (262, 3, "unknown command handle_subscribe(), missing loadmodule?"),
        (295, 3, 'unknown command force_rtp_proxy(), did you mean "unforce_rtp_proxy"?'),
    ],
}


def compile_file(path: Path) -> CompiledScript:
    """What `sipserver.script.compile_cfg` does, with the fake modules."""
    return compile_cfg(parse_file(path), loader=load_modules)


def errors_of(path: Path) -> list[ErrorItem]:
    with pytest.raises(CfgError) as info:
        compile_file(path)
    return info.value.errors


def inject(tmp_path: Path, name: str, line: int, old: str, new: str) -> Path:
    """A copy of scripts/NAME with `old` replaced by `new` on line LINE."""
    lines = (SCRIPTS / name).read_text().split("\n")
    assert lines[line - 1].count(old) == 1, (lines[line - 1], old)
    lines[line - 1] = lines[line - 1].replace(old, new)
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return path


# ------------------------------------------------------------------ the tables


def test_fake_tables_are_consistent() -> None:
    for name, (cmds, params) in TABLES.items():
        seen = set()
        for fname, nargs, mask in cmds:
            assert (fname, nargs) not in seen, (name, fname, nargs)
            seen.add((fname, nargs))
            assert 0 <= nargs <= 6 and 0 < mask <= 255, (name, fname)
        for pname, typ, default in params:
            assert typ in (int, str), (name, pname)
            assert default is None or type(default) is typ, (name, pname, default)


def test_tables_know_the_1_6_route_masks() -> None:
    cmds = {(m, f, n): mask for m, (cs, _) in TABLES.items() for f, n, mask in cs}
    assert cmds[("tm", "t_relay", 0)] == 1 | 2
    assert cmds[("tm", "t_check_trans", 0)] == 1 | 8
    assert cmds[("tm", "t_was_cancelled", 0)] == 2 | 4
    assert cmds[("sl", "sl_send_reply", 2)] == 1 | 16
    assert cmds[("dialog", "unset_dlg_profile", 1)] == 2 | 4 | 8
    assert cmds[("avpops", "avp_print", 0)] == 255 & ~16
    assert ("nathelper", "force_rtp_proxy", 0) not in cmds  # gone in 1.6.4
    assert ("group", "is_user_in", 2) not in cmds  # obsolete: db_is_user_in


def test_uri_db_functions_come_with_uri() -> None:
    registry = Registry()
    load_fake_or_real(registry, "/usr/lib/opensips/modules/uri.so")
    assert "uri" in registry
    for fname in ("db_check_to", "db_check_from", "db_does_uri_exist", "aaa_does_uri_exist"):
        assert registry.find_cmds(fname), fname
    assert registry.find_cmds("has_totag")[0][1].name == "uri"
    apply_modparam(registry, "uri", "db_url", "mysql://u:p@h/d")
    owner = "uri" if "db_url" in registry.modules["uri"].params else "uri_db"
    assert registry.modules[owner].params["db_url"] == "mysql://u:p@h/d"


def test_real_modules_are_used_when_shipped() -> None:
    shipped = set(available_modules())
    assert set(SHIPPED) <= set(TABLES)
    registry = Registry()
    for name in TABLES:
        mod = load_fake_or_real(registry, f"/usr/lib/opensips/modules/{name}.so")
        assert mod.name == name
        assert mod.path.startswith("<fake") == (name not in shipped), (name, mod.path)


def test_modparam_with_a_string_and_an_int_form() -> None:
    registry = Registry()
    load_fake_or_real(registry, "mi_fifo.so")
    apply_modparam(registry, "mi_fifo", "fifo_user", 1000)
    apply_modparam(registry, "mi_fifo", "fifo_user", "opensips")


# ------------------------------------------------------------------ whole scripts


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_compiles(name: str) -> None:
    path = SCRIPTS / name
    expected = [(str(path), line, col, msg) for line, col, msg in KNOWN_ERRORS.get(name, [])]
    if expected:
        assert errors_of(path) == expected
        return
    compiled = compile_file(path)
    assert compiled.routes is not None


def test_new_scripts_are_here() -> None:
    assert {"default_proxy.cfg", "nat_pstn_gateway.cfg", "carrier_balancer.cfg"} <= set(
        SCRIPT_NAMES)


# ------------------------------------------------------------------ injected mistakes


def test_unknown_function_near_miss(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 156, "t_check_trans()", "t_chek_trans()")
    assert errors_of(path) == [
        (str(path), 156, 2, 'unknown command t_chek_trans(), did you mean "t_check_trans"?'),
    ]


def test_wrong_argument_count(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 231,
                  'sl_send_reply("484","Address Incomplete")', 'sl_send_reply("484")')
    assert errors_of(path) == [
        (str(path), 231, 3, "sl_send_reply() takes 2 argument(s), 1 given"),
    ]


def test_wrong_argument_count_lists_every_overload(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 243, "t_newtran()", 't_newtran("1")')
    assert errors_of(path) == [
        (str(path), 243, 5, "t_newtran() takes 0 argument(s), 1 given"),
    ]
    path = inject(tmp_path, "default_proxy.cfg", 264, 't_on_failure("1")', "t_on_failure()")
    assert errors_of(path) == [
        (str(path), 264, 3, "t_on_failure() takes 1 argument(s), 0 given"),
    ]
    path = inject(tmp_path, "nat_pstn_gateway.cfg", 80, 'fix_nated_sdp("1")',
                  'fix_nated_sdp("1", "2", "3")')
    assert errors_of(path) == [
        (str(path), 80, 5, "fix_nated_sdp() takes 1 or 2 argument(s), 3 given"),
    ]


def test_failure_only_function_in_a_subroute_of_the_main_route(tmp_path: Path) -> None:
    # route[2] is reached only through route[3], itself called by the main route
    path = inject(tmp_path, "nat_pstn_gateway.cfg", 212,
                  "consume_credentials();", "consume_credentials(); t_was_cancelled();")
    assert errors_of(path) == [
        (str(path), 212, 25,
         "t_was_cancelled() cannot be used in request route (reached via route -> route[3]"
         " -> route[2]); allowed in: failure_route, onreply_route"),
    ]


def test_request_only_functions_in_a_subroute_of_a_failure_route(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 323, "t_relay();", "route(2);")
    via = " cannot be used in failure_route (reached via failure_route[1] -> route[2]);" \
          " allowed in: request route"
    assert errors_of(path) == [
        (str(path), 277, 7, "t_newtran()" + via),
        (str(path), 279, 3, "sl_reply_error()" + via),
        (str(path), 285, 3, "handle_publish()" + via),
        (str(path), 290, 3, "handle_subscribe()" + via),
    ]


def test_unknown_modparam_near_miss(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 63, '"max_contacts"', '"max_contact"')
    assert errors_of(path) == [
        (str(path), 63, 1,
         'modparam: module "registrar" has no parameter "max_contact", did you mean'
         ' "max_contacts"?'),
    ]


def test_modparam_of_a_module_not_loaded(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 49, 'loadmodule "presence.so"', "")
    assert errors_of(path) == [
        (str(path), 102, 1,
         'modparam: no loaded module matches "presence", did you mean "presence_xml"?'),
        (str(path), 285, 3, "unknown command handle_publish(), missing loadmodule?"),
        (str(path), 290, 3, "unknown command handle_subscribe(), missing loadmodule?"),
    ]


def test_modparam_of_the_wrong_type(tmp_path: Path) -> None:
    path = inject(tmp_path, "carrier_balancer.cfg", 50, "7200", '"7200"')
    assert errors_of(path) == [
        (str(path), 50, 1,
         "modparam: parameter \"default_timeout\" of module \"dialog\" takes an integer"
         " (got '7200')"),
    ]


def test_bad_pv_in_an_xlog_format(tmp_path: Path) -> None:
    # the column is the one of the `$`
    path = inject(tmp_path, "default_proxy.cfg", 298, "$ru", "$rru")
    [(file, line, col, msg)] = errors_of(path)
    assert (file, line, col) == (str(path), 298, 22)
    assert msg.startswith("xlog(): unknown pseudo-variable $rru, did you mean ")


def test_bad_pv_in_the_second_argument_of_xlog(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 176, "$ci", "$cid")
    assert [e[1:3] for e in errors_of(path)] == [(176, 57)]


def test_bad_pv_after_a_newline_in_a_format(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 298, 'xlog("new branch at $ru\\n")',
                  'xlog("new branch\nat $rru")')
    assert [e[1:3] for e in errors_of(path)] == [(299, 4)]


def test_wrong_argument_count_in_a_condition(tmp_path: Path) -> None:
    path = inject(tmp_path, "default_proxy.cfg", 239,
                  'lookup("location","m")', 'lookup("location","m","sip:a@b","x")')
    assert errors_of(path) == [
        (str(path), 239, 7, "lookup() takes 1 or 2 or 3 argument(s), 4 given"),
    ]
