"""`sipserver -c`: check a script and list every error as FILE:LINE:COL.

Today this is the syntax and value-form check of the parser; resolving
module functions, parameters and pseudo-variables against the loaded
modules joins it with the compiler.
"""

from __future__ import annotations

from .errors import CfgError, format_error
from .parser import parse_file


def check_file(path: str, check_route_types: bool = False) -> list[str]:
    """The error lines for the script at `path`; [] when it is valid."""
    try:
        parse_file(path)
    except CfgError as e:
        return [format_error(*item) for item in e.errors]
    except OSError as e:
        return [f"{path}: cannot read the configuration file: {e.strerror or e}"]
    return []
