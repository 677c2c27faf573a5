"""The RL step's metrics under verl's names, and the advantages the sample records show.

The report and dashboards read verl's keys (`actor/*`, `timing_s/*`, `perf/*`,
`response_length/*`), so a run compares side by side with a verl run; `ppo_update` keeps its
own short names and this module renames them once. Keys verl has no counterpart for stay under
`update/`. docs/metrics.md lists every key.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import torch

from metaagentx.rollout.roles import DESIGNER, EXECUTOR
from metaagentx.rollout.trajectory import Trajectory
from metaagentx.rollout.tree import RolloutTree

# ppo_update's key -> the logged key (verl's name where verl has the metric)
UPDATE_NAMES: dict[str, str] = {
    "pg_loss": "actor/pg_loss",
    "loss": "actor/loss",
    "approx_kl": "actor/ppo_kl",
    "kl_ref": "actor/kl_loss",
    "entropy": "actor/entropy",
    "clip_frac": "actor/pg_clipfrac",
    "dual_clip_frac": "actor/pg_clipfrac_lower",
    "grad_norm": "actor/grad_norm",
    "tokens_per_s": "perf/update_tokens_per_s",
}
_OWNER_PREFIXES = {"grad_norm/": "actor/grad_norm/", "lr/": "actor/lr/"}  # + owner name
# the rollout tree's timing keys -> verl's
TIMING_NAMES = {
    "time/designs_s": "timing_s/gen_designs",
    "time/executions_s": "timing_s/gen_executions",
}
_GB = 1024**3

SampleKey = tuple[str, str, int]  # (role, design or execution id, call index)


def update_metrics(update: Mapping[str, float]) -> dict[str, float]:
    """`ppo_update`'s metrics under their logged names: verl's where it has one (UPDATE_NAMES,
    `actor/grad_norm/<owner>`, `actor/lr/<owner>`), `update/<key>` for the bookkeeping."""
    out: dict[str, float] = {}
    for key, value in update.items():
        name = UPDATE_NAMES.get(key)
        if name is None:
            prefix = next((p for p in _OWNER_PREFIXES if key.startswith(p)), None)
            name = _OWNER_PREFIXES[prefix] + key[len(prefix) :] if prefix else f"update/{key}"
        out[name] = value
    return out


def rollout_metrics(tree: RolloutTree) -> dict[str, float]:
    """The tree's metrics with verl's timing names, plus `response_length/<role>/*`."""
    metrics = {TIMING_NAMES.get(k, k): v for k, v in tree.metrics().items()}
    for role, responses in tree_responses(tree).items():
        metrics.update(response_length_metrics(role, responses))
    return metrics


def tree_responses(tree: RolloutTree) -> dict[str, list[tuple[int, str | None]]]:
    """(length in tokens, finish reason) of every response the rollout generated, per role:
    each design the designer wrote, each agent turn of every execution (trained or not)."""
    out: dict[str, list[tuple[int, str | None]]] = {DESIGNER: [], EXECUTOR: []}
    for design in tree.designs():
        if design.generation is not None:
            gen = design.generation
            out[DESIGNER].append((len(gen.response_ids), gen.finish_reason))
    for _, _, execution in tree.executions():
        out[EXECUTOR].extend((len(c.response_ids), c.finish_reason) for c in execution.calls)
    return {role: responses for role, responses in out.items() if responses}


def response_length_metrics(
    role: str, responses: Sequence[tuple[int, str | None]]
) -> dict[str, float]:
    """verl's response-length metrics for one role: mean and max length in tokens, and
    `clip_ratio`, the fraction that hit the token limit (finish reason "length")."""
    if not responses:
        return {}
    lengths = [n for n, _ in responses]
    clipped = sum(reason == "length" for _, reason in responses)
    return {
        f"response_length/{role}/mean": sum(lengths) / len(lengths),
        f"response_length/{role}/max": float(max(lengths)),
        f"response_length/{role}/clip_ratio": clipped / len(responses),
    }


def perf_metrics(generated_tokens: float, trained_tokens: float, step_s: float) -> dict[str, float]:
    """`perf/total_num_tokens` and `perf/throughput` (those tokens per second of the step).

    Counted: every response token the rollout generated (designs and agent turns, all ranks,
    prompts not included) plus every token the update forwarded (prompt and response of each
    trained sequence, every epoch, all ranks). Not counted: prompt prefill in generation and
    the log-prob recompute forward. verl divides by the GPU count; this is the whole run's.
    """
    total = float(generated_tokens + trained_tokens)
    return {
        "perf/total_num_tokens": total,
        "perf/throughput": total / step_s if step_s > 0 else 0.0,
    }


def memory_metrics() -> dict[str, float]:
    """Peak memory of this process: resident CPU memory, and CUDA allocator peaks when CUDA is
    in use (since the process started; the logged values are rank 0's)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    metrics = {"perf/cpu_memory_used_gb": peak * (1 if sys.platform == "darwin" else 1024) / _GB}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        metrics["perf/max_memory_allocated_gb"] = torch.cuda.max_memory_allocated() / _GB
        metrics["perf/max_memory_reserved_gb"] = torch.cuda.max_memory_reserved() / _GB
    return metrics


def trained_advantages(trajectories: Iterable[Trajectory]) -> dict[SampleKey, float]:
    """The advantage the update used for each trained design and agent turn, by sample key."""
    out: dict[SampleKey, float] = {}
    for t in trajectories:
        if t.advantage is not None:
            out[
                sample_key(
                    t.role, t.design_id if t.role == DESIGNER else t.execution_id, t.call_index
                )
            ] = t.advantage
    return out


def sample_key(role: str, item_id: Hashable, call_index: int = 0) -> SampleKey:
    return (role, str(item_id), call_index)


def attach_advantages(
    records: Iterable[dict[str, Any]], advantages: Mapping[SampleKey, float]
) -> None:
    """Set `advantage` on each design and agent turn of `RolloutTree.to_records()` records:
    the trained trajectory's advantage, None for what was not trained (inactive role, an empty
    response). A turn's index in `turns` is its call index, as in `RolloutTree.trajectories`."""
    for record in records:
        for design in record["designs"]:
            design["advantage"] = advantages.get(sample_key(DESIGNER, design["design_id"]))
            for execution in design["executions"]:
                for index, turn in enumerate(execution["turns"]):
                    key = sample_key(EXECUTOR, execution["execution_id"], index)
                    turn["advantage"] = advantages.get(key)
