"""Host-side tools (`tools.host`): config validation, the host's limits, and calls from design
scripts running in the real sandbox (the child has no network; the host makes the calls)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from metaagentx.config import ConfigError, build_config
from metaagentx.mas.limits import Limits
from metaagentx.rollout.environment import GradingEnvironment, grading_environment
from metaagentx.rollout.host_tools import HostToolError, load_host_tools
from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.tasks.base import Task
from metaagentx.tool_settings import HostTool
from sandbox_support import ScriptedBatcher

HERE = __name__  # host tools below are imported by this module's name, like a user's package
TASK = Task(id="t", domain="math", prompt="What is 2+2?", answer="4")


def lookup(term: str, limit: int = 3) -> list[str]:
    """Look a term up in the host's glossary."""
    return [f"{term}-{i}" for i in range(limit)]


def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "late"


def boom(reason: str) -> str:
    raise RuntimeError(f"exploded: {reason}\nsecond line")


def big(n: int) -> str:
    return "x" * n


async def later(text: str) -> dict[str, str]:
    await asyncio.sleep(0)
    return {"echo": text}


class _Search(BaseHTTPRequestHandler):
    bodies: ClassVar[list[object]] = []  # every request, in order

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Search.bodies.append({"path": self.path, "body": body, "auth": self.headers["X-Key"]})
        if self.path == "/fail":
            self._reply(500, "text/plain", b"index offline")
        elif self.path == "/text":
            self._reply(200, "text/plain", f"plain {body['query']}".encode())
        else:
            results = {"results": [f"{body['query']} result {i}" for i in range(2)]}
            self._reply(200, "application/json", json.dumps(results).encode())

    def _reply(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Search)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _tools(server: str) -> list[HostTool]:
    search = {
        "description": "Search the web.",
        "headers": {"X-Key": "${HOST_TOOL_TEST_KEY}"},
        "parameters": {
            "type": "object",
            "required": ["query"],
            "properties": {"query": {"type": "string", "description": "the search terms"}},
        },
    }
    return [
        HostTool(name="lookup", function=f"{HERE}:lookup"),
        HostTool(name="search", url=f"{server}/search", **search),
        HostTool(name="search_text", url=f"{server}/text", **search),
        HostTool(name="search_down", url=f"{server}/fail", **search),
        HostTool(name="slow", function=f"{HERE}:slow", timeout_s=0.5),
        HostTool(name="boom", function=f"{HERE}:boom"),
        HostTool(name="big", function=f"{HERE}:big", max_result_chars=50),
        HostTool(name="later", function=f"{HERE}:later", max_argument_bytes=40),
    ]


@pytest.fixture(scope="module")
def environment(server: str) -> Iterator[GradingEnvironment]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOST_TOOL_TEST_KEY", "k-123")
        handlers = load_host_tools(_tools(server))  # headers are read here, at load
    environment = GradingEnvironment(SandboxSettings(timeout_s=20.0), host_tools=handlers)
    yield environment
    environment.close()


def _run(environment, script, reply, limits=None):
    """Run `script` as a design for TASK through the environment's runner and tools."""
    batcher = ScriptedBatcher(reply)

    async def go():
        runner = environment.runner(batcher)
        try:
            return await runner.run(
                script, TASK.public_view(), tools=environment.tools(TASK), limits=limits
            )
        finally:
            runner.close()

    return asyncio.run(go()), batcher


def _calls(*calls: tuple[str, dict]) -> str:
    return "\n".join(
        "<tool_call>" + json.dumps({"name": n, "arguments": a}) + "</tool_call>" for n, a in calls
    )


def _agent_script(tools: list[str]) -> str:
    return (
        "from workflow import AgentNode, ToolRegistry\n"
        "announced = sorted(t['name'] for t in task['host_tools'])\n"
        f"agent = AgentNode('researcher', f'announced={{announced}}', tools=ToolRegistry({tools!r}))\n"
        "agent.run(question)\n"
    )


def _echo_tools(calls: str):
    """A scripted agent: first the tool calls, then a delivery quoting every tool output."""

    def reply(request):
        outputs = [m["content"] for m in request.messages if m["role"] == "tool"]
        if not outputs:
            return calls
        return "<delivery>" + "\n|".join(outputs) + "</delivery> \\boxed{4}"

    return reply


# -- config ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tool", "error"),
    [
        ({"name": "t", "function": "json:dumps", "url": "http://x"}, "exactly one of"),
        ({"name": "t", "description": "d"}, "exactly one of"),
        ({"name": "python", "function": "json:dumps"}, "built-in tool name"),
        ({"name": "t", "function": "not a path"}, "'package.module:attr'"),
        ({"name": "t", "url": "ftp://x", "description": "d"}, "http:// or https://"),
        ({"name": "t", "url": "http://x"}, "needs a 'description'"),
        ({"name": "t", "function": "json:dumps", "headers": {"a": "b"}}, "url tools only"),
        ({"name": "bad-name", "function": "json:dumps"}, "tools.host.0.name"),
    ],
)
def test_config_refuses_bad_tools_in_one_line(tool: dict, error: str) -> None:
    with pytest.raises(ConfigError, match=r"tools\.host") as caught:
        build_config({"tools": {"host": [tool]}})
    assert error in str(caught.value) and "\n" not in str(caught.value)


def test_config_refuses_repeated_names() -> None:
    tool = {"name": "t", "function": "json:dumps"}
    with pytest.raises(ConfigError, match="repeated: \\['t'\\]"):
        build_config({"tools": {"host": [tool, tool]}})


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("no_such_module_mx:f", "ModuleNotFoundError"),
        (f"{HERE}:missing", "AttributeError"),
        (f"{HERE}:HERE", "is not callable"),
    ],
)
def test_an_unimportable_function_fails_the_environment_in_one_line(path: str, error: str) -> None:
    config = build_config(overrides=[f"tools.host=[{{name: finder, function: '{path}'}}]"])
    with pytest.raises(HostToolError) as caught:
        grading_environment(config)
    message = str(caught.value)
    assert "'finder'" in message and path in message and error in message
    assert "\n" not in message


def test_a_missing_header_variable_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOST_TOOL_TEST_KEY", raising=False)
    with pytest.raises(HostToolError, match=r"'search'.*HOST_TOOL_TEST_KEY"):
        load_host_tools([t for t in _tools("http://127.0.0.1:9") if t.name == "search"])


def test_a_function_tool_is_described_by_its_signature_and_docstring() -> None:
    (handler,) = load_host_tools([HostTool(name="lookup", function=f"{HERE}:lookup")])
    assert handler.spec() == {
        "name": "lookup",
        "description": "Look a term up in the host's glossary.",
        "parameters": {
            "type": "object",
            "properties": {"term": {"type": "string"}, "limit": {"type": "integer", "default": 3}},
            "required": ["term"],
            "additionalProperties": False,
        },
    }


# -- the host's limits (handlers called directly) --------------------------------------------
def _sync(handler):
    """A host tool's (async) handler as a plain function, each call on an event loop of its own."""
    return lambda arguments: asyncio.run(handler(arguments))


def test_handlers_enforce_the_limits_and_never_raise(environment: GradingEnvironment) -> None:
    tools = {name: _sync(tool) for name, tool in environment.tools(TASK).items()}
    assert tools["later"]({"text": "hi"}) == '{"echo": "hi"}'  # async function, JSON result
    refused = tools["later"]({"text": "y" * 40})
    assert refused.startswith("Error: the arguments of later are 52 bytes of JSON; the limit is 40")
    clipped = tools["big"]({"n": 80})
    assert clipped == "x" * 50 + "\n[... 30 more characters cut]"
    assert tools["big"]({"n": 50}) == "x" * 50
    started = time.monotonic()
    assert tools["slow"]({"seconds": 5}) == "Error: slow timed out after 0.5 s"
    assert time.monotonic() - started < 2.0
    assert tools["boom"]({"reason": "r"}) == "Error: boom failed: RuntimeError: exploded: r"
    assert tools["lookup"]({"nope": 1}).startswith("Error: lookup failed: TypeError:")
    assert tools["search_down"]({"query": "q"}) == (
        "Error: search_down failed: RuntimeError: HTTP 500: index offline"
    )


def test_abandoned_calls_cannot_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("metaagentx.rollout.host_tools.MAX_RUNNING", 1)
    (tool,) = load_host_tools([HostTool(name="slow", function=f"{HERE}:slow", timeout_s=0.2)])
    handler = _sync(tool.handler)
    assert handler({"seconds": 0.8}) == "Error: slow timed out after 0.2 s"
    assert handler({"seconds": 0}) == "Error: slow is busy (1 calls still running)"
    time.sleep(1.0)  # the abandoned call has finished by now
    assert handler({"seconds": 0}) == "late"


# -- from design scripts in the real sandbox --------------------------------------------------
def test_scripts_call_function_and_http_tools_through_the_host(
    environment: GradingEnvironment,
) -> None:
    before = len(_Search.bodies)
    calls = _calls(
        ("lookup", {"term": "cat", "limit": 2}),
        ("search", {"query": "cats"}),
        ("search_text", {"query": "dogs"}),
    )
    result, batcher = _run(
        environment, _agent_script(["lookup", "search", "search_text"]), _echo_tools(calls)
    )
    assert result.status == "ok", result.error
    assert result.delivery == (
        '["cat-0", "cat-1"]\n|{"results": ["cats result 0", "cats result 1"]}\n|plain dogs'
    )
    assert _Search.bodies[before:] == [
        {"path": "/search", "body": {"query": "cats"}, "auth": "k-123"},
        {"path": "/text", "body": {"query": "dogs"}, "auth": "k-123"},
    ]
    assert result.usage["tool_calls"] == 3
    system = batcher.requests[0].messages[0]["content"]
    assert system.startswith("announced=['big', 'boom', 'later', 'lookup', 'search', ")
    assert (
        "- lookup(term: string, limit: integer = 3): Look a term up in the host's glossary."
        in system
    )
    assert "- search(query: string): Search the web. (query: the search terms)" in system
    assert "Tools:" in system
    assert "slow" not in system.partition("Tools:")[2]  # only the agent's own tools are shown


def test_failures_come_back_to_the_agent_and_the_execution_goes_on(
    environment: GradingEnvironment,
) -> None:
    calls = _calls(
        ("slow", {"seconds": 3}),
        ("boom", {"reason": "bad"}),
        ("big", {"n": 100}),
        ("later", {"text": "z" * 100}),
        ("search_down", {"query": "q"}),
    )
    result, _ = _run(
        environment,
        _agent_script(["slow", "boom", "big", "later", "search_down"]),
        _echo_tools(calls),
    )
    assert result.status == "ok", result.error
    assert result.delivery.split("\n|") == [
        "Error: slow timed out after 0.5 s",
        "Error: boom failed: RuntimeError: exploded: bad",
        "x" * 50 + "\n[... 50 more characters cut]",
        "Error: the arguments of later are 112 bytes of JSON; the limit is 40. Send shorter "
        "arguments.",
        "Error: search_down failed: RuntimeError: HTTP 500: index offline",
    ]


def test_host_tool_calls_count_against_max_tool_calls(environment: GradingEnvironment) -> None:
    calls = _calls(*[("lookup", {"term": str(i)}) for i in range(3)])
    result, _ = _run(
        environment, _agent_script(["lookup"]), _echo_tools(calls), limits=Limits(max_tool_calls=2)
    )
    assert result.status == "limit_exceeded"
    assert "max_tool_calls" in result.error


def test_an_unconfigured_tool_name_is_a_clear_error(environment: GradingEnvironment) -> None:
    result, batcher = _run(environment, _agent_script(["lookup", "serch"]), _echo_tools(""))
    assert result.status == "design_error" and not batcher.requests
    assert (
        "unknown tool 'serch'; built-ins: ['python', 'run_tests']; host tools configured: "
        "['big', 'boom', 'later', 'lookup', 'search'" in result.error
    )


def test_without_host_tools_nothing_is_announced() -> None:
    plain = GradingEnvironment(SandboxSettings(timeout_s=20.0))
    script = (
        "from workflow import AgentNode, ToolRegistry\n"
        "try:\n"
        "    ToolRegistry(['search'])\n"
        "    note = 'registered'\n"
        "except ValueError as exc:\n"
        "    note = str(exc)\n"
        "AgentNode('a', f'{\"host_tools\" in task}|{note}', max_turns=1).run(question)\n"
    )
    try:
        result, batcher = _run(plain, script, lambda request: "\\boxed{4}")
    finally:
        plain.close()
    assert result.status == "ok", result.error
    assert (
        batcher.requests[0]
        .messages[0]["content"]
        .startswith(
            "False|unknown tool 'search'; built-ins: ['python', 'run_tests']; host tools "
            "configured: none"
        )
    )
