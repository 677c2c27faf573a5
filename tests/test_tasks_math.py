"""Math answer extraction and equivalence: a table of traps, both directions."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from metaagentx.tasks.base import Task
from metaagentx.tasks.math import extract_answer, is_equivalent, split_top_level

# (prediction, reference, expected, options); every case is also checked with sides swapped.
CASES: list[tuple[str, str, bool, dict]] = [
    ("1000", "1000", True, {}),
    ("999", "1000", False, {}),
    ("1001", "1000", False, {}),
    ("025", "25", True, {}),
    ("007", "7", True, {}),
    ("25", "250", False, {}),
    ("-3", "3", False, {}),
    ("0.5", "\\frac{1}{2}", True, {}),
    ("0.5", "1/2", True, {}),
    ("0.50", "\\frac12", True, {}),
    ("0.333", "\\frac{1}{3}", False, {}),
    ("0.3333", "\\frac{1}{3}", False, {}),
    ("0.1", "\\frac{1}{10}", True, {}),
    ("\\frac{1}{2}", "\\dfrac12", True, {}),
    ("\\tfrac{3}{4}", "\\frac{3}{4}", True, {}),
    ("\\frac{3}{4}", "\\frac{4}{3}", False, {}),
    ("1.0", "1", True, {}),
    ("3.0000000001", "3", False, {}),
    ("\\sqrt{12}", "2\\sqrt{3}", True, {}),
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2", True, {}),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}", False, {}),
    ("\\pi", "3.14159", False, {}),
    ("2\\pi", "\\pi\\cdot 2", True, {}),
    ("2^{10}", "1024", True, {}),
    ("(x+1)^2", "x^2+2x+1", True, {}),
    ("x^2+2x+1", "x^2+2x+2", False, {}),
    ("\\{1,2,3\\}", "\\{3,2,1\\}", True, {}),
    ("\\{1,2\\}", "\\{1,2,3\\}", False, {}),
    ("(1,2)", "(1,2)", True, {}),
    ("(1,2)", "(2,1)", False, {}),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", True, {}),
    ("[1,2)", "[1,2)", True, {}),
    ("[1,2)", "(1,2]", False, {}),
    ("(-\\infty, 0) \\cup \\{1\\}", "(-\\infty,0)\\cup\\{1\\}", True, {}),
    ("[\\frac{1}{2}, 8]", "[0.5,8]", True, {}),
    ("10 cm", "10", True, {}),
    ("10\\text{ cm}", "10", True, {}),
    ("11\\text{ cm}", "10", False, {}),
    ("30\\text{ degrees}", "30", True, {}),
    ("30^\\circ", "30", True, {}),
    ("30^{\\circ}", "60", False, {}),
    ("\\$42", "42", True, {}),
    ("42.", "42", True, {}),
    ("$42$", "42", True, {}),
    ("x=5", "5", True, {}),
    ("1,000", "1000", True, {}),
    ("1{,}000", "1000", True, {}),
    ("\\text{Monday}", "Monday", True, {}),
    ("\\text{Tuesday}", "Monday", False, {}),
    ("-2, 2", "$-2$,$2$", True, {"multiple_answers": True}),
    ("2, -2", "$-2$,$2$", True, {"multiple_answers": True}),
    ("2", "$-2$,$2$", False, {"multiple_answers": True}),
    ("2, 2", "$-2$,$2$", False, {"multiple_answers": True}),
    ("\\{-2, 2\\}", "-2,2", True, {"multiple_answers": True}),
    ("(2,7,13),(4,5,7),(1,8,19)", "(1,8,19), (2,7,13), (4,5,7)", True, {"multiple_answers": True}),
    ("(2,7,13),(1,8,19)", "(1,8,19), (2,7,13), (4,5,7)", False, {"multiple_answers": True}),
    ("\\frac{1}{3}, 1, 9", "$9, \\frac{1}{3}, 1$", True, {"multiple_answers": True}),
    ("\\frac{41}{12} km", "\\frac{41}{12}", True, {"unit": "km"}),
    ("\\frac{41}{12}\\text{ km}", "\\frac{41}{12}", True, {"unit": "km"}),
    ("166 \\mathrm{cm^2}", "166", True, {"unit": "$cm^2$"}),
    ("4.2", "4.2", True, {"tolerance": 0.1}),
    ("4.25", "4.2", True, {"tolerance": 0.1}),
    ("4.4", "4.2", False, {"tolerance": 0.1}),
    ("4.25", "4.2", False, {}),
    ("f(x)=x", "f(x) = x", True, {}),
]


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(("prediction", "reference", "expected", "options"), CASES)
def test_equivalence_both_directions(
    prediction: str, reference: str, expected: bool, options: dict
) -> None:
    assert is_equivalent(prediction, reference, **options) is expected
    assert is_equivalent(reference, prediction, **options) is expected


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{12}. Wait, recheck: \\boxed{13}", "13"),  # last boxed wins
        ("<delivery>\\boxed{5}</delivery> final: \\boxed{6}", "6"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),  # nested braces
        ("\\boxed{\\left\\{1,2\\right\\}}", "\\left\\{1,2\\right\\}"),
        ("\\fbox{7}", "7"),
        ("\\boxed 9", "9"),
        ("Natalia sold 72.\n#### 72", "72"),
        ("The final answer is $5$.", "5"),
        ("Answer: 17", "17"),
        ("I think it's about 40 or so", None),
        ("", None),
    ],
)
def test_extract_answer(text: str, answer: str | None) -> None:
    assert extract_answer(text) == answer


def test_split_top_level_keeps_brackets_together() -> None:
    assert split_top_level("(1,2), (3,4), 5") == ["(1,2)", "(3,4)", "5"]
    assert split_top_level("\\{1,2\\}") == ["\\{1,2\\}"]


def test_none_and_empty_predictions_are_wrong() -> None:
    assert not is_equivalent(None, "1")
    assert not is_equivalent("", "1")
    assert not is_equivalent("   ", "1")


def test_grading_off_the_main_thread_uses_killable_workers() -> None:
    pairs = [
        ("\\frac{\\sqrt2}{2}", "\\sqrt{2}/2", True),
        ("x+1", "x+2", False),
        ("0.5", "1/2", True),
        ("\\{1,2\\}", "\\{2,1\\}", True),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: is_equivalent(p[0], p[1]), pairs))
    assert results == [p[2] for p in pairs]


def test_math_task_grade_and_json_round_trip() -> None:
    task = Task(id="t1", domain="math", prompt="x?", answer="025", metadata={"unit": None})
    again = Task.from_dict(json.loads(json.dumps(task.to_dict())))
    assert again == task
    good = again.grade("first \\boxed{24}, no: \\boxed{25}")
    assert good.correct and good.score == 1.0 and good.details["extracted"] == "25"
    bad = again.grade("\\boxed{26}")
    assert not bad.correct and bad.score == 0.0
    missing = again.grade("no answer here")
    assert not missing.correct and missing.details["reason"] == "no_answer"
    assert again.public_view() == {"id": "t1", "domain": "math", "question": "x?"}


def test_worker_pool_start_launches_every_worker_before_the_first_comparison() -> None:
    from metaagentx.tasks.mathverify_worker import WorkerPool

    pool = WorkerPool(size=2)
    try:
        pool.start()
        procs = [w.proc for w in pool._workers]
        assert all(p is not None and p.poll() is None for p in procs)
        pool.start()  # idempotent: the running workers are kept
        assert [w.proc for w in pool._workers] == procs
        assert pool.verify("\\frac{1}{2}", "0.5") and not pool.verify("x+1", "x+2")
        assert [w.proc for w in pool._workers] == procs  # the comparisons used them
    finally:
        pool.close()
    assert all(w.proc is None for w in pool._workers)
