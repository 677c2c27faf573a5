"""Math benchmark rows -> `Task`: AIME, MATH, OlympiadBench, verl GSM8K, and generic rows.

Quirks of the shared data files (see each SOURCE.txt) are repaired here: AIME 2025 escape damage,
zero-padded AIME answers, empty MATH answers, OlympiadBench answer lists/units/tolerances. Rows
of no known benchmark that still hold a problem and an answer or solution (Hugging Face GSM8K,
MATH with `solution` only, one's own data) are read by `generic_math_row`.
"""

from __future__ import annotations

import re
from typing import Any

from metaagentx.tasks.base import Task
from metaagentx.tasks.code_rows import Row, chat_text
from metaagentx.tasks.errors import MalformedRow
from metaagentx.tasks.math import extract_answer

_ESCAPE_DAMAGE = (
    ("\x0c", "\\f"),  # "\frac" read as form-feed + "rac"
    ("\x08", "\\b"),  # "\boxed", "\binom", "\beta"
    ("\x07", "\\a"),  # "\alpha"
    ("\x0b", "\\v"),  # "\vec"
)
_TAB_COMMANDS = ("triangle", "times", "text", "theta", "tan", "tfrac", "tau", "to")
_CR_COMMANDS = ("right", "rho", "rangle", "rfloor", "rceil")


def repair_escape_damage(text: str) -> str:
    """Undo JSON-escaping damage where `\\f`, `\\t`, `\\b`, `\\r` became control characters."""
    for bad, good in _ESCAPE_DAMAGE:
        text = text.replace(bad, good)
    text = re.sub("\t(?=(?:" + "|".join(c[1:] for c in _TAB_COMMANDS) + r")\b)", r"\\t", text)
    return re.sub("\r(?=(?:" + "|".join(c[1:] for c in _CR_COMMANDS) + r")\b)", r"\\r", text)


def _answer_text(value: Any) -> str:
    if value is None:
        raise MalformedRow("missing answer")
    if isinstance(value, list):
        parts = [str(v).strip() for v in value if str(v).strip()]
        text = ", ".join(parts)
    else:
        text = str(value).strip()
    if not text:
        raise MalformedRow("empty answer")
    return text


def _math_task(task_id: str, problem: Any, answer: Any, source: str, **extra: Any) -> Task:
    if not isinstance(problem, str) or not problem.strip():
        raise MalformedRow("empty problem")
    metadata = {k: v for k, v in extra.pop("metadata", {}).items() if v is not None}
    return Task(
        id=task_id,
        domain="math",
        prompt=repair_escape_damage(problem.strip()),
        answer=_answer_text(answer),
        source=source,
        metadata=metadata,
        **extra,
    )


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def aime_row(row: Row, index: int, source: str) -> Task:
    """rllm AIME json (problem/answer/year/...) and AReaL AIME jsonl (problem/answer/id)."""
    if "year" in row:
        parts = [row.get("year"), row.get("aime_number"), row.get("problem_number")]
        task_id = "-".join(str(p) for p in parts if p not in (None, "")) or str(index)
    else:
        task_id = str(row.get("id", index))
    return _math_task(
        f"{source}/{task_id}",
        row.get("problem"),
        row.get("answer"),
        source,
        difficulty=_float_or_none(row.get("difficulty")),
    )


def math_row(row: Row, index: int, source: str) -> Task:
    """MATH / MATH-500 (problem/answer/difficulty, unique_id or type)."""
    task_id = row.get("unique_id") or str(index)
    return _math_task(
        f"{source}/{task_id}",
        row.get("problem"),
        row.get("answer"),
        source,
        difficulty=_float_or_none(row.get("difficulty")),
        metadata={"subject": row.get("type") or row.get("subject")},
    )


def olympiad_row(row: Row, index: int, source: str) -> Task:
    """OlympiadBench: answer list, is_multiple_answer, unit, error (a stated tolerance)."""
    context = row.get("context")
    problem = row.get("problem") or row.get("question")
    if context and str(context) != "None" and isinstance(problem, str):
        problem = f"{context}\n\n{problem}"
    unit = row.get("unit")
    tolerance = _float_or_none(row.get("error"))
    return _math_task(
        f"{source}/{row.get('id', index)}",
        problem,
        row.get("answer") or row.get("final_answer"),
        source,
        difficulty=row.get("subfield"),
        metadata={
            "multiple_answers": bool(row.get("is_multiple_answer")) or None,
            "unit": unit if unit and str(unit) != "None" else None,
            "tolerance": tolerance,
            "answer_type": row.get("answer_type"),
        },
    )


def gsm8k_verl_row(row: Row, index: int, source: str) -> Task:
    """verl GSM8K parquet: the plain question is in extra_info, the answer in reward_model."""
    extra = row.get("extra_info") or {}
    question = extra.get("question") or chat_text(row.get("prompt"))
    answer = (row.get("reward_model") or {}).get("ground_truth")
    return _math_task(f"{source}/{extra.get('index', index)}", question, answer, source)


SHORT_SOLUTION_CHARS = 64  # a solution without a boxed or "####" answer is the answer if this short
PROMPT_FIELDS = ("prompt", "question", "problem")
CODE_FIELDS = ("tests", "test", "test_list", "input_output", "entry_point")


def _reference(row: Row) -> Any:
    """The reference answer: `answer` (its "#### N" or boxed part if any, else all of it), else
    the last boxed / "####" answer of `solution`, else a short `solution` itself. The same
    `extract_answer` that grades outputs reads them, so both sides agree."""
    answer = row.get("answer")
    if answer not in (None, ""):
        return (extract_answer(answer) or answer) if isinstance(answer, str) else answer
    solution = row.get("solution")
    if not isinstance(solution, str) or not solution.strip():
        raise MalformedRow("no answer and no solution")
    found = extract_answer(solution)
    if found:
        return found
    if len(solution.strip()) <= SHORT_SOLUTION_CHARS:
        return solution
    raise MalformedRow(
        "the solution has no \\boxed{} or '####' final answer; map the answer column "
        "with data.fields (e.g. data.fields={answer: final_answer})"
    )


def generic_math_row(row: Row, index: int, source: str) -> Task:
    """Any {prompt|question|problem, answer|solution} row: GSM8K's "... #### 42" answers,
    MATH's `\\boxed{}` solutions, one's own question/answer pairs. Code rows are refused."""
    code_fields = sorted(set(row) & set(CODE_FIELDS))
    if code_fields:
        raise MalformedRow(f"a code row (fields {code_fields}), not a math one")
    problem = next((row[k] for k in PROMPT_FIELDS if row.get(k) not in (None, "")), None)
    task_id = next(
        (row[k] for k in ("id", "unique_id", "idx") if row.get(k) not in (None, "")), index
    )
    return _math_task(
        f"{source}/{task_id}",
        problem,
        _reference(row),
        source,
        difficulty=row.get("difficulty") or row.get("level"),
        metadata={"subject": row.get("type") or row.get("subject")},
    )
