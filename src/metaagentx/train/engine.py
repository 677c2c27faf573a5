"""The training engine RL and SFT share: the weights, where they live, and their checkpoints.

Built once per run from the config, on every rank:
1. this process's place in the run (`World`: one process, torchrun ranks or Ray workers);
2. the model and tokenizer, wrapped for the parameter-sharing mode (`Policy`), with a frozen
   KL reference when asked for;
3. activation checkpointing and FSDP2 sharding when configured (`distributed.*`);
4. a generation copy: with sharded weights each rank keeps a whole copy for its own rollouts
   (generation must not be a collective: ranks decode different lengths), refreshed from the
   shards after every update (`sync_generation`); unsharded, the generator uses the trained
   weights themselves;
5. one AdamW + warmup/cosine per parameter owner (`RoleOptimizers`).

Checkpoints go through `torch.distributed.checkpoint`, so a run saved at one world size resumes
at another; the trainer adds its own JSON state (step, data cursor, schedule).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from metaagentx.config import Config, load_config
from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.outputs import check_output_dir
from metaagentx.rollout.roles import ROLES
from metaagentx.train.checkpoint import (
    load_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
    seed_everything,
)
from metaagentx.train.distributed import World, close_world, init_world
from metaagentx.train.export import ExportCard, export_policy
from metaagentx.train.fsdp import (
    DTYPES,
    copy_weights,
    enable_activation_checkpointing,
    shard_model,
)
from metaagentx.train.optim import OptimConfig, RoleOptimizers
from metaagentx.train.policy import LoraSettings, Policy


class TrainingEngine:
    """The trained weights of a run on this rank (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        learning_rates: Mapping[str, float],
        optim: OptimConfig,
        horizons: Mapping[str, int | None] | None = None,
        reference: bool = False,
    ) -> None:
        if not config.model.path:
            raise ValueError("model.path is not set: point it at a model directory")
        d = config.distributed
        if d.cpu_offload and not config.model.device.startswith("cuda"):
            raise ValueError(
                "distributed.cpu_offload moves FSDP shards off the GPU; with "
                f"model.device={config.model.device} there is no GPU memory to save"
            )
        self.config = config
        self.sharded = d.fsdp == "on" or (d.fsdp == "auto" and _planned_world() > 1)
        self.world: World = init_world(
            launcher=d.launcher,
            backend=d.backend,
            num_trainers=d.num_trainers,
            device=config.model.device,
            group_for_one=self.sharded,
        )
        if self.world.size > 1 and d.fsdp == "off":
            raise ValueError(
                f"{self.world.size} ranks need sharded weights: set distributed.fsdp=auto or on"
            )
        self.sharded = self.sharded or self.world.size > 1
        seed_everything(config.seed)
        model, self.tokenizer = load_model_and_tokenizer(
            config.model.path,
            dtype=config.model.dtype,
            device=str(self.world.device),
            attn_implementation=config.model.attn_implementation,
        )
        # the generation copy computes in the FSDP compute dtype: a bf16 copy is half the memory
        replica = copy.deepcopy(model).to(DTYPES[d.param_dtype]) if self.sharded else None
        self.policy = self._build_policy(model)
        if reference:
            self.policy.freeze_reference()
        self._prepare_for_training()
        self.generation_policy = self._build_policy(replica) if replica is not None else self.policy
        self.policy.train(False)
        self.generation_policy.train(False)
        self.optimizers = RoleOptimizers(
            self.policy.owners(), learning_rates, optim, total_steps=horizons
        )

    def _prepare_for_training(self) -> None:
        """Activation checkpointing, then FSDP2 on every model (KL references included)."""
        d = self.config.distributed
        if d.activation_checkpointing:
            for module in self.policy.modules_for(ROLES):
                enable_activation_checkpointing(module)
        if self.sharded:
            for module in self.policy.all_modules():
                shard_model(
                    module,
                    param_dtype=d.param_dtype,
                    reduce_dtype=d.reduce_dtype,
                    cpu_offload=d.cpu_offload,
                )

    def _build_policy(self, model: nn.Module) -> Policy:
        m = self.config.model
        return Policy.build(
            model,
            m.parameter_sharing,
            lora=LoraSettings(r=m.lora_r, alpha=m.lora_alpha),
            seed=self.config.seed,
        )

    # ---- weights for generation -----------------------------------------------------------

    def sync_generation(self) -> int:
        """Refresh the generation copy from the trained shards (a collective: every rank calls
        it after every update); a no-op without sharding. Returns the tensors copied."""
        if self.generation_policy is self.policy:
            return 0
        moved = 0
        for name, module in self.policy.named_models().items():
            moved += copy_weights(module, self.generation_policy.named_models()[name])
        return moved

    # ---- checkpoints -------------------------------------------------------------------------

    def _tensor_state(self) -> dict[str, Any]:
        """What DCP saves and loads in place: trainable weights and optimizer moments."""
        options = StateDictOptions(ignore_frozen_params=True)
        models = {
            name: trainable_state_dict(module)
            for name, module in self.policy.named_models().items()
        }
        optimizers = {}
        for owner, opt in self.optimizers.optimizers.items():
            model = self.policy.model_for(sorted(self.optimizers.roles[owner])[0])
            optimizers[owner] = get_optimizer_state_dict(model, opt.optimizer, options=options)
        return {"models": models, "optimizers": optimizers}

    def save(self, root: str | Path, step: int, state: Mapping[str, Any], keep: int) -> Path:
        """Checkpoint weights, optimizers, schedules, RNGs and the trainer's `state` (every
        rank calls it)."""
        untouched = [o for o, opt in self.optimizers.optimizers.items() if not opt.optimizer.state]
        try:
            return save_checkpoint(
                root,
                step,
                tensors=self._tensor_state(),
                objects={"schedules": self.optimizers.schedule_state(), "untouched": untouched},
                state=state,
                keep=keep,
                world=self.world,
            )
        finally:
            # reading an optimizer's state dict initialises its moments with a fake step;
            # an owner that has not learnt yet must stay exactly as it was
            for owner in untouched:
                self.optimizers.optimizers[owner].optimizer.state.clear()

    def resume(self, root: str | Path) -> dict[str, Any] | None:
        """Load the newest valid checkpoint under `root` (resharding it to this world);
        returns the trainer's state, or None when there is none."""
        tensors = self._tensor_state()
        loaded = load_latest_checkpoint(root, tensors=tensors, world=self.world)
        if loaded is None:
            for opt in self.optimizers.optimizers.values():
                opt.optimizer.state.clear()
            return None
        options = StateDictOptions(ignore_frozen_params=True, strict=False)
        for name, module in self.policy.named_models().items():
            set_model_state_dict(module, tensors["models"][name], options=options)
        for owner, opt in self.optimizers.optimizers.items():
            model = self.policy.model_for(sorted(self.optimizers.roles[owner])[0])
            set_optimizer_state_dict(
                model, opt.optimizer, tensors["optimizers"][owner], options=options
            )
        self.optimizers.load_schedule_state(loaded["objects"]["schedules"])
        for owner in loaded["objects"]["untouched"]:
            self.optimizers.optimizers[owner].optimizer.state.clear()
        self.sync_generation()
        return {**loaded["state"], "_path": str(loaded["path"])}

    # ---- export --------------------------------------------------------------------------------

    def export(
        self,
        out: str | Path,
        metrics: Mapping[str, Any],
        *,
        overwrite: bool = False,
        merge_lora: bool = False,
        steps: int | None = None,
    ) -> Path:
        """Write the trained weights as a Hugging Face model directory (see `export_policy`).

        Every rank calls it (the generation copy is refreshed from the shards first); rank 0
        writes from its whole copy."""
        self.sync_generation()
        out = Path(out)
        if self.world.is_main:
            numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            card = ExportCard.from_config(self.config, numbers, steps=steps)
            export_policy(
                self.generation_policy,
                self.tokenizer,
                out,
                card=card,
                merge_lora=merge_lora,
                overwrite=overwrite,
            )
        self.world.barrier()
        return out

    def close(self) -> None:
        """Leave the process group if this engine made it."""
        close_world(self.world)


def trainable_state_dict(module: nn.Module) -> dict[str, Any]:
    """The trainable tensors of `module` (sharded or not) by name: what a checkpoint keeps of
    a model (the adapters alone in lora: the frozen base is reloaded from model.path)."""
    trainable = {n for n, p in module.named_parameters(remove_duplicate=False) if p.requires_grad}
    state = get_model_state_dict(module, options=StateDictOptions(ignore_frozen_params=True))
    # a tied LM head is listed under its own name, which ignore_frozen_params does not check
    return {k: v for k, v in state.items() if k in trainable}


def _planned_world() -> int:
    """World size before the group exists: an existing group's, else torchrun's WORLD_SIZE."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def export_checkpoint(
    source: str | Path, out: str | Path, *, merge_lora: bool = False, overwrite: bool = False
) -> Path:
    """Export a run's newest valid checkpoint (`source` = its run directory) or one checkpoint
    (`source` = `RUN/checkpoints/step-N`) as a model directory, in this one process.

    The run's `config.yaml` names the base model and the sharing mode; the checkpoint, saved
    at any world size, is read whole (DCP reshards it to this process)."""
    source = Path(source)
    check_output_dir(  # before minutes of loading
        Path(out), overwrite=overwrite, what="export target", fix="--overwrite (overwrite=True)"
    )
    run_dir = source.parent.parent if source.name.startswith("step-") else source
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise ValueError(f"{source} is not a run directory or checkpoint: no {config_file}")
    config = load_config(config_file, [])
    model, tokenizer = load_model_and_tokenizer(
        str(config.model.path), dtype=config.model.dtype, device="cpu"
    )
    m = config.model
    policy = Policy.build(
        model, m.parameter_sharing, lora=LoraSettings(r=m.lora_r, alpha=m.lora_alpha), seed=0
    )
    tensors = {
        "models": {name: trainable_state_dict(m) for name, m in policy.named_models().items()}
    }
    if source.name.startswith("step-"):
        loaded = load_checkpoint(source, tensors=tensors, restore_rng=False)
    else:
        loaded = load_latest_checkpoint(run_dir / "checkpoints", tensors=tensors, restore_rng=False)
        if loaded is None:
            raise ValueError(f"{run_dir / 'checkpoints'} holds no valid checkpoint to export")
    into = StateDictOptions(ignore_frozen_params=True, strict=False)  # lora: base not saved
    for name, module in policy.named_models().items():
        set_model_state_dict(module, tensors["models"][name], options=into)
    card = ExportCard.from_config(config, steps=int(loaded["step"]))
    return export_policy(
        policy, tokenizer, out, card=card, merge_lora=merge_lora, overwrite=overwrite
    )
