"""Every example design runs end to end through the real sandbox Runner (fork server, confined
child, JSON RPC) with a scripted generator on the host, and ensemble members really overlap."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from metaagentx.llm.base import GenerationRequest, GenerationResult
from metaagentx.mas.text import extract_answer
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.sandbox.settings import SandboxSettings
from test_mas_designs import DESIGNS, EXPECTED_AGENTS, PROGRAM, design_reply

GENERATION_S = 0.2  # each scripted generation takes this long, so concurrency shows in time


class ScriptedDesignGenerator:
    """Stands in for the batcher: answers like `design_reply` (routes, uses tools once, approves
    as critic, answers in the domain's format) after GENERATION_S, and records when each agent's
    request was being served on the host."""

    def __init__(self, domain: str) -> None:
        self.reply = design_reply(domain)
        self.spans: list[tuple[str, float, float]] = []

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        started = time.monotonic()
        await asyncio.sleep(GENERATION_S)
        text = self.reply(request.metadata["agent"], request.messages)
        self.spans.append((request.metadata["agent"], started, time.monotonic()))
        return GenerationResult([1, 2], [3, 4, 5], [-0.1, -0.2, -0.3], text, "stop")


def run_design_in_sandbox(path: Path) -> tuple[object, ScriptedDesignGenerator]:
    domain = "code" if path.stem.startswith("code") else "math"
    generator = ScriptedDesignGenerator(domain)
    task = {
        "question": "Add the two numbers." if domain == "code" else "What is 6 * 7?",
        "domain": domain,
    }
    environment = GradingEnvironment(SandboxSettings(timeout_s=30.0))
    tools = {"python": environment.python_tool,
             "run_tests": lambda args: "public tests: 2/2 passed"}

    async def go():
        runner = environment.runner(generator)
        try:
            return await runner.run(path.read_text(), task, tools=tools)
        finally:
            environment.close()

    return asyncio.run(go()), generator


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_example_design_runs_in_the_sandbox(path: Path) -> None:
    result, generator = run_design_in_sandbox(path)
    assert result.status == "ok", result.error
    domain = "code" if path.stem.startswith("code") else "math"
    assert extract_answer(result.final_output or "", domain) == (
        PROGRAM if domain == "code" else "42"
    )
    assert {c.agent for c in result.trace} == EXPECTED_AGENTS[path.stem]
    assert len(result.trace) == len(generator.spans) == result.usage["llm_calls"]
    assert all(
        c.response_ids == [3, 4, 5] and c.logprobs == [-0.1, -0.2, -0.3] for c in result.trace
    )
    ran = {e["agent"] for e in result.workflow_trace if e["type"] == "agent"}
    assert ran == EXPECTED_AGENTS[path.stem]
    assert result.final_output in result.stdout  # the designs print their result


@pytest.mark.parametrize("stem", ["ensemble_vote", "ensemble_judge"])
def test_ensemble_members_requests_overlap_on_the_host(stem: str) -> None:
    result, generator = run_design_in_sandbox(Path(DESIGNS[0]).with_name(f"{stem}.py"))
    assert result.status == "ok", result.error
    members = EXPECTED_AGENTS[stem] - {"Judge"}
    spans = [(start, end) for agent, start, end in generator.spans if agent in members]
    assert len(spans) == len(members) == 3
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all at once
