"""Group-relative advantage estimators and the role-aware credit of the hierarchical rollout.

Estimators are pure functions over plain per-sample rewards and hashable group keys, kept in a
registry (verl's `core_algos` style) so a config names one by string. A group with one member has
no baseline and a group whose rewards are all equal carries no signal; both get advantage 0 and
are counted, so the trainer can report how much of a batch taught nothing.

`role_advantages` applies an estimator per role of MetaAgent-X: designs are compared within
their problem (the M designs), executions within their design (the N executions) or within the
problem. Statistics are taken over unique executions and then broadcast to every agent call of
that execution, so an execution that made seven LLM calls weighs the same as one that made one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES

# Rewards closer than this are treated as equal: a group "varies" only by more than float noise.
ZERO_VARIANCE_TOL = 1e-8


@dataclass(frozen=True)
class GroupStats:
    """What the grouping did: how many groups, and how many of them taught nothing."""

    num_samples: int = 0
    num_groups: int = 0
    singleton_groups: int = 0
    zero_variance_groups: int = 0  # groups of >= 2 members whose rewards are all equal
    zeroed_samples: int = 0  # samples in singleton or zero-variance groups


@dataclass(frozen=True)
class AdvantageResult:
    """Per-sample advantages (input order) and the grouping statistics."""

    advantages: list[float]
    stats: GroupStats


AdvantageEstimator = Callable[..., AdvantageResult]
ADVANTAGE_ESTIMATORS: dict[str, AdvantageEstimator] = {}


def register_advantage(name: str) -> Callable[[AdvantageEstimator], AdvantageEstimator]:
    """Register an estimator `fn(rewards, groups, *, eps) -> AdvantageResult` under `name`."""

    def decorator(fn: AdvantageEstimator) -> AdvantageEstimator:
        if name in ADVANTAGE_ESTIMATORS and ADVANTAGE_ESTIMATORS[name] is not fn:
            raise ValueError(f"advantage estimator '{name}' is already registered")
        ADVANTAGE_ESTIMATORS[name] = fn
        return fn

    return decorator


def get_advantage_estimator(name: str) -> AdvantageEstimator:
    """The estimator registered under `name` (ValueError naming the known ones otherwise)."""
    try:
        return ADVANTAGE_ESTIMATORS[name]
    except KeyError:
        known = ", ".join(sorted(ADVANTAGE_ESTIMATORS))
        raise ValueError(f"unknown advantage estimator '{name}'; choose one of {known}") from None


def _grouped(
    rewards: Sequence[float],
    groups: Sequence[Hashable],
    per_group: Callable[[list[float]], list[float]],
) -> AdvantageResult:
    """Split samples by key, apply `per_group` to groups that carry signal, zero the rest."""
    if len(rewards) != len(groups):
        raise ValueError(f"{len(rewards)} rewards but {len(groups)} group keys")
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(groups):
        members.setdefault(key, []).append(i)
    advantages = [0.0] * len(rewards)
    singleton = zero_var = zeroed = 0
    for idx in members.values():
        values = [float(rewards[i]) for i in idx]
        if any(not math.isfinite(v) for v in values):
            raise ValueError(f"non-finite reward in group {values}")
        if len(idx) == 1:
            singleton += 1
            zeroed += 1
            continue
        if max(values) - min(values) <= ZERO_VARIANCE_TOL:
            zero_var += 1
            zeroed += len(idx)
            continue
        for i, adv in zip(idx, per_group(values), strict=True):
            advantages[i] = adv
    stats = GroupStats(len(rewards), len(members), singleton, zero_var, zeroed)
    return AdvantageResult(advantages, stats)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


@register_advantage("grpo")
def grpo(
    rewards: Sequence[float], groups: Sequence[Hashable], *, eps: float = 1e-6
) -> AdvantageResult:
    """GRPO: (r - group mean) / (group std + eps), std with Bessel's correction as in verl/TRL."""

    def per_group(values: list[float]) -> list[float]:
        mean = _mean(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        return [(v - mean) / (std + eps) for v in values]

    return _grouped(rewards, groups, per_group)


@register_advantage("grpo_mean_only")
def grpo_mean_only(
    rewards: Sequence[float], groups: Sequence[Hashable], *, eps: float = 1e-6
) -> AdvantageResult:
    """Dr.GRPO: r - group mean, no std division (which up-weights near-uniform groups)."""
    del eps  # same signature as every estimator; nothing to divide here

    def per_group(values: list[float]) -> list[float]:
        mean = _mean(values)
        return [v - mean for v in values]

    return _grouped(rewards, groups, per_group)


@register_advantage("rloo")
def rloo(
    rewards: Sequence[float], groups: Sequence[Hashable], *, eps: float = 1e-6
) -> AdvantageResult:
    """REINFORCE leave-one-out: r_i - mean of the other members' rewards (an unbiased baseline)."""
    del eps

    def per_group(values: list[float]) -> list[float]:
        total, n = math.fsum(values), len(values)
        return [v - (total - v) / (n - 1) for v in values]

    return _grouped(rewards, groups, per_group)


class CreditRecord(Protocol):
    """What credit assignment needs of a trajectory (a rollout `Trajectory` satisfies it)."""

    @property
    def role(self) -> str: ...
    @property
    def problem_id(self) -> Hashable: ...
    @property
    def design_id(self) -> Hashable: ...
    @property
    def execution_id(self) -> Hashable: ...
    @property
    def reward(self) -> float: ...


@dataclass(frozen=True)
class RewardRecord:
    """A plain `CreditRecord`, for callers that do not hold trajectory objects."""

    role: str
    problem_id: Hashable
    design_id: Hashable
    execution_id: Hashable
    reward: float


ExecutorGrouping = Literal["design", "problem"]


@dataclass(frozen=True)
class RoleAdvantages:
    """Advantages per input record (input order) and grouping statistics per role."""

    advantages: list[float]
    stats: Mapping[str, GroupStats] = field(default_factory=dict)


def role_advantages(
    records: Sequence[CreditRecord],
    *,
    estimator: str = "grpo",
    executor_grouping: ExecutorGrouping = "design",
    eps: float = 1e-6,
) -> RoleAdvantages:
    """Role-aware group-relative advantages for designer and executor records.

    A designer record's unit is its design, compared within its problem. An executor record's
    unit is its execution, compared within its design (`executor_grouping="design"`) or its
    problem (`"problem"`). Each unit counts once in its group however many records (agent calls)
    it has, and every record receives its unit's advantage. Records of one unit must agree on
    the reward.
    """
    if executor_grouping not in ("design", "problem"):
        raise ValueError(
            f"executor_grouping must be 'design' or 'problem', not {executor_grouping!r}"
        )
    fn = get_advantage_estimator(estimator)
    units: dict[str, dict[tuple[Hashable, ...], tuple[Hashable, float]]] = {r: {} for r in ROLES}
    record_unit: list[tuple[str, tuple[Hashable, ...]]] = []
    for rec in records:
        role, reward = rec.role, float(rec.reward)
        if role == DESIGNER:
            unit: tuple[Hashable, ...] = (rec.problem_id, rec.design_id)
            group: Hashable = rec.problem_id
        elif role == EXECUTOR:
            unit = (rec.problem_id, rec.design_id, rec.execution_id)
            group = unit[:2] if executor_grouping == "design" else rec.problem_id
        else:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        seen = units[role].setdefault(unit, (group, reward))
        if seen[1] != reward:
            raise ValueError(f"{role} unit {unit} has conflicting rewards {seen[1]} and {reward}")
        record_unit.append((role, unit))

    unit_advantage: dict[tuple[str, tuple[Hashable, ...]], float] = {}
    stats: dict[str, GroupStats] = {}
    for role, role_units in units.items():
        keys = list(role_units)
        result = fn([role_units[k][1] for k in keys], [role_units[k][0] for k in keys], eps=eps)
        unit_advantage.update(zip(((role, k) for k in keys), result.advantages, strict=True))
        stats[role] = result.stats
    return RoleAdvantages([unit_advantage[ru] for ru in record_unit], stats)
