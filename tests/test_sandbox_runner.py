"""Runner: RPC multiplexing, exact trace recording, tools, error kinds and host limits.

Every script produces its output the way designs do, through the workflow library
(`AgentNode`, `EnsembleNode`, `Workflow` ... `.run()`); only the host-limit and malformed-request
tests also talk to the runtime directly, because bypassing the library is what they check.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from metaagentx.mas.limits import Limits
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings
from sandbox_support import ScriptedBatcher

PRELUDE = "from metaagentx.mas.protocol import current_runtime\nrt = current_runtime()\n"


def run(scripts, *, settings=None, batcher=None, tools=None, extractor=None, limits=None):
    async def go():
        runner = Runner(
            batcher or ScriptedBatcher(),
            settings or SandboxSettings(timeout_s=10.0),
            answer_extractor=extractor,
        )
        try:
            task = {"question": "What is 2+2?", "domain": "math"}
            return await asyncio.gather(
                *(runner.run(s, task, tools=tools, limits=limits) for s in scripts)
            )
        finally:
            runner.close()

    return asyncio.run(go())


def test_concurrent_agent_calls_are_multiplexed_and_recorded_exactly():
    batcher = ScriptedBatcher(lambda req: f"reply to {req.metadata['agent']}: \\boxed{{4}}")
    script = (
        "from workflow import AgentNode, Workflow\n"
        "from workflow.nodes import EnsembleNode\n"
        "members = [AgentNode(f'member{i}', 'Solve it.', max_turns=1, max_tokens=5000) for i in range(5)]\n"
        "workflow = Workflow(name='w')\n"
        "workflow.add_node(EnsembleNode('ensemble', members, strategy='majority_vote'))\n"
        "workflow.run(question)\n"
    )
    limits = Limits(max_tokens_per_call=8192)  # per run: lets the agents ask for 5000 tokens
    (result,) = run(
        [script], batcher=batcher, limits=limits, extractor=lambda out, task: out.split(":")[0]
    )
    assert result.status == "ok", result.error
    assert result.final_output == "reply to member0: \\boxed{4}"  # the tie goes to the first
    assert result.answer == "reply to member0"
    assert sorted(c.agent for c in result.trace) == [f"member{i}" for i in range(5)]
    for call in result.trace:
        request = next(r for r in batcher.requests if r.metadata["agent"] == call.agent)
        assert request.role == "executor"
        assert request.sampling.max_new_tokens == SandboxSettings().max_new_tokens  # host cap
        assert call.messages == request.messages
        assert call.response_ids[0] >= 100 and call.logprobs == [-0.5, -0.25]
    assert result.usage["llm_calls"] == 5 and result.usage["completion_tokens"] == 10
    assert result.usage["agents"] == 5
    assert [e["type"] for e in result.workflow_trace].count("agent") == 5
    assert any(e["type"] == "vote" for e in result.workflow_trace)
    assert "netns" in result.isolation or "process_group" in result.isolation


def test_task_is_injected_and_tools_are_the_callers():
    def reply(req):
        tool_outputs = [m["content"] for m in req.messages if m["role"] == "tool"]
        if not tool_outputs:
            return (
                '<tool_call>{"name": "python", "arguments": {"code": "print(sum(range(10)))"}}</tool_call>\n'
                '<tool_call>{"name": "run_tests", "arguments": {"code": "def f(): return 1"}}</tool_call>'
            )
        return "<delivery>" + "|".join(tool_outputs) + "</delivery>"

    script = (
        "from workflow import AgentNode, ToolRegistry\n"
        "coder = AgentNode('coder', f'domain={task[\"domain\"]}', tools=ToolRegistry(['python', 'run_tests']))\n"
        "coder.run(question)\n"
    )
    seen = []
    batcher = ScriptedBatcher(reply)
    environment = GradingEnvironment()  # the built-in python tool is the environment's
    try:
        (result,) = run(
            [script],
            batcher=batcher,
            tools={"python": environment.python_tool,
                   "run_tests": lambda args: seen.append(args) or "2/2 passed"},
        )
    finally:
        environment.close()
    assert result.status == "ok", result.error
    first = batcher.requests[0].messages
    assert first[-1] == {"role": "user", "content": "What is 2+2?"}  # injected, never re-typed
    assert first[0]["content"].startswith("domain=math")
    assert result.final_output.startswith("<delivery>status: ok")
    assert "45" in result.final_output and result.final_output.endswith("2/2 passed</delivery>")
    assert result.delivery.endswith("2/2 passed")
    assert seen == [{"code": "def f(): return 1"}]
    assert result.usage["tool_calls"] == 2


def test_error_kinds():
    agent = (
        "from workflow import AgentNode\nsolver = AgentNode('solver', 'Solve it.', max_turns=1)\n"
    )
    syntax, no_output, crash, limit = run([
        "def broken(:\n",
        "x = 1\n",
        agent + "solver.run(question)\nraise RuntimeError('agent blew up')\n",
        agent + "second = AgentNode('second', 'Check it.', max_turns=1)\nsolver.run(question)\nsecond.run(question)\n",
    ], limits=Limits(max_agents=1))  # fmt: skip
    assert syntax.status == "design_error" and "SyntaxError" in syntax.error
    assert syntax.error_kind == "SyntaxError"
    assert no_output.status == "design_error" and "no final output" in no_output.error
    assert crash.status == "runtime_error" and "agent blew up" in crash.error
    assert crash.error_kind == "RuntimeError" and crash.final_output is None
    assert limit.status == "limit_exceeded" and limit.error_kind == "max_agents"
    assert [c.agent for c in limit.trace] == ["solver"]


def test_host_side_limits_hold_even_if_the_script_bypasses_mas():
    settings = SandboxSettings(timeout_s=10.0, max_llm_calls=3)
    script = PRELUDE + (
        "for i in range(10):\n"
        "    try:\n"
        "        rt.llm('greedy', [{'role': 'user', 'content': str(i)}])\n"
        "    except Exception:\n"
        "        pass\n"
        "from workflow import AgentNode\n"
        "AgentNode('solver', 'Solve it.', max_turns=1).run(question)\n"
    )
    (result,) = run([script], settings=settings)
    assert result.status == "limit_exceeded" and len(result.trace) == 3
    assert result.final_output is None


def test_timeout_and_a_failing_generator_do_not_hurt_other_executions():
    def reply(req):
        if req.metadata["agent"] == "doomed":
            raise RuntimeError("generator exploded")
        return "fine"

    settings = SandboxSettings(timeout_s=2.0)
    agent = (
        "from workflow import AgentNode\nAgentNode({!r}, 'Solve it.', max_turns=1).run(question)\n"
    )
    started = time.monotonic()
    hang, doomed, ok = run(
        ["while True:\n    pass\n", agent.format("doomed"), agent.format("solver")],
        settings=settings, batcher=ScriptedBatcher(reply),
    )  # fmt: skip
    assert time.monotonic() - started < 15
    assert hang.status == "timeout"
    assert doomed.status == "runtime_error" and "generator exploded" in doomed.error
    assert ok.status == "ok" and ok.final_output == "fine"
    assert ok.usage["cpu_s"] > 0 and ok.duration < 10


@pytest.mark.parametrize("bad", ["[]", "{'role': 'user'}", "[{'role': 'wizard', 'content': 'x'}]"])
def test_malformed_llm_requests_are_refused(bad):
    script = PRELUDE + (
        f"try:\n    rt.llm('a', {bad})\n    refusal = 'accepted'\nexcept Exception as e:\n    refusal = 'refused: ' + str(e)\n"
        "from workflow import AgentNode\n"
        "AgentNode('reporter', 'Report.', max_turns=1).run(refusal)\n"
    )
    (result,) = run([script])
    assert result.status == "ok" and result.final_output.startswith("echo:refused")
    assert [c.agent for c in result.trace] == ["reporter"]


def test_runner_survives_back_to_back_event_loops():
    """Each asyncio.run ends its worker threads and binds its own waiters; the fork server and the
    concurrency limit must outlive them (more runs than `max_concurrency`, so runs wait)."""
    runner = Runner(
        ScriptedBatcher(lambda request: "\\boxed{1}"),
        SandboxSettings(timeout_s=20, max_concurrency=1),
    )
    script = (
        "from workflow import AgentNode, Workflow\n"
        "w = Workflow(name='w')\nw.add_node(AgentNode(name='A', system_prompt='x', max_turns=1))\nw.run()\n"
    )
    task = {"question": "q", "domain": "math"}
    try:
        statuses = [
            [r.status for r in asyncio.run(runner.run_many([(script, task)] * 3))]
            for _ in range(3)
        ]
    finally:
        runner.close()
    assert statuses == [["ok"] * 3] * 3


def test_executions_never_see_torch_or_the_trainers_libraries():
    """The fork server imports only the workflow library: a child inherits its modules, so a
    script can report what was imported before it ran."""
    script = (
        "import sys\n"
        "from workflow import AgentNode\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers', "
        "'numpy'} or m.startswith(('metaagentx.rl', 'metaagentx.llm', 'metaagentx.rollout')))\n"
        "AgentNode('probe', repr(heavy), max_turns=1).run(question)\n"
    )
    batcher = ScriptedBatcher(lambda req: "\\boxed{4}")
    (result,) = run([script], batcher=batcher)
    assert result.status == "ok", result.error
    assert batcher.requests[0].messages[0]["content"].startswith("[]")
