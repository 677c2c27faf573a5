"""Execution and design rewards against hand-computed values."""

from __future__ import annotations

import itertools

import pytest

from metaagentx.rollout.rewards import (
    PAPER_FORMAT_TERMS,
    RewardConfig,
    count_overlong,
    design_reward,
    execution_reward,
    rejected_design_reward,
)

MATH_CLEAN = "So the sum is 1170.\n<delivery>\\boxed{1170}</delivery>"
MATH_TWO_BOXES = "Either \\boxed{1169} or \\boxed{1170}."
MATH_WITH_CODE = "```python\nprint(1170)\n```\n\\boxed{1170}"
CODE_CLEAN = "<delivery>\n```python\nprint(sum(map(int, input().split())))\n```\n</delivery>"
CODE_TWO_BLOCKS = "```python\nprint(1)\n```\nor\n```python\nprint(2)\n```"
TESTS_3_OF_4 = {"passed": 3, "total": 4}
TESTS_4_OF_4 = {"passed": 4, "total": 4}


def math_reward(correct: bool, text: str = MATH_CLEAN, **kwargs: object) -> float:
    score = 1.0 if correct else 0.0
    status = str(kwargs.pop("status", "ok"))
    return execution_reward(
        status, domain="math", score=score, correct=correct, final_output=text, **kwargs
    ).total  # type: ignore[arg-type]


def test_math_correctness_is_binary() -> None:
    assert math_reward(True) == 1.0
    assert math_reward(False) == 0.0


@pytest.mark.parametrize(
    ("mode", "details", "correct", "expected"),
    [
        ("all_passed", TESTS_3_OF_4, False, 0.0),
        ("all_passed", TESTS_4_OF_4, True, 1.0),
        ("pass_fraction", TESTS_3_OF_4, False, 0.75),
        ("pass_fraction", TESTS_4_OF_4, True, 1.0),
        ("pass_fraction", {"reason": "no_program"}, False, 0.0),  # no counts: the 0/1 verdict
    ],
)
def test_code_reward_modes(mode: str, details: dict, correct: bool, expected: float) -> None:
    reward = execution_reward(
        "ok",
        domain="code",
        score=1.0 if correct else 0.0,
        correct=correct,
        details=details,
        final_output=CODE_CLEAN,
        config=RewardConfig(code_reward=mode),  # type: ignore[arg-type]
    )
    assert reward.total == pytest.approx(expected)
    assert reward.correctness == pytest.approx(expected)


@pytest.mark.parametrize(
    "status", ["timeout", "cut", "runtime_error", "design_error", "limit_exceeded"]
)
def test_unfinished_executions_score_zero_even_with_a_correct_output(status: str) -> None:
    reward = execution_reward(
        status, domain="math", score=1.0, correct=True, final_output=MATH_CLEAN,
        config=PAPER_FORMAT_TERMS,
    )  # fmt: skip
    assert reward.total == 0.0
    assert reward.reason == f"status:{status}"


def test_ungraded_execution_scores_zero() -> None:
    reward = execution_reward("ok", domain="math", score=None, final_output=MATH_CLEAN)
    assert (reward.total, reward.reason) == (0.0, "ungraded")


def test_format_terms_default_to_zero() -> None:
    assert math_reward(True, MATH_WITH_CODE, overlong_turns=3) == 1.0


@pytest.mark.parametrize(
    ("correct", "text", "overlong", "expected"),
    [
        (True, MATH_CLEAN, 0, 1.1),  # clean correct answer: +0.1
        (True, MATH_TWO_BOXES, 0, 1.0),  # two boxed answers: not clean, no bonus
        (True, MATH_WITH_CODE, 0, 0.9),  # stray code block: no bonus and -0.1
        (True, MATH_CLEAN, 2, 1.0),  # +0.1 bonus -0.1 for over-long turns (once)
        (True, MATH_WITH_CODE, 1, 0.8),  # both penalties
        (False, MATH_CLEAN, 0, 0.0),  # a clean wrong answer earns nothing
        (False, MATH_WITH_CODE, 1, 0.0),  # penalised wrong answer floors at 0, not -0.2
    ],
)
def test_paper_format_terms(correct: bool, text: str, overlong: int, expected: float) -> None:
    got = math_reward(correct, text, overlong_turns=overlong, config=PAPER_FORMAT_TERMS)
    assert got == pytest.approx(expected)


def test_code_format_bonus_needs_a_single_program() -> None:
    def reward(text: str) -> float:
        return execution_reward(
            "ok", domain="code", score=1.0, correct=True, details=TESTS_4_OF_4,
            final_output=text, config=PAPER_FORMAT_TERMS,
        ).total  # fmt: skip

    assert reward(CODE_CLEAN) == pytest.approx(1.1)
    assert reward(CODE_TWO_BLOCKS) == pytest.approx(1.0)


def test_bonus_is_never_earned_without_a_correct_answer() -> None:
    config = RewardConfig(format_bonus=0.5)
    outputs = [MATH_CLEAN, MATH_TWO_BOXES, MATH_WITH_CODE, CODE_CLEAN, CODE_TWO_BLOCKS, ""]
    for domain, text, score, mode in itertools.product(
        ("math", "code"), outputs, (0.0, 0.5, 1.0), ("all_passed", "pass_fraction")
    ):
        reward = execution_reward(
            "ok", domain=domain, score=score, correct=False, details=TESTS_3_OF_4,
            final_output=text, config=RewardConfig(format_bonus=0.5, code_reward=mode),  # type: ignore[arg-type]
        )  # fmt: skip
        assert reward.bonus == 0.0
        assert reward.total == reward.correctness <= 1.0
    # a grader that says "correct" with a zero score still pays no bonus
    odd = execution_reward(
        "ok", domain="math", score=0.0, correct=True, final_output=MATH_CLEAN, config=config
    )
    assert odd.total == 0.0


def test_partial_pass_fraction_with_penalty() -> None:
    reward = execution_reward(
        "ok", domain="code", score=0.0, correct=False, details=TESTS_3_OF_4,
        final_output=CODE_CLEAN, overlong_turns=1,
        config=RewardConfig(code_reward="pass_fraction", format_bonus=0.1, overlong_penalty=0.1),
    )  # fmt: skip
    assert reward.total == pytest.approx(0.65)
    assert reward.terms == {"overlong": 0.1}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"format_bonus": -0.1},
        {"overlong_penalty": float("nan")},
        {"overlong_penalty": 0.5, "stray_code_penalty": 0.5},
        {"code_reward": "most_passed"},
    ],
)
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RewardConfig(**kwargs)


def test_design_reward_is_the_mean_over_n() -> None:
    assert design_reward([1.0, 0.0, 1.0, 1.0]) == 0.75
    assert design_reward([1.0, 0.0, 1.0, 1.0], num_executions=4) == 0.75
    # only 3 of N=4 executions reported (one cut and lost): the missing one counts as 0
    assert design_reward([1.0, 1.0, 0.0], num_executions=4) == 0.5
    assert design_reward([], num_executions=4) == 0.0
    assert design_reward([]) == 0.0
    assert rejected_design_reward() == 0.0
    with pytest.raises(ValueError):
        design_reward([1.0, 1.0, 1.0], num_executions=2)
    with pytest.raises(ValueError):
        design_reward([float("nan")])


def test_design_with_partial_failures_and_timeouts_hand_computed() -> None:
    """N=4: correct, wrong, timed out (correct output left behind), correct but one turn
    over-long under the paper's terms: (1.1 + 0 + 0 + 1.0) / 4 = 0.525."""
    config = PAPER_FORMAT_TERMS
    rewards = [
        execution_reward("ok", domain="math", score=1.0, correct=True,
                         final_output=MATH_CLEAN, config=config).total,
        execution_reward("ok", domain="math", score=0.0, correct=False,
                         final_output="\\boxed{7}", config=config).total,
        execution_reward("timeout", domain="math", score=1.0, correct=True,
                         final_output=MATH_CLEAN, config=config).total,
        execution_reward("ok", domain="math", score=1.0, correct=True, final_output=MATH_CLEAN,
                         overlong_turns=count_overlong(["stop", "length", None]),
                         config=config).total,
    ]  # fmt: skip
    assert rewards == pytest.approx([1.1, 0.0, 0.0, 1.0])
    assert design_reward(rewards, num_executions=4) == pytest.approx(0.525)


def test_count_overlong() -> None:
    assert count_overlong(["stop", "length", "length", None]) == 2
    assert count_overlong([]) == 0
