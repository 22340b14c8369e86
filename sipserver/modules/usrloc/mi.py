"""usrloc's MI commands, byte for byte as 1.6 answers them (modules/usrloc/ul_mi.c).

opensipsctl's `ul show/rm/add` parse these replies, so the texts are
1.6's own, quirks included: the contact flags node of ul_dump is printed
`Cflag::` and an AOR without valid contacts answers `404 AOR has no
contact` (1.6 passes the strings with a length one short), and
ul_show_contact prints a permanent contact's expires as 0 - now.

The AOR argument: with use_domain=0 anything from the `@` on is dropped,
with use_domain=1 the `@domain` part is mandatory.
"""

from __future__ import annotations

from typing import Any

from ...lang.actions import str2q
from ...mi.tree import MI_INTERNAL_ERR, MINodeArg, MIReply, bad_param, missing_params
from .api import Usrloc
from .records import STATE_NAMES, UL_EXPIRED_TIME, ContactInfo, q2str, sock_text
from .store import UDomain

__all__ = ["mi_ul_add", "mi_ul_dump", "mi_ul_flush", "mi_ul_rm", "mi_ul_rm_contact",
           "mi_ul_show_contact"]

MI_UL_CALLID = "dfjrewr12386fd6-343@opensips.mi"
MI_UL_UA = "OpenSIPS MI Server"
MI_UL_CSEQ = 1


def _state(module: Any) -> Usrloc | None:
    st = getattr(module, "state", None)
    return st if isinstance(st, Usrloc) else None


def _values(args: list[MINodeArg]) -> list[str]:
    return [a.value or "" for a in args]


def _table_aor(ul: Usrloc, table: str, aor: str) -> tuple[UDomain | None, str | None, MIReply | None]:
    """The domain and the fixed AOR, or the error reply (1.6 mi_find_domain + mi_fix_aor)."""
    dom = ul.find_domain(table)
    if dom is None:
        return None, None, MIReply.error(404, "Table not found")
    at = aor.find("@")
    if ul.use_domain:
        if at < 0:
            return None, None, MIReply.error(400, "Domain missing in AOR")
    elif at >= 0:
        aor = aor[:at]
    return dom, aor, None


class _AorCommand:
    """What a `<table> <aor> ...` command works on, once its arguments check out."""

    __slots__ = ("aor", "dom", "ul", "values")

    def __init__(self, ul: Usrloc, dom: UDomain, aor: str, values: list[str]) -> None:
        self.ul, self.dom, self.aor, self.values = ul, dom, aor, values


def _aor_command(module: Any, args: list[MINodeArg], nargs: int) -> _AorCommand | MIReply | None:
    """The state, table and AOR of a command taking `nargs` arguments, or the
    reply it ends with (None when the module is not initialised)."""
    ul = _state(module)
    if ul is None:
        return None
    v = _values(args)
    if len(v) != nargs:
        return missing_params()
    dom, aor, err = _table_aor(ul, v[0], v[1])
    if err is not None:
        return err
    assert dom is not None and aor is not None
    return _AorCommand(ul, dom, aor, v)


def _uint(text: str) -> int | None:
    """1.6 str2int: digits only, unsigned 32-bit."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    v = int(text)
    return v if v <= 0xFFFFFFFF else None


def mi_ul_rm(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    """ul_rm <table> <aor>: remove the AOR with all its contacts."""
    cmd = _aor_command(module, args, 2)
    if not isinstance(cmd, _AorCommand):
        return cmd
    dom, aor = cmd.dom, cmd.aor
    dom.lock(aor)
    try:
        if not dom.delete_urecord(aor):
            return MIReply.error(500, "Failed to delete AOR")
    finally:
        dom.unlock(aor)
    return MIReply.ok()


def mi_ul_rm_contact(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    """ul_rm_contact <table> <aor> <contact>: remove one binding (exact URI)."""
    cmd = _aor_command(module, args, 3)
    if not isinstance(cmd, _AorCommand):
        return cmd
    dom, aor, v = cmd.dom, cmd.aor, cmd.values
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        if r is None:
            return MIReply.error(404, "AOR not found")
        code, c = r.get_ucontact(v[2], MI_UL_CALLID, MI_UL_CSEQ + 1)
        if code < 0:
            return None
        if c is None:
            return MIReply.error(404, "Contact not found")
        r.delete_ucontact(c)
        dom.release_urecord(r)
    finally:
        dom.unlock(aor)
    return MIReply.ok()


def _expires_text(expires: int, now: int) -> str:
    if expires == 0:
        return "permanent"
    if expires == UL_EXPIRED_TIME:
        return "deleted"
    if now > expires:
        return "expired"
    return str(expires - now)


def mi_ul_dump(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    """ul_dump [brief]: every table, AOR and (unless brief) contact."""
    ul = _state(module)
    if ul is None:
        return None
    v = _values(args)
    if len(v) > 1:
        return missing_params()
    brief = bool(v) and v[0].lower() == "brief"
    reply = MIReply.ok()
    now = ul.now()
    # 1.6 keeps the domains newest first
    for dom in reversed(list(ul.domains.values())):
        dnode = reply.add("Domain", dom.name).attr("table", dom.size)
        if brief:
            aors = dom.aors()
            for aor in aors:
                dnode.add("AOR", aor)
            dnode.attr("records", len(aors))
            continue
        records = dom.records()
        for r in records:
            anode = dnode.add("AOR", r.aor)
            for c in r.contacts:
                cnode = anode.add("Contact", c.contact)
                cnode.add("Expires", _expires_text(c.expires, now))
                cnode.attr("Q", q2str(c.q))
                cnode.add("Callid", c.callid)
                cnode.add("Cseq", c.cseq)
                if c.user_agent:
                    cnode.add("User-agent", c.user_agent)
                if c.received:
                    cnode.add("Received", c.received)
                if c.path:
                    cnode.add("Path", c.path)
                cnode.add("State", STATE_NAMES.get(c.state, "CS_UNKNOWN"))
                cnode.add("Flags", c.flags)
                cnode.add("Cflag", c.cflags)
                if c.sock is not None:
                    cnode.add("Socket", sock_text(c.sock))
                cnode.add("Methods", c.methods)
        dnode.attr("records", len(records))
    return reply


def mi_ul_flush(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    """ul_flush: run the timer now (expire, write unsynced contacts to the DB)."""
    ul = _state(module)
    if ul is None:
        return None
    ul.synchronize_all()
    return MIReply.ok()


def mi_ul_add(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    """ul_add <table> <aor> <contact> <expires> <q> <unused> <flags> <cflags> <methods>.

    expires 0 makes a permanent contact, otherwise it is relative; an
    existing contact is updated. Call-ID, CSeq and User-Agent are MI's own.
    """
    cmd = _aor_command(module, args, 9)
    if not isinstance(cmd, _AorCommand):
        return cmd
    ul, dom, aor, v = cmd.ul, cmd.dom, cmd.aor, cmd.values
    contact = v[2]
    expires = _uint(v[3])
    if expires is None:
        return bad_param()
    try:
        q = str2q(v[4])
    except ValueError:
        return bad_param()
    flags, cflags, methods = _uint(v[6]), _uint(v[7]), _uint(v[8])
    if flags is None or cflags is None or methods is None:
        return bad_param()
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        c = None
        if r is None:
            r = dom.insert_urecord(aor)
        else:
            code, c = r.get_ucontact(contact, MI_UL_CALLID, MI_UL_CSEQ + 1)
            if code < 0:
                return MIReply.error(500, MI_INTERNAL_ERR)
        ci = ContactInfo(expires=expires + ul.now() if expires else 0, q=q,
                         callid=MI_UL_CALLID, cseq=MI_UL_CSEQ, flags=flags, cflags=cflags,
                         user_agent=MI_UL_UA, methods=methods)
        if c is not None:
            r.update_ucontact(c, ci)
        else:
            r.insert_ucontact(contact, ci)
        if not dom.release_urecord(r):
            return MIReply.error(500, MI_INTERNAL_ERR)
    finally:
        dom.unlock(aor)
    return MIReply.ok()


def mi_ul_show_contact(args: list[MINodeArg], rt: Any, module: Any) -> MIReply | None:
    """ul_show_contact <table> <aor>: one flat line per valid contact."""
    cmd = _aor_command(module, args, 2)
    if not isinstance(cmd, _AorCommand):
        return cmd
    ul, dom, aor = cmd.ul, cmd.dom, cmd.aor
    dom.lock(aor)
    try:
        r = dom.get_urecord(aor)
        if r is None:
            return MIReply.error(404, "AOR not found")
        now = ul.now()
        reply: MIReply | None = None
        for c in r.contacts:
            if not c.valid(now):
                continue
            if reply is None:
                reply = MIReply.ok()
            line = (f"<{c.contact}>;q={q2str(c.q)};expires={c.expires - now};"
                    f"flags=0x{c.flags:X};cflags=0x{c.cflags:X};"
                    f"socket=<{sock_text(c.sock) or 'NULL'}>;methods=0x{c.methods:X}")
            if c.received:
                line += f";received=<{c.received}>"
            if c.user_agent:
                line += f";user_agent=<{c.user_agent}>"
            if c.path:
                line += f";path=<{c.path}>"
            reply.add("Contact", line)
    finally:
        dom.unlock(aor)
    if reply is None:
        return MIReply.error(404, "AOR has no contact")
    return reply
