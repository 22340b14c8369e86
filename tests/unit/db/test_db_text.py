"""db_text: 1.6's table files read and written byte for byte, typed values,
auto increment, reloads by db_mode, no lost rows across processes, located errors."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import pytest

from sipserver.core.exports import Registry
from sipserver.core.modload import load_module
from sipserver.db.api import (
    CAP_INSERT,
    CAP_QUERY,
    CAP_RAW_QUERY,
    CAP_REPLACE,
    DbError,
    check_table_version,
    db_bind,
    parse_db_url,
    table_version,
)
from sipserver.modules import db_text
from sipserver.modules.db_text import TextConnection, open_connection, write_table
from sipserver.shm import Counters, LockSet, Segment

from ..shm.util import in_children

ALL_TYPES = [("id", "int", False, True), ("n", "int", True, False),
             ("d", "double", True, False), ("s", "string", True, False),
             ("b", "blob", True, False), ("t", "datetime", True, False)]


def connect(path: Path | str, mode: int = 0) -> TextConnection:
    """A connection with its own per-process state (as a fresh process has)."""
    reg = Registry()
    mod = load_module(reg, "db_text.so")
    mod.params["db_mode"] = mode
    return open_connection(parse_db_url(f"text://{os.path.abspath(path)}"), mod)


def put(path: Path, name: str, text: str | bytes) -> Path:
    p = path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def bump_mtime(p: Path) -> None:
    """Make a same-size rewrite visible however coarse the clock is."""
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# ---------------------------------------------------------------- binding


def test_bind_through_the_registry(tmp_path: Path) -> None:
    reg = Registry()
    load_module(reg, "db_text.so")
    binding = db_bind(reg, f"text://{tmp_path}")
    assert binding.driver == "db_text"
    assert binding.caps & CAP_QUERY and binding.caps & CAP_INSERT
    assert not binding.caps & (CAP_REPLACE | CAP_RAW_QUERY)
    con = binding.connect()
    assert isinstance(con, TextConnection)


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DbError, match="does not exist"):
        connect(tmp_path / "nope")


def test_relative_url_starts_at_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "etc" / "db").mkdir(parents=True)
    write_table(tmp_path / "etc" / "db", "version",
                [("table_name", "string", False, False), ("table_version", "int", False, False)],
                [("acc", 6)])

    class Rt:
        config = {"cfg_file": str(tmp_path / "etc" / "sipserver.cfg")}
        cfg_dir = str(tmp_path / "etc")  # what Runtime derives from cfg_file
        shm = None

    mod = load_module(Registry(), "db_text.so")
    mod.rt = Rt()
    db_text.mod_init(mod)
    con = open_connection(parse_db_url("text://db"), mod)
    assert table_version(con, "acc") == 6


def test_relative_url_without_config_file_uses_cwd(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "db").mkdir()
    put(tmp_path / "db", "version", "table_name(str) table_version(int)\nacc:6\n")
    monkeypatch.chdir(tmp_path)
    con = open_connection(parse_db_url("text://db"), load_module(Registry(), "db_text.so"))
    assert table_version(con, "acc") == 6


def test_bad_db_mode(tmp_path: Path) -> None:
    mod = load_module(Registry(), "db_text.so")
    mod.params["db_mode"] = 2
    with pytest.raises(DbError, match="db_mode"):
        db_text.mod_init(mod)


# ---------------------------------------------------------------- 1.6 files


SUBSCRIBER_16 = (
    "id(int,auto) username(string) domain(string) password(string) "
    "email_address(string) ha1(string) ha1b(string) rpid(string,null) \n"
    "1:alice:example.com:secret:alice@example.com:"
    "8ec7e4c2e4d2a3e0d1c9e5c5f5c1a7a1:0f3e9c1d5b7a2c4e6f8a0b2d4c6e8f01:\n"
    "2:bob:example.com:pw\\:with\\:colons:bob@example.com:aa:bb:sip\\:bob@example.com\n"
)
VERSION_16 = ("table_name(string) table_version(int) \n"
              "acc:6\nlocation:1005\nsubscriber:6\n")


def test_reads_16_sample_tables(tmp_path: Path) -> None:
    put(tmp_path, "subscriber", SUBSCRIBER_16)
    put(tmp_path, "version", VERSION_16)
    con = connect(tmp_path)
    check_table_version(con, "location", 1005)
    check_table_version(con, "subscriber", 6)
    with pytest.raises(DbError, match="invalid table version"):
        check_table_version(con, "location", 1004)
    assert table_version(con, "dialog") is None
    res = con.query("subscriber", ["username", "domain"], None, ["BOB", "Example.COM"],
                    ["password", "rpid", "id"])
    assert res.columns == ("password", "rpid", "id")
    assert res.rows == [("pw:with:colons", "sip:bob@example.com", 2)]
    alice = con.query("subscriber", ["USERNAME"], None, ["alice"]).dicts()[0]
    assert alice["rpid"] is None and alice["ha1"].startswith("8ec7")
    # the next auto id follows the largest in the file
    con.insert("subscriber", ["username", "domain", "password", "email_address", "ha1",
                              "ha1b"], ["carol", "example.com", "x", "", "h1", "h2"])
    assert con.query("subscriber", ["username"], None, ["carol"], ["id"]).rows == [(3,)]


def test_writes_back_in_16_format_and_keeps_untouched_rows(tmp_path: Path) -> None:
    p = put(tmp_path, "subscriber", SUBSCRIBER_16)
    con = connect(tmp_path)
    assert con.update("subscriber", ["id"], None, [1], ["rpid"], ["sip:a@x"]) == 1
    lines = p.read_text().split("\n")
    # header normalised as 1.6 prints it (no trailing space), rows untouched but row 1
    assert lines[0] == ("id(int,auto) username(string) domain(string) password(string) "
                        "email_address(string) ha1(string) ha1b(string) rpid(string,null)")
    assert lines[1].endswith(":0f3e9c1d5b7a2c4e6f8a0b2d4c6e8f01:sip\\:a@x")
    assert lines[2] == SUBSCRIBER_16.split("\n")[2]
    assert lines[3] == ""


# ---------------------------------------------------------------- types


def test_round_trip_of_every_type(tmp_path: Path) -> None:
    write_table(tmp_path, "t", ALL_TYPES)
    when = datetime.datetime(2021, 3, 4, 5, 6, 7)
    con = connect(tmp_path)
    con.insert("t", ["n", "d", "s", "b", "t"], [-42, 2.5, "héllo", b"\x00\x01\xfe\xff", when])
    con.insert("t", ["n", "d", "s", "b", "t"], [2**40, 0.1234567891234, "x", b"y", 0])
    con.insert("t", ["n", "d"], [0, -0.25])
    rows = connect(tmp_path).query("t", order="id").rows  # a new process reads the file
    assert rows == [
        (1, -42, 2.5, "héllo", b"\x00\x01\xfe\xff", when),
        (2, 2**40, 0.1234567891234, "x", b"y", datetime.datetime.fromtimestamp(0)),
        (3, 0, -0.25, None, None, None),
    ]
    assert [type(v) for v in rows[0]] == [int, int, float, str, bytes, datetime.datetime]
    text = (tmp_path / "t").read_bytes()
    assert text.split(b"\n")[0] == (b"id(int,auto) n(int,null) d(double,null) s(string,null) "
                                    b"b(blob,null) t(time,null)")
    stamp = int(time.mktime(when.timetuple()))
    assert b"\n1:-42:2.50:h\xc3\xa9llo:\\0\x01\xfe\xff:%d\n" % stamp in text
    assert b"\n3:0:-0.25:::\n" in text


def test_double_written_as_16_does_unless_that_loses_digits(tmp_path: Path) -> None:
    write_table(tmp_path, "t", [("d", "double", False, False)])
    con = connect(tmp_path)
    for v in (1.0, 0.5, -3.25, 1e-7, 123456789.125, 1e22):
        con.insert("t", ["d"], [v])
    assert (tmp_path / "t").read_text().split("\n")[1:-1] == [
        "1.00", "0.50", "-3.25", "0.0000001", "123456789.125", "10000000000000000000000.00"]
    assert [r[0] for r in connect(tmp_path).query("t").rows] == [
        1.0, 0.5, -3.25, 1e-7, 123456789.125, 1e22]
    with pytest.raises(DbError, match="cannot store"):
        con.insert("t", ["d"], [float("inf")])
    # 1.6 reads "1." and leading minus; ints are accepted for a double column
    put(tmp_path, "u", "d(double) n(int)\n1.:-7\n-0.5:3\n")
    con = connect(tmp_path)
    assert con.query("u").rows == [(1.0, -7), (-0.5, 3)]
    con.insert("u", ["d", "n"], [2, "12"])
    assert con.query("u", ["n"], None, [12]).rows == [(2.0, 12)]


def test_every_escape_round_trips(tmp_path: Path) -> None:
    write_table(tmp_path, "t", [("s", "str", False, False), ("b", "blob", False, False)])
    nasty = "a:b\\c\nd\re\tf\0g::\\\\"
    con = connect(tmp_path)
    con.insert("t", ["s", "b"], [nasty, nasty.encode()])
    line = (tmp_path / "t").read_bytes().split(b"\n")[1]
    esc = b"a\\:b\\\\c\\nd\\re\\tf\\0g\\:\\:\\\\\\\\"
    assert line == esc + b":" + esc
    assert connect(tmp_path).query("t").rows == [(nasty, nasty.encode())]
    # hand-written escapes read as 1.6 reads them
    put(tmp_path, "h", "s(str)\nx\\ty\\0z\\:w\\\\\n")
    assert connect(tmp_path).query("h").rows == [("x\ty\0z:w\\",)]


def test_null_versus_empty_string(tmp_path: Path) -> None:
    write_table(tmp_path, "t", [("id", "int", False, True), ("opt", "str", True, False),
                                ("req", "str", False, False), ("bl", "blob", False, False)])
    con = connect(tmp_path)
    con.insert("t", ["opt", "req", "bl"], [None, "", b""])
    con.insert("t", ["opt", "req", "bl"], ["", "x", b"y"])
    con.insert("t", ["opt", "req", "bl"], ["v", "y", b"z"])
    assert (tmp_path / "t").read_text().split("\n")[1:4] == ["1:::", "2::x:y", "3:v:y:z"]
    rows = connect(tmp_path).query("t", order="id").rows
    # a NOT NULL column keeps "", a null column cannot tell "" from NULL (1.6 format)
    assert rows == [(1, None, "", b""), (2, None, "x", b"y"), (3, "v", "y", b"z")]
    assert connect(tmp_path).query("t", ["opt"], None, [None], ["id"]).rows == [(1,), (2,)]
    with pytest.raises(DbError, match="req needs a value"):
        con.insert("t", ["opt", "req", "bl"], ["a", None, b""])
    with pytest.raises(DbError, match="cannot be NULL"):
        con.update("t", [], None, [], ["req"], [None])


def test_values_of_a_near_type_are_converted(tmp_path: Path) -> None:
    # 1.6's dbtext schemas store datetime fields in int columns
    write_table(tmp_path, "loc", [("expires", "int", False, False), ("q", "double", False, False),
                                  ("cseq", "string", False, False), ("t", "datetime", False, False)])
    when = datetime.datetime(2030, 1, 1, 0, 0, 0)
    epoch = int(time.mktime(when.timetuple()))
    con = connect(tmp_path)
    con.insert("loc", ["expires", "q", "cseq", "t"], [when, 1, 42, epoch])
    assert con.query("loc").rows == [(epoch, 1.0, "42", when)]
    assert con.query("loc", ["expires"], [">"], [when - datetime.timedelta(seconds=1)]).rows
    assert con.query("loc", ["t"], ["<="], [epoch], ["cseq"]).rows == [("42",)]
    with pytest.raises(DbError, match="cannot take"):
        con.insert("loc", ["expires", "q", "cseq", "t"], ["soon", 1, "1", when])
    with pytest.raises(DbError, match="cannot take"):
        con.query("loc", ["q"], None, [b"x"])


# ---------------------------------------------------------------- operations


def test_auto_increment(tmp_path: Path) -> None:
    write_table(tmp_path, "t", [("id", "int", False, True), ("v", "str", False, False)])
    con = connect(tmp_path)
    for v in "abc":
        con.insert("t", ["v"], [v])
    con.insert("t", ["id", "v"], [10, "d"])
    con.insert("t", ["v"], ["e"])
    assert con.query("t", columns=["id", "v"]).rows == [
        (1, "a"), (2, "b"), (3, "c"), (10, "d"), (11, "e")]
    # an empty auto field in a hand-written file is numbered after the largest id
    put(tmp_path, "h", "id(int,auto) v(str)\n7:x\n:y\n")
    assert connect(tmp_path).query("h").rows == [(7, "x"), (8, "y")]


def test_query_operators_order_and_case(tmp_path: Path) -> None:
    put(tmp_path, "t", "id(int) name(str) score(double,null)\n"
                       "1:Alice:3.5\n2:bob:\n3:carol:1.25\n4:ALICE:9\n")
    con = connect(tmp_path)

    def ids(keys, ops, values, order=None):
        return [r[0] for r in con.query("t", keys, ops, values, ["id"], order).rows]

    assert ids(["name"], None, ["alice"]) == [1, 4]  # 1.6 compares strings caselessly
    assert ids(["name"], ["<"], ["BOB"]) == [1, 4]
    assert ids(["name"], ["!="], ["alice"]) == [2, 3]
    assert ids(["name"], ["<>"], ["Bob"]) == [1, 3, 4]
    assert ids(["score"], [">"], [2]) == [1, 4]  # NULL matches no comparison
    assert ids(["score"], ["<="], [3.5]) == [1, 3]
    assert ids(["score"], [">="], [3.5]) == [1, 4]
    assert ids(["score"], None, [None]) == [2]
    assert ids(["score"], ["!="], [None]) == [1, 3, 4]
    assert ids(["score"], ["<"], [None]) == []
    assert ids(["id", "name"], [">", "="], [1, "alice"]) == [4]
    assert ids([], None, [], order="score") == [2, 3, 1, 4]  # NULL first, like MySQL
    assert ids([], None, [], order="NAME") in ([1, 4, 2, 3], [4, 1, 2, 3])
    assert con.query("t", ["id"], None, [99]).rows == []
    with pytest.raises(DbError, match="no column nope"):
        con.query("t", ["nope"], None, [1])
    with pytest.raises(DbError, match="no column nope"):
        con.query("t", columns=["nope"])
    with pytest.raises(DbError, match="unknown operator"):
        con.query("t", ["id"], ["LIKE"], [1])
    with pytest.raises(DbError, match="2 keys, 1 values"):
        con.query("t", ["id", "name"], None, [1])
    with pytest.raises(DbError, match="table missing does not exist"):
        con.query("missing")
    with pytest.raises(DbError, match="bad table name"):
        con.query("../t")


def test_update_and_delete(tmp_path: Path) -> None:
    put(tmp_path, "t", "id(int,auto) name(str) n(int)\n1:a:1\n2:b:2\n3:c:3\n")
    con = connect(tmp_path)
    assert con.update("t", ["n"], [">="], [2], ["name", "n"], ["x", 0]) == 2
    assert con.update("t", ["n"], None, [99], ["name"], ["y"]) == 0
    assert con.query("t", columns=["name", "n"]).rows == [("a", 1), ("x", 0), ("x", 0)]
    assert con.delete("t", ["name"], None, ["X"]) == 2
    assert con.delete("t", ["name"], None, ["zzz"]) == 0
    assert (tmp_path / "t").read_text() == "id(int,auto) name(str) n(int)\n1:a:1\n"
    assert con.delete("t") == 1
    assert (tmp_path / "t").read_text() == "id(int,auto) name(str) n(int)\n"
    con.insert("t", ["name", "n"], ["z", 5])  # ids are not reused within a process
    assert con.query("t", columns=["id"]).rows == [(4,)]


def test_unsupported_operations_and_closed_connection(tmp_path: Path) -> None:
    put(tmp_path, "t", "id(int)\n1\n")
    con = connect(tmp_path)
    for call in (lambda: con.replace("t", ["id"], [1]),
                 lambda: con.insert_update("t", ["id"], [1]),
                 lambda: con.raw_query("select 1"),
                 con.last_inserted_id):
        with pytest.raises(DbError, match="not supported"):
            call()
    with pytest.raises(DbError, match="given twice"):
        con.insert("t", ["id", "ID"], [1, 2])
    con.close()
    con.close()
    with pytest.raises(DbError, match="closed"):
        con.query("t")


# ---------------------------------------------------------------- freshness


def test_db_mode_1_reloads_a_changed_file(tmp_path: Path) -> None:
    p = put(tmp_path, "t", "id(int) v(str)\n1:a\n")
    con = connect(tmp_path, mode=1)
    assert con.query("t", columns=["v"]).rows == [("a",)]
    p.write_text("id(int) v(str)\n1:b\n")
    bump_mtime(p)
    assert con.query("t", columns=["v"]).rows == [("b",)]


def test_db_mode_0_keeps_its_copy_but_never_loses_hand_edits(tmp_path: Path) -> None:
    p = put(tmp_path, "t", "id(int) v(str)\n1:a\n")
    con = connect(tmp_path, mode=0)
    assert con.query("t", columns=["v"]).rows == [("a",)]
    p.write_text("id(int) v(str)\n1:b\n2:hand\n")
    bump_mtime(p)
    assert con.query("t", columns=["v"]).rows == [("a",)]  # loaded once
    con.insert("t", ["id", "v"], [3, "c"])  # a write re-reads the file under its lock
    assert con.query("t", columns=["v"]).rows == [("b",), ("hand",), ("c",)]
    assert p.read_text() == "id(int) v(str)\n1:b\n2:hand\n3:c\n"


def test_db_mode_0_sees_what_other_processes_wrote(tmp_path: Path) -> None:
    """Writers bump a shared generation counter: 1.6's shared cache, without one."""
    seg = Segment(64 * 1024)
    gens = Counters(seg, db_text.GEN_SLOTS, LockSet(2))
    put(tmp_path, "t", "id(int) v(str)\n1:a\n")

    def proc() -> TextConnection:
        con = connect(tmp_path, mode=0)
        con.db.gens = gens
        return con

    reader, writer = proc(), proc()
    assert reader.query("t", columns=["v"]).rows == [("a",)]
    writer.insert("t", ["id", "v"], [2, "b"])
    assert reader.query("t", columns=["v"]).rows == [("a",), ("b",)]
    seg.close()


def test_mod_init_makes_the_shared_counters(tmp_path: Path) -> None:
    class Rt:
        config: dict = {}
        cfg_dir = ""
        shm = Segment(64 * 1024)

    mod = load_module(Registry(), "db_text.so")
    mod.rt = Rt()
    db_text.mod_init(mod)
    con = open_connection(parse_db_url(f"text://{tmp_path}"), mod)
    assert isinstance(con.db.gens, Counters)
    Rt.shm.close()


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    write_table(tmp_path, "t", [("id", "int", False, True), ("who", "int", False, False),
                                ("n", "int", False, False)])
    per_child, children = 40, 4

    def child(i: int) -> None:
        con = connect(tmp_path, mode=i % 2)
        for n in range(per_child):
            con.insert("t", ["who", "n"], [i, n])
            if n % 10 == 0:
                con.update("t", ["who", "n"], None, [i, n], ["n"], [n])

    in_children(children, child, timeout=60)
    rows = connect(tmp_path).query("t").rows
    assert sorted((r[1], r[2]) for r in rows) == sorted(
        (i, n) for i in range(children) for n in range(per_child))
    assert sorted(r[0] for r in rows) == list(range(1, per_child * children + 1))
    assert sorted(os.listdir(tmp_path)) == ["t"]  # no temporary file left behind


def test_write_is_atomic_and_keeps_permissions(tmp_path: Path) -> None:
    p = put(tmp_path, "t", "id(int)\n1\n")
    p.chmod(0o640)
    ino = p.stat().st_ino
    connect(tmp_path).insert("t", ["id"], [2])
    st = p.stat()
    assert st.st_ino != ino  # a new file renamed over the old one
    assert st.st_mode & 0o777 == 0o640
    assert p.read_text() == "id(int)\n1\n2\n"


def test_a_symlinked_table_stays_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "db").mkdir()
    real = put(tmp_path / "shared", "version", "table_name(str) table_version(int)\n")
    (tmp_path / "db" / "version").symlink_to(real)
    connect(tmp_path / "db").insert("version", ["table_name", "table_version"], ["acc", 6])
    assert (tmp_path / "db" / "version").is_symlink()
    assert real.read_text() == "table_name(str) table_version(int)\nacc:6\n"


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize(("text", "line", "message"), [
    (b"", 1, "no column definitions"),
    (b"\n1:a\n", 1, "no column definitions"),
    (b"id(int) name\n", 1, "bad column definition"),
    (b"id(int) (str)\n", 1, "bad column definition"),
    (b"id(integer) v(quux)\n", 1, 'unknown type "quux"'),
    (b"id(str,auto)\n", 1, "bad attribute"),
    (b"id(int,auto) n(int,auto)\n", 1, "bad attribute"),
    (b"id(int,) \n", 1, "bad attribute"),
    (b"id(int) ID(str)\n", 1, "defined twice"),
    (b"id(int) v(str)\r\n1:a\r\n", 1, "CRLF"),
    (b"id(int) v(str)\n1:a\n2\n", 3, "1 fields, the header defines 2"),
    (b"id(int) v(str)\n1:a:b\n", 2, "3 fields"),
    (b"id(int) v(str)\n1:a\n\n\nx1:b\n", 5, 'bad integer "x1"'),
    (b"id(int) v(str)\n+1:a\n", 2, "bad integer"),
    (b"id(int) v(str)\n 1:a\n", 2, "bad integer"),
    (b"d(double)\n1e5\n", 2, 'bad number "1e5"'),
    (b"d(double)\n.5\n", 2, "bad number"),
    (b"t(time)\n2020-01-01\n", 2, "bad integer"),
    (b"id(int) v(str)\n:a\n", 2, "column id: empty value"),
    (b"v(str)\nab\\q\n", 2, 'bad escape "\\q"'),
    (b"v(str)\nab\\\n", 2, "bad escape"),
])
def test_malformed_files_give_located_errors(tmp_path: Path, text: bytes, line: int,
                                             message: str) -> None:
    p = put(tmp_path, "t", text)
    con = connect(tmp_path)
    with pytest.raises(DbError) as info:
        con.query("t")
    assert f"{p}:{line}:" in str(info.value)
    assert message in str(info.value)
    with pytest.raises(DbError, match=f"{p}:{line}:"):  # and no write goes through
        con.delete("t")
    assert p.read_bytes() == text


def test_header_spellings_16_accepts(tmp_path: Path) -> None:
    put(tmp_path, "t", "  a(INT , AUTO )  b( String ,NULL) c(s) d(dbl) e(Blob) f(t) g(datetime)\n"
                       "1::x:1:y:0:0\n")
    con = connect(tmp_path)
    when = datetime.datetime.fromtimestamp(0)
    assert con.query("t").rows == [(1, None, "x", 1.0, b"y", when, when)]
    con.delete("t", ["a"], None, [2])  # nothing matched: the file is not rewritten
    assert (tmp_path / "t").read_text().startswith("  a(INT")
    con.insert("t", ["c", "d", "e", "f", "g"], ["z", 2, b"w", 1, 1])
    assert (tmp_path / "t").read_text().split("\n")[0] == (
        "a(int,auto) b(string,null) c(str) d(double) e(blob) f(time) g(time)")


# ---------------------------------------------------------------- write_table


def test_write_table(tmp_path: Path) -> None:
    path = write_table(tmp_path, "location", [
        ("id", "int", False, True), ("username", "string", False, False),
        ("received", "str", True, False), ("q", "double", False, False),
        ("expires", "datetime", False, False), ("attr", "blob", True, False)])
    assert Path(path).read_text() == (
        "id(int,auto) username(string) received(str,null) q(double) expires(time) "
        "attr(blob,null)\n")
    with pytest.raises(FileExistsError):
        write_table(tmp_path, "location", [("id", "int", False, False)])
    write_table(tmp_path, "location", [("id", "int", False, False)], [(1,), (2,)], replace=True)
    assert Path(path).read_text() == "id(int)\n1\n2\n"
    when = datetime.datetime(2022, 2, 2, 2, 2, 2)
    write_table(tmp_path, "v", [("id", "int", False, True), ("t", "datetime", False, False),
                                ("s", "str", True, False)], [(None, when, None)])
    assert connect(tmp_path).query("v").rows == [(1, when, None)]
    with pytest.raises(ValueError, match="cannot be NULL"):
        write_table(tmp_path, "w", [("s", "str", False, False)], [(None,)])
    for bad in ([("x", "varchar", False, False)], [("x", "str", False, True)],
                [("a b", "int", False, False)], []):
        with pytest.raises(ValueError):
            write_table(tmp_path, "other", bad)
    with pytest.raises(ValueError, match="bad table name"):
        write_table(tmp_path, ".hidden", [("id", "int", False, False)])
