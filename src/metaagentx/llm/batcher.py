"""Merge many concurrent single requests into batched `Generator.generate` calls.

Workflow agents run in many threads, asyncio tasks and sandboxed executions at once, each
asking for one reply at a time. Generation is cheapest in batches, so a background thread
collects requests for up to `max_wait_s` (or until `max_batch_size`) and runs them together.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from metaagentx.llm.base import GenerationRequest, GenerationResult, Generator

log = logging.getLogger(__name__)


@dataclass
class BatcherStats:
    requests: int = 0
    batches: int = 0
    largest_batch: int = 0


_CLOSE = object()


class RequestBatcher(Generator):
    """Thread-safe front of a generator; also a `Generator` itself, so it can stand in for one."""

    def __init__(
        self, generator: Generator, max_batch_size: int = 64, max_wait_s: float = 0.005
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.generator = generator
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name="request-batcher", daemon=True)
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

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _CLOSE:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            closing = False
            while len(batch) < self.max_batch_size:
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
                    closing = True
                    break
                batch.append(item)
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
