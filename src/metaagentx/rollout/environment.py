"""The grading environment: everything between an execution and its reward, built in one place.

One object, made once from `config.sandbox` and the rollout's grading settings
(`grading_environment(config)`), owns:
- the sandbox's fork server (`client`), shared by workflow executions, the `python` tool and the
  code graders, so all of them run under the configured limits and isolation;
- the program runner (`run_program`, `run_test`: the `CodeSandbox` that code grading uses);
- answer extraction (`extract_answer`) and grading (`grade`, `agrade`), with the configured
  per-test timeout and, for `pass_fraction` rewards, every test run (no early stop);
- the built-in tools an execution gets (`tools`: `python` for every task, `run_tests` on the
  public tests for code tasks) and the user's host-side tools (`config.tools.host`, loaded here;
  the runner it builds announces them to the child as `task["host_tools"]`);
- a bounded thread pool, fair across executions, on which the built-in tools and grading run
  (host tools are coroutines the runner awaits: each call has a thread of its own, so a slow
  or hung one holds no pool thread).

Rollout, trainer, SFT and evaluation get it from `grading_environment`; nothing else wires
graders or tools by hand. Before grading anything, `start()` makes sure reference data is out of
the executions' reach (a hidden filesystem), unless the user chose the unsafe mode by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from metaagentx.rollout.host_tools import HostToolHandler, load_host_tools
from metaagentx.sandbox.client import ForkServerClient
from metaagentx.sandbox.pools import FairPool
from metaagentx.sandbox.programs import ProgramResult, run_program, run_test
from metaagentx.sandbox.runner import AsyncGenerator, Runner, ToolHandler
from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.tasks.base import Grade, Task
from metaagentx.tasks.code import extract_program, grade_task_program
from metaagentx.tasks.math import extract_answer

if TYPE_CHECKING:
    from metaagentx.config import Config


def format_program_result(result: ProgramResult) -> str:
    """What the agent sees from the python tool: status, then (truncated) stdout and stderr."""
    parts = [f"status: {result.status} (exit code {result.returncode})"]
    if result.stdout:
        parts.append("stdout:\n" + result.stdout)
    if result.stderr:
        parts.append("stderr:\n" + result.stderr)
    if result.status == "output_limit":
        parts.append("[output truncated]")
    return "\n".join(parts)


class GradingEnvironment:
    """See the module docstring. Thread-safe; `close()` stops the fork server and the pool."""

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        code_test_timeout_s: float = 5.0,
        pass_fraction: bool = False,
        workers: int | None = None,
        client: ForkServerClient | None = None,
        host_tools: Sequence[HostToolHandler] = (),
    ) -> None:
        """`host_tools`: loaded host-side tools (`load_host_tools`), offered to every execution."""
        self.settings = settings or SandboxSettings()
        self.host_tools = list(host_tools)
        self.code_test_timeout_s = code_test_timeout_s
        self.stop_at_first_failure = not pass_fraction
        self.client = client or ForkServerClient(self.settings)
        self.pool = FairPool(workers)

    def start(self) -> None:
        """Start the fork server and refuse (SandboxUnavailable, one line naming the fix) when
        executions could read reference data, unless `sandbox.isolation` is the unsafe mode."""
        self.client.require_hidden_filesystem()

    def close(self) -> None:
        self.pool.close()
        self.client.close()
        for tool in self.host_tools:
            tool.close()

    def runner(self, generator: AsyncGenerator) -> Runner:
        """A workflow runner on this environment's fork server, tool pool and answer format."""
        return Runner(generator, self.settings, answer_extractor=self.extract_answer,
                      client=self.client, pool=self.pool,
                      host_tools=[tool.spec() for tool in self.host_tools])

    # -- the program runner (tasks.code.CodeSandbox) ------------------------------------------
    def run_program(self, source: str, **options: Any) -> ProgramResult:
        return run_program(source, settings=self.settings, client=self.client, **options)

    def run_test(self, program: str, check: dict[str, Any], **options: Any) -> ProgramResult:
        return run_test(program, check, settings=self.settings, client=self.client, **options)

    # -- answers and grades ------------------------------------------------------------------
    @staticmethod
    def extract_answer(text: str, task: Mapping[str, Any]) -> str | None:
        """An execution's answer: the program of a code task, the boxed answer of a math one."""
        return extract_program(text) if task.get("domain") == "code" else extract_answer(text)

    def grade(self, task: Task, final_output: str) -> Grade:
        """Grade a final output; code runs here, under this environment's sandbox. A task's own
        `timeout_s` (benchmark metadata) wins over `code_test_timeout_s`."""
        if task.domain != "code":
            return task.grade(final_output)
        return task.grade(final_output, sandbox=self, timeout_s=self._test_timeout(task),
                          stop_at_first_failure=self.stop_at_first_failure,
                          memory_mb=self.settings.tool_memory_mb)

    def _test_timeout(self, task: Task) -> float:
        """Per code test: the benchmark's own limit, else `code_test_timeout_s`."""
        return float(task.metadata.get("timeout_s", self.code_test_timeout_s))

    async def agrade(self, task: Task, final_output: str, owner: str) -> Grade:
        """`grade` on the shared pool, in `owner`'s (an execution's) fair share of it."""
        return await self.pool.run(owner, self.grade, task, final_output)

    # -- tools ---------------------------------------------------------------------------------
    def tools(self, task: Task) -> dict[str, ToolHandler]:
        """The tools of an execution of `task`: `python`, `run_tests` (public tests only) for
        code, and every host-side tool (the runner announces the same ones to the child). The
        built-ins are plain functions the runner calls on the pool; host tools' handlers are
        coroutine functions it awaits on its event loop."""
        tools: dict[str, ToolHandler] = {"python": self.python_tool}
        if task.domain == "code":
            tools["run_tests"] = lambda arguments: self._run_tests(task, arguments)
        tools.update({tool.name: tool.handler for tool in self.host_tools})
        return tools

    def python_tool(self, arguments: dict[str, Any]) -> str:
        """The `python` tool: run `arguments["code"]` (with `arguments["stdin"]`) in a nested
        sandbox child. The agent gets readable text; `"result": "json"` (the authors'
        `subprocess` mapping) gets `{"status", "returncode", "stdout", "stderr"}` as JSON."""
        code, stdin = arguments.get("code"), arguments.get("stdin", "")
        if not isinstance(code, str) or not isinstance(stdin, str):
            raise ValueError("the python tool needs a string 'code' argument (and string 'stdin')")
        s = self.settings
        result = self.run_program(code, stdin=stdin, timeout_s=s.tool_timeout_s,
                                  memory_mb=s.tool_memory_mb,
                                  max_output_bytes=s.tool_max_output_bytes)
        if arguments.get("result") == "json":
            return json.dumps({"status": result.status, "returncode": result.returncode,
                               "stdout": result.stdout, "stderr": result.stderr})
        return format_program_result(result)

    def _run_tests(self, task: Task, arguments: dict[str, Any]) -> str:
        code = arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            return "run_tests needs the candidate program as a string 'code' argument"
        if not task.public_tests:
            return "this task has no public tests"
        graded = grade_task_program(task, code, task.public_tests, sandbox=self,
                                    timeout_s=self._test_timeout(task), stop_at_first_failure=False,
                                    memory_mb=self.settings.tool_memory_mb)
        lines = [f"passed {graded.passed}/{graded.total} public tests"]
        lines += [f"test {d['index']}: {d['reason'] or 'failed'}"
                  for d in graded.details if not d["passed"]]
        return "\n".join(lines)


def grading_environment(config: Config) -> GradingEnvironment:
    """The one factory: `config.sandbox`, the rollout's grading settings and `config.tools.host`
    (functions imported now: HostToolError, one line naming the tool, when one cannot be)."""
    r = config.rollout
    host_tools = load_host_tools(config.tools.host)
    return GradingEnvironment(config.sandbox, code_test_timeout_s=r.code_test_timeout_s,
                              pass_fraction=r.code_reward == "pass_fraction",
                              host_tools=host_tools)


def require_safe_grading(config: Config) -> None:
    """Refuse (HiddenFilesystemMissing) at once when `config.sandbox` cannot hide reference data
    from executions: for commands that would otherwise build or train before their first
    rollout (the quickstart)."""
    environment = grading_environment(config)
    try:
        environment.start()
    finally:
        environment.close()
