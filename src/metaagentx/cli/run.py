"""`metaagentx run`: one question, one design (a script or the model's), one execution.

Kept in its own module because it is the one command with its own input format (`--tests`)
and its own output contract: with `--json`, stdout holds exactly one JSON object whatever happens
(a graded or ungraded run, a rejected design, a sandbox that cannot start, bad arguments), so
scripts can read it without scraping; progress and notes go to stderr. Exit codes: 0 when an
execution ran to an end (even a wrong or failed one), 1 when it never reported (cut, host
fault), 2 for user errors and rejected designs.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import json
import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import typer

from metaagentx.cli.common import console, err_console
from metaagentx.mas.dialects import DialectSetting
from metaagentx.rollout.extract import Design, check_script
from metaagentx.rollout.tree import DesignNode, ExecutionNode
from metaagentx.sandbox.records import ExecutionResult
from metaagentx.sandbox.settings import IsolationMode
from metaagentx.tasks.adapters import MalformedRow, apps_raw_row, functional_tests, split_public
from metaagentx.tasks.base import Task, TestCase
from metaagentx.tasks.datasets import read_rows

log = logging.getLogger(__name__)

DOMAINS = ("math", "code")
DIALECT_SETTINGS: tuple[str, ...] = get_args(DialectSetting)
ISOLATIONS: tuple[str, ...] = get_args(IsolationMode)
_TESTS_FIX = "see `metaagentx run --help` for the --tests formats"


@dataclass(frozen=True)
class RunOptions:
    """The `run` command's arguments, as typed."""

    question: str
    model: str
    script: Path | None = None
    domain: str = "math"
    answer: str | None = None
    tests: str | None = None
    dialect: str = "auto"
    temperature: float = 0.0
    max_new_tokens: int = 256
    design_max_new_tokens: int = 1024
    compact: bool = False
    isolation: str = "auto"
    timeout_s: float = 120.0
    device: str = "auto"
    dtype: str = "auto"
    as_json: bool = False


class RunFailure(Exception):
    """A run that ends before any execution: one line (`detail`) naming the problem and fix."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        status: str = "error",
        design: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.design = status, reason, detail, design

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason, "detail": self.detail}
        if self.design is not None:
            out["design"] = self.design
        return out


@dataclass
class Outcome:
    """What one run leaves: the design that ran and its execution (graded or not)."""

    task: Task
    design: dict[str, Any]
    node: ExecutionNode


def run_command(options: RunOptions) -> int:
    """Run and report; returns the exit code (see the module docstring)."""
    try:
        outcome = execute_run(options)
    except RunFailure as failure:
        _report_failure(failure, options.as_json)
        return 2
    except Exception as exc:
        if not options.as_json:
            raise
        log.exception("run failed")  # the traceback on stderr, the verdict as JSON on stdout
        typer.echo(
            json.dumps(
                {"status": "error", "reason": "internal_error", "detail": _one_line(repr(exc))}
            )
        )
        return 1
    if options.as_json:
        typer.echo(json.dumps(outcome_payload(outcome)))
    else:
        _print_outcome(outcome)
    return 0 if outcome.node.result is not None else 1


def execute_run(options: RunOptions) -> Outcome:
    """Check the arguments, build the task, then design (unless a script is given) and run."""
    from metaagentx.config import ConfigError, build_config

    _check_arguments(options)
    task = build_task(options)
    if not task.graded:
        what = "--answer" if task.domain == "math" else "--tests"
        err_console.print(
            f"note: no {what}: this run is not graded (its answer is still extracted and printed)",
            highlight=False,
            soft_wrap=True,
        )
    try:
        config = build_config(_config_data(options))
    except ConfigError as exc:
        raise RunFailure("bad_arguments", str(exc)) from None
    script = (
        None if options.script is None else _checked_script(options.script, task, options.dialect)
    )
    return _execute(options, config, task, script)


def _check_arguments(o: RunOptions) -> None:
    checks = (
        (o.domain in DOMAINS, f"unknown domain '{o.domain}'; choose math or code"),
        (
            o.dialect in DIALECT_SETTINGS,
            f"unknown --dialect '{o.dialect}'; choose {', '.join(DIALECT_SETTINGS)}",
        ),
        (
            o.isolation in ISOLATIONS,
            f"unknown --isolation '{o.isolation}'; choose {', '.join(ISOLATIONS)}",
        ),
        (o.script is None or o.script.is_file(), f"script '{o.script}' does not exist"),
        (
            o.domain == "math" or o.answer is None,
            "--answer grades math; give code tests with --tests",
        ),
        (
            o.domain == "code" or o.tests is None,
            "--tests is for --domain code; grade a math run with --answer",
        ),
    )
    for ok, message in checks:
        if not ok:
            raise RunFailure("bad_arguments", message)


def build_task(o: RunOptions) -> Task:
    """The question as a task: graded by --answer (math) or --tests (code), else run only."""
    if o.domain == "code":
        if o.tests is None:
            return Task(id="cli", domain="code", prompt=o.question, source="cli", graded=False)
        return code_task(o.question, read_tests(o.tests))
    try:
        return Task(
            id="cli",
            domain="math",
            prompt=o.question,
            answer=o.answer,
            source="cli",
            graded=o.answer is not None,
        )
    except ValueError as exc:
        raise RunFailure("bad_arguments", f"{exc}; give a non-empty --answer") from None


# -- --tests: the test formats our code tasks already read ----------------------------------


def read_tests(value: str) -> Any:
    """`--tests` as parsed JSON: inline (it starts with `{` or `[`), a .json file, or a .jsonl
    file (one test per line, read by the datasets' own `read_rows`)."""
    text = value.strip()
    if text.startswith(("{", "[")):
        return _json_tests(text)
    path = Path(value).expanduser()
    if not path.is_file():
        raise RunFailure(
            "bad_tests",
            f"--tests '{value}' is neither inline JSON nor an existing file; {_TESTS_FIX}",
        )
    rows: list[Any] = []
    try:
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            return _json_tests(path.read_text(encoding="utf-8"))
        for row in read_rows(path):  # blank lines skipped: "line N" counts the others
            rows.append(row)
    except json.JSONDecodeError as exc:
        raise RunFailure(
            "bad_tests", f"line {len(rows) + 1} of --tests is not JSON ({exc}); {_TESTS_FIX}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFailure("bad_tests", f"cannot read --tests file '{value}': {exc}") from None
    return rows[0] if len(rows) == 1 else rows


def _json_tests(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFailure("bad_tests", f"--tests is not JSON ({exc}); {_TESTS_FIX}") from None


def code_task(question: str, spec: Any) -> Task:
    """A graded code task from parsed `--tests`, through the dataset adapters' own parsers."""
    try:
        task = _parse_tests(question, spec)
        for test in (*task.public_tests, *task.hidden_tests):
            if test.kind == "call" and not test.fn_name:
                raise ValueError('a call test needs "fn_name"')
    except (MalformedRow, KeyError, TypeError, ValueError, SyntaxError) as exc:
        reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise RunFailure("bad_tests", f"--tests: {reason}; {_TESTS_FIX}") from None
    return dataclasses.replace(task, id="cli", source="cli")


def _parse_tests(question: str, spec: Any) -> Task:
    if isinstance(spec, list):
        if not spec:
            raise ValueError("the list of tests is empty")
        public, hidden = split_public([TestCase.from_dict(t) for t in spec])
        return Task("cli", "code", question, public_tests=public, hidden_tests=hidden)
    if not isinstance(spec, dict):
        raise ValueError(f"expected a JSON object or list, got {type(spec).__name__}")
    if "kind" in spec:  # one test
        return _parse_tests(question, [spec])
    if "inputs" in spec or "outputs" in spec:  # APPS input_output / CodeContests tests
        return apps_raw_row({"question": question, "input_output": spec}, 0, "cli")
    if "functional" in spec:  # LeetCode / HumanEval check blocks, or plain asserts
        return _functional_task(question, spec)
    if "public_tests" in spec or "hidden_tests" in spec:  # our own Task schema
        keys = ("public_tests", "hidden_tests", "metadata", "grade_public")
        row = {k: spec[k] for k in keys if k in spec}
        return Task.from_dict({**row, "id": "cli", "domain": "code", "prompt": question})
    raise ValueError(f"unknown test format with keys {sorted(spec)}")


def _functional_task(question: str, spec: dict[str, Any]) -> Task:
    code, entry = spec["functional"], spec.get("fn_name") or spec.get("entry_point")
    if not isinstance(code, str) or not code.strip():
        raise ValueError('"functional" must be Python test code')
    tree = ast.parse(code)
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    calls_check = any(
        isinstance(n, ast.Expr)
        and isinstance(n.value, ast.Call)
        and isinstance(n.value.func, ast.Name)
        and n.value.func.id == "check"
        for n in tree.body
    )
    if defines_check and not calls_check:  # a check() never called would pass anything
        if not entry:
            raise ValueError(
                'check(candidate) is never called: add check(<function>) or give "fn_name"'
            )
        code = f"{code.rstrip()}\n\n\ncheck({entry})\n"
    if defines_check:
        public, hidden = functional_tests(code)
    else:
        public, hidden = (), (TestCase("functional", code.strip() + "\n"),)
    metadata = {"fn_name": entry} if entry else {}
    return Task(
        "cli", "code", question, public_tests=public, hidden_tests=hidden, metadata=metadata
    )


# -- the run --------------------------------------------------------------------------------


def _config_data(o: RunOptions) -> dict[str, Any]:
    return {
        "model": {"path": o.model, "device": o.device, "dtype": o.dtype},
        "generation": {"temperature": o.temperature},
        "rollout": {
            "designer_max_new_tokens": o.design_max_new_tokens,
            "executor_max_new_tokens": o.max_new_tokens,
            "compact_prompt": o.compact,
            "num_designs": 1,
            "num_executions": 1,
            "straggler_deadline_s": max(600.0, 2 * o.timeout_s),  # the sandbox's limit first
        },
        "sandbox": {"isolation": o.isolation, "timeout_s": o.timeout_s, "dialect": o.dialect},
    }


def _checked_script(path: Path, task: Task, dialect: str) -> Design:
    """A `--script` design, with the static check every model design gets (its detail names
    the fix)."""
    try:
        script = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFailure("bad_arguments", f"cannot read script '{path}': {exc}") from None
    check = check_script(script, task_prompt=task.prompt, dialect=dialect)
    design = Design.checked(script, check)
    if not design.valid:
        raise RunFailure(
            str(design.reason),
            f"script '{path}' was rejected by the design check ({design.reason}): {design.detail}",
            status="rejected",
            design=_design_record(design, "script", None, path),
        )
    return design


def _execute(o: RunOptions, config: Any, task: Task, script: Design | None) -> Outcome:
    from metaagentx.rollout.factory import open_rollout
    from metaagentx.sandbox.layers import SandboxUnavailable

    with ExitStack() as resources:
        try:
            stack = resources.enter_context(open_rollout(config))
        except SandboxUnavailable as exc:
            raise RunFailure("sandbox_unavailable", _one_line(str(exc))) from None
        except (OSError, ValueError) as exc:
            raise RunFailure(
                "model_unavailable", f"cannot load model '{o.model}': {_one_line(str(exc))}"
            ) from None
        try:
            if script is not None:
                return _run_script(stack, task, script, o.script)
            return _run_designed(stack, task)
        except SandboxUnavailable as exc:
            raise RunFailure("sandbox_unavailable", _one_line(str(exc))) from None
        except (OSError, ValueError) as exc:  # e.g. a question over generation.max_prompt_tokens
            raise RunFailure("run_failed", _one_line(str(exc))) from None


def _run_script(stack: Any, task: Task, design: Design, path: Path | None) -> Outcome:
    """The script through the rollout's own executions: the same run, grade and reward."""
    from metaagentx.rollout.trajectory import make_design_id

    node = DesignNode(make_design_id(task.id, 0), design, None)
    executions = stack.engine.executions
    executions.prepare([task])
    execution = asyncio.run(executions.execute(task, node, 0, 0, stack.engine.settings))
    return Outcome(task, _design_record(design, "script", None, path), execution)


def _run_designed(stack: Any, task: Task) -> Outcome:
    """One model design, statically checked, then one execution of it."""
    node = stack.engine.rollout_sync([task]).designs()[0]
    text = node.generation.text if node.generation else None
    record = _design_record(node.design, "model", text, None)
    if not node.design.valid:
        raise RunFailure(
            str(node.design.reason),
            f"the model's design was rejected ({node.design.reason}): {node.design.detail}; "
            "try another --temperature or a larger --design-max-new-tokens",
            status="rejected",
            design=record,
        )
    return Outcome(task, record, node.executions[0])


def _design_record(
    design: Design, source: str, text: str | None, path: Path | None
) -> dict[str, Any]:
    return {
        "source": source,
        "path": None if path is None else str(path),
        "pattern": design.pattern,
        "dialect": design.dialect,
        "valid": design.valid,
        "reason": design.reason,
        "detail": design.detail,
        "script": design.script,
        "text": text,
    }


# -- reporting ------------------------------------------------------------------------------


def outcome_payload(outcome: Outcome) -> dict[str, Any]:
    """The JSON of a run that executed: status, output, answer (the program for code), grade
    (null when ungraded), usage, a summary of the agent turns, and the design."""
    node, result = outcome.node, outcome.node.result
    base: dict[str, Any] = {
        "status": node.status,
        "domain": outcome.task.domain,
        "graded": outcome.task.graded,
        "grade": node.grade,
        "correct": None if node.grade is None else node.grade["correct"],
    }
    if result is None:
        return {
            **base,
            "final_output": None,
            "answer": None,
            "usage": {},
            "trace": [],
            "error": f"the execution never reported ({node.status})",
            "error_kind": None,
            "isolation": [],
            "duration_s": None,
            "design": outcome.design,
        }
    return {
        **base,
        "final_output": result.final_output,
        "answer": result.answer,
        "error": result.error,
        "error_kind": result.error_kind,
        "usage": result.usage,
        "duration_s": round(result.duration, 3),
        "isolation": result.isolation,
        "trace": [
            {
                "agent": c.agent,
                "tokens": len(c.response_ids),
                "finish_reason": c.finish_reason,
                "text": c.text,
            }
            for c in result.trace
        ],
        "design": outcome.design,
    }


def _report_failure(failure: RunFailure, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(failure.payload()))
        return
    text = (failure.design or {}).get("text")
    if text:
        console.print(text, markup=False, highlight=False)
    err_console.print(f"[bold red]error:[/] {failure.detail}", soft_wrap=True, highlight=False)


def _print_outcome(outcome: Outcome) -> None:
    if outcome.design["text"] is not None:
        console.print(outcome.design["text"], markup=False, highlight=False)
    result = outcome.node.result
    if result is None:
        err_console.print(
            f"[bold red]error:[/] the execution never reported ({outcome.node.status})",
            highlight=False,
        )
        return
    _print_execution(result, outcome.task.domain)
    grade = outcome.node.grade
    if grade is not None:
        details = grade.get("details") or {}
        passed = f" ({details['passed']}/{details['total']} tests)" if "total" in details else ""
        console.print(f"correct: {grade['correct']}{passed}", highlight=False)


def _print_execution(result: ExecutionResult, domain: str) -> None:
    for call in result.trace:
        console.rule(
            f"[bold]{call.agent}[/] ({len(call.response_ids)} tokens, {call.finish_reason})"
        )
        console.print(call.text, markup=False, highlight=False)
    console.rule()
    if domain == "code":
        console.print("program:" if result.answer else "program: None", highlight=False)
        if result.answer:
            console.print(result.answer, markup=False, highlight=False)
    shown = "" if domain == "code" else f"  answer: {result.answer!r}"
    console.print(
        f"status: [bold]{result.status}[/]{shown}  agent calls: {len(result.trace)}  "
        f"{result.duration:.2f} s",
        highlight=False,
    )
    if result.error:
        console.print(
            f"{result.error_kind}: {result.error}", style="red", markup=False, highlight=False
        )
    console.print(f"[dim]isolation: {', '.join(result.isolation)}[/]", highlight=False)


def _one_line(text: str) -> str:
    return " ".join(text.split())
