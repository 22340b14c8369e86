"""allow_routing / allow_register / allow_uri over allow/deny file pairs
(1.6 permissions.c check_routing, check_register, allow_uri, allow_test).

The pairs a message gives, and the order they are tried in, are 1.6's:

* allow_routing: (From URI, `sip:user@host` of the R-URI); a match in the
  allow file allows (with check_all_branches, only after every appended
  branch passed too), a match in the deny file denies, otherwise allowed
  (with check_all_branches, after the branches). A branch is allowed by
  the allow file, denied by the deny file, and passes otherwise.
* allow_register: (To URI, `sip:user@host` of each Contact); no Contact or
  `Contact: *` is allowed; a Contact found in the deny file denies (with
  check_all_branches a match in the allow file skips the deny check for it).
* allow_uri: (From URI, the URI in a PV): allow file, then deny file, else allowed.

Both files empty (or missing) allows everything. The From/To URI is taken
as written in the header; a URI longer than 256 characters is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...core.context import MsgContext
from ...core.runtime import L_DBG, L_ERR, L_INFO
from ...lang.pv import PVError
from ...sip.errors import ParseError
from ...sip.uri import parse_uri
from .rules import EXPRESSION_LENGTH, Rule, load_rule_file, search_rule


@dataclass(slots=True)
class RulePair:
    """An allow file and a deny file, parsed (empty list: missing or no rules)."""

    allow_path: str
    deny_path: str
    allow: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.allow and not self.deny


def resolve_path(name: str, base_dir: str) -> str:
    """1.6 get_pathname: a bare file name is in the config file's directory;
    a name with a `/` is used as written."""
    if "/" in name:
        return name
    return os.path.join(base_dir, name) if base_dir else name


class RuleFiles:
    """The file pairs the script names; index 0 is the default pair.

    Fixups register names at compile time; `load` (mod_init) resolves and
    parses them, each distinct file once.
    """

    def __init__(self) -> None:
        self.names: list[tuple[str, str]] = [("", "")]  # [0] set by load
        self.pairs: list[RulePair] = []

    def register(self, allow_name: str, deny_name: str) -> int:
        key = (allow_name, deny_name)
        for i, names in enumerate(self.names[1:], 1):
            if names == key:
                return i
        self.names.append(key)
        return len(self.names) - 1

    def load(self, default_allow: str, default_deny: str, base_dir: str,
             log: Callable[[int, str], None]) -> None:
        """Parse every registered file; RuleError names file:line on a bad one."""
        self.names[0] = (default_allow, default_deny)
        cache: dict[str, list[Rule]] = {}

        def rules(name: str) -> tuple[str, list[Rule]]:
            path = resolve_path(name, base_dir)
            if path not in cache:
                found = load_rule_file(path)
                if found is None:
                    log(L_INFO, f"permissions: file ({path}) not found => empty rule set")
                else:
                    log(L_DBG, f"permissions: file ({path}) parsed: {len(found)} rules")
                cache[path] = found or []
            return path, cache[path]

        pairs = []
        for allow_name, deny_name in self.names:
            allow_path, allow = rules(allow_name)
            deny_path, deny = rules(deny_name)
            pairs.append(RulePair(allow_path, deny_path, allow, deny))
        self.pairs = pairs

    def by_allow_path(self, path: str) -> RulePair | None:
        """The first pair whose allow file is `path` (MI allow_uri)."""
        for pair in self.pairs:
            if pair.allow_path == path:
                return pair
        return None


# ---------------------------------------------------------------- message fields


def plain_uri(ctx: MsgContext, text: str, what: str) -> str | None:
    """1.6 get_plain_uri: `sip:user@host` (`sip:host` without a user)."""
    try:
        uri = parse_uri(text)
    except ParseError:
        ctx.rt.log(L_ERR, f"permissions: failed to parse {what} URI")
        return None
    plain = f"sip:{uri.user}@{uri.host}" if uri.user else f"sip:{uri.host}"
    if len(plain) > EXPRESSION_LENGTH:
        ctx.rt.log(L_ERR, f"permissions: {what} URI is too long: {len(plain)} chars")
        return None
    return plain


def _header_uri(ctx: MsgContext, name: str) -> str | None:
    """The URI of the From or To header as written; None (logged) when unusable."""
    msg = ctx.msg
    if not msg.has_header(name):
        ctx.rt.log(L_ERR, f"permissions: {name} header field not found")
        return None
    try:
        hdr = msg.from_ if name == "From" else msg.to
        text = hdr.uri_text
    except ParseError:
        ctx.rt.log(L_ERR, f"permissions: failed to parse {name} body")
        return None
    if len(text) > EXPRESSION_LENGTH:
        ctx.rt.log(L_ERR, f"permissions: {name} header field is too long: {len(text)} chars")
        return None
    return text


def check_routing(ctx: MsgContext, pair: RulePair, check_all_branches: bool) -> int:
    """allow_routing: 1 allowed, -1 denied or error."""
    if pair.empty:
        ctx.rt.log(L_DBG, "permissions: no rules => allow any routing")
        return 1
    from_str = _header_uri(ctx, "From")
    if from_str is None:
        return -1
    try:
        ruri = parse_uri(ctx.ruri)
    except ParseError:
        ctx.rt.log(L_ERR, "permissions: uri parsing failed")
        return -1
    if len(ruri.user or "") + len(ruri.host) + 5 > EXPRESSION_LENGTH:
        ctx.rt.log(L_ERR, "permissions: Request URI is too long")
        return -1
    ruri_str = f"sip:{ruri.user or ''}@{ruri.host}"
    ctx.rt.log(L_DBG, f"permissions: looking for From: {from_str} Request-URI: {ruri_str}")
    if search_rule(pair.allow, from_str, ruri_str):
        if not check_all_branches:
            ctx.rt.log(L_DBG, "permissions: allow rule found => routing is allowed")
            return 1
    elif search_rule(pair.deny, from_str, ruri_str):
        ctx.rt.log(L_DBG, "permissions: deny rule found => routing is denied")
        return -1
    elif not check_all_branches:
        ctx.rt.log(L_DBG, "permissions: neither allow nor deny rule found => routing is allowed")
        return 1
    for branch in ctx.branches:
        uri_str = plain_uri(ctx, branch.uri, "branch")
        if uri_str is None:
            return -1
        ctx.rt.log(L_DBG, f"permissions: looking for From: {from_str} Branch: {uri_str}")
        if search_rule(pair.allow, from_str, uri_str):
            continue
        if search_rule(pair.deny, from_str, uri_str):
            ctx.rt.log(L_DBG, "permissions: deny rule found for one of branches => "
                              "routing is denied")
            return -1
    ctx.rt.log(L_DBG, "permissions: check of branches passed => routing is allowed")
    return 1


def check_register(ctx: MsgContext, pair: RulePair, check_all_branches: bool) -> int:
    """allow_register: 1 allowed, -1 denied or error."""
    if pair.empty:
        ctx.rt.log(L_DBG, "permissions: no rules => allow any registration")
        return 1
    msg = ctx.msg
    if not msg.has_header("To"):
        ctx.rt.log(L_ERR, "permissions: To or Contact not found")
        return -1
    if not msg.has_header("Contact"):
        ctx.rt.log(L_DBG, "permissions: no Contact found, allowing")
        return 1
    try:
        if msg.contact_star:
            ctx.rt.log(L_DBG, "permissions: * Contact found, allowing")
            return 1
        contacts = msg.contacts
    except ParseError:
        ctx.rt.log(L_ERR, "permissions: failed to parse Contact HF")
        return -1
    to_str = _header_uri(ctx, "To")
    if to_str is None:
        return -1
    for contact in contacts:
        contact_str = plain_uri(ctx, contact.uri_text, "Contact")
        if contact_str is None:
            return -1
        ctx.rt.log(L_DBG, f"permissions: looking for To: {to_str} Contact: {contact_str}")
        if check_all_branches and search_rule(pair.allow, to_str, contact_str):
            continue
        if search_rule(pair.deny, to_str, contact_str):
            ctx.rt.log(L_DBG, "permissions: deny rule found => Register denied")
            return -1
    ctx.rt.log(L_DBG, "permissions: no contact denied => Allowed")
    return 1


def check_uri(ctx: MsgContext, pair: RulePair, pv: Any) -> int:
    """allow_uri: the pair (From URI, the PV's URI); 1 allowed, -1 denied or error."""
    if pair.empty:
        ctx.rt.log(L_DBG, "permissions: no rules => allow any uri")
        return 1
    from_str = _header_uri(ctx, "From")
    if from_str is None:
        return -1
    try:
        value = pv.get(ctx)
    except PVError as e:
        ctx.rt.log(L_ERR, f"permissions: cannot get pseudo variable value: {e}")
        return -1
    if not isinstance(value, str):
        ctx.rt.log(L_ERR, "permissions: pseudo variable value is not string")
        return -1
    if len(value) > EXPRESSION_LENGTH:
        ctx.rt.log(L_ERR, f"permissions: pseudo variable value is too long: {len(value)} chars")
        return -1
    ctx.rt.log(L_DBG, f"permissions: looking for From: {from_str} URI: {value}")
    if search_rule(pair.allow, from_str, value):
        return 1
    if search_rule(pair.deny, from_str, value):
        ctx.rt.log(L_DBG, "permissions: deny rule found => URI is denied")
        return -1
    return 1


def allow_test(pair: RulePair, uri: str, contact: str) -> bool:
    """MI allow_uri: the pair (uri, contact) as given, no URI parsing."""
    if pair.empty:
        return True
    if search_rule(pair.allow, uri, contact):
        return True
    return not search_rule(pair.deny, uri, contact)
