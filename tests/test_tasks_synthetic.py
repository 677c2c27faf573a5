"""The synthetic suite: deterministic, disjoint splits, correct references."""

from __future__ import annotations

import ast
import operator

import pytest

from metaagentx.tasks.datasets import load_tasks
from metaagentx.tasks.synthetic import FAMILIES, generate, synthetic_suite


def _independent_value(expression: str) -> int:
    """Evaluate + - * through Python's own parser (not the generator's evaluator)."""
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise ValueError(f"unexpected node {node!r}")

    return walk(ast.parse(expression, mode="eval").body)


ALL_LEVELS = [(f, lv) for f, (_, levels) in FAMILIES.items() for lv in levels]


@pytest.mark.parametrize(("family", "level"), ALL_LEVELS)
def test_deterministic_for_a_seed(family: str, level: int) -> None:
    a = generate(family, 30, level=level, seed=3)
    b = generate(family, 30, level=level, seed=3)
    c = generate(family, 30, level=level, seed=4)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    assert [t.prompt for t in a] != [t.prompt for t in c]


@pytest.mark.parametrize(("family", "level"), ALL_LEVELS)
def test_train_and_heldout_never_overlap(family: str, level: int) -> None:
    train = {t.prompt for seed in (0, 1) for t in generate(family, 300, level=level, seed=seed)}
    held = {t.prompt for t in generate(family, 100, level=level, split="test")}
    assert held and not train & held


@pytest.mark.parametrize(("family", "level"), [(f, lv) for f, lv in ALL_LEVELS if f != "code_fn"])
def test_math_answers_are_correct(family: str, level: int) -> None:
    for task in generate(family, 50, level=level, split="test"):
        value = _independent_value(task.metadata["expression"])
        assert task.answer == str(value)
        assert task.grade(f"The tool printed {value}. \\boxed{{{value}}}").correct
        assert not task.grade(f"\\boxed{{{value + 1}}}").correct


def test_arith_levels_match_the_quickstart_spec() -> None:
    for task in generate("arith", 100, level=3):
        numbers = [n for n in _split_numbers(task.metadata["expression"])]
        assert 3 <= len(numbers) <= 4 and all(2 <= len(n) <= 4 for n in numbers)
        assert len(task.prompt) < 40


def _split_numbers(expression: str) -> list[str]:
    for op in "+-*":
        expression = expression.replace(op, " ")
    return expression.split()


def test_code_tasks_have_public_and_hidden_tests() -> None:
    for level in FAMILIES["code_fn"][1]:
        for task in generate("code_fn", 40, level=level):
            assert len(task.public_tests) == 1 and len(task.hidden_tests) >= 1
            assert task.public_view()["public_tests"][0]["fn_name"] == "f"


def test_code_reference_solutions_pass_through_the_sandbox() -> None:
    pytest.importorskip("metaagentx.sandbox.programs", reason="sandbox not available")
    tasks = [
        task for level in FAMILIES["code_fn"][1] for task in generate("code_fn", 6, level=level)
    ]
    for task in tasks:
        reference = task.metadata["reference_solution"]
        assert task.grade(f"```python\n{reference}```").correct, task.prompt
        wrong = (
            reference.replace("return ", "return 1 + ", 1)
            if "x[::-1]" not in reference
            else reference.replace("x[::-1]", "x")
        )
        assert not task.grade(
            f"```python\n{wrong}```", stop_at_first_failure=False
        ).correct or task.prompt.endswith("reversed.")


def test_suite_and_loader_names() -> None:
    suite = synthetic_suite(2, seed=1)
    assert len(suite) == 2 * len(ALL_LEVELS)
    assert {t.metadata["family"] for t in suite} == set(FAMILIES)
    assert len(load_tasks("synthetic", limit=20)) == 20
    assert {t.metadata["level"] for t in load_tasks("synthetic:arith:4", limit=5)} == {4}
    assert all(t.domain == "code" for t in load_tasks("synthetic:code_fn", "test", limit=9))
    with pytest.raises(ValueError):
        generate("nope", 1)
