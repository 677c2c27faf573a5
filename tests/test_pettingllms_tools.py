"""The authors' tools (pettingllms dialect): ToolRegistry, math_env, search_env, subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import pytest

from mas_support import ScriptedRuntime, by_agent
from metaagentx.mas import Limits, execution_of, run_design, start_execution, use_runtime
from metaagentx.mas.pettingllms import subprocess_shim as shim
from metaagentx.mas.pettingllms.core import Context, Message, MessageType
from metaagentx.mas.pettingllms.nodes.agent_node import AgentNode
from metaagentx.mas.pettingllms.tools import ToolRegistry
from metaagentx.mas.pettingllms.utils.environments import math_env, search_env
from metaagentx.mas.protocol import ExecutionLimitExceeded

SEARCH_SPEC = {
    "name": "search",
    "description": "Search the web.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def host_python(arguments: dict[str, Any]) -> str:
    """The host's `python` tool in JSON mode: runs the code for real."""
    proc = subprocess.run(
        [sys.executable, "-c", arguments["code"]],
        input=arguments.get("stdin", ""),
        capture_output=True,
        text=True,
        timeout=20,
    )
    status = "ok" if proc.returncode == 0 else "error"
    return json.dumps(
        {
            "status": status,
            "returncode": proc.returncode,
            "stdout": proc.stdout,
            "stderr": proc.stderr,
        }
    )


def timed_out(arguments: dict[str, Any]) -> str:
    return json.dumps({"status": "timeout", "returncode": -9, "stdout": "partial", "stderr": ""})


def make_runtime(python=host_python, replies=None, limits=None) -> ScriptedRuntime:
    """Host tools: python, search, fetch, run_tests."""
    tools = {
        "python": python,
        "search": lambda args: f"results for {args['query']}",
        "fetch": lambda args: f"page {args['url']}",
        "run_tests": lambda args: "public tests: 2/2 passed",
    }
    return ScriptedRuntime(by_agent(replies or {}, default="done"), tools=tools, limits=limits)


@contextmanager
def active(runtime: ScriptedRuntime) -> Iterator[ScriptedRuntime]:
    """`runtime` active, with a fresh execution."""
    with use_runtime(runtime):
        start_execution(runtime)
        yield runtime


@pytest.fixture
def rt():
    with active(make_runtime()) as runtime:
        yield runtime


def announce(runtime: ScriptedRuntime, *specs: dict[str, Any]) -> None:
    runtime.task["host_tools"] = list(specs)


# ---- ToolRegistry ------------------------------------------------------------------------------
def test_register_is_name_first_and_every_method_answers(rt) -> None:
    def add(a: int, b: int = 1) -> int:
        """Add two numbers.

        More text."""
        return a + b

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    registry = ToolRegistry()
    assert registry.register("plus", add, "Adds.", schema) is add
    registry.register("derived", add)
    assert registry.get_tool("plus") is add and registry.get_tool("missing") is None
    assert registry.list_tools() == ["plus", "derived"]
    assert registry.get_tool_schemas() == [
        {
            "type": "function",
            "function": {"name": "plus", "description": "Adds.", "parameters": schema},
        },
        {
            "type": "function",
            "function": {
                "name": "derived",
                "description": "Add two numbers.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "a": {"type": "integer"},
                        "b": {"type": "integer", "default": 1},
                    },
                    "required": ["a"],
                },
            },
        },
    ]
    assert registry.call_tool("plus", {"a": 2, "b": 3}) == "5"
    registry.register("listing", lambda: {"x": [1, 2]})
    assert registry.call_tool("listing", {}) == '{"x": [1, 2]}'
    assert execution_of(rt).tool_calls == 2
    with pytest.raises(ValueError, match="Tool 'nope' not found"):
        registry.call_tool("nope", {})


def test_register_also_takes_a_bare_function_and_annotated_descriptions(rt) -> None:
    def lookup(term: Annotated[str, "What to look up."], limit: int | None = None) -> str:
        return term * 2

    registry = ToolRegistry()
    registry.register(lookup)
    (schema,) = registry.get_tool_schemas()
    assert schema["function"]["name"] == "lookup"
    assert schema["function"]["parameters"]["properties"] == {
        "term": {"type": "string", "description": "What to look up."},
        "limit": {"type": "integer"},
    }
    assert registry.call_tool("lookup", {"term": "ab"}) == "abab"
    with pytest.raises(TypeError):
        registry.register("bad", "not callable")  # type: ignore[arg-type]


def test_in_process_calls_count_against_the_tool_limit() -> None:
    with active(make_runtime(limits=Limits(max_tool_calls=1))):
        _count_against_the_limit()


def _count_against_the_limit() -> None:
    registry = ToolRegistry()
    registry.register("echo", lambda text: text)
    assert registry.call_tool("echo", {"text": "hi"}) == "hi"
    with pytest.raises(ExecutionLimitExceeded, match="echo by 'script'"):
        registry.call_tool("echo", {"text": "again"})
    with pytest.raises(ExecutionLimitExceeded):  # a tripped run runs no tool at all
        registry.call_tool("echo", {"text": "third"})


def test_builtin_names_map_onto_the_hosts_tools(rt) -> None:
    registry = ToolRegistry(["python", "python_execute", "run_tests"])
    assert registry.list_tools() == ["python", "python_execute", "run_tests"]
    assert registry.call_tool("python", {"code": "print(1 + 1)"}) == (
        "Code executed successfully.\nOutput: 2"
    )
    assert registry.call_tool("run_tests", {"code": "x = 1"}) == "public tests: 2/2 passed"
    assert [c["name"] for c in rt.tool_calls] == ["python", "run_tests"]
    assert rt.tool_calls[1]["arguments"] == {"code": "x = 1"}
    assert execution_of(rt).tool_calls == 2  # host calls, not counted a second time
    with pytest.raises(ValueError, match="unknown tool 'search'"):
        ToolRegistry(["search"])  # not announced by the host


def test_a_tool_the_host_announced_is_usable_by_name(rt) -> None:
    announce(rt, SEARCH_SPEC)
    registry = ToolRegistry(["search"])
    (schema,) = registry.get_tool_schemas()
    assert schema["function"] == {
        "name": "search",
        "description": "Search the web.",
        "parameters": SEARCH_SPEC["parameters"],
    }
    assert registry.call_tool("search", {"query": "pi"}) == "results for pi"
    assert rt.tool_calls == [{"agent": "script", "name": "search", "arguments": {"query": "pi"}}]


# ---- math_env ----------------------------------------------------------------------------------
def test_math_environment_runs_code_in_the_python_tool(rt) -> None:
    environment = math_env.MathEnvironment(timeout=5, work_dir="/nonexistent/dir")
    assert environment.execute("print(2 ** 10)") == "Code executed successfully.\nOutput: 1024"
    assert environment.execute("x = 1") == "Code executed successfully. No output produced."
    failed = environment.execute("1 / 0")
    assert failed.startswith("Error executing code (exit code 1):\n")
    assert "ZeroDivisionError" in failed
    assert math_env.python_execute("print('hi')") == "Code executed successfully.\nOutput: hi"
    assert math_env.get_math_environment() is math_env.get_math_environment(timeout=1)
    assert rt.tool_calls[0] == {
        "agent": "script",
        "name": "python",
        "arguments": {"code": "print(2 ** 10)", "stdin": "", "result": "json"},
    }


def test_math_environment_reports_a_timeout() -> None:
    with active(make_runtime(python=timed_out)):
        text = math_env.MathEnvironment().execute("while True: pass")
    assert text.startswith("Error: code execution timed out") and "partial" in text


# ---- search_env --------------------------------------------------------------------------------
def test_search_without_a_host_tool_returns_a_clear_text(rt) -> None:
    environment = search_env.SearchEnvironment(api_key="ignored")
    assert not environment.available
    assert environment.search("pi").startswith(
        "search is not configured on this host (no network from the sandbox); "
    )
    assert environment.fetch("https://x.org").startswith("fetch is not configured on this host")
    assert search_env.search("pi") == environment.search("pi") and rt.tool_calls == []


def test_search_and_fetch_call_the_hosts_tools_for_the_calling_agent() -> None:
    call = '<tool_call>{"name": "web_search", "parameters": {"query": "tau"}}</tool_call>'
    with active(make_runtime(replies={"Researcher": [call, "FINAL ANSWER: \\boxed{1}"]})) as rt:
        _search_and_fetch(rt)


def _search_and_fetch(rt: ScriptedRuntime) -> None:
    announce(rt, SEARCH_SPEC, {"name": "fetch", "description": "Fetch a page."})
    environment = search_env.SearchEnvironment()
    assert environment.search("pi", filter_year=2024) == "results for pi"
    assert environment.fetch("https://x.org") == "page https://x.org"
    registry = ToolRegistry()
    registry.register("web_search", environment.search)
    AgentNode("Researcher", "Look it up.", registry)(
        Context([Message("Q", MessageType.USER_INPUT)])
    )
    assert [(c["agent"], c["name"], c["arguments"]) for c in rt.tool_calls] == [
        ("script", "search", {"query": "pi", "filter_year": 2024}),
        ("script", "fetch", {"url": "https://x.org"}),
        ("Researcher", "search", {"query": "tau"}),
    ]
    assert rt.calls[-1]["messages"][-1]["content"] == "Tool 'web_search' returned: results for tau"


def test_a_script_sees_search_not_configured_through_its_agent() -> None:
    script = (
        "from workflow import AgentNode, Workflow, ToolRegistry\n"
        "from utils.environments.search_env import SearchEnvironment\n"
        "tools = ToolRegistry()\n"
        "tools.register('search', SearchEnvironment().search, 'Search the web.')\n"
        "workflow = Workflow().add_node(AgentNode('R', 'Research.', tools, max_turns=1))\n"
        "workflow.run(question)\n"
    )
    call = '<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>'
    runtime = ScriptedRuntime(by_agent({"R": [call, "FINAL ANSWER: \\boxed{42}"]}))
    outcome = run_design(script, runtime)  # auto: `utils` makes it theirs
    assert outcome.status == "ok", outcome.error
    assert "search is not configured" in runtime.calls[1]["messages"][-1]["content"]
    assert outcome.usage["tool_calls"] == 1  # the in-process call


# ---- subprocess --------------------------------------------------------------------------------
def test_python_dash_c_runs_in_the_python_tool(rt) -> None:
    done = shim.run(["python", "-c", "print(input())"], capture_output=True, text=True, input="hi")
    assert isinstance(done, subprocess.CompletedProcess)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "")
    raw = shim.run([sys.executable, "-c", "print(1)"], stdout=shim.PIPE, stderr=shim.STDOUT)
    assert (raw.stdout, raw.stderr) == (b"1\n", None)
    assert shim.check_output(["python3", "-c", "print(3)"], text=True) == "3\n"
    assert shim.call(["python3", "-c", "import sys; sys.exit(2)"], stderr=shim.DEVNULL) == 2
    assert rt.tool_calls[0]["arguments"] == {
        "code": "print(input())",
        "stdin": "hi",
        "result": "json",
    }
    assert {c["agent"] for c in rt.tool_calls} == {"script"}


def test_uncaptured_output_goes_to_the_scripts_stdout(rt, capsys) -> None:
    done = shim.run(["python", "-c", "print('shown')"])
    assert done.stdout is None and capsys.readouterr().out == "shown\n"


def test_check_raises_called_process_error(rt) -> None:
    with pytest.raises(subprocess.CalledProcessError) as caught:
        shim.run(
            ["python", "-c", "import sys; sys.exit('bad')"],
            capture_output=True,
            text=True,
            check=True,
        )
    assert caught.value.returncode == 1 and "bad" in caught.value.stderr


def test_a_timeout_raises_timeout_expired() -> None:
    with active(make_runtime(python=timed_out)), pytest.raises(subprocess.TimeoutExpired) as caught:
        shim.run(["python", "-c", "while True: pass"], capture_output=True, text=True, timeout=3)
    assert caught.value.timeout == 3 and caught.value.output == "partial"


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "-la"],
        ["python", "script.py"],
        ["python", "-c", "print(1)", "extra"],
        "python -c 'print(1)'",
        ["bash", "-c", "echo hi"],
    ],
)
def test_anything_but_python_dash_c_is_not_found(rt, args) -> None:
    with pytest.raises(FileNotFoundError, match="only `python -c CODE`"):
        shim.run(args, capture_output=True)
    assert rt.tool_calls == []


def test_shell_and_popen_are_refused(rt) -> None:
    with pytest.raises(FileNotFoundError, match="shell=True"):
        shim.run(["python", "-c", "print(1)"], shell=True)
    with pytest.raises(AttributeError, match="Popen is not available"):
        shim.Popen  # noqa: B018
    assert shim.TimeoutExpired is subprocess.TimeoutExpired and shim.SubprocessError
