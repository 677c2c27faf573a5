"""Parameter sharing: the frozen role's weights stay bit-identical (lora, separate), the shared
model changes, each role generates with its own weights, and state dicts round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    set_model_state_dict,
)
from transformers import AutoTokenizer

from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.hf import HFGenerator
from metaagentx.rl.update import UpdateConfig, ppo_update
from metaagentx.tiny import build_tiny
from metaagentx.train.checkpoint import load_checkpoint, save_checkpoint
from metaagentx.train.engine import trainable_state_dict
from metaagentx.train.optim import OptimConfig, RoleOptimizers
from metaagentx.train.policy import LoraSettings, Policy
from rl_support import load, make_batch, same, snapshot

LRS = {"designer": 1e-2, "executor": 1e-2}
LORA = LoraSettings(r=4, alpha=8)


@pytest.fixture(scope="module")
def nano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano", vocab_size=600)


def _build(nano_dir: Path, sharing: str) -> tuple[Policy, RoleOptimizers]:
    policy = Policy.build(load(nano_dir), sharing, lora=LORA)  # type: ignore[arg-type]
    return policy, RoleOptimizers(policy.owners(), LRS, OptimConfig(lr=1e-2))


def _step(policy: Policy, opts: RoleOptimizers, roles: set[str], seed: int) -> dict[str, float]:
    batch = make_batch(8, seed=seed)  # both roles' trajectories, whatever is active
    return ppo_update(policy, opts, batch, roles, UpdateConfig(micro_batch_tokens=64))


def _all_params(policy: Policy) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for model in policy.modules_for(("designer", "executor")):
        for p in model.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


@pytest.mark.parametrize("sharing", ["lora", "separate"])
def test_frozen_role_is_bit_identical_through_the_other_phase(nano_dir, sharing):
    policy, opts = _build(nano_dir, sharing)
    owners = policy.owners()
    assert set(owners) == {"designer", "executor"}
    designer = owners["designer"][1]
    executor = owners["executor"][1]
    assert not {id(p) for p in designer} & {id(p) for p in executor}
    everything = _all_params(policy)
    mine = {id(p) for p in designer + executor}
    frozen_base = [p for p in everything if id(p) not in mine]  # lora: the base model

    # two executor steps (the second so LoRA A also moves once B is non-zero)
    d0, base0, e0 = snapshot(designer), snapshot(frozen_base), snapshot(executor)
    for seed in (1, 2):
        m = _step(policy, opts, {"executor"}, seed)
        assert m["trajectories/executor"] == 4 and m["skipped_inactive"] == 4
    assert same(snapshot(designer), d0) and same(snapshot(frozen_base), base0)
    assert not same(snapshot(executor), e0)
    assert opts.optimizers["designer"].steps == 0

    # then a designer phase: the executor is frozen in turn
    e1, d1 = snapshot(executor), snapshot(designer)
    _step(policy, opts, {"designer"}, 3)
    assert same(snapshot(executor), e1) and same(snapshot(frozen_base), base0)
    assert not same(snapshot(designer), d1)


def test_shared_model_changes_in_either_phase(nano_dir):
    policy, opts = _build(nano_dir, "shared")
    assert list(policy.owners()) == ["policy"]
    assert policy.model_for("designer") is policy.model_for("executor")
    params = policy.owners()["policy"][1]
    for role, seed in (("executor", 1), ("designer", 2)):
        before = snapshot(params)
        _step(policy, opts, {role}, seed)
        assert not same(snapshot(params), before)


def _role_logits(policy: Policy, role: str, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), policy.activate(role) as model:
        return model(input_ids=ids).logits


def test_lora_roles_generate_with_their_own_adapter(nano_dir):
    policy, opts = _build(nano_dir, "lora")
    model = policy.model_for("executor")
    assert policy.model_for("designer") is model
    assert (policy.adapter_for("designer"), policy.adapter_for("executor")) == (
        "designer",
        "executor",
    )
    for seed in (1, 2):
        _step(policy, opts, {"executor"}, seed)
    ids = torch.tensor([list(range(5, 25))])
    policy.freeze_reference()
    with torch.no_grad(), policy.reference("executor") as ref:
        base = ref(input_ids=ids).logits
    executor = _role_logits(policy, "executor", ids)
    designer = _role_logits(policy, "designer", ids)
    assert torch.equal(designer, base)  # untrained adapter (B = 0) is the base
    assert not torch.allclose(executor, designer)
    before = model.active_adapter
    with policy.activate("designer"):
        assert model.active_adapter == "designer"
    assert model.active_adapter == before  # restored

    # the generator serves the role whose adapter is active: its log-probs are that role's
    gen = HFGenerator(model, AutoTokenizer.from_pretrained(nano_dir))
    request = GenerationRequest(
        prompt_ids=ids[0].tolist(), sampling=SamplingParams(temperature=0, max_new_tokens=1)
    )
    for role, logits in (("executor", executor), ("designer", designer)):
        with policy.activate(role):
            out = gen.generate([request])[0]
        expected = torch.log_softmax(logits[0, -1].float(), -1)[out.response_ids[0]]
        assert out.logprobs[0] == pytest.approx(expected.item(), abs=1e-5)


def test_separate_serves_each_role_its_own_model(nano_dir):
    policy, opts = _build(nano_dir, "separate")
    assert policy.model_for("designer") is not policy.model_for("executor")
    assert policy.adapter_for("designer") is None
    _step(policy, opts, {"designer"}, 1)
    ids = torch.tensor([list(range(5, 25))])
    assert not torch.allclose(
        _role_logits(policy, "designer", ids), _role_logits(policy, "executor", ids)
    )


@pytest.mark.parametrize("sharing", ["shared", "lora", "separate"])
def test_checkpointed_weights_round_trip(nano_dir, tmp_path, sharing):
    """What the engine checkpoints per model (trainable tensors: adapters only in lora) loads
    into a fresh policy and gives the same outputs for both roles."""
    policy, opts = _build(nano_dir, sharing)
    _step(policy, opts, {"designer", "executor"}, 1)
    _step(policy, opts, {"designer", "executor"}, 2)
    names = {"shared": {"policy"}, "separate": {"designer", "executor"}, "lora": {"adapters"}}
    assert set(policy.named_models()) == names[sharing]

    def tensors(p):
        return {n: trainable_state_dict(m) for n, m in p.named_models().items()}

    saved = tensors(policy)
    if sharing == "lora":  # adapters only, no base weights
        assert all("lora_" in key for key in saved["adapters"])
    save_checkpoint(tmp_path, 2, tensors={"models": saved})
    fresh, _ = _build(nano_dir, sharing)
    into = tensors(fresh)
    load_checkpoint(tmp_path / "step-00000002", tensors={"models": into}, restore_rng=False)
    for name, module in fresh.named_models().items():
        set_model_state_dict(module, into[name], options=StateDictOptions(strict=False))
    ids = torch.tensor([list(range(3, 19))])
    for role in ("designer", "executor"):
        assert torch.equal(_role_logits(fresh, role, ids), _role_logits(policy, role, ids))


def test_lora_simultaneous_trains_both_adapters(nano_dir):
    policy, opts = _build(nano_dir, "lora")
    owners = policy.owners()
    before = {r: snapshot(owners[r][1]) for r in owners}
    m = _step(policy, opts, {"designer", "executor"}, 1)
    assert set(k for k in m if k.startswith("grad_norm/")) == {
        "grad_norm/designer",
        "grad_norm/executor",
    }
    for role, params in owners.items():
        assert not same(snapshot(params[1]), before[role]), role


def test_lora_kl_reference_is_the_base(nano_dir):
    from metaagentx.rl.loss import PPOLossConfig

    policy, opts = _build(nano_dir, "lora")
    policy.freeze_reference()
    cfg = UpdateConfig(loss=PPOLossConfig(kl_coef=0.1), micro_batch_tokens=64, bf16_autocast=True)
    first = ppo_update(policy, opts, make_batch(8, seed=1), {"executor"}, cfg)
    assert first["kl_ref"] == pytest.approx(0.0, abs=1e-6)  # B = 0: adapter == base
    ppo_update(policy, opts, make_batch(8, seed=2), {"executor"}, cfg)
    third = ppo_update(policy, opts, make_batch(8, seed=3), {"executor"}, cfg)
    assert third["kl_ref"] > 0.0


def test_the_training_generators_enforce_the_configured_prompt_cap(nano_dir: Path) -> None:
    """`generation.max_prompt_tokens` reaches the RL path's generators (role_router), so an
    untrusted workflow's long agent prompt fails alone there too."""
    import asyncio

    from metaagentx.config import build_config
    from metaagentx.llm.base import PromptTooLong
    from metaagentx.train.generation import role_router

    policy = Policy.build(load(nano_dir), "shared", lora=LORA)
    tokenizer = AutoTokenizer.from_pretrained(nano_dir)
    config = build_config(overrides=["generation.max_prompt_tokens=16"])
    router = role_router(policy, tokenizer, config)
    short = GenerationRequest(prompt_ids=[5] * 8, sampling=SamplingParams(max_new_tokens=2),
                              role="executor")
    long = GenerationRequest(prompt_ids=[5] * 40, sampling=SamplingParams(max_new_tokens=2),
                             role="executor")

    async def go() -> list[object]:
        return await asyncio.gather(router.agenerate(short), router.agenerate(long),
                                    return_exceptions=True)

    try:
        ok, refused = asyncio.run(go())
    finally:
        router.close()
    assert len(ok.response_ids) == 2  # type: ignore[union-attr]
    assert isinstance(refused, PromptTooLong) and "generation.max_prompt_tokens" in str(refused)
