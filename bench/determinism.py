"""Cost and effect of batch-invariant decoding (`generation.deterministic`) in the hf backend.

Requests go through the continuous batcher in staggered waves, the way agent turns arrive, so
batch composition depends on arrival times. Each mode runs twice with a different arrival order
and spacing; the table prints new tokens per second, the ratio to batched kernels
(`deterministic=False`) measured in the same process, and whether the two runs sampled identical tokens and
log-probs. Usage: python bench/determinism.py [--size tiny] [--requests 48] [--new-tokens 48]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

import torch

from metaagentx.llm.base import GenerationRequest, GenerationResult, SamplingParams
from metaagentx.llm.batcher import ContinuousBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.tiny import build_tiny


def _requests(n: int, new_tokens: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[
                {"role": "user", "content": f"Compute {1000 + 37 * i}*{11 + i}-{i}." * (1 + i % 3)}
            ],
            sampling=SamplingParams(temperature=1.0, max_new_tokens=new_tokens, seed=i),
        )
        for i in range(n)
    ]


def _run(
    generator: HFGenerator, requests: list[GenerationRequest], order_seed: int, gap_s: float
) -> tuple[float, list[GenerationResult]]:
    """Submit `requests` in a shuffled order, in waves `gap_s` apart; (seconds, results in
    request order)."""
    order = list(range(len(requests)))
    random.Random(order_seed).shuffle(order)
    batcher = ContinuousBatcher(generator, max_batch_size=128, max_wait_s=0.002)
    start = time.perf_counter()
    futures = {}
    for k, i in enumerate(order):
        futures[i] = batcher.submit(requests[i])
        if k % 8 == 7:
            time.sleep(gap_s)
    results = [futures[i].result() for i in range(len(requests))]
    elapsed = time.perf_counter() - start
    batcher.close()
    return elapsed, results


def _same(a: list[GenerationResult], b: list[GenerationResult]) -> bool:
    return all(
        x.response_ids == y.response_ids and x.logprobs == y.logprobs
        for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while generating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny(tmp, size=args.size, seed=0)
        generator = HFGenerator.from_pretrained(path, device="cpu", num_threads=args.threads)
    generator.eos_ids = frozenset({-1})  # every request runs its full budget in both modes
    requests = _requests(args.requests, args.new_tokens)
    rows = []
    for deterministic in (False, True):
        generator.deterministic = deterministic
        _run(generator, requests[:8], 0, 0.0)  # warm-up
        times, runs = [], []
        for repeat in range(args.repeats):
            seconds, results = _run(generator, requests, repeat, 0.004 * (repeat + 1))
            times.append(seconds)
            runs.append(results)
        tokens = sum(len(r.response_ids) for r in runs[0])
        same = all(_same(runs[0], other) for other in runs[1:])
        rows.append((deterministic, tokens / statistics.median(times), same))
    base = rows[0][1]
    print(
        f"{args.size} model, {args.requests} requests x {args.new_tokens} tokens, "
        f"{args.threads} torch thread(s), waves of 8, median of {args.repeats}"
    )
    print(f"{'deterministic':<14}{'tokens/s':>10}{'ratio':>8}  identical across arrival orders")
    for deterministic, rate, same in rows:
        print(f"{deterministic!s:<14}{rate:>10.0f}{rate / base:>8.2f}  {same}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
