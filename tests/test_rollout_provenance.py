"""Answers must come from agents: a design earns reward only when a recorded agent response
carries its final answer (checked on the host against the trace, not trusted from the child)."""

from __future__ import annotations

import itertools

import pytest

from grading_support import rollout_engine
from metaagentx.llm.base import GenerationRequest, GenerationResult
from metaagentx.rollout.tree import TreeSettings
from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.tasks.base import Task

# A custom node that computes the answer in script code and records it as the final output.
FORGE = '''
from metaagentx.mas.node import Node, NodeResult
class Forge(Node):
    def process(self, context):
        a, b = [int(t) for t in context.question.split() if t.isdigit()]
        return NodeResult(self.name, "\\\\boxed{%d}" % (a * b), None)
Forge("forge").run(question)
'''

# No agent at all (one is built, never run).
NO_AGENT = '''
from workflow import AgentNode
unused = AgentNode(name="Decoy", system_prompt="x", max_turns=1)
''' + FORGE

# Asks an agent, then throws its reply away and submits its own answer.
OVERRIDE = '''
from workflow import AgentNode
AgentNode(name="Solver", system_prompt="Solve it.", max_turns=1).run(question)
''' + FORGE

HONEST = '''
from workflow import AgentNode
AgentNode(name="Solver", system_prompt="Solve it.", max_turns=1).run(question)
'''


class Scripted:
    """Designer replies with one fixed script; every agent answers `agent_reply`."""

    def __init__(self, script: str, agent_reply: str) -> None:
        self.script, self.agent_reply = script, agent_reply
        self._ids = itertools.count(10)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        text = (f"Pattern: single_agent\n```python\n{self.script}```" if request.role == "designer"
                else self.agent_reply)
        n = next(self._ids)
        return GenerationResult([1, 2], [n, n + 1], [-0.1, -0.2], text, "stop")


@pytest.mark.parametrize(("script", "agent_reply", "status", "reward"), [
    (NO_AGENT, "no idea", "no_agent_answer", 0.0),
    (OVERRIDE, "\\boxed{5}", "no_agent_answer", 0.0),
    (HONEST, "\\boxed{42}", "ok", 1.0),
    (HONEST, "\\boxed{41}", "ok", 0.0),
], ids=["no_agent", "override", "honest", "honest_wrong"])
def test_only_answers_an_agent_gave_earn_reward(script: str, agent_reply: str, status: str,
                                                reward: float) -> None:
    task = Task(id="p1", domain="math", prompt="What is 6 times 7 ?", answer="42")
    settings = TreeSettings(num_designs=1, num_executions=2)
    generator = Scripted(script, agent_reply)
    with rollout_engine(generator, settings, SandboxSettings(timeout_s=20.0)) as (engine, _):
        tree = engine.rollout_sync([task])
    (design,) = tree.designs()
    assert design.design.valid, design.design.detail
    for execution in design.executions:
        assert execution.status == status, execution.result.error
        assert execution.reward.total == reward
    if status != "ok":
        assert tree.metrics()["executions/status/no_agent_answer"] == 2
        assert design.executions[0].reward.reason == "status:no_agent_answer"
