"""usrloc and its DB table (`location`, version 1005): rows in, rows out.

The statements are 1.6's: a contact is inserted with every column, and
updated or deleted by (username, contact, callid[, domain]); a whole AOR
is deleted by (username[, domain]); db_mode 3 drops expired rows with
`expires < now+1 AND expires != 0`. With use_domain the AOR `user@domain`
is split over the two columns (no `@`: empty username, the AOR as domain,
as 1.6 does).

Each process opens its own connection on first use (connections never
cross a fork). A DB that fails is logged and reported to the caller as a
False/None result, never raised: memory keeps serving (db_mode 1/2) and
the timer retries. After a lost server (DbGoneError) or a failed connect
the connection is dropped and not tried again for RETRY_DELAY seconds, so
requests do not each wait for a dead server.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from typing import Any

from ...core.runtime import L_ERR, L_WARN
from ...db.api import (
    CAP_DELETE,
    CAP_INSERT,
    CAP_QUERY,
    CAP_UPDATE,
    DbBinding,
    DbConnection,
    DbError,
    DbGoneError,
    DbValue,
    check_table_version,
)
from .records import (
    ALL_METHODS,
    FL_MEM,
    Q_UNSPECIFIED,
    ContactInfo,
    SocketCodec,
    UContact,
    sock_text,
)

__all__ = ["COLUMN_PARAMS", "NEEDED_CAPS", "UL_TABLE_VERSION", "UlDb"]

UL_TABLE_VERSION = 1005
NEEDED_CAPS = CAP_QUERY | CAP_INSERT | CAP_UPDATE | CAP_DELETE
RETRY_DELAY = 5  # seconds without connection attempts after a failure

# modparam -> default column name (1.6 ul_mod.c); last_modified has no parameter
COLUMN_PARAMS = {
    "user_column": "username", "domain_column": "domain", "contact_column": "contact",
    "expires_column": "expires", "q_column": "q", "callid_column": "callid",
    "cseq_column": "cseq", "flags_column": "flags", "cflags_column": "cflags",
    "user_agent_column": "user_agent", "received_column": "received",
    "path_column": "path", "socket_column": "socket", "methods_column": "methods",
}
_U32 = 0xFFFFFFFF


def _signed32(v: int) -> int:
    """An unsigned 32-bit bitmap as the signed INT column holds it."""
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


def _epoch(t: int) -> datetime.datetime:
    """A time_t as 1.6 writes a DATETIME (local time)."""
    try:
        return datetime.datetime.fromtimestamp(t)
    except (OverflowError, OSError, ValueError):
        return datetime.datetime.fromtimestamp(0)


def _time(v: DbValue) -> int | None:
    """A DATETIME read back as time_t (drivers may hand back text or numbers)."""
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        try:
            return int(v.timestamp())
        except (OverflowError, OSError, ValueError):
            return 0
    if isinstance(v, int | float):
        return int(v)
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    text = str(v).strip()
    try:
        return int(datetime.datetime.fromisoformat(text).timestamp())
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return None


def _text(v: DbValue) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return str(v)


def _int(v: DbValue) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class UlDb:
    """usrloc's statements on one DB binding, with per-process connections."""

    def __init__(self, binding: DbBinding, params: dict[str, Any], use_domain: bool,
                 socks: Callable[[], SocketCodec], log: Callable[[int, str], None],
                 clock: Callable[[], int]) -> None:
        self.binding = binding
        self.use_domain = use_domain
        self.socks = socks
        self.log = log
        self.clock = clock
        col = {k: str(params.get(k) or v) for k, v in COLUMN_PARAMS.items()}
        self.user = col["user_column"]
        self.domain = col["domain_column"]
        self.contact = col["contact_column"]
        self.expires = col["expires_column"]
        self.q = col["q_column"]
        self.callid = col["callid_column"]
        self.cseq = col["cseq_column"]
        self.flags = col["flags_column"]
        self.cflags = col["cflags_column"]
        self.user_agent = col["user_agent_column"]
        self.received = col["received_column"]
        self.path = col["path_column"]
        self.socket = col["socket_column"]
        self.methods = col["methods_column"]
        self.last_mod = "last_modified"
        # everything 1.6 loads, in its order (the domain last, with use_domain)
        self.load_cols = [self.user, self.contact, self.expires, self.q, self.callid,
                          self.cseq, self.flags, self.cflags, self.user_agent,
                          self.received, self.path, self.socket, self.methods,
                          self.last_mod] + ([self.domain] if use_domain else [])
        self._con: DbConnection | None = None
        self._pid = 0
        self._retry_at = 0

    # ------------------------------------------------------------ connection

    def connection(self) -> DbConnection | None:
        """This process's connection, opened on first use; None while the DB is away."""
        if self._pid != os.getpid():
            self._con = None  # inherited across a fork: never use it
            self._pid = os.getpid()
            self._retry_at = 0
        if self._con is not None:
            return self._con
        now = self.clock()
        if now < self._retry_at:
            return None
        try:
            self._con = self.binding.connect()
        except DbError as e:
            self._retry_at = now + RETRY_DELAY
            self.log(L_ERR, f"usrloc: cannot connect to {self.binding.url.redacted()}: {e}")
            return None
        return self._con

    def close(self) -> None:
        """Close this process's connection (before a fork, at exit)."""
        con = self._con
        self._con = None
        if con is not None and self._pid == os.getpid():
            try:
                con.close()
            except Exception:  # closing a dead connection: nothing to save
                pass

    def _failed(self, what: str, e: DbError) -> None:
        self.log(L_ERR, f"usrloc: {what} failed: {e}")
        if isinstance(e, DbGoneError):
            self.close()
            self._retry_at = self.clock() + RETRY_DELAY

    def _run(self, what: str, fn: Callable[[DbConnection], Any]) -> tuple[bool, Any]:
        con = self.connection()
        if con is None:
            return False, None
        try:
            return True, fn(con)
        except DbError as e:
            self._failed(what, e)
            return False, None

    # ------------------------------------------------------------ start-up

    def check_table(self, table: str) -> None:
        """Version 1005 and the columns usable (1.6 register_udomain); raises DbError."""
        con = self.connection()
        if con is None:
            raise DbError(f"cannot connect to {self.binding.url.redacted()}")
        check_table_version(con, table, UL_TABLE_VERSION)
        con.query(table, (self.user,), None, ("dummy_user",), self.load_cols)

    # ------------------------------------------------------------ keys

    def _split(self, aor: str) -> tuple[str, str]:
        user, at, domain = aor.partition("@")
        if not at:
            return "", aor
        return user, domain

    def _aor_keys(self, aor: str) -> tuple[list[str], list[DbValue]]:
        if self.use_domain:
            user, domain = self._split(aor)
            return [self.user, self.domain], [user, domain]
        return [self.user], [aor]

    def _contact_keys(self, c: UContact) -> tuple[list[str], list[DbValue]]:
        keys, vals = self._aor_keys(c.aor)
        return [*keys, self.contact, self.callid], [*vals, c.contact, c.callid]

    def _values(self, c: UContact) -> tuple[list[str], list[DbValue]]:
        """The columns an update sets (and an insert adds to the keys)."""
        sock = sock_text(c.sock)
        return ([self.expires, self.q, self.cseq, self.flags, self.cflags, self.user_agent,
                 self.received, self.path, self.socket, self.methods, self.last_mod],
                [_epoch(c.expires), -1.0 if c.q == Q_UNSPECIFIED else c.q / 1000.0,
                 _signed32(c.cseq), _signed32(c.flags), _signed32(c.cflags), c.user_agent,
                 c.received or None, c.path or None, sock,
                 None if c.methods == ALL_METHODS else _signed32(c.methods),
                 _epoch(c.last_modified)])

    # ------------------------------------------------------------ writes

    def insert(self, table: str, c: UContact, replace: bool = False) -> bool:
        """Insert the contact's row; with `replace`, first delete a row with its
        key (the shutdown flush: a timer killed mid-flush may have written it)."""
        if c.flags & FL_MEM:
            return True
        keys, vals = self._contact_keys(c)
        ukeys, uvals = self._values(c)

        def run(con: DbConnection) -> None:
            if replace:
                con.delete(table, keys, None, vals)
            con.insert(table, keys + ukeys, vals + uvals)

        ok, _ = self._run("insert of a contact", run)
        return ok

    def update(self, table: str, c: UContact) -> bool:
        if c.flags & FL_MEM:
            return True
        keys, vals = self._contact_keys(c)
        ukeys, uvals = self._values(c)
        ok, _ = self._run("update of a contact",
                          lambda con: con.update(table, keys, None, vals, ukeys, uvals))
        return ok

    def delete(self, table: str, c: UContact) -> bool:
        if c.flags & FL_MEM:
            return True
        keys, vals = self._contact_keys(c)
        ok, _ = self._run("delete of a contact",
                          lambda con: con.delete(table, keys, None, vals))
        return ok

    def delete_aor(self, table: str, aor: str) -> bool:
        keys, vals = self._aor_keys(aor)
        ok, _ = self._run("delete of an AOR", lambda con: con.delete(table, keys, None, vals))
        return ok

    def delete_expired(self, table: str, now: int) -> bool:
        """db_mode 3 timer: drop the rows that expired (permanent ones stay)."""
        ok, _ = self._run("delete of expired contacts",
                          lambda con: con.delete(table, [self.expires, self.expires], ["<", "!="],
                                                 [_epoch(now + 1), _epoch(0)]))
        return ok

    # ------------------------------------------------------------ reads

    def _row(self, table: str, row: tuple[DbValue, ...], aor: str | None) -> tuple[str, str, ContactInfo] | None:
        """(aor, contact, info) from a row in `load_cols` order, or None (logged) when
        it cannot be used (1.6 dbrow2info)."""
        user = _text(row[0])
        if aor is None:
            if not user:
                self.log(L_WARN, f"usrloc: empty username in table {table}, row skipped")
                return None
            aor = user
            if self.use_domain:
                domain = _text(row[14])
                if not domain:
                    self.log(L_WARN, f"usrloc: empty domain for user {user} in table {table}, "
                                     "row skipped")
                    return None
                aor = f"{user}@{domain}"
        contact = _text(row[1])
        expires = _time(row[2])
        q = row[3]
        callid = _text(row[4])
        cseq = _int(row[5])
        flags = _int(row[6])
        cflags = _int(row[7])
        bad = None
        if not contact:
            bad = "empty contact"
        elif expires is None:
            bad = "empty expires"
        elif q is None:
            bad = "empty q"
        elif cseq is None:
            bad = "empty cseq"
        elif not callid:
            bad = "empty callid"
        elif flags is None or cflags is None:
            bad = "empty flags"
        if bad is not None:
            self.log(L_WARN, f"usrloc: {bad} for {aor} in table {table}, row skipped")
            return None
        try:
            qf = float(q)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.log(L_WARN, f"usrloc: bad q for {aor} in table {table}, row skipped")
            return None
        qv = Q_UNSPECIFIED if qf == -1 else round(qf * 1000)
        sock = None
        sock_raw = _text(row[11])
        if sock_raw:
            sock = self.socks().find(sock_raw)
        methods = _int(row[12])
        lm = _time(row[13])
        ci = ContactInfo(expires=expires, q=qv, callid=callid, cseq=cseq & _U32,  # type: ignore[operator]
                         flags=flags & _U32, cflags=cflags & _U32,  # type: ignore[operator]
                         user_agent=_text(row[8]), received=_text(row[9]), path=_text(row[10]),
                         sock=sock, methods=ALL_METHODS if methods is None else methods & _U32,
                         last_modified=lm or 0)
        return aor, contact, ci

    def load_all(self, table: str) -> Iterator[tuple[str, str, ContactInfo]] | None:
        """Every usable row of the table (start-up load); None when the query failed."""
        ok, res = self._run(f"loading table {table}",
                            lambda con: con.query(table, (), None, (), self.load_cols))
        if not ok:
            return None
        return (t for row in res.rows if (t := self._row(table, row, None)) is not None)

    def load_aor(self, table: str, aor: str, desc_time_order: bool) -> list[tuple[str, ContactInfo]] | None:
        """The contacts of one AOR (db_mode 3), ordered by q (or last_modified);
        None when the query failed."""
        keys, vals = self._aor_keys(aor)
        order = self.last_mod if desc_time_order else self.q
        ok, res = self._run("query of an AOR",
                            lambda con: con.query(table, keys, None, vals, self.load_cols, order))
        if not ok:
            return None
        out = []
        for row in res.rows:
            t = self._row(table, row, aor)
            if t is not None:
                out.append((t[1], t[2]))
        return out

    def load_valid(self, table: str, now: int) -> list[tuple[str, str, ContactInfo]] | None:
        """Rows not yet expired (db_mode 3 get_all_ucontacts)."""
        ok, res = self._run("query of valid contacts",
                            lambda con: con.query(table, (self.expires,), (">",),
                                                  (_epoch(now),), self.load_cols))
        if not ok:
            return None
        return [t for row in res.rows if (t := self._row(table, row, None)) is not None]
