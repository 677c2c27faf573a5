"""The trained weights as files a generation engine reloads (vLLM's weight sync reads them).

vLLM reloads a model from safetensors files (`reload_weights(weights_path=DIR)`) and LoRA
adapters from PEFT directories, whether the engine runs in its own process or behind a server,
so a sync is: gather each tensor whole (a collective under FSDP: every rank calls these in the
same order), write it once, and point the engine at the folder.

A tied model's `named_parameters()` omits `lm_head.weight`; vLLM keeps its own output layer,
and a sync without it leaves that layer stale (greedy ids still match, log-probs drift by more
than half a nat). `full_weights` therefore always includes `lm_head.weight`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from metaagentx.train.fsdp import full_tensor

LM_HEAD = "lm_head.weight"
EMBEDDINGS = "model.embed_tokens.weight"


def full_weights(model: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of a Hugging Face causal LM by its checkpoint name, whole and on the CPU,
    `lm_head.weight` included for tied models; `dtype` converts floating tensors."""
    state: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            whole = full_tensor(tensor.detach())
            if dtype is not None and whole.is_floating_point():
                whole = whole.to(dtype)
            state[name] = whole.to("cpu").clone()  # own storage: safetensors refuses shared ones
    if LM_HEAD not in state and EMBEDDINGS in state:
        state[LM_HEAD] = state[EMBEDDINGS].clone()
    return state


def adapter_weights(peft_model: nn.Module, adapter: str) -> dict[str, torch.Tensor]:
    """One LoRA adapter's tensors, whole and on the CPU, under PEFT's saved names."""
    from peft import get_peft_model_state_dict

    with torch.no_grad():
        state = get_peft_model_state_dict(peft_model, adapter_name=adapter)
        return {k: full_tensor(v.detach()).to("cpu").clone() for k, v in state.items()}


def write_weights(state: dict[str, torch.Tensor], folder: str | Path) -> Path:
    """`state` as `folder/model.safetensors`, replacing what was there (atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / "model.safetensors")
    return folder


def write_adapter(
    peft_model: nn.Module, adapter: str, state: dict[str, torch.Tensor], folder: str | Path
) -> Path:
    """`adapter` as a PEFT directory (config + safetensors) a LoRA-enabled engine loads."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = peft_model.peft_config[adapter]  # type: ignore[index]
    config.save_pretrained(str(tmp))
    save_file(state, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def lora_rank(peft_model: nn.Module) -> int:
    """The largest LoRA rank among the model's adapters (what an engine must be sized for)."""
    return max(int(c.r) for c in peft_model.peft_config.values())  # type: ignore[union-attr]
