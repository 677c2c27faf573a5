"""`metaagentx run`: grading by --answer / --tests, ungraded runs, the statically checked
--script, and the --json contract (exactly one JSON object on stdout, exit codes 0/1/2).

A scripted generator (every agent gives a known reply) makes grades exact; the tiny model runs
the real path, where only what holds whatever it writes is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.cli import run as cli_run
from metaagentx.cli.run import RunFailure, RunOptions, code_task, read_tests
from metaagentx.config import build_config
from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator
from metaagentx.sandbox.layers import SandboxUnavailable

runner = CliRunner()

SINGLE_AGENT = """from workflow import AgentNode, Workflow

solver = AgentNode(name="Solver", system_prompt="Solve it.", max_turns=1)
workflow = Workflow(name="single")
workflow.add_node(solver)
result = workflow.run()
"""
DOUBLER = "```python\nprint(int(input()) * 2)\n```"
STDIO_TESTS = {"inputs": ["1\n", "5\n"], "outputs": ["2\n", "10\n"]}


class Replies(Generator):
    """Every agent answers `text` (the designer is never asked: these runs give --script)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [GenerationResult([1], [2, 3], [-0.1, -0.2], self.text, "stop") for _ in requests]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "single.py"
    path.write_text(SINGLE_AGENT)
    return path


def scripted(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """The rollout's generator is `Replies(text)` instead of a loaded model."""
    monkeypatch.setattr("metaagentx.rollout.factory.make_generator", lambda *a, **k: Replies(text))


def invoke(*args: str) -> tuple[int, dict, str]:
    """Run `metaagentx run ... --json`: exit code, the one JSON object of stdout, stderr."""
    result = runner.invoke(app, ["run", *args, "--json"])
    return result.exit_code, json.loads(result.stdout), result.stderr


# -- graded, with a generator whose replies are known ---------------------------------------


@pytest.mark.parametrize(("reply", "correct"), [("So \\boxed{42}.", True), ("\\boxed{41}", False)])
def test_math_script_is_graded_by_answer(monkeypatch, script: Path, reply: str, correct: bool):
    scripted(monkeypatch, reply)
    code, payload, _ = invoke(
        "--script",
        str(script),
        "--question",
        "Compute 40+2.",
        "--answer",
        "42",
        "--model",
        "scripted",
    )
    assert code == 0
    assert payload["status"] == "ok" and payload["graded"] is True
    assert payload["grade"]["correct"] is correct and payload["correct"] is correct
    assert payload["answer"] == ("42" if correct else "41")
    assert [t["agent"] for t in payload["trace"]] == ["Solver"]
    assert payload["design"]["source"] == "script" and payload["design"]["valid"] is True
    assert payload["usage"]["llm_calls"] == 1


@pytest.mark.parametrize(("program", "passed"), [(DOUBLER, 2), ("```python\nprint(2)\n```", 1)])
def test_code_script_is_graded_by_a_tests_file(monkeypatch, script, tmp_path, program, passed):
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps(STDIO_TESTS))
    scripted(monkeypatch, program)
    code, payload, _ = invoke(
        "--script",
        str(script),
        "--question",
        "Print twice n.",
        "--domain",
        "code",
        "--tests",
        str(tests),
        "--model",
        "scripted",
    )
    assert code == 0 and payload["status"] == "ok"
    assert payload["answer"].startswith("print(")  # the extracted program
    assert payload["grade"]["details"]["passed"] == passed
    assert payload["grade"]["details"]["total"] == 2
    assert payload["correct"] is (passed == 2)


def test_code_without_tests_runs_ungraded_and_still_extracts_the_program(monkeypatch, script):
    scripted(monkeypatch, DOUBLER)
    args = ["--script", str(script), "--question", "Print twice n.", "--domain", "code"]
    code, payload, stderr = invoke(*args, "--model", "scripted")
    assert code == 0 and payload["status"] == "ok"
    assert payload["graded"] is False and payload["grade"] is None and payload["correct"] is None
    assert payload["answer"] == "print(int(input()) * 2)\n"
    assert "not graded" in stderr
    text = runner.invoke(app, ["run", *args, "--model", "scripted"])
    assert text.exit_code == 0
    assert "print(int(input()) * 2)" in text.stdout and "correct:" not in text.stdout


def test_inline_functional_tests_grade_through_the_checker(monkeypatch, script):
    scripted(monkeypatch, "```python\ndef add(a, b):\n    return a + b\n```")
    tests = json.dumps({"functional": "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"})
    code, payload, _ = invoke(
        "--script",
        str(script),
        "--question",
        "Write add(a, b).",
        "--domain",
        "code",
        "--tests",
        tests,
        "--model",
        "scripted",
    )
    assert code == 0 and payload["correct"] is True


# -- failures before any execution: one line, or one JSON object; exit code 2 ---------------


def test_a_script_that_fails_the_design_check_is_rejected(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("import socket\n" + SINGLE_AGENT)
    args = ["--script", str(bad), "--question", "q", "--model", str(tmp_path / "no-model")]
    code, payload, _ = invoke(*args)
    assert code == 2
    assert payload["status"] == "rejected" and payload["reason"] == "forbidden_import"
    assert "socket" in payload["detail"] and payload["design"]["script"].startswith("import")
    text = runner.invoke(app, ["run", *args])
    assert text.exit_code == 2 and text.stdout == ""
    assert text.stderr.count("\n") == 2  # the ungraded note, then the one-line error
    assert "rejected by the design check (forbidden_import)" in text.stderr


BAD_ARGUMENTS = [
    (["--domain", "code", "--tests", '{"inputs": [1]}'], "bad_tests", "inputs and outputs"),
    (["--domain", "code", "--tests", "missing.json"], "bad_tests", "neither inline JSON"),
    (["--domain", "code", "--tests", '[{"kind": "call", "input": [1]}]'], "bad_tests", "fn_name"),
    (["--tests", "[]"], "bad_arguments", "--tests is for --domain code"),
    (["--domain", "code", "--answer", "4"], "bad_arguments", "--answer grades math"),
    (["--dialect", "klingon"], "bad_arguments", "unknown --dialect 'klingon'"),
    (["--domain", "poetry"], "bad_arguments", "unknown domain 'poetry'"),
    (["--answer", " "], "bad_arguments", "non-empty --answer"),
]


@pytest.mark.parametrize(("extra", "reason", "message"), BAD_ARGUMENTS)
def test_bad_arguments_give_one_line_or_one_json_object(script, extra, reason, message):
    args = ["--script", str(script), "--question", "q", "--model", "unused", *extra]
    code, payload, _ = invoke(*args)
    assert code == 2 and sorted(payload) == ["detail", "reason", "status"]
    assert payload["status"] == "error" and payload["reason"] == reason
    assert message in payload["detail"] and "\n" not in payload["detail"]
    text = runner.invoke(app, ["run", *args])
    assert text.exit_code == 2 and text.stdout == ""
    error = [line for line in text.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and message in error[0] and "Traceback" not in text.stderr


def test_a_sandbox_that_cannot_start_is_reported(monkeypatch, script):
    def refuse(self):
        raise SandboxUnavailable(["fs_hidden"], "no mount namespace here")

    monkeypatch.setattr("metaagentx.rollout.environment.GradingEnvironment.start", refuse)
    code, payload, _ = invoke("--script", str(script), "--question", "q", "--model", "unused")
    assert code == 2 and payload["status"] == "error"
    assert payload["reason"] == "sandbox_unavailable" and "fs_hidden" in payload["detail"]


def test_an_unexpected_failure_is_still_one_json_object(monkeypatch, script):
    def boom(options):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(cli_run, "build_task", boom)
    code, payload, _ = invoke("--script", str(script), "--question", "q", "--model", "unused")
    assert code == 1
    assert payload["reason"] == "internal_error" and "unexpected" in payload["detail"]


# -- the tiny model: the real path ----------------------------------------------------------


def test_tiny_model_code_run_prints_exactly_one_json_line(tmp_path, script, tiny_model_dir):
    """A real process (what reaches file descriptor 1, not only sys.stdout), JSONL tests."""
    tests = tmp_path / "tests.jsonl"
    rows = [
        {"kind": "stdio", "input": "3\n", "expected": "6\n"},
        {"kind": "stdio", "input": "4\n", "expected": "8\n"},
    ]
    tests.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        "run",
        "--script",
        str(script),
        "--question",
        "Print twice n.",
        "--domain",
        "code",
        "--tests",
        str(tests),
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "12",
        "--device",
        "cpu",
        "--json",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "metaagentx", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["graded"] is True and payload["domain"] == "code"
    assert payload["status"] == "ok", payload["error"]  # the execution ran to its end: graded
    # the tiny model writes noise: never a passing program
    assert payload["correct"] is False and payload["grade"]["correct"] is False
    assert 0 < payload["trace"][0]["tokens"] <= 12


def test_tiny_model_design_rejected_as_json(tiny_model_dir: Path):
    code, payload, _ = invoke(
        "--question",
        "Compute 2+3.",
        "--model",
        str(tiny_model_dir),
        "--compact",
        "--design-max-new-tokens",
        "8",
        "--device",
        "cpu",
    )
    # eight tokens from an untrained model are never a whole script
    assert code == 2 and payload["status"] == "rejected"
    assert payload["reason"] == "no_code_block"
    assert payload["design"]["source"] == "model" and isinstance(payload["design"]["text"], str)


# -- the --tests formats and the --dialect option -------------------------------------------


def test_tests_formats_reuse_the_dataset_parsers(tmp_path: Path):
    stdio = code_task("q", STDIO_TESTS)
    assert [t.kind for t in stdio.public_tests + stdio.hidden_tests] == ["stdio", "stdio"]
    assert len(stdio.public_tests) == 1 and stdio.id == "cli"  # the first of several is shown
    call = code_task("q", {"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"})
    assert call.hidden_tests[0].kind == "call" and call.metadata["fn_name"] == "add"
    assert "add" in call.prompt  # the adapter tells agents which function is called
    check = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 3\n"
    humaneval = code_task("q", {"functional": check, "entry_point": "inc"})
    assert humaneval.hidden_tests[0].input.rstrip().endswith("check(inc)")
    assert len(humaneval.public_tests) == 1
    explicit = code_task(
        "q",
        {"public_tests": [], "hidden_tests": [{"kind": "stdio", "input": "1", "expected": "1"}]},
    )
    assert not explicit.public_tests and len(explicit.hidden_tests) == 1
    one = code_task("q", {"kind": "stdio", "input": "1", "expected": "1"})
    assert len(one.hidden_tests) == 1
    lines = tmp_path / "t.jsonl"
    lines.write_text(
        '{"kind": "stdio", "input": "1", "expected": "2"}\n\n'
        '{"kind": "stdio", "input": "2", "expected": "4"}\n'
    )
    assert len(read_tests(str(lines))) == 2


@pytest.mark.parametrize(
    "spec",
    [
        {"functional": "def check(candidate):\n    assert candidate(1)\n"},  # never called
        {"functional": "assert (\n"},
        {"nothing": 1},
        "text",
    ],
)
def test_tests_that_cannot_grade_are_refused(spec):
    with pytest.raises(RunFailure) as failure:
        code_task("q", spec)
    assert failure.value.reason == "bad_tests" and "\n" not in failure.value.detail


def test_dialect_is_the_sandbox_setting_and_tests_are_documented():
    options = RunOptions(question="q", model="m", dialect="pettingllms")
    config = build_config(cli_run._config_data(options))
    assert config.sandbox.dialect == "pettingllms"
    helped = runner.invoke(app, ["run", "--help"], terminal_width=200)
    assert "--dialect" in helped.stdout and "--tests" in helped.stdout
    assert "functional" in helped.stdout
