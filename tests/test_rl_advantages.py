"""Advantage estimators and role-aware credit against hand-computed values."""

from __future__ import annotations

import math

import pytest

from metaagentx.rl.advantages import (
    ADVANTAGE_ESTIMATORS,
    GroupStats,
    RewardRecord,
    get_advantage_estimator,
    grpo,
    grpo_mean_only,
    register_advantage,
    rloo,
    role_advantages,
)

# group a varies (mean 0.5, Bessel std 0.5), b is zero-variance, c is a singleton
REWARDS = [1.0, 0.0, 0.5, 0.2, 0.2, 3.0]
GROUPS = ["a", "a", "a", "b", "b", "c"]
EXPECTED_STATS = GroupStats(
    num_samples=6, num_groups=3, singleton_groups=1, zero_variance_groups=1, zeroed_samples=3
)


def test_grpo_hand_values():
    res = grpo(REWARDS, GROUPS, eps=0.0)
    assert res.advantages == pytest.approx([1.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    assert res.stats == EXPECTED_STATS


def test_grpo_eps_in_denominator():
    res = grpo([1.0, 0.0], ["g", "g"], eps=0.1)
    std = math.sqrt(0.5)
    assert res.advantages == pytest.approx([0.5 / (std + 0.1), -0.5 / (std + 0.1)])


def test_grpo_mean_only_hand_values():
    res = grpo_mean_only(REWARDS, GROUPS)
    assert res.advantages == pytest.approx([0.5, -0.5, 0.0, 0.0, 0.0, 0.0])
    assert res.stats == EXPECTED_STATS


def test_rloo_hand_values():
    res = rloo(REWARDS, GROUPS)
    # 1 - (0 + .5)/2, 0 - (1 + .5)/2, .5 - (1 + 0)/2
    assert res.advantages == pytest.approx([0.75, -0.75, 0.0, 0.0, 0.0, 0.0])
    assert res.stats == EXPECTED_STATS


def test_zero_variance_tolerates_float_noise():
    res = grpo([0.1 + 0.2, 0.3], ["g", "g"])
    assert res.advantages == [0.0, 0.0]
    assert res.stats.zero_variance_groups == 1


def test_registry():
    assert {"grpo", "grpo_mean_only", "rloo"} <= set(ADVANTAGE_ESTIMATORS)
    assert get_advantage_estimator("rloo") is rloo
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        get_advantage_estimator("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_advantage("grpo")(rloo)


def test_length_mismatch_and_nonfinite_rejected():
    with pytest.raises(ValueError):
        grpo([1.0, 0.0], ["g"])
    with pytest.raises(ValueError, match="non-finite"):
        grpo([1.0, float("nan")], ["g", "g"])


def _tree(calls: dict[str, int]) -> list[RewardRecord]:
    """Problem p1: designs d1 (executions e1=1, e2=0) and d2 (e3=1, e4=1); p2: one design d3.

    `calls` says how many agent calls (executor records) each execution made.
    """
    exec_reward = {"e1": 1.0, "e2": 0.0, "e3": 1.0, "e4": 1.0, "e5": 0.0}
    exec_design = {"e1": "d1", "e2": "d1", "e3": "d2", "e4": "d2", "e5": "d3"}
    problem = {"d1": "p1", "d2": "p1", "d3": "p2"}
    recs = [
        RewardRecord("designer", "p1", "d1", None, 0.5),
        RewardRecord("designer", "p1", "d2", None, 1.0),
        RewardRecord("designer", "p2", "d3", None, 0.0),
    ]
    for e, n in calls.items():
        d = exec_design[e]
        recs += [RewardRecord("executor", problem[d], d, e, exec_reward[e])] * n
    return recs


ONE_CALL = {"e1": 1, "e2": 1, "e3": 1, "e4": 1, "e5": 1}
MANY_CALLS = {"e1": 3, "e2": 1, "e3": 1, "e4": 2, "e5": 4}


def _by_unit(recs, advantages):
    out = {}
    for r, a in zip(recs, advantages, strict=True):
        key = r.design_id if r.role == "designer" else r.execution_id
        assert out.setdefault(key, a) == a  # every call of one execution shares its advantage
    return out


def test_role_advantages_within_design():
    recs = _tree(MANY_CALLS)
    res = role_advantages(recs, estimator="grpo", executor_grouping="design", eps=0.0)
    s = 1 / math.sqrt(2)
    # designers of p1: [0.5, 1.0], mean .75, std .3536 -> -/+ .7071; p2 is a singleton
    # d1 executions [1, 0] -> +/- .7071; d2 [1, 1] zero variance; d3 singleton
    assert _by_unit(recs, res.advantages) == pytest.approx(
        {"d1": -s, "d2": s, "d3": 0.0, "e1": s, "e2": -s, "e3": 0.0, "e4": 0.0, "e5": 0.0}
    )
    assert res.stats["designer"] == GroupStats(3, 2, 1, 0, 1)
    assert res.stats["executor"] == GroupStats(5, 3, 1, 1, 3)


def test_role_advantages_within_problem():
    recs = _tree(MANY_CALLS)
    res = role_advantages(recs, estimator="grpo", executor_grouping="problem", eps=0.0)
    # p1 executions [1, 0, 1, 1]: mean .75, Bessel var (3*.0625 + .5625)/3 = .25, std .5
    units = _by_unit(recs, res.advantages)
    assert [units[e] for e in ("e1", "e2", "e3", "e4", "e5")] == pytest.approx(
        [0.5, -1.5, 0.5, 0.5, 0.0]
    )
    assert res.stats["executor"] == GroupStats(5, 2, 1, 0, 1)


@pytest.mark.parametrize("estimator", ["grpo", "grpo_mean_only", "rloo"])
@pytest.mark.parametrize("grouping", ["design", "problem"])
def test_call_counts_do_not_weight_groups(estimator, grouping):
    one = _tree(ONE_CALL)
    many = _tree(MANY_CALLS)
    a1 = role_advantages(one, estimator=estimator, executor_grouping=grouping)
    a2 = role_advantages(many, estimator=estimator, executor_grouping=grouping)
    assert _by_unit(many, a2.advantages) == pytest.approx(_by_unit(one, a1.advantages))
    assert a1.stats == a2.stats


def test_role_advantages_keeps_input_order_and_rejects_bad_records():
    recs = _tree(ONE_CALL)[::-1]
    res = role_advantages(recs, estimator="grpo_mean_only")
    assert res.advantages == pytest.approx([0.0, 0.0, 0.0, -0.5, 0.5, 0.0, 0.25, -0.25])
    with pytest.raises(ValueError, match="conflicting rewards"):
        role_advantages([*recs, RewardRecord("executor", "p1", "d1", "e1", 0.0)])
    with pytest.raises(ValueError, match="unknown role"):
        role_advantages([RewardRecord("critic", "p1", "d1", None, 0.0)])
    with pytest.raises(ValueError, match="executor_grouping"):
        role_advantages(recs, executor_grouping="batch")  # type: ignore[arg-type]
