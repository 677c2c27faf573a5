"""FSDP2 for a policy: shard every model (and the KL reference), and read full weights back.

`fully_shard` goes on each decoder layer (the classes transformers names in
`_no_split_modules`) and then on the root, so one layer's parameters are gathered at a time
and the embeddings, final norm and LM head live in the root group. A PEFT-wrapped model is
sharded the same way (its frozen base and trainable adapters mix in one group, which FSDP2
allows). Mixed precision follows `distributed.param_dtype` / `reduce_dtype`; the sharded
master weights keep the dtype the model was loaded in.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated transformer blocks of a transformers model (or a PeftModel around one)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(base, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"{type(base).__name__} names no decoder layer class (_no_split_modules); "
            "FSDP needs one to shard layer by layer"
        )
    return layers


def shard_model(
    model: nn.Module,
    *,
    param_dtype: str = "float32",
    reduce_dtype: str = "float32",
    cpu_offload: bool = False,
) -> nn.Module:
    """Apply FSDP2 to `model` in place, layer by layer and then the root; returns it."""
    kwargs: dict[str, object] = {
        "mp_policy": MixedPrecisionPolicy(
            param_dtype=DTYPES[param_dtype], reduce_dtype=DTYPES[reduce_dtype]
        )
    }
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute each decoder layer in backward (transformers' non-reentrant checkpointing)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.2x's name
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def full_tensor(value: torch.Tensor) -> torch.Tensor:
    """The whole tensor behind a possibly sharded parameter (a collective under FSDP: every
    rank must call it for the same parameters in the same order)."""
    return value.full_tensor() if isinstance(value, DTensor) else value


def copy_weights(source: nn.Module, target: nn.Module, names: Iterable[str] | None = None) -> int:
    """Copy parameters of `source` (sharded or not) into the same-named ones of `target`
    (unsharded); `names=None` copies the trainable ones. Returns how many tensors moved."""
    wanted = None if names is None else set(names)
    dest = dict(target.named_parameters())
    moved = 0
    with torch.no_grad():
        for name, param in source.named_parameters():
            if (wanted is None and not param.requires_grad) or (wanted and name not in wanted):
                continue
            whole = full_tensor(param.detach())
            if name not in dest:
                raise KeyError(f"parameter {name!r} has no counterpart in the generation copy")
            dest[name].copy_(whole.to(dest[name].device, dest[name].dtype))
            moved += 1
    return moved


def is_sharded(model: nn.Module) -> bool:
    return any(isinstance(p, DTensor) for p in model.parameters())
