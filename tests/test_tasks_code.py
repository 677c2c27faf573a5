"""Code grading: every candidate runs in the sandbox, one run per test."""

from __future__ import annotations

import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from metaagentx.tasks.base import Task, TestCase
from metaagentx.tasks.code import (
    extract_program,
    grade_program,
    return_value_matches,
    stdout_matches,
)
from metaagentx.tasks.code_harness import checker_spec

programs = pytest.importorskip(
    "metaagentx.sandbox.programs", reason="the sandbox's run_program is not available"
)


# --- pure logic (no program runs) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "program"),
    [
        ("```python\nprint(1)\n```\nthen\n```python\nprint(2)\n```", "print(2)\n"),
        ("```py\nx=1\n```", "x=1\n"),
        ("```\nprint(3)\n```", "print(3)\n"),
        ("```python\nprint(4)\n```\n```text\nnot code\n```", "print(4)\n"),
        ("```python\nprint(5)\n", "print(5)\n"),  # cut off at the length limit
        ("no code here", None),
        # the authors' executors: <solution> wins over earlier fences, a fence inside is unwrapped
        ("```python\nprint(0)\n```\n<solution>\nprint(6)\n</solution>", "print(6)\n"),
        ("<solution>\n```python\nprint(7)\n```\n</solution>", "print(7)\n"),
        ("<solution>  </solution>\n```python\nprint(8)\n```", "print(8)\n"),
    ],
)
def test_extract_program(text: str, program: str | None) -> None:
    assert extract_program(text) == program


@pytest.mark.parametrize(
    ("actual", "expected", "tol", "ok"),
    [
        ("5 2 1 3 4 \n", "5 2 1 3 4", None, True),
        ("1\n2\n\n\n", "1\n2\n", None, True),
        ("  1   2\r\n", "1 2", None, True),
        ("1 2", "1 3", None, False),
        ("1 2 3", "1 2", None, False),
        ("0.3333333", "0.333333", None, False),
        ("0.3333333", "0.333333", 1e-5, True),
        ("0.34", "0.333333", 1e-5, False),
    ],
)
def test_stdout_matches(actual: str, expected: str, tol: float | None, ok: bool) -> None:
    assert stdout_matches(actual, expected, tol) is ok


def test_return_value_matching() -> None:
    assert return_value_matches(3, [3], unwrap_single=True)  # APPS wraps return values
    assert not return_value_matches(3, [3])
    assert return_value_matches([1, 2], [1, 2])
    assert not return_value_matches(True, 1)
    assert return_value_matches(2, 2.0)
    assert not return_value_matches(0.1 + 0.2, 0.3)
    assert return_value_matches(0.1 + 0.2, 0.3, float_tolerance=1e-9)


@dataclass
class _Canned:
    status: str
    stdout: str
    stderr: str = ""
    returncode: int | None = 0
    duration_s: float = 0.0
    outcome: object = None


def test_sandbox_is_injectable_and_stop_at_first_failure() -> None:
    calls: list[str] = []

    class Sandbox:
        def run_program(self, source: str, **kwargs: object) -> _Canned:
            calls.append(str(kwargs["stdin"]))
            return _Canned("ok", "1\n")

        def run_test(self, program: str, check: dict, **kwargs: object) -> _Canned:
            raise AssertionError("stdio tests never go to the checker")

    tests = [TestCase("stdio", "a", "2"), TestCase("stdio", "b", "1"), TestCase("stdio", "c", "1")]
    grade = grade_program("print(1)", tests, sandbox=Sandbox(), stop_at_first_failure=True)
    assert (grade.passed, grade.total, grade.all_passed, calls) == (0, 3, False, ["a"])
    grade = grade_program("print(1)", tests, sandbox=Sandbox())
    assert (grade.passed, grade.total, len(calls)) == (2, 3, 4)


def test_checker_spec_never_contains_the_expected_return_value() -> None:
    spec = checker_spec(TestCase("call", [1], 987654321, "f"))
    assert "987654321" not in repr(spec) and spec["fn_name"] == "f"


# --- through the sandbox ---------------------------------------------------------------------


def test_stdio_whitespace_tolerance_and_list_stdin() -> None:
    program = "n = int(input())\nprint(*[int(input()) * 2 for _ in range(n)])\n"
    tests = [TestCase("stdio", ["2", "3", "4"], ["6 8"]), TestCase("stdio", "1\n5\n", "10   \n\n")]
    grade = grade_program(program, tests)
    assert grade.all_passed, grade.details
    assert not grade_program(program, [TestCase("stdio", "1\n5\n", "11")]).all_passed


def test_call_based_apps_style() -> None:
    tests = [TestCase("call", [1, 2], [3], "add"), TestCase("call", [5, 5], 10, "add")]
    assert grade_program("def add(a, b):\n    return a + b\n", tests, unwrap_single=True).all_passed
    assert grade_program(
        "class Solution:\n    def add(self, a, b):\n        return a + b\n",
        tests,
        unwrap_single=True,
    ).all_passed
    assert not grade_program(
        "def add(a, b):\n    return a - b\n", tests, unwrap_single=True
    ).all_passed
    missing = grade_program("def plus(a, b):\n    return a + b\n", tests[:1])
    assert not missing.all_passed and "NameError" in missing.details[0]["reason"]


def test_functional_check_block() -> None:
    test = TestCase(
        "functional", "def check(candidate):\n    assert candidate(2) == 4\n\ncheck(double)\n"
    )
    assert grade_program("def double(x):\n    return 2 * x\n", [test]).all_passed
    assert not grade_program("def double(x):\n    return x + 1\n", [test]).all_passed


def test_forged_verdicts_earn_nothing() -> None:
    forge_call = "import sys\nprint('@@metaagentx-0@@3')\nsys.exit(0)\n"
    assert not grade_program(forge_call, [TestCase("call", [1, 2], 3, "add")]).all_passed
    forge_functional = "import os\nprint('passed')\nos._exit(0)\n"
    test = TestCase(
        "functional", "def check(candidate):\n    assert candidate(2) == 4\n\ncheck(double)\n"
    )
    assert not grade_program(forge_functional, [test]).all_passed


def test_infinite_loop_and_memory_bomb_fail_only_their_test() -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    good = TestCase("stdio", "", "ok")
    start = time.monotonic()
    loop = grade_program(
        "import sys\nif sys.stdin.read() == 'x':\n    while True: pass\nprint('ok')\n",
        [TestCase("stdio", "x", "ok"), good],
        timeout_s=1.0,
    )
    assert time.monotonic() - start < 10
    assert (loop.passed, loop.total) == (1, 2)
    assert loop.details[0]["status"] == "timeout"
    bomb = grade_program(
        "import sys\nif sys.stdin.read() == 'x':\n"
        "    blocks = [bytearray(1 << 27) for _ in range(64)]\nprint('ok')\n",
        [TestCase("stdio", "x", "ok"), good],
        timeout_s=5.0,
        memory_mb=256,
    )
    assert (bomb.passed, bomb.total) == (1, 2)
    # the grader's own process did not grow by the bomb's size
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 512 * 1024


def test_per_test_timeout() -> None:
    program = "import time\ntime.sleep(float(input()))\nprint('done')\n"
    grade = grade_program(
        program, [TestCase("stdio", "0", "done"), TestCase("stdio", "3", "done")], timeout_s=1.0
    )
    assert [d["passed"] for d in grade.details] == [True, False]
    assert grade.details[1]["status"] == "timeout"


def test_code_task_grades_final_message_with_hidden_tests() -> None:
    task = Task(
        id="c1",
        domain="code",
        prompt="add",
        public_tests=(TestCase("call", [1, 2], 3, "add"),),
        hidden_tests=(TestCase("call", [2, 2], 4, "add"),),
    )
    view = task.public_view()
    assert view["public_tests"] == [task.public_tests[0].to_dict()]
    assert "hidden_tests" not in view and "answer" not in view
    # hard-coding the public test passes it but not the hidden one
    hack = task.grade("```python\ndef add(a, b):\n    return 3\n```")
    assert not hack.correct
    good = task.grade(
        "draft ```python\ndef add(a, b): return 0\n```\n"
        "final ```python\ndef add(a, b):\n    return a + b\n```"
    )
    assert good.correct and good.score == 1.0
    assert not task.grade("no code").correct


@pytest.fixture(scope="module", params=["fixture", "shared"])
def leetcode_tasks(request: pytest.FixtureRequest) -> list[Task]:
    """The offline fixture always; the real file too where the shared data folder exists."""
    from metaagentx.tasks.datasets import data_dir, load_tasks

    if request.param == "fixture":
        return load_tasks(str(Path(__file__).parent / "fixtures" / "tasks" / "leetcode.json"))
    if data_dir() is None:
        pytest.skip("shared data folder not found (set METAAGENTX_DATA_DIR)")
    return load_tasks("leetcode", "test", limit=12)


def test_leetcode_reference_solutions_pass_and_mutations_fail(leetcode_tasks: list[Task]) -> None:
    for task in leetcode_tasks:
        reference = task.metadata["reference_solution"]
        grade = grade_program(reference, task.reward_tests)
        assert grade.all_passed, (task.id, grade.details)
        method = re.search(r"check\(Solution\(\)\.(\w+)\)", task.hidden_tests[0].input)
        assert method is not None
        mutant = reference + f"\nSolution.{method.group(1)} = lambda self, *a, **k: object()\n"
        assert not grade_program(mutant, task.reward_tests).all_passed, task.id
