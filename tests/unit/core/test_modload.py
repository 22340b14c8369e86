"""loadmodule / modparam resolution against the export tables."""

from __future__ import annotations

import sys
import types

import pytest

from sipserver.core.exports import CmdExport, ModuleExports, ParamExport, Registry
from sipserver.core.modload import ModuleError, load_module, module_name, set_modparam


@pytest.fixture
def fake_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list = []
    for name, params in {
        "usrloc": [ParamExport("db_mode", int, 0), ParamExport("db_url", str, "")],
        "registrar": [ParamExport("db_url", str, ""), ParamExport("max_contacts", int, 0)],
        "multi": [ParamExport("entry", str, None, on_set=lambda mod, v: seen.append(v))],
    }.items():
        m = types.ModuleType(f"sipserver.modules.{name}")
        m.exports = ModuleExports(name, params=params, cmds=[CmdExport(f"{name}_f", lambda ctx: 1)])
        monkeypatch.setitem(sys.modules, f"sipserver.modules.{name}", m)
    return seen


@pytest.mark.parametrize(
    ("spec", "name"),
    [("tm.so", "tm"), ("/usr/lib/opensips/modules/tm.so", "tm"), ("modules/tm/tm.so", "tm"), ("tm", "tm")],
)
def test_module_name(spec: str, name: str) -> None:
    assert module_name(spec) == name


def test_modparam_regex_sets_every_match(fake_modules) -> None:
    reg = Registry()
    load_module(reg, "usrloc.so")
    load_module(reg, "/usr/lib/opensips/modules/registrar.so")
    set_modparam(reg, "usrloc|registrar", "db_url", "mysql://x")
    assert reg.modules["usrloc"].params["db_url"] == "mysql://x"
    assert reg.modules["registrar"].params["db_url"] == "mysql://x"
    set_modparam(reg, "USRLOC", "db_mode", 2)
    assert reg.modules["usrloc"].param("db_mode") == 2
    assert [c.name for c, _ in reg.find_cmds("usrloc_f")] == ["usrloc_f"]


def test_modparam_errors(fake_modules) -> None:
    reg = Registry()
    load_module(reg, "usrloc.so")
    with pytest.raises(ModuleError, match="takes an integer"):
        set_modparam(reg, "usrloc", "db_mode", "2")
    with pytest.raises(ModuleError, match='did you mean "db_mode"'):
        set_modparam(reg, "usrloc", "db_mod", 2)
    with pytest.raises(ModuleError, match="no loaded module matches"):
        set_modparam(reg, "registrar", "db_url", "x")
    with pytest.raises(ModuleError, match="bad module regex"):
        set_modparam(reg, "usrloc(", "db_url", "x")


def test_repeatable_param_callback(fake_modules) -> None:
    reg = Registry()
    load_module(reg, "multi.so")
    set_modparam(reg, "multi", "entry", "a")
    set_modparam(reg, "multi", "entry", "b")
    assert fake_modules == ["a", "b"]


def test_unknown_module(fake_modules) -> None:
    reg = Registry()
    with pytest.raises(ModuleError, match="no such module"):
        load_module(reg, "nosuchthing.so")
    with pytest.raises(ModuleError, match="bad module name"):
        load_module(reg, "/x/tm-1.so")
