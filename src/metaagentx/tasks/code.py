"""Code answers: extraction of the final program and grading by tests run in the sandbox.

Three test kinds cover every benchmark: stdin/stdout (APPS, CodeContests, LiveCodeBench stdin),
call-based (APPS `fn_name`, LiveCodeBench functional: the candidate's function is called with
JSON arguments and its return value compared on the host) and functional (HumanEval/LeetCode
`check(candidate)` assertion blocks). Each test is one sandboxed run with its own timeout, so an
infinite loop or a memory bomb fails that test and nothing else. The runner is injectable (tests,
remote sandboxes) and defaults to `metaagentx.sandbox.programs.run_program`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from metaagentx.tasks.base import Grade, TestCase
from metaagentx.tasks.code_harness import build_program, stdin_text, verdict_payload

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


class ProgramRunner(Protocol):
    def __call__(self, source: str, *, stdin: str = "", timeout_s: float = 5.0,
                 memory_mb: int = 512, max_output_bytes: int = 1 << 20) -> ProgramResultLike: ...


def default_runner() -> ProgramRunner:
    """The sandbox's program runner; code grading never runs candidates in this process."""
    from metaagentx.sandbox.programs import run_program

    return run_program


def extract_program(text: str) -> str | None:
    """The last fenced python block of a final message (an untagged block if none is tagged)."""
    if not text:
        return None
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
        return Grade(1.0 if self.all_passed else 0.0, self.all_passed,
                     {"passed": self.passed, "total": self.total, "tests": self.details})


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
    return all(g == w or _float_equal(g, w, float_tolerance) for g, w in zip(got, want, strict=True))


def _values_equal(got: Any, want: Any, float_tolerance: float | None) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        if float_tolerance is not None and (isinstance(got, float) or isinstance(want, float)):
            return math.isclose(got, want, rel_tol=float_tolerance, abs_tol=float_tolerance)
        return got == want
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(
            _values_equal(g, w, float_tolerance) for g, w in zip(got, want, strict=True))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(
            _values_equal(got[k], want[k], float_tolerance) for k in got)
    return type(got) is type(want) and bool(got == want)


def return_value_matches(got: Any, expected: Any, *, unwrap_single: bool = False,
                         float_tolerance: float | None = None) -> bool:
    """Compare a call test's JSON return value with the expected one.

    `unwrap_single` follows the APPS checker: APPS usually stores a return value wrapped in a
    one-element list, so `[v]` also accepts `v`.
    """
    if _values_equal(got, expected, float_tolerance):
        return True
    return (unwrap_single and isinstance(expected, list) and len(expected) == 1
            and _values_equal(got, expected[0], float_tolerance))


def _judge(test: TestCase, result: ProgramResultLike, marker: str | None,
           unwrap_single: bool, float_tolerance: float | None) -> tuple[bool, str]:
    if result.status != "ok":
        tail = (result.stderr or "").strip().splitlines()[-1:] or [""]
        return False, f"{result.status}: {tail[0][:300]}"
    if test.kind == "stdio":
        ok = stdout_matches(result.stdout, stdin_text(test.expected), float_tolerance)
        return ok, "" if ok else "wrong output"
    payload = verdict_payload(result.stdout, marker or "")
    if payload is None:
        return False, "no verdict (the program exited before the test finished)"
    if test.kind == "functional":
        return payload == "passed", "" if payload == "passed" else "bad verdict"
    try:
        got = json.loads(payload)
    except json.JSONDecodeError:
        return False, "return value is not JSON"
    ok = return_value_matches(got, test.expected, unwrap_single=unwrap_single,
                              float_tolerance=float_tolerance)
    return ok, "" if ok else f"returned {payload[:200]}"


def grade_program(
    program: str | None,
    tests: Sequence[TestCase],
    timeout_s: float = 5.0,
    *,
    runner: ProgramRunner | None = None,
    stop_at_first_failure: bool = False,
    memory_mb: int = 512,
    max_output_bytes: int = 1 << 20,
    float_tolerance: float | None = None,
    unwrap_single: bool = False,
) -> CodeGrade:
    """Run `program` on each test in the sandbox, `timeout_s` per test.

    With `stop_at_first_failure` the remaining tests are not run (they count as failed, so the
    score stays passed / len(tests)).
    """
    total = len(tests)
    if not program or not program.strip() or total == 0:
        reason = "no program" if total else "no tests"
        return CodeGrade(0, total, False, [{"index": None, "passed": False, "reason": reason}])
    run = runner if runner is not None else default_runner()
    passed, details = 0, []
    for index, test in enumerate(tests):
        harness = build_program(program, test)
        result = run(harness.source, stdin=harness.stdin, timeout_s=timeout_s,
                     memory_mb=memory_mb, max_output_bytes=max_output_bytes)
        ok, reason = _judge(test, result, harness.marker, unwrap_single, float_tolerance)
        passed += ok
        details.append({"index": index, "kind": test.kind, "passed": ok, "reason": reason,
                        "status": result.status, "duration_s": round(result.duration_s, 4)})
        if stop_at_first_failure and not ok:
            break
    return CodeGrade(passed, total, passed == total, details)


def grade_code_task(task: Task, final_output: str, *, runner: ProgramRunner | None = None,
                    timeout_s: float | None = None, stop_at_first_failure: bool = True,
                    tests: Sequence[TestCase] | None = None, **_: Any) -> Grade:
    """Grade a final message against a code task's reward tests (or `tests`, e.g. public)."""
    program = extract_program(final_output)
    if program is None:
        return Grade(0.0, False, {"reason": "no_program"})
    meta = task.metadata
    grade = grade_program(
        program,
        list(tests) if tests is not None else list(task.reward_tests),
        timeout_s if timeout_s is not None else float(meta.get("timeout_s", 5.0)),
        runner=runner,
        stop_at_first_failure=stop_at_first_failure,
        float_tolerance=meta.get("float_tolerance"),
        unwrap_single=bool(meta.get("unwrap_single_output", False)),
    )
    return grade.to_grade()
