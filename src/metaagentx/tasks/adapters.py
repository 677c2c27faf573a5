"""One adapter per benchmark row format, each turning a raw row into a `Task`, and the
detection that picks one from a row's fields.

Adapters raise `MalformedRow` (or let KeyError/TypeError/ValueError escape) for a row they cannot
use; the loader counts and logs those instead of crashing. The math adapters live in
`math_rows`, the code ones in `code_rows`; rows of no known benchmark with a problem and an
answer or solution fall to `generic_math`.
"""

from __future__ import annotations

from collections.abc import Callable

from metaagentx.tasks.base import Task
from metaagentx.tasks.code_rows import (
    Row,
    apps_raw_row,
    apps_verl_row,
    codecontests_row,
    functional_tests,
    humaneval_row,
    leetcode_row,
    livecodebench_row,
    split_public,
)
from metaagentx.tasks.errors import MalformedRow
from metaagentx.tasks.math_rows import (
    CODE_FIELDS,
    PROMPT_FIELDS,
    aime_row,
    generic_math_row,
    gsm8k_verl_row,
    math_row,
    olympiad_row,
    repair_escape_damage,
)

__all__ = [
    "ADAPTERS",
    "MalformedRow",
    "apps_raw_row",
    "detect_format",
    "functional_tests",
    "repair_escape_damage",
    "split_public",
]


def _generic_math(keys: set[str]) -> bool:
    """A problem and an answer or solution, and nothing a code row would have."""
    return (
        bool(keys & set(PROMPT_FIELDS))
        and bool(keys & {"answer", "solution"})
        and not keys & set(CODE_FIELDS)
    )


def task_dict_row(row: Row, index: int, source: str) -> Task:
    """Our own JSONL (Task.to_dict rows), e.g. exported synthetic suites."""
    return Task.from_dict(row)


Adapter = Callable[[Row, int, str], Task]

ADAPTERS: dict[str, Adapter] = {
    "aime": aime_row,
    "math": math_row,
    "olympiadbench": olympiad_row,
    "gsm8k_verl": gsm8k_verl_row,
    "apps_verl": apps_verl_row,
    "apps_raw": apps_raw_row,
    "codecontests": codecontests_row,
    "leetcode": leetcode_row,
    "livecodebench": livecodebench_row,
    "humaneval": humaneval_row,
    "task": task_dict_row,
    "generic_math": generic_math_row,
}


def detect_format(row: Row) -> str:
    """Guess a row's format from its fields."""
    keys = set(row)
    rules = (
        ({"domain", "prompt", "id"}, "task"),
        ({"question_content", "public_test_cases"}, "livecodebench"),
        ({"entry_point", "canonical_solution", "test"}, "humaneval"),
        (
            {"reward_model", "ability"},
            "apps_verl" if row.get("ability") == "code" else "gsm8k_verl",
        ),
        ({"input_output", "question"}, "apps_raw"),
        ({"is_multiple_answer", "answer"}, "olympiadbench"),
        ({"problem", "solutions", "tests"}, "leetcode"),
        ({"problem", "tests"}, "codecontests"),
        ({"problem", "answer", "year"}, "aime"),
        ({"problem", "answer", "unique_id"}, "math"),
        ({"problem", "answer", "type"}, "math"),
        ({"problem", "answer"}, "aime"),
    )
    for required, name in rules:
        if required <= keys:
            return name
    if _generic_math(keys):
        return "generic_math"
    raise MalformedRow(
        f"unknown row format with fields {sorted(keys)}; map yours to ours "
        "(prompt, answer, solution, id, ...) with data.fields, or set data.format"
    )
