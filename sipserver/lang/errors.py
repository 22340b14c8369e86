"""Configuration errors with ``FILE:LINE:COL`` locations.

One exception type for everything that is wrong with a script (syntax,
bad values, later also unknown functions found by the compiler), able to
carry several errors at once so that ``sipserver -c`` can list them all.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CfgError", "ErrorItem"]

ErrorItem = tuple[str, int, int, str]


class CfgError(Exception):
    """One or more configuration errors.

    ``errors`` is a list of ``(file, line, col, message)``; ``str(exc)`` is one
    ``FILE:LINE:COL: message`` line per error.
    """

    def __init__(self, errors: Iterable[ErrorItem] | str, file: str = "<string>",
                 line: int = 0, col: int = 0) -> None:
        if isinstance(errors, str):
            items = [(file, line, col, errors)]
        else:
            items = list(errors)
        if not items:
            raise ValueError("CfgError needs at least one error")
        self.errors: list[ErrorItem] = items
        super().__init__(self._render())

    def _render(self) -> str:
        return "\n".join(format_error(*e) for e in self.errors)

    def __str__(self) -> str:
        return self._render()

    @property
    def file(self) -> str:
        """File of the first error."""
        return self.errors[0][0]

    @property
    def line(self) -> int:
        """Line of the first error."""
        return self.errors[0][1]

    @property
    def col(self) -> int:
        """Column of the first error."""
        return self.errors[0][2]

    @property
    def message(self) -> str:
        """Message of the first error (without the location)."""
        return self.errors[0][3]


def format_error(file: str, line: int, col: int, message: str) -> str:
    """``FILE:LINE:COL: message`` (the location parts that are unknown are left out)."""
    if line <= 0:
        return f"{file}: {message}"
    if col <= 0:
        return f"{file}:{line}: {message}"
    return f"{file}:{line}:{col}: {message}"
