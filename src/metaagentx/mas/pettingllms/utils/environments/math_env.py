"""`utils.environments.math_env` of the authors' scripts: Python execution for math agents.

Their version runs code with the host's own interpreter; here every run goes to the host's
sandboxed `python` tool (a fresh confined interpreter under the tool's time, memory and output
limits), so `timeout` and `work_dir` are kept for compatibility only: the sandbox's limits
apply. The text returned follows theirs (success with the output, or the error and exit code),
because their agents were trained reading it. Standard library only.
"""

from __future__ import annotations

from typing import Annotated, Any

from metaagentx.mas.pettingllms.calls import sandboxed_python

CodeArgument = Annotated[str, "The Python code to run; print() what you want to see."]


def describe_run(result: dict[str, Any]) -> str:
    """What an agent reads after a sandboxed run (`run_python`'s result dict)."""
    status = result.get("status")
    stdout = str(result.get("stdout") or "").strip()
    stderr = str(result.get("stderr") or "").strip()
    note = "\n[output truncated]" if status == "output_limit" else ""
    if status == "timeout":
        partial = "\n".join(part for part in (stdout, stderr) if part)
        tail = f"\nOutput before it was stopped:\n{partial}" if partial else ""
        return f"Error: code execution timed out (the sandbox's time limit){tail}"
    if status in ("ok", "output_limit") and result.get("returncode") in (0, None):
        if stdout:
            return f"Code executed successfully.\nOutput: {stdout}{note}"
        return f"Code executed successfully. No output produced.{note}"
    reason = "killed by the sandbox (memory or process limit)" if status == "killed" else None
    detail = stderr or reason or "Unknown error"
    return f"Error executing code (exit code {result.get('returncode')}):\n{detail}{note}"


class MathEnvironment:
    """Runs Python for an agent; `execute(code)` returns the output as text."""

    def __init__(self, timeout: int = 120, work_dir: str | None = None) -> None:
        self.timeout = timeout  # informational: the sandboxed tool's own limit applies
        self.work_dir = work_dir  # never created: the run happens in the sandbox's own directory

    def execute(self, code: CodeArgument) -> str:
        """Run Python code in a sandboxed interpreter and return what it printed (or the error).

        Print the values you need; the interpreter is fresh for every call."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a string, got {type(code).__name__}")
        return describe_run(sandboxed_python(code))


_default: MathEnvironment | None = None


def get_math_environment(timeout: int = 120) -> MathEnvironment:
    """The shared environment (created on first use, like theirs)."""
    global _default
    if _default is None:
        _default = MathEnvironment(timeout=timeout)
    return _default


def python_execute(code: CodeArgument) -> str:
    """Run Python code in a sandboxed interpreter and return what it printed (or the error).

    Print the values you need; the interpreter is fresh for every call."""
    return get_math_environment().execute(code)


__all__ = ["MathEnvironment", "describe_run", "get_math_environment", "python_execute"]
