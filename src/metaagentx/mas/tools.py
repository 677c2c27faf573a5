"""Tools an agent may use during its turn loop.

Built-ins run on the host side (`python` in a nested sandbox child, `run_tests` against the
task's public tests only) through `Runtime.tool`; the library never executes agent code itself.
Host-side tools (the user's functions and HTTP endpoints, `tools.host` in the config) run on the
host too, by name, when the host announced them (`task["host_tools"]`). Tools a script registers
are plain Python functions and run inside the script's own (already sandboxed) process.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.protocol import Message
from metaagentx.mas.text import clip, extract_code

ToolFunction = Callable[..., Any]


@dataclass(frozen=True)
class Tool:
    """A named tool: `fn` runs in-process; a built-in (fn None) is run by the host, and so is
    a host tool (`host`: one the host announced, called with the agent's arguments as is)."""

    name: str
    description: str
    fn: ToolFunction | None = None
    host: bool = False

    @property
    def builtin(self) -> bool:
        return self.fn is None and not self.host


BUILTIN_TOOLS = {
    "python": Tool(
        "python",
        "python(code): run Python in a fresh sandboxed interpreter and return its stdout/stderr "
        "(or write one ```python block)",
    ),
    "run_tests": Tool(
        "run_tests",
        "run_tests(code): run a complete program against the task's public tests and report "
        'which pass; "code" defaults to the last ```python block of the conversation',
    ),
}
TOOL_ALIASES = {"python_execute": "python", "code_interpreter": "python"}

ToolSpec = str | ToolFunction | Tool
_JSON_TYPES: dict[type, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean",
    list: "array", tuple: "array", set: "array", dict: "object",
}  # fmt: skip


class ToolRegistry:
    """The tools available to the agents it is given to.

    `ToolRegistry()` is empty (pure reasoning). Built-ins by name: `ToolRegistry(["python"])`,
    `ToolRegistry(["run_tests"])`; host-side tools the host announced too (`["search"]`). Own
    tools: `registry.register(fn)` (also as a decorator, or
    `register(fn, name=..., description=...)`); the agent calls them with
    `<tool_call>{"name": "fn_name", "arguments": {...}}</tool_call>` and gets `str(result)`
    (JSON for dicts and lists). An agent with the `python` tool also runs the last ```python
    block of any reply that has no `<delivery>` block.
    """

    def __init__(self, tools: Iterable[ToolSpec] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: ToolSpec) -> ToolRegistry:
        """Add a built-in or an announced host tool by name ("python", "run_tests", "search"),
        a `Tool`, or a function."""
        if isinstance(tool, Tool):
            self._tools[tool.name] = tool
        elif isinstance(tool, str):
            key = TOOL_ALIASES.get(tool, tool)
            if key in BUILTIN_TOOLS:
                self._tools[key] = BUILTIN_TOOLS[key]
                return self
            hosted = _announced_host_tools()
            if key not in hosted:
                raise ValueError(
                    f"unknown tool {tool!r}; built-ins: {sorted(BUILTIN_TOOLS)}; host tools "
                    f"configured: {sorted(hosted) or 'none (tools.host in the config)'}"
                )
            self._tools[key] = host_tool(key, hosted[key])
        elif callable(tool):
            self.register(tool)
        else:
            raise TypeError(f"a tool is a built-in name, a Tool or a function, not {tool!r}")
        return self

    def register(
        self,
        fn: ToolFunction | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Register a plain function as a tool (name and description default to the function's
        name, signature and docstring). Usable as `@registry.register` or called directly."""
        if fn is None:
            return lambda f: self.register(f, name=name, description=description)
        tool_name = name or fn.__name__
        if tool_name in BUILTIN_TOOLS:
            raise ValueError(f"{tool_name!r} is a built-in tool name; choose another")
        if description is None:
            doc = (inspect.getdoc(fn) or "").strip().splitlines()
            description = f"{tool_name}{_signature(fn)}" + (f": {doc[0]}" if doc else "")
        self._tools[tool_name] = Tool(tool_name, description, fn)
        return fn

    def register_tool(self, name: str, fn: ToolFunction, description: str | None = None) -> None:
        """`register` with the name first (the PettingLLMs spelling)."""
        self.register(fn, name=name, description=description)

    def names(self) -> list[str]:
        return list(self._tools)

    def list_tools(self) -> list[str]:
        """Same as `names()` (the PettingLLMs spelling)."""
        return self.names()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and TOOL_ALIASES.get(name, name) in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def has_python(self) -> bool:
        return "python" in self._tools

    def describe(self) -> list[str]:
        """One line per tool called with <tool_call> (python is taught as code blocks)."""
        return [t.description for n, t in self._tools.items() if n != "python"]

    def call(
        self, agent: str, name: str, arguments: dict[str, Any], conversation: Iterable[Message] = ()
    ) -> str:
        """Run tool `name` for `agent`; the output is clipped to Limits.max_tool_output_chars.
        Counts against Limits.max_tool_calls. Raises KeyError for an unknown tool and whatever
        an own tool raises (the agent loop turns those into error messages for the agent)."""
        key = TOOL_ALIASES.get(name, name)
        if key not in self._tools:
            raise KeyError(f"unknown tool {name!r}; available: {self.names()}")
        tool, execution = self._tools[key], current_execution()
        if tool.host:
            return call_host_tool(agent, key, arguments)
        if tool.builtin:
            output = execution.tool(agent, key, _builtin_arguments(key, arguments, conversation))
        else:
            execution.count_tool_call(agent, key)
            output = _to_text(tool.fn(**arguments))  # type: ignore[misc]
        return clip(output, execution.limits.max_tool_output_chars)


def host_tool_specs() -> dict[str, dict[str, Any]]:
    """The host-side tools this execution may call, by name: `{"description", "parameters"}` as
    the host announced them in the task (`task["host_tools"]`; empty when none is configured)."""
    specs = current_execution().runtime.task.get("host_tools") or []
    return {
        str(spec["name"]): {k: v for k, v in spec.items() if k != "name"}
        for spec in specs
        if isinstance(spec, dict) and isinstance(spec.get("name"), str)
    }


def call_host_tool(agent: str, name: str, arguments: dict[str, Any]) -> str:
    """Call host-side tool `name` for `agent` (counted against Limits.max_tool_calls; output
    clipped). KeyError when the host announced no such tool."""
    if name not in host_tool_specs():
        raise KeyError(f"host tool {name!r} is not configured")
    execution = current_execution()
    output = execution.tool(agent, name, dict(arguments))
    return clip(output, execution.limits.max_tool_output_chars)


def run_python(agent: str, code: str, stdin: str = "") -> dict[str, Any]:
    """Run `code` with the built-in `python` tool (a nested sandbox child, the tool's limits) and
    return `{"status", "returncode", "stdout", "stderr"}` (what a subprocess would give)."""
    arguments = {"code": code, "stdin": stdin, "result": "json"}
    output = current_execution().tool(agent, "python", arguments)
    try:
        result = json.loads(output)
    except ValueError:
        result = None
    if not isinstance(result, dict):
        return {"status": "error", "returncode": 1, "stdout": "", "stderr": output}
    return result


def host_tool(name: str, spec: dict[str, Any]) -> Tool:
    """The `Tool` of an announced host tool; its prompt line shows name, arguments (from the JSON
    schema `spec["parameters"]`, with their descriptions) and `spec["description"]`."""
    schema = spec.get("parameters")
    schema = schema if isinstance(schema, dict) else {}
    properties, required = schema.get("properties"), schema.get("required")
    description = str(spec.get("description") or "").strip()
    if not isinstance(properties, dict):  # no named arguments to show: the schema itself
        shown = json.dumps(schema, ensure_ascii=False) if set(schema) - {"type"} else ""
        line = f"{name}: {description}" + (f" Arguments: JSON schema {shown}" if shown else "")
        return Tool(name, line.strip(), host=True)
    required = required if isinstance(required, list) else []
    args, notes = [], []
    for arg, prop in properties.items():
        prop = prop if isinstance(prop, dict) else {}
        text = arg + ("" if arg in required or "default" in prop else "?")
        kind = prop.get("type")
        if kind:
            text += f": {'|'.join(map(str, kind)) if isinstance(kind, list) else kind}"
        if "default" in prop:
            text += f" = {json.dumps(prop['default'], ensure_ascii=False)}"
        args.append(text)
        if prop.get("description"):
            notes.append(f"{arg}: {prop['description']}")
    line = f"{name}({', '.join(args)}): {description}"
    return Tool(name, line + (f" ({'; '.join(notes)})" if notes else ""), host=True)


def _announced_host_tools() -> dict[str, dict[str, Any]]:
    """`host_tool_specs()`, or none outside an execution (nothing could serve them there)."""
    try:
        return host_tool_specs()
    except RuntimeError:  # no workflow runtime is active
        return {}


def coerce_registry(tools: ToolRegistry | Iterable[ToolSpec] | None) -> ToolRegistry:
    """An agent's `tools` argument as a registry (None: no tools)."""
    if tools is None:
        return ToolRegistry()
    if isinstance(tools, ToolRegistry):
        return tools
    if isinstance(tools, (str, Tool)) or callable(tools):
        return ToolRegistry([tools])  # type: ignore[list-item]
    return ToolRegistry(tools)


def parameters_schema(func: ToolFunction, *, closed: bool = False) -> dict[str, Any]:
    """A JSON schema of `func`'s keyword parameters (types from annotations, descriptions from
    `Annotated[...]`, required = no default): what a tool's caller is told. `closed` adds
    `additionalProperties: false` unless `func` takes `**kwargs`."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return {"type": "object", "properties": {}, "required": []}
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # annotations naming things not importable here
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters = signature.parameters.values()
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue  # cannot be passed by name
        prop = _property(hints.get(p.name, p.annotation))
        if p.default is p.empty:
            required.append(p.name)
        elif isinstance(p.default, (str, int, float, bool)):
            prop["default"] = p.default
        properties[p.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if closed and not any(p.kind is p.VAR_KEYWORD for p in parameters):
        schema["additionalProperties"] = False
    return schema


def _property(annotation: Any) -> dict[str, Any]:
    prop: dict[str, Any] = {}
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        notes = [e for e in extras if isinstance(e, str)]
        if notes:
            prop["description"] = notes[0]
        annotation = base
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if members and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = members[0] if len(members) == 1 else annotation
    if annotation is inspect.Parameter.empty:
        prop["type"] = "string"
    else:
        kind = _JSON_TYPES.get(typing.get_origin(annotation) or annotation)
        if kind:
            prop["type"] = kind
    return prop


def _builtin_arguments(
    name: str, arguments: dict[str, Any], conversation: Iterable[Message]
) -> dict[str, Any]:
    code = arguments.get("code")
    if code is None and name == "run_tests":
        for message in reversed(list(conversation)):
            if message.get("role") == "system":  # its prose mentions ```python blocks
                continue
            code = extract_code(str(message.get("content", "")))
            if code is not None:
                break
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f'{name} needs "code": a string with the program (none was found)')
    return {"code": code}


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _signature(fn: ToolFunction) -> str:
    """`(a: int, b: int = 1)`: parameters as the agent should pass them, no return type."""
    try:
        try:
            signature = inspect.signature(fn, eval_str=True)
        except Exception:  # annotations naming things not importable here
            signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    parts = []
    for p in signature.parameters.values():
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            annotation = p.annotation
            text += f": {annotation.__name__ if isinstance(annotation, type) else annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return f"({', '.join(parts)})"
