"""Per-token log-probs of sampled targets: the one place trainer forwards turn into log-probs.

Convention: log_softmax(logits / temperature) in at least float32, the generator's, so the
first update of a step has ratio 1 exactly where the weights did not change.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import torch
from torch import nn

from metaagentx.train.packing import PackedBatch

EntropyMode = Literal["none", "metric", "grad"]


def token_logprobs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-prob of `targets` under log_softmax(logits / temperature), and optionally entropy.

    `logits` is (..., V) and `targets` (...). Computed in at least float32 (bf16 logits would
    round the ratio) via logsumexp, so no (..., V) log-prob tensor is materialised. A temperature <= 0 (greedy) means raw
    logits, the generator's convention.
    """
    scaled = logits if logits.dtype == torch.float64 else logits.float()
    if temperature > 0 and temperature != 1.0:
        scaled = scaled / temperature
    lse = torch.logsumexp(scaled, dim=-1)
    logp = scaled.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1) - lse
    if not with_entropy:
        return logp, None
    probs = torch.softmax(scaled, dim=-1)
    entropy = lse - (probs * scaled).sum(-1)
    return logp, entropy


def autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def loss_position_logprobs(
    model: nn.Module,
    batch: PackedBatch,
    temperature: float,
    *,
    entropy: EntropyMode = "none",
    bf16_autocast: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probs (and entropy) of the trained targets only, from one packed forward.

    Returns (logp (K,), entropy (K,) or None, keep (K,) packed positions). `entropy`:
    "grad" (differentiable, for a bonus), "metric" (detached) or "none". No cache and no
    attention mask, so attention stays per packed sequence (see packing.py); run it inside
    `packed_attention(model)` to skip the cross-sequence scores as well.
    """
    keep = batch.loss_mask[0].nonzero().squeeze(-1)
    with autocast(bf16_autocast, batch.input_ids.device):
        out = model(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            use_cache=False,
            logits_to_keep=keep,
        )
    logits = out.logits[0]  # (K, V), bf16 under autocast; token_logprobs upcasts to fp32
    targets = batch.targets[0, keep]
    if entropy == "grad":
        logp, ent = token_logprobs(logits, targets, temperature, with_entropy=True)
        return logp, ent, keep
    logp, ent = token_logprobs(logits, targets, temperature)
    if entropy == "metric":
        with torch.no_grad():
            _, ent = token_logprobs(logits.detach(), targets, temperature, with_entropy=True)
    return logp, ent, keep


def packed_token_logprobs(
    model: Any,
    batch: PackedBatch,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (and entropy) of `batch.targets` from one packed forward of `model`.

    `model` is a Hugging Face causal LM. No attention mask and no cache are passed, so the
    attention is block-diagonal per sequence (see the module docstring); values at positions
    where `loss_mask` is 0 are meaningless and must be masked by the caller.
    """
    out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False)
    return token_logprobs(out.logits, batch.targets, temperature, with_entropy)
