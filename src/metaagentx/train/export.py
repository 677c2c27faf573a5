"""A trained policy as a Hugging Face model directory: load, evaluate, serve and push it.

Users of verl/TRL expect the end of training to be a folder that plain
`AutoModelForCausalLM.from_pretrained` (or `peft.PeftModel.from_pretrained`) loads, with the
tokenizer, a generation config that stops at the tokenizer's end token, and a model card saying
what was trained and how well it did. `export_policy` writes that folder for every parameter
sharing mode (layouts below); `push_to_hub` uploads it.

Layouts (`out/` is written into a temporary sibling and renamed into place, so a crash never
leaves a half-written `out/`):

- shared: `out/` is one full model dir (config.json, model.safetensors, generation_config.json,
  tokenizer files, README.md).
- separate: `out/designer/` and `out/executor/` are full model dirs; `out/README.md` says which
  plays which role.
- lora: `out/designer/` and `out/executor/` are PEFT adapter dirs (adapter_config.json,
  adapter_model.safetensors, tokenizer files) for the base model named in the card; with
  `merge_lora=True` each is instead a full model dir (base + that role's adapter, merged on a
  copy so the live policy is untouched).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from huggingface_hub import HfApi, ModelCard, ModelCardData
from torch import nn

from metaagentx.outputs import atomic_dir, check_output_dir, local_bars_hidden
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.train.policy import Policy, Sharing

if TYPE_CHECKING:
    from metaagentx.config import Config

CARD_TAGS = ["metaagentx", "reinforcement-learning", "multi-agent"]
ROLE_TEXT = {
    DESIGNER: "writes the multi-agent workflow (the design) for a task",
    EXECUTOR: "answers the agent calls the workflow makes",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ExportCard:
    """What the model card says: where the weights came from, how they were trained, results.

    `base_model` is the model training started from (a hub id or a local path); in `lora`
    mode it is also what the adapters' `base_model_name_or_path` names, so it must be what a
    user will load the base from.
    """

    base_model: str
    parameter_sharing: Sharing
    run_config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    description: str | None = None
    steps: int | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        metrics: Mapping[str, float] | None = None,
        *,
        steps: int | None = None,
        description: str | None = None,
    ) -> ExportCard:
        """The card for a run of `config` (its model path and sharing, the resolved config)."""
        return cls(
            base_model=config.model.path or "unknown",
            parameter_sharing=config.model.parameter_sharing,
            run_config=config.model_dump(mode="json"),
            metrics=dict(metrics or {}),
            description=description,
            steps=steps,
        )


# ---- export --------------------------------------------------------------------------------


def export_policy(
    policy: Policy,
    tokenizer: Any,
    out: str | Path,
    *,
    card: ExportCard,
    merge_lora: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write `policy` as a model directory at `out` (layout per mode: see the module doc).

    Takes plain modules (unwrap DDP/FSDP first); models may live on any device. Refuses an
    existing non-empty `out` unless `overwrite`; the write is atomic (temporary sibling, then
    rename), so an interrupted export leaves `out` as it was.
    """
    if card.parameter_sharing != policy.sharing:
        raise ValueError(
            f"card says parameter_sharing={card.parameter_sharing!r} "
            f"but the policy is {policy.sharing!r}"
        )
    if merge_lora and policy.sharing != "lora":
        raise ValueError(f"merge_lora=True needs a lora policy, this one is {policy.sharing!r}")
    out = Path(out)
    check_output_dir(
        out, overwrite=overwrite, what="export target", fix="--overwrite (overwrite=True)"
    )
    with atomic_dir(out) as tmp, local_bars_hidden():
        if policy.sharing == "shared":
            _save_full(policy.model_for(EXECUTOR), tokenizer, tmp)
        elif policy.sharing == "separate":
            for role in ROLES:
                _save_full(policy.model_for(role), tokenizer, tmp / role)
        elif merge_lora:
            for role in ROLES:
                _save_merged(policy.model_for(role), role, tokenizer, tmp / role)
        else:
            for role in ROLES:
                _save_adapter(policy.model_for(role), role, card.base_model, tokenizer, tmp / role)
        render_card(card, merged=merge_lora).save(tmp / "README.md")
    return out


def _save_full(
    model: nn.Module, tokenizer: Any, out: Path, state_dict: dict[str, torch.Tensor] | None = None
) -> None:
    """A full transformers model dir; `state_dict` (CPU tensors) replaces the model's weights."""
    if state_dict is None:
        state_dict = _cpu_state_dict(model.state_dict())
    model.save_pretrained(out, state_dict=state_dict)  # type: ignore[operator]
    _generation_config(model, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)


def _save_adapter(
    peft_model: nn.Module, role: str, base_model: str, tokenizer: Any, out: Path
) -> None:
    """One role's adapter as a PEFT dir whose config names `base_model` as the base."""
    from peft import PeftConfig

    staging = out.parent / f".{role}.peft"
    peft_model.save_pretrained(staging, selected_adapters=[role])  # type: ignore[operator]
    os.replace(staging / role, out)  # peft saves a non-"default" adapter in a subfolder
    shutil.rmtree(staging)
    config = PeftConfig.from_pretrained(str(out))
    config.base_model_name_or_path = base_model
    config.save_pretrained(str(out))
    tokenizer.save_pretrained(out)


def _save_merged(peft_model: nn.Module, role: str, tokenizer: Any, out: Path) -> None:
    """Base + `role`'s adapter as a full model dir, without touching the live model."""
    base = peft_model.get_base_model()  # type: ignore[operator]
    _save_full(base, tokenizer, out, state_dict=merged_state_dict(peft_model, role))


def merged_state_dict(peft_model: nn.Module, role: str) -> dict[str, torch.Tensor]:
    """The base model's state dict (CPU) with `role`'s adapter merged in, keys as in the base.

    Each LoRA layer is deep-copied on its own and merged with peft's own `merge` (so scaling,
    DoRA and fan-in-fan-out are peft's business); one layer at a time keeps the extra memory
    to a single layer.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    base = peft_model.get_base_model()  # type: ignore[operator]
    tuners = {n: m for n, m in base.named_modules() if isinstance(m, BaseTunerLayer)}
    state: dict[str, torch.Tensor] = {}
    for key, tensor in base.state_dict().items():
        if not any(key.startswith(f"{name}.") for name in tuners):
            state[key] = tensor
    for name, module in tuners.items():
        layer = copy.deepcopy(module)
        if any(role in getattr(layer, attr) for attr in layer.adapter_layer_names):
            layer.merge(adapter_names=[role])
        for key, tensor in layer.get_base_layer().state_dict().items():
            state[f"{name}.{key}"] = tensor
        del layer
    return _cpu_state_dict(state)


def _cpu_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached CPU copies; tensors that shared memory (tied embeddings) still share it, so
    transformers sees the tie and writes the weight once."""
    seen: dict[tuple[int, torch.dtype, tuple[int, ...], tuple[int, ...]], torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        ident = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
        if ident not in seen:
            seen[ident] = tensor.detach().to("cpu")
        out[key] = seen[ident]
    return out


def _generation_config(model: nn.Module, tokenizer: Any) -> Any:
    """A copy of the model's generation config that also stops at (and pads with) the
    tokenizer's tokens, so a served export ends its turns where training did."""
    from transformers import GenerationConfig

    live = getattr(model, "generation_config", None)
    config = copy.deepcopy(live) if live is not None else GenerationConfig()
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None:
        current = config.eos_token_id
        ids = [] if current is None else list(current) if isinstance(current, list) else [current]
        if eos not in ids:
            ids.append(eos)
        config.eos_token_id = ids[0] if len(ids) == 1 else ids
    pad = getattr(tokenizer, "pad_token_id", None)
    if config.pad_token_id is None and pad is not None:
        config.pad_token_id = pad
    return config


# ---- the model card ------------------------------------------------------------------------


def render_card(card: ExportCard, *, merged: bool = False) -> ModelCard:
    """The README.md: hub metadata (tags, library) plus the roles, config and metrics."""
    adapters = card.parameter_sharing == "lora" and not merged
    data = ModelCardData(
        library_name="peft" if adapters else "transformers",
        tags=list(CARD_TAGS) + (["lora"] if card.parameter_sharing == "lora" else []),
        pipeline_tag="text-generation",
        # the hub checks `base_model` against its model ids: a local path goes in the text only
        base_model=card.base_model if _looks_like_hub_id(card.base_model) else None,
    )
    lines = [
        "# metaagentx policy",
        "",
        card.description or "A designer/executor policy trained with metaagentx.",
        "",
        f"- base model: `{card.base_model}`",
        f"- parameter sharing: `{card.parameter_sharing}`",
    ]
    if card.steps is not None:
        lines.append(f"- training steps: {card.steps}")
    lines += ["", "## Layout", "", *_layout_lines(card.parameter_sharing, merged, card.base_model)]
    lines += ["", "## Final metrics", "", *_metrics_table(card.metrics)]
    config_yaml = yaml.safe_dump(dict(card.run_config), sort_keys=False).rstrip()
    lines += ["", "## Run config", "", "```yaml", config_yaml or "{}", "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _looks_like_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not Path(name).expanduser().exists()


def _layout_lines(sharing: Sharing, merged: bool, base_model: str) -> list[str]:
    if sharing == "shared":
        return [
            "This folder is one model that plays both roles (they differ only by prompt): "
            "load it with `AutoModelForCausalLM.from_pretrained`."
        ]
    lines = [f"- `{role}/`: the {role}, which {ROLE_TEXT[role]}." for role in ROLES]
    if sharing == "lora" and not merged:
        how = (
            f"Each folder is a PEFT LoRA adapter on `{base_model}`: load the base, then "
            "`peft.PeftModel.from_pretrained(base, folder)`."
        )
    else:
        how = "Each folder is a full model: load it with `AutoModelForCausalLM.from_pretrained`."
    return [*lines, "", how]


def _metrics_table(metrics: Mapping[str, float]) -> list[str]:
    if not metrics:
        return ["(none recorded)"]
    rows = [f"| {name} | {float(value):.6g} |" for name, value in metrics.items()]
    return ["| metric | value |", "| --- | --- |", *rows]


# ---- the hub -------------------------------------------------------------------------------


def check_export_dir(folder: str | Path) -> Path:
    """`folder` if it is an `export_policy` output, else a one-line ValueError saying why."""
    folder = Path(folder)
    readme = folder / "README.md"
    if not folder.is_dir() or not readme.is_file():
        raise ValueError(f"{folder} is not an exported model dir (no README.md model card)")
    tags = ModelCard.load(readme).data.tags or []
    if "metaagentx" not in tags:
        raise ValueError(f"{folder} is not an exported model dir (card lacks the metaagentx tag)")
    model_files = ("config.json", "adapter_config.json")
    dirs = [folder] if (folder / "config.json").is_file() else [folder / r for r in ROLES]
    missing = [d for d in dirs if not any((d / f).is_file() for f in model_files)]
    if missing:
        raise ValueError(f"{folder} is not an exported model dir (no model in {missing[0]})")
    return folder


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload policy exported by metaagentx",
) -> str:
    """Upload an exported model dir to the hub model repo `repo_id` (created if missing);
    returns the commit url. Checks the folder before any network call."""
    folder = check_export_dir(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        commit_message=commit_message,
        token=token,
        repo_type="model",
    )
    return str(getattr(info, "commit_url", None) or info)


__all__ = [
    "CARD_TAGS",
    "ExportCard",
    "check_export_dir",
    "export_policy",
    "merged_state_dict",
    "push_to_hub",
    "render_card",
]
