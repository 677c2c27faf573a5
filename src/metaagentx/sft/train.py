"""Supervised fine-tuning on collected records: the cold start before RL.

It reuses the RL trainer's machinery rather than copying it: `Policy` (both roles in one model,
or per role for `lora`/`separate`: designer records train the designer's weights, executor
records the executor's), `RoleOptimizers` (AdamW, warmup + cosine, clipping), sequence packing
with per-sequence attention, `loss_position_logprobs` (logits only at trained positions, bf16
autocast optional), atomic checkpoints with exact resume, and `MetricsLogger`. The loss is the
token-mean negative log-likelihood of completion tokens per parameter owner (prompt tokens are
masked, see `sft.data`). The final weights are saved with `save_pretrained` into
`output_dir/model` (shared), so `model.path` can point at them for RL.

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
from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.sft.collect import data_path
from metaagentx.sft.data import EpochSampler, SFTExample, load_dataset
from metaagentx.sft.evaluate import evaluate_policy
from metaagentx.train.attention import packed_attention
from metaagentx.train.checkpoint import (
    load_latest_checkpoint,
    refuse_to_overwrite,
    save_checkpoint,
    seed_everything,
)
from metaagentx.train.logger import MetricsLogger
from metaagentx.train.logprobs import loss_position_logprobs
from metaagentx.train.optim import OptimConfig, RoleOptimizers
from metaagentx.train.packing import pack_micro_batches
from metaagentx.train.policy import LoraSettings, Policy


class SFTTrainer:
    """Owns the policy, optimizers, data sampler and run directory of one SFT run."""

    def __init__(self, config: Config, console: Console | None = None) -> None:
        if not config.model.path:
            raise ValueError("model.path is not set: point it at the student model directory")
        self.config = config
        self.console = console or Console()
        self.run_dir = Path(config.output_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        s = config.sft
        seed_everything(config.seed)
        if s.torch_threads is not None:
            torch.set_num_threads(s.torch_threads)
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
        path = data_path(config)
        if not path.is_file():
            raise ValueError(f"no SFT data at {path}: run `metaagentx sft collect` first")
        self.dataset = load_dataset(path, self.tokenizer, s.max_seq_tokens, s.merge_turns)
        self.sampler = EpochSampler(len(self.dataset.examples), config.seed)
        self.optimizers = RoleOptimizers(
            self.policy.owners(),
            dict.fromkeys(ROLES, s.lr),
            OptimConfig(
                lr=s.lr,
                weight_decay=s.weight_decay,
                warmup_steps=min(s.warmup_steps, s.steps),
                total_steps=s.steps,
                min_lr_ratio=s.min_lr_ratio,
                max_grad_norm=s.max_grad_norm,
            ),
        )
        self.step = 0

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self) -> Path:
        return save_checkpoint(
            self.checkpoints,
            self.step,
            models=self.policy.state_dicts(),
            optimizers=self.optimizers.state_dict(),
            state={"step": self.step, "sampler": self.sampler.state_dict()},
            keep=self.config.sft.keep_checkpoints,
        )

    def resume(self) -> bool:
        """Load the newest valid checkpoint; False when there is none."""
        loaded = load_latest_checkpoint(self.checkpoints)
        if loaded is None:
            return False
        self.policy.load_state_dicts(loaded["models"])
        self.optimizers.load_state_dict(loaded["optimizers"])
        self.sampler.load_state_dict(loaded["state"]["sampler"])
        self.step = int(loaded["state"]["step"])
        self.console.print(f"resumed from {loaded['path']} at step {self.step}", highlight=False)
        return True

    # ---- one step --------------------------------------------------------------------------

    def run_step(self) -> dict[str, float]:
        """One optimizer step on the next batch: NLL of completion tokens, per owner."""
        started = time.perf_counter()
        batch = [
            self.dataset.examples[i] for i in self.sampler.next_batch(self.config.sft.batch_size)
        ]
        by_owner: dict[str, list[SFTExample]] = defaultdict(list)
        for example in batch:
            by_owner[self.policy.owner_of(example.role)].append(example)
        sums: dict[str, float] = defaultdict(float)
        self.policy.train(True)
        for examples in by_owner.values():
            self._accumulate(examples, sums)
        stepped = self.optimizers.step({e.role for e in batch})
        self.policy.train(False)
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

    def _accumulate(self, examples: list[SFTExample], sums: dict[str, float]) -> None:
        """Backward the owner's token-mean NLL over all its examples, micro-batch by micro-batch."""
        total = sum(e.completion_tokens for e in examples)
        role = examples[0].role  # every role of one owner runs through the same weights
        s = self.config.sft
        batches = pack_micro_batches(
            [e.ids for e in examples], [e.mask for e in examples], s.micro_batch_tokens
        )
        with self.policy.activate(role) as model, packed_attention(model):
            device = next(model.parameters()).device
            for packed in batches:
                packed = packed.to(device)
                logp, _, keep = loss_position_logprobs(
                    model, packed, 1.0, bf16_autocast=s.bf16_autocast
                )
                (-logp.sum() / total).backward()
                nll = -logp.detach().float()
                seq = packed.seq_ids[0, keep]
                for local, index in enumerate(packed.indices):
                    r = examples[index].role
                    sums[f"nll/{r}"] += float(nll[seq == local].sum())
                    sums[f"loss_tokens/{r}"] += examples[index].completion_tokens
                    sums[f"sequences/{r}"] += 1
                sums["nll"] += float(nll.sum())
                sums["loss_tokens"] += packed.num_loss_tokens
                sums["tokens"] += packed.num_tokens

    def evaluate(self) -> dict[str, float]:
        """Held-out validity and accuracy (sampled/greedy), prefixed `val/`."""
        metrics = evaluate_policy(self.policy, self.tokenizer, self.config, step=self.step)
        return {f"val/{k}": v for k, v in metrics.items()}

    # ---- the loop --------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Run (or resume) to `sft.steps`, evaluate, save the model; the last metrics."""
        s = self.config.sft
        if not s.resume:
            refuse_to_overwrite(self.checkpoints, "sft.resume")
        save_config(self.config, self.run_dir)
        if s.resume:
            self.resume()
        roles = self.dataset.roles()
        self.console.print(
            f"SFT on {len(self.dataset.examples)} sequences ({roles[DESIGNER]} designer, "
            f"{roles[EXECUTOR]} executor; skipped {dict(self.dataset.skipped) or 'none'})",
            highlight=False,
        )
        logger = MetricsLogger(
            self.run_dir,
            tensorboard=self.config.logging.tensorboard,
            wandb_project=self.config.logging.wandb_project,
            config=self.config.model_dump(mode="json"),
        )
        progress = Progress(
            TextColumn("[bold]SFT[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.config.logging.progress,
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
                    if final or self.step % s.log_every == 0:
                        logger.log(self.step, metrics, phase="sft")
                    last = metrics
                    info = f"loss {metrics['loss']:.3f}"
                    progress.update(bar, completed=self.step, info=info)
            if not last and s.steps == self.step:  # resumed at the end: still evaluate
                last = self.evaluate()
        finally:
            logger.close()
        last["time/train_s"] = time.perf_counter() - started
        self.save_model(self.run_dir / "model")
        return last

    def save_model(self, out: Path) -> Path:
        """The trained weights as a loadable model directory (see `Policy.save_pretrained`)."""
        return self.policy.save_pretrained(out, self.tokenizer)


def train_sft(config: Config, console: Console | None = None) -> dict[str, Any]:
    """Build an SFT trainer from `config`, run it; returns the last step's metrics."""
    return SFTTrainer(config, console).train()


__all__ = ["SFTTrainer", "train_sft"]
