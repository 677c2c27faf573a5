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

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator

if TYPE_CHECKING:  # the hf backend (torch, transformers) loads only when it is used
    from metaagentx.llm.hf import DecodeBatch, HFGenerator

log = logging.getLogger(__name__)


@dataclass
class BatcherStats:
    requests: int = 0
    batches: int = 0
    largest_batch: int = 0


_CLOSE = object()
MAX_WAIT_FACTOR = 10  # a burst is gathered for at most this many quiet gaps (`max_wait_s`)


class _BatchingFront(Generator):
    """Thread-safe queue in front of a worker thread; also a `Generator` itself."""

    def __init__(self, generator: Generator, max_batch_size: int, max_wait_s: float) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.generator = generator
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
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
        self, generator: Generator, max_batch_size: int = 64, max_wait_s: float = 0.005
    ) -> None:
        super().__init__(generator, max_batch_size, max_wait_s)

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
        try:
            results = self.generator.generate([r for r, _ in live])
        except Exception as exc:
            if len(live) == 1:
                live[0][1].set_exception(exc)
                return
            # one bad request must not fail its batch-mates: retry each on its own
            log.warning("batched generate failed; retrying its %d requests one by one", len(live))
            for request, future in live:
                try:
                    future.set_result(self.generator.generate([request])[0])
                except Exception as exc:
                    future.set_exception(exc)
            return
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)


class ContinuousBatcher(_BatchingFront):
    """Continuous batching for the hf backend: requests join the running decode loop."""

    def __init__(
        self, generator: HFGenerator, max_batch_size: int = 64, max_wait_s: float = 0.005
    ) -> None:
        super().__init__(generator, max_batch_size, max_wait_s)

    def _loop(self) -> None:
        from metaagentx.llm.hf import DecodeBatch

        generator: HFGenerator = self.generator  # type: ignore[assignment]
        batch: DecodeBatch | None = None
        futures: dict[int, Future] = {}
        closing = False
        while not (closing and batch is None):
            if batch is None:
                first = self._queue.get()
                if first is _CLOSE:
                    return
                items, closing = self._gather(first, self.max_wait_s, self.max_batch_size)
            elif not closing:
                items, closing = self._gather(None, 0.0, self.max_batch_size - len(batch.rows))
            else:
                items = []
            rows = []
            for request, future in items:
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    row = generator.make_row(request)
                except Exception as exc:  # a bad request fails alone
                    future.set_exception(exc)
                    continue
                futures[id(row)] = future
                rows.append(row)
            try:
                with generator.decoding():
                    if rows:
                        joining = DecodeBatch(generator, rows)
                        if batch is None:
                            batch = joining
                        else:
                            batch.absorb(joining)
                        self.stats.requests += len(rows)
                        self.stats.batches += 1
                    if batch is None:
                        continue
                    self.stats.largest_batch = max(self.stats.largest_batch, len(batch.rows))
                    finished = batch.step()
            except Exception as exc:  # the model failed: every request in flight fails with it
                log.exception("continuous batching step failed")
                for future in futures.values():
                    future.set_exception(exc)
                futures.clear()
                batch = None
                continue
            for row in finished:
                futures.pop(id(row)).set_result(generator.to_result(row))
            if not batch.rows:
                batch = None
