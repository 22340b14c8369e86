"""textops: every function on a real message, checked on the rebuilt bytes."""

from __future__ import annotations

import re

import pytest

from sipserver.core.exports import FixupError, Registry
from sipserver.core.modload import load_module
from sipserver.core.reply import pending_reply_lumps
from sipserver.modules import sl, textops
from sipserver.modules.textops import RegexError, compile_posix, date_header

from .util import INVITE, call, cmd, fix, make_ctx, sent

SDP = (
    "v=0\n"
    "o=alice 2890844526 2890844526 IN IP4 10.0.0.1\n"
    "s=-\n"
    "c=IN IP4 10.0.0.1\n"
    "t=0 0\n"
    "m=audio 49170 RTP/AVP 0 8 97 101\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:97 speex/16000/2\n"
    "a=fmtp:97 mode=any\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "m=video 51372 RTP/AVP 31 32\n"
    "a=rtpmap:31 H261/90000\n"
    "a=rtpmap:32 MPV/90000\n"
)


def with_body(body: str, ctype: str = "application/sdp", msg: str = INVITE) -> str:
    crlf = body.replace("\n", "\r\n")
    return msg.replace("Content-Length: 0\n", f"Content-Type: {ctype}\nContent-Length: {len(crlf)}\n") + body


def built(ctx) -> str:
    return ctx.msg.build().decode("latin-1")


def test_load() -> None:
    assert load_module(Registry(), "textops.so").params == {}


def test_exported_arg_counts() -> None:
    have = {(c.name, c.nargs) for c in textops.exports.cmds}
    for name, n in [
        ("search", 1), ("search_body", 1), ("search_append", 2), ("search_append_body", 2),
        ("replace", 2), ("replace_body", 2), ("replace_all", 2), ("replace_body_all", 2),
        ("replace_body_atonce", 2), ("subst", 1), ("subst_uri", 1), ("subst_user", 1),
        ("subst_body", 1), ("append_hf", 1), ("append_hf", 2), ("insert_hf", 1), ("insert_hf", 2),
        ("append_urihf", 2), ("is_present_hf", 1), ("append_to_reply", 1), ("append_time", 0),
        ("remove_hf", 1), ("is_method", 1), ("has_body", 0), ("has_body", 1), ("is_privacy", 1),
        ("filter_body", 1), ("strip_body", 0), ("strip_body", 1), ("add_body", 1), ("add_body", 2),
        ("codec_exists", 1), ("codec_exists", 2), ("codec_exists_re", 1), ("codec_delete", 1),
        ("codec_delete", 2), ("codec_delete_re", 1), ("codec_delete_except_re", 1),
        ("codec_move_up", 1), ("codec_move_up", 2), ("codec_move_up_re", 1), ("codec_move_down", 1),
        ("codec_move_down", 2), ("codec_move_down_re", 1), ("is_audio_on_hold", 0),
    ]:  # fmt: skip
        assert (name, n) in have, (name, n)
    assert len(have) == len(textops.exports.cmds)


# ---------------------------------------------------------------- regex translation


@pytest.mark.parametrize(
    ("pattern", "text", "span"),
    [
        ("^to:.*BOB", "INVITE x\r\nTo: Bob <sip:bob@x>\r\n", (10, 26)),  # ICASE, ^ at line start
        ("[[:digit:]]+", "abc 123", (4, 7)),
        ("[^a]+", "bb\nbb", (0, 2)),  # REG_NEWLINE: [^a] stops at newline
        ("b$", "ab\r\nb", (4, 5)),
        (r"[\d]+", "a\\dd1", (1, 4)),  # backslash is literal inside brackets
        (r"\d", "x1d", (2, 3)),  # \d is a plain d
        ("a+?", "aaa", (0, 3)),  # stacked repetition, not a lazy one
        ("a{,2}b", "aab", (0, 3)),
        ("[]a]+", "x]a]", (1, 4)),
        (r"\<bob\>", "a bob b", (2, 5)),
        (r"(ab)\1", "xabab", (1, 5)),
    ],
)
def test_posix_regex(pattern: str, text: str, span: tuple[int, int]) -> None:
    m = compile_posix(pattern).search(text)
    assert m is not None and m.span() == span


@pytest.mark.parametrize("pattern", ["*a", "a|*b", "(a", "a{1", "x{", "[a", "[[:foo:]]", "[z-a]", "a\\"])
def test_posix_regex_errors(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_posix(pattern)


def test_posix_without_newline() -> None:
    rx = compile_posix("a.c$", newline=False)
    assert rx.search("a\nc") is not None
    assert rx.search("abc\n") is None


def test_bad_regex_is_a_fixup_error() -> None:
    with pytest.raises(FixupError):
        fix(textops.exports, "search", "a(")


# ---------------------------------------------------------------- search / replace


def test_search_sees_first_line_and_ignores_case() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "search", "^invite sip:BOB") == 1
    assert call(ctx, textops.exports, "search", "X-Nothing") == -1


def test_search_sees_original_not_changes() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "append_hf", "X-New: 1\r\n") == 1
    assert call(ctx, textops.exports, "search", "X-New") == -1


def test_search_body_and_empty_body() -> None:
    assert call(make_ctx(INVITE), textops.exports, "search_body", ".") == -1
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "search_body", "^m=video") == 1
    assert call(ctx, textops.exports, "search_body", "^invite") == -1


def test_search_append() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "search_append", "Call-ID: [^\r]*", ";x") == 1
    assert "Call-ID: a84b4c76e66710@pc33;x\r\n" in built(ctx)
    # the first line is not searched
    assert call(make_ctx(INVITE), textops.exports, "search_append", "^INVITE", "x") == -1


def test_replace_first_and_all() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "replace", "example\\.com", "example.net") == 1
    text = built(ctx)
    assert text.startswith("INVITE sip:bob@example.com SIP/2.0\r\n")  # not the first line
    assert "To: Bob <sip:bob@example.net>\r\nFrom: Alice <sip:alice@example.com>" in text
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "replace_all", "EXAMPLE\\.com", "x.org") == 1
    text = built(ctx)
    assert text.count("x.org") == 2 and text.count("example.com") == 1


def test_replace_all_empty_match_fails() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "replace_all", "q*", "x") == -1


def test_replace_body_variants() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "replace_body", "10\\.0\\.0\\.1", "192.0.2.5") == 1
    text = built(ctx)
    assert text.count("192.0.2.5") == 1
    body = text.split("\r\n\r\n", 1)[1]
    assert f"Content-Length: {len(body)}\r\n" in text
    assert len(body) == len(SDP.replace("\n", "\r\n")) + 1
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "replace_body_all", "^a=rtpmap:", "a=map:") == 1
    assert built(ctx).count("a=map:") == 6
    ctx = make_ctx(with_body(SDP))
    # at once: no REG_NEWLINE, so . crosses lines and ^ is the body start only
    assert call(ctx, textops.exports, "replace_body_atonce", "^v=0.*s=-", "v=0") == 1
    assert "\r\n\r\nv=0\r\nc=IN IP4" in built(ctx)
    assert call(make_ctx(with_body(SDP)), textops.exports, "replace_body_atonce", "^o=", "x") == -1


# ---------------------------------------------------------------- subst


def test_subst_groups_flags_and_pvs() -> None:
    ctx = make_ctx(INVITE)
    ctx.rt.script_vars["d"] = "example.org"
    assert call(ctx, textops.exports, "subst", "/^(From: .*)@[^>]*>/\\1@$var(d)>/") == 1
    assert "From: Alice <sip:alice@example.org>;tag=1928301774\r\n" in built(ctx)
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "subst", "/EXAMPLE.com/x/") == -1  # case-sensitive
    assert call(ctx, textops.exports, "subst", "/EXAMPLE.com/x/gi") == 1
    assert built(ctx).count("sip:bob@x") == 1  # the R-URI is not touched


def test_subst_escapes_and_uri() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "subst", "#^(Call-ID: )#\\1\\u\\t\\$\\##") == 1
    assert "Call-ID: sip:bob@example.com\t$#a84b4c76e66710@pc33\r\n" in built(ctx)


def test_subst_s_flag() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "subst_body", "/^v=0.*t=0 0\r\n//s") == 1
    assert "\r\n\r\nm=audio" in built(ctx)


@pytest.mark.parametrize("expr", ["/a/", "\\a\\b\\", "/a/b", "/a/b/x", "/a(/b/", "/a/$bad(/", "ab"])
def test_subst_fixup_errors(expr: str) -> None:
    with pytest.raises(FixupError):
        fix(textops.exports, "subst", expr)


def test_subst_uri_and_user() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "subst_uri", "/^sip:([a-z]+)@.*$/sip:\\1@10.0.0.9;transport=tcp/") == 1
    assert ctx.ruri == "sip:bob@10.0.0.9;transport=tcp"
    assert call(ctx, textops.exports, "subst_uri", "/nomatch//") == -1
    ctx = make_ctx(INVITE.replace("INVITE sip:bob@", "INVITE sip:bob:pw@"))
    assert call(ctx, textops.exports, "subst_user", "/^b(.*)$/+49\\1/") == 1
    assert ctx.ruri == "sip:+49ob:pw@example.com"
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "subst_user", "/^.*$//") == 1
    assert ctx.ruri == "sip:example.com"
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "subst_user", "/bob/alice/") == 1
    assert ctx.ruri == "sip:alice@example.com"


def test_set_ruri_user_keeps_the_rest() -> None:
    ctx = make_ctx(INVITE)
    ctx.set_ruri("sip:bob:pw@example.com:5061;transport=tcp?subject=x")
    assert textops.set_ruri_user(ctx, "") == 1
    assert ctx.ruri == "sip::pw@example.com:5061;transport=tcp?subject=x"
    ctx.set_ruri("sip:example.com;lr")
    assert textops.set_ruri_user(ctx, "carol") == 1
    assert ctx.ruri == "sip:carol@example.com;lr"
    ctx.set_ruri("tel:+4930123;phone-context=x")
    assert textops.set_ruri_user(ctx, "+4930999") == 1
    assert ctx.ruri == "tel:+4930999;phone-context=x"


# ---------------------------------------------------------------- headers


def test_append_and_insert_hf() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "append_hf", "X-A: $ru\r\n") == 1
    assert call(ctx, textops.exports, "insert_hf", "X-B: 1\r\n") == 1
    assert call(ctx, textops.exports, "append_hf", "X-C: 1\r\n", "f") == 1  # after From (compact name)
    assert call(ctx, textops.exports, "insert_hf", "X-D: 1\r\n", "CSeq") == 1
    assert call(ctx, textops.exports, "append_hf", "X-E: 1\r\n", "X-Missing") == 1  # -> after last
    assert built(ctx) == (
        "INVITE sip:bob@example.com SIP/2.0\r\n"
        "X-B: 1\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        "To: Bob <sip:bob@example.com>\r\n"
        "From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
        "X-C: 1\r\n"
        "Call-ID: a84b4c76e66710@pc33\r\n"
        "X-D: 1\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:alice@10.0.0.1>\r\n"
        "Content-Length: 0\r\n"
        "X-A: sip:bob@example.com\r\n"
        "X-E: 1\r\n"
        "\r\n"
    )


def test_append_urihf_uses_original_ruri() -> None:
    ctx = make_ctx(INVITE)
    ctx.set_ruri("sip:other@x")
    assert call(ctx, textops.exports, "append_urihf", "X-Orig: <", ">\r\n") == 1
    assert "X-Orig: <sip:bob@example.com>\r\n\r\n" in built(ctx)


def test_remove_and_is_present_hf() -> None:
    msg = INVITE.replace("Contact:", "X-Foo: 1\nx-foo: 2\nv: SIP/2.0/UDP 10.9.9.9\nContact:")
    ctx = make_ctx(msg)
    assert call(ctx, textops.exports, "is_present_hf", "x-FOO") == 1
    assert call(ctx, textops.exports, "is_present_hf", "From") == 1
    assert call(ctx, textops.exports, "is_present_hf", "X-Bar") == -1
    assert call(ctx, textops.exports, "remove_hf", "X-Foo") == 1
    assert call(ctx, textops.exports, "remove_hf", "Via") == 1  # compact v: too
    assert call(ctx, textops.exports, "remove_hf", "X-Bar") == -1
    text = built(ctx)
    assert "oo:" not in text and "Via" not in text and "v: " not in text
    assert call(ctx, textops.exports, "is_present_hf", "X-Foo") == 1  # original still seen


@pytest.mark.parametrize("name", ["", "Bad Name", "a:b"])
def test_hname_fixup_errors(name: str) -> None:
    with pytest.raises(FixupError):
        fix(textops.exports, "remove_hf", name)


# ---------------------------------------------------------------- reply lumps


def test_append_to_reply_and_time() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "append_to_reply", "X-R: $ru\r\n") == 1
    assert call(ctx, textops.exports, "append_time") == 1
    lumps = pending_reply_lumps(ctx)
    assert lumps[0] == "X-R: sip:bob@example.com\r\n"
    assert re.fullmatch(r"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n", lumps[1])
    assert call(ctx, sl.exports, "sl_send_reply", "200", "OK") == 1
    assert b"CSeq: 314159 INVITE\r\nX-R: sip:bob@example.com\r\nDate: " in sent(ctx)[0][2]
    ctx.rt.script_vars["e"] = ""
    assert call(ctx, textops.exports, "append_to_reply", "$var(e)") == -1


def test_date_header_format() -> None:
    assert date_header(784111777) == "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


# ---------------------------------------------------------------- is_method, is_privacy


def test_is_method() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "is_method", "INVITE") == 1
    assert call(ctx, textops.exports, "is_method", "invite") == 1
    assert call(ctx, textops.exports, "is_method", "BYE|INVITE") == 1
    assert call(ctx, textops.exports, "is_method", "BYE|CANCEL") == -1
    assert call(ctx, textops.exports, "is_method", "FOO") == -1
    foo = INVITE.replace("INVITE sip", "FOO sip").replace("314159 INVITE", "314159 FOO")
    assert call(make_ctx(foo), textops.exports, "is_method", "foo") == 1
    rpl = make_ctx(
        "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1\nTo: <sip:b@x>;tag=2\nFrom: <sip:a@x>;tag=1\n"
        "Call-ID: c\nCSeq: 2 BYE\nContent-Length: 0\n\n"
    )
    assert call(rpl, textops.exports, "is_method", "BYE") == 1
    with pytest.raises(FixupError):
        fix(textops.exports, "is_method", "INVITE|FOO")
    with pytest.raises(FixupError):
        fix(textops.exports, "is_method", "")


def test_is_privacy() -> None:
    ctx = make_ctx(INVITE.replace("Contact:", "Privacy: id; header\nContact:"))
    assert call(ctx, textops.exports, "is_privacy", "id") == 1
    assert call(ctx, textops.exports, "is_privacy", "header") == 1
    assert call(ctx, textops.exports, "is_privacy", "user") == -1
    assert call(make_ctx(INVITE), textops.exports, "is_privacy", "id") == -1
    with pytest.raises(FixupError):
        fix(textops.exports, "is_privacy", "bogus")


# ---------------------------------------------------------------- bodies

MULTI = (
    "--Boundary\n"
    "Content-Type: application/sdp\n"
    "\n"
    "v=0\n"
    "\n"
    "--Boundary\n"
    "Content-Type: application/isup\n"
    "\n"
    "ISUP\n"
    "--Boundary--\n"
)


def test_has_body() -> None:
    assert call(make_ctx(INVITE), textops.exports, "has_body") == -1
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "has_body") == 1
    assert call(ctx, textops.exports, "has_body", "application/SDP") == 1
    assert call(ctx, textops.exports, "has_body", "text/plain") == -1
    ctx = make_ctx(with_body(MULTI, "multipart/mixed;boundary=Boundary"))
    assert call(ctx, textops.exports, "has_body", "application/isup") == 1
    assert call(ctx, textops.exports, "has_body", "multipart/mixed") == 1
    assert call(ctx, textops.exports, "has_body", "text/html") == -1
    with pytest.raises(FixupError):
        fix(textops.exports, "has_body", "nonsense")


def test_strip_body() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "strip_body") == 1
    assert built(ctx).endswith("Contact: <sip:alice@10.0.0.1>\r\nContent-Length: 0\r\n\r\n")
    assert call(make_ctx(INVITE), textops.exports, "strip_body") == -1
    ctx = make_ctx(with_body(MULTI, "multipart/mixed;boundary=Boundary"))
    assert call(ctx, textops.exports, "strip_body", "application/isup") == 1
    text = built(ctx)
    assert text.endswith("\r\n\r\n--Boundary\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--Boundary--\r\n")
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "strip_body", "application/sdp") == 1
    assert "Content-Type" not in built(ctx)


def test_add_body() -> None:
    ctx = make_ctx(INVITE)
    assert call(ctx, textops.exports, "add_body", "hello") == -1  # no body, no type
    assert call(ctx, textops.exports, "add_body", "hello $ru", "text/plain") == 1
    assert built(ctx).endswith(
        "Content-Length: 25\r\nContent-Type: text/plain\r\n\r\nhello sip:bob@example.com"
    )
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "add_body", "x=1", "application/sdp") == 1
    assert built(ctx).endswith("Content-Type: application/sdp\r\nContent-Length: 3\r\n\r\nx=1")


def test_filter_body() -> None:
    ctx = make_ctx(with_body(MULTI, "multipart/mixed;boundary=Boundary"))
    assert call(ctx, textops.exports, "filter_body", "application/sdp") == 1
    assert built(ctx).endswith("Content-Length: 7\r\n\r\nv=0\r\n\r\n")
    ctx = make_ctx(with_body(MULTI, "multipart/mixed;boundary=Boundary"))
    assert call(ctx, textops.exports, "filter_body", "text/html") == -1


# ---------------------------------------------------------------- codecs


def mline(ctx, media: str = "audio") -> str:
    return next(line for line in built(ctx).split("\r\n") if line.startswith(f"m={media}"))


def test_codec_exists() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "codec_exists", "pcma") == 1
    assert call(ctx, textops.exports, "codec_exists", "G729") == -1
    assert call(ctx, textops.exports, "codec_exists", "speex", "16000/2") == 1
    assert call(ctx, textops.exports, "codec_exists", "PCMU", "16000") == -1
    assert call(ctx, textops.exports, "codec_exists_re", "^tele") == 1
    assert ctx.msg.build() == ctx.msg.buf  # finding changes nothing
    assert call(make_ctx(INVITE), textops.exports, "codec_exists", "PCMU") == -1


def test_codec_delete() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "codec_delete", "speex") == 1
    text = built(ctx)
    assert mline(ctx) == "m=audio 49170 RTP/AVP 0 8 101"
    assert "speex" not in text and "mode=any" not in text and "a=fmtp:101 0-15" in text
    # later codec calls see the earlier change
    assert call(ctx, textops.exports, "codec_exists", "speex") == -1
    assert call(ctx, textops.exports, "codec_delete", "telephone-event") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 0 8"
    text = built(ctx)
    assert "telephone-event" not in text and "0-15" not in text
    length = int(re.search(r"Content-Length: (\d+)", text).group(1))
    assert length == len(text.split("\r\n\r\n", 1)[1])


def test_codec_delete_re_and_except() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "codec_delete_re", "^PCM") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 97 101"
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "codec_delete_except_re", "PCMU|H261") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 0"
    assert mline(ctx, "video") == "m=video 51372 RTP/AVP 31"


def test_codec_move() -> None:
    ctx = make_ctx(with_body(SDP))
    assert call(ctx, textops.exports, "codec_move_up", "telephone-event") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 101 0 8 97"
    assert call(ctx, textops.exports, "codec_move_down_re", "^PCM") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 101 97 0 8"
    assert call(ctx, textops.exports, "codec_delete", "PCMA") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 101 97 0"
    assert call(ctx, textops.exports, "codec_move_up", "MPV", "90000") == 1
    assert mline(ctx, "video") == "m=video 51372 RTP/AVP 32 31"
    assert call(ctx, textops.exports, "codec_move_down", "G729") == -1


def test_is_audio_on_hold() -> None:
    assert call(make_ctx(with_body(SDP)), textops.exports, "is_audio_on_hold") == -1
    held = SDP.replace("a=rtpmap:0 PCMU/8000\n", "a=rtpmap:0 PCMU/8000\na=sendonly\n")
    assert call(make_ctx(with_body(held)), textops.exports, "is_audio_on_hold") == 1
    zero = SDP.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0")
    assert call(make_ctx(with_body(zero)), textops.exports, "is_audio_on_hold") == 1


def test_codecs_in_multipart() -> None:
    body = MULTI.replace("v=0\n\n", SDP)
    ctx = make_ctx(with_body(body, "multipart/mixed;boundary=Boundary"))
    assert call(ctx, textops.exports, "codec_delete", "PCMU") == 1
    assert mline(ctx) == "m=audio 49170 RTP/AVP 8 97 101"


def test_route_types() -> None:
    assert cmd(textops.exports, "subst_uri", 1).route_types & 32 == 0  # not in local_route
    assert cmd(textops.exports, "append_to_reply", 1).route_types == 1 | 2 | 8 | 16
