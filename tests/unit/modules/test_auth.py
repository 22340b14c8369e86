"""auth: challenges byte for byte, nonces, pv_*_authorize return codes,
consume_credentials and the RPID helpers.

Expected nonces and digests are computed here with hashlib from the 1.6
recipe, never with the module's own code.
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from sipserver.core.exports import BRANCH_ROUTE, FAILURE_ROUTE, REQUEST_ROUTE, Registry
from sipserver.core.modload import load_module
from sipserver.lang.compiler import CfgError
from sipserver.modules import auth
from sipserver.modules.auth.nonce import MAX_NONCE_INDEX, NonceIndex
from sipserver.shm import Segment
from sipserver.testing import ScriptRunner

from .util import cmd

SECRET = "s3cr3t"
T0 = 1_700_000_000  # the frozen clock
REALM = "example.com"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def expected_nonce(expires: int, index: int | None = 0, secret: str = SECRET) -> str:
    head = f"{expires:08x}" + ("" if index is None else f"{index:08x}")
    return head + md5(head + secret)


def sl_tag_prefix() -> str:
    return md5("OpenSIPS-stateless127.0.0.15060")


def request(method: str = "REGISTER", *, auth_hf: str = "", ruri: str = "sip:example.com",
            from_uri: str = "sip:alice@example.com", to_uri: str = "sip:alice@example.com",
            body: str = "") -> bytes:
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnashds7\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <{from_uri}>;tag=456248\r\n"
        f"To: <{to_uri}>\r\n"
        "Call-ID: 843817637684230@998sdasdh09\r\n"
        f"CSeq: 1826 {method}\r\n"
        f"{auth_hf}"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
        f"{body}"
    ).encode()


def credentials(nonce: str, *, user: str = "alice", password: str = "secret",
                realm: str = REALM, method: str = "REGISTER", uri: str = "sip:example.com",
                qop: str | None = None, nc: str = "00000001", cnonce: str = "0a4f113b",
                body: str = "", ha1: str | None = None, name: str = "Authorization") -> str:
    """An RFC 2617 Authorization header line, digest computed independently."""
    ha1 = ha1 or md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}:{md5(body)}") if qop == "auth-int" else md5(f"{method}:{uri}")
    if qop:
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
        extra = f", qop={qop}, nc={nc}, cnonce=\"{cnonce}\""
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    return (f'{name}: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{response}"{extra}, algorithm=MD5\r\n')


CFG = """
modparam("auth", "secret", "s3cr3t")
modparam("auth", "username_spec", "$var(user)")
modparam("auth", "password_spec", "$var(pass)")
modparam("auth", "calculate_ha1", 1)
{params}
route {{
    $var(user) = "alice";
    $var(pass) = "secret";
    if (method == "INVITE") {{
        $var(r) = pv_proxy_authorize("");
    }} else {{
        $var(r) = pv_www_authorize("");
    }}
    xlog("rc=$var(r)\\n");
    if ($var(r) == 1) {{
        {on_ok}
        forward("127.0.0.1:5080");
        exit;
    }}
    if (method == "INVITE") {{
        proxy_challenge("", "{qop}");
    }} else {{
        www_challenge("", "{qop}");
    }}
}}
"""


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_runner(params: str = "", on_ok: str = "consume_credentials();", qop: str = "1",
                cfg: str | None = None) -> tuple[ScriptRunner, Clock]:
    text = cfg if cfg is not None else CFG.format(params=params, on_ok=on_ok, qop=qop)
    r = ScriptRunner(text, modules=["sl", "signaling", "textops", "auth"])
    clock = Clock()
    st = r.compiled.registry.modules["auth"].state
    st.clock = clock
    if st.index is not None:
        st.index.ticks = clock
    return r, clock


def rcs(r: ScriptRunner) -> list[int]:
    return [int(m) for m in re.findall(r"rc=(-?\d+)", r.log_text())]


def challenge_nonce(text: str) -> str:
    m = re.search(r'nonce="([0-9a-f]+)"', text)
    assert m, text
    return m.group(1)


# ---------------------------------------------------------------- exports


def test_exports_and_defaults() -> None:
    mod = load_module(Registry(), "auth.so")
    assert mod.params == {
        "secret": None, "nonce_expire": 30, "rpid_prefix": "",
        "rpid_suffix": ";party=calling;id-type=subscriber;screen=yes", "realm_prefix": "",
        "rpid_avp": "$avp(s:rpid)", "username_spec": None, "password_spec": None,
        "calculate_ha1": 0, "disable_nonce_check": 0,
    }
    assert cmd(auth.exports, "www_challenge", 2).route_types == REQUEST_ROUTE
    assert cmd(auth.exports, "consume_credentials", 0).route_types == REQUEST_ROUTE
    rbf = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE
    assert cmd(auth.exports, "append_rpid_hf", 0).route_types == rbf
    assert cmd(auth.exports, "append_rpid_hf", 2).route_types == rbf


# ---------------------------------------------------------------- challenges


def test_register_without_credentials_gets_exact_401() -> None:
    r, _ = make_runner()
    r.request(request())
    [text] = r.sent_text
    tag = re.search(r"To: <sip:alice@example.com>;tag=(\S+)\r\n", text).group(1)
    assert tag.startswith(sl_tag_prefix() + ".")
    nonce = expected_nonce(T0 + 30, 0)
    assert len(nonce) == 48
    assert text == (
        "SIP/2.0 401 Unauthorized\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;received=127.0.0.2;branch=z9hG4bKnashds7\r\n"
        "From: <sip:alice@example.com>;tag=456248\r\n"
        f"To: <sip:alice@example.com>;tag={tag}\r\n"
        "Call-ID: 843817637684230@998sdasdh09\r\n"
        "CSeq: 1826 REGISTER\r\n"
        f'WWW-Authenticate: Digest realm="example.com", nonce="{nonce}", qop="auth"\r\n'
        "Server: OpenSIPS (1.6.4-notls (x86_64/linux))\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    )
    assert rcs(r) == [-4]


def test_challenge_stops_the_script_and_indexes_grow() -> None:
    r, _ = make_runner(cfg='modparam("auth", "secret", "s3cr3t")\n'
                           'route { www_challenge("", "0"); xlog("after\\n"); }')
    r.request(request())
    r.request(request())
    assert "after" not in r.log_text()
    nonces = [challenge_nonce(t) for t in r.sent_text]
    assert nonces == [expected_nonce(T0 + 30, 0), expected_nonce(T0 + 30, 1)]
    assert ", qop=" not in r.sent_text[0]  # qop "0"


def test_realm_rules() -> None:
    # REGISTER: To host; other requests and proxy_challenge: From host
    r, _ = make_runner(cfg='modparam("auth", "secret", "s3cr3t")\n'
                           'modparam("auth", "realm_prefix", "sip.")\n'
                           'route { if (method == "INVITE") proxy_challenge("", "0"); '
                           'else if (method == "MESSAGE") www_challenge("$rd", "0"); '
                           'else www_challenge("", "1"); }')
    r.request(request(to_uri="sip:alice@sip.to.example", from_uri="sip:alice@from.example"))
    assert 'WWW-Authenticate: Digest realm="to.example", nonce="' in r.sent_text[0]
    r.clear()
    r.request(request("INVITE", ruri="sip:bob@ruri.example", to_uri="sip:bob@to.example",
                      from_uri="sip:alice@sip.from.example"))
    [text] = r.sent_text
    assert text.startswith("SIP/2.0 407 Proxy Authentication Required\r\n")
    nonce = expected_nonce(T0 + 30, 1)
    assert f'\r\nProxy-Authenticate: Digest realm="from.example", nonce="{nonce}"\r\n' in text
    r.clear()
    r.request(request("MESSAGE", ruri="sip:bob@ruri.example"))  # a format realm
    assert 'WWW-Authenticate: Digest realm="ruri.example", nonce="' in r.sent_text[0]


def test_bad_qop_argument_fails_at_startup() -> None:
    with pytest.raises(CfgError, match="qop"):
        ScriptRunner('route { www_challenge("", "yes"); }', modules=["sl", "signaling", "auth"])


def test_signaling_is_required() -> None:
    with pytest.raises(ValueError, match="signaling"):
        ScriptRunner("route { exit; }", modules=["sl", "auth"])


def test_bad_rpid_avp_param_fails_at_startup() -> None:
    with pytest.raises(ValueError, match="rpid_avp"):
        ScriptRunner('modparam("auth", "rpid_avp", "$ru")\nroute { exit; }',
                     modules=["sl", "signaling", "auth"])


# ---------------------------------------------------------------- authorization


def test_correct_credentials_authorize_and_are_consumed() -> None:
    r, _ = make_runner()
    nonce = expected_nonce(T0 + 30, 0)
    r.request(request())  # the challenge reserves index 0
    r.clear()
    r.request(request(auth_hf=credentials(nonce)))
    assert rcs(r) == [1]
    [fwd] = r.sent_text
    assert fwd.startswith("REGISTER sip:example.com SIP/2.0\r\n")
    assert "Authorization" not in fwd  # consume_credentials removed it
    assert "CSeq: 1826 REGISTER\r\nContent-Length: 0\r\n\r\n" in fwd


def test_credentials_forwarded_without_consume() -> None:
    r, _ = make_runner(on_ok="")
    nonce = challenge_nonce((r.request(request()), r.sent_text[0])[1])
    r.clear()
    line = credentials(nonce)
    r.request(request(auth_hf=line))
    assert rcs(r) == [1]
    assert line in r.sent_text[0]


def test_qop_auth_with_nc_and_cnonce() -> None:
    r, _ = make_runner()
    r.request(request())
    nonce = challenge_nonce(r.sent_text[0])
    r.clear()
    r.request(request(auth_hf=credentials(nonce, qop="auth", nc="00000001", cnonce="xyz")))
    assert rcs(r) == [1]


def test_qop_auth_int_hashes_the_body() -> None:
    r, _ = make_runner()
    body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n"
    r.request(request("MESSAGE", body=body))
    nonce = challenge_nonce(r.sent_text[0])
    r.clear()
    r.request(request("MESSAGE", body=body, auth_hf=credentials(
        nonce, method="MESSAGE", qop="auth-int", body=body)))
    assert rcs(r) == [1]
    r.request(request("MESSAGE", body=body + "x", auth_hf=credentials(
        nonce, method="MESSAGE", qop="auth-int", body=body)))
    assert rcs(r)[-1] == -2


def test_wrong_password_gets_minus_two_and_a_fresh_challenge() -> None:
    r, _ = make_runner()
    nonce = expected_nonce(T0 + 30, 0)
    r.request(request())
    r.clear()
    r.request(request(auth_hf=credentials(nonce, password="wrong")))
    assert rcs(r) == [-2]
    [text] = r.sent_text
    assert f'nonce="{expected_nonce(T0 + 30, 1)}", qop="auth"\r\n' in text
    assert "stale" not in text


def test_unknown_user_is_minus_one() -> None:
    r, _ = make_runner()
    nonce = expected_nonce(T0 + 30, 0)
    r.request(request())
    r.request(request(auth_hf=credentials(nonce, user="mallory")))
    assert rcs(r)[-1] == -1


def test_credentials_for_another_realm_are_no_credentials() -> None:
    r, _ = make_runner()
    r.request(request(auth_hf=credentials(expected_nonce(T0 + 30, 0), realm="other.org")))
    assert rcs(r) == [-4]


def test_expired_nonce_is_stale_and_rechallenged_with_stale_true() -> None:
    r, clock = make_runner()
    r.request(request())
    nonce = challenge_nonce(r.sent_text[0])
    clock.now = T0 + 31
    r.clear()
    r.request(request(auth_hf=credentials(nonce)))
    assert rcs(r) == [-3]
    [text] = r.sent_text
    new = expected_nonce(T0 + 31 + 30, 1)
    assert f'WWW-Authenticate: Digest realm="example.com", nonce="{new}", qop="auth", stale=true\r\n' \
        in text
    # an expired nonce with a wrong password is still a wrong password (1.6 order)
    r.request(request(auth_hf=credentials(nonce, password="bad")))
    assert rcs(r)[-1] == -2


def test_forged_nonce_is_stale() -> None:
    r, _ = make_runner()
    forged = expected_nonce(T0 + 3000, 0, secret="guess")
    r.request(request(auth_hf=credentials(forged)))
    assert rcs(r) == [-3]
    assert "stale=true" in r.sent_text[0]
    r.request(request(auth_hf=credentials("abc")))  # wrong length
    assert rcs(r)[-1] == -3


def test_nonce_is_one_time() -> None:
    r, _ = make_runner()
    r.request(request())
    nonce = challenge_nonce(r.sent_text[0])
    r.request(request(auth_hf=credentials(nonce)))
    r.request(request(auth_hf=credentials(nonce, qop="auth", nc="00000002")))
    assert rcs(r) == [-4, 1, -3]
    # a nonce never handed out (index beyond the last one) is refused too
    r.request(request(auth_hf=credentials(expected_nonce(T0 + 30, 500))))
    assert rcs(r)[-1] == -3


def test_disable_nonce_check_gives_short_reusable_nonces() -> None:
    r, _ = make_runner(params='modparam("auth", "disable_nonce_check", 1)')
    r.request(request())
    nonce = challenge_nonce(r.sent_text[0])
    assert nonce == expected_nonce(T0 + 30, None)
    assert len(nonce) == 40
    r.request(request(auth_hf=credentials(nonce)))
    r.request(request(auth_hf=credentials(nonce)))
    assert rcs(r) == [-4, 1, 1]


def test_nonce_expire_param() -> None:
    r, _ = make_runner(params='modparam("auth", "nonce_expire", 300)')
    r.request(request())
    assert challenge_nonce(r.sent_text[0]) == expected_nonce(T0 + 300, 0)


def test_random_secret_signs_nonces_the_module_accepts() -> None:
    cfg = CFG.format(params="", on_ok="", qop="1").replace(
        'modparam("auth", "secret", "s3cr3t")\n', "")
    r, _ = make_runner(cfg=cfg)
    st = r.compiled.registry.modules["auth"].state
    assert len(st.secret) == 32 and all(32 <= b < 127 for b in st.secret)
    r.request(request())
    nonce = challenge_nonce(r.sent_text[0])
    assert nonce == expected_nonce(T0 + 30, 0, secret=st.secret.decode())
    r.request(request(auth_hf=credentials(nonce)))
    assert rcs(r)[-1] == 1


def test_proxy_authorize_uses_proxy_authorization() -> None:
    r, _ = make_runner()
    inv = dict(ruri="sip:bob@example.com", to_uri="sip:bob@example.com")
    r.request(request("INVITE", **inv))
    nonce = challenge_nonce(r.sent_text[0])
    r.clear()
    # an Authorization header does not count for proxy_authorize
    r.request(request("INVITE", **inv, auth_hf=credentials(
        nonce, method="INVITE", uri="sip:bob@example.com")))
    assert rcs(r) == [-4]
    r.request(request("INVITE", **inv, auth_hf=credentials(
        nonce, method="INVITE", uri="sip:bob@example.com", name="Proxy-Authorization")))
    assert rcs(r)[-1] == 1
    assert "Proxy-Authorization" not in r.sent_text[-1]


def test_malformed_credentials_get_400_and_stop() -> None:
    r, _ = make_runner()
    r.request(request(auth_hf='Authorization: Digest username="alice", realm="example.com"\r\n'))
    assert rcs(r) == []  # 0 stops the script right after the assignment (1.6)
    assert r.sent_text[0].startswith("SIP/2.0 400 Bad Request\r\n")
    r2, _ = make_runner(cfg='modparam("auth", "secret", "s3cr3t")\n'
                            'route { pv_www_authorize(""); xlog("after\\n"); }')
    r2.request(request(auth_hf='Authorization: Digest username="alice", realm="example.com"\r\n'))
    assert r2.sent_text[0].startswith("SIP/2.0 400 Bad Request\r\n")
    assert "after" not in r2.log_text()  # 0 stops the script
    r.clear()
    r.request(request(auth_hf="Authorization: Digest username=\"alice\r\n"))
    assert r.sent_text[0].startswith("SIP/2.0 400 Bad Request\r\n")
    r.clear()
    # a username domain that is not the realm
    nonce = expected_nonce(T0 + 30, 0)
    r.request(request(auth_hf=credentials(nonce, user="alice@else.where")))
    assert r.sent_text[0].startswith("SIP/2.0 400 Bad Request\r\n")


def test_other_schemes_are_skipped() -> None:
    r, _ = make_runner()
    r.request(request())
    nonce = challenge_nonce(r.sent_text[0])
    basic = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n"
    r.request(request(auth_hf=basic + credentials(nonce)))
    assert rcs(r) == [-4, 1]


def test_ack_and_cancel_are_always_authorized() -> None:
    r, _ = make_runner(on_ok="")
    r.request(request("CANCEL"))
    r.request(request("ACK"))
    assert rcs(r) == [1, 1]


def test_pv_authorize_with_ha1_in_the_variable() -> None:
    cfg = CFG.format(params="", on_ok="", qop="1").replace(
        'modparam("auth", "calculate_ha1", 1)\n', "").replace(
        '$var(pass) = "secret";', f'$var(pass) = "{md5("alice:example.com:secret")}";')
    r, _ = make_runner(cfg=cfg)
    r.request(request())
    r.request(request(auth_hf=credentials(challenge_nonce(r.sent_text[0]))))
    assert rcs(r) == [-4, 1]


def test_au_pseudo_variable_after_authorization() -> None:
    r, _ = make_runner(on_ok='xlog("au=$Au\\n");')
    r.request(request())
    r.request(request(auth_hf=credentials(challenge_nonce(r.sent_text[0]))))
    assert "au=alice@example.com" in r.log_text()


# ---------------------------------------------------------------- RPID


RPID_CFG = """
modparam("auth", "rpid_prefix", "\\"Alice\\" <")
modparam("auth", "rpid_suffix", ">;party=calling")
route {
    $avp(s:rpid) = $hdr(X-Rpid);
    if (method == "OPTIONS") { $var(r) = is_rpid_user_e164(); xlog("rc=$var(r)\\n"); exit; }
    if (method == "MESSAGE") append_rpid_hf("<", ">");
    else append_rpid_hf();
    forward("127.0.0.1:5080");
}
"""


def rpid_request(method: str, rpid: str | None) -> bytes:
    hdr = f"X-Rpid: {rpid}\r\n" if rpid is not None else ""
    return request(method, auth_hf=hdr)


def test_append_rpid_hf() -> None:
    r = ScriptRunner(RPID_CFG, modules=["sl", "signaling", "textops", "auth"])
    r.request(rpid_request("REGISTER", "sip:+4930123@example.com"))
    [fwd] = r.sent_text
    assert fwd.endswith("Content-Length: 0\r\n"
                        'Remote-Party-ID: "Alice" <sip:+4930123@example.com>;party=calling\r\n\r\n')
    r.clear()
    r.request(rpid_request("MESSAGE", "sip:+4930123@example.com"))
    assert "\r\nRemote-Party-ID: <sip:+4930123@example.com>\r\n\r\n" in r.sent_text[0]
    r.clear()
    r.request(rpid_request("REGISTER", None))  # no AVP: nothing added
    assert "Remote-Party-ID" not in r.sent_text[0]


def test_append_rpid_default_suffix() -> None:
    r = ScriptRunner('route { $avp(s:rpid) = "<sip:1@h>"; append_rpid_hf(); '
                     'forward("127.0.0.1:5080"); }', modules=["sl", "signaling", "auth"])
    r.request(request())
    assert ("Remote-Party-ID: <sip:1@h>;party=calling;id-type=subscriber;screen=yes\r\n"
            in r.sent_text[0])


@pytest.mark.parametrize(("rpid", "rc"), [
    ("sip:+4930123@example.com", 1),
    ("\"A <b>\" <sip:+12@example.com;user=phone>;party=calling", 1),
    ("<sip:+1@example.com>", -1),  # too short
    ("sip:+1234567890123456@example.com", -1),  # 16 digits: too long
    ("sip:+123456789012345@example.com", 1),  # 15 digits
    ("sip:4930123@example.com", -1),  # no +
    ("sip:+49301a3@example.com", -1),
    ("not a uri", -1),
])
def test_is_rpid_user_e164(rpid: str, rc: int) -> None:
    r = ScriptRunner(RPID_CFG, modules=["sl", "signaling", "textops", "auth"])
    r.request(rpid_request("OPTIONS", rpid))
    assert rcs(r) == [rc]


# ---------------------------------------------------------------- nonce index


def test_nonce_index_recycles_slots_after_the_lifetime() -> None:
    clock = Clock(1000)
    idx = NonceIndex(2, ticks=clock)
    assert [idx.reserve() for _ in range(3)] == [0, 1, 2]
    assert idx.use(1) and not idx.use(1)
    assert not idx.use(3)  # not handed out yet
    for t in (1001, 1002, 1003):  # one full cycle of nonce_expire + 1 ticks
        clock.now = t
        idx.reserve()
    # slots older than the lifetime are out of the window now
    assert not idx.use(0)
    assert idx.use(5)


def test_nonce_index_runs_out_when_every_slot_is_alive() -> None:
    idx = NonceIndex(1, ticks=Clock(10))
    got = [idx.reserve() for _ in range(MAX_NONCE_INDEX)]
    assert got[-1] == MAX_NONCE_INDEX - 1
    assert idx.reserve() == -1


def test_nonce_index_is_shared_across_fork() -> None:
    seg = Segment(1024 * 1024)
    idx = NonceIndex(30, seg, ticks=Clock(5))
    a = idx.reserve()
    pid = os.fork()
    if pid == 0:  # the child uses the nonce
        os._exit(0 if idx.use(a) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert not idx.use(a)  # the parent sees it used
    assert idx.reserve() == a + 1


def test_challenge_goes_through_tm_when_there_is_a_transaction() -> None:
    r = ScriptRunner('modparam("auth", "secret", "s3cr3t")\n'
                     'route { t_newtran(); proxy_challenge("", "0"); }',
                     modules=["sl", "tm", "signaling", "auth"])
    r.request(request("INVITE", ruri="sip:bob@example.com", to_uri="sip:bob@example.com"))
    [text] = r.sent_text
    assert text.startswith("SIP/2.0 407 Proxy Authentication Required\r\n")
    assert re.search(r"\r\nTo: <sip:bob@example.com>;tag=[0-9a-f]{32}-[0-9a-f]+\r\n", text)
    assert '\r\nProxy-Authenticate: Digest realm="example.com", nonce="' in text
