"""MATH reference answers against themselves re-spaced, and against value-changing edits.

Uses the shared data folder's MATH-500 and MATH-train copies (see their SOURCE.txt; found by
`data_dir()`: $METAAGENTX_DATA_DIR or shared/data beside the checkout); skipped where absent.
Before the exact grader, 7 of MATH-500's matrix answers failed against themselves written without
spaces and a reordered vector passed.
"""

from __future__ import annotations

import json
import re

import pytest

from metaagentx.tasks.datasets import data_dir
from metaagentx.tasks.math import is_equivalent


def _answers(name: str) -> list[str]:
    root = data_dir()
    path = root / name / "math.json" if root is not None else None
    if path is None or not path.is_file():
        pytest.skip(f"{name}/math.json not in the shared data folder")
    return [row["answer"] for row in json.loads(path.read_text()) if (row["answer"] or "").strip()]


def _without_spaces(answer: str) -> str:
    """Every space dropped but one ending a command before a letter (`\\pi r`)."""
    return re.sub(r"(?<![A-Za-z])\s+|(?<=[A-Za-z])\s+(?![A-Za-z])", "", answer)


def _with_spaces(answer: str) -> str:
    answer = re.sub(r",(?!\s)", ", ", answer)
    return re.sub(r"(?<=\S)([=+&])(?=\S)", r" \1 ", answer).replace("\\\\", " \\\\ ")


def _reversed_column(answer: str) -> str | None:
    match = re.fullmatch(r"\\begin\{pmatrix\}(.*)\\end\{pmatrix\}", answer.strip(), re.DOTALL)
    if match is None or "&" in match.group(1):
        return None
    rows = [row.strip() for row in match.group(1).split("\\\\")]
    if rows == rows[::-1]:
        return None
    return "\\begin{pmatrix}" + " \\\\ ".join(reversed(rows)) + "\\end{pmatrix}"


def test_math500_answers_equal_themselves_respaced() -> None:
    answers = _answers("math500")
    wrong = [
        (a, b)
        for a in answers
        for b in {_without_spaces(a), _with_spaces(a)}
        if not is_equivalent(b, a)
    ]
    assert wrong == []


def test_math_matrix_answers_equal_themselves_unspaced_and_not_reordered() -> None:
    matrices = [a for a in _answers("math_train") + _answers("math500") if "pmatrix" in a]
    assert len(matrices) >= 100
    assert [a for a in matrices if not is_equivalent(_without_spaces(a), a)] == []
    reordered = [(r, a) for a in matrices if (r := _reversed_column(a)) is not None]
    assert len(reordered) >= 50
    assert [(r, a) for r, a in reordered if is_equivalent(r, a)] == []


def test_math500_answers_with_a_primed_symbol_are_wrong() -> None:
    primed = [
        (a[: m.end()] + "'" + a[m.end() :], a)
        for a in _answers("math500")
        if (m := re.search(r"(?<![\\A-Za-z])[a-zA-Z](?![A-Za-z{])", a))
    ]
    assert len(primed) >= 20
    assert [(p, a) for p, a in primed if is_equivalent(p, a)] == []
