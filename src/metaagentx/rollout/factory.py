"""From a run config to the objects a rollout needs: tasks, generator, batcher, grading
environment, runner, engine.

The CLI, the trainer and evaluation all build rollouts the same way; this is that one way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from metaagentx.config import Config
from metaagentx.llm import Generator, make_generator
from metaagentx.llm.batcher import ContinuousBatcher, RequestBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.rollout.environment import GradingEnvironment, grading_environment
from metaagentx.rollout.rewards import RewardConfig
from metaagentx.rollout.tree import RolloutEngine, TreeSettings
from metaagentx.sandbox.runner import Runner
from metaagentx.tasks.base import Task
from metaagentx.tasks.datasets import load_tasks
from metaagentx.tasks.mixture import TaskMixture


def tree_settings(config: Config, mode: str | None = None) -> TreeSettings:
    """The rollout's shape and sampling from `config.rollout` / `config.generation`, and the
    workflow dialect designs are checked as (`config.sandbox.dialect`, as they will run)."""
    r, g = config.rollout, config.generation
    return TreeSettings(
        mode=mode or r.mode,
        num_designs=r.num_designs,
        num_executions=r.num_executions,
        designer_temperature=g.temperature
        if r.designer_temperature is None
        else r.designer_temperature,
        executor_temperature=g.temperature
        if r.executor_temperature is None
        else r.executor_temperature,
        top_p=g.top_p,
        designer_max_new_tokens=r.designer_max_new_tokens,
        executor_max_new_tokens=r.executor_max_new_tokens,
        straggler_deadline_s=r.straggler_deadline_s,
        compact_prompt=r.compact_prompt,
        designer_examples=None if r.designer_examples is None else tuple(r.designer_examples),
        designer_prompt=r.designer_prompt,
        designs_dir=r.designs_dir,
        host_tools=tuple((t.name, t.description or "") for t in config.tools.host),
        dialect=config.sandbox.dialect,
        code_test_timeout_s=r.code_test_timeout_s,
        rewards=RewardConfig(
            code_reward=r.code_reward,
            format_bonus=r.format_bonus,
            overlong_penalty=r.overlong_penalty,
            stray_code_penalty=r.stray_code_penalty,
        ),
        seed=config.seed,
    )


def train_mixture(config: Config) -> TaskMixture:
    """The training task stream of `config.data` (sources mixed by `data.weights`)."""
    d = config.data
    sources = [
        load_tasks(
            name, d.train_split, limit=d.limit, strict=d.strict, fields=d.fields, format=d.format
        )
        for name in d.train
    ]
    return TaskMixture(sources, d.weights, seed=config.seed, names=d.train)


def validation_tasks(config: Config) -> list[Task]:
    """Held-out tasks: the first `data.val_size` of every validation source."""
    d = config.data
    return [
        task
        for name in d.val
        for task in load_tasks(
            name, d.val_split, limit=d.val_size, strict=d.strict, fields=d.fields, format=d.format
        )
    ]


@dataclass
class RolloutStack:
    """A running generator + batcher + grading environment + runner + engine; `close()` stops
    them."""

    generator: Generator
    batcher: RequestBatcher | ContinuousBatcher
    environment: GradingEnvironment
    runner: Runner
    engine: RolloutEngine

    def close(self) -> None:
        self.runner.close()
        self.environment.close()
        self.batcher.close()


def make_batcher(generator: Generator, config: Config) -> RequestBatcher | ContinuousBatcher:
    """Continuous batching for the in-process hf backend; request batching for the others.
    Both fail a prompt over `generation.max_prompt_tokens` alone, before any compute."""
    kind = ContinuousBatcher if isinstance(generator, HFGenerator) else RequestBatcher
    return kind(
        generator,
        max_batch_size=config.generation.max_batch_size,
        max_wait_s=config.generation.batch_wait_ms / 1000,
        max_prompt_tokens=config.generation.max_prompt_tokens,
    )


@contextmanager
def open_rollout(
    config: Config, generator: Generator | None = None, mode: str | None = None
) -> Iterator[RolloutStack]:
    """Build everything from `config` (the generator too unless given: then it is closed after
    as well). Refuses (HiddenFilesystemMissing) before any model is loaded when executions could
    read reference data."""
    environment = grading_environment(config)
    own = generator is None
    try:
        environment.start()
        generator = generator or make_generator(config.model, config.generation, seed=config.seed)
    except BaseException:
        environment.close()
        raise
    batcher = make_batcher(generator, config)
    runner = environment.runner(batcher)
    engine = RolloutEngine(batcher, runner, tree_settings(config, mode), environment)
    stack = RolloutStack(generator, batcher, environment, runner, engine)
    try:
        yield stack
    finally:
        stack.close()
        if own:
            generator.close()
