"""xlog: a module only in OpenSIPS 1.6.0-1.6.2; from 1.6.3 on xlog(), xdbg()
and $C are core (sipserver implements them in the core).

The module exists so that older scripts with `loadmodule "xlog.so"` and
`modparam("xlog", "buf_size"|"force_color", ...)` still start: it exports
the two 1.6.0 parameters and no functions (the core's xlog/xdbg serve the
calls). The values are accepted and not used; the core globals
`xlog_buf_size` and `xlog_force_color` are what counts.
"""

from __future__ import annotations

from ..core.exports import ModuleExports, ParamExport

exports = ModuleExports(
    name="xlog",
    params=[ParamExport("buf_size", int, 4096), ParamExport("force_color", int, 0)],
)
