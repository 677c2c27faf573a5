"""The same seed samples the same tokens and log-probs whatever batch or timing it meets."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch

from metaagentx.config import build_config
from metaagentx.llm import make_generator
from metaagentx.llm.base import GenerationRequest, GenerationResult, SamplingParams
from metaagentx.llm.batch_invariant import BatchInvariant
from metaagentx.llm.batcher import ContinuousBatcher
from metaagentx.llm.hf import HFGenerator

SEEDED = SamplingParams(temperature=1.0, max_new_tokens=8, seed=7)


def _request(i: int, seed: int = 0) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": f"question {i}: " + "abc " * (3 * (i % 4))}],
        sampling=SamplingParams(temperature=1.0, max_new_tokens=12, seed=1000 * seed + i),
    )


def _batched(
    generator: HFGenerator, order: list[int], wait_s: float, pause: Callable[[int], float]
) -> dict[int, GenerationResult]:
    """Submit requests in `order` through a continuous batcher, sleeping `pause(k)` after the
    k-th, so each run meets different batch compositions and paddings."""
    batcher = ContinuousBatcher(generator, max_batch_size=16, max_wait_s=wait_s)
    futures = {}
    for k, i in enumerate(order):
        futures[i] = batcher.submit(_request(i))
        time.sleep(pause(k))
    results = {i: f.result(timeout=120) for i, f in futures.items()}
    batcher.close()
    return results


def _key(result: GenerationResult) -> tuple[list[int], list[float]]:
    return result.response_ids, result.logprobs


@pytest.fixture
def deterministic(hf_generator: HFGenerator):
    before = hf_generator.deterministic
    hf_generator.deterministic = True
    yield hf_generator
    hf_generator.deterministic = before


def test_same_seed_same_tokens_whatever_the_arrival_order_and_batching(deterministic):
    alone = {i: deterministic.generate([_request(i)])[0] for i in range(10)}
    burst = _batched(deterministic, list(range(10)), 0.05, lambda k: 0.0)
    staggered = _batched(deterministic, list(range(9, -1, -1)), 0.0, lambda k: 0.003 * (k % 3))
    for i in range(10):
        assert _key(burst[i]) == _key(alone[i]) == _key(staggered[i]), i


def test_different_seeds_sample_differently(deterministic):
    a = [deterministic.generate([_request(i, seed=0)])[0].response_ids for i in range(4)]
    b = [deterministic.generate([_request(i, seed=1)])[0].response_ids for i in range(4)]
    assert a != b


def test_a_rows_logits_do_not_depend_on_its_batch(deterministic):
    """Prefill and decode steps of one row, alone and beside rows of other lengths (left
    padding, a batch joined mid-decode): bit-identical logits."""
    from metaagentx.llm.hf import DecodeBatch

    def trace(prompts: list[list[int]], join: list[list[int]] | None) -> torch.Tensor:
        rows = [
            deterministic.make_row(GenerationRequest(prompt_ids=p, sampling=SEEDED))
            for p in prompts
        ]
        out = []
        with deterministic.decoding():
            batch = DecodeBatch(deterministic, rows)
            for step in range(4):
                out.append(batch.logits[0].clone())
                batch.step()
                if join and step == 1:
                    batch.absorb(DecodeBatch(deterministic, [
                        deterministic.make_row(GenerationRequest(prompt_ids=p, sampling=SEEDED)) for p in join
                    ]))  # fmt: skip
        return torch.stack(out)

    first = [300 + i for i in range(20)]
    others = [[400 + i for i in range(n)] for n in (5, 33, 21)]
    alone = trace([first], None)
    assert torch.equal(trace([first, *others], None), alone)
    assert torch.equal(trace([first], others), alone)


def test_batch_invariant_ops_compute_what_the_batched_ones_do():
    torch.manual_seed(0)
    x, w, b = torch.randn(3, 5, 16), torch.randn(8, 16), torch.randn(8)
    q, k, v = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool).tril()
    mask[1, :, :, :2] = False  # row 1 is left-padded by two positions
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, enable_gqa=True
    )
    with BatchInvariant():
        linear = torch.nn.functional.linear(x, w, b)
        attention = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, enable_gqa=True
        )
    torch.testing.assert_close(linear, torch.nn.functional.linear(x, w, b))
    torch.testing.assert_close(attention[0], expected[0])
    torch.testing.assert_close(attention[1, :, 2:], expected[1, :, 2:])
    assert not attention[1, :, :2].any()  # padded queries see nothing: zeros, never read


def test_executor_trajectories_do_not_follow_the_traces_completion_order():
    """Parallel agents finish in an order set by timing; the trainer's records must not."""
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

    def tree(agents: list[str]) -> RolloutTree:
        calls = [AgentCall(a, [], [1], [2, ord(a[-1])], [-0.5, -0.5], "x", "stop") for a in agents]
        result = ExecutionResult("ok", "out", "1", calls, {}, [], 0.1)
        design = DesignNode("p/d0", extract_design("```python\nresult = 1\n```"), None)
        design.executions = [ExecutionNode("p/d0/e0", result, ExecutionReward(1.0))]
        task = Task(id="p", domain="math", prompt="1+1?", answer="2")
        return RolloutTree(TreeSettings(num_executions=1), [ProblemNode(task, [design])])

    def records(agents: list[str]) -> list[dict]:  # call_index: the place in the trace
        return [
            {k: v for k, v in t.to_dict().items() if k != "call_index"}
            for t in tree(agents).trajectories()
        ]

    assert records(["Solver1", "Solver0", "Judge"]) == records(["Solver0", "Judge", "Solver1"])
    # each trajectory still names its call's place in the trace, where its turn's advantage goes
    ordered = tree(["Solver1", "Solver0", "Judge"]).trajectories()
    assert [(t.agent, t.call_index) for t in ordered] == [
        ("Judge", 2),
        ("Solver0", 1),
        ("Solver1", 0),
    ]


@pytest.mark.parametrize(("setting", "expected"), [(None, True), (False, False), (True, True)])
def test_the_config_knob_reaches_the_generator(tiny_model_dir, setting, expected):
    """None is 'on for a CPU model'; the knob is read wherever a generator is built."""
    config = build_config(
        {"model": {"path": str(tiny_model_dir)}, "generation": {"deterministic": setting}}
    )
    generator = make_generator(config.model, config.generation)
    try:
        assert generator.deterministic is expected
    finally:
        generator.close()
