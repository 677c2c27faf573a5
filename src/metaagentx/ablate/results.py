"""Read what an ablation's runs left on disk into the numbers `eval.ablation` computes.

Only files are read, so the table can be redrawn at any time, also while runs are going
(`metaagentx ablate CONFIG --table-only`): unfinished runs are listed as missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from metaagentx.ablate.spec import AFTER_RL, AFTER_SFT, Ablation, experiment_differences
from metaagentx.eval.ablation import (
    AblationResult,
    Outcomes,
    accuracy,
    arm_rows,
    patterns_by_difficulty,
    pooled,
    stage_length_points,
    swap_rows,
)
from metaagentx.eval.stats import Accuracy
from metaagentx.eval.tables import outcomes_by_problem
from metaagentx.stages import SWAP_LABELS

DESIGNED = "designed"


Reader = Callable[[Path], dict[str, Any] | None]


def file_reader() -> Reader:
    """Reads each eval file once per table (None: not written yet); no cache outlives it, so a
    later table sees runs that finished since."""
    cache: dict[Path, dict[str, Any] | None] = {}

    def read(path: Path) -> dict[str, Any] | None:
        if path not in cache:
            cache[path] = json.loads(path.read_text()) if path.is_file() else None
        return cache[path]

    return read


def designed_outcomes(
    payload: dict[str, Any] | None, benchmark: str | None = None
) -> Outcomes | None:
    """Problem id -> outcomes of the designed mode in one eval file's payload, over every
    benchmark or over `benchmark` alone."""
    if payload is None:
        return None
    rows = [
        row
        for r in payload["results"]
        if r["mode"] == DESIGNED and benchmark in (None, r["benchmark"])
        for row in r["per_problem"]
    ]
    return outcomes_by_problem({"per_problem": rows})


def by_benchmark(
    ablation: Ablation, arms: Mapping[str, Mapping[int, Outcomes]], read: Reader
) -> dict[str, dict[str, Accuracy]]:
    """Model ("after SFT", arms) -> benchmark -> accuracy pooled over the finished seeds."""
    out: dict[str, dict[str, Accuracy]] = {}
    folders = {"after SFT": (ablation.sft_eval_dir, AFTER_SFT)}
    folders.update({a: (lambda s, a=a: ablation.eval_dir(a, s), AFTER_RL) for a in arms})
    for model, (folder, label) in folders.items():
        for name in ablation.pipeline.eval.benchmarks:
            found = {
                s: designed_outcomes(read(folder(s) / f"{label}.json"), name)
                for s in ablation.spec.seeds
            }
            runs = {s: o for s, o in found.items() if o}
            if runs:
                out.setdefault(model, {})[name] = accuracy(pooled(runs, sorted(runs)))
    return out


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if path.is_file():
        with path.open() as file:
            yield from (json.loads(line) for line in file if line.strip())


def _per_seed(
    ablation: Ablation, folder: Callable[[int], Path], label: str, read: Reader
) -> dict[int, Outcomes]:
    """Seed -> outcomes of `label` in `folder(seed) / label.json`, for the seeds that have it."""
    found = {s: designed_outcomes(read(folder(s) / f"{label}.json")) for s in ablation.spec.seeds}
    return {s: o for s, o in found.items() if o is not None}


def collect_result(ablation: Ablation, wall_s: float | None = None) -> AblationResult:
    """The table, the swap test, patterns by difficulty and stage-length points."""
    spec = ablation.spec
    read = file_reader()
    sft = _per_seed(ablation, ablation.sft_eval_dir, AFTER_SFT, read)
    arms = {
        arm: _per_seed(ablation, lambda s, a=arm: ablation.eval_dir(a, s), AFTER_RL, read)
        for arm in spec.arms
    }
    rows = arm_rows(arms, spec.arms, spec.baseline, sft)
    swap = []
    for arm in spec.swap:
        crossed = [
            _per_seed(ablation, lambda s, a=arm: ablation.eval_dir(a, s), label, read)
            for label in SWAP_LABELS  # (RL designer, SFT executor), then the reverse
        ]
        swap += swap_rows(arm, sft, arms[arm], *crossed)
    patterns = {
        "after SFT": patterns_by_difficulty(
            r
            for s in sft
            for r in _records(ablation.sft_eval_dir(s) / f"{AFTER_SFT}.records.jsonl")
        )
    }
    for arm, runs in arms.items():
        eval_dirs = [ablation.eval_dir(arm, s) for s in runs]
        patterns[arm] = patterns_by_difficulty(
            r for d in eval_dirs for r in _records(d / f"{AFTER_RL}.records.jsonl")
        )
    return AblationResult(
        baseline=spec.baseline,
        seeds=list(spec.seeds),
        rows=rows,
        sft=accuracy(pooled(sft, sorted(sft))) if sft else None,
        swap=swap,
        patterns={k: v for k, v in patterns.items() if v},
        stage_length=stage_length_points(rows, stage_lengths(ablation)),
        by_benchmark=by_benchmark(ablation, arms, read),
        missing=[f"{a}/seed{s}" for s in spec.seeds for a in spec.arms if s not in arms[a]],
        wall_s=wall_s,
    )


def stage_lengths(ablation: Ablation) -> dict[str, int | None]:
    """K of each stagewise arm that differs from the baseline in K alone, the points of the
    stage-length curve; None for the others (another schedule, budget or sharing at the same K
    is another experiment, not a point of that curve)."""
    base = ablation.arm_configs[ablation.spec.baseline].model_dump(mode="json")
    lengths: dict[str, int | None] = {}
    for arm, config in ablation.arm_configs.items():
        changed = experiment_differences(base, config.model_dump(mode="json"))
        on_curve = config.trainer.schedule == "stagewise" and set(changed) <= {
            "trainer.phase_steps"
        }
        lengths[arm] = config.trainer.phase_steps if on_curve else None
    return lengths


__all__ = ["collect_result", "designed_outcomes", "file_reader", "stage_lengths"]
