"""What `import subprocess` gives the authors' scripts: `python -c CODE`, run by the host.

Their code designs give agents an `execute_code` tool built on
`subprocess.run(["python", "-c", code], capture_output=True, text=True, timeout=...)`. A script
cannot start processes here, so exactly that command (`python`, `python3` or `sys.executable`,
then `-c` and the code, as a list) is mapped onto the host's sandboxed `python` tool, for the
agent whose tool call is running (see `calls`). Anything else raises FileNotFoundError, as a
missing program would; shell commands are refused the same way. The exception and result classes
are the standard library's, so `except subprocess.TimeoutExpired` works as usual. There is no
`Popen`. Standard library only.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from subprocess import (
    DEVNULL,
    PIPE,
    STDOUT,
    CalledProcessError,
    CompletedProcess,
    SubprocessError,
    TimeoutExpired,
)
from typing import Any

from metaagentx.mas.pettingllms.calls import sandboxed_python

_PYTHON = re.compile(r"python(3(\.\d+)?)?")
ONLY_PYTHON = "only `python -c CODE` (an argument list) can run here, in the sandboxed python tool"


def run(
    args: Any,
    *,
    capture_output: bool = False,
    stdout: Any = None,
    stderr: Any = None,
    text: bool | None = None,
    input: str | bytes | None = None,
    timeout: float | None = None,
    check: bool = False,
    universal_newlines: bool | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    shell: bool = False,
    **_: Any,
) -> CompletedProcess:
    """Run `[python, "-c", code]` in the sandboxed python tool; see the module docstring."""
    code = _python_code(args, shell)
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        stdout = stderr = PIPE
    as_text = bool(text or universal_newlines or encoding or errors)
    if isinstance(input, bytes):
        input = input.decode(encoding or "utf-8", errors or "replace")
    result = sandboxed_python(code, input or "")
    out, err = str(result.get("stdout") or ""), str(result.get("stderr") or "")
    if stderr == STDOUT:
        out, err = out + err, ""
    output = _deliver(out, stdout, sys.stdout, as_text)
    error = _deliver(err, stderr, sys.stderr, as_text)
    if result.get("status") == "timeout":
        raise TimeoutExpired(args, timeout if timeout is not None else 0.0, output, error)
    returncode = result.get("returncode")
    returncode = returncode if isinstance(returncode, int) else 1
    completed = CompletedProcess(args, returncode, output, error)
    if check and returncode:
        raise CalledProcessError(returncode, args, output, error)
    return completed


def check_output(args: Any, **kwargs: Any) -> Any:
    """`run(..., stdout=PIPE, check=True).stdout`."""
    if "stdout" in kwargs or "capture_output" in kwargs:
        raise ValueError("stdout argument not allowed, it will be overridden.")
    return run(args, stdout=PIPE, check=True, **kwargs).stdout


def call(args: Any, **kwargs: Any) -> int:
    """`run(...).returncode`."""
    return run(args, **kwargs).returncode


def check_call(args: Any, **kwargs: Any) -> int:
    """`run(..., check=True).returncode` (0)."""
    return run(args, check=True, **kwargs).returncode


def _python_code(args: Any, shell: bool) -> str:
    """The code of a `[python, "-c", code]` command; FileNotFoundError for anything else."""
    if shell or isinstance(args, (str, bytes, os.PathLike)):
        raise FileNotFoundError(
            f"{ONLY_PYTHON}; got {args!r}" + (" with shell=True" if shell else "")
        )
    if not isinstance(args, Sequence) or len(args) != 3:
        raise FileNotFoundError(f"{ONLY_PYTHON}; got {args!r}")
    program, flag, code = (os.fspath(a) if isinstance(a, os.PathLike) else a for a in args)
    is_python = isinstance(program, str) and (
        program == sys.executable or _PYTHON.fullmatch(os.path.basename(program)) is not None
    )
    if not is_python or flag != "-c" or not isinstance(code, str):
        raise FileNotFoundError(f"{ONLY_PYTHON}; got {args!r}")
    return code


def _deliver(text: str, target: Any, console: Any, as_text: bool) -> str | bytes | None:
    """The captured output for PIPE (text or bytes), else None: printed to the script's own
    stream when not redirected, dropped for DEVNULL, written to a given file object."""
    data: str | bytes = text if as_text else text.encode("utf-8")
    if target == PIPE:
        return data
    if target is None:
        if text:
            console.write(text)
    elif target != DEVNULL and hasattr(target, "write") and text:
        try:
            target.write(data)
        except TypeError:  # a text file given for bytes output, or the reverse
            target.write(text if isinstance(data, bytes) else text.encode("utf-8"))
    return None


def __getattr__(name: str) -> Any:
    if name == "Popen":
        raise AttributeError(f"subprocess.Popen is not available here: {ONLY_PYTHON} via run()")
    raise AttributeError(f"module 'subprocess' has no attribute {name!r} here ({ONLY_PYTHON})")


__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "CalledProcessError",
    "CompletedProcess",
    "SubprocessError",
    "TimeoutExpired",
    "call",
    "check_call",
    "check_output",
    "run",
]
