"""Host-side tools: functions or HTTP endpoints a user registers, callable by agents by name.

A design script runs in the sandbox, which has no network and sees no host files; a tool that
needs either (web search, a retrieval index, a company API) runs here, on the host, and the
script reaches it over the execution's existing RPC (`mas.tools.call_host_tool`, or
`ToolRegistry(["search"])` for an agent). The config section `tools.host` lists them; the
grading environment loads them once (`load_host_tools`: functions imported, `${VAR}` headers
read) and hands each execution one handler per tool and the runner their specs, which the child
reads as `task["host_tools"]`.

Every call is bounded here, whatever the agent sends: JSON arguments over `max_argument_bytes`
are refused, a call past `timeout_s` is abandoned, results are clipped to `max_result_chars`,
and any failure becomes an error text for the agent; the execution goes on. Calls count against
the execution's `max_tool_calls` like every other tool.

Self-contained (pydantic, stdlib, httpx imported on first HTTP call) so config.py can import it.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
import re
import threading
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from metaagentx.mas.tools import BUILTIN_TOOLS, TOOL_ALIASES

log = logging.getLogger(__name__)

RESERVED_NAMES = frozenset(BUILTIN_TOOLS) | frozenset(TOOL_ALIASES)
_JSON_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean",
    list: "array", tuple: "array", dict: "object", type(None): "null",
}  # fmt: skip
MAX_RUNNING = 64  # calls of one tool alive at once, abandoned (timed-out) ones included
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class HostToolError(ValueError):
    """A configured host tool cannot be loaded (one line naming the tool and the fix)."""


class HostTool(BaseModel):
    """One tool that runs on the host: a Python function or an HTTP endpoint (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name agents call it by (an identifier; not a built-in tool name such as python or run_tests).",
    )
    description: str | None = Field(
        None,
        description="What the tool does, shown to agents; default: the function's docstring (required for url tools).",
    )
    parameters: dict[str, Any] | None = Field(
        None,
        description="JSON schema of the arguments object; default: from the function's signature, or any object for url tools.",
    )
    function: str | None = Field(
        None,
        description="A Python callable on the host, 'package.module:attr', imported when the grading environment is built and called with the arguments as keywords (async functions too).",
    )
    url: str | None = Field(
        None,
        description="An HTTP endpoint the host POSTs the arguments to as JSON; the response (JSON or text) is the result.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="url tools: request headers; ${VAR} in a value is read from the host's environment at load (keeps keys out of saved configs).",
    )
    timeout_s: float = Field(
        30.0,
        gt=0.0,
        description="Past this the call is abandoned and the agent told so (a function's thread cannot be killed and finishes in the background).",
    )
    max_argument_bytes: int = Field(
        16384, ge=2, description="Larger JSON arguments are refused with a message to the agent."
    )
    max_result_chars: int = Field(
        8000,
        ge=1,
        description="Results are clipped to this many characters (a note says how many were cut).",
    )

    @field_validator("function")
    @classmethod
    def _import_path(cls, value: str | None) -> str | None:
        if value is not None and not _IMPORT_PATH.fullmatch(value):
            raise ValueError("'function' must be 'package.module:attr'")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("'url' must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> HostTool:
        """Exactly one of function/url; headers only for url; no built-in name; url tools need a
        description (there is no docstring to take it from)."""
        if (self.function is None) == (self.url is None):
            raise ValueError(f"host tool {self.name!r} needs exactly one of 'function' or 'url'")
        if self.headers and self.url is None:
            raise ValueError(f"host tool {self.name!r}: 'headers' apply to url tools only")
        if self.name in RESERVED_NAMES:
            raise ValueError(
                f"host tool name {self.name!r} is a built-in tool name; choose another"
            )
        if self.url is not None and not (self.description or "").strip():
            raise ValueError(f"host tool {self.name!r} (url) needs a 'description' for the agents")
        return self


class ToolsConfig(BaseModel):
    """Tools beyond the built-ins (`python`, `run_tests`)."""

    model_config = ConfigDict(extra="forbid")

    host: list[HostTool] = Field(
        default_factory=list,
        description="Host-side tools agents may call by name (each: name, description, parameters, function or url, headers, timeout_s, max_argument_bytes, max_result_chars).",
    )

    @model_validator(mode="after")
    def _unique(self) -> ToolsConfig:
        names = [tool.name for tool in self.host]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"host tool names must be unique; repeated: {duplicates}")
        return self


class HostToolHandler:
    """A loaded host tool: `spec()` is what the child is told, `handler(arguments) -> str` is what
    the runner calls (on its tool pool). The handler never raises: refusals, timeouts and
    failures are texts for the agent."""

    def __init__(
        self,
        config: HostTool,
        call: Callable[[dict[str, Any]], Any],
        description: str,
        parameters: dict[str, Any],
    ) -> None:
        self.config = config
        self.name = config.name
        self.description = description
        self.parameters = parameters
        self._call = call
        self._warned = False
        self._running = 0  # threads of this tool still alive
        self._lock = threading.Lock()

    def spec(self) -> dict[str, Any]:
        """`{name, description, parameters}`: one entry of the child's `task["host_tools"]`."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def handler(self, arguments: dict[str, Any]) -> str:
        """Call the tool within its config's limits; a text for the agent whatever happens.

        The call runs on a thread of its own. One past `timeout_s` is abandoned, not killed
        (Python cannot kill a thread): it finishes in the background, and while `MAX_RUNNING`
        calls of this tool are alive new ones are refused, so a hung tool cannot pile up
        threads. HTTP calls also carry httpx timeouts, so theirs end by themselves."""
        c = self.config
        try:
            size = len(json.dumps(arguments, ensure_ascii=False).encode())
        except (TypeError, ValueError):
            return f"Error: the arguments of {self.name} are not JSON"
        if size > c.max_argument_bytes:
            return (
                f"Error: the arguments of {self.name} are {size} bytes of JSON; the limit is "
                f"{c.max_argument_bytes}. Send shorter arguments."
            )
        with self._lock:
            if self._running >= MAX_RUNNING:
                return f"Error: {self.name} is busy ({self._running} calls still running)"
            self._running += 1
        try:
            future = _start_thread(lambda: self._call(arguments), f"host-tool-{self.name}")
        except RuntimeError as exc:  # "can't start new thread"
            self._finished(None)
            return f"Error: {self.name} could not start: {exc}"
        future.add_done_callback(self._finished)
        wait_futures([future], timeout=c.timeout_s)
        if not future.done():
            self._warn("timed out after %g s", c.timeout_s)
            return f"Error: {self.name} timed out after {c.timeout_s:g} s"
        try:
            value = future.result()
        except Exception as exc:  # the tool's failure is the agent's feedback, not a crash
            self._warn("failed: %s", _one_line(exc))
            return f"Error: {self.name} failed: {_one_line(exc)}"
        return clip_result(result_text(value), c.max_result_chars)

    def _finished(self, _future: Future[Any] | None) -> None:
        with self._lock:
            self._running -= 1

    def close(self) -> None:
        """Release what the tool holds (a url tool's connections)."""
        close = getattr(self._call, "close", None)
        if callable(close):
            close()

    def _warn(self, message: str, *args: Any) -> None:
        """Log a tool's first failure as a warning (a broken endpoint shows), the rest quietly."""
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        log.log(level, "host tool %s " + message, self.name, *args)


def load_host_tools(configs: Sequence[HostTool]) -> list[HostToolHandler]:
    """Import every function tool and resolve every url tool's headers, now (when the grading
    environment is built), so a broken config fails at once with one line naming the tool."""
    return [_load(config) for config in configs]


def _load(config: HostTool) -> HostToolHandler:
    if config.function is not None:
        fn = import_function(config.name, config.function)
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        description = config.description or (doc[0] if doc else config.name)
        parameters = config.parameters or schema_from_signature(fn)
        return HostToolHandler(config, lambda arguments: fn(**arguments), description, parameters)
    assert config.url is not None
    headers = {key: _expand(config.name, value) for key, value in config.headers.items()}
    poster = _HttpPoster(config.url, headers, config.timeout_s)
    parameters = config.parameters or {"type": "object"}
    return HostToolHandler(config, poster, str(config.description), parameters)


def import_function(name: str, path: str) -> Callable[..., Any]:
    """`package.module:attr` (attr may be dotted) as a callable; HostToolError otherwise."""
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # anything a user module raises on import
        raise HostToolError(
            f"host tool {name!r}: cannot import function {path!r}: {_one_line(exc)}"
        ) from None
    if not callable(target):
        raise HostToolError(f"host tool {name!r}: {path!r} is not callable")
    return target


def _expand(name: str, value: str) -> str:
    missing = [v for v in _VARIABLE.findall(value) if v not in os.environ]
    if missing:
        raise HostToolError(
            f"host tool {name!r}: header needs environment variable(s) {missing}, not set"
        )
    return _VARIABLE.sub(lambda match: os.environ[match.group(1)], value)


class _HttpPoster:
    """POST the arguments as JSON; the JSON (or text) response is the result. One client per
    tool (connection reuse; httpx clients are thread-safe), made on first use."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout_s: float) -> None:
        self.url, self.headers, self.timeout_s = url, dict(headers), timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self, arguments: dict[str, Any]) -> Any:
        response = self._client_().post(self.url, json=arguments)
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _client_(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx  # only hosts with a url tool pay for the import

                self._client = httpx.Client(headers=self.headers, timeout=self.timeout_s)
            return self._client


def _start_thread(fn: Callable[[], Any], name: str) -> Future[Any]:
    """Run `fn` on a fresh daemon thread (a hung tool holds only its own thread, never the
    pool's); coroutines it returns are run to completion there."""
    future: Future[Any] = Future()

    def target() -> None:
        try:
            value = fn()
            if asyncio.iscoroutine(value):
                value = asyncio.run(value)
            future.set_result(value)
        except Exception as exc:
            future.set_exception(exc)
        except BaseException as exc:  # SystemExit & co. must not escape as themselves
            future.set_exception(RuntimeError(f"{type(exc).__name__}: {exc}"))

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


def result_text(value: Any) -> str:
    """A result as the agent reads it: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def clip_result(text: str, limit: int) -> str:
    """The first `limit` characters, and how many more there were."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut]"


def schema_from_signature(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of `fn`'s keyword arguments: simple annotated types, defaults, required."""
    try:
        try:
            signature = inspect.signature(fn, eval_str=True)
        except Exception:  # annotations naming things not importable here
            signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return {"type": "object"}
    properties: dict[str, Any] = {}
    required: list[str] = []
    extra = False
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue  # cannot be passed by name
        if p.kind is p.VAR_KEYWORD:
            extra = True
            continue
        prop: dict[str, Any] = {}
        kind = _json_type(p.annotation)
        if kind is not None:
            prop["type"] = kind
        if p.default is p.empty:
            required.append(p.name)
        elif isinstance(p.default, str | int | float | bool | type(None)):
            prop["default"] = p.default
        properties[p.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _json_type(annotation: Any) -> str | list[str] | None:
    if annotation in _JSON_TYPES:
        return _JSON_TYPES[annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [_JSON_TYPES.get(typing.get_origin(a) or a) for a in typing.get_args(annotation)]
        return None if None in kinds else list(dict.fromkeys(k for k in kinds if k))
    return _JSON_TYPES.get(origin)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


__all__ = [
    "HostTool",
    "HostToolError",
    "HostToolHandler",
    "ToolsConfig",
    "load_host_tools",
]
