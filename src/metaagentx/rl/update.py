"""The policy update: the policy loss on the active roles' trajectories, packed, in
`epochs x mini_batches` optimizer steps (one by default).

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from metaagentx.config import TrainerConfig
from metaagentx.rl.loss import PPOLossConfig, ppo_loss
from metaagentx.rollout.roles import ROLES
from metaagentx.rollout.trajectory import Trajectory
from metaagentx.train.attention import packed_attention
from metaagentx.train.distributed import World
from metaagentx.train.logprobs import EntropyMode, largest_gap, loss_position_logprobs
from metaagentx.train.microbatches import MicroBatch, lockstep_micro_batches
from metaagentx.train.optim import RoleOptimizers
from metaagentx.train.policy import Policy

SINGLE = World()  # the default: one process, no process group
_MEAN_METRICS = ("pg_loss", "clip_frac", "dual_clip_frac", "approx_kl", "entropy", "kl_ref")


@dataclass(frozen=True)
class UpdateConfig:
    """Settings of one policy update (one RL step)."""

    loss: PPOLossConfig = field(default_factory=PPOLossConfig)
    temperature: float = 1.0  # the rollout's sampling temperature (old log-probs used it)
    micro_batch_tokens: int = 8192
    logprob_chunk_tokens: int | None = None  # log-probs over token chunks (bounded memory)
    bf16_autocast: bool = False  # CPU or CUDA autocast; log-prob math stays fp32
    mini_batches: int = 1  # optimizer steps per epoch, whole problems each (`mini_batch_parts`)
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
            clip_high=trainer.clip_ratio_high or trainer.clip_ratio,
            dual_clip=trainer.dual_clip,
            kl_coef=trainer.kl_coef,
            entropy_coef=trainer.entropy_coef,
            aggregation=trainer.loss_aggregation,
            policy_loss=trainer.policy_loss,
        )
        return cls(
            loss=loss,
            temperature=temperature,
            micro_batch_tokens=trainer.micro_batch_tokens,
            logprob_chunk_tokens=trainer.logprob_chunk_tokens,
            bf16_autocast=trainer.bf16_autocast,
            mini_batches=trainer.mini_batches,
            epochs=trainer.epochs,
        )


@dataclass
class TrainSequences:
    """The trainable view of trajectories: token-aligned lists per sequence."""

    ids: list[list[int]]
    masks: list[list[int]]
    old: list[list[float]]
    adv: list[float]
    roles: list[str]


def mini_batch_parts(
    trajectories: Sequence[Trajectory], mini_batches: int, world: World = SINGLE
) -> list[list[Trajectory]]:
    """The trajectories in `mini_batches` parts: whole problems dealt round-robin in the sorted
    order of every rank's problem ids (a collective call).

    A problem's group stays in one optimizer step, as its advantages compare its members, and N
    ranks make the mini-batches one process makes of the same data. A part may be empty on
    some ranks; order inside a part is the input order."""
    if mini_batches == 1:
        return [list(trajectories)]
    mine = sorted({t.problem_id for t in trajectories})
    problems = sorted({p for share in world.gather_objects(mine) for p in share})
    part_of = {p: i % mini_batches for i, p in enumerate(problems)}
    parts: list[list[Trajectory]] = [[] for _ in range(mini_batches)]
    for t in trajectories:
        parts[part_of[t.problem_id]].append(t)
    return parts


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
    world: World = SINGLE,
) -> dict[str, float]:
    """Train the active roles on their trajectories: `epochs x mini_batches` optimizer steps.

    Each mini-batch's loss is normalised over that mini-batch alone; after the first step the
    weights differ from those the old log-probs came from, so ratios leave 1 and the clip acts.
    Trajectories of inactive roles are dropped (counted in `skipped_inactive`). Needs
    `policy.freeze_reference()` first when `config.loss.kl_coef > 0`. Under several ranks
    each passes its own trajectories and every rank must call this once per step; losses are
    normalised by the global token counts and metrics are summed over ranks. Returns metrics:
    loss, pg_loss, clip_frac, approx_kl, entropy, kl_ref (token-weighted), grad_norm and lr
    (last step; per owner too), tokens (forwarded), loss_tokens, tokens_per_s, time_s, counts.
    The trainer logs them under verl's names (`rl.metrics.update_metrics`: `actor/pg_loss`, ...).
    """
    start = time.perf_counter()
    active = frozenset(active_roles)
    chosen = [t for t in trajectories if t.role in active]
    counts = {
        "trajectories": float(len(chosen)),
        "skipped_inactive": float(len(trajectories) - len(chosen)),
    }
    for role in sorted(active):
        counts[f"trajectories/{role}"] = float(sum(t.role == role for t in chosen))
    metrics = world.sum_dicts(counts)
    if not metrics["trajectories"]:
        return {**metrics, "optimizer_steps": 0.0, "tokens": 0.0, "time_s": 0.0}
    sums: dict[str, float] = {}
    last: dict[str, float] = {}
    steps = 0
    parts = mini_batch_parts(chosen, config.mini_batches, world)
    for _ in range(config.epochs):
        for batch in parts:
            roles = _roles_on_any_rank(batch, world)
            if not roles:  # empty on every rank: all of them skip it
                continue
            _accumulate(policy, batch, config, sums, world)
            step_metrics = optimizers.step(roles)
            squares = 0.0
            for owner, m in step_metrics.items():
                last[f"grad_norm/{owner}"] = m["grad_norm"]
                last[f"lr/{owner}"] = m["lr"]
                last["skipped_steps"] = last.get("skipped_steps", 0.0) + m["skipped"]
                squares += m["grad_norm"] ** 2
            last["grad_norm"] = math.sqrt(squares)
            steps += 1
    elapsed = time.perf_counter() - start
    metrics.update(_finish(world.sum_dicts(sums), steps))
    metrics.update(last)
    metrics.update(optimizer_steps=float(steps), time_s=elapsed)
    metrics["tokens_per_s"] = metrics["tokens"] / elapsed if elapsed > 0 else 0.0
    return metrics


def accumulate_gradients(
    policy: Policy,
    trajectories: Sequence[Trajectory],
    config: UpdateConfig,
    world: World = SINGLE,
) -> dict[str, float]:
    """Backward the PPO loss of all `trajectories` into the parameters' `.grad`, no step.

    The loss is normalised per owner over all its trajectories (on every rank) here, so the
    accumulated gradient is that of one batch whatever the micro-batching. Returns the metrics.
    """
    sums: dict[str, float] = {}
    _accumulate(policy, trajectories, config, sums, world)
    return _finish(world.sum_dicts(sums), 1)


def recompute_logprobs(
    policy: Policy,
    trajectories: Sequence[Trajectory],
    config: UpdateConfig,
    world: World = SINGLE,
) -> dict[str, float]:
    """Set each trajectory's old log-probs from the training forward (packed, deterministic,
    with its role's weights), in step with the other ranks (each passes its own).

    Called once per step before the first optimizer step, with the trajectories `ppo_update`
    then trains: it packs them mini-batch by mini-batch exactly as the update does, so the first
    mini-batch's ratios are 1 bit for bit and later ones measure how far the earlier optimizer
    steps moved the policy. Returns, per role, the largest gap between the generator's log-probs
    and the trainer's over all ranks: how far generation and training disagree (0 up to float
    error with the hf backend; vLLM's kernels add a little)."""
    gaps = dict.fromkeys(ROLES, 0.0)
    with torch.no_grad():
        for part in mini_batch_parts(trajectories, config.mini_batches, world):
            for trajectory, recomputed in _forward_logprobs(policy, part, config, world):
                gaps[trajectory.role] = max(
                    gaps[trajectory.role], largest_gap(trajectory.old_logprobs, recomputed)
                )
                trajectory.old_logprobs = recomputed
    return dict(zip(ROLES, world.max_floats(list(gaps.values())), strict=True))


def _forward_logprobs(
    policy: Policy, trajectories: Sequence[Trajectory], config: UpdateConfig, world: World
) -> Iterator[tuple[Trajectory, list[float]]]:
    """Each trajectory with its response tokens' log-probs under the current weights (the
    loss's forward: same packing, temperature, autocast and chunking)."""
    ids = [t.prompt_ids + t.response_ids for t in trajectories]
    masks = [[0] * len(t.prompt_ids) + [1] * len(t.response_ids) for t in trajectories]
    roles = [t.role for t in trajectories]
    for mb in lockstep_micro_batches(policy, world, roles, ids, masks, config.micro_batch_tokens):
        logp, _, keep = loss_position_logprobs(
            mb.model,
            mb.batch,
            config.temperature,
            bf16_autocast=config.bf16_autocast,
            chunk_tokens=config.logprob_chunk_tokens,
        )
        if mb.padding:
            continue
        packed = torch.zeros(mb.batch.num_tokens)
        packed[keep.cpu()] = logp.float().cpu()
        for index, values in mb.batch.unpack(packed).items():
            trajectory = trajectories[index]
            yield trajectory, values[len(trajectory.prompt_ids) :].tolist()


def _roles_on_any_rank(batch: Sequence[Trajectory], world: World) -> set[str]:
    """Roles with a trajectory in this mini-batch on some rank: their owners step everywhere."""
    present = world.sum([float(any(t.role == r for t in batch)) for r in ROLES])
    return {r for r, n in zip(ROLES, present, strict=True) if n}


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
    world: World,
) -> None:
    """Backward every owner's micro-batches (in step with the other ranks), normalised by the
    owner's global token and sequence counts; the models are in train mode meanwhile."""
    seqs = build_sequences(trajectories)
    owners = list(policy.owners())
    local = [0.0] * (2 * len(owners))
    for i, role in enumerate(seqs.roles):
        k = owners.index(policy.owner_of(role))
        local[2 * k] += sum(seqs.masks[i])
        local[2 * k + 1] += float(any(seqs.masks[i]))
    totals = world.sum(local)
    norms = {o: (totals[2 * k], totals[2 * k + 1]) for k, o in enumerate(owners)}
    models = policy.all_modules()
    was_training = [m.training for m in models]
    for m in policy.modules_for(ROLES):
        m.train()
    try:
        batches = lockstep_micro_batches(
            policy, world, seqs.roles, seqs.ids, seqs.masks, config.micro_batch_tokens
        )
        for mb in batches:
            sums["loss"] = sums.get("loss", 0.0) + _backward_micro_batch(
                policy, mb, seqs, norms[mb.owner], config, sums
            )
    finally:
        for m, mode in zip(models, was_training, strict=True):
            m.train(mode)


def _backward_micro_batch(
    policy: Policy,
    mb: MicroBatch,
    seqs: TrainSequences,
    norm: tuple[float, float],
    config: UpdateConfig,
    sums: dict[str, float],
) -> float:
    """Backward one micro-batch's share of its owner's loss; returns that share (0: padding)."""
    loss_cfg = config.loss
    if loss_cfg.entropy_coef != 0:
        entropy_mode: EntropyMode = "grad"
    else:
        entropy_mode = "metric" if config.entropy_metric else "none"
    batch = mb.batch
    logp, entropy, keep = loss_position_logprobs(
        mb.model,
        batch,
        config.temperature,
        entropy=entropy_mode,
        bf16_autocast=config.bf16_autocast,
        chunk_tokens=config.logprob_chunk_tokens,
    )
    old = mb.align(seqs.old)[0, keep]
    adv = mb.broadcast(seqs.adv)[0, keep]
    ref = _reference_logprobs(policy, mb, config) if loss_cfg.kl_coef else None
    loss, m = ppo_loss(
        logp,
        old,
        adv,
        torch.ones_like(logp, dtype=torch.bool),
        loss_cfg,
        ref_logprobs=ref,
        entropy=entropy,
        seq_ids=batch.seq_ids[0, keep],
        num_tokens=max(norm[0], 1.0),
        num_seqs=max(norm[1], 1.0),
    )
    (loss * mb.scale).backward()
    if mb.padding:
        return 0.0
    k = float(keep.numel())
    sums["weighted_tokens"] = sums.get("weighted_tokens", 0.0) + k
    for key in _MEAN_METRICS:
        if key in m:
            sums[key] = sums.get(key, 0.0) + m[key] * k
    sums["tokens"] = sums.get("tokens", 0.0) + batch.num_tokens
    sums["loss_tokens"] = sums.get("loss_tokens", 0.0) + k
    sums["micro_batches"] = sums.get("micro_batches", 0.0) + 1.0
    return float(loss.detach())


def _reference_logprobs(policy: Policy, mb: MicroBatch, config: UpdateConfig) -> torch.Tensor:
    with torch.no_grad(), policy.reference(mb.role) as ref, packed_attention(ref):
        logp, _, _ = loss_position_logprobs(
            ref,
            mb.batch,
            config.temperature,
            bf16_autocast=config.bf16_autocast,
            chunk_tokens=config.logprob_chunk_tokens,
        )
    return logp
