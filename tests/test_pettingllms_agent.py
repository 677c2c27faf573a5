"""The authors' AgentNode (pettingllms dialect): prompts, the turn loop, tools and the trace."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from mas_support import ScriptedRuntime, by_agent, user_message
from metaagentx.mas import AgentNode as OurAgentNode
from metaagentx.mas import Limits, execution_of, run_design, start_execution, use_runtime
from metaagentx.mas.pettingllms.core import Context, Message, MessageType
from metaagentx.mas.pettingllms.nodes.agent_node import (
    FINAL_NOW_CODE,
    FINAL_NOW_MATH,
    AgentNode,
    summary_of,
)
from metaagentx.mas.pettingllms.tools import ToolRegistry
from metaagentx.mas.protocol import ExecutionLimitExceeded

CODE = "```python\nprint(6 * 7)\n```"
FINAL = "6 * 7 = 42.\n<delivery>6*7=42</delivery>\nFINAL ANSWER: \\boxed{42}"


def host_python(arguments: dict[str, Any]) -> str:
    """The host's `python` tool: JSON with {"result": "json"}, readable text otherwise."""
    proc = subprocess.run(
        [sys.executable, "-c", arguments["code"]],
        input=arguments.get("stdin", ""),
        capture_output=True,
        text=True,
        timeout=20,
    )
    status = "ok" if proc.returncode == 0 else "error"
    if arguments.get("result") == "json":
        return json.dumps(
            {
                "status": status,
                "returncode": proc.returncode,
                "stdout": proc.stdout,
                "stderr": proc.stderr,
            }
        )
    return f"status: {status}\nstdout:\n{proc.stdout}"


def runtime(replies: Any, domain: str = "math", **kwargs: Any) -> ScriptedRuntime:
    reply = replies if callable(replies) else by_agent(replies)
    return ScriptedRuntime(reply, domain=domain, tools={"python": host_python}, **kwargs)


def run_agent(agent: AgentNode, rt: ScriptedRuntime, context: Context | None = None):
    """Run one agent on the task (or `context`); returns (message, execution)."""
    with use_runtime(rt):
        execution = start_execution(rt)
        question = Message(rt.task["question"], MessageType.USER_INPUT)
        return agent(context or Context([question])), execution


def test_first_agent_sees_the_question_and_a_final_reply_ends_it() -> None:
    rt = runtime({"Solver": FINAL})
    message, _ = run_agent(AgentNode("Solver", "Solve it."), rt)
    assert message.message_type == MessageType.AGENT_RESPONSE and message.content == FINAL
    assert message.sender == "Solver"
    assert message.metadata == {"agent_name": "Solver", "turns": 1, "delivery": "6*7=42"}
    assert len(rt.calls) == 1 and rt.calls[0]["max_tokens"] == Limits().max_tokens_per_call
    system, user = rt.calls[0]["messages"]
    assert user == {"role": "user", "content": "What is 6 * 7?"}
    assert system["content"].startswith("Solve it.")
    assert "<delivery>" in system["content"] and "FINAL ANSWER: \\boxed{" in system["content"]
    assert "<tool_call>" not in system["content"]  # no tools: no tool instructions


def test_later_agents_see_the_question_and_earlier_deliveries() -> None:
    long_reply = "x" * 2000 + " the tail"
    earlier = [
        Message(FINAL, MessageType.AGENT_RESPONSE, sender="A"),
        Message("Working.\nFINAL ANSWER: \\boxed{41}", MessageType.AGENT_RESPONSE, sender="B"),
        Message(long_reply, MessageType.AGENT_RESPONSE, sender="C"),
        Message("not an agent", MessageType.INTERMEDIATE),
    ]
    context = Context([Message("What is 6 * 7?", MessageType.USER_INPUT), *earlier])
    rt = runtime({"Judge": FINAL})
    run_agent(AgentNode("Judge", "Judge them."), rt, context)
    user = user_message(rt.calls[0])
    assert user.startswith("**Original Question:**\nWhat is 6 * 7?")
    assert "[A]:\n6*7=42\n" in user and "[B]:\n\\boxed{41}\n" in user
    assert "[C]:\n" + "x" * 200 + "\n...(reasoning omitted)...\n" in user
    assert user.endswith(
        "the tail\n\nUsing the original question and the analysis above, give your own solution."
    )
    assert "not an agent" not in user
    assert summary_of("<solution>print(1)</solution>") == "<solution>print(1)</solution>"


def test_code_domain_asks_for_a_solution_block() -> None:
    rt = runtime({"Coder": "<solution>print(1)</solution>"}, domain="code")
    run_agent(AgentNode("Coder", "Write code."), rt)
    system = rt.calls[0]["messages"][0]["content"]
    assert "<solution>...</solution>" in system and "FINAL ANSWER" not in system


def test_python_blocks_run_without_any_tool_registered() -> None:
    rt = runtime({"Solver": [CODE, FINAL]})
    message, execution = run_agent(AgentNode("Solver", "Solve it.", max_turns=1), rt)
    assert message.content == FINAL and message.metadata["turns"] == 2
    assert rt.tool_calls == [
        {
            "agent": "Solver",
            "name": "python",
            "arguments": {"code": "print(6 * 7)", "stdin": "", "result": "json"},
        }
    ]
    second = rt.calls[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": CODE}
    assert second[-1] == {"role": "user", "content": "Code executed successfully.\nOutput: 42"}
    assert execution.tool_calls == 1
    (event,) = [e for e in execution.trace if e["type"] == "agent"]
    assert event["turns"][0]["tool_calls"] == [
        {
            "name": "python",
            "arguments": {"code": "print(6 * 7)"},
            "output": "Code executed successfully.\nOutput: 42",
        }
    ]


@pytest.mark.parametrize(("max_turns", "calls"), [(0, 2), (1, 3), (2, 4)])
def test_max_turns_counts_tool_rounds_then_forces_an_answer(max_turns: int, calls: int) -> None:
    rt = runtime({"Solver": [CODE] * calls + [FINAL]})  # keeps writing code
    message, _ = run_agent(AgentNode("Solver", "Solve it.", max_turns=max_turns), rt)
    assert len(rt.calls) == calls and len(rt.tool_calls) == calls - 1
    assert rt.calls[-1]["messages"][-1] == {"role": "user", "content": FINAL_NOW_MATH}
    assert message.content == CODE and message.metadata["turns"] == calls


def test_forced_final_message_follows_the_domain() -> None:
    rt = runtime({"Coder": CODE}, domain="code")
    run_agent(AgentNode("Coder", "Write code.", max_turns=0), rt)
    assert rt.calls[-1]["messages"][-1]["content"] == FINAL_NOW_CODE


def test_the_hosts_max_turns_caps_the_loop_without_tripping() -> None:
    rt = runtime({"Solver": CODE}, limits=Limits(max_turns=3))
    message, execution = run_agent(AgentNode("Solver", "Solve it."), rt)  # max_turns=10
    assert len(rt.calls) == 3 and len(rt.tool_calls) == 2
    assert rt.calls[-1]["messages"][-1]["content"] == FINAL_NOW_MATH
    assert execution.limit_error is None and message.message_type == MessageType.AGENT_RESPONSE


def test_registered_python_execute_is_what_python_blocks_and_tool_calls_run() -> None:
    seen: list[str] = []
    registry = ToolRegistry()
    registry.register("python_execute", lambda code: seen.append(code) or "own tool ran")
    call = '<tool_call>{"name": "python_execute", "parameters": {"code": "1"}}</tool_call>'
    rt = runtime({"Solver": [CODE, call, FINAL]})
    _, execution = run_agent(AgentNode("Solver", "Solve it.", registry, max_turns=3), rt)
    assert seen == ["print(6 * 7)", "1"] and rt.tool_calls == []  # never the host's python
    assert rt.calls[1]["messages"][-1]["content"] == "own tool ran"
    assert rt.calls[2]["messages"][-1]["content"] == "Tool 'python_execute' returned: own tool ran"
    assert execution.tool_calls == 2  # each in-process call counted once
    (event,) = [e for e in execution.trace if e["type"] == "agent"]
    assert [c["name"] for t in event["turns"] for c in t["tool_calls"]] == ["python_execute"] * 2


@pytest.mark.parametrize("key", ["parameters", "arguments"])
def test_tool_calls_with_parameters_or_arguments_and_schemas_in_the_prompt(key: str) -> None:
    registry = ToolRegistry()
    registry.register(
        "add",
        lambda a, b: a + b,
        "Add two integers.",
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    )
    call = f'<tool_call>{{"name": "add", "{key}": {{"a": 2, "b": 3}}}}</tool_call>'
    rt = runtime({"Solver": [call, FINAL]})
    run_agent(AgentNode("Solver", "Use tools.", tool_registry=registry), rt)
    system = rt.calls[0]["messages"][0]["content"]
    assert json.dumps(registry.get_tool_schemas(), indent=2) in system
    assert '"description": "Add two integers."' in system and "<tool_call>" in system
    assert rt.calls[1]["messages"][-1] == {"role": "user", "content": "Tool 'add' returned: 5"}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            '<tool_call>{"name": "boom", "arguments": {}}</tool_call>',
            "Error executing tool: RuntimeError: broken",
        ),
        (
            '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
            "Error executing tool: ValueError: Tool 'nope' not found",
        ),
        ("<tool_call>{not json}</tool_call>", "Error: invalid JSON in <tool_call>"),
        ('<tool_call>{"arguments": {}}</tool_call>', 'Error: a tool call needs a string "name"'),
    ],
)
def test_tool_failures_are_messages_to_the_agent(reply: str, expected: str) -> None:
    registry = ToolRegistry()
    registry.register("boom", lambda: (_ for _ in ()).throw(RuntimeError("broken")))
    rt = runtime({"Solver": [reply, FINAL]})
    message, _ = run_agent(AgentNode("Solver", "x", registry), rt)
    assert rt.calls[1]["messages"][-1]["content"].startswith(expected)
    assert message.content == FINAL


def test_tags_inside_think_or_unclosed_run_nothing() -> None:
    for reply in ("<think>```python\nprint(1)\n```</think> done", '<tool_call>{"name": "x"'):
        rt = runtime({"Solver": reply})
        message, _ = run_agent(AgentNode("Solver", "x"), rt)
        assert len(rt.calls) == 1 and rt.tool_calls == [] and message.content == reply


def test_trace_event_has_the_shape_of_ours() -> None:
    rt = runtime({"Solver": FINAL, "Theirs": FINAL})
    with use_runtime(rt):
        execution = start_execution(rt)
        OurAgentNode("Solver", "x", max_turns=1).run()
        context = Context([Message("Q", MessageType.USER_INPUT)]).at("flow/step", "critic", 2)
        AgentNode("Theirs", "x")(context)
    ours, theirs = [e for e in execution.trace if e["type"] == "agent"]
    assert set(theirs) == set(ours)
    assert (theirs["path"], theirs["role"], theirs["round"]) == ("flow/step/Theirs", "critic", 2)
    assert theirs["status"] == "ok" and theirs["reply"] == FINAL and theirs["delivery"] == "6*7=42"


def test_a_tripped_limit_is_recorded_and_propagates() -> None:
    rt = runtime({"Solver": CODE}, limits=Limits(max_llm_calls=1))
    with pytest.raises(ExecutionLimitExceeded):
        run_agent(AgentNode("Solver", "x"), rt)
    (event,) = [e for e in execution_of(rt).trace if e["type"] == "agent"]
    assert (event["status"], event["limit"]) == ("limit_exceeded", "max_llm_calls")
    assert event["reply"] == CODE and event["error"]


def test_constructor_accepts_their_keywords_and_rejects_bad_values() -> None:
    agent = AgentNode("A", "x", None, object(), 3, False, temperature=0.2)
    assert agent.max_turns == 3 and agent.config == {"temperature": 0.2}
    assert list(AgentNode("B", "x", tools=["python"]).tool_registry.list_tools()) == ["python"]
    with pytest.raises(ValueError):
        AgentNode("C", "x", max_turns=-1)
    with pytest.raises(TypeError):
        AgentNode("D", None)  # type: ignore[arg-type]


def test_an_agent_run_directly_records_the_final_output() -> None:
    script = "import sys\nfrom workflow import AgentNode\nAgentNode('A', 'x', max_turns=1).run(question)\n"
    rt = runtime({"A": FINAL})
    outcome = run_design(script, rt, dialect="pettingllms")
    assert outcome.status == "ok", outcome.error
    assert (outcome.final_output, outcome.delivery) == (FINAL, "6*7=42")
    assert "FINAL ANSWER: \\boxed{" in rt.calls[0]["messages"][0]["content"]  # their prompt


PAPER_CODE_SCRIPT = """\
import subprocess
from workflow import AgentNode, Workflow, ToolRegistry

def execute_code(code: str) -> str:
    result = subprocess.run(["python", "-c", code], capture_output=True, text=True, timeout=10)
    return result.stdout if result.returncode == 0 else "Error: " + result.stderr

tools = ToolRegistry()
tools.register("execute_code", execute_code, "Run Python code and return its output.")
coder = AgentNode(name="Coder", system_prompt="Write the program.", tool_registry=tools,
                  max_turns=2)
workflow = Workflow(name="code_workflow")
workflow.add_node(coder)
result = workflow.run(question)
print(os.path.basename("/x/done"), sys.version_info.major)
"""
CALL_EXECUTE = (
    '<tool_call>{"name": "execute_code", "arguments": {"code": "print(2 + 3)"}}</tool_call>'
)
SOLUTION = (
    "<delivery>prints a+b</delivery>\n"
    "<solution>\nprint(sum(map(int, input().split())))\n</solution>"
)


def test_the_papers_code_script_runs_unchanged_in_process() -> None:
    rt = runtime({"Coder": [CALL_EXECUTE, SOLUTION]}, domain="code")
    outcome = run_design(PAPER_CODE_SCRIPT, rt, dialect="pettingllms")
    assert outcome.status == "ok", outcome.error
    assert outcome.final_output == SOLUTION and outcome.delivery == "prints a+b"
    assert "done 3" in outcome.stdout  # os and sys without an import
    assert rt.calls[1]["messages"][-1]["content"] == "Tool 'execute_code' returned: 5\n"
    assert [(c["agent"], c["name"]) for c in rt.tool_calls] == [("Coder", "python")]
    assert outcome.usage["tool_calls"] == 1  # the subprocess call is the one tool call


def sandbox_run(script: str, reply, domain: str = "math"):
    """Run `script` in the real sandbox (Runner, dialect "auto") with the real python tool."""
    from metaagentx.rollout.environment import GradingEnvironment
    from metaagentx.sandbox.runner import Runner
    from metaagentx.sandbox.settings import SandboxSettings
    from sandbox_support import ScriptedBatcher

    batcher = ScriptedBatcher(reply)
    environment = GradingEnvironment()

    async def go():
        runner = Runner(batcher, SandboxSettings(timeout_s=20.0))
        try:
            task = {"question": "What is 2+2?", "domain": domain}
            return await runner.run(script, task, tools={"python": environment.python_tool})
        finally:
            runner.close()

    try:
        return asyncio.run(go()), batcher
    finally:
        environment.close()


def test_a_math_env_script_runs_in_the_real_sandbox() -> None:
    script = (
        "from workflow import AgentNode, Workflow, ToolRegistry\n"
        "from utils.environments.math_env import python_execute\n"
        "registry = ToolRegistry()\n"
        "registry.register('python_execute', python_execute, 'Run Python code.')\n"
        "solver = AgentNode('Solver', 'Compute it.', tool_registry=registry, max_turns=1)\n"
        "workflow = Workflow(name='w')\n"
        "workflow.add_node(solver)\n"
        "print(os.getpid() > 0)\n"
        "workflow.run(question)\n"
    )

    def reply(request) -> str:
        last = request.messages[-1]["content"]
        if request.messages[-1]["role"] == "user" and "Output:" in last:
            return f"It printed {last.split('Output: ')[1]}.\nFINAL ANSWER: \\boxed{{4}}"
        return "```python\nprint(2 + 2)\n```"

    result, batcher = sandbox_run(script, reply)
    assert result.status == "ok", result.error
    assert result.final_output == "It printed 4.\nFINAL ANSWER: \\boxed{4}"
    assert batcher.requests[1].messages[-1]["content"] == "Code executed successfully.\nOutput: 4"
    assert result.usage["tool_calls"] == 1 and "True" in result.stdout
    (event,) = [e for e in result.workflow_trace if e["type"] == "agent"]
    assert event["turns"][0]["tool_calls"][0]["name"] == "python_execute"


def test_the_papers_code_script_runs_in_the_real_sandbox() -> None:
    def reply(request) -> str:
        last = request.messages[-1]["content"]
        return SOLUTION if last.startswith("Tool 'execute_code' returned:") else CALL_EXECUTE

    result, batcher = sandbox_run(PAPER_CODE_SCRIPT, reply, domain="code")
    assert result.status == "ok", result.error
    assert result.final_output == SOLUTION and "done 3" in result.stdout
    assert batcher.requests[1].messages[-1]["content"] == "Tool 'execute_code' returned: 5\n"
    assert result.usage["tool_calls"] == 1
