"""A few RL or SFT steps on fixed data through the training engine, for the distributed tests.

The same `run_job(spec)` runs in the test process (one process, no process group), under
`torchrun` (this file as the script: `torchrun --nproc-per-node 2 tests/distributed_worker.py
JOBS.json`, a list of specs) and on Ray workers (`run_on_ray(run_job, spec)`).
Every rank trains its share of the problems; rank 0 writes the final weights of every role's
model to `spec["out"]/weights.pt` (only the trainable tensors: adapters in lora mode).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from metaagentx.config import build_config
from metaagentx.rl.loss import PPOLossConfig
from metaagentx.rl.update import UpdateConfig, ppo_update, recompute_logprobs
from metaagentx.rollout.roles import DESIGNER, EXECUTOR
from metaagentx.sft.train import SFTTrainer
from metaagentx.train.engine import TrainingEngine
from metaagentx.train.optim import OptimConfig
from rl_support import make_batch

# active roles per step: one role, the other, both (owners that sit out must stay untouched)
ACTIVE = [{EXECUTOR}, {DESIGNER}, {DESIGNER, EXECUTOR}, {EXECUTOR}]


def _config(spec: dict[str, Any]):
    return build_config(
        {},
        [
            f"output_dir={spec['out']}",
            f"model.path={spec['model']}",
            "model.device=cpu",
            f"model.parameter_sharing={spec.get('mode', 'shared')}",
            "model.lora_r=4",
            "logging.tensorboard=false",
            "logging.progress=false",
            *spec.get("overrides", []),
        ],
    )


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the job `spec` describes on this rank; returns this rank's place and last step."""
    torch.set_num_threads(1)
    if spec.get("kind") == "sft":
        return _sft_job(spec)
    return _rl_job(spec)


def _rl_job(spec: dict[str, Any]) -> dict[str, Any]:
    lr = spec.get("lr", 1e-4)
    engine = TrainingEngine(
        _config(spec),
        learning_rates={DESIGNER: lr, EXECUTOR: lr},
        optim=OptimConfig(lr=lr, max_grad_norm=1.0),
        reference=True,
    )
    world = engine.world
    step = 0
    if spec.get("resume"):
        state = engine.resume(spec["checkpoints"])
        assert state is not None, "nothing to resume"
        step = int(state["step"])
    cfg = UpdateConfig(
        loss=PPOLossConfig(kl_coef=0.05, entropy_coef=0.01),
        micro_batch_tokens=48,
        logprob_chunk_tokens=spec.get("chunk"),
        mini_batches=spec.get("mini_batches", 1),
    )
    while step < spec["steps"]:
        batch = make_batch(24, seed=step)
        problems = sorted({t.problem_id for t in batch})
        mine = set(world.shard(problems))
        local = [t for t in batch if t.problem_id in mine]
        recompute_logprobs(engine.policy, local, cfg, world)
        for t in local:  # a little off-policy, so ratios differ from 1 and some clip
            t.old_logprobs = [v + 0.05 * ((i % 5) - 2) for i, v in enumerate(t.old_logprobs)]
        ppo_update(engine.policy, engine.optimizers, local, ACTIVE[step % 4], cfg, world)
        engine.sync_generation()
        step += 1
        if step == spec.get("save_at"):
            engine.save(spec["checkpoints"], step, {"step": step}, keep=2)
    _write_weights(engine, spec)
    masters = sorted(
        {str(p.dtype) for p in engine.policy.models[engine.policy.owner_of(EXECUTOR)].parameters()}
    )
    return {"rank": world.rank, "world": world.size, "step": step, "masters": masters}


def _sft_job(spec: dict[str, Any]) -> dict[str, Any]:
    trainer = SFTTrainer(_config(spec))
    for _ in range(spec["steps"]):
        trainer.run_step()
    _write_weights(trainer.engine, spec)
    return {"rank": trainer.world.rank, "world": trainer.world.size, "step": trainer.step}


def _write_weights(engine: TrainingEngine, spec: dict[str, Any]) -> None:
    if not engine.world.is_main:
        return
    weights = {
        name: {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
        for name, model in engine.generation_policy.named_models().items()
    }
    Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    torch.save(weights, Path(spec["out"]) / "weights.pt")


if __name__ == "__main__":
    # several jobs share one process group (created by the first engine, left for the next)
    for job in json.loads(Path(sys.argv[1]).read_text()):
        result = run_job(job)  # one file per rank: ranks printing at once interleave lines
        Path(job["out"]).mkdir(parents=True, exist_ok=True)
        (Path(job["out"]) / f"result-{result['rank']}.json").write_text(json.dumps(result))
    if dist.is_initialized():
        dist.destroy_process_group()
