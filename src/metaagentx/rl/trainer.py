"""The RL loop of MetaAgent-X, readable top to bottom (see DESIGN.md, "one RL step").

Each step: draw a batch of problems from the task mixture; roll out M designs x N executions
with the current weights; turn outcomes into role-aware group-relative advantages; update only
the roles the stage schedule makes active; log metrics and sample traces; validate every k
steps; checkpoint atomically. `resume=true` continues from the newest valid checkpoint exactly:
weights, optimizer and scheduler states, RNGs, the data cursor and the schedule position.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metaagentx.config import Config, save_config
from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.rl.advantages import role_advantages
from metaagentx.rl.loss import PPOLossConfig
from metaagentx.rl.schedule import Schedule
from metaagentx.rl.update import UpdateConfig, ppo_update
from metaagentx.rollout.environment import grading_environment
from metaagentx.rollout.factory import train_mixture, tree_settings, validation_tasks
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.rollout.trajectory import Trajectory
from metaagentx.rollout.tree import RolloutEngine, RolloutTree
from metaagentx.train.checkpoint import (
    load_latest_checkpoint,
    refuse_to_overwrite,
    save_checkpoint,
    seed_everything,
)
from metaagentx.train.generation import role_router
from metaagentx.train.logger import MetricsLogger
from metaagentx.train.logprobs import packed_token_logprobs
from metaagentx.train.optim import OptimConfig, RoleOptimizers, updates_per_owner
from metaagentx.train.packing import pack_micro_batches
from metaagentx.train.policy import LoraSettings, Policy

log = logging.getLogger(__name__)


class Trainer:
    """Owns the policy, its generators, the sandbox runner, optimizers, schedule and data."""

    def __init__(self, config: Config, console: Console | None = None) -> None:
        if config.generation.backend != "hf":
            raise ValueError(
                "train generates with the in-process hf backend (the trainer's own weights); "
                f"generation.backend={config.generation.backend} is for evaluation and teachers"
            )
        if not config.model.path:
            raise ValueError("model.path is not set: point it at a model directory")
        settings = tree_settings(config)
        if settings.designer_temperature != settings.executor_temperature:
            raise ValueError(
                "training needs one sampling temperature for both roles (set generation.temperature)"
            )
        self.config = config
        self.console = console or Console()
        self.run_dir = Path(config.output_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        # before the model loads: refuses at once when executions could read reference data
        self.environment = grading_environment(config)
        self.environment.start()
        seed_everything(config.seed)
        t = config.trainer
        model, self.tokenizer = load_model_and_tokenizer(
            config.model.path,
            dtype=config.model.dtype,
            device=config.model.device,
            attn_implementation=config.model.attn_implementation,
        )
        self.policy = Policy.build(
            model,
            config.model.parameter_sharing,
            lora=LoraSettings(r=config.model.lora_r, alpha=config.model.lora_alpha),
            seed=config.seed,
        )
        if t.kl_coef > 0:
            self.policy.freeze_reference()
        self.policy.train(False)
        self.schedule = Schedule(
            t.schedule,
            phase_length=t.phase_steps,
            first_role=t.first_role,
            learning_rates={DESIGNER: t.designer_lr, EXECUTOR: t.executor_lr},
        )
        owners = self.policy.owners()
        # each owner's cosine horizon is the number of updates it takes, not the step count:
        # in stagewise training a role learns in only every other phase
        horizons = updates_per_owner(
            {name: roles for name, (roles, _) in owners.items()},
            (self.schedule.active_roles(s) for s in range(t.steps)),
        )
        self.optimizers = RoleOptimizers(
            owners,
            {DESIGNER: t.designer_lr, EXECUTOR: t.executor_lr},
            OptimConfig(
                lr=max(t.designer_lr, t.executor_lr),
                warmup_steps=t.warmup_steps,
                min_lr_ratio=t.min_lr_ratio,
                max_grad_norm=t.max_grad_norm,
            ),
            total_steps={name: max(n, t.warmup_steps) for name, n in horizons.items()},
        )
        self.update_config = UpdateConfig(
            loss=PPOLossConfig(
                clip_low=t.clip_ratio,
                clip_high=t.clip_ratio_high or t.clip_ratio,
                dual_clip=t.dual_clip,
                kl_coef=t.kl_coef,
                entropy_coef=t.entropy_coef,
                aggregation=t.loss_aggregation,
            ),
            temperature=settings.executor_temperature,
            micro_batch_tokens=t.micro_batch_tokens,
            bf16_autocast=t.bf16_autocast,
        )
        self.mixture = train_mixture(config)
        self.val_tasks = validation_tasks(config)
        self.router = role_router(self.policy, self.tokenizer, config)
        self.runner = self.environment.runner(self.router)
        self.engine = RolloutEngine(self.router, self.runner, settings, self.environment)
        self.val_engine = RolloutEngine(
            self.router,
            self.runner,
            replace(settings, num_designs=1, num_executions=1, seed=settings.seed + 1),
            self.environment,
        )
        self.step = 0

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self) -> Path:
        return save_checkpoint(
            self.checkpoints,
            self.step,
            models=self.policy.state_dicts(),
            optimizers=self.optimizers.state_dict(),
            state={
                "step": self.step,
                "mixture": self.mixture.state_dict(),
                "schedule": self.schedule.state_dict(),
            },
            keep=self.config.trainer.keep_checkpoints,
        )

    def resume(self) -> bool:
        """Load the newest valid checkpoint; False when there is none."""
        loaded = load_latest_checkpoint(self.checkpoints)
        if loaded is None:
            return False
        self.policy.load_state_dicts(loaded["models"])
        self.optimizers.load_state_dict(loaded["optimizers"])
        self.mixture.load_state_dict(loaded["state"]["mixture"])
        self.schedule.load_state_dict(loaded["state"]["schedule"])
        self.step = int(loaded["state"]["step"])
        self.console.print(f"resumed from {loaded['path']} at step {self.step}", highlight=False)
        return True

    # ---- one step --------------------------------------------------------------------------

    def run_step(self) -> dict[str, float]:
        """Rollout, advantages, update of the active roles; returns the step's metrics."""
        started = time.monotonic()
        active = self.schedule.active_roles(self.step)
        tasks = self.mixture.next_batch(self.config.trainer.batch_problems)
        tree = self.engine.rollout_sync(tasks, self.step)
        rolled = time.monotonic()
        trajectories = tree.trajectories()
        credit = role_advantages(
            trajectories,
            estimator=self.config.trainer.advantage,
            executor_grouping=self.config.trainer.executor_group,
        )
        for trajectory, advantage in zip(trajectories, credit.advantages, strict=True):
            trajectory.advantage = advantage
        trainable = [t for t in trajectories if t.role in active]
        if self.config.trainer.recompute_logprobs:
            self._recompute_logprobs(trainable)
        self.policy.train(True)
        update = ppo_update(self.policy, self.optimizers, trainable, active, self.update_config)
        self.policy.train(False)
        self.schedule.step = self.step + 1
        metrics = tree.metrics()
        metrics.update({f"update/{k}": v for k, v in update.items()})
        for role, stats in credit.stats.items():
            metrics[f"advantage/{role}/zero_variance_groups"] = stats.zero_variance_groups
            metrics[f"advantage/{role}/singleton_groups"] = stats.singleton_groups
        for role in ROLES:
            metrics[f"schedule/{role}_active"] = float(role in active)
        metrics["time/update_s"] = time.monotonic() - rolled
        metrics["time/step_s"] = time.monotonic() - started
        self._write_samples(tree)
        self.step += 1
        return metrics

    def _recompute_logprobs(self, trajectories: list[Trajectory]) -> None:
        """Old log-probs from the training forward (packed, deterministic), per role weights."""
        temperature = self.update_config.temperature
        for role in ROLES:
            mine = [t for t in trajectories if t.role == role]
            if not mine:
                continue
            ids = [t.prompt_ids + t.response_ids for t in mine]
            masks = [[0] * len(t.prompt_ids) + [1] * len(t.response_ids) for t in mine]
            with torch.no_grad(), self.policy.activate(role) as model:
                device = next(model.parameters()).device
                for batch in pack_micro_batches(ids, masks, self.update_config.micro_batch_tokens):
                    logp, _ = packed_token_logprobs(model, batch.to(device), temperature)
                    for index, values in batch.unpack(logp.float()).items():
                        start = len(mine[index].prompt_ids)
                        mine[index].old_logprobs = values[start:].tolist()

    def validate(self) -> dict[str, float]:
        """Sampled end-to-end accuracy on held-out tasks (one design, one execution each)."""
        if not self.val_tasks:
            return {}
        tree = self.val_engine.rollout_sync(self.val_tasks, self.step)
        return {
            f"val/{k}": v
            for k, v in tree.metrics().items()
            if k.startswith(("accuracy/", "designs/", "patterns/"))
        }

    def _write_samples(self, tree: RolloutTree) -> None:
        samples = self.run_dir / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        with (samples / f"step-{self.step:06d}.jsonl").open("w") as f:
            for record in tree.to_records():
                f.write(json.dumps(record) + "\n")

    # ---- the loop --------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Run (or resume) to `trainer.steps`; returns the last step's metrics."""
        t = self.config.trainer
        if not t.resume:
            refuse_to_overwrite(self.checkpoints, "trainer.resume")
        save_config(self.config, self.run_dir)
        if t.resume:
            self.resume()
        logger = MetricsLogger(
            self.run_dir,
            tensorboard=self.config.logging.tensorboard,
            wandb_project=self.config.logging.wandb_project,
            config=self.config.model_dump(mode="json"),
        )
        last: dict[str, Any] = {}
        progress = Progress(
            TextColumn("[bold]RL[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.config.logging.progress,
        )
        try:
            with progress:
                bar = progress.add_task("rl", total=t.steps, completed=self.step, info="")
                while self.step < t.steps:
                    roles = "+".join(sorted(self.schedule.active_roles(self.step)))
                    metrics = self.run_step()
                    if self.step % t.val_every == 0 or self.step == t.steps:
                        metrics.update(self.validate())
                    if self.step % self.config.logging.log_every == 0 or self.step == t.steps:
                        logger.log(self.step, metrics, active_roles=roles)
                    if self.step % t.save_every == 0 or self.step == t.steps:
                        self.save()
                    last = metrics
                    info = f"{roles} | reward d {metrics.get('reward/designer', 0):.2f} e {metrics.get('reward/executor', 0):.2f} | acc {metrics.get('accuracy/all', 0):.2f}"
                    progress.update(bar, completed=self.step, info=info)
        finally:
            logger.close()
        return last

    def save_model(self, out: str | Path) -> Path:
        """The current weights as a loadable model directory (see `Policy.save_pretrained`)."""
        return self.policy.save_pretrained(out, self.tokenizer)

    def close(self) -> None:
        self.runner.close()
        self.environment.close()
        self.router.close()


def train(config: Config, console: Console | None = None) -> dict[str, Any]:
    """Build a trainer from `config`, run it, and release its resources."""
    trainer = Trainer(config, console)
    try:
        return trainer.train()
    finally:
        trainer.close()
