"""A bounded thread pool for tool calls and grading, fair across executions.

Tool calls (`python`, `run_tests`) and grading block on sandboxed child processes, so they run in
threads. asyncio's default pool is shared by everything and unbounded per caller: a few hostile
executions flooding tool calls starved benign ones into timeouts. Here every job names its owner
(an execution id) and no owner has more than `per_owner` jobs queued or running at once, so a
queued job waits behind at most `per_owner` jobs of each other execution, whatever one of them
does.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def default_workers() -> int:
    """Enough threads to keep the sandbox's children busy on this machine, but bounded."""
    return max(4, min(32, 2 * (os.cpu_count() or 1)))


class FairPool:
    """`await pool.run(owner, fn, *args)` runs `fn(*args)` in a worker thread."""

    def __init__(self, workers: int | None = None, per_owner: int = 2) -> None:
        if per_owner < 1:
            raise ValueError("per_owner must be >= 1")
        self.workers = workers or default_workers()
        self.per_owner = per_owner
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="mx-tools")
        # (loop, owner) -> [semaphore, users]: asyncio primitives belong to one event loop
        self._owners: dict[tuple[int, str], list[Any]] = {}

    async def run(self, owner: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        key = (id(loop), owner)
        entry = self._owners.get(key)
        if entry is None:
            entry = self._owners[key] = [asyncio.Semaphore(self.per_owner), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._owners.pop(key, None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
