"""The RL step's verl-named metrics and the advantages written into the sample records."""

from __future__ import annotations

import pytest

from metaagentx.llm.base import GenerationResult
from metaagentx.rl.advantages import role_advantages
from metaagentx.rl.metrics import (
    attach_advantages,
    memory_metrics,
    perf_metrics,
    response_length_metrics,
    rollout_metrics,
    trained_advantages,
    update_metrics,
)
from metaagentx.rollout.extract import extract_design
from metaagentx.rollout.rewards import ExecutionReward
from metaagentx.rollout.tree import (
    DesignNode,
    ExecutionNode,
    ProblemNode,
    RolloutTree,
    TreeSettings,
)
from metaagentx.sandbox.records import AgentCall, ExecutionResult
from metaagentx.tasks.base import Task


def test_update_metrics_take_verls_names_and_keep_bookkeeping_under_update():
    update = {
        "pg_loss": 0.1,
        "loss": 0.2,
        "approx_kl": 0.3,
        "kl_ref": 0.4,
        "entropy": 0.5,
        "clip_frac": 0.6,
        "dual_clip_frac": 0.7,
        "grad_norm": 0.8,
        "grad_norm/designer": 0.9,
        "lr/policy": 1e-6,
        "tokens_per_s": 100.0,
        "tokens": 50.0,
        "trajectories/executor": 3.0,
        "skipped_steps": 0.0,
    }
    assert update_metrics(update) == {
        "actor/pg_loss": 0.1,
        "actor/loss": 0.2,
        "actor/ppo_kl": 0.3,
        "actor/kl_loss": 0.4,
        "actor/entropy": 0.5,
        "actor/pg_clipfrac": 0.6,
        "actor/pg_clipfrac_lower": 0.7,
        "actor/grad_norm": 0.8,
        "actor/grad_norm/designer": 0.9,
        "actor/lr/policy": 1e-6,
        "perf/update_tokens_per_s": 100.0,
        "update/tokens": 50.0,
        "update/trajectories/executor": 3.0,
        "update/skipped_steps": 0.0,
    }


def test_response_length_mean_max_and_clip_ratio():
    responses = [(4, "stop"), (8, "length"), (3, "stop"), (9, "length")]
    assert response_length_metrics("executor", responses) == {
        "response_length/executor/mean": 6.0,
        "response_length/executor/max": 9.0,
        "response_length/executor/clip_ratio": 0.5,
    }
    assert response_length_metrics("designer", []) == {}


def test_perf_counts_generated_plus_trained_tokens_per_step_second():
    assert perf_metrics(300, 700, 4.0) == {
        "perf/total_num_tokens": 1000.0,
        "perf/throughput": 250.0,
    }
    assert perf_metrics(1, 1, 0.0)["perf/throughput"] == 0.0


def test_memory_reports_this_process_peak_rss():
    big = bytearray(64 * 1024 * 1024)  # the peak is at least this much above nothing
    metrics = memory_metrics()
    assert metrics["perf/cpu_memory_used_gb"] > len(big) / 1024**3
    assert "perf/max_memory_allocated_gb" not in metrics  # no CUDA in use on a CPU run


def _call(agent: str, n: int, finish: str = "stop") -> AgentCall:
    return AgentCall(agent, [], [1, 2], list(range(3, 3 + n)), [-0.5] * n, "x", finish)


def _execution(eid: str, reward: float, calls: list[AgentCall]) -> ExecutionNode:
    result = ExecutionResult("ok", "out", "1", calls, {}, [], 0.1)
    return ExecutionNode(eid, result, ExecutionReward(reward))


def _tree() -> RolloutTree:
    """One problem, two designs (6 and 16 tokens, the second cut at its limit), two executions
    each; one agent turn of design 0 generated nothing and is not a trajectory."""
    task = Task(id="p", domain="math", prompt="1+1?", answer="2")
    design = extract_design("Pattern: single\n```python\nresult = 1\n```")
    designs = []
    for d, (n, finish) in enumerate([(6, "stop"), (16, "length")]):
        gen = GenerationResult([1], list(range(n)), [-0.1] * n, "t", finish, role="designer")
        node = DesignNode(f"p/d{d}", design, gen, reward=[0.0, 1.0][d])
        node.executions = [
            _execution(f"p/d{d}/e0", 0.0, [_call("a", 2), _call("b", 0)]),
            _execution(f"p/d{d}/e1", 1.0, [_call("a", 4), _call("b", 8, "length")]),
        ]
        designs.append(node)
    return RolloutTree(TreeSettings(num_designs=2, num_executions=2), [ProblemNode(task, designs)])


def test_rollout_metrics_rename_timings_and_add_response_lengths():
    tree = _tree()
    tree.timings = {"designs": 1.5, "executions": 2.5}
    m = rollout_metrics(tree)
    assert m["timing_s/gen_designs"] == 1.5 and m["timing_s/gen_executions"] == 2.5
    assert not any(k.startswith("time/") for k in m)
    assert m["response_length/designer/mean"] == 11.0
    assert m["response_length/designer/clip_ratio"] == 0.5
    # executor: 2, 0, 4, 8 tokens per design; the empty turn is a response of length 0
    assert m["response_length/executor/mean"] == pytest.approx(14 / 4)
    assert m["response_length/executor/max"] == 8.0
    assert m["response_length/executor/clip_ratio"] == 2 / 8


@pytest.mark.parametrize("active", [{"designer", "executor"}, {"executor"}])
def test_samples_carry_the_advantage_each_trained_trajectory_had(active: set[str]):
    tree = _tree()
    trajectories = tree.trajectories()
    credit = role_advantages(trajectories)
    for t, a in zip(trajectories, credit.advantages, strict=True):
        t.advantage = a
    trained = [t for t in trajectories if t.role in active]
    records = tree.to_records()
    attach_advantages(records, trained_advantages(trained))
    designs = records[0]["designs"]
    if "designer" in active:  # the trajectory's own value, carried (d1 was the better design)
        by_design = {t.design_id: t.advantage for t in trajectories if t.role == "designer"}
        assert [d["advantage"] for d in designs] == [by_design["p/d0"], by_design["p/d1"]]
        assert by_design["p/d1"] == pytest.approx(0.707, abs=1e-3)
    else:
        assert [d["advantage"] for d in designs] == [None, None]
    for design in designs:
        for e, execution in enumerate(design["executions"]):
            turns = execution["turns"]
            assert turns[0]["advantage"] == pytest.approx([-0.707, 0.707][e], abs=1e-3)
            if e == 0:
                assert turns[1]["advantage"] is None  # an empty response is not trained
            else:
                assert turns[1]["advantage"] == turns[0]["advantage"]  # one execution, one value
