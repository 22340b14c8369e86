"""avpops DB functions on SQLite, MariaDB and PostgreSQL (tests/dbfixtures.py):
avp_db_store/load/delete round trips through a real `usr_preferences` table
(rows checked in the DB, AVPs read back through $avp in xlog lines and on the
wire), sources and flags, table override, db_scheme, extra db_url ids, and
avp_db_query with values that must travel verbatim (quotes, backslashes, an
injection attempt). DB failures give -1 and a log line, never an exception.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from sipserver.lang.errors import CfgError
from sipserver.testing import ScriptRunner
from tests.dbfixtures import connect, create_schema

from .util import INVITE

DRIVERS = {"sqlite": "db_sqlite", "mysql": "db_mysql", "postgres": "db_postgres"}
MSG = INVITE.replace("\n", "\r\n").encode()
TRICKY = "O'Brien \\' \"q\" %s ?; --"  # quotes, a backslash, placeholders, a comment
_uniq = itertools.count()

_RUNNERS: list[ScriptRunner] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Close the module's connections before the fixture drops the database."""
    yield
    while _RUNNERS:
        for mod in _RUNNERS.pop().compiled.registry.modules.values():
            if mod.exports.destroy is not None and mod.rt is not None:
                mod.exports.destroy(mod)


@pytest.fixture(scope="module")
def db(db_url: str, db_engine: str) -> Iterator[tuple[str, str]]:
    create_schema(db_url, ["usr_preferences"])
    con = connect(db_url)
    try:
        # a second table (for /table) and a subscriber-like one (for db_scheme)
        con.raw_query("CREATE TABLE prefs2 (uuid VARCHAR(64) DEFAULT '' NOT NULL, "
                      "username VARCHAR(128) DEFAULT '' NOT NULL, "
                      "domain VARCHAR(64) DEFAULT '' NOT NULL, "
                      "attribute VARCHAR(32) DEFAULT '' NOT NULL, type INT DEFAULT 0 NOT NULL, "
                      "value VARCHAR(128) DEFAULT '' NOT NULL)")
        con.raw_query("CREATE TABLE subs (uuid VARCHAR(64), login VARCHAR(64), "
                      "realm VARCHAR(64), first_name VARCHAR(64), age INT)")
        con.insert("subs", ("uuid", "login", "realm", "first_name", "age"),
                   ("u-1", "alice", "example.com", "Alice", 33))
        con.insert("subs", ("uuid", "login", "realm", "first_name", "age"),
                   ("u-2", "bob", "other.org", "Bob", None))
    finally:
        con.close()
    yield db_url, DRIVERS[db_engine]


def user() -> str:
    """A user name no other test touches (the table is shared by the module)."""
    return f"u{next(_uniq)}"


def msg(from_user: str = "alice", ruri_user: str = "bob") -> bytes:
    return (MSG.replace(b"sip:alice@example.com", f"sip:{from_user}@example.com".encode())
            .replace(b"INVITE sip:bob@example.com", f"INVITE sip:{ruri_user}@example.com"
                     .encode()))


def runner(db: tuple[str, str], body: str, params: str = "") -> ScriptRunner:
    url, driver = db
    cfg = (f'modparam("avpops", "db_url", "{url}")\n{params}'
           f"route {{\n{body}\n}}\n")
    r = ScriptRunner(cfg, modules=["sl", "textops", driver, "avpops"])
    _RUNNERS.append(r)
    return r


def lines(r: ScriptRunner) -> list[str]:
    out = [t[1:].rstrip("\n") for _, t in r.logs if t.startswith(">")]
    r.logs.clear()
    return out


def rc(call: str) -> str:
    return f'$var(rc) = {call}; xlog(">rc=$var(rc)\\n");'


def query(sql: str, *more: str) -> str:
    """`avp_db_query("sql", "more"...)` as script text, its code logged (rc)."""
    args = "".join(f', "{m}"' for m in more)
    return rc(f'avp_db_query("{sql}"{args})')


def rows(url: str, sql: str, params: list | None = None) -> list[tuple]:
    con = connect(url)
    try:
        res = con.raw_query(sql, params or [])
        return sorted(res.rows) if res else []
    finally:
        con.close()


# ---------------------------------------------------------------- store / load / delete


def test_store_load_round_trip_by_uri(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    r = runner(db, """
        if ($hdr(X-Step) == "store") {
            $avp(s:email) = "a@example.com"; $avp(s:email) = "b@example.com";
            $avp(i:42) = -17; $avp(s:count) = 3;
            """ + rc('avp_db_store("$fu", "$avp(s:email)")') + """
            """ + rc('avp_db_store("$fu", "$avp(i:42)")') + """
            """ + rc('avp_db_store("$fu", "$avp(s:count)")') + """
            """ + rc('avp_db_store("$fu", "$avp(s:email)")') + """
            exit;
        }
        """ + rc('avp_db_load("$fu", "$avp(s:email)")') + """
        """ + rc('avp_db_load("$fu", "$avp(i:42)")') + """
        """ + rc('avp_db_load("$fu", "$avp(s:count)")') + """
        """ + rc('avp_db_load("$fu", "$avp(s:nothing)")') + """
        $var(n) = $avp(i:42) + $avp(s:count);
        xlog(">email=$(avp(s:email)[*]) n=$var(n)\\n");
        """ + rc('avp_db_store("$fu", "$avp(s:email)")') + """
        append_hf("X-Email: $(avp(s:email)[*])\\r\\n");
        forward("127.0.0.1:5080");
        """)
    store = msg(u).replace(b"Content-Length", b"X-Step: store\r\nContent-Length")
    r.request(store)
    # the second store of s:email finds only values already in the DB
    assert lines(r) == ["rc=1", "rc=1", "rc=1", "rc=-1"]
    got = rows(url, "SELECT uuid, username, domain, attribute, type, value "
                    "FROM usr_preferences WHERE username = ?", [u])
    assert got == [("", u, "", "42", 3, "-17"), ("", u, "", "count", 1, "3"),
                   ("", u, "", "email", 0, "a@example.com"),
                   ("", u, "", "email", 0, "b@example.com")]
    r.request(msg(u))
    assert lines(r) == ["rc=1", "rc=1", "rc=1", "rc=-1", "email=a@example.com, b@example.com,  "
                        "n=-14", "rc=-1"]  # loaded AVPs are never stored again
    assert "\r\nX-Email: a@example.com, b@example.com, \r\n" in r.sent_text[0]


def test_uuid_username_and_domain_sources(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    r = runner(db, f"""
        $avp(s:uuid) = "uuid-{u}";
        $avp(s:a) = "by-uuid";
        {rc('avp_db_store("$avp(s:uuid)", "$avp(s:a)")')}
        $avp(s:b) = "by-const";
        {rc(f'avp_db_store("const-{u}", "$avp(s:b)")')}
        $avp(s:c) = "by-username";
        {rc('avp_db_store("$ru/username", "$avp(s:c)")')}
        $avp(s:d) = "by-domain";
        {rc(f'avp_db_store("sip:x@dom-{u}.example/domain", "$avp(s:d)")')}
        avp_delete("*");
        {rc(f'avp_db_load("uuid-{u}", "$avp(s:a)")')}
        {rc('avp_db_load("$avp(s:nouuid)", "$avp(s:b)")')}
        {rc(f'avp_db_load("const-{u}", "$avp(s:b)")')}
        {rc('avp_db_load("$ru/username", "$avp(s:c)")')}
        {rc('avp_db_load("$ru/domain", "$avp(s:c)")')}
        {rc(f'avp_db_load("sip:{u}@dom-{u}.example/domain", "$avp(s:d)")')}
        {rc('avp_db_load("$ru/uri", "$avp(s:bad)")')}
        {rc('avp_db_load("not a uri/uri", "$avp(s:bad)")')}
        xlog(">a=$avp(s:a) b=$avp(s:b) c=$avp(s:c) d=$avp(s:d)\\n");
        """)
    r.request(msg(ruri_user=u))
    assert lines(r) == ["rc=1"] * 4 + ["rc=1", "rc=-1", "rc=1", "rc=1", "rc=-1", "rc=1",
                                       "rc=-1", "rc=-1",
                                       "a=by-uuid b=by-const c=by-username d=by-domain"]
    got = rows(url, "SELECT uuid, username, domain, value FROM usr_preferences "
                    "WHERE uuid LIKE ? OR username = ? OR domain = ?",
               [f"%{u}", u, f"dom-{u}.example"])
    assert got == [("", "", f"dom-{u}.example", "by-domain"), ("", u, "", "by-username"),
                   (f"const-{u}", "", "", "by-const"), (f"uuid-{u}", "", "", "by-uuid")]


def test_use_domain(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    r = runner(db, """
        $avp(s:p) = "with-domain";
        """ + rc('avp_db_store("$fu", "$avp(s:p)")') + """
        avp_delete("$avp(s:p)");
        """ + rc('avp_db_load("$fu", "$avp(s:p)")') + """
        """, params='modparam("avpops", "use_domain", 1)\n')
    r.request(msg(u))
    assert lines(r) == ["rc=1", "rc=1"]
    assert rows(url, "SELECT username, domain FROM usr_preferences WHERE username = ?", [u]) \
        == [(u, "example.com")]
    r2 = runner(db, rc('avp_db_load("sip:' + u + '@other.example", "$avp(s:p)")')
                + rc('avp_db_load("sip:' + u + '@example.com/uri", "$avp(s:p)")'),
                params='modparam("avpops", "use_domain", 1)\n')
    r2.request(msg())
    assert lines(r2) == ["rc=-1", "rc=1"]  # a string source is a uuid unless /uri


def test_flags_names_load_every_attribute(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    con = connect(url)
    try:
        for attr, typ, value in (("color", 0, "red"), ("7", 2, "seven"), ("8", 3, "88"),
                                 ("size", 1, "12"), ("bad", 1, "not-int")):
            con.insert("usr_preferences", ("uuid", "attribute", "type", "value"),
                       (f"f-{u}", attr, typ, value))
    finally:
        con.close()
    show = 'xlog(">c=$avp(s:color) s=$avp(s:size) i7=$avp(i:7) i8=$avp(i:8)\\n"); avp_delete("a");'
    r = runner(db, rc(f'avp_db_load("f-{u}", "s")') + show
               + rc(f'avp_db_load("f-{u}", "i")') + show
               + rc(f'avp_db_load("f-{u}", "A12")') + show
               + '$var(sum) = $avp(i:8) + 1;'
               + rc(f'avp_db_load("f-{u}", "$avp(s:bad)")')
               + rc(f'avp_db_load("f-{u}", "$avp(i:7)")')
               + rc(f'avp_db_load("f-{u}", "$avp(s:7)")') + show)
    r.request(msg())
    assert lines(r) == [
        "rc=1", "c=red s=12 i7=<null> i8=<null>",
        "rc=1", "c=<null> s=<null> i7=seven i8=88",
        "rc=1", "c=red s=12 i7=seven i8=88",
        "rc=-1",  # the row says integer, the value is not one: skipped
        "rc=1", "rc=-1",  # $avp(s:7) wants a string name: the row names an integer id
        "c=<null> s=<null> i7=seven i8=<null>",
    ]


def test_store_by_flags_and_dynamic_names(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    r = runner(db, f"""
        $avp(s:x) = "sx"; $avp(i:9) = 99; $avp(s:y) = 5;
        {rc(f'avp_db_store("s-{u}", "s")')}
        {rc(f'avp_db_store("s-{u}", "a")')}
        $var(name) = "dyn";
        $avp($var(name)) = "dynamic";
        {rc(f'avp_db_store("s-{u}", "$avp($var(name))")')}
        avp_delete("a");
        {rc(f'avp_db_load("s-{u}", "$avp($var(name))")')}
        xlog(">dyn=$avp(s:dyn)\\n");
        """)
    r.request(msg())
    assert lines(r) == ["rc=1", "rc=1", "rc=1", "rc=1", "dyn=dynamic"]
    assert rows(url, "SELECT attribute, type, value FROM usr_preferences WHERE uuid = ?",
                [f"s-{u}"]) == [("9", 3, "99"), ("dyn", 0, "dynamic"), ("x", 0, "sx"),
                                ("y", 1, "5")]


def test_delete(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    r = runner(db, f"""
        $avp(s:k1) = "1"; $avp(s:k2) = "2"; $avp(s:k3) = "3";
        avp_db_store("$ru/username", "a");
        {rc('avp_db_delete("$ru/username", "$avp(s:k1)")')}
        {rc('avp_db_delete("$ru/username", "$avp(s:nothere)")')}
        """)
    r.request(msg(ruri_user=u))
    assert lines(r) == ["rc=1", "rc=1"]  # deleting nothing is fine, as in 1.6
    assert rows(url, "SELECT attribute FROM usr_preferences WHERE username = ?", [u]) \
        == [("k2",), ("k3",)]
    r = runner(db, rc('avp_db_delete("$ru/username", "s")'))
    r.request(msg(ruri_user=u))
    assert lines(r) == ["rc=1"]
    assert rows(url, "SELECT attribute FROM usr_preferences WHERE username = ?", [u]) == []


def test_table_override_and_scheme(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    r = runner(db, f"""
        $avp(s:t) = "in-prefs2";
        {rc(f'avp_db_store("t-{u}", "$avp(s:t)/prefs2")')}
        avp_delete("$avp(s:t)");
        {rc(f'avp_db_load("t-{u}", "$avp(s:t)")')}
        {rc(f'avp_db_load("t-{u}", "$avp(s:t)/prefs2")')}
        {rc('avp_db_load("u-1", "$avp(s:name)/$names")')}
        {rc('avp_db_load("u-1", "$avp(s:age)/$AGES")')}
        {rc('avp_db_load("$fu", "$avp(i:5)/$by_login")')}
        {rc('avp_db_load("u-2", "$avp(s:age)/$ages")')}
        {rc(f'avp_db_delete("t-{u}", "$avp(s:t)/prefs2")')}
        $var(next) = $avp(s:age) + 1;
        xlog(">t=$avp(s:t) name=$avp(s:name) next=$var(next) i5=$avp(i:5)\\n");
        """, params=(
        'modparam("avpops", "db_scheme", "names:table=subs;value_col=first_name")\n'
        'modparam("avpops", "db_scheme", "ages : table = subs ; value_col = age ; '
        'value_type = integer")\n'
        'modparam("avpops", "db_scheme", "by_login:username_col=login;domain_col=realm;'
        'value_col=first_name;table=subs")\n'))
    r.request(msg())
    assert lines(r) == ["rc=1", "rc=-1", "rc=1", "rc=1", "rc=1", "rc=1", "rc=-1", "rc=1",
                        "t=in-prefs2 name=Alice next=34 i5=Alice"]
    assert rows(url, "SELECT value FROM prefs2 WHERE uuid = ?", [f"t-{u}"]) == []


def test_scheme_errors_at_startup(db: tuple[str, str]) -> None:
    with pytest.raises(CfgError, match="doesn't support DB schemes"):
        runner(db, 'avp_db_store("x", "$avp(s:a)/$s1");',
               params='modparam("avpops", "db_scheme", "s1:table=subs")\n')
    with pytest.raises(CfgError, match="scheme <nope> not found"):
        runner(db, 'avp_db_load("x", "$avp(s:a)/$nope");')
    with pytest.raises(CfgError, match="complete AVP name"):
        runner(db, 'avp_db_load("x", "s/$s1");',
               params='modparam("avpops", "db_scheme", "s1:table=subs")\n')
    with pytest.raises(CfgError, match="unknown source flag"):
        runner(db, 'avp_db_load("$ru/user", "s");')
    with pytest.raises(CfgError, match="bad avp flags"):
        runner(db, 'avp_db_load("$ru", "sx");')


def test_db_ids(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    back = query(f"select value from usr_preferences where uuid='id-{u}'", "$avp(s:back)", "1")
    r = runner(db, f"""
        $avp(s:via1) = "one";
        {rc(f'avp_db_store("id-{u}", "$avp(s:via1)", "1")')}
        {back}
        xlog(">back=$avp(s:back)\\n");
        """, params=f'modparam("avpops", "db_url", "1 {url}")\n')
    r.request(msg())
    assert lines(r) == ["rc=1", "rc=1", "back=one"]
    with pytest.raises(CfgError, match="no db_url with id <2>"):
        runner(db, 'avp_db_load("$ru", "s", "2");')
    with pytest.raises(CfgError, match="bad db_url number"):
        runner(db, 'avp_db_load("$ru", "s", "x");')


# ---------------------------------------------------------------- avp_db_query


def test_query_rows_make_avp_stacks(db: tuple[str, str]) -> None:
    u = user()
    two_cols = query(f"SELECT value, attribute FROM usr_preferences WHERE uuid = 'q-{u}' "
                     "AND attribute = 'k' ORDER BY value", "$avp(s:val);$avp(s:att)")
    default_names = query(f"SELECT type, value, NULL, '' FROM usr_preferences "
                          f"WHERE uuid = 'q-{u}' AND attribute = 'n'")
    no_rows = query("SELECT value FROM usr_preferences WHERE 1 = 0", "$avp(s:none)")
    short_dest = query(f"SELECT value, attribute FROM usr_preferences WHERE uuid = 'q-{u}' "
                       "AND attribute = 'n'", "$avp(s:only)")
    r = runner(db, f"""
        $avp(s:k) = "v1"; $avp(s:k) = "v2"; $avp(s:k) = "v3"; $avp(s:n) = 10;
        avp_db_store("q-{u}", "a");
        {two_cols}
        xlog(">val=$(avp(s:val)[*]) att=$(avp(s:att)[*])\\n");
        {default_names}
        $var(sum) = $avp(i:1) + 1;
        xlog(">i1=$avp(i:1) sum=$var(sum) i2=$avp(i:2) i3=$avp(i:3) i4=$avp(i:4)\\n");
        {no_rows}
        {short_dest}
        xlog(">only=$(avp(s:only)[*]) none=$avp(s:none)\\n");
        """)
    r.request(msg())
    assert lines(r) == ["rc=1", "val=v1, v2, v3,  att=k, k, k, ",  # first row on top
                        "rc=1", "i1=1 sum=2 i2=10 i3=<null> i4=<null>",  # NULL, '' skipped
                        "rc=1", "rc=1", "only=10,  none=<null>"]


def test_query_values_travel_verbatim(db: tuple[str, str]) -> None:
    url = db[0]
    u = user()
    insert = query("INSERT INTO usr_preferences (uuid, attribute, value, type, username, "
                   "domain) VALUES ('$avp(s:u)', 'tricky', '$avp(s:v)', 0, '', '')")
    select = query("SELECT value FROM usr_preferences WHERE uuid = '$avp(s:u)' "
                   "AND value = '$avp(s:v)'", "$avp(s:back)")
    in_quotes = query("SELECT value FROM usr_preferences WHERE uuid = '$avp(s:evil)'",
                      "$avp(s:leak)")
    bare = query("SELECT value FROM usr_preferences WHERE uuid = $avp(s:evil2)", "$avp(s:leak)")
    table = query("SELECT value FROM $avp(s:table) WHERE uuid = '-$avp(s:u)-'", "$avp(s:leak)")
    r = runner(db, f"""
        $avp(s:v) = $hdr(X-Tricky);
        $avp(s:u) = "w-{u}";
        {insert}
        {select}
        append_hf("X-Back: $avp(s:back)\\r\\n");
        $avp(s:evil) = "x' OR '1'='1";
        {in_quotes}
        $avp(s:evil2) = "'x' OR 1=1";
        {bare}
        $avp(s:table) = "usr_preferences";
        {table}
        xlog(">leak=$avp(s:leak)\\n");
        forward("127.0.0.1:5080");
        """)
    hdr = f"X-Tricky: {TRICKY}\r\n".encode()
    r.request(msg().replace(b"Content-Length", hdr + b"Content-Length"))
    assert lines(r) == ["rc=1", "rc=1", "rc=1", "rc=1", "rc=1", "leak=<null>"]
    assert rows(url, "SELECT value FROM usr_preferences WHERE uuid = ?", [f"w-{u}"]) \
        == [(TRICKY,)]
    assert f"\r\nX-Back: {TRICKY}\r\n" in r.sent_text[0]


def test_query_errors_are_logged_not_raised(db: tuple[str, str]) -> None:
    r = runner(db, query("SELECT nothing FROM no_such_table")
               + rc('avp_db_load("x", "$avp(s:a)/no_such_table")')
               + rc('avp_db_delete("x", "$avp(s:a)/no_such_table")')
               + '$avp(s:a) = 1;'
               + rc('avp_db_store("x", "$avp(s:a)/no_such_table")')
               + query("SELECT ?")
               + query("SELECT '" + "x" * 1100 + "'"))
    r.request(msg())
    text = r.log_text()
    assert lines(r) == ["rc=-1"] * 6
    assert "raw_query failed" in text and "db_load failed" in text
    assert "db_delete failed" in text and "insert failed" in text
    assert "buf_size" in text


def test_query_unterminated_quote_fails_at_startup(db: tuple[str, str]) -> None:
    with pytest.raises(CfgError, match="unterminated"):
        runner(db, 'avp_db_query("SELECT 1 WHERE a = ' + "'$ru" + '");')


def test_missing_driver_module_fails_at_startup(db: tuple[str, str]) -> None:
    url, _ = db
    with pytest.raises(ValueError, match="db_"):
        ScriptRunner(f'modparam("avpops", "db_url", "{url}")\nroute {{ exit; }}',
                     modules=["avpops"])


def test_loaded_avps_keep_their_db_mark_into_failure_route(db: tuple[str, str]) -> None:
    # tm keeps the AVPs' flag bits with the transaction, so values loaded in the
    # request route are not stored again from the failure route
    from .tm.helpers import feed_reply, reply_to

    url, driver = db
    u = user()
    con = connect(url)
    try:
        con.insert("usr_preferences", ("uuid", "username", "domain", "attribute", "type",
                                       "value"), ("", u, "", "email", 0, "x@example.com"))
    finally:
        con.close()
    cfg = (f'modparam("avpops", "db_url", "{url}")\n'
           "route {\n" + rc('avp_db_load("$fu", "$avp(s:email)")') + "\n"
           '    t_on_failure("1");\n    t_relay("udp:127.0.0.1:5099");\n}\n'
           "failure_route[1] {\n" + rc('avp_db_store("$fu", "$avp(s:email)")') + "\n"
           '    $avp(s:email) = "new@example.com";\n'
           + rc('avp_db_store("$fu", "$avp(s:email)")') + "\n}\n")
    r = ScriptRunner(cfg, modules=["sl", "tm", "textops", driver, "avpops"], stats=True)
    _RUNNERS.append(r)
    r.request(msg(u))
    fwd = r.sent[-1][2]
    feed_reply(r, reply_to(fwd, 486, "Busy Here"), src=("127.0.0.1", 5099))
    # load 1; in failure_route: nothing new to store (-1), then the new value only (1)
    assert lines(r) == ["rc=1", "rc=-1", "rc=1"]
    assert rows(url, "SELECT value FROM usr_preferences WHERE username = ?", [u]) == [
        ("new@example.com",), ("x@example.com",)]
