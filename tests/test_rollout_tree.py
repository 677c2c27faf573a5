"""The hierarchical rollout: tree shape, rewards, group ids, exact ids, cuts and timeouts."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from grading_support import build_engine, rollout_engine
from metaagentx.llm.base import GenerationRequest, GenerationResult
from metaagentx.llm.batcher import RequestBatcher
from metaagentx.rl.advantages import role_advantages
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.progress import RolloutProgress
from metaagentx.rollout.tree import RolloutEngine, TreeSettings, parse_mode
from metaagentx.sandbox import SandboxSettings
from metaagentx.tasks.base import Task
from metaagentx.tasks.synthetic import generate

GOOD_DESIGN = """Analysis: one solver is enough.
Pattern: single_agent
```python
from workflow import AgentNode, Workflow

solver = AgentNode(name="Solver", system_prompt="Solve it.", max_turns=1)
workflow = Workflow(name="one")
workflow.add_node(solver)
result = workflow.run()
```"""

LOOPING_DESIGN = """Pattern: single_agent
```python
from workflow import AgentNode, Workflow

solver = AgentNode(name="Solver", system_prompt="Solve it.", max_turns=1)
workflow = Workflow(name="spin")
workflow.add_node(solver)
while True:
    pass
```"""

NO_CODE = "Analysis: I will just think about it. Pattern: single_agent"


class ScriptedTreeGenerator:
    """Test double for the batcher: designer and agent replies from fixed tables, keyed by
    problem, design and execution; records every result it returns."""

    def __init__(
        self, designs: dict[tuple[str, int], str], answers: dict[str, str], slow: set[str]
    ):
        self.designs, self.answers, self.slow = designs, answers, slow
        self.returned: list[GenerationResult] = []
        self.requests: list[GenerationRequest] = []
        self._ids = itertools.count(1000)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        if request.role == "designer":
            question = request.messages[-1]["content"]
            pid = next(p for (p, _), _ in self.designs.items() if p in question)
            index = sum(
                1
                for r in self.requests[:-1]
                if r.role == "designer" and pid in r.messages[-1]["content"]
            )
            text = self.designs[(pid, index)]
        else:
            execution = request.metadata["execution_id"]
            if execution in self.slow:
                await asyncio.sleep(60)
            text = self.answers[execution]
        n = next(self._ids)
        result = GenerationResult(
            [n, n + 1], [n + 2, n + 3, n + 4], [-0.1, -0.2, -0.3], text, "stop", role=request.role
        )
        self.returned.append(result)
        return result


def _math(pid: str, question: str, answer: str) -> Task:
    return Task(id=pid, domain="math", prompt=question, answer=answer, source="test")


def _engine(generator, **overrides) -> tuple[RolloutEngine, GradingEnvironment]:
    """An engine and the environment to close after it (which stops its runner's sandbox)."""
    sandbox = SandboxSettings(timeout_s=overrides.pop("timeout_s", 3.0))
    settings = TreeSettings(**{"num_designs": 2, "num_executions": 2, **overrides})
    return build_engine(generator, settings, sandbox)


def test_rewards_design_means_and_groups_match_hand_computed_values():
    p1 = _math("p1", "Problem p1: what is 6*7?", "42")
    p2 = _math("p2", "Problem p2: what is 5+5?", "10")
    designs = {
        ("p1", 0): GOOD_DESIGN,
        ("p1", 1): NO_CODE,
        ("p2", 0): LOOPING_DESIGN,
        ("p2", 1): GOOD_DESIGN,
    }
    answers = {
        "p1/d0/e0": "<delivery>42</delivery> \\boxed{42}",
        "p1/d0/e1": "\\boxed{41}",
        "p2/d1/e0": "\\boxed{10}",
        "p2/d1/e1": "never sent",
    }
    generator = ScriptedTreeGenerator(designs, answers, slow={"p2/d1/e1"})
    engine, environment = _engine(generator, straggler_deadline_s=6.0, timeout_s=2.0)
    try:
        tree = engine.rollout_sync([p1, p2], step=3)
    finally:
        environment.close()

    d = {design.design_id: design for design in tree.designs()}
    assert set(d) == {"p1/d0", "p1/d1", "p2/d0", "p2/d1"}
    assert [e.status for e in d["p1/d0"].executions] == ["ok", "ok"]
    assert [e.reward.total for e in d["p1/d0"].executions] == [1.0, 0.0]
    assert d["p1/d0"].reward == 0.5
    assert not d["p1/d1"].design.valid and d["p1/d1"].design.reason == "no_code_block"
    assert d["p1/d1"].executions == [] and d["p1/d1"].reward == 0.0
    assert [e.status for e in d["p2/d0"].executions] == ["timeout", "timeout"]
    assert d["p2/d0"].reward == 0.0
    # the second agent reply never comes before the sandbox's wall clock runs out
    assert [e.status for e in d["p2/d1"].executions] == ["ok", "timeout"]
    assert d["p2/d1"].reward == 0.5

    trajectories = tree.trajectories()
    designers = [t for t in trajectories if t.role == "designer"]
    executors = [t for t in trajectories if t.role == "executor"]
    assert sorted((t.design_id, t.reward, t.group_id) for t in designers) == [
        ("p1/d0", 0.5, "p1"),
        ("p1/d1", 0.0, "p1"),
        ("p2/d0", 0.0, "p2"),
        ("p2/d1", 0.5, "p2"),
    ]
    # executions that timed out before any agent reply left nothing to train on
    assert sorted((t.execution_id, t.reward, t.group_id) for t in executors) == [
        ("p1/d0/e0", 1.0, "p1/d0"),
        ("p1/d0/e1", 0.0, "p1/d0"),
        ("p2/d1/e0", 1.0, "p2/d1"),
    ]
    advantages = role_advantages(trajectories)
    by_design = {
        t.design_id: a
        for t, a in zip(trajectories, advantages.advantages, strict=True)
        if t.role == "designer"
    }
    assert by_design["p1/d0"] == pytest.approx(0.7071, abs=1e-3)  # (0.5 - 0.25) / std([0.5, 0])
    assert by_design["p1/d1"] == pytest.approx(-0.7071, abs=1e-3)

    metrics = tree.metrics()
    assert metrics["designs/valid_frac"] == 0.75
    assert metrics["designs/reject/no_code_block"] == 1
    assert metrics["executions/status/timeout"] == 3
    assert metrics["accuracy/math"] == pytest.approx(2 / 8)  # 2 correct of 4 designs x N=2
    records = tree.to_records()
    assert [r["problem_id"] for r in records] == ["p1", "p2"]
    assert records[1]["designs"][0]["executions"][1]["status"] == "timeout"


def test_straggler_deadline_cuts_what_is_still_running():
    task = _math("p1", "Problem p1: what is 6*7?", "42")
    designs = {("p1", 0): GOOD_DESIGN, ("p1", 1): GOOD_DESIGN}
    answers = {"p1/d0/e0": "\\boxed{42}", "p1/d0/e1": "\\boxed{42}", "p1/d1/e0": "\\boxed{42}", "p1/d1/e1": "x"}
    generator = ScriptedTreeGenerator(designs, answers, slow={"p1/d1/e1"})
    engine, environment = _engine(generator, straggler_deadline_s=2.0, timeout_s=30.0)
    started = time.monotonic()
    try:
        tree = engine.rollout_sync([task])
    finally:
        environment.close()
    assert time.monotonic() - started < 15
    d = {design.design_id: design for design in tree.designs()}
    assert [e.status for e in d["p1/d1"].executions] == ["ok", "cut"]
    assert d["p1/d1"].executions[1].reward.total == 0.0
    assert d["p1/d1"].reward == 0.5 and d["p1/d0"].reward == 1.0
    assert tree.metrics()["executions/status/cut"] == 1
    assert tree.to_records()[0]["designs"][1]["executions"][1]["status"] == "cut"


def test_trajectory_ids_are_exactly_the_generated_ones_and_seeds_differ():
    task = _math("p1", "Problem p1: what is 6*7?", "42")
    designs = {("p1", 0): GOOD_DESIGN, ("p1", 1): GOOD_DESIGN}
    answers = {f"p1/d{d}/e{e}": "\\boxed{42}" for d in range(2) for e in range(2)}
    generator = ScriptedTreeGenerator(designs, answers, slow=set())
    engine, environment = _engine(generator)
    try:
        tree = engine.rollout_sync([task])
    finally:
        environment.close()
    returned = {tuple(r.response_ids): r for r in generator.returned}
    for trajectory in tree.trajectories():
        source = returned[tuple(trajectory.response_ids)]
        assert trajectory.prompt_ids == source.prompt_ids
        assert trajectory.old_logprobs == source.logprobs
    seeds = [r.sampling.seed for r in generator.requests]
    assert len(set(seeds)) == len(seeds) == 6  # 2 designs + 4 executions, all distinct
    again = ScriptedTreeGenerator(designs, answers, slow=set())
    engine, environment = _engine(again)
    try:
        engine.rollout_sync([task])
    finally:
        environment.close()
    assert sorted(r.sampling.seed for r in again.requests) == sorted(seeds)  # reproducible


def test_modes_and_bad_input():
    assert parse_mode("designed") == ("designed", None)
    assert parse_mode("single_agent") == ("single_agent", "single_agent")
    assert parse_mode("fixed:ensemble_vote") == ("fixed", "ensemble_vote")
    with pytest.raises(ValueError, match="unknown rollout mode"):
        parse_mode("fixed:")
    generator = ScriptedTreeGenerator({}, {}, set())
    with pytest.raises(ValueError, match="no example design 'nope'"):
        _engine(generator, mode="fixed:nope")
    engine, environment = _engine(generator)
    with pytest.raises(ValueError, match="unique"):
        engine.rollout_sync([_math("x", "q", "1"), _math("x", "q", "1")])
    environment.close()


@pytest.fixture(scope="module")
def tiny_batcher(hf_generator):
    batcher = RequestBatcher(hf_generator, max_batch_size=64, max_wait_s=0.01)
    yield batcher
    batcher.close()


def test_untrained_tiny_model_rollout_4x2x2_has_the_right_shape(tiny_batcher, hf_generator):
    tasks = generate("arith", 4, level=2, split="train", seed=0)
    settings = TreeSettings(
        num_designs=2,
        num_executions=2,
        designer_max_new_tokens=48,
        executor_max_new_tokens=16,
        compact_prompt=True,
    )
    with rollout_engine(tiny_batcher, settings, SandboxSettings(timeout_s=20.0)) as (engine, _):
        tree = engine.rollout_sync(tasks)
    assert [len(p.designs) for p in tree.problems] == [2, 2, 2, 2]
    metrics = tree.metrics()
    invalid = [d for d in tree.designs() if not d.design.valid]
    assert sum(v for k, v in metrics.items() if k.startswith("designs/reject/")) == len(invalid)
    assert len(invalid) >= 6  # an untrained model almost never writes a valid script
    for design in tree.designs():
        assert len(design.executions) == (2 if design.design.valid else 0)
        assert 0 < len(design.generation.response_ids) <= 48
    designers = [t for t in tree.trajectories() if t.role == "designer"]
    assert len(designers) == 8
    generated = {d.design_id: d.generation for d in tree.designs()}
    for t in designers:  # exactly the sampled ids, no re-tokenisation
        assert t.response_ids == generated[t.design_id].response_ids
        assert t.prompt_ids == generated[t.design_id].prompt_ids
        assert t.old_logprobs == generated[t.design_id].logprobs


def test_fixed_mode_executes_the_example_design_with_the_tiny_model(tiny_batcher):
    tasks = generate("arith", 2, level=1, split="train", seed=1)
    settings = TreeSettings(mode="fixed:ensemble_vote", num_executions=2, executor_max_new_tokens=8)
    # the wall-clock timeout only guards against hangs: a loaded CI machine must not trip it
    with rollout_engine(tiny_batcher, settings, SandboxSettings(timeout_s=90.0)) as (engine, _):
        tree = engine.rollout_sync(tasks)
    assert [len(p.designs) for p in tree.problems] == [1, 1]
    executors = [t for t in tree.trajectories() if t.role == "executor"]
    assert not [t for t in tree.trajectories() if t.role == "designer"]
    assert {e.status for _, _, e in tree.executions()} == {"ok"}
    assert len(executors) == 2 * 2 * 3  # problems x N x three voters
    assert all(0 < len(t.response_ids) <= 8 for t in executors)


class CodeWriterTesterScript:
    """Test double for the batcher in `fixed:code_writer_tester`: the writer always delivers
    `program`; the tester calls the real run_tests tool once, then gives its verdict."""

    def __init__(self, program: str):
        self.program = program
        self.requests: list[GenerationRequest] = []

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        system = request.messages[0]["content"]
        if "competitive programmer" in system:
            text = f"<delivery>\n```python\n{self.program}\n```\n</delivery>"
        elif not any(m["role"] == "tool" for m in request.messages):
            text = '<tool_call>{"name": "run_tests", "arguments": {}}</tool_call>'
        else:
            text = "<delivery>VERDICT: CORRECT</delivery>"
        return GenerationResult([1], [2, 3], [-0.1, -0.2], text, "stop", role=request.role)


def test_run_tests_tool_sees_only_public_tests_and_the_reward_uses_hidden_ones():
    from metaagentx.tasks.base import TestCase

    task = Task(
        id="c1",
        domain="code",
        prompt="Read n and print n doubled.",
        public_tests=(TestCase("stdio", "2\n", "4"),),
        hidden_tests=(TestCase("stdio", "5\n", "10"),),
        grade_public=False,
    )
    # right on the public test (2 -> 4), wrong on the hidden one (5 -> 7)
    generator = CodeWriterTesterScript("n = int(input())\nprint(n + 2)")
    engine, environment = _engine(
        generator, mode="fixed:code_writer_tester", num_executions=1, timeout_s=30.0
    )
    try:
        tree = engine.rollout_sync([task])
    finally:
        environment.close()
    [(_, _, execution)] = list(tree.executions())
    assert execution.status == "ok"
    tool_reports = [
        m["content"] for r in generator.requests for m in r.messages if m["role"] == "tool"
    ]
    assert tool_reports and all("passed 1/1 public tests" in t for t in tool_reports)
    assert execution.reward.total == 0.0  # the hidden test decides, and it fails


@pytest.mark.parametrize(
    "pattern",
    [
        "single_agent",
        "single_agent_python",
        "ensemble_vote",
        "ensemble_judge",
        "reflection",
        "debate",
        "router",
        "verify_loop",
        "code_writer_tester",
    ],
)
def test_every_example_design_runs_with_the_tiny_model(pattern, tiny_batcher):
    if pattern == "code_writer_tester":
        tasks = generate("code_fn", 1, level=1, split="train", seed=0)
    else:
        tasks = generate("arith", 1, level=1, split="train", seed=0)
    settings = TreeSettings(mode=f"fixed:{pattern}", num_executions=1, executor_max_new_tokens=8)
    with rollout_engine(tiny_batcher, settings, SandboxSettings(timeout_s=60.0)) as (engine, _):
        tree = engine.rollout_sync(tasks)
    [(_, _, execution)] = list(tree.executions())
    assert execution.status == "ok", execution.result.error
    executors = [t for t in tree.trajectories() if t.role == "executor"]
    assert executors and all(0 < len(t.response_ids) <= 8 for t in executors)


def test_the_progress_bar_counts_every_execution_of_valid_designs():
    task = _math("p1", "Problem p1: what is 6*7?", "42")
    designs = {("p1", 0): GOOD_DESIGN, ("p1", 1): NO_CODE}  # the rejected one runs nothing
    answers = {f"p1/d0/e{e}": "\\boxed{42}" for e in range(2)}
    engine, environment = _engine(ScriptedTreeGenerator(designs, answers, slow=set()))
    progress = RolloutProgress(1, enabled=False)
    try:
        with progress:
            tree = engine.rollout_sync([task], progress=progress)
    finally:
        environment.close()
    assert progress.done == 2 == sum(len(d.executions) for d in tree.designs())
