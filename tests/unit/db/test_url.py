"""db_url parsing: the 1.6 URL forms, and clear errors for the bad ones."""

from __future__ import annotations

import pytest

from sipserver.db.url import DbUrlError, default_db_url, parse_db_url


@pytest.mark.parametrize("text, expect", [
    ("mysql://opensips:opensipsrw@localhost/opensips",
     ("mysql", "opensips", "opensipsrw", "localhost", None, "opensips")),
    ("mysql://root@127.0.0.1:3306/db", ("mysql", "root", "", "127.0.0.1", 3306, "db")),
    ("postgres://u:p@db.example.com:5433/sip", ("postgres", "u", "p", "db.example.com", 5433, "sip")),
    ("postgresql://h/sip", ("postgresql", "", "", "h", None, "sip")),
    ("MYSQL://h/d", ("mysql", "", "", "h", None, "d")),
    ("mysql://u:p@ss:w@rd@h/d", ("mysql", "u", "p@ss:w@rd", "h", None, "d")),
    ("mysql://u:p%2Fx@h/d", ("mysql", "u", "p/x", "h", None, "d")),
    ("mysql://u@[::1]:3307/d", ("mysql", "u", "", "::1", 3307, "d")),
    ("mysql://u@[fe80::1]/d", ("mysql", "u", "", "fe80::1", None, "d")),
])
def test_server_urls(text: str, expect: tuple) -> None:
    u = parse_db_url(text)
    assert (u.scheme, u.user, u.password, u.host, u.port, u.database) == expect
    assert u.text == text


@pytest.mark.parametrize("text, path", [
    ("sqlite:///var/lib/sipserver/sipserver.db", "/var/lib/sipserver/sipserver.db"),
    ("sqlite://rel/dir/x.db", "rel/dir/x.db"),
    ("sqlite3:///tmp/a.db", "/tmp/a.db"),
    ("text:///etc/dbtext", "/etc/dbtext"),
])
def test_path_urls(text: str, path: str) -> None:
    u = parse_db_url(text)
    assert u.database == path
    assert u.host == "" and u.port is None


@pytest.mark.parametrize("text, words", [
    ("localhost/opensips", "expected scheme://"),
    ("://h/d", "expected scheme://"),
    ("my sql://h/d", "expected scheme://"),
    ("mysql://u:p@h", "missing database name"),
    ("mysql://u:p@h/", "missing database name"),
    ("mysql://u:p@/d", "missing host"),
    ("mysql://h:0/d", 'bad port "0"'),
    ("mysql://h:65536/d", 'bad port "65536"'),
    ("mysql://h:abc/d", 'bad port "abc"'),
    ("mysql://[::1/d", "unterminated IPv6"),
    ("sqlite://", "missing path"),
])
def test_bad_urls(text: str, words: str) -> None:
    with pytest.raises(DbUrlError) as e:
        parse_db_url(text)
    assert words in str(e.value)
    assert text in str(e.value)


def test_redacted_hides_the_password_only() -> None:
    u = parse_db_url("mysql://opensips:s3cret@h/opensips")
    assert u.redacted() == "mysql://opensips:***@h/opensips"
    assert parse_db_url("mysql://opensips@h/opensips").redacted() == "mysql://opensips@h/opensips"


def test_default_db_url_prefers_the_environment() -> None:
    assert default_db_url({"SIPSERVER_DB_URL": "mysql://h/d"}) == "mysql://h/d"


def test_default_db_url_is_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import sipserver.db.url as url_mod

    writable = tmp_path / "lib" / "sipserver"
    monkeypatch.setattr(url_mod, "DEFAULT_DB_PATH", str(writable / "s.db"))
    assert default_db_url({}) == f"sqlite://{writable}/s.db"  # parent writable: will be made
    monkeypatch.setattr(url_mod.os, "access", lambda path, mode: False)  # root writes anywhere
    monkeypatch.chdir(tmp_path)
    assert default_db_url({}) == f"sqlite://{tmp_path}/sipserver.db"
