"""Code answers: extraction of the final program and grading by tests run in the sandbox.

Three test kinds cover every benchmark: stdin/stdout (APPS, CodeContests, LiveCodeBench stdin),
call-based (APPS `fn_name`, LiveCodeBench functional: the candidate's function is called with
JSON arguments and its return value compared on the host) and functional (HumanEval/LeetCode
`check(candidate)` assertion blocks). Each test is one sandboxed run with its own timeout, so an
infinite loop or a memory bomb fails that test and nothing else. Call and functional tests run in
the sandbox's checker, which keeps the candidate in a process that never holds the test, the
expected value or the verdict channel; values cross as plain data (`sandbox.plaindata`), so
neither `__eq__` tricks nor forged output earn anything. The sandbox is injectable (`CodeSandbox`:
the grading environment binds it to its configured fork server).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from metaagentx.mas.text import SOLUTION_TAG
from metaagentx.sandbox import plaindata
from metaagentx.tasks.base import Grade, TestCase
from metaagentx.tasks.code_harness import PRELUDE, checker_spec, stdin_text

if TYPE_CHECKING:
    from metaagentx.tasks.base import Task

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


class ProgramResultLike(Protocol):
    """What grading reads from a sandbox run (`metaagentx.sandbox.programs.ProgramResult`)."""

    status: str  # "ok" | "error" | "timeout" | "killed" | "output_limit"
    stdout: str
    stderr: str
    returncode: int | None
    duration_s: float
    outcome: Any  # a checked test's verdict from the sandbox's checker process, else None


class CodeSandbox(Protocol):
    """Where candidates run: a stdin/stdout program, or one call/functional test whose checker
    runs in a process the candidate cannot reach (`metaagentx.sandbox.programs`)."""

    def run_program(
        self, source: str, *, stdin: str, timeout_s: float, memory_mb: int, max_output_bytes: int
    ) -> ProgramResultLike: ...

    def run_test(
        self,
        program: str,
        check: dict[str, Any],
        *,
        prelude: str,
        timeout_s: float,
        memory_mb: int,
        max_output_bytes: int,
    ) -> ProgramResultLike: ...


class DefaultSandbox:
    """The sandbox's own functions with its default settings (the grading environment passes a
    sandbox bound to its configured fork server instead)."""

    def run_program(self, source: str, **options: Any) -> ProgramResultLike:
        from metaagentx.sandbox.programs import run_program

        return run_program(source, **options)

    def run_test(self, program: str, check: dict[str, Any], **options: Any) -> ProgramResultLike:
        from metaagentx.sandbox.programs import run_test

        return run_test(program, check, **options)


def extract_program(text: str) -> str | None:
    """The program of a final message: the last `<solution>` block when there is one (the
    authors' executor format; a fence inside it is unwrapped), else the last fenced python block
    (an untagged block if none is tagged)."""
    if not text:
        return None
    solutions = [body for body in SOLUTION_TAG.findall(text) if body.strip()]
    if solutions:
        return _fenced_program(solutions[-1]) or solutions[-1].strip("\n") + "\n"
    return _fenced_program(text)


def _fenced_program(text: str) -> str | None:
    blocks = [(tag.lower(), body) for tag, body in _FENCE_RE.findall(text)]
    tagged = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    untagged = [body for tag, body in blocks if not tag]
    for candidates in (tagged, untagged):
        for body in reversed(candidates):
            if body.strip():
                return body.strip("\n") + "\n"
    return None


@dataclass(frozen=True)
class CodeGrade:
    """Tests passed out of tests run; `details` has one entry per test that ran."""

    passed: int
    total: int
    all_passed: bool
    details: list[dict[str, Any]] = field(default_factory=list)

    def to_grade(self) -> Grade:
        """Binary reward (all tests pass), as in the paper; the pass count stays in details."""
        return Grade(
            1.0 if self.all_passed else 0.0,
            self.all_passed,
            {"passed": self.passed, "total": self.total, "tests": self.details},
        )


def _float_equal(a: str, b: str, tol: float) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=tol, abs_tol=tol)


def stdout_matches(actual: str, expected: str, float_tolerance: float | None = None) -> bool:
    """Whitespace-tolerant comparison: the same tokens in the same order.

    Trailing spaces, blank lines and line breaks never matter; tokens are compared exactly, or as
    numbers within `float_tolerance` when the task says answers are real numbers.
    """
    got, want = actual.split(), expected.split()
    if len(got) != len(want):
        return False
    if float_tolerance is None:
        return got == want
    return all(
        g == w or _float_equal(g, w, float_tolerance) for g, w in zip(got, want, strict=True)
    )


def _values_equal(got: Any, want: Any, float_tolerance: float | None) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        if float_tolerance is not None and (isinstance(got, float) or isinstance(want, float)):
            return math.isclose(got, want, rel_tol=float_tolerance, abs_tol=float_tolerance)
        return got == want
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(
            _values_equal(g, w, float_tolerance) for g, w in zip(got, want, strict=True)
        )
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(
            _values_equal(got[k], want[k], float_tolerance) for k in got
        )
    return type(got) is type(want) and bool(got == want)


def return_value_matches(
    got: Any, expected: Any, *, unwrap_single: bool = False, float_tolerance: float | None = None
) -> bool:
    """Compare a call test's JSON return value with the expected one.

    `unwrap_single` follows the APPS checker: APPS usually stores a return value wrapped in a
    one-element list, so `[v]` also accepts `v`.
    """
    if _values_equal(got, expected, float_tolerance):
        return True
    return (
        unwrap_single
        and isinstance(expected, list)
        and len(expected) == 1
        and _values_equal(got, expected[0], float_tolerance)
    )


def _judge(
    test: TestCase, result: ProgramResultLike, unwrap_single: bool, float_tolerance: float | None
) -> tuple[bool, str]:
    if result.status != "ok":
        tail = (result.stderr or "").strip().splitlines()[-1:] or [""]
        return False, f"{result.status}: {tail[0][:300]}"
    if test.kind == "stdio":
        ok = stdout_matches(result.stdout, stdin_text(test.expected), float_tolerance)
        return ok, "" if ok else "wrong output"
    outcome = result.outcome if isinstance(result.outcome, dict) else {}
    status = outcome.get("status")
    if status == "failed":
        return False, str(outcome.get("reason", "failed"))[:300]
    if test.kind == "functional":
        return status == "passed", "" if status == "passed" else "no verdict"
    if status != "returned":
        return False, "no verdict"
    try:
        got = plaindata.json_like(plaindata.decode(outcome.get("value")))
    except (plaindata.PlainDataError, RecursionError, TypeError, ValueError) as exc:
        return False, f"return value is not JSON: {exc}"[:300]
    ok = return_value_matches(
        got, test.expected, unwrap_single=unwrap_single, float_tolerance=float_tolerance
    )
    return ok, "" if ok else f"returned {json.dumps(got)[:200]}"


def run_one_test(
    program: str,
    test: TestCase,
    sandbox: CodeSandbox,
    *,
    timeout_s: float,
    memory_mb: int,
    max_output_bytes: int,
    fn_name: str | None = None,
    setup: str | None = None,
) -> ProgramResultLike:
    """One sandboxed run of `program` on `test`: stdin/stdout as a plain program, the other
    kinds through the checker (the candidate never holds the test)."""
    options = {"timeout_s": timeout_s, "memory_mb": memory_mb, "max_output_bytes": max_output_bytes}
    if test.kind == "stdio":
        return sandbox.run_program(program, stdin=stdin_text(test.input), **options)
    check = checker_spec(test, fn_name=fn_name, setup=setup)
    return sandbox.run_test(program, check, prelude=PRELUDE, **options)


def grade_program(
    program: str | None,
    tests: Sequence[TestCase],
    timeout_s: float = 5.0,
    *,
    sandbox: CodeSandbox | None = None,
    stop_at_first_failure: bool = False,
    memory_mb: int = 512,
    max_output_bytes: int = 1 << 20,
    float_tolerance: float | None = None,
    unwrap_single: bool = False,
    fn_name: str | None = None,
    setup: str | None = None,
) -> CodeGrade:
    """Run `program` on each test in the sandbox, `timeout_s` per test.

    With `stop_at_first_failure` the remaining tests are not run (they count as failed, so the
    score stays passed / len(tests)). `fn_name` and `setup` (the task's entry point and starter
    code) tell a functional test's checker which names are the candidate's and which trusted
    helpers the test may use.
    """
    total = len(tests)
    if not program or not program.strip() or total == 0:
        reason = "no program" if total else "no tests"
        return CodeGrade(0, total, False, [{"index": None, "passed": False, "reason": reason}])
    box = sandbox if sandbox is not None else DefaultSandbox()
    passed, details = 0, []
    for index, test in enumerate(tests):
        result = run_one_test(
            program,
            test,
            box,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            max_output_bytes=max_output_bytes,
            fn_name=fn_name,
            setup=setup,
        )
        ok, reason = _judge(test, result, unwrap_single, float_tolerance)
        passed += ok
        details.append(
            {
                "index": index,
                "kind": test.kind,
                "passed": ok,
                "reason": reason,
                "status": result.status,
                "duration_s": round(result.duration_s, 4),
            }
        )
        if stop_at_first_failure and not ok:
            break
    return CodeGrade(passed, total, passed == total, details)


def grade_task_program(
    task: Task,
    program: str,
    tests: Sequence[TestCase],
    *,
    sandbox: CodeSandbox | None = None,
    timeout_s: float | None = None,
    stop_at_first_failure: bool = True,
    memory_mb: int = 512,
) -> CodeGrade:
    """Run `program` on some of `task`'s tests with the task's own grading options (tolerance,
    APPS unwrapping, entry point, starter code); `timeout_s` defaults to the task's own."""
    meta = task.metadata
    return grade_program(
        program,
        list(tests),
        timeout_s if timeout_s is not None else float(meta.get("timeout_s", 5.0)),
        sandbox=sandbox,
        stop_at_first_failure=stop_at_first_failure,
        memory_mb=memory_mb,
        float_tolerance=meta.get("float_tolerance"),
        unwrap_single=bool(meta.get("unwrap_single_output", False)),
        fn_name=meta.get("fn_name"),
        setup=meta.get("starter_code"),
    )


def grade_code_task(
    task: Task, final_output: str, *, tests: Sequence[TestCase] | None = None, **options: Any
) -> Grade:
    """Grade a final message against a code task's reward tests (or `tests`, e.g. public);
    `options` go to `grade_task_program`."""
    program = extract_program(final_output)
    if program is None:
        return Grade(0.0, False, {"reason": "no_program"})
    chosen = list(tests) if tests is not None else list(task.reward_tests)
    return grade_task_program(task, program, chosen, **options).to_grade()
