"""GPU check: a few RL steps of a Qwen3-0.6B-shaped model under FSDP, step time and peak memory.

The model (random weights, Qwen3-0.6B's shape: hidden 1024, 28 layers, 16 heads, 8 KV heads,
head_dim 128, intermediate 3072, vocabulary 151,936, tied embeddings) and a small BPE tokenizer
(`tiny.build_tokenizer`; token ids are drawn below the model's vocabulary) are built here and
saved with `save_pretrained`: nothing is downloaded. Every rank then runs `TrainingEngine` with
FSDP2 (`distributed.fsdp=on`, bf16 compute over fp32 master weights, activation checkpointing,
`trainer.logprob_chunk_tokens=1024`) and, per step, `recompute_logprobs`, `ppo_update` and
`engine.sync_generation()` on synthetic trajectories (`--seqs-per-rank` x ~`--seq-tokens`
tokens per rank, a quarter of them response). Rank 0 prints markdown tables: per step the
slowest rank's seconds, global tokens/s and the largest peak memory; per rank its peaks.

    torchrun --nproc-per-node gpu bench/gpu_check.py [--shape 0.6b] [--steps 3]
        [--seq-tokens 2048] [--seqs-per-rank 16]          # every visible GPU (or N)
    torchrun --nproc-per-node 2 bench/gpu_check.py --shape tiny --device cpu \\
        --param-dtype float32 --seq-tokens 256 --seqs-per-rank 4   # CPU smoke, 2 gloo ranks

On a CPU without fast bf16 matmuls (AVX2 only) the default bf16 compute is ~100x slower at
this vocabulary: smoke-test with `--param-dtype float32`. The first printed line says whether
the run was on a GPU.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from transformers.utils import logging as hf_logging
from update import make_trajectories

from distributed_worker import build_engine, model_vocab, timed_steps
from metaagentx.rl.update import UpdateConfig
from metaagentx.tiny import SIZES, TinySize, build_model, build_tokenizer
from metaagentx.train.distributed import World, close_world, init_world

GIB = 1024**3
SHAPES = {
    "0.6b": TinySize(  # Qwen3-0.6B
        hidden_size=1024,
        num_layers=28,
        num_heads=16,
        num_kv_heads=8,
        intermediate_size=3072,
        head_dim=128,
    ),
    "tiny": SIZES["tiny"],
}


def build_model_dir(out: Path, shape: str, vocab: int, seed: int = 0) -> Path:
    """Save a random-weight Qwen3 of `shape` at vocabulary `vocab` and a small local
    tokenizer into `out` (token ids used here stay below the tokenizer's size)."""
    tokenizer = build_tokenizer(vocab_size=1024)
    model = build_model(tokenizer, SHAPES[shape], seed=seed, max_positions=40960, vocab_size=vocab)
    hf_logging.disable_progress_bar()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _model_dir(args: argparse.Namespace, local_rank: int) -> tuple[Path, bool]:
    """The model directory every rank loads (built by each node's local rank 0 when missing);
    True when it is a temporary one to remove at the end."""
    grouped = dist.is_initialized()
    if args.model_dir:
        path, temporary = Path(args.model_dir), False
    else:
        name = tempfile.mkdtemp(prefix="gpu-check-") if not grouped or dist.get_rank() == 0 else ""
        box = [name]
        if grouped:
            dist.broadcast_object_list(box, src=0)
        path, temporary = Path(box[0]), True
    if local_rank == 0 and not (path / "config.json").is_file():
        path.mkdir(parents=True, exist_ok=True)
        build_model_dir(path, args.shape, args.vocab)
    if grouped:
        dist.barrier()
    return path, temporary


def _memory_probe(device: torch.device):
    """Read-and-reset of this rank's peak memory since the last call (GiB)."""

    def probe() -> dict[str, float]:
        if device.type != "cuda":
            return {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}
        out = {
            "peak_alloc": torch.cuda.max_memory_allocated(device) / GIB,
            "peak_reserved": torch.cuda.max_memory_reserved(device) / GIB,
        }
        torch.cuda.reset_peak_memory_stats(device)
        return out

    return probe


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="0.6b")
    p.add_argument("--vocab", type=int, default=151936, help="model vocabulary")
    p.add_argument("--steps", type=int, default=3, help="timed steps after 1 warm-up step")
    p.add_argument("--seq-tokens", type=int, default=2048, help="mean tokens per trajectory")
    p.add_argument("--seqs-per-rank", type=int, default=16)
    p.add_argument("--micro-batch-tokens", type=int, default=8192)
    p.add_argument("--logprob-chunk-tokens", type=int, default=1024)
    p.add_argument("--param-dtype", choices=("bfloat16", "float32"), default="bfloat16")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--no-recompute", action="store_true", help="skip recompute_logprobs")
    p.add_argument("--model-dir", help="reuse (or build into) this directory")
    return p.parse_args()


def main() -> None:
    args = _arguments()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no GPU is visible (use --device cpu to smoke-test)")
    # the group exists before the engine: each node's local rank 0 builds the model first
    group = init_world(device=args.device)
    local_rank = group.local_rank
    model_dir, temporary = _model_dir(args, local_rank)
    engine = build_engine(
        model_dir,
        [
            f"model.device={args.device}",
            "model.dtype=float32",
            "distributed.fsdp=on",
            f"distributed.param_dtype={args.param_dtype}",
            "distributed.activation_checkpointing=true",
            f"trainer.logprob_chunk_tokens={args.logprob_chunk_tokens}",
            f"trainer.micro_batch_tokens={args.micro_batch_tokens}",
        ],
    )
    world = engine.world
    loaded = _memory_probe(world.device)()  # the peak of loading and sharding
    batch = make_trajectories(
        args.seqs_per_rank * world.size,
        model_vocab(engine),
        prompt=args.seq_tokens * 3 // 4,
        response=args.seq_tokens // 4,
        seed=0,
    )
    cfg = UpdateConfig.from_trainer_config(engine.config.trainer, temperature=1.0)
    records = timed_steps(
        engine,
        world.shard(batch),
        cfg,
        steps=args.steps,
        warmup=1,
        recompute=not args.no_recompute,
        probe=_memory_probe(world.device),
    )
    model = next(iter(engine.generation_policy.named_models().values()))
    params = sum(p.numel() for p in model.parameters())
    loads = world.gather_objects(loaded)
    if world.is_main:
        print(_report(args, world, params, records, loads))
    engine.close()
    world.barrier()
    close_world(group)
    if temporary and local_rank == 0:
        shutil.rmtree(model_dir, ignore_errors=True)


def _where(world: World) -> str:
    if world.device.type == "cuda":
        name = torch.cuda.get_device_name(world.device)
        return f"Ran on {world.size} x {name} (NCCL), torch {torch.__version__}."
    return (
        f"NOT A GPU RUN: device=cpu ({world.size} gloo rank(s), torch {torch.__version__}), a "
        "smoke test of the script only; its times and memory say nothing about a GPU."
    )


def _report(args, world: World, params: int, records, loads) -> str:
    """The markdown tables rank 0 prints."""
    cuda = world.device.type == "cuda"
    s = SHAPES[args.shape]
    hidden, layers, heads, kv_heads = s.hidden_size, s.num_layers, s.num_heads, s.num_kv_heads
    head_dim, inter = s.head_dim or hidden // heads, s.intermediate_size
    tokens = records[0][0]["tokens"]
    lines = [
        _where(world),
        f"Qwen3 {args.shape} shape (hidden {hidden}, {layers} layers, {heads} heads, {kv_heads} "
        f"KV heads, head_dim {head_dim}, intermediate {inter}, vocabulary {args.vocab:,}), "
        f"random weights, {params:,} parameters. FSDP2 on {world.size} rank(s), fp32 master "
        f"weights, {args.param_dtype} compute, activation checkpointing, logprob_chunk_tokens="
        f"{args.logprob_chunk_tokens}, micro_batch_tokens={args.micro_batch_tokens}. Per rank "
        f"{args.seqs_per_rank} trajectories of ~{args.seq_tokens} tokens; {tokens:,.0f} tokens "
        "per step over all ranks. Times: the slowest rank's; memory: the largest rank's.",
        "",
    ]
    mem_head = "peak allocated GiB | peak reserved GiB" if cuda else "peak RSS GiB (process)"
    lines += [
        f"| step | recompute s | update s | sync s | update tokens/s | {mem_head} |",
        "|---:|---:|---:|---:|---:|---:|" + ("---:|" if cuda else ""),
    ]
    for i, step in enumerate(records, 1):
        slowest = {k: max(r[k] for r in step) for k in ("logprob_s", "update_s", "sync_s")}
        mem = (
            f"{max(r['peak_alloc'] for r in step):.2f} | "
            f"{max(r['peak_reserved'] for r in step):.2f}"
            if cuda
            else f"{max(r['peak_rss'] for r in step):.2f}"
        )
        lines.append(
            f"| {i} | {slowest['logprob_s']:.2f} | {slowest['update_s']:.2f} | "
            f"{slowest['sync_s']:.3f} | {tokens / slowest['update_s']:,.0f} | {mem} |"
        )
    if cuda:
        lines += [
            "",
            "| rank | load + shard peak allocated GiB | step peak allocated GiB | "
            "step peak reserved GiB |",
            "|---:|---:|---:|---:|",
        ]
        for rank, load in enumerate(loads):
            alloc = max(step[rank]["peak_alloc"] for step in records)
            reserved = max(step[rank]["peak_reserved"] for step in records)
            lines.append(f"| {rank} | {load['peak_alloc']:.2f} | {alloc:.2f} | {reserved:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
