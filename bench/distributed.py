"""What distributed training rests on: peak memory of the log-probs, chunked vs full logits.

Table 1 (`logprob_memory_table`): forward + backward of the log-probs of `--tokens` trained
tokens at Qwen3's vocabulary (151,936) with a small hidden size, through
`chunked_token_logprobs` (`train/logprobs.py`) at a few chunk sizes and unchunked (full (K, V)
logits, the path without `chunk_tokens`). Each variant runs in a fresh subprocess: after the
inputs are allocated it resets the kernel's RSS high-water mark (/proc/self/clear_refs), then
reports peak RSS (VmHWM) minus the RSS at that point, so the number is what the log-prob
computation itself touched (the weight's .grad included, the same in every row). The child
caps its address space (--memory-cap-gb) so a variant that does not fit fails its allocation
instead of waking the kernel's OOM killer on a shared machine; an unchunked run that fails is
measured at 1/16 and 1/8 of the tokens and extrapolated linearly (memory and time are both
affine in tokens), marked as such.

Table 2 (`scaling_table`): tokens/s of the RL update (`ppo_update` + `sync_generation`, through
`TrainingEngine`) at 1 and 2 gloo ranks on CPU, on one fixed global batch of trajectories dealt
to the ranks, each configuration in a fresh launch of `distributed_worker.py` (1 rank without
FSDP: a plain process, no process group; otherwise `torch.distributed.run`). A warm-up step,
then `--steps` timed steps; a step's time is its slowest rank's, the table shows the median.

Usage: python bench/distributed.py [--table memory|scaling|all]
       [--tokens 16384] [--vocab 151936] [--hidden 64]                  (memory)
       [--size small] [--trajectories 32] [--steps 3] [--runs 1x1:off,1x2:off,1x1:on,2x1:on]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from metaagentx.tiny import SIZES, build_tiny
from metaagentx.train.logprobs import chunked_token_logprobs

MB = 1024 * 1024
WORKER = Path(__file__).with_name("distributed_worker.py")


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_logprobs(spec: dict[str, Any]) -> dict[str, Any]:
    """One variant, in this (fresh) process: peak RSS increase and time of forward + backward."""
    torch.set_num_threads(spec["threads"])
    g = torch.Generator().manual_seed(0)
    k, v, h = spec["tokens"], spec["vocab"], spec["hidden"]
    hidden = torch.randn(k, h, generator=g).requires_grad_()
    weight = (torch.randn(v, h, generator=g) / h**0.5).requires_grad_()
    targets = torch.randint(0, v, (k,), generator=g)
    torch.randn(256, 256) @ torch.randn(256, 256)  # start the thread pool before the cap
    cap = int(spec["memory_cap_gb"] * 1024**3)
    vm_now = _proc_status_kb("VmSize") * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm_now + cap, resource.RLIM_INFINITY))
    hwm_reset = _reset_peak_rss()
    base_kb = _proc_status_kb("VmRSS") if hwm_reset else resource.getrusage(0).ru_maxrss
    start = time.perf_counter()
    try:
        logp, ent = chunked_token_logprobs(
            hidden, weight, targets, 1.0,
            chunk_tokens=spec["chunk"], with_entropy=spec["entropy"],
        )  # fmt: skip
        loss = logp.sum() if ent is None else logp.sum() + 0.01 * ent.sum()
        loss.backward()
    except (RuntimeError, MemoryError) as e:  # the address-space cap: did not fit
        return {"error": f"allocation refused under the {spec['memory_cap_gb']:g} GB cap: {e}"}
    seconds = time.perf_counter() - start
    peak_kb = _proc_status_kb("VmHWM") if hwm_reset else resource.getrusage(0).ru_maxrss
    return {"peak_mb": (peak_kb - base_kb) / 1024, "seconds": seconds, "hwm_reset": hwm_reset}


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """`measure_logprobs(spec)` in a fresh interpreter (its peak RSS is its own)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _default_cap_gb() -> float:
    """Half the memory available now: room for the machine's other work."""
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    return round(info["MemAvailable"] / 1024**2 / 2, 1)


def _unchunked_row(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Unchunked at the requested size, or extrapolated from 1/16 and 1/8 of it if too big."""
    result = _run_child({**spec, "chunk": None})
    if "error" not in result:
        return "unchunked", result
    k = spec["tokens"]
    small = [_run_child({**spec, "chunk": None, "tokens": k // d}) for d in (16, 8)]
    if any("error" in r for r in small):
        return "unchunked", result
    out: dict[str, Any] = {"note": result["error"].split(":")[0]}
    for key in ("peak_mb", "seconds"):
        slope = (small[1][key] - small[0][key]) / (k // 8 - k // 16)
        out[key] = small[1][key] + slope * (k - k // 8)
    return f"unchunked, extrapolated from {k // 16:,} and {k // 8:,} tokens", out


def logprob_memory_table(
    tokens: int = 16384,
    vocab: int = 151936,
    hidden: int = 64,
    chunks: tuple[int, ...] = (512, 1024, 2048),
    *,
    entropy: bool = False,
    threads: int = 2,
    memory_cap_gb: float | None = None,
) -> str:
    """Markdown table: peak memory and time of log-prob forward + backward per chunk size."""
    cap = memory_cap_gb if memory_cap_gb is not None else _default_cap_gb()
    spec = dict(
        tokens=tokens, vocab=vocab, hidden=hidden, entropy=entropy, threads=threads,
        memory_cap_gb=cap,
    )  # fmt: skip
    label, full = _unchunked_row(spec)
    rows = [(label, full)] + [
        (f"chunk_tokens={c}", _run_child({**spec, "chunk": c})) for c in chunks
    ]
    fp32_logits_mb = tokens * vocab * 4 / MB
    lines = [
        f"Log-probs of {tokens:,} tokens, vocabulary {vocab:,}, hidden {hidden}, fp32, "
        f"forward + backward{' with entropy' if entropy else ''}, {threads} threads. Peak = "
        "peak RSS minus RSS after allocating the inputs, each variant in a fresh process "
        "(/proc/self/clear_refs + VmHWM). The (K, V) fp32 logits alone are "
        f"{fp32_logits_mb:,.0f} MB.",
        "",
        "| variant | peak MB | memory vs unchunked | time s | time vs unchunked |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:80]} | | | |")
            continue
        mem = _ratio(full, r, "peak_mb")
        speed = _ratio(full, r, "seconds")
        lines.append(f"| {name} | {r['peak_mb']:,.0f} | {mem} | {r['seconds']:.1f} | {speed} |")
    if "note" in full:
        lines.append(f"\nUnchunked at {tokens:,} tokens: {full['note']}.")
    return "\n".join(lines)


def _ratio(base: dict[str, Any], row: dict[str, Any], key: str) -> str:
    if "error" in base or row[key] <= 0:
        return "n/a"
    return f"{row[key] / base[key]:.3f}x"


# ---- table 2: scaling of the RL update over gloo ranks ------------------------------------------


@dataclass(frozen=True)
class ScalingSpec:
    """The fixed workload every configuration of the scaling table runs."""

    size: str = "small"
    trajectories: int = 32
    prompt: int = 250
    response: int = 100
    micro_batch_tokens: int = 4096
    steps: int = 3
    warmup: int = 1
    rounds: int = 1


def _launch(model: Path, spec: ScalingSpec, ranks: int, threads: int, fsdp: str) -> dict:
    """One configuration in a fresh launch of the worker; rank 0's JSON summary."""
    overrides = ["model.device=cpu", f"distributed.fsdp={fsdp}"]
    job = {**asdict(spec), "model": str(model), "threads": threads, "overrides": overrides}
    job_file = model.parent / f"job-{ranks}x{threads}-{fsdp}.json"
    job_file.write_text(json.dumps(job))
    if ranks == 1 and fsdp == "off":
        cmd = [sys.executable, str(WORKER), str(job_file)]  # a plain process, no group
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={ranks}", str(WORKER), str(job_file),
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{ranks}x{threads} fsdp={fsdp} failed: {proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def scaling_table(spec: ScalingSpec, runs: list[tuple[int, int, str]]) -> str:
    """Markdown table: update s/step and global tokens/s per (ranks, threads, fsdp) launch."""
    load_before = os.getloadavg()
    results: dict[tuple[int, int, str], list[dict]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny(Path(tmp) / "model", size=spec.size)
        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model).parameters())
        for _ in range(spec.rounds):  # rounds interleave the configurations (drifting load)
            for run in runs:
                results[run].append(_launch(model, spec, *run))
    load_after = os.getloadavg()
    rows = {}
    for run, launches in results.items():
        steps = [s for r in launches for s in r["update_s"]]
        sync = statistics.median(s for r in launches for s in r["sync_s"])
        spread = (min(steps), max(steps))
        rows[run] = (
            statistics.median(steps),
            sync,
            launches[0]["tokens"],
            launches[0]["sharded"],
            spread,
        )
    return _scaling_markdown(spec, params, rows, load_before, load_after)


def _scaling_markdown(spec, params, rows, load_before, load_after) -> str:
    tokens = next(iter(rows.values()))[2]
    shape = SIZES[spec.size]
    base1 = rows.get((1, 1, "off"))
    base2 = rows.get((1, 2, "off"))
    loads = ", ".join(
        "/".join(f"{x:.1f}" for x in load) + when
        for load, when in ((load_before, " before"), (load_after, " after"))
    )
    busy = load_before[0] > (os.cpu_count() or 1) / 2  # "after" counts this bench's own ranks
    lines = [
        f"RL update (`ppo_update` + `sync_generation`), Qwen3 {spec.size} "
        f"{shape.hidden_size}x{shape.num_layers} with random weights ({params / 1e6:.2f}M "
        f"parameters), fp32, CPU, gloo. One global batch of {spec.trajectories} trajectories "
        f"(prompt ~{spec.prompt}, response ~{spec.response} tokens: {tokens:,.0f} tokens) dealt "
        f"to the ranks; micro_batch_tokens={spec.micro_batch_tokens}; median of "
        f"{spec.steps * spec.rounds} steps after a warm-up step, each configuration in a fresh "
        f"launch; a step's time is its slowest rank's. {os.cpu_count()} cores: 1 rank x 2 threads "
        "and 2 ranks x 1 thread use the same cores (the fair pair); 1 rank x 1 thread is the "
        f"baseline of the speed-up. Load average (1/5/15 min) {loads}"
        + (" (a busy shared machine: timings are noisy)." if busy else "."),
        "",
        "| ranks | threads/rank | fsdp | update s/step | min-max s | sync s/step | tokens/s | "
        "speed-up vs 1 process x 1 thread | vs 1 process x 2 threads | scaling efficiency |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (ranks, threads, _), (update, sync, _, sharded, (low, high)) in rows.items():
        up1 = f"{base1[0] / update:.2f}x" if base1 else "n/a"
        up2 = f"{base2[0] / update:.2f}x" if base2 else "n/a"
        eff = f"{base1[0] / update / (ranks * threads):.0%}" if base1 else "n/a"
        lines.append(
            f"| {ranks} | {threads} | {'on' if sharded else 'off'} | {update:.2f} | "
            f"{low:.2f}-{high:.2f} | {sync:.3f} | {tokens / update:,.0f} | {up1} | {up2} | {eff} |"
        )
    lines.append(
        "\ntokens/s: all ranks' forwarded tokens per second of update. Scaling efficiency: "
        "speed-up vs 1 process x 1 thread / cores used (ranks x threads). With other work on "
        "the cores, a 2-thread process is the fragile one: its OpenMP threads wait for each "
        "other at every parallel region, so one preempted thread stalls both (min-max shows it)."
    )
    return "\n".join(lines)


def _parse_runs(text: str) -> list[tuple[int, int, str]]:
    """`1x2:off,2x1:on` -> [(ranks, threads per rank, fsdp), ...]."""
    runs = []
    for item in text.split(","):
        shape, _, fsdp = item.strip().partition(":")
        ranks, _, threads = shape.partition("x")
        if fsdp not in ("on", "off") or (int(ranks) > 1 and fsdp == "off"):
            raise SystemExit(f"bad run {item!r}: RANKSxTHREADS:on|off (several ranks need on)")
        runs.append((int(ranks), int(threads), fsdp))
    return runs


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", choices=("memory", "scaling", "all"), default="all")
    memory = parser.add_argument_group("memory table")
    memory.add_argument("--tokens", type=int, default=16384)
    memory.add_argument("--vocab", type=int, default=151936)
    memory.add_argument("--hidden", type=int, default=64)
    memory.add_argument("--chunks", default="512,1024,2048", help="chunk_tokens values")
    memory.add_argument("--entropy", action="store_true", help="entropy with gradient too")
    memory.add_argument("--threads", type=int, default=2)
    memory.add_argument("--memory-cap-gb", type=float, default=None,
                        help="address-space cap per variant (default: half of MemAvailable)")  # fmt: skip
    scaling = parser.add_argument_group("scaling table")
    scaling.add_argument("--size", default="small", help="tiny.py size of the random model")
    scaling.add_argument("--trajectories", type=int, default=32, help="global batch")
    scaling.add_argument("--prompt", type=int, default=250, help="mean prompt tokens")
    scaling.add_argument("--response", type=int, default=100, help="mean response tokens")
    scaling.add_argument("--micro-batch-tokens", type=int, default=4096)
    scaling.add_argument("--steps", type=int, default=3, help="timed steps after 1 warm-up")
    scaling.add_argument("--rounds", type=int, default=1, help="launches per configuration")
    scaling.add_argument("--runs", default="1x1:off,1x2:off,1x1:on,2x1:on",
                         help="RANKSxTHREADS:fsdp per launch")  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    if args.child:
        print(json.dumps(measure_logprobs(json.loads(args.child))))
        return
    if args.table in ("memory", "all"):
        chunks = tuple(int(c) for c in args.chunks.split(","))
        table = logprob_memory_table(
            args.tokens, args.vocab, args.hidden, chunks,
            entropy=args.entropy, threads=args.threads, memory_cap_gb=args.memory_cap_gb,
        )  # fmt: skip
        print(table)
    if args.table in ("scaling", "all"):
        if args.table == "all":
            print()
        spec = ScalingSpec(
            size=args.size, trajectories=args.trajectories, prompt=args.prompt,
            response=args.response, micro_batch_tokens=args.micro_batch_tokens,
            steps=args.steps, rounds=args.rounds,
        )  # fmt: skip
        print(scaling_table(spec, _parse_runs(args.runs)))


if __name__ == "__main__":
    main()
