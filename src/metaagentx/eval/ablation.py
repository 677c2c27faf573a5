"""An ablation's numbers: accuracy per arm with paired intervals, the swap test, patterns.

Pure functions over per-problem outcomes (problem id -> the k sampled 0/1 outcomes of one
evaluation), so the table can be recomputed from the files a run left, at any time.

Pairing. Every arm's seed-s run starts from the same SFT model as the baseline's seed-s run and
is evaluated on the same held-out problems, so an arm is compared with the baseline problem by
problem, pooled over the seeds both finished: each problem's difference is the mean over seeds
of (arm - baseline), and the 95% interval is a bootstrap over problems (`paired_difference`).
Seed-to-seed variation of RL enters through the per-problem means; the intervals do not treat
seeds as independent replicates of the whole experiment, so the per-seed accuracies are shown
beside them.

The swap test crosses the roles: designs from the RL model with agent turns from the SFT model
(the designer's gain), and the reverse (the executor's gain), each paired against SFT+SFT with
the same seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metaagentx.eval.analysis import pattern_distribution, rows_from_records
from metaagentx.eval.stats import Accuracy, avg_at_k, paired_difference

Outcomes = dict[str, list[float]]  # problem id -> sampled outcomes
PerSeed = Mapping[int, Outcomes]


def pooled(per_seed: PerSeed, seeds: Iterable[int]) -> Outcomes:
    """Each problem's outcomes over `seeds`, concatenated in seed order (problems all have)."""
    seeds = list(seeds)
    if not seeds:
        return {}
    shared = set.intersection(*(set(per_seed[s]) for s in seeds))
    return {p: [v for s in seeds for v in per_seed[s][p]] for p in sorted(shared)}


def accuracy(outcomes: Outcomes, seed: int = 0) -> Accuracy:
    """avg@k over problems with its 95% interval."""
    return avg_at_k([outcomes[p] for p in sorted(outcomes)], seed=seed)


def paired(before: PerSeed, after: PerSeed, seed: int = 0) -> tuple[Accuracy, list[int]] | None:
    """after - before pooled over the seeds both have (see the module doc), and those seeds."""
    seeds = sorted(set(before) & set(after))
    if not seeds:
        return None
    return paired_difference(pooled(before, seeds), pooled(after, seeds), seed=seed), seeds


@dataclass(frozen=True)
class ArmRow:
    """One arm: its accuracy per seed and pooled, and its paired differences."""

    arm: str
    overrides: list[str]
    per_seed: dict[int, float]
    accuracy: Accuracy
    vs_baseline: Accuracy | None
    vs_sft: Accuracy | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "overrides": self.overrides,
            "per_seed": self.per_seed,
            "accuracy": self.accuracy.to_dict(),
            "vs_baseline": self.vs_baseline.to_dict() if self.vs_baseline else None,
            "vs_sft": self.vs_sft.to_dict() if self.vs_sft else None,
        }


def arm_rows(
    arms: Mapping[str, PerSeed],
    overrides: Mapping[str, list[str]],
    baseline: str,
    sft: PerSeed,
) -> list[ArmRow]:
    """One row per arm that finished at least one seed, the baseline first."""
    order = [baseline, *(a for a in arms if a != baseline)]
    rows = []
    for arm in order:
        runs = arms.get(arm) or {}
        if not runs:
            continue
        per_seed = {s: accuracy(o).mean for s, o in sorted(runs.items())}
        vs_base = None if arm == baseline else paired(arms.get(baseline) or {}, runs)
        vs_sft = paired(sft, runs)
        rows.append(
            ArmRow(
                arm=arm,
                overrides=list(overrides.get(arm, [])),
                per_seed=per_seed,
                accuracy=accuracy(pooled(runs, sorted(runs))),
                vs_baseline=vs_base[0] if vs_base else None,
                vs_sft=vs_sft[0] if vs_sft else None,
            )
        )
    return rows


@dataclass(frozen=True)
class SwapRow:
    """One seed's swap test: gains over SFT+SFT of each role alone and of both."""

    arm: str
    seed: int
    both: Accuracy
    designer: Accuracy
    executor: Accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "seed": self.seed,
            **{k: getattr(self, k).to_dict() for k in ("both", "designer", "executor")},
        }


def swap_rows(
    arm: str, sft: PerSeed, rl: PerSeed, rl_designer: PerSeed, rl_executor: PerSeed
) -> list[SwapRow]:
    """Per seed that has all four evaluations: the gains of RL+RL, RL designer + SFT executor
    and SFT designer + RL executor over SFT+SFT."""
    rows = []
    for seed in sorted(set(sft) & set(rl) & set(rl_designer) & set(rl_executor)):
        rows.append(
            SwapRow(
                arm=arm,
                seed=seed,
                both=paired_difference(sft[seed], rl[seed], seed=seed),
                designer=paired_difference(sft[seed], rl_designer[seed], seed=seed),
                executor=paired_difference(sft[seed], rl_executor[seed], seed=seed),
            )
        )
    return rows


def seeds_above_zero(rows: Sequence[SwapRow], role: str) -> int:
    """How many seeds' `role` gain has a 95% interval entirely above zero."""
    return sum(getattr(r, role).low > 0 for r in rows)


def patterns_by_difficulty(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """ "domain/level" -> the fraction of designs per pattern (invalid included): the paper's
    "structure adapts to difficulty", per domain since levels of math and code differ."""
    rows = rows_from_records(list(records))
    out = {}
    for domain in sorted({r.domain for r in rows}):
        mine = [r for r in rows if r.domain == domain]
        for level, fractions in pattern_distribution(mine, "difficulty").items():
            out[f"{domain}/{level}"] = fractions
    return out


@dataclass(frozen=True)
class StagePoint:
    """Accuracy after RL of a stagewise arm with phase length K."""

    arm: str
    phase_steps: int
    accuracy: Accuracy


def stage_length_points(
    rows: Sequence[ArmRow], phase_steps: Mapping[str, int | None]
) -> list[StagePoint]:
    """The stagewise arms' accuracies ordered by K (`phase_steps[arm]` None: not stagewise)."""
    points = [
        StagePoint(r.arm, k, r.accuracy) for r in rows if (k := phase_steps.get(r.arm)) is not None
    ]
    return sorted(points, key=lambda p: (p.phase_steps, p.arm))


@dataclass
class AblationResult:
    """Everything the table and the report show."""

    baseline: str
    seeds: list[int]
    rows: list[ArmRow]
    sft: Accuracy | None
    swap: list[SwapRow] = field(default_factory=list)
    patterns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    stage_length: list[StagePoint] = field(default_factory=list)
    by_benchmark: dict[str, dict[str, Accuracy]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # "arm/seedN" not finished
    wall_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "seeds": self.seeds,
            "rows": [r.to_dict() for r in self.rows],
            "sft": self.sft.to_dict() if self.sft else None,
            "swap": [r.to_dict() for r in self.swap],
            "patterns_by_difficulty": self.patterns,
            "stage_length": [
                {"arm": p.arm, "phase_steps": p.phase_steps, "accuracy": p.accuracy.to_dict()}
                for p in self.stage_length
            ],
            "by_benchmark": {
                m: {b: a.to_dict() for b, a in found.items()}
                for m, found in self.by_benchmark.items()
            },
            "missing": self.missing,
            "wall_s": self.wall_s,
        }


__all__ = [
    "AblationResult",
    "ArmRow",
    "Outcomes",
    "StagePoint",
    "SwapRow",
    "accuracy",
    "arm_rows",
    "paired",
    "patterns_by_difficulty",
    "pooled",
    "seeds_above_zero",
    "stage_length_points",
    "swap_rows",
]
