"""Rollout workers on a local Ray: the same tree as in-process executions, and a killed worker
loses only its own in-flight executions (re-run or scored 0, and counted). The tests that need
Ray skip without it."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from metaagentx.config import Config, build_config
from metaagentx.distributed.rollout_workers import SERVED_NAME, RayExecutions, TrainerGenerator
from metaagentx.llm.base import GenerationRequest, GenerationResult, PromptTooLong
from metaagentx.llm.batcher import ContinuousBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.llm.router import RoleRouter
from metaagentx.llm.server import ServerThread, create_app
from metaagentx.rl.trainer import Trainer
from metaagentx.rollout.environment import GradingEnvironment, grading_environment
from metaagentx.rollout.factory import train_mixture, tree_settings
from metaagentx.rollout.tree import RolloutEngine, RolloutTree
from metaagentx.tasks.base import Task
from rl_support import trainer_config

STEP = 3
FIXED = ("rollout.mode=fixed:single_agent", "rollout.num_executions=3")


class HookedRouter(RoleRouter):
    """The trainer's router, recording each request it serves and running an optional hook
    (set by a test) before serving it; `delay_s` holds each request back that long."""

    def __init__(self, inner: RoleRouter) -> None:
        super().__init__(inner.fronts)
        self.hook: Callable[[GenerationRequest], None] | None = None
        self.seen: list[GenerationRequest] = []
        self.delay_s = 0.0
        self.held = 0  # requests held back right now

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        self.seen.append(request)
        if self.hook is not None:
            self.hook(request)
        return super().submit(request)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        if self.delay_s:
            self.held += 1
            await asyncio.sleep(self.delay_s)
            self.held -= 1
        return await asyncio.wrap_future(self.submit(request))


@dataclass
class Setup:
    ray: Any
    config: Config
    router: HookedRouter
    environment: GradingEnvironment
    executions: RayExecutions
    tasks: list[Task]
    local: RolloutTree  # the tree of in-process executions

    def rollout(self, executions: RayExecutions | None, **settings: Any) -> RolloutTree:
        engine = _engine(self.config, self.router, self.environment, executions, **settings)
        return engine.rollout_sync(self.tasks, STEP)


def _engine(config: Config, router: HookedRouter, environment: GradingEnvironment,
            executions: RayExecutions | None, **settings: Any) -> RolloutEngine:
    """The trainer's engine, with its executions in process (None) or on the workers."""
    runner = environment.runner(router)
    return RolloutEngine(router, runner, replace(tree_settings(config), **settings), environment,
                         executions)


@pytest.fixture(scope="module")
def pool(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """One local Ray (2 CPUs), one pool of 2 workers (half a CPU each: a trainer's pool gets
    the rest) and the in-process reference tree."""
    ray = pytest.importorskip("ray")
    config = trainer_config(
        tiny_model_dir, tmp_path_factory.mktemp("run"), *FIXED,
        "distributed.ray.rollout_workers=2", "distributed.ray.cpus_per_worker=0.5",
    )
    generator = HFGenerator.from_pretrained(tiny_model_dir, device="cpu", dtype="float32",
                                            num_threads=1)
    router = HookedRouter(RoleRouter({"executor": ContinuousBatcher(generator)}))
    environment = grading_environment(config)
    environment.start()
    tasks = train_mixture(config).next_batch(config.trainer.batch_problems)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    executions = None
    try:
        local = _engine(config, router, environment, None).rollout_sync(tasks, STEP)
        executions = RayExecutions(config, router)
        yield Setup(ray, config, router, environment, executions, tasks, local)
    finally:
        if executions is not None:
            executions.close()
        ray.shutdown()
        environment.close()
        router.close()


def _outcome(tree: RolloutTree) -> list[tuple[Any, ...]]:
    """Everything a tree trains on and reports, but log-probs (compared with a tolerance)."""
    return [
        (d.design_id, d.design.script, d.reward, e.execution_id, e.status, e.reward, e.grade,
         [(c.agent, c.messages, c.prompt_ids, c.response_ids, c.text, c.finish_reason)
          for c in e.calls])
        for _, d, e in tree.executions()
    ]


def _logprobs(tree: RolloutTree) -> list[float]:
    return [lp for _, _, e in tree.executions() for c in e.calls for lp in c.logprobs]


def _driver_calls(router: HookedRouter) -> list[tuple[Any, ...]]:
    """What reached the trainer's generators: role, metadata and sampling, in a stable order."""
    return sorted((r.role, sorted(r.metadata.items()), repr(r.sampling)) for r in router.seen)


def test_workers_roll_out_the_same_tree_as_the_trainer(pool: Setup) -> None:
    local = pool.local
    assert sum(len(e.calls) for _, _, e in local.executions()) >= 6  # there are agent calls
    pool.router.seen.clear()
    pool.rollout(None)
    in_process = _driver_calls(pool.router)
    pool.router.seen.clear()
    remote = pool.rollout(pool.executions)
    assert _outcome(remote) == _outcome(local)
    assert _logprobs(remote) == pytest.approx(_logprobs(local), abs=1e-5)
    # seeds, roles and metadata (execution ids...) crossed the hop unchanged
    assert _driver_calls(pool.router) == in_process
    assert "executions/worker_lost" not in remote.metrics()


def test_the_straggler_deadline_cuts_executions_on_the_workers(pool: Setup) -> None:
    pool.router.delay_s = 1.0  # no agent gets its reply before the deadline
    try:
        cut = pool.rollout(pool.executions, straggler_deadline_s=0.3)
        while pool.router.held:  # the calls of the cut executions reach the generator after all
            time.sleep(0.05)
    finally:
        pool.router.delay_s = 0.0
    assert {e.status for _, _, e in cut.executions()} == {"cut"}
    # the cancelled executions ended on their workers, which serve the next rollout as before
    assert _outcome(pool.rollout(pool.executions)) == _outcome(pool.local)


@pytest.mark.parametrize("on_loss", ["retry", "zero"])
def test_a_killed_worker_loses_only_its_in_flight_executions(pool: Setup, on_loss: str) -> None:
    executions = pool.executions
    executions.on_worker_loss = on_loss
    for replacement in executions._pending:  # the previous test's: both workers take a share
        replacement.started.result(timeout=60)
    killed: list[int] = []

    def kill_a_worker(_: GenerationRequest) -> None:  # at the first agent call of the rollout
        pool.router.hook = None
        victim = max(executions._live, key=lambda w: w.in_flight)
        killed.append(victim.in_flight)
        pool.ray.kill(victim.handle)

    pool.router.hook = kill_a_worker
    tree = pool.rollout(executions)
    lost = killed[0]
    local = {row[3]: row for row in _outcome(pool.local)}
    rows = _outcome(tree)
    assert 1 <= lost < len(rows) and tree.metrics()["executions/worker_lost"] == lost
    if on_loss == "retry":  # re-run with the same seeds: the whole tree, as if nothing happened
        assert rows == list(local.values())
    else:
        gone = [row for row in rows if row[4] == "worker_lost"]
        assert len(gone) == lost and all(row[5].total == 0 and not row[7] for row in gone)
        assert [row for row in rows if row[4] != "worker_lost"] == [
            local[row[3]] for row in rows if row[4] != "worker_lost"]
    assert len(executions._live) + len(executions._pending) == 2  # the dead one was replaced


def test_a_trainer_step_runs_its_executions_on_its_workers(pool: Setup, tmp_path: Path) -> None:
    config = trainer_config(
        Path(pool.config.model.path), tmp_path / "run", *FIXED,
        "distributed.ray.rollout_workers=1", "distributed.ray.cpus_per_worker=0.5",
    )
    trainer = Trainer(config)
    try:
        assert trainer.rollouts.executions is trainer.ray_executions
        assert trainer.val_engine.executions is trainer.ray_executions
        metrics = trainer.run_step()
        assert metrics["executions/total"] == 6 and metrics["agents/calls_per_execution"] >= 1
    finally:
        trainer.close()
    assert pool.ray.is_initialized()  # the Ray it found running is left running


class _Refusing:
    """A trainer generator that refuses every request, as it does a prompt over the cap."""

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        raise PromptTooLong(9000, 8192)

    def close(self) -> None:
        pass


def test_a_refused_agent_call_fails_on_a_worker_as_it_does_in_process() -> None:
    # in process the runner answers the agent "bad_request" for a ValueError; so must a worker
    server = ServerThread(create_app(_Refusing(), SERVED_NAME, owns_batcher=False, api_key="k"))
    request = GenerationRequest(messages=[{"role": "user", "content": "hi"}])
    try:
        generator = TrainerGenerator(server.url, "k", concurrency=1, timeout_s=10)
        with pytest.raises(ValueError, match=r"^the prompt has 9000 tokens, more than the cap"):
            asyncio.run(generator.agenerate(request))
    finally:
        server.stop()


def test_without_ray_rollout_workers_ask_for_it_in_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    config = build_config({}, ["distributed.ray.rollout_workers=1"])
    with pytest.raises(ImportError, match=r'needs Ray .*pip install "metaagentx\[ray\]"') as info:
        RayExecutions(config, RoleRouter({"executor": _Refusing()}))
    assert "\n" not in str(info.value)
