"""The ablation's numbers (eval.ablation) and its table, from hand-made outcomes."""

from __future__ import annotations

import pytest

from metaagentx.eval.ablation import (
    AblationResult,
    arm_rows,
    paired,
    patterns_by_difficulty,
    pooled,
    seeds_above_zero,
    stage_length_points,
    swap_rows,
)
from metaagentx.eval.ablation_report import ablation_html, ablation_markdown, pattern_order


def _outcomes(scores: list[float], k: int = 2) -> dict[str, list[float]]:
    """Problem p<i> with k outcomes whose mean is scores[i] (0, 0.5 or 1)."""
    return {f"p{i}": [1.0] * int(s * k) + [0.0] * (k - int(s * k)) for i, s in enumerate(scores)}


def test_pooled_concatenates_seeds_over_shared_problems():
    per_seed = {0: {"a": [1.0], "b": [0.0]}, 1: {"a": [0.0], "c": [1.0]}}
    assert pooled(per_seed, [0, 1]) == {"a": [1.0, 0.0]}
    assert pooled(per_seed, []) == {}


def test_paired_difference_is_the_mean_over_seeds_of_per_problem_differences():
    base = {0: _outcomes([0, 0, 1, 1]), 1: _outcomes([0, 1, 1, 1])}
    arm = {0: _outcomes([1, 0, 1, 1]), 1: _outcomes([1, 1, 1, 0]), 2: _outcomes([1, 1, 1, 1])}
    diff, seeds = paired(base, arm)
    # seed 0: +1 on p0; seed 1: +1 on p0, -1 on p3 -> per problem means (1, 0, 0, -0.5)
    assert seeds == [0, 1]  # seed 2 has no baseline to pair with
    assert diff.mean == pytest.approx((1 + 0 + 0 - 0.5) / 4)
    assert diff.low <= diff.mean <= diff.high and diff.problems == 4
    assert paired({}, arm) is None


def test_arm_rows_put_the_baseline_first_and_skip_unfinished_arms():
    sft = {0: _outcomes([0, 0, 0, 0])}
    arms = {"other": {0: _outcomes([1, 1, 0, 0])}, "base": {0: _outcomes([1, 0, 0, 0])}, "x": {}}
    rows = arm_rows(arms, {"other": ["trainer.phase_steps=1"]}, "base", sft)
    assert [r.arm for r in rows] == ["base", "other"]
    base, other = rows
    assert base.vs_baseline is None and base.vs_sft.mean == pytest.approx(0.25)
    assert other.vs_baseline.mean == pytest.approx(0.25)
    assert other.per_seed == {0: 0.5} and other.overrides == ["trainer.phase_steps=1"]


def test_swap_rows_give_each_roles_gain_and_count_seeds_above_zero():
    n = 40
    sft = {s: _outcomes([0.0] * n) for s in (0, 1, 2)}
    rl = {s: _outcomes([1.0] * n) for s in (0, 1, 2)}
    designer = {s: _outcomes([1.0] * (n // 2) + [0.0] * (n // 2)) for s in (0, 1, 2)}
    executor = {0: _outcomes([0.0] * n), 1: _outcomes([0.5] * n)}  # seed 2 unfinished
    rows = swap_rows("base", sft, rl, designer, executor)
    assert [r.seed for r in rows] == [0, 1]
    assert rows[0].designer.mean == pytest.approx(0.5) and rows[0].executor.mean == 0.0
    assert rows[1].executor.mean == pytest.approx(0.5) and rows[1].both.mean == 1.0
    assert seeds_above_zero(rows, "designer") == 2
    assert seeds_above_zero(rows, "executor") == 1


def test_patterns_by_difficulty_are_split_by_domain_and_level():
    tool = "from mas import *\nworkflow = Agent('solve', tools=['python'])\n"

    def record(pid: str, domain: str, level: float, script: str | None) -> dict:
        design = {"valid": script is not None, "script": script, "executions": []}
        return {"problem_id": pid, "domain": domain, "difficulty": level, "designs": [design]}

    records = [record("a", "math", 1.0, tool), record("b", "math", 3.0, None)]
    records.append(record("c", "code", 1.0, None))
    out = patterns_by_difficulty(records)
    assert set(out) == {"math/1", "math/3", "code/1"}
    assert out["math/3"] == {"invalid": 1.0} and sum(out["math/1"].values()) == pytest.approx(1)


def test_pattern_columns_follow_the_taxonomy_with_invalid_last():
    found = [{"invalid": 0.2, "reflection": 0.1}, {"single+tool": 0.5, "custom": 0.1, "single": 0.1}]
    assert pattern_order(found) == ["single", "single+tool", "reflection", "custom", "invalid"]


def test_stage_length_points_keep_stagewise_arms_sorted_by_k():
    arms = {a: {0: _outcomes([1, 0])} for a in ("k10", "k1", "sim")}
    rows = arm_rows(arms, {}, "k10", {})
    points = stage_length_points(rows, {"k10": 10, "k1": 1, "sim": None})
    assert [(p.arm, p.phase_steps) for p in points] == [("k1", 1), ("k10", 10)]


def test_markdown_and_html_show_every_arm_seed_and_the_swap_summary():
    sft = {s: _outcomes([0, 0, 0, 0]) for s in (0, 1)}
    arms = {"base": {s: _outcomes([1, 1, 0, 0]) for s in (0, 1)}, "k1": {0: _outcomes([1, 0, 0, 0])}}
    rows = arm_rows(arms, {"k1": ["trainer.phase_steps=1"]}, "base", sft)
    result = AblationResult(
        baseline="base",
        seeds=[0, 1],
        rows=rows,
        sft=None,
        swap=swap_rows("base", sft, arms["base"], arms["base"], sft),
        stage_length=stage_length_points(rows, {"base": 10, "k1": 1}),
        missing=["k1/seed1"],
        wall_s=120.0,
    )
    text = ablation_markdown(result)
    assert "| base | (baseline pipeline) | 50.0 | 50.0 |" in text
    assert "| k1 | trainer.phase_steps=1 | 25.0 | - |" in text
    assert "designer gain > 0 (95% CI) in 0 of 2 seeds" in text
    assert "Not finished: k1/seed1" in text and "Wall time: 2.0 min" in text
    html = ablation_html(result)
    assert html.count("<img") == 1  # the stage-length figure; no patterns were recorded
