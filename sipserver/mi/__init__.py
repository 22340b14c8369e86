"""The management interface (MI): command table, tree model, wire formats.

* `tree`: MINodeArg (an argument), MINode / MIReply (the answer tree).
* `registry`: MIRegistry, the commands of the core and of the loaded modules
  (`mi_registry(rt)` gives the process's table, kept in `rt.mi`).
* `core_cmds`: 1.6's core commands (ps, uptime, which, get_statistics ...).
* `text`: the 1.6 text protocol of mi_fifo and mi_datagram, without I/O.
* `json`: JSON-RPC 2.0 as OpenSIPS 3.x's mi_http, without I/O.
* `paths`: where the FIFO lives by default; `procloop`: stopping on SIGTERM.
* `pending`: answers of async commands (t_uac_dlg) that arrive later, and
  the set an MI process polls while it serves other commands.

The transports are modules: mi_fifo, mi_datagram, httpd + mi_http.
"""

from .tree import MINode, MINodeArg, MIReply

__all__ = ["MINode", "MINodeArg", "MIReply"]
