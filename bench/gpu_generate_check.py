"""GPU check of the hf backend: batched decoding speed, and what `generation.deterministic` costs.

A Qwen3-shaped model with random weights (`gpu_check.build_model_dir`: nothing downloaded) is
loaded by `HFGenerator.from_pretrained` on one GPU, once with the default (`deterministic=None`,
which is off on accelerators) and once with batch-invariant decoding forced on. Each decodes the
same `--requests` seeded requests as one batched call; printed per mode: seconds, new tokens/s,
the ratio to the default, and whether request 0 alone sampled exactly the tokens it sampled
inside the batch (the property the deterministic mode buys).

    python bench/gpu_generate_check.py [--shape 0.6b] [--requests 64] [--new-tokens 128]
    python bench/gpu_generate_check.py --device cpu --shape tiny --vocab 1024 --requests 4 \\
        --new-tokens 8      # CPU smoke: the script only

The first printed line says whether the run was on a GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from gpu_check import build_model_dir

from metaagentx.llm.base import GenerationRequest, SamplingParams
from metaagentx.llm.hf import HFGenerator


def _requests(n: int, new_tokens: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": f"Compute {1000 + 37 * i}*{11 + i}-{i}. " * 4}],
            sampling=SamplingParams(temperature=1.0, max_new_tokens=new_tokens, seed=i),
        )
        for i in range(n)
    ]


def _measure(generator: HFGenerator, requests: list[GenerationRequest]) -> tuple[float, int, bool]:
    """Seconds and new tokens of one batched call (after a warm-up), and whether request 0
    alone samples the tokens it sampled in the batch."""
    generator.eos_ids = frozenset({-1})  # random weights: decode every row to its budget
    generator.generate(requests[:2])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    batch = generator.generate(requests)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    alone = generator.generate(requests[:1])[0]
    same = alone.response_ids == batch[0].response_ids
    return seconds, sum(len(r.response_ids) for r in batch), same


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shape", default="0.6b")
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no GPU is visible (use --device cpu to smoke-test)")
    where = (
        f"Ran on {torch.cuda.get_device_name()}, torch {torch.__version__}."
        if args.device == "cuda"
        else "NOT A GPU RUN: a CPU smoke test of the script only."
    )
    requests = _requests(args.requests, args.new_tokens)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model_dir(Path(tmp), args.shape, args.vocab)
        default = f"default (None: {'off' if args.device == 'cuda' else 'on'} here)"
        for label, deterministic in ((default, None), ("deterministic", True)):
            generator = HFGenerator.from_pretrained(
                model_dir, dtype=args.dtype, device=args.device, deterministic=deterministic
            )
            rows.append((label, *_measure(generator, requests)))
            del generator
    print(where)
    print(
        f"hf backend, Qwen3 {args.shape} shape (random weights, vocabulary {args.vocab:,}), "
        f"{args.dtype}, one batched call of {args.requests} requests x {args.new_tokens} new tokens"
    )
    print("| mode | seconds | new tokens/s | vs default | request 0 alone = in batch |")
    print("|---|---:|---:|---:|---|")
    base = rows[0][2] / rows[0][1]
    for label, seconds, tokens, same in rows:
        rate = tokens / seconds
        print(f"| {label} | {seconds:.2f} | {rate:,.0f} | {rate / base:.2f}x | {same} |")


if __name__ == "__main__":
    main()
