"""Run one design script and collect its final output and agent trace.

This is what the sandbox child calls; it is also usable in-process (tests, local runs):

    runtime = PipeRuntime(task)          # a Runtime; task = {"question", "domain", ...}
    outcome = run_design(script, runtime, limits)   # never raises for what the script does
    send({"type": "final", **outcome.to_dict()})    # JSON: status, final_output, trace, ...

The script runs as a module whose globals already hold the injected task (`task`, `question`,
`domain`); its `workflow` imports answer from the workflow dialect it is written in (ours or the
authors', see `dialects`). Its final
output is what its outermost node's `run()` recorded (the last one wins); a script that only
builds a node called `workflow` and never runs it is run by the harness. What it prints goes to
`outcome.stdout`, not to the real stdout.
"""

from __future__ import annotations

import io
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from metaagentx.mas.dialects import (
    Dialect,
    node_types,
    preloaded_modules,
    resolve_dialect,
    script_builtins,
)
from metaagentx.mas.execution import Execution, start_execution
from metaagentx.mas.limits import Limits
from metaagentx.mas.protocol import ExecutionLimitExceeded, Runtime, use_runtime
from metaagentx.mas.text import clip

Status = Literal["ok", "design_error", "runtime_error", "limit_exceeded"]
ERROR_CHARS = 4000
STDOUT_CHARS = 20000


@dataclass
class DesignOutcome:
    """The result of one execution of a design (JSON-serialisable via `to_dict`).

    status: "ok"; "design_error" (does not compile, fails before any LLM call, or produces no
        final output); "runtime_error" (raised after the agents started); "limit_exceeded".
    final_output: the final agent's full reply (grade it), or None.
    delivery: that reply's delivery.
    error_kind: the limit's name for limit_exceeded, else the exception class name.
    trace: the agent trace (see `Execution.record`); usage: counters; stdout: what the script
        printed (clipped).
    """

    status: Status
    final_output: str | None = None
    delivery: str | None = None
    error_kind: str | None = None
    error: str | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    stdout: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _CappedBuffer(io.StringIO):
    """Collects printed text up to a cap (a chatty script must not exhaust memory)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def write(self, text: str) -> int:
        room = self.cap - self.tell()
        if room > 0:
            super().write(text[:room])
        return len(text)


def script_globals(task: dict[str, Any], dialect: Dialect = "metaagentx") -> dict[str, Any]:
    """The globals a design runs with: the injected task as `task`, `question`, `domain`, the
    dialect's imports (`dialects.script_builtins`) and the modules its runtime preloads."""
    return {
        "__name__": "__design__",
        "__builtins__": script_builtins(dialect),
        **preloaded_modules(dialect),
        "task": dict(task),
        "question": str(task.get("question", "")),
        "domain": task.get("domain"),
    }


def run_design(
    script: str,
    runtime: Runtime,
    limits: Limits | None = None,
    *,
    filename: str = "<design>",
    capture_output: bool = True,
    dialect: str = "auto",
) -> DesignOutcome:
    """Execute `script` against `runtime` and return its outcome; never raises for anything the
    script does (KeyboardInterrupt aside). With `capture_output`, sys.stdout/sys.stderr are
    redirected into `DesignOutcome.stdout` while the script runs, so the runtime must not talk
    to its host through sys.stdout. `dialect`: "auto" (read from the script), "metaagentx" or
    "pettingllms" (see `dialects`)."""
    execution = start_execution(runtime, limits)
    try:
        code = compile(script, filename, "exec")
        resolved = resolve_dialect(dialect, script)
    except (SyntaxError, ValueError) as exc:
        return _outcome(execution, "design_error", exc, "")
    buffer = _CappedBuffer(STDOUT_CHARS)
    error: BaseException | None = None
    try:
        with use_runtime(runtime), _captured(buffer, capture_output):
            namespace = script_globals(runtime.task, resolved)
            exec(code, namespace)
            candidate = namespace.get("workflow")
            if execution.final_output is None and isinstance(candidate, node_types(resolved)):
                candidate.run(namespace["question"])
    except SystemExit:
        pass  # a script may end itself; what it recorded still counts
    except Exception as exc:
        error = exc
    stdout = buffer.getvalue()
    if execution.limit_error is not None:  # even if the script swallowed the exception
        return _outcome(execution, "limit_exceeded", execution.limit_error, stdout)
    if isinstance(error, ExecutionLimitExceeded):  # raised by the host's runtime itself
        return _outcome(execution, "limit_exceeded", error, stdout)
    if error is not None:
        status: Status = "runtime_error" if execution.llm_calls else "design_error"
        return _outcome(execution, status, error, stdout)
    if execution.final_output is None:
        missing = ValueError(
            "the script produced no final output: build a Workflow and call workflow.run(question)"
        )
        return _outcome(execution, "design_error", missing, stdout)
    return _outcome(execution, "ok", None, stdout)


class _captured:
    def __init__(self, buffer: io.StringIO, enabled: bool) -> None:
        self._contexts = [redirect_stdout(buffer), redirect_stderr(buffer)] if enabled else []

    def __enter__(self) -> None:
        for context in self._contexts:
            context.__enter__()

    def __exit__(self, *exc: object) -> None:
        for context in reversed(self._contexts):
            context.__exit__(None, None, None)


def _outcome(
    execution: Execution, status: Status, error: BaseException | None, stdout: str
) -> DesignOutcome:
    kind = message = None
    if isinstance(error, ExecutionLimitExceeded):
        kind, message = error.kind, str(error)
    elif error is not None:
        kind = type(error).__name__
        message = clip("".join(traceback.format_exception(error)), ERROR_CHARS)
    return DesignOutcome(
        status=status,
        final_output=execution.final_output,
        delivery=execution.final_delivery,
        error_kind=kind,
        error=message,
        trace=list(execution.trace),
        usage=execution.usage(),
        stdout=stdout,
    )


__all__ = ["DesignOutcome", "run_design", "script_globals"]
