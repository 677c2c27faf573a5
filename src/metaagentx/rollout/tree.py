"""The Executor-Designer Hierarchical Rollout: M designs per problem, N executions per design.

All designer requests of a batch go out at once and all executions of all valid designs run at
once, so the request batcher merges every agent call of every running execution into shared
generation calls. Executions are graded as they finish; a straggler deadline cuts what is still
running (reward 0, counted). The result is a tree (problem -> designs -> executions -> agent
calls) that flattens into `Trajectory` records carrying the exact sampled ids.

Where executions run is pluggable (`Executions`): in this process (`LocalExecutions`, the
default) or on Ray rollout workers (`metaagentx.distributed.rollout_workers`); the tree, the
designs, the deadline and the rewards of designs stay with the engine either way.

Modes share this code: `designed` (the model designs), `single_agent` (no designer: one agent
answers) and `fixed:<pattern>` (one example design for every problem).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from metaagentx.llm.base import GenerationRequest, GenerationResult, SamplingParams
from metaagentx.mas.dialects import DIALECTS, DialectSetting
from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.extract import Design, extract_design
from metaagentx.rollout.progress import RolloutProgress
from metaagentx.rollout.prompts import (
    PROMPT_STYLES,
    PromptStyle,
    designer_prompt_messages,
    load_examples,
)
from metaagentx.rollout.records import problem_record
from metaagentx.rollout.rewards import (
    ExecutionReward,
    RewardConfig,
    count_overlong,
    design_reward,
    execution_reward,
    rejected_design_reward,
)
from metaagentx.rollout.trajectory import Trajectory, make_design_id, make_execution_id
from metaagentx.sandbox.runner import AgentCall, ExecutionResult, Runner, derive_seed
from metaagentx.tasks.base import Task
from metaagentx.tasks.math import start_grader

log = logging.getLogger(__name__)


class AsyncGenerator(Protocol):
    async def agenerate(self, request: GenerationRequest) -> GenerationResult: ...


def parse_mode(mode: str) -> tuple[str, str | None]:
    """'designed' | 'single_agent' | 'fixed:<pattern>' -> (kind, pattern)."""
    if mode in ("designed", "single_agent"):
        return mode, "single_agent" if mode == "single_agent" else None
    kind, _, pattern = mode.partition(":")
    if kind == "fixed" and pattern:
        return "fixed", pattern
    raise ValueError(
        f"unknown rollout mode '{mode}'; use designed, single_agent or fixed:<pattern>"
    )


@dataclass(frozen=True)
class TreeSettings:
    """Shape and sampling of one rollout (the paper: M=4, N=4, temperature 1)."""

    mode: str = "designed"
    num_designs: int = 4
    num_executions: int = 4
    designer_temperature: float = 1.0
    executor_temperature: float = 1.0
    top_p: float = 1.0
    designer_max_new_tokens: int = 1024
    executor_max_new_tokens: int = 512
    straggler_deadline_s: float = 600.0
    compact_prompt: bool = False
    designer_examples: tuple[str, ...] | None = None
    designer_prompt: PromptStyle | None = None  # None: "compact" or "full" by compact_prompt
    designs_dir: str | None = None  # example designs (prompt and fixed:<pattern>); None: packaged
    host_tools: tuple[tuple[str, str], ...] = ()  # (name, description) told to the designer
    dialect: DialectSetting = "auto"  # workflow API scripts are checked as (sandbox.dialect)
    code_test_timeout_s: float = 5.0
    rewards: RewardConfig = field(default_factory=RewardConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        parse_mode(self.mode)
        if self.num_designs < 1 or self.num_executions < 1:
            raise ValueError("num_designs and num_executions must be >= 1")
        if self.designer_prompt is not None and self.designer_prompt not in PROMPT_STYLES:
            raise ValueError(f"designer_prompt must be one of {PROMPT_STYLES}")
        if self.dialect not in ("auto", *DIALECTS):
            raise ValueError(f"dialect must be auto or one of {DIALECTS}")

    @property
    def prompt_style(self) -> PromptStyle:
        """The designer prompt's style: `designer_prompt`, else compact/full by compact_prompt."""
        if self.designer_prompt is not None:
            return self.designer_prompt
        return "compact" if self.compact_prompt else "full"

    @property
    def designs_per_problem(self) -> int:
        return self.num_designs if parse_mode(self.mode)[0] == "designed" else 1

    def executor_sampling(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.executor_temperature,
            top_p=self.top_p,
            max_new_tokens=self.executor_max_new_tokens,
        )


@dataclass
class ExecutionNode:
    """One execution of a design and its outcome."""

    execution_id: str
    result: ExecutionResult | None  # None when it never reported: cut, host error, worker lost
    reward: ExecutionReward
    grade: dict[str, Any] | None = None
    workers_lost: int = 0  # rollout workers that died while running it (it was re-run or lost)

    @property
    def status(self) -> str:
        """The execution's status, or why it has none ("cut", "host_error", "worker_lost")."""
        if self.result is not None:
            return self.result.status
        return self.reward.reason.removeprefix("status:")

    @property
    def calls(self) -> list[AgentCall]:
        return [] if self.result is None else self.result.trace

    @property
    def correct(self) -> bool:
        return bool(self.grade and self.grade.get("correct"))


@dataclass
class DesignNode:
    """One design: the designer's reply (None in modes without a designer) and its executions."""

    design_id: str
    design: Design
    generation: GenerationResult | None
    executions: list[ExecutionNode] = field(default_factory=list)
    reward: float = 0.0


@dataclass
class ProblemNode:
    task: Task
    designs: list[DesignNode] = field(default_factory=list)


@dataclass
class RolloutTree:
    """Everything one rollout produced, with its metrics and trainable records."""

    settings: TreeSettings
    problems: list[ProblemNode]
    step: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def designs(self) -> list[DesignNode]:
        return [d for p in self.problems for d in p.designs]

    def executions(self) -> list[tuple[ProblemNode, DesignNode, ExecutionNode]]:
        return [(p, d, e) for p in self.problems for d in p.designs for e in d.executions]

    def trajectories(self) -> list[Trajectory]:
        """Designer records (one per generated design, rejected ones included with reward 0) and
        executor records (one per agent call by agent, not the trace's timing-dependent order)."""
        out: list[Trajectory] = []
        for problem in self.problems:
            pid = problem.task.id
            for design in problem.designs:
                gen = design.generation
                if gen is not None and gen.response_ids:
                    out.append(
                        Trajectory(
                            role="designer",
                            problem_id=pid,
                            design_id=design.design_id,
                            execution_id=None,
                            agent=None,
                            prompt_ids=gen.prompt_ids,
                            response_ids=gen.response_ids,
                            old_logprobs=gen.logprobs,
                            reward=design.reward,
                            metadata={
                                "pattern": design.design.pattern,
                                "valid": design.design.valid,
                                "reason": design.design.reason,
                                "domain": problem.task.domain,
                            },
                        )
                    )
                for execution in design.executions:
                    by_agent = sorted(enumerate(execution.calls), key=lambda c: c[1].agent)
                    for index, call in by_agent:  # index: the call's place in the trace
                        if not call.response_ids:
                            continue
                        out.append(
                            Trajectory(
                                role="executor",
                                problem_id=pid,
                                design_id=design.design_id,
                                execution_id=execution.execution_id,
                                agent=call.agent,
                                prompt_ids=call.prompt_ids,
                                response_ids=call.response_ids,
                                old_logprobs=call.logprobs,
                                reward=execution.reward.total,
                                call_index=index,
                                metadata={
                                    "finish_reason": call.finish_reason,
                                    "domain": problem.task.domain,
                                },
                            )
                        )
        return out

    def metrics(self) -> dict[str, float]:
        """Flat `group/name` metrics: validity, rejections, patterns, statuses, rewards,
        sampled accuracy by domain, agents per execution, tokens and timings."""
        m: dict[str, float] = {}
        designs = self.designs()
        generated = [d for d in designs if d.generation is not None]
        if generated:
            m["designs/generated"] = len(generated)
            m["designs/valid_frac"] = sum(d.design.valid for d in generated) / len(generated)
            for reason, n in Counter(
                d.design.reason for d in generated if not d.design.valid
            ).items():
                m[f"designs/reject/{reason}"] = n
            m["reward/designer"] = sum(d.reward for d in generated) / len(generated)
            m["tokens/designer"] = sum(
                len(d.generation.response_ids) for d in generated if d.generation
            )
        for pattern, n in Counter(
            d.design.pattern or "unnamed" for d in designs if d.design.valid
        ).items():
            m[f"patterns/{pattern}"] = n
        runs = self.executions()
        if runs:
            m["executions/total"] = len(runs)
            for status, n in Counter(e.status for _, _, e in runs).items():
                m[f"executions/status/{status}"] = n
            m["reward/executor"] = sum(e.reward.total for _, _, e in runs) / len(runs)
            m["agents/calls_per_execution"] = sum(len(e.calls) for _, _, e in runs) / len(runs)
            m["tokens/executor"] = sum(len(c.response_ids) for _, _, e in runs for c in e.calls)
            if lost := sum(e.workers_lost for _, _, e in runs):
                m["executions/worker_lost"] = lost
        # sampled end-to-end accuracy: every sampled design counts, rejected ones as wrong
        by_domain: dict[str, list[float]] = {}
        for problem in self.problems:
            for design in problem.designs:
                outcomes = [float(e.correct) for e in design.executions] or [0.0]
                outcomes += [0.0] * (self.settings.num_executions - len(outcomes))
                by_domain.setdefault(problem.task.domain, []).extend(outcomes)
        for domain, values in by_domain.items():
            m[f"accuracy/{domain}"] = sum(values) / len(values)
        everything = [v for values in by_domain.values() for v in values]
        if everything:
            m["accuracy/all"] = sum(everything) / len(everything)
        for name, seconds in self.timings.items():
            m[f"time/{name}_s"] = seconds
        return m

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-able record per problem: designs, executions and agent turns as text."""
        return [problem_record(problem, self.step) for problem in self.problems]


def _gradable(task: Task) -> bool:
    """A task without a reference (e.g. a question typed at the CLI) is run, not graded."""
    return task.graded and (bool(task.reward_tests) if task.domain == "code" else True)


class Executions(Protocol):
    """Where a rollout's executions run and are graded: here (`LocalExecutions`) or on rollout
    workers (`distributed.rollout_workers.RayExecutions`)."""

    def prepare(self, tasks: Sequence[Task]) -> None:
        """Start what grading `tasks` needs, while their designs generate."""

    async def execute(
        self, task: Task, design: DesignNode, n: int, step: int, settings: TreeSettings
    ) -> ExecutionNode:
        """Execution `n` of `design` for `task`, run, graded and rewarded under `settings`."""


class LocalExecutions:
    """Executions in this process: `runner`'s sandbox, graded by `environment`."""

    def __init__(self, runner: Runner, environment: GradingEnvironment) -> None:
        self.runner = runner
        self.environment = environment

    def prepare(self, tasks: Sequence[Task]) -> None:
        if any(t.domain == "math" and _gradable(t) for t in tasks):
            start_grader()  # its processes start while the designs and executions generate

    async def execute(
        self, task: Task, design: DesignNode, n: int, step: int, settings: TreeSettings
    ) -> ExecutionNode:
        s = settings
        execution_id = make_execution_id(design.design_id, n)
        result = await self.runner.run(
            design.design.require_valid(),
            task.public_view(),
            tools=self.environment.tools(task),
            sampling=s.executor_sampling(),
            dialect=design.design.dialect,
            metadata={
                "seed": derive_seed(s.seed, step, execution_id),
                "problem_id": task.id,
                "design_id": design.design_id,
                "execution_id": execution_id,
            },
        )
        grade = None
        if result.status == "ok" and result.final_output is not None and _gradable(task):
            try:
                graded = await self.environment.agrade(task, result.final_output, execution_id)
                grade = graded.to_dict()
            except Exception:  # a grader fault must not end the rollout: scored as ungraded
                log.exception("grading %s failed", execution_id)
        reward = execution_reward(
            result.status,
            domain=task.domain,
            score=None if grade is None else grade["score"],
            correct=bool(grade and grade["correct"]),
            details=None if grade is None else grade["details"],
            final_output=result.final_output,
            overlong_turns=count_overlong(c.finish_reason for c in result.trace),
            config=s.rewards,
        )
        return ExecutionNode(execution_id, result, reward, grade)


class RolloutEngine:
    """Builds rollout trees with one generator (through a batcher) for the designs and
    `executions` (default: `LocalExecutions` on `runner` and `environment`) for the rest."""

    def __init__(self, generator: AsyncGenerator, runner: Runner, settings: TreeSettings,
                 environment: GradingEnvironment, executions: Executions | None = None) -> None:
        self.generator = generator
        self.runner = runner
        self.settings = settings
        self.environment = environment
        self.executions = (executions if executions is not None
                           else LocalExecutions(runner, environment))
        kind, pattern = parse_mode(settings.mode)
        self._fixed_design: Design | None = None
        if kind != "designed":
            examples = load_examples(settings.designs_dir)
            if pattern not in examples:
                raise ValueError(f"no example design '{pattern}'; known: {sorted(examples)}")
            self._fixed_design = extract_design(
                examples[pattern].as_reply(), dialect=settings.dialect
            )
            if not self._fixed_design.valid:
                raise ValueError(f"the example design '{pattern}' does not pass the static check")

    def rollout_sync(self, tasks: Sequence[Task], step: int = 0,
                     progress: RolloutProgress | None = None) -> RolloutTree:
        return asyncio.run(self.rollout(tasks, step, progress))

    async def rollout(self, tasks: Sequence[Task], step: int = 0,
                      progress: RolloutProgress | None = None) -> RolloutTree:
        """Designs for every task, then all executions at once; graded and rewarded."""
        if len({t.id for t in tasks}) != len(tasks):
            raise ValueError("task ids in one rollout must be unique")
        s = self.settings
        started = time.monotonic()
        self.executions.prepare(tasks)
        problems = [ProblemNode(task) for task in tasks]
        await self._design(problems, step)
        designed = time.monotonic()
        execute = self.executions.execute
        futures = {
            asyncio.ensure_future(execute(problem.task, design, n, step, s)): (design, n)
            for problem in problems
            for design in problem.designs
            if design.design.valid
            for n in range(s.num_executions)
        }
        if progress is not None:
            progress.designed(len(futures))
            for future in futures:
                future.add_done_callback(lambda _: progress.executed())
        if futures:
            done, late = await asyncio.wait(futures, timeout=s.straggler_deadline_s)
            for future in late:
                future.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for future, (design, n) in futures.items():  # insertion order: n ascending
                execution_id = make_execution_id(design.design_id, n)
                if future in done and future.exception() is None:
                    node = future.result()
                else:  # cut by the deadline, or a host fault: that execution alone scores 0
                    reason = "status:cut" if future not in done else "status:host_error"
                    if future in done:
                        log.error("execution %s failed on the host", execution_id,
                                  exc_info=future.exception())
                    node = ExecutionNode(execution_id, None, ExecutionReward(0.0, reason=reason))
                design.executions.append(node)
        for design in (d for p in problems for d in p.designs):
            design.reward = (
                design_reward([e.reward.total for e in design.executions], s.num_executions)
                if design.design.valid
                else rejected_design_reward()
            )
        timings = {"designs": designed - started, "executions": time.monotonic() - designed}
        return RolloutTree(s, problems, step, timings)

    async def _design(self, problems: list[ProblemNode], step: int) -> None:
        s = self.settings
        if self._fixed_design is not None:
            for problem in problems:
                problem.designs = [
                    DesignNode(make_design_id(problem.task.id, 0), self._fixed_design, None)
                ]
            return
        requests = []
        for problem in problems:
            messages = designer_prompt_messages(s, problem.task)
            for m in range(s.num_designs):
                sampling = SamplingParams(
                    temperature=s.designer_temperature,
                    top_p=s.top_p,
                    max_new_tokens=s.designer_max_new_tokens,
                    seed=derive_seed(s.seed, step, problem.task.id, "design", m),
                )
                requests.append(
                    (
                        problem,
                        m,
                        GenerationRequest(messages=messages, sampling=sampling, role="designer"),
                    )
                )
        results = await asyncio.gather(*(self.generator.agenerate(r) for _, _, r in requests))
        for (problem, m, _), result in zip(requests, results, strict=True):
            design = extract_design(result.text, task_prompt=problem.task.prompt, dialect=s.dialect)
            problem.designs.append(DesignNode(make_design_id(problem.task.id, m), design, result))
