"""Supervised fine-tuning on collected records: the cold start before RL.

It runs on the training engine RL uses (`metaagentx.train`): `Policy` (both roles in one model,
or per role for `lora`/`separate`: designer records train the designer's weights, executor
records the executor's), AdamW with warmup + cosine and clipping, sequence packing with
per-sequence attention, log-probs only at trained positions (chunked when configured), FSDP2
across ranks, DCP checkpoints with exact resume at any world size, and `MetricsLogger`. The
loss is the token-mean negative log-likelihood of completion tokens per parameter owner
(prompt tokens are masked, see `sft.data`). The final weights are exported as a model
directory into `output_dir/model`, so `model.path` can point at it for RL.

Use a different output_dir for SFT and RL: both keep `checkpoints/` and `metrics.jsonl` there.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metaagentx.config import Config, save_config
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.sft.collect import data_path
from metaagentx.sft.data import EpochSampler, SFTExample, load_dataset
from metaagentx.sft.evaluate import evaluate_policy
from metaagentx.train.checkpoint import (
    refuse_to_overwrite,
)
from metaagentx.train.engine import TrainingEngine
from metaagentx.train.logger import require_trackers, run_logger
from metaagentx.train.logprobs import loss_position_logprobs
from metaagentx.train.microbatches import lockstep_micro_batches
from metaagentx.train.optim import OptimConfig


class SFTTrainer:
    """Owns the training engine, data sampler and run directory of one SFT run.

    Under several ranks every rank draws the same batch and trains its share of it; the loss
    is normalised by the whole batch's completion tokens, so N ranks take the step one process
    would. Rank 0 logs and evaluates.
    """

    def __init__(self, config: Config, console: Console | None = None) -> None:
        if not config.model.path:
            raise ValueError("model.path is not set: point it at the student model directory")
        require_trackers(config.logging)  # a missing wandb/mlflow fails before the model loads
        self.config = config
        self.console = console or Console()
        self.run_dir = Path(config.output_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        self.model_dir = self.run_dir / "model"
        refuse_to_overwrite(self.run_dir, "sft.resume", resume=config.sft.resume)
        s = config.sft
        path = data_path(config)
        if not path.is_file():
            raise ValueError(f"no SFT data at {path}: run `metaagentx sft collect` first")
        if s.torch_threads is not None:
            torch.set_num_threads(s.torch_threads)
        self.engine = TrainingEngine(
            config,
            learning_rates=dict.fromkeys(ROLES, s.lr),
            optim=OptimConfig(
                lr=s.lr,
                weight_decay=s.weight_decay,
                warmup_steps=min(s.warmup_steps, s.steps),
                total_steps=s.steps,
                min_lr_ratio=s.min_lr_ratio,
                max_grad_norm=s.max_grad_norm,
            ),
        )
        self.world = self.engine.world
        self.policy = self.engine.policy
        self.tokenizer = self.engine.tokenizer
        self.dataset = load_dataset(path, self.tokenizer, s.max_seq_tokens, s.merge_turns)
        self.sampler = EpochSampler(len(self.dataset.examples), config.seed)
        self.step = 0

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self) -> Path:
        return self.engine.save(
            self.checkpoints,
            self.step,
            {"step": self.step, "sampler": self.sampler.state_dict()},
            keep=self.config.sft.keep_checkpoints,
        )

    def resume(self) -> bool:
        """Load the newest valid checkpoint (any world size); False when there is none."""
        state = self.engine.resume(self.checkpoints)
        if state is None:
            return False
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        if self.world.is_main:
            self.console.print(f"resumed from {state['_path']} at step {self.step}", highlight=False)
        return True

    # ---- one step --------------------------------------------------------------------------

    def run_step(self) -> dict[str, float]:
        """One optimizer step on the next batch: NLL of completion tokens, per owner."""
        started = time.perf_counter()
        drawn = self.sampler.next_batch(self.config.sft.batch_size)
        batch = [self.dataset.examples[i] for i in self.world.shard(drawn)]
        owners = list(self.policy.owners())
        local = [0.0] * len(owners)
        for e in batch:
            local[owners.index(self.policy.owner_of(e.role))] += e.completion_tokens
        totals = dict(zip(owners, self.world.sum(local), strict=True))
        roles = {self.dataset.examples[i].role for i in drawn}
        sums: dict[str, float] = defaultdict(float)
        self.policy.train(True)
        self._accumulate(batch, totals, sums)
        stepped = self.engine.optimizers.step(roles)
        self.policy.train(False)
        self.engine.sync_generation()
        sums = defaultdict(float, self.world.sum_dicts(sums))
        elapsed = time.perf_counter() - started
        metrics = {
            "loss": sums["nll"] / max(1.0, sums["loss_tokens"]),
            "tokens": sums["tokens"],
            "loss_tokens": sums["loss_tokens"],
            "tokens_per_s": sums["tokens"] / elapsed if elapsed > 0 else 0.0,
            "time/step_s": elapsed,
        }
        for role in ROLES:
            if sums[f"loss_tokens/{role}"]:
                metrics[f"loss/{role}"] = sums[f"nll/{role}"] / sums[f"loss_tokens/{role}"]
                metrics[f"sequences/{role}"] = sums[f"sequences/{role}"]
        for owner, m in stepped.items():
            metrics[f"lr/{owner}"] = m["lr"]
            metrics[f"grad_norm/{owner}"] = m["grad_norm"]
        self.step += 1
        return metrics

    def _accumulate(
        self, examples: list[SFTExample], totals: dict[str, float], sums: dict[str, float]
    ) -> None:
        """Backward each owner's token-mean NLL over the whole batch (all ranks), micro-batch
        by micro-batch, in step with the other ranks."""
        s = self.config.sft
        batches = lockstep_micro_batches(
            self.policy,
            self.world,
            [e.role for e in examples],
            [e.ids for e in examples],
            [e.mask for e in examples],
            s.micro_batch_tokens,
        )
        for mb in batches:
            logp, _, keep = loss_position_logprobs(
                mb.model,
                mb.batch,
                1.0,
                bf16_autocast=s.bf16_autocast,
                chunk_tokens=s.logprob_chunk_tokens,
            )
            (-logp.sum() / max(totals[mb.owner], 1.0) * mb.scale).backward()
            if mb.padding:
                continue
            nll = -logp.detach().float()
            seq = mb.batch.seq_ids[0, keep]
            for local, index in enumerate(mb.batch.indices):
                r = examples[index].role
                sums[f"nll/{r}"] += float(nll[seq == local].sum())
                sums[f"loss_tokens/{r}"] += examples[index].completion_tokens
                sums[f"sequences/{r}"] += 1
            sums["nll"] += float(nll.sum())
            sums["loss_tokens"] += mb.batch.num_loss_tokens
            sums["tokens"] += mb.batch.num_tokens

    def evaluate(self) -> dict[str, float]:
        """Held-out validity and accuracy (sampled/greedy), prefixed `val/`."""
        if not self.world.is_main:
            return {}
        metrics = evaluate_policy(
            self.engine.generation_policy, self.tokenizer, self.config, step=self.step
        )
        return {f"val/{k}": v for k, v in metrics.items()}

    # ---- the loop --------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Run (or resume) to `sft.steps`, evaluate, export the model to `output_dir/model`;
        the last metrics (on rank 0; other ranks get {})."""
        s = self.config.sft
        main = self.world.is_main
        if main:
            save_config(self.config, self.run_dir)
        resumed = s.resume and self.resume()
        roles = self.dataset.roles()
        if main:
            self.console.print(
                f"SFT on {len(self.dataset.examples)} sequences ({roles[DESIGNER]} designer, "
                f"{roles[EXECUTOR]} executor; skipped {dict(self.dataset.skipped) or 'none'})",
                highlight=False,
            )
        logger = run_logger(self.config, resume=resumed) if main else None
        progress = Progress(
            TextColumn("[bold]SFT[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not (self.config.logging.progress and main),
        )
        last: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            with progress:
                bar = progress.add_task("sft", total=s.steps, completed=self.step, info="")
                while self.step < s.steps:
                    metrics = self.run_step()
                    final = self.step == s.steps
                    if final or self.step % s.save_every == 0:
                        self.save()  # before evaluating: an eval fault loses no training
                    if final or (s.eval_every and self.step % s.eval_every == 0):
                        metrics.update(self.evaluate())
                    if logger is not None and (final or self.step % s.log_every == 0):
                        logger.log(self.step, metrics, phase="sft")
                    last = metrics
                    info = f"loss {metrics['loss']:.3f}"
                    progress.update(bar, completed=self.step, info=info)
            if not last and s.steps == self.step:  # resumed at the end: still evaluate
                last = self.evaluate()
        finally:
            if logger is not None:
                logger.close()
        last["time/train_s"] = time.perf_counter() - started
        self.export(self.model_dir, last, overwrite=True)
        return last if main else {}

    def export(
        self, out: str | Path, metrics: dict[str, Any] | None = None, *, overwrite: bool = False
    ) -> Path:
        """The trained weights as a model directory (every rank calls it; rank 0 writes)."""
        return self.engine.export(out, metrics or {}, overwrite=overwrite, steps=self.step)

    def close(self) -> None:
        self.engine.close()


def train_sft(config: Config, console: Console | None = None) -> dict[str, Any]:
    """Build an SFT trainer from `config`, run it; returns the last step's metrics."""
    trainer = SFTTrainer(config, console)
    try:
        return trainer.train()
    finally:
        trainer.close()


def train_sft_rank(config: dict[str, Any]) -> dict[str, Any]:
    """One rank's SFT run from a JSON config: what `distributed.launch` runs on Ray workers."""
    return train_sft(Config.model_validate(config))


__all__ = ["SFTTrainer", "train_sft", "train_sft_rank"]
