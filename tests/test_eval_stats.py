"""Confidence intervals of evaluation accuracy: Wilson, bootstrap over problems, avg@k, paired
differences. Reference values computed by hand from the closed forms."""

from __future__ import annotations

import pytest

from metaagentx.eval.stats import (
    avg_at_k,
    bootstrap_interval,
    paired_difference,
    pass_at_k,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.27753),  # z^2 / (n + z^2): never a zero-width interval at 0%
        (10, 10, 0.72247, 1.0),
        (5, 10, 0.23659, 0.76341),
        (12, 30, 0.24596, 0.57676),
        (1, 1, 0.20654, 1.0),
        (0, 0, 0.0, 1.0),  # nothing measured: nothing known
    ],
)
def test_wilson_interval_matches_the_closed_form(successes, n, low, high):
    lo, hi = wilson_interval(successes, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_narrows_with_confidence_and_rejects_bad_counts():
    wide, narrow = wilson_interval(5, 10, 0.99), wilson_interval(5, 10, 0.80)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    for bad in [(11, 10), (-1, 10)]:
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)


def test_bootstrap_is_deterministic_covers_the_mean_and_shrinks_with_more_problems():
    values = [0.0, 0.5, 1.0, 0.25, 0.75, 1.0, 0.0, 0.5]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    low, high = bootstrap_interval(values)
    mean = sum(values) / len(values)
    assert 0.0 <= low < mean < high <= 1.0
    low4, high4 = bootstrap_interval(values * 4)
    assert high4 - low4 < high - low
    assert bootstrap_interval([0.3, 0.3, 0.3]) == (0.3, 0.3)
    assert bootstrap_interval([]) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("outcomes", "mean", "method"),
    [
        ([[1.0], [0.0], [1.0], [1.0]], 0.75, "wilson"),  # k = 1: a proportion over problems
        ([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], 0.5, "bootstrap"),  # avg@2
        ([[0.0, 0.0], [0.0, 0.0]], 0.0, "wilson"),  # a collapsed bootstrap falls back
        ([[1.0, 0.0, 1.0, 1.0]], 0.75, "wilson"),
    ],
)
def test_avg_at_k_picks_the_interval(outcomes, mean, method):
    accuracy = avg_at_k(outcomes)
    assert accuracy.mean == pytest.approx(mean)
    assert accuracy.method == method
    assert accuracy.problems == len(outcomes)
    assert accuracy.k == max(len(o) for o in outcomes)
    assert accuracy.low <= accuracy.mean <= accuracy.high
    assert accuracy.high > accuracy.low  # never claims certainty from a handful of problems


def test_avg_at_k_rejects_a_problem_without_outcomes():
    with pytest.raises(ValueError):
        avg_at_k([[1.0], []])


def test_pass_at_k_counts_problems_solved_at_least_once():
    accuracy = pass_at_k([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert accuracy.mean == 0.5 and accuracy.method == "wilson" and accuracy.k == 2
    assert (accuracy.low, accuracy.high) == wilson_interval(2, 4)
    assert "50.0 [" in accuracy.format()


def test_paired_difference_uses_shared_problems_only():
    before = {f"p{i}": [0.0, 0.0] for i in range(20)}
    after = {f"p{i}": [1.0, 0.0] if i % 2 else [1.0, 1.0] for i in range(20)}
    after["extra"] = [1.0, 1.0]  # not in `before`: ignored
    gain = paired_difference(before, after)
    assert gain.problems == 20 and gain.method == "paired_bootstrap"
    assert gain.mean == pytest.approx(0.75)
    assert 0.5 < gain.low < 0.75 < gain.high <= 1.0  # clearly positive
    worse = paired_difference(after, before)
    assert worse.mean == pytest.approx(-0.75) and worse.high < 0
    with pytest.raises(ValueError):
        paired_difference({"a": [1.0]}, {"b": [1.0]})


def test_paired_difference_keeps_uncertainty_when_every_problem_moved_alike():
    gain = paired_difference({f"p{i}": [0.0] for i in range(8)}, {f"p{i}": [1.0] for i in range(8)})
    assert gain.mean == 1.0 and gain.method == "paired_wilson"
    low, _ = wilson_interval(8, 8)
    assert gain.low == pytest.approx(2 * low - 1) and gain.high == pytest.approx(1.0)
    same = paired_difference({"a": [1.0], "b": [0.0]}, {"a": [1.0], "b": [0.0]})
    assert same.mean == 0.0 and same.low < 0.0 < same.high
