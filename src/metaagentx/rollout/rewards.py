"""Rewards of executions and designs (pure functions; no I/O, no model, no sandbox).

Rules, each with its reason:
- Only an execution that finished ("ok") and was graded earns anything. Timeouts, cuts by the
  straggler deadline, crashes and tripped limits score 0 whatever partial output they left:
  the design is a whole program, and grading half-finished runs would reward scripts that
  crash after printing a lucky guess. A design that fails deterministically makes all N
  executions 0, so the executor's group advantage is 0 there: agents are not blamed for it.
- Correctness is the task's own score: math 0/1; code 0/1 when all tests pass (the paper),
  or the fraction of tests passed ("pass_fraction") for a denser signal on hard problems.
- Format terms default to 0 (the paper's code uses 0.1). A bonus is added only on a correct
  answer, so it can never be earned without solving the task. Penalties (over-long turns, a
  stray code block in a final math answer) are subtracted, and the result is floored at 0:
  a penalised wrong answer must not score below a crashed run, or failing would pay. Their
  sum is capped below 1 so a correct answer always beats a wrong one.
- A design's reward is the mean of its N execution rewards with the denominator N fixed in
  advance: executions that were never run or never reported (cut, lost) count as 0 rather
  than shrinking the mean, so a flaky design cannot look better by losing its failures.
- A rejected design (static check failed, never executed) scores 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from metaagentx.mas.text import extract_code_blocks, visible_text

CodeReward = Literal["all_passed", "pass_fraction"]
_BOXED = re.compile(r"\\boxed\s*\{")
_FENCE = re.compile(r"```")


@dataclass(frozen=True)
class RewardConfig:
    """Reward shaping knobs; every format term defaults to 0 (pure correctness).

    code_reward: "all_passed" (0/1, the paper) or "pass_fraction" (passed / total; needs the
        grader to run every test, i.e. `stop_at_first_failure=False`).
    format_bonus: added to a correct answer given cleanly: math, exactly one `\\boxed{}` and
        no code block; code, exactly one python block.
    overlong_penalty: subtracted once when any agent turn hit its token cap (cut mid-reply).
    stray_code_penalty: subtracted when a final math answer contains a fenced code block.
    """

    code_reward: CodeReward = "all_passed"
    format_bonus: float = 0.0
    overlong_penalty: float = 0.0
    stray_code_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.code_reward not in ("all_passed", "pass_fraction"):
            raise ValueError(f"code_reward must be all_passed or pass_fraction: {self.code_reward}")
        terms = (self.format_bonus, self.overlong_penalty, self.stray_code_penalty)
        if any(not math.isfinite(t) or t < 0 for t in terms):
            raise ValueError("format terms must be finite and >= 0 (penalties are subtracted)")
        if self.overlong_penalty + self.stray_code_penalty >= 1.0:
            raise ValueError("penalties must sum to < 1 so a correct answer beats a wrong one")


PAPER_FORMAT_TERMS = RewardConfig(format_bonus=0.1, overlong_penalty=0.1, stray_code_penalty=0.1)


@dataclass(frozen=True)
class ExecutionReward:
    """One execution's reward and how it was made (for metrics and debugging)."""

    total: float
    correctness: float = 0.0
    bonus: float = 0.0
    penalty: float = 0.0
    reason: str = "graded"  # "graded", or why nothing was earned: "status:<status>", "ungraded"
    terms: dict[str, float] = field(default_factory=dict)


def correctness_score(
    domain: str, score: float, correct: bool, details: Mapping[str, Any] | None = None,
    config: RewardConfig | None = None,
) -> float:  # fmt: skip
    """The correctness part of the reward, in [0, 1]."""
    config = config or RewardConfig()
    if domain == "code" and config.code_reward == "pass_fraction":
        details = details or {}
        passed, total = details.get("passed"), details.get("total")
        if isinstance(passed, int) and isinstance(total, int) and total > 0:
            return min(max(passed / total, 0.0), 1.0)
        return 1.0 if correct else 0.0
    if domain == "code":
        return 1.0 if correct else 0.0
    return min(max(float(score), 0.0), 1.0) if math.isfinite(score) else 0.0


def execution_reward(
    status: str,
    *,
    domain: str,
    score: float | None = None,
    correct: bool = False,
    details: Mapping[str, Any] | None = None,
    final_output: str | None = None,
    overlong_turns: int = 0,
    config: RewardConfig | None = None,
) -> ExecutionReward:
    """Reward of one execution from its status, its grade (`score`/`correct`/`details` of a
    `tasks.Grade`; `score=None` means it was not graded) and its final reply."""
    config = config or RewardConfig()
    if status != "ok":
        return ExecutionReward(0.0, reason=f"status:{status}")
    if score is None:
        return ExecutionReward(0.0, reason="ungraded")
    base = correctness_score(domain, score, correct, details, config)
    text = visible_text(final_output or "")
    earned = correct and base > 0.0  # a bonus needs a solved task, whatever the flags say
    bonus = config.format_bonus if earned and _clean_answer(domain, text) else 0.0
    terms: dict[str, float] = {}
    if config.overlong_penalty and overlong_turns > 0:
        terms["overlong"] = config.overlong_penalty
    if config.stray_code_penalty and domain == "math" and _FENCE.search(text):
        terms["stray_code"] = config.stray_code_penalty
    penalty = sum(terms.values())
    if bonus:
        terms["format_bonus"] = bonus
    total = max(0.0, base + bonus - penalty)
    return ExecutionReward(total, base, bonus, penalty, "graded", terms)


def design_reward(execution_rewards: Sequence[float], num_executions: int | None = None) -> float:
    """Mean of a design's execution rewards over `num_executions` (default: as many as given);
    missing executions count as 0. An empty design (rejected, never run) scores 0."""
    n = len(execution_rewards) if num_executions is None else num_executions
    if len(execution_rewards) > n:
        raise ValueError(f"{len(execution_rewards)} execution rewards for N={n}")
    if n <= 0:
        return 0.0
    if any(not math.isfinite(r) for r in execution_rewards):
        raise ValueError(f"non-finite execution reward in {list(execution_rewards)}")
    return sum(execution_rewards) / n


def count_overlong(finish_reasons: Iterable[str | None]) -> int:
    """How many agent turns were cut by their token cap (finish reason "length")."""
    return sum(1 for reason in finish_reasons if reason == "length")


def rejected_design_reward() -> float:
    """A design that failed the static check is never executed and earns nothing."""
    return 0.0


def _clean_answer(domain: str, text: str) -> bool:
    if domain == "code":
        return len(extract_code_blocks(text)) == 1
    return len(_BOXED.findall(text)) == 1 and not _FENCE.search(text)


__all__ = [
    "PAPER_FORMAT_TERMS",
    "CodeReward",
    "ExecutionReward",
    "RewardConfig",
    "correctness_score",
    "count_overlong",
    "design_reward",
    "execution_reward",
    "rejected_design_reward",
]
