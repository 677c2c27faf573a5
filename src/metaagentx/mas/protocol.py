"""How a running workflow script talks to whoever hosts it.

The workflow library never generates text or runs tools itself: every agent turn and every tool
call goes through the active `Runtime`. Inside the sandbox the runtime is a JSON-over-pipe client
whose far end is the trainer's host process; in tests and local use it can be an in-process
object. Standard library only: this module is imported inside the sandbox.

Wire messages (one JSON object per line, never pickle):
  child -> host  {"id": 7, "type": "llm", "agent": "solver", "messages": [...], "max_tokens": 512}
  child -> host  {"id": 8, "type": "tool", "agent": "solver", "name": "python", "arguments": {...}}
  host  -> child {"id": 7, "ok": true, "result": "text"}   or   {"id": 7, "ok": false, "error": {...}}
  child -> host  {"type": "final", "status": "ok", "final_output": "...", "trace": [...], ...}
                 (once, at the end: the fields of `harness.run_design(...).to_dict()`)
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Message = dict[str, Any]  # {"role": "system" | "user" | "assistant" | "tool", "content": str}


class ExecutionLimitExceeded(RuntimeError):
    """A per-execution limit (agents, turns, LLM calls, tokens) was hit; `kind` names it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Runtime(abc.ABC):
    """What a workflow needs from its host: the task, LLM turns and tool calls."""

    @property
    @abc.abstractmethod
    def task(self) -> dict[str, Any]:
        """The injected task: {"question": str, "domain": "math" | "code", ...}."""

    @abc.abstractmethod
    def llm(self, agent: str, messages: list[Message], max_tokens: int | None = None) -> str:
        """One agent turn: the host generates a reply to `messages` as agent `agent`."""

    @abc.abstractmethod
    def tool(self, agent: str, name: str, arguments: dict[str, Any]) -> str:
        """Run tool `name` for `agent` on the host side (e.g. in a nested sandbox child)."""


_active: Runtime | None = None
_lock = threading.Lock()


def current_runtime() -> Runtime:
    """The runtime of the execution in progress; an error outside one."""
    if _active is None:
        raise RuntimeError("no workflow runtime is active: run the script through a Runtime")
    return _active


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` the active one for the duration of an execution."""
    global _active
    with _lock:
        previous, _active = _active, runtime
    try:
        yield runtime
    finally:
        with _lock:
            _active = previous
