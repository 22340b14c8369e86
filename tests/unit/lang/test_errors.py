"""Error reporting: FILE:LINE:COL of the offending token, plain-word
messages, several errors in one CfgError."""

from __future__ import annotations

import pytest

from sipserver.lang.errors import CfgError
from sipserver.lang.parser import parse_text

from .util import error, errors

BROKEN = """\
debug=3
loadmodule "sl.so"

route {
\tif (is_method("OPTIONS")) {
\t\tsl_send_reply("200", "OK")
\t\texit;
\t}
\troute(1);
}
"""


@pytest.mark.parametrize(
    ("script", "where", "message"),
    [
        # missing semicolon: points at the next token, says which statement needs it
        (BROKEN, (7, 3),
         "syntax error: missing ';' before 'exit' (the statement ending at 6:29 needs one)"),
        ("route {\n  exit\n}\n", (3, 1),
         "syntax error: missing ';' before '}' (the statement ending at 2:7 needs one)"),
        ("route { $var(x) = 1 }", (1, 21), "syntax error: missing ';' before '}'"),
        # unbalanced braces
        ("route {\n  if ($var(a)) {\n    exit;\n}\n", (5, 1),
         "syntax error: unexpected end of file: missing '}' to close the '{' at 1:7"),
        ("route {\n  exit;\n}\n}\n", (4, 1), "syntax error: unexpected '}': no block is open here"),
        # bad tokens
        ("route {\n  exit; @\n}", (2, 9),
         "syntax error: unexpected character '@'; expected a statement, ';' or '}'"),
        ("route {\n  $var(x) = 1 ? 2 : 3;\n}", (2, 15),
         "syntax error: unexpected character '?'; expected an operator or ';'"),
        ("debug=3;\n", (1, 8), "syntax error: ';' is not allowed at top level (global "
                               "parameters, loadmodule and modparam lines take no ';')"),
        ("children = 4\nfoo\n", (2, 1), "syntax error: unexpected 'foo' at top level; expected "
                                       "a global parameter (name = value), loadmodule, modparam "
                                       "or a route block"),
        ("route { if ($a == 1 exit; }", (1, 21),
         "syntax error: unexpected 'exit'; expected '&&', ')', 'and', 'or' or '||'"),
        ("route { $var(x) = ; }", (1, 19), "syntax error: unexpected ';'; expected an expression"),
        ("route { xlog(\"L_ERR\", \"a\" }", (1, 27),
         "syntax error: unexpected '}'; expected ')' or ','"),
        ("route { if (method == ) exit; }", (1, 23),
         "syntax error: unexpected ')'; expected a quoted string or a name"),
        ("listen=udp:1.2.3.4:", (1, 20),
         "syntax error: unexpected end of file; expected a number or a protocol "
         "(udp, tcp, tls, sctp, any)"),
        ('route { xlog("x"); "\n}', (1, 20), 'syntax error: unterminated string: the " here is '
                                             'never closed'),
    ],
)
def test_syntax_error_locations(script: str, where: tuple[int, int], message: str) -> None:
    _f, line, col, msg = error(script, "broken.cfg")
    assert _f == "broken.cfg"
    assert ((line, col), msg) == (where, message)


def test_cfgerror_renders_file_line_col() -> None:
    with pytest.raises(CfgError) as info:
        parse_text(BROKEN, "/etc/opensips/opensips.cfg")
    exc = info.value
    assert str(exc) == ("/etc/opensips/opensips.cfg:7:3: syntax error: missing ';' before "
                        "'exit' (the statement ending at 6:29 needs one)")
    assert (exc.file, exc.line, exc.col) == ("/etc/opensips/opensips.cfg", 7, 3)
    assert exc.message.startswith("syntax error: missing ';'")


def test_several_semantic_errors_in_source_order() -> None:
    script = ("chidren = 4\n"
              "log_facility = \"LOG_LOCAL0\"\n"
              "route {\n"
              "  setflag(\"1\");\n"
              "  t_relay;\n"
              "  if ($var(a) =~ 3) exit;\n"
              "}\n"
              "failure_route { exit; }\n")
    with pytest.raises(CfgError) as info:
        parse_text(script, "multi.cfg")
    assert str(info.value).splitlines() == [
        "multi.cfg:1:1: unknown global parameter 'chidren' (did you mean 'children'?)",
        "multi.cfg:2:16: log_facility expects a bare word (no quotes), got a quoted string",
        "multi.cfg:4:11: setflag(): expected an unquoted number, got a quoted string",
        "multi.cfg:5:3: bare word 't_relay' found, command calls need '()' (write t_relay())",
        "multi.cfg:6:7: operator '=~' cannot be used with a number (use one of: == != > < >= <=)",
        "multi.cfg:8:1: failure_route needs a name: failure_route[NAME] { ... }",
    ]
    assert len(info.value.errors) == 6


def test_cfgerror_direct_construction() -> None:
    exc = CfgError("something wrong", "a.cfg", 3, 4)
    assert str(exc) == "a.cfg:3:4: something wrong"
    assert CfgError("whole file", "a.cfg").errors == [("a.cfg", 0, 0, "whole file")]
    assert str(CfgError("whole file", "a.cfg")) == "a.cfg: whole file"
    with pytest.raises(ValueError):
        CfgError([])


def test_string_filename_default() -> None:
    with pytest.raises(CfgError) as info:
        parse_text("route { exit }")
    assert str(info.value).startswith("<string>:1:14: ")


def test_error_location_after_multiline_string() -> None:
    # a string spanning lines moves the following positions, as in 1.6
    errs = errors('route {\n  xlog("L_ERR",\n  "two\nlines");\n  t_relay;\n}')
    assert errs == [("t.cfg", 5, 3, "bare word 't_relay' found, command calls need '()' "
                                    "(write t_relay())")]
