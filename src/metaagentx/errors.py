"""The one exception type for mistakes the user can fix (a path, a name, a value, a package).

The CLI prints a `UserError` as one line, `error: <message>`, and exits with code 2; anything
else is a bug and keeps its traceback. `--debug` (or `METAAGENTX_DEBUG=1`) shows the traceback
of a `UserError` too. The message names what is wrong and, where there is one, the fix.

Library errors that are the user's to fix subclass it beside their own base (`ConfigError`
is still a `ValueError`), so callers that caught the old base keep working.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user asked for cannot be done as asked; the message says why and the fix."""


class MissingPackageError(UserError, ImportError):
    """An optional package a setting needs is not installed; the message names the extra."""

    def __init__(self, setting: str, package: str, extra: str | None = None) -> None:
        target = f"'metaagentx[{extra}]'" if extra else package
        super().__init__(f"{setting} needs {package}, which is not installed: pip install {target}")
        self.name = package


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a library's multi-line message inside ours)."""
    return " ".join(str(exc).split()) or type(exc).__name__
