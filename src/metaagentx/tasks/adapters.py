"""One adapter per benchmark row format, each turning a raw row into a `Task`.

Adapters raise `MalformedRow` (or let KeyError/TypeError/ValueError escape) for a row they cannot
use; the loader counts and logs those instead of crashing. Quirks of the shared data files
(see each SOURCE.txt) are repaired here, next to the format they belong to: AIME 2025 escape
damage, zero-padded AIME answers, empty MATH answers, the APPS prompt wrapper, APPS stdin given as
a list of lines, OlympiadBench answer lists/units/tolerances, LiveCodeBench compressed tests.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from metaagentx.tasks.base import Task, TestCase
from metaagentx.tasks.lcb import decode_test_cases

Row = dict[str, Any]


class MalformedRow(ValueError):
    """A row that cannot become a task; the message says why."""


# --- math -------------------------------------------------------------------------------------

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
    return Task(id=task_id, domain="math", prompt=repair_escape_damage(problem.strip()),
                answer=_answer_text(answer), source=source, metadata=metadata, **extra)


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
    return _math_task(f"{source}/{task_id}", row.get("problem"), row.get("answer"), source,
                      difficulty=_float_or_none(row.get("difficulty")))


def math_row(row: Row, index: int, source: str) -> Task:
    """MATH / MATH-500 (problem/answer/difficulty, unique_id or type)."""
    task_id = row.get("unique_id") or str(index)
    return _math_task(f"{source}/{task_id}", row.get("problem"), row.get("answer"), source,
                      difficulty=_float_or_none(row.get("difficulty")),
                      metadata={"subject": row.get("type") or row.get("subject")})


def olympiad_row(row: Row, index: int, source: str) -> Task:
    """OlympiadBench: answer list, is_multiple_answer, unit, error (a stated tolerance)."""
    context = row.get("context")
    problem = row.get("problem") or row.get("question")
    if context and str(context) != "None" and isinstance(problem, str):
        problem = f"{context}\n\n{problem}"
    unit = row.get("unit")
    tolerance = _float_or_none(row.get("error"))
    return _math_task(
        f"{source}/{row.get('id', index)}", problem, row.get("answer") or row.get("final_answer"),
        source, difficulty=row.get("subfield"),
        metadata={"multiple_answers": bool(row.get("is_multiple_answer")) or None,
                  "unit": unit if unit and str(unit) != "None" else None,
                  "tolerance": tolerance, "answer_type": row.get("answer_type")})


def gsm8k_verl_row(row: Row, index: int, source: str) -> Task:
    """verl GSM8K parquet: the plain question is in extra_info, the answer in reward_model."""
    extra = row.get("extra_info") or {}
    question = extra.get("question") or _chat_text(row.get("prompt"))
    answer = (row.get("reward_model") or {}).get("ground_truth")
    return _math_task(f"{source}/{extra.get('index', index)}", question, answer, source)


# --- code -------------------------------------------------------------------------------------

_APPS_WRAPPER_RE = re.compile(
    r"^Write a Python program to solve the following problem\.\s*\n"
    r"Read input from stdin and print output to stdout\.\s*\n"
    r"Put your solution inside a ```python``` code block\.\s*\n+")
STDIO_NOTE = "Read from standard input and write to standard output."


def _chat_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
        return str(prompt[-1].get("content", ""))
    raise MalformedRow("prompt is neither text nor a chat message list")


def split_public(tests: list[TestCase]) -> tuple[tuple[TestCase, ...], tuple[TestCase, ...]]:
    """Without a published split, the first test is public when there is more than one."""
    if len(tests) > 1:
        return (tests[0],), tuple(tests[1:])
    return (), tuple(tests)


def _code_task(task_id: str, prompt: str, public: tuple[TestCase, ...],
               hidden: tuple[TestCase, ...], source: str, **extra: Any) -> Task:
    if not prompt.strip():
        raise MalformedRow("empty problem")
    if not public and not hidden:
        raise MalformedRow("no tests")
    metadata = {k: v for k, v in extra.pop("metadata", {}).items() if v is not None}
    return Task(id=task_id, domain="code", prompt=prompt.strip(), public_tests=public,
                hidden_tests=hidden, source=source, metadata=metadata, **extra)


def _io_tests(spec: dict[str, Any]) -> list[TestCase]:
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        raise MalformedRow("tests need non-empty inputs and outputs lists")
    if len(inputs) != len(outputs):
        raise MalformedRow(f"{len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = spec.get("fn_name")
    if fn_name:
        return [TestCase("call", i if isinstance(i, list) else [i], o, fn_name)
                for i, o in zip(inputs, outputs, strict=True)]
    return [TestCase("stdio", i, o) for i, o in zip(inputs, outputs, strict=True)]


def apps_verl_row(row: Row, index: int, source: str) -> Task:
    """verl APPS parquet: wrapper prompt, ground_truth JSON with inputs/outputs[/fn_name]."""
    extra = row.get("extra_info") or {}
    truth = (row.get("reward_model") or {}).get("ground_truth")
    spec = json.loads(truth) if isinstance(truth, str) else truth
    if not isinstance(spec, dict):
        raise MalformedRow("ground_truth is not a JSON object")
    return _apps_task(f"{source}/{extra.get('id', index)}", _chat_text(row.get("prompt")), spec,
                      source, extra.get("difficulty"))


def apps_raw_row(row: Row, index: int, source: str) -> Task:
    """Raw APPS (codeparrot/apps): question, input_output JSON, starter_code, difficulty."""
    spec = row.get("input_output")
    spec = json.loads(spec) if isinstance(spec, str) and spec.strip() else spec
    if not isinstance(spec, dict):
        raise MalformedRow("input_output is empty or not JSON")
    return _apps_task(f"{source}/{row.get('problem_id', index)}", str(row.get("question", "")),
                      spec, source, row.get("difficulty"), row.get("starter_code") or None)


def _apps_task(task_id: str, prompt: str, spec: dict[str, Any], source: str, difficulty: Any,
               starter_code: str | None = None) -> Task:
    question = _APPS_WRAPPER_RE.sub("", prompt).strip()
    fn_name = spec.get("fn_name")
    note = (f"Implement the function `{fn_name}`; it is called with the test arguments."
            if fn_name else STDIO_NOTE)
    public, hidden = split_public(_io_tests(spec))
    return _code_task(task_id, f"{question}\n\n{note}", public, hidden, source,
                      difficulty=difficulty,
                      metadata={"fn_name": fn_name, "starter_code": starter_code,
                                "unwrap_single_output": True if fn_name else None})


_TIME_LIMIT_RE = re.compile(r"Time Limit:\s*([\d.]+)\s*second", re.IGNORECASE)


def codecontests_row(row: Row, index: int, source: str) -> Task:
    """rllm CodeContests: problem text (with time limit) and public+private stdin tests."""
    tests = row.get("tests")
    tests = json.loads(tests) if isinstance(tests, str) else tests
    if not isinstance(tests, dict):
        raise MalformedRow("tests is not an object")
    problem = str(row.get("problem", ""))
    limit = _TIME_LIMIT_RE.search(problem)
    public, hidden = split_public(_io_tests(tests))
    title = row.get("name") or str(index)
    return _code_task(f"{source}/{title}", f"{problem.strip()}\n\n{STDIO_NOTE}", public, hidden,
                      source, metadata={"time_limit_s": float(limit.group(1)) if limit else None})


_STARTER_RE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _check_parts(functional: str) -> tuple[str, list[str], str]:
    """Split `def check(candidate): <asserts> ... check(X)` into header, asserts, call."""
    tree = ast.parse(functional)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"),
                 None)
    if check is None:
        raise MalformedRow("functional test has no check(candidate) function")
    asserts = [ast.get_source_segment(functional, s) or "" for s in check.body]
    calls = [ast.get_source_segment(functional, n) or "" for n in tree.body
             if n is not check and not isinstance(n, (ast.Import, ast.ImportFrom))]
    imports = [ast.get_source_segment(functional, n) or "" for n in tree.body
               if isinstance(n, (ast.Import, ast.ImportFrom))]
    header = "\n".join([*imports, "def check(candidate):"])
    return header, asserts, "\n".join(calls)


def functional_tests(functional: str) -> tuple[tuple[TestCase, ...], tuple[TestCase, ...]]:
    """A public test with the first assertion; the hidden test is the whole check block."""
    hidden = (TestCase("functional", functional.strip() + "\n"),)
    try:
        header, asserts, call = _check_parts(functional)
    except SyntaxError as exc:
        raise MalformedRow(f"functional test does not parse: {exc}") from exc
    if len(asserts) < 2 or not asserts[0].startswith("assert") or not call:
        return (), hidden
    public = TestCase("functional", f"{header}\n    {asserts[0]}\n\n{call}\n")
    return (public,), hidden


def leetcode_row(row: Row, index: int, source: str) -> Task:
    """rllm LeetCodeDataset: problem with starter code, reference solution, check() block."""
    tests = row.get("tests")
    tests = json.loads(tests) if isinstance(tests, str) else tests
    functional = (tests or {}).get("functional")
    if not isinstance(functional, str) or "assert" not in functional:
        raise MalformedRow("no functional test with assertions")
    problem = str(row.get("problem", ""))
    starter = _STARTER_RE.findall(problem)
    public, hidden = functional_tests(functional)
    method = re.search(r"check\(Solution\(\)\.(\w+)\)", functional)
    task_id = row.get("task_id") or row.get("question_id") or (method.group(1) if method else "")
    return _code_task(f"{source}/{index}-{task_id}" if task_id else f"{source}/{index}", problem,
                      public, hidden, source, difficulty=row.get("difficulty"),
                      metadata={"starter_code": starter[-1] if starter else None,
                                "reference_solution": row.get("solutions") or None})


def humaneval_row(row: Row, index: int, source: str) -> Task:
    """HumanEval: prompt (signature + docstring), canonical_solution, test, entry_point."""
    entry = row.get("entry_point")
    test = row.get("test")
    if not entry or not isinstance(test, str):
        raise MalformedRow("missing entry_point or test")
    prompt = str(row.get("prompt", ""))
    public, hidden = functional_tests(f"{test.strip()}\n\n\ncheck({entry})\n")
    instruction = f"Complete the function `{entry}` and give the whole program:\n\n{prompt}"
    return _code_task(str(row.get("task_id", f"{source}/{index}")), instruction, public, hidden,
                      source, metadata={"starter_code": prompt, "fn_name": entry,
                                        "reference_solution": prompt + str(
                                            row.get("canonical_solution", ""))})


def _lcb_tests(cases: list[dict[str, Any]], fn_name: str | None) -> list[TestCase]:
    tests = []
    for case in cases:
        if case.get("testtype") == "functional":
            if not fn_name:
                raise MalformedRow("functional test without metadata.func_name")
            args = [json.loads(line) for line in str(case["input"]).split("\n") if line.strip()]
            tests.append(TestCase("call", args, json.loads(case["output"]), fn_name))
        else:
            tests.append(TestCase("stdio", case["input"], case["output"]))
    return tests


def livecodebench_row(row: Row, index: int, source: str) -> Task:
    """LiveCodeBench code_generation_lite: public and (compressed) private test cases."""
    meta = row.get("metadata") or {}
    meta = json.loads(meta) if isinstance(meta, str) and meta.strip() else meta
    fn_name = meta.get("func_name") if isinstance(meta, dict) else None
    public = _lcb_tests(decode_test_cases(row.get("public_test_cases") or []), fn_name)
    hidden = _lcb_tests(decode_test_cases(row.get("private_test_cases") or []), fn_name)
    starter = row.get("starter_code") or None
    prompt = str(row.get("question_content", ""))
    if starter:
        prompt += f"\n\nUse this starter code:\n```python\n{starter.rstrip()}\n```"
    else:
        prompt += f"\n\n{STDIO_NOTE}"
    return _code_task(f"{source}/{row.get('question_id', index)}", prompt, tuple(public),
                      tuple(hidden), source, difficulty=row.get("difficulty"),
                      metadata={"starter_code": starter, "fn_name": fn_name,
                                "platform": row.get("platform"),
                                "contest_date": row.get("contest_date")})


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
}


def detect_format(row: Row) -> str:
    """Guess a row's format from its fields."""
    keys = set(row)
    rules = (
        ({"domain", "prompt", "id"}, "task"),
        ({"question_content", "public_test_cases"}, "livecodebench"),
        ({"entry_point", "canonical_solution", "test"}, "humaneval"),
        ({"reward_model", "ability"}, "apps_verl" if row.get("ability") == "code"
         else "gsm8k_verl"),
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
    raise MalformedRow(f"unknown row format with fields {sorted(keys)}")
