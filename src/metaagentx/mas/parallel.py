"""Run independent agents at the same time.

The runtime's `llm()` blocks until the host answers and the host batches concurrent requests,
so running ensemble members or debaters in threads turns N sequential generations into one
batched one. Threads (not processes) because agents only wait on the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from metaagentx.mas.execution import current_execution

T = TypeVar("T")


def run_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Call every function concurrently (at most Limits.max_parallel at once) and return their
    results in order. If any raises, the first error (in call order) is raised after all
    finished; a tripped limit makes the others fail fast."""
    if len(calls) <= 1:
        return [call() for call in calls]
    workers = min(len(calls), current_execution().limits.max_parallel)
    results: list[T] = []
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mas-agent") as pool:
        futures = [pool.submit(call) for call in calls]
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # re-raised below, after every member has finished
                error = error or exc
    if error is not None:
        raise error
    return results
