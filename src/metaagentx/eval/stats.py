"""Accuracy with honest error bars: avg@k over problems, with 95% confidence intervals.

Benchmarks are small (AIME has 30 problems), so a point estimate alone misleads. With one sample
per problem the outcome is a proportion over problems and the Wilson score interval is the right
tool (it behaves at 0% and 100%, unlike the normal approximation). With k > 1 samples a problem's
score is a fraction and samples of one problem are correlated, so the interval is a percentile
bootstrap that resamples whole problems. Pure functions; deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: float, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval of a proportion `successes / n`; (0, 1) when n is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(
    values: Sequence[float],
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one value per problem)."""
    _z(confidence)
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return 0.0, 1.0
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Accuracy:
    """A mean over problems with its interval; `method` says which interval it is."""

    mean: float
    low: float
    high: float
    problems: int
    k: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """'41.0 [28.3, 54.6]' in percent."""
        return f"{100 * self.mean:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"


def avg_at_k(
    outcomes: Sequence[Sequence[float]],
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Accuracy:
    """avg@k: the mean over problems of each problem's mean outcome over its k samples.

    Wilson when every problem has one 0/1 outcome (or all problems scored the same), else a
    percentile bootstrap over problems."""
    if any(len(o) == 0 for o in outcomes):
        raise ValueError("every problem needs at least one outcome")
    per_problem = [sum(o) / len(o) for o in outcomes]
    k = max((len(o) for o in outcomes), default=0)
    n = len(per_problem)
    mean = sum(per_problem) / n if n else 0.0
    binary = k <= 1 and all(v in (0.0, 1.0) for v in per_problem)
    # A bootstrap cannot express uncertainty when every problem scored the same (it collapses
    # to a point); the Wilson interval over problems is then used (conservative: a mean of
    # [0, 1] scores has at most the variance of a proportion).
    if binary or len(set(per_problem)) <= 1:
        low, high = wilson_interval(sum(per_problem), n, confidence)
        return Accuracy(mean, low, high, n, k, "wilson")
    low, high = bootstrap_interval(per_problem, confidence, resamples, seed)
    return Accuracy(mean, low, high, n, k, "bootstrap")


def pass_at_k(
    outcomes: Sequence[Sequence[float]], confidence: float = DEFAULT_CONFIDENCE
) -> Accuracy:
    """The fraction of problems with at least one correct sample among their k (Wilson)."""
    solved = sum(1 for o in outcomes if any(v >= 1.0 for v in o))
    n = len(outcomes)
    low, high = wilson_interval(solved, n, confidence)
    k = max((len(o) for o in outcomes), default=0)
    return Accuracy(solved / n if n else 0.0, low, high, n, k, "wilson")


def paired_difference(
    before: Mapping[str, Sequence[float]],
    after: Mapping[str, Sequence[float]],
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Accuracy:
    """after - before on the problems both measured (keyed by problem id), with a paired
    bootstrap interval over problems: the same problems drawn for both, so their shared
    difficulty cancels and the interval is narrower than two independent ones."""
    shared = sorted(set(before) & set(after))
    if not shared:
        raise ValueError("the two evaluations share no problem")
    for pid in shared:
        if not before[pid] or not after[pid]:
            raise ValueError(f"problem {pid} has no outcomes")
    diffs = [sum(after[p]) / len(after[p]) - sum(before[p]) / len(before[p]) for p in shared]
    k = max(len(after[p]) for p in shared)
    mean = sum(diffs) / len(diffs)
    if len(set(diffs)) <= 1:
        # every problem moved alike, so the bootstrap collapses to a point; use the Wilson
        # interval of the rescaled mean (d + 1) / 2 in [0, 1] instead (conservative)
        low, high = wilson_interval(len(diffs) * (mean + 1) / 2, len(diffs), confidence)
        return Accuracy(mean, 2 * low - 1, 2 * high - 1, len(shared), k, "paired_wilson")
    low, high = bootstrap_interval(diffs, confidence, resamples, seed)
    return Accuracy(mean, low, high, len(shared), k, "paired_bootstrap")


__all__ = [
    "DEFAULT_CONFIDENCE",
    "Accuracy",
    "avg_at_k",
    "bootstrap_interval",
    "paired_difference",
    "pass_at_k",
    "wilson_interval",
]
