"""One grading environment + runner + engine for tests, built the way the library builds them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from metaagentx.rollout.environment import GradingEnvironment
from metaagentx.rollout.tree import RolloutEngine, TreeSettings
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings


@contextmanager
def rollout_engine(generator: Any, settings: TreeSettings, sandbox: SandboxSettings | None = None
                   ) -> Iterator[tuple[RolloutEngine, Runner]]:
    """An engine over `generator` with its own grading environment; closed afterwards."""
    environment = GradingEnvironment(sandbox or SandboxSettings(timeout_s=20.0),
                                     code_test_timeout_s=settings.code_test_timeout_s)
    runner = environment.runner(generator)
    try:
        yield RolloutEngine(generator, runner, settings, environment), runner
    finally:
        runner.close()
        environment.close()
