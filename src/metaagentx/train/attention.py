"""Per-sequence attention for packed rows, so packing costs no cross-sequence attention work.

With sdpa or eager, transformers turns a packed row (position ids restarting at 0) into one
(T, T) block-diagonal mask and the kernel still computes all T^2 scores: a 4096-token row of ten
400-token sequences does ~10x the attention work of the sequences alone (measured: the update
got 3.6x slower going from 512- to 4096-token micro-batches). `packed_attention(model)` swaps in,
for the duration of a block, an attention function that cuts the row at the position-id
restarts and runs causal sdpa on each sequence alone (no mask is built at all). Flash-attention
models already do this through cu_seqlens and are left as they are.

Only the update's own forwards run inside the block (the generator must not: it pads batches,
which this function refuses).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface

PACKED_ATTENTION = "metaagentx_packed_sdpa"
_SWAPPABLE = ("sdpa", "eager")


def segment_bounds(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """[start, end) of each packed sequence of a (1, T) row: a new one starts at position 0."""
    row = position_ids.reshape(-1)
    starts = (row == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    ends = [*starts[1:], row.numel()]
    return list(zip(starts, ends, strict=True))


def packed_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal sdpa per packed sequence; query/key/value are (1, heads, T, head_dim)."""
    if query.shape[0] != 1 or position_ids is None or attention_mask is not None:
        raise ValueError("packed attention needs one packed row, position ids and no mask")
    if key.shape[2] != query.shape[2]:
        raise ValueError("packed attention runs without a KV cache (use_cache=False)")
    if kwargs.get("sliding_window") is not None:
        raise ValueError("packed attention does not implement sliding windows")
    outputs = []
    for start, end in segment_bounds(position_ids):
        out, _ = sdpa_attention_forward(
            module,
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            None,
            dropout=dropout,
            scaling=scaling,
            is_causal=True,
        )
        outputs.append(out)  # (1, L, heads, head_dim)
    return torch.cat(outputs, dim=1), None


def _no_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> None:
    """Mask factory for PACKED_ATTENTION: sequences are cut by position ids, so no mask."""
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError("packed attention does not take padded batches")
    return None


AttentionInterface.register(PACKED_ATTENTION, packed_sdpa_attention)
AttentionMaskInterface.register(PACKED_ATTENTION, _no_mask)


@contextmanager
def packed_attention(model: Any) -> Iterator[None]:
    """Run `model` (a transformers model, or a PeftModel around one) with per-sequence
    attention for packed rows inside the block; restores the previous implementation."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    windowed = any(t == "sliding_attention" for t in getattr(config, "layer_types", None) or ())
    if current not in _SWAPPABLE or windowed:
        yield
        return
    model.set_attn_implementation(PACKED_ATTENTION)
    try:
        yield
    finally:
        model.set_attn_implementation(current)
