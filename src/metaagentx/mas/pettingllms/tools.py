"""The authors' `ToolRegistry`: tools registered by name, with JSON-schema parameters.

`register(name, func, description, parameters)` (their positional order) makes `func` callable
by an agent as exactly `name`: no name is redirected to a built-in, so a script's own
`python_execute` is the one that runs. Functions run in the script's process (already inside the
sandbox); what they do through the host (sandboxed Python, web search) is attributed to the
calling agent (see `calls`). Each call counts once against Limits.max_tool_calls: as the host
call(s) it made, or, when it made none, as one in-process call. For convenience our built-in
names work too: `ToolRegistry(["python"])`, `["run_tests"]`, or a host tool the host announced.
Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.pettingllms.calls import announced, builtin_tool, host_tool, tool_scope
from metaagentx.mas.pettingllms.utils.environments.math_env import python_execute
from metaagentx.mas.protocol import ExecutionLimitExceeded
from metaagentx.mas.text import clip
from metaagentx.mas.tools import parameters_schema

ToolFunction = Callable[..., Any]
PYTHON_NAMES = ("python", "python_execute", "code_interpreter")


@dataclass(frozen=True)
class RegisteredTool:
    """A tool as registered: the function and what the agent is told about it."""

    name: str
    func: ToolFunction
    description: str
    parameters: dict[str, Any]

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool schema."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolRegistry:
    """Tools agents may call with `<tool_call>{"name": ..., "parameters": {...}}</tool_call>`.

    `ToolRegistry()` is empty; `ToolRegistry(["python"])` adds built-ins by name (see the module
    docstring). `register(name, func, description="", parameters=None)`; without `parameters`
    they are read from the function's signature (annotations, `Annotated` descriptions,
    defaults)."""

    def __init__(self, tools: Iterable[str] | None = None) -> None:
        self._tools: dict[str, RegisteredTool] = {}
        if isinstance(tools, str):
            tools = [tools]
        for name in tools or ():
            self.add(name)

    def add(self, name: str) -> ToolRegistry:
        """Add a built-in tool by name: python / python_execute, run_tests, or a host tool."""
        if not isinstance(name, str):
            raise TypeError(f"a built-in tool is named by a string, not {name!r}")
        if name in PYTHON_NAMES:
            self.register(name, python_execute)
        elif name == "run_tests":
            self.register(name, _run_tests, _run_tests.__doc__ or "")
        else:
            spec = announced(name)
            if spec is None:
                raise ValueError(
                    f"unknown tool {name!r}: built-ins are {list(PYTHON_NAMES)} and run_tests; "
                    "register your own with register(name, func)"
                )
            self.register(
                name,
                _host_function(name),
                str(spec.get("description") or ""),
                spec.get("parameters") or _EMPTY_SCHEMA,
            )
        return self

    def register(
        self,
        name: str | ToolFunction,
        func: ToolFunction | None = None,
        description: str = "",
        parameters: dict[str, Any] | None = None,
    ) -> ToolFunction:
        """Register `func` as tool `name`; returns `func`. `register(func)` (name from the
        function) is accepted too."""
        if func is None and callable(name):
            name, func = name.__name__, name
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a tool needs a non-empty string name, got {name!r}")
        if not callable(func):
            raise TypeError(f"tool {name!r} needs a callable func, got {func!r}")
        if parameters is not None and not isinstance(parameters, dict):
            raise TypeError(f"parameters of tool {name!r} must be a dict (a JSON schema)")
        text = description or _first_line(func)
        schema = parameters if parameters is not None else parameters_schema(func)
        self._tools[name] = RegisteredTool(name, func, str(text), schema)
        return func

    register_tool = register

    def get_tool(self, name: str) -> ToolFunction | None:
        """The function registered as `name`, or None."""
        tool = self._tools.get(name)
        return tool.func if tool is not None else None

    def list_tools(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._tools)

    def get_tool_schemas(self) -> list[dict[str, Any]]:
        """OpenAI function-tool schemas of every tool."""
        return [tool.schema() for tool in self._tools.values()]

    @property
    def tools(self) -> dict[str, ToolFunction]:
        return {name: tool.func for name, tool in self._tools.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def call_tool(self, name: str, parameters: dict[str, Any] | None = None) -> str:
        """Run tool `name` with `parameters` (keyword arguments) for the calling agent and return
        its result as text (JSON for dicts and lists), clipped to Limits.max_tool_output_chars.
        Raises ValueError for an unknown tool and whatever the tool raises."""
        tool = self._tools.get(name)
        if tool is None:
            raise ValueError(f"Tool '{name}' not found; available tools: {self.list_tools()}")
        execution = current_execution()
        if execution.limit_error is not None:  # a tripped run runs nothing more
            raise ExecutionLimitExceeded(execution.limit_error.kind, str(execution.limit_error))
        with tool_scope() as scope:
            try:
                value = _invoke(tool.func, {} if parameters is None else parameters)
            finally:
                if not scope.host_calls:  # its host calls were counted already
                    execution.count_tool_call(scope.agent, name)
        return clip(_to_text(value), execution.limits.max_tool_output_chars)


_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "required": []}


def _invoke(func: ToolFunction, parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return func(**parameters)
    return func(parameters)  # a bare value for a one-parameter tool


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            pass
    return str(value)


def _first_line(func: ToolFunction) -> str:
    doc = (inspect.getdoc(func) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _run_tests(code: str) -> str:
    """Run a complete program against the task's public tests and report which pass."""
    return builtin_tool("run_tests", {"code": code})


def _host_function(name: str) -> ToolFunction:
    def call(**arguments: Any) -> str:
        return host_tool(name, arguments)

    call.__name__ = name
    return call


__all__ = ["RegisteredTool", "ToolRegistry"]
