"""Who a sandboxed call made from script code is for, and how it reaches the host.

The authors' scripts run Python and web search from plain functions (`subprocess.run`,
`MathEnvironment.execute`, `SearchEnvironment.search`) that know nothing of agents. The host
attributes every call to an agent, so `AgentNode` opens a `tool_scope` while it runs a tool and
these functions read the agent from it ("script" outside any agent). The scope also tells
`ToolRegistry.call_tool` whether the tool's work was already counted as a host-side call, so one
tool call is never counted twice against Limits.max_tool_calls. Standard library only.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.text import clip
from metaagentx.mas.tools import call_host_tool, host_tool_specs, run_python

SCRIPT_AGENT = "script"


@dataclass
class ToolScope:
    """One running tool call: the agent it is for and the host-side calls it made so far."""

    agent: str
    host_calls: int = 0


_scope: contextvars.ContextVar[ToolScope | None] = contextvars.ContextVar(
    "pettingllms_tool_scope", default=None
)


@contextmanager
def tool_scope(agent: str | None = None) -> Iterator[ToolScope]:
    """Run a tool call for `agent` (default: the enclosing scope's agent, else "script")."""
    scope = ToolScope(agent or calling_agent())
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def calling_agent() -> str:
    """The agent whose tool call is running, or "script"."""
    scope = _scope.get()
    return scope.agent if scope is not None else SCRIPT_AGENT


def _note_host_call() -> None:
    scope = _scope.get()
    if scope is not None:
        scope.host_calls += 1


def sandboxed_python(code: str, stdin: str = "") -> dict[str, Any]:
    """Run `code` with the host's sandboxed `python` tool for the calling agent:
    `{"status", "returncode", "stdout", "stderr"}`."""
    _note_host_call()
    return run_python(calling_agent(), code, stdin)


def host_tool(name: str, arguments: dict[str, Any]) -> str:
    """Call host-side tool `name` (one the host announced) for the calling agent."""
    _note_host_call()
    return call_host_tool(calling_agent(), name, arguments)


def builtin_tool(name: str, arguments: dict[str, Any]) -> str:
    """Call one of the host's built-in tools (`run_tests`) for the calling agent."""
    _note_host_call()
    execution = current_execution()
    return clip(
        execution.tool(calling_agent(), name, arguments), execution.limits.max_tool_output_chars
    )


def announced(name: str) -> dict[str, Any] | None:
    """The host's spec of tool `name` (`{"description", "parameters"}`), or None."""
    return host_tool_specs().get(name)


__all__ = [
    "SCRIPT_AGENT",
    "ToolScope",
    "announced",
    "builtin_tool",
    "calling_agent",
    "host_tool",
    "sandboxed_python",
    "tool_scope",
]
