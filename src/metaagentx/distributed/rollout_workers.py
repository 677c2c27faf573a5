"""Rollout workers: Ray actors that run and grade the executions, off the trainer process.

Each worker owns a grading environment from the one factory (`grading_environment`), so its
sandbox, tools and graders are its own, and a `Runner` whose generator sends every agent call
back to the trainer: the trainer serves its role router over HTTP (`llm.server`, on a thread, for
as long as the pool lives), so the calls of all workers join the trainer's batches, keep their
seed and metadata across the hop, and come back with exactly the ids and log-probs sampled.

The trainer keeps the algorithm and the tree: `RayExecutions` is the `Executions` its
`RolloutEngine`s take; it sends each execution to the least-loaded worker and awaits the result.
A worker that dies takes only its in-flight executions with it: each is re-run on a live worker
(`on_worker_loss: retry`; seeded, so it samples what it would have) or scored 0 with reason
"status:worker_lost" (`zero`), and counted in the tree (`executions/worker_lost`). The dead worker
is replaced; a replacement that cannot start is dropped and the pool goes on with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import openai

from metaagentx.config import Config
from metaagentx.distributed.launch import import_ray, ray_session
from metaagentx.llm.base import GenerationRequest, GenerationResult
from metaagentx.llm.openai_backend import OpenAIGenerator
from metaagentx.llm.router import Front
from metaagentx.rollout.environment import grading_environment
from metaagentx.rollout.rewards import ExecutionReward
from metaagentx.rollout.trajectory import make_execution_id
from metaagentx.rollout.tree import DesignNode, ExecutionNode, LocalExecutions, TreeSettings
from metaagentx.tasks.base import Task

log = logging.getLogger(__name__)

SERVED_NAME = "metaagentx-trainer"  # the model name the trainer's server answers to
MAX_RERUNS = 2  # an execution whose workers keep dying is scored 0 after this many re-runs
STARTUP_TIMEOUT_S = 600.0  # the pool's first workers (a cluster may be scaling up for them)
CALL_RETRIES = 2  # connection hiccups; a retried turn is seeded, so it samples the same tokens


class TrainerGenerator:
    """A worker's generator: each agent call goes to the trainer's server, with its role, seed
    and metadata, and comes back with the ids and log-probs the trainer sampled."""

    def __init__(self, url: str, api_key: str, *, concurrency: int, timeout_s: float) -> None:
        self.client = OpenAIGenerator(
            url, SERVED_NAME, api_key=api_key, timeout_s=timeout_s, max_retries=CALL_RETRIES,
            concurrency=concurrency, require_token_ids=True, send_metadata=True,
        )

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """The trainer's answer; a request it refused (a prompt over the cap...) raises the
        ValueError it raised there, so the execution sees what it would have in process."""
        try:
            return await asyncio.wrap_future(self.client.submit(request))
        except openai.BadRequestError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            raise ValueError(body.get("message", str(exc))) from None


class RolloutWorker:
    """One Ray actor (made with `ray.remote` where Ray is in use): runs and grades executions."""

    def __init__(self, config: dict[str, Any], url: str, api_key: str) -> None:
        c = Config.model_validate(config)
        self.environment = grading_environment(c)
        self.environment.start()  # refuses, as the trainer would, when grading is unsafe here
        # an agent call can never usefully outlive the straggler deadline; more calls in flight
        # than one batch of the trainer's generator would only queue there
        self.generator = TrainerGenerator(url, api_key, concurrency=c.generation.max_batch_size,
                                          timeout_s=c.rollout.straggler_deadline_s)
        runner = self.environment.runner(self.generator)
        self.executions = LocalExecutions(runner, self.environment)

    async def ready(self) -> bool:
        """Answers once the constructor has run (the sandbox is up)."""
        return True

    async def execute(self, task: Task, design: DesignNode, n: int, step: int,
                      settings: TreeSettings) -> ExecutionNode:
        self.executions.prepare([task])
        return await self.executions.execute(task, design, n, step, settings)


@dataclass(eq=False)
class _Worker:
    handle: Any  # the actor
    started: Future[bool]  # its `ready()`
    in_flight: int = 0


class RayExecutions:
    """The `Executions` of a `RolloutEngine` on a pool of rollout workers (see the module
    docstring). `close()` stops the workers, the server and a Ray it started."""

    def __init__(self, config: Config, router: Front) -> None:
        r = config.distributed.ray
        if r.rollout_workers < 1:
            raise ValueError("RayExecutions needs distributed.ray.rollout_workers >= 1")
        self.on_worker_loss = r.on_worker_loss
        self._ray = import_ray("distributed.ray.rollout_workers")
        self._live: list[_Worker] = []
        self._pending: list[_Worker] = []  # replacements not yet started
        self._tasks: dict[str, tuple[Task, Any]] = {}  # this rollout's tasks in Ray's store
        self._stack = contextlib.ExitStack()
        try:
            needs = {"CPU": math.ceil(r.rollout_workers * r.cpus_per_worker)}
            local = self._stack.enter_context(
                ray_session(self._ray, config.distributed.ray_address, needs))
            self._serve(config, router, local)
            self._live = [self._spawn() for _ in range(r.rollout_workers)]
            self._await_start(self._live)
        except BaseException:
            self.close()
            raise

    def _serve(self, config: Config, router: Front, local: bool) -> None:
        """Serve `router` to the workers: on the loopback for a local Ray, else on this node's
        address (a cluster's workers may be elsewhere), with a key only the workers are given."""
        from metaagentx.llm.server import ServerThread, create_app

        key = secrets.token_urlsafe(32)
        app = create_app(router, SERVED_NAME, owns_batcher=False, api_key=key)
        server = ServerThread(app, "127.0.0.1" if local else self._ray.util.get_node_ip_address())
        self._stack.callback(server.stop)
        r = config.distributed.ray
        self._actor = self._ray.remote(RolloutWorker).options(num_cpus=r.cpus_per_worker)
        self._args = (config.model_dump(mode="json"), server.url, key)

    def _spawn(self) -> _Worker:
        handle = self._actor.remote(*self._args)
        return _Worker(handle, handle.ready.remote().future())

    def _await_start(self, workers: list[_Worker]) -> None:
        started = [w.started for w in workers]
        if futures.wait(started, timeout=STARTUP_TIMEOUT_S).not_done:
            raise RuntimeError(
                f"rollout workers did not start in {STARTUP_TIMEOUT_S:g} s: does the Ray cluster "
                "have distributed.ray.cpus_per_worker CPUs free for each?")
        for future in started:
            if (exc := future.exception()) is not None:
                raise RuntimeError(f"a rollout worker failed to start: {exc}") from exc

    def prepare(self, tasks: Sequence[Task]) -> None:
        """Put the rollout's tasks in Ray's object store once (tests can be large; each is sent
        M x N times); each worker starts its own graders at its first math task."""
        self._tasks = {t.id: (t, self._ray.put(t)) for t in tasks}

    async def execute(self, task: Task, design: DesignNode, n: int, step: int,
                      settings: TreeSettings) -> ExecutionNode:
        """Run on the least-loaded worker; on that worker's death, re-run or score 0."""
        slim = DesignNode(design.design_id, design.design, None)  # the designer's ids stay here
        stored, ref = self._tasks.get(task.id, (None, None))
        sent = ref if stored is task else task
        lost = 0
        while (worker := await self._worker()) is not None:
            try:
                node: ExecutionNode = await self._run_on(worker, sent, slim, n, step, settings)
            except self._ray.exceptions.RayActorError as exc:
                lost += 1
                self._lose(worker, exc)
                if self.on_worker_loss == "zero" or lost > MAX_RERUNS:
                    break
            else:
                node.workers_lost = lost
                return node
        execution_id = make_execution_id(design.design_id, n)
        log.warning("execution %s lost with its rollout worker: scored 0", execution_id)
        return ExecutionNode(execution_id, None, ExecutionReward(0.0, reason="status:worker_lost"),
                             workers_lost=max(lost, 1))

    async def _run_on(self, worker: _Worker, *args: Any) -> ExecutionNode:
        worker.in_flight += 1
        ref = worker.handle.execute.remote(*args)
        try:
            return await ref
        except asyncio.CancelledError:  # cut by the straggler deadline: the worker kills it too
            with contextlib.suppress(self._ray.exceptions.RayError):
                self._ray.cancel(ref)
            raise
        finally:
            worker.in_flight -= 1

    async def _worker(self) -> _Worker | None:
        """The least-loaded live worker; started replacements join first (waited for when no
        worker is live). None when no worker is left."""
        for worker in list(self._pending):
            if worker.started.done() or not self._live:
                await self._admit(worker)
        return min(self._live, key=lambda w: w.in_flight, default=None)

    async def _admit(self, worker: _Worker) -> None:
        try:
            await asyncio.wrap_future(worker.started)
        except self._ray.exceptions.RayError as exc:
            if worker in self._pending:
                self._pending.remove(worker)
                log.error("a replacement rollout worker failed to start (%s); going on with %d",
                          exc, len(self._live))
            return
        if worker in self._pending:  # concurrent callers await the same start; one moves it
            self._pending.remove(worker)
            self._live.append(worker)

    def _lose(self, worker: _Worker, exc: BaseException) -> None:
        """Drop a dead worker (the first of its executions to notice does) and start another."""
        if worker not in self._live:
            return
        self._live.remove(worker)
        log.warning("a rollout worker died (%s); starting a replacement", exc)
        with contextlib.suppress(Exception):  # make sure it is gone, however it failed
            self._ray.kill(worker.handle)
        self._pending.append(self._spawn())

    def close(self) -> None:
        """Kill the workers (each sandbox's fork server exits with its host), stop the server
        and the Ray this pool started. Safe to call twice."""
        workers, self._live, self._pending = self._live + self._pending, [], []
        self._tasks = {}
        for worker in workers:
            with contextlib.suppress(Exception):
                self._ray.kill(worker.handle)
        self._stack.close()

