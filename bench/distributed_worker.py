"""Timed RL update steps through the training engine, on one rank of a `torch.distributed.run`
launch (or in a plain process): the worker of `bench/distributed.py`'s scaling table, and the
step loop `bench/gpu_check.py` shares.

`python bench/distributed_worker.py SPEC.json` (under torchrun or alone) builds the engine on
`spec["model"]`, deals a fixed global batch of trajectories to the ranks (`World.shard`), runs
`spec["warmup"]` untimed and `spec["steps"]` timed steps (`ppo_update`, then
`engine.sync_generation()`), and rank 0 prints one JSON line: per-step seconds (the slowest
rank's) and the global forwarded tokens.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from update import make_trajectories  # bench/update.py: lengths spread +-1/3 around the means

from metaagentx.config import build_config
from metaagentx.rl.update import UpdateConfig, ppo_update, recompute_logprobs
from metaagentx.rollout.roles import DESIGNER, EXECUTOR
from metaagentx.rollout.trajectory import Trajectory
from metaagentx.train.engine import TrainingEngine
from metaagentx.train.optim import OptimConfig

LR = 1e-6


def build_engine(model_dir: str | Path, overrides: Sequence[str] = ()) -> TrainingEngine:
    """The engine on `model_dir` with logging off and the given `key=value` overrides."""
    config = build_config(
        {},
        [
            f"model.path={model_dir}",
            "logging.tensorboard=false",
            "logging.progress=false",
            *overrides,
        ],
    )
    return TrainingEngine(
        config,
        learning_rates={DESIGNER: LR, EXECUTOR: LR},
        optim=OptimConfig(lr=LR, max_grad_norm=1.0),
    )


def model_vocab(engine: TrainingEngine) -> int:
    """The model's vocabulary (token ids must stay below it; the tokenizer's may be smaller)."""
    model = next(iter(engine.generation_policy.named_models().values()))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return int(base.config.vocab_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_step(
    engine: TrainingEngine, local: list[Trajectory], cfg: UpdateConfig, recompute: bool
) -> dict[str, float]:
    """One RL step on this rank: [recompute old log-probs], update, sync; seconds of each."""
    world, device = engine.world, engine.world.device
    world.barrier()  # every rank starts the step together: times are the step's, not a wait's
    _sync(device)
    t0 = time.perf_counter()
    if recompute:
        recompute_logprobs(engine.policy, local, cfg, world)
        _sync(device)
    t1 = time.perf_counter()
    metrics = ppo_update(engine.policy, engine.optimizers, local, {EXECUTOR}, cfg, world)
    _sync(device)
    t2 = time.perf_counter()
    engine.sync_generation()
    _sync(device)
    t3 = time.perf_counter()
    return {
        "logprob_s": t1 - t0,
        "update_s": t2 - t1,
        "sync_s": t3 - t2,
        "tokens": float(metrics["tokens"]),  # summed over ranks by ppo_update
    }


def timed_steps(
    engine: TrainingEngine,
    local: list[Trajectory],
    cfg: UpdateConfig,
    *,
    steps: int,
    warmup: int = 1,
    recompute: bool = False,
    probe: Callable[[], dict[str, float]] | None = None,
) -> list[list[dict[str, float]]]:
    """`warmup` untimed then `steps` timed RL steps on every rank; rank-ordered records per
    step (every rank gets them). `probe()` adds this rank's extra numbers (e.g. memory)."""
    for _ in range(warmup):
        _timed_step(engine, local, cfg, recompute)
    if probe is not None:
        probe()  # a read-and-reset probe starts the timed steps afresh
    records = []
    for _ in range(steps):
        record = _timed_step(engine, local, cfg, recompute)
        if probe is not None:
            record.update(probe())
        records.append(engine.world.gather_objects(record))
    return records


def run_scaling(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The scaling-table job on this rank; rank 0 returns its summary, the others None."""
    torch.set_num_threads(spec["threads"])
    engine = build_engine(spec["model"], spec["overrides"])
    world = engine.world
    batch = make_trajectories(
        spec["trajectories"], model_vocab(engine), spec["prompt"], spec["response"], seed=0
    )
    cfg = UpdateConfig(micro_batch_tokens=spec["micro_batch_tokens"])
    records = timed_steps(
        engine, world.shard(batch), cfg, steps=spec["steps"], warmup=spec["warmup"]
    )
    summary = {
        "ranks": world.size,
        "threads": torch.get_num_threads(),
        "sharded": engine.sharded,
        "grouped": world.distributed,
        "update_s": [max(r["update_s"] for r in step) for step in records],
        "sync_s": [max(r["sync_s"] for r in step) for step in records],
        "tokens": records[-1][0]["tokens"],
        "batch_tokens": sum(len(t.prompt_ids) + len(t.response_ids) for t in batch),
    }
    engine.close()
    return summary if world.is_main else None


if __name__ == "__main__":
    result = run_scaling(json.loads(Path(sys.argv[1]).read_text()))
    if result is not None:
        print(json.dumps(result), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
