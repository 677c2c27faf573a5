"""Per-row next-token sampling for a batch whose rows may each ask for different settings.

The batcher merges requests from many callers into one forward pass, so temperature, top-k,
top-p and the random stream are per row. Each row draws its noise from its own generator, so
a seeded request samples the same tokens whatever else shares its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def filter_logprobs(logp: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Set log-probs outside each row's top-k / top-p set to -inf (at least one token stays)."""
    vocab = logp.shape[-1]
    sorted_lp, sorted_idx = torch.sort(logp, dim=-1, descending=True)
    ranks = torch.arange(vocab, device=logp.device).expand_as(sorted_lp)
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab)).clamp(max=vocab)
    drop = ranks >= k[:, None]
    probs = sorted_lp.exp()
    before = probs.cumsum(dim=-1) - probs  # mass strictly above each token
    drop |= before >= top_p[:, None]
    drop[:, 0] = False
    drop_unsorted = torch.zeros_like(drop).scatter(-1, sorted_idx, drop)
    return logp.masked_fill(drop_unsorted, float("-inf"))


def sample_next(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    generators: Sequence[torch.Generator | None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row; return (tokens, log-probs of those tokens).

    Log-probs are under softmax(logits / temperature) (raw logits for greedy rows, whose
    temperature is 0), before top-k/top-p truncation: the convention `SamplingParams` documents.
    Rows whose generator is None are decoded greedily.
    """
    logits = logits.float()
    greedy = temperature <= 0
    safe_t = torch.where(greedy, torch.ones_like(temperature), temperature)
    logp = torch.log_softmax(logits / safe_t[:, None], dim=-1)
    tokens = logits.argmax(dim=-1)
    sampled_rows = [i for i, g in enumerate(generators) if g is not None and not bool(greedy[i])]
    if sampled_rows:
        rows = torch.tensor(sampled_rows, device=logits.device)
        vocab = logits.shape[-1]
        filtered = logp[rows]
        # Only rows that truncate are filtered: the sort over the vocabulary is most of a decode
        # step's cost on a small model, and temperature-1 sampling (the RL default) needs none.
        k, p = top_k[rows], top_p[rows]
        truncating = ((k > 0) & (k < vocab)) | (p < 1.0)
        if bool(truncating.any()):
            which = truncating.nonzero().squeeze(-1)
            filtered[which] = filter_logprobs(filtered[which], k[which], p[which])
        uniform = torch.stack([torch.rand(vocab, generator=generators[i]) for i in sampled_rows])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0 - 1e-7))).to(logits.device)
        tokens[rows] = (filtered + gumbel).argmax(dim=-1)  # Gumbel-max: an exact categorical sample
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)
