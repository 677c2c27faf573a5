"""Policy-gradient losses per token, in a registry a config names by string (`trainer.policy_loss`).

Each loss is a pure function of per-token tensors (log-probs under the current weights, the old
log-probs the rollout was sampled with, advantages broadcast to tokens) and a mask, and returns
the per-token loss before KL, entropy and aggregation (`loss.ppo_loss` adds those), plus which
tokens the clip acted on. Off-mask tokens may hold anything (e.g. a 0 old log-prob on a prompt):
every loss keeps them finite and out of the per-sequence statistics.

- `ppo_clip`: token-level PPO-clip with clip-higher (DAPO) and dual clip; the default.
- `gspo`: GSPO (Zheng et al. 2025): one importance ratio per sequence, the geometric mean of its
  tokens' ratios, clipped as a whole; GSPO-token's gradient form so per-token advantages work.
- `reinforce`: -A * logp, no ratio and no clip: the plain policy gradient, for comparison (after
  the first optimizer step of a rollout it ignores that the weights have moved).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# exp() overflow guard on log-ratios, as in verl
_MAX_LOG = 20.0


@dataclass(frozen=True)
class PolicyLossTerms:
    """A policy loss per token, and what its clip did (all tensors of the inputs' shape)."""

    per_token: torch.Tensor  # the loss, before KL, entropy and aggregation
    ratio: torch.Tensor  # detached: the importance ratio the clip acts on (1 for reinforce)
    clipped: torch.Tensor  # bool: the clipped branch is the one taken (no gradient through it)
    dual_clipped: torch.Tensor  # bool: bounded by the dual clip


PolicyLoss = Callable[..., PolicyLossTerms]
POLICY_LOSSES: dict[str, PolicyLoss] = {}


def register_policy_loss(name: str) -> Callable[[PolicyLoss], PolicyLoss]:
    """Register `fn(logprobs, old_logprobs, advantages, mask, *, clip_low, clip_high, dual_clip,
    seq_ids) -> PolicyLossTerms` under `name`."""

    def decorator(fn: PolicyLoss) -> PolicyLoss:
        if name in POLICY_LOSSES and POLICY_LOSSES[name] is not fn:
            raise ValueError(f"policy loss '{name}' is already registered")
        POLICY_LOSSES[name] = fn
        return fn

    return decorator


def get_policy_loss(name: str) -> PolicyLoss:
    """The policy loss registered under `name` (ValueError naming the known ones otherwise)."""
    try:
        return POLICY_LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(POLICY_LOSSES))
        raise ValueError(f"unknown policy loss '{name}'; choose one of {known}") from None


def sequence_ids(mask: torch.Tensor, seq_ids: torch.Tensor | None) -> torch.Tensor:
    """Which sequence each token belongs to: `seq_ids` (packed rows), or the rows of a 2-D input."""
    if seq_ids is not None:
        if seq_ids.shape != mask.shape:
            raise ValueError(f"seq_ids shape {tuple(seq_ids.shape)} != mask {tuple(mask.shape)}")
        return seq_ids.long()
    if mask.dim() != 2:
        raise ValueError("per-sequence statistics need seq_ids unless inputs are (batch, tokens)")
    rows = torch.arange(mask.shape[0], device=mask.device)
    return rows[:, None].expand_as(mask)


def log_ratio(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """logp - old on the mask, 0 off it (where the old log-prob may be anything)."""
    old = old_logprobs.detach().to(logprobs.dtype)
    return torch.where(mask.bool(), logprobs - old, torch.zeros_like(logprobs))


def _clipped_surrogate(
    advantages: torch.Tensor, ratio: torch.Tensor, clip_low: float, clip_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """max(-A*ratio, -A*clip(ratio, 1-clip_low, 1+clip_high)) and where the clipped side wins."""
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(unclipped, clipped), clipped > unclipped


@register_policy_loss("ppo_clip")
def ppo_clip(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
    seq_ids: torch.Tensor | None = None,
) -> PolicyLossTerms:
    """Token-level PPO-clip: max(-A*r, -A*clip(r, 1-clip_low, 1+clip_high)), r = exp(logp - old);
    with dual clip c, a negative-advantage token's loss is at most -A*c."""
    del seq_ids  # token-level: sequences do not matter
    adv = advantages.detach().to(logprobs.dtype)
    ratio = torch.exp(log_ratio(logprobs, old_logprobs, mask).clamp(-_MAX_LOG, _MAX_LOG))
    pg, clipped = _clipped_surrogate(adv, ratio, clip_low, clip_high)
    dual_clipped = torch.zeros_like(clipped)
    if dual_clip is not None:
        bound = -adv * dual_clip
        dual_clipped = (adv < 0) & (pg > bound)
        pg = torch.where(dual_clipped, bound, pg)
    return PolicyLossTerms(pg, ratio.detach(), clipped, dual_clipped)


@register_policy_loss("gspo")
def gspo(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
    seq_ids: torch.Tensor | None = None,
) -> PolicyLossTerms:
    """GSPO-token: s_i = exp(mean over sequence i's masked tokens of (logp - old)); per token
    s = sg(s_i) * exp(logp - sg(logp)) (value s_i, gradient s_i * grad logp), then PPO-clip on s.

    The clip range is on a sequence ratio, which moves far less than a token's: GSPO used
    3e-4 / 4e-4 (set trainer.clip_ratio / clip_ratio_high so). No dual clip."""
    if dual_clip is not None:
        raise ValueError("gspo has no dual clip")
    adv = advantages.detach().to(logprobs.dtype)
    ids = sequence_ids(mask, seq_ids).reshape(-1)
    m = mask.to(logprobs.dtype).reshape(-1)
    size = int(ids.max()) + 1 if ids.numel() else 0
    with torch.no_grad():
        lr = log_ratio(logprobs, old_logprobs, mask).reshape(-1)
        sums = lr.new_zeros(size).index_add(0, ids, lr * m)
        counts = lr.new_zeros(size).index_add(0, ids, m)
        seq_log_ratio = (sums / counts.clamp(min=1.0))[ids].reshape(mask.shape)
    token = torch.where(mask.bool(), logprobs - logprobs.detach(), torch.zeros_like(logprobs))
    ratio = torch.exp((token + seq_log_ratio).clamp(-_MAX_LOG, _MAX_LOG))
    pg, clipped = _clipped_surrogate(adv, ratio, clip_low, clip_high)
    return PolicyLossTerms(pg, ratio.detach(), clipped, torch.zeros_like(clipped))


@register_policy_loss("reinforce")
def reinforce(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
    seq_ids: torch.Tensor | None = None,
) -> PolicyLossTerms:
    """-A * logp: the policy gradient with no importance ratio and no clip (the clip ranges and
    old log-probs are ignored)."""
    del old_logprobs, clip_low, clip_high, seq_ids
    if dual_clip is not None:
        raise ValueError("reinforce has no dual clip")
    adv = advantages.detach().to(logprobs.dtype)
    pg = -adv * torch.where(mask.bool(), logprobs, torch.zeros_like(logprobs))
    never = torch.zeros_like(mask, dtype=torch.bool)
    return PolicyLossTerms(pg, torch.ones_like(pg).detach(), never, never)
