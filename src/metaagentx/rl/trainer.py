"""The RL loop of MetaAgent-X, readable top to bottom (see DESIGN.md, "one RL step").

Simplifications of the default update, against verl's PPO and the paper's set-up:
- It is on-policy REINFORCE with group-relative baselines: with trainer.epochs = mini_batches
  = 1 one optimizer step follows each rollout, old log-probs are recomputed by the same forward,
  so every ratio is 1 and the PPO clip never acts. Set epochs / mini_batches > 1 (verl's
  ppo_epochs / ppo_mini_batch_size) for the clipped multi-step update of the paper's verl set-up.
- No critic and no value function: advantages are GRPO's group-normalised outcome rewards,
  one per trajectory, broadcast to its tokens (no per-token credit).
- Reference KL (trainer.kl_coef) and entropy bonus are off; losses are token-mean.
- Rollout and update alternate synchronously: no off-policy or asynchronous generation.

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
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metaagentx.config import Config, save_config
from metaagentx.distributed.vllm_generation import VLLMGeneration
from metaagentx.llm.router import RoleRouter
from metaagentx.rl.advantages import role_advantages
from metaagentx.rl.metrics import (
    SampleKey,
    attach_advantages,
    memory_metrics,
    perf_metrics,
    rollout_metrics,
    trained_advantages,
    update_metrics,
)
from metaagentx.rl.schedule import Schedule
from metaagentx.rl.update import UpdateConfig, ppo_update, recompute_logprobs
from metaagentx.rollout.environment import grading_environment
from metaagentx.rollout.factory import train_mixture, tree_settings, validation_tasks
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.rollout.tree import RolloutEngine, RolloutTree
from metaagentx.train.checkpoint import (
    refuse_to_overwrite,
)
from metaagentx.train.engine import TrainingEngine
from metaagentx.train.generation import role_router
from metaagentx.train.logger import require_trackers, run_logger
from metaagentx.train.optim import OptimConfig, updates_per_owner
from metaagentx.train.policy import Policy

log = logging.getLogger(__name__)


class Trainer:
    """Owns the training engine, its generators, the grading environment, schedule and data.

    Under several ranks (torchrun or Ray) every rank builds one; all draw the same problems,
    each rolls out its share (each problem's whole tree on one rank, so group advantages stay
    local) and the update runs sharded. Rank 0 logs, writes samples and validates.
    """

    def __init__(self, config: Config, console: Console | None = None) -> None:
        check_generation(config)
        require_trackers(config.logging)  # a missing wandb/mlflow fails before the model loads
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
        self.model_dir = self.run_dir / "model"
        refuse_to_overwrite(self.run_dir, "trainer.resume", resume=config.trainer.resume)
        # before the model loads: refuses at once when executions could read reference data
        self.environment = grading_environment(config)
        self.environment.start()
        t = config.trainer
        self.schedule = Schedule(
            t.schedule,
            phase_length=t.phase_steps,
            first_role=t.first_role,
            learning_rates={DESIGNER: t.designer_lr, EXECUTOR: t.executor_lr},
        )
        # each owner's cosine horizon is the number of updates it takes, not the step count:
        # in stagewise training a role learns in only every other phase, and a step takes
        # epochs x mini_batches of them
        horizons = updates_per_owner(
            Policy.owner_roles(config.model.parameter_sharing),
            (self.schedule.active_roles(s) for s in range(t.steps)),
            updates_per_step=t.epochs * t.mini_batches,
        )
        self.engine = TrainingEngine(
            config,
            learning_rates={DESIGNER: t.designer_lr, EXECUTOR: t.executor_lr},
            optim=OptimConfig(
                lr=max(t.designer_lr, t.executor_lr),
                warmup_steps=t.warmup_steps,
                min_lr_ratio=t.min_lr_ratio,
                max_grad_norm=t.max_grad_norm,
            ),
            horizons={name: max(n, t.warmup_steps) for name, n in horizons.items()},
            reference=t.kl_coef > 0,
        )
        self.world = self.engine.world
        if t.batch_problems < self.world.size:
            raise ValueError(
                f"trainer.batch_problems={t.batch_problems} leaves some of the "
                f"{self.world.size} ranks without a problem; use at least one per rank"
            )
        self.policy = self.engine.policy
        self.tokenizer = self.engine.tokenizer
        self.update_config = UpdateConfig.from_trainer_config(t, settings.executor_temperature)
        self.mixture = train_mixture(config)
        self.val_tasks = validation_tasks(config)
        self.vllm: VLLMGeneration | None = None
        if config.generation.backend == "vllm":
            self.vllm = VLLMGeneration(config, self.policy, self.tokenizer, self.world)
            self.router: RoleRouter = self.vllm.router
        else:
            self.router = role_router(self.engine.generation_policy, self.tokenizer, config)
        self.runner = self.environment.runner(self.router)
        self.ray_executions = None  # executions and grading on Ray rollout workers, when asked
        if config.distributed.ray.rollout_workers > 0:
            from metaagentx.distributed.rollout_workers import RayExecutions

            self.ray_executions = RayExecutions(config, self.router)
        self.rollouts = RolloutEngine(
            self.router, self.runner, settings, self.environment, self.ray_executions
        )
        self.val_engine = RolloutEngine(
            self.router,
            self.runner,
            replace(settings, num_designs=1, num_executions=1, seed=settings.seed + 1),
            self.environment,
            self.ray_executions,
        )
        self.step = 0

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self) -> Path:
        return self.engine.save(
            self.checkpoints,
            self.step,
            {
                "step": self.step,
                "mixture": self.mixture.state_dict(),
                "schedule": self.schedule.state_dict(),
            },
            keep=self.config.trainer.keep_checkpoints,
        )

    def resume(self) -> bool:
        """Load the newest valid checkpoint (any world size); False when there is none."""
        state = self.engine.resume(self.checkpoints)
        if state is None:
            return False
        self.mixture.load_state_dict(state["mixture"])
        self.schedule.load_state_dict(state["schedule"])
        self.step = int(state["step"])
        if self.world.is_main:
            self.console.print(
                f"resumed from {state['_path']} at step {self.step}", highlight=False
            )
        return True

    # ---- one step --------------------------------------------------------------------------

    def run_step(self) -> dict[str, float]:
        """Rollout, advantages, update of the active roles; returns the step's metrics."""
        started = time.monotonic()
        active = self.schedule.active_roles(self.step)
        tasks = self.mixture.next_batch(self.config.trainer.batch_problems)
        tree = self.rollouts.rollout_sync(self.world.shard(tasks), self.step)
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
        if self.vllm is not None:
            self.vllm.sleep()  # colocated on a GPU: the engines free their memory for the update
        gaps = {}
        if self.config.trainer.recompute_logprobs:
            gaps = recompute_logprobs(self.policy, trainable, self.update_config, self.world)
        self.policy.train(True)
        update = ppo_update(
            self.policy,
            self.engine.optimizers,
            trainable,
            active,
            self.update_config,
            self.world,
        )
        self.policy.train(False)
        if self.vllm is None:  # the hf generator reads the copy; vLLM gets its own sync
            self.engine.sync_generation()
        synced = self._sync_engines(active)
        self.schedule.step = self.step + 1
        whole = self._whole_tree(tree, trained_advantages(trainable))
        metrics = rollout_metrics(whole[0]) if whole is not None else {}
        metrics.update(update_metrics(update))
        metrics.update({f"rollout/{r}_logprob_gap": gaps[r] for r in active if r in gaps})
        metrics.update(synced)
        groups = {}
        for role, stats in credit.stats.items():
            groups[f"advantage/{role}/zero_variance_groups"] = stats.zero_variance_groups
            groups[f"advantage/{role}/singleton_groups"] = stats.singleton_groups
        metrics.update(self.world.sum_dicts(groups))
        for role in ROLES:
            metrics[f"schedule/{role}_active"] = float(role in active)
        metrics["timing_s/update_actor"] = time.monotonic() - rolled
        metrics["timing_s/step"] = time.monotonic() - started
        if whole is not None:
            self._step_perf(metrics, update)
            self._write_samples(*whole)
        self.step += 1
        return metrics

    @staticmethod
    def _step_perf(metrics: dict[str, float], update: dict[str, float]) -> None:
        """Add the step's `perf/*` metrics: token throughput (see `perf_metrics`) and memory."""
        generated = metrics.get("tokens/designer", 0.0) + metrics.get("tokens/executor", 0.0)
        trained = update.get("tokens", 0.0)
        metrics.update(perf_metrics(generated, trained, metrics["timing_s/step"]))
        metrics.update(memory_metrics())

    def _sync_engines(self, roles: set[str] | tuple[str, ...]) -> dict[str, float]:
        """vLLM: wake the engines and give them the weights of `roles` (a no-op with hf,
        whose generator reads the trained weights themselves)."""
        if self.vllm is None:
            return {}
        self.vllm.wake_up()
        return self.vllm.sync.sync(roles)

    def _whole_tree(
        self, mine: RolloutTree, advantages: dict[SampleKey, float]
    ) -> tuple[RolloutTree, dict[SampleKey, float]] | None:
        """Every rank's share of the step's rollout as one tree on rank 0, with the advantages
        its trained samples got (None on the other ranks)."""
        if self.world.size == 1:
            return mine, advantages
        shares = self.world.gather_objects((mine, advantages))
        if not self.world.is_main:
            return None
        problems = [p for share, _ in shares for p in share.problems]
        timings = {k: max(s.timings.get(k, 0.0) for s, _ in shares) for k in mine.timings}
        merged = {key: adv for _, part in shares for key, adv in part.items()}
        return RolloutTree(mine.settings, problems, mine.step, timings), merged

    def validate(self) -> dict[str, float]:
        """Sampled end-to-end accuracy on held-out tasks (one design, one execution each);
        rank 0 validates alone (its generation weights are the whole trained model)."""
        if not self.val_tasks or not self.world.is_main:
            return {}
        tree = self.val_engine.rollout_sync(self.val_tasks, self.step)
        return {
            f"val/{k}": v
            for k, v in tree.metrics().items()
            if k.startswith(("accuracy/", "designs/", "patterns/"))
        }

    def _write_samples(self, tree: RolloutTree, advantages: dict[SampleKey, float]) -> None:
        """samples/step-NNNNNN.jsonl: one record per problem, each design and agent turn with
        the advantage the update used for it (None where it was not trained)."""
        samples = self.run_dir / "samples"
        samples.mkdir(parents=True, exist_ok=True)
        records = tree.to_records()
        attach_advantages(records, advantages)
        with (samples / f"step-{self.step:06d}.jsonl").open("w") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")

    # ---- the loop --------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Run (or resume) to `trainer.steps`, then export the model to `output_dir/model`;
        returns the last step's metrics (on rank 0; other ranks return {})."""
        t = self.config.trainer
        main = self.world.is_main
        if main:
            save_config(self.config, self.run_dir)
        resumed = t.resume and self.resume()
        if resumed or self.policy.sharing == "lora":
            # engines start from model.path: after a resume they need the trained weights,
            # and in lora the adapters (the base is what they started with)
            self._sync_engines(ROLES)
        logger = run_logger(self.config, resume=resumed) if main else None
        last: dict[str, Any] = {}
        progress = Progress(
            TextColumn("[bold]RL[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not (self.config.logging.progress and main),
        )
        with logger or nullcontext(), progress:  # the logger marks a failed run as failed
            bar = progress.add_task("rl", total=t.steps, completed=self.step, info="")
            while self.step < t.steps:
                roles = "+".join(sorted(self.schedule.active_roles(self.step)))
                metrics = self.run_step()
                if self.step % t.val_every == 0 or self.step == t.steps:
                    metrics.update(self.validate())
                log_now = self.step % self.config.logging.log_every == 0
                if logger is not None and (log_now or self.step == t.steps):
                    logger.log(self.step, metrics, active_roles=roles)
                if self.step % t.save_every == 0 or self.step == t.steps:
                    self.save()
                last = metrics if main else {}
                info = f"{roles} | reward d {metrics.get('reward/designer', 0):.2f} e {metrics.get('reward/executor', 0):.2f} | acc {metrics.get('accuracy/all', 0):.2f}"
                progress.update(bar, completed=self.step, info=info)
        self.export(self.model_dir, last, overwrite=True)
        return last

    def export(
        self, out: str | Path, metrics: dict[str, Any] | None = None, *, overwrite: bool = False
    ) -> Path:
        """The current weights as a model directory (every rank calls it; rank 0 writes)."""
        return self.engine.export(out, metrics or {}, overwrite=overwrite, steps=self.step)

    def close(self) -> None:
        if self.ray_executions is not None:  # first: the workers' server uses the router
            self.ray_executions.close()
        self.runner.close()
        self.environment.close()
        self.router.close()
        if self.vllm is not None:
            self.vllm.close()
        self.engine.close()


def check_generation(config: Config) -> None:
    """Refuse a generation set-up training cannot learn from, in one line."""
    g = config.generation
    if g.backend == "openai":
        raise ValueError(
            "train generates with weights it updates: generation.backend=hf (in-process) or "
            "vllm (engines it syncs); openai serves evaluation and teachers"
        )
    if g.backend == "vllm" and (g.top_p < 1 or g.top_k > 0):
        raise ValueError(
            "generation.backend=vllm trains with generation.top_p=1 and top_k=0: vLLM's "
            "log-probs would include the truncation, which the trainer does not recompute"
        )


def train(config: Config, console: Console | None = None) -> dict[str, Any]:
    """Build a trainer from `config`, run it, and release its resources (on this rank)."""
    trainer = Trainer(config, console)
    try:
        return trainer.train()
    finally:
        trainer.close()


def train_rank(config: dict[str, Any]) -> dict[str, Any]:
    """One rank's run from a JSON config: what `distributed.launch` runs on each Ray worker."""
    return train(Config.model_validate(config))
