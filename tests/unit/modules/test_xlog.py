"""xlog: loadable for old scripts, no functions of its own."""

from __future__ import annotations

from sipserver.core.exports import Registry
from sipserver.core.modload import load_module, set_modparam


def test_loadmodule_and_modparams() -> None:
    reg = Registry()
    mod = load_module(reg, "/usr/lib/opensips/modules/xlog.so")
    assert not mod.exports.cmds
    set_modparam(reg, "xlog", "buf_size", 8192)
    set_modparam(reg, "xlog", "force_color", 1)
    assert mod.params == {"buf_size": 8192, "force_color": 1}
