"""The update's loss: a policy loss (PPO-clip by default), k3 KL to a reference, entropy bonus.

Everything works on flat or batched per-token tensors plus a mask; the mask is 1 only on tokens
the active roles sampled (never prompts, tool outputs or other agents' deliveries), so what is
trained is decided by whoever builds the mask. The policy loss is one of `policy_losses`
(`PPOLossConfig.policy_loss`); its ratio is taken against the old log-probs, which the generator
computes as log_softmax(logits / temperature); `metaagentx.train.logprobs` applies the same
convention so the first update step has ratio 1 exactly where the weights did not change.

Aggregation takes an optional global normaliser (`num_tokens` / `num_seqs` over all
micro-batches of a step) so that summing the gradients of micro-batches equals the gradient of
the whole batch: per-micro-batch means would weight a short micro-batch's tokens more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from metaagentx.rl.policy_losses import (
    PolicyLossTerms,
    get_policy_loss,
    log_ratio,
    sequence_ids,
)

Aggregation = Literal["token-mean", "seq-mean-token-mean"]


@dataclass(frozen=True)
class PPOLossConfig:
    """Loss settings; `clip_high > clip_low` gives DAPO's clip-higher."""

    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = None  # c > 1 bounds the loss of negative-advantage tokens at c*|A|
    kl_coef: float = 0.0  # k3 KL to the frozen reference; needs ref_logprobs when > 0
    entropy_coef: float = 0.0  # bonus: subtracts entropy_coef * entropy
    aggregation: Aggregation = "token-mean"
    policy_loss: str = "ppo_clip"  # a name in policy_losses.POLICY_LOSSES

    def __post_init__(self) -> None:
        if self.clip_low < 0 or self.clip_high < 0:
            raise ValueError("clip ranges must be >= 0")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {self.dual_clip}")
        if self.aggregation not in ("token-mean", "seq-mean-token-mean"):
            raise ValueError(f"unknown aggregation {self.aggregation!r}")
        get_policy_loss(self.policy_loss)  # an unknown name fails here, not mid-update
        if self.dual_clip is not None and self.policy_loss != "ppo_clip":
            raise ValueError(f"dual_clip is a ppo_clip setting, not {self.policy_loss}'s")


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref): exp(r) - r - 1 with r = ref - logp; >= 0, unbiased."""
    log_ratio = (ref_logprobs - logprobs).clamp(-20.0, 20.0)  # exp overflow guard, as in verl
    return torch.exp(log_ratio) - log_ratio - 1.0


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    aggregation: Aggregation,
    *,
    seq_ids: torch.Tensor | None = None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> torch.Tensor:
    """Reduce per-token `values` over `mask` to a scalar.

    token-mean: sum over valid tokens / (`num_tokens` or this call's valid-token count).
    seq-mean-token-mean: each sequence's mean over its valid tokens, summed over sequences and
    divided by (`num_seqs` or the number of sequences here with a valid token). Sequences are
    `seq_ids` (same shape as mask), or the rows of a 2-D input.
    """
    m = mask.to(values.dtype)
    if aggregation == "token-mean":
        denom = float(num_tokens) if num_tokens is not None else m.sum().clamp(min=1.0)
        return (values * m).sum() / denom
    if aggregation != "seq-mean-token-mean":
        raise ValueError(f"unknown aggregation {aggregation!r}")
    ids = sequence_ids(mask, seq_ids).reshape(-1)
    size = int(ids.max()) + 1 if ids.numel() else 0
    per_seq_sum = values.new_zeros(size).index_add(0, ids, (values * m).reshape(-1))
    per_seq_count = values.new_zeros(size).index_add(0, ids, m.reshape(-1))
    present = per_seq_count > 0
    seq_means = per_seq_sum[present] / per_seq_count[present]
    denom = float(num_seqs) if num_seqs is not None else max(int(present.sum()), 1)
    return seq_means.sum() / denom


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    n = mask.sum()
    return float((x * mask).sum() / n) if n > 0 else 0.0


def ppo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: PPOLossConfig,
    *,
    ref_logprobs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    seq_ids: torch.Tensor | None = None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The policy loss over the masked tokens, plus detached metrics over this call's tokens.

    All tensors share one shape (per token; advantages already broadcast from sequences).
    Per token: `config.policy_loss` (see `policy_losses`; PPO-clip by default), then
    + kl_coef * k3(logp, ref) - entropy_coef * entropy, aggregated by `config.aggregation`
    (see `aggregate` for the normalisers). clip_frac is the fraction of tokens whose clipped
    branch was taken (`_policy_metrics`).
    """
    if not (logprobs.shape == old_logprobs.shape == advantages.shape == mask.shape):
        raise ValueError("logprobs, old_logprobs, advantages and mask must have one shape")
    valid = mask.to(logprobs.dtype)
    terms = get_policy_loss(config.policy_loss)(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        clip_low=config.clip_low,
        clip_high=config.clip_high,
        dual_clip=config.dual_clip,
        seq_ids=seq_ids,
    )
    per_token = terms.per_token
    metrics: dict[str, float] = {}
    if config.kl_coef > 0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs")
        kl = k3_kl(logprobs, ref_logprobs.detach().to(logprobs.dtype))
        per_token = per_token + config.kl_coef * kl
        metrics["kl_ref"] = _masked_mean(kl.detach(), valid)
    if config.entropy_coef != 0:
        if entropy is None:
            raise ValueError("entropy_coef != 0 needs entropy")
        per_token = per_token - config.entropy_coef * entropy
    loss = aggregate(
        per_token,
        mask,
        config.aggregation,
        seq_ids=seq_ids,
        num_tokens=num_tokens,
        num_seqs=num_seqs,
    )
    metrics.update(_policy_metrics(terms, logprobs, old_logprobs, mask))
    with torch.no_grad():
        if entropy is not None:
            metrics["entropy"] = _masked_mean(entropy.detach().to(valid.dtype), valid)
        if ref_logprobs is not None and "kl_ref" not in metrics:
            metrics["kl_ref"] = _masked_mean(
                k3_kl(logprobs.detach(), ref_logprobs.to(logprobs.dtype)), valid
            )
    return loss, metrics


@torch.no_grad()
def _policy_metrics(
    terms: PolicyLossTerms,
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    mask: torch.Tensor,
) -> dict[str, float]:
    """Means over the masked tokens: the policy loss, where its clips acted, the ratio it
    clipped, and the token-level k1 of KL(old || new) whatever the loss."""
    valid = mask.to(logprobs.dtype)
    r = terms.ratio[valid > 0]
    return {
        "pg_loss": _masked_mean(terms.per_token.detach(), valid),
        "clip_frac": _masked_mean(terms.clipped.to(valid.dtype), valid),
        "dual_clip_frac": _masked_mean(terms.dual_clipped.to(valid.dtype), valid),
        "approx_kl": _masked_mean(-log_ratio(logprobs.detach(), old_logprobs, mask), valid),
        "ratio_mean": float(r.mean()) if r.numel() else 1.0,
        "ratio_max": float(r.max()) if r.numel() else 1.0,
        "ratio_min": float(r.min()) if r.numel() else 1.0,
        "num_tokens": float(valid.sum()),
    }
