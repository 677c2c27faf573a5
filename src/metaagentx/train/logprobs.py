"""Per-token log-probs of sampled targets: the one place trainer forwards turn into log-probs.

Convention: log_softmax(logits / temperature) in at least float32, the generator's, so the
first update of a step has ratio 1 exactly where the weights did not change.

Chunked log-probs: a (K, V) logit tensor is the largest activation of an update (Qwen3's
V = 151,936: 0.62 GB of fp32 logits per 1,000 tokens, held for backward, plus as much again for
the softmax). `chunked_token_logprobs` computes the LM head and the log-probs `chunk_tokens` rows
at a time and recomputes each chunk in backward (activation checkpointing), so no (K, V) tensor
exists at any time; `loss_position_logprobs(..., chunk_tokens=N)` runs it in place of the
model's LM head (see `chunked_lm_head` for why it must run inside the model call).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

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


def largest_gap(reference: Iterable[float], other: Iterable[float]) -> float:
    """The largest absolute per-token difference between two log-prob sequences (equal
    lengths): how far a generator's log-probs are from the trainer's."""
    return max((abs(a - b) for a, b in zip(reference, other, strict=True)), default=0.0)


def autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _chunk_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    temperature: float,
    entropy: EntropyMode,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """LM head + `token_logprobs` on one chunk of rows; "metric" entropy carries no graph.

    The log-prob is computed before the entropy so that, in "metric" mode, the checkpoint's
    recomputation stops early (it has every saved tensor once the log-prob is done).
    """
    logits = F.linear(hidden, weight, bias)  # bf16 under autocast, like the model's own head
    if entropy == "grad":
        return token_logprobs(logits, targets, temperature, with_entropy=True)
    logp, _ = token_logprobs(logits, targets, temperature)
    if entropy == "none":
        return logp, None
    with torch.no_grad():
        _, ent = token_logprobs(logits.detach(), targets, temperature, with_entropy=True)
    return logp, ent


def _chunked_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    temperature: float,
    chunk_tokens: int | None,
    entropy: EntropyMode,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`chunked_token_logprobs` with the three entropy modes of `loss_position_logprobs`."""
    if chunk_tokens is not None and chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    if hidden.dtype != weight.dtype and not torch.is_autocast_enabled(hidden.device.type):
        hidden = hidden.to(weight.dtype)  # F.linear needs one dtype; autocast casts itself
    k = hidden.shape[0]
    if chunk_tokens is None or chunk_tokens >= k:
        return _chunk_logprobs(hidden, weight, bias, targets, temperature, entropy)
    grads = [t for t in (hidden, weight, bias) if t is not None and t.requires_grad]
    recompute = torch.is_grad_enabled() and bool(grads)
    logps, ents = [], []
    # split (not slicing): one backward node that concatenates the chunks' hidden gradients
    for h, y in zip(hidden.split(chunk_tokens), targets.split(chunk_tokens), strict=True):
        if recompute:
            lp, ent = checkpoint(
                _chunk_logprobs, h, weight, bias, y, temperature, entropy,
                use_reentrant=False, preserve_rng_state=False,
            )  # fmt: skip
        else:
            lp, ent = _chunk_logprobs(h, weight, bias, y, temperature, entropy)
        logps.append(lp)
        ents.append(ent)
    if entropy == "none":
        return torch.cat(logps), None
    return torch.cat(logps), torch.cat(ents)


def chunked_token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 1.0,
    *,
    chunk_tokens: int | None,
    with_entropy: bool = False,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`token_logprobs(hidden @ weight.T + bias, targets, temperature, with_entropy)` without
    ever holding the (K, V) logits: peak memory is that of `chunk_tokens` rows.

    hidden (K, H) of any float dtype (cast to the weight's unless autocast decides), weight
    (V, H), targets (K,). Each chunk runs under non-reentrant activation checkpointing, so
    backward recomputes its logits instead of keeping them: one extra LM-head matmul for
    a bounded memory. `chunk_tokens` None or >= K is one plain chunk (no recomputation).
    Gradients reach hidden, weight and bias (through the entropy too when requested).
    """
    mode: EntropyMode = "grad" if with_entropy else "none"
    return _chunked_logprobs(hidden, weight, bias, targets, temperature, chunk_tokens, mode)


@contextlib.contextmanager
def chunked_lm_head(
    model: nn.Module,
    targets: torch.Tensor,
    temperature: float,
    *,
    chunk_tokens: int | None,
    entropy: EntropyMode = "none",
) -> Iterator[nn.Module]:
    """Make the model's LM head return (..., K, 2) [log-prob of `targets`, entropy] for the block.

    Why inside the model call: under FSDP2 the LM-head weight is only unsharded inside the root
    module's forward, so the chunked computation has to read `head.weight` there (a head
    computed by hand after the call would see a shard). The override is an instance attribute
    `head.forward` (module hooks, e.g. FSDP's, still run around it), removed (or the previous
    instance forward put back) on exit, also when the forward raises. The entropy column is 0
    for "none" and carries no graph for "metric". Yields the head.
    """
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear):
        raise TypeError(f"chunked log-probs need a linear LM head, got {type(head).__name__}")

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        flat = hidden.reshape(-1, hidden.shape[-1])
        if flat.shape[0] != targets.numel():
            raise ValueError(f"LM head got {flat.shape[0]} positions for {targets.numel()} targets")
        logp, ent = _chunked_logprobs(
            flat, head.weight, head.bias, targets, temperature, chunk_tokens, entropy
        )
        ent = torch.zeros_like(logp) if ent is None else ent
        return torch.stack([logp, ent], dim=-1).reshape(*hidden.shape[:-1], 2)

    missing = object()
    previous = head.__dict__.get("forward", missing)
    head.forward = forward
    try:
        yield head
    finally:
        if previous is missing:
            del head.forward
        else:
            head.forward = previous


def loss_position_logprobs(
    model: nn.Module,
    batch: PackedBatch,
    temperature: float,
    *,
    entropy: EntropyMode = "none",
    bf16_autocast: bool = False,
    chunk_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probs (and entropy) of the trained targets only, from one packed forward.

    Returns (logp (K,), entropy (K,) or None, keep (K,) packed positions). `entropy`:
    "grad" (differentiable, for a bonus), "metric" (detached) or "none". No cache and no
    attention mask, so attention stays per packed sequence (see packing.py); run it inside
    `packed_attention(model)` to skip the cross-sequence scores as well. `chunk_tokens`: the
    LM head computes the log-probs `chunk_tokens` positions at a time inside the model call
    (`chunked_lm_head`; under FSDP2 the head weight is only unsharded inside the root
    module's forward), so no (K, V) logits are ever held; None keeps the full logits.
    """
    keep = batch.loss_mask[0].nonzero().squeeze(-1)
    targets = batch.targets[0, keep]
    if chunk_tokens is not None:
        head = chunked_lm_head(
            model, targets, temperature, chunk_tokens=chunk_tokens, entropy=entropy
        )
        with head:
            out = _forward(model, batch, keep, bf16_autocast)
        packed = out.logits[0]  # (K, 2): log-prob, entropy (fp32 even under autocast)
        ent = None if entropy == "none" else packed[:, 1]
        return packed[:, 0], ent.detach() if entropy == "metric" else ent, keep
    out = _forward(model, batch, keep, bf16_autocast)
    logits = out.logits[0]  # (K, V), bf16 under autocast; token_logprobs upcasts to fp32
    if entropy == "grad":
        logp, ent = token_logprobs(logits, targets, temperature, with_entropy=True)
        return logp, ent, keep
    logp, ent = token_logprobs(logits, targets, temperature)
    if entropy == "metric":
        with torch.no_grad():
            _, ent = token_logprobs(logits.detach(), targets, temperature, with_entropy=True)
    return logp, ent, keep


def _forward(model: nn.Module, batch: PackedBatch, keep: torch.Tensor, bf16: bool) -> Any:
    """The packed forward of the trained positions: no cache (see packing.py), no mask."""
    with autocast(bf16, batch.input_ids.device):
        return model(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            use_cache=False,
            logits_to_keep=keep,
        )


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
