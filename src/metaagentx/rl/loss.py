"""Token-level PPO-clip policy loss, k3 KL to a reference and entropy bonus.

Everything works on flat or batched per-token tensors plus a mask; the mask is 1 only on tokens
the active roles sampled (never prompts, tool outputs or other agents' deliveries), so what is
trained is decided by whoever builds the mask. The ratio is taken against the rollout's own
log-probs (`old_logprobs`), which the generator computes as log_softmax(logits / temperature);
`metaagentx.train.logprobs` applies the same convention so the first update step has ratio 1
exactly where the weights did not change.

Aggregation takes an optional global normaliser (`num_tokens` / `num_seqs` over all
micro-batches of a step) so that summing the gradients of micro-batches equals the gradient of
the whole batch: per-micro-batch means would weight a short micro-batch's tokens more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Aggregation = Literal["token-mean", "seq-mean-token-mean"]


@dataclass(frozen=True)
class PPOLossConfig:
    """PPO-clip settings; `clip_high > clip_low` gives DAPO's clip-higher."""

    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = None  # c > 1 bounds the loss of negative-advantage tokens at c*|A|
    kl_coef: float = 0.0  # k3 KL to the frozen reference; needs ref_logprobs when > 0
    entropy_coef: float = 0.0  # bonus: subtracts entropy_coef * entropy
    aggregation: Aggregation = "token-mean"

    def __post_init__(self) -> None:
        if self.clip_low < 0 or self.clip_high < 0:
            raise ValueError("clip ranges must be >= 0")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {self.dual_clip}")
        if self.aggregation not in ("token-mean", "seq-mean-token-mean"):
            raise ValueError(f"unknown aggregation {self.aggregation!r}")


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref): exp(r) - r - 1 with r = ref - logp; >= 0, unbiased."""
    log_ratio = (ref_logprobs - logprobs).clamp(-20.0, 20.0)  # exp overflow guard, as in verl
    return torch.exp(log_ratio) - log_ratio - 1.0


def _sequence_ids(mask: torch.Tensor, seq_ids: torch.Tensor | None) -> torch.Tensor:
    if seq_ids is not None:
        if seq_ids.shape != mask.shape:
            raise ValueError(f"seq_ids shape {tuple(seq_ids.shape)} != mask {tuple(mask.shape)}")
        return seq_ids.long()
    if mask.dim() != 2:
        raise ValueError("seq-mean-token-mean needs seq_ids unless inputs are (batch, tokens)")
    rows = torch.arange(mask.shape[0], device=mask.device)
    return rows[:, None].expand_as(mask)


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
    ids = _sequence_ids(mask, seq_ids).reshape(-1)
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
    """PPO-clip loss over the masked tokens, plus detached metrics over this call's tokens.

    All tensors share one shape (per token; advantages already broadcast from sequences).
    Per token: max(-A*ratio, -A*clip(ratio, 1-clip_low, 1+clip_high)); with dual clip, for
    A < 0 also min(that, -A*c). Then + kl_coef * k3(logp, ref) - entropy_coef * entropy,
    aggregated by `config.aggregation` (see `aggregate` for the normalisers).
    """
    if not (logprobs.shape == old_logprobs.shape == advantages.shape == mask.shape):
        raise ValueError("logprobs, old_logprobs, advantages and mask must have one shape")
    valid = mask.to(logprobs.dtype)
    old = old_logprobs.detach().to(logprobs.dtype)
    adv = advantages.detach().to(logprobs.dtype)
    # Off-mask tokens may hold anything (e.g. 0 old log-prob for a prompt): keep exp() finite there.
    log_ratio = torch.where(valid > 0, logprobs - old, torch.zeros_like(logprobs))
    ratio = torch.exp(log_ratio.clamp(-20.0, 20.0))
    pg_unclipped = -adv * ratio
    pg_clipped = -adv * ratio.clamp(1.0 - config.clip_low, 1.0 + config.clip_high)
    pg = torch.maximum(pg_unclipped, pg_clipped)
    clipped = pg_clipped > pg_unclipped
    dual_clipped = torch.zeros_like(clipped)
    if config.dual_clip is not None:
        bound = -adv * config.dual_clip
        dual_clipped = (adv < 0) & (pg > bound)
        pg = torch.where(dual_clipped, bound, pg)
    per_token = pg
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
    with torch.no_grad():
        on = valid > 0
        r = ratio[on]
        metrics.update(
            pg_loss=_masked_mean(pg.detach(), valid),
            clip_frac=_masked_mean(clipped.to(valid.dtype), valid),
            dual_clip_frac=_masked_mean(dual_clipped.to(valid.dtype), valid),
            approx_kl=_masked_mean(-log_ratio.detach(), valid),  # k1 of KL(old || new)
            ratio_mean=float(r.mean()) if r.numel() else 1.0,
            ratio_max=float(r.max()) if r.numel() else 1.0,
            ratio_min=float(r.min()) if r.numel() else 1.0,
            num_tokens=float(valid.sum()),
        )
        if entropy is not None:
            metrics["entropy"] = _masked_mean(entropy.detach().to(valid.dtype), valid)
        if ref_logprobs is not None and "kl_ref" not in metrics:
            metrics["kl_ref"] = _masked_mean(
                k3_kl(logprobs.detach(), ref_logprobs.to(logprobs.dtype)), valid
            )
    return loss, metrics
