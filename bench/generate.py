"""Throughput of the hf backend: one request at a time vs batched vs many threads via the batcher.

Prints a table of new tokens per second and the ratio to the one-at-a-time baseline measured in
the same process. Usage: python bench/generate.py [--size tiny] [--requests 32] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

import torch

from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.batcher import RequestBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.tiny import build_tiny


def _requests(n: int, new_tokens: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": f"Compute {1000 + 37 * i}*{11 + i}-{i}."}],
            sampling=SamplingParams(temperature=1.0, max_new_tokens=new_tokens, seed=i),
        )
        for i in range(n)
    ]


def _eos_free(generator: HFGenerator) -> None:
    # an untrained model may sample end-of-turn early; forbid it so every mode makes the same tokens
    generator.eos_ids = frozenset({-1})


def _timed(fn, repeats: int) -> tuple[float, int]:
    times, tokens = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads while generating",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generator = HFGenerator.from_pretrained(
            build_tiny(tmp, size=args.size), device="cpu", num_threads=args.threads
        )
    _eos_free(generator)
    requests = _requests(args.requests, args.new_tokens)

    def one_at_a_time() -> int:
        return sum(len(generator.generate([r])[0].response_ids) for r in requests)

    def batched() -> int:
        return sum(len(r.response_ids) for r in generator.generate(requests))

    def threads_via_batcher() -> int:
        batcher = RequestBatcher(generator, max_batch_size=64, max_wait_s=0.005)
        out = [0] * len(requests)

        def run(i: int) -> None:
            out[i] = len(batcher.submit(requests[i]).result().response_ids)

        workers = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        batcher.close()
        return sum(out)

    rows = []
    base_time, base_tokens = _timed(one_at_a_time, args.repeats)
    rows.append(("one request at a time", base_time, base_tokens))
    for name, fn in (
        ("one batched generate call", batched),
        (f"{args.requests} threads via RequestBatcher", threads_via_batcher),
    ):
        t, n = _timed(fn, args.repeats)
        rows.append((name, t, n))
    base_rate = base_tokens / base_time
    print(
        f"hf backend, {args.size} model, {args.requests} requests x {args.new_tokens} new tokens, "
        f"{args.threads} torch threads, median of {args.repeats}"
    )
    print("| mode | seconds | new tokens/s | vs one-at-a-time |\n|---|---:|---:|---:|")
    for name, t, n in rows:
        print(f"| {name} | {t:.2f} | {n / t:,.0f} | {n / t / base_rate:.1f}x |")


if __name__ == "__main__":
    main()
