"""The training task stream: ratios, determinism, and an exact resume from its state."""

from __future__ import annotations

import pytest

from metaagentx.tasks.base import Task
from metaagentx.tasks.mixture import TaskMixture


def _tasks(prefix: str, n: int) -> list[Task]:
    return [Task(id=f"{prefix}{i}", domain="math", prompt=f"q{i}", answer=str(i)) for i in range(n)]


def test_ratios_and_coverage():
    mix = TaskMixture([_tasks("a", 50), _tasks("b", 50)], [3, 1], seed=0)
    drawn = [t.id for _ in range(100) for t in mix.next_batch(8)]
    share_a = sum(i.startswith("a") for i in drawn) / len(drawn)
    assert 0.7 < share_a < 0.8
    first_epoch_b = [i for i in drawn if i.startswith("b")][:50]
    assert len(set(first_epoch_b)) == 50  # each epoch visits every task once


def test_same_seed_same_batches_and_exact_resume():
    a = TaskMixture([_tasks("a", 7), _tasks("b", 5)], seed=3)
    b = TaskMixture([_tasks("a", 7), _tasks("b", 5)], seed=3)
    assert [t.id for t in a.next_batch(4)] == [t.id for t in b.next_batch(4)]
    a.next_batch(4)
    saved = a.state_dict()
    expected = [[t.id for t in a.next_batch(4)] for _ in range(5)]
    resumed = TaskMixture([_tasks("a", 7), _tasks("b", 5)], seed=3)
    resumed.load_state_dict(saved)
    assert [[t.id for t in resumed.next_batch(4)] for _ in range(5)] == expected
    other = TaskMixture([_tasks("a", 7), _tasks("b", 5)], seed=4)
    assert [t.id for t in other.next_batch(8)] != [
        t.id for t in TaskMixture([_tasks("a", 7), _tasks("b", 5)], seed=3).next_batch(8)
    ]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'empty' is empty"):
        TaskMixture([_tasks("a", 2), []], names=["a", "empty"])
    with pytest.raises(ValueError, match="2 weights for 1"):
        TaskMixture([_tasks("a", 2)], [1, 2])
    mix = TaskMixture([_tasks("a", 2)], seed=0)
    with pytest.raises(ValueError, match="does not match"):
        mix.load_state_dict({"seed": 1, "batches_drawn": 0, "cursor": [0]})
