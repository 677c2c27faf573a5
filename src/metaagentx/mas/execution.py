"""The bookkeeping of one execution: limits, usage counters, the agent trace, the final output.

Every LLM and tool call of a workflow goes through `Execution.llm` / `Execution.tool`, which
enforce the `Limits` and then forward to the active `Runtime`. The execution is attached to the
runtime object, so a host that only did `use_runtime(rt)` still gets limits and a trace; a
harness that wants a fresh one (per script run) calls `start_execution`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from metaagentx.mas.limits import Limits
from metaagentx.mas.protocol import ExecutionLimitExceeded, Message, Runtime, current_runtime
from metaagentx.mas.text import clip

TRACE_TEXT_CHARS = 20000  # texts in the trace are clipped to this; the trace travels over a pipe
_ATTRIBUTE = "_mas_execution"
_CREATE_LOCK = threading.Lock()


class Execution:
    """Limits, usage, trace and final output of one run of a design script (thread-safe).

    Once a limit trips it stays tripped: every later call raises again, so a script that catches
    the exception cannot continue, and `limit_error` tells the harness what happened.
    """

    def __init__(self, runtime: Runtime, limits: Limits) -> None:
        self.runtime = runtime
        self.limits = limits
        self.trace: list[dict[str, Any]] = []
        self.final_output: str | None = None
        self.final_delivery: str | None = None
        self.limit_error: ExecutionLimitExceeded | None = None
        self.llm_calls = 0
        self.tool_calls = 0
        self._agents: set[int] = set()
        self._lock = threading.Lock()

    # ---- limits -------------------------------------------------------------------------
    def _trip(self, kind: str, message: str) -> ExecutionLimitExceeded:
        error = ExecutionLimitExceeded(kind, message)
        with self._lock:
            if self.limit_error is None:
                self.limit_error = error
        return error

    def _check_tripped(self) -> None:
        if self.limit_error is not None:
            raise ExecutionLimitExceeded(self.limit_error.kind, str(self.limit_error))

    def check(self, kind: str, value: int, what: str) -> None:
        """Raise `ExecutionLimitExceeded(kind)` when `value` exceeds the limit named `kind`."""
        self._check_tripped()
        limit = getattr(self.limits, kind)
        if value > limit:
            raise self._trip(kind, f"{what}: {value} exceeds the limit {kind}={limit}")

    def enter_agent(self, agent: object, name: str) -> None:
        """Count a distinct agent about to run; the (max_agents + 1)-th one trips."""
        with self._lock:
            self._agents.add(id(agent))
            count = len(self._agents)
        self.check("max_agents", count, f"agent {name!r} would be distinct agent number {count}")

    # ---- calls --------------------------------------------------------------------------
    def llm(self, agent: str, messages: list[Message], max_tokens: int | None = None) -> str:
        """One LLM turn through the runtime, after the call-count and token limits."""
        tokens = self.limits.max_tokens_per_call if max_tokens is None else max_tokens
        self.check("max_tokens_per_call", tokens, f"agent {agent!r} asked for {tokens} tokens")
        with self._lock:
            self.llm_calls += 1
            count = self.llm_calls
        self.check("max_llm_calls", count, f"LLM call number {count}")
        reply = self.runtime.llm(agent, messages, tokens)
        if not isinstance(reply, str):
            raise TypeError(f"Runtime.llm must return str, got {type(reply).__name__}")
        return reply

    def tool(self, agent: str, name: str, arguments: dict[str, Any]) -> str:
        """One host-side tool call through the runtime, after the tool-call limit."""
        self.count_tool_call(agent, name)
        return str(self.runtime.tool(agent, name, arguments))

    def count_tool_call(self, agent: str, name: str) -> None:
        """Count a tool call (host-side or in-process); the (max_tool_calls + 1)-th one trips."""
        with self._lock:
            self.tool_calls += 1
            count = self.tool_calls
        self.check("max_tool_calls", count, f"tool call number {count} ({name} by {agent!r})")

    # ---- trace and result ---------------------------------------------------------------
    def record(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append a JSON-serialisable event to the trace, numbered and time-stamped."""
        with self._lock:
            event = {"seq": len(self.trace), "time": round(time.time(), 6), **event}
            self.trace.append(event)
        return event

    def set_final(self, output: str, delivery: str | None = None) -> None:
        """Record the script's final output (the last top-level node run wins). A runtime with
        a `set_final_output(text)` method is told as well, so a host harness that does not use
        `run_design` can still collect it."""
        with self._lock:
            self.final_output = output
            self.final_delivery = delivery
        notify = getattr(self.runtime, "set_final_output", None)
        if callable(notify):
            notify(output)

    def usage(self) -> dict[str, int]:
        """Counters for the execution report."""
        with self._lock:
            return {
                "agents": len(self._agents),
                "llm_calls": self.llm_calls,
                "tool_calls": self.tool_calls,
            }


def trace_text(text: str) -> str:
    """A text as stored in the trace (clipped to TRACE_TEXT_CHARS)."""
    return clip(text, TRACE_TEXT_CHARS)


def _limits_for(runtime: Runtime) -> Limits:
    own = getattr(runtime, "limits", None)
    if isinstance(own, Limits):
        return own
    return Limits.from_dict(runtime.task.get("limits"))


def start_execution(runtime: Runtime, limits: Limits | None = None) -> Execution:
    """Attach a fresh execution to `runtime` (limits: given, else runtime.limits, else
    task["limits"], else defaults) and return it."""
    execution = Execution(runtime, limits or _limits_for(runtime))
    object.__setattr__(runtime, _ATTRIBUTE, execution)
    return execution


def execution_of(runtime: Runtime) -> Execution:
    """The execution attached to `runtime`, started on first use."""
    execution = getattr(runtime, _ATTRIBUTE, None)
    if execution is None:
        with _CREATE_LOCK:  # agents in threads may race to create it
            execution = getattr(runtime, _ATTRIBUTE, None) or start_execution(runtime)
    return execution


def current_execution() -> Execution:
    """The execution of the active runtime (see `use_runtime`)."""
    return execution_of(current_runtime())
