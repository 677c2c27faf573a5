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

The config models (`HostTool`, `ToolsConfig`) live in `metaagentx.tool_settings`, which metaagentx.config
imports without this package; this module loads and calls the tools (httpx is imported on a
url tool's first call).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from metaagentx.mas.tools import parameters_schema
from metaagentx.tool_settings import HostTool

log = logging.getLogger(__name__)

MAX_RUNNING = 64  # calls of one tool alive at once, abandoned (timed-out) ones included
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class HostToolError(ValueError):
    """A configured host tool cannot be loaded (one line naming the tool and the fix)."""


class HostToolHandler:
    """A loaded host tool: `spec()` is what the child is told, `handler(arguments) -> str` (a
    coroutine function) is what the runner awaits on its event loop. The handler never raises:
    refusals, timeouts and failures are texts for the agent."""

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

    async def handler(self, arguments: dict[str, Any]) -> str:
        """Call the tool within its config's limits; a text for the agent whatever happens.

        The call runs on a daemon thread of its own and is awaited, so no thread of the tool
        pool waits for it. One past `timeout_s` is abandoned, not killed (Python cannot kill a
        thread): it finishes in the background, and while `MAX_RUNNING` calls of this tool are
        alive new ones are refused, so a hung tool cannot pile up threads. HTTP calls also carry
        httpx timeouts, so theirs end by themselves."""
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
        # The outcome is read from `future` below: the timeout is `not future.done()`, so a
        # TimeoutError the tool raises itself stays a failure of the tool.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(future), c.timeout_s)
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
        parameters = config.parameters or parameters_schema(fn, closed=True)
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
    pool's); coroutines it returns are run to completion there. The future is marked running
    first, as an executor's would be, so it cannot be cancelled: abandoning the wait (the
    `wait_for` timeout cancels the `wrap_future` around it) leaves it to finish, and the
    `MAX_RUNNING` count falls only when the thread is done."""
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()

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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


__all__ = [
    "HostToolError",
    "HostToolHandler",
    "load_host_tools",
]
