"""RFC 4475 / RFC 5118 torture messages: each handled as expected.tsv says.

Valid messages must parse with the right values; invalid ones must raise
ParseError with a reason; nothing else may ever come out of the parser.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sipserver.sip import ParseError, SipMsg, parse_message

TORTURE = Path(__file__).resolve().parents[3].parent / "shared" / "torture"


def _rows() -> list[dict[str, str]]:
    lines = [
        line
        for line in (TORTURE / "expected.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    return list(csv.DictReader(lines, delimiter="\t"))


ROWS = _rows() if TORTURE.is_dir() else []

# Where expected.tsv lets a liberal element accept an invalid message, this
# is what sipserver's parser does (True: parses; False: ParseError).
LIBERAL_CHOICE = {
    "lwsstart": False,  # strict request line: exactly one SP between parts
    "trws": False,
    "escruri": False,  # headers in a Request-URI
    "baddate": True,  # a proxy does not look at Date
    "regbadct": True,  # Contact is parsed on use; the URI itself is valid
    "badaspec": True,  # spaces inside <> are stripped
    "baddn": False,  # no empty line after the headers
    "badbranch": True,  # branch=z9hG4bK alone is still a branch
}


def _should_parse(row: dict[str, str]) -> bool:
    name, cls = row["name"], row["class"]
    if name in LIBERAL_CHOICE:
        return LIBERAL_CHOICE[name]
    return cls in ("valid", "valid-but-unusual")


def _touch_everything(msg: SipMsg) -> None:
    """Every typed view a module may ask for; valid messages must not fail."""
    msg.vias  # noqa: B018
    msg.from_.uri  # noqa: B018
    msg.to.uri  # noqa: B018
    msg.contacts  # noqa: B018
    msg.routes  # noqa: B018
    msg.record_routes  # noqa: B018
    msg.body  # noqa: B018
    for h in msg.headers:
        h.value  # noqa: B018


def test_corpus_is_complete() -> None:
    assert len(ROWS) == 61
    for row in ROWS:
        assert (TORTURE / f"{row['name']}.sip").is_file(), row["name"]


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_torture_message(row: dict[str, str]) -> None:
    data = (TORTURE / f"{row['name']}.sip").read_bytes()
    if _should_parse(row):
        msg = parse_message(data)
        assert isinstance(msg, SipMsg)
        if row["class"] == "valid":
            _touch_everything(msg)
    else:
        with pytest.raises(ParseError) as exc:
            parse_message(data)
        assert exc.value.reason
        assert "\n" not in exc.value.reason


def _parse(name: str) -> SipMsg:
    return parse_message((TORTURE / f"{name}.sip").read_bytes())


def test_wsinv_values() -> None:
    m = _parse("wsinv")
    assert m.method == "INVITE"
    assert m.ruri.host == "chair-dnrc.example.com"
    assert m.to.tag == "1918181833n"
    assert m.from_.tag == "98asjd8"
    assert m.from_.display == '"J Rosenberg \\\\\\""'
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.max_forwards == 68
    assert m.cseq.number == 9 and m.cseq.method == "INVITE"
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    vias = m.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert vias[0].host == "192.0.2.2" and vias[0].branch == "390skdjuw"
    assert vias[1].host == "spindle.example.com" and vias[1].branch == "z9hG4bK9ikj8"
    assert vias[2].host == "192.168.255.111" and vias[2].branch == "z9hG4bK30239"
    assert m.header("s").value == ""
    assert m.header_value("newfangledheader").startswith("newfangled value")
    (contact,) = m.contacts
    assert contact.display == '"Quoted string \\"\\""'
    assert contact.param("newparam").value == "newvalue"
    assert contact.param("secondparam").value is None
    assert contact.q == "0.33"
    assert m.routes[0].uri.lr
    assert len(m.body) == 150 and m.body.startswith("v=0")


def test_intmeth_values() -> None:
    m = _parse("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq.method == m.method
    assert m.ruri.host == "example.com"
    assert m.ruri.user.startswith("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    assert m.via1.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    ext = m.header("extensionHeader-!.%*+_`'~")
    assert ext is not None and ext.value.encode("latin-1") == "\ufeff\u5927\u505c\u96fb".encode()


def test_reply_values() -> None:
    m = _parse("noreason")
    assert not m.is_request and m.status == 100 and m.reason == ""
    m = _parse("unreason")
    assert m.status == 200
    assert m.reason.encode("latin-1").decode("utf-8").startswith("= 2**3 * 5**2 но сто")
    assert m.to.tag == "2229"


def test_dblreq_ignores_trailing_octets() -> None:
    m = _parse("dblreq")
    assert m.method == "REGISTER"
    assert m.body == ""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # compact "I:"
    assert b"INVITE" not in m.build()


def test_mpart01_binary_body_survives() -> None:
    raw = (TORTURE / "mpart01.sip").read_bytes()
    m = parse_message(raw)
    assert len(m.body_bytes) == m.content_length == 553
    assert b"\x00" in m.body_bytes
    assert m.build() == raw[: m.body_end]


def test_transports() -> None:
    m = _parse("transports")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_inv2543_no_branch_no_content_length() -> None:
    m = _parse("inv2543")
    assert m.via1.branch is None and m.via1.port is None
    assert m.from_.tag is None
    assert m.max_forwards is None and m.content_length is None
    assert m.body.startswith("v=0")


def test_ipv6_values() -> None:
    m = _parse("ipv6-good")
    assert m.ruri.host.startswith("[2001:db8:")
    m = _parse("port-ambiguous")
    assert m.ruri.port is None and m.ruri.host == "[2001:db8::10:5070]"
    m = _parse("port-unambiguous")
    assert m.ruri.port == 5070 and m.ruri.host == "[2001:db8::10]"
    m = _parse("via-received-param-with-delim")
    assert m.via1.received == "[2001:db8::9:255]"
    m = _parse("via-received-param-no-delim")
    assert m.via1.received == "2001:db8::9:255"
    m = _parse("ipv4-mapped-ipv6")
    assert m.via1.port == 19823


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("clerr", "Content-Length"),
        ("ncl", "Content-Length"),
        ("scalar02", "CSeq"),
        ("scalarlg", "CSeq"),
        ("bigcode", "status code"),
        ("quotbal", "quoted"),
        ("badinv01", "Via"),
        ("insuf", "missing"),
        ("multi01", "more than one"),
        ("mcl01", "more than one Content-Length"),
        ("mismatch01", "CSeq method"),
        ("badvers", "version"),
    ],
)
def test_invalid_reasons(name: str, fragment: str) -> None:
    with pytest.raises(ParseError) as exc:
        _parse(name)
    assert fragment.lower() in exc.value.reason.lower()


def test_badvers_is_505() -> None:
    with pytest.raises(ParseError) as exc:
        _parse("badvers")
    assert exc.value.status == 505
