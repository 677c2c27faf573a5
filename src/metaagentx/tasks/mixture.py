"""A resumable, seeded stream of task batches drawn from several sources with given ratios.

RL mixes domains (the paper trains on math and code together), and an exact resume must draw
the very batches an uninterrupted run would have drawn. Each source is walked through its own
seeded permutation (a new one per epoch); which source fills each slot of batch k is decided by
an RNG seeded with (seed, k). The whole position is a few integers (`state_dict`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from metaagentx.tasks.base import Task


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class TaskMixture:
    """Batches of tasks; source i fills a slot with probability weights[i] / sum(weights)."""

    def __init__(
        self,
        sources: Sequence[Sequence[Task]],
        weights: Sequence[float] | None = None,
        *,
        seed: int = 0,
        names: Sequence[str] | None = None,
    ) -> None:
        if not sources:
            raise ValueError("a task mixture needs at least one source")
        self.names = (
            list(names) if names is not None else [f"source{i}" for i in range(len(sources))]
        )
        for name, source in zip(self.names, sources, strict=True):
            if not source:
                raise ValueError(f"task source '{name}' is empty")
        weights = list(weights) if weights is not None else [1.0] * len(sources)
        if len(weights) != len(sources):
            raise ValueError(f"{len(weights)} weights for {len(sources)} task sources")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
        self.sources = [list(s) for s in sources]
        self.weights = weights
        self.seed = seed
        self.batches_drawn = 0
        self._cursor = [0] * len(sources)  # tasks taken from each source so far

    def _take(self, index: int) -> Task:
        source = self.sources[index]
        epoch, position = divmod(self._cursor[index], len(source))
        order = list(range(len(source)))
        _rng(self.seed, "epoch", index, epoch).shuffle(order)
        self._cursor[index] += 1
        return source[order[position]]

    def next_batch(self, size: int) -> list[Task]:
        """The next `size` tasks (ids unique within a batch while a source has enough tasks)."""
        rng = _rng(self.seed, "batch", self.batches_drawn)
        picks = rng.choices(range(len(self.sources)), weights=self.weights, k=size)
        self.batches_drawn += 1
        return [self._take(i) for i in sorted(picks)]

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "batches_drawn": self.batches_drawn,
            "cursor": list(self._cursor),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["seed"] != self.seed or len(state["cursor"]) != len(self.sources):
            raise ValueError(
                "saved mixture state does not match this mixture (seed or sources differ)"
            )
        self.batches_drawn = int(state["batches_drawn"])
        self._cursor = [int(c) for c in state["cursor"]]
