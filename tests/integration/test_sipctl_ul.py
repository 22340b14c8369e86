"""sipctl's MI-driven commands against real MI servers.

`ul`, `alias`, `online`, `rm`, `add` (ALIASES_TYPE=UL), `domain
show|reload` and `address dump|reload` talk to mi_fifo's process with
the real usrloc, domain and permissions modules loaded (usrloc's
`location` and `aliases` tables registered as registrar does); `ping`
goes through a whole sipserver (tm sends the OPTIONS to a UDP peer).
sipctl writes to a tap FIFO that records each request and passes it on
to the server's FIFO, so the exact request lines are checked as well
as what sipctl prints.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipserver.ctl.main import main as sipctl
from tests.dbfixtures import connect, create_schema

from .server import SipServer
from .test_mi import build, destroy, fifo_ready, forked, wait_for
from .test_tm_mi import Peer

ROOT = Path(__file__).resolve().parents[2]


class FifoTap(threading.Thread):
    """A FIFO that records every MI request and forwards it to `target`."""

    def __init__(self, path: Path, target: Path) -> None:
        super().__init__(daemon=True)
        os.mkfifo(path, 0o600)
        self.target = target
        self.rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # no EOF between clients
        self.requests: list[str] = []
        self.stopped = False

    def run(self) -> None:
        buf = b""
        poller = select.poll()
        poller.register(self.rfd, select.POLLIN)
        while not self.stopped:
            if not poller.poll(50):
                continue
            buf += os.read(self.rfd, 65536)
            while b"\n\n" in buf:  # a request ends with an empty line
                end = buf.index(b"\n\n") + 2
                req, buf = buf[:end], buf[end:]
                # the reply FIFO name varies: keep the command
                self.requests.append(re.sub(r"^(:[^:]*:)sipctl_reply_\d+_\d+\n", r"\1R\n",
                                            req.decode()))
                with open(self.target, "wb") as f:
                    f.write(req)

    def take(self) -> list[str]:
        out, self.requests = self.requests, []
        return out

    def close(self) -> None:
        self.stopped = True
        self.join(2)
        os.close(self.rfd)
        os.close(self.keep)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], FifoTap]]:
    tmp = tmp_path_factory.mktemp("ulmi")
    db = f"sqlite://{tmp}/sip.db"
    create_schema(db, ["subscriber", "dbaliases", "grp", "domain", "address"])
    con = connect(db)
    try:
        con.insert("domain", ("domain",), ("example.com",))
        con.insert("address", ("grp", "ip", "mask", "port", "proto"), (1, "10.1.2.3", 32, 0, "any"))
    finally:
        con.close()
    fifo, replies = tmp / "sipserver_fifo", tmp / "replies"
    replies.mkdir()
    rt = build({
        "db_sqlite": {},
        "mi_fifo": {"fifo_name": str(fifo), "reply_dir": str(replies)},
        "usrloc": {},
        "domain": {"db_url": db, "db_mode": 1},
        "permissions": {"db_url": db},
    })
    rt.stats = None  # test_mi's stand-in cannot register usrloc's per-table counters
    ul = rt.registry.modules["usrloc"].state
    ul.register_udomain("location")  # as registrar's fixups do
    ul.register_udomain("aliases")
    tap = FifoTap(tmp / "tap_fifo", fifo)
    try:
        with forked(rt.registry.modules["mi_fifo"]):
            wait_for(lambda: fifo_ready(fifo), "the FIFO")
            tap.start()
            env = {"SIPCTL_CONFIG": "/dev/null", "SIPCTL_MI": f"FIFO:{tmp}/tap_fifo",
                   "SIPCTL_REPLY_DIR": str(replies), "SIPSERVER_DB_URL": db}
            yield env, tap
    finally:
        tap.close()
        destroy(rt)


@pytest.fixture
def run(server: tuple[dict[str, str], FifoTap], capsys: pytest.CaptureFixture[str]):
    """run(*args, **env) -> (exit code, stdout, stderr, the MI requests sent)."""
    base, tap = server
    tap.take()

    def go(*args: str, **env: str) -> tuple[int, str, str, list[str]]:
        code = sipctl(list(args), {**base, **env})
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err, tap.take()

    return go


ADD = ":ul_add:R\n{table}\n{aor}\n{uri}\n{expires}\n1.00\n0\n0\n0\n4294967295\n\n"


def test_ul_add_show_rm(run) -> None:
    assert run("ul", "add", "alice@example.com", "sip:alice@192.0.2.1:5062") == (0, "", "", [
        ADD.format(table="location", aor="alice@example.com", uri="sip:alice@192.0.2.1:5062",
                   expires=0)])
    code, _, _, sent = run("ul", "add", "alice@example.com", "sip:alice@192.0.2.9", "3600")
    assert code == 0 and sent == [ADD.format(table="location", aor="alice@example.com",
                                             uri="sip:alice@192.0.2.9", expires=3600)]
    # a bare user takes SIP_DOMAIN
    code, _, _, sent = run("ul", "add", "bob", "sips:bob@example.org", SIP_DOMAIN="example.com")
    assert code == 0 and sent == [ADD.format(table="location", aor="bob@example.com",
                                             uri="sips:bob@example.org", expires=0)]

    code, out, _, sent = run("ul", "show")
    assert (code, sent) == (0, [":ul_dump:R\n\n"])
    lines = out.splitlines()
    assert lines[0] == "Domain:: aliases table=512 records=0"
    assert "Domain:: location table=512 records=2" in lines
    assert "\tAOR:: alice" in lines and "\tAOR:: bob" in lines
    assert "\t\tContact:: sip:alice@192.0.2.9 Q=1" in lines
    assert "\t\t\tExpires:: permanent" in lines
    assert "\t\t\tMethods:: 4294967295" in lines and "\t\t\tUser-agent:: OpenSIPS MI Server" in lines

    code, out, _, sent = run("ul", "show", "--brief")
    assert (code, sent) == (0, [":ul_dump:R\nbrief\n\n"])
    lines = out.splitlines()
    assert lines[:2] == ["Domain:: aliases table=512 records=0",
                         "Domain:: location table=512 records=2"]
    assert sorted(lines[2:]) == ["\tAOR:: alice", "\tAOR:: bob"]  # in hash order

    code, out, _, sent = run("ul", "show", "alice@example.com")
    assert (code, sent) == (0, [":ul_show_contact:R\nlocation\nalice@example.com\n\n"])
    shown = out.splitlines()
    assert len(shown) == 2 and all(s.startswith("Contact:: <sip:alice@192.0.2.") for s in shown)
    assert any(";q=1;expires=3600;" in s or ";q=1;expires=3599;" in s for s in shown)

    code, out, _, sent = run("online")
    assert (code, out, sent) == (0, "alice\nbob\n", [":ul_dump:R\n\n"])

    code, out, _, sent = run("ul", "rm", "alice@example.com", "sip:alice@192.0.2.9")
    assert (code, out) == (0, "")
    assert sent == [":ul_rm_contact:R\nlocation\nalice@example.com\nsip:alice@192.0.2.9\n\n"]
    code, out, _, _ = run("ul", "rm", "alice@example.com", "sip:alice@192.0.2.9")
    assert (code, out) == (1, "404 Contact not found\n")
    code, out, _, sent = run("ul", "rm", "bob@example.com")
    assert (code, sent) == (0, [":ul_rm:R\nlocation\nbob@example.com\n\n"])
    code, out, _, _ = run("ul", "show", "bob@example.com")
    assert (code, out) == (1, "404 AOR not found\n")
    assert run("online")[1] == "alice\n"


def test_ul_argument_checks(run) -> None:
    for args, code, why in [
        (("ul", "add", "carl@example.com", "http://x.org"), 1, "not a valid SIP URI"),
        (("ul", "add", "carl@example.com", "sip:carl@host"), 1, "not a valid SIP URI"),
        (("ul", "add", "carl@example.com", "sip:carl@x.org", "-5"), 1, "expires must be"),
        (("ul", "add", "carl", "sip:carl@x.org"), 1, "no domain in 'carl'"),
        (("ul", "rm", "carl@example.com", "nonsense"), 1, "not a valid SIP URI"),
        (("ul", "show", "a@x.org", "b@x.org"), 2, "wrong number"),
        (("ul",), 2, "too few parameters"),
        (("ul", "frob"), 2, "unknown action"),
        (("online", "x"), 2, "no parameters"),
    ]:
        got, out, err, sent = run(*args)
        assert (got, out, sent) == (code, "", []) and why in err, (args, err)


def test_alias_is_ul_on_the_aliases_table(run) -> None:
    assert run("add", "dora@example.com", "pw")[0] == 0
    code, _, err, sent = run("alias", "add", "dora@example.com", "sip:dora@x.org")
    assert (code, sent) == (1, []) and "overlap an existing subscriber" in err
    code, _, _, sent = run("alias", "add", "d@example.com", "sip:dora@example.com")
    assert code == 0 and sent == [ADD.format(table="aliases", aor="d@example.com",
                                             uri="sip:dora@example.com", expires=0)]
    code, out, _, sent = run("alias", "show", "d@example.com")
    assert code == 0 and sent == [":ul_show_contact:R\naliases\nd@example.com\n\n"]
    assert out.startswith("Contact:: <sip:dora@example.com>;q=1;expires=")
    # with ALIASES_TYPE=UL, add asks usrloc whether the name is an alias
    code, _, err, sent = run("add", "d@example.com", "pw", ALIASES_TYPE="UL")
    assert (code, sent) == (1, [":ul_show_contact:R\naliases\nd@example.com\n\n"])
    assert "already exists as an alias" in err
    code, _, err, sent = run("ul", "add", "d@example.com", "sip:d@x.org", ALIASES_TYPE="UL")
    assert (code, sent) == (1, [":ul_show_contact:R\naliases\nd@example.com\n\n"])
    assert "'d@example.com' is an alias" in err
    code, _, _, sent = run("add", "ed@example.com", "pw", ALIASES_TYPE="UL")
    assert (code, sent) == (0, [":ul_show_contact:R\naliases\ned@example.com\n\n"])
    code, _, _, sent = run("alias", "rm", "d@example.com")
    assert (code, sent) == (0, [":ul_rm:R\naliases\nd@example.com\n\n"])


def test_rm_removes_the_contacts_too(run) -> None:
    assert run("add", "fay@example.com", "pw")[0] == 0
    assert run("ul", "add", "fay@example.com", "sip:fay@192.0.2.7")[0] == 0
    code, out, err, sent = run("rm", "fay@example.com")
    assert (code, err) == (0, "") and out.startswith("user 'fay@example.com' deleted")
    assert sent == [":ul_rm:R\nlocation\nfay@example.com\n\n"]
    assert run("ul", "show", "fay@example.com")[1] == "404 AOR not found\n"


def test_domain_and_address_through_mi(run) -> None:
    assert run("domain", "show") == (0, "example.com\n", "", [":domain_dump:R\n\n"])
    assert run("domain", "add", "example.org")[0] == 0
    assert run("domain", "show")[1] == "example.com\n"  # not reloaded yet
    assert run("domain", "reload") == (0, "", "", [":domain_reload:R\n\n"])
    assert sorted(run("domain", "show")[1].split()) == ["example.com", "example.org"]
    code, out, _, sent = run("address", "dump")
    assert (code, sent) == (0, [":address_dump:R\n\n"])
    assert "<10.1.2.3,1, 0, 0, NULL, NULL>" in out
    assert run("address", "add", "2", "10.9.9.9", "32", "5060", "udp")[0] == 0
    assert run("address", "reload") == (0, "", "", [":address_reload:R\n\n"])
    assert "<10.9.9.9,2, 5060, 1, NULL, NULL>" in run("address", "dump")[1]


def test_unreachable_server(run, tmp_path: Path) -> None:
    code, out, err, _ = run("ul", "show", SIPCTL_MI=f"FIFO:{tmp_path}/none")
    assert (code, out) == (3, "") and "does not exist" in err
    os.mkfifo(tmp_path / "orphan")
    code, _, err, _ = run("online", SIPCTL_MI=f"FIFO:{tmp_path}/orphan")
    assert code == 3 and "not running" in err


# -------------------------------------------------------------- ping, a whole server

CFG = """
log_stderror=yes
debug=1
children=1
listen=udp:127.0.0.1:@PORT@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "mi_fifo.so"
modparam("tm", "fr_timer", 2)
modparam("mi_fifo", "fifo_name", "@FIFO@")
modparam("mi_fifo", "reply_dir", "@DIR@")
route {
    sl_send_reply("200", "Alive");
}
"""


def test_ping_sends_options_through_t_uac_dlg(tmp_path: Path) -> None:
    fifo = tmp_path / "sipserver_fifo"
    cfg = CFG.replace("@FIFO@", str(fifo)).replace("@DIR@", str(tmp_path) + "/")
    peer = Peer()
    peer.start()
    server = SipServer(tmp_path, cfg).start()
    tap = FifoTap(tmp_path / "tap", fifo)
    tap.start()
    env = {"PATH": os.environ.get("PATH", ""), "SIPCTL_CONFIG": "/dev/null",
           "SIPCTL_MI": f"FIFO:{tmp_path}/tap", "SIPCTL_REPLY_DIR": str(tmp_path),
           "SIP_DOMAIN": "ops.example.com"}

    def ping(uri: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sipserver.ctl.main", "ping", uri],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=20)

    try:
        uri = f"sip:peer@127.0.0.1:{peer.port}"
        out = ping(uri)
        assert (out.returncode, out.stdout, out.stderr) == (0, "200 Fine\n", "")
        assert tap.take() == [
            f':t_uac_dlg:R\nOPTIONS\n"{uri}"\n"."\n"."\n"From:sip:daemon@ops.example.com\r\n'
            f'To:<{uri}>\r\nContact:sip:daemon@ops.example.com\r\n"\n\n']
        sent = peer.received[-1].decode()
        assert sent.startswith(f"OPTIONS {uri} SIP/2.0\r\n")
        assert "\r\nFrom: <sip:daemon@ops.example.com>;tag=" in sent or \
            "\r\nFrom:sip:daemon@ops.example.com;tag=" in sent
        to = next(h for h in sent.split("\r\n") if h.startswith("To:"))
        assert uri in to and "tag" not in to, repr(sent)
        assert "\r\nContact:sip:daemon@ops.example.com\r\n" in sent
        # nobody answers: tm's timer gives 408, and a failure exit code
        peer.answer = False
        out = ping(uri)
        assert (out.returncode, out.stdout) == (1, "408 Request Timeout\n"), out.stderr
        assert len(tap.take()) == 1
        out = ping("sip:a b")  # refused before anything is sent
        assert out.returncode == 1 and "invalid URI" in out.stderr and tap.take() == []
        out = ping("nonsense")
        assert (out.returncode, out.stdout) == (1, "400 Invalid RURI\n")
    finally:
        tap.close()
        peer.stop = True
        assert server.stop() == 0
        peer.join(2)


def test_an_ipv6_contact_is_sent_quoted(run) -> None:
    code, _, _, sent = run("ul", "add", "gil@example.com", "sip:gil@[2001:db8::7]:5060")
    assert code == 0 and sent == [ADD.format(table="location", aor="gil@example.com",
                                             uri='"sip:gil@[2001:db8::7]:5060"', expires=0)]
    assert run("ul", "show", "gil@example.com")[1].startswith(
        "Contact:: <sip:gil@[2001:db8::7]:5060>;q=1;")
    assert run("ul", "rm", "gil@example.com", "sip:gil@[2001:db8::7]:5060")[0] == 0
    assert run("ul", "show", "gil@example.com")[1] == "404 AOR not found\n"
