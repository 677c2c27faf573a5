"""The KV-cache operations of continuous batching, on transformers' `Cache` API, in one place.

Covers transformers 4.56 to 5.x (pyproject admits >=4.56,<6; checked on 4.56.2 and 5.24.0).
Across that range a `DynamicCache` built from the model's config holds one `DynamicLayer` per
decoder layer in `.layers`, whose `.keys`/`.values` are [batch, heads, positions, head_dim]
tensors, and `Cache.batch_select_indices` keeps given rows (`key_cache`/`value_cache` are gone by
4.56, legacy tuples by 5.x, so neither is used). What changed is the forward keyword: a 5.x release renamed
`past_key_values` to `cache` (the old name warns, and goes in 5.40). The cache is created here
and filled in place by each forward, so the output's name for it never matters either.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


def new_cache(model: nn.Module) -> DynamicCache:
    """An empty cache shaped for `model` (what its forward would create with `use_cache`)."""
    return DynamicCache(config=model.config)


def cache_keyword(model: nn.Module) -> str:
    """The forward keyword that takes a cache: `cache` (transformers 5.x) or `past_key_values`.

    Read from the model's own signature, as a PEFT wrapper's forward takes only **kwargs."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def mergeable(cache: DynamicCache) -> bool:
    """Whether rows of `cache` can be left-padded and stacked with another cache's rows: only
    plain full-attention layers can (a sliding-window layer keeps a window, not every position)."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


def select_rows(cache: DynamicCache, index: torch.Tensor) -> None:
    """Keep the rows `index` names, in that order (repeats copy a row), in place."""
    cache.batch_select_indices(index)


def stack_rows(cache: DynamicCache, other: DynamicCache, width: int) -> None:
    """Append `other`'s rows to `cache`, both left-padded with zeros to `width` positions.

    The padded positions must be masked out by the caller's attention mask."""
    for mine, theirs in zip(cache.layers, other.layers, strict=True):
        mine.keys = torch.cat([left_pad(mine.keys, width, 2), left_pad(theirs.keys, width, 2)])
        mine.values = torch.cat(
            [left_pad(mine.values, width, 2), left_pad(theirs.values, width, 2)]
        )


def left_pad(x: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zeros on the left of dimension `dim` up to `width` (positions an attention mask hides)."""
    missing = width - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x.new_zeros(shape), x], dim=dim)
