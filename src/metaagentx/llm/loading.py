"""Loading a Hugging Face causal LM and its tokenizer from a local directory (or the Hub).

The tiny model built by `metaagentx tiny build` and a real Qwen3-8B checkpoint go through this
same function, so tests on the tiny model exercise the real loading path.

Whatever the user can fix (a misspelt path, a truncated file, a device this machine lacks, an
unreachable Hub) fails at once with one line naming the problem and the fix: a path-like name
never goes to the Hub, and an unreachable Hub is seen with one short connection attempt rather
than huggingface_hub's ~50 s of retries. Download progress bars stay visible; only a local
load hides transformers' "Loading weights" bar, as nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from metaagentx.errors import UserError, one_line
from metaagentx.hub_probe import hub_unreachable
from metaagentx.outputs import local_bars_hidden

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# what huggingface_hub accepts as a model id: `name` or `owner/name`, word characters, . and -
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


class ModelLoadError(UserError, OSError):
    """A model's files cannot be found or read; an OSError as transformers' own load errors are."""


class ModelSettingError(UserError, ValueError):
    """A dtype or device that this torch or this machine cannot provide."""


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks cuda when available, else cpu; a named device must exist here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise ModelSettingError(
            f"unknown device '{device}'; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    reason = _unavailable(resolved)
    if reason is not None:
        raise ModelSettingError(
            f"device '{device}' is not available: {reason} (use --device cpu or auto)"
        )
    return resolved


def _unavailable(device: torch.device) -> str | None:
    if device.type == "cuda":
        if not torch.backends.cuda.is_built():
            return "this torch has no CUDA support"
        count = torch.cuda.device_count()
        if count == 0:
            return "no CUDA GPU is visible"
        if device.index is not None and device.index >= count:
            return f"this machine shows {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
    if device.type == "mps":
        if not torch.backends.mps.is_built():
            return "this torch has no MPS support"
        if not torch.backends.mps.is_available():
            return "MPS is not available on this machine"
    return None


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """A torch dtype, or 'auto' (the checkpoint's own dtype) passed on to transformers."""
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in DTYPES:
        raise ModelSettingError(f"unknown dtype '{dtype}'; choose one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_model_and_tokenizer(
    path: str | Path,
    *,
    dtype: str | torch.dtype = "float32",
    device: str = "auto",
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and tokenizer; the tokenizer pads on the left for batched generation.

    `path` is a model directory, or a Hub id (`owner/name`) read from the Hugging Face cache
    or downloaded."""
    target, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    source = str(path)
    local = _local_dir(source)
    if local is not None:
        _check_files(local)
        source = str(local)
    cache_only = local is None and _cache_only(source)
    options = {"trust_remote_code": trust_remote_code, "local_files_only": cache_only}
    with (
        local_bars_hidden() if local is not None else nullcontext(),
        _offline(cache_only),
        _hub_errors(source, hub=local is None),
    ):
        tokenizer = _load_tokenizer(source, local, options)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, attn_implementation=attn_implementation, **options
        )
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(target)
    model.eval()
    return model, tokenizer


def _local_dir(source: str) -> Path | None:
    """The model directory `source` names, or None when it is a Hub id. A name shaped like a
    path (absolute, ./ ../ ~, more than one /) is never a Hub id, so a typo fails here."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"'{source}' is not a Hugging Face model directory (no config.json); "
                "pass the folder that save_pretrained wrote"
            )
        return path
    if path.exists():
        raise ModelLoadError(
            f"model path '{source}' is a file; pass the model directory that holds config.json"
        )
    if _HUB_ID.match(source) and len(source) <= 96 and ".." not in source and "--" not in source:
        return None
    raise ModelLoadError(
        f"model directory '{source}' does not exist (check the path; a Hub id is owner/name)"
    )


def _check_files(local: Path) -> None:
    """Read config.json and every safetensors header now: a truncated or corrupt file is named
    here, where transformers would report only a deserializing error."""
    from safetensors import safe_open

    config = local / "config.json"
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(_corrupt("config", config, exc)) from exc
    for weights in sorted(local.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as exc:  # safetensors raises its own SafetensorError (an Exception)
            raise ModelLoadError(_corrupt("weights", weights, exc)) from exc


def _load_tokenizer(
    source: str, local: Path | None, options: dict[str, bool]
) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source, **options)
    except Exception as exc:
        file = local / "tokenizer.json" if local is not None else None
        if file is None or not file.is_file():
            raise
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(file))
        except Exception as corrupt:  # the file itself is unreadable: name it
            raise ModelLoadError(_corrupt("tokenizer", file, corrupt)) from exc
        raise


def _corrupt(what: str, file: Path, exc: BaseException) -> str:
    return (
        f"cannot read the {what} in '{file}': {one_line(exc)}; the file is truncated or "
        "corrupt (re-export or re-download it)"
    )


def _cache_only(source: str) -> bool:
    """Whether a Hub id must come from the local Hugging Face cache (the Hub is unreachable);
    raises when it is not cached there either."""
    reason = hub_unreachable()
    if reason is None:
        return False
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(source, "config.json"), str):
        raise ModelLoadError(
            f"model '{source}' is neither a local directory nor in the Hugging Face cache, and "
            f"the Hub is unreachable ({reason}); download it where the Hub is reachable, or "
            "pass a local model directory"
        )
    return True


@contextmanager
def _offline(offline: bool) -> Iterator[None]:
    """huggingface_hub offline for this block: a cached load makes requests `local_files_only`
    does not cover (transformers looks for an adapter_config.json), each retried for ~25 s."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = saved or offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


@contextmanager
def _hub_errors(source: str, hub: bool) -> Iterator[None]:
    """A Hub load's OSError (no such repo, gated, network) as one line naming the model."""
    try:
        yield
    except OSError as exc:
        if not hub or isinstance(exc, UserError):
            raise
        raise ModelLoadError(f"cannot load model '{source}': {one_line(exc)}") from exc
