"""The policy update: PPO-clip on the active roles' trajectories, packed, one optimizer step.

Only trajectories of the active roles are used; each is `prompt_ids + response_ids` and only its
response tokens are trained (the loss mask is 0 on the prompt, and logits are not even computed
there: `logits_to_keep` gets the trained positions, which saves the LM head and the softmax on
prompt tokens). Sequences are packed first-fit-decreasing into micro-batches of at most
`micro_batch_tokens` tokens (`packing.py`), per parameter owner (in `lora`/`separate` a row
must run through one role's weights). Every micro-batch's loss is normalised by the owner's
token (or sequence) count over the whole mini-batch, so the accumulated gradient equals that of
one big batch. Log-probs follow the generator's convention, log_softmax(logits / temperature),
in fp32 even under bf16 autocast. Forwards run inside `packed_attention` (attention.py), so a
packed row costs the attention of its sequences alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from metaagentx.config import TrainerConfig
from metaagentx.rl.loss import PPOLossConfig, ppo_loss
from metaagentx.rollout.trajectory import Trajectory
from metaagentx.train.attention import packed_attention
from metaagentx.train.logprobs import EntropyMode, loss_position_logprobs
from metaagentx.train.optim import RoleOptimizers
from metaagentx.train.packing import PackedBatch, pack_micro_batches
from metaagentx.train.policy import Policy

_MEAN_METRICS = ("pg_loss", "clip_frac", "dual_clip_frac", "approx_kl", "entropy", "kl_ref")


@dataclass(frozen=True)
class UpdateConfig:
    """Settings of one policy update (one RL step)."""

    loss: PPOLossConfig = field(default_factory=PPOLossConfig)
    temperature: float = 1.0  # the rollout's sampling temperature (old log-probs used it)
    micro_batch_tokens: int = 8192
    bf16_autocast: bool = False  # CPU or CUDA autocast; log-prob math stays fp32
    mini_batches: int = 1  # optimizer steps per epoch (trajectories dealt round-robin)
    epochs: int = 1  # passes over the trajectories
    entropy_metric: bool = True  # report entropy even when entropy_coef is 0 (costs a softmax)

    def __post_init__(self) -> None:
        if self.micro_batch_tokens < 1 or self.mini_batches < 1 or self.epochs < 1:
            raise ValueError("micro_batch_tokens, mini_batches and epochs must be >= 1")

    @classmethod
    def from_trainer_config(cls, trainer: TrainerConfig, temperature: float) -> UpdateConfig:
        """The update settings a `trainer:` config section and the rollout temperature give."""
        loss = PPOLossConfig(
            clip_low=trainer.clip_ratio,
            clip_high=trainer.clip_ratio,
            kl_coef=trainer.kl_coef,
            entropy_coef=trainer.entropy_coef,
        )
        return cls(
            loss=loss,
            temperature=temperature,
            micro_batch_tokens=trainer.micro_batch_tokens,
            bf16_autocast=trainer.bf16_autocast,
        )


@dataclass
class TrainSequences:
    """The trainable view of trajectories: token-aligned lists per sequence."""

    ids: list[list[int]]
    masks: list[list[int]]
    old: list[list[float]]
    adv: list[float]
    roles: list[str]


def build_sequences(trajectories: Sequence[Trajectory]) -> TrainSequences:
    """prompt + response ids, a mask that is 1 on response tokens only (never the prompt),
    old log-probs aligned to the tokens (0 on the prompt, where they are masked out)."""
    seqs = TrainSequences([], [], [], [], [])
    for t in trajectories:
        if t.advantage is None:
            raise ValueError(f"trajectory of {t.role} {t.problem_id} has no advantage")
        p = len(t.prompt_ids)
        seqs.ids.append(t.prompt_ids + t.response_ids)
        seqs.masks.append([0] * p + [1] * len(t.response_ids))
        seqs.old.append([0.0] * p + t.old_logprobs)
        seqs.adv.append(t.advantage)
        seqs.roles.append(t.role)
    return seqs


def ppo_update(
    policy: Policy,
    optimizers: RoleOptimizers,
    trajectories: Sequence[Trajectory],
    active_roles: Iterable[str],
    config: UpdateConfig,
) -> dict[str, float]:
    """Train the active roles on their trajectories: `epochs x mini_batches` optimizer steps.

    Trajectories of inactive roles are dropped (counted in `skipped_inactive`). Needs
    `policy.freeze_reference()` first when `config.loss.kl_coef > 0`. Returns metrics: loss,
    pg_loss, clip_frac, approx_kl, entropy, kl_ref (token-weighted), grad_norm and lr (last
    step; per owner too), tokens (forwarded), loss_tokens, tokens_per_s, time_s, counts.
    """
    start = time.perf_counter()
    active = frozenset(active_roles)
    chosen = [t for t in trajectories if t.role in active]
    metrics: dict[str, float] = {
        "trajectories": float(len(chosen)),
        "skipped_inactive": float(len(trajectories) - len(chosen)),
    }
    for role in sorted(active):
        metrics[f"trajectories/{role}"] = float(sum(t.role == role for t in chosen))
    if not chosen:
        return {**metrics, "optimizer_steps": 0.0, "tokens": 0.0, "time_s": 0.0}
    sums: dict[str, float] = {}
    steps = 0
    for _ in range(config.epochs):
        for part in range(config.mini_batches):
            batch = chosen[part :: config.mini_batches]
            if not batch:
                continue
            _accumulate(policy, batch, config, sums)
            step_metrics = optimizers.step({t.role for t in batch})
            squares = 0.0
            for owner, m in step_metrics.items():
                sums[f"grad_norm/{owner}"] = m["grad_norm"]
                sums[f"lr/{owner}"] = m["lr"]
                sums["skipped_steps"] = sums.get("skipped_steps", 0.0) + m["skipped"]
                squares += m["grad_norm"] ** 2
            sums["grad_norm"] = math.sqrt(squares)
            steps += 1
    elapsed = time.perf_counter() - start
    metrics.update(_finish(sums, steps))
    metrics.update(optimizer_steps=float(steps), time_s=elapsed)
    metrics["tokens_per_s"] = metrics["tokens"] / elapsed if elapsed > 0 else 0.0
    return metrics


def accumulate_gradients(
    policy: Policy, trajectories: Sequence[Trajectory], config: UpdateConfig
) -> dict[str, float]:
    """Backward the PPO loss of all `trajectories` into the parameters' `.grad`, no step.

    The loss is normalised per owner over all its trajectories here, so the accumulated
    gradient is that of one batch whatever the micro-batching. Returns the step metrics.
    """
    sums: dict[str, float] = {}
    _accumulate(policy, trajectories, config, sums)
    return _finish(sums, 1)


def _finish(sums: dict[str, float], steps: int) -> dict[str, float]:
    """Turn accumulated sums into metrics (token-weighted means, loss per optimizer step)."""
    out = dict(sums)
    weight = max(out.pop("weighted_tokens", 0.0), 1.0)
    for key in _MEAN_METRICS:
        if key in out:
            out[key] = out[key] / weight
    out["loss"] = out.get("loss", 0.0) / max(steps, 1)
    return out


def _accumulate(
    policy: Policy,
    trajectories: Sequence[Trajectory],
    config: UpdateConfig,
    sums: dict[str, float],
) -> None:
    """Backward every owner's micro-batches; the models are in train mode meanwhile."""
    seqs = build_sequences(trajectories)
    by_owner: dict[str, list[int]] = {}
    for i, role in enumerate(seqs.roles):
        by_owner.setdefault(policy.owner_of(role), []).append(i)
    models = policy.modules_for(set(seqs.roles))
    was_training = [m.training for m in models]
    for m in models:
        m.train()
    try:
        for members in by_owner.values():
            sums["loss"] = sums.get("loss", 0.0) + _accumulate_owner(
                policy, seqs, members, config, sums
            )
    finally:
        for m, mode in zip(models, was_training, strict=True):
            m.train(mode)


def _accumulate_owner(
    policy: Policy,
    seqs: TrainSequences,
    members: list[int],
    config: UpdateConfig,
    sums: dict[str, float],
) -> float:
    """Backward every micro-batch of one owner's sequences; returns the summed loss."""
    role = seqs.roles[members[0]]  # in lora/separate an owner serves one role
    loss_cfg = config.loss
    ids = [seqs.ids[i] for i in members]
    masks = [seqs.masks[i] for i in members]
    num_tokens = float(sum(sum(m) for m in masks))
    num_seqs = float(sum(1 for m in masks if any(m)))
    if loss_cfg.entropy_coef != 0:
        entropy_mode: EntropyMode = "grad"
    else:
        entropy_mode = "metric" if config.entropy_metric else "none"
    old_lp = [seqs.old[i] for i in members]
    advantages = [seqs.adv[i] for i in members]
    total = 0.0
    with policy.activate(role) as model, packed_attention(model):
        device = _device_of(model)
        for batch in pack_micro_batches(ids, masks, config.micro_batch_tokens):
            batch = batch.to(device)
            logp, entropy, keep = loss_position_logprobs(
                model,
                batch,
                config.temperature,
                entropy=entropy_mode,
                bf16_autocast=config.bf16_autocast,
            )
            old = batch.align(old_lp)[0, keep]
            adv = batch.broadcast(advantages)[0, keep]
            seq_ids = batch.seq_ids[0, keep]
            ref = _reference_logprobs(policy, role, batch, config) if loss_cfg.kl_coef else None
            loss, m = ppo_loss(
                logp,
                old,
                adv,
                torch.ones_like(logp, dtype=torch.bool),
                loss_cfg,
                ref_logprobs=ref,
                entropy=entropy,
                seq_ids=seq_ids,
                num_tokens=num_tokens,
                num_seqs=num_seqs,
            )
            loss.backward()
            total += float(loss.detach())
            k = float(keep.numel())
            sums["weighted_tokens"] = sums.get("weighted_tokens", 0.0) + k
            for key in _MEAN_METRICS:
                if key in m:
                    sums[key] = sums.get(key, 0.0) + m[key] * k
            sums["tokens"] = sums.get("tokens", 0.0) + batch.num_tokens
            sums["loss_tokens"] = sums.get("loss_tokens", 0.0) + k
            sums["micro_batches"] = sums.get("micro_batches", 0.0) + 1.0
    return total


def _reference_logprobs(
    policy: Policy,
    role: str,
    batch: PackedBatch,
    config: UpdateConfig,
) -> torch.Tensor:
    with torch.no_grad(), policy.reference(role) as ref, packed_attention(ref):
        logp, _, _ = loss_position_logprobs(
            ref, batch, config.temperature, bf16_autocast=config.bf16_autocast
        )
    return logp


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
