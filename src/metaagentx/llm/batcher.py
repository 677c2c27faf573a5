"""Merge many concurrent single requests into batched generation.

Workflow agents run in many threads, asyncio tasks and sandboxed executions at once, each
asking for one reply at a time. Generation is cheapest in batches, so a background thread
gathers requests and runs them together:
- `RequestBatcher` (any backend) collects requests until none has come for `max_wait_s` (or
  until `max_batch_size`) and runs them as one `generate` call.
- `ContinuousBatcher` (the hf backend) keeps one decode loop running and lets requests join it
  between decode steps, so a request that arrives while a batch is decoding does not wait for
  the whole batch (the way vLLM schedules). Agent turns arrive staggered (sandbox start-up, tool
  calls, earlier turns of different lengths), which is exactly when this matters.

Requests come from untrusted workflows, so one request must not cost the others: a prompt over
`max_prompt_tokens` fails alone before any compute; a long prompt is batched only with prompts of
similar length (`hf.fits`), so it pads nobody; and when a batched call raises, the batch is
split in halves and retried until the request that fails alone is found (at most 2n - 1 calls
for n requests), so only it gets the exception.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metaagentx.llm.base import (
    GenerationRequest,
    GenerationResult,
    Generator,
    check_prompt_length,
)

if TYPE_CHECKING:  # the hf backend (torch, transformers) loads only when it is used
    from metaagentx.llm.hf import DecodeBatch, DecodeRow, HFGenerator

log = logging.getLogger(__name__)


@dataclass
class BatcherStats:
    requests: int = 0
    batches: int = 0
    largest_batch: int = 0
    split_batches: int = 0  # batched calls that raised and were split in halves to retry


_CLOSE = object()
MAX_WAIT_FACTOR = 10  # a burst is gathered for at most this many quiet gaps (`max_wait_s`)


class _BatchingFront(Generator):
    """Thread-safe queue in front of a worker thread; also a `Generator` itself."""

    def __init__(
        self,
        generator: Generator,
        max_batch_size: int,
        max_wait_s: float,
        max_prompt_tokens: int | None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_prompt_tokens is not None and max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")
        self.generator = generator
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_prompt_tokens = max_prompt_tokens
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name=type(self).__name__, daemon=True)
        self._worker.start()

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Queue one request; the future resolves when its batch has run."""
        future: Future[GenerationResult] = Future()
        with self._lock:  # nothing may be queued behind the close marker
            if self._closed:
                raise RuntimeError("the request batcher is closed")
            self._queue.put((request, future))
        return future

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Asyncio form of `submit`."""
        return await asyncio.wrap_future(self.submit(request))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_CLOSE)
        self._worker.join()

    @abc.abstractmethod
    def _loop(self) -> None:
        """The worker thread: take requests from the queue and resolve their futures."""

    def _gather(self, first: object, wait_s: float, limit: int) -> tuple[list, bool]:
        """`first` plus whatever follows until the queue has been quiet for `wait_s` (at most
        `MAX_WAIT_FACTOR * wait_s` in all), at most `limit` items; and whether the close marker
        was met. The quiet gap rather than a fixed window: the first turns of many executions
        arrive as a burst spread over tens of milliseconds (sandbox start-up), and one prefill
        for the whole burst beats a batch that the rest must join a step later."""
        batch = [] if first is None else [first]
        now = time.monotonic()
        cap = now + MAX_WAIT_FACTOR * wait_s
        deadline = min(now + wait_s, cap)
        while len(batch) < limit:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _CLOSE:
                return batch, True
            batch.append(item)
            deadline = min(time.monotonic() + wait_s, cap)
        return batch, False


class RequestBatcher(_BatchingFront):
    """Merges concurrent requests into `generate` calls of any backend."""

    def __init__(
        self,
        generator: Generator,
        max_batch_size: int = 64,
        max_wait_s: float = 0.005,
        max_prompt_tokens: int | None = None,
    ) -> None:
        """`max_prompt_tokens`: a request whose prompt the backend can count
        (`Generator.prompt_length`) and finds longer fails alone at `submit`; the backend's own
        limits still apply (a server's context length for chat prompts it alone can count)."""
        super().__init__(generator, max_batch_size, max_wait_s, max_prompt_tokens)

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        if self.max_prompt_tokens is not None:
            try:
                tokens = self.generator.prompt_length(request)
                check_prompt_length(tokens, self.max_prompt_tokens)
            except Exception as exc:  # an unusable prompt fails here, before joining a batch
                failed: Future[GenerationResult] = Future()
                failed.set_exception(exc)
                return failed
        return super().submit(request)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _CLOSE:
                return
            batch, closing = self._gather(first, self.max_wait_s, self.max_batch_size)
            self._run(batch)
            if closing:
                return

    def _run(self, batch: list[tuple[GenerationRequest, Future]]) -> None:
        live = [(r, f) for r, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        self.stats.requests += len(live)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        self._generate(live)

    def _generate(self, live: list[tuple[GenerationRequest, Future]]) -> None:
        """One `generate` call for `live`; when it raises, each half is retried the same way,
        so only a request that fails alone gets the exception."""
        try:
            results = self.generator.generate([r for r, _ in live])
        except Exception as exc:
            if len(live) == 1:
                live[0][1].set_exception(exc)
                return
            log.warning("a batch of %d requests failed (%s); retrying it in halves", len(live), exc)
            self.stats.split_batches += 1
            half = (len(live) + 1) // 2
            self._generate(live[:half])
            self._generate(live[half:])
            return
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)


@dataclass
class _Lane:
    """One decode batch of rows of similar length (`DecodeBatch.accepts`)."""

    batch: DecodeBatch
    quarantined: bool  # rows retried after a failure: nobody joins, a failure splits it again


class ContinuousBatcher(_BatchingFront):
    """Continuous batching for the hf backend: requests join the running decode loop.

    Rows decode in lanes, one `DecodeBatch` each, stepped in turn: arriving requests are
    grouped by prompt length, and each group joins a lane of similar length or starts its own,
    so a long prompt pads no short one. Identical prompts share a group and are prefilled once.
    """

    generator: HFGenerator

    def __init__(
        self,
        generator: HFGenerator,
        max_batch_size: int = 64,
        max_wait_s: float = 0.005,
        max_prompt_tokens: int | None = None,
    ) -> None:
        """`max_prompt_tokens`, when given, replaces the generator's own prompt-token cap."""
        self._lanes: list[_Lane] = []  # set before the worker thread starts (in super)
        self._retry: list[list[DecodeRow]] = []
        self._futures: dict[int, Future] = {}
        super().__init__(generator, max_batch_size, max_wait_s, max_prompt_tokens)

    def _in_flight(self) -> int:
        return sum(len(lane.batch.rows) for lane in self._lanes) + sum(map(len, self._retry))

    def _loop(self) -> None:
        closing = False
        while not (closing and not self._in_flight()):
            if not self._in_flight():
                first = self._queue.get()
                if first is _CLOSE:
                    return
                items, closing = self._gather(first, self.max_wait_s, self.max_batch_size)
            elif not closing:
                room = self.max_batch_size - self._in_flight()
                items, closing = self._gather(None, 0.0, room)
            else:
                items = []
            groups = self._new_groups(items)
            if not (groups or self._in_flight()):
                continue
            try:
                with self.generator.decoding():
                    self._admit_all(groups)
                    self._step_all()
            except Exception as exc:  # the model's context failed, outside any one batch
                log.exception("continuous batching failed")
                self._fail_all(exc)

    def _new_groups(self, items: list[tuple[GenerationRequest, Future]]) -> list[list[DecodeRow]]:
        """Rows for `items` (a request that cannot be prepared fails alone), by length."""
        from metaagentx.llm.hf import length_groups

        rows = []
        for request, future in items:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                row = self.generator.make_row(request, max_prompt_tokens=self.max_prompt_tokens)
            except Exception as exc:
                future.set_exception(exc)
                continue
            self._futures[id(row)] = future
            rows.append(row)
        self.stats.requests += len(rows)
        lengths = [len(r.prompt_ids) for r in rows]
        return [[rows[i] for i in group] for group in length_groups(lengths, self.max_batch_size)]

    def _admit_all(self, groups: list[list[DecodeRow]]) -> None:
        retry, self._retry = self._retry, []
        for rows in retry:
            self._admit(rows, quarantined=True)
        for rows in groups:
            self._admit(rows, quarantined=False)

    def _admit(self, rows: list[DecodeRow], quarantined: bool) -> None:
        """Prefill `rows`, then join a lane that accepts them or start a new lane."""
        from metaagentx.llm.hf import DecodeBatch

        lane, involved = None, rows
        try:
            joining = DecodeBatch(self.generator, rows)
            self.stats.batches += 1
            if not quarantined:
                lane = next(
                    (x for x in self._lanes if not x.quarantined and x.batch.accepts(joining)),
                    None,
                )
            if lane is None:
                self._lanes.append(_Lane(joining, quarantined))
                return
            involved = lane.batch.rows + rows  # a half-joined cache fails the lane's rows too
            lane.batch.absorb(joining)
        except Exception as exc:
            if lane is not None:
                self._lanes.remove(lane)
            self._isolate(involved, exc)

    def _step_all(self) -> None:
        """One decode step of every lane; finished rows resolve their futures."""
        for lane in list(self._lanes):
            rows = list(lane.batch.rows)
            self.stats.largest_batch = max(self.stats.largest_batch, len(rows))
            try:
                finished = lane.batch.step()
            except Exception as exc:
                self._lanes.remove(lane)
                self._isolate(rows, exc)
                continue
            for row in finished:
                future = self._futures.pop(id(row))
                try:
                    future.set_result(self.generator.to_result(row))
                except Exception as exc:  # its text could not be decoded: this row alone
                    future.set_exception(exc)
            if not lane.batch.rows:
                self._lanes.remove(lane)

    def _isolate(self, rows: list[DecodeRow], exc: Exception) -> None:
        """Restart the rows of a failed batch and retry them in two quarantined halves on the
        next pass; a row that failed alone gets `exc`. Halves shrink, so each row is retried
        at most log2(max_batch_size) times."""
        for row in rows:
            self.generator.restart_row(row)
        if len(rows) == 1:
            self._futures.pop(id(rows[0])).set_exception(exc)
            return
        log.warning("a batch of %d rows failed (%s); retrying it in halves", len(rows), exc)
        self.stats.split_batches += 1
        half = (len(rows) + 1) // 2
        self._retry += [rows[:half], rows[half:]]

    def _fail_all(self, exc: Exception) -> None:
        for future in self._futures.values():
            future.set_exception(exc)
        self._futures.clear()
        self._lanes.clear()
        self._retry.clear()
