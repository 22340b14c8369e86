"""Transaction callbacks for other modules (1.6 `register_tmcb`, t_hooks).

Events happen in whichever process handles them (a receiver, the timer
process), so a callback cannot be a closure kept by the registering
process. As for `api.register_uac_callback`, a callback is a function
registered by *name*, in every process, before the fork (at import or
mod_init time); a transaction keeps only `(types, name, param)`::

    register_tmcb_function("dialog:onreply", dlg_onreply)
    register_global_tmcb(rt, TMCB_REQUEST_IN, "dialog:onreq")   # mod_init
    ...
    def dlg_onreq(t, type, ps):                # any process, any request
        register_tmcb(t, TMCB_RESPONSE_FWDED | TMCB_TRANS_DELETED,
                      "dialog:onreply", dlg_id)

From the script (a module function) `register_tmcb(ctx, ...)` names the
current transaction; before it exists (no t_newtran/t_relay yet) the
callback waits for the transaction the message in hand makes (1.6's
pending list). `param` is stored in the record, so it must be something
`marshal` can store; a callback may replace it (`ps.param = ...`) and the
new value is kept with the transaction when the event runs under the
transaction's lock (every event but E2EACK_IN).

A callback is `fn(t, type, ps)`: `t` the `Txn` (changes to it are stored
under the lock the caller holds; never lock it again), `type` the event
bit, `ps` a `TmcbParams`: `req` (the request: the stored one, the ACK, the
failure route's copy), `rpl` (the reply; None for one tm made up, 1.6's
FAKED_REPLY), `code` (the reply code; minus the 1.6 method id for
request events), `param`, `tid`, `branch` (or None) and `extra` (the bytes
sent for REQUEST_BUILT / RESPONSE_*_OUT). Callbacks of one transaction run
newest first, as in 1.6; one that raises is logged and skipped.

Where they fire (as 1.6 does):

* REQUEST_IN — a new transaction for a received request, before it is
  stored (global callbacks only, registered alone);
* RESPONSE_IN — each reply received for a proxied transaction (not the
  replies to tm's CANCELs), before onreply_route;
* REQUEST_FWDED — a branch about to be built (after branch_route);
  REQUEST_BUILT — its bytes built, before sending;
* RESPONSE_FWDED — a received 1xx/2xx chosen to be relayed upstream;
* ON_FAILURE — every branch ended negatively, before failure_route;
  ON_FAILURE_RO is defined but, as in 1.6.4, never fired;
* RESPONSE_PRE_OUT / RESPONSE_OUT — a final reply (relayed or local)
  about to go / gone upstream (a 2xx whose bytes equal the last one sent is
  taken as a retransmission and not reported again);
* LOCAL_RESPONSE_OUT / LOCAL_COMPLETED — a provisional / the final reply
  of a transaction tm sent itself (t_uac, t_replicate);
* E2EACK_IN — the first ACK for each 2xx To-tag of an INVITE with such a
  callback (a shared index `Call-ID|CSeq|From tag|To tag` -> tid, filled
  when the 2xx goes upstream; the ACK is matched when the script runs
  t_relay/t_newtran on it); it runs without the lock (1.6 too), so a
  changed param is not kept;
* TRANS_CANCELLED — a CANCEL from upstream hit the INVITE;
* TRANS_DELETED — the timer removes the transaction.

Not done: extra1/extra2 beyond the bytes sent; the AVP list of the
transaction is not made current while a callback runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...core.errors import E_BUG, E_CFG
from ...core.runtime import L_ERR
from ...shm import LockSet, SharedHash
from .record import Txn
from .store import TmState

__all__ = [
    "TMCB_E2EACK_IN", "TMCB_LOCAL_COMPLETED", "TMCB_LOCAL_RESPONSE_OUT", "TMCB_MAX",
    "TMCB_ON_FAILURE", "TMCB_ON_FAILURE_RO", "TMCB_REQUEST_BUILT", "TMCB_REQUEST_FWDED",
    "TMCB_REQUEST_IN", "TMCB_RESPONSE_FWDED", "TMCB_RESPONSE_IN", "TMCB_RESPONSE_OUT",
    "TMCB_RESPONSE_PRE_OUT", "TMCB_TRANS_CANCELLED", "TMCB_TRANS_DELETED", "TmcbParams",
    "has_tmcbs", "method_id", "register_global_tmcb", "register_tmcb", "register_tmcb_function",
    "run_trans_callbacks",
]

TMCB_REQUEST_IN = 1 << 0
TMCB_RESPONSE_IN = 1 << 1
TMCB_E2EACK_IN = 1 << 2
TMCB_REQUEST_FWDED = 1 << 3
TMCB_RESPONSE_FWDED = 1 << 4
TMCB_ON_FAILURE_RO = 1 << 5
TMCB_ON_FAILURE = 1 << 6
TMCB_RESPONSE_PRE_OUT = 1 << 7
TMCB_RESPONSE_OUT = 1 << 8
TMCB_LOCAL_COMPLETED = 1 << 9
TMCB_LOCAL_RESPONSE_OUT = 1 << 10
TMCB_REQUEST_BUILT = 1 << 11
TMCB_TRANS_CANCELLED = 1 << 12
TMCB_TRANS_DELETED = 1 << 13
TMCB_MAX = (1 << 14) - 1

# 1.6 parser/msg_parser.h method ids (request events pass -id as the code)
_METHOD_IDS = {
    "INVITE": 1, "CANCEL": 2, "ACK": 4, "BYE": 8, "INFO": 16, "OPTIONS": 32, "UPDATE": 64,
    "REGISTER": 128, "MESSAGE": 256, "SUBSCRIBE": 512, "NOTIFY": 1024, "PRACK": 2048,
    "REFER": 4096, "PUBLISH": 8192,
}
METHOD_OTHER = 16384

REQIN_KEY = "_tmcb_request_in"  # tm module params: [(name, param)] of REQUEST_IN
E2E_KEY = "_tmcb_e2e"           # tm module params: the shared e2e ACK index


def method_id(method: str) -> int:
    return _METHOD_IDS.get(method.upper(), METHOD_OTHER)


@dataclass(slots=True)
class TmcbParams:
    """What a callback gets besides the transaction and the event (1.6 tmcb_params)."""

    req: Any
    rpl: Any
    code: int
    param: Any
    tid: str
    branch: int | None = None
    extra: Any = None


TmCallback = Callable[[Txn, int, TmcbParams], None]
_FUNCS: dict[str, TmCallback] = {}


def register_tmcb_function(name: str, fn: TmCallback) -> None:
    """Name a callback (before the fork, in module code, in every process)."""
    _FUNCS[name] = fn


def _check(types: int, name: str) -> int:
    if types <= 0 or types > TMCB_MAX:
        return E_BUG
    if name not in _FUNCS:
        return E_BUG
    return 0


def register_global_tmcb(rt: Any, types: int, name: str, param: Any = None) -> int:
    """A callback for every new transaction (TMCB_REQUEST_IN only); call it
    from mod_init, after tm's. 1, or E_BUG (bad types / unknown name) /
    E_CFG (tm not initialized)."""
    err = _check(types, name)
    if err or types != TMCB_REQUEST_IN:
        rt.log(L_ERR, f"tm: bad global callback {name!r} (types {types})")
        return err or E_BUG
    st = _tm(rt)
    if st is None:
        rt.log(L_ERR, "tm: TMCB_REQUEST_IN registered before tm was initialized")
        return E_CFG
    st.params.setdefault(REQIN_KEY, []).append((name, param))
    return 1


def _tm(rt: Any) -> TmState | None:
    registry = getattr(rt, "registry", None)
    mod = registry.modules.get("tm") if registry is not None else None
    st = getattr(mod, "state", None) if mod is not None else None
    return st if isinstance(st, TmState) else None


# callbacks registered on a message before its transaction exists
_pending: dict[str, Any] = {"msg": None, "cbs": []}


def register_tmcb(target: Any, types: int, name: str, param: Any = None) -> int:
    """Add a callback to a transaction: `target` a `Txn` (its lock held by
    the caller, who stores it) or a message context (its transaction, or the
    one it will make). 1, or E_BUG."""
    err = _check(types, name)
    if err or types & TMCB_REQUEST_IN:
        return err or E_BUG
    entry = (types, name, param)
    if isinstance(target, Txn):
        target.tmcbs.append(entry)
        return 1
    ctx = target
    t = getattr(ctx, "transaction", None)
    if t is None:
        if _pending["msg"] is not ctx.msg:
            _pending.update(msg=ctx.msg, cbs=[])
        _pending["cbs"].append(entry)
        return 1
    st = _tm(ctx.rt)
    if st is None or t.tid in st.held:
        t.tmcbs.append(entry)
        return 1
    from .funcs import _with_txn

    def add(tx: Txn) -> int:
        tx.tmcbs.append(entry)
        return 1
    return _with_txn(st, ctx, add)


def has_tmcbs(t: Txn, types: int) -> bool:
    return any(c[0] & types for c in t.tmcbs)


def _run(st: TmState, t: Txn, cbs: list[tuple[int, str, Any]], kind: int, ps: TmcbParams,
         keep: bool) -> None:
    for i in range(len(cbs) - 1, -1, -1):
        types, name, param = cbs[i]
        if not types & kind:
            continue
        fn = _FUNCS.get(name)
        if fn is None:
            st.rt.log(L_ERR, f"tm: no transaction callback named {name!r} in this process")
            continue
        ps.param = param
        try:
            fn(t, kind, ps)
        except Exception as e:  # a module's bug must not break the transaction
            st.rt.log(L_ERR, f"tm: transaction callback {name}: {e!r}")
        if keep and ps.param is not param and i < len(cbs):
            cbs[i] = (types, name, ps.param)


def run_trans_callbacks(st: TmState, t: Txn, kind: int, req: Any = None, rpl: Any = None,
                        code: int = 0, *, branch: int | None = None, extra: Any = None,
                        keep: bool = True) -> None:
    """Run the transaction's callbacks for event `kind` (callers check
    `t.tmcbs` first: nothing is computed for transactions without any)."""
    if not t.tmcbs:
        return
    _run(st, t, t.tmcbs, kind, TmcbParams(req, rpl, code, None, t.tid, branch, extra), keep)


# ---------------------------------------------------------------- tm flow entry points


def on_new_transaction(st: TmState, t: Txn, ctx: Any) -> None:
    """A transaction made for a received request (before it is stored):
    adopt the pending callbacks of this message, run REQUEST_IN."""
    if _pending["msg"] is ctx.msg and _pending["cbs"]:
        t.tmcbs.extend(_pending["cbs"])
        _pending["cbs"] = []
    reqin = st.params.get(REQIN_KEY)
    if not reqin:
        return
    ps = TmcbParams(ctx.msg, None, method_id(ctx.msg.method), None, t.tid)
    cbs = [(TMCB_REQUEST_IN, name, param) for name, param in reqin]
    _run(st, t, cbs, TMCB_REQUEST_IN, ps, keep=False)


def init(st: TmState) -> None:
    """mod_init (before the fork): the shared e2e ACK index."""
    st.params[E2E_KEY] = SharedHash(st.seg, 256, LockSet(4), _hex_hash)


def _hex_hash(key: bytes) -> int:
    return int(key[:15], 16)


def _index(st: TmState) -> SharedHash:
    idx = st.params.get(E2E_KEY)
    if idx is None:  # a TmState made without mod_init (unit tests): private
        init(st)
        idx = st.params[E2E_KEY]
    return idx


def _e2e_key(callid: str, cseq: Any, fromtag: str, totag: str) -> bytes:
    text = f"{callid}|{cseq}|{fromtag}|{totag}"
    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest().encode()


def note_2xx(st: TmState, t: Txn, rpl: Any) -> None:
    """A 2xx to an INVITE with E2EACK_IN callbacks goes upstream: index its To-tag."""
    try:
        req = t.request_msg()
        totag = rpl.to.tag if rpl is not None else (req.to.tag or t.totag)
        key = _e2e_key(req.call_id, req.cseq.number, req.from_.tag or "", totag or "")
    except Exception as e:
        st.rt.log(L_ERR, f"tm: e2e ACK index: {e!r}")
        return
    if key in t.tmcb_keys:
        return
    t.tmcb_keys.append(key)
    _index(st).put(key, t.tid.encode())


def e2e_ack(st: TmState, ctx: Any, locked: Txn | None) -> None:
    """An ACK in the request route: E2EACK_IN for the INVITE its 2xx came
    from, once per To-tag. `locked` is a transaction whose lock the caller
    holds (an RFC 2543 ACK matched to its INVITE); any other is only read."""
    idx = st.params.get(E2E_KEY)
    if idx is None or not len(idx):
        return
    msg = ctx.msg
    try:
        key = _e2e_key(msg.call_id, msg.cseq.number, msg.from_.tag or "", msg.to.tag or "")
    except Exception:
        return
    tid = idx.pop(key)
    if tid is None:
        return
    tid_s = tid.decode()
    t = locked if locked is not None and locked.tid == tid_s else st.load(tid_s)
    if t is None or not t.tmcbs:
        return
    run_trans_callbacks(st, t, TMCB_E2EACK_IN, msg, None, -method_id("ACK"),
                        keep=t is locked)
    if t is locked:
        st.save(t)


def on_delete(st: TmState, t: Txn) -> None:
    """The timer removes the transaction: TRANS_DELETED, drop its index entries."""
    if t.tmcb_keys:
        idx = _index(st)
        for key in t.tmcb_keys:
            idx.delete(key)
    run_trans_callbacks(st, t, TMCB_TRANS_DELETED, keep=False)
