"""sipctl's provisioning commands against real databases (sqlite, MariaDB, PostgreSQL).

add/passwd/rm, acl, rpid, alias_db, domain, address and avp write the
rows 1.6's opensipsctl writes; the hashes are recomputed here with
hashlib. sipctl runs in-process (`main(argv, env)`); commands that would
also talk to the server get a FIFO path nobody serves.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest

from sipserver.ctl.main import main as sipctl
from tests.dbfixtures import connect, create_schema

TABLES = ["subscriber", "grp", "dbaliases", "domain", "address", "usr_preferences"]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def url(db_url: str) -> str:
    create_schema(db_url, TABLES)
    return db_url


@pytest.fixture
def run(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """run(*args, **env) -> (exit code, stdout, stderr)."""

    def go(*args: str, **env: str) -> tuple[int, str, str]:
        full = {"SIPCTL_CONFIG": "/dev/null", "SIPSERVER_DB_URL": url,
                "SIPCTL_MI": f"FIFO:{tmp_path}/no_server_fifo", **env}
        code = sipctl(list(args), full)
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return go


def rows(url: str, table: str, *columns: str, order: str = "id") -> list[tuple]:
    con = connect(url)
    try:
        return [tuple(r) for r in con.query(table, columns=columns or None, order=order).rows]
    finally:
        con.close()


def clear(url: str, *tables: str) -> None:
    con = connect(url)
    try:
        for t in tables:
            con.delete(t)
    finally:
        con.close()


SUB = ("username", "domain", "password", "email_address", "ha1", "ha1b", "rpid")


def test_add_writes_the_1_6_subscriber_row(url: str, run) -> None:
    clear(url, "subscriber")
    assert run("add", "alice@example.com", "s3cret") == (0, "new user 'alice@example.com' added\n", "")
    assert rows(url, "subscriber", *SUB) == [(
        "alice", "example.com", "s3cret", "",
        md5("alice:example.com:s3cret"), md5("alice@example.com:example.com:s3cret"), None)]
    # an existing user is refused, the row is unchanged
    code, out, err = run("add", "alice@example.com", "other")
    assert (code, out) == (1, "") and "user 'alice@example.com' already exists" in err
    assert rows(url, "subscriber", "password") == [("s3cret",)]
    # a bare name takes SIP_DOMAIN; STORE_PLAINTEXT_PW=0 keeps only the hashes
    assert run("add", "bob", "pw", SIP_DOMAIN="example.org", STORE_PLAINTEXT_PW="0")[0] == 0
    assert rows(url, "subscriber", *SUB)[1] == (
        "bob", "example.org", "", "", md5("bob:example.org:pw"),
        md5("bob@example.org:example.org:pw"), None)
    # quotes travel as values, never as SQL; non-ASCII is no SIP user character
    assert run("add", "o'brien@example.com", "p'w\"; DROP TABLE x")[0] == 0
    assert run("add", "jürgen@example.com", "x")[0] == 1  # not a SIP user character
    assert ("o'brien", "p'w\"; DROP TABLE x") in rows(url, "subscriber", "username",
                                                                  "password")


def test_add_checks_the_user_name(url: str, run) -> None:
    clear(url, "subscriber")
    for bad, why in [("bob", "no domain in 'bob'"), ("a b@x.org", "invalid user name"),
                     ("@x.org", "no user name"), ("a@b@c.org", "invalid domain"),
                     ("a@b c.org", "invalid domain"), ("a:b@x.org", "invalid user name"),
                     ("u" * 65 + "@x.org", "64 characters")]:
        code, _, err = run("add", bad, "pw")
        assert code == 1 and why in err, (bad, err)
    code, _, err = run("add", "carol@x.org", "p" * 26)
    assert code == 1 and "more than 25 characters" in err
    assert run("add", "carol@x.org", "p" * 26, STORE_PLAINTEXT_PW="0")[0] == 0
    code, _, err = run("add", "carol@x.org")
    assert code == 2 and "usage: sipctl add" in err
    assert rows(url, "subscriber", "username") == [("carol",)]


def test_passwd(url: str, run) -> None:
    clear(url, "subscriber")
    assert run("add", "dave@example.com", "old")[0] == 0
    assert run("passwd", "dave@example.com", "new") == \
        (0, "password of 'dave@example.com' changed\n", "")
    assert rows(url, "subscriber", "password", "ha1", "ha1b") == [
        ("new", md5("dave:example.com:new"), md5("dave@example.com:example.com:new"))]
    code, _, err = run("passwd", "nobody@example.com", "x")
    assert code == 1 and "non-existent user 'nobody@example.com'" in err


def test_add_refuses_an_alias_with_aliases_type_db(url: str, run) -> None:
    clear(url, "subscriber", "dbaliases")
    assert run("alias_db", "add", "eve@example.com", "frank@example.com")[0] == 0
    code, _, err = run("add", "eve@example.com", "pw", ALIASES_TYPE="DB")
    assert code == 1 and "already exists as an alias" in err
    assert run("add", "eve@example.com", "pw")[0] == 0  # no ALIASES_TYPE: not checked


def test_acl(url: str, run) -> None:
    clear(url, "subscriber", "grp")
    assert run("add", "gina@example.com", "pw")[0] == 0
    before = datetime.datetime.now().replace(microsecond=0)
    code, out, err = run("acl", "grant", "gina@example.com", "local", "bogus", "ld")
    assert code == 0 and "acl 'bogus' is not in ACL_GROUPS" in err
    assert out.splitlines()[0] == "id\tusername\tdomain\tgrp\tlast_modified"
    got = rows(url, "grp", "username", "domain", "grp", "last_modified")
    assert [g[:3] for g in got] == [("gina", "example.com", "local"), ("gina", "example.com", "ld")]
    assert all(before <= g[3] <= datetime.datetime.now() for g in got)
    # granting again is no error and adds nothing; VERIFY_ACL=0 takes any group
    assert run("acl", "grant", "gina@example.com", "local")[1] == \
        "'gina@example.com' is already in group 'local'\n"
    assert run("acl", "grant", "gina@example.com", "bogus", VERIFY_ACL="0")[0] == 0
    assert run("acl", "grant", "gina@example.com", "x", ACL_GROUPS="x y")[0] == 0
    # a user who is not a subscriber needs --yes (stdin is no terminal)
    code, _, err = run("acl", "grant", "hal@example.com", "local")
    assert code == 1 and "--yes" in err
    assert run("acl", "grant", "--yes", "hal@example.com", "local")[0] == 0
    code, out, _ = run("acl", "show", "gina@example.com")
    assert code == 0 and [line.split("\t")[3] for line in out.splitlines()[1:]] == \
        ["local", "ld", "bogus", "x"]
    assert len(run("acl", "show")[1].splitlines()) == 6  # header + 5 rows
    code, out, _ = run("acl", "revoke", "gina@example.com", "ld")
    assert code == 0 and out.startswith("1 membership(s) of 'gina@example.com' revoked\n")
    assert run("acl", "revoke", "gina@example.com")[0] == 0
    assert rows(url, "grp", "username", "grp") == [("hal", "local")]
    assert run("acl", "revoke")[0] == 2 and run("acl", "frob")[0] == 2
    assert run("acl", "grant", "gina@example.com")[0] == 2


def test_rm_removes_groups_dbaliases_and_the_subscriber(url: str, run) -> None:
    clear(url, "subscriber", "grp", "dbaliases")
    assert run("add", "ivan@example.com", "pw")[0] == 0
    assert run("add", "judy@example.com", "pw")[0] == 0
    assert run("acl", "grant", "ivan@example.com", "local", "ld")[0] == 0
    assert run("acl", "grant", "judy@example.com", "local")[0] == 0
    assert run("alias_db", "add", "iv@example.com", "ivan@example.com")[0] == 0
    assert run("alias_db", "add", "ju@example.com", "judy@example.com")[0] == 0
    code, out, err = run("rm", "ivan@example.com")
    assert code == 0 and out == "user 'ivan@example.com' deleted (2 group(s), 1 alias(es))\n"
    assert "contacts were not removed from usrloc" in err and "no_server_fifo" in err
    assert rows(url, "subscriber", "username") == [("judy",)]
    assert rows(url, "grp", "username") == [("judy",)]
    assert rows(url, "dbaliases", "alias_username") == [("ju",)]
    code, _, err = run("rm", "ivan@example.com")
    assert code == 1 and "non-existent user" in err


def test_rpid(url: str, run) -> None:
    clear(url, "subscriber")
    assert run("add", "kim@example.com", "pw")[0] == 0
    assert run("rpid", "add", "kim@example.com", "<sip:+4930123@example.com>") == \
        (0, "username\tdomain\trpid\nkim\texample.com\t<sip:+4930123@example.com>\n", "")
    assert run("rpid", "show") == \
        (0, "username\tdomain\trpid\nkim\texample.com\t<sip:+4930123@example.com>\n", "")
    assert run("rpid", "rm", "kim@example.com")[1] == "username\tdomain\trpid\nkim\texample.com\tNULL\n"
    assert rows(url, "subscriber", "rpid") == [(None,)]
    code, _, err = run("rpid", "add", "nobody@example.com", "x")
    assert code == 1 and "invalid user 'nobody@example.com'" in err
    assert run("rpid")[0] == 2 and run("rpid", "add", "kim@example.com")[0] == 2


def test_alias_db(url: str, run) -> None:
    clear(url, "dbaliases")
    assert run("alias_db", "add", "sales@example.com", "liz@example.com") == \
        (0, "alias 'sales@example.com' of 'liz@example.com' added\n", "")
    assert run("alias_db", "add", "info@example.com", "liz@example.com")[0] == 0
    assert rows(url, "dbaliases", "alias_username", "alias_domain", "username", "domain") == [
        ("sales", "example.com", "liz", "example.com"), ("info", "example.com", "liz", "example.com")]
    # an alias that exists is left alone (exit 0, as 1.6)
    code, out, _ = run("alias_db", "add", "sales@example.com", "max@example.com")
    assert code == 0 and "already in dbaliases (for liz@example.com)" in out
    assert run("alias_db", "show", "sales@example.com") == (0, "SIP-ID\nliz@example.com\n", "")
    assert run("alias_db", "list", "liz@example.com") == \
        (0, "ALIAS\nsales@example.com\ninfo@example.com\n", "")
    assert run("alias_db", "list")[1].splitlines() == [
        "alias_username\talias_domain\tusername\tdomain",
        "sales\texample.com\tliz\texample.com", "info\texample.com\tliz\texample.com"]
    code, _, err = run("alias_db", "add", "sales", "liz@example.com")
    assert code == 1 and "'sales' is not a valid AoR (user@domain)" in err
    code, _, err = run("alias_db", "show", "liz@localhost")  # 1.6 wants a dot in the domain
    assert code == 1 and "not a valid AoR" in err
    assert run("alias_db", "rm", "sales@example.com") == (0, "alias 'sales@example.com' removed\n", "")
    assert run("alias_db", "rm", "sales@example.com")[1] == "no alias 'sales@example.com' in dbaliases\n"
    code, _, err = run("alias_db", "show", "sales@example.com")
    assert code == 1 and "no alias" in err
    assert rows(url, "dbaliases", "alias_username") == [("info",)]
    assert run("alias_db", "help")[0] == 0 and run("alias_db")[0] == 2
    assert run("alias_db", "add", "a@b.c")[0] == 2


def test_domain_table(url: str, run) -> None:
    clear(url, "domain")
    code, out, _ = run("domain", "add", "example.net")
    assert code == 0 and out.startswith("domain 'example.net' added\n")
    assert "sipctl domain reload" in out
    assert run("domain", "add", "example.net")[1] == "domain 'example.net' is already in domain\n"
    assert run("domain", "add", "Example.com")[0] == 0
    got = rows(url, "domain", "domain", "last_modified")
    assert [g[0] for g in got] == ["example.net", "Example.com"]
    assert isinstance(got[0][1], datetime.datetime) and got[0][1].year >= 2024
    out = run("domain", "showdb")[1].splitlines()
    assert out[0] == "id\tdomain\tlast_modified" and out[1].split("\t")[1] == "example.net"
    assert run("domain", "rm", "example.net")[1].startswith("domain 'example.net' removed\n")
    assert run("domain", "rm", "example.net")[1].startswith("no domain 'example.net' in domain\n")
    assert rows(url, "domain", "domain") == [("Example.com",)]
    code, _, err = run("domain", "add", "bad domain")
    assert code == 1 and "invalid domain" in err
    assert run("domain", "add")[0] == 2 and run("domain", "frob")[0] == 2


def test_address_table(url: str, run) -> None:
    clear(url, "address")
    code, out, _ = run("address", "add", "1", "10.0.0.1", "32", "5060", "udp")
    assert code == 0 and "sipctl address reload" in out
    assert run("address", "add", "2", "10.0.0.0", "8", "0", "any", "office", "^sip:.*$")[0] == 0
    assert run("address", "add", "3", "10.0.0.2", "32", "0", "tcp", "branch")[0] == 0
    assert rows(url, "address", "grp", "ip", "mask", "port", "proto", "pattern", "context_info") == [
        (1, "10.0.0.1", 32, 5060, "udp", None, None),
        (2, "10.0.0.0", 8, 0, "any", "^sip:.*$", "office"),
        (3, "10.0.0.2", 32, 0, "tcp", None, "branch")]
    code, out, _ = run("address", "add", "1", "10.0.0.1", "32", "5060", "tcp")
    assert code == 0 and "already in group 1" in out
    for args, why in [(("1", "10.0.0.x", "32", "0", "any"), "not an IP address"),
                      (("1", "10.0.0.9", "32", "0", "http"), "unknown protocol"),
                      (("x", "10.0.0.9", "32", "0", "any"), "the group must be a number"),
                      (("1", "10.0.0.9", "32", "70000", "any"), "the port must be a number")]:
        code, _, err = run("address", "add", *args)
        assert code == 1 and why in err, (args, err)
    assert run("address", "add", "1", "10.0.0.9", "32", "0")[0] == 2
    out = run("address", "show")[1].splitlines()
    assert out[0] == "id\tgrp\tip\tmask\tport\tproto\tpattern\tcontext_info" and len(out) == 4
    assert run("address", "rm", "2", "10.0.0.0", "8", "0")[1].startswith("1 address entry removed\n")
    assert run("address", "rm", "2", "10.0.0.0", "8", "0")[1].startswith("0 address entries removed")
    assert len(rows(url, "address")) == 2


def test_avp(url: str, run) -> None:
    clear(url, "usr_preferences")
    assert run("avp", "add", "max@example.com", "lang", "0", "de") == \
        (0, "avp add - attribute added\n", "")
    assert run("avp", "add", "uuid-7", "fwd", "0", "sip:x@example.com")[0] == 0
    assert run("avp", "add", "-T", "usr_preferences", "max@example.com", "limit", "1", "5")[0] == 0
    got = rows(url, "usr_preferences", "uuid", "username", "domain", "attribute", "type", "value")
    assert got == [("", "max", "example.com", "lang", 0, "de"),
                   ("uuid-7", "", "", "fwd", 0, "sip:x@example.com"),
                   ("", "max", "example.com", "limit", 1, "5")]
    out = run("avp", "list", "-u", "max@example.com", "-t", "1")[1]
    assert out == "uuid\tusername\tdomain\tattribute\ttype\tvalue\n\tmax\texample.com\tlimit\t1\t5\n"
    assert len(run("avp", "list", "-u", "uuid-7")[1].splitlines()) == 2
    assert len(run("avp", "list")[1].splitlines()) == 4
    code, _, err = run("avp", "add", "max@example.com", "x", "9", "v")
    assert code == 1 and "type must be 0, 1, 2 or 3" in err
    code, _, err = run("avp", "list", "-x", "1")
    assert code == 2 and "unknown parameter '-x'" in err
    code, _, err = run("avp", "rm")
    assert code == 2 and "at least one" in err
    assert run("avp", "rm", "-u", "max@example.com", "-a", "lang") == \
        (0, "avp rm - 1 AVP(s) deleted\n", "")
    assert len(rows(url, "usr_preferences")) == 2
    assert run("avp", "add", "a", "b")[0] == 2


def test_db_problems_are_messages(url: str, run, tmp_path: Path) -> None:
    code, _, err = run("add", "x@example.com", "pw", SIPSERVER_DB_URL=f"sqlite://{tmp_path}/none.db")
    assert code == 1 and "does not exist (create it with `sipctl db create`)" in err
    assert not (tmp_path / "none.db").exists()
    code, _, err = run("add", "x@example.com", "pw", SUB_TABLE="no_such_table")
    assert code == 1 and "sipctl db create" in err
    code, _, err = run("add", "x@example.com", "pw", "--db-url", "oracle://u@h/db")
    assert code == 2 and 'cannot load module "db_oracle"' in err
    code, _, err = run("domain", "showdb", "--db-url=mysql://root@127.0.0.1:9/none")
    assert code == 1 and "cannot connect" in err


def test_db_text_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A text:// database works too (its tables have no column defaults)."""
    from sipserver.modules.db_text import write_table

    s = ("string", False, False)
    write_table(tmp_path, "subscriber", [("id", "int", False, True), ("username", *s),
                                         ("domain", *s), ("password", *s), ("email_address", *s),
                                         ("ha1", *s), ("ha1b", *s), ("rpid", "string", True, False)])
    url = f"text://{tmp_path}"
    env = {"SIPCTL_CONFIG": "/dev/null", "SIPSERVER_DB_URL": url}
    assert sipctl(["add", "nia@example.com", "pw"], env) == 0
    assert rows(url, "subscriber", *SUB) == [("nia", "example.com", "pw", "", md5(
        "nia:example.com:pw"), md5("nia@example.com:example.com:pw"), None)]
    assert sipctl(["add", "nia@example.com", "pw"], env) == 1
    assert "already exists" in capsys.readouterr().err
