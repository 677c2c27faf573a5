"""Throughput of real workflow executions vs plain generation on the same prompts and lengths.

A rollout of `problems x N` concurrent sandboxed executions of a fixed design (every agent turn
an RPC from the sandbox, merged by the request batcher) is timed; then the exact agent prompts it
produced are generated again (same lengths) as one plain batched `generate` call and one request
at a time. Prints new tokens/s and ratios. Goal: >= 0.8x plain batched, >= 5x one at a time.

    python bench/rollout.py [--design ensemble_vote] [--problems 8] [--executions 4] [--new-tokens 48]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.batcher import ContinuousBatcher, RequestBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.rollout.tree import RolloutEngine, TreeSettings, answer_extractor
from metaagentx.sandbox import Runner, SandboxSettings
from metaagentx.tasks.synthetic import generate
from metaagentx.tiny import build_tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--design", default="single_agent")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--executions", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while generating")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batcher", choices=["continuous", "request"], default="continuous")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        generator = HFGenerator.from_pretrained(
            build_tiny(tmp, size=args.size), device="cpu", num_threads=args.threads
        )
    generator.eos_ids = frozenset({-1})  # every turn runs to its token budget, in every mode
    tasks = generate("arith", args.problems, level=3, split="train", seed=0)
    settings = TreeSettings(
        mode=f"fixed:{args.design}",
        num_executions=args.executions,
        executor_max_new_tokens=args.new_tokens,
    )
    kind = ContinuousBatcher if args.batcher == "continuous" else RequestBatcher
    batcher = kind(generator, max_batch_size=256, max_wait_s=0.005)
    runner = Runner(batcher, SandboxSettings(timeout_s=300), answer_extractor=answer_extractor)
    engine = RolloutEngine(batcher, runner, settings)
    engine.rollout_sync(tasks[:1])  # warm: fork server, pool, first forward passes
    start = time.perf_counter()
    tree = engine.rollout_sync(tasks)
    rollout_s = time.perf_counter() - start
    runner.close()
    batcher.close()
    calls = [c for _, _, e in tree.executions() for c in e.calls]
    tokens = sum(len(c.response_ids) for c in calls)
    requests = [
        GenerationRequest(
            prompt_ids=c.prompt_ids,
            sampling=SamplingParams(temperature=1.0, max_new_tokens=len(c.response_ids), seed=i),
        )
        for i, c in enumerate(calls)
    ]
    start = time.perf_counter()
    batched_tokens = sum(len(r.response_ids) for r in generator.generate(requests))
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single_tokens = sum(len(generator.generate([r])[0].response_ids) for r in requests)
    single_s = time.perf_counter() - start

    rate = tokens / rollout_s
    print(
        f"design {args.design}: {args.problems} problems x N={args.executions} = {len(tree.executions())} "
        f"concurrent executions, {len(calls)} agent calls x {args.new_tokens} tokens; {args.size} model, "
        f"{args.threads} torch thread(s), {args.batcher} batching; load average {os.getloadavg()[0]:.2f}"
    )
    print("| mode | seconds | new tokens/s | rollout vs this |\n|---|---:|---:|---:|")
    print(f"| sandboxed workflow executions (rollout) | {rollout_s:.2f} | {rate:,.0f} | 1.00x |")
    print(
        f"| plain batched generate, same prompts | {batched_s:.2f} | {batched_tokens / batched_s:,.0f} | {rate / (batched_tokens / batched_s):.2f}x |"
    )
    print(
        f"| one request at a time, same prompts | {single_s:.2f} | {single_tokens / single_s:,.0f} | {rate / (single_tokens / single_s):.2f}x |"
    )


if __name__ == "__main__":
    main()
