"""Decoding whose every row is computed as if it were alone: same seed, same tokens, whatever
shares the batch.

Continuous batching groups requests by arrival time, so under CPU load a request shares its
batch with different requests, and batched kernels are not row-invariant (see `BatchInvariant`).
`HFGenerator` enters this mode around its decode work when `generation.deterministic` is on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class BatchInvariant(TorchFunctionMode):
    """Linear layers and attention computed so that a row's values never depend on the other
    rows of its batch, nor on the left padding that batching adds.

    Batched kernels are not row-invariant: MKL picks GEMM kernels and blockings by the number
    of rows (a row's logits move by ~1e-7 between batch sizes 1 and 4), and attention over a
    left-padded cache sums at shifted positions. Such differences flip a near-tied sampled
    token now and then, and batch composition follows arrival times. Here every token's linear
    layers are one-row products (`torch.bmm` over a broadcast weight) and attention runs row by
    row over that row's own positions only. The mode is thread-local: the trainer's forward on
    the same model, in another thread, is unaffected."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            return _row_linear(*args, **kwargs)
        if func is F.scaled_dot_product_attention:
            return _row_attention(*args, **kwargs)
        return func(*args, **kwargs)


def _row_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """`F.linear` as one (1 x in) @ (in x out) product per token."""
    flat = x.reshape(-1, 1, x.shape[-1])
    out = torch.bmm(flat, weight.t().expand(flat.shape[0], -1, -1))
    out = out.reshape(*x.shape[:-1], weight.shape[0])
    return out if bias is None else out + bias


def _row_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,  # grouped heads are read from the shapes
) -> torch.Tensor:
    """SDPA row by row over each row's own positions, in one canonical form per phase.

    transformers calls SDPA three ways by padding and phase (no mask: `enable_gqa`; a mask:
    `repeat_kv`, or for one query token the group packed into the query axis), and each gives
    different floats. Here a prefill (queries = keys, from an empty cache) is one SDPA call per
    row with an explicit mask, and a decode step (one query) is `_decode_attention`. Unmasked
    keys must form a suffix (left padding); a padded query gets zeros: it is never read."""
    shape = query.shape
    packed = attn_mask is not None and attn_mask.shape[2] == 1 < shape[2]
    if packed:  # (batch, kv heads, group, dim) holds one token's query heads
        query = query.reshape(shape[0], -1, 1, shape[-1])
    k_len = key.shape[2]
    keep = _keep(attn_mask, is_causal, query.shape[2], k_len, query.device)
    keep = keep.expand(shape[0], -1, query.shape[2], k_len)
    seen = keep[:, 0].any(dim=1)  # (batch, keys)
    starts = k_len - seen.sum(dim=1)
    if not torch.equal(seen, torch.arange(k_len, device=seen.device) >= starts[:, None]):
        raise ValueError("batch-invariant attention needs left-padded rows")
    if query.shape[2] not in (1, k_len):
        raise ValueError("batch-invariant attention runs a prefill from empty or one token")
    if query.shape[2] == 1:
        out = _decode_attention(query, key, value, starts.tolist(), scale)
    else:
        out = query.new_zeros(*query.shape[:3], value.shape[-1])
        gqa = query.shape[1] != key.shape[1]
        for b, s in enumerate(starts.tolist()):
            q = query[b : b + 1, :, s:]  # prefill: queries and keys are the same positions
            out[b, :, s:] = F.scaled_dot_product_attention(
                q, key[b : b + 1, :, s:], value[b : b + 1, :, s:],
                attn_mask=keep[b : b + 1, :, s:, s:], dropout_p=dropout_p, scale=scale,
                enable_gqa=gqa,
            )[0]  # fmt: skip
    return out.reshape(*shape[:3], -1) if packed else out


def _decode_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    starts: list[int],
    scale: float | None,
) -> torch.Tensor:
    """One query token per row: rows whose keys start at the same position attend together,
    as one-row products per (row, head) (`torch.bmm`), which no batch size changes."""
    batch, heads, _, dim = query.shape
    group = heads // key.shape[1]
    scale = dim**-0.5 if scale is None else scale
    out = query.new_empty(batch, heads, 1, value.shape[-1])
    for start in sorted(set(starts)):
        rows = torch.tensor([b for b, s in enumerate(starts) if s == start], device=query.device)
        q = query[rows].reshape(-1, 1, dim) * scale
        k, v = (x[rows, :, start:].repeat_interleave(group, 1).flatten(0, 1) for x in (key, value))
        weights = torch.bmm(q, k.transpose(1, 2)).softmax(dim=-1)
        out[rows] = torch.bmm(weights, v).reshape(len(rows), heads, 1, -1)
    return out


def _keep(
    attn_mask: torch.Tensor | None, causal: bool, q_len: int, k_len: int, device: torch.device
) -> torch.Tensor:
    """SDPA's mask as booleans (True: attend), 4-D; built from `causal` when there is none."""
    if attn_mask is not None:
        return attn_mask if attn_mask.dtype == torch.bool else attn_mask == 0
    keep = torch.ones(q_len, k_len, dtype=torch.bool, device=device)
    return (keep.tril(k_len - q_len) if causal else keep)[None, None]


__all__ = ["BatchInvariant"]
