"""The error for task data the user can fix: a missing file, an unknown name, a broken row.

It is a `UserError` (the CLI prints it as one `error: ...` line) and a `ValueError`, so callers
that caught the old `ValueError`/`FileNotFoundError`-style failures of the loader keep working.
"""

from __future__ import annotations

from metaagentx.errors import UserError


class MalformedRow(ValueError):
    """A row that cannot become a task; the message says why (the loader skips and names it)."""


class DatasetError(UserError, ValueError):
    """A source cannot be loaded as asked; the message names the file or name and the fix."""


class MissingDataError(DatasetError, FileNotFoundError):
    """A named file or registered dataset is not where it should be; the message says where."""
