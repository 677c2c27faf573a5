"""Every per-execution limit trips with its own kind, and cannot be swallowed by a script."""

from __future__ import annotations

import pytest

from mas_support import ScriptedRuntime, answer, by_agent
from metaagentx.mas import (
    AgentNode,
    ExecutionLimitExceeded,
    Limits,
    Workflow,
    run_design,
    use_runtime,
)

ENSEMBLE = """
from workflow import AgentNode, Workflow
from workflow.nodes import EnsembleNode
members = [AgentNode(name=f"M{i}", system_prompt="Solve.", max_turns=1) for i in range(3)]
workflow = Workflow(name="w")
workflow.add_node(EnsembleNode(name="E", agents=members))
workflow.run(question)
"""

REFLECTION = """
from workflow import AgentNode, Workflow
from workflow.nodes import ReflectionNode
node = ReflectionNode(name="R", agent=AgentNode(name="S", system_prompt="Solve.", max_turns=1),
                      critic_agent=AgentNode(name="C", system_prompt="Check.", max_turns=1),
                      num_iterations=3)
node.run()
"""

TOOL_LOOP = """
from workflow import AgentNode, ToolRegistry
AgentNode(name="P", system_prompt="Compute.", tools=ToolRegistry(["python"]), max_turns=6).run()
"""

BIG_TOKENS = """
from workflow import AgentNode
AgentNode(name="A", system_prompt="Solve.", max_turns=1, max_tokens=500).run()
"""

LOOP = """
from workflow import AgentNode, Workflow
s = AgentNode(name="S", system_prompt="Solve.", max_turns=1)
v = AgentNode(name="V", system_prompt="Check.", max_turns=1)
workflow = Workflow().add_node(s).add_node(v)
workflow.add_edge(v, s, max_times=50)
workflow.run()
"""


def code_reply(agent: str, messages: list) -> str:
    return "```python\nprint(1)\n```" if agent == "P" else "VERDICT: INCORRECT " + answer("1")


@pytest.mark.parametrize(
    ("script", "limits", "kind"),
    [
        (ENSEMBLE, Limits(max_agents=2), "max_agents"),
        (REFLECTION, Limits(max_llm_calls=3), "max_llm_calls"),
        (TOOL_LOOP, Limits(max_turns=3), "max_turns"),
        (TOOL_LOOP, Limits(max_tool_calls=2), "max_tool_calls"),
        (BIG_TOKENS, Limits(max_tokens_per_call=100), "max_tokens_per_call"),
        (LOOP, Limits(max_steps=5), "max_steps"),
    ],
)
def test_each_limit_trips_with_its_kind(script: str, limits: Limits, kind: str) -> None:
    rt = ScriptedRuntime(code_reply, tools={"python": lambda args: "1"})
    outcome = run_design(script, rt, limits)
    assert outcome.status == "limit_exceeded", outcome.error
    assert outcome.error_kind == kind and kind in (outcome.error or "")


def test_limits_pass_with_room_to_spare() -> None:
    rt = ScriptedRuntime(code_reply, tools={"python": lambda args: "1"})
    assert run_design(REFLECTION, rt, Limits(max_llm_calls=7)).status == "ok"
    assert run_design(ENSEMBLE, rt, Limits(max_agents=3)).status == "ok"


def test_a_swallowed_limit_is_still_reported() -> None:
    script = ENSEMBLE.replace(
        "workflow.run(question)",
        "try:\n    workflow.run()\nexcept Exception:\n    pass\n"
        "AgentNode(name='X', system_prompt='x', max_turns=1).run()",
    )
    rt = ScriptedRuntime(by_agent({}, default=answer("1")))
    outcome = run_design(script, rt, Limits(max_agents=2))
    assert outcome.status == "limit_exceeded" and outcome.error_kind == "max_agents"


def test_limit_raises_in_process_and_stays_tripped() -> None:
    rt = ScriptedRuntime(by_agent({}, default=answer("1")), limits=Limits(max_llm_calls=1))
    agent = AgentNode("A", "x", max_turns=1)
    with use_runtime(rt):
        agent.run()
        with pytest.raises(ExecutionLimitExceeded) as first:
            agent.run()
        with pytest.raises(ExecutionLimitExceeded):
            Workflow().add_node(AgentNode("B", "y", max_turns=1)).run()
    assert first.value.kind == "max_llm_calls" and len(rt.calls) == 1


def test_limits_come_from_the_task_and_reject_unknown_keys() -> None:
    rt = ScriptedRuntime(by_agent({}, default=answer("1")))
    rt.task["limits"] = {"max_tokens_per_call": 123}
    outcome = run_design(BIG_TOKENS.replace("max_tokens=500", "max_tokens=None"), rt)
    assert outcome.status == "ok" and rt.calls[0]["max_tokens"] == 123
    with pytest.raises(ValueError, match="unknown limit"):
        Limits.from_dict({"max_agent": 3})
    with pytest.raises(ValueError):
        Limits(max_turns=0)
    assert Limits.from_dict(Limits(max_steps=4).to_dict()) == Limits(max_steps=4)


def test_a_limit_raised_by_the_host_runtime_is_reported_as_such() -> None:
    def refuse(agent: str, messages: list) -> str:
        raise ExecutionLimitExceeded("host_budget", "the host's token budget is spent")

    outcome = run_design(BIG_TOKENS, ScriptedRuntime(refuse))
    assert (outcome.status, outcome.error_kind) == ("limit_exceeded", "host_budget")


def test_an_agent_stopped_mid_run_leaves_a_trace_event() -> None:
    rt = ScriptedRuntime(code_reply, tools={"python": lambda args: "1\n"})
    outcome = run_design(TOOL_LOOP, rt, Limits(max_tool_calls=2))
    assert outcome.status == "limit_exceeded" and outcome.error_kind == "max_tool_calls"
    (event,) = [e for e in outcome.trace if e["type"] == "agent"]
    assert event["agent"] == "P" and event["status"] == "limit_exceeded"
    assert event["limit"] == "max_tool_calls" and "max_tool_calls" in event["error"]
    # what it had done: three replies, the first two with their (completed) tool calls
    assert [len(turn["tool_calls"]) for turn in event["turns"]] == [1, 1, 0]
    assert event["turns"][0]["tool_calls"][0]["output"] == "1\n"
    assert event["reply"] == "```python\nprint(1)\n```"
    assert event["started"] <= event["ended"]


def test_agents_that_finish_are_marked_ok_and_one_never_started_shows_why() -> None:
    rt = ScriptedRuntime(by_agent({}, default=answer("1")))
    outcome = run_design(ENSEMBLE, rt, Limits(max_agents=2))
    assert outcome.status == "limit_exceeded"
    statuses = sorted(e["status"] for e in outcome.trace if e["type"] == "agent")
    assert statuses == ["limit_exceeded", "ok", "ok"]
    stopped = next(e for e in outcome.trace if e.get("status") == "limit_exceeded")
    assert stopped["limit"] == "max_agents" and stopped["turns"] == []
