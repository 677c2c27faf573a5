"""What every command shares: the consoles, one-line errors, and how the program ends.

A mistake the user can fix (a `UserError`, or an `OSError` such as a missing or unwritable
path) ends with one line, `error: <what is wrong and the fix>`, and exit code 2; `--debug` or
`METAAGENTX_DEBUG=1` prints its traceback first. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import typer
from rich.console import Console

from metaagentx.errors import UserError

DEBUG_ENV = "METAAGENTX_DEBUG"
USER_ERROR_EXIT = 2

console = Console()
err_console = Console(stderr=True)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def main_rank() -> bool:
    """False on torchrun's ranks other than 0 (they train silently)."""
    from metaagentx.train.distributed import world_from_env

    return world_from_env().rank == 0


def fail(message: str) -> typer.Exit:
    """Print `message` as the one error line (after the traceback being handled, with --debug);
    `raise fail(...)` ends the command with exit code 2."""
    if debug_enabled() and sys.exc_info()[1] is not None:
        traceback.print_exc()
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code=USER_ERROR_EXIT)


def run_app(app: typer.Typer) -> NoReturn:
    """Run the CLI; user errors that reach this far end as one line (see the module docstring)."""
    try:
        app(prog_name="metaagentx")
    except (UserError, OSError) as exc:
        fail(str(exc) or type(exc).__name__)
        raise SystemExit(USER_ERROR_EXIT) from None
    raise SystemExit(0)  # click exits itself; this only satisfies NoReturn
