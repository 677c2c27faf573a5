"""Speed of the RL policy update: ours (packed, logits only on trained tokens) vs TRL's GRPO.

One update = a batch of trajectories (prompt ~300 tokens, response ~100), forward + backward of
the PPO loss with gradient accumulation, clipping and one AdamW step. Reported: tokens/s
(prompt + response tokens through the model), and MFU = 6 * params * tokens / time against a
matmul peak of this CPU measured here (torch.matmul, fp32 and bf16). With TRL installed, the
same update through TRL's GRPOTrainer machinery on identical data: `GRPOTrainer.compute_loss`
on its padded `prompt_ids/completion_ids/...` micro-batches (per_device_train_batch_size rows),
`accelerator.backward`, `accelerator.clip_grad_norm_`, the trainer's AdamW and LR scheduler. The
generation and reward parts of GRPOTrainer are not timed (they are not the update).
Ratios are against TRL (or our fp32 when TRL is absent), measured in this process.

Usage: python bench/update.py [--sizes tiny,small] [--trajectories 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from metaagentx.rl.update import UpdateConfig, ppo_update
from metaagentx.rollout.trajectory import Trajectory
from metaagentx.tiny import build_tiny
from metaagentx.train.optim import OptimConfig, RoleOptimizers
from metaagentx.train.policy import Policy

SHAPES = {"tiny": "128x2", "small": "256x4", "nano": "64x2"}


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 1.5) -> float:
    """Best sustained FLOP/s of an n x n matmul at `dtype` on this machine."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - start))
    return best


def make_trajectories(
    n: int, vocab: int, prompt: int, response: int, seed: int
) -> list[Trajectory]:
    """Random ids with lengths spread +-1/3 around the means (as real agent calls vary)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = rng.randint(prompt * 2 // 3, prompt * 4 // 3)
        r = rng.randint(max(1, response // 3), response * 5 // 3)
        design = f"p{i // 16}/d{(i // 4) % 4}"
        out.append(
            Trajectory(
                role="executor",
                problem_id=f"p{i // 16}",
                design_id=design,
                execution_id=f"{design}/e{i % 4}",
                agent="solver",
                prompt_ids=[rng.randrange(vocab) for _ in range(p)],
                response_ids=[rng.randrange(vocab) for _ in range(r)],
                old_logprobs=[-7.6 + rng.uniform(-0.2, 0.2) for _ in range(r)],
                reward=float(i % 2),
                advantage=rng.uniform(-1.5, 1.5),
            )
        )
    return out


def _timed(systems: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per update; systems alternate so both see the same background load."""
    for update in systems.values():
        update()  # warm-up: allocator, autocast caches, first-call overheads
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(repeats):
        for name, update in systems.items():
            start = time.perf_counter()
            update()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def ours(model, trajectories, bf16: bool, micro_batch_tokens: int) -> Callable[[], object]:
    policy = Policy.build(model, "shared")
    lr = {"designer": 1e-6, "executor": 1e-6}
    opts = RoleOptimizers(policy.owners(), lr, OptimConfig(lr=1e-6, max_grad_norm=1.0))
    cfg = UpdateConfig(micro_batch_tokens=micro_batch_tokens, bf16_autocast=bf16)
    return lambda: ppo_update(policy, opts, trajectories, {"executor"}, cfg)


def trl_update(model, tokenizer, trajectories, bf16: bool, rows: int, out_dir: str):
    """The same update through GRPOTrainer's loss path (see the module docstring)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    n = len(trajectories)
    args = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=rows,
        gradient_accumulation_steps=n // rows,
        num_generations=rows,
        learning_rate=1e-6,
        max_grad_norm=1.0,
        use_cpu=True,
        bf16=bf16,
        report_to=[],
        beta=0.0,
        loss_type="dapo",  # token-level sum / tokens of the batch, like our token-mean
        max_completion_length=max(len(t.response_ids) for t in trajectories),
    )
    data = Dataset.from_dict({"prompt": ["x"] * n})
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=lambda completions, **_: [0.0] * len(completions),
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
    )
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = n // rows
    pad = tokenizer.pad_token_id
    total = torch.tensor(float(sum(len(t.response_ids) for t in trajectories)))
    batches = [_trl_inputs(trajectories[i : i + rows], pad, total) for i in range(0, n, rows)]
    padded = sum(b["prompt_ids"].numel() + b["completion_ids"].numel() for b in batches)
    real = sum(len(t.prompt_ids) + len(t.response_ids) for t in trajectories)
    print(f"TRL rows hold {padded / real:.2f}x the real tokens (padding)")
    model = trainer.model

    def step() -> None:
        model.train()
        for inputs in batches:
            loss = trainer.compute_loss(model, inputs)
            trainer.accelerator.backward(loss)
        trainer.accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        trainer.optimizer.zero_grad()

    return step


def _trl_inputs(trajs: list[Trajectory], pad: int, total: torch.Tensor) -> dict[str, torch.Tensor]:
    """GRPOTrainer's prepared-input layout: prompts left-padded, completions right-padded."""
    wp = max(len(t.prompt_ids) for t in trajs)
    wc = max(len(t.response_ids) for t in trajs)
    b = len(trajs)
    prompt_ids = torch.full((b, wp), pad)
    prompt_mask = torch.zeros((b, wp), dtype=torch.long)
    completion_ids = torch.full((b, wc), pad)
    completion_mask = torch.zeros((b, wc), dtype=torch.long)
    old = torch.zeros((b, wc))
    for i, t in enumerate(trajs):
        p, r = len(t.prompt_ids), len(t.response_ids)
        prompt_ids[i, wp - p :] = torch.tensor(t.prompt_ids)
        prompt_mask[i, wp - p :] = 1
        completion_ids[i, :r] = torch.tensor(t.response_ids)
        completion_mask[i, :r] = 1
        old[i, :r] = torch.tensor(t.old_logprobs)
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.tensor([t.advantage for t in trajs]),
        "old_per_token_logps": old,
        "num_items_in_batch": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--trajectories", type=int, default=64)
    parser.add_argument("--prompt", type=int, default=300)
    parser.add_argument("--response", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--micro-batch-tokens", type=int, default=4096)
    parser.add_argument("--trl-rows", type=int, default=8, help="TRL per-device batch rows")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on shared cores OpenMP spin-waits made 2-thread runs vary 20x)",
    )
    parser.add_argument("--no-trl", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import trl

        trl_version = None if args.no_trl else trl.__version__
    except ImportError:
        trl_version = None

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(
        f"threads={args.threads}  matmul peak: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s  trl={trl_version or 'not used'}"
    )
    rows = []
    for size in args.sizes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = build_tiny(Path(tmp) / "model", size=size)
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
            params = sum(p.numel() for p in base.parameters())
            trajs = make_trajectories(
                args.trajectories, len(tokenizer) - 1, args.prompt, args.response, seed=0
            )
            tokens = sum(len(t.prompt_ids) + len(t.response_ids) for t in trajs)
            for precision in ("fp32", "bf16"):
                bf16 = precision == "bf16"
                systems = {
                    "metaagentx": ours(copy.deepcopy(base), trajs, bf16, args.micro_batch_tokens)
                }
                if trl_version:
                    systems["trl-grpo"] = trl_update(
                        copy.deepcopy(base), tokenizer, trajs, bf16, args.trl_rows, tmp + "/trl"
                    )
                times = _timed(systems, args.repeats)
                for name, seconds in times.items():
                    rows.append((size, params, precision, name, tokens, seconds, times, peaks))
    _print_table(rows, args, trl_version)


def _print_table(rows, args, trl_version) -> None:
    print(
        f"\n{args.trajectories} trajectories, prompt ~{args.prompt}, response ~{args.response} "
        f"tokens; ours: micro_batch_tokens={args.micro_batch_tokens}; "
        f"TRL: {args.trl_rows} padded rows per micro-batch; median of {args.repeats}"
    )
    header = f"{'model':<14}{'prec':<6}{'system':<12}{'s/update':>10}{'tokens/s':>11}{'MFU %':>8}"
    print(header + f"{'vs baseline':>13}")
    print("-" * (len(header) + 13))
    for size, params, precision, name, tokens, seconds, times, peaks in rows:
        baseline = times.get("trl-grpo", None) if trl_version else None
        if baseline is None:
            baseline = seconds
        mfu = 6 * params * tokens / seconds / peaks[precision] * 100
        label = f"{size} {SHAPES.get(size, '')}"
        print(
            f"{label:<14}{precision:<6}{name:<12}{seconds:>10.3f}{tokens / seconds:>11.0f}"
            f"{mfu:>8.2f}{baseline / seconds:>12.2f}x"
        )
    print("MFU: 6 * params * tokens / time / matmul peak of the same precision.")


if __name__ == "__main__":
    main()
