"""The grading environment: built once from the config, it owns the sandbox, the tools and the
graders; grading commands refuse to run when executions could read reference data."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.config import build_config
from metaagentx.rollout.environment import grading_environment
from metaagentx.sandbox.layers import HiddenFilesystemMissing
from metaagentx.tasks.base import Task, TestCase

SLOW = "import time\ntime.sleep(float(input()))\nprint('done')\n"


def _code_task(**metadata: object) -> Task:
    tests = (TestCase("stdio", "1.5", "done"), TestCase("stdio", "0", "wrong"),
             TestCase("stdio", "0", "done"))
    return Task(id="c", domain="code", prompt="p", public_tests=tests[:1],
                hidden_tests=tests[1:], metadata=dict(metadata))


def test_config_reaches_the_graders_and_the_tools() -> None:
    config = build_config(overrides=["rollout.code_test_timeout_s=0.5",
                                     "sandbox.tool_timeout_s=0.5"])
    environment = grading_environment(config)
    try:
        slow = environment.grade(_code_task(), f"```python\n{SLOW}```")
        assert slow.details["tests"][0]["status"] == "timeout"  # 1.5 s program, 0.5 s limit
        tool = environment.tools(_code_task())["python"]({"code": "import time\ntime.sleep(2)"})
        assert tool.startswith("status: timeout")
        own = environment.grade(_code_task(timeout_s=5.0), f"```python\n{SLOW}```")
        assert own.details["tests"][0]["passed"]  # the benchmark's own limit wins
    finally:
        environment.close()


@pytest.mark.parametrize(("reward", "ran", "passed"),
                         [("all_passed", 2, 1), ("pass_fraction", 3, 2)])
def test_pass_fraction_runs_every_test(reward: str, ran: int, passed: int) -> None:
    config = build_config(overrides=[f"rollout.code_reward={reward}"])
    environment = grading_environment(config)
    try:
        grade = environment.grade(_code_task(timeout_s=5.0), f"```python\n{SLOW}```")
    finally:
        environment.close()
    assert len(grade.details["tests"]) == ran and grade.details["passed"] == passed


def test_run_tests_tool_sees_only_public_tests() -> None:
    environment = grading_environment(build_config(overrides=["rollout.code_test_timeout_s=5"]))
    try:
        out = environment.tools(_code_task())["run_tests"]({"code": SLOW})
    finally:
        environment.close()
    assert out == "passed 1/1 public tests"


def test_tools_and_grading_run_on_the_fair_pool() -> None:
    environment = grading_environment(build_config())
    task = Task(id="m", domain="math", prompt="q", answer="42")

    async def go() -> list[bool]:
        grades = await asyncio.gather(*(environment.agrade(task, f"\\boxed{{{n}}}", f"e{n}")
                                        for n in (41, 42)))
        return [g.correct for g in grades]

    try:
        assert asyncio.run(go()) == [False, True]
    finally:
        environment.close()


def test_refuses_without_a_hidden_filesystem_unless_unsafe_by_name() -> None:
    refused = grading_environment(build_config(overrides=["sandbox.isolation=process"]))
    try:
        with pytest.raises(HiddenFilesystemMissing, match=r"sandbox\.isolation=unsafe"):
            refused.start()
    finally:
        refused.close()
    unsafe = grading_environment(build_config(overrides=["sandbox.isolation=unsafe"]))
    try:
        unsafe.start()
    finally:
        unsafe.close()


@pytest.mark.parametrize("command", ["train", "eval", "sft collect", "rollout", "quickstart"])
def test_grading_commands_refuse_with_one_line(command: str, tmp_path) -> None:
    out = tmp_path / "out"
    if command == "quickstart":
        args = ["quickstart", "--fast", "--out", str(out), "sandbox.isolation=process"]
    else:
        config = tmp_path / "c.yaml"
        config.write_text(f"output_dir: {out}\nmodel:\n  path: {tmp_path / 'no-model'}\n"
                          "sandbox:\n  isolation: process\n")
        args = [*command.split(), str(config)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "hidden filesystem" in message and "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    assert not out.exists() or not any(out.rglob("*.safetensors")), "a model was built or saved"
