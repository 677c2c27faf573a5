"""The packed PPO update: equals a per-sequence reference, trains only response tokens of the
active roles, bf16 stays close to fp32, is bit-for-bit deterministic on CPU, and clips once
several mini-batches or epochs move the weights away from the old log-probs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metaagentx.rl.loss import PPOLossConfig
from metaagentx.rl.update import (
    UpdateConfig,
    accumulate_gradients,
    build_sequences,
    loss_position_logprobs,
    mini_batch_parts,
    ppo_update,
    recompute_logprobs,
)
from metaagentx.train.optim import OptimConfig, RoleOptimizers
from metaagentx.train.packing import pack_micro_batches
from metaagentx.train.policy import Policy
from rl_support import load, make_batch, same, snapshot

LRS = {"designer": 1e-3, "executor": 1e-3}


@pytest.fixture(scope="module")
def nano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from metaagentx.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano", vocab_size=600)


def _reference_grads(model, trajectories, cfg: PPOLossConfig, temperature: float):
    """Straightforward per-sequence loss: one unpadded forward per trajectory, full softmax."""
    model.zero_grad(set_to_none=True)
    total_tokens = sum(len(t.response_ids) for t in trajectories)
    for t in trajectories:
        ids = torch.tensor([t.prompt_ids + t.response_ids])
        logits = model(input_ids=ids).logits[0].float() / temperature
        logp_all = torch.log_softmax(logits, -1)
        p = len(t.prompt_ids)
        rows = torch.arange(p - 1, p - 1 + len(t.response_ids))
        logp = logp_all[rows, torch.tensor(t.response_ids)]
        ratio = torch.exp(logp - torch.tensor(t.old_logprobs))
        a = t.advantage
        pg = torch.maximum(-a * ratio, -a * ratio.clamp(1 - cfg.clip_low, 1 + cfg.clip_high))
        if cfg.aggregation == "token-mean":
            loss = pg.sum() / total_tokens
        else:
            loss = pg.mean() / len(trajectories)
        loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_packed_gradient_equals_per_sequence_reference(nano_dir, aggregation):
    trajectories = make_batch(10, seed=1)
    loss_cfg = PPOLossConfig(clip_low=0.2, clip_high=0.28, aggregation=aggregation)
    model = load(nano_dir)
    expected = _reference_grads(model, trajectories, loss_cfg, temperature=0.7)
    model.zero_grad(set_to_none=True)
    policy = Policy.build(model, "shared")
    cfg = UpdateConfig(loss=loss_cfg, temperature=0.7, micro_batch_tokens=32)
    metrics = accumulate_gradients(policy, trajectories, cfg)
    assert metrics["micro_batches"] > 3  # really split and accumulated
    assert 0.0 < metrics["clip_frac"] < 1.0  # the clipped branch is exercised too
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(got) == set(expected)
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_only_response_tokens_are_trained(nano_dir):
    trajectories = make_batch(5, seed=2)
    seqs = build_sequences(trajectories)
    for t, ids, mask, old in zip(trajectories, seqs.ids, seqs.masks, seqs.old, strict=True):
        p = len(t.prompt_ids)
        assert ids == t.prompt_ids + t.response_ids
        assert mask == [0] * p + [1] * len(t.response_ids)
        assert old[p:] == t.old_logprobs
    model = load(nano_dir)
    for batch in pack_micro_batches(seqs.ids, seqs.masks, max_tokens=40):
        logp, _, keep = loss_position_logprobs(model, batch, 1.0)
        # the positions whose logits exist and enter the loss predict exactly the responses
        want = [tok for i in batch.indices for tok in trajectories[i].response_ids]
        assert batch.targets[0, keep].tolist() == want
        assert logp.shape == keep.shape
    # the LM head (hence the loss) never sees a prompt position of the whole update
    seen = []
    hook = model.lm_head.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].shape[-2]))
    m = accumulate_gradients(Policy.build(model), trajectories, UpdateConfig(micro_batch_tokens=40))
    hook.remove()
    assert sum(seen) == m["loss_tokens"] == sum(len(t.response_ids) for t in trajectories)
    assert m["tokens"] == sum(len(t.prompt_ids) + len(t.response_ids) for t in trajectories)


def test_inactive_roles_contribute_nothing(nano_dir):
    executors = make_batch(6, seed=3, roles=("executor",))
    designers = make_batch(6, seed=4, roles=("designer",))
    for t in designers:
        t.advantage = 1e6  # would blow the weights up if it leaked in
    finals = []
    for batch in (executors, designers + executors):
        model = load(nano_dir)
        policy = Policy.build(model, "shared")
        opts = RoleOptimizers(policy.owners(), LRS, OptimConfig(lr=1e-3))
        m = ppo_update(policy, opts, batch, {"executor"}, UpdateConfig(micro_batch_tokens=48))
        assert m["trajectories"] == 6
        finals.append(snapshot(model.parameters()))
    assert m["skipped_inactive"] == 6
    assert same(finals[0], finals[1])


def test_bf16_autocast_runs_and_stays_close_to_fp32(nano_dir):
    trajectories = make_batch(8, seed=5)
    grads, losses = [], []
    for bf16 in (False, True):
        model = load(nano_dir)
        policy = Policy.build(model, "shared")
        cfg = UpdateConfig(micro_batch_tokens=64, bf16_autocast=bf16)
        m = accumulate_gradients(policy, trajectories, cfg)
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights
        losses.append(m["loss"])
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert losses[1] == pytest.approx(losses[0], rel=0.05, abs=1e-3)
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cos > 0.98
    assert (grads[1].norm() / grads[0].norm()).item() == pytest.approx(1.0, rel=0.05)


def _train(nano_dir, seed: int, steps: int, cfg: UpdateConfig):
    torch.manual_seed(seed)
    model = load(nano_dir)
    policy = Policy.build(model, "shared")
    if cfg.loss.kl_coef:
        policy.freeze_reference()
    updates = steps * cfg.mini_batches * cfg.epochs  # the schedule counts optimizer steps
    opts = RoleOptimizers(
        policy.owners(), LRS, OptimConfig(lr=1e-3, warmup_steps=1, total_steps=updates)
    )
    history = []
    for step in range(steps):
        batch = make_batch(8, seed=100 + step)
        history.append(ppo_update(policy, opts, batch, {"executor", "designer"}, cfg))
    return model, history


def test_update_is_deterministic_and_reports_metrics(nano_dir):
    cfg = UpdateConfig(micro_batch_tokens=40, mini_batches=2, temperature=0.8)
    a, hist = _train(nano_dir, seed=0, steps=2, cfg=cfg)
    b, _ = _train(nano_dir, seed=0, steps=2, cfg=cfg)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    m = hist[-1]
    assert m["optimizer_steps"] == 2 and m["trajectories"] == 8
    for key in ("loss", "clip_frac", "approx_kl", "entropy", "grad_norm", "tokens_per_s"):
        assert key in m and m[key] == m[key], key  # present and not NaN
    assert m["tokens"] >= m["loss_tokens"] > 0 and m["time_s"] > 0
    assert m["grad_norm/policy"] > 0 and m["lr/policy"] > 0


def test_kl_to_frozen_reference_and_entropy_bonus(nano_dir):
    loss = PPOLossConfig(kl_coef=0.1, entropy_coef=0.01)
    _, hist = _train(nano_dir, seed=0, steps=2, cfg=UpdateConfig(loss=loss))
    assert hist[0]["kl_ref"] == pytest.approx(0.0, abs=1e-6)  # the reference is the start
    assert hist[1]["kl_ref"] > 0.0  # the policy moved away from it
    model = load(nano_dir)
    policy = Policy.build(model, "shared")
    with pytest.raises(RuntimeError, match="freeze_reference"):
        accumulate_gradients(policy, make_batch(2), UpdateConfig(loss=loss))


def test_packed_attention_matches_unpacked_and_restores(nano_dir):
    from metaagentx.train.attention import PACKED_ATTENTION, packed_attention, segment_bounds

    model = load(nano_dir)
    seqs = [t.prompt_ids + t.response_ids for t in make_batch(5, seed=6)]
    batch = pack_micro_batches(seqs, [[1] * len(s) for s in seqs], max_tokens=10_000)[0]
    assert segment_bounds(batch.position_ids) == [
        (sum(batch.lengths[:i]), sum(batch.lengths[: i + 1])) for i in range(len(seqs))
    ]
    with torch.no_grad(), packed_attention(model):
        assert model.config._attn_implementation == PACKED_ATTENTION
        packed = model(
            input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False
        ).logits[0]
        with pytest.raises(ValueError, match="padded"):
            model(input_ids=batch.input_ids[:, :4], attention_mask=torch.tensor([[0, 1, 1, 1]]))
    assert model.config._attn_implementation == "sdpa"
    start = 0
    with torch.no_grad():
        for i in batch.indices:
            alone = model(input_ids=torch.tensor([seqs[i]])).logits[0]
            torch.testing.assert_close(packed[start : start + len(seqs[i])], alone)
            start += len(seqs[i])


def _fresh_update(nano_dir, cfg: UpdateConfig, lr: float) -> dict[str, float]:
    """One RL step's update from fresh weights: old log-probs recomputed, then `ppo_update`."""
    policy = Policy.build(load(nano_dir), "shared")
    trajectories = make_batch(8, seed=7)
    recompute_logprobs(policy, trajectories, cfg)
    opts = RoleOptimizers(policy.owners(), {"designer": lr, "executor": lr}, OptimConfig(lr=lr))
    return ppo_update(policy, opts, trajectories, {"executor", "designer"}, cfg)


@pytest.mark.parametrize(
    "loss",
    [PPOLossConfig(), PPOLossConfig(clip_low=3e-4, clip_high=4e-4, policy_loss="gspo")],
    ids=["ppo_clip", "gspo"],
)
def test_later_mini_batches_and_epochs_clip(nano_dir, loss):
    one = _fresh_update(nano_dir, UpdateConfig(loss=loss, micro_batch_tokens=48), lr=0.02)
    assert one["optimizer_steps"] == 1
    assert one["clip_frac"] == 0.0 and one["approx_kl"] == 0.0  # ratio exactly 1
    for split in ({"mini_batches": 2}, {"epochs": 2}):
        cfg = UpdateConfig(loss=loss, micro_batch_tokens=48, **split)
        m = _fresh_update(nano_dir, cfg, lr=0.02)
        assert m["optimizer_steps"] == 2
        # the second step's ratios are against weights the first step changed
        assert 0.0 < m["clip_frac"] < 1.0, split
        assert m["approx_kl"] != 0.0


def test_recompute_packs_like_the_first_mini_batch(nano_dir):
    """Old log-probs are computed mini-batch by mini-batch as the update packs them, so the first
    mini-batch's ratios are 1 bit for bit (a clip range of 3e-4 cannot act on packing noise)."""
    policy = Policy.build(load(nano_dir), "shared")
    trajectories = make_batch(9, seed=8)
    cfg = UpdateConfig(micro_batch_tokens=40, mini_batches=3)
    recompute_logprobs(policy, trajectories, cfg)
    for part in mini_batch_parts(trajectories, 3):
        assert accumulate_gradients(policy, part, cfg)["approx_kl"] == 0.0
    # whole problems (p0: trajectories 0-3, p1: 4-7, p2: 8) dealt round-robin
    first, second = mini_batch_parts(trajectories, 2)
    assert first == trajectories[:4] + trajectories[8:] and second == trajectories[4:8]


def test_update_config_from_trainer_config():
    from metaagentx.config import ConfigError, TrainerConfig, build_config

    trainer = TrainerConfig(
        clip_ratio=0.3, kl_coef=0.05, micro_batch_tokens=512, bf16_autocast=True
    )
    cfg = UpdateConfig.from_trainer_config(trainer, temperature=0.9)
    assert (cfg.loss.clip_low, cfg.loss.clip_high, cfg.loss.kl_coef) == (0.3, 0.3, 0.05)
    assert (cfg.micro_batch_tokens, cfg.bf16_autocast, cfg.temperature) == (512, True, 0.9)
    assert (cfg.epochs, cfg.mini_batches, cfg.loss.policy_loss) == (1, 1, "ppo_clip")
    keys = ["trainer.epochs=2", "trainer.mini_batches=4", "trainer.policy_loss=gspo"]
    keys += ["trainer.clip_ratio=3e-4", "trainer.clip_ratio_high=4e-4"]
    cfg = UpdateConfig.from_trainer_config(build_config({}, keys).trainer, temperature=1.0)
    assert (cfg.epochs, cfg.mini_batches, cfg.loss.policy_loss) == (2, 4, "gspo")
    assert (cfg.loss.clip_low, cfg.loss.clip_high) == (3e-4, 4e-4)
    for bad in ("trainer.mini_batches=0", "trainer.epochs=0", "trainer.policy_loss=vanilla"):
        with pytest.raises(ConfigError):
            build_config({}, [bad])
