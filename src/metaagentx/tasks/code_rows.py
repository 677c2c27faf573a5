"""Code benchmark rows -> `Task`: APPS (verl and raw), CodeContests, LeetCode, HumanEval,
LiveCodeBench.

Quirks repaired here: the APPS prompt wrapper, APPS stdin given as a list of lines, LeetCode and
HumanEval check() blocks split into a public and a hidden test, LiveCodeBench compressed tests.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from metaagentx.tasks.base import Task, TestCase
from metaagentx.tasks.errors import MalformedRow
from metaagentx.tasks.lcb import decode_test_cases

Row = dict[str, Any]

_APPS_WRAPPER_RE = re.compile(
    r"^Write a Python program to solve the following problem\.\s*\n"
    r"Read input from stdin and print output to stdout\.\s*\n"
    r"Put your solution inside a ```python``` code block\.\s*\n+"
)
STDIO_NOTE = "Read from standard input and write to standard output."


def chat_text(prompt: Any) -> str:
    """The text of a prompt given as a string or as a chat message list (its last message)."""
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


def _code_task(
    task_id: str,
    prompt: str,
    public: tuple[TestCase, ...],
    hidden: tuple[TestCase, ...],
    source: str,
    **extra: Any,
) -> Task:
    if not prompt.strip():
        raise MalformedRow("empty problem")
    if not public and not hidden:
        raise MalformedRow("no tests")
    metadata = {k: v for k, v in extra.pop("metadata", {}).items() if v is not None}
    return Task(
        id=task_id,
        domain="code",
        prompt=prompt.strip(),
        public_tests=public,
        hidden_tests=hidden,
        source=source,
        metadata=metadata,
        **extra,
    )


def _io_tests(spec: dict[str, Any]) -> list[TestCase]:
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        raise MalformedRow("tests need non-empty inputs and outputs lists")
    if len(inputs) != len(outputs):
        raise MalformedRow(f"{len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = spec.get("fn_name")
    if fn_name:
        return [
            TestCase("call", i if isinstance(i, list) else [i], o, fn_name)
            for i, o in zip(inputs, outputs, strict=True)
        ]
    return [TestCase("stdio", i, o) for i, o in zip(inputs, outputs, strict=True)]


def apps_verl_row(row: Row, index: int, source: str) -> Task:
    """verl APPS parquet: wrapper prompt, ground_truth JSON with inputs/outputs[/fn_name]."""
    extra = row.get("extra_info") or {}
    truth = (row.get("reward_model") or {}).get("ground_truth")
    spec = json.loads(truth) if isinstance(truth, str) else truth
    if not isinstance(spec, dict):
        raise MalformedRow("ground_truth is not a JSON object")
    return _apps_task(
        f"{source}/{extra.get('id', index)}",
        chat_text(row.get("prompt")),
        spec,
        source,
        extra.get("difficulty"),
    )


def apps_raw_row(row: Row, index: int, source: str) -> Task:
    """Raw APPS (codeparrot/apps): question, input_output JSON, starter_code, difficulty."""
    spec = row.get("input_output")
    spec = json.loads(spec) if isinstance(spec, str) and spec.strip() else spec
    if not isinstance(spec, dict):
        raise MalformedRow("input_output is empty or not JSON")
    return _apps_task(
        f"{source}/{row.get('problem_id', index)}",
        str(row.get("question", "")),
        spec,
        source,
        row.get("difficulty"),
        row.get("starter_code") or None,
    )


def _apps_task(
    task_id: str,
    prompt: str,
    spec: dict[str, Any],
    source: str,
    difficulty: Any,
    starter_code: str | None = None,
) -> Task:
    question = _APPS_WRAPPER_RE.sub("", prompt).strip()
    fn_name = spec.get("fn_name")
    note = (
        f"Implement the function `{fn_name}`; it is called with the test arguments."
        if fn_name
        else STDIO_NOTE
    )
    public, hidden = split_public(_io_tests(spec))
    return _code_task(
        task_id,
        f"{question}\n\n{note}",
        public,
        hidden,
        source,
        difficulty=difficulty,
        metadata={
            "fn_name": fn_name,
            "starter_code": starter_code,
            "unwrap_single_output": True if fn_name else None,
        },
    )


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
    return _code_task(
        f"{source}/{title}",
        f"{problem.strip()}\n\n{STDIO_NOTE}",
        public,
        hidden,
        source,
        metadata={"time_limit_s": float(limit.group(1)) if limit else None},
    )


_STARTER_RE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _check_parts(functional: str) -> tuple[str, list[str], str]:
    """Split `def check(candidate): <asserts> ... check(X)` into header, asserts, call."""
    tree = ast.parse(functional)
    check = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None
    )
    if check is None:
        raise MalformedRow("functional test has no check(candidate) function")
    asserts = [ast.get_source_segment(functional, s) or "" for s in check.body]
    calls = [
        ast.get_source_segment(functional, n) or ""
        for n in tree.body
        if n is not check and not isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    imports = [
        ast.get_source_segment(functional, n) or ""
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
    ]
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
    return _code_task(
        f"{source}/{index}-{task_id}" if task_id else f"{source}/{index}",
        problem,
        public,
        hidden,
        source,
        difficulty=row.get("difficulty"),
        metadata={
            "starter_code": starter[-1] if starter else None,
            "reference_solution": row.get("solutions") or None,
        },
    )


def humaneval_row(row: Row, index: int, source: str) -> Task:
    """HumanEval: prompt (signature + docstring), canonical_solution, test, entry_point."""
    entry = row.get("entry_point")
    test = row.get("test")
    if not entry or not isinstance(test, str):
        raise MalformedRow("missing entry_point or test")
    prompt = str(row.get("prompt", ""))
    public, hidden = functional_tests(f"{test.strip()}\n\n\ncheck({entry})\n")
    instruction = f"Complete the function `{entry}` and give the whole program:\n\n{prompt}"
    return _code_task(
        str(row.get("task_id", f"{source}/{index}")),
        instruction,
        public,
        hidden,
        source,
        metadata={
            "starter_code": prompt,
            "fn_name": entry,
            "reference_solution": prompt + str(row.get("canonical_solution", "")),
        },
    )


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
    return _code_task(
        f"{source}/{row.get('question_id', index)}",
        prompt,
        tuple(public),
        tuple(hidden),
        source,
        difficulty=row.get("difficulty"),
        metadata={
            "starter_code": starter,
            "fn_name": fn_name,
            "platform": row.get("platform"),
            "contest_date": row.get("contest_date"),
        },
    )
