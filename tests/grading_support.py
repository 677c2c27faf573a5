"""One grading environment + runner + engine for tests, built the way the library builds them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.tree import RolloutEngine, TreeSettings
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings


def build_engine(generator: Any, settings: TreeSettings, sandbox: SandboxSettings | None = None
                 ) -> tuple[RolloutEngine, GradingEnvironment]:
    """An engine over `generator` and its own grading environment (close that after)."""
    environment = GradingEnvironment(sandbox or SandboxSettings(timeout_s=20.0),
                                     code_test_timeout_s=settings.code_test_timeout_s)
    engine = RolloutEngine(generator, environment.runner(generator), settings, environment)
    return engine, environment


@contextmanager
def rollout_engine(generator: Any, settings: TreeSettings, sandbox: SandboxSettings | None = None
                   ) -> Iterator[tuple[RolloutEngine, Runner]]:
    """`build_engine` as a context: the environment (and its runner's sandbox) closed after."""
    engine, environment = build_engine(generator, settings, sandbox)
    try:
        yield engine, engine.runner
    finally:
        environment.close()
