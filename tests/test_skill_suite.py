"""The skill suite (`synthetic:skill`, issue 19): what its levels promise, that the programmatic
teacher solves every member, and that its training config loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metaagentx.config import load_config
from metaagentx.sft.problems import parse_problem
from metaagentx.tasks import load_tasks
from metaagentx.tasks.errors import DatasetError
from metaagentx.tasks.synthetic import FAMILIES, SUITES, generate

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "miniature" / "base.yaml"
SKILL = SUITES["skill"]


def _prompts(name: str, split: str, seed: int = 0, limit: int = 40) -> list[str]:
    return [t.prompt for t in load_tasks(name, split, limit=limit, seed=seed)]


def test_suites_are_made_of_known_levels_and_the_halves_make_the_whole() -> None:
    for pairs in SUITES.values():
        assert all(level in FAMILIES[family][1] for family, level in pairs)
    assert set(SUITES["skill_math"]) | set(SUITES["skill_code"]) == set(SKILL)
    assert {FAMILIES[f][0] for f, _ in SUITES["skill_math"]} == {"math"}
    assert {FAMILIES[f][0] for f, _ in SUITES["skill_code"]} == {"code"}


def test_suite_is_deterministic_and_seeded() -> None:
    assert _prompts("synthetic:skill", "train") == _prompts("synthetic:skill", "train")
    assert _prompts("synthetic:skill", "train") != _prompts("synthetic:skill", "train", seed=1)


def test_suite_mixes_its_levels_in_equal_shares() -> None:
    tasks = load_tasks("synthetic:skill", "test", limit=40)
    shares = {
        pair: sum((t.metadata["family"], t.metadata["level"]) == pair for t in tasks)
        for pair in SKILL
    }
    assert shares == dict.fromkeys(SKILL, 10)
    assert {t.domain for t in tasks} == {"math", "code"}


def test_train_and_test_are_disjoint() -> None:
    train = set(_prompts("synthetic:skill", "train", limit=400))
    test = set(_prompts("synthetic:skill", "test", limit=400))
    assert len(train) == len(test) == 400 and not train & test


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def test_levels_have_the_lengths_the_docstring_promises() -> None:
    for task in generate("arith", 50, level=2):  # short copy: 3 numbers of 1-3 digits
        numbers = _numbers(task.prompt)
        assert len(numbers) == 3 and all(len(n) <= 3 for n in numbers)
    for task in generate("arith", 50, level=4):  # long copy: 4-5 numbers of 3-5 digits
        numbers = _numbers(task.prompt)
        assert len(numbers) in (4, 5) and all(3 <= len(n) <= 5 for n in numbers)
        assert sum(map(len, numbers)) >= 12
    for task in generate("code_fn", 50, level=3):  # long constants inside the program
        constants = _numbers(task.prompt)
        assert constants and all(3 <= len(c) <= 5 for c in constants)
        assert all(c in task.metadata["reference_solution"] for c in constants)
    for task in generate("code_fn", 50, level=1):
        assert all(len(c) <= 2 for c in _numbers(task.prompt))


@pytest.mark.parametrize(("family", "level"), SKILL)
def test_teacher_solves_every_member_exactly(family: str, level: int) -> None:
    """The teacher's reading of the prompt (what it copies with slip 0) is the task's answer."""
    for task in generate(family, 30, level=level, split="test"):
        problem = parse_problem(task.prompt)
        assert problem.domain == task.domain
        if task.domain == "math":
            assert problem.answer == task.answer
        else:
            assert problem.answer == task.metadata["reference_solution"]


def test_teacher_programs_pass_the_long_constant_tests() -> None:
    pytest.importorskip("metaagentx.sandbox.programs", reason="sandbox not available")
    for task in generate("code_fn", 5, level=3, split="test"):
        program = parse_problem(task.prompt).answer
        assert task.grade(f"```python\n{program}```").correct, task.prompt
        slipped = program.replace(_numbers(task.prompt)[0], "1" + _numbers(task.prompt)[0], 1)
        assert not task.grade(f"```python\n{slipped}```").correct, task.prompt


def test_suite_names_and_errors() -> None:
    assert {t.domain for t in load_tasks("synthetic:skill_code", "test", limit=6)} == {"code"}
    assert {t.domain for t in load_tasks("synthetic:skill_math", "test", limit=6)} == {"math"}
    with pytest.raises(DatasetError, match="did you mean 'skill'"):
        load_tasks("synthetic:skil", "test", limit=2)


def test_miniature_config_loads_and_leaves_room_for_both_roles() -> None:
    config = load_config(CONFIG)
    assert config.data.train == ["synthetic:skill"]
    assert {name.split(":", 1)[1] for name in config.eval.benchmarks} == {
        f"{family}:{level}" for family, level in SKILL
    }
    math_mix = config.sft.teacher_mix["math"]
    assert math_mix["single"] > 0  # a weak design mix: the designer's room
    assert config.trainer.steps == 30 and config.trainer.schedule == "stagewise"
