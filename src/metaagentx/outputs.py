"""Where commands write: never over files they did not make without being told to.

A folder a command writes whole (a model, an export, a quickstart) is refused when it exists
and holds files, unless the caller asks to replace it; the new folder is written beside it and
swapped in at the end, so a write that fails or is interrupted leaves the old one as it was.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from metaagentx.errors import UserError


class OutputExists(UserError, FileExistsError):
    """The target of a write holds something the write would destroy."""


def check_output_dir(out: Path, *, overwrite: bool, what: str, fix: str = "--overwrite") -> None:
    """Refuse a file at `out`, or a non-empty folder unless `overwrite`; `fix` names the switch."""
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{what} {out} is a file, not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExists(
            f"{what} {out} exists and is not empty; pass {fix} to replace it, or choose "
            "another path"
        )


@contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a fresh sibling of `out`; on success swap it in for `out`, on failure delete it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.partial")
    tmp.mkdir()  # not mkdtemp: its 0700 mode would stick to `out` after the rename
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = tmp.with_name(f"{tmp.name}.old")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def local_bars_hidden() -> Iterator[None]:
    """Hide transformers' progress bars for a local save or load, and only for it: download
    bars elsewhere in the process must stay visible."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()
