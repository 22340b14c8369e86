"""usrloc: the user location table (OpenSIPS 1.6 module `usrloc`).

AOR -> contacts, kept in shared memory so every process sees every
registration, optionally backed by the DB table `location` (version 1005):
db_mode 0 memory only, 1 write-through, 2 write-back (the timer writes),
3 DB only. No script functions: registrar and other modules use the API
(`api.bind_usrloc`, `Usrloc`, `UDomain`, `URecord`, `ContactInfo`); the
operator uses the MI commands ul_dump, ul_show_contact, ul_add, ul_rm,
ul_rm_contact and ul_flush.

One concern per file: `records` (contacts, ordering, the shared-memory
encoding), `store` (a domain's shared table, locks, statistics, timer),
`dbsync` (the `location` table's statements), `api` (the module state and
what other modules call), `mi` (the MI commands).
"""

from __future__ import annotations

from typing import Any

from ...core.exports import LoadedModule, MICmdExport, ModuleExports, ParamExport, StatExport
from . import mi
from .api import DEFAULT_DB_URL, NatContact, Usrloc, bind_usrloc
from .dbsync import COLUMN_PARAMS, UL_TABLE_VERSION
from .records import (
    ALL_METHODS,
    CS_DIRTY,
    CS_NEW,
    CS_SYNC,
    FL_MEM,
    Q_UNSPECIFIED,
    UL_EXPIRED_TIME,
    ContactInfo,
    UContact,
    q2str,
)
from .store import (
    UL_CONTACT_DELETE,
    UL_CONTACT_EXPIRE,
    UL_CONTACT_INSERT,
    UL_CONTACT_UPDATE,
    UDomain,
    URecord,
)

__all__ = [
    "ALL_METHODS", "CS_DIRTY", "CS_NEW", "CS_SYNC", "FL_MEM", "Q_UNSPECIFIED",
    "UL_CONTACT_DELETE", "UL_CONTACT_EXPIRE", "UL_CONTACT_INSERT", "UL_CONTACT_UPDATE",
    "UL_EXPIRED_TIME", "UL_TABLE_VERSION", "ContactInfo", "NatContact", "UContact",
    "UDomain", "URecord", "Usrloc", "bind_usrloc", "exports", "q2str",
]

PARAMS: list[ParamExport] = [
    *(ParamExport(name, str, default) for name, default in COLUMN_PARAMS.items()),
    ParamExport("db_url", str, DEFAULT_DB_URL),
    ParamExport("timer_interval", int, 60),
    ParamExport("db_mode", int, 0),
    ParamExport("use_domain", int, 0),
    ParamExport("desc_time_order", int, 0),
    ParamExport("matching_mode", int, 0),
    ParamExport("cseq_delay", int, 20),
    ParamExport("fetch_rows", int, 2000),
    ParamExport("hash_size", int, 9),
    ParamExport("nat_bflag", int, -1),
]


def _mod_init(module: LoadedModule) -> None:
    ul = bind_usrloc_module(module)
    ul.init(module.rt)


def _child_init(module: LoadedModule, rank: int) -> None:
    if isinstance(module.state, Usrloc):
        module.state.child_init(rank)


def _destroy(module: LoadedModule) -> None:
    if isinstance(module.state, Usrloc):
        module.state.destroy()


def bind_usrloc_module(module: LoadedModule) -> Usrloc:
    """The module's state, made from its parameters on first use."""
    if not isinstance(module.state, Usrloc):
        module.state = Usrloc(module.params)
    return module.state


def _registered_users(module: Any) -> int:
    st = module.state
    return st.number_of_users() if isinstance(st, Usrloc) else 0


exports = ModuleExports(
    name="usrloc",
    params=PARAMS,
    mi_cmds=[
        MICmdExport("ul_rm", mi.mi_ul_rm, params=("table_name", "aor")),
        MICmdExport("ul_rm_contact", mi.mi_ul_rm_contact,
                    params=("table_name", "aor", "contact")),
        MICmdExport("ul_dump", mi.mi_ul_dump, params=("brief",)),
        MICmdExport("ul_flush", mi.mi_ul_flush, no_input=True),
        MICmdExport("ul_add", mi.mi_ul_add,
                    params=("table_name", "aor", "contact", "expires", "q", "unused",
                            "flags", "cflags", "methods")),
        MICmdExport("ul_show_contact", mi.mi_ul_show_contact, params=("table_name", "aor")),
    ],
    stats=[StatExport("registered_users", no_reset=True, func=_registered_users)],
    api=bind_usrloc,
    mod_init=_mod_init,
    child_init=_child_init,
    destroy=_destroy,
)
