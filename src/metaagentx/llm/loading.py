"""Loading a Hugging Face causal LM and its tokenizer from a local directory (or the hub).

The tiny model built by `metaagentx tiny build` and a real Qwen3-8B checkpoint go through this
same function, so tests on the tiny model exercise the real loading path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype '{dtype}'; choose one of auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def load_model_and_tokenizer(
    path: str | Path,
    *,
    dtype: str | torch.dtype = "float32",
    device: str = "auto",
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and tokenizer; the tokenizer pads on the left for batched generation."""
    source = str(path)
    local = Path(source).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(
                f"'{local}' is not a Hugging Face model directory (no config.json)"
            )
        source = str(local)
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        source,
        dtype=resolve_dtype(dtype),
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
    )
    model.to(resolve_device(device))
    model.eval()
    return model, tokenizer
